//! Both enricher kinds built through the connector registry from TOML, as the runtime does,
//! and the wedding-day scenario: an event enriched with phase `day_of` and a pattern match.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use vowguard_core::registry::{Builder, find};
use vowguard_core::{
    BuildContext, Category, Enricher, Enrichment, ErrorKind, Event, Outcome, Role, SecretMap,
    Severity, WeddingPhase,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// Referenced so the crate (and its registrations) is linked into this test binary.
use vowguard_wedding as _;

const TOKEN: &str = "registry-test-token-91c2";

fn build(
    kind: &str,
    config_dir: &Path,
    toml_text: &str,
) -> Result<std::sync::Arc<dyn Enricher>, vowguard_core::Error> {
    let factory = find(Role::Enricher, kind).unwrap();
    let Builder::Enricher(build) = factory.builder else {
        panic!("{kind} is not an enricher");
    };
    let secrets = SecretMap::new().with("WEDDING_API_TOKEN", TOKEN);
    let ctx = BuildContext {
        id: "wed",
        role: Role::Enricher,
        data_dir: config_dir,
        config_dir,
        secrets: &secrets,
    };
    let table: vowguard_core::ComponentConfig = toml::from_str(toml_text).unwrap();
    build(&ctx, table)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn write_weddings(dir: &Path) {
    std::fs::write(
        dir.join("weddings.json"),
        r#"{"w-2026-0620": {"date": "2026-06-20", "timezone": "Europe/London",
                             "guest_count": 142, "vendor_count": 9, "venue": "Kew"}}"#,
    )
    .unwrap();
}

#[test]
fn both_kinds_are_registered() {
    let kinds: Vec<_> = vowguard_core::registry::connectors()
        .into_iter()
        .filter(|f| f.role() == Role::Enricher)
        .map(|f| f.kind)
        .collect();
    assert!(kinds.contains(&"wedding_context"), "{kinds:?}");
    assert!(kinds.contains(&"attack_patterns"), "{kinds:?}");
}

#[tokio::test]
async fn file_provider_from_config_relative_to_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    write_weddings(dir.path());
    let e = build(
        "wedding_context",
        dir.path(),
        r#"
        provider = "file"
        path = "weddings.json"
        week_of_days = 10
        hemisphere = "southern"
        "#,
    )
    .unwrap();
    assert_eq!(e.kind(), "wedding_context");
    let mut event = Event::new(Category::DataExport, "guest_list.export", Severity::High);
    event.wedding_id = Some("w-2026-0620".into());
    event.timestamp = at("2026-06-11T12:00:00Z"); // 9 days before
    let w = e.enrich(&event).await.unwrap().wedding.unwrap();
    assert_eq!(w.phase, WeddingPhase::WeekOf);
    assert_eq!(w.season, vowguard_core::Season::Winter);
    assert_eq!(w.guest_count, Some(142));
}

#[tokio::test]
async fn http_provider_from_config_with_secret_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/weddings/w-1"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "date": "2026-06-20", "timezone": "Australia/Sydney"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let e = build(
        "wedding_context",
        dir.path(),
        &format!(
            r#"
            provider = "http"
            base_url = "{}/v1"
            token = {{ env = "WEDDING_API_TOKEN" }}
            cache_ttl = "1m"
            timeout = "2s"
            "#,
            server.uri()
        ),
    )
    .unwrap();
    assert!(!format!("{e:?}").contains(TOKEN), "{e:?}");
    assert_eq!(e.timeout(), std::time::Duration::from_millis(2_250));
    let mut event = Event::new(Category::Authentication, "login", Severity::Low);
    event.wedding_id = Some("w-1".into());
    // 23:30 UTC Friday is Saturday morning in Sydney.
    event.timestamp = at("2026-06-19T23:30:00Z");
    for _ in 0..2 {
        let w = e.enrich(&event).await.unwrap().wedding.unwrap();
        assert_eq!(w.phase, WeddingPhase::DayOf);
    }
}

#[test]
fn wedding_context_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write_weddings(dir.path());
    std::fs::write(
        dir.path().join("broken.json"),
        "[\n  {\"wedding_id\": \"x\",\n",
    )
    .unwrap();
    let cases = [
        (
            "provider = \"file\"",
            "`enrichers.wed.path`: provider = \"file\" needs `path`",
        ),
        (
            "provider = \"http\"",
            "`enrichers.wed.base_url`: provider = \"http\" needs `base_url`",
        ),
        (
            "provider = \"file\"\npath = \"weddings.json\"\nbase_url = \"http://x\"",
            "`enrichers.wed.base_url`: only used with provider = \"http\"",
        ),
        (
            "provider = \"file\"\npath = \"absent.json\"",
            "`enrichers.wed.path`: cannot read wedding file",
        ),
        (
            "provider = \"file\"\npath = \"broken.json\"",
            "broken.json`: invalid JSON at line 3",
        ),
        (
            "provider = \"ftp\"",
            "`enrichers.wed.provider`: unknown variant `ftp`",
        ),
        (
            "provider = \"file\"\npath = \"weddings.json\"\nhemisphere = \"eastern\"",
            "unknown variant `eastern`",
        ),
        (
            "provider = \"file\"\npath = \"weddings.json\"\nweek_of_days = 400",
            "`enrichers.wed.week_of_days`: must be at most 366",
        ),
        (
            "provider = \"http\"\nbase_url = \"ftp://x\"",
            "scheme must be http or https",
        ),
        (
            "provider = \"file\"\npath = \"weddings.json\"\ncolour = 1",
            "unknown field `colour`",
        ),
        (
            "provider = \"http\"\nbase_url = \"http://x\"\ntoken = \"inline\"",
            "inline secrets are not accepted",
        ),
        (
            "provider = \"http\"\nbase_url = \"http://x\"\ntoken = { env = \"MISSING_VAR\" }",
            "enrichers.wed.token",
        ),
    ];
    for (text, expected) in cases {
        let e = build("wedding_context", dir.path(), text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{text}");
        assert!(e.to_string().contains(expected), "{text}: {e}");
    }
}

#[test]
fn attack_patterns_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[rules.guest_list_scrapping]\nthreshold = 3",
            "`enrichers.wed.rules`: unknown rule `guest_list_scrapping`; known rules:",
        ),
        (
            "[rules.guest_list_scraping]\nthreshold = 0",
            "`enrichers.wed.rules.guest_list_scraping.threshold`: must be at least 1",
        ),
        (
            "[rules.guest_list_scraping]\nlimit = 3",
            "unknown field `limit`",
        ),
        (
            "max_keys = 0",
            "`enrichers.wed.max_keys`: must be at least 1",
        ),
    ];
    for (text, expected) in cases {
        let e = build("attack_patterns", dir.path(), text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{text}");
        assert!(e.to_string().contains(expected), "{text}: {e}");
    }
}

#[tokio::test]
async fn attack_patterns_from_config_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let e = build(
        "attack_patterns",
        dir.path(),
        r#"
        max_keys = 1000
        [rules.failed_login_brute_force]
        threshold = 2
        window = "30s"
        [rules.photographer_portfolio_theft]
        enabled = false
        "#,
    )
    .unwrap();
    assert_eq!(e.kind(), "attack_patterns");
    let mut login = Event::new(Category::Authentication, "login", Severity::Low);
    login.outcome = Outcome::Failure;
    login.user_id = Some("couple-3".into());
    login.timestamp = at("2026-06-20T09:00:00Z");
    assert!(e.enrich(&login).await.unwrap().patterns.is_empty());
    login.timestamp += TimeDelta::seconds(29);
    let out = e.enrich(&login).await.unwrap();
    assert_eq!(out.patterns.len(), 1);
    assert_eq!(out.patterns[0].indicators[1], "count=2 in 30s");
}

/// The wedding-day scenario: a guest-list scraper on the day of a wedding. The last event
/// comes out with wedding phase `day_of` and a `guest_list_scraping` match.
#[tokio::test]
async fn wedding_day_scenario() {
    let dir = tempfile::tempdir().unwrap();
    write_weddings(dir.path());
    let context = build(
        "wedding_context",
        dir.path(),
        "provider = \"file\"\npath = \"weddings.json\"",
    )
    .unwrap();
    let patterns = build("attack_patterns", dir.path(), "").unwrap();
    let start = at("2026-06-20T08:00:00Z"); // 09:00 BST on the wedding day
    let mut last = Enrichment::default();
    for i in 0..5 {
        let mut e = Event::new(Category::DataExport, "guest_list.export", Severity::High);
        e.user_id = Some("planner-17".into());
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.wedding_id = Some(if i == 4 {
            "w-2026-0620".into()
        } else {
            format!("w-other-{i}")
        });
        e.record_count = Some(40);
        e.timestamp = start + TimeDelta::minutes(i);
        let mut enrichment = context.enrich(&e).await.unwrap();
        enrichment.merge(patterns.enrich(&e).await.unwrap());
        last = enrichment;
    }
    let wedding = last.wedding.expect("wedding context");
    assert_eq!(wedding.phase, WeddingPhase::DayOf);
    assert_eq!(wedding.days_until, 0);
    assert_eq!(last.patterns.len(), 1);
    let m = &last.patterns[0];
    assert_eq!(m.pattern, "guest_list_scraping");
    assert_eq!(m.confidence, 0.5);
    assert_eq!(
        m.indicators,
        [
            "user_id=planner-17",
            "distinct_weddings=5 in 3600s",
            "source_ip=203.0.113.7",
            "distinct_weddings=5 in 3600s"
        ]
    );
}

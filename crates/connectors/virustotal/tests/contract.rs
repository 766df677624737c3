//! Contract tests against a wiremock VirusTotal on loopback.

use std::path::Path;
use std::time::Duration;

use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Builder, Category, Enricher, ErrorKind, Event, RateLimit, Role, SecretMap,
    SecretRef, Severity, Verdict,
};
use vowguard_enrich::{Indicator, IndicatorKind, ReputationProvider, ThreatEnricher};
use vowguard_virustotal::testing::url_id;
use vowguard_virustotal::{KIND, VirusTotalConfig, VirusTotalProvider};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "vt-test-key-fedcba9876543210";
const HASH: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
const URL: &str = "http://evil.example/wedding/rsvp?token=abc";

const IP_MALICIOUS: &str = r#"{"data":{"id":"203.0.113.7","type":"ip_address","links":{"self":"x"},
  "attributes":{"as_owner":"Example Hosting","asn":64500,"country":"NL","reputation":-12,
  "tags":["scanner"],"last_analysis_date":1781900000,
  "last_analysis_stats":{"harmless":60,"malicious":4,"suspicious":0,"undetected":25,"timeout":0}}}}"#;

const DOMAIN_SUSPICIOUS: &str = r#"{"data":{"id":"evil.example","type":"domain",
  "attributes":{"last_analysis_stats":{"harmless":70,"malicious":1,"suspicious":1,"undetected":20,"timeout":0},
  "tags":["dga"],"reputation":0}}}"#;

const URL_CLEAN: &str = r#"{"data":{"type":"url","attributes":{"first_submission_date":1700000000,
  "last_submission_date":1781000000,"last_analysis_stats":{"harmless":80,"malicious":0,"suspicious":0,"undetected":10,"timeout":1}}}}"#;

const NOT_FOUND: &str =
    r#"{"error":{"code":"NotFoundError","message":"File \"275a021b\" not found"}}"#;

fn config(server: &MockServer) -> VirusTotalConfig {
    let mut c = VirusTotalConfig::new(SecretRef::Env("VT_API_KEY".into()));
    c.base_url = Some(server.uri());
    // Tests make more than the public quota's 4 lookups a minute.
    c.limits.rate = Some(RateLimit {
        per_second: 1000.0,
        burst: 1000,
    });
    c
}

fn key() -> SecretString {
    SecretString::from(KEY)
}

fn build(server: &MockServer) -> ThreatEnricher<VirusTotalProvider> {
    config(server).into_builder(key()).build().unwrap()
}

fn event(ip: &str) -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::High);
    e.source_ip = Some(ip.parse().unwrap());
    e
}

async fn mock_get(server: &MockServer, p: &str, response: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("x-apikey", KEY))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

fn ok(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(body)
}

#[tokio::test]
async fn looks_up_every_kind_with_the_documented_requests() {
    let server = MockServer::start().await;
    let url_path = format!("/api/v3/urls/{}", url_id(URL));
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ok(IP_MALICIOUS),
        1,
    )
    .await;
    mock_get(
        &server,
        "/api/v3/domains/evil.example",
        ok(DOMAIN_SUSPICIOUS),
        1,
    )
    .await;
    mock_get(&server, &url_path, ok(URL_CLEAN), 1).await;
    mock_get(
        &server,
        &format!("/api/v3/files/{HASH}"),
        ResponseTemplate::new(404).set_body_string(NOT_FOUND),
        1,
    )
    .await;
    let mut ev = event("203.0.113.7");
    ev.domain = Some("Evil.Example.".into());
    ev.url = Some(URL.into());
    ev.file_hash = Some(HASH.to_ascii_uppercase());
    let threat = build(&server).enrich(&ev).await.unwrap().threat.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.method.as_str(), "GET");
        assert_eq!(r.url.query(), None);
        assert_eq!(r.headers.get("x-apikey").unwrap(), KEY);
        assert_eq!(r.headers.get("accept").unwrap(), "application/json");
    }
    assert!(requests.iter().any(|r| r.url.path() == url_path));
    assert_eq!(
        url_path,
        "/api/v3/urls/aHR0cDovL2V2aWwuZXhhbXBsZS93ZWRkaW5nL3JzdnA_dG9rZW49YWJj"
    );

    // 4 malicious engines on the IP: malicious, 100; the domain suspicious; the URL
    // benign; the file unknown (404).
    assert_eq!((threat.verdict, threat.score), (Verdict::Malicious, 100));
    let verdicts: Vec<(&str, Verdict, Option<u8>)> = threat
        .providers
        .iter()
        .map(|p| (p.indicator.as_str(), p.verdict, p.score))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("203.0.113.7", Verdict::Malicious, Some(100)),
            ("evil.example", Verdict::Suspicious, Some(38)),
            (URL, Verdict::Benign, Some(0)),
            (HASH, Verdict::Unknown, None),
        ]
    );
    assert!(threat.providers.iter().all(|p| p.provider == "virustotal"));
    assert_eq!(threat.categories, ["scanner", "dga"]);
    assert_eq!(threat.first_seen.unwrap().timestamp(), 1_700_000_000);
    assert_eq!(threat.last_seen.unwrap().timestamp(), 1_781_900_000);
}

#[tokio::test]
async fn not_found_is_unknown_and_cached() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/ip_addresses/198.51.100.9",
        ResponseTemplate::new(404).set_body_string(NOT_FOUND),
        1,
    )
    .await;
    let e = build(&server);
    for _ in 0..2 {
        let threat = e
            .enrich(&event("198.51.100.9"))
            .await
            .unwrap()
            .threat
            .unwrap();
        assert_eq!((threat.verdict, threat.score), (Verdict::Unknown, 0));
    }
    assert_eq!(e.cache_stats().negative_hits, 1);
}

#[tokio::test]
async fn a_404_that_is_not_virustotal_is_an_error() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/ip_addresses/198.51.100.9",
        ResponseTemplate::new(404).set_body_string("<html>no such page</html>"),
        1,
    )
    .await;
    let err = build(&server)
        .enrich(&event("198.51.100.9"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn same_indicator_twice_makes_one_request() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ok(IP_MALICIOUS),
        1,
    )
    .await;
    let e = build(&server);
    let first = e.enrich(&event("203.0.113.7")).await.unwrap();
    let second = e.enrich(&event("203.0.113.7")).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(e.cache_stats().hits, 1);
}

#[tokio::test]
async fn unauthorized_never_shows_the_key() {
    let server = MockServer::start().await;
    let body = r#"{"error":{"code":"WrongCredentialsError","message":"Wrong API key"}}"#;
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ResponseTemplate::new(401).set_body_string(body),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("WrongCredentialsError: Wrong API key"),
        "{text}"
    );
    assert!(
        text.starts_with("virustotal: VirusTotal lookup of ip 203.0.113.7"),
        "{text}"
    );
    assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
    assert!(!format!("{e:?}").contains(KEY));
}

#[tokio::test]
async fn quota_exceeded_is_rate_limited_for_a_minute() {
    let server = MockServer::start().await;
    let body = r#"{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}"#;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_string(body))
        .expect(1)
        .mount(&server)
        .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert!(err.to_string().contains("QuotaExceededError"), "{err}");
    // Within the pause, no request is made.
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.retry_after().unwrap() <= Duration::from_secs(60));
}

#[tokio::test]
async fn server_errors_are_retryable_and_not_cached() {
    let server = MockServer::start().await;
    let body = r#"{"error":{"code":"TransientError","message":"try again"}}"#;
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ResponseTemplate::new(503).set_body_string(body),
        2,
    )
    .await;
    let e = build(&server);
    for _ in 0..2 {
        let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ok(IP_MALICIOUS).set_delay(Duration::from_secs(10)),
        1,
    )
    .await;
    let mut c = config(&server);
    c.limits.timeout = Some(std::time::Duration::from_millis(150));
    let err = c
        .into_builder(key())
        .build()
        .unwrap()
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn malformed_answers_are_clear_errors() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ok("{\"data\": {\"attributes\": {\"last_analysis_stats\": \"lots\"}}}"),
        1,
    )
    .await;
    let err = build(&server)
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("unreadable VirusTotal response"),
        "{err}"
    );
}

#[tokio::test]
async fn errors_about_urls_do_not_print_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string(r#"{"error":{"code":"InvalidArgumentError","message":"bad id"}}"#),
        )
        .mount(&server)
        .await;
    let mut ev = Event::new(Category::Network, "click", Severity::Low);
    ev.url = Some(URL.into());
    let err = build(&server).enrich(&ev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(!err.to_string().contains("token=abc"), "{err}");
}

#[tokio::test]
async fn not_a_hash_is_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(IP_MALICIOUS))
        .expect(0)
        .mount(&server)
        .await;
    let e = build(&server);
    let err = e
        .provider()
        .lookup(&Indicator::new(IndicatorKind::FileHash, "../../etc/passwd"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // Events with nothing to look up (private address, no observables) ask nothing.
    assert!(e.enrich(&event("10.0.0.1")).await.unwrap().is_empty());
}

#[tokio::test]
async fn default_quota_holds_the_fifth_lookup_until_the_enricher_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(IP_MALICIOUS))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.limits.rate = None; // back to the default: 4 a minute
    let e = c.into_builder(key()).build().unwrap();
    for n in 1..=4 {
        e.enrich(&event(&format!("203.0.113.{n}"))).await.unwrap();
    }
    let fifth = tokio::time::timeout(e.timeout(), e.enrich(&event("203.0.113.5"))).await;
    assert!(fifth.is_err(), "the fifth lookup must wait for the quota");
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

fn ctx<'a>(secrets: &'a SecretMap) -> BuildContext<'a> {
    BuildContext {
        id: "vt",
        role: Role::Enricher,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    }
}

fn build_fn() -> vowguard_core::registry::EnricherBuildFn {
    match vowguard_core::registry::find(Role::Enricher, KIND)
        .unwrap()
        .builder
    {
        Builder::Enricher(build) => build,
        _ => panic!("virustotal is registered as an enricher"),
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/ip_addresses/203.0.113.7",
        ok(IP_MALICIOUS),
        1,
    )
    .await;
    let secrets = SecretMap::new().with("VT_API_KEY", KEY);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "api_key = {{ env = \"VT_API_KEY\" }}\nbase_url = \"{}\"",
        server.uri()
    ))
    .unwrap();
    let e = build_fn()(&ctx(&secrets), table).unwrap();
    assert_eq!(e.kind(), "virustotal");
    assert_eq!(e.timeout(), Duration::from_millis(3_500));
    assert!(!format!("{e:?}").contains(KEY));
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    let err = e.enrich(&event("203.0.113.99")).await.unwrap_err();
    assert!(err.to_string().starts_with("vt: "), "{err}");
}

#[test]
fn config_errors_name_the_key() {
    let secrets = SecretMap::new().with("VT_API_KEY", KEY);
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"VT_API_KEY\" }\napikey = \"x\"").unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        text.contains("enrichers.vt") && text.contains("apikey"),
        "{text}"
    );
    let table: vowguard_core::ComponentConfig = toml::from_str("base_url = \"http://x\"").unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(text.contains("api_key"), "{text}");
}

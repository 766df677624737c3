//! Contract tests against a wiremock AlienVault OTX on loopback.

use std::path::Path;
use std::time::Duration;

use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Builder, Category, Enricher, ErrorKind, Event, Role, SecretMap, SecretRef,
    Severity, Verdict,
};
use vowguard_enrich::ThreatEnricher;
use vowguard_otx::{KIND, OtxConfig, OtxProvider};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "otx-test-key-00112233445566778899aabbccddeeff";
const HASH: &str = "44d88612fea8a8f36de82e1278abb02f";

const IP_PULSES: &str = r#"{
  "whois": "http://whois.domaintools.com/203.0.113.7", "reputation": 0, "indicator": "203.0.113.7",
  "type": "IPv4", "type_title": "IPv4",
  "base_indicator": {"id": 1, "indicator": "203.0.113.7", "type": "IPv4"},
  "pulse_info": {
    "count": 4,
    "pulses": [
      {"id": "a1", "name": "Wedding-season credential stuffing", "created": "2026-05-02T09:00:00.000000",
       "modified": "2026-06-18T17:45:10.512000", "tags": ["credential stuffing", "bruteforce"],
       "adversary": "", "malware_families": [], "TLP": "green"},
      {"id": "a2", "name": "APT28 infrastructure", "created": "2025-11-30T12:00:00",
       "modified": "2026-01-15T08:00:00", "tags": ["apt", "bruteforce"], "adversary": "APT 28",
       "malware_families": [{"id": "X-Agent", "display_name": "X-Agent", "target": null}], "TLP": "amber"},
      {"id": "a3", "name": "Scanner list", "created": "2026-03-03T03:03:03", "modified": "2026-03-04T03:03:03",
       "tags": ["scanner"], "adversary": "", "TLP": "white"}
    ],
    "references": [],
    "related": {"alienvault": {"adversary": [], "malware_families": [], "industries": []},
                "other": {"adversary": ["APT 28"], "malware_families": ["X-Agent"], "industries": []}}
  },
  "false_positive": [], "validation": [], "asn": "AS64500 Example", "country_code": "NL"
}"#;

const NO_PULSES: &str = r#"{"indicator": "198.51.100.9", "type": "IPv4", "reputation": 0,
  "pulse_info": {"count": 0, "pulses": [], "references": [], "related": {}},
  "false_positive": [], "validation": []}"#;

const WHITELISTED: &str = r#"{"indicator": "example.org", "type": "domain",
  "pulse_info": {"count": 12, "pulses": [{"name": "refs", "tags": ["phishing"], "adversary": "Nobody"}]},
  "validation": [{"source": "whitelist", "message": "Whitelisted domain example.org", "name": "Whitelisted domain"}]}"#;

fn config(server: &MockServer) -> OtxConfig {
    let mut c = OtxConfig::new(SecretRef::Env("OTX_API_KEY".into()));
    c.base_url = Some(server.uri());
    c
}

fn key() -> SecretString {
    SecretString::from(KEY)
}

fn build(server: &MockServer) -> ThreatEnricher<OtxProvider> {
    config(server).into_builder(key()).build().unwrap()
}

fn event(ip: &str) -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::High);
    e.source_ip = Some(ip.parse().unwrap());
    e
}

fn ok(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(body)
}

async fn mock_get(server: &MockServer, p: &str, response: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("x-otx-api-key", KEY))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn pulses_give_verdict_actors_categories_and_tlp() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ok(IP_PULSES),
        1,
    )
    .await;
    let threat = build(&server)
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method.as_str(), "GET");
    assert_eq!(r.url.query(), None);
    assert_eq!(r.headers.get("x-otx-api-key").unwrap(), KEY);
    assert_eq!(r.headers.get("accept").unwrap(), "application/json");

    assert_eq!((threat.verdict, threat.score), (Verdict::Malicious, 100));
    assert_eq!(threat.actors, ["APT 28"]);
    assert_eq!(
        threat.categories,
        [
            "bruteforce",
            "credential-stuffing",
            "apt",
            "x-agent",
            "scanner"
        ]
    );
    assert_eq!(threat.tlp.as_deref(), Some("tlp:amber"));
    assert_eq!(
        threat.first_seen.unwrap().to_rfc3339(),
        "2025-11-30T12:00:00+00:00"
    );
    assert_eq!(
        threat.last_seen.unwrap().to_rfc3339(),
        "2026-06-18T17:45:10.512+00:00"
    );
    assert_eq!(threat.providers.len(), 1);
    assert_eq!(threat.providers[0].provider, "otx");
}

#[tokio::test]
async fn every_indicator_kind_uses_its_section() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(NO_PULSES))
        .expect(5)
        .mount(&server)
        .await;
    let e = build(&server);
    let mut ev = event("2001:db8::7");
    ev.domain = Some("Login.Example.org".into());
    ev.url = Some("https://evil.example/a b?x=1#frag".into());
    ev.file_hash = Some(HASH.into());
    e.enrich(&ev).await.unwrap();
    let mut ev = Event::new(Category::Network, "dns", Severity::Low);
    ev.domain = Some("example.org".into());
    e.enrich(&ev).await.unwrap();
    let mut paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v1/indicators/IPv6/2001:db8::7/general",
            "/api/v1/indicators/domain/example.org/general",
            &format!("/api/v1/indicators/file/{HASH}/general"),
            "/api/v1/indicators/hostname/login.example.org/general",
            "/api/v1/indicators/url/https:%2F%2Fevil.example%2Fa%20b%3Fx%3D1%23frag/general",
        ]
    );
}

#[tokio::test]
async fn no_pulses_and_404_are_unknown_and_cached() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/198.51.100.9/general",
        ok(NO_PULSES),
        1,
    )
    .await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/198.51.100.10/general",
        ResponseTemplate::new(404).set_body_string(r#"{"detail": "Not found."}"#),
        1,
    )
    .await;
    let e = build(&server);
    for ip in [
        "198.51.100.9",
        "198.51.100.10",
        "198.51.100.9",
        "198.51.100.10",
    ] {
        let threat = e.enrich(&event(ip)).await.unwrap().threat.unwrap();
        assert_eq!(
            (threat.verdict, threat.score),
            (Verdict::Unknown, 0),
            "{ip}"
        );
        assert_eq!(threat.providers[0].verdict, Verdict::Unknown);
    }
    assert_eq!(e.cache_stats().negative_hits, 2);
}

#[tokio::test]
async fn whitelisted_indicator_is_benign() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/domain/example.org/general",
        ok(WHITELISTED),
        1,
    )
    .await;
    let mut ev = Event::new(Category::Network, "dns", Severity::Low);
    ev.domain = Some("example.org".into());
    let threat = build(&server).enrich(&ev).await.unwrap().threat.unwrap();
    assert_eq!((threat.verdict, threat.score), (Verdict::Benign, 0));
    assert!(threat.actors.is_empty() && threat.categories.is_empty());
}

#[tokio::test]
async fn same_indicator_twice_makes_one_request() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ok(IP_PULSES),
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
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ResponseTemplate::new(403).set_body_string(r#"{"detail": "Invalid API key"}"#),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("Invalid API key"), "{text}");
    assert!(
        text.starts_with("otx: OTX IPv4 lookup of 203.0.113.7"),
        "{text}"
    );
    assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
    assert!(!format!("{e:?}").contains(KEY));
}

#[tokio::test]
async fn rate_limited_carries_retry_after_and_pauses_lookups() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_string(r#"{"detail": "Request was throttled."}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(err.to_string().contains("throttled"), "{err}");
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn server_errors_and_bad_requests() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ResponseTemplate::new(502),
        1,
    )
    .await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.8/general",
        ResponseTemplate::new(400).set_body_string(r#"{"detail": "Invalid indicator"}"#),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("Invalid indicator"), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ok(IP_PULSES).set_delay(Duration::from_secs(10)),
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
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ok(r#"{"pulse_info": {"count": 2, "pulses": "many"}}"#),
        1,
    )
    .await;
    let err = build(&server)
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("unreadable OTX response"), "{err}");
}

#[tokio::test]
async fn partial_failure_keeps_the_other_answers() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ok(IP_PULSES),
        1,
    )
    .await;
    mock_get(
        &server,
        "/api/v1/indicators/domain/evil.example/general",
        ResponseTemplate::new(500),
        1,
    )
    .await;
    let mut ev = event("203.0.113.7");
    ev.domain = Some("evil.example".into());
    let threat = build(&server).enrich(&ev).await.unwrap().threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    assert_eq!(threat.providers.len(), 1);
}

fn ctx<'a>(secrets: &'a SecretMap) -> BuildContext<'a> {
    BuildContext {
        id: "pulses",
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
        _ => panic!("otx is registered as an enricher"),
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v1/indicators/IPv4/203.0.113.7/general",
        ok(IP_PULSES),
        1,
    )
    .await;
    let secrets = SecretMap::new().with("OTX_API_KEY", KEY);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "api_key = {{ env = \"OTX_API_KEY\" }}\nbase_url = \"{}\"\ncache = {{ ttl = \"1m\" }}",
        server.uri()
    ))
    .unwrap();
    let e = build_fn()(&ctx(&secrets), table).unwrap();
    assert_eq!(e.kind(), "otx");
    assert_eq!(e.timeout(), Duration::from_millis(3_500));
    assert!(!format!("{e:?}").contains(KEY));
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.actors, ["APT 28"]);
}

#[test]
fn config_errors_name_the_key() {
    let secrets = SecretMap::new().with("OTX_API_KEY", KEY);
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"OTX_API_KEY\" }\ncache = { ttl = 5 }").unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        text.contains("enrichers.pulses") && text.contains("ttl"),
        "{text}"
    );
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"NOPE\" }").unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(text.contains("enrichers.pulses.api_key"), "{text}");
}

/// A URL with CR/LF (and every other reserved character) is looked up as itself, one
/// percent-encoded path segment, and the verdict is recorded against that same URL.
#[tokio::test]
async fn a_url_with_line_breaks_is_looked_up_as_itself() {
    let server = MockServer::start().await;
    let url = "https://evil.example/a\r\nb/c?d=1&e=%41#f";
    Mock::given(method("GET"))
        .respond_with(ok(IP_PULSES))
        .expect(1)
        .mount(&server)
        .await;
    let mut ev = Event::new(Category::Network, "http", Severity::Low);
    ev.url = Some(url.into());
    let threat = build(&server).enrich(&ev).await.unwrap().threat.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].url.path(),
        "/api/v1/indicators/url/https:%2F%2Fevil.example%2Fa%0D%0Ab%2Fc%3Fd%3D1%26e%3D%2541%23f/general"
    );
    assert_eq!(threat.providers.len(), 1);
    assert_eq!(threat.providers[0].indicator, url);
}

//! Contract tests against a wiremock Recorded Future Connect API on loopback.

use std::path::Path;
use std::time::Duration;

use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Builder, Category, Enricher, ErrorKind, Event, Role, SecretMap, SecretRef,
    Severity, Verdict,
};
use vowguard_enrich::ThreatEnricher;
use vowguard_recorded_future::{KIND, RecordedFutureConfig, RecordedFutureProvider};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "rf-test-token-00112233445566778899aabbccddeeff";
const HASH: &str = "44d88612fea8a8f36de82e1278abb02f";

const MALICIOUS_IP: &str = r#"{
  "data": {
    "entity": {"id": "ip:203.0.113.7", "name": "203.0.113.7", "type": "IpAddress"},
    "risk": {
      "criticalityLabel": "Very Malicious", "score": 94, "criticality": 4, "rules": 3,
      "riskString": "3/64", "riskSummary": "3 of 64 Risk Rules currently observed.",
      "evidenceDetails": [
        {"rule": "Historical Brute Force", "criticality": 2, "criticalityLabel": "Suspicious",
         "evidenceString": "Wedding-season credential stuffing", "timestamp": "2026-05-02T09:00:00.000Z", "mitigationString": ""},
        {"rule": "Current C&C Server", "criticality": 4, "criticalityLabel": "Very Malicious",
         "evidenceString": "Cobalt Strike team server", "timestamp": "2026-06-18T17:45:10.512Z", "mitigationString": ""},
        {"rule": "Threat Actor Used Infrastructure", "criticality": 3, "criticalityLabel": "Malicious",
         "evidenceString": "APT28", "timestamp": "2026-01-15T08:00:00.000Z", "mitigationString": ""}
      ]
    },
    "timestamps": {"firstSeen": "2025-11-30T12:00:00.000Z", "lastSeen": "2026-06-18T17:45:10.512Z"}
  },
  "metadata": {"entries": []}
}"#;

const NO_RISK: &str = r#"{"data": {"entity": {"id": "ip:198.51.100.9", "name": "198.51.100.9", "type": "IpAddress"},
  "risk": {"criticalityLabel": "None", "score": 0, "criticality": 0, "rules": 0, "riskString": "0/64",
           "riskSummary": "No Risk Rules are currently observed.", "evidenceDetails": []},
  "timestamps": {"firstSeen": "2020-01-01T00:00:00.000Z", "lastSeen": "2026-01-01T00:00:00.000Z"}}}"#;

const SUSPICIOUS_DOMAIN: &str = r#"{"data": {"risk": {"score": 45, "criticality": 2,
  "evidenceDetails": [{"rule": "Recent Typosquat Similarity - DNS Sandwich", "criticality": 2}]}}}"#;

fn config(server: &MockServer) -> RecordedFutureConfig {
    let mut c = RecordedFutureConfig::new(SecretRef::Env("RF_API_TOKEN".into()));
    c.base_url = Some(server.uri());
    c
}

fn token() -> SecretString {
    SecretString::from(TOKEN)
}

fn build(server: &MockServer) -> ThreatEnricher<RecordedFutureProvider> {
    config(server).into_builder(token()).build().unwrap()
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
        .and(query_param("fields", "entity,risk,timestamps"))
        .and(header("x-rftoken", TOKEN))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn risk_gives_verdict_score_categories_and_dates() {
    let server = MockServer::start().await;
    mock_get(&server, "/v2/ip/203.0.113.7", ok(MALICIOUS_IP), 1).await;
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
    assert_eq!(r.url.query(), Some("fields=entity%2Crisk%2Ctimestamps"));
    // The exact authentication: the token, alone, in X-RFToken; nothing else carries it.
    assert_eq!(r.headers.get("x-rftoken").unwrap(), TOKEN);
    assert!(r.headers.get("authorization").is_none());
    assert_eq!(r.headers.get("accept").unwrap(), "application/json");

    // 94 (Very Malicious, 90..=99) -> 90 + (94 - 90) * 10 / 9 = 94.4 -> 94.
    assert_eq!((threat.verdict, threat.score), (Verdict::Malicious, 94));
    assert_eq!(threat.categories, ["c2", "threat-actor", "brute-force"]);
    assert_eq!(
        threat.first_seen.unwrap().to_rfc3339(),
        "2025-11-30T12:00:00+00:00"
    );
    assert_eq!(
        threat.last_seen.unwrap().to_rfc3339(),
        "2026-06-18T17:45:10.512+00:00"
    );
    assert_eq!(threat.providers.len(), 1);
    assert_eq!(threat.providers[0].provider, "recorded_future");
    assert_eq!(threat.providers[0].score, Some(94));
}

#[tokio::test]
async fn every_indicator_kind_uses_its_type() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(NO_RISK))
        .expect(4)
        .mount(&server)
        .await;
    let mut ev = event("2001:db8::7");
    ev.domain = Some("Login.Example.org".into());
    ev.url = Some("https://evil.example/a b?x=1#frag".into());
    ev.file_hash = Some(HASH.to_uppercase());
    build(&server).enrich(&ev).await.unwrap();
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
            "/v2/domain/login.example.org",
            &format!("/v2/hash/{HASH}"),
            "/v2/ip/2001:db8::7",
            "/v2/url/https:%2F%2Fevil.example%2Fa%20b%3Fx%3D1%23frag",
        ]
    );
}

#[tokio::test]
async fn suspicious_domain() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/v2/domain/weddingz.example",
        ok(SUSPICIOUS_DOMAIN),
        1,
    )
    .await;
    let mut ev = Event::new(Category::Network, "dns", Severity::Low);
    ev.domain = Some("weddingz.example".into());
    let threat = build(&server).enrich(&ev).await.unwrap().threat.unwrap();
    assert_eq!((threat.verdict, threat.score), (Verdict::Suspicious, 50));
    assert_eq!(threat.categories, ["typosquat"]);
}

#[tokio::test]
async fn no_risk_and_404_are_unknown_and_cached() {
    let server = MockServer::start().await;
    mock_get(&server, "/v2/ip/198.51.100.9", ok(NO_RISK), 1).await;
    mock_get(
        &server,
        "/v2/ip/198.51.100.10",
        ResponseTemplate::new(404)
            .set_body_string(r#"{"error": {"status": 404, "message": "Not found"}}"#),
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
async fn same_indicator_twice_makes_one_request() {
    let server = MockServer::start().await;
    mock_get(&server, "/v2/ip/203.0.113.7", ok(MALICIOUS_IP), 1).await;
    let e = build(&server);
    let first = e.enrich(&event("203.0.113.7")).await.unwrap();
    let second = e.enrich(&event("203.0.113.7")).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(e.cache_stats().hits, 1);
}

#[tokio::test]
async fn unauthorized_names_the_connector_never_the_token() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/v2/ip/203.0.113.7",
        ResponseTemplate::new(401).set_body_string(format!(
            r#"{{"error": {{"status": 401, "message": "Invalid token {TOKEN}"}}}}"#
        )),
        1,
    )
    .await;
    mock_get(
        &server,
        "/v2/ip/203.0.113.8",
        ResponseTemplate::new(403).set_body_string(
            r#"{"error": {"status": 403, "message": "Token lacks the IP lookup module"}}"#,
        ),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.starts_with("recorded_future: Recorded Future ip lookup of 203.0.113.7"),
        "{text}"
    );
    assert!(text.contains("Invalid token"), "{text}");
    assert!(!text.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
    assert!(!format!("{e:?}").contains(TOKEN));
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.to_string().contains("lacks the IP lookup module"),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limited_carries_retry_after_and_pauses_lookups() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_string(r#"{"error": {"status": 429, "message": "Too many requests"}}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(err.to_string().contains("Too many requests"), "{err}");
    // Paused: another indicator fails fast without a request (expect(1) above).
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.retry_after().unwrap() <= Duration::from_secs(30));
}

#[tokio::test]
async fn server_errors_are_retryable_and_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/ip/203.0.113.7"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mock_get(&server, "/v2/ip/203.0.113.7", ok(MALICIOUS_IP), 1).await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    // The failure was not cached: the retry asks again and gets the answer.
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
}

#[tokio::test]
async fn bad_requests_are_rejected() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/v2/hash/44d88612fea8a8f36de82e1278abb02f",
        ResponseTemplate::new(400)
            .set_body_string(r#"{"error": {"status": 400, "message": "Invalid hash"}}"#),
        1,
    )
    .await;
    let mut ev = Event::new(Category::Malware, "file", Severity::Low);
    ev.file_hash = Some(HASH.into());
    let err = build(&server).enrich(&ev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("Invalid hash"), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/v2/ip/203.0.113.7",
        ok(MALICIOUS_IP).set_delay(Duration::from_secs(10)),
        1,
    )
    .await;
    let mut c = config(&server);
    c.limits.timeout = Some(std::time::Duration::from_millis(150));
    let err = c
        .into_builder(token())
        .build()
        .unwrap()
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn malformed_and_oversized_answers_are_clear_errors() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/v2/ip/203.0.113.7",
        ok(r#"{"data": {"risk": {"score": 50, "evidenceDetails": "many"}}}"#),
        1,
    )
    .await;
    // A 2 MiB answer is cut at 1 MiB: it no longer parses, and memory stays bounded.
    let huge = format!(
        r#"{{"data": {{"risk": {{"score": 50}}, "pad": "{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    mock_get(&server, "/v2/ip/203.0.113.8", ok(&huge), 1).await;
    let e = build(&server);
    for ip in ["203.0.113.7", "203.0.113.8"] {
        let err = e.enrich(&event(ip)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{ip}");
        assert!(
            err.to_string()
                .contains("unreadable Recorded Future response"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn partial_failure_keeps_the_other_answers() {
    let server = MockServer::start().await;
    mock_get(&server, "/v2/ip/203.0.113.7", ok(MALICIOUS_IP), 1).await;
    mock_get(
        &server,
        "/v2/domain/evil.example",
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
        id: "rf",
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
        _ => panic!("recorded_future is registered as an enricher"),
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mock_get(&server, "/v2/ip/203.0.113.7", ok(MALICIOUS_IP), 1).await;
    let secrets = SecretMap::new().with("RF_API_TOKEN", TOKEN);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "api_token = {{ env = \"RF_API_TOKEN\" }}\nbase_url = \"{}\"\ncache = {{ ttl = \"1m\" }}",
        server.uri()
    ))
    .unwrap();
    let e = build_fn()(&ctx(&secrets), table).unwrap();
    assert_eq!(e.kind(), "recorded_future");
    assert_eq!(e.timeout(), Duration::from_millis(3_500));
    assert!(!format!("{e:?}").contains(TOKEN));
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
}

#[test]
fn config_errors_name_the_key() {
    let secrets = SecretMap::new().with("RF_API_TOKEN", TOKEN);
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_token = { env = \"RF_API_TOKEN\" }\ncache = { ttl = 5 }").unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        text.contains("enrichers.rf") && text.contains("ttl"),
        "{text}"
    );
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_token = { env = \"NOPE\" }").unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(text.contains("enrichers.rf.api_token"), "{text}");
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_token = { env = \"RF_API_TOKEN\" }\nbase_url = \"ftp://rf.example\"")
            .unwrap();
    let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(text.contains("base_url"), "{text}");
}

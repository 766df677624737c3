//! MISP contract tests against wiremock on loopback.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::json;
use vowguard_core::registry::find;
use vowguard_core::{
    BuildContext, Builder, Category, Enricher, ErrorKind, Event, Role, SecretMap, SecretRef,
    Severity, Verdict,
};
use vowguard_enrich::{Indicator, IndicatorKind, LimitsConfig, ReputationProvider};
use vowguard_misp::{MispConfig, MispEnricher};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "s3cr3t-misp-automation-key-0123456789";
const IP: &str = "203.0.113.7";

fn config(server: &MockServer) -> MispConfig {
    let mut c = MispConfig::new(server.uri(), SecretRef::Env("MISP_API_KEY".into()));
    c.limits = LimitsConfig::default().with_timeout(Some(std::time::Duration::from_millis(1_000)));
    c
}

fn enricher_with(c: &MispConfig) -> MispEnricher {
    c.clone()
        .into_builder(SecretString::from(KEY))
        .build()
        .unwrap()
}

fn enricher(server: &MockServer) -> MispEnricher {
    enricher_with(&config(server))
}

fn ip_event() -> Event {
    let mut e = Event::new(Category::Authentication, "login.failed", Severity::High);
    e.source_ip = Some(IP.parse().unwrap());
    e
}

fn search() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/attributes/restSearch"))
        .and(header("authorization", KEY))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json"))
}

fn attributes(list: serde_json::Value) -> ResponseTemplate {
    let mut body = json!({"response": {}});
    body["response"]["Attribute"] = list;
    ResponseTemplate::new(200).set_body_json(body)
}

fn hit() -> ResponseTemplate {
    attributes(json!([
        {"id": "12345", "event_id": "77", "category": "Network activity", "type": "ip-dst",
         "value": IP, "to_ids": true, "timestamp": "1617875568",
         "first_seen": null, "last_seen": null,
         "Event": {"id": "77", "info": "Credential stuffing against vendors"},
         "Tag": [{"id": "1", "name": "tlp:amber", "inherited": 1},
                 {"id": "2", "name": "misp-galaxy:threat-actor=\"APT 28\"", "inherited": 1},
                 {"name": "misp-galaxy:mitre-attack-pattern=\"Brute Force - T1110\""}]},
        {"id": "12399", "event_id": "80", "category": "Payload delivery", "type": "ip-src",
         "value": IP, "to_ids": false, "timestamp": "1600000000",
         "first_seen": "2020-01-01T00:00:00.000000+00:00", "last_seen": null,
         "Tag": [{"name": "tlp:green"}]}
    ]))
}

#[tokio::test]
async fn exact_request_per_indicator_kind() {
    let cases: Vec<(Indicator, serde_json::Value)> = vec![
        (
            Indicator::new(IndicatorKind::Ip, IP),
            json!(["ip-src", "ip-dst", "ip-src|port", "ip-dst|port"]),
        ),
        (
            Indicator::new(IndicatorKind::Domain, "evil.example"),
            json!(["domain", "hostname", "domain|ip"]),
        ),
        (
            Indicator::new(
                IndicatorKind::Url,
                "https://evil.example/login?next=/guests",
            ),
            json!(["url", "uri", "link"]),
        ),
        (
            Indicator::new(IndicatorKind::FileHash, "d".repeat(32)),
            json!(["md5"]),
        ),
        (
            Indicator::new(IndicatorKind::FileHash, "e".repeat(40)),
            json!(["sha1"]),
        ),
        (
            Indicator::new(IndicatorKind::FileHash, "f".repeat(64)),
            json!(["sha256"]),
        ),
    ];
    for (indicator, types) in cases {
        let server = MockServer::start().await;
        search()
            .and(body_json(json!({
                "returnFormat": "json",
                "value": indicator.value,
                "type": types,
                "includeEventTags": true,
                "limit": 50,
            })))
            .respond_with(attributes(json!([])))
            .expect(1)
            .mount(&server)
            .await;
        let e = enricher(&server);
        assert_eq!(
            e.provider().lookup(&indicator).await.unwrap(),
            None,
            "{indicator}"
        );
        server.verify().await;
    }
}

#[tokio::test]
async fn exact_body_bytes_and_no_auth_scheme() {
    let server = MockServer::start().await;
    search()
        .respond_with(attributes(json!([])))
        .mount(&server)
        .await;
    enricher(&server).enrich(&ip_event()).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        String::from_utf8(requests[0].body.clone()).unwrap(),
        r#"{"returnFormat":"json","value":"203.0.113.7","type":["ip-src","ip-dst","ip-src|port","ip-dst|port"],"includeEventTags":true,"limit":50}"#
    );
    assert_eq!(
        requests[0].headers["authorization"], KEY,
        "no Bearer/Basic scheme"
    );
}

#[tokio::test]
async fn to_ids_only_asks_for_ids_attributes() {
    let server = MockServer::start().await;
    search()
        .and(body_json(json!({
            "returnFormat": "json", "value": IP,
            "type": ["ip-src", "ip-dst", "ip-src|port", "ip-dst|port"],
            "to_ids": true, "includeEventTags": true, "limit": 50,
        })))
        .respond_with(attributes(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.to_ids_only = true;
    enricher_with(&c).enrich(&ip_event()).await.unwrap();
}

#[tokio::test]
async fn base_url_with_path_and_trailing_slash() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/misp/attributes/restSearch"))
        .respond_with(attributes(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.url = format!("{}/misp/", server.uri());
    enricher_with(&c).enrich(&ip_event()).await.unwrap();
}

#[tokio::test]
async fn hit_parses_verdict_tags_and_times() {
    let server = MockServer::start().await;
    search().respond_with(hit()).expect(1).mount(&server).await;
    let e = enricher(&server);
    assert_eq!(e.kind(), "misp");
    let threat = e.enrich(&ip_event()).await.unwrap().threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    assert_eq!(threat.score, 90);
    assert_eq!(threat.tlp.as_deref(), Some("tlp:amber"));
    assert_eq!(threat.actors, vec!["APT 28"]);
    assert_eq!(
        threat.categories,
        vec![
            "Network activity",
            "Brute Force - T1110",
            "Payload delivery"
        ]
    );
    assert_eq!(
        threat.first_seen,
        Some(Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap())
    );
    assert_eq!(
        threat.last_seen,
        Some(Utc.with_ymd_and_hms(2021, 4, 8, 9, 52, 48).unwrap()),
        "string timestamp 1617875568"
    );
    assert_eq!(threat.providers.len(), 1);
    assert_eq!(threat.providers[0].provider, "misp");
    assert_eq!(threat.providers[0].indicator, IP);
}

#[tokio::test]
async fn without_to_ids_is_suspicious_and_false_positive_is_benign() {
    let server = MockServer::start().await;
    search()
        .and(body_json(json!({
            "returnFormat": "json", "value": IP,
            "type": ["ip-src", "ip-dst", "ip-src|port", "ip-dst|port"],
            "includeEventTags": true, "limit": 50,
        })))
        .respond_with(attributes(json!([
            {"id": "1", "event_id": "2", "to_ids": false, "timestamp": "1617875568", "category": "External analysis"}
        ])))
        .mount(&server)
        .await;
    search()
        .and(body_json(json!({
            "returnFormat": "json", "value": "benign.example",
            "type": ["domain", "hostname", "domain|ip"],
            "includeEventTags": true, "limit": 50,
        })))
        .respond_with(attributes(json!([
            {"id": "3", "event_id": "4", "to_ids": true, "timestamp": "1617875568",
             "Tag": [{"name": "false-positive", "inherited": 1}]}
        ])))
        .mount(&server)
        .await;
    let e = enricher(&server);
    let ip = Indicator::new(IndicatorKind::Ip, IP);
    let suspicious = e.provider().lookup(&ip).await.unwrap().unwrap();
    assert_eq!(
        (suspicious.verdict, suspicious.score),
        (Verdict::Suspicious, 50)
    );
    let domain = Indicator::new(IndicatorKind::Domain, "benign.example");
    let benign = e.provider().lookup(&domain).await.unwrap().unwrap();
    assert_eq!((benign.verdict, benign.score), (Verdict::Benign, 5));

    let mut event = ip_event();
    event.domain = Some("benign.example".into());
    let threat = e.enrich(&event).await.unwrap().threat.unwrap();
    assert_eq!((threat.verdict, threat.score), (Verdict::Suspicious, 50));
    assert_eq!(threat.providers.len(), 2);
}

#[tokio::test]
async fn miss_is_unknown_not_benign() {
    let server = MockServer::start().await;
    search()
        .respond_with(attributes(json!([])))
        .mount(&server)
        .await;
    let e = enricher(&server);
    assert_eq!(
        e.provider()
            .lookup(&Indicator::new(IndicatorKind::Ip, IP))
            .await
            .unwrap(),
        None
    );
    let threat = e.enrich(&ip_event()).await.unwrap().threat.unwrap();
    assert_eq!((threat.verdict, threat.score), (Verdict::Unknown, 0));
    assert_eq!(threat.providers[0].verdict, Verdict::Unknown);
}

#[tokio::test]
async fn empty_response_array_and_old_misp_404_are_misses() {
    let server = MockServer::start().await;
    search()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"response": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    search()
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"name": "Nothing found.", "message": "Nothing found.", "url": "/attributes/restSearch"}),
        ))
        .mount(&server)
        .await;
    let e = enricher(&server);
    let ip = Indicator::new(IndicatorKind::Ip, IP);
    assert_eq!(e.provider().lookup(&ip).await.unwrap(), None);
    assert_eq!(e.provider().lookup(&ip).await.unwrap(), None);
}

#[tokio::test]
async fn plain_404_is_rejected() {
    let server = MockServer::start().await;
    let e = enricher(&server);
    let err = e
        .provider()
        .lookup(&Indicator::new(IndicatorKind::Ip, IP))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn unauthorized() {
    for status in [401, 403] {
        let server = MockServer::start().await;
        search()
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "name": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
                "message": "Authentication failed.",
                "url": "/attributes/restSearch",
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = enricher(&server).enrich(&ip_event()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert!(!err.is_retryable());
        assert_eq!(err.status(), Some(status));
        assert!(err.to_string().contains("Authentication failed"), "{err}");
        assert!(!err.to_string().contains(KEY));
    }
}

#[tokio::test]
async fn rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    search()
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .expect(1)
        .mount(&server)
        .await;
    let e = enricher(&server);
    let err = e.enrich(&ip_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    // Like every threat-intel provider, MISP is not asked again before its Retry-After has
    // passed: the next event fails fast, without a request, still rate-limited.
    let err = e.enrich(&ip_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(
        err.retry_after()
            .is_some_and(|d| d <= Duration::from_secs(30))
    );
}

#[tokio::test]
async fn server_error_is_retryable() {
    let server = MockServer::start().await;
    search()
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&server)
        .await;
    let err = enricher(&server).enrich(&ip_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    assert!(err.to_string().contains("maintenance"));
}

#[tokio::test]
async fn timeout_is_not_enriched() {
    let server = MockServer::start().await;
    search()
        .respond_with(attributes(json!([])).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.limits.timeout = Some(std::time::Duration::from_millis(150));
    let e = enricher_with(&c);
    assert_eq!(e.timeout(), Duration::from_millis(650));
    let err = e.enrich(&ip_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_json_is_an_error() {
    for body in [
        "<html>proxy error</html>",
        "{\"response\":{\"Attribute\":[{]}}",
        "{\"response\":7}",
    ] {
        let server = MockServer::start().await;
        search()
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let err = enricher(&server).enrich(&ip_event()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected, "{body}");
        assert!(err.to_string().contains("malformed JSON"), "{err}");
    }
}

#[tokio::test]
async fn second_enrichment_of_same_ip_is_cached() {
    let server = MockServer::start().await;
    search().respond_with(hit()).expect(1).mount(&server).await;
    let e = enricher(&server);
    let first = e.enrich(&ip_event()).await.unwrap();
    let second = e.enrich(&ip_event()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(e.cache_stats().hits, 1);
    server.verify().await;
}

#[tokio::test]
async fn concurrent_events_share_one_request() {
    let server = MockServer::start().await;
    search()
        .respond_with(hit().set_delay(Duration::from_millis(100)))
        .expect(1)
        .mount(&server)
        .await;
    let e = Arc::new(enricher(&server));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let e = e.clone();
            tokio::spawn(async move { e.enrich(&ip_event()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().threat.unwrap().verdict,
            Verdict::Malicious
        );
    }
    server.verify().await;
}

async fn wait_for_requests(server: &MockServer, path_: &str, n: usize) -> Vec<Request> {
    for _ in 0..200 {
        let found: Vec<Request> = server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == path_)
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} requests to {path_}");
}

/// Waits (with a deadline) until every task spawned on this test's runtime (the sighting
/// reports, and the HTTP connections of an enricher already dropped) has finished, so what
/// the server received afterwards is final.
async fn wait_for_spawned_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} spawned task(s) still running",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn sightings_posted_when_enabled() {
    let server = MockServer::start().await;
    search().respond_with(hit()).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/sightings/add"))
        .and(header("authorization", KEY))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"value": IP, "source": "vowguard"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Sighting": {"id": "1"}})))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.report_sightings = true;
    let e = enricher_with(&c);
    e.enrich(&ip_event()).await.unwrap();
    wait_for_requests(&server, "/sightings/add", 1).await;
}

#[tokio::test]
async fn sighting_failure_never_fails_enrichment_and_misses_are_not_sighted() {
    let server = MockServer::start().await;
    search()
        .and(body_json(json!({
            "returnFormat": "json", "value": IP,
            "type": ["ip-src", "ip-dst", "ip-src|port", "ip-dst|port"],
            "includeEventTags": true, "limit": 50,
        })))
        .respond_with(hit())
        .mount(&server)
        .await;
    search()
        .respond_with(attributes(json!([])))
        .mount(&server)
        .await;
    Mock::given(path("/sightings/add"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.report_sightings = true;
    let e = enricher_with(&c);
    let mut event = ip_event();
    event.domain = Some("unknown.example".into());
    let threat = e.enrich(&event).await.unwrap().threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    wait_for_requests(&server, "/sightings/add", 1).await;
    drop(e);
    wait_for_spawned_tasks().await;
    let sightings: Vec<Request> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/sightings/add")
        .collect();
    assert_eq!(sightings.len(), 1, "only the hit is sighted");
}

#[tokio::test]
async fn no_sightings_by_default() {
    let server = MockServer::start().await;
    search().respond_with(hit()).expect(1).mount(&server).await;
    Mock::given(path("/sightings/add"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let e = enricher(&server);
    e.enrich(&ip_event()).await.unwrap();
    drop(e);
    wait_for_spawned_tasks().await;
    server.verify().await;
}

fn build(table: &str, secrets: &SecretMap) -> Result<Arc<dyn Enricher>, vowguard_core::Error> {
    let factory = find(Role::Enricher, "misp")?;
    let Builder::Enricher(build) = factory.builder else {
        panic!("misp must be an enricher");
    };
    let ctx = BuildContext {
        id: "threatintel",
        role: Role::Enricher,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    };
    build(&ctx, toml::from_str(table).unwrap())
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    search().respond_with(hit()).expect(1).mount(&server).await;
    let secrets = SecretMap::new().with("MISP_API_KEY", KEY);
    let table = format!(
        r#"
        url = "{}"
        api_key = {{ env = "MISP_API_KEY" }}
        to_ids_only = false
        benign_tags = ["false-positive"]
        report_sightings = false
        cache = {{ ttl = "1m" }}
        limits = {{ timeout = "1500ms", concurrency = 2, rate = {{ per_second = 50.0, burst = 10 }} }}
        http = {{ timeout = "3s" }}
        "#,
        server.uri()
    );
    let enricher = build(&table, &secrets).unwrap();
    assert_eq!(enricher.kind(), "misp");
    assert_eq!(enricher.timeout(), Duration::from_millis(2000));
    let threat = enricher.enrich(&ip_event()).await.unwrap().threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    let debug = format!("{enricher:?}");
    assert!(
        debug.contains("IntelProvider") && debug.contains("Misp {"),
        "{debug}"
    );
    assert!(!debug.contains(KEY), "{debug}");
}

#[test]
fn config_errors_are_named() {
    let secrets = SecretMap::new().with("MISP_API_KEY", KEY);
    let unknown = build(
        "url = \"https://misp.example\"\napi_key = { env = \"MISP_API_KEY\" }\nto_ids = true",
        &secrets,
    )
    .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::Config);
    assert!(unknown.to_string().contains("to_ids"), "{unknown}");
    assert!(
        unknown.to_string().contains("enrichers.threatintel"),
        "{unknown}"
    );

    let missing = build(
        "url = \"https://misp.example\"\napi_key = { env = \"NOPE\" }",
        &secrets,
    )
    .unwrap_err();
    assert!(missing.to_string().contains("api_key"), "{missing}");

    let bad_url = build(
        "url = \"ftp://misp.example\"\napi_key = { env = \"MISP_API_KEY\" }",
        &secrets,
    )
    .unwrap_err();
    assert_eq!(bad_url.kind(), ErrorKind::Config);
    assert!(bad_url.to_string().contains("url"), "{bad_url}");

    let inline = build(
        "url = \"https://misp.example\"\napi_key = \"abc\"",
        &secrets,
    )
    .unwrap_err();
    assert!(inline.to_string().contains("secret reference"), "{inline}");

    let bad_limits = build(
        "url = \"https://misp.example\"\napi_key = { env = \"MISP_API_KEY\" }\nlimits = { timeout = 5 }",
        &secrets,
    )
    .unwrap_err();
    assert!(bad_limits.to_string().contains("timeout"), "{bad_limits}");
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn api_key_never_in_debug_errors_or_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    // A hostile or misconfigured server that echoes the key back.
    search()
        .respond_with(ResponseTemplate::new(403).set_body_string(format!("bad key {KEY}")))
        .mount(&server)
        .await;
    Mock::given(path("/sightings/add"))
        .respond_with(ResponseTemplate::new(500).set_body_string(KEY))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.report_sightings = true;
    let e = enricher_with(&c);
    assert!(!format!("{e:?}").contains(KEY));
    assert!(!format!("{:?}", e.provider()).contains(KEY));
    let err = e.enrich(&ip_event()).await.unwrap_err();
    assert!(!err.to_string().contains(KEY), "{err}");
    assert!(!format!("{err:?}").contains(KEY));
    assert!(err.to_string().contains("[redacted]"), "{err}");

    let malformed = MockServer::start().await;
    search()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(format!("{{\"response\":{{\"Attribute\":\"{KEY}\"}}}}")),
        )
        .mount(&malformed)
        .await;
    let err = enricher(&malformed).enrich(&ip_event()).await.unwrap_err();
    assert!(!err.to_string().contains(KEY), "{err}");

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(!text.contains(KEY), "{text}");
}

#[test]
fn empty_key_and_bad_url_refused() {
    let mut c = MispConfig::new("https://misp.example", SecretRef::Env("X".into()));
    let err = c
        .clone()
        .into_builder(SecretString::from("  "))
        .build_provider()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("`api_key`"), "{err}");
    c.url = "not a url".into();
    let err = c
        .into_builder(SecretString::from(KEY))
        .build_provider()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("`url`"), "{err}");
    assert!(!err.to_string().contains(KEY));
    let err = vowguard_misp::Misp::builder()
        .api_key(SecretString::from(KEY))
        .build_provider()
        .unwrap_err();
    assert_eq!(err.to_string(), "`url`: is required");
}

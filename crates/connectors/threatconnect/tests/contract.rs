//! Contract tests against a wiremock ThreatConnect v3 API on loopback.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Builder, Category, Enricher, ErrorKind, Event, Role, SecretMap, SecretRef,
    Severity, Verdict,
};
use vowguard_enrich::ThreatEnricher;
use vowguard_threatconnect::{Credentials, KIND, ThreatConnectConfig, ThreatConnectProvider};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "tc-test-token-00112233445566778899aabbccddeeff";
const ACCESS_ID: &str = "12345678901234567890";
const SECRET_KEY: &str = "tc-secret-key-ffeeddccbbaa99887766554433221100";
const HASH: &str = "44d88612fea8a8f36de82e1278abb02f";
const QUERY: &str = "fields=threatAssess&fields=tags&fields=securityLabels";

const RATED_ADDRESS: &str = r#"{
  "data": {
    "id": 41, "ownerId": 1, "ownerName": "Wedding SecOps", "dateAdded": "2026-05-02T09:00:00Z",
    "lastModified": "2026-06-18T17:45:10Z", "webLink": "https://app.threatconnect.com/#/details/indicators/41/overview",
    "type": "Address", "summary": "203.0.113.7", "ip": "203.0.113.7", "rating": 5.0, "confidence": 90,
    "privateFlag": false, "active": true, "activeLocked": false,
    "threatAssessRating": 4.5, "threatAssessConfidence": 88.0, "threatAssessScore": 934,
    "tags": {"data": [{"id": 1, "name": "Credential Stuffing"}, {"id": 2, "name": "APT28"}]},
    "securityLabels": {"data": [{"name": "TLP:AMBER"}]},
    "firstSeen": "2025-11-30T12:00:00Z", "lastSeen": "2026-06-18T17:45:10Z"
  },
  "status": "Success"
}"#;

const UNRATED: &str = r#"{"data": {"id": 42, "type": "Host", "summary": "quiet.example", "active": true,
  "threatAssessRating": 0.0, "threatAssessConfidence": 0.0, "threatAssessScore": 0}, "status": "Success"}"#;

fn token_config(server: &MockServer) -> ThreatConnectConfig {
    let mut c = ThreatConnectConfig::with_token(SecretRef::Env("TC_API_TOKEN".into()));
    c.base_url = Some(format!("{}/api", server.uri()));
    c
}

fn hmac_config(server: &MockServer) -> ThreatConnectConfig {
    let mut c = ThreatConnectConfig::with_hmac(ACCESS_ID, SecretRef::Env("TC_SECRET_KEY".into()));
    c.base_url = Some(format!("{}/api", server.uri()));
    c
}

fn token() -> Credentials {
    Credentials::Token(SecretString::from(TOKEN))
}

fn hmac_credentials() -> Credentials {
    Credentials::Hmac {
        access_id: ACCESS_ID.into(),
        secret_key: SecretString::from(SECRET_KEY),
    }
}

fn build(server: &MockServer) -> ThreatEnricher<ThreatConnectProvider> {
    token_config(server).into_builder(token()).build().unwrap()
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
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The signature ThreatConnect computes for a received request, written independently of
/// the crate: HMAC-SHA256 over "<path?query>:<METHOD>:<Timestamp header>".
fn expected_authorization(request: &Request) -> String {
    let timestamp = request.headers.get("timestamp").unwrap().to_str().unwrap();
    let target = match request.url.query() {
        Some(q) => format!("{}?{q}", request.url.path()),
        None => request.url.path().to_owned(),
    };
    let message = format!("{target}:{}:{timestamp}", request.method.as_str());
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET_KEY.as_bytes());
    let tag = hmac::sign(&key, message.as_bytes());
    format!("TC {ACCESS_ID}:{}", STANDARD.encode(tag.as_ref()))
}

#[tokio::test]
async fn token_request_and_rated_indicator() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS),
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
    assert_eq!(r.url.query(), Some(QUERY));
    assert_eq!(
        r.headers.get("authorization").unwrap(),
        &format!("TC-Token {TOKEN}")
    );
    assert!(r.headers.get("timestamp").is_none());
    assert_eq!(r.headers.get("accept").unwrap(), "application/json");

    // Rating 5, confidence 90: malicious; ThreatAssess 934 -> 93.
    assert_eq!((threat.verdict, threat.score), (Verdict::Malicious, 93));
    assert_eq!(threat.categories, ["credential-stuffing", "apt28"]);
    assert_eq!(threat.tlp.as_deref(), Some("tlp:amber"));
    assert_eq!(
        threat.first_seen.unwrap().to_rfc3339(),
        "2025-11-30T12:00:00+00:00"
    );
    assert_eq!(threat.providers[0].provider, "threatconnect");
    assert_eq!(threat.providers[0].score, Some(93));
}

#[tokio::test]
async fn hmac_signed_request_exact_form() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS),
        1,
    )
    .await;
    let mut config = hmac_config(&server);
    config.owner = Some("Wedding SecOps".into());
    let before = unix_now();
    let e = config.into_builder(hmac_credentials()).build().unwrap();
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    let after = unix_now();
    assert_eq!(threat.verdict, Verdict::Malicious);
    let requests = server.received_requests().await.unwrap();
    let r = &requests[0];
    assert_eq!(
        r.url.query(),
        Some(&*format!("{QUERY}&owner=Wedding+SecOps"))
    );
    let timestamp: u64 = r
        .headers
        .get("timestamp")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((before..=after).contains(&timestamp), "{timestamp}");
    let authorization = r.headers.get("authorization").unwrap().to_str().unwrap();
    assert_eq!(authorization, expected_authorization(r));
    assert!(authorization.starts_with(&format!("TC {ACCESS_ID}:")));
    // The Secret Key itself is never sent.
    for (_, value) in r.headers.iter() {
        assert!(!value.to_str().unwrap_or_default().contains(SECRET_KEY));
    }
    assert!(!format!("{e:?}").contains(SECRET_KEY));
}

#[tokio::test]
async fn every_indicator_kind_is_looked_up_by_summary() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(UNRATED))
        .expect(4)
        .mount(&server)
        .await;
    let mut ev = event("2001:db8::7");
    ev.domain = Some("Login.Example.org".into());
    ev.url = Some("https://evil.example/a b?x=1#frag".into());
    ev.file_hash = Some(HASH.into());
    let e = hmac_config(&server)
        .into_builder(hmac_credentials())
        .build()
        .unwrap();
    e.enrich(&ev).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    for r in &requests {
        // Every signature covers the percent-encoded path exactly as sent.
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            expected_authorization(r)
        );
    }
    let mut paths: Vec<String> = requests.iter().map(|r| r.url.path().to_owned()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v3/indicators/2001:db8::7".to_owned(),
            format!("/api/v3/indicators/{}", HASH.to_uppercase()),
            "/api/v3/indicators/https:%2F%2Fevil.example%2Fa%20b%3Fx%3D1%23frag".to_owned(),
            "/api/v3/indicators/login.example.org".to_owned(),
        ]
    );
}

#[tokio::test]
async fn unrated_and_404_are_unknown_and_cached() {
    let server = MockServer::start().await;
    mock_get(&server, "/api/v3/indicators/198.51.100.9", ok(UNRATED), 1).await;
    mock_get(
        &server,
        "/api/v3/indicators/198.51.100.10",
        ResponseTemplate::new(404)
            .set_body_string(r#"{"status": "Failure", "message": "Indicator not found"}"#),
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
    }
    assert_eq!(e.cache_stats().negative_hits, 2);
}

#[tokio::test]
async fn same_indicator_twice_makes_one_request() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS),
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
async fn refused_credentials_name_the_connector_never_the_secret() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ResponseTemplate::new(401).set_body_string(format!(
            r#"{{"status": "Failure", "message": "Invalid token {TOKEN}"}}"#
        )),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.starts_with("threatconnect: ThreatConnect ip lookup of 203.0.113.7"),
        "{text}"
    );
    assert!(text.contains("Invalid token"), "{text}");
    assert!(!text.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
    assert!(!format!("{e:?}").contains(TOKEN));

    // A signature ThreatConnect refuses (wrong key, clock off by more than 5 minutes): 403.
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ResponseTemplate::new(403).set_body_string(
            r#"{"status": "Failure", "message": "The Timestamp is outside the allowed window"}"#,
        ),
        1,
    )
    .await;
    let e = hmac_config(&server)
        .into_builder(hmac_credentials())
        .build()
        .unwrap();
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.to_string().contains("outside the allowed window"),
        "{err}"
    );
    assert!(!format!("{err} {err:?} {e:?}").contains(SECRET_KEY));
}

#[tokio::test]
async fn rate_limited_carries_retry_after_and_pauses_lookups() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_string(r#"{"status": "Failure", "message": "Rate limit exceeded"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(err.to_string().contains("Rate limit exceeded"), "{err}");
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn server_errors_are_retryable_and_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/indicators/203.0.113.7"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
}

#[tokio::test]
async fn bad_requests_and_failures() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ResponseTemplate::new(400)
            .set_body_string(r#"{"status": "Failure", "message": "Invalid owner"}"#),
        1,
    )
    .await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.8",
        ok(r#"{"status": "Failure", "message": "Something went wrong"}"#),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("Invalid owner"), "{err}");
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("Something went wrong"), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS).set_delay(Duration::from_secs(10)),
        1,
    )
    .await;
    let mut c = token_config(&server);
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
        "/api/v3/indicators/203.0.113.7",
        ok(r#"{"status": "Success", "data": {"rating": [5]}}"#),
        1,
    )
    .await;
    let huge = format!(
        r#"{{"status": "Success", "data": {{"rating": 5, "description": "{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    mock_get(&server, "/api/v3/indicators/203.0.113.8", ok(&huge), 1).await;
    let e = build(&server);
    for ip in ["203.0.113.7", "203.0.113.8"] {
        let err = e.enrich(&event(ip)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{ip}");
        assert!(
            err.to_string()
                .contains("unreadable ThreatConnect response"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn partial_failure_keeps_the_other_answers() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS),
        1,
    )
    .await;
    mock_get(
        &server,
        "/api/v3/indicators/evil.example",
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
        id: "tc",
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
        _ => panic!("threatconnect is registered as an enricher"),
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mock_get(
        &server,
        "/api/v3/indicators/203.0.113.7",
        ok(RATED_ADDRESS),
        1,
    )
    .await;
    let secrets = SecretMap::new().with("TC_SECRET_KEY", SECRET_KEY);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "access_id = \"{ACCESS_ID}\"\nsecret_key = {{ env = \"TC_SECRET_KEY\" }}\nbase_url = \"{}/api\"",
        server.uri()
    ))
    .unwrap();
    let e = build_fn()(&ctx(&secrets), table).unwrap();
    assert_eq!(e.kind(), "threatconnect");
    assert_eq!(e.timeout(), Duration::from_millis(3_500));
    assert!(!format!("{e:?}").contains(SECRET_KEY));
    let threat = e
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        expected_authorization(&requests[0])
    );
}

#[test]
fn config_errors_name_the_key() {
    let secrets = SecretMap::new().with("TC_API_TOKEN", TOKEN);
    for (text, key) in [
        ("", "enrichers.tc.api_token"),
        (
            "api_token = { env = \"TC_API_TOKEN\" }\naccess_id = \"1\"",
            "enrichers.tc.api_token",
        ),
        ("access_id = \"1\"", "enrichers.tc.secret_key"),
        (
            "access_id = \"1\"\nsecret_key = { env = \"NOPE\" }",
            "enrichers.tc.secret_key",
        ),
        ("api_token = { env = \"NOPE\" }", "enrichers.tc.api_token"),
        (
            "api_token = { env = \"TC_API_TOKEN\" }\ncache = { ttl = 5 }",
            "enrichers.tc.cache",
        ),
        (
            "api_token = { env = \"TC_API_TOKEN\" }\nbase_url = \"not a url\"",
            "base_url",
        ),
    ] {
        let table: vowguard_core::ComponentConfig = toml::from_str(text).unwrap();
        let text = build_fn()(&ctx(&secrets), table).unwrap_err().to_string();
        assert!(text.contains(key), "{key}: {text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
}

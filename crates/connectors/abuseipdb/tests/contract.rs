//! Contract tests against a wiremock AbuseIPDB on loopback.

use std::path::Path;
use std::time::Duration;

use vowguard_abuseipdb::{AbuseIpdbConfig, AbuseIpdbProvider, KIND};
use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Builder, Category, Enricher, ErrorKind, Event, Role, SecretMap, SecretRef,
    Severity, Verdict,
};
use vowguard_enrich::{Indicator, IndicatorKind, ReputationProvider, ThreatEnricher};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "abuseipdb-test-key-0123456789abcdef";

const MALICIOUS: &str = r#"{"data":{"ipAddress":"203.0.113.7","isPublic":true,"ipVersion":4,
  "isWhitelisted":false,"abuseConfidenceScore":87,"countryCode":"NL","usageType":"Data Center/Web Hosting/Transit",
  "isp":"Example Hosting","domain":"example.net","hostnames":[],"isTor":false,"totalReports":42,"numDistinctUsers":17,
  "lastReportedAt":"2026-06-19T22:10:00+00:00",
  "reports":[
    {"reportedAt":"2026-06-19T22:10:00+00:00","comment":"sshd brute force","categories":[18,22],"reporterId":1,"reporterCountryCode":"US","reporterCountryName":"United States"},
    {"reportedAt":"2026-05-01T08:00:00+00:00","comment":"wp-login","categories":[21,18],"reporterId":2,"reporterCountryCode":"DE","reporterCountryName":"Germany"}
  ]}}"#;

fn config(server: &MockServer) -> AbuseIpdbConfig {
    let mut c = AbuseIpdbConfig::new(SecretRef::Env("ABUSEIPDB_API_KEY".into()));
    c.base_url = Some(server.uri());
    c
}

fn key() -> SecretString {
    SecretString::from(KEY)
}

fn build(server: &MockServer) -> ThreatEnricher<AbuseIpdbProvider> {
    config(server).into_builder(key()).build().unwrap()
}

fn event(ip: &str) -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::High);
    e.source_ip = Some(ip.parse().unwrap());
    e
}

async fn mock_check(server: &MockServer, ip: &str, response: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path("/api/v2/check"))
        .and(query_param("ipAddress", ip))
        .and(header("key", KEY))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn sends_the_documented_request() {
    let server = MockServer::start().await;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(200).set_body_string(MALICIOUS),
        1,
    )
    .await;
    build(&server).enrich(&event("203.0.113.7")).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method.as_str(), "GET");
    assert_eq!(r.url.path(), "/api/v2/check");
    assert_eq!(
        r.url.query(),
        Some("ipAddress=203.0.113.7&maxAgeInDays=90&verbose")
    );
    assert_eq!(r.headers.get("key").unwrap(), KEY);
    assert_eq!(r.headers.get("accept").unwrap(), "application/json");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn reported_address_becomes_malicious_threat_intel() {
    let server = MockServer::start().await;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(200).set_body_string(MALICIOUS),
        1,
    )
    .await;
    let enrichment = build(&server).enrich(&event("203.0.113.7")).await.unwrap();
    let threat = enrichment.threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    assert_eq!(threat.score, 87);
    // brute-force twice, then ties by AbuseIPDB id (21 before 22).
    assert_eq!(threat.categories, ["brute-force", "web-app-attack", "ssh"]);
    assert!(threat.actors.is_empty());
    assert_eq!(threat.providers.len(), 1);
    assert_eq!(threat.providers[0].provider, "abuseipdb");
    assert_eq!(threat.providers[0].indicator, "203.0.113.7");
    assert_eq!(threat.providers[0].score, Some(87));
    assert_eq!(
        threat.last_seen.unwrap().to_rfc3339(),
        "2026-06-19T22:10:00+00:00"
    );
    assert_eq!(
        threat.first_seen.unwrap().to_rfc3339(),
        "2026-05-01T08:00:00+00:00"
    );
}

#[tokio::test]
async fn unreported_public_address_is_benign() {
    let server = MockServer::start().await;
    let body = r#"{"data":{"ipAddress":"198.51.100.9","isPublic":true,"abuseConfidenceScore":0,
        "totalReports":0,"numDistinctUsers":0,"lastReportedAt":null,"reports":[]}}"#;
    mock_check(
        &server,
        "198.51.100.9",
        ResponseTemplate::new(200).set_body_string(body),
        1,
    )
    .await;
    let threat = build(&server)
        .enrich(&event("198.51.100.9"))
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!((threat.verdict, threat.score), (Verdict::Benign, 0));
}

#[tokio::test]
async fn non_public_answer_is_unknown_and_private_addresses_are_not_asked() {
    let server = MockServer::start().await;
    let body = r#"{"data":{"ipAddress":"192.0.2.1","isPublic":false,"abuseConfidenceScore":0,"totalReports":0}}"#;
    mock_check(
        &server,
        "192.0.2.1",
        ResponseTemplate::new(200).set_body_string(body),
        1,
    )
    .await;
    let e = build(&server);
    let threat = e.enrich(&event("192.0.2.1")).await.unwrap().threat.unwrap();
    assert_eq!((threat.verdict, threat.score), (Verdict::Unknown, 0));
    assert_eq!(threat.providers[0].verdict, Verdict::Unknown);
    // The unknown answer is cached (negative TTL): no second request.
    e.enrich(&event("192.0.2.1")).await.unwrap();
    assert_eq!(e.cache_stats().negative_hits, 1);
    // RFC 1918 and loopback addresses never leave the process.
    for ip in ["10.1.2.3", "127.0.0.1", "192.168.0.1"] {
        assert!(e.enrich(&event(ip)).await.unwrap().threat.is_none());
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn same_address_twice_makes_one_request() {
    let server = MockServer::start().await;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(200).set_body_string(MALICIOUS),
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
async fn domain_only_events_make_no_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(MALICIOUS))
        .expect(0)
        .mount(&server)
        .await;
    let mut ev = Event::new(Category::Network, "dns", Severity::Low);
    ev.domain = Some("evil.example".into());
    ev.url = Some("http://evil.example/login".into());
    ev.file_hash = Some("a".repeat(64));
    let enrichment = build(&server).enrich(&ev).await.unwrap();
    assert!(enrichment.is_empty(), "{enrichment:?}");
    // A direct lookup of another kind is refused without a request.
    let provider = build(&server);
    assert!(!provider.provider().supports(&IndicatorKind::Domain));
    let err = provider
        .provider()
        .lookup(&Indicator::new(IndicatorKind::Domain, "evil.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn unauthorized_carries_the_reason_and_never_the_key() {
    let server = MockServer::start().await;
    let body = r#"{"errors":[{"detail":"Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.","status":401}]}"#;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(401).set_body_string(body),
        1,
    )
    .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(
        text.starts_with("abuseipdb: AbuseIPDB check of 203.0.113.7"),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    assert!(!format!("{err:?}").contains(KEY));
    assert!(!format!("{e:?}").contains(KEY));
}

#[tokio::test]
async fn rate_limited_carries_retry_after_and_pauses_lookups() {
    let server = MockServer::start().await;
    let body = r#"{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.","status":429}]}"#;
    Mock::given(method("GET"))
        .and(path("/api/v2/check"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "120")
                .insert_header("X-RateLimit-Limit", "1000")
                .insert_header("X-RateLimit-Remaining", "0")
                .set_body_string(body),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.to_string().contains("Daily rate limit"), "{err}");
    // Another address within the pause: refused locally, no request.
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let left = err.retry_after().unwrap();
    assert!(left > Duration::from_secs(60) && left <= Duration::from_secs(120));
}

#[tokio::test]
async fn rejected_and_server_errors() {
    let server = MockServer::start().await;
    let body = r#"{"errors":[{"detail":"The max age in days must be between 1 and 365.","status":422,"source":{"parameter":"maxAgeInDays"}}]}"#;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(422).set_body_string(body),
        1,
    )
    .await;
    mock_check(&server, "203.0.113.8", ResponseTemplate::new(503), 2).await;
    let e = build(&server);
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("max age in days"), "{err}");
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    // Errors are not cached: the next event asks again (and fails again).
    let err = e.enrich(&event("203.0.113.8")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = MockServer::start().await;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(200)
            .set_body_string(MALICIOUS)
            .set_delay(Duration::from_secs(10)),
        1,
    )
    .await;
    let mut c = config(&server);
    c.limits.timeout = Some(std::time::Duration::from_millis(150));
    let e = c.into_builder(key()).build().unwrap();
    assert!(e.timeout() < Duration::from_secs(1));
    let err = e.enrich(&event("203.0.113.7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_answers_are_clear_errors() {
    let server = MockServer::start().await;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(200)
            .set_body_string("<html><body>Service temporarily unavailable</body></html>"),
        1,
    )
    .await;
    let err = build(&server)
        .enrich(&event("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let text = err.to_string();
    assert!(
        text.contains("unreadable AbuseIPDB check response"),
        "{text}"
    );
    assert!(text.contains("Service temporarily unavailable"), "{text}");
}

fn ctx<'a>(secrets: &'a SecretMap) -> BuildContext<'a> {
    BuildContext {
        id: "reputation",
        role: Role::Enricher,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    }
}

fn build_fn() -> vowguard_core::registry::EnricherBuildFn {
    let factory = vowguard_core::registry::find(Role::Enricher, KIND).unwrap();
    match factory.builder {
        Builder::Enricher(build) => build,
        _ => panic!("abuseipdb is registered as an enricher"),
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mock_check(
        &server,
        "203.0.113.7",
        ResponseTemplate::new(200).set_body_string(MALICIOUS),
        1,
    )
    .await;
    let secrets = SecretMap::new().with("ABUSEIPDB_API_KEY", KEY);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "api_key = {{ env = \"ABUSEIPDB_API_KEY\" }}\nbase_url = \"{}\"\nlimits = {{ timeout = \"1500ms\" }}",
        server.uri()
    ))
    .unwrap();
    let e = build_fn()(&ctx(&secrets), table).unwrap();
    assert_eq!(e.kind(), "abuseipdb");
    assert_eq!(e.timeout(), Duration::from_millis(2_000));
    assert!(!format!("{e:?}").contains(KEY));
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
    let secrets = SecretMap::new().with("ABUSEIPDB_API_KEY", KEY);
    let build = build_fn();
    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"ABUSEIPDB_API_KEY\" }\nmax_age_days = 30").unwrap();
    let err = build(&ctx(&secrets), table).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.contains("enrichers.reputation") && text.contains("max_age_days"),
        "{text}"
    );

    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"MISSING\" }").unwrap();
    let text = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        text.contains("enrichers.reputation.api_key") && text.contains("MISSING"),
        "{text}"
    );

    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"ABUSEIPDB_API_KEY\" }\nbase_url = \"ftp://x\"")
            .unwrap();
    let text = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(text.contains("base_url"), "{text}");
    assert!(!text.contains(KEY));

    let table: vowguard_core::ComponentConfig =
        toml::from_str("api_key = { env = \"ABUSEIPDB_API_KEY\" }\nmax_age_in_days = 0").unwrap();
    let text = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(text.contains("max_age_in_days"), "{text}");
}

//! Contract tests of the HTTP wedding provider against wiremock on loopback.

use std::time::Duration;

use secrecy::SecretString;
use vowguard_core::ErrorKind;
use vowguard_http::HttpOptions;
use vowguard_wedding::{HttpProvider, HttpProviderOptions, WeddingContextProvider};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "wedding-api-token-7f3a";

fn provider(server: &MockServer, ttl_secs: u64, token: Option<&str>) -> HttpProvider {
    HttpProvider::new(
        &HttpProviderOptions::new(format!("{}/api/", server.uri()))
            .with_cache_ttl(Duration::from_secs(ttl_secs))
            .with_http(
                HttpOptions::default().with_timeout(std::time::Duration::from_millis(2_000)),
            ),
        token.map(SecretString::from),
    )
    .unwrap()
}

fn record() -> serde_json::Value {
    serde_json::json!({
        "wedding_id": "w-1", "date": "2026-06-20", "timezone": "America/Los_Angeles",
        "guest_count": 180, "vendor_count": 11, "venue": "Napa Barn", "couple": "ignored"
    })
}

#[tokio::test]
async fn hit_sends_bearer_token_and_parses_the_record() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/w-1"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record()))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server, 60, Some(TOKEN));
    let r = p.wedding("w-1").await.unwrap().unwrap();
    assert_eq!(r.wedding_id, "w-1");
    assert_eq!(r.timezone.name(), "America/Los_Angeles");
    assert_eq!(r.guest_count, Some(180));
    assert_eq!(r.venue.as_deref(), Some("Napa Barn"));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].body.is_empty());
}

#[tokio::test]
async fn answers_are_cached_two_lookups_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/w-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/w-404"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no such wedding"))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server, 300, None);
    let a = p.wedding("w-1").await.unwrap();
    let b = p.wedding("w-1").await.unwrap();
    assert_eq!(a, b);
    assert!(a.is_some());
    // Unknown (404) is cached too.
    assert_eq!(p.wedding("w-404").await.unwrap(), None);
    assert_eq!(p.wedding("w-404").await.unwrap(), None);
    assert_eq!(p.cache_len(), 2);
    // No token configured: no Authorization header.
    for r in server.received_requests().await.unwrap() {
        assert!(!r.headers.contains_key("authorization"));
    }
}

#[tokio::test]
async fn ttl_zero_disables_the_cache() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/w-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record()))
        .expect(2)
        .mount(&server)
        .await;
    let p = provider(&server, 0, None);
    p.wedding("w-1").await.unwrap();
    p.wedding("w-1").await.unwrap();
}

#[tokio::test]
async fn not_found_is_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server, 60, Some(TOKEN));
    assert_eq!(p.wedding("w-unknown").await.unwrap(), None);
}

#[tokio::test]
async fn unauthorized_is_an_error_without_the_token_and_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad token"))
        .expect(2)
        .mount(&server)
        .await;
    let p = provider(&server, 60, Some(TOKEN));
    for _ in 0..2 {
        let e = p.wedding("w-1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.status(), Some(401));
        let text = e.to_string();
        assert!(text.contains("bad token"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains("/api/weddings"), "{text}");
    }
    assert_eq!(p.cache_len(), 0);
    assert!(!format!("{p:?}").contains(TOKEN));
}

#[tokio::test]
async fn server_errors_are_retryable_with_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    let p = provider(&server, 60, None);
    let e = p.wedding("w-1").await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn malformed_or_mismatched_records_are_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/bad-tz"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "date": "2026-06-20", "timezone": "Atlantis/Capital"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/w-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/no-id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "date": "2026-06-20", "timezone": "UTC"
        })))
        .mount(&server)
        .await;
    let p = provider(&server, 60, None);
    let e = p.wedding("bad-tz").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(e.to_string().contains("Atlantis/Capital"), "{e}");
    let e = p.wedding("w-2").await.unwrap_err();
    assert!(e.to_string().contains("asked for wedding \"w-2\""), "{e}");
    // A record without an id takes the requested one.
    assert_eq!(
        p.wedding("no-id").await.unwrap().unwrap().wedding_id,
        "no-id"
    );
}

#[tokio::test]
async fn hostile_ids_stay_in_one_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/weddings/..%2F..%2Fadmin"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server, 60, None);
    assert_eq!(p.wedding("../../admin").await.unwrap(), None);
    // `..` itself is never requested.
    assert_eq!(p.wedding("..").await.unwrap(), None);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn timeouts_are_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let p = HttpProvider::new(
        &HttpProviderOptions::new(server.uri())
            .with_cache_ttl(Duration::from_secs(60))
            .with_http(HttpOptions::default().with_timeout(std::time::Duration::from_millis(200))),
        None,
    )
    .unwrap();
    let e = p.wedding("w-1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
}

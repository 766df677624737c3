//! Contract tests of the PagerDuty notifier against a wiremock Events API.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vowguard_pagerduty::HttpSinkBuilder;

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::registry::{Role, find};
use vowguard_core::{
    Alert, AlertAction, BuildContext, Builder, Category, ErrorKind, Event, Notifier, Priority,
    RateLimit, SecretMap, Severity,
};
use vowguard_http::HttpOptions;
use vowguard_pagerduty::{PagerDutyNotifier, PagerDutyNotifierBuilder};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "R0UTINGKEYR0UTINGKEYR0UTINGKEY12";

fn http(timeout_ms: u64) -> HttpOptions {
    HttpOptions::default().with_timeout(std::time::Duration::from_millis(timeout_ms))
}

fn config(server: &MockServer) -> PagerDutyNotifierBuilder {
    PagerDutyNotifier::builder()
        .routing_key(SecretString::from(KEY))
        .endpoint(server.uri())
        .source("vg-host")
        .http(http(2_000))
}

fn notifier(server: &MockServer) -> PagerDutyNotifier {
    config(server).build().unwrap()
}

fn alert(message: &str) -> Alert {
    let mut event = Event::new(Category::Authentication, "login", Severity::High);
    event.id = "evt-7".into();
    event.timestamp = Utc.with_ymd_and_hms(2026, 6, 20, 9, 0, 0).unwrap();
    event.message = Some(message.into());
    let mut alert = Alert::new(Arc::new(event), Priority::P1High, "oncall");
    alert.dedup_key = "brute-force:203.0.113.7".into();
    alert
}

fn accepted(dedup: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup}),
    )
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn sends_the_exact_trigger_event() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(accepted("brute-force:203.0.113.7"))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = notifier(&server)
        .notify(&alert("5 failed logins"))
        .await
        .unwrap();
    assert_eq!(
        receipt.delivery_id.as_deref(),
        Some("brute-force:203.0.113.7")
    );

    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let expected = json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "brute-force:203.0.113.7",
        "payload": {
            "summary": "[P1] 5 failed logins",
            "source": "vg-host",
            "severity": "error",
            "timestamp": "2026-06-20T09:00:00.000Z",
            "component": "vowguard",
            "group": "authentication",
            "class": "authentication.login",
            "custom_details": {
                "event": {
                    "id": "evt-7", "timestamp": "2026-06-20T09:00:00Z", "category": "authentication",
                    "action": "login", "outcome": "unknown", "severity": "high",
                    "message": "5 failed logins"
                },
                "priority": "P1_HIGH",
                "reasons": [],
                "wedding_impact": {
                    "active_weddings_affected": 0, "couples_data_at_risk": false,
                    "vendor_accounts_compromised": 0, "payment_data_exposed": false,
                    "guest_lists_accessed": 0, "wedding_photos_at_risk": false
                },
                "route": "oncall"
            }
        },
        "client": "vowguard"
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn same_group_is_one_incident() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(accepted("brute-force:203.0.113.7"))
        .expect(2)
        .mount(&server)
        .await;
    let n = notifier(&server);
    let (a, b) = (alert("first"), alert("second"));
    assert_ne!(a.id, b.id);
    n.notify(&a).await.unwrap();
    n.notify(&b).await.unwrap();
    let bodies = bodies(&server).await;
    assert_eq!(bodies[0]["dedup_key"], "brute-force:203.0.113.7");
    assert_eq!(bodies[0]["dedup_key"], bodies[1]["dedup_key"]);
}

#[tokio::test]
async fn acknowledge_and_resolve_send_only_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(accepted("brute-force:203.0.113.7"))
        .expect(2)
        .mount(&server)
        .await;
    let n = notifier(&server);
    let mut a = alert("x");
    a.action = AlertAction::Acknowledge;
    n.notify(&a).await.unwrap();
    a.action = AlertAction::Resolve;
    n.notify(&a).await.unwrap();
    let bodies = bodies(&server).await;
    assert_eq!(
        bodies,
        vec![
            json!({"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "brute-force:203.0.113.7"}),
            json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": "brute-force:203.0.113.7"}),
        ]
    );
}

#[tokio::test]
async fn severity_param_overrides_priority() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted("k"))
        .expect(1)
        .mount(&server)
        .await;
    let mut a = alert("x");
    a.params.insert("severity".into(), json!("critical"));
    notifier(&server).notify(&a).await.unwrap();
    assert_eq!(bodies(&server).await[0]["payload"]["severity"], "critical");
}

#[tokio::test]
async fn bad_request_is_rejected_with_pagerduty_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let e = notifier(&server).notify(&alert("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(!e.is_retryable());
    assert_eq!(e.status(), Some(400));
    let text = e.to_string();
    assert!(text.contains("Event object is invalid"), "{text}");
    assert!(text.contains("should be 32 characters"), "{text}");
    assert!(!text.contains(KEY), "{text}");
}

#[tokio::test]
async fn rate_limit_is_retryable_and_keeps_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "12"))
        .mount(&server)
        .await;
    let n = notifier(&server);
    let e = n.notify(&alert("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), None);
    let e = n.notify(&alert("x")).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(
        n.rate_limit(),
        Some(RateLimit {
            per_second: 2.0,
            burst: 10
        })
    );
}

#[tokio::test]
async fn server_error_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(accepted("brute-force:203.0.113.7"))
        .expect(1)
        .mount(&server)
        .await;
    let n = notifier(&server);
    let a = alert("x");
    let e = n.notify(&a).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert!(n.notify(&a).await.is_ok());
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted("k").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let n = config(&server).http(http(200)).build().unwrap();
    let e = n.notify(&alert("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn oversized_event_stays_under_512_kb() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted("k"))
        .expect(1)
        .mount(&server)
        .await;
    let mut a = alert("x");
    Arc::make_mut(&mut a.event)
        .attributes
        .insert("dump".into(), json!("z".repeat(700 * 1024)));
    notifier(&server).notify(&a).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].body.len() <= 512 * 1024);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(
        body["payload"]["custom_details"]["event"]
            .get("attributes")
            .is_none()
    );
}

#[tokio::test]
async fn healthcheck_checks_key_shape_without_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted("k"))
        .expect(0)
        .mount(&server)
        .await;
    assert!(notifier(&server).healthcheck().await.is_ok());
    let bad = config(&server)
        .routing_key(SecretString::from("not-a-key-secret"))
        .build()
        .unwrap();
    let e = bad.healthcheck().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("not-a-key-secret"));
}

#[tokio::test]
async fn debug_and_errors_hide_the_routing_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!("bad key {KEY}")))
        .mount(&server)
        .await;
    let n = notifier(&server);
    let debug = format!("{n:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("[redacted]"));
    let e = n.notify(&alert("x")).await.unwrap_err();
    assert!(!e.to_string().contains(KEY), "{e}");
    assert!(!format!("{e:?}").contains(KEY));
}

fn ctx(secrets: &SecretMap) -> BuildContext<'_> {
    BuildContext {
        id: "oncall",
        role: Role::Notifier,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(accepted("k"))
        .expect(1)
        .mount(&server)
        .await;
    let factory = find(Role::Notifier, "pagerduty").unwrap();
    let Builder::Notifier(build) = factory.builder else {
        panic!("pagerduty is not registered as a notifier");
    };
    let secrets = SecretMap::new().with("PD_KEY", KEY);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "routing_key = {{ env = \"PD_KEY\" }}\nendpoint = \"{}\"\nsource = \"s\"",
        server.uri()
    ))
    .unwrap();
    let n = build(&ctx(&secrets), table).unwrap();
    assert_eq!(n.kind(), "pagerduty");
    n.notify(&alert("x")).await.unwrap();
    assert_eq!(bodies(&server).await[0]["routing_key"], KEY);

    let table: vowguard_core::ComponentConfig =
        toml::from_str("routing_key = { env = \"PD_KEY\" }\nrouting_kee = 1").unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        e.contains("routing_kee") && e.contains("notifiers.oncall"),
        "{e}"
    );

    let table: vowguard_core::ComponentConfig =
        toml::from_str("routing_key = { env = \"MISSING\" }").unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(e.contains("notifiers.oncall.routing_key"), "{e}");
}

//! Contract tests of the Teams notifier against a wiremock Workflows webhook.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vowguard_teams::HttpSinkBuilder;

use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::registry::{Role, find};
use vowguard_core::{
    Alert, BuildContext, Builder, Category, ErrorKind, Event, Notifier, Priority, RateLimit,
    SecretMap, Severity,
};
use vowguard_http::HttpOptions;
use vowguard_teams::{CardLink, TeamsNotifier};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SIG: &str = "S3cr3tSignatureValue0123456789";
const PATH: &str = "/workflows/abc123/triggers/manual/paths/invoke";

fn url(server: &MockServer) -> String {
    format!(
        "{}{PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}",
        server.uri()
    )
}

fn notifier(server: &MockServer) -> TeamsNotifier {
    TeamsNotifier::builder()
        .webhook_url(SecretString::from(url(server)))
        .http(http(2_000))
        .links([CardLink::new("Runbook", "https://runbook.example.org")])
        .build()
        .unwrap()
}

fn http(timeout_ms: u64) -> HttpOptions {
    HttpOptions::default().with_timeout(std::time::Duration::from_millis(timeout_ms))
}

fn alert() -> Alert {
    let mut event = Event::new(Category::Authentication, "login", Severity::High);
    event.message = Some("5 failed logins".into());
    let mut alert = Alert::new(Arc::new(event), Priority::P1High, "secops");
    alert.reasons.push("brute force".into());
    alert
}

async fn mount(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(query_param("sig", SIG))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn posts_the_exact_card() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(202), 1).await;
    let receipt = notifier(&server).notify(&alert()).await.unwrap();
    assert_eq!(receipt.delivery_id, None);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers.get("content-type").unwrap(),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let expected = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": "P1 security alert: authentication login",
                     "weight": "bolder", "size": "medium", "color": "warning", "wrap": true},
                    {"type": "TextBlock", "text": "5 failed logins", "wrap": true},
                    {"type": "TextBlock", "text": "Why: brute force", "wrap": true, "isSubtle": true},
                    {"type": "FactSet", "facts": [
                        {"title": "Priority", "value": "P1_HIGH"},
                        {"title": "What", "value": "authentication login (unknown)"},
                        {"title": "Risk", "value": "severity high"},
                        {"title": "Route", "value": "secops"}
                    ]}
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Runbook", "url": "https://runbook.example.org"}]
            }
        }]
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn ok_200_is_success_too() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(200).set_body_string("1"), 1).await;
    notifier(&server).notify(&alert()).await.unwrap();
}

#[tokio::test]
async fn hostile_text_is_neutralised_on_the_wire() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(202), 1).await;
    let mut a = alert();
    Arc::make_mut(&mut a.event).message = Some(format!(
        "[click](http://evil) <at>Everyone</at>\r\nline2 {}",
        "x".repeat(10 * 1024)
    ));
    notifier(&server).notify(&a).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let text = body["attachments"][0]["content"]["body"][1]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.starts_with("［click］(http:∕∕evil) ＜at＞Everyone＜/at＞ line2 xxx"),
        "{text}"
    );
    assert_eq!(text.chars().count(), 1000);
    assert!(requests[0].body.len() < 8 * 1024, "capped, not 10 kB");
}

#[tokio::test]
async fn rate_limit_is_retryable_with_retry_after() {
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "7"),
        1,
    )
    .await;
    let n = notifier(&server);
    let e = n.notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        n.rate_limit(),
        Some(RateLimit {
            per_second: 1.0,
            burst: 4
        })
    );
}

#[tokio::test]
async fn server_error_is_retryable_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount(&server, ResponseTemplate::new(202), 1).await;
    let n = notifier(&server);
    let e = n.notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    n.notify(&alert()).await.unwrap();
}

#[tokio::test]
async fn client_errors_are_permanent_and_hide_the_url() {
    for status in [400u16, 404] {
        let server = MockServer::start().await;
        let echo = format!(
            r#"{{"error":{{"code":"TriggerInputSchemaMismatch","message":"bad input for {}"}}}}"#,
            url(&server)
        );
        mount(
            &server,
            ResponseTemplate::new(status).set_body_string(echo),
            1,
        )
        .await;
        let n = notifier(&server);
        let e = n.notify(&alert()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(!e.is_retryable());
        let text = format!("{e} {e:?}");
        assert!(text.contains("TriggerInputSchemaMismatch"), "{text}");
        assert!(text.contains(&server.uri()), "origin named: {text}");
        assert!(
            !text.contains(SIG) && !text.contains("workflows/abc123"),
            "{text}"
        );
        let debug = format!("{n:?}");
        assert!(
            !debug.contains(SIG) && !debug.contains("workflows"),
            "{debug}"
        );
    }
}

#[tokio::test]
async fn timeout_is_retryable_and_hides_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let n = TeamsNotifier::builder()
        .webhook_url(SecretString::from(url(&server)))
        .http(http(200))
        .build()
        .unwrap();
    let e = n.notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(!e.to_string().contains(SIG));
}

#[tokio::test]
async fn healthcheck_refuses_retired_connector_urls() {
    let old = TeamsNotifier::builder()
        .webhook_url(SecretString::from(
            "https://acme.webhook.office.com/webhookb2/x/IncomingWebhook/y/z",
        ))
        .build()
        .unwrap();
    let e = old.healthcheck().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("IncomingWebhook"));
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(202), 0).await;
    notifier(&server).healthcheck().await.unwrap();
}

fn ctx(secrets: &SecretMap) -> BuildContext<'_> {
    BuildContext {
        id: "secops-teams",
        role: Role::Notifier,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(202), 1).await;
    let Builder::Notifier(build) = find(Role::Notifier, "teams").unwrap().builder else {
        panic!("teams is not registered as a notifier");
    };
    let secrets = SecretMap::new().with("TEAMS_URL", url(&server));
    let table: vowguard_core::ComponentConfig =
        toml::from_str("webhook_url = { env = \"TEAMS_URL\" }").unwrap();
    let n = build(&ctx(&secrets), table).unwrap();
    assert_eq!(n.kind(), "teams");
    n.notify(&alert()).await.unwrap();

    let table: vowguard_core::ComponentConfig =
        toml::from_str("webhook_url = { env = \"TEAMS_URL\" }\nchannel = \"x\"").unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        e.contains("channel") && e.contains("notifiers.secops-teams"),
        "{e}"
    );

    let bad = SecretMap::new().with("TEAMS_URL", "not a url sig=SECRET");
    let table: vowguard_core::ComponentConfig =
        toml::from_str("webhook_url = { env = \"TEAMS_URL\" }").unwrap();
    let e = build(&ctx(&bad), table).unwrap_err().to_string();
    assert!(e.contains("notifiers.secops-teams.webhook_url"), "{e}");
    assert!(!e.contains("SECRET"), "{e}");
}

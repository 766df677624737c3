//! Contract tests of the SMS notifier against a wiremock Twilio Messages API.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use vowguard_core::registry::{Role, find};
use vowguard_core::{
    Alert, BuildContext, Builder, Category, ErrorKind, Event, Notifier, Priority, RateLimit,
    SecretMap, Severity,
};
use vowguard_sms::{HttpOptions, HttpSinkBuilder};
use vowguard_sms::{SmsNotifier, SmsNotifierBuilder, segments};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-SECRET-123";
/// `Basic base64("AC0123456789abcdef0123456789abcdef:tok-SECRET-123")`.
const BASIC: &str = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0b2stU0VDUkVULTEyMw==";
const MESSAGES: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
const FROM: &str = "+15005550006";
const ANA: &str = "+447700900123";
const BEN: &str = "+15551234567";
const CAL: &str = "+33612345678";

fn http(timeout_ms: u64) -> HttpOptions {
    HttpOptions::default().with_timeout(std::time::Duration::from_millis(timeout_ms))
}

/// Everything but the sender.
fn account(server: &MockServer, to: &[&str]) -> SmsNotifierBuilder {
    SmsNotifier::builder(SID)
        .auth_token(SecretString::from(TOKEN))
        .to(to.iter().copied())
        .api_base_url(server.uri())
        .http(http(2_000))
}

fn config(server: &MockServer, to: &[&str]) -> SmsNotifierBuilder {
    account(server, to).from(FROM)
}

fn notifier(server: &MockServer, to: &[&str]) -> SmsNotifier {
    config(server, to).build().unwrap()
}

fn alert() -> Alert {
    let mut event = Event::new(Category::Authentication, "login", Severity::High);
    event.message = Some("5 failed logins".into());
    let mut a = Alert::new(Arc::new(event), Priority::P1High, "oncall");
    a.id = "0192f0c4-1a2b-7c3d-8e4f-5a6b7c8d9e0f".into();
    a
}

fn created(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued"}))
}

fn twilio_error(status: u16, code: u64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code, "message": message, "status": status,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}")
    }))
}

/// Mounts a response for messages to `to` (the form encodes `+` as `%2B`).
async fn mount_for(server: &MockServer, to: &str, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_string_contains(format!("To=%2B{}", &to[1..])))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn sends_the_exact_form_with_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", BASIC))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(created("SM1"))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = notifier(&server, &[ANA]).notify(&alert()).await.unwrap();
    assert_eq!(receipt.delivery_id.as_deref(), Some("SM1"));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        String::from_utf8(requests[0].body.clone()).unwrap(),
        "To=%2B447700900123&From=%2B15005550006&Body=P1+vowguard%3A+login+-+5+failed+logins+%7C+Ref+7c8d9e0f"
    );
}

#[tokio::test]
async fn messaging_service_sid_replaces_from() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, created("SM1"), 1).await;
    account(&server, &[ANA])
        .messaging_service_sid("MG0123456789abcdef0123456789abcdef")
        .build()
        .unwrap()
        .notify(&alert())
        .await
        .unwrap();
    let body =
        String::from_utf8(server.received_requests().await.unwrap()[0].body.clone()).unwrap();
    assert!(
        body.starts_with(
            "To=%2B447700900123&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&Body="
        ),
        "{body}"
    );
    assert!(!body.contains("From="));
}

#[tokio::test]
async fn long_hostile_ucs2_text_stays_within_two_segments() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, created("SM1"), 1).await;
    let mut a = alert();
    Arc::make_mut(&mut a.event).message = Some(format!("😀\r\nSTOP\u{0}{}", "ж".repeat(2000)));
    notifier(&server, &[ANA]).notify(&a).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let form: Vec<(String, String)> = url_decode(&requests[0].body);
    let body = &form.iter().find(|(k, _)| k == "Body").unwrap().1;
    assert!(segments(body).1 <= 2, "{body}");
    assert!(!body.chars().any(char::is_control), "{body:?}");
    assert!(body.contains("😀 STOP"), "{body}");
}

fn url_decode(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn opted_out_recipient_is_rejected_and_never_retried() {
    let server = MockServer::start().await;
    mount_for(
        &server,
        ANA,
        twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
        1,
    )
    .await;
    let n = notifier(&server, &[ANA]);
    let a = alert();
    for _ in 0..2 {
        let e = n.notify(&a).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("21610"), "{e}");
        assert!(!e.to_string().contains(ANA), "numbers are masked: {e}");
    }
}

#[tokio::test]
async fn opted_out_recipient_does_not_stop_the_others() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, created("SM-ana"), 1).await;
    mount_for(
        &server,
        BEN,
        twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
        1,
    )
    .await;
    mount_for(&server, CAL, created("SM-cal"), 1).await;
    let n = notifier(&server, &[ANA, BEN, CAL]);
    let a = alert();
    let receipt = n.notify(&a).await.unwrap();
    assert_eq!(receipt.delivery_id.as_deref(), Some("SM-ana,SM-cal"));
    // A repeated delivery of the same alert texts nobody again.
    assert_eq!(
        n.notify(&a).await.unwrap().delivery_id.as_deref(),
        Some("SM-ana,SM-cal")
    );
}

#[tokio::test]
async fn partial_failure_then_retry_texts_only_the_rest() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, created("SM-ana"), 1).await;
    Mock::given(method("POST"))
        .and(body_string_contains("To=%2B15551234567"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_for(&server, BEN, created("SM-ben"), 1).await;
    let n = notifier(&server, &[ANA, BEN]);
    let a = alert();
    let e = n.notify(&a).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert!(
        e.to_string().contains("1 of 2 recipients still to text"),
        "{e}"
    );
    let receipt = n.notify(&a).await.unwrap();
    assert_eq!(receipt.delivery_id.as_deref(), Some("SM-ana,SM-ben"));
    // A different alert is texted to both again.
    let server2 = MockServer::start().await;
    mount_for(&server2, ANA, created("SM-2"), 1).await;
    mount_for(&server2, BEN, created("SM-3"), 1).await;
    notifier(&server2, &[ANA, BEN])
        .notify(&alert())
        .await
        .unwrap();
}

#[tokio::test]
async fn rate_limits_are_retryable_and_stop_the_round() {
    let server = MockServer::start().await;
    mount_for(
        &server,
        ANA,
        twilio_error(429, 20429, "Too Many Requests").insert_header("Retry-After", "3"),
        1,
    )
    .await;
    mount_for(&server, BEN, created("SM-ben"), 0).await;
    let n = notifier(&server, &[ANA, BEN]);
    let e = n.notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    assert!(
        e.to_string().contains("2 of 2 recipients still to text"),
        "{e}"
    );
    assert_eq!(
        n.rate_limit(),
        Some(RateLimit {
            per_second: 1.0,
            burst: 5
        })
    );
}

#[tokio::test]
async fn plain_http_429_is_rate_limited() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, ResponseTemplate::new(429), 1).await;
    let e = notifier(&server, &[ANA])
        .notify(&alert())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn recipients_param_overrides_to_and_is_validated() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, created("SM-ana"), 0).await;
    mount_for(&server, CAL, created("SM-cal"), 1).await;
    let n = notifier(&server, &[ANA]);
    let mut a = alert();
    a.params.insert("recipients".into(), json!([CAL]));
    assert_eq!(
        n.notify(&a).await.unwrap().delivery_id.as_deref(),
        Some("SM-cal")
    );

    for bad in [
        json!(["+0033612345678"]),
        json!([33612345678u64]),
        json!("+33612345678"),
        json!([]),
    ] {
        let mut a = alert();
        a.params.insert("recipients".into(), bad.clone());
        let e = n.notify(&a).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected, "{bad}");
        assert!(e.to_string().contains("recipients"), "{e}");
    }
}

#[tokio::test]
async fn unauthorized_and_token_never_shown() {
    let server = MockServer::start().await;
    mount_for(
        &server,
        ANA,
        twilio_error(401, 20003, &format!("Authenticate with {TOKEN}")),
        1,
    )
    .await;
    let n = notifier(&server, &[ANA]);
    let e = n.notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(!e.is_retryable());
    let text = format!("{e} {e:?} {n:?}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("[redacted]"));
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created("SM1").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let e = config(&server, &[ANA])
        .http(http(200))
        .build()
        .unwrap()
        .notify(&alert())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn healthcheck_fetches_the_account_without_texting() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef.json",
        ))
        .and(header("authorization", BASIC))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"sid": SID, "status": "active"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(created("x"))
        .expect(0)
        .mount(&server)
        .await;
    notifier(&server, &[ANA]).healthcheck().await.unwrap();
}

fn ctx(secrets: &SecretMap) -> BuildContext<'_> {
    BuildContext {
        id: "oncall-sms",
        role: Role::Notifier,
        data_dir: data_dir(),
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    mount_for(&server, ANA, created("SM1"), 1).await;
    let Builder::Notifier(build) = find(Role::Notifier, "sms").unwrap().builder else {
        panic!("sms is not registered as a notifier");
    };
    let secrets = SecretMap::new().with("TW", TOKEN);
    let base = format!(
        "account_sid = \"{SID}\"\nauth_token = {{ env = \"TW\" }}\nfrom = \"{FROM}\"\napi_base_url = \"{}\"\n",
        server.uri()
    );
    let table: vowguard_core::ComponentConfig =
        toml::from_str(&format!("{base}to = [\"{ANA}\"]")).unwrap();
    let n = build(&ctx(&secrets), table).unwrap();
    assert_eq!(n.kind(), "sms");
    n.notify(&alert()).await.unwrap();

    let table: vowguard_core::ComponentConfig =
        toml::from_str(&format!("{base}to = [\"{ANA}\", \"0770090012\"]")).unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(e.contains("`notifiers.oncall-sms.to[1]`"), "{e}");

    let table: vowguard_core::ComponentConfig =
        toml::from_str(&format!("{base}numbers = []")).unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(
        e.contains("numbers") && e.contains("notifiers.oncall-sms"),
        "{e}"
    );
}

/// A data directory of this test run (the notifier keeps its delivery memory there).
fn data_dir() -> &'static Path {
    static DIR: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sms-contract-{}", std::process::id()))
    });
    &DIR
}

/// Twilio quotes the number in its errors (21211: "The 'To' number +15005550001 is not a
/// valid phone number."); the error vowguard returns, logs and records masks it, like its
/// own text does.
#[tokio::test]
async fn vendor_errors_never_carry_a_full_phone_number() {
    let server = MockServer::start().await;
    for number in [ANA, BEN] {
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .and(body_string_contains(number.trim_start_matches('+')))
            .respond_with(twilio_error(
                400,
                21211,
                &format!("The 'To' number {number} is not a valid phone number."),
            ))
            .mount(&server)
            .await;
    }
    let n = notifier(&server, &[ANA, BEN]);
    let error = n.notify(&alert()).await.unwrap_err();
    let text = format!("{error} {error:?}");
    for number in [ANA, BEN] {
        assert!(!text.contains(number), "{number} in {text}");
        assert!(
            !text.contains(number.trim_start_matches('+')),
            "{number} in {text}"
        );
    }
    assert!(text.contains("is not a valid phone number"), "{text}");
    assert!(text.contains("+447*******23"), "{text}");
    // A number in a route parameter that is not E.164 is masked too.
    let mut a = alert();
    a.params
        .insert("recipients".into(), json!(["0044 7700 900999"]));
    let error = n.notify(&a).await.unwrap_err().to_string();
    assert!(!error.contains("7700 900999"), "{error}");
}

//! Contract tests against a wiremock Slack on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use vowguard_core::registry::{self, Builder};
use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    Alert, BuildContext, Category, ErrorKind, Event, Notifier, Outcome, Priority, RateLimit, Role,
    SecretMap, Severity,
};
use vowguard_slack::{
    MAX_FIELD_TEXT, MAX_SECTION_TEXT, Mention, SlackConfig, SlackNotifier, build_message, text_len,
};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const HOOK_PATH: &str = "/services/T000/B000/XyzSECRETPATH";
const TOKEN: &str = "xoxb-SECRET-TOKEN-123";

fn alert() -> Alert {
    let mut e = Event::new(
        Category::DataExport,
        "guest_list.export",
        Severity::Critical,
    );
    e.id = "evt-1".into();
    e.timestamp = Utc.with_ymd_and_hms(2024, 6, 1, 14, 30, 0).unwrap();
    e.outcome = Outcome::Success;
    e.risk_score = Some(92);
    e.message = Some("412 guests exported".into());
    e.user_name = Some("alice".into());
    e.wedding_id = Some("wed-1".into());
    let mut a = Alert::new(Arc::new(e), Priority::P0Critical, "critical");
    a.id = "alert-1".into();
    a.reasons = vec!["severity critical".into()];
    a
}

fn alert_with(edit: impl FnOnce(&mut Event)) -> Alert {
    let mut a = alert();
    edit(Arc::make_mut(&mut a.event));
    a
}

fn config(text: &str) -> SlackConfig {
    toml::from_str(text).unwrap()
}

fn webhook(server: &MockServer, extra: &str) -> SlackNotifier {
    let url = format!("{}{HOOK_PATH}", server.uri());
    let c = config(&format!("webhook_url = {{ env = \"W\" }}\n{extra}"));
    c.into_builder(Some(SecretString::from(url)), None)
        .build()
        .unwrap()
}

fn bot(server: &MockServer, channels: &str, extra: &str) -> SlackNotifier {
    let c = config(&format!(
        "bot_token = {{ env = \"T\" }}\nchannels = {channels}\napi_base_url = \"{}/api\"\n{extra}",
        server.uri()
    ));
    c.into_builder(None, Some(SecretString::from(TOKEN)))
        .build()
        .unwrap()
}

async fn bodies(server: &MockServer) -> Vec<Vec<u8>> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r: Request| r.body)
        .collect()
}

fn ok_ts(ts: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "channel": "C1", "ts": ts}))
}

fn slack_error(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": code}))
}

/// Every string in a JSON value, recursively.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn webhook_posts_the_exact_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(header("content-type", "application/json; charset=utf-8"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let n = webhook(&server, "mentions = [\"here\"]");
    let receipt = n.notify(&alert()).await.unwrap();
    assert_eq!(receipt.delivery_id, None);

    let body: Value = serde_json::from_slice(&bodies(&server).await[0]).unwrap();
    let expected = json!({
        "text": "<!here> P0_CRITICAL · guest_list.export: 412 guests exported",
        "unfurl_links": false,
        "unfurl_media": false,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "P0_CRITICAL · guest_list.export", "emoji": false}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<!here>", "verbatim": true}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Priority*\nP0_CRITICAL", "verbatim": true},
                {"type": "mrkdwn", "text": "*Severity*\ncritical · data_export", "verbatim": true},
                {"type": "mrkdwn", "text": "*Who*\nalice", "verbatim": true},
                {"type": "mrkdwn", "text": "*Wedding*\nwed-1", "verbatim": true},
                {"type": "mrkdwn", "text": "*Risk*\n92/100", "verbatim": true},
                {"type": "mrkdwn", "text": "*Route*\ncritical", "verbatim": true},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*What*\nguest_list.export · success\n│ 412 guests exported", "verbatim": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Why*\n• severity critical", "verbatim": true}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Event evt-1 · 2024-06-01T14:30:00.000Z · Alert alert-1", "verbatim": true}]},
        ],
    });
    assert_eq!(
        body,
        expected,
        "{}",
        serde_json::to_string_pretty(&body).unwrap()
    );
    assert_eq!(body, build_message(&alert(), &[Mention::Here]));
}

#[tokio::test]
async fn event_text_arrives_escaped_and_config_mentions_do_not() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let n = webhook(&server, "mentions = [\"channel\", \"U0ONCALL\"]");
    let a = alert_with(|e| {
        e.action = "export & <!here>".into();
        e.message = Some("<!channel> please <@U1> & <https://evil.example|click>".into());
        e.user_name = Some("<@U1>&<!everyone>".into());
    });
    n.notify(&a).await.unwrap();

    let raw = bodies(&server).await.remove(0);
    let text = String::from_utf8(raw.clone()).unwrap();
    // The configured mentions notify: in their own section and in the fallback text.
    assert_eq!(text.matches("<!channel>").count(), 2, "{text}");
    assert_eq!(text.matches("<@U0ONCALL>").count(), 2, "{text}");
    // Nothing from the event does.
    for forbidden in ["<!here>", "<@U1>", "<!everyone>", "<https://"] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
    assert!(
        text.contains(
            "&lt;!channel&gt; please &lt;@U1&gt; &amp; &lt;https://evil.example|click&gt;"
        )
    );
    assert!(text.contains("&lt;@U1&gt;&amp;&lt;!everyone&gt;"));
    assert!(text.contains("export &amp; &lt;!here&gt;"));
    // Every `&` in every string starts an entity; no `<`/`>` except the configured mentions.
    let mut all = Vec::new();
    strings(&serde_json::from_slice(&raw).unwrap(), &mut all);
    for s in all {
        let s = s.replace("<!channel>", "").replace("<@U0ONCALL>", "");
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        for (i, _) in s.match_indices('&') {
            let rest = &s[i..];
            assert!(
                rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;"),
                "{s}"
            );
        }
    }
}

#[tokio::test]
async fn huge_and_odd_text_is_cut_and_stays_valid_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(2)
        .mount(&server)
        .await;
    let n = webhook(&server, "");
    let big = alert_with(|e| {
        e.message = Some("x<y & z ".repeat(1300)); // ~10 kB, and more once escaped
        e.user_name = Some("n".repeat(10_000));
    });
    n.notify(&big).await.unwrap();
    // Serde refuses lone surrogates at ingest, so the oddest text an event can carry is
    // controls, noncharacters, bidi overrides, joiners and astral characters.
    let odd = "\u{0}\u{1b}[31m\u{202E}gpj.exe\u{FFFF}\u{FFFE}\u{10FFFF}👩‍👩‍👧\u{7f}\\ud800\"}]},{";
    let strange = alert_with(|e| {
        e.message = Some(odd.into());
        e.action = odd.into();
        e.user_name = Some(odd.into());
    });
    n.notify(&strange).await.unwrap();

    let received = bodies(&server).await;
    let body: Value = serde_json::from_slice(&received[0]).unwrap();
    let fields = body["blocks"][1]["fields"].as_array().unwrap();
    for f in fields {
        assert!(text_len(f["text"].as_str().unwrap()) <= MAX_FIELD_TEXT);
    }
    let what = body["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        text_len(what) <= MAX_SECTION_TEXT && what.ends_with('…'),
        "{}",
        text_len(what)
    );
    let mut all = Vec::new();
    strings(&body, &mut all);
    assert!(all.iter().all(|s| text_len(s) <= MAX_SECTION_TEXT));

    let text = std::str::from_utf8(&received[1]).unwrap();
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["blocks"].as_array().unwrap().len(), 5);
    let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        !header.contains('\u{202E}') && !header.contains('\u{0}'),
        "{header:?}"
    );
    assert!(header.contains("👩‍👩‍👧"));
}

#[tokio::test]
async fn webhook_429_is_rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_string("rate_limited"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = webhook(&server, "").notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn webhook_5xx_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("rollup_error"))
        .expect(1)
        .mount(&server)
        .await;
    let e = webhook(&server, "").notify(&alert()).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.status(), Some(500));
}

#[tokio::test]
async fn webhook_vendor_errors_are_rejected_with_the_reason() {
    for (status, code) in [
        (400, "invalid_payload"),
        (404, "no_service"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
        (403, "action_prohibited"),
        (400, "no_text"),
        (400, "posting_to_general_channel_denied"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string(code))
            .expect(1)
            .mount(&server)
            .await;
        let e = webhook(&server, "").notify(&alert()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected, "{code}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains(code), "{e}");
        assert!(!e.to_string().contains("SECRETPATH"), "{e}");
    }
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("ok")
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let n = webhook(&server, "[http]\ntimeout = \"200ms\"");
    let e = n.notify(&alert()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(!e.to_string().contains("SECRETPATH"), "{e}");
}

#[tokio::test]
async fn bot_posts_to_each_channel_with_bearer_auth() {
    let server = MockServer::start().await;
    for (channel, ts) in [
        ("#security-emergency", "1700000000.000100"),
        ("#wedding-ops-urgent", "1700000000.000200"),
    ] {
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json; charset=utf-8"))
            .and(body_partial_json(json!({"channel": channel})))
            .respond_with(ok_ts(ts))
            .expect(1)
            .mount(&server)
            .await;
    }
    let n = bot(
        &server,
        r##"["#security-emergency", "#wedding-ops-urgent"]"##,
        "mentions = [\"subteam^S0SEC\"]",
    );
    let receipt = n.notify(&alert()).await.unwrap();
    assert_eq!(
        receipt.delivery_id.as_deref(),
        Some("#security-emergency:1700000000.000100,#wedding-ops-urgent:1700000000.000200")
    );
    let received = bodies(&server).await;
    assert_eq!(received.len(), 2);
    let body: Value = serde_json::from_slice(&received[0]).unwrap();
    let mut expected = build_message(&alert(), &[Mention::Group("S0SEC".into())]);
    expected["channel"] = json!("#security-emergency");
    assert_eq!(body, expected);
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("<!subteam^S0SEC> ")
    );
}

#[tokio::test]
async fn bot_vendor_errors_map_onto_kinds() {
    for (code, kind) in [
        ("channel_not_found", ErrorKind::Rejected),
        ("is_archived", ErrorKind::Rejected),
        ("not_in_channel", ErrorKind::Rejected),
        ("msg_too_long", ErrorKind::Rejected),
        ("invalid_auth", ErrorKind::Unauthorized),
        ("token_revoked", ErrorKind::Unauthorized),
        ("missing_scope", ErrorKind::Unauthorized),
        ("internal_error", ErrorKind::Unavailable),
        ("service_unavailable", ErrorKind::Unavailable),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(slack_error(code))
            .expect(1)
            .mount(&server)
            .await;
        let e = bot(&server, r##"["#a"]"##, "")
            .notify(&alert())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{code}: {e}");
        assert!(e.to_string().contains(code), "{e}");
        assert!(e.to_string().contains("#a"), "{e}");
        assert!(!e.to_string().contains(TOKEN), "{e}");
    }
}

#[tokio::test]
async fn bot_ratelimited_carries_retry_after() {
    for status in [200, 429] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("Retry-After", "3")
                    .set_body_json(json!({"ok": false, "error": "ratelimited"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let e = bot(&server, r##"["#a"]"##, "")
            .notify(&alert())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{status}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }
}

#[tokio::test]
async fn partial_failure_retry_posts_only_to_the_missing_channel() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"channel": "#a"})))
        .respond_with(ok_ts("1.1"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"channel": "#b"})))
        .respond_with(slack_error("internal_error"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"channel": "#b"})))
        .respond_with(ok_ts("2.2"))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let n = bot(&server, r##"["#a", "#b"]"##, "");
    let a = alert();
    let e = n.notify(&a).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("1 of 2 channels failed"), "{e}");
    assert!(e.to_string().contains("already delivered to #a"), "{e}");
    let receipt = n.notify(&a).await.unwrap();
    assert_eq!(receipt.delivery_id.as_deref(), Some("#a:1.1,#b:2.2"));
    assert_eq!(bodies(&server).await.len(), 3);
}

#[tokio::test]
async fn worst_error_is_returned_and_unauthorized_stops_early() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"channel": "#a"})))
        .respond_with(slack_error("channel_not_found"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"channel": "#b"})))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .expect(1)
        .mount(&server)
        .await;
    let e = bot(&server, r##"["#a", "#b"]"##, "")
        .notify(&alert())
        .await
        .unwrap_err();
    // #b may still succeed: retryable, so the dispatcher comes back for it.
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.to_string().contains("channel_not_found"), "{e}");
    drop(server);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(slack_error("invalid_auth"))
        .expect(1)
        .mount(&server)
        .await;
    let e = bot(&server, r##"["#a", "#b", "#c"]"##, "")
        .notify(&alert())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}

#[tokio::test]
async fn route_params_override_channels_and_add_mentions() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"channel": "#configured"})))
        .respond_with(ok_ts("0.1"))
        .expect(0)
        .mount(&server)
        .await;
    for channel in ["#route-one", "C0ROUTE2"] {
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"channel": channel})))
            .respond_with(ok_ts("9.9"))
            .expect(1)
            .mount(&server)
            .await;
    }
    let n = bot(&server, r##"["#configured"]"##, "mentions = [\"here\"]");
    let mut a = alert();
    a.params.insert("channel".into(), json!("#route-one"));
    a.params
        .insert("channels".into(), json!(["C0ROUTE2", "#route-one"]));
    a.params.insert("mention".into(), json!(["U0LEAD", "here"]));
    let receipt = n.notify(&a).await.unwrap();
    assert_eq!(
        receipt.delivery_id.as_deref(),
        Some("#route-one:9.9,C0ROUTE2:9.9")
    );
    let body: Value = serde_json::from_slice(&bodies(&server).await[0]).unwrap();
    assert_eq!(body["blocks"][1]["text"]["text"], "<!here> <@U0LEAD>");

    let mut bad = alert();
    bad.params.insert("mention".into(), json!("<!channel>"));
    let e = n.notify(&bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("route `critical`") && e.to_string().contains("`mention`"),
        "{e}"
    );
    let mut bad = alert();
    bad.params.insert("channels".into(), json!([1]));
    assert_eq!(n.notify(&bad).await.unwrap_err().kind(), ErrorKind::Config);
}

#[tokio::test]
async fn healthcheck_calls_auth_test_in_bot_mode_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/auth.test"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "team": "T"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/auth.test"))
        .respond_with(slack_error("invalid_auth"))
        .expect(1)
        .mount(&server)
        .await;
    let n = bot(&server, r##"["#a"]"##, "");
    n.healthcheck().await.unwrap();
    let e = n.healthcheck().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    drop(server);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(0)
        .mount(&server)
        .await;
    webhook(&server, "").healthcheck().await.unwrap();
}

fn build_with(table: &str, secrets: &SecretMap) -> Result<Arc<dyn Notifier>, vowguard_core::Error> {
    let factory = registry::find(Role::Notifier, "slack").unwrap();
    let Builder::Notifier(build) = factory.builder else {
        panic!("slack is not registered as a notifier");
    };
    let ctx = BuildContext {
        id: "secops",
        role: Role::Notifier,
        data_dir: data_dir(),
        config_dir: Path::new("."),
        secrets,
    };
    build(&ctx, toml::from_str(table).unwrap())
}

#[tokio::test]
async fn registered_factory_builds_a_working_notifier() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let secrets =
        SecretMap::new().with("SLACK_WEBHOOK_URL", format!("{}{HOOK_PATH}", server.uri()));
    let n = build_with(
        "webhook_url = { env = \"SLACK_WEBHOOK_URL\" }\nmentions = [\"here\"]",
        &secrets,
    )
    .unwrap();
    assert_eq!(n.kind(), "slack");
    assert_eq!(
        n.rate_limit(),
        Some(RateLimit {
            per_second: 1.0,
            burst: 3
        })
    );
    n.notify(&alert()).await.unwrap();

    let secrets = SecretMap::new().with("SLACK_BOT_TOKEN", TOKEN);
    let n = build_with(
        "bot_token = { env = \"SLACK_BOT_TOKEN\" }\nchannels = [\"#security-emergency\", \"#wedding-ops-urgent\"]",
        &secrets,
    )
    .unwrap();
    let debug = format!("{n:?}");
    assert!(
        debug.contains("#wedding-ops-urgent") && !debug.contains(TOKEN),
        "{debug}"
    );
}

#[test]
fn factory_config_errors_name_the_key() {
    let secrets = SecretMap::new()
        .with("W", "https://hooks.slack.com/services/T/B/SECRETPATH")
        .with("T", TOKEN);
    let err = |table: &str| build_with(table, &secrets).unwrap_err();

    let e = err("webhook_url = { env = \"W\" }\nchanel = \"#a\"");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("chanel") && e.to_string().contains("notifiers.secops"),
        "{e}"
    );

    for table in [
        "",
        "webhook_url = { env = \"W\" }\nbot_token = { env = \"T\" }\nchannels = [\"#a\"]",
    ] {
        let e = err(table).to_string();
        assert!(
            e.contains("`webhook_url`")
                && e.contains("`bot_token`")
                && e.contains("notifiers.secops"),
            "{e}"
        );
    }
    let e = err("bot_token = { env = \"T\" }").to_string();
    assert!(e.contains("notifiers.secops.channels"), "{e}");
    let e = err("webhook_url = { env = \"W\" }\nmentions = [\"@here\"]").to_string();
    assert!(
        e.contains("notifiers.secops.mentions") && e.contains("\"@here\""),
        "{e}"
    );
    let e = err("webhook_url = { env = \"MISSING\" }").to_string();
    assert!(
        e.contains("notifiers.secops.webhook_url") && e.contains("MISSING"),
        "{e}"
    );
    let e = err("webhook_url = \"https://hooks.slack.com/services/T/B/SECRETPATH\"").to_string();
    assert!(
        e.contains("inline secrets are not accepted") && !e.contains("SECRETPATH"),
        "{e}"
    );

    let bad_url = SecretMap::new().with("W", "hooks.slack.com/services/T/B/SECRETPATH");
    let e = build_with("webhook_url = { env = \"W\" }", &bad_url)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("webhook_url") && !e.contains("SECRETPATH"),
        "{e}"
    );
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&server)
        .await;
    let n = webhook(&server, "");
    let debug = format!("{n:?}");
    assert!(
        !debug.contains("SECRETPATH") && !debug.contains("/services"),
        "{debug}"
    );
    assert!(debug.contains(&server.uri()), "{debug}");
    let e = n.notify(&alert()).await.unwrap_err();
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(
            !text.contains("SECRETPATH") && !text.contains("/services"),
            "{text}"
        );
        assert!(text.contains(&server.uri()), "{text}");
    }

    // Nothing listens on port 9 of loopback: the transport error must not print the URL.
    let c = config("webhook_url = { env = \"W\" }");
    let url = SecretString::from(format!("http://127.0.0.1:9{HOOK_PATH}"));
    let n = c.into_builder(Some(url), None).build().unwrap();
    let e = n.notify(&alert()).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        !e.to_string().contains("SECRETPATH") && !format!("{e:?}").contains("SECRETPATH"),
        "{e:?}"
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(slack_error("invalid_auth"))
        .mount(&server)
        .await;
    let n = bot(&server, r##"["#a"]"##, "");
    assert!(!format!("{n:?}").contains(TOKEN));
    let e = n.notify(&alert()).await.unwrap_err();
    assert!(
        !e.to_string().contains(TOKEN) && !format!("{e:?}").contains(TOKEN),
        "{e:?}"
    );
    let e = n.healthcheck().await.unwrap_err();
    assert!(!format!("{e:?}").contains(TOKEN), "{e:?}");
}

#[test]
fn exactly_one_credential_selects_the_mode() {
    let both = SlackNotifier::builder()
        .webhook_url(SecretString::from("https://hooks.slack.com/x"))
        .bot_token(SecretString::from(TOKEN))
        .channels(["#a"]);
    let e = both.build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("not both"), "{e}");
    // An embedder passes the secret directly: no secret reference is needed.
    SlackNotifier::builder()
        .bot_token(SecretString::from(TOKEN))
        .channels(["#a"])
        .build()
        .unwrap();
}

/// A data directory of this test run (the notifier keeps its delivery memory there).
fn data_dir() -> &'static Path {
    static DIR: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("slack-contract-{}", std::process::id()))
    });
    &DIR
}

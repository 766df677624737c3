//! Log injection, end to end: hostile text in every text field of events on stdin (line
//! breaks, ANSI escapes, whole fake log lines) goes through the real binary (stdin source,
//! wedding context, a Splunk sink, a Slack notifier, the default routes and the wedding-day
//! protocols), and every line on standard error must still be one well-formed log line:
//! nothing forged, no control character, no colour. The JSON format must stay one valid
//! JSON object per line.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A fake log line, preceded by every kind of line break and followed by an ANSI sequence.
const FORGED: &str = "\n2001-01-01T00:00:00.000000Z ERROR vowguard_pipeline: FORGED\r\n2001-01-01T00:00:00.000000Z  WARN x: FORGED level=ERROR\r2001-01-01T00:00:00.000000Z ERROR FORGED\u{1b}[2K\u{1b}[31mFORGED\u{1b}[0m\u{2028}FORGED\u{85}FORGED\u{7}\t";

fn hostile(prefix: &str) -> String {
    format!("{prefix}{FORGED}")
}

/// Events with the hostile text in every text field, and lines rejected for hostile reasons.
fn input() -> String {
    let text_fields = [
        "action",
        "message",
        "user_id",
        "user_name",
        "user_agent",
        "domain",
        "url",
        "file_hash",
        "resource_type",
        "resource_id",
    ];
    let mut every_field = serde_json::Map::new();
    for field in text_fields {
        every_field.insert(field.into(), hostile(field).into());
    }
    every_field.insert("category".into(), "authentication".into());
    every_field.insert("outcome".into(), "failure".into());
    every_field.insert("severity".into(), "high".into());
    // The wedding happening today: active wedding protection requests actions for the user
    // (the action log's `users=` and `reason=`).
    every_field.insert("wedding_id".into(), "w-today".into());
    every_field.insert(
        "labels".into(),
        serde_json::json!({ hostile("label-key"): hostile("label-value") }),
    );
    every_field.insert(
        "attributes".into(),
        serde_json::json!({ hostile("attribute-key"): hostile("attribute-value") }),
    );
    let mut unknown_wedding = every_field.clone();
    unknown_wedding.insert("wedding_id".into(), hostile("wedding").into());
    unknown_wedding.insert("category".into(), "data_export".into());
    unknown_wedding.insert("action".into(), hostile("guest_list.export").into());
    unknown_wedding.insert("record_count".into(), 900.into());
    unknown_wedding.insert("severity".into(), "critical".into());
    let lines = [
        serde_json::Value::Object(every_field).to_string(),
        serde_json::Value::Object(unknown_wedding).to_string(),
        // Rejected lines whose error message carries the hostile text.
        serde_json::json!({ "action": "x", "severity": "low", "labels": { hostile("bad-label"): 1 } })
            .to_string(),
        serde_json::json!({ "action": "x", "severity": hostile("severity") }).to_string(),
        serde_json::json!({ "action": "x", "severity": "low", "id": hostile("id") }).to_string(),
        serde_json::json!({ "action": "x", "severity": "low", "timestamp": hostile("ts") }).to_string(),
        serde_json::json!({ "action": "x", "severity": "low", "source_ip": hostile("ip") }).to_string(),
        format!("{{\"action\": \"{}", FORGED.replace('\n', " ")),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

struct Mocks {
    hec: MockServer,
    slack: MockServer,
}

async fn mocks() -> Mocks {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    Mocks { hec, slack }
}

fn write_config(dir: &Path, mocks: &Mocks) -> std::path::PathBuf {
    let today = chrono::Utc::now().date_naive();
    std::fs::write(
        dir.join("weddings.json"),
        format!(
            r#"[{{"wedding_id":"w-today","date":"{today}","timezone":"UTC","guest_count":150}}]"#
        ),
    )
    .unwrap();
    let text = format!(
        r#"
data_dir = "data"
[sources.in]
type = "stdin"
[enrichers.wedding]
type = "wedding_context"
provider = "file"
path = "weddings.json"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "INJECTION_HEC_TOKEN" }}
batch = {{ max_events = 100, max_wait = "20ms" }}
[notifiers.secops]
type = "slack"
webhook_url = {{ env = "INJECTION_SLACK_WEBHOOK" }}
"#,
        hec = mocks.hec.uri()
    );
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn run(config: &Path, mocks: &Mocks, format: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--log-format",
            format,
        ])
        .env("INJECTION_HEC_TOKEN", "injection-hec-token")
        .env(
            "INJECTION_SLACK_WEBHOOK",
            format!("{}/services/T/B/x", mocks.slack.uri()),
        )
        // Every log site of every crate that can carry event text, down to debug.
        .env(
            "VOWGUARD_LOG",
            "debug,hyper=info,hyper_util=info,reqwest=info,h2=info,rustls=info",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vowguard starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the run ends with the input: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `2026-06-20T10:00:00.123456Z  INFO target: ...`, or with the span it was logged in:
/// `2026-06-20T10:00:00.123456Z  WARN notify{notifier=secops ...}: target: ...`.
fn is_log_line(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let (Some(time), Some(level), Some(target)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let span_context = target.split_once('{').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    });
    chrono::DateTime::parse_from_rfc3339(time).is_ok()
        && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
        && (target.ends_with(':') || span_context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_event_text_cannot_forge_a_human_log_line() {
    let mocks = mocks().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mocks);
    let output = run(&config, &mocks, "human");
    let stderr = String::from_utf8(output.stderr).unwrap();

    let mut carrying = 0;
    for line in stderr.lines() {
        assert!(is_log_line(line), "not a log line: {line:?}\n\n{stderr}");
        assert!(!line.starts_with("2001-01-01"), "a forged line: {line:?}");
        assert!(
            !line.chars().any(vowguard_runtime::logging::needs_escape),
            "a control character reached the log: {line:?}"
        );
        if line.contains("FORGED") {
            carrying += 1;
        }
    }
    assert!(!stderr.contains('\u{1b}'), "no ANSI on a pipe");
    // The hostile text did reach the log (escaped), from the places the issue names.
    assert!(
        carrying >= 3,
        "hostile text reached {carrying} line(s):\n{stderr}"
    );
    assert!(
        stderr.contains(r"line 3 rejected: field `labels.bad-label\n2001-01-01T00:00:00.000000Z ERROR vowguard_pipeline: FORGED\r\n"),
        "the rejected line's label key, escaped:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("users=[\"user_id\\n2001-01-01T00:00:00.000000Z ERROR")),
        "the protocol action log's users, escaped:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_event_text_keeps_json_logs_one_object_per_line() {
    let mocks = mocks().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mocks);
    let output = run(&config, &mocks, "json");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let mut carrying = 0;
    for line in stderr.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n\n{stderr}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
        assert!(!line.chars().any(|c| c < ' '), "{line:?}");
        if line.contains("FORGED") {
            carrying += 1;
        }
    }
    assert!(
        carrying >= 3,
        "hostile text reached {carrying} line(s):\n{stderr}"
    );
}

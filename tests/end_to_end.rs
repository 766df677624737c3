//! End to end: the real `vowguard` binary, events on stdin, wiremock endpoints for Splunk HEC
//! and Slack, and the files it leaves in `data_dir`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEC_TOKEN: &str = "e2e-hec-token-5d1c";
const SLACK_SECRET: &str = "e2e-slack-secret-88aa";

fn write_config(dir: &Path, hec: &str, slack_enabled: bool) -> std::path::PathBuf {
    let mut text = format!(
        r#"
data_dir = "data"

[sources.in]
type = "stdin"

[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "E2E_HEC_TOKEN" }}
index = "wedding-security"
batch = {{ max_events = 100, max_wait_ms = 50 }}
retry = {{ max_attempts = 3, initial_backoff_ms = 20 }}
"#
    );
    if slack_enabled {
        text.push_str(
            r##"
[notifiers.secops]
type = "slack"
webhook_url = { env = "E2E_SLACK_WEBHOOK" }
mentions = ["here"]

[[routes]]
name = "critical"
match = { priority = ["P0"] }
notify = ["secops"]
"##,
        );
    }
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn vowguard(args: &[&str], stdin: &str, slack_url: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .env("E2E_HEC_TOKEN", HEC_TOKEN)
        .env("E2E_SLACK_WEBHOOK", slack_url)
        .env("VOWGUARD_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vowguard starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const INPUT: &str = concat!(
    r#"{"id":"e2e-1","timestamp":"2026-06-20T10:00:00Z","category":"authentication","action":"login","outcome":"failure","severity":"medium","user_id":"planner-17","source_ip":"203.0.113.7"}"#,
    "\n",
    r#"{"id":"e2e-2","action":"login","severity":"severe"}"#,
    "\n",
    "\n",
    r#"{"id":"e2e-3","timestamp":"2026-06-20T10:05:00Z","category":"data_export","action":"guest_list.export","severity":"critical","message":"<!channel> export by @everyone","wedding_id":"w-1","record_count":450}"#,
    "\n",
    "not json at all\n",
    r#"{"id":"e2e-4","timestamp":"2026-06-20T10:06:00Z","action":"vendor.view","severity":"info"}"#,
    "\n",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_to_splunk_and_slack() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .and(header(
            "authorization",
            format!("Splunk {HEC_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/services/T1/B1/{SLACK_SECRET}")))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&slack)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hec.uri(), true);
    let slack_url = format!("{}/services/T1/B1/{SLACK_SECRET}", slack.uri());

    let output = tokio::task::spawn_blocking(move || {
        vowguard(
            &["run", "--config", config.to_str().unwrap()],
            INPUT,
            &slack_url,
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stderr}",
        output.status
    );

    // Malformed lines are reported with their line number and the field; the rest flowed.
    assert!(
        stderr.contains("line 2 rejected: field `severity`: expected one of"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5 rejected: invalid JSON at column 2"),
        "{stderr}"
    );
    assert!(
        stderr.contains("accepted=3") && stderr.contains("rejected=2"),
        "{stderr}"
    );

    // Splunk got exactly the three valid events, as concatenated HEC envelopes.
    let mut ids = Vec::new();
    for request in hec.received_requests().await.unwrap() {
        for envelope in
            serde_json::Deserializer::from_slice(&request.body).into_iter::<serde_json::Value>()
        {
            let envelope = envelope.unwrap();
            assert_eq!(envelope["index"], "wedding-security");
            ids.push(envelope["event"]["id"].as_str().unwrap().to_owned());
        }
    }
    ids.sort();
    assert_eq!(ids, ["e2e-1", "e2e-3", "e2e-4"]);

    // The P0 event reached Slack with the attacker's mention escaped and the configured one live.
    let requests = slack.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&requests[0].body);
    assert!(body.contains("&lt;!channel&gt;"), "{body}");
    assert!(!body.contains("<!channel>"), "{body}");
    assert!(body.contains("<!here>"), "{body}");

    // Secrets never reach the logs.
    assert!(
        !stderr.contains(HEC_TOKEN) && !stderr.contains(SLACK_SECRET),
        "{stderr}"
    );

    // The notification log in data_dir records the delivery and its route.
    let log = std::fs::read_to_string(dir.path().join("data/notifications.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(record["route"], "critical");
    assert_eq!(record["notifier"], "secops");
    assert_eq!(record["delivered"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejection_goes_to_dead_letters_and_exits_zero() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string(r#"{"text":"Incorrect index","code":7}"#),
        )
        .expect(1)
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hec.uri(), false);
    let input = r#"{"id":"dl-1","action":"login","severity":"low"}"#.to_owned() + "\n";
    let output = tokio::task::spawn_blocking(move || {
        vowguard(&["run", "--config", config.to_str().unwrap()], &input, "")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let letters = std::fs::read_to_string(dir.path().join("data/dead_letters.jsonl")).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    assert_eq!(letter["sink"], "splunk");
    assert_eq!(letter["event"]["id"], "dl-1");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("Incorrect index"),
        "{letter}"
    );
    assert!(!letters.contains(HEC_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_runs_healthchecks_and_names_bad_keys() {
    let hec = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"HEC is healthy","code":17}"#),
        )
        .expect(1)
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hec.uri(), false);
    let path = config.to_str().unwrap().to_owned();
    let output =
        tokio::task::spawn_blocking(move || vowguard(&["validate", "--config", &path], "", ""))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("sink splunk (splunk_hec): healthy"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("index =", "indexx =");
    std::fs::write(&config, text).unwrap();
    let path = config.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        vowguard(
            &["validate", "--config", &path, "--skip-healthchecks"],
            "",
            "",
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`sinks.splunk`: unknown field `indexx`"),
        "{stderr}"
    );
}

#[test]
fn connectors_lists_what_is_compiled_in() {
    let output = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .arg("connectors")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for kind in vowguard_runtime::enabled_connector_kinds() {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(kind)),
            "{kind} missing:\n{stdout}"
        );
    }
}

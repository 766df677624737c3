//! End to end: the real `vowguard` binary, events on stdin, wiremock endpoints for Splunk HEC
//! and Slack, and the files it leaves in `data_dir`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{free_port, scrape_metrics, spawn_run, terminate, wait_healthy};
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
batch = {{ max_events = 100, max_wait = "50ms" }}
retry = {{ max_attempts = 3, initial_backoff = "20ms" }}
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_once_the_endpoint_accepts() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string(r#"{"text":"Incorrect index","code":7}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hec)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hec.uri(), false);
    let cfg = config.to_str().unwrap().to_owned();
    let input = r#"{"id":"replay-me","action":"login","severity":"low"}"#.to_owned() + "\n";
    let (c1, c2, c3, c4) = (cfg.clone(), cfg.clone(), cfg.clone(), cfg.clone());
    let run = tokio::task::spawn_blocking(move || vowguard(&["run", "--config", &c1], &input, ""))
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let list =
        tokio::task::spawn_blocking(move || vowguard(&["dlq", "list", "--config", &c2], "", ""))
            .await
            .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("replay-me") && listed.contains("1 dead letter(s)"),
        "{listed}"
    );
    let show = tokio::task::spawn_blocking(move || {
        vowguard(&["dlq", "show", "--config", &c3, "replay-me"], "", "")
    })
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("Incorrect index"));
    let replay =
        tokio::task::spawn_blocking(move || vowguard(&["dlq", "replay", "--config", &c4], "", ""))
            .await
            .unwrap();
    let replayed = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "{replayed}{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(
        replayed.contains("replayed 1: 1 delivered, 0 failed again"),
        "{replayed}"
    );
    let bodies: Vec<String> = hec
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(bodies.len(), 2, "the original attempt and the replay");
    assert!(bodies[1].contains("replay-me"));
    let list =
        tokio::task::spawn_blocking(move || vowguard(&["dlq", "list", "--config", &cfg], "", ""))
            .await
            .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("0 dead letter(s)"));
}

fn http_config(dir: &Path, hec: &str, port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "2s"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "E2E_HEC_TOKEN" }}
batch = {{ max_events = 100, max_wait = "20ms" }}
retry = {{ max_attempts = 1000, initial_backoff = "20ms", max_backoff = "200ms" }}
breaker = {{ failure_threshold = 0 }}
"#
    );
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_source_acknowledges_after_the_journal_and_names_bad_fields() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = http_config(dir.path(), &hec.uri(), port);
    let child = spawn_run(&config, &[("E2E_HEC_TOKEN", HEC_TOKEN)], Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let url = format!("http://127.0.0.1:{port}/v1/events");

    let r = client
        .post(&url)
        .body(r#"[{"id":"h-1","action":"login","severity":"high"},{"action":"x","severity":"loud"},{"id":"h-2","action":"export","severity":"low"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"][0]["index"], 1);
    assert!(
        body["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("field `severity`"),
        "{body}"
    );

    let r = client
        .post(&url)
        .body(r#"{"action": "x",,}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON at line 1 column"),
        "{body}"
    );

    let r = client
        .post(&url)
        .body(r#"{"action":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no valid event");

    // Delivered, visible in the metrics.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = scrape_metrics(&client, port).await;
        if text.contains("vowguard_sink_delivered_total{sink=\"splunk\"} 2") {
            assert!(
                text.contains("# TYPE vowguard_sink_request_duration_seconds histogram"),
                "{text}"
            );
            assert!(
                text.contains("vowguard_http_events_rejected_total 2"),
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    terminate(&child);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "graceful shutdown exits 0: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_tests_siems_and_routing_only_with_the_token() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/services/T1/B1/{SLACK_SECRET}")))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = http_config(dir.path(), &hec.uri(), port);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        &format!("listen = \"127.0.0.1:{port}\""),
        &format!("listen = \"127.0.0.1:{port}\"\nadmin_token = {{ env = \"E2E_ADMIN_TOKEN\" }}\nmax_body_bytes = 4096"),
    );
    text.push_str(
        r##"
[notifiers.secops]
type = "slack"
webhook_url = { env = "E2E_SLACK_WEBHOOK" }
[[routes]]
name = "high"
match = { priority = ["P0", "P1"] }
notify = ["secops"]
"##,
    );
    std::fs::write(&config, text).unwrap();
    let webhook = format!("{}/services/T1/B1/{SLACK_SECRET}", slack.uri());
    let child = spawn_run(
        &config,
        &[
            ("E2E_HEC_TOKEN", HEC_TOKEN),
            ("E2E_ADMIN_TOKEN", "admin-s3cret"),
            ("E2E_SLACK_WEBHOOK", &webhook),
        ],
        Stdio::piped(),
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let base = format!("http://127.0.0.1:{port}");

    // Without (or with a wrong) token: 401 and nothing is sent anywhere.
    for auth in [None, Some("Bearer nope"), Some("admin-s3cret")] {
        let mut request = client.post(format!("{base}/api/security/test-siem-integration"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{auth:?}");
    }
    let r = client
        .post(format!("{base}/api/security/test-alert-routing"))
        .body(r#"{"severity":"P1_HIGH","wedding_impact":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        hec.received_requests().await.unwrap().is_empty(),
        "nothing sent without the token"
    );
    assert!(
        slack.received_requests().await.unwrap().is_empty(),
        "nothing sent without the token"
    );

    // With the token.
    let r = client
        .post(format!("{base}/api/security/test-siem-integration"))
        .bearer_auth("admin-s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["sinks"]["splunk"]["status"], "ok", "{body}");
    assert!(body["sinks"]["splunk"]["latency_ms"].as_f64().is_some());
    let sent =
        String::from_utf8_lossy(&hec.received_requests().await.unwrap()[0].body).into_owned();
    assert!(sent.contains("vowguard.integration_test"), "{sent}");

    let r = client
        .post(format!("{base}/api/security/test-alert-routing"))
        .bearer_auth("admin-s3cret")
        .body(r#"{"severity":"P1_HIGH","wedding_impact":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["routed"], true, "{body}");
    assert_eq!(body["alerts"][0]["route"], "high", "{body}");
    assert_eq!(
        body["alerts"][0]["channels"]["secops"]["status"], "ok",
        "{body}"
    );
    assert_eq!(slack.received_requests().await.unwrap().len(), 1);

    let r = client
        .post(format!("{base}/api/security/test-alert-routing"))
        .bearer_auth("admin-s3cret")
        .body(r#"{"severity":"P9"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(format!("{base}/v1/events"))
        .body(vec![b' '; 8192])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "bodies over max_body_bytes are refused");

    terminate(&child);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("admin-s3cret") && !stderr.contains(SLACK_SECRET),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_answers_503_with_retry_after_and_acknowledges_nothing_it_dropped() {
    // The sink's endpoint is down, so nothing leaves the 64 KiB journal.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = http_config(dir.path(), &closed, port);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "shutdown_timeout = \"2s\"",
        "shutdown_timeout = \"200ms\"\nmax_journal_bytes = 65536\nwhen_full = \"drop_newest\"",
    );
    std::fs::write(&config, text).unwrap();
    let child = spawn_run(&config, &[("E2E_HEC_TOKEN", HEC_TOKEN)], Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let url = format!("http://127.0.0.1:{port}/v1/events");
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..2_000 {
        let event = serde_json::json!({"id": format!("full-{i}"), "action": "login", "severity": "low", "message": "x".repeat(300)});
        let r = client.post(&url).json(&event).send().await.unwrap();
        match r.status().as_u16() {
            202 => accepted += 1,
            503 => {
                refused = Some((
                    r.headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned()),
                    r.text().await.unwrap(),
                ));
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let (retry_after, body) = refused.expect("a 64 KiB journal fills up");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(body.contains("journal is full"), "{body}");
    assert!(
        accepted > 10,
        "events were accepted before the journal filled ({accepted})"
    );
    let metrics = scrape_metrics(&client, port).await;
    assert!(
        metrics.contains("vowguard_events_dropped_total 1"),
        "{metrics}"
    );
    terminate(&child);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn route_explain_and_route_test_for_users_ci() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        r#"
[sources.in]
type = "stdin"
[notifiers.oncall]
type = "pagerduty"
routing_key = { env = "E2E_PD_KEY" }
[notifiers.secops]
type = "slack"
webhook_url = { env = "E2E_SLACK_WEBHOOK" }
"#,
    )
    .unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"id":"x-1","timestamp":"2026-06-20T10:00:00Z","category":"authorization","action":"admin.permission_denied","outcome":"failure","severity":"medium"}"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(args)
            .env("E2E_PD_KEY", "R0uT1nGKeYe2e000000000000000000042")
            .env("E2E_SLACK_WEBHOOK", "http://127.0.0.1:9/services/T/B/x")
            .env("VOWGUARD_LOG", "warn")
            .output()
            .unwrap()
    };
    let output = run(&[
        "route",
        "explain",
        "--config",
        config.to_str().unwrap(),
        event.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("priority: P1_HIGH"),
        "Saturday raises medium to P1:\n{text}"
    );
    assert!(text.contains("Saturday escalation"), "{text}");
    assert!(
        text.contains("p1-high"),
        "the default routing table:\n{text}"
    );

    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"
[[cases]]
name = "saturday medium pages on-call"
event = { timestamp = "2026-06-20T10:00:00Z", action = "login", outcome = "failure", severity = "medium" }
expect = { priority = "P1_HIGH", notifiers = ["oncall", "secops"] }

[[cases]]
name = "wednesday info stays quiet"
event = { timestamp = "2026-06-17T10:00:00Z", action = "rsvp.view", severity = "info" }
expect = { priority = "P4_INFO" }
"#,
    )
    .unwrap();
    let output = run(&[
        "route",
        "test",
        "--config",
        config.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("2 passed, 0 failed"), "{text}");

    let failing = std::fs::read_to_string(&cases).unwrap().replace(
        r#"expect = { priority = "P4_INFO" }"#,
        r#"expect = { priority = "P0_CRITICAL" }"#,
    );
    std::fs::write(&cases, failing).unwrap();
    let output = run(&[
        "route",
        "test",
        "--config",
        config.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "a mismatch exits non-zero:\n{text}"
    );
    assert!(
        text.contains("FAIL wednesday info stays quiet") && text.contains("1 passed, 1 failed"),
        "{text}"
    );
}

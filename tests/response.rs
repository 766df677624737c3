//! Automated response through the real binary: a guest-list export on a wedding day opens an
//! incident and runs `wedding-data-breach` (actions through the action hook, legal counsel
//! notified, state contained, waiting for approval); kill -9 in the middle, and the restarted
//! process resumes the run at the approval without repeating a completed step; an approval
//! from someone not allowed is refused and recorded; a duplicated trigger gives no second run.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{free_port, spawn_run, terminate, wait_healthy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "response-admin-token";

async fn api(
    client: &reqwest::Client,
    port: u16,
    verb: &str,
    route: &str,
    body: Value,
) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{port}{route}");
    let req = if verb == "GET" {
        client.get(&url)
    } else {
        client.post(&url).json(&body)
    };
    let r = req
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin API answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls the admin API until `check` holds on the first incident (with its runs), at most 30 s.
async fn wait_incident(
    client: &reqwest::Client,
    port: u16,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..600 {
        let (_, list) = api(client, port, "GET", "/api/incidents", Value::Null).await;
        if let Some(id) = list["incidents"][0]["id"].as_str() {
            let (_, detail) = api(
                client,
                port,
                "GET",
                &format!("/api/incidents/{id}"),
                Value::Null,
            )
            .await;
            if check(&detail) {
                return detail;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the incident never reached the expected state");
}

/// The run of the `wedding-data-breach` playbook in an incident detail.
fn breach_run(detail: &Value) -> &Value {
    detail["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["playbook"] == "wedding-data-breach"))
        .unwrap_or(&Value::Null)
}

fn playbook_lock_requests(logs: &[&Path]) -> usize {
    logs.iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    l.contains("lock_accounts")
                        && l.contains("playbook wedding-data-breach step lock_accounts")
                })
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wedding_data_breach_runs_survives_kill_9_and_waits_for_approval() {
    let legal = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T/L/legal-hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&legal)
        .await;
    let (dir, port, config) = wedding_today_config(
        r#"[response]
actions = ["lock_accounts", "enhanced_logging", "preserve_evidence", "begin_gdpr_assessment"]
"#,
    );
    let hook = format!("{}/services/T/L/legal-hook", legal.uri());
    let env = [
        ("RESPONSE_ADMIN_TOKEN", TOKEN),
        ("LEGAL_HOOK", hook.as_str()),
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let event = json!({"id": "gdb-e2e-1", "category": "data_export", "action": "guest_list.export",
        "outcome": "success", "severity": "medium", "user_id": "planner-4", "resource_type": "guest_lists",
        "wedding_id": "w-today", "record_count": 800});

    let log1 = dir.path().join("first.log");
    let mut child = spawn_run(
        &config,
        &env,
        Stdio::from(std::fs::File::create(&log1).unwrap()),
    );
    wait_healthy(&client, port).await;
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let detail = wait_incident(&client, port, |d| {
        breach_run(d)["steps"]["approve_recovery"]["status"] == "running"
    })
    .await;
    let run_id = breach_run(&detail)["id"].as_str().unwrap().to_owned();
    let incident_id = detail["incident"]["id"].as_str().unwrap().to_owned();
    let runs_before = detail["runs"].as_array().unwrap().len();
    assert_eq!(detail["incident"]["state"], "contained", "{detail:#}");
    for step in [
        "lock_accounts",
        "enhanced_audit",
        "preserve_evidence",
        "notify_legal",
        "gdpr_assessment",
        "contained",
    ] {
        assert_eq!(
            breach_run(&detail)["steps"][step]["status"],
            "succeeded",
            "{step}: {detail:#}"
        );
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert_eq!(playbook_lock_requests(&[&log1]), 1);

    // Restart: the run resumes at the approval.
    let log2 = dir.path().join("second.log");
    let child = spawn_run(
        &config,
        &env,
        Stdio::from(std::fs::File::create(&log2).unwrap()),
    );
    wait_healthy(&client, port).await;
    let (status, _) = api(
        &client,
        port,
        "POST",
        &format!("/api/playbook-runs/{run_id}/approve"),
        json!({"step": "approve_recovery", "as": "mallory"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        &client,
        port,
        "POST",
        &format!("/api/playbook-runs/{run_id}/approve"),
        json!({"step": "approve_recovery"}),
    )
    .await;
    assert_eq!(status, 403, "no identity, no approval");
    let (status, body) = api(
        &client,
        port,
        "POST",
        &format!("/api/playbook-runs/{run_id}/approve"),
        json!({"step": "approve_recovery", "as": "security-lead"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let detail = wait_incident(&client, port, |d| breach_run(d)["state"] == "succeeded").await;
    // The same event again (a duplicated trigger): same incident, no second run.
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_incident(&client, port, |d| {
        d["incident"]["alert_count"].as_u64() >= Some(2)
    })
    .await;
    let (_, detail2) = api(
        &client,
        port,
        "GET",
        &format!("/api/incidents/{incident_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        detail2["runs"].as_array().unwrap().len(),
        runs_before,
        "{detail2:#}"
    );

    let (status, _) = api(
        &client,
        port,
        "POST",
        &format!("/api/incidents/{incident_id}/resolve"),
        json!({"as": "ops-lead", "note": "accounts restored"}),
    )
    .await;
    assert_eq!(status, 200);
    terminate(&child);
    let mut child = child;
    child.wait().unwrap();

    // Nothing completed before the kill ran again.
    assert_eq!(playbook_lock_requests(&[&log1, &log2]), 1);
    let gdpr_notices = legal
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("GDPR Art. 33"))
        .count();
    assert_eq!(
        gdpr_notices, 1,
        "legal counsel notified once by the playbook"
    );

    // The timeline shows every step with times, the refused approval and who resolved.
    let timeline = detail["incident"]["timeline"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = timeline
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["fields"]["step_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for step in [
        "lock_accounts",
        "enhanced_audit",
        "preserve_evidence",
        "notify_legal",
        "gdpr_assessment",
        "contained",
        "approve_recovery",
    ] {
        assert!(
            actions.contains(&("step_started", step)),
            "{step}: {actions:?}"
        );
        assert!(
            actions.contains(&("step_finished", step)),
            "{step}: {actions:?}"
        );
    }
    assert!(
        timeline
            .iter()
            .any(|e| e["action"] == "approval_refused" && e["actor"] == "mallory")
    );
    assert!(timeline.iter().all(|e| e["at"].is_string()));

    // The CLI reads the same record.
    let out = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args([
            "incident",
            "show",
            &incident_id,
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["incident"]["state"], "resolved");
    assert_eq!(shown["incident"]["resolved"]["by"], "ops-lead");
    let out = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["playbook", "runs", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&run_id) && text.contains("succeeded"),
        "{text}"
    );
}

#[test]
fn playbooks_are_validated_at_load_and_run_dry_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vowguard.toml");
    let base = r#"
data_dir = "data"
[sources.in]
type = "stdin"
[notifiers.legal]
type = "slack"
webhook_url = { env = "LEGAL_HOOK" }
[response]
actions = ["lock_accounts"]
[playbooks.lockdown]
version = 3
trigger = { categories = ["data_export"] }
[[playbooks.lockdown.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
[[playbooks.lockdown.steps]]
id = "tell"
kind = "notify"
"#;
    let vowguard = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(args)
            .env("LEGAL_HOOK", "http://127.0.0.1:9/hook")
            .output()
            .unwrap()
    };
    std::fs::write(
        &config,
        format!("{base}notifier = \"counsel\"\nwhen = \"steps.lock.ok\"\n"),
    )
    .unwrap();
    let out = vowguard(&[
        "validate",
        "--skip-healthchecks",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`playbooks.lockdown.steps[1].notifier`: unknown notifier `counsel`"),
        "{stderr}"
    );

    std::fs::write(
        &config,
        format!("{base}notifier = \"legal\"\nwhen = \"steps.lock.ok\"\n"),
    )
    .unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"id": "cli-1", "category": "data_export", "action": "guest_list.export", "severity": "high", "user_id": "u-1", "resource_type": "guest_lists", "record_count": 900}"#).unwrap();
    let out = vowguard(&[
        "playbook",
        "run",
        "lockdown",
        "--event",
        event.to_str().unwrap(),
        "--dry-run",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["version"], 3);
    assert_eq!(run["dry_run"], true);
    assert_eq!(
        run["steps"]["lock"]["output"]["would"],
        "request action lock_accounts"
    );
    assert_eq!(run["steps"]["tell"]["output"]["would"], "notify legal");
    let out = vowguard(&[
        "playbook",
        "explain",
        event.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("RUNS lockdown") && text.contains("RUNS wedding-data-breach"),
        "{text}"
    );
    let out = vowguard(&["playbook", "list", "--config", config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lockdown v3"), "{text}");
}

/// Whether a step of the run finished (not merely started) on the timeline.
fn finished_steps(timeline: &[Value]) -> Vec<(String, Value)> {
    timeline
        .iter()
        .filter(|e| e["action"] == "step_finished")
        .map(|e| {
            (
                e["fields"]["step_id"].as_str().unwrap_or("").to_owned(),
                e["fields"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wedding_data_breach_opens_one_jira_issue_and_one_thehive_alert() {
    // Jira Cloud: search by fingerprint label finds nothing, create answers a key,
    // comments are accepted; the identity and project checks answer.
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"issues": []})))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": "10001", "key": "SEC-7", "self": "https://example.invalid/rest/api/3/issue/10001"}),
        ))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/SEC-7/comment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "1"})))
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/myself"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"accountId": "bot"})))
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/project/SEC"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"key": "SEC"})))
        .mount(&jira)
        .await;
    // TheHive 5: alert creation answers an id; comments and the identity check answer
    // (legal counsel's Slack hook is served here too).
    let hive = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/alert"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"_id": "~41", "_type": "Alert"})),
        )
        .mount(&hive)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/alert/~41/comment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"_id": "~42"})))
        .mount(&hive)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/T/L/legal-hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&hive)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/user/current"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "bot"})))
        .mount(&hive)
        .await;

    let (dir, port, config) = wedding_today_config(&format!(
        r#"[tickets.jira]
type = "jira"
url = "{jira}"
email = "secops-bot@example.org"
api_token = {{ env = "JIRA_API_TOKEN" }}
project = "SEC"
[tickets.hive]
type = "thehive"
url = "{hive}"
api_key = {{ env = "HIVE_API_KEY" }}
[response]
actions = ["lock_accounts", "enhanced_logging", "preserve_evidence", "begin_gdpr_assessment"]
"#,
        jira = jira.uri(),
        hive = hive.uri(),
    ));
    let hook = format!("{}/services/T/L/legal-hook", hive.uri());
    let env = [
        ("RESPONSE_ADMIN_TOKEN", TOKEN),
        ("LEGAL_HOOK", hook.as_str()),
        ("JIRA_API_TOKEN", "jira-e2e-token-5d2f"),
        ("HIVE_API_KEY", "hive-e2e-key-77aa"),
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let event = json!({"id": "gdb-tickets-1", "category": "data_export", "action": "guest_list.export",
        "outcome": "success", "severity": "medium", "user_id": "planner-9", "resource_type": "guest_lists",
        "wedding_id": "w-today", "record_count": 800});

    let log = dir.path().join("run.log");
    let child = spawn_run(
        &config,
        &env,
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    wait_healthy(&client, port).await;
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let detail = wait_incident(&client, port, |d| {
        breach_run(d)["steps"]["approve_recovery"]["status"] == "running"
    })
    .await;
    let run_id = breach_run(&detail)["id"].as_str().unwrap().to_owned();
    let incident_id = detail["incident"]["id"].as_str().unwrap().to_owned();
    for (step, system, key) in [
        ("ticket_jira", "jira", "SEC-7"),
        ("ticket_hive", "hive", "~41"),
    ] {
        let s = &breach_run(&detail)["steps"][step];
        assert_eq!(s["status"], "succeeded", "{step}: {detail:#}");
        assert_eq!(s["output"]["system"], system, "{step}: {detail:#}");
        assert_eq!(s["output"]["key"], key, "{step}: {detail:#}");
    }
    let (status, body) = api(
        &client,
        port,
        "POST",
        &format!("/api/playbook-runs/{run_id}/approve"),
        json!({"step": "approve_recovery", "as": "security-lead"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_incident(&client, port, |d| breach_run(d)["state"] == "succeeded").await;

    // The same event again: the same incident, no second run, no second ticket.
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let detail = wait_incident(&client, port, |d| {
        d["incident"]["alert_count"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(detail["incident"]["id"], incident_id.as_str());
    let runs = detail["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["playbook"] == "wedding-data-breach")
        .count();
    assert_eq!(runs, 1, "{detail:#}");
    terminate(&child);
    let mut child = child;
    child.wait().unwrap();

    let jira_requests = jira.received_requests().await.unwrap();
    let creates: Vec<Value> = jira_requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/rest/api/3/issue")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(creates.len(), 1, "one Jira issue: {creates:#?}");
    assert_eq!(
        creates[0]["fields"]["summary"],
        "Wedding Data Security Incident - gdb-tickets-1"
    );
    assert_eq!(creates[0]["fields"]["project"]["key"], "SEC");
    let recovery_comments = jira_requests
        .iter()
        .filter(|r| r.url.path() == "/rest/api/3/issue/SEC-7/comment")
        .count();
    assert_eq!(recovery_comments, 1, "the recovery update, once");
    let hive_requests = hive.received_requests().await.unwrap();
    let alerts: Vec<Value> = hive_requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v1/alert")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "one TheHive alert: {alerts:#?}");
    assert_eq!(
        alerts[0]["title"],
        "Wedding Data Security Incident - gdb-tickets-1"
    );
    assert!(alerts[0]["sourceRef"].is_string(), "{:#}", alerts[0]);
    let secrets_in_log = std::fs::read_to_string(&log).unwrap();
    assert!(!secrets_in_log.contains("jira-e2e-token-5d2f"));
    assert!(!secrets_in_log.contains("hive-e2e-key-77aa"));

    // `vowguard incident show` lists the ticket steps with their results and times.
    let out = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args([
            "incident",
            "show",
            &incident_id,
            "--config",
            config.to_str().unwrap(),
        ])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let timeline = shown["incident"]["timeline"].as_array().unwrap();
    let finished = finished_steps(timeline);
    for (step, key) in [
        ("ticket_jira", "SEC-7"),
        ("ticket_hive", "~41"),
        ("ticket_jira_recovery", "SEC-7"),
        ("ticket_hive_recovery", "~41"),
    ] {
        let fields = finished
            .iter()
            .find(|(id, _)| id == step)
            .map(|(_, f)| f)
            .unwrap_or_else(|| panic!("{step} not finished on the timeline: {timeline:#?}"));
        assert_eq!(fields["status"], "succeeded", "{step}: {fields:#}");
        assert_eq!(fields["output"]["key"], key, "{step}: {fields:#}");
        assert!(
            timeline
                .iter()
                .any(|e| e["action"] == "step_started" && e["fields"]["step_id"] == step),
            "{step} started"
        );
    }
    let opened: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["action"] == "ticket_opened")
        .collect();
    assert_eq!(opened.len(), 2, "{opened:#?}");
    assert!(timeline.iter().all(|e| e["at"].is_string()));
    assert_eq!(shown["incident"]["tickets"]["jira"]["key"], "SEC-7");
    assert_eq!(shown["incident"]["tickets"]["hive"]["key"], "~41");
}

/// A temporary directory with a wedding taking place today (`w-today`) and a config serving
/// the admin API on a free port, with wedding context and the `legal` Slack notifier; `extra`
/// is appended to the config (tickets, `[response]`).
fn wedding_today_config(extra: &str) -> (tempfile::TempDir, u16, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let today = chrono::Utc::now().date_naive();
    std::fs::write(
        dir.path().join("weddings.json"),
        format!(
            r#"[{{"wedding_id":"w-today","date":"{today}","timezone":"UTC","guest_count":150}}]"#
        ),
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
admin_token = {{ env = "RESPONSE_ADMIN_TOKEN" }}
[sources.api]
type = "http"
[enrichers.wedding]
type = "wedding_context"
provider = "file"
path = "weddings.json"
[notifiers.legal]
type = "slack"
webhook_url = {{ env = "LEGAL_HOOK" }}
{extra}"#
        ),
    )
    .unwrap();
    (dir, port, config)
}

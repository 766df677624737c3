//! `POST /v1/webhooks/{source_id}` against the real binary: verified deliveries flow to a
//! SIEM; wrong or missing signatures, stale timestamps, non-vendor bodies, oversized and
//! slow bodies, unknown sources and floods each get their status and are counted per
//! reason; a replay is answered 200 without processing, also after a restart; secrets stay
//! out of logs and metrics; `vowguard webhook sign|verify` produce and check real requests.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{free_port, scrape_metrics, spawn_run, terminate, wait_healthy};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vowguard_webhooks::verify::{Key, Scheme, sign};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEC_TOKEN: &str = "webhook-hec-token-5d1";
const STRIPE_OLD: &str = "whsec_old_Vg5ecretCanaryA1";
const STRIPE_NEW: &str = "whsec_new_Vg5ecretCanaryB2";
const VENUE: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn config(dir: &Path, hec: &str, port: u16) -> std::path::PathBuf {
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
token = {{ env = "WH_HEC_TOKEN" }}
batch = {{ max_events = 100, max_wait = "20ms" }}
[webhooks.stripe]
type = "stripe"
secrets = [{{ env = "WH_STRIPE_OLD" }}, {{ env = "WH_STRIPE_NEW" }}]
max_body_bytes = 4096
[webhooks.venue]
type = "standard_webhooks"
secret = {{ env = "WH_VENUE" }}
body_timeout = "300ms"
[webhooks.gate]
type = "github"
secret = {{ env = "WH_STRIPE_OLD" }}
rate_limit = {{ per_second = 0.001, burst = 2 }}
"#
    );
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

const ENV: [(&str, &str); 4] = [
    ("WH_HEC_TOKEN", HEC_TOKEN),
    ("WH_STRIPE_OLD", STRIPE_OLD),
    ("WH_STRIPE_NEW", STRIPE_NEW),
    ("WH_VENUE", VENUE),
];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn stripe_headers(secret: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    sign(
        &Scheme::Stripe,
        &Key::Hmac(secret.as_bytes().to_vec()),
        "",
        ts,
        None,
        body.as_bytes(),
    )
    .unwrap()
}

async fn post(
    client: &reqwest::Client,
    port: u16,
    source: &str,
    headers: &[(String, String)],
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let mut request = client.post(format!("http://127.0.0.1:{port}/v1/webhooks/{source}"));
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

const FRAUD: &str = r#"{"id":"evt_http_1","type":"radar.early_fraud_warning.created","data":{"object":{"id":"issfr_9","object":"radar.early_fraud_warning","fraud_type":"made_with_stolen_card","metadata":{"wedding_id":"w-http"}}}}"#;

/// Bodies the HEC mock got that mention `needle`.
async fn hec_bodies_with(hec: &MockServer, needle: &str) -> usize {
    hec.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(needle))
        .count()
}

fn metric(metrics: &str, line_start: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_counted_and_replay_proof_across_a_restart() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), &hec.uri(), port);
    let child = spawn_run(&config, &ENV, Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;

    // A delivery signed with the new secret (the old one is still configured: rotation).
    let ts = now();
    let headers = stripe_headers(STRIPE_NEW, ts, FRAUD);
    let (status, body) = post(&client, port, "stripe", &headers, FRAUD).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["accepted"], 1);
    // It flows to the SIEM like any event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hec_bodies_with(&hec, "stripe.radar.early_fraud_warning.created").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event reached Splunk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = hec.received_requests().await.unwrap();
    let text = String::from_utf8_lossy(&delivered[0].body).into_owned();
    assert!(
        text.contains("w-http") && text.contains("issfr_9"),
        "{text}"
    );

    // The same delivery again: 200, not processed again.
    let (status, body) = post(&client, port, "stripe", &headers, FRAUD).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"duplicate"}"#));

    // A wrong secret, no signature, a stale timestamp: 401 with nothing to learn from.
    let wrong = stripe_headers("whsec_guess", ts, FRAUD);
    let stale = stripe_headers(STRIPE_NEW, ts - 3600, FRAUD);
    for headers in [&wrong, &Vec::new(), &stale] {
        let (status, body) = post(&client, port, "stripe", headers, FRAUD).await;
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"error":"unauthorized"}"#)
        );
    }
    // Signed, but not a Stripe event: 400.
    let not_stripe = r#"{"hello":"world"}"#;
    let (status, _) = post(
        &client,
        port,
        "stripe",
        &stripe_headers(STRIPE_NEW, ts, not_stripe),
        not_stripe,
    )
    .await;
    assert_eq!(status, 400);
    // Over the source's body limit: 413 (nothing verified or parsed).
    let big = "x".repeat(5000);
    let (status, body) = post(
        &client,
        port,
        "stripe",
        &stripe_headers(STRIPE_NEW, ts, &big),
        big,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (413, r#"{"error":"the body exceeds 4096 bytes"}"#)
    );
    // Unknown sources: the same 404 whatever exists.
    for source in ["nope", "stripe2"] {
        let (status, body) = post(&client, port, source, &headers, FRAUD).await;
        assert_eq!((status, body.as_str()), (404, r#"{"error":"not found"}"#));
    }
    // A flood: the burst of 2 passes to verification (401, unsigned), then 429.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&client, port, "gate", &[], "{}").await.0);
    }
    assert_eq!(statuses, [401, 401, 429]);

    // A slow sender: the body never completes within body_timeout: 408.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /v1/webhooks/venue HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"type\"",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer before the test's own deadline")
            .unwrap();
        assert!(n > 0, "connection closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // `webhook sign` prints headers a real sender would send; they are accepted.
    let venue_body = dir.path().join("venue.json");
    std::fs::write(
        &venue_body,
        r#"{"type":"venue.door_forced","data":{"wedding_id":"w-9","severity":"critical"}}"#,
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_owned();
    let body_path = venue_body.to_str().unwrap().to_owned();
    let signed = vowguard(&[
        "webhook",
        "sign",
        "--config",
        &cfg,
        "--source",
        "venue",
        "--body",
        &body_path,
        "--id",
        "msg_cli_1",
    ]);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let printed = String::from_utf8(signed.stdout).unwrap();
    let cli_headers: Vec<(String, String)> = printed
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(cli_headers.len(), 3, "{printed}");
    let (status, body) = post(
        &client,
        port,
        "venue",
        &cli_headers,
        std::fs::read(&venue_body).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // `webhook verify` checks the captured request, and refuses a changed body.
    let mut args: Vec<String> = [
        "webhook", "verify", "--config", &cfg, "--source", "venue", "--body", &body_path,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (n, v) in &cli_headers {
        args.push("-H".into());
        args.push(format!("{n}: {v}"));
    }
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let verified = vowguard(&args_ref);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("verified: replay key id:msg_cli_1")
    );
    std::fs::write(&venue_body, r#"{"type":"venue.door_forced","data":{}}"#).unwrap();
    let refused = vowguard(&args_ref);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bad_signature"));

    // Every outcome is counted per source and reason; no secret in the metrics.
    let metrics = scrape_metrics(&client, port).await;
    let count = |line: &str| metric(&metrics, line);
    assert_eq!(
        count("vowguard_webhook_requests_total{source=\"stripe\",result=\"accepted\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_requests_total{source=\"stripe\",result=\"replayed\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"stripe\",reason=\"bad_signature\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"stripe\",reason=\"missing_header\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"stripe\",reason=\"stale_timestamp\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"stripe\",reason=\"bad_payload\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"stripe\",reason=\"body_too_large\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"gate\",reason=\"rate_limited\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_refused_total{source=\"venue\",reason=\"body_timeout\"}"),
        Some(1)
    );
    assert_eq!(count("vowguard_webhook_unknown_source_total"), Some(2));
    assert_eq!(
        count("vowguard_webhook_events_total{source=\"stripe\"}"),
        Some(1)
    );
    assert_eq!(
        count("vowguard_webhook_events_total{source=\"venue\"}"),
        Some(1)
    );
    for secret in [STRIPE_OLD, STRIPE_NEW, VENUE, "Vg5ecretCanary"] {
        assert!(!metrics.contains(secret));
    }

    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("Vg5ecretCanary") && !stderr.contains(VENUE),
        "{stderr}"
    );

    // After a restart the delivery is still known: 200, nothing submitted.
    let child = spawn_run(&config, &ENV, Stdio::piped());
    wait_healthy(&client, port).await;
    let (status, body) = post(&client, port, "stripe", &headers, FRAUD).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"duplicate"}"#));
    let metrics = scrape_metrics(&client, port).await;
    assert_eq!(
        metric(&metrics, "vowguard_webhook_events_total{source=\"stripe\"}"),
        Some(0)
    );
    assert_eq!(
        metric(
            &metrics,
            "vowguard_webhook_requests_total{source=\"stripe\",result=\"replayed\"}"
        ),
        Some(1)
    );
    terminate(&child);
    assert!(child.wait_with_output().unwrap().status.success());
}

fn vowguard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .envs(ENV)
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const ADMIN: &str = "webhook-admin-token-3f9";

async fn admin_get(client: &reqwest::Client, port: u16, route: &str) -> serde_json::Value {
    client
        .get(format!("http://127.0.0.1:{port}{route}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `/api/incidents` (at most 30 s) until the first incident's detail satisfies `check`.
async fn wait_incident(
    client: &reqwest::Client,
    port: u16,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..600 {
        let list = admin_get(client, port, "/api/incidents").await;
        if let Some(id) = list["incidents"][0]["id"].as_str() {
            let detail = admin_get(client, port, &format!("/api/incidents/{id}")).await;
            if check(&detail["incident"]) {
                return detail["incident"].clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the incident never reached the expected state");
}

/// Slack's "Acknowledge" button and PagerDuty's `incident.resolved` update the vowguard
/// incident, with the acting person on its timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_acknowledge_and_pagerduty_resolve_update_the_incident() {
    let slack_hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack_hook)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
admin_token = {{ env = "WH_ADMIN" }}
[sources.api]
type = "http"
[notifiers.oncall]
type = "slack"
webhook_url = {{ env = "WH_SLACK_HOOK" }}
[response]
default_playbooks = false
[webhooks.slack]
type = "slack"
secret = {{ env = "WH_SLACK_SIGNING" }}
[webhooks.pagerduty]
type = "pagerduty"
secret = {{ env = "WH_PD" }}
"#
        ),
    )
    .unwrap();
    let hook = format!("{}/services/T/B/x", slack_hook.uri());
    let env = [
        ("WH_ADMIN", ADMIN),
        ("WH_SLACK_HOOK", hook.as_str()),
        ("WH_SLACK_SIGNING", "slack-signing-Vg5ecretCanaryC3"),
        ("WH_PD", "pd-Vg5ecretCanaryD4"),
    ];
    let child = spawn_run(&config, &env, Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&serde_json::json!({"id": "sync-1", "category": "authentication", "action": "admin.login",
            "outcome": "success", "severity": "critical", "user_id": "admin-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let incident = wait_incident(&client, port, |i| i["state"] == "open").await;
    let id = incident["id"].as_str().unwrap().to_owned();
    let fingerprint = incident["fingerprint"].as_str().unwrap().to_owned();

    // Slack: the interactive payload of a button press, form-encoded, signed.
    let inner =
        serde_json::json!({"type": "block_actions", "user": {"id": "U7", "username": "ana.ops"},
        "actions": [{"action_id": "vowguard_ack", "value": id}]})
        .to_string();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &inner)
        .finish();
    let headers = sign(
        &Scheme::Slack,
        &Key::Hmac(b"slack-signing-Vg5ecretCanaryC3".to_vec()),
        "",
        now(),
        None,
        body.as_bytes(),
    )
    .unwrap();
    let (status, answer) = post(&client, port, "slack", &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    let incident = wait_incident(&client, port, |i| i["state"] == "acknowledged").await;
    assert_eq!(incident["acknowledged"]["by"], "slack:ana.ops");

    // PagerDuty: incident.resolved for the incident key vowguard sent (the group key).
    let body = serde_json::json!({"event": {"id": "01PDSYNC", "event_type": "incident.resolved",
        "resource_type": "incident", "agent": {"id": "PU1", "summary": "Ana Ops", "type": "user_reference"},
        "data": {"id": "Q9", "type": "incident", "title": "admin login", "incident_key": fingerprint}}})
    .to_string();
    let headers = sign(
        &Scheme::PagerDuty,
        &Key::Hmac(b"pd-Vg5ecretCanaryD4".to_vec()),
        "",
        now(),
        None,
        body.as_bytes(),
    )
    .unwrap();
    let (status, answer) = post(&client, port, "pagerduty", &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    let incident = wait_incident(&client, port, |i| i["state"] == "resolved").await;
    assert_eq!(incident["resolved"]["by"], "pagerduty:Ana_Ops");
    let actors: Vec<&str> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(
        actors.contains(&"slack:ana.ops") && actors.contains(&"pagerduty:Ana_Ops"),
        "{actors:?}"
    );

    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("Vg5ecretCanary"), "{stderr}");
}

const SNOW_SYS_ID: &str = "9d385017c611228701d22104cc95c371";
const JIRA_HOOK_SECRET: &str = "jira-hook-Vg5ecretCanaryE5";
const SNOW_HOOK_TOKEN: &str = "snow-hook-Vg5ecretCanaryF6";

fn jira_status_body(key: &str, changelog: &str, from: &str, to: &str, category: &str) -> String {
    serde_json::json!({
        "timestamp": 1_764_579_600_000_u64,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ana Ops"},
        "issue": {"id": "10042", "key": key, "fields": {"status": {"name": to, "statusCategory": {"key": category}}}},
        "changelog": {"id": changelog, "items": [
            {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1", "fromString": from, "to": "3", "toString": to}
        ]}
    })
    .to_string()
}

fn jira_headers(secret: &str, delivery: &str, body: &str) -> Vec<(String, String)> {
    sign(
        &Scheme::Jira,
        &Key::Hmac(secret.as_bytes().to_vec()),
        delivery,
        now(),
        None,
        body.as_bytes(),
    )
    .unwrap()
}

fn timeline_has(incident: &serde_json::Value, action: &str, system: &str) -> bool {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == action && e["fields"]["system"] == system)
}

/// Jira and ServiceNow status changes update the incident the tickets were opened for, by
/// the person who changed the ticket, and are pushed to the incident's other ticket but
/// never back to the one they came from; replays, bad signatures and unknown tickets are
/// answered and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_and_servicenow_status_changes_sync_the_incident_without_a_loop() {
    use wiremock::matchers::path;
    let slack_hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack_hook)
        .await;
    // Jira: search finds nothing, create answers SEC-7; reading the issue (before a
    // resolve) says it is done already; comments are accepted.
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"issues": []})))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            serde_json::json!({"id": "10042", "key": "SEC-7", "self": "https://example.invalid/rest/api/3/issue/10042"}),
        ))
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/issue/SEC-7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"key": "SEC-7", "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}}}),
        ))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/SEC-7/comment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "1"})))
        .mount(&jira)
        .await;
    // ServiceNow: the lookup by correlation_id finds nothing, create answers a sys_id,
    // work notes (PATCH) are accepted.
    let snow = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"result": []})))
        .mount(&snow)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/now/table/incident"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            serde_json::json!({"result": {"sys_id": SNOW_SYS_ID, "number": "INC0010042"}}),
        ))
        .mount(&snow)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/now/table/incident/{SNOW_SYS_ID}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"result": {"sys_id": SNOW_SYS_ID, "state": "2"}}),
            ),
        )
        .mount(&snow)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
admin_token = {{ env = "WH_ADMIN" }}
[sources.api]
type = "http"
[notifiers.oncall]
type = "slack"
webhook_url = {{ env = "WH_SLACK_HOOK" }}
[tickets.jira]
type = "jira"
url = "{jira}"
email = "secops-bot@example.org"
api_token = {{ env = "WH_JIRA_TOKEN" }}
project = "SEC"
[tickets.snow]
type = "servicenow"
url = "{snow}"
auth = {{ type = "bearer", token = {{ env = "WH_SNOW_TOKEN" }} }}
[response]
default_playbooks = false
[playbooks.tickets]
version = 1
trigger = {{ categories = ["authentication"] }}
[[playbooks.tickets.steps]]
id = "jira"
kind = "ticket"
system = "jira"
title = "Admin login {{{{ event.id }}}}"
[[playbooks.tickets.steps]]
id = "snow"
kind = "ticket"
system = "snow"
title = "Admin login {{{{ event.id }}}}"
[webhooks.jira]
type = "jira"
secret = {{ env = "WH_JIRA_HOOK" }}
[webhooks.snow]
type = "servicenow"
auth = "bearer"
secret = {{ env = "WH_SNOW_HOOK" }}
ticket_system = "snow"
"#,
            jira = jira.uri(),
            snow = snow.uri(),
        ),
    )
    .unwrap();
    let hook = format!("{}/services/T/B/x", slack_hook.uri());
    let env = [
        ("WH_ADMIN", ADMIN),
        ("WH_SLACK_HOOK", hook.as_str()),
        ("WH_JIRA_TOKEN", "jira-api-token-Vg5ecretCanaryG7"),
        ("WH_SNOW_TOKEN", "snow-api-token-Vg5ecretCanaryH8"),
        ("WH_JIRA_HOOK", JIRA_HOOK_SECRET),
        ("WH_SNOW_HOOK", SNOW_HOOK_TOKEN),
    ];
    let child = spawn_run(&config, &env, Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&serde_json::json!({"id": "sync-tickets-1", "category": "authentication", "action": "admin.login",
            "outcome": "success", "severity": "critical", "user_id": "admin-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let incident = wait_incident(&client, port, |i| {
        i["tickets"]["jira"]["key"] == "SEC-7" && i["tickets"]["snow"]["key"] == SNOW_SYS_ID
    })
    .await;
    assert_eq!(incident["state"], "open");

    // Jira: In Progress by Ana Ops acknowledges the incident.
    let body = jira_status_body("SEC-7", "10150", "To Do", "In Progress", "indeterminate");
    let headers = jira_headers(JIRA_HOOK_SECRET, "", &body);
    let (status, answer) = post(&client, port, "jira", &headers, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let incident = wait_incident(&client, port, |i| {
        i["state"] == "acknowledged" && timeline_has(i, "ticket_updated", "snow")
    })
    .await;
    assert_eq!(incident["acknowledged"]["by"], "jira:Ana_Ops");
    let changed = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "ticket_status_changed")
        .unwrap();
    assert_eq!(changed["actor"], "jira:Ana_Ops");
    assert_eq!(changed["fields"]["key"], "SEC-7");
    assert_eq!(changed["fields"]["status"], "In Progress");
    assert_eq!(changed["fields"]["maps_to"], "acknowledged");
    // No loop: the acknowledgement went to ServiceNow, not back to Jira.
    assert!(
        !timeline_has(&incident, "ticket_updated", "jira"),
        "{incident:#}"
    );
    let jira_comments = jira
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/comment"))
        .count();
    assert_eq!(jira_comments, 0);

    // The same delivery again: 200, not processed again.
    let (status, answer) = post(&client, port, "jira", &headers, body.clone()).await;
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"status":"duplicate"}"#)
    );
    // Signed with another secret: 401, counted.
    let forged = jira_headers("not-the-secret", "", &body);
    let (status, answer) = post(&client, port, "jira", &forged, body).await;
    assert_eq!(
        (status, answer.as_str()),
        (401, r#"{"error":"unauthorized"}"#)
    );
    // A ticket vowguard never opened: 200 (Jira must not retry), counted.
    let body = jira_status_body("SEC-999", "10151", "To Do", "Done", "done");
    let headers = jira_headers(JIRA_HOOK_SECRET, "b1c2-unknown", &body);
    let (status, answer) = post(&client, port, "jira", &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    // A status with no meaning for the incident: on the timeline, the state unchanged.
    let body = jira_status_body("SEC-7", "10152", "In Progress", "Blocked", "indeterminate");
    let headers = jira_headers(JIRA_HOOK_SECRET, "", &body);
    let (status, answer) = post(&client, port, "jira", &headers, body).await;
    assert_eq!(status, 200, "{answer}");
    let incident = admin_get(
        &client,
        port,
        &format!("/api/incidents/{}", incident["id"].as_str().unwrap()),
    )
    .await;
    let incident = &incident["incident"];
    assert_eq!(incident["state"], "acknowledged");
    let blocked = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "ticket_status_changed" && e["fields"]["status"] == "Blocked")
        .unwrap_or_else(|| panic!("{incident:#}"));
    assert!(blocked["fields"]["maps_to"].is_null(), "{blocked:#}");

    // ServiceNow: state 6 (Resolved) by ana.ops resolves the incident; Jira's ticket is
    // resolved (read: already done), ServiceNow's is not written back.
    let snow_body = serde_json::json!({"sys_id": SNOW_SYS_ID, "number": "INC0010042", "state": "6",
        "sys_updated_by": "ana.ops", "sys_mod_count": "4", "sys_class_name": "incident"})
    .to_string();
    let bearer = vec![(
        "Authorization".to_owned(),
        format!("Bearer {SNOW_HOOK_TOKEN}"),
    )];
    let patches_before = snow
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .count();
    let (status, answer) = post(&client, port, "snow", &bearer, snow_body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let incident = wait_incident(&client, port, |i| i["state"] == "resolved").await;
    assert_eq!(incident["resolved"]["by"], "servicenow:ana.ops");
    assert!(
        timeline_has(&incident, "ticket_resolved", "jira"),
        "{incident:#}"
    );
    assert!(
        !timeline_has(&incident, "ticket_resolved", "snow"),
        "{incident:#}"
    );
    let patches_after = snow
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .count();
    assert_eq!(
        patches_after, patches_before,
        "nothing written back to ServiceNow"
    );
    // Replayed: 200 duplicate; a wrong token: 401.
    let (status, answer) = post(&client, port, "snow", &bearer, snow_body.clone()).await;
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"status":"duplicate"}"#)
    );
    let wrong = vec![(
        "Authorization".to_owned(),
        "Bearer snow-hook-guess".to_owned(),
    )];
    let (status, _) = post(&client, port, "snow", &wrong, snow_body).await;
    assert_eq!(status, 401);

    let metrics = scrape_metrics(&client, port).await;
    let count = |line: &str| metric(&metrics, line);
    for (line, want) in [
        (
            "vowguard_webhook_ticket_sync_total{source=\"jira\",result=\"applied\"}",
            1,
        ),
        (
            "vowguard_webhook_ticket_sync_total{source=\"jira\",result=\"unknown_ticket\"}",
            1,
        ),
        (
            "vowguard_webhook_ticket_sync_total{source=\"jira\",result=\"unmapped_status\"}",
            1,
        ),
        (
            "vowguard_webhook_ticket_sync_total{source=\"snow\",result=\"applied\"}",
            1,
        ),
        (
            "vowguard_webhook_refused_total{source=\"jira\",reason=\"bad_signature\"}",
            1,
        ),
        (
            "vowguard_webhook_refused_total{source=\"snow\",reason=\"bad_signature\"}",
            1,
        ),
        (
            "vowguard_webhook_requests_total{source=\"jira\",result=\"replayed\"}",
            1,
        ),
        (
            "vowguard_webhook_requests_total{source=\"snow\",result=\"replayed\"}",
            1,
        ),
    ] {
        assert_eq!(count(line), Some(want), "{line}\n{metrics}");
    }
    assert!(!metrics.contains("Vg5ecretCanary"));

    // `webhook sign` for the Jira source prints headers Jira would send (accepted); for the
    // bearer-token source it refuses (the header would be the secret) and prints nothing.
    let body_file = dir.path().join("jira.json");
    std::fs::write(
        &body_file,
        jira_status_body("SEC-7", "10153", "Blocked", "Done", "done"),
    )
    .unwrap();
    let cli = |source: &str| {
        Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args([
                "webhook",
                "sign",
                "--config",
                config.to_str().unwrap(),
                "--source",
                source,
            ])
            .args([
                "--body",
                body_file.to_str().unwrap(),
                "--id",
                "cli-delivery-1",
            ])
            .envs(env)
            .env("VOWGUARD_LOG", "warn")
            .output()
            .unwrap()
    };
    let signed = cli("jira");
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let cli_headers: Vec<(String, String)> = String::from_utf8(signed.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(cli_headers[0].0, "X-Hub-Signature");
    let (status, answer) = post(
        &client,
        port,
        "jira",
        &cli_headers,
        std::fs::read(&body_file).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let refused = cli("snow");
    assert!(!refused.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        printed.contains("bearer") && !printed.contains("Vg5ecretCanary"),
        "{printed}"
    );

    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("Vg5ecretCanary"), "{stderr}");
}

/// A replay guard that cannot be opened (its `replay_dir` is a file) stops `vowguard run`
/// at start with an error naming the key, before anything listens or writes.
#[test]
fn a_bad_replay_dir_fails_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("not-a-dir"), "x").unwrap();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
[sources.api]
type = "http"
[sinks.splunk]
type = "splunk_hec"
endpoint = "http://127.0.0.1:9"
token = {{ env = "WH_HEC_TOKEN" }}
[webhooks.venue]
type = "standard_webhooks"
secret = {{ env = "WH_VENUE" }}
replay_dir = "not-a-dir/replay"
"#
        ),
    )
    .unwrap();
    let child = spawn_run(&config, &ENV, Stdio::piped());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("`webhooks.venue.replay_dir`") && stderr.contains("not-a-dir"),
        "{stderr}"
    );
    assert!(!stderr.contains(VENUE), "{stderr}");
    // Nothing half-started: no listener was bound, no journal or audit log written.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    for started in ["journal", "audit", "intake"] {
        assert!(
            !dir.path().join("data").join(started).exists(),
            "{started} was created"
        );
    }
}

//! The HTTP source under hostile bodies, against the real binary: a body of many invalid
//! items gets a bounded answer and costs memory proportional to the body (peak RSS read
//! from `/proc/<pid>/status`), and an oversized body is refused naming the config key.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};

use support::{free_port, scrape_metrics, spawn_run, terminate, wait_healthy};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEC_TOKEN: &str = "limits-hec-token-77c1";

fn config(dir: &Path, hec: &str, port: u16, max_body_bytes: usize) -> std::path::PathBuf {
    let text = format!(
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
max_body_bytes = {max_body_bytes}
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "2s"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "LIMITS_HEC_TOKEN" }}
batch = {{ max_events = 100, max_wait = "20ms" }}
"#
    );
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

async fn hec() -> MockServer {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    hec
}

/// `VmHWM` (peak resident set) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// `[0,0,0,...]` of about `bytes` bytes: every item invalid, each costing two bytes.
fn worst_case_body(bytes: usize) -> (String, usize) {
    let items = bytes / 2;
    let mut body = String::with_capacity(items * 2 + 1);
    body.push('[');
    for i in 0..items {
        if i > 0 {
            body.push(',');
        }
        body.push('0');
    }
    body.push(']');
    (body, items)
}

fn stop(child: Child) -> String {
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "exits 0 on SIGTERM: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_invalid_items_get_a_capped_answer_and_memory_proportional_to_the_body() {
    const BODY_BYTES: usize = 10 << 20;
    let hec = hec().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), &hec.uri(), port, 16 << 20);
    let child = spawn_run(&config, &[("LIMITS_HEC_TOKEN", HEC_TOKEN)], Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let before = peak_rss(child.id());

    let (body, items) = worst_case_body(BODY_BYTES);
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.len() < 16 * 1024,
        "the answer is bounded, got {} bytes",
        text.len()
    );
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"], "no valid event in the request");
    assert_eq!(answer["rejected_total"], items);
    let listed = answer["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), 100, "the first 100 rejections are listed");
    assert_eq!(listed[0]["index"], 0);
    assert_eq!(listed[99]["index"], 99);
    assert!(
        listed[0]["error"]
            .as_str()
            .unwrap()
            .contains("expected a JSON object"),
        "{answer}"
    );

    let after = peak_rss(child.id());
    let growth = after.saturating_sub(before);
    // BENCHMARKS.md records this figure.
    eprintln!(
        "peak RSS for a {} MiB body of {items} invalid items: {} MiB before, {} MiB after (+{} MiB, {:.1}x the body)",
        BODY_BYTES >> 20,
        before >> 20,
        after >> 20,
        growth >> 20,
        growth as f64 / BODY_BYTES as f64
    );
    assert!(
        growth < 6 * BODY_BYTES as u64,
        "peak RSS grew by {growth} bytes for a {BODY_BYTES}-byte body"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_events_among_many_invalid_ones_are_accepted_with_the_count_of_the_rest() {
    let hec = hec().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), &hec.uri(), port, 1 << 20);
    let child = spawn_run(&config, &[("LIMITS_HEC_TOKEN", HEC_TOKEN)], Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;

    let mut items = vec![r#"{"id":"first","action":"login","severity":"low"}"#.to_owned()];
    items.extend((0..250).map(|i| format!(r#"{{"action":"x{i}","severity":"loud"}}"#)));
    items.push(r#"{"id":"last","action":"login","severity":"high"}"#.to_owned());
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .body(format!("[{}]", items.join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["ids"], serde_json::json!(["first", "last"]));
    assert_eq!(answer["rejected_total"], 250);
    let listed = answer["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[0]["index"], 1);
    assert!(
        listed[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("field `severity`"),
        "{answer}"
    );

    // The counter counts every rejection, not only the listed ones.
    let metrics = scrape_metrics(&client, port).await;
    assert!(
        metrics.contains("vowguard_http_events_rejected_total 250"),
        "{metrics}"
    );

    // A top level that is not an event, and malformed JSON after valid events, are refused
    // whole: nothing of such a body is submitted.
    for (body, expected) in [
        (
            "42",
            "expected an event object or an array of events, got a number",
        ),
        (
            r#"[{"id":"never","action":"a","severity":"low"}, oops]"#,
            "invalid JSON at line 1 column",
        ),
    ] {
        let r = client
            .post(format!("http://127.0.0.1:{port}/v1/events"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let answer: serde_json::Value = r.json().await.unwrap();
        assert!(
            answer["error"].as_str().unwrap().starts_with(expected),
            "{body}: {answer}"
        );
    }
    let metrics = scrape_metrics(&client, port).await;
    assert!(
        metrics.contains("vowguard_http_events_accepted_total 2\n"),
        "{metrics}"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_naming_max_body_bytes() {
    let hec = hec().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), &hec.uri(), port, 1000);
    let child = spawn_run(&config, &[("LIMITS_HEC_TOKEN", HEC_TOKEN)], Stdio::piped());
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    for path in [
        "/v1/events",
        "/api/security/test-alert-routing",
        "/api/security/test-siem-integration",
    ] {
        let r = client
            .post(format!("http://127.0.0.1:{port}{path}"))
            .body("x".repeat(5000))
            .send()
            .await
            .unwrap();
        if path == "/api/security/test-siem-integration" {
            // Takes no body; the token check answers first.
            assert_ne!(r.status(), 202, "{path}");
            continue;
        }
        assert_eq!(r.status(), 413, "{path}");
        let answer: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            answer["error"], "the request body exceeds server.max_body_bytes (1000 bytes)",
            "{path}"
        );
    }
    stop(child);
}

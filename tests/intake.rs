//! Intake never waits on a third party: the real `vowguard` binary acknowledges events
//! (HTTP 202) while its threat-intelligence enricher accepts connections and never
//! answers, shows them waiting for enrichment in `/metrics`, keeps them across a stop, and
//! delivers them after the next start.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{free_port, scrape_metrics, spawn_run, terminate, wait_healthy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEC_TOKEN: &str = "intake-hec-token-77b2";
const MISP_KEY: &str = "intake-misp-key-19ce";

/// A loopback endpoint that accepts every connection and never answers. Returns its port
/// and the connections it holds.
fn black_hole() -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            holder.lock().unwrap().push(stream);
        }
    });
    (port, held)
}

fn config(dir: &Path, hec: &str, port: u16, misp_port: Option<u16>) -> std::path::PathBuf {
    let mut text = format!(
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "300ms"
enrichment_budget = "10m"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "INTAKE_HEC_TOKEN" }}
batch = {{ max_events = 100, max_wait = "20ms" }}
"#
    );
    if let Some(misp) = misp_port {
        text.push_str(&format!(
            r#"
[enrichers.intel]
type = "misp"
url = "http://127.0.0.1:{misp}"
api_key = {{ env = "INTAKE_MISP_KEY" }}
limits = {{ timeout = "10m" }}
"#
        ));
    }
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Scrapes `/metrics` until `line` is in it (at most 30 s).
async fn wait_metric(client: &reqwest::Client, port: u16, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape_metrics(client, port).await;
        if text.lines().any(|l| l == line) {
            return text;
        }
        assert!(Instant::now() < deadline, "never saw `{line}`:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_acknowledged_while_the_enricher_never_answers_and_delivered_after_a_restart() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let (misp_port, held) = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("INTAKE_HEC_TOKEN", HEC_TOKEN),
        ("INTAKE_MISP_KEY", MISP_KEY),
    ];
    let child = spawn_run(
        &config(dir.path(), &hec.uri(), port, Some(misp_port)),
        &env,
        Stdio::piped(),
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;

    // Each 202 comes back although MISP holds every lookup (its timeout is 10 minutes).
    let url = format!("http://127.0.0.1:{port}/v1/events");
    for i in 0..3 {
        let event = serde_json::json!({
            "id": format!("bh-{i}"), "action": "login", "severity": "high",
            "source_ip": format!("203.0.113.{}", i + 1),
        });
        // Before this change the 202 waited for MISP: 10 minutes here.
        let r = client
            .post(&url)
            .json(&event)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("202 without waiting for the enricher");
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "MISP was never asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = wait_metric(&client, port, "vowguard_enrichment_lag_events 3").await;
    assert!(
        text.lines()
            .any(|l| l == "vowguard_intake_journaled_total 3"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "vowguard_events_journaled_total 0"),
        "{text}"
    );
    assert!(hec.received_requests().await.unwrap().is_empty());

    // A stop at the shutdown deadline keeps the raw events.
    terminate(&child);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains(MISP_KEY) && !stderr.contains(HEC_TOKEN),
        "{stderr}"
    );

    // Started again without the enricher: the raw events reach Splunk, once each.
    let port = free_port();
    let child = spawn_run(
        &config(dir.path(), &hec.uri(), port, None),
        &env,
        Stdio::piped(),
    );
    wait_healthy(&client, port).await;
    wait_metric(
        &client,
        port,
        "vowguard_sink_delivered_total{sink=\"splunk\"} 3",
    )
    .await;
    let mut ids: Vec<String> = Vec::new();
    for request in hec.received_requests().await.unwrap() {
        for line in String::from_utf8_lossy(&request.body).split_inclusive('}') {
            for id in ["bh-0", "bh-1", "bh-2"] {
                if line.contains(&format!("\"{id}\"")) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["bh-0", "bh-1", "bh-2"]);
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

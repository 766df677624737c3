//! Crash test: the real `vowguard` binary with an HTTP source and a Splunk endpoint that
//! fails at random is SIGKILLed at random moments while events stream in, and restarted
//! each time; then the endpoint recovers. Every event id the source acknowledged (HTTP
//! 202) must arrive at least once. The duplicate count is reported, not asserted.
//!
//! The random choices (which requests fail, how long each round lasts) come from one
//! seeded generator; the seed is printed, and `VOWGUARD_CRASH_SEED=<seed>` replays them.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{free_port, spawn_run, terminate, wait_healthy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn ids_in(request: &Request) -> Vec<String> {
    serde_json::Deserializer::from_slice(&request.body)
        .into_iter::<serde_json::Value>()
        .filter_map(|v| v.ok()?["event"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// The seed from `VOWGUARD_CRASH_SEED`, or a fresh one; printed either way.
fn seed() -> u64 {
    let seed = match std::env::var("VOWGUARD_CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("VOWGUARD_CRASH_SEED must be a u64, got {text:?}")),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("crash test seed: {seed} (replay with VOWGUARD_CRASH_SEED={seed})");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let seed = seed();
    let mut rounds_rng = fastrand::Rng::with_seed(seed);
    let failures_rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(
        seed ^ 0x9e37_79b9_7f4a_7c15,
    )));
    let flaky = Arc::new(AtomicBool::new(true));
    // Ids of every request the endpoint accepted (answered 200), with how often.
    let accepted: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let hec = MockServer::start().await;
    let (flaky_responder, record) = (flaky.clone(), accepted.clone());
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(move |request: &Request| {
            if flaky_responder.load(Ordering::Relaxed) && failures_rng.lock().unwrap().u8(0..10) < 4
            {
                return ResponseTemplate::new(503)
                    .set_body_string(r#"{"text":"Server is busy","code":9}"#);
            }
            let mut record = record.lock().unwrap();
            for id in ids_in(request) {
                *record.entry(id).or_default() += 1;
            }
            ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#)
        })
        .mount(&hec)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"HEC is healthy","code":17}"#),
        )
        .mount(&hec)
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
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "5s"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{}"
token = {{ env = "CRASH_HEC_TOKEN" }}
batch = {{ max_events = 50, max_wait = "10ms" }}
retry = {{ max_attempts = 100000, initial_backoff = "5ms", max_backoff = "100ms" }}
"#,
            hec.uri()
        ),
    )
    .unwrap();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/events");
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut next = 0u64;
    let kills = 5;
    for round in 0..kills {
        let mut child = spawn_run(
            &config,
            &[("CRASH_HEC_TOKEN", "crash-token")],
            Stdio::null(),
        );
        wait_healthy(&client, port).await;
        let until = Instant::now() + Duration::from_millis(200 + rounds_rng.u64(0..600));
        while Instant::now() < until {
            let batch: Vec<serde_json::Value> = (0..10)
                .map(|_| {
                    next += 1;
                    serde_json::json!({"id": format!("crash-{next:06}"), "action": "login", "severity": "medium"})
                })
                .collect();
            let ids: Vec<String> = batch
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
            if let Ok(r) = client.post(&url).json(&batch).send().await
                && r.status() == 202
            {
                acknowledged.extend(ids);
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        eprintln!(
            "round {round}: killed; {} events acknowledged so far",
            acknowledged.len()
        );
    }

    // The endpoint recovers; one more run delivers what is left in the journal.
    flaky.store(false, Ordering::Relaxed);
    let child = spawn_run(
        &config,
        &[("CRASH_HEC_TOKEN", "crash-token")],
        Stdio::piped(),
    );
    wait_healthy(&client, port).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (missing, counts) = loop {
        let counts = accepted.lock().unwrap().clone();
        let missing = acknowledged
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .count();
        if missing == 0 || Instant::now() > deadline {
            break (missing, counts);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let status = output.status;
    let duplicates: usize = acknowledged
        .iter()
        .map(|id| counts.get(id).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    eprintln!(
        "crash test: {} acknowledged over {kills} SIGKILLs, {missing} missing, {duplicates} extra copies received (at-least-once)",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 100,
        "the test must acknowledge events to mean anything"
    );
    assert_eq!(
        missing, 0,
        "acknowledged events were lost (replay with VOWGUARD_CRASH_SEED={seed})"
    );
    assert!(
        status.success(),
        "the last run shuts down cleanly on SIGTERM ({status}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

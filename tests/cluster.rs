//! Cluster mode against a real NATS server (a private `nats-server -js` per test, from
//! `vowguard-testkit`): replicas of the real `vowguard` binary sharing one stream.
//!
//! * Three replicas, events streamed in through two of them, the third SIGKILLed at seeded
//!   random moments and restarted: every acknowledged event reaches the HEC mock, every
//!   alert group is paged exactly once at the Slack mock, and SIEM duplicates are reported.
//! * NATS stopped and restarted mid-stream: intake answers 503 with `Retry-After` and
//!   `/health` says why while it is down; nothing acknowledged is lost.
//! * Two replicas with a threat-intel enricher whose provider never answers: intake
//!   acknowledges at once, the shared `_enrich` consumer enriches each event once, and the
//!   SIEM receives each enriched event once.
//! * Three replicas sharing inhibition and response: a P0 for a wedding routed by one
//!   replica mutes that wedding's lower alerts on the others; alerts of one group sent
//!   through all three page once and give one playbook run and one Jira ticket.
//! * A replica SIGKILLed between two steps of a playbook run (a Jira ticket opened, an
//!   approval waiting) hands the run over: another replica resumes it from the run state
//!   shared in KV, the ticket is not opened again, and the approval given there finishes
//!   the run (its Jira comment reaches the ticket the first replica opened).
//! * A dead letter of the `_enrich` consumer is listed by `vowguard dlq list` and
//!   replayed by `vowguard dlq replay` into the stream, enriched, and delivered to the SIEM.
//! * `group_wait` across replicas: alerts of one group routed by two replicas give ONE
//!   notification per channel standing for all of them; the replica sending a group's
//!   notification SIGKILLed mid-send hands it over (the channel it had sent is not sent
//!   again, the other gets the same sealed notification from the survivor).
//! * An incident acknowledged through one replica and resolved through the other reads as
//!   resolved, with both changes, through either; the next alerts open a new incident.
//! * A stream whose config conflicts with ours is refused, naming the field; wrong
//!   credentials are refused, naming the key, without the secret.
//!
//! Seeded randomness: `VOWGUARD_CLUSTER_SEED=<seed>` replays a run.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{free_port, terminate, wait_healthy};
use vowguard_testkit::nats::NatsServer;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const HEC_TOKEN: &str = "cluster-hec-token-41f2";
const SLACK_PATH: &str = "/services/T1/B1/cluster-slack-secret";
const VENUE_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ADMIN_TOKEN: &str = "cluster-admin-token-7d21";

fn seed() -> u64 {
    let seed = match std::env::var("VOWGUARD_CLUSTER_SEED") {
        Ok(text) => text.trim().parse().expect("VOWGUARD_CLUSTER_SEED is a u64"),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("cluster test seed: {seed} (replay with VOWGUARD_CLUSTER_SEED={seed})");
    seed
}

/// Ids delivered to the HEC mock, with how often each arrived.
type Seen = Arc<Mutex<HashMap<String, usize>>>;

async fn hec_mock() -> (MockServer, Seen) {
    let seen: Seen = Arc::default();
    let hec = MockServer::start().await;
    let record = seen.clone();
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(move |request: &Request| {
            let mut record = record.lock().unwrap();
            for value in serde_json::Deserializer::from_slice(&request.body)
                .into_iter::<serde_json::Value>()
                .flatten()
            {
                if let Some(id) = value["event"]["id"].as_str() {
                    *record.entry(id.to_owned()).or_default() += 1;
                }
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
    (hec, seen)
}

/// Slack messages received, as their bodies.
async fn slack_mock() -> (MockServer, Arc<Mutex<Vec<String>>>) {
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let slack = MockServer::start().await;
    let record = bodies.clone();
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(move |request: &Request| {
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request.body).into_owned());
            ResponseTemplate::new(200).set_body_string("ok")
        })
        .mount(&slack)
        .await;
    (slack, bodies)
}

/// The config of one replica: HTTP intake, the JetStream queue, a Splunk sink and, when
/// `slack` is set, a Slack notifier paged once per user for critical events.
fn write_config(
    dir: &Path,
    port: u16,
    nats: &str,
    stream: &str,
    hec: &str,
    slack: bool,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = format!(
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "5s"
[queue]
type = "jetstream"
servers = ["{nats}"]
request_timeout = "2s"
[queue.stream]
name = "{stream}"
subject = "{stream}.events"
[queue.consumers]
ack_wait = "2s"
max_deliver = 1000
batch = 50
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "CLUSTER_HEC_TOKEN" }}
batch = {{ max_events = 50, max_wait = "10ms" }}
retry = {{ max_attempts = 100000, initial_backoff = "5ms", max_backoff = "100ms" }}
"#
    );
    if slack {
        text.push_str(
            r#"
[notifiers.secops]
type = "slack"
webhook_url = { env = "CLUSTER_SLACK_WEBHOOK" }
[[routes]]
name = "critical"
match = { severity = ["critical"] }
notify = ["secops"]
group_by = ["user_id"]
group_wait = "1s"
group_interval = "1h"
"#,
        );
    }
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn spawn(config: &Path, slack_url: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("vowguard.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
        .env("CLUSTER_SLACK_WEBHOOK", slack_url)
        .env("CLUSTER_WH_VENUE", VENUE_SECRET)
        .env("CLUSTER_JIRA_TOKEN", "cluster-jira-token")
        .env("CLUSTER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("vowguard starts")
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn stop(mut child: Child) {
    terminate(&child);
    let _ = child.wait();
}

/// `vowguard cluster status --json` with `config`.
fn cluster_status(config: &Path) -> Option<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["cluster", "status", "--json", "--config"])
        .arg(config)
        .env("VOWGUARD_LOG", "error")
        .output()
        .unwrap();
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// One event; every 10th is critical, for one of 20 users.
fn event(n: u64) -> serde_json::Value {
    if n.is_multiple_of(10) {
        serde_json::json!({
            "id": format!("c-{n}"),
            "timestamp": "2026-06-20T10:00:00Z",
            "category": "data_export",
            "action": "guest_list.export",
            "severity": "critical",
            "user_id": format!("user-{}", (n / 10) % 20),
        })
    } else {
        serde_json::json!({
            "id": format!("c-{n}"),
            "action": "login",
            "outcome": "failure",
            "severity": "low",
            "user_id": format!("planner-{}", n % 7),
        })
    }
}

/// Posts `count` events starting at `*next` to `port`; returns the acknowledged ids.
async fn post(client: &reqwest::Client, port: u16, next: &mut u64, count: u64) -> Vec<u64> {
    let numbers: Vec<u64> = (*next..*next + count).collect();
    *next += count;
    let body: Vec<serde_json::Value> = numbers.iter().map(|n| event(*n)).collect();
    match client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => numbers,
        _ => Vec::new(),
    }
}

/// The number `n` of the first critical event id `c-<n>` mentioned in `text`.
fn critical_event_in(text: &str) -> Option<u64> {
    text.match_indices("c-").find_map(|(at, _)| {
        let digits: String = text[at + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<u64>().ok().filter(|n| n.is_multiple_of(10))
    })
}

/// Waits until `done` holds, polling; panics with `what` after `within`.
async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_sigkill_without_loss_or_double_pages() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let nats = NatsServer::start(&[]);
    let (hec, seen) = hec_mock().await;
    let (slack, pages) = slack_mock().await;
    let slack_url = format!("{}{SLACK_PATH}", slack.uri());
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = (0..3)
        .map(|i| {
            write_config(
                &dir.path().join(format!("r{i}")),
                ports[i],
                &nats.url(),
                "SHARED",
                &hec.uri(),
                true,
            )
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut replicas: Vec<Child> = Vec::new();
    for (config, port) in configs.iter().zip(&ports) {
        replicas.push(spawn(config, &slack_url));
        wait_healthy(&client, *port).await;
    }

    let mut acknowledged: BTreeSet<u64> = BTreeSet::new();
    let mut next = 0u64;
    let kills = 4;
    for _ in 0..kills {
        // Events in through replicas 0 and 1 while replica 2 works, then SIGKILL it mid-work.
        let until = Instant::now() + Duration::from_millis(300 + rng.u64(0..700));
        while Instant::now() < until {
            let port = ports[rng.usize(0..2)];
            acknowledged.extend(post(&client, port, &mut next, 20).await);
        }
        kill9(&mut replicas[2]);
        for _ in 0..5 {
            let port = ports[rng.usize(0..2)];
            acknowledged.extend(post(&client, port, &mut next, 20).await);
        }
        replicas[2] = spawn(&configs[2], &slack_url);
        wait_healthy(&client, ports[2]).await;
    }
    assert!(
        acknowledged.len() > 200,
        "too few events acknowledged: {}",
        acknowledged.len()
    );

    // Every acknowledged event reaches the SIEM.
    wait_for(
        "every acknowledged event at the HEC mock",
        Duration::from_secs(120),
        || {
            let seen = seen.lock().unwrap();
            acknowledged
                .iter()
                .all(|n| seen.contains_key(&format!("c-{n}")))
        },
    )
    .await;
    // The alert path has settled every event (nothing pending or unacknowledged).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let settled = cluster_status(&configs[0]).is_some_and(|status| {
            status["stream"]["consumers"]
                .as_array()
                .is_some_and(|consumers| {
                    consumers.len() == 2
                        && consumers
                            .iter()
                            .all(|c| c["pending"] == 0 && c["ack_pending"] == 0)
                })
        });
        if settled {
            break;
        }
        assert!(Instant::now() < deadline, "the consumers did not settle");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Each alert group (one per user among the acknowledged critical events) paged once,
    // one group_wait after its first alert, by whichever replica claimed it.
    let users: BTreeSet<String> = acknowledged
        .iter()
        .filter(|n| n.is_multiple_of(10))
        .map(|n| format!("user-{}", (n / 10) % 20))
        .collect();
    let paged_users = || -> BTreeSet<String> {
        pages
            .lock()
            .unwrap()
            .iter()
            .filter_map(|body| critical_event_in(body))
            .map(|n| format!("user-{}", (n / 10) % 20))
            .collect()
    };
    wait_for("every alert group paged", Duration::from_secs(60), || {
        paged_users().is_superset(&users)
    })
    .await;
    let pages = pages.lock().unwrap().clone();
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for body in &pages {
        // The message names the event that raised it (`c-<n>`, a critical one).
        let user = critical_event_in(body)
            .map(|n| format!("user-{}", (n / 10) % 20))
            .unwrap_or_else(|| format!("(no event id) {body}"));
        *per_user.entry(user).or_default() += 1;
    }
    let twice: Vec<_> = per_user.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "paged more than once: {twice:?}");
    assert_eq!(
        per_user.keys().cloned().collect::<BTreeSet<_>>(),
        users,
        "every alert group paged"
    );

    let seen = seen.lock().unwrap();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let total: usize = seen.values().sum();
    eprintln!(
        "cluster: {} events acknowledged, {} deliveries at the SIEM, {} duplicates ({:.2} %), {} pages for {} groups, {kills} SIGKILLs",
        acknowledged.len(),
        total,
        duplicates,
        100.0 * duplicates as f64 / total.max(1) as f64,
        pages.len(),
        users.len()
    );
    drop(seen);

    // The admin API shows the same stream and this replica's connection.
    let status = cluster_status(&configs[1]).expect("cluster status");
    assert_eq!(status["stream"]["name"], "SHARED");
    assert_eq!(status["connected"], true);
    for replica in replicas {
        stop(replica);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_stream_loses_nothing() {
    let mut nats = NatsServer::start(&[]);
    let (hec, seen) = hec_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &nats.url(), "RESTART", &hec.uri(), false);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let replica = spawn(&config, "http://127.0.0.1:9/unused");
    wait_healthy(&client, port).await;
    let mut acknowledged = BTreeSet::new();
    let mut next = 0u64;
    for _ in 0..10 {
        acknowledged.extend(post(&client, port, &mut next, 50).await);
    }

    // NATS down: intake refuses with 503 + Retry-After, /health says why.
    nats.kill();
    let body: Vec<serde_json::Value> = (1_000_000..1_000_010).map(event).collect();
    let refused = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let health = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let health: serde_json::Value = health.json().await.unwrap();
    let problem = health["queue"]["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("NATS unreachable"), "{health}");

    // Back up on the same port and store: intake resumes, nothing acknowledged is lost.
    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = 0;
    while after < 10 {
        let got = post(&client, port, &mut next, 50).await;
        if got.is_empty() {
            assert!(
                Instant::now() < deadline,
                "intake did not resume after the restart"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            after += 1;
        }
        acknowledged.extend(got);
    }
    wait_for(
        "every acknowledged event at the HEC mock",
        Duration::from_secs(60),
        || {
            let seen = seen.lock().unwrap();
            acknowledged
                .iter()
                .all(|n| seen.contains_key(&format!("c-{n}")))
        },
    )
    .await;
    stop(replica);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_publishes_and_exits_once_the_stream_is_drained() {
    let nats = NatsServer::start(&[]);
    let (hec, seen) = hec_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        free_port(),
        &nats.url(),
        "STDIN",
        &hec.uri(),
        false,
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("[server]\n", "")
        .replace("type = \"http\"", "type = \"stdin\"");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("listen = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, text).unwrap();
    let input: String = (0..500)
        .map(|n| format!("{}\n", event(n)))
        .chain(std::iter::once("not json\n".to_owned()))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["run", "--config"])
        .arg(&config)
        .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The exit waits for the stream to drain: every event is at the SIEM already.
    let seen = seen.lock().unwrap();
    let missing: Vec<u64> = (0..500)
        .filter(|n| !seen.contains_key(&format!("c-{n}")))
        .collect();
    assert!(missing.is_empty(), "not delivered: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivery_retried_to_another_replica_is_a_duplicate() {
    let nats = NatsServer::start(&[]);
    let (hec, _seen) = hec_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let configs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let config = write_config(
                &dir.path().join(format!("r{i}")),
                ports[i],
                &nats.url(),
                "HOOKS",
                &hec.uri(),
                false,
            );
            let mut text = std::fs::read_to_string(&config).unwrap();
            text.push_str(
                "[webhooks.venue]\ntype = \"standard_webhooks\"\nsecret = { env = \"CLUSTER_WH_VENUE\" }\n",
            );
            std::fs::write(&config, text).unwrap();
            config
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut replicas = Vec::new();
    for (config, port) in configs.iter().zip(ports) {
        replicas.push(spawn(config, "http://127.0.0.1:9/unused"));
        wait_healthy(&client, port).await;
    }
    let body = dir.path().join("venue.json");
    std::fs::write(
        &body,
        r#"{"type":"venue.door_forced","data":{"wedding_id":"w-9","severity":"critical"}}"#,
    )
    .unwrap();
    let signed = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args([
            "webhook",
            "sign",
            "--source",
            "venue",
            "--id",
            "msg_cluster_1",
            "--config",
        ])
        .arg(&configs[0])
        .arg("--body")
        .arg(&body)
        .env("CLUSTER_WH_VENUE", VENUE_SECRET)
        .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let headers: Vec<(String, String)> = String::from_utf8(signed.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let mut answers = Vec::new();
    for port in ports {
        let mut request = client.post(format!("http://127.0.0.1:{port}/v1/webhooks/venue"));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .body(std::fs::read(&body).unwrap())
            .send()
            .await
            .unwrap();
        answers.push((response.status().as_u16(), response.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert!(!answers[0].1.contains("duplicate"), "{answers:?}");
    assert_eq!(answers[1].0, 200, "{answers:?}");
    assert!(answers[1].1.contains("duplicate"), "{answers:?}");
    for replica in replicas {
        stop(replica);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_at_start_is_reported_and_retried() {
    let mut nats = NatsServer::start(&[]);
    nats.kill();
    let (hec, seen) = hec_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &nats.url(), "LATE", &hec.uri(), false);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let replica = spawn(&config, "http://127.0.0.1:9/unused");
    // Serving, but unhealthy with the reason, and refusing events with 503 + Retry-After.
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not start serving"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let health: serde_json::Value = health.json().await.unwrap();
    assert!(
        health["queue"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("cannot connect to NATS")),
        "{health}"
    );
    let refused = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&event(1))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));

    nats.restart();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let acknowledged = loop {
        let got = post(&client, port, &mut next, 10).await;
        if !got.is_empty() {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "intake did not start once NATS was up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_for(
        "the events at the HEC mock",
        Duration::from_secs(60),
        || {
            let seen = seen.lock().unwrap();
            acknowledged
                .iter()
                .all(|n| seen.contains_key(&format!("c-{n}")))
        },
    )
    .await;
    stop(replica);
}

fn run_to_exit(config: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["run", "--config"])
        .arg(config)
        .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
        .env("CLUSTER_NATS_PASSWORD", "Wr0ngCanary77")
        .env("VOWGUARD_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_stream_is_refused_naming_the_field() {
    let nats = NatsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let first = write_config(
        &dir.path().join("a"),
        free_port(),
        &nats.url(),
        "CONFLICT",
        "http://127.0.0.1:9",
        false,
    );
    // Creates the stream with subject CONFLICT.events.
    assert!(cluster_status(&first).is_some(), "first config connects");
    let second = dir.path().join("b/vowguard.toml");
    write_config(
        &dir.path().join("b"),
        free_port(),
        &nats.url(),
        "CONFLICT",
        "http://127.0.0.1:9",
        false,
    );
    let text = std::fs::read_to_string(&second).unwrap().replace(
        "subject = \"CONFLICT.events\"",
        "subject = \"other.events\"",
    );
    std::fs::write(&second, text).unwrap();
    let (ok, stderr) = run_to_exit(&second);
    assert!(!ok);
    assert!(
        stderr.contains("`queue.stream`") && stderr.contains("subjects"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_named_without_the_secret() {
    let nats = NatsServer::start(&["--user", "vowguard", "--pass", "right-password"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        free_port(),
        &nats.url(),
        "CREDS",
        "http://127.0.0.1:9",
        false,
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "request_timeout = \"2s\"",
        "request_timeout = \"2s\"\nuser = \"vowguard\"\npassword = { env = \"CLUSTER_NATS_PASSWORD\" }",
    );
    std::fs::write(&config, text).unwrap();
    let (ok, stderr) = run_to_exit(&config);
    assert!(!ok);
    assert!(stderr.contains("queue.user/queue.password"), "{stderr}");
    assert!(!stderr.contains("Wr0ngCanary77"), "{stderr}");
}

/// A loopback endpoint that accepts every connection and never answers (a black-holed
/// threat-intelligence provider). Returns its port; the connections are held until the
/// test process ends.
fn black_hole() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_enrich_on_the_stream_and_a_black_holed_enricher_holds_nothing_up() {
    let nats = NatsServer::start(&[]);
    // The HEC mock keeps each delivered event's body, by id (with how often it came).
    let bodies: Arc<Mutex<HashMap<String, (usize, serde_json::Value)>>> = Arc::default();
    let hec = MockServer::start().await;
    let record = bodies.clone();
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(move |request: &Request| {
            let mut record = record.lock().unwrap();
            for value in serde_json::Deserializer::from_slice(&request.body)
                .into_iter::<serde_json::Value>()
                .flatten()
            {
                if let Some(id) = value["event"]["id"].as_str() {
                    let entry = record
                        .entry(id.to_owned())
                        .or_insert((0, serde_json::Value::Null));
                    entry.0 += 1;
                    entry.1 = value["event"].clone();
                }
            }
            ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#)
        })
        .mount(&hec)
        .await;
    let misp = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut replicas = Vec::new();
    let mut ports = Vec::new();
    for name in ["a", "b"] {
        let port = free_port();
        let config = write_config(
            &dir.path().join(name),
            port,
            &nats.url(),
            "ENRICH",
            &hec.uri(),
            false,
        );
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            r#"
[enrichers.intel]
type = "misp"
url = "http://127.0.0.1:{misp}"
api_key = {{ env = "CLUSTER_MISP_KEY" }}
limits = {{ timeout = "300ms" }}
"#
        ));
        std::fs::write(&config, text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
            .env("CLUSTER_MISP_KEY", "cluster-misp-key-5a1d")
            .env("VOWGUARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(config.with_file_name("vowguard.log")).unwrap(),
            ))
            .spawn()
            .expect("vowguard starts");
        replicas.push((child, config));
        ports.push(port);
    }
    for port in &ports {
        wait_healthy(&client, *port).await;
    }
    // Intake acknowledges on either replica while MISP never answers (each event has a
    // source IP to look up).
    let mut acknowledged = Vec::new();
    for round in 0..6u64 {
        let numbers: Vec<u64> = (round * 10..round * 10 + 10).collect();
        let body: Vec<serde_json::Value> = numbers
            .iter()
            .map(|n| {
                let mut e = event(*n);
                e["source_ip"] = format!("198.51.100.{}", n + 1).into();
                e
            })
            .collect();
        let response = client
            .post(format!(
                "http://127.0.0.1:{}/v1/events",
                ports[round as usize % 2]
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        acknowledged.extend(numbers);
    }
    wait_for("60 events at the SIEM", Duration::from_secs(120), || {
        bodies.lock().unwrap().len() == 60
    })
    .await;
    // Every event once, and the copy at the SIEM is the enriched one: it records that
    // the black-holed enricher did not contribute (a timeout, then its open circuit).
    {
        let bodies = bodies.lock().unwrap();
        for n in &acknowledged {
            let (times, event) = &bodies[&format!("c-{n}")];
            assert_eq!(*times, 1, "c-{n} arrived {times} times");
            let reasons = &event["enrichment"]["not_enriched"];
            assert_eq!(reasons[0]["enricher"], "intel", "c-{n}: {event}");
        }
    }
    // The shared `_enrich` consumer is drained, and every replica exports the enricher's
    // circuit in /metrics.
    let (_, config) = &replicas[0];
    let mut status = None;
    wait_for("_enrich drained", Duration::from_secs(60), || {
        status = cluster_status(config);
        status.as_ref().is_some_and(|s| {
            s["stream"]["consumers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == "_enrich" && c["pending"] == 0 && c["ack_pending"] == 0)
        })
    })
    .await;
    let mut calls = 0.0;
    for port in &ports {
        let metrics = support::scrape_metrics(&client, *port).await;
        let line = metrics
            .lines()
            .find(|l| l.starts_with("vowguard_enricher_calls_total{enricher=\"intel\"}"))
            .unwrap_or_else(|| panic!("no enricher calls in /metrics:\n{metrics}"));
        calls += line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a count");
    }
    assert!(calls >= 1.0, "MISP was never asked");
    for (child, config) in replicas {
        stop(child);
        let log = std::fs::read_to_string(config.with_file_name("vowguard.log")).unwrap();
        assert!(!log.contains("cluster-misp-key-5a1d"), "{log}");
    }
}

/// A config of [`write_config`] without a Slack notifier, plus: P0s and P2s paged per
/// wedding, the default inhibit rule (a wedding's P0 mutes its P2-P4 for an hour), and a
/// playbook opening a Jira ticket for every P0 incident.
fn write_shared_config(dir: &Path, port: u16, nats: &str, hec: &str, jira: &str) -> PathBuf {
    let config = write_config(dir, port, nats, "SHARE", hec, false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[notifiers.secops]
type = "slack"
webhook_url = {{ env = "CLUSTER_SLACK_WEBHOOK" }}
[[routes]]
name = "critical"
match = {{ severity = ["critical"] }}
notify = ["secops"]
group_by = ["wedding_id"]
group_wait = "1s"
group_interval = "1h"
[[routes]]
name = "medium"
match = {{ severity = ["medium"] }}
notify = ["secops"]
group_by = ["wedding_id"]
group_wait = "1s"
group_interval = "1h"
[[inhibit_rules]]
source_matchers = ['priority="P0_CRITICAL"']
target_matchers = ['priority=~"P2_MEDIUM|P3_LOW|P4_INFO"']
equal = ["wedding_id"]
duration = "1h"
[tickets.jira]
type = "jira"
url = "{jira}"
email = "secops-bot@example.org"
api_token = {{ env = "CLUSTER_JIRA_TOKEN" }}
project = "SEC"
[response]
default_playbooks = false
[playbooks.escalate]
version = 1
trigger = {{ routes = ["critical"] }}
[[playbooks.escalate.steps]]
id = "ticket"
kind = "ticket"
system = "jira"
title = "Wedding emergency {{{{ event.wedding_id }}}}"
"#
    ));
    std::fs::write(&config, text).unwrap();
    config
}

/// Jira issues created (the search never finds one: only vowguard's claims keep it at one).
async fn jira_mock() -> (MockServer, Arc<Mutex<usize>>) {
    let created: Arc<Mutex<usize>> = Arc::default();
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"issues": []})))
        .mount(&jira)
        .await;
    let count = created.clone();
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(move |_: &Request| {
            let mut n = count.lock().unwrap();
            *n += 1;
            ResponseTemplate::new(201).set_body_json(serde_json::json!({
                "id": format!("1004{n}"), "key": format!("SEC-{n}"),
                "self": format!("https://example.invalid/rest/api/3/issue/1004{n}"),
            }))
        })
        .mount(&jira)
        .await;
    (jira, created)
}

/// Timeline entries named `action` in a replica's response record file.
fn timeline_count(replica_dir: &Path, action: &str) -> usize {
    let file = replica_dir.join("data/response/records.jsonl");
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.pointer("/entry/action").and_then(|a| a.as_str()) == Some(action))
        .count()
}

/// A critical malware detection (P0) or a medium network scan (P2) for `wedding`, on a
/// Wednesday (no Saturday escalation), in no protocol.
fn shared_event(id: &str, severity: &str, wedding: &str) -> serde_json::Value {
    let (category, action) = match severity {
        "critical" => ("malware", "detected"),
        _ => ("network", "scan"),
    };
    serde_json::json!({
        "id": id,
        "timestamp": "2026-06-17T10:00:00Z",
        "category": category,
        "action": action,
        "severity": severity,
        "wedding_id": wedding,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_inhibition_playbook_runs_and_tickets() {
    let nats = NatsServer::start(&[]);
    let (hec, _seen) = hec_mock().await;
    let (slack, pages) = slack_mock().await;
    let (jira, tickets) = jira_mock().await;
    let slack_url = format!("{}{SLACK_PATH}", slack.uri());
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let dirs: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("r{i}"))).collect();
    let configs: Vec<PathBuf> = (0..3)
        .map(|i| write_shared_config(&dirs[i], ports[i], &nats.url(), &hec.uri(), &jira.uri()))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let send = |port: u16, events: Vec<serde_json::Value>| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("http://127.0.0.1:{port}/v1/events"))
                .json(&events)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
        }
    };
    let pages_for = |pages: &Arc<Mutex<Vec<String>>>, id_prefix: &str| {
        pages
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.contains(id_prefix))
            .count()
    };
    let alerts_drained = || {
        cluster_status(&configs[0]).is_some_and(|s| {
            s["stream"]["consumers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["name"] == "_alerts")
                .all(|c| c["pending"] == 0 && c["ack_pending"] == 0)
        })
    };
    let handled = |dirs: &[PathBuf]| {
        dirs.iter()
            .map(|d| timeline_count(d, "alert_linked") + timeline_count(d, "opened"))
            .sum::<usize>()
    };

    // Replica 0 alone routes a P0 for wedding w-1: paged once, its playbook opens a ticket.
    let first = spawn(&configs[0], &slack_url);
    wait_healthy(&client, ports[0]).await;
    send(ports[0], vec![shared_event("p0-first", "critical", "w-1")]).await;
    wait_for("the P0 page", Duration::from_secs(60), || {
        pages_for(&pages, "p0-") == 1
    })
    .await;
    wait_for(
        "the Jira ticket and the run's end",
        Duration::from_secs(60),
        || *tickets.lock().unwrap() == 1 && timeline_count(&dirs[0], "run_finished") == 1,
    )
    .await;
    stop(first);

    // Replicas 1 and 2 (which saw none of that) get more of the P0's group and w-1's P2s,
    // muted only if the P0 is known through NATS, and a P2 of another wedding.
    let mut replicas = Vec::new();
    for (config, port) in configs.iter().zip(&ports).skip(1) {
        replicas.push(spawn(config, &slack_url));
        wait_healthy(&client, *port).await;
    }
    for (i, port) in ports.iter().copied().enumerate().skip(1) {
        send(
            port,
            vec![shared_event(&format!("p0-more-{i}"), "critical", "w-1")],
        )
        .await;
        send(
            port,
            vec![shared_event(&format!("p2-muted-{i}"), "medium", "w-1")],
        )
        .await;
    }
    send(ports[2], vec![shared_event("p2-other", "medium", "w-2")]).await;
    wait_for("the other wedding's page", Duration::from_secs(60), || {
        pages_for(&pages, "p2-other") == 1
    })
    .await;
    wait_for(
        "every event routed",
        Duration::from_secs(60),
        alerts_drained,
    )
    .await;
    wait_for(
        "the later P0 alerts handed to response",
        Duration::from_secs(60),
        || handled(&dirs[1..]) >= 2,
    )
    .await;
    for replica in replicas {
        stop(replica);
    }
    let all_pages = pages.lock().unwrap().clone();
    assert_eq!(
        pages_for(&pages, "p0-"),
        1,
        "one page for w-1's P0 group: {all_pages:#?}"
    );
    assert_eq!(
        pages_for(&pages, "p2-muted"),
        0,
        "w-1's P2s are inhibited: {all_pages:#?}"
    );
    assert_eq!(pages_for(&pages, "p2-other"), 1, "{all_pages:#?}");
    let runs: usize = dirs.iter().map(|d| timeline_count(d, "run_started")).sum();
    assert_eq!(runs, 1, "one playbook run across the replicas");
    assert_eq!(*tickets.lock().unwrap(), 1, "one Jira ticket");
    assert_eq!(timeline_count(&dirs[0], "run_started"), 1);
    // Replicas 1 and 2 got the group's later alerts and say why they ran nothing.
    let skipped: usize = dirs[1..]
        .iter()
        .map(|d| timeline_count(d, "run_claimed_elsewhere"))
        .sum();
    assert_eq!(skipped, 2, "one per later alert");
    // The cluster's notification log, read through any replica's config, has every
    // replica's sends: replica 0's P0 page and the other wedding's page from 1 or 2.
    let output = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["cluster", "notifications", "--json", "--config"])
        .arg(&configs[2])
        .env("VOWGUARD_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let logged: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = logged
        .iter()
        .filter_map(|r| r["event_id"].as_str())
        .collect();
    assert_eq!(events, ["p0-first", "p2-other"], "{logged:#?}");
    assert!(
        logged
            .iter()
            .all(|r| r["delivered"] == true && r["notifier"] == "secops")
    );
    // Every replica's copy of the incident has the one agreed id.
    let mut ids = BTreeSet::new();
    for d in &dirs {
        let text =
            std::fs::read_to_string(d.join("data/response/records.jsonl")).unwrap_or_default();
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            if let Some(id) = v.pointer("/incident/id").and_then(|i| i.as_str()) {
                ids.insert(id.to_owned());
            }
        }
    }
    assert_eq!(ids.len(), 1, "one incident id: {ids:?}");
}

/// Timeline entries named `action` in a replica's response record file, with their fields.
fn timeline(replica_dir: &Path, action: &str) -> Vec<serde_json::Value> {
    let file = replica_dir.join("data/response/records.jsonl");
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.pointer("/entry/action").and_then(|a| a.as_str()) == Some(action))
        .map(|v| v["entry"]["fields"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_taken_over_after_sigkill_resumes_without_repeating_a_step() {
    let nats = NatsServer::start(&[]);
    let (hec, _seen) = hec_mock().await;
    let (slack, _pages) = slack_mock().await;
    let (jira, tickets) = jira_mock().await;
    let comments: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = comments.clone();
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(
            r"^/rest/api/3/issue/[^/]+/comment$",
        ))
        .respond_with(move |request: &Request| {
            record.lock().unwrap().push(request.url.path().to_owned());
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "1"}))
        })
        .mount(&jira)
        .await;
    let slack_url = format!("{}{SLACK_PATH}", slack.uri());
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let dirs: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("r{i}"))).collect();
    let configs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let config = write_config(
                &dirs[i],
                ports[i],
                &nats.url(),
                "TAKEOVER",
                &hec.uri(),
                false,
            );
            let text = std::fs::read_to_string(&config).unwrap().replace(
                "[server]\n",
                "[server]\nadmin_token = { env = \"CLUSTER_ADMIN_TOKEN\" }\n",
            );
            std::fs::write(
                &config,
                text + &format!(
                    r#"
[notifiers.secops]
type = "slack"
webhook_url = {{ env = "CLUSTER_SLACK_WEBHOOK" }}
[[routes]]
name = "critical"
match = {{ severity = ["critical"] }}
notify = ["secops"]
group_by = ["wedding_id"]
group_interval = "1h"
[tickets.jira]
type = "jira"
url = "{jira}"
email = "secops-bot@example.org"
api_token = {{ env = "CLUSTER_JIRA_TOKEN" }}
project = "SEC"
[response]
default_playbooks = false
[playbooks.escalate]
version = 1
trigger = {{ routes = ["critical"] }}
[[playbooks.escalate.steps]]
id = "ticket"
kind = "ticket"
system = "jira"
title = "Wedding emergency {{{{ event.wedding_id }}}}"
[[playbooks.escalate.steps]]
id = "approve"
kind = "approval"
approvers = ["alice"]
deadline = "1h"
[[playbooks.escalate.steps]]
id = "note"
kind = "ticket"
system = "jira"
op = "update"
message = "Recovery approved"
"#,
                    jira = jira.uri()
                ),
            )
            .unwrap();
            config
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let send = |port: u16, id: String| {
        let client = client.clone();
        async move {
            client
                .post(format!("http://127.0.0.1:{port}/v1/events"))
                .json(&vec![shared_event(&id, "critical", "w-7")])
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED)
        }
    };

    // Replica 0 alone: the P0 starts the run, the ticket is opened, the approval waits.
    let mut first = spawn(&configs[0], &slack_url);
    wait_healthy(&client, ports[0]).await;
    assert!(send(ports[0], "p0-start".into()).await);
    wait_for(
        "the ticket, then the approval waiting",
        Duration::from_secs(60),
        || {
            *tickets.lock().unwrap() == 1
                && timeline(&dirs[0], "step_started")
                    .iter()
                    .any(|f| f["step_id"] == "approve")
        },
    )
    .await;
    // Killed between the two steps: no shutdown, its run claim stops being renewed.
    kill9(&mut first);

    // Replica 1 gets more alerts of the group; once the dead replica's claim expired
    // (ack_wait, at least 5 s) one of them takes the run over.
    let second = spawn(&configs[1], &slack_url);
    wait_healthy(&client, ports[1]).await;
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while timeline(&dirs[1], "run_taken_over").is_empty() {
        assert!(Instant::now() < deadline, "the run was never taken over");
        if timeline(&dirs[1], "run_claimed_elsewhere").len() >= n {
            n += 1;
            assert!(send(ports[1], format!("p0-more-{n}")).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let taken = timeline(&dirs[1], "run_taken_over").remove(0);
    let run_id = taken["run_id"].as_str().unwrap().to_owned();
    // Resumed with the header it started with on replica 0, not restarted.
    let started_at = |d: &Path| {
        std::fs::read_to_string(d.join("data/response/records.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["record"] == "run")
            .map(|v| v["run"]["started_at"].clone())
    };
    assert_eq!(started_at(&dirs[1]), started_at(&dirs[0]));
    assert_eq!(Some(taken["started_at"].clone()), started_at(&dirs[0]));
    assert_eq!(
        timeline(&dirs[0], "run_started")[0]["run_id"],
        run_id.as_str(),
        "the same run"
    );
    wait_for("the steps taken over", Duration::from_secs(30), || {
        !timeline(&dirs[1], "steps_taken_over").is_empty()
    })
    .await;
    let steps = timeline(&dirs[1], "steps_taken_over").remove(0)["steps"].clone();
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step_id"] == "ticket" && s["status"] == "succeeded"),
        "{steps}"
    );
    assert!(
        timeline(&dirs[1], "step_started")
            .iter()
            .all(|f| f["step_id"] != "ticket"),
        "the finished ticket step is not started again"
    );
    assert_eq!(
        *tickets.lock().unwrap(),
        1,
        "the ticket is not opened again"
    );

    // The approval waits on replica 1; given there, the run finishes with its last step.
    let approve = |client: reqwest::Client| {
        let url = format!(
            "http://127.0.0.1:{}/api/playbook-runs/{run_id}/approve",
            ports[1]
        );
        async move {
            client
                .post(url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&serde_json::json!({"step": "approve", "as": "alice"}))
                .send()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = approve(client.clone()).await;
        if r.status().is_success() {
            break;
        }
        // The driver may still be taking the run in: the approval step is not waiting yet.
        assert!(
            Instant::now() < deadline,
            "approval refused: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for("the run's end", Duration::from_secs(60), || {
        timeline(&dirs[1], "run_finished")
            .iter()
            .any(|f| f["run_id"] == run_id.as_str())
    })
    .await;
    stop(second);
    let finished = timeline(&dirs[1], "run_finished");
    assert_eq!(finished[0]["state"], "succeeded", "{finished:?}");
    assert_eq!(*tickets.lock().unwrap(), 1, "one Jira ticket in all");
    let comments = comments.lock().unwrap().clone();
    assert_eq!(
        comments,
        ["/rest/api/3/issue/SEC-1/comment"],
        "the last step comments on the ticket replica 0 opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrich_dead_letter_is_listed_and_replayed_to_the_siem() {
    let nats = NatsServer::start(&[]);
    let (hec, seen) = hec_mock().await;
    let misp = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        &dir.path().join("r0"),
        port,
        &nats.url(),
        "REPLAY",
        &hec.uri(),
        false,
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[enrichers.intel]
type = "misp"
url = "http://127.0.0.1:{misp}"
api_key = {{ env = "CLUSTER_MISP_KEY" }}
limits = {{ timeout = "300ms" }}
"#
    ));
    std::fs::write(&config, text).unwrap();
    let command = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
            .env("CLUSTER_MISP_KEY", "cluster-misp-key-5a1d")
            .env("VOWGUARD_LOG", "error")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let start = || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("vowguard.log"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
            .env("CLUSTER_MISP_KEY", "cluster-misp-key-5a1d")
            .env("VOWGUARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("vowguard starts")
    };
    // The replica runs once (the stream and its `_enrich` consumer exist) and stops: the
    // CLI replays with the replica's data directory, whose audit log it appends to.
    let client = reqwest::Client::new();
    let child = start();
    wait_healthy(&client, port).await;
    stop(child);
    // The dead letter the `_enrich` consumer writes when the stream refuses an event's
    // enriched copy for good (here: written as it does, into the replica's file; the
    // jetstream crate's tests drive that refusal for real).
    let mut event: vowguard_core::Event = serde_json::from_value(event(40)).expect("a valid event");
    event.source_ip = Some("198.51.100.40".parse().unwrap());
    let letter = vowguard_pipeline::DeadLetter::new(
        "_enrich",
        &event,
        &vowguard_core::Error::invalid_input(
            "publish to stream REPLAY failed: maximum payload exceeded",
        ),
        1,
    );
    let file = dir.path().join("r0/data/dead_letters.jsonl");
    let mut line = serde_json::to_string(&letter).unwrap();
    line.push('\n');
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap(),
        line.as_bytes(),
    )
    .unwrap();

    let (ok, listed, stderr) = command(&["dlq", "list"]);
    assert!(ok, "{stderr}");
    assert!(
        listed.contains("_enrich") && listed.contains("c-40"),
        "{listed}"
    );
    assert!(listed.contains("1 dead letter(s)"), "{listed}");
    let (ok, replayed, stderr) = command(&["dlq", "replay", "--sink", "_enrich"]);
    assert!(ok, "{replayed}{stderr}");
    assert!(
        replayed.contains("replayed 1: 0 delivered, 1 requeued to the stream, 0 failed again"),
        "{replayed}"
    );
    // Republished raw, it waits in the stream: the replica started again enriches it and
    // the SIEM gets it once.
    let child = start();
    wait_healthy(&client, port).await;
    wait_for(
        "the replayed event at the SIEM",
        Duration::from_secs(60),
        || seen.lock().unwrap().get("c-40") == Some(&1),
    )
    .await;
    let enriched = hec_body(&hec, "c-40").await;
    assert_eq!(
        enriched["enrichment"]["not_enriched"][0]["enricher"], "intel",
        "it went through the enrichers: {enriched}"
    );
    stop(child);
    let (ok, listed, _) = command(&["dlq", "list"]);
    assert!(ok);
    assert!(listed.contains("0 dead letter(s)"), "{listed}");
    // A second replay finds nothing left to send.
    let (ok, replayed, _) = command(&["dlq", "replay"]);
    assert!(ok && replayed.contains("replayed 0:"), "{replayed}");
    assert_eq!(seen.lock().unwrap().get("c-40"), Some(&1), "delivered once");
}

/// The last body the HEC mock received for event `id` (its `event` object), read from
/// the requests it recorded.
async fn hec_body(hec: &MockServer, id: &str) -> serde_json::Value {
    for request in hec
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .rev()
    {
        for value in serde_json::Deserializer::from_slice(&request.body)
            .into_iter::<serde_json::Value>()
            .flatten()
        {
            if value["event"]["id"] == id {
                return value["event"].clone();
            }
        }
    }
    panic!("no HEC request carried {id}");
}

/// Slack requests by path (each replica and channel has its own webhook path), in
/// arrival order. The first request to a path ending in `hang_suffix` is answered only
/// after a minute (the replica sending it is killed meanwhile).
type SlackLog = Arc<Mutex<Vec<(String, String)>>>;

async fn slack_paths_mock(hang_suffix: Option<&'static str>) -> (MockServer, SlackLog) {
    let log: SlackLog = Arc::default();
    let slack = MockServer::start().await;
    let record = log.clone();
    Mock::given(method("POST"))
        .respond_with(move |request: &Request| {
            let mut log = record.lock().unwrap();
            let path = request.url.path().to_owned();
            let first_hang = hang_suffix.is_some_and(|suffix| {
                path.ends_with(suffix) && !log.iter().any(|(p, _)| p.ends_with(suffix))
            });
            log.push((path, String::from_utf8_lossy(&request.body).into_owned()));
            let response = ResponseTemplate::new(200).set_body_string("ok");
            if first_hang {
                response.set_delay(Duration::from_secs(60))
            } else {
                response
            }
        })
        .mount(&slack)
        .await;
    (slack, log)
}

/// The config of replica `index` for the group tests: HTTP intake with an admin token, the
/// jetstream queue (stream `stream`), a Splunk sink, and critical events grouped per user
/// (`group_wait` 3 s, `group_interval` 1 h) to two Slack channels, `secops` then `oncall`,
/// whose webhook paths name the replica (`/r<index>/secops`).
fn write_group_config(dir: &Path, port: u16, nats: &str, stream: &str, hec: &str) -> PathBuf {
    let config = write_config(dir, port, nats, stream, hec, false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "[server]\n",
        "[server]\nadmin_token = { env = \"CLUSTER_ADMIN_TOKEN\" }\n",
    );
    text.push_str(
        r#"
[notifiers.secops]
type = "slack"
webhook_url = { env = "CLUSTER_SLACK_WEBHOOK" }
[notifiers.oncall]
type = "slack"
webhook_url = { env = "CLUSTER_ONCALL_WEBHOOK" }
[[routes]]
name = "critical"
match = { severity = ["critical"] }
notify = ["secops", "oncall"]
group_by = ["user_id"]
group_wait = "3s"
group_interval = "1h"
[response]
default_playbooks = false
"#,
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Starts replica `index` of the group tests, with its own Slack paths on `slack`.
fn spawn_group_replica(config: &Path, slack: &str, index: usize) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("vowguard.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("CLUSTER_HEC_TOKEN", HEC_TOKEN)
        .env("CLUSTER_SLACK_WEBHOOK", format!("{slack}/r{index}/secops"))
        .env("CLUSTER_ONCALL_WEBHOOK", format!("{slack}/r{index}/oncall"))
        .env("CLUSTER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("vowguard starts")
}

/// A critical event `id` of `user` at 2026-06-20 10:`minute`:00 UTC.
fn user_event(id: &str, user: &str, minute: u32) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "timestamp": format!("2026-06-20T10:{minute:02}:00Z"),
        "category": "data_export",
        "action": "guest_list.export",
        "severity": "critical",
        "user_id": user,
    })
}

async fn post_events(client: &reqwest::Client, port: u16, events: Vec<serde_json::Value>) {
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
}

/// How many requests of `log` went to a path ending in `suffix` and mention `text`.
fn requests(log: &SlackLog, suffix: &str, text: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(p, body)| p.ends_with(suffix) && body.contains(text))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_wait_batches_alerts_from_two_replicas_into_one_notification() {
    let nats = NatsServer::start(&[]);
    let (hec, _seen) = hec_mock().await;
    let (slack, log) = slack_paths_mock(None).await;
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = (0..2)
        .map(|i| {
            write_group_config(
                &dir.path().join(format!("r{i}")),
                ports[i],
                &nats.url(),
                "GROUPS",
                &hec.uri(),
            )
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut replicas = Vec::new();
    for (i, (config, port)) in configs.iter().zip(&ports).enumerate() {
        replicas.push(spawn_group_replica(config, &slack.uri(), i));
        wait_healthy(&client, *port).await;
    }
    // Six alerts of one group, in through both replicas one at a time (each routed by
    // whichever replica pulls it), all within the group's 3 s group_wait.
    for minute in 0..6u32 {
        let port = ports[minute as usize % 2];
        post_events(
            &client,
            port,
            vec![user_event(&format!("g-{minute}"), "user-g", minute)],
        )
        .await;
    }
    // A second group, started afterwards: once its page is in, the first group's flush
    // is long over (a second page of it would have come with the first).
    post_events(&client, ports[1], vec![user_event("h-0", "user-h", 30)]).await;
    wait_for("both groups paged", Duration::from_secs(60), || {
        requests(&log, "/oncall", "h-0") == 1 && requests(&log, "/secops", "h-0") == 1
    })
    .await;
    let all = log.lock().unwrap().clone();
    let first_group: Vec<&(String, String)> =
        all.iter().filter(|(_, body)| body.contains("g-")).collect();
    assert_eq!(
        first_group.len(),
        2,
        "one notification per channel for the six alerts: {all:#?}"
    );
    for channel in ["/secops", "/oncall"] {
        let (_, body) = first_group
            .iter()
            .find(|(p, _)| p.ends_with(channel))
            .unwrap_or_else(|| panic!("no {channel} page: {all:#?}"));
        // The notification stands for all six alerts, from the earliest to the latest.
        assert!(
            body.contains("6 events from 2026-06-20 10:00:00 to 10:05:00 UTC"),
            "{body}"
        );
    }
    for replica in replicas {
        stop(replica);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_replica_is_killed_mid_flush_is_flushed_by_another() {
    let nats = NatsServer::start(&[]);
    let (hec, _seen) = hec_mock().await;
    // The first `oncall` page hangs: the replica flushing the group has sent `secops`
    // (and marked it) and is stuck on `oncall` when it is killed.
    let (slack, log) = slack_paths_mock(Some("/oncall")).await;
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = (0..2)
        .map(|i| {
            write_group_config(
                &dir.path().join(format!("r{i}")),
                ports[i],
                &nats.url(),
                "HANDOVER",
                &hec.uri(),
            )
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut replicas: Vec<Option<Child>> = Vec::new();
    for (i, (config, port)) in configs.iter().zip(&ports).enumerate() {
        replicas.push(Some(spawn_group_replica(config, &slack.uri(), i)));
        wait_healthy(&client, *port).await;
    }
    for minute in 0..3u32 {
        post_events(
            &client,
            ports[minute as usize % 2],
            vec![user_event(&format!("k-{minute}"), "user-k", minute)],
        )
        .await;
    }
    wait_for("the hanging oncall page", Duration::from_secs(60), || {
        requests(&log, "/oncall", "k-") == 1
    })
    .await;
    let holder = {
        let log = log.lock().unwrap();
        let (path, _) = log.iter().find(|(p, _)| p.ends_with("/oncall")).unwrap();
        usize::from(path.starts_with("/r1/"))
    };
    kill9(replicas[holder].as_mut().unwrap());
    replicas[holder] = None;
    let other = 1 - holder;
    // The other replica takes the group over once the dead one's claim expired, and
    // sends the sealed notification to the channel that does not have it.
    wait_for(
        "the oncall page from the other replica",
        Duration::from_secs(60),
        || requests(&log, &format!("/r{other}/oncall"), "k-") == 1,
    )
    .await;
    // A later group through the survivor: once it is paged, the handover is over.
    post_events(&client, ports[other], vec![user_event("m-0", "user-m", 40)]).await;
    wait_for("the later group's pages", Duration::from_secs(60), || {
        requests(&log, "/oncall", "m-0") == 1 && requests(&log, "/secops", "m-0") == 1
    })
    .await;
    let all = log.lock().unwrap().clone();
    assert_eq!(
        requests(&log, "/secops", "k-"),
        1,
        "secops had it from the dead replica and got it once: {all:#?}"
    );
    assert_eq!(
        requests(&log, "/oncall", "k-"),
        2,
        "the hung request and the takeover's: {all:#?}"
    );
    let bodies: Vec<&String> = all
        .iter()
        .filter(|(p, b)| p.ends_with("/oncall") && b.contains("k-"))
        .map(|(_, b)| b)
        .collect();
    assert_eq!(bodies[0], bodies[1], "the same sealed notification");
    assert!(
        bodies[1].contains("3 events from 2026-06-20 10:00:00 to 10:02:00 UTC"),
        "{}",
        bodies[1]
    );
    for replica in replicas.into_iter().flatten() {
        stop(replica);
    }
}

/// `GET /api/incidents` of the replica on `port`.
async fn incidents_of(client: &reqwest::Client, port: u16) -> Vec<serde_json::Value> {
    let r = client
        .get(format!("http://127.0.0.1:{port}/api/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let body: serde_json::Value = r.json().await.unwrap();
    body["incidents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_resolved_on_one_replica_reads_as_resolved_on_the_other() {
    let nats = NatsServer::start(&[]);
    let (hec, _seen) = hec_mock().await;
    let (slack, _log) = slack_paths_mock(None).await;
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = (0..2)
        .map(|i| {
            write_group_config(
                &dir.path().join(format!("r{i}")),
                ports[i],
                &nats.url(),
                "INCIDENTS",
                &hec.uri(),
            )
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut replicas = Vec::new();
    for (i, (config, port)) in configs.iter().zip(&ports).enumerate() {
        replicas.push(spawn_group_replica(config, &slack.uri(), i));
        wait_healthy(&client, *port).await;
    }
    // Alerts of one user until both replicas have routed one: each has its copy of the
    // incident, under the id they agreed on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0u32;
    let id = loop {
        let a = incidents_of(&client, ports[0]).await;
        let b = incidents_of(&client, ports[1]).await;
        if let (Some(a), Some(b)) = (a.first(), b.first()) {
            assert_eq!(a["id"], b["id"], "one agreed incident id");
            break a["id"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "both replicas never had the incident"
        );
        post_events(
            &client,
            ports[n as usize % 2],
            vec![user_event(&format!("i-{n}"), "user-i", n % 60)],
        )
        .await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Acknowledged through replica 1, resolved through replica 0 (which never saw the
    // acknowledgement): replica 1 then reads it resolved, with both changes.
    let ack = client
        .post(format!(
            "http://127.0.0.1:{}/api/incidents/{id}/ack",
            ports[1]
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"as": "bob"}))
        .send()
        .await
        .unwrap();
    assert!(ack.status().is_success(), "{}", ack.text().await.unwrap());
    let resolve = client
        .post(format!(
            "http://127.0.0.1:{}/api/incidents/{id}/resolve",
            ports[0]
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"as": "alice", "note": "false alarm"}))
        .send()
        .await
        .unwrap();
    assert!(
        resolve.status().is_success(),
        "{}",
        resolve.text().await.unwrap()
    );
    let shown: serde_json::Value = client
        .get(format!("http://127.0.0.1:{}/api/incidents/{id}", ports[1]))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incident = &shown["incident"];
    assert_eq!(incident["state"], "resolved", "{shown:#}");
    assert_eq!(incident["resolved"]["by"], "alice", "{shown:#}");
    assert_eq!(incident["acknowledged"]["by"], "bob", "{shown:#}");
    let on_a: serde_json::Value = client
        .get(format!("http://127.0.0.1:{}/api/incidents/{id}", ports[0]))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(on_a["incident"]["acknowledged"]["by"], "bob", "{on_a:#}");
    // Resolving it again through replica 1 is refused: it is resolved.
    let again = client
        .post(format!(
            "http://127.0.0.1:{}/api/incidents/{id}/resolve",
            ports[1]
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"as": "carol", "note": "again"}))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_client_error(), "{}", again.status());
    // Its list agrees.
    let listed = incidents_of(&client, ports[1]).await;
    let listed = listed.iter().find(|i| i["id"] == id.as_str()).unwrap();
    assert_eq!(listed["state"], "resolved");
    // The next alerts of the user open a new incident, on whichever replica routes them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut fresh = 0;
        for port in &ports {
            fresh += incidents_of(&client, *port)
                .await
                .iter()
                .filter(|i| i["id"] != id.as_str() && i["state"] == "open")
                .count();
        }
        if fresh > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new incident after the resolution"
        );
        post_events(
            &client,
            ports[n as usize % 2],
            vec![user_event(&format!("i-{n}"), "user-i", n % 60)],
        )
        .await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for port in &ports {
        for i in incidents_of(&client, *port).await {
            if i["id"] == id.as_str() {
                assert_eq!(i["state"], "resolved", "replica {port}: {i:#}");
            }
        }
    }
    for replica in replicas {
        stop(replica);
    }
}

//! vowguard benchmarks: `cargo xtask bench [encoders|pipeline|notify|http|webhooks]`
//! (release build).
//!
//! * `encoders`: events/s of every sink's encoder on ~600-byte events.
//! * `pipeline`: stdin NDJSON → parse → pipeline → each sink alone, against a local
//!   receiver that answers at once and counts events (a small axum server for HTTP sinks,
//!   a TCP syslog receiver for CEF/LEEF). Measures the whole `vowguard run` path
//!   in-process, several interleaved runs; prints when the receiver had every event
//!   (forwarding) and when the run returned (every sink and the alert path caught up).
//! * `notify`: latency from an event entering the pipeline to all five alert channels
//!   (Slack, PagerDuty, Teams, SMS, email) having accepted its P0 alert, p50/p99. Vendor
//!   rate limits are raised for this run so the figure is vowguard's own latency.
//! * `http`: the same end to end from `POST /v1/events` (the HTTP source, acknowledged
//!   after the journal) under a steady load of 20 P0 events/s for 15 s.
//! * `webhooks`: `POST /v1/webhooks/{id}` for every signature scheme against the same
//!   event on `POST /v1/events`, in one run: verified webhooks/s (sequential and 8 in
//!   flight) and the p99 latency a webhook adds (verification, mapping, replay guard);
//!   plus the in-process cost of verification and mapping alone ([`Source::accept`]).
//!   Seeded (`VOWGUARD_BENCH_SEED`, default 14); `VOWGUARD_BENCH_WEBHOOKS` requests per
//!   scheme and endpoint (default 2000).
//!
//! These are measurements, not tests: they print figures and never fail on a number.
#![allow(clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "compare/src/lib.rs"]
#[allow(unreachable_pub)]
mod counting;

use serde_json::{Value, json};
use vowguard_core::{Event, SecretMap};
use vowguard_pipeline::Pipeline;
use vowguard_runtime::{Config, Environment, assemble, run_with_input};
use vowguard_testkit::receivers::{smtp_receiver, syslog_receiver};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn event_line(i: usize) -> String {
    json!({
        "id": format!("bench-{i:08}"),
        "timestamp": "2026-06-20T11:30:00.123Z",
        "category": "authentication",
        "action": "login",
        "outcome": if i.is_multiple_of(7) { "success" } else { "failure" },
        "severity": "medium",
        "risk_score": (i % 100) as u64,
        "message": format!("invalid password for planner account, attempt {i} from a known proxy network"),
        "user_id": format!("planner-{}", i % 500),
        "user_name": "alex.planner@example.org",
        "source_ip": format!("203.0.{}.{}", (i / 256) % 256, i % 256),
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "resource_type": "accounts",
        "resource_id": format!("acct-{}", i % 500),
        "wedding_id": format!("w-2026-06-20-{}", i % 40),
        "labels": {"env": "prod", "service": "auth-gateway"},
        "attributes": {"session_id": format!("s-{i:x}"), "mfa": false}
    })
    .to_string()
}

fn secrets() -> SecretMap {
    SecretMap::new()
        .with("BENCH_TOKEN", "bench-token")
        .with("BENCH_ES_KEY", "YmVuY2g6YmVuY2g=")
        .with("BENCH_PD_KEY", "R0uT1nGKeYbench00000000000000042")
}

fn sink_table(kind: &str, endpoint: &str) -> String {
    match kind {
        "splunk_hec" => format!(
            "[sinks.s]\ntype = \"splunk_hec\"\nendpoint = \"{endpoint}\"\ntoken = {{ env = \"BENCH_TOKEN\" }}\n"
        ),
        "elasticsearch" => format!(
            "[sinks.s]\ntype = \"elasticsearch\"\nendpoint = \"{endpoint}\"\napi_key = {{ env = \"BENCH_ES_KEY\" }}\n"
        ),
        "datadog_logs" => format!(
            "[sinks.s]\ntype = \"datadog_logs\"\napi_key = {{ env = \"BENCH_TOKEN\" }}\nendpoint = \"{endpoint}\"\napi_endpoint = \"{endpoint}\"\n"
        ),
        "arcsight" | "qradar" => {
            format!("[sinks.s]\ntype = \"{kind}\"\n[sinks.s.syslog]\naddress = \"{endpoint}\"\n")
        }
        other => panic!("no bench table for {other}"),
    }
}

const SINKS: [&str; 5] = [
    "splunk_hec",
    "elasticsearch",
    "datadog_logs",
    "arcsight",
    "qradar",
];

fn build(config: &str) -> vowguard_runtime::Assembly {
    let dir = std::env::temp_dir().join(format!("vowguard-bench-{}", std::process::id()));
    let parsed = Config::parse(config).expect("bench config parses");
    assemble(
        &parsed,
        &Environment {
            config_dir: &dir,
            secrets: &secrets(),
        },
    )
    .expect("bench config assembles")
}

fn encoders() {
    println!("## Encoders (one event in, bytes out; single core)\n");
    println!("| sink | events/s | bytes/event | MB/s |\n|---|---:|---:|---:|");
    let events: Vec<Event> = (0..10_000)
        .map(|i| Event::from_json_str(&event_line(i)).unwrap())
        .collect();
    for kind in SINKS {
        let endpoint = if matches!(kind, "arcsight" | "qradar") {
            "127.0.0.1:9"
        } else {
            "http://127.0.0.1:9"
        };
        let assembly = build(&sink_table(kind, endpoint));
        let sink = assembly.spec.sinks[0].sink.clone();
        let rounds = 30;
        let mut bytes = 0usize;
        let started = Instant::now();
        for _ in 0..rounds {
            for event in &events {
                bytes += sink.encode(event).expect("encodes").len();
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let n = (rounds * events.len()) as f64;
        println!(
            "| {kind} | {:.0} | {:.0} | {:.1} |",
            n / secs,
            bytes as f64 / n,
            bytes as f64 / secs / 1e6
        );
    }
    println!();
}

/// Counts the events an HTTP sink delivered and remembers when the `target`-th arrived.
struct Delivered {
    events: std::sync::atomic::AtomicU64,
    target: u64,
    all_at: std::sync::OnceLock<Instant>,
}

impl Delivered {
    fn add(&self, events: u64) {
        let total = self
            .events
            .fetch_add(events, std::sync::atomic::Ordering::AcqRel)
            + events;
        if total >= self.target {
            self.all_at.get_or_init(Instant::now);
        }
    }
}

/// A local receiver for one HTTP sink kind that answers every request at once with the
/// vendor's success body and counts the events in it (HEC: concatenated envelopes;
/// Elasticsearch: bulk lines, two per event; Datadog: a JSON array, gzip by default).
async fn counting_receiver(kind: &'static str, delivered: Arc<Delivered>) -> String {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let handler = move |headers: HeaderMap, body: Bytes| {
        let delivered = delivered.clone();
        async move {
            let body = if headers
                .get("content-encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
            {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut plain,
                )
                .expect("gzip body");
                plain
            } else {
                body.to_vec()
            };
            let (events, answer, status) = match kind {
                "splunk_hec" => (
                    counting::count_envelopes(&body),
                    r#"{"text":"Success","code":0}"#,
                    200,
                ),
                "elasticsearch" => (
                    body.iter().filter(|b| **b == b'\n').count() as u64 / 2,
                    r#"{"errors":false}"#,
                    200,
                ),
                _ => (counting::count_values_closing_at(&body, 1), "{}", 202),
            };
            delivered.add(events);
            (
                axum::http::StatusCode::from_u16(status).expect("status"),
                [("content-type", "application/json")],
                answer,
            )
        }
    };
    let app = axum::Router::new()
        .fallback(handler)
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// `min / median / max` of the values.
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    };
    format!("{:.0} / {median:.0} / {:.0}", values[0], values[n - 1])
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// stdin → pipeline → each sink alone. Two figures per run, because the run ends only once
/// every journal reader has caught up, the alert path included:
/// * forwarded: events over the time until the receiver had every event;
/// * drained: events over the time until `run_with_input` returned (every sink AND the
///   alert path caught up, positions persisted).
///
/// Runs are interleaved (each round runs every sink once); `VOWGUARD_BENCH_RUNS` sets the
/// number of rounds (default 3), `VOWGUARD_BENCH_EVENTS` the events per run (default
/// 200 000).
async fn pipeline() {
    let events: usize = std::env::var("VOWGUARD_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(200_000);
    let runs: usize = std::env::var("VOWGUARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3);
    let input: String = (0..events).map(|i| event_line(i) + "\n").collect();
    println!(
        "## stdin → pipeline → one sink, local receiver answering at once ({events} events, {:.0} MB of NDJSON, {runs} runs per sink, interleaved)\n",
        input.len() as f64 / 1e6
    );
    println!("load average at start: {}\n", load_average());
    let mut forwarded: Vec<Vec<f64>> = vec![Vec::new(); SINKS.len()];
    let mut drained: Vec<Vec<f64>> = vec![Vec::new(); SINKS.len()];
    for round in 1..=runs {
        for (index, kind) in SINKS.into_iter().enumerate() {
            let delivered = Arc::new(Delivered {
                events: 0.into(),
                target: events as u64,
                all_at: std::sync::OnceLock::new(),
            });
            let endpoint = if matches!(kind, "arcsight" | "qradar") {
                let (address, received) = syslog_receiver().await;
                let watch = delivered.clone();
                tokio::spawn(async move {
                    loop {
                        let have = received.lock().unwrap().len() as u64;
                        let seen = watch.events.load(std::sync::atomic::Ordering::Acquire);
                        if have > seen {
                            watch.add(have - seen);
                        }
                        if have >= watch.target {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                address
            } else {
                counting_receiver(kind, delivered.clone()).await
            };
            let dir = tempfile::tempdir().unwrap();
            let config = format!(
                "data_dir = \"{}\"\n[sources.in]\ntype = \"stdin\"\n{}",
                dir.path().display(),
                sink_table(kind, &endpoint)
            );
            let assembly = build(&config);
            let started = Instant::now();
            let report = run_with_input(assembly, input.as_bytes(), std::future::pending())
                .await
                .unwrap();
            let drain_secs = started.elapsed().as_secs_f64();
            assert_eq!(
                report.metrics.sinks["s"].delivered as usize, events,
                "{kind}: every event delivered"
            );
            let forward_secs = delivered
                .all_at
                .get()
                .map_or(drain_secs, |at| (*at - started).as_secs_f64());
            println!(
                "round {round} {kind:<14} forwarded {:>7.0} events/s ({forward_secs:.2} s), drained {:>7.0} events/s ({drain_secs:.2} s)",
                events as f64 / forward_secs,
                events as f64 / drain_secs,
            );
            forwarded[index].push(events as f64 / forward_secs);
            drained[index].push(events as f64 / drain_secs);
        }
    }
    println!("\nload average at the end: {}\n", load_average());
    println!(
        "| sink | forwarded events/s min / median / max | drained (sinks + alert path caught up) events/s min / median / max |\n|---|---:|---:|"
    );
    for (index, kind) in SINKS.into_iter().enumerate() {
        println!(
            "| {kind} | {} | {} |",
            spread(forwarded[index].clone()),
            spread(drained[index].clone())
        );
    }
    println!();
}

/// Five alert channels answering at once (wiremock for Slack, PagerDuty, Teams and SMS, a
/// local SMTP relay for email), a P0 route to all of them with no grouping delay, and vendor
/// rate limits raised so the figures are vowguard's own latency. `source` is the config's
/// source part (stdin, or `[server]` + http). The mocks live as long as the returned guard.
struct FiveChannels {
    assembly: vowguard_runtime::Assembly,
    dir: tempfile::TempDir,
    _mocks: Vec<MockServer>,
}

async fn five_channels(source: &str) -> FiveChannels {
    let answer =
        |body: &str, status: u16| ResponseTemplate::new(status).set_body_string(body.to_owned());
    let mut mocks = Vec::new();
    for (body, status) in [
        (r#"{"ok":true,"ts":"1.2"}"#, 200),
        (r#"{"status":"success","message":"Event processed"}"#, 202),
        ("", 202),
        (r#"{"sid":"SM1","status":"queued"}"#, 201),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(answer(body, status))
            .mount(&server)
            .await;
        mocks.push(server);
    }
    let (slack, pd, teams, sms) = (
        mocks[0].uri(),
        mocks[1].uri(),
        mocks[2].uri(),
        mocks[3].uri(),
    );
    let (smtp_port, _mail) = smtp_receiver().await;
    let fast = "rate_limit = { per_second = 100000.0, burst = 100000 }";
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r##"data_dir = "{data}"
{source}
[notifiers.slack]
type = "slack"
bot_token = {{ env = "BENCH_TOKEN" }}
channels = ["#security-emergency"]
api_base_url = "{slack}"
{fast}
[notifiers.pagerduty]
type = "pagerduty"
routing_key = {{ env = "BENCH_PD_KEY" }}
endpoint = "{pd}"
{fast}
[notifiers.teams]
type = "teams"
webhook_url = {{ env = "BENCH_TEAMS_URL" }}
{fast}
[notifiers.sms]
type = "sms"
account_sid = "AC00000000000000000000000000000042"
auth_token = {{ env = "BENCH_TOKEN" }}
from = "+15005550006"
to = ["+447700900123"]
api_base_url = "{sms}"
{fast}
[notifiers.email]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "vowguard@example.org"
to = ["security@example.org"]
{fast}
[[routes]]
name = "p0"
match = {{ priority = ["P0"] }}
notify = ["slack", "pagerduty", "teams", "sms", "email"]
group_wait = "0s"
"##,
        data = dir.path().display(),
    );
    let secrets = secrets().with(
        "BENCH_TEAMS_URL",
        format!("{teams}/workflows/x/triggers/manual/paths/invoke?sig=s"),
    );
    let parsed = Config::parse(&config).unwrap();
    let assembly = assemble(
        &parsed,
        &Environment {
            config_dir: dir.path(),
            secrets: &secrets,
        },
    )
    .unwrap();
    FiveChannels {
        assembly,
        dir,
        _mocks: mocks,
    }
}

async fn notify() {
    const ALERTS: usize = 300;
    let channels = five_channels("[sources.in]\ntype = \"stdin\"").await;
    let FiveChannels {
        assembly,
        dir: _dir,
        _mocks,
    } = channels;
    let pipeline = Pipeline::start(assembly.spec).await.unwrap();
    let log = pipeline.notifications();
    let mut latencies = Vec::with_capacity(ALERTS);
    let mut per_channel: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for i in 0..ALERTS {
        let mut event = Event::from_json_str(&event_line(i)).unwrap();
        event.severity = vowguard_core::Severity::Critical;
        let started = Instant::now();
        let submitted_at = chrono::Utc::now();
        pipeline.submit(event).await.unwrap();
        let want = 5 * (i + 1);
        while log.recent().len() < want {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(started.elapsed());
        for record in &log.recent()[want - 5..want] {
            let took = (record.time - submitted_at).to_std().unwrap_or_default();
            per_channel
                .entry(record.notifier.clone())
                .or_default()
                .push(took);
        }
    }
    let failed = log.recent().iter().filter(|r| !r.delivered).count();
    pipeline.shutdown().await;
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).min(latencies.len()) - 1];
    println!(
        "## Event in → P0 alert accepted by all five channels ({ALERTS} alerts, one at a time, {failed} failed)\n"
    );
    println!("| p50 | p90 | p99 | max |\n|---:|---:|---:|---:|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |\n",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    );
    println!(
        "Per channel, event in → that channel accepted:\n\n| channel | p50 | p99 |\n|---|---:|---:|"
    );
    for (channel, mut took) in per_channel {
        took.sort();
        let at = |p: f64| took[((took.len() as f64 * p).ceil() as usize).min(took.len()) - 1];
        println!(
            "| {channel} | {:.2} ms | {:.2} ms |",
            ms(at(0.5)),
            ms(at(0.99))
        );
    }
    println!();
}

/// `POST /v1/events` → every routed channel accepted, under a steady load.
async fn http_latency() {
    const RATE: u64 = 20;
    const SECONDS: u64 = 15;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let channels = five_channels(&format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[sources.api]\ntype = \"http\""
    ))
    .await;
    let FiveChannels {
        assembly,
        dir,
        _mocks,
    } = channels;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vowguard_runtime::run(assembly, async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    while client.get(format!("{base}/health")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut sent: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> =
        Default::default();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / RATE));
    for i in 0..RATE * SECONDS {
        ticker.tick().await;
        let id = format!("lat-{i:05}");
        let event = json!({"id": id, "action": "guest_list.export", "severity": "critical", "user_id": format!("u-{i}")});
        sent.insert(id, chrono::Utc::now());
        let response = client
            .post(format!("{base}/v1/events"))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let log = dir.path().join("notifications.jsonl");
    let want = 5 * sent.len();
    let records: Vec<Value> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if records.len() >= want {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop_tx.send(());
    let _ = server.await;
    let mut done: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> =
        Default::default();
    for r in &records {
        let id = r["event_id"].as_str().unwrap().to_owned();
        let at: chrono::DateTime<chrono::Utc> = r["time"].as_str().unwrap().parse().unwrap();
        let e = done.entry(id).or_insert(at);
        *e = (*e).max(at);
    }
    let mut latencies: Vec<Duration> = sent
        .iter()
        .map(|(id, at)| (done[id] - *at).to_std().unwrap_or_default())
        .collect();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).min(latencies.len()) - 1];
    println!(
        "## POST /v1/events → P0 accepted by all five channels, steady {RATE} events/s for {SECONDS} s ({} events)\n",
        latencies.len()
    );
    println!("| p50 | p90 | p99 | max |\n|---:|---:|---:|---:|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |\n",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    println!(
        "vowguard benchmarks ({} cores, {} build); load average at the start: {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug (unoptimised)"
        } else {
            "release"
        },
        load_average()
    );
    if matches!(which.as_str(), "encoders" | "all") {
        encoders();
    }
    if matches!(which.as_str(), "pipeline" | "all") {
        pipeline().await;
    }
    if matches!(which.as_str(), "notify" | "all") {
        notify().await;
    }
    if matches!(which.as_str(), "http" | "all") {
        http_latency().await;
    }
    if matches!(which.as_str(), "audit" | "all") {
        audit_overhead().await;
    }
    if matches!(which.as_str(), "webhooks" | "all") {
        webhooks().await;
    }
    println!("load average at the end: {}", load_average());
}

/// stdin → pipeline → Splunk HEC (local receiver), with the audit log on (the default:
/// one `events_accepted` record per journal group, one `delivered` record per sink
/// request, a checkpoint every minute and at the end) and off, interleaved.
async fn audit_overhead() {
    let events: usize = std::env::var("VOWGUARD_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(200_000);
    let runs: usize = std::env::var("VOWGUARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3);
    let input: String = (0..events).map(|i| event_line(i) + "\n").collect();
    println!(
        "## Audit log cost: stdin → pipeline → splunk_hec, audit on vs off ({events} events, {runs} runs each, interleaved)\n"
    );
    let mut figures: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut drained: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=runs {
        for (index, audit) in [true, false].into_iter().enumerate() {
            let delivered = Arc::new(Delivered {
                events: 0.into(),
                target: events as u64,
                all_at: std::sync::OnceLock::new(),
            });
            let endpoint = counting_receiver("splunk_hec", delivered.clone()).await;
            let dir = tempfile::tempdir().unwrap();
            let config = format!(
                "data_dir = \"{}\"\n[sources.in]\ntype = \"stdin\"\n[audit]\nenabled = {audit}\n{}",
                dir.path().display(),
                sink_table("splunk_hec", &endpoint)
            );
            let assembly = build(&config);
            let started = Instant::now();
            let report = run_with_input(assembly, input.as_bytes(), std::future::pending())
                .await
                .unwrap();
            let drain_secs = started.elapsed().as_secs_f64();
            assert_eq!(report.metrics.sinks["s"].delivered as usize, events);
            let forward_secs = delivered
                .all_at
                .get()
                .map_or(drain_secs, |at| (*at - started).as_secs_f64());
            let audit_bytes =
                std::fs::metadata(dir.path().join("audit/entries.log")).map_or(0, |m| m.len());
            println!(
                "round {round} audit {:<3} forwarded {:>7.0} events/s, drained {:>7.0} events/s, audit log {:.1} MB",
                if audit { "on" } else { "off" },
                events as f64 / forward_secs,
                events as f64 / drain_secs,
                audit_bytes as f64 / 1e6
            );
            figures[index].push(events as f64 / forward_secs);
            drained[index].push(events as f64 / drain_secs);
        }
    }
    println!(
        "\n| audit | forwarded events/s min / median / max | drained events/s min / median / max |\n|---|---:|---:|"
    );
    for (index, name) in ["on", "off"].into_iter().enumerate() {
        println!(
            "| {name} | {} | {} |",
            spread(figures[index].clone()),
            spread(drained[index].clone())
        );
    }
    println!();
}

/// One webhook source of the `webhooks` benchmark: its id, its `[webhooks.<id>]` table,
/// and a vendor payload for request `i`.
struct HookCase {
    id: &'static str,
    table: &'static str,
    body: fn(usize, u64) -> String,
}

const HOOK_SECRETS: [(&str, &str); 4] = [
    ("BENCH_WH_STD", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
    (
        "BENCH_WH_ED",
        "whsk_CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    ),
    ("BENCH_WH_KEY", "bench-webhook-key"),
    ("BENCH_WH_TOKEN", "bench-servicenow-token"),
];

fn hook_cases() -> Vec<HookCase> {
    vec![
        HookCase {
            id: "standard_v1",
            table: "type = \"standard_webhooks\"\nsecret = { env = \"BENCH_WH_STD\" }",
            body: |i, r| {
                format!(
                    r#"{{"type":"venue.door_forced","timestamp":"2026-06-20T11:30:00Z","data":{{"wedding_id":"w-{}","severity":"high","message":"Back door forced, sensor {r}","n":{i}}}}}"#,
                    r % 40
                )
            },
        },
        HookCase {
            id: "standard_v1a",
            table: "type = \"standard_webhooks\"\nsecret = { env = \"BENCH_WH_ED\" }",
            body: |i, r| {
                format!(
                    r#"{{"type":"venue.door_forced","timestamp":"2026-06-20T11:30:00Z","data":{{"wedding_id":"w-{}","severity":"high","message":"Back door forced, sensor {r}","n":{i}}}}}"#,
                    r % 40
                )
            },
        },
        HookCase {
            id: "github",
            table: "type = \"github\"\nsecret = { env = \"BENCH_WH_KEY\" }",
            body: |i, r| {
                format!(
                    r#"{{"action":"created","alert":{{"number":{i},"secret_type":"stripe_api_key","html_url":"https://github.com/o/r/security/secret-scanning/{i}"}},"repository":{{"full_name":"vowguard/site-{}"}},"sender":{{"login":"dev{r}","id":{r}}}}}"#,
                    r % 9
                )
            },
        },
        HookCase {
            id: "stripe",
            table: "type = \"stripe\"\nsecret = { env = \"BENCH_WH_KEY\" }",
            body: |i, r| {
                format!(
                    r#"{{"id":"evt_bench_{i}","type":"radar.early_fraud_warning.created","data":{{"object":{{"id":"issfr_{r}","object":"radar.early_fraud_warning","fraud_type":"made_with_stolen_card","metadata":{{"wedding_id":"w-{}"}}}}}}}}"#,
                    r % 40
                )
            },
        },
        HookCase {
            id: "slack",
            table: "type = \"slack\"\nsecret = { env = \"BENCH_WH_KEY\" }",
            body: |i, r| {
                format!(
                    r#"{{"type":"event_callback","event_id":"Ev{i}","event":{{"type":"member_joined_channel","user":"U{r}"}}}}"#
                )
            },
        },
        HookCase {
            id: "pagerduty",
            table: "type = \"pagerduty\"\nsecret = { env = \"BENCH_WH_KEY\" }",
            body: |i, r| {
                format!(
                    r#"{{"event":{{"id":"01BENCH{i}","event_type":"incident.triggered","resource_type":"incident","agent":{{"id":"PU{r}","summary":"Ana Ops"}},"data":{{"id":"Q{i}","type":"incident","title":"door sensor {r}","urgency":"high"}}}}}}"#
                )
            },
        },
        HookCase {
            id: "twilio",
            table: "type = \"twilio\"\nsecret = { env = \"BENCH_WH_KEY\" }\nurl = \"https://hooks.example.com/v1/webhooks/twilio\"",
            body: |i, r| {
                format!(
                    "MessageSid=SM{i:08}&MessageStatus=undelivered&ErrorCode=30003&To=%2B4477009{r:05}&AccountSid=AC1"
                )
            },
        },
        HookCase {
            id: "generic_hmac",
            table: "type = \"generic_hmac\"\nsecret = { env = \"BENCH_WH_KEY\" }\nheader = \"X-Venue-Signature\"\nprefix = \"sha256=\"\nsigned = \"{timestamp}.{body}\"\ntimestamp_header = \"X-Venue-Timestamp\"\nid_header = \"X-Venue-Delivery\"\n[webhooks.generic_hmac.mapping]\naction = \"/kind\"\nseverity = \"/level\"\nwedding_id = \"/wedding\"\nmessage = \"/text\"",
            body: |i, r| {
                format!(
                    r#"{{"kind":"venue.badge_denied","level":"medium","wedding":"w-{}","text":"badge {r} denied at gate {i}"}}"#,
                    r % 40
                )
            },
        },
        HookCase {
            id: "jira",
            table: "type = \"jira\"\nsecret = { env = \"BENCH_WH_KEY\" }",
            body: |i, r| {
                format!(
                    r#"{{"webhookEvent":"jira:issue_updated","user":{{"accountId":"acc{r}","displayName":"Ana Ops"}},"issue":{{"key":"SEC-{r}","fields":{{"status":{{"name":"In Progress","statusCategory":{{"key":"indeterminate"}}}}}}}},"changelog":{{"id":"{i}","items":[{{"field":"status","fieldId":"status","fromString":"To Do","toString":"In Progress"}}]}}}}"#
                )
            },
        },
        HookCase {
            id: "servicenow",
            table: "type = \"servicenow\"\nsecret = { env = \"BENCH_WH_TOKEN\" }\nauth = \"bearer\"",
            body: |i, r| {
                format!(
                    r#"{{"sys_id":"{r:032x}","number":"INC{i:07}","state":"2","sys_updated_by":"ana.ops","sys_mod_count":"{i}"}}"#
                )
            },
        },
    ]
}

/// A signed webhook request ready to send.
struct SignedHook {
    headers: Vec<(String, String)>,
    query: Option<String>,
    body: String,
    /// The first event the payload maps to, sent as is on `/v1/events` for the reference.
    event: String,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// `POST /v1/webhooks/{id}` for every scheme against the same events on `/v1/events`.
async fn webhooks() {
    use futures::StreamExt as _;
    let per_scheme: usize = std::env::var("VOWGUARD_BENCH_WEBHOOKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2000);
    let seed: u64 = std::env::var("VOWGUARD_BENCH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14);
    let cases = hook_cases();
    let delivered = Arc::new(Delivered {
        events: 0.into(),
        target: u64::MAX,
        all_at: std::sync::OnceLock::new(),
    });
    let endpoint = counting_receiver("splunk_hec", delivered).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = format!(
        "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = 1048576\n[sources.api]\ntype = \"http\"\n{}\n\
         [tickets.jira]\ntype = \"jira\"\nurl = \"http://127.0.0.1:9\"\nemail = \"bot@example.org\"\napi_token = {{ env = \"BENCH_TOKEN\" }}\nproject = \"SEC\"\n\
         [tickets.snow]\ntype = \"servicenow\"\nurl = \"http://127.0.0.1:9\"\nauth = {{ type = \"bearer\", token = {{ env = \"BENCH_TOKEN\" }} }}\n",
        dir.path().display(),
        sink_table("splunk_hec", &endpoint)
    );
    for case in &cases {
        config.push_str(&format!("[webhooks.{}]\n{}\n", case.id, case.table));
    }
    let parsed = Config::parse(&config).expect("bench config parses");
    let mut secrets = secrets();
    for (name, value) in HOOK_SECRETS {
        secrets = secrets.with(name, value);
    }
    let assembly = assemble(
        &parsed,
        &Environment {
            config_dir: dir.path(),
            secrets: &secrets,
        },
    )
    .expect("bench config assembles");
    let sources: std::collections::HashMap<String, vowguard_webhooks::Source> = assembly
        .webhooks
        .iter()
        .map(|s| (s.id.clone(), s.clone()))
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vowguard_runtime::run(assembly, async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    while client.get(format!("{base}/health")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "## Inbound webhooks: `POST /v1/webhooks/{{id}}` vs the same event on `POST /v1/events` ({per_scheme} requests per scheme and endpoint, seed {seed})\n"
    );
    println!(
        "| scheme | verify+map in-process p50 / p99 | webhooks/s sequential | webhooks/s 8 in flight | /v1/events/s 8 in flight | p50 webhook / events | p99 webhook / events | p99 added |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    for case in &cases {
        // Per scheme: each scheme's requests are sent well within the 5-minute tolerance.
        let now = chrono::Utc::now().timestamp();
        let source = &sources[case.id];
        // Signed before timing: signing is the sender's work. Three batches: sequential
        // latency, concurrent webhooks, concurrent /v1/events.
        let make = |rng: &mut fastrand::Rng, i: usize| -> SignedHook {
            let body = (case.body)(i, rng.u64(..1_000_000));
            let query = None;
            let headers = vowguard_webhooks::verify::sign(
                &source.scheme,
                &source.keys[0],
                &format!("msg_bench_{}_{i}", case.id),
                now,
                query.as_deref(),
                body.as_bytes(),
            )
            .expect("the bench key signs");
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let delivery = source
                .accept(
                    &vowguard_webhooks::Request {
                        headers: &pairs,
                        query: query.as_deref(),
                        body: body.as_bytes(),
                    },
                    now,
                )
                .expect("the bench request verifies and maps");
            let mut event = delivery.mapped.events[0].clone();
            event.id = format!("ref-{}-{i}", case.id);
            SignedHook {
                event: serde_json::to_string(&event).unwrap(),
                headers,
                query,
                body,
            }
        };
        let requests: Vec<SignedHook> = (0..3 * per_scheme).map(|i| make(&mut rng, i)).collect();
        // Verification and mapping alone, in process.
        let mut accept_times = Vec::with_capacity(per_scheme);
        for hook in &requests[..per_scheme] {
            let pairs: Vec<(&str, &str)> = hook
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let request = vowguard_webhooks::Request {
                headers: &pairs,
                query: hook.query.as_deref(),
                body: hook.body.as_bytes(),
            };
            let t = Instant::now();
            let delivery = source.accept(&request, now).unwrap();
            accept_times.push(t.elapsed());
            std::hint::black_box(delivery);
        }
        accept_times.sort();
        let send_hook = |hook: &SignedHook| {
            let mut request = client
                .post(format!("{base}/v1/webhooks/{}", case.id))
                .body(hook.body.clone());
            for (name, value) in &hook.headers {
                request = request.header(name.as_str(), value.as_str());
            }
            async move {
                let t = Instant::now();
                let response = request.send().await.unwrap();
                assert_eq!(
                    response.status(),
                    200,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
                t.elapsed()
            }
        };
        let send_event = |hook: &SignedHook| {
            let request = client
                .post(format!("{base}/v1/events"))
                .header("content-type", "application/json")
                .body(hook.event.clone());
            async move {
                let t = Instant::now();
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 202);
                t.elapsed()
            }
        };
        // Sequential, interleaved (one webhook, then its event on /v1/events), so load
        // from the rest of the machine hits both alike.
        let mut hook_lat = Vec::with_capacity(per_scheme);
        let mut event_lat = Vec::with_capacity(per_scheme);
        let mut hook_time = Duration::ZERO;
        for hook in &requests[..per_scheme] {
            let d = send_hook(hook).await;
            hook_time += d;
            hook_lat.push(d);
            event_lat.push(send_event(hook).await);
        }
        hook_lat.sort();
        event_lat.sort();
        let sequential_rate = per_scheme as f64 / hook_time.as_secs_f64();
        let t = Instant::now();
        futures::stream::iter(&requests[per_scheme..2 * per_scheme])
            .map(send_hook)
            .buffer_unordered(8)
            .for_each(|_| async {})
            .await;
        let hook_rate = per_scheme as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        futures::stream::iter(&requests[2 * per_scheme..])
            .map(send_event)
            .buffer_unordered(8)
            .for_each(|_| async {})
            .await;
        let event_rate = per_scheme as f64 / t.elapsed().as_secs_f64();
        let (h99, e99) = (pct(&hook_lat, 0.99), pct(&event_lat, 0.99));
        println!(
            "| {} | {:.1} / {:.1} µs | {sequential_rate:.0} | {hook_rate:.0} | {event_rate:.0} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:+.2} ms |",
            case.id,
            pct(&accept_times, 0.5).as_secs_f64() * 1e6,
            pct(&accept_times, 0.99).as_secs_f64() * 1e6,
            ms(pct(&hook_lat, 0.5)),
            ms(pct(&event_lat, 0.5)),
            ms(h99),
            ms(e99),
            ms(h99) - ms(e99),
        );
    }
    println!();
    let _ = stop_tx.send(());
    let _ = server.await;
}

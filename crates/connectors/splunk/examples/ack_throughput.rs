//! Throughput of the `splunk_hec` sink with indexer acknowledgement against a slow receiver.
//!
//! Starts a local HEC receiver (loopback only) that answers every request after
//! `--latency-ms` (default 50): `/services/collector/event` with the next `ackId`,
//! `/services/collector/ack` confirming every id it has accepted. Then keeps
//! `--concurrency` batches of 500 pre-encoded events in flight through one sink (what the
//! pipeline does with `request.concurrency`; default [`ACK_CONCURRENCY`], the pipeline's
//! default with acknowledgement on) until `--batches` batches are confirmed, and prints
//! events/s, ack polls and polls per batch, for `--runs` runs (min / median / max).
//! `--interval-ms` is a fixed poll interval, or `adaptive` (the default: the sink's own).
//!
//! ```sh
//! cargo run --release -p vowguard-splunk --example ack_throughput -- \
//!     --concurrency 16 --interval-ms 100 --latency-ms 50 --batches 1000 --runs 5
//! ```
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::post;
use secrecy::SecretString;
use vowguard_core::{Category, EncodedEvent, Event, EventOutcome, Severity, Sink};
use vowguard_splunk::{ACK_CONCURRENCY, AckConfig, SplunkHecSink};

const BATCH: usize = 500;

struct Options {
    concurrency: usize,
    /// `None`: adaptive.
    interval_ms: Option<u64>,
    latency_ms: u64,
    batches: usize,
    runs: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        concurrency: ACK_CONCURRENCY,
        interval_ms: None,
        latency_ms: 50,
        batches: 1_000,
        runs: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("`{}` needs a value", args[i]))?;
        let number = |name: &str| {
            value
                .parse::<u64>()
                .map_err(|e| format!("`{name}`: {value:?} is not a number: {e}"))
        };
        match args[i].as_str() {
            "--concurrency" => o.concurrency = number("--concurrency")?.max(1) as usize,
            "--interval-ms" if value == "adaptive" => o.interval_ms = None,
            "--interval-ms" => o.interval_ms = Some(number("--interval-ms")?.max(1)),
            "--latency-ms" => o.latency_ms = number("--latency-ms")?,
            "--batches" => o.batches = number("--batches")?.max(1) as usize,
            "--runs" => o.runs = number("--runs")?.max(1) as usize,
            other => return Err(format!("unknown option `{other}`")),
        }
        i += 2;
    }
    Ok(o)
}

/// The slow receiver's state.
struct Receiver {
    latency: Duration,
    next_ack: AtomicU64,
    accepted: Mutex<HashSet<u64>>,
    events: AtomicU64,
    polls: AtomicU64,
}

async fn event(State(r): State<Arc<Receiver>>, body: Bytes) -> impl IntoResponse {
    tokio::time::sleep(r.latency).await;
    let events = body.windows(8).filter(|w| w == b"{\"time\":").count() as u64;
    r.events.fetch_add(events, Ordering::AcqRel);
    let id = r.next_ack.fetch_add(1, Ordering::AcqRel);
    r.accepted
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id);
    (
        [(CONTENT_TYPE, "application/json")],
        format!(r#"{{"text":"Success","code":0,"ackId":{id}}}"#),
    )
}

async fn ack(State(r): State<Arc<Receiver>>, body: Bytes) -> impl IntoResponse {
    tokio::time::sleep(r.latency).await;
    r.polls.fetch_add(1, Ordering::AcqRel);
    let asked: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let accepted = r
        .accepted
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let acks: serde_json::Map<String, serde_json::Value> = asked["acks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_u64)
        .map(|id| (id.to_string(), accepted.contains(&id).into()))
        .collect();
    (
        [(CONTENT_TYPE, "application/json")],
        serde_json::json!({ "acks": acks }).to_string(),
    )
}

async fn start_receiver(latency: Duration) -> std::io::Result<(SocketAddr, Arc<Receiver>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let receiver = Arc::new(Receiver {
        latency,
        next_ack: AtomicU64::new(0),
        accepted: Mutex::new(HashSet::new()),
        events: AtomicU64::new(0),
        polls: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/services/collector/event", post(event))
        .route("/services/collector/ack", post(ack))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, receiver))
}

struct RunFigures {
    events_per_second: f64,
    sink_polls: u64,
    receiver_polls: u64,
}

async fn run(o: &Options) -> Result<RunFigures, String> {
    let (address, receiver) = start_receiver(Duration::from_millis(o.latency_ms))
        .await
        .map_err(|e| format!("cannot start the receiver: {e}"))?;
    let sink = Arc::new(
        SplunkHecSink::builder(format!("http://{address}"))
            .token(SecretString::from("bench-token"))
            .acknowledgements(o.interval_ms.map_or_else(AckConfig::enabled, |ms| {
                AckConfig::enabled_with(Duration::from_millis(ms), Duration::from_secs(30))
            }))
            .build()
            .map_err(|e| e.to_string())?,
    );
    let events: Vec<EncodedEvent> = (0..BATCH)
        .map(|i| {
            let mut e = Event::new(Category::Authentication, "login", Severity::High);
            e.id = format!("evt-{i}");
            e.user_id = Some(format!("u-{i}"));
            e.message = Some("failed login for a planner account".into());
            sink.encode(&e).map(|bytes| EncodedEvent {
                event_id: e.id.clone(),
                bytes,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let events = Arc::new(events);
    let next_batch = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..o.concurrency {
        let (sink, events, next_batch) = (
            Arc::clone(&sink),
            Arc::clone(&events),
            Arc::clone(&next_batch),
        );
        let total = o.batches;
        workers.spawn(async move {
            let refs: Vec<&EncodedEvent> = events.iter().collect();
            let mut delivered = 0_u64;
            while next_batch.fetch_add(1, Ordering::AcqRel) < total {
                let outcomes = sink.send(&refs).await;
                if let Some(EventOutcome::Retry(e) | EventOutcome::Rejected(e)) = outcomes
                    .iter()
                    .find(|o| !matches!(o, EventOutcome::Delivered))
                {
                    return Err(e.to_string());
                }
                delivered += outcomes.len() as u64;
            }
            Ok(delivered)
        });
    }
    let mut delivered = 0;
    while let Some(done) = workers.join_next().await {
        delivered += done.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed();
    let received = receiver.events.load(Ordering::Acquire);
    if received != delivered || delivered != (o.batches * BATCH) as u64 {
        return Err(format!(
            "delivered {delivered} events, the receiver counted {received}, expected {}",
            o.batches * BATCH
        ));
    }
    Ok(RunFigures {
        events_per_second: delivered as f64 / elapsed.as_secs_f64(),
        sink_polls: sink.ack_polls(),
        receiver_polls: receiver.polls.load(Ordering::Acquire),
    })
}

fn min_median_max(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let o = options()?;
    println!(
        "ack_throughput: {} batches of {BATCH} events, concurrency {}, poll interval {}, \
         receiver latency {} ms (event and ack requests), {} runs",
        o.batches,
        o.concurrency,
        o.interval_ms
            .map_or_else(|| "adaptive".to_owned(), |ms| format!("{ms} ms")),
        o.latency_ms,
        o.runs
    );
    let mut rates = Vec::new();
    let mut per_batch = Vec::new();
    for i in 0..o.runs {
        let figures = run(&o).await?;
        let polls_per_batch = figures.receiver_polls as f64 / o.batches as f64;
        println!(
            "run {}: {:.0} events/s, {} ack polls (sink counted {}), {:.3} polls per batch",
            i + 1,
            figures.events_per_second,
            figures.receiver_polls,
            figures.sink_polls,
            polls_per_batch
        );
        rates.push(figures.events_per_second);
        per_batch.push(polls_per_batch);
    }
    let (min, median, max) = min_median_max(rates);
    let (pmin, pmedian, pmax) = min_median_max(per_batch);
    println!("events/s min / median / max: {min:.0} / {median:.0} / {max:.0}");
    println!("ack polls per batch min / median / max: {pmin:.3} / {pmedian:.3} / {pmax:.3}");
    Ok(())
}

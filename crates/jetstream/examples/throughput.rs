//! Events/s through the JetStream backend with 1, 2 and 3 replicas against a sink that takes
//! 20 ms per request, and the local journal in the same run.
//!
//! ```text
//! cargo run -p vowguard-jetstream --example throughput -- [events] [latency_ms] [batch]
//! ```
//!
//! Starts a private `nats-server -js` (file storage) in a temp dir. Each "replica" is a
//! separate NATS connection with its own sink worker in this process, as a separate
//! `vowguard` process would have. JetStream: intake rate = a backlog of `events` published
//! through the `EventQueue` trait (64 PubAcks awaited at once); delivery rate = the workers
//! started on that backlog until the sink has every event. Each replica holds one batch in
//! flight against the slow sink, so replicas add throughput even on 2 cores. Local journal:
//! intake rate = events made durable through the same trait; delivery rate = end to end
//! (from the first event submitted until the sink has every event), with
//! `request.concurrency = 1` (one batch in flight, like one replica) and the default.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use vowguard_core::{EncodedEvent, Error, Event, EventOutcome, SecretMap, Sink};
use vowguard_jetstream::{JetStream, JetStreamConfig, JetStreamDelivery};
use vowguard_pipeline::{
    Concurrency, DeadLetterStore, EventQueue, Pipeline, PipelineSpec, RequestOptions, SinkSpec,
};
use vowguard_testkit::{fixtures, nats::NatsServer};

#[derive(Debug)]
struct SlowSink {
    latency: Duration,
    delivered: AtomicU64,
}

#[async_trait]
impl Sink for SlowSink {
    fn kind(&self) -> &'static str {
        "slow"
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        tokio::time::sleep(self.latency).await;
        self.delivered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn spec(sink: &Arc<SlowSink>, batch: usize, concurrency: Concurrency) -> SinkSpec {
    let mut spec = SinkSpec::new("siem", sink.clone());
    spec.batch.max_events = batch;
    spec.batch.max_wait = std::time::Duration::from_millis(50);
    spec.request = RequestOptions::default().with_concurrency(concurrency);
    spec
}

fn events(run: &str, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = fixtures::event(i);
            e.id = format!("{run}-{i}");
            e
        })
        .collect()
}

async fn wait_for(sink: &SlowSink, n: u64) {
    while sink.delivered.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn jetstream_run(
    server: &NatsServer,
    replicas: usize,
    n: usize,
    latency: Duration,
    batch: usize,
) -> (f64, f64) {
    let text = format!(
        "servers = [\"{}\"]\n[stream]\nname = \"BENCH{replicas}\"\nsubject = \"bench.r{replicas}\"\nmax_bytes = 1000000000\n[consumers]\nbatch = {batch}\n",
        server.url()
    );
    let config: JetStreamConfig = toml::from_str(&text).expect("config");
    let mut connections = Vec::new();
    for _ in 0..replicas {
        connections.push(
            JetStream::connect(config.clone(), "queue", &SecretMap::new(), Path::new("."))
                .await
                .expect("connect"),
        );
    }
    // The backlog: intake on the first replica, 64 PubAcks awaited at once.
    let started = Instant::now();
    let queue = &connections[0];
    futures::stream::iter(events(&format!("r{replicas}"), n))
        .map(|e| async move { queue.enqueue(e).await.expect("enqueue") })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let publish_rate = n as f64 / started.elapsed().as_secs_f64();

    let sink = Arc::new(SlowSink {
        latency,
        delivered: AtomicU64::new(0),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut workers = Vec::new();
    for js in &connections {
        let dead = Arc::new(DeadLetterStore::open(dir.path()).expect("dlq"));
        workers.push(
            JetStreamDelivery::start(js, vec![spec(&sink, batch, Concurrency::Fixed(1))], dead)
                .await
                .expect("start"),
        );
    }
    wait_for(&sink, n as u64).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    for w in workers {
        w.shutdown().await;
    }
    (publish_rate, rate)
}

async fn local_run(
    n: usize,
    latency: Duration,
    batch: usize,
    concurrency: Concurrency,
) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(SlowSink {
        latency,
        delivered: AtomicU64::new(0),
    });
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![spec(&sink, batch, concurrency)],
        ..Default::default()
    })
    .await
    .expect("start");
    let started = Instant::now();
    let queue: &dyn EventQueue = &pipeline;
    futures::stream::iter(events("local", n))
        .map(|e| async move { queue.enqueue(e).await.expect("enqueue") })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let intake_rate = n as f64 / started.elapsed().as_secs_f64();
    wait_for(&sink, n as u64).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    pipeline.shutdown().await;
    (intake_rate, rate)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let n = arg(0, 3000) as usize;
    let latency = Duration::from_millis(arg(1, 20));
    let batch = arg(2, 50) as usize;
    let server = NatsServer::start(&[]);
    eprintln!("{n} events, sink latency {latency:?} per request, batch {batch}");
    eprintln!("| backend | replicas / in flight | intake events/s | delivery events/s |");
    eprintln!("|---|---|---|---|");
    for replicas in 1..=3 {
        let (publish, deliver) = jetstream_run(&server, replicas, n, latency, batch).await;
        eprintln!(
            "| jetstream | {replicas} replica(s), 1 batch each | {publish:.0} | {deliver:.0} |"
        );
    }
    let (intake, deliver) = local_run(n, latency, batch, Concurrency::Fixed(1)).await;
    eprintln!(
        "| local journal | 1 process, request.concurrency = 1 | {intake:.0} | {deliver:.0} |"
    );
    let (intake, deliver) = local_run(n, latency, batch, Concurrency::default()).await;
    eprintln!(
        "| local journal | 1 process, default request.concurrency | {intake:.0} | {deliver:.0} |"
    );
}

//! Enrichment on the stream against a real `nats-server -js`: intake publishes raw events,
//! the shared `_enrich` consumer enriches each once and publishes the enriched copy, sinks
//! read only enriched copies, a replica dying between that publish and its ack costs a
//! duplicate publish the server drops, an enricher that never answers does not hold
//! intake up, and an event whose enriched copy the stream refuses for good is
//! dead-lettered under `_enrich` and goes through enrichment again when republished.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use support::NatsServer;
use vowguard_core::{
    EncodedEvent, Enricher, Enrichment, Error, Event, EventOutcome, Geo, RetryPolicy, SecretMap,
    Sink,
};
use vowguard_jetstream::{
    BatchHandler, ENRICH_CONSUMER, EnrichHandler, JetStream, JetStreamConfig, JetStreamDelivery,
};
use vowguard_pipeline::{
    DeadLetterStorage, DeadLetterStore, EnricherSpec, Enrichers, EventQueue, PipelineOptions,
    SinkSpec,
};
use vowguard_testkit::fixtures;

/// Adds `geo.org = "enriched-by-test"`, counting calls per event id; while `held` is set it
/// does not answer (a black-holed provider) until released; while `bloated` is set the
/// org it adds is 8 KiB long.
#[derive(Debug, Default)]
struct TestEnricher {
    calls: Mutex<BTreeMap<String, u32>>,
    total: AtomicU32,
    held: AtomicBool,
    bloated: AtomicBool,
    release: tokio::sync::Notify,
}

#[async_trait]
impl Enricher for TestEnricher {
    fn kind(&self) -> &'static str {
        "test"
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error> {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .calls
            .lock()
            .expect("lock")
            .entry(event.id.clone())
            .or_default() += 1;
        while self.held.load(Ordering::SeqCst) {
            let released = self.release.notified();
            if !self.held.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
        let org = if self.bloated.load(Ordering::SeqCst) {
            "x".repeat(8192)
        } else {
            "enriched-by-test".into()
        };
        Ok(Enrichment {
            geo: Some(Geo {
                org: Some(org),
                ..Geo::default()
            }),
            ..Enrichment::default()
        })
    }
}

/// Records every event it is sent: id -> (times, whether it carried the enrichment).
#[derive(Debug, Default)]
struct RecordingSink {
    seen: Mutex<BTreeMap<String, (u32, bool)>>,
}

#[async_trait]
impl Sink for RecordingSink {
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        let org = event
            .enrichment
            .geo
            .as_ref()
            .and_then(|g| g.org.clone())
            .unwrap_or_default();
        Ok(org.into_bytes())
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let mut seen = self.seen.lock().expect("lock");
        batch
            .iter()
            .map(|e| {
                let entry = seen.entry(e.event_id.clone()).or_default();
                entry.0 += 1;
                entry.1 = e.bytes == b"enriched-by-test";
                EventOutcome::Delivered
            })
            .collect()
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn config(server: &NatsServer, ack_wait_secs: u64) -> JetStreamConfig {
    let mut config = support::config_with(
        server,
        &format!("[stream]\nmax_bytes = 10000000\n[consumers]\nack_wait = \"{ack_wait_secs}s\"\n"),
    );
    config.stream.raw_intake = true;
    config
}

async fn connect(config: JetStreamConfig) -> Result<JetStream, Error> {
    JetStream::connect(config, "queue", &SecretMap::new(), Path::new(".")).await
}

fn enrichers(enricher: &Arc<TestEnricher>) -> Enrichers {
    let options = PipelineOptions::default()
        .with_enrichment_concurrency(8)
        .with_enrichment_budget(Duration::from_secs(600));
    Enrichers::new(
        vec![EnricherSpec {
            id: "intel".into(),
            enricher: enricher.clone(),
        }],
        &options,
    )
    .expect("enrichers")
}

fn sink_spec(sink: &Arc<RecordingSink>) -> SinkSpec {
    let mut spec = SinkSpec::new("siem", sink.clone());
    spec.batch.max_events = 10;
    spec.batch.max_wait = std::time::Duration::from_millis(100);
    spec.retry = RetryPolicy::default()
        .with_initial_backoff(std::time::Duration::from_millis(10))
        .with_max_backoff(std::time::Duration::from_millis(50));
    spec
}

/// A replica: the sink's worker and the enrichment worker on one connection.
async fn replica(
    js: &JetStream,
    sink: &Arc<RecordingSink>,
    enricher: &Arc<TestEnricher>,
    dead: &Path,
) -> JetStreamDelivery {
    let dead: Arc<dyn DeadLetterStorage> = Arc::new(DeadLetterStore::open(dead).expect("dlq"));
    let mut delivery = JetStreamDelivery::start(js, vec![sink_spec(sink)], dead.clone())
        .await
        .expect("start");
    delivery
        .add_enrichment(js, enrichers(enricher), dead)
        .await
        .expect("enrichment");
    delivery
}

/// Polls `done` every 50 ms until it holds or `within` passes (then fails, saying `what`).
async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pending and ack-pending of consumer `name`, from the server.
async fn backlog(js: &JetStream, name: &str) -> (u64, usize) {
    let status = js.status().await.expect("status");
    status
        .consumers
        .iter()
        .find(|c| c.name == name)
        .map(|c| (c.pending, c.ack_pending))
        .expect("consumer exists")
}

#[tokio::test]
async fn two_replicas_enrich_every_event_once_and_sinks_read_only_enriched_copies() {
    let server = NatsServer::start(&[]);
    let data = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let enricher = Arc::new(TestEnricher::default());
    let mut replicas = Vec::new();
    let mut deliveries = Vec::new();
    for i in 0..2 {
        let js = connect(config(&server, 30)).await.expect("connect");
        deliveries.push(replica(&js, &sink, &enricher, &data.path().join(format!("r{i}"))).await);
        replicas.push(js);
    }
    for n in 0..60 {
        let queue: &dyn EventQueue = &replicas[n % 2];
        queue.enqueue(fixtures::event(n)).await.expect("enqueue");
    }
    // A client's retry of an acknowledged event is stored once, so enriched once.
    let queue: &dyn EventQueue = &replicas[1];
    queue.enqueue(fixtures::event(0)).await.expect("retry");

    wait_for(
        "60 events at the sink",
        Duration::from_secs(60),
        async || sink.seen.lock().expect("lock").len() == 60,
    )
    .await;
    wait_for(
        "every consumer drained",
        Duration::from_secs(60),
        async || {
            backlog(&replicas[0], ENRICH_CONSUMER).await == (0, 0)
                && backlog(&replicas[0], "siem").await == (0, 0)
        },
    )
    .await;
    let enriched: u64 = deliveries
        .iter()
        .map(|d| {
            d.counters(ENRICH_CONSUMER)
                .expect("enrichment counters")
                .delivered
                .load(Ordering::Relaxed)
        })
        .sum();
    for d in deliveries {
        d.shutdown().await;
    }
    let seen = sink.seen.lock().expect("lock").clone();
    assert!(
        seen.values()
            .all(|(times, enriched)| *times == 1 && *enriched),
        "each event once, enriched: {seen:?}"
    );
    let calls = enricher.calls.lock().expect("lock").clone();
    assert_eq!(calls.len(), 60);
    assert!(calls.values().all(|n| *n == 1), "enriched twice: {calls:?}");
    assert_eq!(enriched, 60);
    // The raw events and their enriched copies, nothing else.
    assert_eq!(replicas[0].status().await.expect("status").messages, 120);
}

#[tokio::test]
async fn a_replica_dying_between_the_enriched_publish_and_the_ack_delivers_one_event() {
    let server = NatsServer::start(&[]);
    let data = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let enricher = Arc::new(TestEnricher::default());
    let js = connect(config(&server, 2)).await.expect("connect");
    for n in 0..20 {
        EventQueue::enqueue(&js, fixtures::event(n))
            .await
            .expect("enqueue");
    }
    // The replica that dies: pulls raw events, enriches them and publishes the enriched
    // copies, then is gone before acking (its messages are never settled).
    {
        let doomed = connect(config(&server, 2)).await.expect("connect");
        let consumer = doomed.enrich_consumer().await.expect("consumer");
        let batch = consumer
            .next_batch(Duration::from_secs(5))
            .await
            .expect("pull");
        assert!(!batch.is_empty());
        let dead: Arc<dyn DeadLetterStorage> =
            Arc::new(DeadLetterStore::open(&data.path().join("doomed")).expect("dlq"));
        let handler = EnrichHandler::new(doomed.clone(), enrichers(&enricher), dead);
        let outcomes = handler.deliver(&batch).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(
            enricher.total.load(Ordering::SeqCst) as usize,
            batch.len(),
            "enriched by the doomed replica"
        );
    }
    let first_round = enricher.total.load(Ordering::SeqCst);
    // The survivor takes the redelivered raw events over after AckWait (2 s).
    let survivor = replica(&js, &sink, &enricher, &data.path().join("survivor")).await;
    wait_for(
        "the redelivered events",
        Duration::from_secs(60),
        async || {
            backlog(&js, ENRICH_CONSUMER).await == (0, 0)
                && backlog(&js, "siem").await == (0, 0)
                && sink.seen.lock().expect("lock").len() == 20
        },
    )
    .await;
    survivor.shutdown().await;
    let seen = sink.seen.lock().expect("lock").clone();
    assert!(
        seen.values()
            .all(|(times, enriched)| *times == 1 && *enriched),
        "an event enriched twice reached the sink twice: {seen:?}"
    );
    // The events the doomed replica had were enriched again (redelivered), yet stored once.
    let calls = enricher.calls.lock().expect("lock").clone();
    let twice = calls.values().filter(|n| **n == 2).count() as u32;
    assert_eq!(twice, first_round, "{calls:?}");
    assert_eq!(js.status().await.expect("status").messages, 40);
}

#[tokio::test]
async fn a_black_holed_enricher_does_not_hold_intake() {
    let server = NatsServer::start(&[]);
    let data = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let enricher = Arc::new(TestEnricher::default());
    enricher.held.store(true, Ordering::SeqCst);
    let js = connect(config(&server, 30)).await.expect("connect");
    let delivery = replica(&js, &sink, &enricher, data.path()).await;
    EventQueue::enqueue(&js, fixtures::event(0))
        .await
        .expect("intake acknowledged");
    wait_for(
        "the enricher holding a call",
        Duration::from_secs(30),
        async || enricher.total.load(Ordering::SeqCst) >= 1,
    )
    .await;
    // Intake's PubAck is the raw publish: every event is acknowledged while the enricher
    // holds its calls.
    for n in 1..30 {
        EventQueue::enqueue(&js, fixtures::event(n))
            .await
            .expect("intake acknowledged");
    }
    assert!(
        sink.seen.lock().expect("lock").is_empty(),
        "nothing reaches the sink unenriched"
    );
    // The provider answers again: everything acknowledged is enriched and delivered.
    enricher.held.store(false, Ordering::SeqCst);
    enricher.release.notify_waiters();
    wait_for(
        "30 events at the sink",
        Duration::from_secs(60),
        async || sink.seen.lock().expect("lock").len() == 30,
    )
    .await;
    delivery.shutdown().await;
    let seen = sink.seen.lock().expect("lock").clone();
    assert!(
        seen.values()
            .all(|(times, enriched)| *times == 1 && *enriched)
    );
}

#[tokio::test]
async fn a_stream_without_the_raw_subject_is_refused_naming_subjects() {
    let server = NatsServer::start(&[]);
    let mut plain = config(&server, 30);
    plain.stream.raw_intake = false;
    connect(plain).await.expect("the stream without enrichment");
    let err = connect(config(&server, 30))
        .await
        .expect_err("enrichment needs the raw subject");
    assert!(err.message().contains("`queue.stream`"), "{err}");
    assert!(err.message().contains("subjects"), "{err}");
    assert!(err.message().contains("vowguard.events.raw"), "{err}");
}

/// The stream refuses an event's enriched copy for good (larger than the server's
/// `max_payload`): the `_enrich` consumer dead-letters it under its own name, once, and
/// does not loop on it. Published again under another message id (what `vowguard dlq
/// replay` does) once the cause is gone, it is enriched again and reaches the sink once.
#[tokio::test]
async fn an_enriched_copy_refused_for_good_is_dead_lettered_and_replayable() {
    let conf = tempfile::tempdir().expect("tempdir");
    let conf_file = conf.path().join("nats.conf");
    std::fs::write(&conf_file, "max_payload: 4096\n").expect("write");
    let server = NatsServer::start(&["-c", conf_file.to_str().expect("utf-8")]);
    let data = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let enricher = Arc::new(TestEnricher::default());
    enricher.bloated.store(true, Ordering::SeqCst);
    let js = connect(config(&server, 30)).await.expect("connect");
    let delivery = replica(&js, &sink, &enricher, data.path()).await;
    let event = fixtures::event(7);
    EventQueue::enqueue(&js, event.clone())
        .await
        .expect("the raw event fits");
    let letters_file = data.path().join(vowguard_pipeline::DEAD_LETTERS_FILE);
    wait_for(
        "the _enrich dead letter",
        Duration::from_secs(60),
        async || {
            vowguard_pipeline::read_dead_letters(&letters_file)
                .map(|l| !l.is_empty())
                .unwrap_or(false)
                && backlog(&js, ENRICH_CONSUMER).await == (0, 0)
        },
    )
    .await;
    let letters = vowguard_pipeline::read_dead_letters(&letters_file).expect("letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].sink, ENRICH_CONSUMER);
    assert_eq!(letters[0].event.id, event.id);
    assert_eq!(letters[0].kind, "invalid_input", "{letters:?}");
    assert_eq!(
        enricher.calls.lock().expect("lock")[&event.id],
        1,
        "no loop"
    );
    assert!(sink.seen.lock().expect("lock").is_empty());

    // The cause fixed, the letter's event is published again where intake publishes.
    enricher.bloated.store(false, Ordering::SeqCst);
    let payload = serde_json::to_vec(&letters[0].event).expect("json");
    let first = js
        .republish("replay:7", bytes::Bytes::from(payload.clone()))
        .await
        .expect("republished");
    assert!(!first.duplicate);
    let again = js
        .republish("replay:7", bytes::Bytes::from(payload))
        .await
        .expect("a retried replay");
    assert!(again.duplicate, "a retried replay is stored once");
    wait_for(
        "the replayed event at the sink",
        Duration::from_secs(60),
        async || sink.seen.lock().expect("lock").get(&event.id) == Some(&(1, true)),
    )
    .await;
    delivery.shutdown().await;
    assert_eq!(enricher.calls.lock().expect("lock")[&event.id], 2);
}

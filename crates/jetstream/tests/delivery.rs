//! The pipeline on JetStream against a real `nats-server -js`: intake through the
//! `EventQueue` trait, sinks delivered by several replicas' workers, dead letters.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use support::NatsServer;
use vowguard_core::{EncodedEvent, Error, Event, EventOutcome, RetryPolicy, SecretMap, Sink};
use vowguard_jetstream::{JetStream, JetStreamDelivery};
use vowguard_pipeline::{DeadLetterStore, EventQueue, SinkSpec, read_dead_letters};
use vowguard_testkit::fixtures;

/// Records every event id it accepts (with the count, to see duplicates); refuses ids that
/// contain `reject`.
#[derive(Debug, Default)]
struct RecordingSink {
    seen: Mutex<BTreeMap<String, u32>>,
}

#[async_trait]
impl Sink for RecordingSink {
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let mut seen = self.seen.lock().expect("lock");
        batch
            .iter()
            .map(|e| {
                if e.event_id.contains("reject") {
                    EventOutcome::Rejected(Error::rejected("400: bad event"))
                } else {
                    *seen.entry(e.event_id.clone()).or_default() += 1;
                    EventOutcome::Delivered
                }
            })
            .collect()
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

async fn connect(server: &NatsServer) -> JetStream {
    JetStream::connect(
        support::config(server),
        "queue",
        &SecretMap::new(),
        Path::new("."),
    )
    .await
    .expect("connect")
}

fn spec(sink: &Arc<RecordingSink>) -> SinkSpec {
    let mut spec = SinkSpec::new("siem", sink.clone());
    spec.batch.max_events = 7;
    spec.batch.max_wait = std::time::Duration::from_millis(100);
    spec.retry = RetryPolicy::default()
        .with_initial_backoff(std::time::Duration::from_millis(10))
        .with_max_backoff(std::time::Duration::from_millis(50));
    spec
}

#[tokio::test]
async fn three_replicas_deliver_every_queued_event_once_and_dead_letter_refusals() {
    let server = NatsServer::start(&[]);
    let data = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let mut replicas = Vec::new();
    let mut deliveries = Vec::new();
    for i in 0..3 {
        let js = connect(&server).await;
        let dead =
            Arc::new(DeadLetterStore::open(&data.path().join(format!("r{i}"))).expect("dlq"));
        deliveries.push(
            JetStreamDelivery::start(&js, vec![spec(&sink)], dead)
                .await
                .expect("start"),
        );
        replicas.push(js);
    }
    // Intake on two of the replicas, through the trait the HTTP intake uses.
    let queues: Vec<&dyn EventQueue> = vec![&replicas[0], &replicas[1]];
    assert_eq!(queues[0].backend(), "jetstream");
    let mut want = Vec::new();
    for n in 0..120 {
        let mut event = fixtures::event(n);
        if n % 40 == 7 {
            event.id = format!("reject-{n:02}");
        } else {
            want.push(event.id.clone());
        }
        queues[n % 2].enqueue(event).await.expect("enqueue");
    }
    // A client retry of an acknowledged event is stored once.
    queues[1].enqueue(fixtures::event(0)).await.expect("retry");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: u64 = ["siem"]
            .iter()
            .flat_map(|id| deliveries.iter().filter_map(move |d| d.counters(id)))
            .map(|c| {
                c.delivered.load(std::sync::atomic::Ordering::Relaxed)
                    + c.dead_lettered.load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        if done >= 120 {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of 120 settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let per_replica: Vec<u64> = deliveries
        .iter()
        .map(|d| {
            d.counters("siem")
                .expect("counters")
                .delivered
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .collect();
    for d in deliveries {
        d.shutdown().await;
    }
    let seen = sink.seen.lock().expect("lock").clone();
    let mut got: Vec<_> = seen.keys().cloned().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "an acknowledged event was not delivered");
    assert!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    assert_eq!(per_replica.iter().sum::<u64>(), 117, "{per_replica:?}");
    let mut dead = Vec::new();
    for i in 0..3 {
        dead.extend(
            read_dead_letters(
                &data
                    .path()
                    .join(format!("r{i}"))
                    .join(vowguard_pipeline::DEAD_LETTERS_FILE),
            )
            .expect("read")
            .into_iter()
            .map(|l| (l.event.id, l.sink, l.kind)),
        );
    }
    dead.sort();
    assert_eq!(
        dead,
        [
            ("reject-07", "siem", "rejected"),
            ("reject-47", "siem", "rejected"),
            ("reject-87", "siem", "rejected")
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    let status = replicas[2].status().await.expect("status");
    let siem = status
        .consumers
        .iter()
        .find(|c| c.name == "siem")
        .expect("consumer");
    assert_eq!((siem.pending, siem.ack_pending), (0, 0));
}

/// The local journal implements the same trait: an event is queued once durable.
#[tokio::test]
async fn the_local_pipeline_is_an_event_queue_too() {
    let data = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let pipeline = vowguard_pipeline::Pipeline::start(vowguard_pipeline::PipelineSpec {
        data_dir: data.path().to_owned(),
        sinks: vec![spec(&sink)],
        ..Default::default()
    })
    .await
    .expect("start");
    let queue: &dyn EventQueue = &pipeline;
    assert_eq!(queue.backend(), "local");
    queue.enqueue(fixtures::event(1)).await.expect("enqueue");
    pipeline.shutdown().await;
    assert_eq!(sink.seen.lock().expect("lock").get("evt-0001"), Some(&1));
}

//! The pipeline with its queue in memory ([`QueueStorage::Memory`]): delivery as with the
//! journal, nothing written to the data directory, memory bounded with back-pressure, and
//! at-most-once across a stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use vowguard_core::{
    EncodedEvent, Enricher, Enrichment, Error, Event, EventOutcome, Severity, Sink,
};
use vowguard_pipeline::{
    EnricherSpec, MemoryDeadLetters, MemoryNotificationLog, Pipeline, PipelineOptions,
    PipelineSpec, QueueStorage, SinkSpec, WhenFull,
};

/// Records every event it gets; while `hold` is set, answers nothing (the request hangs
/// until `hold` is cleared).
#[derive(Debug, Default)]
struct HoldingSink {
    hold: AtomicBool,
    released: tokio::sync::Notify,
    got: Mutex<Vec<String>>,
}

impl HoldingSink {
    fn release(&self) {
        self.hold.store(false, Ordering::Release);
        self.released.notify_waiters();
    }
}

#[async_trait]
impl Sink for HoldingSink {
    fn kind(&self) -> &'static str {
        "holding"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        if event.action == "reject-me" {
            return Err(Error::encode("cannot encode this one"));
        }
        Ok(event.id.clone().into_bytes())
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        loop {
            let released = self.released.notified();
            let mut released = std::pin::pin!(released);
            released.as_mut().enable();
            if !self.hold.load(Ordering::Acquire) {
                break;
            }
            released.await;
        }
        self.got
            .lock()
            .unwrap()
            .extend(batch.iter().map(|e| e.event_id.clone()));
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }
}

/// Enriches every event with nothing (the stage and its intake journal still run).
#[derive(Debug)]
struct Tagger;

#[async_trait]
impl Enricher for Tagger {
    fn kind(&self) -> &'static str {
        "tagger"
    }
    async fn enrich(&self, _: &Event) -> Result<Enrichment, Error> {
        Ok(Enrichment::default())
    }
}

fn event(i: usize, action: &str) -> Event {
    let mut e = Event::new(
        vowguard_core::Category::Authentication,
        action,
        Severity::High,
    );
    e.id = format!("e-{i}");
    e.message = Some("x".repeat(500));
    e
}

fn spec(dir: &std::path::Path, sink: Arc<HoldingSink>) -> PipelineSpec {
    let mut sink = SinkSpec::new("siem", sink);
    sink.batch.max_events = 50;
    sink.batch.max_wait = std::time::Duration::from_millis(0);
    PipelineSpec {
        data_dir: dir.to_path_buf(),
        sinks: vec![sink],
        queue: QueueStorage::Memory,
        dead_letters: Some(Arc::new(MemoryDeadLetters::new(1_000))),
        notification_log: Some(Arc::new(MemoryNotificationLog::new(100))),
        ..PipelineSpec::default()
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn events_are_delivered_and_dead_lettered_without_touching_the_data_dir() {
    for enrichers in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let sink = Arc::new(HoldingSink::default());
        let mut spec = spec(&data_dir, sink.clone());
        let dead_letters = Arc::new(MemoryDeadLetters::new(10));
        spec.dead_letters = Some(dead_letters.clone());
        if enrichers {
            spec.enrichers.push(EnricherSpec {
                id: "tag".into(),
                enricher: Arc::new(Tagger),
            });
        }
        let pipeline = Pipeline::start(spec).await.unwrap();
        let mut deliveries = Vec::new();
        for i in 0..200 {
            let action = if i == 7 { "reject-me" } else { "login" };
            let submitted = pipeline.submit(event(i, action)).await.unwrap();
            submitted.durable.await.unwrap();
            deliveries.push(submitted.delivery);
        }
        for d in deliveries {
            tokio::time::timeout(Duration::from_secs(30), d)
                .await
                .expect("delivered")
                .unwrap();
        }
        let metrics = pipeline.shutdown().await;
        assert_eq!(
            metrics.sinks["siem"].delivered, 199,
            "enrichers: {enrichers}"
        );
        assert_eq!(metrics.sinks["siem"].dead_lettered, 1);
        let got = sink.got.lock().unwrap().clone();
        let want: Vec<String> = (0..200)
            .filter(|i| *i != 7)
            .map(|i| format!("e-{i}"))
            .collect();
        assert_eq!(got, want, "in order, once each");
        let letters = dead_letters.take();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].event.id, "e-7");
        assert_eq!(metrics.journal.fsyncs, 0);
        assert!(
            files_in(&data_dir).is_empty(),
            "nothing written to the data dir: {:?}",
            files_in(&data_dir)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_queue_pushes_back_until_the_sink_catches_up() {
    const EVENTS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(HoldingSink::default());
    sink.hold.store(true, Ordering::Release);
    let mut spec = spec(dir.path(), sink.clone());
    spec.options = PipelineOptions::default()
        .with_max_journal_bytes(64 << 10)
        .with_when_full(WhenFull::Block);
    let pipeline = Arc::new(Pipeline::start(spec).await.unwrap());
    // Far more than 64 KiB of events: the submitter has to wait for the sink.
    let submitter = {
        let pipeline = pipeline.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                let s = pipeline.submit(event(i, "login")).await.unwrap();
                s.durable.await.unwrap();
            }
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !pipeline.metrics().journal.appends_blocked {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the memory bound never pushed back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let m = pipeline.metrics();
    assert!(!submitter.is_finished());
    assert!(
        m.journal.bytes <= 64 << 10,
        "memory stays bounded: {:?}",
        m.journal
    );
    assert!(m.journal.records < EVENTS as u64, "{:?}", m.journal);
    sink.release();
    tokio::time::timeout(Duration::from_secs(30), submitter)
        .await
        .expect("every event is taken once the sink catches up")
        .unwrap();
    let pipeline = Arc::try_unwrap(pipeline).expect("the submitter is done");
    let m = pipeline.shutdown().await;
    assert_eq!(m.sinks["siem"].delivered, EVENTS as u64);
    assert_eq!(sink.got.lock().unwrap().len(), EVENTS);
}

#[tokio::test]
async fn a_full_memory_queue_refuses_with_drop_newest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(HoldingSink::default());
    sink.hold.store(true, Ordering::Release);
    let mut spec = spec(dir.path(), sink.clone());
    spec.options = PipelineOptions::default()
        .with_max_journal_bytes(64 << 10)
        .with_when_full(WhenFull::DropNewest);
    let pipeline = Pipeline::start(spec).await.unwrap();
    let mut refused = None;
    for i in 0..10_000 {
        let submitted = pipeline.submit(event(i, "login")).await.unwrap();
        if let Err(e) = submitted.durable.await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the memory bound refuses");
    assert_eq!(
        refused.kind(),
        vowguard_core::ErrorKind::RateLimited,
        "{refused}"
    );
    assert!(pipeline.metrics().events_dropped_full() >= 1);
    sink.release();
    pipeline.shutdown().await;
}

#[tokio::test]
async fn what_is_not_delivered_at_a_stop_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(HoldingSink::default());
    sink.hold.store(true, Ordering::Release);
    let pipeline = Pipeline::start(spec(dir.path(), sink.clone()))
        .await
        .unwrap();
    for i in 0..10 {
        pipeline
            .submit(event(i, "login"))
            .await
            .unwrap()
            .durable
            .await
            .unwrap();
    }
    let m = pipeline
        .shutdown_within(Some(Duration::from_millis(50)))
        .await;
    assert_eq!(m.sinks["siem"].delivered, 0);

    // At-most-once: a new pipeline on the same data dir has nothing to deliver.
    let sink = Arc::new(HoldingSink::default());
    let pipeline = Pipeline::start(spec(dir.path(), sink.clone()))
        .await
        .unwrap();
    let s = pipeline.submit(event(100, "login")).await.unwrap();
    s.durable.await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), s.delivery)
        .await
        .unwrap()
        .unwrap();
    pipeline.shutdown().await;
    assert_eq!(*sink.got.lock().unwrap(), vec!["e-100".to_owned()]);
}

//! Tests that need the crate's internals (dead-letter write failures) or capture the
//! pipeline's own log lines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tracing_subscriber::layer::SubscriberExt;
use vowguard_core::{
    BatchLimits, EncodedEvent, Error, Event, EventOutcome, RetryPolicy, Severity, Sink,
};

use crate::{Pipeline, PipelineSpec, SinkSpec, read_dead_letters};

/// How a [`TestSink`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every event is rejected for good.
    Reject,
    /// Every event is delivered.
    Accept,
    /// The request never finishes.
    Hang,
    /// The request finishes (delivered) after this long.
    Slow(Duration),
}

#[derive(Debug)]
struct TestSink {
    mode: Mode,
    calls: AtomicU32,
    sent: Mutex<Vec<String>>,
    started: Notify,
}

impl TestSink {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            calls: AtomicU32::new(0),
            sent: Mutex::default(),
            started: Notify::new(),
        })
    }
}

#[async_trait]
impl Sink for TestSink {
    fn kind(&self) -> &'static str {
        "test"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        match self.mode {
            Mode::Hang => std::future::pending::<()>().await,
            Mode::Slow(d) => tokio::time::sleep(d).await,
            Mode::Reject | Mode::Accept => {}
        }
        self.sent
            .lock()
            .unwrap()
            .extend(batch.iter().map(|e| e.event_id.clone()));
        batch
            .iter()
            .map(|_| match self.mode {
                Mode::Reject => EventOutcome::Rejected(Error::rejected("HTTP 400: bad event")),
                _ => EventOutcome::Delivered,
            })
            .collect()
    }
}

fn event(id: &str) -> Event {
    let mut e = Event::new(
        vowguard_core::Category::Authentication,
        "login",
        Severity::High,
    );
    e.id = id.to_owned();
    e
}

fn spec(dir: &std::path::Path, sink: Arc<TestSink>, max_events: usize) -> PipelineSpec {
    let mut sink = SinkSpec::new("siem", sink);
    sink.batch = BatchLimits {
        max_events,
        max_bytes: 1_000_000,
        max_wait_ms: 20,
    };
    sink.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff_ms: 5,
        max_backoff_ms: 20,
        ..RetryPolicy::default()
    };
    PipelineSpec {
        data_dir: dir.to_owned(),
        sinks: vec![sink],
        ..PipelineSpec::default()
    }
}

/// Waits (up to 30 s) until `cond` holds.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn committed(pipeline: &Pipeline) -> u64 {
    pipeline
        .shared
        .journal
        .stats()
        .readers
        .iter()
        .find(|r| r.name == "sink.siem")
        .map_or(0, |r| r.committed)
}

#[tokio::test]
async fn a_failed_dead_letter_write_is_retried_and_the_position_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(spec(dir.path(), TestSink::new(Mode::Reject), 10))
        .await
        .unwrap();
    pipeline
        .dead_letters()
        .fail_writes
        .store(3, Ordering::Release);
    let submitted = pipeline.submit(event("e-1")).await.unwrap();
    assert_eq!(submitted.durable.await.unwrap(), 0);
    let summary = tokio::time::timeout(Duration::from_secs(30), submitted.delivery)
        .await
        .expect("the event is dead-lettered once a write succeeds");
    let summary = summary.expect("a summary");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    let letters = pipeline.dead_letters().read_all().unwrap();
    assert_eq!(letters.len(), 1, "the letter is on disk: {letters:?}");
    assert_eq!(letters[0].event.id, "e-1");
    let m = pipeline.metrics();
    assert_eq!(m.dead_letters.write_failures, 3);
    assert_eq!(m.dead_letters.letters, 1);
    assert_eq!(m.sinks["siem"].dead_lettered, 1);
    wait_for("the position passes the event", || {
        committed(&pipeline) == 1
    })
    .await;
    pipeline.shutdown().await;
}

#[tokio::test]
async fn an_event_whose_dead_letter_cannot_be_written_stays_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(spec(dir.path(), TestSink::new(Mode::Reject), 10))
        .await
        .unwrap();
    pipeline
        .dead_letters()
        .fail_writes
        .store(u32::MAX, Ordering::Release);
    let submitted = pipeline.submit(event("e-1")).await.unwrap();
    submitted.durable.await.unwrap();
    wait_for("a failed write", || {
        pipeline.metrics().dead_letters.write_failures >= 2
    })
    .await;
    assert_eq!(
        committed(&pipeline),
        0,
        "the position must not pass the event"
    );
    let m = pipeline
        .shutdown_within(Some(Duration::from_millis(50)))
        .await;
    assert_eq!(m.dead_letters.letters, 0);
    assert!(
        read_dead_letters(&dir.path().join(crate::DEAD_LETTERS_FILE))
            .unwrap()
            .is_empty()
    );

    // The next start (the disk works again) dead-letters it.
    let sink = TestSink::new(Mode::Reject);
    let pipeline = Pipeline::start(spec(dir.path(), sink.clone(), 10))
        .await
        .unwrap();
    wait_for("the letter is written after the restart", || {
        pipeline.metrics().dead_letters.letters == 1
    })
    .await;
    let letters = pipeline.dead_letters().read_all().unwrap();
    assert_eq!(letters[0].event.id, "e-1");
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_rejected_batch_is_one_dead_letter_write() {
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new(Mode::Reject);
    let pipeline = Pipeline::start(spec(dir.path(), sink.clone(), 500))
        .await
        .unwrap();
    // Hold the sink back until all 500 are journaled so they form one batch.
    let mut deliveries = Vec::new();
    let mut durables = Vec::new();
    for i in 0..500 {
        let s = pipeline.submit(event(&format!("e-{i}"))).await.unwrap();
        durables.push(s.durable);
        deliveries.push(s.delivery);
    }
    for d in durables {
        d.await.unwrap();
    }
    for d in deliveries {
        tokio::time::timeout(Duration::from_secs(30), d)
            .await
            .unwrap();
    }
    let m = pipeline.shutdown().await;
    assert_eq!(m.dead_letters.letters, 500);
    let calls = u64::from(sink.calls.load(Ordering::SeqCst));
    assert_eq!(
        m.dead_letters.writes, calls,
        "one dead-letter write (one fsync) per rejected batch, not one per event"
    );
    assert!(calls < 500, "{calls}");
}

/// Records the level and message of every log line on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), text.0));
    }
}

async fn shutdown_cancels_in_flight(mode: Mode) {
    let logs = Captured::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new(mode);
    let pipeline = Pipeline::start(spec(dir.path(), sink.clone(), 10))
        .await
        .unwrap();
    let started = sink.started.notified();
    let submitted = pipeline.submit(event("e-1")).await.unwrap();
    submitted.durable.await.unwrap();
    started.await;
    // The request is in flight; the deadline passes long before it would answer.
    let m = tokio::time::timeout(
        Duration::from_secs(30),
        pipeline.shutdown_within(Some(Duration::from_millis(50))),
    )
    .await
    .expect("shutdown_within cancels the request in flight instead of waiting for it");
    assert_eq!(m.sinks["siem"].delivered, 0);
    let errors: Vec<_> = logs
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, _)| *level == tracing::Level::ERROR)
        .cloned()
        .collect();
    assert!(
        errors.is_empty(),
        "a normal shutdown logs no ERROR: {errors:?}"
    );

    // The event stayed in the journal: the next start delivers it.
    let sink = TestSink::new(Mode::Accept);
    let pipeline = Pipeline::start(spec(dir.path(), sink.clone(), 10))
        .await
        .unwrap();
    wait_for("redelivery after restart", || {
        sink.sent.lock().unwrap().contains(&"e-1".to_owned())
    })
    .await;
    pipeline.shutdown().await;
}

#[tokio::test]
async fn shutdown_deadline_cancels_a_request_that_never_answers() {
    shutdown_cancels_in_flight(Mode::Hang).await;
}

#[tokio::test]
async fn shutdown_deadline_cancels_a_slow_request_and_logs_no_error() {
    shutdown_cancels_in_flight(Mode::Slow(Duration::from_secs(2))).await;
}

#[tokio::test]
async fn a_group_takes_every_ready_event_not_only_a_coop_budget_worth() {
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    for i in 0..2000u32 {
        tx.send(i).await.unwrap();
    }
    let ready = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    // Run inside a fresh task so it starts with a full budget, like the stage.
    let group = tokio::spawn(async move {
        let mut ready = std::pin::pin!(ready);
        let mut group = Vec::new();
        crate::pipeline::take_ready(ready.as_mut(), &mut group, 1024);
        group
    })
    .await
    .unwrap();
    assert_eq!(group, (0..1024).collect::<Vec<_>>());
}

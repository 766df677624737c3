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

use crate::{DeadLetterStore, Pipeline, PipelineSpec, SinkSpec, read_dead_letters};

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
    sink.batch = BatchLimits::new(max_events, 1_000_000, std::time::Duration::from_millis(20));
    sink.retry = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(5))
        .with_max_backoff(std::time::Duration::from_millis(20));
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
    let store = DeadLetterStore::open(dir.path()).unwrap();
    store.fail_writes.store(3, Ordering::Release);
    let mut spec = spec(dir.path(), TestSink::new(Mode::Reject), 10);
    spec.dead_letters = Some(Arc::new(store.clone()));
    let pipeline = Pipeline::start(spec).await.unwrap();
    let submitted = pipeline.submit(event("e-1")).await.unwrap();
    assert_eq!(submitted.durable.await.unwrap(), 0);
    let summary = tokio::time::timeout(Duration::from_secs(30), submitted.delivery)
        .await
        .expect("the event is dead-lettered once a write succeeds");
    let summary = summary.expect("a summary");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    let letters = pipeline.dead_letters().read_all().await.unwrap();
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
    let store = DeadLetterStore::open(dir.path()).unwrap();
    store.fail_writes.store(u32::MAX, Ordering::Release);
    let mut first = spec(dir.path(), TestSink::new(Mode::Reject), 10);
    first.dead_letters = Some(Arc::new(store));
    let pipeline = Pipeline::start(first).await.unwrap();
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
    let letters = pipeline.dead_letters().read_all().await.unwrap();
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
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<(tracing::Level, String)>>>);

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

/// A sink whose requests block until the test releases their events; counts how many
/// requests are in flight at once.
#[derive(Debug)]
struct GatedSink {
    released: tokio::sync::watch::Sender<(bool, std::collections::HashSet<String>)>,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
    started: Mutex<Vec<Vec<String>>>,
    delivered: Mutex<Vec<String>>,
}

impl GatedSink {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            released: tokio::sync::watch::channel((false, Default::default())).0,
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
            started: Mutex::default(),
            delivered: Mutex::default(),
        })
    }
    fn release(&self, id: &str) {
        self.released.send_modify(|(_, ids)| {
            ids.insert(id.to_owned());
        });
    }
    fn release_all(&self) {
        self.released.send_modify(|(all, _)| *all = true);
    }
    fn started_ids(&self) -> Vec<String> {
        self.started
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Sink for GatedSink {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let ids: Vec<String> = batch.iter().map(|e| e.event_id.clone()).collect();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.started.lock().unwrap().push(ids.clone());
        let mut released = self.released.subscribe();
        let _ = released
            .wait_for(|(all, set)| *all || ids.iter().all(|id| set.contains(id)))
            .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.delivered.lock().unwrap().extend(ids);
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }
}

/// One event per batch, `concurrency` batches at once.
fn gated_spec(dir: &std::path::Path, sink: Arc<GatedSink>, concurrency: usize) -> PipelineSpec {
    let mut spec = spec(dir, TestSink::new(Mode::Accept), 1);
    spec.sinks[0].sink = sink;
    spec.sinks[0].batch.max_wait = std::time::Duration::from_millis(0);
    spec.sinks[0].request.concurrency = crate::Concurrency::Fixed(concurrency);
    spec
}

async fn submit_durably(pipeline: &Pipeline, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        let s = pipeline.submit(event(&id)).await.unwrap();
        s.durable.await.unwrap();
    }
}

async fn in_flight_at_once(concurrency: usize) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let sink = GatedSink::new();
    let pipeline = Pipeline::start(gated_spec(dir.path(), sink.clone(), concurrency))
        .await
        .unwrap();
    submit_durably(&pipeline, (0..10).map(|i| format!("e{i}"))).await;
    let expected = concurrency as u32;
    wait_for("the concurrency limit is reached", || {
        sink.in_flight.load(Ordering::SeqCst) == expected
    })
    .await;
    assert_eq!(
        pipeline.metrics().sinks["siem"].requests_in_flight,
        concurrency as u64
    );
    assert_eq!(
        pipeline.metrics().sinks["siem"].concurrency_limit,
        concurrency as u64
    );
    sink.release_all();
    let m = pipeline.shutdown().await;
    assert_eq!(m.sinks["siem"].delivered, 10);
    sink.max_in_flight.load(Ordering::SeqCst)
}

#[tokio::test]
async fn concurrency_n_keeps_n_requests_in_flight() {
    assert_eq!(in_flight_at_once(3).await, 3, "never more than the limit");
}

#[tokio::test]
async fn concurrency_1_sends_one_batch_at_a_time() {
    assert_eq!(in_flight_at_once(1).await, 1);
}

#[tokio::test]
async fn out_of_order_completion_never_commits_past_an_unfinished_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sink = GatedSink::new();
    let pipeline = Pipeline::start(gated_spec(dir.path(), sink.clone(), 3))
        .await
        .unwrap();
    submit_durably(&pipeline, (0..5).map(|i| format!("e{i}"))).await;
    wait_for("three requests in flight", || {
        sink.in_flight.load(Ordering::SeqCst) == 3
    })
    .await;
    // The second and third batches finish first; their slots go to e3 and e4, which
    // proves the worker has handled both completions.
    sink.release("e1");
    sink.release("e2");
    wait_for("e3 and e4 start", || {
        let started = sink.started_ids();
        started.contains(&"e3".to_owned()) && started.contains(&"e4".to_owned())
    })
    .await;
    assert_eq!(
        committed(&pipeline),
        0,
        "e1 and e2 are done but e0 is not: the position stays at e0"
    );
    assert_eq!(pipeline.metrics().sinks["siem"].delivered, 2);
    sink.release("e0");
    wait_for("the finished prefix e0..e2 is committed", || {
        committed(&pipeline) == 3
    })
    .await;
    sink.release("e4");
    wait_for("e4 is delivered", || {
        sink.delivered.lock().unwrap().contains(&"e4".to_owned())
    })
    .await;
    assert_eq!(committed(&pipeline), 3, "e3 is still in flight");
    sink.release("e3");
    wait_for("everything is committed", || committed(&pipeline) == 5).await;
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_restart_resends_only_what_was_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = GatedSink::new();
    let pipeline = Pipeline::start(gated_spec(dir.path(), sink.clone(), 3))
        .await
        .unwrap();
    submit_durably(&pipeline, (0..3).map(|i| format!("e{i}"))).await;
    wait_for("three requests in flight", || {
        sink.in_flight.load(Ordering::SeqCst) == 3
    })
    .await;
    sink.release("e0");
    sink.release("e2");
    wait_for("e0 is committed", || committed(&pipeline) == 1).await;
    wait_for("e2 is delivered", || {
        sink.delivered.lock().unwrap().len() == 2
    })
    .await;
    // e1 never answers: the shutdown deadline cancels it, uncommitted.
    let m = pipeline
        .shutdown_within(Some(Duration::from_millis(50)))
        .await;
    assert_eq!(m.sinks["siem"].delivered, 2);

    let again = GatedSink::new();
    again.release_all();
    let pipeline = Pipeline::start(gated_spec(dir.path(), again.clone(), 3))
        .await
        .unwrap();
    wait_for("the uncommitted batches are resent", || {
        again.delivered.lock().unwrap().len() == 2
    })
    .await;
    let m = pipeline.shutdown().await;
    let mut resent = again.started_ids();
    resent.sort();
    // e0 was committed and is not sent again; e1 never finished; e2 finished above the
    // unfinished e1, so the position could not pass it: sent again (at-least-once).
    assert_eq!(resent, ["e1", "e2"]);
    assert_eq!(m.sinks["siem"].delivered, 2);
}

#[test]
fn event_weight_grows_with_the_event() {
    let small = event("small");
    let mut large = event("large");
    large.message = Some("x".repeat(100_000));
    large.labels.insert("k".repeat(1000), "v".repeat(1000));
    large
        .attributes
        .insert("blob".into(), serde_json::Value::String("y".repeat(50_000)));
    let (s, l) = (crate::event_weight(&small), crate::event_weight(&large));
    assert!(s >= std::mem::size_of::<Event>(), "{s}");
    assert!(l >= s + 152_000, "{l} vs {s}");
}

/// With an intake bound smaller than one event, every event still passes (alone), in
/// order, and each is journaled before the next is taken.
#[tokio::test]
async fn events_larger_than_the_intake_bound_pass_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::new(Mode::Accept);
    let mut spec = spec(dir.path(), sink.clone(), 10);
    spec.options.intake_max_bytes = 1;
    let pipeline = Pipeline::start(spec).await.unwrap();
    let mut durables = Vec::new();
    for i in 0..20 {
        let submitted = pipeline.submit(event(&format!("e{i}"))).await.unwrap();
        durables.push(submitted.durable);
    }
    for (i, durable) in durables.into_iter().enumerate() {
        assert_eq!(durable.await.unwrap(), i as u64);
    }
    pipeline.shutdown().await;
    let sent = sink.sent.lock().unwrap().clone();
    assert_eq!(sent, (0..20).map(|i| format!("e{i}")).collect::<Vec<_>>());
}

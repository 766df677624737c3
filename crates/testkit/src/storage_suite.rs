//! The behaviour every pipeline storage shows, whatever keeps it: run against the file
//! implementations (the defaults) and the in-memory ones, and by a host against its own.
//!
//! * [`dead_letters`]: a [`DeadLetterStorage`]: empty writes store nothing; letters come
//!   back whole (hostile text byte for byte) and in write order; concurrent writers lose
//!   nothing and never interleave a batch; what was written is there after the storage is
//!   opened again; the pipeline dead-letters a rejected event into it (the delivery
//!   summary counts it only once it is stored) and, when the storage refuses writes, the
//!   sink's position waits instead of passing the event.
//! * [`notifications`]: a [`NotificationStorage`]: records come back in order; `recent` stays
//!   bounded however many are stored; the pipeline records each notifier's answer in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use vowguard_core::{
    Alert, AlertRouting, EncodedEvent, Error, Event, EventOutcome, Notifier, Priority, Receipt,
    RetryPolicy, RoutedAlert, Sink,
};
use vowguard_pipeline::{
    DeadLetter, DeadLetterStorage, NotificationRecord, NotificationStorage, NotifierSpec, Pipeline,
    PipelineSpec, SinkSpec,
};

use crate::fixtures;

/// How one [`DeadLetterStorage`] is opened.
pub trait DeadLetterHarness: Send + Sync {
    /// The implementation's name in failure messages.
    fn name(&self) -> &str;

    /// Opens the storage; a second call opens the same storage again (the file store
    /// reopens its directory, the in-memory one hands out the same instance).
    fn open(&self) -> Arc<dyn DeadLetterStorage>;
}

/// How one [`NotificationStorage`] is opened.
pub trait NotificationHarness: Send + Sync {
    /// The implementation's name in failure messages.
    fn name(&self) -> &str;

    /// Opens a fresh, empty storage.
    fn open(&self) -> Arc<dyn NotificationStorage>;

    /// The most records [`NotificationStorage::recent`] returns.
    fn recent_capacity(&self) -> usize;
}

/// Polls `check` until it holds, failing after 30 s.
async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn letter(sink: &str, event: &Event) -> DeadLetter {
    DeadLetter::new(sink, event, &Error::rejected("HTTP 400: bad field"), 3)
}

/// Runs every dead-letter scenario against `harness`.
pub async fn dead_letters(harness: &dyn DeadLetterHarness) {
    let name = harness.name().to_owned();
    let storage = harness.open();

    // Empty storage, empty writes.
    assert!(
        storage.read_all().await.unwrap().is_empty(),
        "{name}: a new storage holds no letter"
    );
    storage.write(Arc::from(Vec::new())).await.unwrap();
    assert_eq!(
        storage.metrics().letters,
        0,
        "{name}: an empty write stores nothing"
    );

    // Letters come back whole and in order, hostile text included.
    let mut written = vec![letter("siem", &fixtures::hostile_event())];
    written.extend((0..9).map(|i| letter("siem", &fixtures::event(i))));
    storage.write(Arc::from(&written[..1])).await.unwrap();
    storage.write(Arc::from(&written[1..])).await.unwrap();
    assert_eq!(
        storage.read_all().await.unwrap(),
        written,
        "{name}: letters read back as written, in order"
    );
    let metrics = storage.metrics();
    assert_eq!(metrics.letters, 10, "{name}: {metrics:?}");
    assert!(
        metrics.writes >= 2,
        "{name}: each write is counted: {metrics:?}"
    );

    // Concurrent writers: nothing lost, no batch interleaved with another.
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let storage = storage.clone();
        tasks.spawn(async move {
            for b in 0..5 {
                let batch: Vec<DeadLetter> = (0..3)
                    .map(|i| letter(&format!("w{w}"), &fixtures::event(100 * w + 10 * b + i)))
                    .collect();
                storage.write(Arc::from(batch)).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let all = storage.read_all().await.unwrap();
    assert_eq!(
        all.len(),
        10 + 4 * 5 * 3,
        "{name}: every concurrent letter stored"
    );
    for batch in all[10..].chunks(3) {
        assert!(
            batch.iter().all(|l| l.sink == batch[0].sink),
            "{name}: a batch is stored together: {:?}",
            batch.iter().map(|l| &l.sink).collect::<Vec<_>>()
        );
    }

    // Opened again: what was acknowledged is still there.
    drop(storage);
    let reopened = harness.open();
    assert_eq!(
        reopened.read_all().await.unwrap(),
        all,
        "{name}: letters survive opening the storage again"
    );
    drop(reopened);

    through_the_pipeline(harness).await;
}

/// A sink that rejects every event for good.
#[derive(Debug)]
struct RejectingSink;

#[async_trait]
impl Sink for RejectingSink {
    fn kind(&self) -> &'static str {
        "rejecting"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        batch
            .iter()
            .map(|_| EventOutcome::Rejected(Error::rejected("HTTP 400: schema")))
            .collect()
    }
}

/// Wraps a storage, refusing writes while `refuse` is set.
#[derive(Debug)]
struct Refusing {
    inner: Arc<dyn DeadLetterStorage>,
    refuse: AtomicBool,
    refused: AtomicU64,
}

#[async_trait]
impl DeadLetterStorage for Refusing {
    async fn write(&self, letters: Arc<[DeadLetter]>) -> Result<(), Error> {
        if self.refuse.load(Ordering::Acquire) {
            self.refused.fetch_add(1, Ordering::AcqRel);
            return Err(Error::unavailable("storage refuses writes (suite)"));
        }
        self.inner.write(letters).await
    }
    async fn read_all(&self) -> Result<Vec<DeadLetter>, Error> {
        self.inner.read_all().await
    }
    fn metrics(&self) -> vowguard_pipeline::DeadLetterMetrics {
        self.inner.metrics()
    }
}

fn pipeline_spec(data_dir: &std::path::Path) -> PipelineSpec {
    let mut sink = SinkSpec::new("siem", Arc::new(RejectingSink));
    sink.batch.max_events = 10;
    sink.batch.max_wait = std::time::Duration::ZERO;
    sink.retry = RetryPolicy::default()
        .with_max_attempts(1)
        .with_initial_backoff(std::time::Duration::from_millis(5))
        .with_max_backoff(std::time::Duration::from_millis(20));
    PipelineSpec {
        data_dir: data_dir.to_path_buf(),
        sinks: vec![sink],
        ..PipelineSpec::default()
    }
}

/// Events the sink has not committed past.
fn sink_lag(pipeline: &Pipeline) -> u64 {
    pipeline.metrics().sinks["siem"].queued
}

async fn through_the_pipeline(harness: &dyn DeadLetterHarness) {
    let name = harness.name().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let refusing = Arc::new(Refusing {
        inner: harness.open(),
        refuse: AtomicBool::new(true),
        refused: AtomicU64::new(0),
    });
    let before = refusing.read_all().await.unwrap().len();
    let mut spec = pipeline_spec(dir.path());
    spec.dead_letters = Some(refusing.clone());
    let pipeline = Pipeline::start(spec).await.unwrap();
    let submitted = pipeline.submit(fixtures::hostile_event()).await.unwrap();
    submitted.durable.await.unwrap();
    let mut delivery = submitted.delivery;
    // While the storage refuses, the event is not done and the position does not pass it.
    wait_for("two refused dead-letter writes", || {
        refusing.refused.load(Ordering::Acquire) >= 2
    })
    .await;
    assert_eq!(pipeline.metrics().sinks["siem"].dead_lettered, 0, "{name}");
    assert!(
        futures::FutureExt::now_or_never(&mut delivery).is_none(),
        "{name}: delivery completed while the letter was not stored"
    );
    assert_eq!(
        sink_lag(&pipeline),
        1,
        "{name}: the position waits for the letter"
    );

    refusing.refuse.store(false, Ordering::Release);
    let summary = tokio::time::timeout(Duration::from_secs(30), delivery)
        .await
        .unwrap_or_else(|_| panic!("{name}: dead-lettered once the storage takes it"))
        .expect("a summary");
    assert_eq!(summary.dead_lettered, 1, "{name}: {summary:?}");
    let letters = refusing.read_all().await.unwrap();
    assert_eq!(letters.len(), before + 1, "{name}: one letter stored");
    let stored = letters.last().unwrap();
    assert_eq!(
        stored.event,
        fixtures::hostile_event(),
        "{name}: the event is stored whole"
    );
    assert_eq!(stored.sink, "siem");
    assert_eq!(stored.kind, "rejected");
    wait_for("the position passes the stored letter", || {
        sink_lag(&pipeline) == 0
    })
    .await;
    let metrics = pipeline.shutdown().await;
    assert_eq!(metrics.dead_letters.letters as usize, before + 1, "{name}");
}

/// Routes every event to the notifier `pager`.
#[derive(Debug)]
struct EveryEventToPager;

impl AlertRouting for EveryEventToPager {
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        vec![RoutedAlert {
            alert: Alert::new(event.clone(), Priority::P1High, "suite-route"),
            notifiers: vec!["pager".into()],
        }]
    }
}

/// Accepts every alert with a delivery id.
#[derive(Debug)]
struct AcceptingNotifier;

#[async_trait]
impl Notifier for AcceptingNotifier {
    fn kind(&self) -> &'static str {
        "accepting"
    }
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        Ok(Receipt {
            delivery_id: Some(format!("d-{}", alert.event.id)),
        })
    }
}

fn record(n: usize) -> NotificationRecord {
    let alert = fixtures::alert(n);
    NotificationRecord {
        time: chrono::Utc::now(),
        alert_id: alert.id.clone(),
        dedup_key: alert.dedup_key.clone(),
        route: alert.route.clone(),
        notifier: "pager".into(),
        priority: alert.priority,
        event_id: alert.event.id.clone(),
        delivered: n.is_multiple_of(2),
        delivery_id: None,
        error: (!n.is_multiple_of(2)).then(|| "HTTP 502\n<script>".to_owned()),
        attempts: 1,
        group_size: None,
    }
}

/// Runs every notification-storage scenario against `harness`.
pub async fn notifications(harness: &dyn NotificationHarness) {
    let name = harness.name().to_owned();
    let storage = harness.open();
    assert!(
        storage.recent().is_empty(),
        "{name}: a new storage is empty"
    );

    // In order, whole.
    let records: Vec<NotificationRecord> = (0..5).map(record).collect();
    for r in &records {
        storage.record(r.clone()).await.unwrap();
    }
    assert_eq!(
        storage.recent(),
        records,
        "{name}: records read back in order"
    );
    let usage = storage.usage();
    assert!(
        usage.records == 0 || usage.records == 5,
        "{name}: files hold what was recorded, or there are no files: {usage:?}"
    );

    // Bounded: the oldest give way.
    let capacity = harness.recent_capacity();
    for n in 5..capacity + 10 {
        storage.record(record(n)).await.unwrap();
    }
    let recent = storage.recent();
    assert_eq!(recent.len(), capacity, "{name}: recent is bounded");
    assert_eq!(
        recent.last().unwrap().event_id,
        record(capacity + 9).event_id,
        "{name}: the newest is kept"
    );
    drop(storage);

    // The pipeline records each notifier's answer.
    let dir = tempfile::tempdir().unwrap();
    let storage = harness.open();
    let mut spec = PipelineSpec {
        data_dir: dir.path().to_path_buf(),
        notification_log: Some(storage.clone()),
        router: Some(Arc::new(EveryEventToPager)),
        ..PipelineSpec::default()
    };
    spec.notifiers
        .push(NotifierSpec::new("pager", Arc::new(AcceptingNotifier)));
    let pipeline = Pipeline::start(spec).await.unwrap();
    let submitted = pipeline.submit(fixtures::hostile_event()).await.unwrap();
    submitted.durable.await.unwrap();
    wait_for("the notification is recorded", || {
        !storage.recent().is_empty()
    })
    .await;
    pipeline.shutdown().await;
    let recent = storage.recent();
    assert_eq!(recent.len(), 1, "{name}: {recent:?}");
    assert!(recent[0].delivered, "{name}");
    assert_eq!(recent[0].notifier, "pager");
    assert_eq!(recent[0].route, "suite-route");
    assert_eq!(
        recent[0].delivery_id.as_deref(),
        Some(format!("d-{}", recent[0].event_id).as_str())
    );
}

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
//! * [`incidents`]: an [`IncidentStorage`]: records come back in append order; concurrent
//!   appends never interleave; a replacement replaces everything; what was stored is there
//!   after the storage is opened again; a response engine over it keeps incidents (state,
//!   timeline in order, hostile text whole) across a restart; many closed incidents leave
//!   it bounded and their ids are never given again; a damaged record is an error naming
//!   the file and the line, and the engine does not start over it.
//! * [`breaches`]: a [`BreachStorage`]: the register's changes (through a
//!   [`BreachRegister`]) read back whole, listed oldest first, history in audit order,
//!   deadlines due soonest first; concurrent confirmations record one; applying is
//!   idempotent, refuses gaps and applies a batch all or nothing; what was applied is there
//!   after reopening; the bounded one gives up closed breaches first and refuses past its
//!   bound; a damaged breach is an error naming the store and the breach.

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
use vowguard_response::{
    IncidentRecord, IncidentState, IncidentStorage, ResponseConfig, ResponseEngine,
};
use vowguard_store::{
    AuditRecord, AuditSource, BreachChange, BreachRegister, BreachStatus, BreachStorage,
    BreachUpdate, MemoryAudit,
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

/// How one [`IncidentStorage`] is opened.
pub trait IncidentHarness: Send + Sync {
    /// The implementation's name in failure messages.
    fn name(&self) -> &str;

    /// Opens the storage; a second call opens the same storage again (the file store
    /// reopens its directory, the in-memory one hands out the same instance).
    fn open(&self) -> Arc<dyn IncidentStorage>;

    /// Opens a fresh, empty storage with a small bound (a few kilobytes, a few dozen
    /// records), so the engine compacts it often.
    fn open_small(&self) -> Arc<dyn IncidentStorage>;

    /// Damages a record in the middle of the storage [`open`](Self::open) returns and
    /// returns text the load error must contain (the file name), or `None` when the
    /// storage cannot hold damaged data (typed values in memory).
    fn corrupt(&self) -> Option<String>;
}

fn generation(writer: &str, count: u32) -> IncidentRecord {
    // Generation records are the simplest the engine writes; the suite uses them as
    // opaque, ordered values.
    serde_json::from_value(serde_json::json!({
        "record": "generation", "fingerprint": writer, "count": count,
    }))
    .expect("a generation record")
}

fn generation_of(record: &IncidentRecord) -> Option<(String, u32)> {
    let value = serde_json::to_value(record).ok()?;
    (value["record"] == "generation").then(|| {
        (
            value["fingerprint"].as_str().unwrap_or_default().to_owned(),
            u32::try_from(value["count"].as_u64().unwrap_or_default()).unwrap_or_default(),
        )
    })
}

fn response_config(keep_closed: usize) -> ResponseConfig {
    let mut config = ResponseConfig::default();
    config.default_playbooks = false;
    config.keep_closed_incidents = keep_closed;
    config
}

fn engine_over(
    storage: Arc<dyn IncidentStorage>,
    keep_closed: usize,
    data_dir: &std::path::Path,
) -> ResponseEngine {
    ResponseEngine::builder(response_config(keep_closed))
        .incident_storage(storage)
        .build(data_dir)
        .expect("the engine builds over the storage")
}

fn routed(n: usize, dedup_key: &str) -> RoutedAlert {
    let mut alert = fixtures::hostile_alert();
    alert.id = format!("alert-{n:04}");
    alert.dedup_key = dedup_key.to_owned();
    RoutedAlert {
        alert,
        notifiers: Vec::new(),
    }
}

/// Runs every incident-storage scenario against `harness`.
pub async fn incidents(harness: &dyn IncidentHarness) {
    let name = harness.name().to_owned();
    let storage = harness.open();
    assert!(
        storage.load().unwrap().is_empty(),
        "{name}: a new storage holds no record"
    );
    assert!(!storage.location().is_empty(), "{name}: names its location");

    // Records come back in append order; an empty append stores nothing.
    storage.append(Arc::from(Vec::new())).await.unwrap();
    let first: Vec<IncidentRecord> = (0..3).map(|n| generation("first", n)).collect();
    storage.append(Arc::from(&first[..1])).await.unwrap();
    storage.append(Arc::from(&first[1..])).await.unwrap();
    assert_eq!(
        storage.load().unwrap(),
        first,
        "{name}: records read back as appended, in order"
    );

    // Concurrent appends: nothing lost, no batch interleaved with another.
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let storage = storage.clone();
        tasks.spawn(async move {
            for b in 0..5u32 {
                let batch: Vec<IncidentRecord> = (0..3)
                    .map(|i| generation(&format!("w{w}"), b * 3 + i))
                    .collect();
                storage.append(Arc::from(batch)).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let all = storage.load().unwrap();
    assert_eq!(all.len(), 3 + 4 * 5 * 3, "{name}: every concurrent record");
    for batch in all[3..].chunks(3) {
        let got: Vec<(String, u32)> = batch.iter().filter_map(generation_of).collect();
        assert!(
            got.iter().all(|(w, _)| *w == got[0].0) && got.windows(2).all(|p| p[1].1 == p[0].1 + 1),
            "{name}: a batch is stored together, in order: {got:?}"
        );
    }

    // Replace: exactly the new records, and appends follow them.
    let compacted: Vec<IncidentRecord> = (0..2).map(|n| generation("compacted", n)).collect();
    storage.replace(compacted.clone()).await.unwrap();
    storage
        .append(Arc::from(vec![generation("after", 0)]))
        .await
        .unwrap();
    let mut expected = compacted;
    expected.push(generation("after", 0));
    assert_eq!(
        storage.load().unwrap(),
        expected,
        "{name}: a replacement replaces everything; appends follow it"
    );

    // Opened again: the same records.
    drop(storage);
    let reopened = harness.open();
    assert_eq!(
        reopened.load().unwrap(),
        expected,
        "{name}: records survive opening the storage again"
    );
    reopened.replace(Vec::new()).await.unwrap();
    drop(reopened);

    through_the_engine(harness).await;
    bounded(harness).await;

    if let Some(location) = harness.corrupt() {
        let err = harness
            .open()
            .load()
            .expect_err("a damaged record is an error, not skipped");
        let text = err.to_string();
        assert!(
            text.contains(&location) && text.contains("line"),
            "{name}: the error names the file and the line: {text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let built = ResponseEngine::builder(response_config(10))
            .incident_storage(harness.open())
            .build(dir.path());
        let err = built.expect_err("an engine over damaged records does not start");
        assert!(err.to_string().contains(&location), "{name}: {err}");
    }
}

/// The engine keeps incidents in the storage: they survive a new engine over it, in the
/// state they were left, with their timelines in order.
async fn through_the_engine(harness: &dyn IncidentHarness) {
    let name = harness.name().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_over(harness.open(), 100, dir.path());
    let id = engine
        .handle_alert(&routed(1, "suite|fingerprint"))
        .await
        .unwrap()
        .expect("a P0 alert opens an incident");
    let linked = engine
        .handle_alert(&routed(2, "suite|fingerprint"))
        .await
        .unwrap();
    assert_eq!(
        linked.as_deref(),
        Some(id.as_str()),
        "{name}: same group, same incident"
    );
    engine.acknowledge(&id, "suite").await.unwrap();
    let before = engine.incident(&id).unwrap();
    assert_eq!(before.alert_count, 2, "{name}");
    assert_eq!(before.state, IncidentState::Acknowledged, "{name}");
    engine.shutdown(Duration::from_secs(10)).await;

    let engine = engine_over(harness.open(), 100, dir.path());
    let after = engine
        .incident(&id)
        .unwrap_or_else(|| panic!("{name}: the incident survives a new engine"));
    assert_eq!(after, before, "{name}: the incident as it was left");
    let actions: Vec<&str> = after.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["opened", "alert_linked", "acknowledged"],
        "{name}: the timeline in order"
    );
    assert_eq!(
        after.first_event["message"],
        serde_json::to_value(fixtures::hostile_event()).unwrap()["message"],
        "{name}: hostile text stored whole"
    );
    engine.resolve(&id, "suite", "done").await.unwrap();
    // A resolved incident's fingerprint opens a new incident, with a new id.
    let next = engine
        .handle_alert(&routed(3, "suite|fingerprint"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(next, id, "{name}: a new incident after the resolved one");
    engine.shutdown(Duration::from_secs(10)).await;
    harness.open().replace(Vec::new()).await.unwrap();
}

/// Many incidents opened and resolved: the storage stays bounded, and ids of incidents
/// compacted away are never given again.
async fn bounded(harness: &dyn IncidentHarness) {
    let name = harness.name().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let storage = harness.open_small();
    let engine = engine_over(storage.clone(), 2, dir.path());
    let mut ids = Vec::new();
    for n in 0..40 {
        let id = engine
            .handle_alert(&routed(n, "suite|recurring"))
            .await
            .unwrap()
            .unwrap();
        engine.resolve(&id, "suite", "recurring").await.unwrap();
        ids.push(id);
    }
    engine.shutdown(Duration::from_secs(10)).await;
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 40, "{name}: every incident its own id");
    let stored: std::collections::HashSet<String> = storage
        .load()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let v = serde_json::to_value(r).ok()?;
            (v["record"] == "incident")
                .then(|| v["incident"]["id"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert!(
        stored.len() <= 20,
        "{name}: compacted, the storage holds {} of 40 closed incidents",
        stored.len()
    );
    let engine = engine_over(storage, 2, dir.path());
    let next = engine
        .handle_alert(&routed(99, "suite|recurring"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !ids.contains(&next),
        "{name}: an id compacted away is not given again ({next})"
    );
    engine.shutdown(Duration::from_secs(10)).await;
}

/// How one [`BreachStorage`] is opened.
#[async_trait]
pub trait BreachHarness: Send + Sync {
    /// The implementation's name in failure messages.
    fn name(&self) -> &str;

    /// Opens the storage; a second call opens the same storage again (the report store
    /// reopens its database, the in-memory one hands out the same instance).
    async fn open(&self) -> Arc<dyn BreachStorage>;

    /// A fresh storage bounded to the number of breaches returned with it, or `None` when
    /// the implementation's bound is its disk.
    async fn open_bounded(&self) -> Option<(Arc<dyn BreachStorage>, usize)>;

    /// Damages breach `id`'s stored state in the storage [`open`](Self::open) returns and
    /// returns text the read error must contain (the store's location), or `None` when
    /// the storage cannot hold damaged data.
    async fn corrupt(&self, id: &str) -> Option<String>;
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("a time")
}

/// A breach record as the register writes it, with `fields` as given.
fn breach_record(
    breach_id: &str,
    when: &str,
    action: &str,
    fields: serde_json::Value,
) -> AuditRecord {
    let serde_json::Value::Object(fields) = fields else {
        panic!("fields are an object")
    };
    AuditRecord::Breach {
        at: at(when),
        breach_id: breach_id.to_owned(),
        action: action.to_owned(),
        actor: "suite".to_owned(),
        fields,
    }
}

fn opened(breach_id: &str, detected: &str) -> AuditRecord {
    breach_record(
        breach_id,
        detected,
        "opened",
        serde_json::json!({"status": "suspected", "detected_at": detected, "handed_to": []}),
    )
}

/// Applies `records` at `*index`, moving it past them when they are applied.
async fn apply_next(
    storage: &dyn BreachStorage,
    index: &mut u64,
    records: Vec<AuditRecord>,
) -> Result<u64, Error> {
    let n = storage.apply(*index, &records).await?;
    *index += records.len() as u64;
    Ok(n)
}

/// Runs every breach-storage scenario against `harness`.
pub async fn breaches(harness: &dyn BreachHarness) {
    let name = harness.name().to_owned();
    let storage = harness.open().await;
    assert_eq!(
        storage.applied_through().await.unwrap(),
        None,
        "{name}: new"
    );
    assert!(storage.breaches().await.unwrap().is_empty(), "{name}: new");
    assert_eq!(storage.breach("b-1").await.unwrap(), None, "{name}: new");
    assert!(storage.breach_history("b-1").await.unwrap().is_empty());

    // Through the register, over an audit log in memory.
    let audit = Arc::new(MemoryAudit::new());
    let register = BreachRegister::new(storage.clone(), audit.clone(), audit.clone(), None);
    // Whole seconds: the report store keeps times to the millisecond.
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let open = |id: &str, detected| BreachChange::Open {
        id: id.to_owned(),
        detected_at: detected,
        wedding_id: Some(fixtures::HOSTILE.to_owned()),
        event_id: Some("evt-1".into()),
        first_signal: Some(fixtures::HOSTILE.to_owned()),
        records_approx: Some(180),
        handed_to: vec!["pager".into()],
        team_notification: None,
    };
    register
        .change(
            "b-1",
            &open("b-1", now - chrono::Duration::hours(2)),
            "system",
            now,
        )
        .await
        .unwrap();
    register
        .change(
            "b-0",
            &open("b-0", now - chrono::Duration::hours(3)),
            "system",
            now,
        )
        .await
        .unwrap();
    let confirmed_at = now - chrono::Duration::hours(1);
    let b1 = register
        .change(
            "b-1",
            &BreachChange::Confirm { at: confirmed_at },
            "dpo",
            now,
        )
        .await
        .unwrap();
    assert_eq!(b1.status, BreachStatus::Confirmed, "{name}");
    assert_eq!(
        b1.deadline,
        Some(confirmed_at + chrono::Duration::hours(72)),
        "{name}"
    );
    let update = BreachUpdate {
        nature: Some(format!("export of the guest list {}", fixtures::HOSTILE)),
        ..BreachUpdate::default()
    };
    register
        .change("b-1", &BreachChange::Update(update.clone()), "dpo", now)
        .await
        .unwrap();
    let b1 = storage.breach("b-1").await.unwrap().expect("b-1 stored");
    assert_eq!(
        b1.nature, update.nature,
        "{name}: hostile text stored whole"
    );
    assert_eq!(
        b1.first_signal.as_deref(),
        Some(fixtures::HOSTILE),
        "{name}"
    );
    assert_eq!(b1.handed_to, ["pager"], "{name}");
    let listed: Vec<String> = storage
        .breaches()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(listed, ["b-0", "b-1"], "{name}: oldest detected first");
    let history = storage.breach_history("b-1").await.unwrap();
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["opened", "confirmed", "updated"],
        "{name}: history in order"
    );
    assert!(
        history
            .windows(2)
            .all(|p| p[0].audit_index < p[1].audit_index),
        "{name}: history by audit index"
    );
    assert_eq!(history[1].actor, "dpo", "{name}");

    // Deadlines: only confirmed, not yet notified breaches, within the window.
    let due = storage
        .breaches_due_within(now, chrono::Duration::hours(72))
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "{name}: b-1 is due within 72 h: {due:?}");
    assert!(
        storage
            .breaches_due_within(now, chrono::Duration::hours(1))
            .await
            .unwrap()
            .is_empty(),
        "{name}: nothing due within the hour"
    );

    // Compare-and-set through the register: of concurrent confirmations, one is recorded.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..4 {
        let register = register.clone();
        tasks.spawn(async move {
            register
                .change(
                    "b-0",
                    &BreachChange::Confirm { at: now },
                    &format!("dpo-{i}"),
                    now,
                )
                .await
        });
    }
    let mut recorded = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => recorded += 1,
            Err(e) => assert!(
                e.to_string().contains("already confirmed"),
                "{name}: the others are refused as confirmed: {e}"
            ),
        }
    }
    assert_eq!(recorded, 1, "{name}: one confirmation recorded");
    let confirmations = storage
        .breach_history("b-0")
        .await
        .unwrap()
        .iter()
        .filter(|h| h.action == "confirmed")
        .count();
    assert_eq!(confirmations, 1, "{name}: one confirmation in the history");
    let due = storage
        .breaches_due_within(now, chrono::Duration::hours(100))
        .await
        .unwrap();
    assert!(
        due.windows(2).all(|p| p[0].deadline <= p[1].deadline) && due.len() == 2,
        "{name}: due breaches soonest first: {due:?}"
    );

    // Applying is idempotent and never leaves a gap.
    let through = storage.applied_through().await.unwrap().expect("applied");
    assert_eq!(through + 1, audit.len(), "{name}: caught up with the log");
    let again = audit.records_from(0, 1_000).await.unwrap();
    let again: Vec<AuditRecord> = again.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        storage.apply(0, &again).await.unwrap(),
        0,
        "{name}: replay skipped"
    );
    assert_eq!(storage.catch_up(audit.as_ref()).await.unwrap(), 0, "{name}");
    assert_eq!(
        storage.breach_history("b-1").await.unwrap(),
        history,
        "{name}"
    );
    let gap = storage
        .apply(through + 5, &[opened("b-gap", "2026-06-13T09:00:00Z")])
        .await
        .expect_err("a gap is refused");
    assert!(gap.to_string().contains("expects"), "{name}: {gap}");

    // Records that are not breach changes only move the index.
    let other = AuditRecord::Incident {
        at: now,
        incident_id: "inc-1".into(),
        action: "opened".into(),
        actor: "suite".into(),
        fields: serde_json::Map::new(),
    };
    assert_eq!(
        storage.apply(through + 1, &[other]).await.unwrap(),
        1,
        "{name}"
    );
    assert_eq!(storage.applied_through().await.unwrap(), Some(through + 1));
    assert_eq!(storage.breaches().await.unwrap().len(), 2, "{name}");

    // A batch with a change that gives no valid breach: nothing of it is applied.
    let bad = vec![
        breach_record(
            "b-0",
            "2026-06-13T10:00:00Z",
            "updated",
            serde_json::json!({"nature": "x"}),
        ),
        breach_record(
            "b-bad",
            "2026-06-13T10:00:00Z",
            "opened",
            serde_json::json!({"status": "bogus"}),
        ),
    ];
    let err = storage
        .apply(through + 2, &bad)
        .await
        .expect_err("an invalid change is refused");
    assert!(
        err.to_string().contains("b-bad"),
        "{name}: names the breach: {err}"
    );
    assert_eq!(
        storage.applied_through().await.unwrap(),
        Some(through + 1),
        "{name}: the index did not move"
    );
    assert_eq!(
        storage.breach("b-0").await.unwrap().unwrap().nature,
        None,
        "{name}"
    );
    assert_eq!(storage.breach("b-bad").await.unwrap(), None, "{name}");

    // Opened again: the same register.
    let before = storage.breaches().await.unwrap();
    drop(register);
    drop(storage);
    let reopened = harness.open().await;
    assert_eq!(
        reopened.breaches().await.unwrap(),
        before,
        "{name}: survives reopening"
    );
    assert_eq!(
        reopened.breach_history("b-1").await.unwrap(),
        history,
        "{name}"
    );
    assert_eq!(reopened.applied_through().await.unwrap(), Some(through + 1));
    drop(reopened);

    if let Some((bounded, bound)) = harness.open_bounded().await {
        let mut index = 0u64;
        for i in 0..bound {
            apply_next(
                bounded.as_ref(),
                &mut index,
                vec![opened(&format!("k-{i}"), "2026-06-13T09:00:00Z")],
            )
            .await
            .unwrap();
        }
        apply_next(
            bounded.as_ref(),
            &mut index,
            vec![breach_record(
                "k-0",
                "2026-06-14T09:00:00Z",
                "closed",
                serde_json::json!({"status": "closed", "closed_at": "2026-06-14T09:00:00Z"}),
            )],
        )
        .await
        .unwrap();
        apply_next(
            bounded.as_ref(),
            &mut index,
            vec![opened("k-new", "2026-06-15T09:00:00Z")],
        )
        .await
        .unwrap();
        let held = bounded.breaches().await.unwrap();
        assert_eq!(held.len(), bound, "{name}: bounded: {held:?}");
        assert!(
            held.iter().all(|b| b.id != "k-0"),
            "{name}: the closed breach gave way"
        );
        let err = apply_next(
            bounded.as_ref(),
            &mut index,
            vec![opened("k-over", "2026-06-15T09:00:00Z")],
        )
        .await
        .expect_err("no closed breach to give way: refused");
        assert!(
            err.to_string().contains(&bound.to_string()),
            "{name}: the error names the bound: {err}"
        );
        assert_eq!(bounded.breach("k-over").await.unwrap(), None, "{name}");
    }

    if let Some(location) = harness.corrupt("b-1").await {
        let storage = harness.open().await;
        let err = storage
            .breach("b-1")
            .await
            .expect_err("a damaged breach is an error");
        let text = err.to_string();
        assert!(
            text.contains(&location) && text.contains("b-1"),
            "{name}: the error names the store and the breach: {text}"
        );
        assert!(
            storage.breaches().await.is_err(),
            "{name}: listing fails too"
        );
    }
}

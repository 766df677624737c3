//! Delivery semantics of the pipeline against scripted in-memory sinks and notifiers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use vowguard_core::{
    Alert, AlertRouting, BatchLimits, EncodedEvent, Enricher, Enrichment, Error, ErrorKind, Event,
    EventOutcome, Notifier, Priority, Receipt, RetryPolicy, RoutedAlert, Severity, Sink,
};
use vowguard_pipeline::{
    BreakerOptions, EnricherSpec, NotifierSpec, Pipeline, PipelineOptions, PipelineSpec, SinkSpec,
    WhenFull, read_dead_letters,
};

/// What a scripted sink answers for one event.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Retry,
    RetryAfter(u64),
    Reject,
}

/// A sink that answers from a script (per call, per event) and records every call.
#[derive(Debug, Default)]
struct ScriptedSink {
    script: Mutex<VecDeque<Vec<Answer>>>,
    calls: Mutex<Vec<Vec<String>>>,
    encoded_size: usize,
    gate: Option<Arc<Notify>>,
    /// Healthcheck answers, in order (then healthy).
    health: Mutex<VecDeque<bool>>,
    probes: AtomicU32,
}

impl ScriptedSink {
    fn new(script: Vec<Vec<Answer>>) -> Self {
        Self {
            script: Mutex::new(script.into()),
            ..Self::default()
        }
    }
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Sink for ScriptedSink {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        if event.action == "unencodable" {
            return Err(Error::encode("cannot encode this one"));
        }
        let mut bytes = event.id.clone().into_bytes();
        bytes.resize(self.encoded_size.max(bytes.len()), b' ');
        Ok(bytes)
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        self.calls
            .lock()
            .unwrap()
            .push(batch.iter().map(|e| e.event_id.clone()).collect());
        let answers = self.script.lock().unwrap().pop_front().unwrap_or_default();
        (0..batch.len())
            .map(|i| match answers.get(i).copied().unwrap_or(Answer::Ok) {
                Answer::Ok => EventOutcome::Delivered,
                Answer::Retry => EventOutcome::Retry(Error::unavailable("HTTP 503")),
                Answer::RetryAfter(s) => EventOutcome::Retry(
                    Error::new(ErrorKind::RateLimited, "HTTP 429")
                        .with_retry_after(Duration::from_secs(s)),
                ),
                Answer::Reject => {
                    EventOutcome::Rejected(Error::rejected("incorrect index").with_status(400))
                }
            })
            .collect()
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        self.probes.fetch_add(1, Ordering::SeqCst);
        match self.health.lock().unwrap().pop_front() {
            Some(false) => Err(Error::unavailable("still down")),
            _ => Ok(()),
        }
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

fn spec(dir: &std::path::Path, sinks: Vec<SinkSpec>) -> PipelineSpec {
    PipelineSpec {
        data_dir: dir.to_owned(),
        sinks,
        ..PipelineSpec::default()
    }
}

fn sink_spec(id: &str, sink: Arc<ScriptedSink>, max_events: usize) -> SinkSpec {
    let mut spec = SinkSpec::new(id, sink);
    spec.batch = BatchLimits::new(max_events, 1_000_000, std::time::Duration::from_millis(50));
    spec.retry = RetryPolicy::default()
        .with_max_attempts(4)
        .with_initial_backoff(std::time::Duration::from_millis(5))
        .with_max_backoff(std::time::Duration::from_millis(20));
    spec
}

async fn start(spec: PipelineSpec) -> Pipeline {
    Pipeline::start(spec).await.expect("pipeline starts")
}

fn sizes(sink: &ScriptedSink) -> Vec<usize> {
    sink.calls().iter().map(Vec::len).collect()
}

#[tokio::test]
async fn batches_by_count_and_acks_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink::default());
    let pipeline = start(spec(dir.path(), vec![sink_spec("s", sink.clone(), 3)])).await;
    let mut deliveries = Vec::new();
    for i in 0..7 {
        deliveries.push(pipeline.submit(event(&format!("e{i}"))).await.unwrap());
    }
    let metrics = pipeline.shutdown().await;
    for (i, d) in deliveries.into_iter().enumerate() {
        assert_eq!(
            d.durable.await.unwrap(),
            i as u64,
            "sequence numbers follow submission order"
        );
        let summary = d.delivery.await.unwrap();
        assert_eq!((summary.delivered, summary.dead_lettered), (1, 0));
    }
    let sizes = sizes(&sink);
    assert!(sizes.iter().all(|n| *n <= 3), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 7);
    assert_eq!(metrics.sinks["s"].delivered, 7);
    assert_eq!(metrics.sinks["s"].queued, 0);
    assert_eq!(metrics.events_journaled, 7);
}

#[tokio::test]
async fn batches_by_encoded_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink {
        encoded_size: 100,
        ..ScriptedSink::default()
    });
    let mut s = sink_spec("s", sink.clone(), 100);
    s.batch.max_bytes = 250;
    let pipeline = start(spec(dir.path(), vec![s])).await;
    for i in 0..5 {
        pipeline.submit(event(&format!("e{i}"))).await.unwrap();
    }
    pipeline.shutdown().await;
    let sizes = sizes(&sink);
    assert!(
        sizes.iter().all(|n| *n <= 2),
        "250 bytes hold two 100-byte events: {sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), 5);
}

#[tokio::test]
async fn retries_only_failed_events_and_dead_letters_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink::new(vec![
        vec![Answer::Ok, Answer::Retry, Answer::Reject],
        vec![Answer::Ok],
    ]));
    let mut s = sink_spec("siem", sink.clone(), 3);
    s.batch.max_wait = std::time::Duration::from_millis(1_000);
    let pipeline = start(spec(dir.path(), vec![s])).await;
    let a = pipeline.submit(event("a")).await.unwrap();
    let b = pipeline.submit(event("b")).await.unwrap();
    let c = pipeline.submit(event("c")).await.unwrap();
    let metrics = pipeline.shutdown().await;
    assert_eq!(sink.calls(), vec![vec!["a", "b", "c"], vec!["b"]]);
    assert_eq!(a.delivery.await.unwrap().delivered, 1);
    assert_eq!(b.delivery.await.unwrap().delivered, 1);
    assert_eq!(c.delivery.await.unwrap().dead_lettered, 1);
    assert_eq!(metrics.sinks["siem"].retried, 1);
    assert_eq!(metrics.sinks["siem"].dead_lettered, 1);
    let letters = read_dead_letters(&dir.path().join("dead_letters.jsonl")).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].sink, "siem");
    assert_eq!(letters[0].event.id, "c");
    assert_eq!(letters[0].kind, "rejected");
    assert_eq!(letters[0].status, Some(400));
    assert!(
        letters[0].reason.contains("incorrect index"),
        "{}",
        letters[0].reason
    );
}

/// On tokio's paused clock: the assertion is on the schedule the pipeline asked for (virtual
/// time), not on how fast this machine is.
#[tokio::test(start_paused = true)]
async fn honours_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink::new(vec![vec![Answer::RetryAfter(42)]]));
    let pipeline = start(spec(dir.path(), vec![sink_spec("s", sink.clone(), 1)])).await;
    let started = tokio::time::Instant::now();
    let d = pipeline.submit(event("a")).await.unwrap();
    assert_eq!(d.delivery.await.unwrap().delivered, 1);
    assert!(
        started.elapsed() >= Duration::from_secs(42),
        "the retry waited for the Retry-After of 42 s (virtual time): {:?}",
        started.elapsed()
    );
    assert_eq!(sink.calls().len(), 2);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn gives_up_after_max_attempts_into_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    // Two events, the first always fails: the batch is never failing as a whole, so the
    // breaker stays closed and the retry budget applies.
    let sink = Arc::new(ScriptedSink::new(vec![vec![Answer::Retry, Answer::Ok]; 10]));
    let mut s = sink_spec("s", sink.clone(), 2);
    s.batch.max_wait = std::time::Duration::from_millis(1_000);
    let pipeline = start(spec(dir.path(), vec![s])).await;
    let a = pipeline.submit(event("a")).await.unwrap();
    let b = pipeline.submit(event("b")).await.unwrap();
    assert_eq!(a.delivery.await.unwrap().dead_lettered, 1);
    assert_eq!(b.delivery.await.unwrap().delivered, 1);
    assert_eq!(sink.calls().len(), 4, "max_attempts = 4");
    let letters = read_dead_letters(&dir.path().join("dead_letters.jsonl")).unwrap();
    assert!(
        letters[0].reason.starts_with("s: gave up after 4 attempts"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].attempts, 4);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn circuit_breaker_waits_for_the_endpoint_instead_of_dead_lettering() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink {
        script: Mutex::new(vec![vec![Answer::Retry]; 3].into()),
        health: Mutex::new(vec![false, false].into()),
        ..ScriptedSink::default()
    });
    let mut s = sink_spec("s", sink.clone(), 1);
    s.retry.max_attempts = 2;
    s.breaker = BreakerOptions::default()
        .with_failure_threshold(2)
        .with_initial_cooldown(Duration::from_millis(5))
        .with_max_cooldown(Duration::from_millis(20));
    let pipeline = start(spec(dir.path(), vec![s])).await;
    let d = pipeline.submit(event("a")).await.unwrap();
    assert_eq!(
        d.delivery.await.unwrap().delivered,
        1,
        "delivered once the endpoint recovered"
    );
    let metrics = pipeline.shutdown().await;
    assert_eq!(metrics.sinks["s"].dead_lettered, 0);
    assert_eq!(
        sink.probes.load(Ordering::SeqCst),
        3,
        "two failed probes, then healthy"
    );
    assert_eq!(
        sink.calls().len(),
        4,
        "2 failures open the circuit; 1 more failure after it closed; then success"
    );
}

#[tokio::test]
async fn encode_failure_dead_letters_only_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink::default());
    let pipeline = start(spec(dir.path(), vec![sink_spec("s", sink.clone(), 10)])).await;
    let mut bad = event("bad");
    bad.action = "unencodable".into();
    let bad = pipeline.submit(bad).await.unwrap();
    let good = pipeline.submit(event("good")).await.unwrap();
    pipeline.shutdown().await;
    assert_eq!(bad.delivery.await.unwrap().dead_lettered, 1);
    assert_eq!(good.delivery.await.unwrap().delivered, 1);
    assert_eq!(sink.calls(), vec![vec!["good"]]);
}

#[tokio::test]
async fn a_stuck_sink_does_not_delay_another() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Notify::new());
    let stuck = Arc::new(ScriptedSink {
        gate: Some(gate.clone()),
        ..ScriptedSink::default()
    });
    let healthy = Arc::new(ScriptedSink::default());
    let mut fast = sink_spec("healthy", healthy.clone(), 10);
    fast.batch.max_wait = std::time::Duration::from_millis(1);
    let pipeline = start(spec(
        dir.path(),
        vec![sink_spec("stuck", stuck.clone(), 10), fast],
    ))
    .await;
    for i in 0..25 {
        pipeline.submit(event(&format!("e{i}"))).await.unwrap();
    }
    // The healthy sink gets everything while the stuck one has not finished a single send.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pipeline.metrics().sinks["healthy"].delivered < 25 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthy sink starved"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(pipeline.metrics().sinks["stuck"].delivered, 0);
    assert_eq!(
        pipeline.metrics().sinks["stuck"].queued,
        25,
        "queue depth is the sink's journal lag"
    );
    assert!(stuck.calls().is_empty());
    let releaser = tokio::spawn(async move {
        loop {
            gate.notify_one();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let metrics = pipeline.shutdown().await;
    releaser.abort();
    assert_eq!(metrics.sinks["stuck"].delivered, 25);
}

#[tokio::test]
async fn a_restart_resumes_every_sink_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // First run: the sink fails every send; shut down after a short deadline.
    let down = Arc::new(ScriptedSink::new(vec![vec![Answer::Retry; 10]; 1_000]));
    let mut s = sink_spec("siem", down.clone(), 10);
    s.breaker.failure_threshold = 0;
    s.retry.max_attempts = 1_000;
    let pipeline = start(spec(dir.path(), vec![s])).await;
    let mut durable = Vec::new();
    for i in 0..5 {
        durable.push(
            pipeline
                .submit(event(&format!("r{i}")))
                .await
                .unwrap()
                .durable,
        );
    }
    for d in durable {
        d.await.expect("journaled");
    }
    let metrics = pipeline
        .shutdown_within(Some(Duration::from_millis(100)))
        .await;
    assert_eq!(metrics.sinks["siem"].delivered, 0);
    // Second run, same data_dir: the journal still holds the five events.
    let up = Arc::new(ScriptedSink::default());
    let pipeline = start(spec(dir.path(), vec![sink_spec("siem", up.clone(), 10)])).await;
    let metrics = pipeline.shutdown().await;
    assert_eq!(metrics.sinks["siem"].delivered, 5);
    let mut ids: Vec<String> = up.calls().into_iter().flatten().collect();
    ids.sort();
    assert_eq!(ids, ["r0", "r1", "r2", "r3", "r4"]);
    // Third run: nothing left to deliver.
    let idle = Arc::new(ScriptedSink::default());
    let pipeline = start(spec(dir.path(), vec![sink_spec("siem", idle.clone(), 10)])).await;
    pipeline.shutdown().await;
    assert!(idle.calls().is_empty());
}

#[tokio::test]
async fn a_full_journal_with_drop_newest_refuses_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Notify::new());
    let stuck = Arc::new(ScriptedSink {
        gate: Some(gate.clone()),
        ..ScriptedSink::default()
    });
    let mut s = spec(dir.path(), vec![sink_spec("stuck", stuck, 10)]);
    s.options.max_journal_bytes = 64 * 1024;
    s.options.when_full = WhenFull::DropNewest;
    let pipeline = start(s).await;
    let mut refused = 0;
    for i in 0..2_000 {
        let mut e = event(&format!("f{i}"));
        e.message = Some("x".repeat(200));
        if let Err(e) = pipeline.submit(e).await.unwrap().durable.await {
            assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
            assert!(e.to_string().contains("journal is full"), "{e}");
            refused += 1;
        }
    }
    assert!(refused > 0, "a 64 KiB journal cannot hold 2000 events");
    assert_eq!(pipeline.metrics().journal.dropped_full, refused);
    let releaser = tokio::spawn(async move {
        loop {
            gate.notify_one();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let metrics = pipeline.shutdown().await;
    releaser.abort();
    assert_eq!(metrics.sinks["stuck"].delivered, 2_000 - refused);
}

#[derive(Debug)]
struct SlowEnricher;

#[async_trait]
impl Enricher for SlowEnricher {
    fn kind(&self) -> &'static str {
        "slow"
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(50)
    }
    async fn enrich(&self, _: &Event) -> Result<Enrichment, Error> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Enrichment::default())
    }
}

#[tokio::test]
async fn enricher_timeout_marks_event_and_lets_it_through() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(ScriptedSink::default());
    let mut s = spec(dir.path(), vec![sink_spec("s", sink.clone(), 1)]);
    s.enrichers.push(EnricherSpec {
        id: "intel".into(),
        enricher: Arc::new(SlowEnricher),
    });
    s.options = PipelineOptions::default().with_enrichment_budget(Duration::from_secs(1));
    let pipeline = start(s).await;
    let d = pipeline.submit(event("a")).await.unwrap();
    assert_eq!(d.delivery.await.unwrap().delivered, 1);
    let metrics = pipeline.shutdown().await;
    assert_eq!(metrics.events_not_fully_enriched, 1);
    let intel = metrics.enrichers["intel"];
    assert_eq!((intel.calls, intel.timeouts, intel.skipped), (1, 1, 0));
    assert!(
        !intel.circuit_open,
        "one timeout is below the breaker's threshold"
    );
}

#[derive(Debug)]
struct EveryEventAlerts;

impl AlertRouting for EveryEventAlerts {
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        vec![RoutedAlert {
            alert: Alert::new(event.clone(), Priority::P1High, "test-route"),
            notifiers: vec!["pager".into(), "missing".into()],
        }]
    }
}

#[derive(Debug, Default)]
struct FlakyNotifier {
    calls: AtomicU32,
}

#[async_trait]
impl Notifier for FlakyNotifier {
    fn kind(&self) -> &'static str {
        "flaky"
    }
    async fn notify(&self, _: &Alert) -> Result<Receipt, Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(Error::unavailable("HTTP 502"))
        } else {
            Ok(Receipt {
                delivery_id: Some("abc".into()),
            })
        }
    }
}

#[tokio::test]
async fn alerts_are_dispatched_retried_and_logged_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(FlakyNotifier::default());
    let mut s = spec(dir.path(), vec![]);
    let mut pager = NotifierSpec::new("pager", notifier.clone());
    pager.retry.initial_backoff = std::time::Duration::from_millis(5);
    s.notifiers.push(pager);
    s.router = Some(Arc::new(EveryEventAlerts));
    let pipeline = start(s).await;
    pipeline.submit(event("a")).await.unwrap();
    let log = pipeline.notifications();
    let metrics = pipeline.shutdown().await;
    let records = log.recent();
    assert_eq!(
        records.len(),
        1,
        "the unknown notifier id is skipped, not sent"
    );
    assert!(records[0].delivered);
    assert_eq!(records[0].attempts, 2);
    assert_eq!(records[0].route, "test-route");
    assert_eq!(records[0].delivery_id.as_deref(), Some("abc"));
    assert_eq!(metrics.notifiers["pager"].sent, 1);
    assert_eq!(metrics.notifiers["pager"].retried, 1);
    // A restart does not page again for an alert already dispatched.
    let mut s = spec(dir.path(), vec![]);
    s.notifiers
        .push(NotifierSpec::new("pager", notifier.clone()));
    s.router = Some(Arc::new(EveryEventAlerts));
    start(s).await.shutdown().await;
    assert_eq!(notifier.calls.load(Ordering::SeqCst), 2);
    let text = std::fs::read_to_string(dir.path().join("notifications.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1);
}

#[derive(Debug)]
struct GroupedAlerts;

impl AlertRouting for GroupedAlerts {
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        vec![RoutedAlert {
            alert: Alert::new(event.clone(), Priority::P0Critical, "burst"),
            notifiers: vec!["pager".into()],
        }]
    }
    fn grouping(&self, _: &RoutedAlert) -> Option<vowguard_core::AlertGrouping> {
        Some(vowguard_core::AlertGrouping {
            key: "planner-17".into(),
            group_wait: Duration::from_secs(3600),
            group_interval: Duration::from_secs(3600),
            repeat_interval: Duration::from_secs(4 * 3600),
            forget_after: Duration::from_secs(24 * 3600),
        })
    }
}

#[derive(Debug, Default)]
struct CountingNotifier {
    alerts: Mutex<Vec<Alert>>,
}

#[async_trait]
impl Notifier for CountingNotifier {
    fn kind(&self) -> &'static str {
        "counting"
    }
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(Receipt::default())
    }
}

#[tokio::test]
async fn a_burst_is_one_grouped_notification_flushed_when_the_input_ends() {
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(CountingNotifier::default());
    let mut s = spec(dir.path(), vec![]);
    s.notifiers
        .push(NotifierSpec::new("pager", notifier.clone()));
    s.router = Some(Arc::new(GroupedAlerts));
    let pipeline = start(s).await;
    let mut durable = Vec::new();
    for i in 0..5 {
        durable.push(
            pipeline
                .submit(event(&format!("burst-{i}")))
                .await
                .unwrap()
                .durable,
        );
    }
    for d in durable {
        d.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        notifier.alerts.lock().unwrap().is_empty(),
        "the group waits for its group_wait (1 h)"
    );
    pipeline.shutdown().await;
    let alerts = notifier.alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "five alerts, one notification");
    assert_eq!(alerts[0].params["group_size"], 5);
    let log = std::fs::read_to_string(dir.path().join("notifications.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(
        record["group_size"], 5,
        "the notification log says how many: {log}"
    );
    assert_eq!(
        alerts[0].event.id, "burst-4",
        "the group's latest alert stands for it"
    );
    // The alert path committed everything: a restart sends nothing again.
    let mut s = spec(dir.path(), vec![]);
    s.notifiers
        .push(NotifierSpec::new("pager", notifier.clone()));
    s.router = Some(Arc::new(GroupedAlerts));
    start(s).await.shutdown().await;
    assert_eq!(notifier.alerts.lock().unwrap().len(), 1);
}

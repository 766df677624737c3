//! A host's `metrics` recorder receives the pipeline's counters, gauges and latency
//! histogram. Its own test binary: the recorder is process-global.

use std::sync::Arc;

use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use vowguard_core::{
    Alert, EncodedEvent, Error, Event, EventOutcome, Notifier, Receipt, Severity, Sink,
};
use vowguard_pipeline::{NotifierSpec, Pipeline, PipelineSpec, SINK_REQUEST_DURATION, SinkSpec};

/// Accepts every alert.
#[derive(Debug)]
struct AcceptingNotifier;

#[async_trait]
impl Notifier for AcceptingNotifier {
    fn kind(&self) -> &'static str {
        "accepting"
    }
    async fn notify(&self, _alert: &Alert) -> Result<Receipt, Error> {
        Ok(Receipt::default())
    }
}

/// Accepts everything.
#[derive(Debug)]
struct AcceptingSink;

#[async_trait]
impl Sink for AcceptingSink {
    fn kind(&self) -> &'static str {
        "accepting"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }
}

type Entry = (
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
);

/// The value of `name` (with the label `key=value`, if given) in `snapshot`.
fn find<'a>(entries: &'a [Entry], name: &str, label: Option<(&str, &str)>) -> Option<&'a Entry> {
    entries.iter().find(|(key, ..)| {
        key.key().name() == name
            && label.is_none_or(|(k, v)| key.key().labels().any(|l| l.key() == k && l.value() == v))
    })
}

#[tokio::test]
async fn a_host_recorder_receives_the_pipelines_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter: Snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder in this test binary");

    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![SinkSpec::new("splunk", Arc::new(AcceptingSink))],
        notifiers: vec![NotifierSpec::new("pager", Arc::new(AcceptingNotifier))],
        ..PipelineSpec::default()
    })
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..5 {
        let mut event = Event::new(
            vowguard_core::Category::Authentication,
            "login",
            Severity::High,
        );
        event.id = format!("e{i}");
        deliveries.push(pipeline.submit(event).await.unwrap());
    }
    for d in deliveries {
        assert_eq!(d.delivery.await.unwrap().delivered, 1);
    }
    // What the periodic publisher does, now (no waiting for its tick).
    pipeline.metrics().emit();

    let entries = snapshotter.snapshot().into_vec();
    let (key, ..) =
        find(&entries, "vowguard_events_received_total", None).expect("events received is emitted");
    assert_eq!(key.kind(), MetricKind::Counter);
    match find(&entries, "vowguard_events_received_total", None) {
        Some((_, _, _, DebugValue::Counter(n))) => assert_eq!(*n, 5),
        other => panic!("{other:?}"),
    }
    match find(
        &entries,
        "vowguard_sink_delivered_total",
        Some(("sink", "splunk")),
    ) {
        Some((_, _, _, DebugValue::Counter(n))) => assert_eq!(*n, 5),
        other => panic!("{other:?}"),
    }
    match find(
        &entries,
        "vowguard_sink_queue_depth",
        Some(("sink", "splunk")),
    ) {
        Some((key, _, _, DebugValue::Gauge(_))) => assert_eq!(key.kind(), MetricKind::Gauge),
        other => panic!("{other:?}"),
    }
    // The alert path's lag, under the name `/metrics` shows (0 without routing).
    match find(&entries, "vowguard_alert_path_lag_events", None) {
        Some((key, _, help, DebugValue::Gauge(v))) => {
            assert_eq!(key.kind(), MetricKind::Gauge);
            assert_eq!(v.into_inner(), 0.0);
            assert!(help.is_some(), "described");
        }
        other => panic!("{other:?}"),
    }
    // Per notifier: notifications waiting for the channel and merged into a waiting one
    // (README: `/metrics`), both described, both 0 here.
    match find(
        &entries,
        "vowguard_notifier_queued",
        Some(("notifier", "pager")),
    ) {
        Some((key, _, help, DebugValue::Gauge(v))) => {
            assert_eq!(key.kind(), MetricKind::Gauge);
            assert_eq!(v.into_inner(), 0.0);
            assert!(help.is_some(), "described");
        }
        other => panic!("{other:?}"),
    }
    match find(
        &entries,
        "vowguard_notifier_coalesced_total",
        Some(("notifier", "pager")),
    ) {
        Some((key, _, help, DebugValue::Counter(n))) => {
            assert_eq!(key.kind(), MetricKind::Counter);
            assert_eq!(*n, 0);
            assert!(help.is_some(), "described");
        }
        other => panic!("{other:?}"),
    }
    // The latency histogram: one sample per request, recorded as it completed.
    match find(&entries, SINK_REQUEST_DURATION, Some(("sink", "splunk"))) {
        Some((_, unit, help, DebugValue::Histogram(samples))) => {
            assert!(!samples.is_empty());
            assert!(samples.iter().all(|s| s.into_inner() >= 0.0));
            assert_eq!(*unit, Some(metrics::Unit::Seconds));
            assert!(help.is_some(), "described");
        }
        other => panic!("{other:?}"),
    }
    let metrics = pipeline.shutdown().await;
    assert_eq!(metrics.sinks["splunk"].delivered, 5);
}

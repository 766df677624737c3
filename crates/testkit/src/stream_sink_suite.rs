//! The behaviour every stream (syslog) sink shows, driven through the real pipeline against
//! a local TCP receiver (octet counting): a batch is delivered; an unreachable receiver ends
//! in dead letters once the retry budget is spent; a receiver that comes up late gets every
//! event exactly once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use vowguard_core::{BatchLimits, RetryPolicy, Sink};
use vowguard_pipeline::{Pipeline, PipelineSpec, SinkSpec};

use crate::fixtures;
use crate::receivers::{syslog_receiver, syslog_receiver_on};

/// How one stream sink is built and how its messages are recognised.
pub trait StreamSinkHarness: Send + Sync + 'static {
    /// The sink's name in failure messages.
    fn name(&self) -> &str;

    /// Builds the sink sending to `address` (`host:port`, TCP, octet counting).
    fn build(&self, address: &str) -> Arc<dyn Sink>;

    /// The event id carried by one received message, if it is one of ours.
    fn event_id(&self, message: &str) -> Option<String>;
}

async fn deliver(sink: Arc<dyn Sink>, n: usize, max_attempts: u32) -> (u64, u64, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = SinkSpec::new("suite", sink);
    spec.batch = BatchLimits::new(50, 1_000_000, std::time::Duration::from_millis(20));
    spec.retry = RetryPolicy::default()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(std::time::Duration::from_millis(20))
        .with_max_backoff(std::time::Duration::from_millis(100))
        .with_max_retry_after(std::time::Duration::from_millis(1_000));
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![spec],
        ..PipelineSpec::default()
    })
    .await
    .expect("pipeline starts");
    for i in 0..n {
        pipeline.submit(fixtures::event(i)).await.expect("submit");
    }
    let metrics = pipeline.shutdown().await;
    let letters =
        std::fs::read_to_string(dir.path().join("dead_letters.jsonl")).unwrap_or_default();
    (
        metrics.sinks["suite"].delivered,
        metrics.sinks["suite"].dead_lettered,
        letters,
    )
}

fn ids<H: StreamSinkHarness>(harness: &H, messages: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .filter_map(|m| harness.event_id(m))
        .collect();
    ids.sort();
    ids
}

/// The ids received so far, once at least `n` have arrived (or after 10 s, whatever
/// arrived: the caller's assertion then says what is missing).
async fn wait_for_ids<H: StreamSinkHarness>(
    harness: &H,
    received: &Arc<Mutex<Vec<String>>>,
    n: usize,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = ids(harness, &received.lock().expect("lock").clone());
        if got.len() >= n || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs every scenario; panics with the sink's name and the scenario on the first failure.
pub async fn run<H: StreamSinkHarness>(harness: H) {
    let name = harness.name().to_owned();
    let expected: Vec<String> = (0..5).map(|i| fixtures::event(i).id).collect();

    // 1. A batch is delivered, every event once.
    let (address, received) = syslog_receiver().await;
    let (delivered, dead, _) = deliver(harness.build(&address), 5, 3).await;
    assert_eq!((delivered, dead), (5, 0), "{name}: delivers a batch");
    let got = wait_for_ids(&harness, &received, expected.len()).await;
    assert_eq!(got, expected, "{name}: the receiver got every event once");

    // 2. An unreachable receiver: retried, then dead-lettered with the reason.
    let refused = crate::RefusedPort::new();
    let closed = refused.address().to_string();
    let (delivered, dead, letters) = deliver(harness.build(&closed), 2, 2).await;
    drop(refused);
    assert_eq!(
        (delivered, dead),
        (0, 2),
        "{name}: unreachable receiver ends in dead letters"
    );
    assert!(
        letters.contains("gave up after 2 attempts"),
        "{name}: dead letter reason: {letters}"
    );

    // 3. The receiver comes up late: every event arrives exactly once.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = reserved.local_addr().expect("addr").to_string();
    drop(reserved);
    let sink = harness.build(&address);
    let sending = tokio::spawn(deliver(sink, 5, 50));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, received) = syslog_receiver_on(&address).await;
    let (delivered, dead, _) = sending.await.expect("pipeline task");
    assert_eq!(
        (delivered, dead),
        (5, 0),
        "{name}: delivered once the receiver is up"
    );
    let got = wait_for_ids(&harness, &received, expected.len()).await;
    assert_eq!(
        got, expected,
        "{name}: every event exactly once after the receiver came up"
    );
}

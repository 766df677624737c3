//! The behaviour every NATS sink shows, driven through the real pipeline against a private
//! `nats-server -js` (see [`crate::nats`]) that requires a user and password.
//!
//! Scenarios: through JetStream a batch is stored once per event with `Nats-Msg-Id` = event
//! id, and a retried publish of the same batch is a success that stores nothing twice;
//! through core NATS a subscriber gets every event; a subject no stream captures is
//! retried, then dead-lettered with the reason; refused credentials are dead-lettered,
//! naming the key, not retried; an unreachable server ends in dead letters after the retry
//! budget; a server that comes back mid-delivery gets every event exactly once; and the
//! password never appears in logs, `Debug` output, outcomes or dead letters.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use vowguard_core::{BatchLimits, EncodedEvent, Event, EventOutcome, RetryPolicy, Sink};
use vowguard_pipeline::{Pipeline, PipelineSpec, SinkSpec};

use crate::nats::NatsServer;
use crate::{LogCapture, fixtures};

/// The user the suite's server accepts.
pub const USER: &str = "suite";

/// How one NATS sink is built.
pub trait NatsSinkHarness: Send + Sync + 'static {
    /// The sink's name in failure messages.
    fn name(&self) -> &str;

    /// The password the server is started with; the suite checks it never leaks.
    fn secret(&self) -> &str {
        "vg-suite-secret-3f9a1c77"
    }

    /// Builds the sink publishing every event to `subject` on `url`, through JetStream
    /// (`jetstream`) or core NATS, authenticating as [`USER`] with `password`.
    fn build(&self, url: &str, subject: &str, jetstream: bool, password: &str) -> Arc<dyn Sink>;
}

struct Run {
    delivered: u64,
    dead_lettered: u64,
    dead_letter_text: String,
}

async fn run_pipeline(sink: Arc<dyn Sink>, events: Vec<Event>, max_attempts: u32) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = SinkSpec::new("suite", sink);
    spec.batch = BatchLimits::new(50, 10_000_000, std::time::Duration::from_millis(20));
    spec.retry = RetryPolicy::default()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(std::time::Duration::from_millis(20))
        .with_max_backoff(std::time::Duration::from_millis(200))
        .with_max_retry_after(std::time::Duration::from_millis(1_000));
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![spec],
        ..PipelineSpec::default()
    })
    .await
    .expect("pipeline starts");
    for event in events {
        pipeline.submit(event).await.expect("submit");
    }
    let metrics = pipeline.shutdown().await;
    Run {
        delivered: metrics.sinks["suite"].delivered,
        dead_lettered: metrics.sinks["suite"].dead_lettered,
        dead_letter_text: std::fs::read_to_string(dir.path().join("dead_letters.jsonl"))
            .unwrap_or_default(),
    }
}

fn events(range: std::ops::Range<usize>) -> Vec<Event> {
    range.map(fixtures::event).collect()
}

async fn admin(server: &NatsServer, password: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(USER.into(), password.into())
        .connect(server.url())
        .await
        .expect("the suite connects to its server")
}

/// The `Nats-Msg-Id` of every message in `stream`, in order.
async fn stored_ids(client: &async_nats::Client, stream: &str) -> Vec<String> {
    let js = jetstream::new(client.clone());
    let mut stream = js.get_stream(stream).await.expect("stream");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut ids = Vec::new();
    for seq in 1..=last {
        if let Ok(message) = stream.get_raw_message(seq).await {
            ids.push(
                message
                    .headers
                    .get(async_nats::header::NATS_MESSAGE_ID)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
            );
        }
    }
    ids
}

fn encoded(sink: &Arc<dyn Sink>, events: &[Event]) -> Vec<EncodedEvent> {
    events
        .iter()
        .map(|e| EncodedEvent {
            event_id: e.id.clone(),
            bytes: sink.encode(e).expect("encodes"),
        })
        .collect()
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// Runs every scenario; panics with the sink's name and the scenario on the first failure.
/// Call it from a `#[tokio::test]` (current-thread) so log capture sees every task.
pub async fn run<H: NatsSinkHarness>(harness: H) {
    let name = harness.name().to_owned();
    let secret = harness.secret().to_owned();
    let logs = LogCapture::start();
    let server = NatsServer::start(&["--user", USER, "--pass", &secret]);
    let url = server.url();
    let client = admin(&server, &secret).await;
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "SUITE".into(),
        subjects: vec!["suite.js.>".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("create the suite's stream");

    // 1. JetStream: one stored message per event, Nats-Msg-Id = event id.
    let sink = harness.build(&url, "suite.js.events", true, &secret);
    let run = run_pipeline(sink.clone(), events(0..5), 3).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (5, 0),
        "{name}: delivers a batch through JetStream"
    );
    assert_eq!(
        stored_ids(&client, "SUITE").await,
        ids(&events(0..5)),
        "{name}: each event stored once, in order, with Nats-Msg-Id = event id"
    );

    // 2. A retried publish (the PubAck was lost, the pipeline sends the batch again) is a
    //    success and stores nothing twice.
    let again = encoded(&sink, &events(0..5));
    let refs: Vec<&EncodedEvent> = again.iter().collect();
    let outcomes = sink.send(&refs).await;
    assert!(
        outcomes.iter().all(EventOutcome::is_delivered),
        "{name}: a retried publish is delivered: {outcomes:?}"
    );
    assert_eq!(
        stored_ids(&client, "SUITE").await.len(),
        5,
        "{name}: a retried publish is deduplicated by Nats-Msg-Id"
    );

    // 3. Core NATS: a subscriber gets every event.
    let mut subscriber = client.subscribe("suite.core.>").await.expect("subscribe");
    client.flush().await.expect("flush");
    let sink = harness.build(&url, "suite.core.events", false, &secret);
    let run = run_pipeline(sink, events(10..14), 3).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (4, 0),
        "{name}: delivers a batch through core NATS"
    );
    let mut got = Vec::new();
    while got.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(10), subscriber.next()).await {
            Ok(Some(message)) => got.push(
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            _ => break,
        }
    }
    assert_eq!(
        got,
        ids(&events(10..14)),
        "{name}: the subscriber got every event"
    );

    // 4. A subject no stream captures: retried, then dead-lettered with the reason.
    let sink = harness.build(&url, "suite.nowhere", true, &secret);
    let run = run_pipeline(sink, events(20..22), 2).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (0, 2),
        "{name}: a subject without a stream ends in dead letters"
    );
    assert!(
        run.dead_letter_text.contains("gave up after 2 attempts")
            && run.dead_letter_text.contains("no JetStream stream"),
        "{name}: the dead letter says why: {}",
        run.dead_letter_text
    );

    // 5. Refused credentials: not retried, dead-lettered naming the credential's key.
    let wrong = format!("{secret}-wrong");
    let sink = harness.build(&url, "suite.js.events", true, &wrong);
    let run = run_pipeline(sink.clone(), events(30..31), 5).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (0, 1),
        "{name}: refused credentials end in a dead letter"
    );
    assert!(
        run.dead_letter_text.contains("refused the credentials")
            && run.dead_letter_text.contains("password")
            && !run.dead_letter_text.contains("gave up after"),
        "{name}: the dead letter names the credential and shows no retry: {}",
        run.dead_letter_text
    );
    assert!(
        !run.dead_letter_text.contains(&wrong) && !format!("{sink:?}").contains(&wrong),
        "{name}: the refused password leaks"
    );

    // 6. An unreachable server ends in dead letters after the retry budget.
    let refused = crate::RefusedPort::new();
    let closed = format!("nats://{}", refused.address());
    let sink = harness.build(&closed, "suite.js.events", true, &secret);
    let run = run_pipeline(sink, events(40..41), 2).await;
    drop(refused);
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (0, 1),
        "{name}: unreachable server"
    );

    // 7. The server is killed and restarted while batches flow: every event stored exactly
    //    once (a publish whose PubAck was lost is sent again with the same Nats-Msg-Id).
    let before = stored_ids(&client, "SUITE").await.len();
    let sink = harness.build(&url, "suite.js.events", true, &secret);
    let sending = tokio::spawn(run_pipeline(sink.clone(), events(100..300), 60));
    // Once the first batch is stored (or the pipeline finished), kill and restart the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stored_ids(&client, "SUITE").await.len() == before
        && !sending.is_finished()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.restart();
        server
    })
    .await
    .expect("restart");
    let run = sending.await.expect("pipeline task");
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (200, 0),
        "{name}: every event delivered across the restart"
    );
    let client = admin(&server, &secret).await;
    let stored = stored_ids(&client, "SUITE").await;
    let mut expected: Vec<String> = ids(&events(0..5));
    expected.extend(ids(&events(100..300)));
    let mut sorted = stored.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(
        (stored.len(), sorted),
        (before + 200, expected),
        "{name}: every event stored exactly once across the restart"
    );

    // 8. The password never leaks.
    let logged = logs.text();
    assert!(
        !logged.contains(&secret),
        "{name}: the password appears in the logs"
    );
    assert!(
        !format!("{sink:?}").contains(&secret),
        "{name}: the password appears in Debug"
    );
    assert!(
        !run.dead_letter_text.contains(&secret),
        "{name}: the password appears in a dead letter"
    );
}

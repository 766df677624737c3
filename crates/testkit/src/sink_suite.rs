//! The behaviour every HTTP sink shows, driven through the real pipeline.
//!
//! Scenarios: a batch is delivered; a 5xx is retried and the batch then accepted exactly
//! once; a 429's `Retry-After` is reported to the pipeline; a permanent failure is dead-lettered with the
//! vendor's reason and not retried; an unreachable endpoint ends in dead letters after the
//! retry budget; a vendor quoting the secret in its error has it removed; and across all of
//! it the secret never appears in logs, `Debug` output, outcomes or dead letters.

use std::sync::Arc;
use std::time::Duration;

use vowguard_core::{BatchLimits, EncodedEvent, Event, EventOutcome, RetryPolicy, Sink};
use vowguard_pipeline::{Pipeline, PipelineSpec, SinkSpec, read_dead_letters};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{LogCapture, fixtures};

/// How one HTTP sink is built and what its vendor answers.
pub trait HttpSinkHarness: Send + Sync + 'static {
    /// The sink's name in failure messages.
    fn name(&self) -> &str;

    /// The credential the sink is built with; the suite checks it never leaks.
    fn secret(&self) -> &str {
        "vg-suite-secret-3f9a1c77"
    }

    /// Builds the sink against `base_url` (a wiremock server) using [`Self::secret`].
    fn build(&self, base_url: &str) -> Arc<dyn Sink>;

    /// The HTTP method and path batches are sent to.
    fn ingest(&self) -> (&'static str, String);

    /// The vendor's answer accepting every event of `request`.
    fn accept(&self, request: &Request) -> ResponseTemplate;

    /// A vendor answer that rejects the request for good.
    fn permanent_failure(&self, request: &Request) -> ResponseTemplate;

    /// Text of the vendor's reason in [`Self::permanent_failure`], expected in dead letters.
    fn permanent_reason(&self) -> &str;

    /// How many events a request body carries (decompressing if needed).
    fn count_events(&self, request: &Request) -> usize;

    /// The vendor's answer refusing the credential `secret` and quoting it, the way the
    /// vendor writes errors, next to [`Self::echo_marker`]. Default: a 401 whose plain-text
    /// body quotes it.
    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_string(format!("{} {secret}", self.echo_marker()))
    }

    /// Text of [`Self::refuse_secret`]'s message expected in the outcome (proving the
    /// vendor's text is kept, minus the secret).
    fn echo_marker(&self) -> &str {
        "invalid credential"
    }

    /// A transient server failure.
    fn server_error(&self) -> ResponseTemplate {
        ResponseTemplate::new(503).set_body_string("busy")
    }

    /// A rate-limit answer asking to wait `seconds`.
    fn rate_limited(&self, seconds: u64) -> ResponseTemplate {
        ResponseTemplate::new(429).insert_header("Retry-After", seconds.to_string().as_str())
    }
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
        .with_initial_backoff(std::time::Duration::from_millis(10))
        .with_max_backoff(std::time::Duration::from_millis(50))
        .with_max_retry_after(std::time::Duration::from_millis(5_000));
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
    let dead_letter_text =
        std::fs::read_to_string(dir.path().join("dead_letters.jsonl")).unwrap_or_default();
    assert_eq!(
        read_dead_letters(&dir.path().join("dead_letters.jsonl"))
            .expect("dead letters parse")
            .len() as u64,
        metrics.sinks["suite"].dead_lettered
    );
    Run {
        delivered: metrics.sinks["suite"].delivered,
        dead_lettered: metrics.sinks["suite"].dead_lettered,
        dead_letter_text,
    }
}

fn events(n: usize) -> Vec<Event> {
    (0..n).map(fixtures::event).collect()
}

async fn mount_accept<H: HttpSinkHarness>(server: &MockServer, harness: &Arc<H>, priority: u8) {
    let (m, p) = harness.ingest();
    let h = harness.clone();
    Mock::given(method(m))
        .and(path(p))
        .respond_with(move |r: &Request| h.accept(r))
        .with_priority(priority)
        .mount(server)
        .await;
}

async fn ingest_requests<H: HttpSinkHarness>(server: &MockServer, harness: &H) -> Vec<Request> {
    let (m, p) = harness.ingest();
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

/// Runs every scenario; panics with the sink's name and the scenario on the first failure.
/// Call it from a `#[tokio::test]` (current-thread) so log capture sees every task.
pub async fn run<H: HttpSinkHarness>(harness: H) {
    let harness = Arc::new(harness);
    let name = harness.name().to_owned();
    let logs = LogCapture::start();

    // 1. A batch is delivered in one request with every event in it.
    let server = MockServer::start().await;
    mount_accept(&server, &harness, 5).await;
    let run = run_pipeline(harness.build(&server.uri()), events(5), 3).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (5, 0),
        "{name}: delivers a batch"
    );
    let requests = ingest_requests(&server, &*harness).await;
    assert_eq!(requests.len(), 1, "{name}: one request for one batch");
    assert_eq!(
        harness.count_events(&requests[0]),
        5,
        "{name}: every event in the request"
    );

    // 2. A 5xx is retried, then the batch is accepted exactly once.
    let server = MockServer::start().await;
    let (m, p) = harness.ingest();
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.server_error())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_accept(&server, &harness, 5).await;
    let run = run_pipeline(harness.build(&server.uri()), events(3), 3).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (3, 0),
        "{name}: 5xx then success"
    );
    let requests = ingest_requests(&server, &*harness).await;
    assert_eq!(requests.len(), 2, "{name}: exactly one retry after a 5xx");
    assert_eq!(
        harness.count_events(&requests[1]),
        3,
        "{name}: the retry carries the batch once"
    );

    // 3. Retry-After: the sink reports the vendor's delay (the pipeline's waiting for it is
    //    tested in vowguard-pipeline on a paused clock), and the batch is then delivered once.
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.rate_limited(1))
        .mount(&server)
        .await;
    let sink = harness.build(&server.uri());
    let event = fixtures::event(0);
    let encoded = EncodedEvent {
        event_id: event.id.clone(),
        bytes: sink.encode(&event).expect("encodes"),
    };
    match sink.send(&[&encoded]).await.pop() {
        Some(EventOutcome::Retry(e)) => assert_eq!(
            e.retry_after(),
            Some(Duration::from_secs(1)),
            "{name}: a 429 carries the vendor's Retry-After: {e}"
        ),
        other => panic!("{name}: a 429 must be retried, got {other:?}"),
    }
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.rate_limited(1))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_accept(&server, &harness, 5).await;
    let run = run_pipeline(harness.build(&server.uri()), events(2), 3).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (2, 0),
        "{name}: 429 then success"
    );
    assert_eq!(
        ingest_requests(&server, &*harness).await.len(),
        2,
        "{name}: one retry after 429"
    );

    // 4. A permanent failure is dead-lettered with the reason and not retried.
    let server = MockServer::start().await;
    let h = harness.clone();
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(move |r: &Request| h.permanent_failure(r))
        .mount(&server)
        .await;
    let run = run_pipeline(harness.build(&server.uri()), events(2), 5).await;
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (0, 2),
        "{name}: permanent failure dead-lettered"
    );
    assert_eq!(
        ingest_requests(&server, &*harness).await.len(),
        1,
        "{name}: a permanent failure is not retried"
    );
    assert!(
        run.dead_letter_text.contains(harness.permanent_reason()),
        "{name}: the dead letter carries the vendor's reason {:?}: {}",
        harness.permanent_reason(),
        run.dead_letter_text
    );

    // 5. An unreachable endpoint ends in dead letters after the retry budget.
    let refused = crate::RefusedPort::new();
    let closed = format!("http://{}", refused.address());
    let sink = harness.build(&closed);
    let run = run_pipeline(sink.clone(), events(1), 2).await;
    drop(refused);
    assert_eq!(
        (run.delivered, run.dead_lettered),
        (0, 1),
        "{name}: unreachable endpoint"
    );

    // 6. A vendor that quotes the secret in its error: the outcome and the dead letter keep
    //    the vendor's reason without the secret.
    let secret = harness.secret();
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.refuse_secret(secret))
        .mount(&server)
        .await;
    let echo_sink = harness.build(&server.uri());
    let event = fixtures::event(0);
    let encoded = EncodedEvent {
        event_id: event.id.clone(),
        bytes: echo_sink.encode(&event).expect("encodes"),
    };
    match echo_sink.send(&[&encoded]).await.pop() {
        Some(EventOutcome::Retry(e) | EventOutcome::Rejected(e)) => {
            let text = format!("{e} {e:?}");
            assert!(
                !text.contains(secret),
                "{name}: the secret appears in an outcome: {text}"
            );
            assert!(
                e.to_string().contains(harness.echo_marker()),
                "{name}: the outcome carries the vendor's reason {:?}: {e}",
                harness.echo_marker()
            );
        }
        other => panic!("{name}: a refused credential is a failure, got {other:?}"),
    }
    let echo_run = run_pipeline(harness.build(&server.uri()), events(1), 2).await;
    assert_eq!(
        (echo_run.delivered, echo_run.dead_lettered),
        (0, 1),
        "{name}: a refused credential ends in a dead letter"
    );
    assert!(
        !echo_run.dead_letter_text.contains(secret),
        "{name}: the secret appears in a dead letter: {}",
        echo_run.dead_letter_text
    );

    // 7. The secret never leaks.
    let logged = logs.text();
    assert!(
        !logged.contains(secret),
        "{name}: the secret appears in the logs:\n{logged}"
    );
    assert!(
        !format!("{sink:?}").contains(secret),
        "{name}: the secret appears in Debug"
    );
    assert!(
        !run.dead_letter_text.contains(secret),
        "{name}: the secret appears in a dead letter"
    );
}

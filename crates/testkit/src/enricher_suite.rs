//! The behaviour every HTTP enricher shows, driven through the real pipeline.
//!
//! Scenario: the vendor refuses the key (401/403) and quotes it in its error message, as
//! AbuseIPDB, VirusTotal and OTX do. The event still reaches the sink, marked not enriched
//! with the vendor's reason, and the key appears in no error, no `not_enriched` reason, no
//! stored event, no dead letter and no log line.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use vowguard_core::{EncodedEvent, Enricher, Error, Event, EventOutcome, Sink};
use vowguard_pipeline::{EnricherSpec, Pipeline, PipelineSpec, SinkSpec};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{LogCapture, fixtures};

/// How one HTTP enricher is built and how its vendor refuses a key.
pub trait HttpEnricherHarness: Send + Sync + 'static {
    /// The enricher's name in failure messages.
    fn name(&self) -> &str;

    /// The API key the enricher is built with; the suite checks it never leaks.
    fn secret(&self) -> &str {
        "vg-suite-secret-3f9a1c77"
    }

    /// Builds the enricher against `base_url` (a wiremock server) using [`Self::secret`].
    fn build(&self, base_url: &str) -> Arc<dyn Enricher>;

    /// The vendor's answer refusing `secret`, quoting it the way the vendor writes errors,
    /// next to [`Self::echo_marker`].
    fn refuse_key(&self, secret: &str) -> ResponseTemplate;

    /// Text of [`Self::refuse_key`]'s message that must reach the `not_enriched` reason (so
    /// the suite proves the vendor's text is kept, minus the key).
    fn echo_marker(&self) -> &str {
        "is not a valid API key"
    }

    /// An event with an indicator the enricher looks up ([`fixtures::event`] by default:
    /// its `source_ip` is public).
    fn event(&self) -> Event {
        fixtures::event(0)
    }
}

/// Keeps every event it is sent.
#[derive(Debug, Default)]
struct CaptureSink {
    events: Mutex<Vec<String>>,
}

#[async_trait]
impl Sink for CaptureSink {
    fn kind(&self) -> &'static str {
        "capture"
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(event).map_err(|e| Error::encode(e.to_string()))
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let mut events = self.events.lock().expect("capture lock");
        for encoded in batch {
            events.push(String::from_utf8_lossy(&encoded.bytes).into_owned());
        }
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// Runs every scenario; panics with the enricher's name and the scenario on the first
/// failure. Call it from a `#[tokio::test]` (current-thread) so log capture sees every task.
pub async fn run<H: HttpEnricherHarness>(harness: H) {
    let name = harness.name().to_owned();
    let secret = harness.secret().to_owned();
    let marker = harness.echo_marker().to_owned();
    let logs = LogCapture::start();

    // 1. Called directly: the error keeps the vendor's reason, not the key.
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(harness.refuse_key(&secret))
        .mount(&server)
        .await;
    let enricher = harness.build(&server.uri());
    let error = enricher
        .enrich(&harness.event())
        .await
        .expect_err("a refused key is an error");
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains(&secret),
        "{name}: the key appears in the error: {text}"
    );
    assert!(
        error.to_string().contains(&marker),
        "{name}: the error carries the vendor's reason {marker:?}: {error}"
    );
    assert!(
        !server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "{name}: the enricher asked the vendor"
    );

    // 2. Through the pipeline: the event is delivered, marked not enriched with the
    //    reason, and the key is nowhere in what was stored or sent.
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(CaptureSink::default());
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![SinkSpec::new("capture", sink.clone())],
        enrichers: vec![EnricherSpec {
            id: "suite".into(),
            enricher: harness.build(&server.uri()),
        }],
        ..PipelineSpec::default()
    })
    .await
    .expect("pipeline starts");
    pipeline.submit(harness.event()).await.expect("submit");
    let _ = pipeline.shutdown().await;
    let delivered = sink.events.lock().expect("capture lock").clone();
    assert_eq!(delivered.len(), 1, "{name}: the event is still delivered");
    let event: Event = serde_json::from_str(&delivered[0]).expect("event JSON");
    let reasons: Vec<&str> = event
        .enrichment
        .not_enriched
        .iter()
        .filter(|n| n.enricher == "suite")
        .map(|n| n.reason.as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains(&marker)),
        "{name}: the not_enriched reason carries the vendor's reason: {reasons:?}"
    );
    assert!(
        !delivered[0].contains(&secret),
        "{name}: the key appears in the delivered event: {}",
        delivered[0]
    );
    for entry in std::fs::read_dir(dir.path()).expect("data dir").flatten() {
        if let Ok(text) = std::fs::read(entry.path()) {
            assert!(
                !String::from_utf8_lossy(&text).contains(&secret),
                "{name}: the key appears in {}",
                entry.path().display()
            );
        }
    }

    // 3. Logs and Debug output.
    let logged = logs.text();
    assert!(
        !logged.contains(&secret),
        "{name}: the key appears in the logs:\n{logged}"
    );
    assert!(
        !format!("{enricher:?}").contains(&secret),
        "{name}: the key appears in Debug"
    );
}

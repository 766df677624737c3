//! Each event's way through the pipeline shows as `tracing` spans carrying its id:
//! enrichment (and each enricher), the journal, each sink (request and event) and each
//! notifier. Its own test binary: the subscriber is process-global.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};
use vowguard_core::{
    Alert, AlertRouting, Category, EncodedEvent, Enricher, Enrichment, Error, Event, EventOutcome,
    Notifier, Priority, Receipt, RoutedAlert, Severity, Sink,
};
use vowguard_pipeline::{
    EnricherSpec, NotifierSpec, Pipeline, PipelineSpec, SinkSpec, TRACE_TARGET,
};

/// A closed span: its name and fields.
#[derive(Debug, Clone)]
struct Closed {
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<&'static str>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records the pipeline's spans when they close.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Closed>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(ext.get_mut::<Fields>().unwrap());
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        if span.metadata().target() != TRACE_TARGET {
            return;
        }
        let fields = span.extensions_mut().remove::<Fields>().unwrap().0;
        self.0.lock().unwrap().push(Closed {
            name: span.name(),
            fields,
            parent: span.parent().map(|p| p.name()),
        });
    }
}

#[derive(Debug)]
struct Accepting;

#[async_trait]
impl Sink for Accepting {
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

#[derive(Debug)]
struct Answering;

#[async_trait]
impl Enricher for Answering {
    fn kind(&self) -> &'static str {
        "answering"
    }
    async fn enrich(&self, _: &Event) -> Result<Enrichment, Error> {
        Ok(Enrichment::default())
    }
}

#[derive(Debug)]
struct Paging;

#[async_trait]
impl Notifier for Paging {
    fn kind(&self) -> &'static str {
        "paging"
    }
    async fn notify(&self, _: &Alert) -> Result<Receipt, Error> {
        Ok(Receipt::default())
    }
}

/// Alerts on critical events only.
#[derive(Debug)]
struct CriticalAlerts;

impl AlertRouting for CriticalAlerts {
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        if event.severity != Severity::Critical {
            return Vec::new();
        }
        vec![RoutedAlert {
            alert: Alert::new(event.clone(), Priority::P0Critical, "critical"),
            notifiers: vec!["pager".into()],
        }]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_has_a_span_with_the_event_id() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(Registry::default().with(recorder.clone()))
        .expect("no other subscriber in this test binary");

    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![SinkSpec::new("siem", Arc::new(Accepting))],
        enrichers: vec![EnricherSpec {
            id: "intel".into(),
            enricher: Arc::new(Answering),
        }],
        notifiers: vec![NotifierSpec::new("pager", Arc::new(Paging))],
        router: Some(Arc::new(CriticalAlerts)),
        ..PipelineSpec::default()
    })
    .await
    .unwrap();
    for (id, severity) in [
        ("evt-quiet", Severity::Info),
        ("evt-loud", Severity::Critical),
    ] {
        let mut event = Event::new(Category::Authentication, "login", severity);
        event.id = id.into();
        let submitted = pipeline.submit(event).await.unwrap();
        assert_eq!(submitted.delivery.await.unwrap().delivered, 1);
    }
    pipeline.shutdown().await;

    let spans = recorder.0.lock().unwrap().clone();
    let of = |name: &str, event: &str| -> Vec<Closed> {
        spans
            .iter()
            .filter(|s| {
                s.name == name && s.fields.get("event_id").map(String::as_str) == Some(event)
            })
            .cloned()
            .collect()
    };
    for event in ["evt-quiet", "evt-loud"] {
        assert_eq!(of("enrich", event).len(), 1, "{event}: {spans:#?}");
        let enricher = of("enricher", event);
        assert_eq!(enricher.len(), 1, "{event}: {spans:#?}");
        assert_eq!(enricher[0].fields["enricher"], "intel");
        assert_eq!(enricher[0].fields["outcome"], "answered");
        assert_eq!(enricher[0].parent, Some("enrich"));
        // Raw into the intake journal, enriched into the events journal.
        let journals: Vec<String> = of("journal", event)
            .iter()
            .map(|s| s.fields["journal"].clone())
            .collect();
        assert!(
            journals.iter().any(|j| j == "intake"),
            "{event}: {spans:#?}"
        );
        assert!(
            journals.iter().any(|j| j == "events"),
            "{event}: {spans:#?}"
        );
        assert!(
            of("journal", event)
                .iter()
                .all(|s| s.fields.contains_key("seq"))
        );
        let sink = of("sink.event", event);
        assert_eq!(sink.len(), 1, "{event}: {spans:#?}");
        assert_eq!(sink[0].fields["sink"], "siem");
        assert_eq!(sink[0].fields["outcome"], "delivered");
        assert_eq!(sink[0].parent, Some("sink.send"));
    }
    assert!(of("notify", "evt-quiet").is_empty());
    let notify = of("notify", "evt-loud");
    assert_eq!(notify.len(), 1, "{spans:#?}");
    assert_eq!(notify[0].fields["notifier"], "pager");
    assert_eq!(notify[0].fields["route"], "critical");
    assert_eq!(notify[0].fields["delivered"], "true");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "sink.send" && s.fields["sink"] == "siem"),
        "{spans:#?}"
    );
}

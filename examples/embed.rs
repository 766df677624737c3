//! Embedding vowguard in a host service: `cargo run --example embed`.
//!
//! A host (here: the wedding platform's account service) builds the pipeline in code, with
//! no TOML and no `vowguard` binary: a Splunk HEC sink, a Slack notifier, the router with
//! the wedding-day protocols, its own enricher (its wedding calendar tells which weddings
//! happen today) and its own [`ActionHook`], which hands the protocol's requests
//! (`lock_accounts`, ...) to a task of the host. The host also installs its own `metrics`
//! recorder and reads vowguard's counters from it, as it would for its own.
//!
//! Splunk and Slack are local mocks on 127.0.0.1: no network, no credentials. The example
//! prints what each endpoint received, which route sent each alert, what the hook was
//! asked to do, and the metrics the host's recorder saw. `tests/embed.rs` runs the same
//! code and checks all of it.
#![allow(clippy::print_stdout, missing_docs, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::Value;
use tokio::sync::mpsc;
use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    Category, Enricher, Enrichment, Error, Event, Outcome, Season, Severity, WeddingContext,
    WeddingPhase,
};
use vowguard_pipeline::{
    EnricherSpec, NotificationRecord, NotifierSpec, Pipeline, PipelineSpec, SinkSpec,
};
use vowguard_router::{ActionHook, RequestedAction, RouteConfig, Router, RouterConfig};
use vowguard_slack::SlackNotifier;
use vowguard_splunk::SplunkHecSink;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The host's own action hook: routing calls it synchronously and it must not block, so it
/// only queues the request for the host's account-service task.
#[derive(Debug)]
pub struct AccountServiceHook {
    requests: mpsc::UnboundedSender<RequestedAction>,
}

impl ActionHook for AccountServiceHook {
    fn request(&self, action: &RequestedAction) {
        // A closed channel means the host is shutting down; the router carries on.
        let _ = self.requests.send(action.clone());
    }
}

/// The host's wedding calendar as an enricher: which wedding an event touches and how
/// close it is (the router's wedding-day protocols read it).
#[derive(Debug)]
pub struct HostCalendar;

#[async_trait]
impl Enricher for HostCalendar {
    fn kind(&self) -> &'static str {
        "host_calendar"
    }
    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error> {
        let mut enrichment = Enrichment::default();
        if event.wedding_id.as_deref() == Some("w-2026-06-20-smith") {
            enrichment.wedding = Some(WeddingContext {
                wedding_id: "w-2026-06-20-smith".into(),
                date: NaiveDate::from_ymd_opt(2026, 6, 20).expect("a date"),
                timezone: "Europe/London".into(),
                phase: WeddingPhase::DayOf,
                days_until: 0,
                weekend: true,
                season: Season::Summer,
                guest_count: Some(212),
                vendor_count: Some(9),
            });
        }
        Ok(enrichment)
    }
}

/// What happened, as the host saw it.
#[derive(Debug)]
pub struct HostReport {
    /// The events Splunk received (the HEC envelopes).
    pub splunk_events: Vec<Value>,
    /// The messages Slack received.
    pub slack_messages: Vec<Value>,
    /// The pipeline's notification log: one record per alert and channel.
    pub notifications: Vec<NotificationRecord>,
    /// What the router asked the host's hook to do.
    pub actions: Vec<RequestedAction>,
    /// Accounts the host's account service locked in response.
    pub locked_accounts: Vec<String>,
    /// Sinks that delivered each submitted event, by event id.
    pub delivered: BTreeMap<String, usize>,
    /// Counters and gauges the host's own `metrics` recorder received from vowguard,
    /// by metric name and labels.
    pub host_metrics: BTreeMap<String, f64>,
}

/// The host's recorder; install it once per process, before the pipeline starts.
pub fn install_host_recorder() -> Snapshotter {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the host installs its metrics recorder once, before vowguard starts");
    snapshotter
}

/// An event as the host's services produce it.
fn event(id: &str, category: Category, action: &str, severity: Severity) -> Event {
    let mut event = Event::new(category, action, severity);
    event.id = id.to_owned();
    // A Saturday in June: the wedding-day protocols are in force.
    event.timestamp = Utc.with_ymd_and_hms(2026, 6, 20, 11, 30, 0).unwrap();
    event
}

fn scenario() -> Vec<Event> {
    let mut view = event(
        "evt-rsvp-view",
        Category::DataAccess,
        "rsvp.view",
        Severity::Info,
    );
    view.user_id = Some("guest-204".into());

    let mut brute = event(
        "evt-brute-force",
        Category::Authentication,
        "login",
        Severity::High,
    );
    brute.outcome = Outcome::Failure;
    brute.user_id = Some("planner-17".into());
    brute.source_ip = Some("203.0.113.7".parse().unwrap());
    brute.message = Some("12 failed logins in 48s from one address".into());

    // A taken-over planner account exports the guest list of a wedding happening today:
    // active wedding protection makes it a P0 and asks the host to act.
    let mut export = event(
        "evt-guest-export",
        Category::DataExport,
        "guest_list.export",
        Severity::Critical,
    );
    export.user_id = Some("planner-17".into());
    export.wedding_id = Some("w-2026-06-20-smith".into());
    export.record_count = Some(212);
    // Event text is attacker-controlled: Slack must show this, not page the channel.
    export.message = Some("212 guest records exported <!channel>".into());
    vec![view, brute, export]
}

/// Runs the host: mocks, pipeline, events, shutdown. `snapshotter` reads the host's
/// recorder (see [`install_host_recorder`]).
pub async fn run_host(snapshotter: &Snapshotter) -> Result<HostReport, Box<dyn std::error::Error>> {
    // Local stand-ins for Splunk HEC and a Slack incoming webhook.
    let splunk = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&splunk)
        .await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T0/B0/secops"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;

    // The secrets come from the host's own secret store, resolved already.
    let hec_token = SecretString::from("host-resolved-hec-token");
    let webhook = SecretString::from(format!("{}/services/T0/B0/secops", slack.uri()));

    // Each connector has a builder that takes the resolved secret directly.
    let splunk_sink = SplunkHecSink::builder(splunk.uri())
        .token(hec_token)
        .index("wedding-security")
        .build()?;
    let slack_notifier = SlackNotifier::builder().webhook_url(webhook).build()?;

    // Routes in code: high and critical events page #secops at once. The protocols
    // (Saturday escalation, active wedding protection, guest data breach) keep their
    // defaults; their extra notifier ids (`oncall`, `legal`) are not configured here, so
    // they are skipped.
    let route = RouteConfig::new("security")
        .matchers([r#"severity=~"high|critical""#])
        .notify(["secops"])
        .param("channel", "#security")
        .group_wait(Duration::ZERO);
    let (requests, mut requested) = mpsc::unbounded_channel();
    let router = Router::from_config(
        RouterConfig::default().with_routes(vec![route]),
        &["secops"],
    )?
    .with_action_hook(Arc::new(AccountServiceHook { requests }));

    // The host's account service: carries out what the hook queued.
    let account_service = tokio::spawn(async move {
        let mut actions = Vec::new();
        let mut locked = Vec::new();
        while let Some(action) = requested.recv().await {
            if action.action == "lock_accounts" {
                locked.extend(action.user_ids.iter().cloned());
            }
            actions.push(action);
        }
        (actions, locked)
    });

    let data_dir = tempfile::tempdir()?;
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: data_dir.path().to_owned(),
        sinks: vec![SinkSpec::new("splunk", Arc::new(splunk_sink))],
        enrichers: vec![EnricherSpec {
            id: "calendar".into(),
            enricher: Arc::new(HostCalendar),
        }],
        notifiers: vec![NotifierSpec::new("secops", Arc::new(slack_notifier))],
        router: Some(Arc::new(router)),
        ..PipelineSpec::default()
    })
    .await?;

    let mut delivered = BTreeMap::new();
    for event in scenario() {
        let id = event.id.clone();
        let submitted = pipeline.submit(event).await?;
        submitted.durable.await?;
        let summary = submitted
            .delivery
            .await
            .ok_or("the pipeline stopped before the event was delivered")?;
        delivered.insert(id, summary.delivered);
    }
    let notifications = pipeline.notifications();
    // Drains: every alert is dispatched before this returns. Dropping the pipeline
    // (and with it the router and its hook) closes the account service's queue.
    let last = pipeline
        .shutdown_within(Some(Duration::from_secs(30)))
        .await;
    // Publish the final gauges now rather than waiting for a periodic tick.
    last.emit();
    let host_metrics = read_host_metrics(snapshotter);
    let (actions, locked_accounts) = account_service.await?;

    let body = |r: &wiremock::Request| serde_json::from_slice::<Value>(&r.body).ok();
    let splunk_events = splunk
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .flat_map(|r| {
            // HEC takes concatenated JSON objects in one body.
            serde_json::Deserializer::from_slice(&r.body)
                .into_iter::<Value>()
                .filter_map(Result::ok)
                .collect::<Vec<_>>()
        })
        .collect();
    let slack_messages = slack
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(body)
        .collect();
    Ok(HostReport {
        splunk_events,
        slack_messages,
        notifications: notifications.recent(),
        actions,
        locked_accounts,
        delivered,
        host_metrics,
    })
}

/// Counters and gauges from the host's recorder, keyed `name{label=value,...}`.
fn read_host_metrics(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.key().name().to_owned()
        } else {
            format!("{}{{{}}}", key.key().name(), labels.join(","))
        };
        let number = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        out.insert(name, number);
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let snapshotter = install_host_recorder();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run_host(&snapshotter))?;

    println!("Delivered to Splunk (sinks per event)");
    for (id, sinks) in &report.delivered {
        println!("  {id:<18} {sinks}");
    }
    println!("\nSplunk received {} events", report.splunk_events.len());
    for e in &report.splunk_events {
        println!(
            "  index={} action={} severity={}",
            e["index"].as_str().unwrap_or("-"),
            e["event"]["action"].as_str().unwrap_or("-"),
            e["event"]["severity"].as_str().unwrap_or("-"),
        );
    }
    println!("\nAlerts (route -> channel)");
    for n in &report.notifications {
        println!(
            "  {:<18} {:?} via route {:?} to {}: {}",
            n.event_id,
            n.priority,
            n.route,
            n.notifier,
            if n.delivered { "delivered" } else { "failed" }
        );
    }
    println!("\nSlack received {} messages", report.slack_messages.len());
    for m in &report.slack_messages {
        println!("  {}", m["text"].as_str().unwrap_or("(blocks only)"));
    }
    println!("\nThe host's action hook was asked to");
    for a in &report.actions {
        println!(
            "  {:<28} event {} users {:?}",
            a.action, a.event_id, a.user_ids
        );
    }
    println!("  -> locked accounts: {:?}", report.locked_accounts);
    println!("\nvowguard metrics in the host's own recorder");
    for (name, value) in report.host_metrics.iter().filter(|(name, _)| {
        name.starts_with("vowguard_events_")
            || name.starts_with("vowguard_sink_delivered")
            || name.starts_with("vowguard_notifier_sent")
    }) {
        println!("  {name} = {value}");
    }
    Ok(())
}

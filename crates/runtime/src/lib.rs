//! The vowguard runtime: configuration in, running pipeline out.
//!
//! * [`config`]: the TOML file (components keyed by id with `type`, secrets by reference).
//! * [`assemble`](mod@assemble): builds every component through the connector registry and reports all
//!   configuration errors at once.
//! * [`source`]: the stdin NDJSON source; `nats_source` (feature `nats`): the NATS source.
//! * [`run`]: starts the pipeline, feeds it from the sources and drains it.
//!
//! Connectors are chosen by cargo features (one per connector, all on by default). rustc
//! links only crates that are referenced, so every enabled connector crate is named below;
//! its `inventory` registration then lands in the binary.

pub mod assemble;
pub mod audit;
pub mod breach_api;
pub mod breach_watch;
pub mod cluster;
pub mod cluster_state;
pub mod config;
pub mod console;
pub mod deprecated;
pub mod dlq;
pub mod logging;
#[cfg(feature = "nats")]
pub mod nats_source;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod progress;
pub mod reports;
pub mod response_api;
pub mod response_cli;
pub mod server;
pub mod source;
pub mod telemetry;
pub mod top;
pub mod vulns;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use tokio::io::BufReader;
use vowguard_core::Error;
use vowguard_pipeline::{MetricsSnapshot, Pipeline};
#[cfg(feature = "tenable")]
use vowguard_tenable as _;

pub use assemble::{Assembly, Environment, HostStorage, RoutesInEffect, assemble, assemble_with};
pub use config::{Config, SourceConfig};
pub use source::SourceStats;

#[cfg(feature = "abuseipdb")]
use vowguard_abuseipdb as _;
#[cfg(feature = "arcsight")]
use vowguard_arcsight as _;
#[cfg(feature = "datadog")]
use vowguard_datadog as _;
#[cfg(feature = "elasticsearch")]
use vowguard_elasticsearch as _;
#[cfg(feature = "email")]
use vowguard_email as _;
#[cfg(feature = "jira")]
use vowguard_jira as _;
#[cfg(feature = "misp")]
use vowguard_misp as _;
#[cfg(feature = "openvas")]
use vowguard_openvas as _;
#[cfg(feature = "otx")]
use vowguard_otx as _;
#[cfg(feature = "pagerduty")]
use vowguard_pagerduty as _;
#[cfg(feature = "qradar")]
use vowguard_qradar as _;
#[cfg(feature = "qualys")]
use vowguard_qualys as _;
#[cfg(feature = "recorded_future")]
use vowguard_recorded_future as _;
#[cfg(feature = "servicenow")]
use vowguard_servicenow as _;
#[cfg(feature = "slack")]
use vowguard_slack as _;
#[cfg(feature = "sms")]
use vowguard_sms as _;
#[cfg(feature = "soar")]
use vowguard_soar as _;
#[cfg(feature = "splunk")]
use vowguard_splunk as _;
#[cfg(feature = "teams")]
use vowguard_teams as _;
#[cfg(feature = "thehive")]
use vowguard_thehive as _;
#[cfg(feature = "threatconnect")]
use vowguard_threatconnect as _;
#[cfg(feature = "virustotal")]
use vowguard_virustotal as _;
#[cfg(feature = "wedding")]
use vowguard_wedding as _;

/// The connector kinds this build was compiled with, by cargo feature.
pub fn enabled_connector_kinds() -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if cfg!(feature = "splunk") {
        kinds.push("splunk_hec");
    }
    if cfg!(feature = "elasticsearch") {
        kinds.push("elasticsearch");
    }
    if cfg!(feature = "datadog") {
        kinds.push("datadog_logs");
    }
    if cfg!(feature = "slack") {
        kinds.push("slack");
    }
    if cfg!(feature = "otx") {
        kinds.push("otx");
    }
    if cfg!(feature = "virustotal") {
        kinds.push("virustotal");
    }
    if cfg!(feature = "recorded_future") {
        kinds.push("recorded_future");
    }
    if cfg!(feature = "threatconnect") {
        kinds.push("threatconnect");
    }
    if cfg!(feature = "abuseipdb") {
        kinds.push("abuseipdb");
    }
    if cfg!(feature = "misp") {
        kinds.push("misp");
    }
    if cfg!(feature = "wedding") {
        kinds.push("wedding_context");
        kinds.push("attack_patterns");
    }
    if cfg!(feature = "qradar") {
        kinds.push("qradar");
    }
    if cfg!(feature = "arcsight") {
        kinds.push("arcsight");
    }
    if cfg!(feature = "email") {
        kinds.push("email");
    }
    if cfg!(feature = "sms") {
        kinds.push("sms");
    }
    if cfg!(feature = "teams") {
        kinds.push("teams");
    }
    if cfg!(feature = "pagerduty") {
        kinds.push("pagerduty");
    }
    if cfg!(feature = "thehive") {
        kinds.push("thehive");
    }
    if cfg!(feature = "soar") {
        kinds.push("soar_webhook");
    }
    if cfg!(feature = "jira") {
        kinds.push("jira");
    }
    if cfg!(feature = "servicenow") {
        kinds.push("servicenow");
    }
    if cfg!(feature = "openvas") {
        kinds.push("openvas");
    }
    if cfg!(feature = "qualys") {
        kinds.push("qualys");
    }
    if cfg!(feature = "tenable") {
        kinds.push("tenable");
        kinds.push("nessus_file");
    }
    if cfg!(feature = "nats") {
        kinds.push("nats");
    }
    kinds
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What the sources read.
    pub source: SourceStats,
    /// Final pipeline counters.
    pub metrics: MetricsSnapshot,
}

/// Runs the configured source until it ends or `stop` completes, then drains.
///
/// * `stdin`: reads standard input until it ends, then waits until every accepted event is
///   delivered or dead-lettered and every alert dispatched.
/// * `http`: serves `POST /v1/events` (and `/health`, `/metrics`) until `stop`, then lets
///   in-flight deliveries finish within `pipeline.shutdown_timeout`; what is left stays
///   in the journal for the next start.
pub async fn run(
    assembly: Assembly,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<RunReport, Error> {
    // Boxed: the runs hold every component's state, too large for a caller's stack frame.
    if matches!(assembly.sources.as_slice(), [(_, SourceConfig::Http {})]) {
        return Box::pin(run_server(assembly, stop)).await;
    }
    #[cfg(feature = "nats")]
    if matches!(assembly.sources.as_slice(), [(_, SourceConfig::Nats(_))]) {
        return Box::pin(run_nats(assembly, stop)).await;
    }
    let input = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    Box::pin(run_with_input(assembly, input, stop)).await
}

/// Serves the HTTP source until `stop`.
async fn run_server(
    assembly: Assembly,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<RunReport, Error> {
    let settings = assembly
        .server
        .as_ref()
        .ok_or_else(|| Error::config("an http source needs a `[server]` table"))?;
    // First: a replay guard that cannot be opened stops the start before anything runs.
    let replay_guards = webhooks::ReplayGuards::open(assembly.webhooks, &assembly.data_dir)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {}", settings.listen), e))?;
    let max_body_bytes = settings.max_body_bytes;
    let admin_token = settings.admin_token.clone();
    let sinks = assembly
        .spec
        .sinks
        .iter()
        .map(|s| (s.id.clone(), s.sink.clone()))
        .collect();
    let notifiers = assembly
        .spec
        .notifiers
        .iter()
        .map(|n| (n.id.clone(), n.notifier.clone()))
        .collect();
    let router: Arc<dyn vowguard_core::AlertRouting> = assembly.router.clone();
    let audit_log = assembly.audit.open(&assembly.data_dir).await?;
    assembly.response_audit.bind_log(&audit_log);
    if let Some(engine) = &assembly.response {
        if assembly.cluster.is_some() {
            // Runs wait for the cluster's run claims (set once NATS is reached).
            engine.await_coordination();
        }
        engine.start();
    }
    let breach_recorder = assembly
        .breaches
        .start(reports::breach_trail(&audit_log, &assembly.data_dir));
    // The report store is optional for forwarding: when it cannot be opened the pipeline
    // runs anyway and /api/reports answers 503 with the reason.
    let access = if assembly.audit.config.enabled {
        reports::AuditAccess::Merkle {
            writer: audit_log.clone(),
        }
    } else {
        reports::AuditAccess::Interim
    };
    let reports = match reports::open_with(
        &assembly.store,
        &assembly.data_dir,
        assembly.dpo_contact.clone(),
        access,
        assembly.breach_storage.clone(),
    )
    .await
    {
        Ok(reports) => Ok(Arc::new(reports)),
        Err(e) => {
            tracing::warn!(error = %e, "report store unavailable; /api/reports answers 503");
            Err(e.to_string())
        }
    };
    let response_api = response_api::router(assembly.response.clone(), admin_token.clone());
    let pipeline_audit = audit_log.as_ref().map(|l| audit::pipeline_audit(l, "http"));
    // Before the pipeline starts, so its latency histogram registers with the exporter.
    telemetry::exporter();
    let console_sinks = assembly.spec.sinks.clone();
    let vulns = vulns::start(assembly.vulns.as_ref(), &assembly.data_dir).await;
    let (spec, cluster_parts) = cluster_parts(
        assembly.spec,
        assembly.cluster,
        &assembly.router,
        assembly.response.as_ref(),
    );
    let pipeline = Arc::new(Pipeline::start_with_audit(spec, pipeline_audit).await?);
    let cluster = Box::pin(start_cluster(cluster_parts, &pipeline)).await?;
    let webhooks = replay_guards
        .start(pipeline.clone(), assembly.response.clone())
        .map(|intake| Arc::new(intake.with_cluster(cluster.clone())));
    let state = Arc::new(server::ServerState {
        pipeline: pipeline.clone(),
        accepted: Default::default(),
        rejected: Default::default(),
        admin_token,
        sinks,
        notifiers,
        router,
        reports,
        webhooks,
        cluster: cluster.clone(),
        source: None,
    });
    // The store follows the audit log (catching up after an outage) until the server stops.
    let (follow_stop, follow_stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = state.reports.as_ref().ok().map(|reports| {
        let reports = reports.clone();
        tokio::spawn(async move {
            reports
                .store
                .follow(
                    reports.source.clone(),
                    std::time::Duration::from_secs(5),
                    Arc::new(tokio::sync::Notify::new()),
                    async {
                        let _ = follow_stopped.await;
                    },
                )
                .await;
        })
    });
    // Confirmed breaches whose notification deadline approaches become escalation events.
    let (watch_stop, watch_stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = state.reports.as_ref().ok().map(|reports| {
        let storage = reports.register.storage().clone();
        let source = reports.source.clone();
        let pipeline = pipeline.clone();
        let data_dir = assembly.data_dir.clone();
        tokio::spawn(async move {
            breach_watch::watch(storage, source, pipeline, &data_dir, async {
                let _ = watch_stopped.await;
            })
            .await;
        })
    });
    tracing::info!(listen = %settings.listen, data_dir = %assembly.data_dir.display(), "vowguard started; serving POST /v1/events");
    let served = axum::serve(
        listener,
        server::router(state.clone(), max_body_bytes)
            .merge(response_api)
            .merge(breach_api::router(
                state.reports.clone(),
                state.admin_token.clone(),
            ))
            .merge(cluster::router(cluster.clone(), state.admin_token.clone()))
            .merge(
                console::Console::new(
                    state.clone(),
                    assembly.response.clone(),
                    console_sinks,
                    audit_log.clone(),
                    assembly.data_dir.clone(),
                )
                .router(),
            ),
    )
    .with_graceful_shutdown(stop)
    .await
    .map_err(|e| Error::io("the HTTP server failed", e));
    if let Some(cluster) = &cluster {
        // Batches in flight are settled; what is left stays in the stream for the others.
        Box::pin(cluster.shutdown(assembly.shutdown_timeout)).await;
    }
    let _ = follow_stop.send(());
    let _ = watch_stop.send(());
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    if let Some(follower) = follower {
        let _ = follower.await;
    }
    drop(vulns);
    served?;
    let source = SourceStats {
        lines: 0,
        accepted: state.accepted.load(std::sync::atomic::Ordering::Relaxed),
        rejected: state.rejected.load(std::sync::atomic::Ordering::Relaxed),
        stopped: true,
    };
    drop(state);
    let pipeline = reclaim_pipeline(pipeline).await?;
    tracing::info!(
        timeout_ms = assembly.shutdown_timeout.as_millis() as u64,
        "server stopped; draining in-flight deliveries (undelivered events stay in the journal)"
    );
    let metrics = pipeline
        .shutdown_within(Some(assembly.shutdown_timeout))
        .await;
    // Before the audit log closes: every timeline entry the engine writes is audited.
    if let Some(engine) = &assembly.response {
        engine.shutdown(assembly.shutdown_timeout).await;
    }
    if let Some(recorder) = breach_recorder {
        recorder.finish().await;
    }
    audit::close(audit_log).await;
    Ok(RunReport { source, metrics })
}

/// Takes the pipeline back once the HTTP server stopped. Connection tasks can outlive the
/// graceful shutdown by a moment; they get a few seconds.
async fn reclaim_pipeline(mut pipeline: Arc<Pipeline>) -> Result<Pipeline, Error> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Arc::try_unwrap(pipeline) {
            Ok(pipeline) => return Ok(pipeline),
            Err(shared) if tokio::time::Instant::now() < deadline => {
                pipeline = shared;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(_) => {
                return Err(Error::internal(
                    "HTTP connections still hold the pipeline 5 s after the server stopped",
                ));
            }
        }
    }
}

/// The HTTP server of a `nats` run with `[server]`: `/health`, `/metrics`, the admin API
/// (SIEM and routing tests, playbooks and incidents, `GET /api/cluster/status`) on
/// `state`; no intake routes.
#[cfg(feature = "nats")]
fn serve_monitoring(
    listener: tokio::net::TcpListener,
    settings: &assemble::ServerSettings,
    state: &Arc<server::ServerState>,
    response: Option<vowguard_response::ResponseEngine>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    let app = server::monitoring_router(state.clone(), settings.max_body_bytes)
        .merge(response_api::router(response, state.admin_token.clone()))
        .merge(cluster::router(
            state.cluster.clone(),
            state.admin_token.clone(),
        ));
    let listen = settings.listen;
    tracing::info!(%listen, "serving /health, /metrics and the admin API");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| Error::io(format!("the HTTP server on {listen} failed"), e))
    })
}

/// On the jetstream backend the sinks run from the stream, not from the local pipeline:
/// they are taken out of `spec` and handed to the cluster with the notifiers and router.
fn cluster_parts(
    mut spec: vowguard_pipeline::PipelineSpec,
    setup: Option<cluster::ClusterSetup>,
    router: &Arc<vowguard_router::Router>,
    response: Option<&vowguard_response::ResponseEngine>,
) -> (
    vowguard_pipeline::PipelineSpec,
    Option<(cluster::ClusterSetup, ClusterWorkers)>,
) {
    let Some(setup) = setup else {
        return (spec, None);
    };
    let sinks = std::mem::take(&mut spec.sinks);
    // The enrichers run on the stream (the `_enrich` consumer), not in the local pipeline.
    let enrichers = std::mem::take(&mut spec.enrichers);
    let router_impl = router;
    let router: Arc<dyn vowguard_core::AlertRouting> = match &spec.router {
        Some(router) => router.clone(),
        None => Arc::new(vowguard_router::Router::default()),
    };
    let alerts = cluster::AlertSetup {
        router,
        notifiers: spec.notifiers.clone(),
        inhibition: spec.router.is_some().then(|| router_impl.clone()),
        response: response.cloned(),
    };
    let workers = ClusterWorkers {
        sinks,
        enrichers,
        options: spec.options,
        alerts,
    };
    (spec, Some((setup, workers)))
}

/// What the cluster's workers are built from, taken out of the local pipeline's spec.
struct ClusterWorkers {
    sinks: Vec<vowguard_pipeline::SinkSpec>,
    enrichers: Vec<vowguard_pipeline::EnricherSpec>,
    /// The enrichment budget, concurrency and breakers (`[pipeline]`).
    options: vowguard_pipeline::PipelineOptions,
    alerts: cluster::AlertSetup,
}

async fn start_cluster(
    parts: Option<(cluster::ClusterSetup, ClusterWorkers)>,
    pipeline: &Pipeline,
) -> Result<Option<Arc<cluster::Cluster>>, Error> {
    let Some((setup, workers)) = parts else {
        return Ok(None);
    };
    let enrichers = vowguard_pipeline::Enrichers::new(workers.enrichers, &workers.options)?;
    let cluster = cluster::Cluster::start(
        setup,
        workers.sinks,
        enrichers,
        workers.alerts,
        pipeline.dead_letters().clone(),
    )
    .await?;
    Ok(Some(cluster))
}

/// [`run`] with any input in place of standard input (for tests and embedding).
pub async fn run_with_input<R>(
    assembly: Assembly,
    input: R,
    stop: impl Future<Output = ()>,
) -> Result<RunReport, Error>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let (source_id, max_line_bytes) = match assembly.source()? {
        (id, SourceConfig::Stdin { max_line_bytes }) => (id.to_owned(), *max_line_bytes),
        (id, SourceConfig::Http {}) => {
            return Err(Error::config(format!(
                "`sources.{id}` is an http source; use `run`"
            )));
        }
        #[cfg(feature = "nats")]
        (id, SourceConfig::Nats(_)) => {
            return Err(Error::config(format!(
                "`sources.{id}` is a nats source; use `run`"
            )));
        }
    };
    let shutdown_timeout = assembly.shutdown_timeout;
    let audit_log = assembly.audit.open(&assembly.data_dir).await?;
    assembly.response_audit.bind_log(&audit_log);
    if let Some(engine) = &assembly.response {
        if assembly.cluster.is_some() {
            // Runs wait for the cluster's run claims (set once NATS is reached).
            engine.await_coordination();
        }
        engine.start();
    }
    let breach_recorder = assembly
        .breaches
        .start(reports::breach_trail(&audit_log, &assembly.data_dir));
    let pipeline_audit = audit_log
        .as_ref()
        .map(|l| audit::pipeline_audit(l, &format!("stdin:{source_id}")));
    let vulns = vulns::start(assembly.vulns.as_ref(), &assembly.data_dir).await;
    let (spec, cluster_parts) = cluster_parts(
        assembly.spec,
        assembly.cluster,
        &assembly.router,
        assembly.response.as_ref(),
    );
    let pipeline = Pipeline::start_with_audit(spec, pipeline_audit).await?;
    let cluster = Box::pin(start_cluster(cluster_parts, &pipeline)).await?;
    let stop = futures::FutureExt::shared(stop);
    tracing::info!(
        source = %source_id,
        data_dir = %assembly.data_dir.display(),
        "vowguard started; reading events"
    );
    let source = match &cluster {
        Some(cluster) => {
            Box::pin(cluster::read_ndjson_to_queue(
                &source_id,
                input,
                max_line_bytes,
                cluster.clone(),
                stop.clone(),
            ))
            .await
        }
        None => {
            source::read_ndjson(&source_id, input, max_line_bytes, &pipeline, stop.clone()).await
        }
    }
    .map_err(|e| Error::io("reading input failed", e))?;
    if let Some(cluster) = &cluster {
        // Every event published is delivered or dead-lettered (by any replica) before the
        // exit; a stop bounds the wait by the shutdown timeout.
        let give_up = stop.clone();
        let drained = Box::pin(cluster.drained(async move {
            give_up.await;
            tokio::time::sleep(shutdown_timeout).await;
        }))
        .await;
        if !drained {
            tracing::warn!(
                "stopping before the stream is drained; the other replicas (or the next start) deliver the rest"
            );
        }
        Box::pin(cluster.shutdown(shutdown_timeout)).await;
    }
    tracing::info!(
        lines = source.lines,
        accepted = source.accepted,
        rejected = source.rejected,
        "input ended; draining"
    );
    // At the end of the input every event is delivered or dead-lettered before the exit; a
    // stop (signal) while reading or during that drain bounds it by the shutdown timeout,
    // like the http source: what is left stays in the journal for the next start.
    let metrics = pipeline
        .shutdown_until(async move {
            stop.await;
            tracing::info!(
                timeout_ms = shutdown_timeout.as_millis() as u64,
                "stopping: undelivered events stay in the journal for the next start"
            );
            tokio::time::sleep(shutdown_timeout).await;
        })
        .await;
    // Before the audit log closes: every timeline entry the engine writes is audited.
    if let Some(engine) = &assembly.response {
        engine.shutdown(assembly.shutdown_timeout).await;
    }
    drop(vulns);
    if let Some(recorder) = breach_recorder {
        recorder.finish().await;
    }
    audit::close(audit_log).await;
    Ok(RunReport { source, metrics })
}

/// Runs the `nats` source until `stop`: each event is acked to NATS once durable in the
/// pipeline's queue; then in-flight deliveries finish within `pipeline.shutdown_timeout`
/// (what is left stays in the journal for the next start).
#[cfg(feature = "nats")]
async fn run_nats(
    mut assembly: Assembly,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<RunReport, Error> {
    let (source_id, config) = match assembly.source()? {
        (id, SourceConfig::Nats(config)) => (id.to_owned(), (**config).clone()),
        (id, _) => {
            return Err(Error::internal(format!(
                "`sources.{id}` is not a nats source"
            )));
        }
    };
    let settings = assembly.nats_settings.take().ok_or_else(|| {
        Error::internal(format!(
            "`sources.{source_id}`: connection settings were not resolved"
        ))
    })?;
    let shutdown_timeout = assembly.shutdown_timeout;
    // `[server]`: /health, /metrics and the admin API. Bound first, so a port in use stops
    // the start before anything runs.
    let listener = match &assembly.server {
        Some(settings) => Some(
            tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| {
                    Error::io(
                        format!("`server.listen`: cannot listen on {}", settings.listen),
                        e,
                    )
                })?,
        ),
        None => None,
    };
    let audit_log = assembly.audit.open(&assembly.data_dir).await?;
    assembly.response_audit.bind_log(&audit_log);
    if let Some(engine) = &assembly.response {
        if assembly.cluster.is_some() {
            // Runs wait for the cluster's run claims (set once NATS is reached).
            engine.await_coordination();
        }
        engine.start();
    }
    let breach_recorder = assembly
        .breaches
        .start(reports::breach_trail(&audit_log, &assembly.data_dir));
    let pipeline_audit = audit_log
        .as_ref()
        .map(|l| audit::pipeline_audit(l, &format!("nats:{source_id}")));
    let vulns = vulns::start(assembly.vulns.as_ref(), &assembly.data_dir).await;
    telemetry::exporter();
    // What the admin API lists, before the sinks move to the cluster's workers.
    let sinks: Vec<(String, Arc<dyn vowguard_core::Sink>)> = assembly
        .spec
        .sinks
        .iter()
        .map(|s| (s.id.clone(), s.sink.clone()))
        .collect();
    let notifiers: Vec<(String, Arc<dyn vowguard_core::Notifier>)> = assembly
        .spec
        .notifiers
        .iter()
        .map(|n| (n.id.clone(), n.notifier.clone()))
        .collect();
    let spec = std::mem::take(&mut assembly.spec);
    let (spec, cluster_parts) = cluster_parts(
        spec,
        assembly.cluster.take(),
        &assembly.router,
        assembly.response.as_ref(),
    );
    let pipeline = Arc::new(Pipeline::start_with_audit(spec, pipeline_audit).await?);
    let cluster = Box::pin(start_cluster(cluster_parts, &pipeline)).await?;
    let stop = futures::FutureExt::shared(stop);
    let source = nats_source::NatsSource::new(source_id.clone(), config, settings);
    let monitoring = match (listener, &assembly.server) {
        (Some(listener), Some(settings)) => {
            let state = Arc::new(server::ServerState {
                pipeline: pipeline.clone(),
                accepted: Default::default(),
                rejected: Default::default(),
                admin_token: settings.admin_token.clone(),
                sinks,
                notifiers,
                router: assembly.router.clone(),
                // The report store follows the audit log in runs with an http source.
                reports: Err(
                    "reports are served by a run with an http source (this run reads a nats source)"
                        .into(),
                ),
                webhooks: None,
                cluster: cluster.clone(),
                source: Some(source.health()),
            });
            Some(serve_monitoring(
                listener,
                settings,
                &state,
                assembly.response.clone(),
                stop.clone(),
            ))
        }
        _ => None,
    };
    tracing::info!(
        source = %source_id,
        data_dir = %assembly.data_dir.display(),
        "vowguard started; reading events from NATS"
    );
    // On `[queue] type = "jetstream"` an event is durable once the stream holds it, so the
    // source acks its NATS message after the cluster's PubAck; else after the journal.
    let queue: Arc<dyn vowguard_pipeline::EventQueue> = match &cluster {
        Some(cluster) => cluster.clone(),
        None => pipeline.clone(),
    };
    let read = source.run(queue, stop).await;
    // The server stops on the same signal; its state holds the pipeline until then.
    let served = match monitoring {
        Some(task) => task
            .await
            .unwrap_or_else(|e| Err(Error::internal(format!("the HTTP server task: {e}")))),
        None => Ok(()),
    };
    if let Some(cluster) = &cluster {
        Box::pin(cluster.shutdown(shutdown_timeout)).await;
    }
    // The source's handlers are done (or dropped): the pipeline is ours again.
    let pipeline = reclaim_pipeline(pipeline).await?;
    tracing::info!(
        timeout_ms = shutdown_timeout.as_millis() as u64,
        "source stopped; draining in-flight deliveries (undelivered events stay in the journal)"
    );
    let metrics = pipeline.shutdown_within(Some(shutdown_timeout)).await;
    if let Some(engine) = &assembly.response {
        engine.shutdown(shutdown_timeout).await;
    }
    drop(vulns);
    if let Some(recorder) = breach_recorder {
        recorder.finish().await;
    }
    audit::close(audit_log).await;
    let stats = read?;
    served?;
    Ok(RunReport {
        source: SourceStats {
            lines: stats.received,
            accepted: stats.accepted,
            rejected: stats.terminated,
            stopped: true,
        },
        metrics,
    })
}

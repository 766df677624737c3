//! Turns a [`Config`] into a [`PipelineSpec`]: every component built through the connector
//! registry, every configuration error collected and reported together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vowguard_core::registry::{self, Builder};
use vowguard_core::{BuildContext, ComponentConfig, Error, Role, SecretLookup};
use vowguard_pipeline::{
    EnricherSpec, NotifierSpec, PipelineOptions, PipelineSpec, RequestOptions, SinkSpec,
};
use vowguard_router::{Router, RouterConfig, default_config};

use crate::config::{Config, SourceConfig, take_common_keys};

/// Where relative paths and secrets come from.
pub struct Environment<'a> {
    /// Directory of the config file: relative `data_dir` and secret files are resolved here.
    pub config_dir: &'a Path,
    /// Where `{ env = "..." }` secrets are looked up.
    pub secrets: &'a dyn SecretLookup,
}

/// Storage an embedding host keeps itself, in place of the defaults (see
/// [`assemble_with`]). Each `None` keeps the default.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HostStorage {
    /// The response engine's incidents, runs and steps (default: the
    /// [`FileIncidentStore`](vowguard_response::FileIncidentStore) in
    /// `<data_dir>/response/`).
    pub incidents: Option<Arc<dyn vowguard_response::IncidentStorage>>,
    /// The GDPR breach register's state (default: the report store, `[store] url`). The
    /// changes are still recorded in the audit log first.
    pub breaches: Option<Arc<dyn vowguard_store::BreachStorage>>,
}

impl HostStorage {
    /// Keeps the response engine's incidents in `storage`.
    pub fn incidents(mut self, storage: Arc<dyn vowguard_response::IncidentStorage>) -> Self {
        self.incidents = Some(storage);
        self
    }

    /// Keeps the breach register's state in `storage`.
    pub fn breaches(mut self, storage: Arc<dyn vowguard_store::BreachStorage>) -> Self {
        self.breaches = Some(storage);
        self
    }
}

/// A configuration turned into runnable parts.
#[derive(Debug)]
pub struct Assembly {
    /// The pipeline to start.
    pub spec: PipelineSpec,
    /// The configured sources.
    pub sources: Vec<(String, SourceConfig)>,
    /// The router (also inside `spec`), kept for `route explain`.
    pub router: Arc<Router>,
    /// The resolved data directory.
    pub data_dir: PathBuf,
    /// How long a signalled shutdown waits for in-flight deliveries.
    pub shutdown_timeout: Duration,
    /// The HTTP server, when configured.
    pub server: Option<ServerSettings>,
    /// The alert routes in effect: the configured `[[routes]]`, or the default table.
    pub routes: RoutesInEffect,
    /// Ticket and SOAR systems by id (`[tickets.<id>]`).
    pub tickets: Vec<(String, Arc<dyn vowguard_core::TicketSystem>)>,
    /// Where the report store is (`[store] url`, default `<data_dir>/store.db`).
    pub store: vowguard_store::config::StoreLocation,
    /// `[store] dpo_contact`.
    pub dpo_contact: Option<String>,
    /// The breach register's storage when the host keeps it ([`HostStorage::breaches`]);
    /// `None`: the report store.
    pub breach_storage: Option<Arc<dyn vowguard_store::BreachStorage>>,
    /// Breaches the router opened, waiting for the run's audit log.
    pub breaches: Arc<crate::reports::BreachQueue>,
    /// The audit log (`[audit]`), opened by a run.
    pub audit: crate::audit::AuditSetup,
    /// The automated-response engine (`[response]`, `[playbooks.*]`), when enabled; the
    /// pipeline's router hands it every routed alert. Start it with
    /// [`ResponseEngine::start`](vowguard_response::ResponseEngine::start).
    pub response: Option<vowguard_response::ResponseEngine>,
    /// The response engine's audit trail, bound to the run's audit log when it opens.
    pub response_audit: Arc<crate::audit::LateTrail>,
    /// Inbound webhook sources (`[webhooks.<id>]`) with their secrets resolved.
    pub webhooks: Vec<vowguard_webhooks::Source>,
    /// Vulnerability scanners (`[scanners.*]`) and the index the `vuln_correlation`
    /// enricher reads; `None` without scanners.
    pub vulns: Option<crate::vulns::VulnSetup>,
    /// The `nats` source's connection settings, credentials resolved (when one is configured).
    #[cfg(feature = "nats")]
    pub nats_settings: Option<vowguard_nats::NatsClientSettings>,
    /// `[queue] type = "jetstream"`: the NATS JetStream queue shared by the replicas, with
    /// its credentials resolved; `None` on the local journal.
    pub cluster: Option<crate::cluster::ClusterSetup>,
}

/// Which alert routes apply, for `vowguard validate` to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutesInEffect {
    /// Top-level routes.
    pub count: usize,
    /// Whether they are the platform's default table (no `[[routes]]` configured).
    pub default_table: bool,
}

impl Assembly {
    /// The one configured source, or why `vowguard run` cannot start (`validate` reports
    /// the same).
    pub fn source(&self) -> Result<(&str, &SourceConfig), Error> {
        match self.sources.as_slice() {
            [(id, source)] => Ok((id, source)),
            [] => Err(Error::config(
                "no source configured: add\n[sources.in]\ntype = \"stdin\"",
            )),
            _ => Err(Error::config(
                "exactly one source can be configured (stdin, http or nats)",
            )),
        }
    }
}

/// The `[server]` table with its secret resolved.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// The admin bearer token.
    pub admin_token: Option<vowguard_core::secrecy::SecretString>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

/// Builds every component. All configuration errors are reported at once, one per line.
pub fn assemble(config: &Config, env: &Environment<'_>) -> Result<Assembly, Error> {
    assemble_with(config, env, HostStorage::default())
}

/// [`assemble`], keeping what `storage` names in the host's storage instead of the
/// defaults.
///
/// ```
/// use std::sync::Arc;
/// use vowguard_runtime::{Config, Environment, HostStorage, assemble_with};
///
/// let dir = tempfile::tempdir().unwrap();
/// let config = Config::parse(
///     r#"
/// data_dir = "data"
/// [sources.in]
/// type = "stdin"
/// [sinks.siem]
/// type = "splunk_hec"
/// endpoint = "https://splunk.example.org:8088"
/// token = { env = "HEC_TOKEN" }
/// [response]
/// enabled = true
/// "#,
/// )
/// .unwrap();
/// let secrets = vowguard_core::SecretMap::new().with("HEC_TOKEN", "hec-token");
/// let env = Environment {
///     config_dir: dir.path(),
///     secrets: &secrets,
/// };
/// let storage = HostStorage::default()
///     .incidents(Arc::new(vowguard_response::MemoryIncidentStore::new(100_000)))
///     .breaches(Arc::new(vowguard_store::MemoryBreachStore::new(10_000)));
/// let assembly = assemble_with(&config, &env, storage).unwrap();
/// let engine = assembly.response.as_ref().expect("[response] is enabled");
/// assert_eq!(engine.record_path(), None, "no record file: the host keeps the incidents");
/// assert!(assembly.breach_storage.is_some());
/// ```
pub fn assemble_with(
    config: &Config,
    env: &Environment<'_>,
    storage: HostStorage,
) -> Result<Assembly, Error> {
    let data_dir = env.config_dir.join(&config.data_dir);
    let mut errors: Vec<Error> = Vec::new();
    if let Err(e) = config.telemetry.validate() {
        errors.push(e);
    }
    let mut spec = PipelineSpec {
        data_dir: data_dir.clone(),
        options: PipelineOptions::default()
            .with_enrichment_budget(config.pipeline.enrichment_budget)
            .with_enrichment_concurrency(config.pipeline.enrichment_concurrency)
            .with_max_journal_bytes(config.pipeline.max_journal_bytes)
            .with_max_intake_journal_bytes(config.pipeline.max_intake_journal_bytes)
            .with_when_full(config.pipeline.when_full)
            .with_log_file_bytes(config.pipeline.log_file_bytes.max(1))
            .with_notification_log_max_files(config.pipeline.notification_log_max_files)
            .with_enricher_breaker(config.pipeline.enricher_breaker),
        ..PipelineSpec::default()
    };

    let mut tickets = Vec::new();
    let mut scanners = Vec::new();
    for (role, section) in [
        (Role::Enricher, &config.enrichers),
        (Role::Sink, &config.sinks),
        (Role::Notifier, &config.notifiers),
        (Role::Ticketing, &config.tickets),
        (Role::Scanner, &config.scanners),
    ] {
        for (id, table) in section {
            let ctx = BuildContext {
                id,
                role,
                data_dir: &data_dir,
                config_dir: env.config_dir,
                secrets: env.secrets,
            };
            match build_component(&ctx, table.clone(), &mut spec, &mut tickets, &mut scanners) {
                Ok(()) => {}
                Err(e) => errors.push(e),
            }
        }
    }

    let vulns = crate::vulns::setup(scanners, &mut spec, &mut errors);

    let notifier_ids: Vec<&str> = config.notifiers.keys().map(String::as_str).collect();
    let mut router_config = RouterConfig::default()
        .with_routes(config.routes.clone())
        .with_time_intervals(config.time_intervals.clone())
        .with_inhibit_rules(
            config
                .inhibit_rules
                .clone()
                .unwrap_or_else(|| RouterConfig::default().inhibit_rules),
        )
        .with_classification(config.classification.clone())
        .with_protocols(config.protocols.clone());
    let default_table = router_config.routes.is_empty() && !notifier_ids.is_empty();
    if default_table {
        router_config.routes = default_config().routes;
        for warning in router_config.retain_notifiers(&notifier_ids) {
            tracing::info!("default routing table: {warning}");
        }
    } else {
        for warning in router_config.retain_protocol_notifiers(&notifier_ids) {
            tracing::info!("{warning}");
        }
    }
    let routes = RoutesInEffect {
        count: router_config.routes.len(),
        default_table,
    };
    let (breach_log, breaches) = crate::reports::breach_queue(config.store.dpo_contact.clone());
    let router = match Router::from_config(router_config, &notifier_ids) {
        // GDPR breaches go to the audit log (the breach register in the store is its
        // projection): queued here, appended once the run's audit log is open.
        Ok(router) => Arc::new(router.with_breach_log(Arc::new(breach_log))),
        Err(e) => {
            errors.push(e);
            Arc::new(Router::default())
        }
    };
    spec.router = Some(router.clone());

    let server = match &config.server {
        None => None,
        Some(server) => {
            let admin_token = match &server.admin_token {
                None => None,
                Some(secret) => {
                    match secret.resolve("server.admin_token", env.secrets, env.config_dir) {
                        Ok(token) => Some(token),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    }
                }
            };
            Some(ServerSettings {
                listen: server.listen,
                admin_token,
                max_body_bytes: server.max_body_bytes,
            })
        }
    };
    let http_sources: Vec<&String> = config
        .sources
        .iter()
        .filter(|(_, s)| matches!(s, SourceConfig::Http {}))
        .map(|(id, _)| id)
        .collect();
    if let Some(id) = http_sources.first()
        && server.is_none()
    {
        errors.push(Error::config(format!(
            "`sources.{id}`: an http source needs a `[server]` table with `listen`"
        )));
    }
    if config.sources.len() > 1 {
        let ids: Vec<String> = config
            .sources
            .keys()
            .map(|id| format!("`sources.{id}`"))
            .collect();
        errors.push(Error::config(format!(
            "`sources`: exactly one source can be configured, found {}",
            ids.join(", ")
        )));
    }
    // A nats source serves /health, /metrics and the admin API on `[server]` (no intake
    // routes); stdin runs have no server.
    let serves_http = |source: &SourceConfig| match source {
        SourceConfig::Http {} => true,
        #[cfg(feature = "nats")]
        SourceConfig::Nats(_) => true,
        SourceConfig::Stdin { .. } => false,
    };
    if config.server.is_some()
        && let Some((id, _)) = config.sources.iter().find(|(_, s)| !serves_http(s))
    {
        errors.push(Error::config(format!(
            "`server`: only an http source uses the `[server]` table (and a nats source, for \
             /health, /metrics and the admin API), and `sources.{id}` is neither: remove \
             `[server]`, or set `sources.{id}.type = \"http\"`"
        )));
    }
    let audit_key = match config
        .audit
        .validate()
        .and_then(|()| config.audit.resolve_key(env.secrets, env.config_dir))
    {
        Ok(key) => key,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let response_config = match &config.response {
        Some(c) => Some(c.clone()),
        None if !config.playbooks.is_empty() => Some(vowguard_response::ResponseConfig::default()),
        None => None,
    };
    let response_audit = Arc::new(crate::audit::LateTrail::default());
    let response = if let Some(response_config) = response_config.filter(|c| c.enabled) {
        let built = response_builder(
            config,
            &response_config,
            env,
            &spec,
            &tickets,
            response_audit.clone(),
        )
        .and_then(|builder| match storage.incidents.clone() {
            Some(incidents) => builder.incident_storage(incidents).build(&data_dir),
            None => builder.build(&data_dir),
        });
        match built {
            Ok(engine) => {
                if let Some(router) = spec.router.take() {
                    spec.router = Some(Arc::new(vowguard_pipeline::RoutingWithResponse::new(
                        router,
                        Arc::new(engine.clone()),
                    )));
                }
                Some(engine)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        }
    } else {
        None
    };
    let webhooks =
        crate::webhooks::build_sources(config, env, http_sources.is_empty(), &mut errors);
    // The `nats` source's credentials are read now, so `validate` reports them.
    #[cfg(feature = "nats")]
    let nats_settings = config.sources.iter().find_map(|(id, source)| match source {
        SourceConfig::Nats(nats) => {
            match nats.resolve(&format!("sources.{id}"), env.secrets, env.config_dir) {
                Ok(settings) => Some(settings),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        }
        _ => None,
    });
    if config.sinks.is_empty() && config.notifiers.is_empty() {
        errors.push(Error::config(
            "nothing to deliver to: configure at least one `[sinks.<id>]` or `[notifiers.<id>]`",
        ));
    }
    let cluster = crate::cluster::setup(config, env, &spec, &mut errors);
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
        return Err(Error::config(format!(
            "{} configuration error{}:\n{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            lines.join("\n")
        )));
    }
    let sources = config
        .sources
        .iter()
        .map(|(id, s)| (id.clone(), s.clone()))
        .collect();
    let store = config
        .store
        .location(&data_dir, env.secrets, env.config_dir)?;
    Ok(Assembly {
        spec,
        sources,
        router,
        data_dir,
        shutdown_timeout: config.pipeline.shutdown_timeout,
        server,
        routes,
        tickets,
        store,
        dpo_contact: config.store.dpo_contact.clone(),
        breach_storage: storage.breaches,
        breaches,
        audit: crate::audit::AuditSetup {
            config: config.audit.clone(),
            key: audit_key,
            config_dir: env.config_dir.to_path_buf(),
            config_file: None,
        },
        response,
        response_audit,
        webhooks,
        vulns,
        #[cfg(feature = "nats")]
        nats_settings,
        cluster,
    })
}

/// The response engine's builder: `[response]`, `[playbooks.*]` and the playbook files
/// (validated against the configured notifiers, ticket systems and actions when built).
fn response_builder(
    config: &Config,
    response: &vowguard_response::ResponseConfig,
    env: &Environment<'_>,
    spec: &PipelineSpec,
    tickets: &[(String, Arc<dyn vowguard_core::TicketSystem>)],
    audit_trail: Arc<crate::audit::LateTrail>,
) -> Result<vowguard_response::EngineBuilder, Error> {
    let mut playbooks: Vec<(String, vowguard_response::PlaybookConfig)> = config
        .playbooks
        .iter()
        .map(|(name, p)| (name.clone(), p.clone()))
        .collect();
    for (i, file) in response.playbook_files.iter().enumerate() {
        let path = env.config_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::config(format!(
                "`response.playbook_files[{i}]`: cannot read {}: {e}",
                path.display()
            ))
        })?;
        playbooks.extend(vowguard_response::parse_playbooks(
            &text,
            &path.display().to_string(),
        )?);
    }
    // Only the variables the playbooks name are copied out of the lookup.
    let mut secrets = vowguard_core::SecretMap::new();
    for (_, p) in &playbooks {
        for step in &p.steps {
            for secret in step.secret_headers.values() {
                if let vowguard_core::SecretRef::Env(name) = secret
                    && let Some(value) = env.secrets.var(name)
                {
                    secrets = secrets.with(name.clone(), value);
                }
            }
        }
    }
    if let Some(hook) = &response.action_hook
        && let vowguard_core::SecretRef::Env(name) = &hook.secret
        && let Some(value) = env.secrets.var(name)
    {
        secrets = secrets.with(name.clone(), value);
    }
    let mut builder = vowguard_response::ResponseEngine::builder(response.clone())
        .action_hook(Arc::new(vowguard_router::LoggingActionHook))
        .audit(audit_trail)
        .secrets(Arc::new(secrets), env.config_dir.to_path_buf());
    for n in &spec.notifiers {
        builder = builder.notifier(n.id.clone(), n.notifier.clone());
    }
    for (id, system) in tickets {
        builder = builder.ticket_system(id.clone(), system.clone());
    }
    for (name, playbook) in playbooks {
        builder = builder.playbook(name, playbook);
    }
    Ok(builder)
}

fn build_component(
    ctx: &BuildContext<'_>,
    mut table: ComponentConfig,
    spec: &mut PipelineSpec,
    tickets: &mut Vec<(String, Arc<dyn vowguard_core::TicketSystem>)>,
    scanners: &mut Vec<vowguard_vuln::ScannerEntry>,
) -> Result<(), Error> {
    // `refresh` belongs to the runtime (the sync schedule), not to the connector.
    let refresh = if ctx.role == Role::Scanner {
        Some(crate::vulns::take_refresh(ctx, &mut table)?)
    } else {
        None
    };
    // Without `request.concurrency` a sink gets its own default (see `Sink::default_concurrency`).
    let concurrency_configured = table
        .get("request")
        .and_then(|request| request.as_table().map(|r| r.contains_key("concurrency")))
        .unwrap_or(false);
    let mut common = take_common_keys(ctx.role, ctx.id, &mut table)?;
    let factory = registry::find(ctx.role, &common.kind)
        .map_err(|e| Error::config(format!("`{}`: {}", ctx.key("type"), e.message())))?;
    match factory.builder {
        Builder::Sink(build) => {
            let sink = build(ctx, table)?;
            let batch = common.batch.apply(sink.batch_limits());
            if !concurrency_configured {
                common.request.concurrency = RequestOptions::for_sink(sink.as_ref()).concurrency;
            }
            spec.sinks.push(SinkSpec {
                id: ctx.id.to_owned(),
                sink,
                batch,
                retry: common.retry,
                breaker: common.breaker,
                request: common.request,
            });
        }
        Builder::Enricher(build) => {
            let enricher = build(ctx, table)?;
            spec.enrichers.push(EnricherSpec {
                id: ctx.id.to_owned(),
                enricher,
            });
        }
        Builder::Notifier(build) => {
            let notifier = build(ctx, table)?;
            spec.notifiers.push(NotifierSpec {
                id: ctx.id.to_owned(),
                notifier,
                retry: common.retry,
                rate_limit: common.rate_limit,
            });
        }
        Builder::Ticketing(build) => {
            tickets.push((ctx.id.to_owned(), build(ctx, table)?));
        }
        Builder::Scanner(build) => {
            scanners.push(vowguard_vuln::ScannerEntry {
                id: ctx.id.to_owned(),
                scanner: build(ctx, table)?,
                refresh: refresh.unwrap_or(crate::vulns::DEFAULT_REFRESH),
            });
        }
        // A connector role added to the registry after this runtime was built.
        _ => {
            return Err(Error::config(format!(
                "`{}`: connector type `{}` has a role this runtime cannot run",
                ctx.key("type"),
                common.kind
            )));
        }
    }
    Ok(())
}

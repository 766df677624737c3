//! The TOML configuration file.
//!
//! Components are tables keyed by an id the user chooses, with `type` naming the connector
//! (the Vector convention). Keys the runtime handles for every component (`type`, `batch`,
//! `retry`, `breaker`, `rate_limit`) are taken out here; the rest of the table goes to the connector's
//! factory, which rejects unknown keys by name. Secrets are `{ env = "NAME" }` or
//! `{ file = "path" }` and are resolved after parsing, never substituted into the text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vowguard_core::{BatchLimits, Error, RateLimit, RetryPolicy, Role};
use vowguard_pipeline::{BreakerOptions, EnricherBreakerOptions, RequestOptions, WhenFull};
use vowguard_router::{
    ClassificationConfig, InhibitRule, ProtocolsConfig, RouteConfig, TimeIntervalConfig,
};

pub use vowguard_core::ComponentConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where dead letters and the notification log live (relative to the config file).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Pipeline tuning.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The HTTP server (the `http` source, health, metrics).
    #[serde(default)]
    pub server: Option<ServerConfig>,
    /// Event sources by id.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Enrichers by id (connector tables).
    #[serde(default)]
    pub enrichers: BTreeMap<String, ComponentConfig>,
    /// Sinks by id (connector tables).
    #[serde(default)]
    pub sinks: BTreeMap<String, ComponentConfig>,
    /// Notifiers by id (connector tables).
    #[serde(default)]
    pub notifiers: BTreeMap<String, ComponentConfig>,
    /// Ticket and SOAR systems by id (connector tables), used by playbooks.
    #[serde(default)]
    pub tickets: BTreeMap<String, ComponentConfig>,
    /// Vulnerability scanners by id (connector tables, plus `refresh`): their findings
    /// feed the `vuln_correlation` enricher.
    #[serde(default)]
    pub scanners: BTreeMap<String, ComponentConfig>,
    /// Alert routes, in order. When none is given, the platform's default routing table is
    /// used, restricted to the notifiers that are configured.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Named time intervals routes refer to.
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalConfig>,
    /// Inhibition rules; absent: a P0 for a wedding mutes that wedding's P2..P4 for an hour.
    #[serde(default)]
    pub inhibit_rules: Option<Vec<InhibitRule>>,
    /// How priorities are computed from severity, risk, threat, patterns and wedding impact.
    #[serde(default)]
    pub classification: ClassificationConfig,
    /// The wedding-day protocols (Saturday escalation, active wedding protection, guest data
    /// breach), all on by default.
    #[serde(default)]
    pub protocols: ProtocolsConfig,
    /// The report store and GDPR breach register (`[store]`): absent, SQLite at
    /// `<data_dir>/store.db`.
    #[serde(default)]
    pub store: vowguard_store::StoreConfig,
    /// The tamper-evident audit log in `<data_dir>/audit` (on by default).
    #[serde(default)]
    pub audit: vowguard_audit::AuditConfig,
    /// `[response]`: automated response (incidents and playbooks). Off unless the table
    /// (or a `[playbooks.<name>]`) is present.
    #[serde(default)]
    pub response: Option<vowguard_response::ResponseConfig>,
    /// `[playbooks.<name>]`: response playbooks (the defaults are added unless
    /// `response.default_playbooks = false`).
    #[serde(default)]
    pub playbooks: BTreeMap<String, vowguard_response::PlaybookConfig>,
    /// `[webhooks.<id>]`: inbound webhook sources, served on `POST /v1/webhooks/<id>` by
    /// the http source's server.
    #[serde(default)]
    pub webhooks: BTreeMap<String, vowguard_webhooks::WebhookConfig>,
    /// `[queue]`: where accepted events wait for the sinks and the alert path: `local`
    /// (this process's journal, the default) or `jetstream` (a NATS JetStream stream
    /// shared by several replicas).
    #[serde(default)]
    pub queue: QueueConfig,
    /// `[telemetry]`: trace export (`[telemetry.otlp]`, in builds with the `otlp` feature).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// One warning per deprecated integer duration key the file used (each rewritten into
    /// its replacement, see [`crate::deprecated`]), e.g. `sinks.splunk.retry.max_backoff_ms
    /// is deprecated: use sinks.splunk.retry.max_backoff = "30s"`. Also logged at load.
    #[serde(skip)]
    pub deprecation_warnings: Vec<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self::Local {}
    }
}

/// `[queue]`: the queue backend.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum QueueConfig {
    /// The journal of this process (`<data_dir>/journal`), the default. Its settings are
    /// in `[pipeline]`; a key here is refused by name.
    Local {},
    /// A NATS JetStream stream shared by every replica (see `vowguard-jetstream`):
    /// `servers`, credentials, `[queue.tls]`, `[queue.stream]`, `[queue.consumers]`.
    Jetstream(Box<vowguard_jetstream::JetStreamConfig>),
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// `[telemetry.otlp]`: exports the per-event spans (enrichment, journal, each sink,
    /// each notifier; see `vowguard_pipeline::TRACE_TARGET`) to an OpenTelemetry
    /// collector over OTLP/HTTP (protobuf). Needs a build with the `otlp` cargo feature.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

/// `[telemetry.otlp]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`: spans are posted
    /// to `<endpoint>/v1/traces` (an endpoint already ending in `/v1/traces` is used as
    /// it is). `http` or `https` (rustls).
    pub endpoint: String,
    /// Longest time one export request may take (`timeout = "10s"`, the default).
    #[serde(default = "default_otlp_timeout", with = "vowguard_core::duration")]
    pub timeout: Duration,
    /// The `service.name` resource attribute (default `vowguard`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_otlp_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_service_name() -> String {
    "vowguard".to_owned()
}

impl TelemetryConfig {
    /// Checks `[telemetry]`: the endpoint is an http(s) URL with a host, the timeout
    /// positive, and the build has the `otlp` feature. Errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        let Some(otlp) = &self.otlp else {
            return Ok(());
        };
        if !cfg!(feature = "otlp") {
            return Err(Error::config(
                "`telemetry.otlp`: this vowguard was built without the `otlp` feature (cargo build --features otlp)",
            ));
        }
        otlp.traces_url()?;
        if otlp.timeout.is_zero() {
            return Err(Error::config(
                "`telemetry.otlp.timeout`: must be more than 0s",
            ));
        }
        if otlp.service_name.trim().is_empty() {
            return Err(Error::config(
                "`telemetry.otlp.service_name`: must not be empty",
            ));
        }
        Ok(())
    }
}

impl OtlpConfig {
    /// `<endpoint>/v1/traces`, checked: an `http` or `https` URL with a host.
    pub fn traces_url(&self) -> Result<String, Error> {
        let endpoint = self.endpoint.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(endpoint).map_err(|e| {
            Error::config(format!(
                "`telemetry.otlp.endpoint`: not a URL ({e}); expected e.g. `http://127.0.0.1:4318`"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config(
                "`telemetry.otlp.endpoint`: must be an http:// or https:// URL with a host",
            ));
        }
        if endpoint.ends_with("/v1/traces") {
            Ok(endpoint.to_owned())
        } else {
            Ok(format!("{endpoint}/v1/traces"))
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("var/vowguard")
}

/// `[pipeline]`: stage tuning.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// Longest time enrichment may hold one event (`enrichment_budget = "10s"`).
    #[serde(with = "vowguard_core::duration")]
    pub enrichment_budget: Duration,
    /// Events enriched concurrently.
    pub enrichment_concurrency: usize,
    /// Upper bound of the durable journal in `<data_dir>/journal`, in bytes.
    pub max_journal_bytes: u64,
    /// Upper bound of the intake journal in `<data_dir>/intake`, in bytes: raw events
    /// acknowledged to their sources and not yet enriched (used when enrichers are
    /// configured; `when_full` applies to it, and the events journal behind it waits).
    pub max_intake_journal_bytes: u64,
    /// When the journal is full: `block` (sources wait) or `drop_newest` (refused and
    /// counted; the HTTP source answers 503).
    pub when_full: WhenFull,
    /// On SIGTERM/SIGINT, how long to let sinks finish in-flight batches before exiting
    /// (what is left stays in the journal for the next start; `shutdown_timeout = "30s"`).
    #[serde(with = "vowguard_core::duration")]
    pub shutdown_timeout: Duration,
    /// Size in bytes at which `dead_letters.jsonl` and `notifications.jsonl` rotate into
    /// numbered files. Dead letters are never deleted before they are replayed.
    pub log_file_bytes: u64,
    /// Rotated notification-log files kept (the oldest beyond this is deleted).
    pub notification_log_max_files: usize,
    /// `[pipeline.enricher_breaker]`: after `failure_threshold` consecutive timeouts or
    /// unavailable answers an enricher is skipped for `cooldown`, then probed by one event.
    pub enricher_breaker: EnricherBreakerOptions,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            enrichment_budget: Duration::from_secs(10),
            enrichment_concurrency: 64,
            max_journal_bytes: 1 << 30,
            max_intake_journal_bytes: vowguard_pipeline::DEFAULT_MAX_INTAKE_BYTES,
            when_full: WhenFull::Block,
            shutdown_timeout: Duration::from_secs(30),
            log_file_bytes: vowguard_core::jsonl_log::DEFAULT_MAX_FILE_BYTES,
            notification_log_max_files: 10,
            enricher_breaker: EnricherBreakerOptions::default(),
        }
    }
}

/// `[server]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8686`.
    pub listen: std::net::SocketAddr,
    /// Bearer token of the admin endpoints (a secret reference).
    #[serde(default)]
    pub admin_token: Option<vowguard_core::SecretRef>,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_max_body_bytes() -> usize {
    10 << 20
}

/// `[sources.<id>]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Newline-delimited JSON events on standard input; the run ends when input ends.
    Stdin {
        /// Longest accepted line in bytes; longer lines are reported and skipped.
        #[serde(default = "default_max_line_bytes")]
        max_line_bytes: usize,
    },
    /// `POST /v1/events` on the `[server]`; runs until SIGTERM/SIGINT.
    Http {},
    /// Events a platform publishes to NATS: a JetStream stream read through a durable pull
    /// consumer (acked once the event is durable here), or a core subject in a queue group;
    /// runs until SIGTERM/SIGINT.
    #[cfg(feature = "nats")]
    Nats(Box<vowguard_nats::NatsSourceConfig>),
}

fn default_max_line_bytes() -> usize {
    1 << 20
}

/// `batch = { ... }` on a sink: overrides of the sink's own batch limits.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BatchOverride {
    /// Most events per batch.
    pub max_events: Option<usize>,
    /// Most encoded bytes per batch.
    pub max_bytes: Option<usize>,
    /// Longest wait for a batch to fill (`max_wait = "1s"`).
    #[serde(default, with = "vowguard_core::duration::option")]
    pub max_wait: Option<Duration>,
}

impl BatchOverride {
    /// The sink's defaults with these overrides applied.
    pub fn apply(self, defaults: BatchLimits) -> BatchLimits {
        BatchLimits::new(
            self.max_events.unwrap_or(defaults.max_events),
            self.max_bytes.unwrap_or(defaults.max_bytes),
            self.max_wait.unwrap_or(defaults.max_wait),
        )
    }
}

/// The keys the runtime takes out of every component table.
#[derive(Debug, Clone)]
pub struct CommonKeys {
    /// `type`.
    pub kind: String,
    /// `batch` (sinks only).
    pub batch: BatchOverride,
    /// `retry`.
    pub retry: RetryPolicy,
    /// `breaker` (sinks only).
    pub breaker: BreakerOptions,
    /// `request` (sinks only): batches in flight.
    pub request: RequestOptions,
    /// `rate_limit` (notifiers only).
    pub rate_limit: Option<RateLimit>,
}

impl Config {
    /// Reads and parses a config file. Errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|e| Error::config(format!("{}: {}", path.display(), e.message())))
    }

    /// Parses config text. An error reads ``line L, column C: `key`: message``; it never quotes
    /// the line itself (toml's own rendering does, and the line can hold an inline secret).
    ///
    /// Deprecated integer duration keys (`timeout = "10s"`) are rewritten into their
    /// replacements (`timeout = "10s"`) first, each logged as a warning and kept in
    /// [`Config::deprecation_warnings`]; with any of them the error of a later key names
    /// it without a line number.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let located = |e: toml::de::Error| {
            let (key, message) = vowguard_core::toml_error_parts(&e);
            let position = e.span().map_or_else(String::new, |span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            let key = key.map_or_else(String::new, |key| format!("`{key}`: "));
            Error::config(format!("{position}{key}{message}"))
        };
        let mut document: toml::Table = toml::from_str(text).map_err(located)?;
        let warnings = vowguard_core::duration::migrate_deprecated_keys(
            &mut document,
            crate::deprecated::DURATION_KEYS,
        )?;
        let mut config: Self = if warnings.is_empty() {
            toml::from_str(text).map_err(located)?
        } else {
            toml::Value::Table(document)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let (key, message) = vowguard_core::toml_error_parts(&e);
                    let key = key.map_or_else(String::new, |key| format!("`{key}`: "));
                    Error::config(format!("{key}{message}"))
                })?
        };
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        config.deprecation_warnings = warnings;
        if let QueueConfig::Jetstream(queue) = &config.queue {
            queue.validate("queue")?;
        }
        Ok(config)
    }
}

/// Splits the runtime's keys off a component table (the rest goes to the connector).
pub(crate) fn take_common_keys(
    role: Role,
    id: &str,
    table: &mut ComponentConfig,
) -> Result<CommonKeys, Error> {
    let key = |field: &str| format!("{}.{id}.{field}", role.section());
    let kind = match table.remove("type") {
        Some(vowguard_core::ParamValue::String(kind)) => kind,
        Some(_) => {
            return Err(Error::config(format!(
                "`{}`: must be a string",
                key("type")
            )));
        }
        None => {
            return Err(Error::config(format!(
                "`{}`: missing; run `vowguard connectors` to list the available types",
                key("type")
            )));
        }
    };
    // Each key below belongs to some roles only; refused by name for the others.
    let only = |field: &str, allowed: bool, message: &str| {
        if !allowed && table.contains_key(field) {
            Err(Error::config(format!("`{}`: {message}", key(field))))
        } else {
            Ok(())
        }
    };
    only("batch", role == Role::Sink, "only sinks take `batch`")?;
    only("breaker", role == Role::Sink, "only sinks take `breaker`")?;
    only("request", role == Role::Sink, "only sinks take `request`")?;
    only("retry", role != Role::Enricher, "enrichers do not retry")?;
    only(
        "rate_limit",
        role == Role::Notifier,
        "only notifiers take `rate_limit`",
    )?;
    let batch: BatchOverride = table.take("batch", &key("batch"))?.unwrap_or_default();
    let breaker: BreakerOptions = table.take("breaker", &key("breaker"))?.unwrap_or_default();
    let request: RequestOptions = table.take("request", &key("request"))?.unwrap_or_default();
    if role == Role::Sink {
        request.validate(id)?;
    }
    let retry: RetryPolicy = table.take("retry", &key("retry"))?.unwrap_or_default();
    let rate_limit: Option<RateLimit> = table.take("rate_limit", &key("rate_limit"))?;
    if let Some(limit) = rate_limit
        && (limit.per_second.is_nan() || limit.per_second <= 0.0 || limit.burst == 0)
    {
        return Err(Error::config(format!(
            "`{}`: per_second and burst must be greater than zero",
            key("rate_limit")
        )));
    }
    Ok(CommonKeys {
        kind,
        batch,
        retry,
        breaker,
        request,
        rate_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `config_toml` fuzz target (also issue item 10): toml's error text quotes
    /// the source line, so an inline secret was printed back in the error that refused it.
    #[test]
    fn an_inline_secret_is_refused_without_showing_it() {
        let text = "[server]\nlisten = \"127.0.0.1:8686\"\nadmin_token = \"Vg5ecretCanary9Z\"\n\n[sources.in]\ntype = \"http\"\n";
        let err = Config::parse(text).unwrap_err().to_string();
        assert!(!err.contains("Vg5ecretCanary9Z"), "{err}");
        assert!(err.contains("line 3, column 15"), "{err}");
        assert!(err.contains("inline secrets are not accepted"), "{err}");
    }

    /// A syntax error on a secret's line does not show the line either.
    #[test]
    fn a_syntax_error_does_not_quote_the_line() {
        let err = Config::parse("[server]\nadmin_token = \"Vg5ecretCanary9Z\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("Vg5ecretCanary9Z"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_queue_is_local_unless_configured() {
        let base = "[sources.in]\ntype = \"stdin\"\n";
        assert_eq!(Config::parse(base).unwrap().queue, QueueConfig::Local {});
        let local = format!("{base}[queue]\ntype = \"local\"\n");
        assert_eq!(Config::parse(&local).unwrap().queue, QueueConfig::Local {});
        let js = format!("{base}[queue]\ntype = \"jetstream\"\n[queue.stream]\nreplicas = 3\n");
        let QueueConfig::Jetstream(queue) = Config::parse(&js).unwrap().queue else {
            panic!("jetstream expected");
        };
        assert_eq!(queue.stream.replicas, 3);
    }

    #[test]
    fn queue_errors_name_the_key() {
        let base = "[sources.in]\ntype = \"stdin\"\n[queue]\n";
        for (text, want) in [
            (
                "type = \"kafka\"\n",
                "`queue.type`: unknown variant `kafka`",
            ),
            (
                "type = \"jetstream\"\n[queue.stream]\nreplicas = 2\n",
                "`queue.stream.replicas`",
            ),
            ("type = \"jetstream\"\nservers = []\n", "`queue.servers`"),
            (
                "type = \"jetstream\"\n[queue.consumers]\nmax_deliver = 0\n",
                "`queue.consumers.max_deliver`",
            ),
            (
                "type = \"jetstream\"\nsevers = [\"nats://a:4222\"]\n",
                "severs",
            ),
            (
                "type = \"local\"\nservers = [\"nats://a:4222\"]\n",
                "servers",
            ),
            (
                "type = \"jetstream\"\ntoken = \"Vg5ecretCanary9Z\"\n",
                "inline secrets are not accepted",
            ),
        ] {
            let err = Config::parse(&format!("{base}{text}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("Vg5ecretCanary9Z"), "{err}");
        }
    }
}

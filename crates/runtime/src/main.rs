//! The `vowguard` command-line tool.

/// mimalloc instead of jemalloc (feature `mimalloc`, off by default): fewer CPU-seconds
/// per event than glibc malloc but a much higher peak RSS than jemalloc in `cargo xtask
/// bench compare` (figures in BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// jemalloc (feature `jemalloc`, on by default): about 30% fewer CPU-seconds per event than
/// glibc malloc on the forwarding path, where every event is a dozen short-lived strings
/// freed on another thread than the one that allocated them, and a lower peak RSS
/// (BENCHMARKS.md, "Allocator"). Its tuning is built in from `.cargo/config.toml`
/// (`JEMALLOC_SYS_WITH_MALLOC_CONF`, since the workspace forbids the `unsafe` a
/// `malloc_conf` static would need): one arena (a forwarder's threads mostly hand buffers
/// to each other, and one arena kept the peak RSS lowest, measured), dirty pages given
/// back after a second, no lazily purged ("muzzy") pages kept. The `_RJEM_MALLOC_CONF`
/// environment variable overrides it option by option at run time.
#[cfg(all(
    feature = "jemalloc",
    not(feature = "mimalloc"),
    not(target_env = "msvc")
))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use vowguard_core::{Error, ProcessEnv, SecretLookup, registry};
use vowguard_runtime::logging::{escape_control, escape_control_keep_lines};
use vowguard_runtime::{Config, Environment, SourceConfig, assemble, progress};

/// vowguard forwards a wedding platform's security events to SIEMs (Splunk, Elasticsearch,
/// Datadog, ArcSight, QRadar), enriches them with threat intelligence and wedding context,
/// and alerts the right people (PagerDuty, Slack, Teams, SMS, email).
#[derive(Debug, Parser)]
#[command(
    name = "vowguard",
    version,
    about = "vowguard forwards a wedding platform's security events to SIEMs, enriches them with threat intelligence and wedding context, and alerts the right people.",
    long_about = None,
    after_help = "Start with `vowguard validate --config FILE --skip-healthchecks`, then `vowguard run --config FILE`. `vowguard connectors` lists the sources, sinks, notifiers and enrichers of this build."
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    /// Log filter: a level (error, warn, info, debug, trace, off) and/or `target=level`
    /// directives, e.g. `info` or `warn,vowguard_pipeline=debug`.
    #[arg(long, env = "VOWGUARD_LOG", default_value = "info", global = true, value_parser = parse_log_filter)]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap definitions"
)]
enum Command {
    /// A live terminal view of a running instance (its `/metrics`): sinks, notifiers,
    /// totals and rates, refreshed every interval; `q` quits.
    Top {
        /// The instance's HTTP server (its `[server] listen` address).
        #[arg(long, default_value = "http://127.0.0.1:8686")]
        url: String,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Run the pipeline: read events from the configured source until it ends, deliver
    /// every one, then exit 0.
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration: parse it, build every component, and run each sink's and
    /// notifier's healthcheck.
    Validate {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Do not contact any endpoint.
        #[arg(long)]
        skip_healthchecks: bool,
    },
    /// List the connectors compiled into this binary.
    Connectors,
    /// Inspect and replay dead letters (events a sink rejected for good).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Explain and test alert routing.
    Route {
        #[command(subcommand)]
        action: RouteAction,
    },
    /// Incidents opened by automated response: list, show, acknowledge, resolve.
    Incident {
        #[command(subcommand)]
        action: vowguard_runtime::response_cli::IncidentAction,
    },
    /// Response playbooks: list, explain, run, runs, show, approve, reject.
    Playbook {
        #[command(subcommand)]
        action: vowguard_runtime::response_cli::PlaybookAction,
    },
    /// The GDPR breach register: list, show, confirm, update, and the Art. 33 notice.
    Breach {
        #[command(subcommand)]
        action: BreachAction,
    },
    /// A compliance report (GDPR, SOC 2, incidents, delivery) for a period.
    Report {
        /// The configuration file (`data_dir` and `[store]`).
        #[arg(long, short)]
        config: PathBuf,
        /// gdpr, soc2, incidents or delivery.
        #[arg(long)]
        kind: String,
        /// Period start: 2026-06-01 (midnight UTC) or an RFC 3339 time.
        #[arg(long)]
        from: String,
        /// Period end (excluded).
        #[arg(long)]
        to: String,
        /// html, md or json.
        #[arg(long, default_value = "html")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The tamper-evident audit log: keys, verification, inclusion proofs.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Inbound webhooks: sign a test body as a sender would, verify a captured request.
    Webhook {
        #[command(subcommand)]
        action: vowguard_runtime::webhooks::WebhookAction,
    },
    /// Vulnerability findings from the configured scanners: sync now, list an asset's.
    Vulns {
        #[command(subcommand)]
        action: vowguard_runtime::vulns::VulnsAction,
    },
    /// The JetStream queue of a cluster (`[queue] type = "jetstream"`).
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterAction {
    /// The stream (events, bytes, replicas) and every durable consumer on it (pending,
    /// ack pending, redelivered, waiting pulls), read from NATS with the config's `[queue]`.
    Status {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The newest records of the cluster's notification log (every replica's sends,
    /// delivered or failed), oldest first, read from NATS with the config's `[queue]`.
    Notifications {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// How many records (at most 10000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap definitions"
)]
enum BreachAction {
    /// List the breaches with status and deadline.
    List {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one breach and every change to it (JSON).
    Show {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The breach id.
        id: String,
    },
    /// Confirm awareness: the Art. 33 72-hour clock starts at `--at` (default: now).
    Confirm {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The breach id.
        id: String,
        /// When awareness was confirmed (RFC 3339).
        #[arg(long)]
        at: Option<String>,
    },
    /// Set Art. 33(3) content, the Art. 34 decision, or move the status on.
    Update {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The breach id.
        id: String,
        /// Nature of the breach.
        #[arg(long)]
        nature: Option<String>,
        /// Categories of data subjects, comma-separated.
        #[arg(long, value_delimiter = ',')]
        subject_categories: Option<Vec<String>>,
        /// Approximate number of data subjects.
        #[arg(long)]
        subjects: Option<u64>,
        /// Categories of personal data records, comma-separated.
        #[arg(long, value_delimiter = ',')]
        record_categories: Option<Vec<String>>,
        /// Approximate number of records.
        #[arg(long)]
        records: Option<u64>,
        /// DPO or contact point (default: `[store] dpo_contact`).
        #[arg(long)]
        dpo_contact: Option<String>,
        /// Likely consequences.
        #[arg(long)]
        consequences: Option<String>,
        /// Measures taken or proposed.
        #[arg(long)]
        measures: Option<String>,
        /// Art. 34: is the risk to the data subjects high?
        #[arg(long)]
        high_risk: Option<bool>,
        /// Art. 34 decision in words.
        #[arg(long)]
        subjects_decision: Option<String>,
        /// Reasons for notifying after the 72 hours.
        #[arg(long)]
        late_reason: Option<String>,
        /// Move to notified_authority, notified_subjects, not_notifiable or closed.
        #[arg(long)]
        status: Option<String>,
        /// When the status change happened (RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
        /// Why it is not notifiable (with `--status not_notifiable`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print the Art. 33 notification for the supervisory authority.
    Notice {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The breach id.
        id: String,
        /// Time zone for local times next to UTC, e.g. Europe/Berlin.
        #[arg(long, default_value = "UTC")]
        tz: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Make a checkpoint signing key pair: `signing.key` (mode 0600, for `audit.key`) and
    /// `signing.pub` (the verifier key `name+keyid+base64`, for auditors).
    Keygen {
        /// Directory to write them into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Key name and log origin (a URL-like name without spaces or `+`).
        #[arg(long, default_value = vowguard_audit::DEFAULT_ORIGIN)]
        name: String,
    },
    /// Recompute the Merkle tree, check every checkpoint's signature and the consistency
    /// between consecutive checkpoints, and name every changed, deleted, inserted or
    /// reordered entry by index. Exits non-zero when anything is wrong.
    Verify {
        /// The configuration file (its `data_dir` holds the log; its key verifies).
        #[arg(long, short)]
        config: PathBuf,
        /// Verify with this public key (text or file) instead of the configured key.
        #[arg(long)]
        key: Option<String>,
    },
    /// Export the inclusion proof of one entry (c2sp.org/tlog-proof@v1 bundle with the
    /// latest checkpoint), verifiable offline with the public key alone.
    Proof {
        /// The entry's index.
        entry_index: u64,
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Write the bundle here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a proof bundle offline: the checkpoint signature and the entry's inclusion.
    VerifyProof {
        /// The bundle file.
        file: PathBuf,
        /// The public key (text `name+keyid+base64`, or a file holding it).
        #[arg(long)]
        key: String,
        /// The entry's bytes (default: the entry carried in the bundle).
        #[arg(long)]
        entry: Option<PathBuf>,
    },
    /// Rebuild the report store (`[store]`) from the audit log: every table is emptied and
    /// every record applied again in order.
    RebuildStore {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RouteAction {
    /// Print an event's priority with its reasons, the protocols it triggers, the path
    /// through the route tree, and the receivers (nothing is sent).
    Explain {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// A file holding one event (JSON, as sent to vowguard; an `enrichment` object may be
        /// added to try wedding context or threat intelligence).
        event: PathBuf,
    },
    /// Check a table of expected routing outcomes; exits non-zero on any mismatch.
    Test {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The cases (TOML: `[[cases]] name, event = {...}, expect = {...}`).
        cases: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// List the dead letters not yet replayed.
    List {
        /// The configuration file (its `data_dir` holds the dead letters).
        #[arg(long, short)]
        config: PathBuf,
        /// Only this sink's.
        #[arg(long)]
        sink: Option<String>,
    },
    /// Print the dead letters of one event as JSON.
    Show {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The event id.
        event_id: String,
    },
    /// Send the dead letters to their sinks again (after fixing the cause).
    Replay {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this sink's.
        #[arg(long)]
        sink: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `[telemetry.otlp]` of `vowguard run`'s config is read before logging starts, so the
    // exporter is part of the subscriber (the whole file is checked when `run` loads it).
    // Declared before the runtime: dropped after it, flushing the spans still batched.
    let otlp = match &cli.command {
        Command::Run { config } => otlp_config(config),
        _ => None,
    };
    let _otlp_guard = match init_logging(cli.log_format, &cli.log_level, otlp.as_ref()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {}", escape_control_keep_lines(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { config } => run(&config).await,
            Command::Top { url, interval } => match Duration::try_from_secs_f64(interval) {
                Ok(every) if every >= Duration::from_millis(100) => {
                    vowguard_runtime::top::run(&url, every).await
                }
                _ => Err(Error::invalid_input(
                    "--interval must be at least 0.1 (seconds)",
                )),
            },
            Command::Validate {
                config,
                skip_healthchecks,
            } => validate(&config, skip_healthchecks).await,
            Command::Connectors => {
                connectors();
                Ok(())
            }
            Command::Dlq { action } => dlq(action).await,
            Command::Route { action } => route(action),
            Command::Breach { action } => breach(action).await,
            Command::Report {
                config,
                kind,
                from,
                to,
                format,
                output,
            } => report(&config, &kind, &from, &to, &format, output.as_deref()).await,
            Command::Audit {
                action: AuditAction::RebuildStore { config },
            } => rebuild_store(&config).await,
            Command::Audit { action } => audit(action),
            Command::Incident { action } => vowguard_runtime::response_cli::incident(action).await,
            Command::Playbook { action } => vowguard_runtime::response_cli::playbook(action).await,
            Command::Webhook { action } => {
                vowguard_runtime::webhooks::webhook(action).and_then(|text| {
                    use std::io::Write as _;
                    std::io::stdout()
                        .write_all(text.as_bytes())
                        .map_err(|e| vowguard_core::Error::io("write to stdout", e))
                })
            }
            Command::Vulns { action } => vowguard_runtime::vulns::vulns(action).await,
            Command::Cluster {
                action: ClusterAction::Status { config, json },
            } => cluster_status(&config, json).await,
            Command::Cluster {
                action:
                    ClusterAction::Notifications {
                        config,
                        limit,
                        json,
                    },
            } => cluster_notifications(&config, limit, json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", escape_control_keep_lines(&e.to_string()));
            if e.kind() == vowguard_core::ErrorKind::Config {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Checks `--log-level` / `VOWGUARD_LOG`: every directive is a level or `target=level`.
/// A bare word that is not a level (`warning`, `verbose`) would otherwise be taken as a
/// target name and silently turn the log off.
fn parse_log_filter(value: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in value.split(',').map(str::trim) {
        if directive.is_empty() {
            return Err("empty directive".into());
        }
        if !directive.contains('=')
            && !directive.contains('[')
            && !LEVELS.contains(&directive.to_ascii_lowercase().as_str())
        {
            return Err(format!(
                "`{directive}` is not a level; expected one of {} or `target=level` directives, e.g. `warn,vowguard_pipeline=debug`",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
}

/// What keeps the trace exporter running (and flushes it when dropped).
#[cfg(feature = "otlp")]
type OtlpGuard = vowguard_runtime::otlp::OtlpGuard;
/// Nothing to keep without the `otlp` feature.
#[cfg(not(feature = "otlp"))]
type OtlpGuard = ();

/// The `[telemetry.otlp]` table of the config at `path`, when present and valid; anything
/// wrong there (or elsewhere in the file) is reported when `run` loads the whole config.
fn otlp_config(path: &Path) -> Option<vowguard_runtime::config::OtlpConfig> {
    #[derive(serde::Deserialize)]
    struct TelemetryOnly {
        #[serde(default)]
        telemetry: vowguard_runtime::config::TelemetryConfig,
    }
    let text = std::fs::read_to_string(path).ok()?;
    // The deprecated `telemetry.otlp.timeout_ms` is rewritten as `Config::parse` does (which
    // warns about it once logging runs).
    let mut document: toml::Table = toml::from_str(&text).ok()?;
    vowguard_core::duration::migrate_deprecated_keys(
        &mut document,
        vowguard_runtime::deprecated::DURATION_KEYS,
    )
    .ok()?;
    let only: TelemetryOnly = toml::Value::Table(document).try_into().ok()?;
    only.telemetry.validate().ok()?;
    only.telemetry.otlp
}

fn init_logging(
    format: LogFormat,
    filter: &str,
    otlp: Option<&vowguard_runtime::config::OtlpConfig>,
) -> Result<Option<OtlpGuard>, Error> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .expect("the log filter was checked by parse_log_filter");
    // Colours only on a terminal: a file, a pipe or journald gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    #[cfg(feature = "otlp")]
    if let Some(otlp) = otlp {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        // The log keeps its filter as a per-layer filter; the exporter takes the
        // pipeline's spans (its own filter), which the log filter would otherwise hide.
        let (exporter, guard) = vowguard_runtime::otlp::layer(otlp)?;
        let log = tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr);
        let registry = tracing_subscriber::registry().with(exporter);
        match format {
            LogFormat::Human => registry
                .with(
                    log.fmt_fields(vowguard_runtime::logging::EscapedFields)
                        .with_filter(filter),
                )
                .init(),
            LogFormat::Json => registry
                .with(log.json().flatten_event(true).with_filter(filter))
                .init(),
        }
        return Ok(Some(guard));
    }
    #[cfg(not(feature = "otlp"))]
    let _ = otlp;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        // Every field value and message escaped: event text cannot forge a log line.
        LogFormat::Human => builder
            .fmt_fields(vowguard_runtime::logging::EscapedFields)
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(None)
}

fn config_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

async fn run(path: &Path) -> Result<(), Error> {
    let assembly = load(path)?;
    let report = vowguard_runtime::run(assembly, shutdown_signal()).await?;
    let m = &report.metrics;
    let delivered: u64 = m.sinks.values().map(|s| s.delivered).sum();
    let dead: u64 = m.sinks.values().map(|s| s.dead_lettered).sum();
    let sent: u64 = m.notifiers.values().map(|n| n.sent).sum();
    let failed: u64 = m.notifiers.values().map(|n| n.failed).sum();
    tracing::info!(
        lines = report.source.lines,
        accepted = report.source.accepted,
        rejected = report.source.rejected,
        delivered,
        dead_lettered = dead,
        alerts_sent = sent,
        alerts_failed = failed,
        "run finished"
    );
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM; a second one exits at once (events already
/// acknowledged are in the journal and are delivered after the next start).
async fn shutdown_signal() {
    next_signal().await;
    tracing::info!(
        "shutting down: stopping intake, finishing in-flight deliveries (signal again to exit at once)"
    );
    tokio::spawn(async {
        next_signal().await;
        eprintln!("second signal: exiting now; undelivered events stay in the journal");
        std::process::exit(130);
    });
}

/// Completes on SIGINT or SIGTERM.
async fn next_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[allow(clippy::print_stdout)]
async fn cluster_notifications(path: &Path, limit: usize, json: bool) -> Result<(), Error> {
    use vowguard_runtime::cluster;
    let config = Config::load(path)?;
    let dir = config_dir(path);
    let env = Environment {
        config_dir: &dir,
        secrets: &ProcessEnv,
    };
    let Some(setup) = cluster::ClusterSetup::from_config(&config, &env)? else {
        return Err(Error::config(format!(
            "{}: `[queue]` is the local journal (its notification log is <data_dir>/notifications.jsonl); `vowguard cluster notifications` needs `[queue] type = \"jetstream\"`",
            path.display()
        )));
    };
    let records = cluster::notifications_of(&setup, limit).await?;
    if json {
        for r in &records {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
    } else {
        print!("{}", cluster::render_notifications(&records));
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn cluster_status(path: &Path, json: bool) -> Result<(), Error> {
    use vowguard_runtime::cluster;
    let config = Config::load(path)?;
    let dir = config_dir(path);
    let env = Environment {
        config_dir: &dir,
        secrets: &ProcessEnv,
    };
    let Some(setup) = cluster::ClusterSetup::from_config(&config, &env)? else {
        return Err(Error::config(format!(
            "{}: `[queue]` is the local journal; `vowguard cluster status` needs `[queue] type = \"jetstream\"`",
            path.display()
        )));
    };
    let status = cluster::status_of(&setup).await?;
    if json {
        println!("{status:#}");
    } else {
        print!("{}", cluster::render_status(&status));
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn validate(path: &Path, skip_healthchecks: bool) -> Result<(), Error> {
    let assembly = if skip_healthchecks {
        load_offline(path)?
    } else {
        load(path)?
    };
    // What `run` would refuse, `validate` refuses too.
    let (source_id, source) = assembly.source()?;
    let source_kind = match source {
        SourceConfig::Stdin { .. } => "stdin",
        SourceConfig::Http {} => "http",
        #[cfg(feature = "nats")]
        SourceConfig::Nats(_) => "nats",
    };
    let spec = &assembly.spec;
    println!(
        "config ok: source `{source_id}` ({source_kind}), {} enricher(s), {} sink(s), {} notifier(s), {} route(s){}",
        spec.enrichers.len(),
        spec.sinks.len(),
        spec.notifiers.len(),
        assembly.routes.count,
        if assembly.routes.default_table {
            " (the default routing table, restricted to the configured notifiers)"
        } else {
            ""
        }
    );
    if skip_healthchecks {
        println!("healthchecks skipped");
        return Ok(());
    }
    let timeout = Duration::from_secs(15);
    let mut failures = 0;
    for sink in &spec.sinks {
        let result = tokio::time::timeout(timeout, sink.sink.healthcheck()).await;
        failures += report_health("sink", &sink.id, sink.sink.kind(), result);
    }
    for notifier in &spec.notifiers {
        let result = tokio::time::timeout(timeout, notifier.notifier.healthcheck()).await;
        failures += report_health("notifier", &notifier.id, notifier.notifier.kind(), result);
    }
    #[cfg(feature = "nats")]
    if let (SourceConfig::Nats(config), Some(settings)) = (source, &assembly.nats_settings) {
        let result = tokio::time::timeout(
            timeout,
            vowguard_runtime::nats_source::healthcheck(source_id, config, settings),
        )
        .await;
        failures += report_health("source", source_id, "nats", result);
    }
    if failures > 0 {
        return Err(Error::unavailable(format!(
            "{failures} healthcheck(s) failed"
        )));
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn report_health(
    role: &str,
    id: &str,
    kind: &str,
    result: Result<Result<(), Error>, tokio::time::error::Elapsed>,
) -> usize {
    match result {
        Ok(Ok(())) => {
            println!("  {role} {id} ({kind}): healthy");
            0
        }
        Ok(Err(e)) => {
            println!("  {role} {id} ({kind}): UNHEALTHY: {e}");
            1
        }
        Err(_) => {
            println!("  {role} {id} ({kind}): UNHEALTHY: no answer within 15 s");
            1
        }
    }
}

/// Reads a config file and builds every component (secrets from the process environment,
/// relative paths from the file's directory).
fn load(path: &Path) -> Result<vowguard_runtime::Assembly, Error> {
    load_with(path, &ProcessEnv)
}

fn load_with(path: &Path, secrets: &dyn SecretLookup) -> Result<vowguard_runtime::Assembly, Error> {
    let config = Config::load(path)?;
    let dir = config_dir(path);
    let environment = Environment {
        config_dir: &dir,
        secrets,
    };
    let mut assembly = assemble(&config, &environment)?;
    // The bytes just loaded, for the audit log's `config_loaded` record.
    if let Ok(bytes) = std::fs::read(path) {
        use sha2::Digest as _;
        let digest = vowguard_audit::hex(&sha2::Sha256::digest(&bytes));
        assembly.audit.config_file = Some((path.to_path_buf(), digest));
    }
    Ok(assembly)
}

#[allow(clippy::print_stdout)]
/// What the audit commands need of a config: the data directory and `[audit]` (its key
/// resolved). Nothing else is built, so `audit verify` works on any config that loads.
struct AuditOnly {
    data_dir: PathBuf,
    audit: vowguard_runtime::audit::AuditSetup,
}

fn audit_only(path: &Path) -> Result<AuditOnly, Error> {
    let config = Config::load(path)?;
    let dir = config_dir(path);
    config.audit.validate()?;
    Ok(AuditOnly {
        data_dir: dir.join(&config.data_dir),
        audit: vowguard_runtime::audit::AuditSetup {
            key: config.audit.resolve_key(&ProcessEnv, &dir)?,
            config: config.audit,
            config_dir: dir,
            config_file: None,
        },
    })
}

/// `vowguard audit rebuild-store`: the store as a projection of the audit log, from scratch.
#[allow(clippy::print_stdout)]
async fn rebuild_store(config: &Path) -> Result<(), Error> {
    let (reports, _) = open_reports(config, false).await?;
    let started = std::time::Instant::now();
    let bar = progress::bar(0, "rebuilding the store");
    let summary = reports
        .store
        .rebuild_from_with_progress(reports.source.as_ref(), &|at| {
            progress::catch_up(&bar, at);
        })
        .await;
    bar.finish_and_clear();
    let summary = summary?;
    println!(
        "store rebuilt from the audit log: {} record(s) applied{} in {:.1} s",
        summary.records,
        summary
            .applied_through
            .map(|i| format!(", through entry {i}"))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[allow(clippy::print_stdout)]
fn audit(action: AuditAction) -> Result<(), Error> {
    use vowguard_runtime::audit as rt;
    match action {
        AuditAction::Keygen { out, name } => {
            let (key, public, text) = rt::keygen(&out, &name)?;
            println!(
                "private key: {} (mode 0600; set audit.key = {{ file = \"...\" }})",
                key.display()
            );
            println!("public key:  {}", public.display());
            println!("{text}");
            Ok(())
        }
        AuditAction::Verify { config, key } => {
            let assembly = audit_only(&config)?;
            let verifier = match key {
                Some(key) => rt::read_verifier(&key)?,
                None => assembly.audit.verifier(&assembly.data_dir)?,
            };
            let dir = vowguard_audit::AuditConfig::dir(&assembly.data_dir);
            let started = std::time::Instant::now();
            let bar = progress::byte_bar(0, "verifying");
            let report =
                vowguard_audit::verify_dir_with_progress(&dir, &verifier, &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                });
            bar.finish_and_clear();
            let report = report?;
            println!(
                "{} entries, {} indexed, {} checkpoint(s); key {}",
                report.entries,
                report.indexed,
                report.checkpoints,
                verifier.to_text()
            );
            if let Some(cp) = &report.latest {
                println!("latest valid checkpoint: size {}", cp.size);
                if report.entries > cp.size {
                    println!(
                        "{} entries after it are checked against the index only (signed at the next checkpoint)",
                        report.entries - cp.size
                    );
                }
            }
            for problem in &report.problems {
                println!("  {problem}");
            }
            if report.is_ok() {
                println!(
                    "audit log ok: {} entries verified in {:.1} s",
                    report.entries,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            } else {
                Err(Error::invalid_input(format!(
                    "audit log verification failed: {} problem(s)",
                    report.problems.len()
                )))
            }
        }
        AuditAction::Proof {
            entry_index,
            config,
            out,
        } => {
            let assembly = audit_only(&config)?;
            let reader = vowguard_audit::AuditReader::open(vowguard_audit::AuditConfig::dir(
                &assembly.data_dir,
            ))?;
            let bundle = vowguard_audit::export_proof(&reader, entry_index)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &bundle)
                        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                    println!("proof of entry {entry_index} written to {}", path.display());
                }
                None => print!("{bundle}"),
            }
            Ok(())
        }
        AuditAction::VerifyProof { file, key, entry } => {
            let verifier = rt::read_verifier(&key)?;
            let bundle = std::fs::read_to_string(&file)
                .map_err(|e| Error::config(format!("cannot read {}: {e}", file.display())))?;
            let entry = entry
                .map(|p| {
                    std::fs::read(&p)
                        .map_err(|e| Error::config(format!("cannot read {}: {e}", p.display())))
                })
                .transpose()?;
            let proven = vowguard_audit::verify_proof(&bundle, &verifier, entry.as_deref())?;
            println!(
                "proof ok: entry {} is in {} at size {} (signed by {})",
                proven.index,
                escape_control(&proven.checkpoint.origin),
                proven.checkpoint.size,
                verifier.name()
            );
            println!(
                "{}",
                escape_control(&String::from_utf8_lossy(&proven.entry))
            );
            Ok(())
        }
        AuditAction::RebuildStore { .. } => Err(Error::internal(
            "`audit rebuild-store` runs asynchronously (dispatched before this point)",
        )),
    }
}

/// For the commands that contact nothing (`validate --skip-healthchecks`, `dlq list`, `dlq show`, `route explain`,
/// `route test`): a `{ env }` secret that is not set is a warning, not an error, so a
/// config can be checked on a machine without the production secrets. The component is
/// built with a placeholder value that never leaves the process.
#[derive(Debug, Default)]
struct OfflineEnv {
    missing: std::sync::Mutex<Vec<String>>,
}

impl SecretLookup for OfflineEnv {
    fn var(&self, name: &str) -> Option<String> {
        if let Some(value) = ProcessEnv.var(name) {
            return Some(value);
        }
        self.missing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(name.to_owned());
        // Shaped to pass the connectors' format checks (URLs, keys); never contacted.
        Some(format!(
            "https://vowguard-offline-placeholder.invalid/{name}/0123456789abcdef0123456789abcdef"
        ))
    }
}

impl OfflineEnv {
    /// Prints the unset variables as a warning.
    fn warn_missing(&self) {
        let mut missing = self
            .missing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            eprintln!(
                "warning: {} environment variable(s) not set; `vowguard run` and the healthchecks need them: {}",
                missing.len(),
                missing.join(", ")
            );
        }
    }
}

/// Loads a config for a command that contacts nothing (see [`OfflineEnv`]).
fn load_offline(path: &Path) -> Result<vowguard_runtime::Assembly, Error> {
    let offline = OfflineEnv::default();
    let assembly = load_with(path, &offline)?;
    offline.warn_missing();
    Ok(assembly)
}

#[allow(clippy::print_stdout)]
async fn dlq(action: DlqAction) -> Result<(), Error> {
    use vowguard_runtime::dlq;
    match action {
        DlqAction::List { config, sink } => {
            let assembly = load_offline(&config)?;
            let letters = dlq::pending(&assembly.data_dir, sink.as_deref())?;
            println!(
                "{:<25} {:<14} {:<38} {:<13} REASON",
                "TIME", "SINK", "EVENT", "KIND"
            );
            for l in &letters {
                // The event id and the destination's answer are attacker-controlled: one
                // dead letter is one row, and no terminal escape reaches the screen.
                let reason: String = l.reason.chars().take(100).collect();
                println!(
                    "{:<25} {:<14} {:<38} {:<13} {}",
                    l.time.format("%Y-%m-%dT%H:%M:%SZ"),
                    escape_control(&l.sink),
                    escape_control(&l.event.id),
                    l.kind,
                    escape_control(&reason)
                );
            }
            println!("{} dead letter(s)", letters.len());
            Ok(())
        }
        DlqAction::Show { config, event_id } => {
            let assembly = load_offline(&config)?;
            let letters: Vec<_> = dlq::pending(&assembly.data_dir, None)?
                .into_iter()
                .filter(|l| l.event.id == event_id)
                .collect();
            if letters.is_empty() {
                return Err(Error::invalid_input(format!(
                    "no dead letter for event `{event_id}`"
                )));
            }
            for l in letters {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&l).expect("a dead letter serialises")
                );
            }
            Ok(())
        }
        DlqAction::Replay { config, sink } => {
            let assembly = load(&config)?;
            let total = dlq::pending(&assembly.data_dir, sink.as_deref())?.len();
            let bar = progress::bar(total as u64, "replaying");
            let report = dlq::replay_reporting(assembly, sink.as_deref(), &|| bar.inc(1)).await;
            bar.finish_and_clear();
            let report = report?;
            // Letters requeued to the JetStream queue (`_enrich`) are named only when any were.
            let requeued = if report.requeued > 0 {
                format!(", {} requeued to the stream", report.requeued)
            } else {
                String::new()
            };
            println!(
                "replayed {}: {} delivered{requeued}, {} failed again, {} skipped (sink no longer configured)",
                report.replayed,
                report.delivered,
                report.failed.len(),
                report.skipped_unconfigured
            );
            for (sink, event, reason) in &report.failed {
                println!(
                    "  {} {}: {}",
                    escape_control(sink),
                    escape_control(event),
                    escape_control(reason)
                );
            }
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(Error::unavailable(format!(
                    "{} dead letter(s) failed again",
                    report.failed.len()
                )))
            }
        }
    }
}

#[allow(clippy::print_stdout)]
fn route(action: RouteAction) -> Result<(), Error> {
    match action {
        RouteAction::Explain { config, event } => {
            let assembly = load_offline(&config)?;
            let parsed = vowguard_runtime::response_cli::read_event(&event)?;
            let parsed = vowguard_runtime::vulns::correlate_for_explain(&assembly, parsed)?;
            print!("{}", assembly.router.explain(&parsed).render_text());
            Ok(())
        }
        RouteAction::Test { config, cases } => {
            let assembly = load_offline(&config)?;
            let text = std::fs::read_to_string(&cases)
                .map_err(|e| Error::config(format!("cannot read {}: {e}", cases.display())))?;
            let file = vowguard_router::CasesFile::from_toml(&text)?;
            let results = vowguard_router::run_cases(&assembly.router, &file);
            let failed = results.iter().filter(|r| !r.passed).count();
            for result in &results {
                println!(
                    "{} {}",
                    if result.passed { "ok  " } else { "FAIL" },
                    result.name
                );
                for failure in &result.failures {
                    println!("       {failure}");
                }
            }
            println!("{} passed, {failed} failed", results.len() - failed);
            if failed == 0 {
                Ok(())
            } else {
                Err(Error::invalid_input(format!(
                    "{failed} routing case(s) failed"
                )))
            }
        }
    }
}

/// Opens the report store and breach register of the config at `path` (nothing else is
/// built or contacted). With `write`, this process takes the audit log's writer (refused,
/// with the reason, while `vowguard run` holds it); else it only reads the log.
async fn open_reports(
    path: &Path,
    write: bool,
) -> Result<
    (
        vowguard_runtime::reports::Reports,
        Option<vowguard_audit::AuditLog>,
    ),
    Error,
> {
    use vowguard_runtime::reports::AuditAccess;
    let config = Config::load(path)?;
    let dir = config_dir(path);
    let data_dir = dir.join(&config.data_dir);
    let location = config.store.location(&data_dir, &ProcessEnv, &dir)?;
    let (access, writer) = if !config.audit.enabled {
        (AuditAccess::Interim, None)
    } else if write {
        config.audit.validate()?;
        let setup = vowguard_runtime::audit::AuditSetup {
            key: config.audit.resolve_key(&ProcessEnv, &dir)?,
            config: config.audit.clone(),
            config_dir: dir.clone(),
            config_file: None,
        };
        let log = setup.open(&data_dir).await?;
        (
            AuditAccess::Merkle {
                writer: log.clone(),
            },
            log,
        )
    } else {
        (AuditAccess::Merkle { writer: None }, None)
    };
    let reports = vowguard_runtime::reports::open(
        &location,
        &data_dir,
        config.store.dpo_contact.clone(),
        access,
    )
    .await?;
    Ok((reports, writer))
}

/// Who acts, for the audit log: `cli:<login>`.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{}", escape_control(&user))
}

fn parse_at(flag: &str, at: Option<&str>) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    match at {
        None => Ok(chrono::Utc::now()),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| {
                Error::invalid_input(format!(
                    "`{flag}`: cannot read {:?} as an RFC 3339 time (e.g. 2026-06-13T14:00:00Z): {e}",
                    escape_control(text)
                ))
            }),
    }
}

#[allow(clippy::print_stdout)]
async fn breach(action: BreachAction) -> Result<(), Error> {
    use vowguard_store::{BreachChange, BreachUpdate};
    let now = chrono::Utc::now();
    match action {
        BreachAction::List { config, json } => {
            let (reports, _) = open_reports(&config, false).await?;
            reports.store.catch_up(reports.source.as_ref()).await?;
            let breaches = reports.store.breaches().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&breaches).expect("breaches serialise")
                );
                return Ok(());
            }
            println!(
                "{:<38} {:<19} {:<21} {:<21} CLOCK",
                "ID", "STATUS", "DETECTED", "DEADLINE"
            );
            for b in &breaches {
                let clock = match b.clock(now) {
                    vowguard_store::breach::Clock::Running { minutes_left } => {
                        format!("{} h {} min left", minutes_left / 60, minutes_left % 60)
                    }
                    vowguard_store::breach::Clock::Overdue { minutes_over } => {
                        format!(
                            "OVERDUE by {} h {} min",
                            minutes_over / 60,
                            minutes_over % 60
                        )
                    }
                    other => serde_json::to_value(&other)
                        .ok()
                        .and_then(|v| v.get("clock").and_then(|c| c.as_str()).map(str::to_owned))
                        .unwrap_or_default(),
                };
                println!(
                    "{:<38} {:<19} {:<21} {:<21} {}",
                    escape_control(&b.id),
                    b.status.as_str(),
                    b.detected_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    b.deadline.map_or_else(
                        || "-".into(),
                        |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                    ),
                    clock
                );
            }
            println!("{} breach(es)", breaches.len());
            Ok(())
        }
        BreachAction::Show { config, id } => {
            let (reports, _) = open_reports(&config, false).await?;
            reports.store.catch_up(reports.source.as_ref()).await?;
            let breach = reports.store.breach(&id).await?.ok_or_else(|| {
                Error::invalid_input(format!("no breach `{}`", escape_control(&id)))
            })?;
            let history = reports.store.breach_history(&id).await?;
            let value = serde_json::json!({
                "breach": breach,
                "clock": breach.clock(now),
                "history": history,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("serialises")
            );
            Ok(())
        }
        BreachAction::Confirm { config, id, at } => {
            let at = parse_at("--at", at.as_deref())?;
            let (reports, writer) = match open_reports(&config, true).await {
                Ok(opened) => opened,
                Err(e) => {
                    // `vowguard run` holds the audit log: go through its admin API.
                    let body =
                        serde_json::json!({"as": cli_actor().trim_start_matches("cli:"), "at": at});
                    return breach_via_api(
                        &config,
                        &format!("/api/breaches/{id}/confirm"),
                        body,
                        e,
                    )
                    .await;
                }
            };
            let changed = reports
                .register
                .change(&id, &BreachChange::Confirm { at }, &cli_actor(), now)
                .await;
            vowguard_runtime::audit::close(writer).await;
            let b = changed?;
            println!(
                "breach {} confirmed at {}; the authority must be notified by {}",
                escape_control(&b.id),
                at.to_rfc3339(),
                b.deadline.map(|d| d.to_rfc3339()).unwrap_or_default()
            );
            Ok(())
        }
        BreachAction::Update {
            config,
            id,
            nature,
            subject_categories,
            subjects,
            record_categories,
            records,
            dpo_contact,
            consequences,
            measures,
            high_risk,
            subjects_decision,
            late_reason,
            status,
            at,
            reason,
        } => {
            let opened = open_reports(&config, true).await;
            let update = BreachUpdate {
                nature,
                subject_categories,
                subjects_approx: subjects,
                record_categories,
                records_approx: records,
                dpo_contact,
                consequences,
                measures,
                high_risk,
                subjects_decision,
                late_reason,
            };
            let at = parse_at("--at", at.as_deref())?;
            let status_change = match status.as_deref() {
                None => None,
                Some("notified_authority") => Some(BreachChange::NotifyAuthority { at }),
                Some("notified_subjects") => Some(BreachChange::NotifySubjects { at }),
                Some("closed") => Some(BreachChange::Close { at }),
                Some("not_notifiable") => Some(BreachChange::NotNotifiable {
                    reason: reason.clone().ok_or_else(|| {
                        Error::invalid_input(
                            "`--status not_notifiable` needs `--reason` (Art. 33(5): document why)",
                        )
                    })?,
                }),
                Some(other) => {
                    return Err(Error::invalid_input(format!(
                        "`--status`: {:?} is not a status an update can set: expected notified_authority, notified_subjects, not_notifiable or closed (use `breach confirm` to confirm)",
                        escape_control(other)
                    )));
                }
            };
            if update == BreachUpdate::default() && status_change.is_none() {
                return Err(Error::invalid_input(
                    "nothing to update: give a field (e.g. --nature, --measures) or --status",
                ));
            }
            let (reports, writer) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    // `vowguard run` holds the audit log: go through its admin API.
                    let body = serde_json::json!({
                        "as": cli_actor().trim_start_matches("cli:"),
                        "at": at,
                        "update": (update != BreachUpdate::default()).then_some(&update),
                        "status": status.as_deref(),
                        "reason": reason,
                    });
                    return breach_via_api(&config, &format!("/api/breaches/{id}/update"), body, e)
                        .await;
                }
            };
            let actor = cli_actor();
            let changed = async {
                let mut breach = None;
                if update != BreachUpdate::default() {
                    breach = Some(
                        reports
                            .register
                            .change(&id, &BreachChange::Update(update), &actor, now)
                            .await?,
                    );
                }
                if let Some(change) = status_change {
                    breach = Some(reports.register.change(&id, &change, &actor, now).await?);
                }
                Ok::<_, Error>(breach)
            }
            .await;
            vowguard_runtime::audit::close(writer).await;
            if let Some(b) = changed? {
                println!(
                    "breach {} updated; status {}",
                    escape_control(&b.id),
                    b.status.as_str()
                );
                let missing = b.missing_content();
                if !missing.is_empty() {
                    println!("still missing for the notice: {}", missing.join("; "));
                }
            }
            Ok(())
        }
        BreachAction::Notice { config, id, tz } => {
            let zone: chrono_tz::Tz = tz.parse().map_err(|_| {
                Error::invalid_input(format!(
                    "`--tz`: unknown time zone {:?} (e.g. Europe/Berlin)",
                    escape_control(&tz)
                ))
            })?;
            let (reports, _) = open_reports(&config, false).await?;
            print!("{}", reports.register.notice(&id, now, zone).await?);
            Ok(())
        }
    }
}

/// A breach change the local process could not write (`err`: `vowguard run` holds the
/// audit log) sent to the running instance's admin API; without a `[server]` admin token
/// the error says to use it.
#[allow(clippy::print_stdout)]
async fn breach_via_api(
    config: &Path,
    path: &str,
    body: serde_json::Value,
    err: Error,
) -> Result<(), Error> {
    match vowguard_runtime::response_cli::via_api(config, path, body).await? {
        Some(answer) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).expect("serialises")
            );
            Ok(())
        }
        None => Err(Error::new(
            err.kind(),
            format!(
                "{err}; while `vowguard run` holds the audit log, change the breach register through its admin API (`POST {path}`; give `[server]` an `admin_token` and this command calls it)"
            ),
        )),
    }
}

#[allow(clippy::print_stdout)]
async fn report(
    config: &Path,
    kind: &str,
    from: &str,
    to: &str,
    format: &str,
    output: Option<&Path>,
) -> Result<(), Error> {
    use vowguard_store::report::{ReportFormat, ReportKind, ReportParams};
    // Parameters first: a wrong period is reported before anything is opened.
    let kind: ReportKind = kind.parse()?;
    let format: ReportFormat = format.parse()?;
    let params = ReportParams::parse(kind, from, to)?;
    let (reports, _) = open_reports(config, false).await?;
    let started = std::time::Instant::now();
    // The long part over a long history is catching the store up with the audit log.
    let bar = progress::bar(0, "reading the audit log");
    let report = reports
        .report_with_progress(&params, &|at| progress::catch_up(&bar, at))
        .await;
    bar.finish_and_clear();
    let report = report?;
    let applied = report.evidence.applied_through;
    let (from, to) = (report.from, report.to);
    let text = report.render(format)?;
    let summary = format!(
        "{} report {} .. {}: {} bytes{} in {:.1} s",
        kind.as_str(),
        from.to_rfc3339(),
        to.to_rfc3339(),
        text.len(),
        applied
            .map(|i| format!(", audit log through entry {i}"))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    match output {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| Error::io(format!("write the report to {}", path.display()), e))?;
            println!("{summary} written to {}", path.display());
            Ok(())
        }
        None => {
            print!("{text}");
            // The report itself is on standard output: the summary goes to a terminal's
            // standard error only, so a piped report stays exactly the report.
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!("{summary}");
            }
            Ok(())
        }
    }
}

#[allow(clippy::print_stdout)]
fn connectors() {
    println!("{:<10} {:<16} DESCRIPTION", "ROLE", "TYPE");
    println!(
        "{:<10} {:<16} newline-delimited JSON events on standard input; the run ends with the input",
        "source", "stdin"
    );
    println!(
        "{:<10} {:<16} POST /v1/events on the [server] (one event or an array); runs until SIGTERM",
        "source", "http"
    );
    #[cfg(feature = "nats")]
    println!(
        "{:<10} {:<16} a NATS JetStream durable pull consumer (acked once durable) or a core subject; runs until SIGTERM",
        "source", "nats"
    );
    for factory in registry::connectors() {
        // One word per column (`ticket system` would shift the TYPE column).
        println!(
            "{:<10} {:<16} {}",
            factory.role().name().replace(' ', "_"),
            factory.kind,
            factory.description
        );
    }
}

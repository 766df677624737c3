//! The `vowguard` command-line tool.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use vowguard_core::{Error, ProcessEnv, SecretLookup, registry};
use vowguard_runtime::logging::{escape_control, escape_control_keep_lines};
use vowguard_runtime::{Config, Environment, SourceConfig, assemble};

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
enum Command {
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
    init_logging(cli.log_format, &cli.log_level);
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
            Command::Incident { action } => vowguard_runtime::response_cli::incident(action).await,
            Command::Playbook { action } => vowguard_runtime::response_cli::playbook(action).await,
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

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .expect("the log filter was checked by parse_log_filter");
    // Colours only on a terminal: a file, a pipe or journald gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
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
    assemble(&config, &environment)
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
            let report = dlq::replay(assembly, sink.as_deref()).await?;
            println!(
                "replayed {}: {} delivered, {} failed again, {} skipped (sink no longer configured)",
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
            let text = std::fs::read_to_string(&event)
                .map_err(|e| Error::config(format!("cannot read {}: {e}", event.display())))?;
            let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::invalid_input(format!("{}: invalid JSON: {e}", event.display()))
            })?;
            // An explicit `enrichment` lets users try context the enrichers would add.
            let enrichment = value.as_object_mut().and_then(|o| o.remove("enrichment"));
            let mut parsed = vowguard_core::Event::from_json_value(value)
                .map_err(|e| Error::invalid_input(format!("{}: {e}", event.display())))?;
            if let Some(enrichment) = enrichment {
                parsed.enrichment = serde_json::from_value(enrichment).map_err(|e| {
                    Error::invalid_input(format!("{}: field `enrichment`: {e}", event.display()))
                })?;
            }
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
    for factory in registry::connectors() {
        println!(
            "{:<10} {:<16} {}",
            factory.role().name(),
            factory.kind,
            factory.description
        );
    }
}

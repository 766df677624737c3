//! The `vowguard` command-line tool.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use vowguard_core::{Error, ProcessEnv, registry};
use vowguard_runtime::{Config, Environment, assemble};

/// vowguard: forwards a wedding platform's security events to SIEMs, enriches them, and
/// alerts the right people.
#[derive(Debug, Parser)]
#[command(name = "vowguard", version, about, long_about = None)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    /// Log filter (tracing syntax), e.g. `info` or `vowguard_pipeline=debug`.
    #[arg(long, env = "VOWGUARD_LOG", default_value = "info", global = true)]
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if e.kind() == vowguard_core::ErrorKind::Config {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn config_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

async fn run(path: &Path) -> Result<(), Error> {
    let (_, assembly) = load(path)?;
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
    let (config, assembly) = load(path)?;
    let spec = &assembly.spec;
    println!(
        "config ok: {} source(s), {} enricher(s), {} sink(s), {} notifier(s), {} route(s)",
        assembly.sources.len(),
        spec.enrichers.len(),
        spec.sinks.len(),
        spec.notifiers.len(),
        config.routes.len()
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
fn load(path: &Path) -> Result<(Config, vowguard_runtime::Assembly), Error> {
    let config = Config::load(path)?;
    let dir = config_dir(path);
    let environment = Environment {
        config_dir: &dir,
        secrets: &ProcessEnv,
    };
    let assembly = assemble(&config, &environment)?;
    Ok((config, assembly))
}

#[allow(clippy::print_stdout)]
async fn dlq(action: DlqAction) -> Result<(), Error> {
    use vowguard_runtime::dlq;
    match action {
        DlqAction::List { config, sink } => {
            let (_, assembly) = load(&config)?;
            let letters = dlq::pending(&assembly.data_dir, sink.as_deref())?;
            println!(
                "{:<25} {:<14} {:<38} {:<13} REASON",
                "TIME", "SINK", "EVENT", "KIND"
            );
            for l in &letters {
                let reason: String = l.reason.chars().take(100).collect();
                println!(
                    "{:<25} {:<14} {:<38} {:<13} {reason}",
                    l.time.format("%Y-%m-%dT%H:%M:%SZ"),
                    l.sink,
                    l.event.id,
                    l.kind
                );
            }
            println!("{} dead letter(s)", letters.len());
            Ok(())
        }
        DlqAction::Show { config, event_id } => {
            let (_, assembly) = load(&config)?;
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
            let (_, assembly) = load(&config)?;
            let report = dlq::replay(assembly, sink.as_deref()).await?;
            println!(
                "replayed {}: {} delivered, {} failed again, {} skipped (sink no longer configured)",
                report.replayed,
                report.delivered,
                report.failed.len(),
                report.skipped_unconfigured
            );
            for (sink, event, reason) in &report.failed {
                println!("  {sink} {event}: {reason}");
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
            let (_, assembly) = load(&config)?;
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
            let (_, assembly) = load(&config)?;
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
        "{:<10} {:<16} newline-delimited JSON events on standard input",
        "source", "stdin"
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

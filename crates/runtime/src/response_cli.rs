//! `vowguard incident ...` and `vowguard playbook ...`.
//!
//! Reading commands (`incident list|show`, `playbook runs|show`) replay the record file
//! read-only. Changing commands (`incident ack|resolve`, `playbook approve|reject`) go
//! through the admin API of the running instance when `[server]` has an admin token, so the
//! running engine sees them at once; without a server they are written to the record file
//! directly (vowguard must not be running on the same data directory then), and the next
//! `vowguard run` resumes the waiting runs with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;
use vowguard_core::{AlertRouting, Error, Event};
use vowguard_response::{Incident, ResponseEngine, Run, read_records};

/// `vowguard incident ...`.
#[derive(Debug, Subcommand)]
pub enum IncidentAction {
    /// List incidents, most recent first.
    List {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print one incident with its timeline and runs, as JSON.
    Show {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The incident id.
        id: String,
    },
    /// Acknowledge an incident.
    Ack {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The incident id.
        id: String,
        /// Who acknowledges (recorded on the timeline).
        #[arg(long = "as", default_value = "cli")]
        actor: String,
    },
    /// Resolve an incident (its tickets are resolved too).
    Resolve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The incident id.
        id: String,
        /// The closing note.
        #[arg(long)]
        note: String,
        /// Who resolves.
        #[arg(long = "as", default_value = "cli")]
        actor: String,
    },
}

/// `vowguard playbook ...`.
#[derive(Debug, Subcommand)]
pub enum PlaybookAction {
    /// List the playbooks in effect (configured and default).
    List {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Which playbooks an event would start, and why (nothing runs).
    Explain {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// A file holding one event (JSON).
        event: PathBuf,
    },
    /// Run a playbook for an event now, in this process (its trigger is not checked).
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The playbook.
        name: String,
        /// A file holding one event (JSON).
        #[arg(long)]
        event: PathBuf,
        /// Record what would run without running it.
        #[arg(long)]
        dry_run: bool,
        /// How long to wait for the run to end before printing where it stands.
        #[arg(long, default_value_t = 60)]
        wait_seconds: u64,
    },
    /// List runs, most recent first.
    Runs {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this incident's.
        #[arg(long)]
        incident: Option<String>,
    },
    /// Print one run (steps, results, playbook snapshot) as JSON.
    Show {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The run id.
        run: String,
    },
    /// Approve a waiting approval step.
    Approve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The run id.
        run: String,
        /// The approval step id.
        step: String,
        /// Who approves (must be one of the step's approvers).
        #[arg(long = "as")]
        actor: String,
        /// A comment on the decision.
        #[arg(long)]
        comment: Option<String>,
        /// A structured field the step declares (`response_fields`), as NAME=VALUE (JSON
        /// values are read as JSON: numbers, true/false; anything else is a string).
        #[arg(long = "field", value_name = "NAME=VALUE")]
        fields: Vec<String>,
    },
    /// Reject a waiting approval step.
    Reject {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The run id.
        run: String,
        /// The approval step id.
        step: String,
        /// Who rejects (must be one of the step's approvers).
        #[arg(long = "as")]
        actor: String,
        /// A comment on the decision.
        #[arg(long)]
        comment: Option<String>,
        /// A structured field the step declares (`response_fields`), as NAME=VALUE (JSON
        /// values are read as JSON: numbers, true/false; anything else is a string).
        #[arg(long = "field", value_name = "NAME=VALUE")]
        fields: Vec<String>,
    },
}

fn data_dir(config: &Path) -> Result<PathBuf, Error> {
    let parsed = crate::Config::load(config)?;
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(dir.join(parsed.data_dir))
}

/// Builds the configuration with secrets from the environment.
fn load_for_cli(path: &Path) -> Result<crate::Assembly, Error> {
    let config = crate::Config::load(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    crate::assemble(
        &config,
        &crate::Environment {
            config_dir: &dir,
            secrets: &vowguard_core::ProcessEnv,
        },
    )
}

fn print_json(value: &serde_json::Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::internal(format!("encode output: {e}")))?;
    write_out(&format!("{text}\n"))
}

fn write_out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("write to stdout", e))
}

fn incident_line(i: &Incident) -> String {
    crate::logging::escape_control(&format!(
        "{}  {:<12} {}  {}  alerts={} opened={} by {}",
        i.id,
        i.state.as_str(),
        i.priority.short(),
        i.title,
        i.alert_count,
        i.opened.at.to_rfc3339(),
        i.opened.by
    )) + "\n"
}

fn run_line(r: &Run) -> String {
    crate::logging::escape_control(&format!(
        "{}  {:<17} {} v{}  incident={} started={}{}",
        r.id,
        r.state.as_str(),
        r.playbook,
        r.version,
        r.incident_id,
        r.started_at.to_rfc3339(),
        if r.dry_run { " (dry run)" } else { "" }
    )) + "\n"
}

/// Reads an event file for `route explain` and `playbook explain|run` (JSON as sent to
/// vowguard; an explicit `enrichment` object lets users try context the enrichers would add).
pub fn read_event(path: &Path) -> Result<Arc<Event>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid_input(format!("{}: invalid JSON: {e}", path.display())))?;
    let enrichment = value.as_object_mut().and_then(|o| o.remove("enrichment"));
    let mut event = Event::from_json_value(value)
        .map_err(|e| Error::invalid_input(format!("{}: {e}", path.display())))?;
    if let Some(enrichment) = enrichment {
        event.enrichment = serde_json::from_value(enrichment).map_err(|e| {
            Error::invalid_input(format!("{}: field `enrichment`: {e}", path.display()))
        })?;
    }
    Ok(Arc::new(event))
}

/// The engine of a command that writes (offline ack/resolve/approve/reject, `playbook
/// run`), with the audit log open for it: every timeline entry it writes is audited. Opening
/// the log is refused while `vowguard run` holds it (the running process owns the record
/// file then; use its admin API).
async fn writing_engine(
    assembly: &crate::Assembly,
) -> Result<(ResponseEngine, Option<vowguard_audit::AuditLog>), Error> {
    let engine = engine_of(assembly)?;
    let log = assembly.audit.open(&assembly.data_dir).await?;
    assembly.response_audit.bind_log(&log);
    Ok((engine, log))
}

/// Stops the engine (its writes audited) and closes the audit log.
async fn finish(engine: &ResponseEngine, log: Option<vowguard_audit::AuditLog>) {
    engine.shutdown(Duration::from_secs(30)).await;
    crate::audit::close(log).await;
}

fn engine_of(assembly: &crate::Assembly) -> Result<ResponseEngine, Error> {
    assembly
        .response
        .clone()
        .ok_or_else(|| Error::config("automated response is disabled (`response.enabled = false`)"))
}

/// Sends a state change to the running instance's admin API; `None` when no server with
/// an admin token is configured.
pub async fn via_api(
    config: &Path,
    path: &str,
    body: serde_json::Value,
) -> Result<Option<serde_json::Value>, Error> {
    let parsed = crate::Config::load(config)?;
    let Some(server) = parsed.server else {
        return Ok(None);
    };
    let Some(token) = server.admin_token else {
        return Ok(None);
    };
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let token = token.resolve("server.admin_token", &vowguard_core::ProcessEnv, &dir)?;
    let mut listen = server.listen;
    if listen.ip().is_unspecified() {
        listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{listen}{path}");
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(vowguard_core::secrecy::ExposeSecret::expose_secret(&token))
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot reach vowguard at {listen} (is it running?): {}",
                e.without_url()
            ))
        })?;
    let status = response.status();
    let value: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        let msg = value["error"]
            .as_str()
            .unwrap_or("request refused")
            .to_owned();
        return Err(Error::rejected(format!("{status}: {msg}")));
    }
    Ok(Some(value))
}

/// `vowguard incident ...`.
pub async fn incident(action: IncidentAction) -> Result<(), Error> {
    match action {
        IncidentAction::List { config } => {
            let (incidents, _) = read_records(&data_dir(&config)?)?;
            let mut out = String::new();
            for i in &incidents {
                out.push_str(&incident_line(i));
            }
            if incidents.is_empty() {
                out.push_str("no incidents\n");
            }
            write_out(&out)
        }
        IncidentAction::Show { config, id } => {
            let (incidents, runs) = read_records(&data_dir(&config)?)?;
            let incident = incidents
                .into_iter()
                .find(|i| i.id == id)
                .ok_or_else(|| Error::invalid_input(format!("no incident `{id}`")))?;
            let runs: Vec<Run> = runs.into_iter().filter(|r| r.incident_id == id).collect();
            print_json(&json!({ "incident": incident, "runs": runs }))
        }
        IncidentAction::Ack { config, id, actor } => {
            if let Some(v) = via_api(
                &config,
                &format!("/api/incidents/{id}/ack"),
                json!({"as": actor}),
            )
            .await?
            {
                return print_json(&v);
            }
            let assembly = load_for_cli(&config)?;
            let (engine, log) = writing_engine(&assembly).await?;
            let incident = engine.acknowledge(&id, &format!("cli:{actor}")).await;
            finish(&engine, log).await;
            print_json(&json!({ "incident": incident? }))
        }
        IncidentAction::Resolve {
            config,
            id,
            note,
            actor,
        } => {
            if let Some(v) = via_api(
                &config,
                &format!("/api/incidents/{id}/resolve"),
                json!({"as": actor, "note": note}),
            )
            .await?
            {
                return print_json(&v);
            }
            let assembly = load_for_cli(&config)?;
            let (engine, log) = writing_engine(&assembly).await?;
            let incident = engine.resolve(&id, &format!("cli:{actor}"), &note).await;
            finish(&engine, log).await;
            print_json(&json!({ "incident": incident? }))
        }
    }
}

/// `vowguard playbook ...`.
pub async fn playbook(action: PlaybookAction) -> Result<(), Error> {
    match action {
        PlaybookAction::List { config } => {
            let assembly = load_for_cli(&config)?;
            let engine = engine_of(&assembly)?;
            let mut out = String::new();
            for p in engine.playbooks() {
                let steps: Vec<String> = p.config.steps.iter().map(|s| s.id.clone()).collect();
                out.push_str(&format!(
                    "{} v{}{}{}: {}\n  steps: {}\n",
                    p.name,
                    p.config.version,
                    if p.config.enabled { "" } else { " (disabled)" },
                    if p.config.dry_run { " (dry run)" } else { "" },
                    p.config.description,
                    steps.join(", ")
                ));
            }
            write_out(&out)
        }
        PlaybookAction::Explain { config, event } => {
            let assembly = load_for_cli(&config)?;
            let engine = engine_of(&assembly)?;
            let event = read_event(&event)?;
            let alerts = assembly
                .router
                .dry_run(&event)
                .map(|d| d.alerts)
                .unwrap_or_default();
            let mut out = String::new();
            if alerts.is_empty() {
                out.push_str("the event raises no alert: no playbook runs\n");
            }
            for routed in &alerts {
                out.push_str(&crate::logging::escape_control(&format!(
                    "alert on route {} ({}):",
                    routed.alert.route, routed.alert.priority
                )));
                out.push('\n');
                for e in engine.explain(&routed.alert) {
                    out.push_str(&format!(
                        "  {} {}\n",
                        if e.matches { "RUNS" } else { "no  " },
                        e.playbook
                    ));
                    for r in e.reasons {
                        out.push_str(&format!("       {}\n", crate::logging::escape_control(&r)));
                    }
                }
            }
            write_out(&out)
        }
        PlaybookAction::Run {
            config,
            name,
            event,
            dry_run,
            wait_seconds,
        } => {
            let assembly = load_for_cli(&config)?;
            let event = read_event(&event)?;
            let (engine, log) = writing_engine(&assembly).await?;
            // Not `start`: this process drives only the run it starts, never the runs a
            // `vowguard run` on the same data directory is driving.
            let run = async {
                let run_id = engine.run_playbook(&name, event, dry_run, "cli").await?;
                engine
                    .wait_run(&run_id, Duration::from_secs(wait_seconds))
                    .await
                    .ok_or_else(|| Error::internal("the run vanished"))
            }
            .await;
            finish(&engine, log).await;
            print_json(&serde_json::to_value(&run?).unwrap_or_default())
        }
        PlaybookAction::Runs { config, incident } => {
            let (_, runs) = read_records(&data_dir(&config)?)?;
            let mut out = String::new();
            for r in runs
                .iter()
                .filter(|r| incident.as_ref().is_none_or(|i| &r.incident_id == i))
            {
                out.push_str(&run_line(r));
            }
            if out.is_empty() {
                out.push_str("no runs\n");
            }
            write_out(&out)
        }
        PlaybookAction::Show { config, run } => {
            let (_, runs) = read_records(&data_dir(&config)?)?;
            let run = runs
                .into_iter()
                .find(|r| r.id == run)
                .ok_or_else(|| Error::invalid_input(format!("no run `{run}`")))?;
            print_json(&serde_json::to_value(&run).unwrap_or_default())
        }
        PlaybookAction::Approve {
            config,
            run,
            step,
            actor,
            comment,
            fields,
        } => {
            let decision = Decision {
                approve: true,
                comment,
                fields: parse_fields(&fields)?,
            };
            decide(&config, &run, &step, &actor, decision).await
        }
        PlaybookAction::Reject {
            config,
            run,
            step,
            actor,
            comment,
            fields,
        } => {
            let decision = Decision {
                approve: false,
                comment,
                fields: parse_fields(&fields)?,
            };
            decide(&config, &run, &step, &actor, decision).await
        }
    }
}

/// An approval decision from the command line.
struct Decision {
    approve: bool,
    comment: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

/// `--field NAME=VALUE`s: JSON scalars as JSON, anything else as a string.
fn parse_fields(args: &[String]) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let mut out = serde_json::Map::new();
    for arg in args {
        let (name, value) = arg.split_once('=').ok_or_else(|| {
            Error::invalid_input(format!(
                "`--field {}`: expected NAME=VALUE",
                crate::logging::escape_control(arg)
            ))
        })?;
        let value = match serde_json::from_str::<serde_json::Value>(value) {
            Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v,
            _ => serde_json::Value::String(value.to_owned()),
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

async fn decide(
    config: &Path,
    run: &str,
    step: &str,
    actor: &str,
    decision: Decision,
) -> Result<(), Error> {
    let verb = if decision.approve {
        "approve"
    } else {
        "reject"
    };
    if let Some(v) = via_api(
        config,
        &format!("/api/playbook-runs/{run}/{verb}"),
        json!({"as": actor, "step": step, "comment": decision.comment, "fields": decision.fields}),
    )
    .await?
    {
        return print_json(&v);
    }
    let assembly = load_for_cli(config)?;
    let (engine, log) = writing_engine(&assembly).await?;
    let decided = engine
        .decide_with(
            run,
            step,
            actor,
            decision.approve,
            decision.comment.as_deref(),
            &decision.fields,
        )
        .await;
    finish(&engine, log).await;
    decided?;
    print_json(&json!({ "run": engine.run(run) }))
}

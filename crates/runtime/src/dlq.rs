//! The dead-letter store from the command line: `vowguard dlq list | show | replay`.
//!
//! Dead letters are appended by the sinks to `<data_dir>/dead_letters.jsonl`. That file is
//! never rewritten (a running vowguard may be appending to it): a replay that delivers a
//! letter records it in the append-only `<data_dir>/dead_letters.replayed.jsonl`, and
//! `list` leaves replayed letters out. A letter that fails again stays listed.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vowguard_core::Error;
use vowguard_pipeline::{DeadLetter, Pipeline, PipelineSpec, read_dead_letters};

use crate::Assembly;

/// Identifies one dead letter (a sink can dead-letter the same event more than once).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct LetterKey {
    sink: String,
    event_id: String,
    time: String,
}

fn key(letter: &DeadLetter) -> LetterKey {
    LetterKey {
        sink: letter.sink.clone(),
        event_id: letter.event.id.clone(),
        time: letter.time.to_rfc3339(),
    }
}

fn replayed(data_dir: &Path) -> Result<HashSet<LetterKey>, Error> {
    let path = data_dir.join("dead_letters.replayed.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// The dead letters not yet replayed, optionally only those of one sink.
pub fn pending(data_dir: &Path, sink: Option<&str>) -> Result<Vec<DeadLetter>, Error> {
    let done = replayed(data_dir)?;
    Ok(read_dead_letters(&data_dir.join("dead_letters.jsonl"))?
        .into_iter()
        .filter(|l| sink.is_none_or(|s| l.sink == s))
        .filter(|l| !done.contains(&key(l)))
        .collect())
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Letters sent again.
    pub replayed: usize,
    /// Of those, delivered this time.
    pub delivered: usize,
    /// Of those, failed again (still listed), with the new reason.
    pub failed: Vec<(String, String, String)>,
    /// Letters skipped because their sink is no longer configured.
    pub skipped_unconfigured: usize,
}

/// Sends the pending dead letters (of `sink`, or all) to their sinks again, through a
/// pipeline of its own (shared retry policy, circuit breaker off so it ends).
pub async fn replay(assembly: Assembly, sink: Option<&str>) -> Result<ReplayReport, Error> {
    replay_reporting(assembly, sink, &|| {}).await
}

/// Like [`replay`], calling `done` as each letter is finished (delivered or failed again):
/// what the progress bar of `vowguard dlq replay` counts.
pub async fn replay_reporting(
    assembly: Assembly,
    sink: Option<&str>,
    done: &(dyn Fn() + Sync),
) -> Result<ReplayReport, Error> {
    // Replays are audited (the events re-accepted, their outcomes, who replayed what).
    let audit_log = assembly.audit.open(&assembly.data_dir).await?;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let report = replay_with(
        &assembly.data_dir,
        assembly.spec.sinks,
        audit_log.as_ref(),
        &actor,
        sink,
        done,
    )
    .await;
    crate::audit::close(audit_log).await;
    report
}

/// Like [`replay`], with the sinks, the audit log (left open) and the actor given: what
/// the operator console's replay runs in a running instance.
pub async fn replay_with(
    data_dir: &Path,
    mut sinks: Vec<vowguard_pipeline::SinkSpec>,
    audit_log: Option<&vowguard_audit::AuditLog>,
    actor: &str,
    sink: Option<&str>,
    done: &(dyn Fn() + Sync),
) -> Result<ReplayReport, Error> {
    let letters = pending(data_dir, sink)?;
    let mut report = ReplayReport::default();
    let actor = actor.to_owned();
    let scratch = data_dir.join(format!(
        "replay-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    let mut ids: Vec<String> = letters.iter().map(|l| l.sink.clone()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let batch: Vec<&DeadLetter> = letters.iter().filter(|l| l.sink == id).collect();
        let Some(index) = sinks.iter().position(|s| s.id == id) else {
            report.skipped_unconfigured += batch.len();
            continue;
        };
        let mut spec = sinks.swap_remove(index);
        spec.breaker.failure_threshold = 0;
        let dir = scratch.join(&id);
        let pipeline = Pipeline::start_with_audit(
            PipelineSpec {
                data_dir: dir.clone(),
                sinks: vec![spec],
                ..PipelineSpec::default()
            },
            audit_log.map(|l| crate::audit::pipeline_audit(l, "replay")),
        )
        .await?;
        let mut deliveries = Vec::with_capacity(batch.len());
        for letter in &batch {
            deliveries.push(pipeline.submit(letter.event.clone()).await?.delivery);
        }
        for delivery in deliveries {
            // Resolves once the sink is done with the letter (delivered or failed again).
            let _ = delivery.await;
            done();
        }
        pipeline.shutdown().await;
        let failed_again = read_dead_letters(&dir.join("dead_letters.jsonl"))?;
        let failed_ids: HashSet<&str> = failed_again.iter().map(|l| l.event.id.as_str()).collect();
        let mut done = OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("dead_letters.replayed.jsonl"))
            .map_err(|e| Error::io("cannot open dead_letters.replayed.jsonl", e))?;
        for letter in &batch {
            report.replayed += 1;
            if failed_ids.contains(letter.event.id.as_str()) {
                continue;
            }
            report.delivered += 1;
            let line = serde_json::to_string(&key(letter)).expect("a key serialises") + "\n";
            done.write_all(line.as_bytes())
                .and_then(|()| done.sync_data())
                .map_err(|e| Error::io("cannot write dead_letters.replayed.jsonl", e))?;
        }
        if let Some(log) = audit_log {
            use vowguard_core::AuditTrail as _;
            let delivered: Vec<String> = batch
                .iter()
                .filter(|l| !failed_ids.contains(l.event.id.as_str()))
                .map(|l| l.event.id.clone())
                .collect();
            log.append(vec![
                vowguard_core::AuditRecord::Replayed {
                    at: chrono::Utc::now(),
                    sink: id.clone(),
                    event_ids: delivered.clone(),
                    actor: actor.clone(),
                },
                vowguard_core::AuditRecord::Admin {
                    at: chrono::Utc::now(),
                    actor: actor.clone(),
                    action: "dlq.replay".into(),
                    target: id.clone(),
                    result: format!(
                        "{} replayed, {} delivered, {} failed again",
                        batch.len(),
                        delivered.len(),
                        failed_again.len()
                    ),
                },
            ])
            .await?;
        }
        for letter in failed_again {
            report
                .failed
                .push((letter.sink, letter.event.id, letter.reason));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(report)
}

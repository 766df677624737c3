//! The dead-letter store from the command line: `vowguard dlq list | show | replay`.
//!
//! Dead letters are appended by the sinks to `<data_dir>/dead_letters.jsonl`. That file is
//! never rewritten (a running vowguard may be appending to it): a replay that delivers a
//! letter records it in the append-only `<data_dir>/dead_letters.replayed.jsonl`, and
//! `list` leaves replayed letters out. A letter that fails again stays listed.
//!
//! On the jetstream backend the enrichment consumer's dead letters (sink `_enrich`: raw
//! events whose enriched copy the stream refused) are replayed into the stream: each is
//! published again where intake publishes (the raw subject, with enrichers), so the
//! cluster enriches and delivers it like a new event. Its message id is
//! [`replay_message_id`], not the event id, since the event's own publish may still be
//! inside the stream's duplicate window; a replay retried inside that window is stored
//! once. Such a letter counts as requeued once the stream holds it.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vowguard_core::Error;
use vowguard_jetstream::{ENRICH_CONSUMER, JetStream};
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
    /// Of those, published to the JetStream queue again (the `_enrich` letters): the
    /// cluster enriches and delivers them as new events.
    pub requeued: usize,
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
    // The stream is reached only when `_enrich` letters are to be replayed.
    let needs_stream = sink.is_none_or(|s| s == ENRICH_CONSUMER)
        && !pending(&assembly.data_dir, Some(ENRICH_CONSUMER))?.is_empty();
    let stream = match (&assembly.cluster, needs_stream) {
        (Some(setup), true) => Some(setup.connect().await?),
        _ => None,
    };
    let report = replay_with(
        &assembly.data_dir,
        assembly.spec.sinks,
        stream.as_ref(),
        audit_log.as_ref(),
        &actor,
        sink,
        done,
    )
    .await;
    crate::audit::close(audit_log).await;
    report
}

/// Like [`replay`], with the sinks, the JetStream queue (for the `_enrich` letters; `None`
/// on the local backend, where they are skipped), the audit log (left open) and the actor
/// given: what the operator console's replay runs in a running instance.
pub async fn replay_with(
    data_dir: &Path,
    mut sinks: Vec<vowguard_pipeline::SinkSpec>,
    stream: Option<&JetStream>,
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
        // Each letter's outcome: `None` done (delivered or requeued), else the new reason.
        let outcomes: Vec<Option<String>> = if id == ENRICH_CONSUMER {
            let Some(js) = stream else {
                report.skipped_unconfigured += batch.len();
                continue;
            };
            let mut outcomes = Vec::with_capacity(batch.len());
            for letter in &batch {
                outcomes.push(requeue(js, letter).await.err().map(|e| e.to_string()));
                done();
            }
            report.requeued += outcomes.iter().filter(|o| o.is_none()).count();
            outcomes
        } else {
            let Some(index) = sinks.iter().position(|s| s.id == id) else {
                report.skipped_unconfigured += batch.len();
                continue;
            };
            let spec = sinks.swap_remove(index);
            let failed_again = redeliver(spec, &scratch.join(&id), &batch, audit_log, done).await?;
            report.delivered += batch.len()
                - batch
                    .iter()
                    .filter(|l| failed_again.contains_key(l.event.id.as_str()))
                    .count();
            batch
                .iter()
                .map(|l| failed_again.get(l.event.id.as_str()).cloned())
                .collect()
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("dead_letters.replayed.jsonl"))
            .map_err(|e| Error::io("cannot open dead_letters.replayed.jsonl", e))?;
        let mut succeeded = Vec::new();
        for (letter, outcome) in batch.iter().zip(&outcomes) {
            report.replayed += 1;
            if let Some(reason) = outcome {
                report
                    .failed
                    .push((letter.sink.clone(), letter.event.id.clone(), reason.clone()));
                continue;
            }
            succeeded.push(letter.event.id.clone());
            let line = serde_json::to_string(&key(letter)).expect("a key serialises") + "\n";
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io("cannot write dead_letters.replayed.jsonl", e))?;
        }
        if let Some(log) = audit_log {
            use vowguard_core::AuditTrail as _;
            let outcome = if id == ENRICH_CONSUMER {
                "requeued to the stream"
            } else {
                "delivered"
            };
            log.append(vec![
                vowguard_core::AuditRecord::Replayed {
                    at: chrono::Utc::now(),
                    sink: id.clone(),
                    event_ids: succeeded.clone(),
                    actor: actor.clone(),
                },
                vowguard_core::AuditRecord::Admin {
                    at: chrono::Utc::now(),
                    actor: actor.clone(),
                    action: "dlq.replay".into(),
                    target: id.clone(),
                    result: format!(
                        "{} replayed, {} {outcome}, {} failed again",
                        batch.len(),
                        succeeded.len(),
                        batch.len() - succeeded.len()
                    ),
                },
            ])
            .await?;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(report)
}

/// Sends `batch` (letters of sink `spec`) through a pipeline of its own in `dir` (shared
/// retry policy, circuit breaker off so it ends); the ids that failed again, with why.
async fn redeliver(
    mut spec: vowguard_pipeline::SinkSpec,
    dir: &Path,
    batch: &[&DeadLetter],
    audit_log: Option<&vowguard_audit::AuditLog>,
    done: &(dyn Fn() + Sync),
) -> Result<HashMap<String, String>, Error> {
    spec.breaker.failure_threshold = 0;
    let pipeline = Pipeline::start_with_audit(
        PipelineSpec {
            data_dir: dir.to_path_buf(),
            sinks: vec![spec],
            ..PipelineSpec::default()
        },
        audit_log.map(|l| crate::audit::pipeline_audit(l, "replay")),
    )
    .await?;
    let mut deliveries = Vec::with_capacity(batch.len());
    for letter in batch {
        deliveries.push(pipeline.submit(letter.event.clone()).await?.delivery);
    }
    for delivery in deliveries {
        // Resolves once the sink is done with the letter (delivered or failed again).
        let _ = delivery.await;
        done();
    }
    pipeline.shutdown().await;
    Ok(read_dead_letters(&dir.join("dead_letters.jsonl"))?
        .into_iter()
        .map(|l| (l.event.id, l.reason))
        .collect())
}

/// The `Nats-Msg-Id` of a replayed `_enrich` letter: distinct from the event's own id
/// (whose publish may still be inside the duplicate window), the same for the same letter
/// (a replay retried inside the window is stored once).
pub fn replay_message_id(letter: &DeadLetter) -> String {
    format!(
        "replay:{}:{}",
        letter.event.id,
        letter.time.timestamp_micros()
    )
}

/// Publishes an `_enrich` letter's event where intake publishes, waiting for the PubAck
/// (retried with the shared policy while the stream cannot take it).
async fn requeue(js: &JetStream, letter: &DeadLetter) -> Result<(), Error> {
    let payload = serde_json::to_vec(&letter.event).map_err(|e| {
        Error::invalid_input(format!("event {} cannot be stored: {e}", letter.event.id))
    })?;
    let id = replay_message_id(letter);
    let (result, _) = vowguard_core::RetryPolicy::default()
        .run(|_| js.republish(&id, bytes::Bytes::from(payload.clone())))
        .await;
    result.map(|_| ())
}

//! The engine's own durable record: `<data_dir>/response/records.jsonl`, one JSON record
//! per line, appended and fsynced before anything it describes is acted on further, and
//! replayed at start. A torn last line (kill -9 in the middle of a write) is dropped with a
//! warning. The file is compacted when it grows past its bound: open incidents, the most
//! recent closed ones and their runs are rewritten to a new file that replaces the old one
//! atomically.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vowguard_core::Error;

use crate::model::{Incident, IncidentState, Run, StepRecord, StepStatus, TimelineEntry};

/// The record file's name under `<data_dir>/response/`.
pub const RECORD_FILE: &str = "records.jsonl";

/// One line of the record file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub(crate) enum Record {
    /// An incident's fields (its timeline travels in `timeline` records).
    Incident { incident: Box<Incident> },
    /// One timeline entry.
    Timeline {
        incident_id: String,
        entry: TimelineEntry,
    },
    /// A run's header (its steps travel in `step` records).
    Run { run: Box<Run> },
    /// One step's current record.
    Step { run_id: String, step: StepRecord },
    /// How many incidents a fingerprint had (written at compaction, so that incidents
    /// dropped from the file never have their id given to a new one).
    Generation { fingerprint: String, count: u32 },
}

/// What the records add up to.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) incidents: HashMap<String, Incident>,
    /// Fingerprint → the id of its incident that is not resolved.
    pub(crate) open_by_fingerprint: HashMap<String, String>,
    /// Fingerprint → how many incidents it had.
    pub(crate) generations: HashMap<String, u32>,
    pub(crate) runs: HashMap<String, Run>,
    /// Idempotency key → the finished step that carried it.
    pub(crate) done_keys: HashMap<String, StepRecord>,
}

impl State {
    pub(crate) fn apply(&mut self, record: Record) {
        match record {
            Record::Incident { incident } => {
                let mut incident = *incident;
                if let Some(old) = self.incidents.remove(&incident.id) {
                    incident.timeline = old.timeline;
                } else {
                    *self
                        .generations
                        .entry(incident.fingerprint.clone())
                        .or_default() += 1;
                }
                if incident.state == IncidentState::Resolved {
                    if self.open_by_fingerprint.get(&incident.fingerprint) == Some(&incident.id) {
                        self.open_by_fingerprint.remove(&incident.fingerprint);
                    }
                } else {
                    self.open_by_fingerprint
                        .insert(incident.fingerprint.clone(), incident.id.clone());
                }
                self.incidents.insert(incident.id.clone(), incident);
            }
            Record::Timeline { incident_id, entry } => {
                if let Some(incident) = self.incidents.get_mut(&incident_id) {
                    incident.timeline.push(entry);
                }
            }
            Record::Run { run } => {
                let mut run = *run;
                if let Some(old) = self.runs.remove(&run.id) {
                    run.steps = old.steps;
                }
                self.runs.insert(run.id.clone(), run);
            }
            Record::Generation { fingerprint, count } => {
                let n = self.generations.entry(fingerprint).or_default();
                *n = (*n).max(count);
            }
            Record::Step { run_id, step } => {
                if matches!(step.status, StepStatus::Succeeded) && !step.dry_run {
                    self.done_keys
                        .insert(step.idempotency_key.clone(), step.clone());
                }
                if let Some(run) = self.runs.get_mut(&run_id) {
                    run.steps.insert(step.step_id.clone(), step);
                }
            }
        }
    }

    /// Drops resolved incidents (and their runs) from memory beyond the `keep` most
    /// recently resolved, once there are a quarter more than that: memory stays bounded
    /// by the open incidents plus `keep`. The record file, the audit log and the report
    /// store keep them. An incident with a run still going stays.
    pub(crate) fn evict_closed(&mut self, keep: usize) -> usize {
        let running: std::collections::HashSet<&str> = self
            .runs
            .values()
            .filter(|r| !r.state.is_terminal())
            .map(|r| r.incident_id.as_str())
            .collect();
        let mut closed: Vec<(chrono::DateTime<chrono::Utc>, String)> = self
            .incidents
            .values()
            .filter(|i| i.state == IncidentState::Resolved && !running.contains(i.id.as_str()))
            .map(|i| {
                (
                    i.resolved.as_ref().map_or(i.opened.at, |r| r.at),
                    i.id.clone(),
                )
            })
            .collect();
        if closed.len() <= keep + keep / 4 {
            return 0;
        }
        closed.sort_by(|a, b| b.cmp(a));
        let dropped: std::collections::HashSet<String> =
            closed.into_iter().skip(keep).map(|(_, id)| id).collect();
        self.incidents.retain(|id, _| !dropped.contains(id));
        let mut keys = Vec::new();
        self.runs.retain(|_, r| {
            let gone = dropped.contains(&r.incident_id);
            if gone {
                keys.extend(r.steps.values().map(|s| s.idempotency_key.clone()));
            }
            !gone
        });
        for k in keys {
            self.done_keys.remove(&k);
        }
        dropped.len()
    }

    /// The records that rebuild this state, keeping every incident not resolved and the
    /// `keep_closed` most recently resolved ones (with their runs).
    fn compacted(&self, keep_closed: usize) -> Vec<Record> {
        let mut closed: Vec<&Incident> = self
            .incidents
            .values()
            .filter(|i| i.state == IncidentState::Resolved)
            .collect();
        closed.sort_by_key(|i| std::cmp::Reverse(i.resolved.as_ref().map(|r| r.at)));
        let dropped: std::collections::HashSet<&str> = closed
            .iter()
            .skip(keep_closed)
            .map(|i| i.id.as_str())
            .collect();
        let mut incidents: Vec<&Incident> = self
            .incidents
            .values()
            .filter(|i| !dropped.contains(i.id.as_str()))
            .collect();
        incidents.sort_by_key(|i| i.opened.at);
        let mut out = Vec::new();
        for incident in incidents {
            let mut header = incident.clone();
            header.timeline = Vec::new();
            out.push(Record::Incident {
                incident: Box::new(header),
            });
            for entry in &incident.timeline {
                out.push(Record::Timeline {
                    incident_id: incident.id.clone(),
                    entry: entry.clone(),
                });
            }
        }
        let mut runs: Vec<&Run> = self
            .runs
            .values()
            .filter(|r| !dropped.contains(r.incident_id.as_str()))
            .collect();
        runs.sort_by_key(|r| r.started_at);
        for run in runs {
            let mut header = run.clone();
            header.steps = Default::default();
            out.push(Record::Run {
                run: Box::new(header),
            });
            for step in run.steps.values() {
                out.push(Record::Step {
                    run_id: run.id.clone(),
                    step: step.clone(),
                });
            }
        }
        // After the incidents (whose replay counts them too): the counts win.
        let mut generations: Vec<(&String, &u32)> = self.generations.iter().collect();
        generations.sort();
        for (fingerprint, count) in generations {
            out.push(Record::Generation {
                fingerprint: fingerprint.clone(),
                count: *count,
            });
        }
        out
    }
}

/// The append-only record file. It is opened for writing on the first append, so commands
/// that only read (a CLI `validate`, `route explain`) never touch it.
#[derive(Debug)]
pub(crate) struct RecordFile {
    path: PathBuf,
    file: Option<File>,
    bytes: u64,
    max_bytes: u64,
    keep_closed: usize,
}

impl RecordFile {
    /// Replays the file under `dir` (creating the directory).
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
        keep_closed: usize,
    ) -> Result<(Self, State), Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let path = dir.join(RECORD_FILE);
        let (mut state, good_len) = replay(&path)?;
        state.evict_closed(keep_closed);
        Ok((
            Self {
                path,
                file: None,
                bytes: good_len,
                max_bytes,
                keep_closed,
            },
            state,
        ))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for appending; a torn last line (an interrupted write, no newline
    /// after it) is cut off first.
    fn writer(&mut self) -> Result<&mut File, Error> {
        if self.file.is_none() {
            let io = |what: &str, e| Error::io(format!("{what} {}", self.path.display()), e);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&self.path)
                .map_err(|e| io("open", e))?;
            let len = file.metadata().map_err(|e| io("stat", e))?.len();
            if len > self.bytes {
                let tail = std::fs::read(&self.path).map_err(|e| io("read", e))?;
                let tail = tail.get(self.bytes as usize..).unwrap_or_default();
                if tail.contains(&b'\n') {
                    return Err(Error::unavailable(format!(
                        "{} was appended to by another process since it was read; not writing to it",
                        self.path.display()
                    )));
                }
                file.set_len(self.bytes)
                    .map_err(|e| io("truncate the torn tail of", e))?;
            }
            self.file = Some(file);
        }
        Ok(self
            .file
            .as_mut()
            .unwrap_or_else(|| unreachable!("opened above")))
    }

    /// Appends `records` and syncs them to disk (one write, one fsync).
    pub(crate) fn append(&mut self, records: &[Record]) -> Result<(), Error> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r)
                .map_err(|e| Error::internal(format!("encode response record: {e}")))?;
            buf.push(b'\n');
        }
        let path = self.path.display().to_string();
        let file = self.writer()?;
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(format!("append to {path}"), e))?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Rewrites the file from `state` when it has grown past its bound.
    pub(crate) fn maybe_compact(&mut self, state: &State) -> Result<bool, Error> {
        if self.bytes <= self.max_bytes {
            return Ok(false);
        }
        let tmp = self.path.with_extension("jsonl.compact");
        let io = |what: &str, e| Error::io(format!("{what} {}", tmp.display()), e);
        let mut out = File::create(&tmp).map_err(|e| io("create", e))?;
        let mut bytes = 0u64;
        for r in state.compacted(self.keep_closed) {
            let mut line = serde_json::to_vec(&r)
                .map_err(|e| Error::internal(format!("encode response record: {e}")))?;
            line.push(b'\n');
            out.write_all(&line).map_err(|e| io("write", e))?;
            bytes += line.len() as u64;
        }
        out.sync_all().map_err(|e| io("sync", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("rename", e))?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        self.file = Some(
            OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io(format!("reopen {}", self.path.display()), e))?,
        );
        tracing::info!(
            before = self.bytes,
            after = bytes,
            "response record file compacted"
        );
        self.bytes = bytes;
        Ok(true)
    }
}

/// Reads the file into a state; returns it and the length of the good prefix.
pub(crate) fn replay(path: &Path) -> Result<(State, u64), Error> {
    let mut state = State::default();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((state, 0)),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    let mut good = 0usize;
    let mut line_no = 0usize;
    while good < data.len() {
        line_no += 1;
        let Some(end) = data[good..].iter().position(|b| *b == b'\n') else {
            tracing::warn!(
                file = %path.display(),
                bytes = data.len() - good,
                "torn last line of the response record file dropped (interrupted write)"
            );
            break;
        };
        let line = &data[good..good + end];
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => state.apply(r),
            Err(e) => tracing::error!(
                file = %path.display(),
                line = line_no,
                error = %e,
                "unreadable response record skipped"
            ),
        }
        good += end + 1;
    }
    Ok((state, good as u64))
}

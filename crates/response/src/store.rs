//! Where the engine keeps its record: the [`IncidentStorage`] trait, the default
//! [`FileIncidentStore`] (`<data_dir>/response/records.jsonl`, one JSON record per line,
//! appended and fsynced before anything it describes is acted on further, and replayed at
//! start; a torn last line, from kill -9 in the middle of a write, is dropped with a
//! warning) and [`MemoryIncidentStore`]. When the storage grows past its bound the engine
//! compacts it: open incidents, the most recent closed ones and their runs replace
//! everything stored (the file does so atomically, by renaming a new file over the old).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vowguard_core::Error;

use crate::model::{Incident, IncidentState, Run, StepRecord, StepStatus, TimelineEntry};

/// The record file's name under `<data_dir>/response/`.
pub const RECORD_FILE: &str = "records.jsonl";

/// One change to the engine's record: what an [`IncidentStorage`] keeps. A storage treats
/// records as opaque values (they serialise with serde, one JSON object each) and hands
/// them back in the order they were appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum IncidentRecord {
    /// An incident's fields (its timeline travels in `timeline` records).
    Incident {
        /// The incident, without its timeline.
        incident: Box<Incident>,
    },
    /// One timeline entry.
    Timeline {
        /// The incident it belongs to.
        incident_id: String,
        /// The entry.
        entry: TimelineEntry,
    },
    /// A run's header (its steps travel in `step` records).
    Run {
        /// The run, without its steps.
        run: Box<Run>,
    },
    /// One step's current record.
    Step {
        /// The run it belongs to.
        run_id: String,
        /// The step.
        step: StepRecord,
    },
    /// How many incidents a fingerprint had (written at compaction, so that incidents
    /// dropped from the storage never have their id given to a new one).
    Generation {
        /// The alert group's fingerprint.
        fingerprint: String,
        /// How many incidents it had.
        count: u32,
    },
}

pub(crate) type Record = IncidentRecord;

/// Where a [`ResponseEngine`](crate::ResponseEngine) keeps incidents, runs and steps: the
/// [`FileIncidentStore`] by default, [`MemoryIncidentStore`] for tests and hosts that accept
/// losing them at exit, or a host's own (pass it to
/// [`EngineBuilder::incident_storage`](crate::EngineBuilder::incident_storage)).
///
/// # Contract
///
/// * [`append`](Self::append) stores the records as one unit, durably as far as the storage
///   goes, before it returns `Ok`: the engine acts on a change (starts a step, calls out)
///   only after its records are stored. Concurrent appends never interleave their records.
///   The engine appends from one task at a time.
/// * [`load`](Self::load) returns every record stored, in append order (after the last
///   [`replace`](Self::replace), its records first). It is called once, when the engine is
///   built, from synchronous code: a storage behind a network client loads with a blocking
///   call or keeps what it loaded before. Data it cannot read is an error naming where
///   (file and line), never skipped: skipped records would be lost at the next compaction.
/// * [`wants_compaction`](Self::wants_compaction) says the storage has grown past its bound;
///   the engine then calls [`replace`](Self::replace) with the records that rebuild its
///   state (open incidents, the `keep_closed_incidents` most recently closed, their runs),
///   which must replace everything stored at once: after a crash, `load` returns either
///   the old records or the new ones. What the storage holds stays bounded by the open
///   incidents plus the closed ones kept.
///
/// # Example
///
/// A host keeping the records in its own database would store each record as JSON; here a
/// vector stands in for it:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vowguard_core::Error;
/// use vowguard_response::{IncidentRecord, IncidentStorage, ResponseConfig, ResponseEngine};
///
/// #[derive(Debug, Default)]
/// struct HostRecords(Mutex<Vec<String>>);
///
/// #[async_trait::async_trait]
/// impl IncidentStorage for HostRecords {
///     fn load(&self) -> Result<Vec<IncidentRecord>, Error> {
///         let rows = self.0.lock().unwrap();
///         rows.iter()
///             .enumerate()
///             .map(|(n, row)| {
///                 serde_json::from_str(row).map_err(|e| {
///                     Error::internal(format!("host incident table row {}: {e}", n + 1))
///                 })
///             })
///             .collect()
///     }
///     async fn append(&self, records: Arc<[IncidentRecord]>) -> Result<(), Error> {
///         let rows: Vec<String> = records
///             .iter()
///             .map(|r| serde_json::to_string(r).expect("records serialise"))
///             .collect();
///         self.0.lock().unwrap().extend(rows);
///         Ok(())
///     }
///     fn wants_compaction(&self) -> bool {
///         self.0.lock().unwrap().len() > 100_000
///     }
///     async fn replace(&self, records: Vec<IncidentRecord>) -> Result<(), Error> {
///         let rows = records
///             .iter()
///             .map(|r| serde_json::to_string(r).expect("records serialise"))
///             .collect();
///         *self.0.lock().unwrap() = rows;
///         Ok(())
///     }
///     fn location(&self) -> String {
///         "the host's incident table".into()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// use vowguard_core::{Alert, Category, Event, Priority, RoutedAlert, Severity};
///
/// let data_dir = tempfile::tempdir().unwrap();
/// let records = Arc::new(HostRecords::default());
/// let engine = ResponseEngine::builder(ResponseConfig::default())
///     .incident_storage(records.clone())
///     .build(data_dir.path())?;
/// let event = Event::new(Category::DataAccess, "guest_list.export", Severity::Critical);
/// let alert = Alert::new(Arc::new(event), Priority::P0Critical, "critical");
/// let routed = RoutedAlert { alert, notifiers: vec![] };
/// let id = engine.handle_alert(&routed).await?.expect("a P0 alert opens an incident");
/// engine.resolve(&id, "host", "export was the couple's own").await?;
/// assert!(records.0.lock().unwrap().len() >= 4, "opened and resolved: stored by the host");
/// assert_eq!(engine.record_path(), None, "no record file of its own");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait IncidentStorage: Send + Sync + std::fmt::Debug {
    /// Every record stored, in append order.
    fn load(&self) -> Result<Vec<IncidentRecord>, Error>;

    /// Stores `records` as one unit, in order, before returning `Ok`.
    async fn append(&self, records: Arc<[IncidentRecord]>) -> Result<(), Error>;

    /// True when the storage has grown past its bound and should be compacted.
    fn wants_compaction(&self) -> bool;

    /// Replaces everything stored with `records`, at once.
    async fn replace(&self, records: Vec<IncidentRecord>) -> Result<(), Error>;

    /// Where the records are, for messages (a path, a table name).
    fn location(&self) -> String;
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
    pub(crate) fn compacted(&self, keep_closed: usize) -> Vec<Record> {
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
struct RecordFile {
    path: PathBuf,
    file: Option<File>,
    /// The length of the good prefix read, then of what is written.
    bytes: u64,
    /// Whether the file was read (its good length known).
    read: bool,
}

impl RecordFile {
    /// Opens for writing, once: a torn last line (an interrupted write, no newline after
    /// it) is cut off first.
    fn writer(&mut self) -> Result<&mut File, Error> {
        if !self.read {
            // Appending to a file nobody loaded: after its good prefix all the same.
            self.bytes = read_record_file(&self.path)?.1;
            self.read = true;
        }
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
    fn append(&mut self, records: &[Record]) -> Result<(), Error> {
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

    /// Writes `records` to a new file and renames it over the old one.
    fn replace(&mut self, records: &[Record]) -> Result<(), Error> {
        let tmp = self.path.with_extension("jsonl.compact");
        let io = |what: &str, e| Error::io(format!("{what} {}", tmp.display()), e);
        let mut out = File::create(&tmp).map_err(|e| io("create", e))?;
        let mut bytes = 0u64;
        for r in records {
            let mut line = serde_json::to_vec(r)
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
            file = %self.path.display(),
            before = self.bytes,
            after = bytes,
            "response record file compacted"
        );
        self.bytes = bytes;
        Ok(())
    }
}

/// The default [`IncidentStorage`]: `<dir>/records.jsonl` (normally
/// `<data_dir>/response/records.jsonl`), each append written and fsynced before it returns
/// (on Tokio's blocking pool), compacted into a new file renamed over the old one once it
/// passes `max_bytes` (`response.max_record_bytes`). Opened for writing on the first
/// append, so reading it (`vowguard incident list`) never takes it over.
#[derive(Debug, Clone)]
pub struct FileIncidentStore {
    file: Arc<Mutex<RecordFile>>,
    path: PathBuf,
    max_bytes: u64,
}

impl FileIncidentStore {
    /// The store under `dir` (created if missing), compacted past `max_bytes`. Reads the
    /// file's length; its records are read by [`IncidentStorage::load`].
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let path = dir.join(RECORD_FILE);
        Ok(Self {
            file: Arc::new(Mutex::new(RecordFile {
                path: path.clone(),
                file: None,
                bytes: 0,
                read: false,
            })),
            path,
            max_bytes,
        })
    }

    /// The record file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> std::sync::MutexGuard<'_, RecordFile> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl IncidentStorage for FileIncidentStore {
    /// Reads the file; the first line that is not a record is an error naming the file and
    /// the line (a torn last line, with no newline after it, is dropped with a warning).
    fn load(&self) -> Result<Vec<IncidentRecord>, Error> {
        let (records, good_len) = read_record_file(&self.path)?;
        let mut file = self.file();
        // Appends start after what was read; a torn tail is cut off at the first append.
        if file.file.is_none() {
            file.bytes = good_len;
            file.read = true;
        }
        Ok(records)
    }

    async fn append(&self, records: Arc<[IncidentRecord]>) -> Result<(), Error> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            file.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .append(&records)
        })
        .await
        .map_err(|e| Error::internal(format!("response record writer failed: {e}")))?
    }

    fn wants_compaction(&self) -> bool {
        self.file().bytes > self.max_bytes
    }

    async fn replace(&self, records: Vec<IncidentRecord>) -> Result<(), Error> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            file.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace(&records)
        })
        .await
        .map_err(|e| Error::internal(format!("response record compaction failed: {e}")))?
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// Records kept in memory only, for tests and hosts that accept losing incidents at exit:
/// nothing survives the process. The engine compacts it once it holds more than
/// `max_records` records, so it stays bounded by the open incidents plus the closed ones
/// kept (`response.keep_closed_incidents`).
#[derive(Debug)]
pub struct MemoryIncidentStore {
    records: Mutex<Vec<IncidentRecord>>,
    max_records: usize,
}

impl MemoryIncidentStore {
    /// An empty store, compacted past `max_records` records.
    pub fn new(max_records: usize) -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            max_records,
        }
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl IncidentStorage for MemoryIncidentStore {
    fn load(&self) -> Result<Vec<IncidentRecord>, Error> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn append(&self, records: Arc<[IncidentRecord]>) -> Result<(), Error> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(records.iter().cloned());
        Ok(())
    }

    fn wants_compaction(&self) -> bool {
        self.len() > self.max_records
    }

    async fn replace(&self, records: Vec<IncidentRecord>) -> Result<(), Error> {
        *self.records.lock().unwrap_or_else(PoisonError::into_inner) = records;
        Ok(())
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

/// Reads the record file at `path` into records; returns them and the length of the good
/// prefix (without a torn last line). A missing file holds no record.
fn read_record_file(path: &Path) -> Result<(Vec<Record>, u64), Error> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    let mut records = Vec::new();
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
        let record = serde_json::from_slice::<Record>(line).map_err(|e| {
            Error::internal(format!(
                "response record file {} line {line_no}: not a response record ({e}); repair or remove the line (the audit log keeps every incident timeline entry)",
                path.display()
            ))
        })?;
        records.push(record);
        good += end + 1;
    }
    Ok((records, good as u64))
}

/// Replays `records` into a state.
pub(crate) fn state_of(records: Vec<Record>) -> State {
    let mut state = State::default();
    for r in records {
        state.apply(r);
    }
    state
}

/// Reads the file at `path` into a state without opening it for writing.
pub(crate) fn replay(path: &Path) -> Result<State, Error> {
    Ok(state_of(read_record_file(path)?.0))
}

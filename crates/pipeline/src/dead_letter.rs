//! The dead-letter store: events a sink rejected for good, with the reason.
//!
//! Behind the [`DeadLetterStorage`] trait so a host can keep them elsewhere (its own
//! database); [`DeadLetterStore`] (files in the data directory) is the default and
//! [`MemoryDeadLetters`] keeps them in memory (tests, hosts without a disk).
//!
//! The file store: one JSON object per line in `<data_dir>/dead_letters.jsonl`, rotated by size into
//! `dead_letters.<n>.jsonl` (see [`vowguard_core::jsonl_log`]). The letters of one journal
//! batch are written with one write and one `fdatasync`, on a blocking thread, before any
//! of those events counts as done for that sink (and before the sink's journal position
//! passes them).
//!
//! Bound: a dead letter that has not been replayed is never deleted. `vowguard dlq replay`
//! records every letter it delivered in `dead_letters.replayed.jsonl`; a rotated file
//! whose letters were all replayed is deleted when the store opens and after each
//! rotation. What the store holds (bytes, letters, files) is in the pipeline's metrics.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vowguard_core::jsonl_log::{self, JsonlLog, JsonlUsage, Rotation};
use vowguard_core::{Error, Event};

use crate::metrics::DeadLetterMetrics;

/// File name of the active dead-letter file in the data directory.
pub const DEAD_LETTERS_FILE: &str = "dead_letters.jsonl";
/// File name of the replay marker file in the data directory.
pub const REPLAYED_FILE: &str = "dead_letters.replayed.jsonl";

/// One dead-lettered event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// When it was dead-lettered.
    pub time: DateTime<Utc>,
    /// The sink id.
    pub sink: String,
    /// The error kind (`rejected`, `unauthorized`, `encode`, ...).
    pub kind: String,
    /// Why, including the destination's answer.
    pub reason: String,
    /// The HTTP or vendor status, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The event itself.
    pub event: Event,
}

impl DeadLetter {
    /// The letter for `event`, dead-lettered by `sink` now because of `error`.
    pub fn new(sink: &str, event: &Event, error: &Error, attempts: u32) -> Self {
        Self {
            time: Utc::now(),
            sink: sink.to_owned(),
            kind: error.kind().to_string(),
            reason: error.to_string(),
            status: error.status(),
            attempts,
            event: event.clone(),
        }
    }
}

/// Identifies one replayed dead letter in `dead_letters.replayed.jsonl` (a sink can
/// dead-letter the same event more than once, so the time is part of it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplayedLetter {
    /// The sink id.
    pub sink: String,
    /// The event id.
    pub event_id: String,
    /// The letter's time, RFC 3339.
    pub time: String,
}

impl ReplayedLetter {
    /// The marker of `letter`.
    pub fn of(letter: &DeadLetter) -> Self {
        Self {
            sink: letter.sink.clone(),
            event_id: letter.event.id.clone(),
            time: letter.time.to_rfc3339(),
        }
    }
}

/// Reads the replay markers in `data_dir` (empty when there are none).
pub fn read_replayed(data_dir: &Path) -> Result<HashSet<ReplayedLetter>, Error> {
    let path = data_dir.join(REPLAYED_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Where a pipeline keeps its dead letters.
///
/// # Durability contract
///
/// [`write`](Self::write) returns `Ok` only once every letter it was given is stored as
/// durably as the implementation promises (the file store: written and `fdatasync`ed; a
/// host's database: committed). Until it does, the events stay unfinished: a sink's
/// journal position never passes an event whose dead letter is not stored, and a failed
/// write is retried with the sink's backoff (the events stay in the journal meanwhile,
/// across restarts). A write that fails must store none or all of its letters *or*
/// tolerate seeing them again: a retried batch is written again in full
/// (at-least-once). Implementations never drop a letter that was acknowledged with `Ok`
/// until the operator says so (replay, purge).
///
/// `write` may be called concurrently (one caller per sink worker); letters are read back
/// in the order their writes completed.
#[async_trait]
pub trait DeadLetterStorage: Send + Sync + std::fmt::Debug {
    /// Stores `letters` durably (see the trait's contract); an empty slice is `Ok`.
    async fn write(&self, letters: Arc<[DeadLetter]>) -> Result<(), Error>;

    /// Every letter stored, oldest first (replayed ones included until they are removed).
    async fn read_all(&self) -> Result<Vec<DeadLetter>, Error>;

    /// What the storage holds now and how its writes went.
    fn metrics(&self) -> DeadLetterMetrics;
}

/// Dead letters kept in memory, at most `max_letters` of them: for tests and for hosts that
/// move them elsewhere themselves ([`take`](Self::take)). `Ok` from `write` means the
/// letters are in this process's memory only: they are lost with the process. A write that
/// would pass the bound stores none of its letters and fails (`unavailable`): the pipeline
/// retries it and the events wait in the journal, so memory stays bounded and nothing is
/// dropped silently.
#[derive(Debug)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    max_letters: usize,
    writes: AtomicU64,
    write_failures: AtomicU64,
}

impl MemoryDeadLetters {
    /// An empty store holding at most `max_letters` letters.
    pub fn new(max_letters: usize) -> Self {
        Self {
            letters: Mutex::default(),
            max_letters,
            writes: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
        }
    }

    /// Removes and returns every letter stored, oldest first (making room for more).
    pub fn take(&self) -> Vec<DeadLetter> {
        std::mem::take(&mut *self.letters.lock().expect("dead letters lock poisoned"))
    }
}

#[async_trait]
impl DeadLetterStorage for MemoryDeadLetters {
    async fn write(&self, letters: Arc<[DeadLetter]>) -> Result<(), Error> {
        if letters.is_empty() {
            return Ok(());
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut stored = self.letters.lock().expect("dead letters lock poisoned");
        if stored.len() + letters.len() > self.max_letters {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::unavailable(format!(
                "the in-memory dead-letter store is full ({} of {} letters; {} more refused)",
                stored.len(),
                self.max_letters,
                letters.len()
            )));
        }
        stored.extend(letters.iter().cloned());
        Ok(())
    }

    async fn read_all(&self) -> Result<Vec<DeadLetter>, Error> {
        Ok(self
            .letters
            .lock()
            .expect("dead letters lock poisoned")
            .clone())
    }

    fn metrics(&self) -> DeadLetterMetrics {
        let letters = self
            .letters
            .lock()
            .expect("dead letters lock poisoned")
            .len();
        DeadLetterMetrics {
            bytes: 0,
            letters: letters as u64,
            files: 0,
            writes: self.writes.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }
}

/// Appends dead letters to `dead_letters.jsonl` in the data directory: the default
/// [`DeadLetterStorage`].
#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    data_dir: PathBuf,
    log: Arc<JsonlLog>,
    writes: Arc<AtomicU64>,
    write_failures: Arc<AtomicU64>,
    /// Test hook: the next this-many writes fail.
    #[cfg(test)]
    pub(crate) fail_writes: Arc<std::sync::atomic::AtomicU32>,
}

impl DeadLetterStore {
    /// Opens (creating if needed) the store in `data_dir`, rotating files at the default
    /// size (64 MiB).
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        Self::open_with(data_dir, jsonl_log::DEFAULT_MAX_FILE_BYTES)
    }

    /// Opens the store, rotating files at `max_file_bytes`, and deletes rotated files
    /// whose letters were all replayed.
    pub fn open_with(data_dir: &Path, max_file_bytes: u64) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("cannot create data_dir {}", data_dir.display()), e))?;
        let path = data_dir.join(DEAD_LETTERS_FILE);
        let log = JsonlLog::open(&path, Rotation::keep_all(max_file_bytes))?;
        if log.torn_bytes_dropped() > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = log.torn_bytes_dropped(),
                "dead letters: cut off a line left unfinished by a crash (its event is still in the journal and is dead-lettered again)"
            );
        }
        let store = Self {
            data_dir: data_dir.to_path_buf(),
            log: Arc::new(log),
            writes: Arc::default(),
            write_failures: Arc::default(),
            #[cfg(test)]
            fail_writes: Arc::default(),
        };
        store.compact_replayed()?;
        Ok(store)
    }

    /// Where the store writes (the active file).
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Writes `letters` durably: one write and one `fdatasync` for all of them. Blocking;
    /// from async code use [`DeadLetterStore::write`].
    pub fn write_blocking(&self, letters: &[DeadLetter]) -> Result<(), Error> {
        #[cfg(test)]
        if self
            .fail_writes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::io(
                format!("cannot write {}", self.path().display()),
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            ));
        }
        let lines: Vec<Vec<u8>> = letters
            .iter()
            .map(|l| serde_json::to_vec(l).expect("a DeadLetter always serialises"))
            .collect();
        let before = self.log.usage().files;
        self.writes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.log.append(&lines, true) {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        if self.log.usage().files > before
            && let Err(e) = self.compact_replayed()
        {
            tracing::warn!(error = %e, "dead letters: cannot delete replayed files");
        }
        Ok(())
    }

    /// Writes `letters` durably on a blocking thread (one write, one `fdatasync`).
    pub async fn write(&self, letters: Arc<[DeadLetter]>) -> Result<(), Error> {
        if letters.is_empty() {
            return Ok(());
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(&letters))
            .await
            .map_err(|e| Error::internal(format!("dead-letter write task failed: {e}")))?
    }

    /// Reads every dead letter in the store (replayed ones included).
    pub fn read_all(&self) -> Result<Vec<DeadLetter>, Error> {
        read_dead_letters(self.path())
    }

    /// What the store holds now.
    pub fn metrics(&self) -> DeadLetterMetrics {
        let JsonlUsage {
            bytes,
            records,
            files,
        } = self.log.usage();
        DeadLetterMetrics {
            bytes,
            letters: records,
            files,
            writes: self.writes.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }

    /// Deletes every rotated dead-letter file whose letters were all replayed; returns how
    /// many. The active file is never deleted, nor a file holding a letter not replayed.
    pub fn compact_replayed(&self) -> Result<usize, Error> {
        let replayed = read_replayed(&self.data_dir)?;
        if replayed.is_empty() {
            return Ok(0);
        }
        let removed = self.log.remove_rotated_where(|file| {
            let letters = parse_letters(jsonl_log::read_jsonl_file(file)?)?;
            Ok(letters
                .iter()
                .all(|l| replayed.contains(&ReplayedLetter::of(l))))
        })?;
        if removed > 0 {
            tracing::info!(
                files = removed,
                "dead letters: deleted files whose letters were all replayed"
            );
        }
        Ok(removed)
    }
}

#[async_trait]
impl DeadLetterStorage for DeadLetterStore {
    async fn write(&self, letters: Arc<[DeadLetter]>) -> Result<(), Error> {
        DeadLetterStore::write(self, letters).await
    }

    async fn read_all(&self) -> Result<Vec<DeadLetter>, Error> {
        let path = self.path().to_path_buf();
        tokio::task::spawn_blocking(move || read_dead_letters(&path))
            .await
            .map_err(|e| Error::internal(format!("dead-letter read task failed: {e}")))?
    }

    fn metrics(&self) -> DeadLetterMetrics {
        DeadLetterStore::metrics(self)
    }
}

fn parse_letters(lines: Vec<jsonl_log::JsonlLine>) -> Result<Vec<DeadLetter>, Error> {
    lines
        .into_iter()
        .map(|l| {
            serde_json::from_str(&l.text).map_err(|e| {
                Error::invalid_input(format!("{} line {}: {e}", l.file.display(), l.line))
            })
        })
        .collect()
}

/// Reads the dead letters of the store whose active file is `path`
/// (`<data_dir>/dead_letters.jsonl`), rotated files included, oldest first (empty when
/// there are none).
pub fn read_dead_letters(path: &Path) -> Result<Vec<DeadLetter>, Error> {
    parse_letters(jsonl_log::read_jsonl(path)?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn letter(i: usize) -> DeadLetter {
        let mut event = Event::new(
            vowguard_core::Category::Authentication,
            "login",
            vowguard_core::Severity::High,
        );
        event.id = format!("e-{i}");
        DeadLetter::new("siem", &event, &Error::rejected("HTTP 400"), 1)
    }

    #[test]
    fn rotated_letters_are_read_back_and_kept_until_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetterStore::open_with(dir.path(), 4096).unwrap();
        let letters: Vec<DeadLetter> = (0..60).map(letter).collect();
        for chunk in letters.chunks(3) {
            store.write_blocking(chunk).unwrap();
        }
        let m = store.metrics();
        assert!(m.files > 3, "{m:?}");
        assert_eq!(m.letters, 60);
        assert_eq!(
            read_dead_letters(&dir.path().join(DEAD_LETTERS_FILE)).unwrap(),
            letters
        );

        // Reopening deletes nothing while no letter is replayed.
        drop(store);
        let store = DeadLetterStore::open_with(dir.path(), 4096).unwrap();
        assert_eq!(store.metrics().letters, 60);

        // Replay every letter of the oldest rotated file and one of the next.
        let files = jsonl_log::jsonl_files(store.path()).unwrap();
        let first: Vec<DeadLetter> =
            parse_letters(jsonl_log::read_jsonl_file(&files[0]).unwrap()).unwrap();
        let second: Vec<DeadLetter> =
            parse_letters(jsonl_log::read_jsonl_file(&files[1]).unwrap()).unwrap();
        let mut marks = std::fs::File::create(dir.path().join(REPLAYED_FILE)).unwrap();
        for l in first.iter().chain(&second[..1]) {
            // The format `vowguard dlq replay` writes.
            let line = serde_json::json!({
                "sink": l.sink, "event_id": l.event.id, "time": l.time.to_rfc3339()
            });
            writeln!(marks, "{line}").unwrap();
        }
        drop(marks);
        assert_eq!(store.compact_replayed().unwrap(), 1);
        assert!(!files[0].exists());
        assert!(files[1].exists(), "a file with an unreplayed letter stays");
        let left = store.read_all().unwrap();
        assert_eq!(left, letters[first.len()..].to_vec());
        assert_eq!(store.metrics().letters, (60 - first.len()) as u64);
    }
}

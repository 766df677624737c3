//! The dead-letter store: events a sink rejected for good, with the reason.
//!
//! One JSON object per line in `<data_dir>/dead_letters.jsonl`, each written and synced to
//! disk before the event counts as done for that sink.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, Event};

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

/// Appends dead letters to `dead_letters.jsonl` in the data directory.
#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl DeadLetterStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("cannot create data_dir {}", data_dir.display()), e))?;
        let path = data_dir.join("dead_letters.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Where the store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one event as dead-lettered by `sink`, durably.
    pub fn record(
        &self,
        sink: &str,
        event: &Event,
        error: &Error,
        attempts: u32,
    ) -> Result<(), Error> {
        let letter = DeadLetter {
            time: Utc::now(),
            sink: sink.to_owned(),
            kind: error.kind().to_string(),
            reason: error.to_string(),
            status: error.status(),
            attempts,
            event: event.clone(),
        };
        let mut line = serde_json::to_vec(&letter).expect("a DeadLetter always serialises");
        line.push(b'\n');
        let mut file = self.file.lock().expect("dead-letter lock poisoned");
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(format!("cannot write {}", self.path.display()), e))
    }

    /// Reads every dead letter in the store.
    pub fn read_all(&self) -> Result<Vec<DeadLetter>, Error> {
        read_dead_letters(&self.path)
    }
}

/// Reads the dead letters in a `dead_letters.jsonl` file (empty when it does not exist).
pub fn read_dead_letters(path: &Path) -> Result<Vec<DeadLetter>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                Error::invalid_input(format!("{} line {}: {e}", path.display(), n + 1))
            })
        })
        .collect()
}

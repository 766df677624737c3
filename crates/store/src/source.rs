//! Where the store reads audit records from: the [`AuditSource`] trait (the Merkle log of
//! `vowguard-audit` implements it), an in-memory log for tests and benchmarks, and an
//! interim JSON-lines log for when the Merkle log is not configured.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use vowguard_core::{AuditRecord, AuditTrail, CheckpointRef, Error};

/// Reads audit records by index, and the latest checkpoint.
#[async_trait]
pub trait AuditSource: Send + Sync + std::fmt::Debug {
    /// Up to `limit` records from `index` on, each with its index, in order.
    async fn records_from(
        &self,
        index: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, Error>;

    /// The latest signed checkpoint, if the log keeps them.
    async fn checkpoint(&self) -> Result<Option<CheckpointRef>, Error>;

    /// How many records the log holds, when the source can tell cheaply (progress
    /// display: `vowguard audit rebuild-store`, `vowguard report`). Default: unknown.
    async fn record_count(&self) -> Result<Option<u64>, Error> {
        Ok(None)
    }
}

/// An audit log in memory (tests, benchmarks). No checkpoints unless one is set.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<AuditRecord>>,
    checkpoint: Mutex<Option<CheckpointRef>>,
}

impl MemoryAudit {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the checkpoint [`AuditSource::checkpoint`] returns.
    pub fn set_checkpoint(&self, checkpoint: CheckpointRef) {
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(checkpoint);
    }

    /// How many records it holds.
    pub fn len(&self) -> u64 {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len() as u64
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl AuditTrail for MemoryAudit {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error> {
        let mut all = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = all.len() as u64;
        all.extend(records);
        Ok(first)
    }
}

#[async_trait]
impl AuditSource for MemoryAudit {
    async fn records_from(
        &self,
        index: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, Error> {
        let all = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(all
            .iter()
            .enumerate()
            .skip(usize::try_from(index).unwrap_or(usize::MAX))
            .take(limit)
            .map(|(i, r)| (i as u64, r.clone()))
            .collect())
    }

    async fn record_count(&self) -> Result<Option<u64>, Error> {
        Ok(Some(
            self.records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len() as u64,
        ))
    }

    async fn checkpoint(&self) -> Result<Option<CheckpointRef>, Error> {
        Ok(self
            .checkpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
}

/// An interim audit log: one JSON record per line (the index is the line number), each
/// append synced before it returns. It is NOT tamper-evident and keeps no checkpoints;
/// it stands in for the Merkle log of `vowguard-audit` until that is configured, so the
/// breach register and the CLI record their changes somewhere durable.
#[derive(Debug)]
pub struct JsonlAudit {
    path: PathBuf,
    lock: Mutex<()>,
}

impl JsonlAudit {
    /// The log at `path` (created on the first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Vec<AuditRecord>, Error> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("open {}", self.path.display()), e)),
        };
        let mut records = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::io(format!("read {}", self.path.display()), e))?;
            if line.trim().is_empty() {
                continue;
            }
            records.push(serde_json::from_str(&line).map_err(|e| {
                Error::invalid_input(format!(
                    "audit log {} line {}: unreadable record: {e}",
                    self.path.display(),
                    n + 1
                ))
            })?);
        }
        Ok(records)
    }
}

#[async_trait]
impl AuditTrail for JsonlAudit {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error> {
        self.append_sync(&records)
    }
}

impl JsonlAudit {
    /// Appends `records` and syncs the file before returning (for callers that cannot
    /// await, such as the router's breach log); returns the index of the first.
    pub fn append_sync(&self, records: &[AuditRecord]) -> Result<u64, Error> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = self.read()?.len() as u64;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(format!("open {}", self.path.display()), e))?;
        let mut bytes = Vec::new();
        for record in records {
            serde_json::to_writer(&mut bytes, record)
                .map_err(|e| Error::encode(format!("encode an audit record: {e}")))?;
            bytes.push(b'\n');
        }
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(format!("append to {}", self.path.display()), e))?;
        Ok(first)
    }
}

#[async_trait]
impl AuditSource for JsonlAudit {
    async fn records_from(
        &self,
        index: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, Error> {
        Ok(self
            .read()?
            .into_iter()
            .enumerate()
            .skip(usize::try_from(index).unwrap_or(usize::MAX))
            .take(limit)
            .map(|(i, r)| (i as u64, r))
            .collect())
    }

    async fn checkpoint(&self) -> Result<Option<CheckpointRef>, Error> {
        Ok(None)
    }
}

//! Small durable state that must survive a restart (what a notifier already delivered,
//! inhibition sources, alert groups in progress), kept as one JSON snapshot file per owner.
//!
//! A [`SnapshotFile`] is replaced atomically: the new content is written to a temporary
//! file next to it, synced, renamed over the old one, and the directory is synced, so a
//! crash at any point leaves either the old or the new snapshot, never a torn one. Owners
//! write it when their state changes (coalescing bursts where that matters) and at shutdown,
//! and load it once at start. Snapshots hold no secrets.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// One atomically replaced JSON snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    path: PathBuf,
}

impl SnapshotFile {
    /// The snapshot at `path` (its directory is created on the first store).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The conventional place for state of `owner` (e.g. `notifier-slack`) under a data
    /// directory: `<data_dir>/state/<owner>.json`.
    pub fn in_data_dir(data_dir: &Path, owner: &str) -> Self {
        let name: String = owner
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self::new(data_dir.join("state").join(format!("{name}.json")))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored state, `None` when there is none yet. An unreadable or malformed file is
    /// an error naming the file (the caller decides whether to start empty).
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("read state snapshot {}", self.path.display()),
                    e,
                ));
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::internal(format!(
                "state snapshot {} is unreadable: {e}",
                self.path.display()
            ))
        })
    }

    /// Replaces the stored state with `state` atomically and durably.
    pub fn store<T: Serialize + ?Sized>(&self, state: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(state).map_err(|e| {
            Error::internal(format!(
                "encode state snapshot {}: {e}",
                self.path.display()
            ))
        })?;
        self.store_bytes(&bytes)
    }

    fn store_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        let what = || format!("write state snapshot {}", self.path.display());
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(what(), e))?;
        let mut tmp_name = self
            .path
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(what(), e))?;
        file.write_all(bytes).map_err(|e| Error::io(what(), e))?;
        file.sync_all().map_err(|e| Error::io(what(), e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(what(), e))?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_replaces_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_data_dir(dir.path(), "notifier-sms/../x");
        assert!(file.path().starts_with(dir.path().join("state")));
        assert_eq!(file.load::<Vec<u32>>().unwrap(), None);
        file.store(&vec![1u32, 2]).unwrap();
        file.store(&vec![3u32]).unwrap();
        // A reopen (a restart) sees the last state, and no temporary file is left.
        let again = SnapshotFile::new(file.path());
        assert_eq!(again.load::<Vec<u32>>().unwrap(), Some(vec![3]));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_malformed_snapshot_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::new(dir.path().join("s.json"));
        std::fs::write(file.path(), b"{not json").unwrap();
        let err = file.load::<Vec<u32>>().unwrap_err().to_string();
        assert!(err.contains("s.json"), "{err}");
    }
}

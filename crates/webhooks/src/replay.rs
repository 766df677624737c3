//! The replay guard: delivery ids seen recently, persisted, bounded by time.
//!
//! One file per source (`<dir>/<source>.replay`), one line per processed delivery:
//! `<expires unix seconds> <hex SHA-256 of the delivery id>`. Only digests are kept, so a
//! line has a fixed size whatever the sender's id. Opening reads the file, drops expired
//! lines and rewrites it; it is rewritten again when it holds twice as many lines as live
//! entries. A delivery is *claimed* before its events are submitted and *committed*
//! (appended and synced) once they are durable; a claim that fails is released so the
//! sender's retry is processed. A crash between durability and the commit means a retry is
//! processed again (at least once, never lost).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// What [`ReplayGuard::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not seen: process it, then [`ReplayGuard::commit`] or [`ReplayGuard::release`].
    Fresh,
    /// Already processed within the window: answer 200 without processing.
    Replay,
    /// Another request is processing the same delivery right now.
    InFlight,
}

/// A delivery id digest.
pub type Digest32 = [u8; 32];

/// The digest a delivery id is stored as.
pub fn digest(delivery_id: &str) -> Digest32 {
    Sha256::digest(delivery_id.as_bytes()).into()
}

#[derive(Debug)]
struct Inner {
    seen: HashMap<Digest32, i64>,
    in_flight: HashSet<Digest32>,
    file: File,
    lines: usize,
}

/// The persisted set of recent delivery ids of one source.
#[derive(Debug)]
pub struct ReplayGuard {
    path: PathBuf,
    window_secs: i64,
    inner: Mutex<Inner>,
}

impl ReplayGuard {
    /// Opens (or creates) the guard of `source_id` in `dir`, remembering ids for
    /// `window_secs`. Expired entries are dropped at `now`.
    pub fn open(dir: &Path, source_id: &str, window_secs: u64, now: i64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{source_id}.replay"));
        let mut seen = HashMap::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                let line = line?;
                // A torn last line (a crash mid-append) is skipped.
                let Some((expires, hex)) = line.split_once(' ') else {
                    continue;
                };
                let (Ok(expires), Some(bytes)) =
                    (expires.parse::<i64>(), crate::verify::hex_decode(hex))
                else {
                    continue;
                };
                let Ok(key) = <Digest32>::try_from(bytes.as_slice()) else {
                    continue;
                };
                if expires > now {
                    let entry = seen.entry(key).or_insert(expires);
                    *entry = (*entry).max(expires);
                }
            }
        }
        let file = rewrite(&path, &seen)?;
        let lines = seen.len();
        Ok(Self {
            path,
            window_secs: i64::try_from(window_secs).unwrap_or(i64::MAX / 2),
            inner: Mutex::new(Inner {
                seen,
                in_flight: HashSet::new(),
                file,
                lines,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims delivery `key` at `now`.
    pub fn claim(&self, key: &Digest32, now: i64) -> Claim {
        let mut inner = self.lock();
        if inner.seen.get(key).is_some_and(|expires| *expires > now) {
            return Claim::Replay;
        }
        if !inner.in_flight.insert(*key) {
            return Claim::InFlight;
        }
        Claim::Fresh
    }

    /// Gives up a claim (processing failed; the retry will be processed).
    pub fn release(&self, key: &Digest32) {
        self.lock().in_flight.remove(key);
    }

    /// Records a processed delivery durably (appended and synced).
    pub fn commit(&self, key: &Digest32, now: i64) -> std::io::Result<()> {
        let mut inner = self.lock();
        inner.in_flight.remove(key);
        let expires = now.saturating_add(self.window_secs);
        let line = format!("{expires} {}\n", crate::verify::hex_encode(key));
        inner.file.write_all(line.as_bytes())?;
        inner.file.sync_data()?;
        inner.seen.insert(*key, expires);
        inner.lines += 1;
        if inner.lines > 2 * inner.seen.len() + 1024 {
            inner.seen.retain(|_, expires| *expires > now);
            inner.file = rewrite(&self.path, &inner.seen)?;
            inner.lines = inner.seen.len();
        }
        Ok(())
    }

    /// Delivery ids remembered now.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no delivery id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the live entries to a fresh file, renames it over `path`, and returns it open for
/// appending.
fn rewrite(path: &Path, seen: &HashMap<Digest32, i64>) -> std::io::Result<File> {
    let tmp = path.with_extension("replay.tmp");
    {
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        for (key, expires) in seen {
            writeln!(out, "{expires} {}", crate::verify::hex_encode(key))?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_across_reopen_and_forgets_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let key = digest("msg_1");
        let guard = ReplayGuard::open(dir.path(), "s", 100, 1_000).unwrap();
        assert_eq!(guard.claim(&key, 1_000), Claim::Fresh);
        assert_eq!(guard.claim(&key, 1_000), Claim::InFlight);
        guard.commit(&key, 1_000).unwrap();
        assert_eq!(guard.claim(&key, 1_050), Claim::Replay);
        drop(guard);
        let guard = ReplayGuard::open(dir.path(), "s", 100, 1_050).unwrap();
        assert_eq!(guard.claim(&key, 1_050), Claim::Replay);
        assert_eq!(guard.len(), 1);
        drop(guard);
        let guard = ReplayGuard::open(dir.path(), "s", 100, 1_200).unwrap();
        assert!(guard.is_empty());
        assert_eq!(guard.claim(&key, 1_200), Claim::Fresh);
    }

    #[test]
    fn a_released_claim_is_processed_again() {
        let dir = tempfile::tempdir().unwrap();
        let key = digest("msg_2");
        let guard = ReplayGuard::open(dir.path(), "s", 100, 0).unwrap();
        assert_eq!(guard.claim(&key, 0), Claim::Fresh);
        guard.release(&key);
        assert_eq!(guard.claim(&key, 0), Claim::Fresh);
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let key = digest("msg_3");
        let guard = ReplayGuard::open(dir.path(), "s", 100, 0).unwrap();
        guard.claim(&key, 0);
        guard.commit(&key, 0).unwrap();
        drop(guard);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join("s.replay"))
            .unwrap();
        file.write_all(b"99 abc").unwrap();
        let guard = ReplayGuard::open(dir.path(), "s", 100, 0).unwrap();
        assert_eq!(guard.len(), 1);
        assert_eq!(guard.claim(&key, 0), Claim::Replay);
    }
}

//! Journal configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default bound on the journal's size on disk: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default shortest interval between two cursor persists: 100 ms.
pub const DEFAULT_CURSOR_PERSIST_INTERVAL: Duration = Duration::from_millis(100);
/// Default bound on the tail kept in memory: 8 MiB (stored bytes plus decoded events; about
/// 4,000 events of 650 bytes).
pub const DEFAULT_TAIL_CACHE_BYTES: u64 = 8 << 20;

/// Where the journal lives and how large it may grow.
///
/// In TOML (all keys but `dir` optional):
///
/// ```toml
/// dir = "var/vowguard/journal"
/// max_bytes = 1073741824      # 1 GiB
/// when_full = "block"         # or "drop_newest"
/// segment_bytes = 67108864    # 64 MiB
/// cursor_persist_interval = "100ms"
/// tail_cache_bytes = 8388608  # 8 MiB
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JournalConfig {
    /// Directory holding the segment files (`<first seq>.seg`) and one cursor file per
    /// reader (`<name>.cursor`). Created when missing.
    pub dir: PathBuf,
    /// Upper bound on the bytes of all segment files (`max_journal_bytes`). Default 1 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// What an append does when it would exceed `max_bytes` (or the disk is full).
    /// Default [`WhenFull::Block`].
    #[serde(default)]
    pub when_full: WhenFull,
    /// Size at which the active segment is sealed and a new one started. Default 64 MiB;
    /// the journal uses at most `max_bytes / 4` so that sealed segments can always be freed.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// Shortest time between two persists of the reader cursors (each is a file write,
    /// an fsync and a directory fsync): commits made meanwhile are persisted together.
    /// A crash can only make readers repeat what they committed in the last interval,
    /// never skip anything; `close` persists everything. Default `"100ms"`; `"0s"` persists
    /// after every commit.
    #[serde(
        default = "default_cursor_persist_interval",
        with = "vowguard_core::duration"
    )]
    pub cursor_persist_interval: Duration,
    /// Bound on the recent tail kept in memory in decoded form (records appended with
    /// [`Journal::append_decoded`](crate::Journal::append_decoded)), counted in memory: a
    /// record's payload bytes, plus for a decoded event its struct and about as many heap
    /// bytes again as its payload. Readers at the tail ([`JournalReader::next_records`](crate::JournalReader::next_records))
    /// get those events without reading or decoding the file; older records are read from
    /// disk. An entry leaves when every reader has committed past it or when the bound is
    /// reached. Default 8 MiB; 0 keeps nothing in memory.
    #[serde(default = "default_tail_cache_bytes")]
    pub tail_cache_bytes: u64,
}

impl JournalConfig {
    /// These settings with [`dir`](Self::dir) set to `dir`.
    #[must_use]
    pub fn with_dir(mut self, dir: PathBuf) -> Self {
        self.dir = dir;
        self
    }

    /// These settings with [`max_bytes`](Self::max_bytes) set to `max_bytes`.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// These settings with [`when_full`](Self::when_full) set to `when_full`.
    #[must_use]
    pub fn with_when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// These settings with [`segment_bytes`](Self::segment_bytes) set to `segment_bytes`.
    #[must_use]
    pub fn with_segment_bytes(mut self, segment_bytes: u64) -> Self {
        self.segment_bytes = segment_bytes;
        self
    }

    /// These settings with [`cursor_persist_interval`](Self::cursor_persist_interval) set to `cursor_persist_interval`.
    #[must_use]
    pub fn with_cursor_persist_interval(mut self, cursor_persist_interval: Duration) -> Self {
        self.cursor_persist_interval = cursor_persist_interval;
        self
    }

    /// These settings with [`tail_cache_bytes`](Self::tail_cache_bytes) set to `tail_cache_bytes`.
    #[must_use]
    pub fn with_tail_cache_bytes(mut self, tail_cache_bytes: u64) -> Self {
        self.tail_cache_bytes = tail_cache_bytes;
        self
    }
}

impl JournalConfig {
    /// A configuration for `dir` with every other setting at its default.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            when_full: WhenFull::default(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            cursor_persist_interval: DEFAULT_CURSOR_PERSIST_INTERVAL,
            tail_cache_bytes: DEFAULT_TAIL_CACHE_BYTES,
        }
    }

    /// The segment size actually used: `segment_bytes`, but at most a quarter of
    /// `max_bytes` (so a full journal always holds sealed segments that readers can free)
    /// and at least 4 KiB.
    pub fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.min(self.max_bytes / 4).max(4096)
    }
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

fn default_tail_cache_bytes() -> u64 {
    DEFAULT_TAIL_CACHE_BYTES
}

fn default_segment_bytes() -> u64 {
    DEFAULT_SEGMENT_BYTES
}

fn default_cursor_persist_interval() -> Duration {
    DEFAULT_CURSOR_PERSIST_INTERVAL
}

/// Behaviour of [`Journal::append`](crate::Journal::append) when the journal is full
/// (`max_bytes` reached, or the disk reports that it is full).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WhenFull {
    /// The append waits until readers commit and a segment is freed (back-pressure onto
    /// the source). Nothing is dropped.
    #[default]
    Block,
    /// The append fails at once with [`JournalError::Full`](crate::JournalError::Full);
    /// the source is not acknowledged. Dropped records are counted in
    /// [`JournalStats::dropped_full`](crate::JournalStats::dropped_full) and logged.
    DropNewest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_defaults_and_snake_case() {
        let c: JournalConfig = toml::from_str(r#"dir = "x""#).unwrap();
        assert_eq!(c, JournalConfig::new("x"));
        let c: JournalConfig =
            toml::from_str("dir = \"x\"\nwhen_full = \"drop_newest\"\nmax_bytes = 100000").unwrap();
        assert_eq!(c.when_full, WhenFull::DropNewest);
        assert_eq!(c.max_bytes, 100_000);
        assert!(toml::from_str::<JournalConfig>("dir = \"x\"\nbogus = 1").is_err());
        assert!(toml::from_str::<JournalConfig>("dir = \"x\"\nwhen_full = \"Block\"").is_err());
    }

    #[test]
    fn segment_size_is_clamped() {
        let mut c = JournalConfig::new("x");
        assert_eq!(c.effective_segment_bytes(), DEFAULT_SEGMENT_BYTES);
        c.max_bytes = 100_000;
        assert_eq!(c.effective_segment_bytes(), 25_000);
        c.max_bytes = 1000;
        assert_eq!(c.effective_segment_bytes(), 4096);
    }
}

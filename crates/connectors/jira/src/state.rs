//! vowguard's own fingerprint → issue-key map.
//!
//! Jira Cloud's search is eventually consistent (a fresh issue is missing from results a
//! good part of the time), so search-then-create can open a second issue. The connector
//! remembers every issue it opened, keyed by fingerprint label, in a [`SnapshotFile`]
//! (`<data_dir>/state/ticket-<id>.json`) written before `open` returns, and searches only
//! when the map has nothing. Before a create it records the fingerprint as
//! [`Known::Pending`]: after a crash or an answer that leaves the outcome unknown, the next
//! `open` knows a create may have happened and waits for search to settle instead of
//! creating blindly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SnapshotFile};

/// What vowguard knows about one fingerprint label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Known {
    /// The issue exists.
    Created {
        /// Its key (`SEC-42`).
        key: String,
        /// When vowguard learned it.
        at: DateTime<Utc>,
    },
    /// A create was sent at `since` and its outcome is not known.
    Pending {
        /// When the create was sent.
        since: DateTime<Utc>,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    issues: BTreeMap<String, Known>,
}

/// The map, optionally backed by a state file.
#[derive(Debug)]
pub struct IssueMap {
    file: Option<SnapshotFile>,
    entries: BTreeMap<String, Known>,
    max_entries: usize,
}

impl IssueMap {
    /// An in-memory map (nothing survives a restart).
    pub fn in_memory(max_entries: usize) -> Self {
        Self {
            file: None,
            entries: BTreeMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    /// The map stored in `file` (empty when the file does not exist yet). An unreadable
    /// file is an error naming it: starting empty could open duplicates of issues created
    /// in the last seconds.
    pub fn load(file: SnapshotFile, max_entries: usize) -> Result<Self, Error> {
        let stored: Stored = file.load()?.unwrap_or_default();
        Ok(Self {
            file: Some(file),
            entries: stored.issues,
            max_entries: max_entries.max(1),
        })
    }

    /// What is known about `label`.
    pub fn get(&self, label: &str) -> Option<&Known> {
        self.entries.get(label)
    }

    /// How many labels are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records `known` for `label` and writes the file before returning. Over
    /// `max_entries`, the oldest created issues are forgotten (search finds them).
    pub async fn set(&mut self, label: &str, known: Known) -> Result<(), Error> {
        self.entries.insert(label.to_owned(), known);
        while self.entries.len() > self.max_entries {
            let oldest = self
                .entries
                .iter()
                .filter_map(|(l, k)| match k {
                    Known::Created { at, .. } => Some((*at, l.clone())),
                    Known::Pending { .. } => None,
                })
                .min();
            match oldest {
                Some((_, l)) => self.entries.remove(&l),
                None => break,
            };
        }
        self.persist().await
    }

    /// Forgets `label` (a create that certainly did not happen) and writes the file.
    pub async fn remove(&mut self, label: &str) -> Result<(), Error> {
        if self.entries.remove(label).is_some() {
            self.persist().await?;
        }
        Ok(())
    }

    async fn persist(&self) -> Result<(), Error> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let stored = Stored {
            version: 1,
            issues: self.entries.clone(),
        };
        tokio::task::spawn_blocking(move || file.store(&stored))
            .await
            .map_err(|e| Error::internal(format!("state snapshot writer failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn created(key: &str, minute: u32) -> Known {
        Known::Created {
            key: key.into(),
            at: Utc.with_ymd_and_hms(2026, 6, 20, 12, minute, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_data_dir(dir.path(), "ticket-jira");
        let mut map = IssueMap::load(file.clone(), 10).unwrap();
        map.set("vowguard-a", created("SEC-1", 0)).await.unwrap();
        let pending = Known::Pending {
            since: Utc.with_ymd_and_hms(2026, 6, 20, 12, 1, 0).unwrap(),
        };
        map.set("vowguard-b", pending.clone()).await.unwrap();
        let again = IssueMap::load(file.clone(), 10).unwrap();
        assert_eq!(again.get("vowguard-a"), Some(&created("SEC-1", 0)));
        assert_eq!(again.get("vowguard-b"), Some(&pending));
        assert!(file.path().ends_with("state/ticket-jira.json"));
        let mut again = again;
        again.remove("vowguard-b").await.unwrap();
        assert_eq!(IssueMap::load(file, 10).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn forgets_the_oldest_created_issue_over_the_cap() {
        let mut map = IssueMap::in_memory(2);
        map.set("b", created("SEC-2", 2)).await.unwrap();
        map.set("a", created("SEC-1", 1)).await.unwrap();
        map.set("c", created("SEC-3", 3)).await.unwrap();
        assert_eq!(map.len(), 2);
        assert!(map.get("a").is_none(), "the oldest went");
        assert!(map.get("b").is_some() && map.get("c").is_some());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_data_dir(dir.path(), "ticket-jira");
        std::fs::create_dir_all(file.path().parent().unwrap()).unwrap();
        std::fs::write(file.path(), b"{not json").unwrap();
        let err = IssueMap::load(file, 10).unwrap_err().to_string();
        assert!(err.contains("ticket-jira.json"), "{err}");
    }
}

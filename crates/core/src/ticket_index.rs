//! A ticket connector's own fingerprint → ticket map, kept in
//! `<data_dir>/state/ticket-<id>.json`, and a per-fingerprint lock so two concurrent opens of
//! the same incident send one request. Shared by the ticket connectors whose vendor cannot be
//! trusted to deduplicate on its own (TheHive's `sourceRef` aside, SOAR webhooks).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Error, SnapshotFile, TicketRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most tickets remembered; the oldest opened are forgotten first (a webhook target has no
/// dedup of its own beyond the `Idempotency-Key` it may honour, so keep this generous).
pub const MAX_REMEMBERED: usize = 10_000;

/// One remembered ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketIndexEntry {
    /// The incident's fingerprint.
    pub fingerprint: String,
    /// vowguard's incident id.
    pub incident_id: String,
    /// The vendor's key.
    pub key: String,
    /// The link to the ticket, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When the ticket was opened (or found).
    pub opened_at: DateTime<Utc>,
    /// When the connector resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    tickets: Vec<TicketIndexEntry>,
}

#[derive(Debug, Default)]
struct Maps {
    by_fingerprint: HashMap<String, TicketIndexEntry>,
    fingerprint_by_key: HashMap<String, String>,
    order: VecDeque<String>,
}

/// The fingerprint → ticket map, persisted on every change.
#[derive(Debug)]
pub struct TicketIndex {
    system: String,
    file: Option<SnapshotFile>,
    maps: Mutex<Maps>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TicketIndex {
    /// The index of ticket system `system`, loaded from `<data_dir>/state/ticket-<system>.json`.
    /// An unreadable file is an error naming it (fix or delete it; nothing is guessed).
    pub fn load(system: &str, data_dir: &Path) -> Result<Self, Error> {
        let file = SnapshotFile::in_data_dir(data_dir, &format!("ticket-{system}"));
        let stored: Stored = file.load()?.unwrap_or_default();
        let index = Self::empty(system, Some(file));
        {
            let mut maps = index.lock_maps();
            for entry in stored.tickets {
                insert(&mut maps, entry);
            }
        }
        Ok(index)
    }

    /// An index kept in memory only (tests, and hosts without a data directory).
    pub fn in_memory(system: &str) -> Self {
        Self::empty(system, None)
    }

    fn empty(system: &str, file: Option<SnapshotFile>) -> Self {
        Self {
            system: system.to_owned(),
            file,
            maps: Mutex::new(Maps::default()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock_maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ticket remembered for `fingerprint`.
    pub fn get(&self, fingerprint: &str) -> Option<TicketRef> {
        self.lock_maps()
            .by_fingerprint
            .get(fingerprint)
            .map(|e| TicketRef {
                system: self.system.clone(),
                key: e.key.clone(),
                url: e.url.clone(),
            })
    }

    /// The entry whose vendor key is `key`.
    pub fn entry_by_key(&self, key: &str) -> Option<TicketIndexEntry> {
        let maps = self.lock_maps();
        let fingerprint = maps.fingerprint_by_key.get(key)?;
        maps.by_fingerprint.get(fingerprint).cloned()
    }

    /// How many tickets are remembered.
    pub fn len(&self) -> usize {
        self.lock_maps().by_fingerprint.len()
    }

    /// Whether no ticket is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remembers `entry` and writes the snapshot (durably) before returning.
    pub fn remember(&self, entry: TicketIndexEntry) -> Result<(), Error> {
        let mut maps = self.lock_maps();
        insert(&mut maps, entry);
        let Some(file) = &self.file else {
            return Ok(());
        };
        let stored = Stored {
            version: 1,
            tickets: maps
                .order
                .iter()
                .filter_map(|f| maps.by_fingerprint.get(f).cloned())
                .collect(),
        };
        // Written under the lock, so snapshots land in the order of the changes.
        file.store(&stored)
    }

    /// Records that the ticket `key` was resolved (no-op for an unknown key).
    pub fn mark_resolved(&self, key: &str, at: DateTime<Utc>) -> Result<(), Error> {
        let entry = {
            let maps = self.lock_maps();
            let Some(fingerprint) = maps.fingerprint_by_key.get(key) else {
                return Ok(());
            };
            maps.by_fingerprint.get(fingerprint).cloned()
        };
        match entry {
            Some(mut entry) => {
                entry.resolved_at = Some(at);
                self.remember(entry)
            }
            None => Ok(()),
        }
    }

    /// Serialises opens of one fingerprint: hold the guard across look-up, request and
    /// [`TicketIndex::remember`].
    pub async fn lock(&self, fingerprint: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget locks nobody holds or waits for (only the map refers to them).
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(locks.entry(fingerprint.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

fn insert(maps: &mut Maps, entry: TicketIndexEntry) {
    if let Some(old) = maps.by_fingerprint.remove(&entry.fingerprint) {
        maps.fingerprint_by_key.remove(&old.key);
        maps.order.retain(|f| f != &old.fingerprint);
    }
    while maps.order.len() >= MAX_REMEMBERED {
        let Some(oldest) = maps.order.pop_front() else {
            break;
        };
        if let Some(old) = maps.by_fingerprint.remove(&oldest) {
            maps.fingerprint_by_key.remove(&old.key);
        }
    }
    maps.fingerprint_by_key
        .insert(entry.key.clone(), entry.fingerprint.clone());
    maps.order.push_back(entry.fingerprint.clone());
    maps.by_fingerprint.insert(entry.fingerprint.clone(), entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fp: &str, key: &str) -> TicketIndexEntry {
        TicketIndexEntry {
            fingerprint: fp.into(),
            incident_id: format!("inc-{fp}"),
            key: key.into(),
            url: None,
            opened_at: Utc::now(),
            resolved_at: None,
        }
    }

    #[test]
    fn survives_a_restart_and_finds_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let index = TicketIndex::load("soar", dir.path()).unwrap();
        index.remember(entry("fp-1", "~1")).unwrap();
        index.remember(entry("fp-2", "~2")).unwrap();
        assert!(dir.path().join("state/ticket-soar.json").exists());
        let again = TicketIndex::load("soar", dir.path()).unwrap();
        assert_eq!(again.get("fp-1").unwrap().key, "~1");
        assert_eq!(again.get("fp-1").unwrap().system, "soar");
        assert_eq!(again.entry_by_key("~2").unwrap().fingerprint, "fp-2");
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("state/ticket-soar.json"), "{not json").unwrap();
        let e = TicketIndex::load("soar", dir.path()).unwrap_err();
        assert!(e.to_string().contains("ticket-soar.json"), "{e}");
    }

    #[test]
    fn forgets_the_oldest_beyond_the_cap() {
        let index = TicketIndex::in_memory("soar");
        for i in 0..=MAX_REMEMBERED {
            index
                .remember(entry(&format!("fp-{i}"), &format!("~{i}")))
                .unwrap();
        }
        assert_eq!(index.len(), MAX_REMEMBERED);
        assert!(index.get("fp-0").is_none());
        assert!(index.entry_by_key("~0").is_none());
        assert!(index.get(&format!("fp-{MAX_REMEMBERED}")).is_some());
    }
}

//! The in-memory index of active findings, by host.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use vowguard_core::Finding;

/// How a host is looked up: its address, or a lower-case name (FQDN or short name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostKey {
    /// An IP address.
    Ip(IpAddr),
    /// A lower-case host name.
    Name(String),
}

impl HostKey {
    /// The key for a host name as an event gives it (trimmed, lower case, no trailing dot);
    /// an IP address written as a name becomes [`HostKey::Ip`].
    pub fn name(text: &str) -> Option<Self> {
        let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        Some(match name.parse::<IpAddr>() {
            Ok(ip) => Self::Ip(ip),
            Err(_) => Self::Name(name),
        })
    }
}

/// One indexed finding and the sync generation that last reported it.
#[derive(Debug)]
struct Entry {
    finding: Arc<Finding>,
    generation: u64,
}

/// Active findings by key and by host. Not synchronised: see [`SharedIndex`].
#[derive(Debug, Default)]
pub struct FindingIndex {
    by_key: HashMap<String, Entry>,
    by_host: HashMap<HostKey, Vec<Arc<Finding>>>,
}

fn host_keys(finding: &Finding) -> impl Iterator<Item = HostKey> + '_ {
    let asset = &finding.asset;
    let ip = asset.ip.map(HostKey::Ip);
    let fqdn = asset.fqdn.as_deref().and_then(HostKey::name);
    let short = asset.hostname.as_deref().and_then(HostKey::name);
    // The first label of the FQDN finds the host by its short name too.
    let label = asset
        .fqdn
        .as_deref()
        .and_then(|f| f.split_once('.'))
        .and_then(|(label, _)| HostKey::name(label))
        .filter(|k| Some(k) != short.as_ref());
    let mut keys: Vec<HostKey> = [ip, fqdn, short, label].into_iter().flatten().collect();
    keys.dedup();
    keys.into_iter()
}

impl FindingIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many active findings are indexed.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when no finding is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The indexed finding with this key.
    pub fn get(&self, key: &str) -> Option<&Arc<Finding>> {
        self.by_key.get(key).map(|e| &e.finding)
    }

    /// Adds or replaces `finding` (reported in sync `generation`). An inactive finding
    /// (fixed, accepted) is removed instead. Returns true when the index changed.
    pub fn apply(&mut self, finding: Finding, generation: u64) -> bool {
        let key = finding.key();
        let removed = self.remove(&key);
        if !finding.state.is_active() {
            return removed;
        }
        let finding = Arc::new(finding);
        for host in host_keys(&finding) {
            self.by_host.entry(host).or_default().push(finding.clone());
        }
        self.by_key.insert(
            key,
            Entry {
                finding,
                generation,
            },
        );
        true
    }

    /// Removes the finding with `key`; true when it was indexed.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(entry) = self.by_key.remove(key) else {
            return false;
        };
        for host in host_keys(&entry.finding) {
            if let Some(list) = self.by_host.get_mut(&host) {
                list.retain(|f| !Arc::ptr_eq(f, &entry.finding));
                if list.is_empty() {
                    self.by_host.remove(&host);
                }
            }
        }
        true
    }

    /// Removes `scanner`'s findings last reported before `generation` (what a full sync
    /// no longer reports). Returns how many were removed.
    pub fn retire_older(&mut self, scanner: &str, generation: u64) -> usize {
        let stale: Vec<String> = self
            .by_key
            .iter()
            .filter(|(_, e)| e.finding.scanner == scanner && e.generation < generation)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &stale {
            self.remove(key);
        }
        stale.len()
    }

    /// The active findings on `host`, in no particular order.
    pub fn on_host(&self, host: &HostKey) -> &[Arc<Finding>] {
        self.by_host.get(host).map_or(&[], Vec::as_slice)
    }

    /// How many distinct host keys are indexed.
    pub fn hosts(&self) -> usize {
        self.by_host.len()
    }
}

/// A [`FindingIndex`] shared between the sync task (one writer, a page at a time) and the
/// enricher (many readers, microseconds each).
#[derive(Debug, Clone, Default)]
pub struct SharedIndex(Arc<RwLock<FindingIndex>>);

impl SharedIndex {
    /// An empty shared index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read access. A writer that panicked leaves a usable index (each change is whole).
    pub fn read(&self) -> RwLockReadGuard<'_, FindingIndex> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access.
    pub fn write(&self) -> RwLockWriteGuard<'_, FindingIndex> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::{Asset, FindingState, Severity};

    pub(crate) fn finding(ip: &str, plugin: &str, port: u16, state: FindingState) -> Finding {
        Finding {
            scanner: "s".into(),
            plugin_id: plugin.into(),
            title: None,
            asset: Asset {
                ip: Some(ip.parse().unwrap()),
                fqdn: Some("web01.example.com".into()),
                hostname: None,
                scanner_asset_id: None,
            },
            port,
            protocol: if port == 0 {
                String::new()
            } else {
                "tcp".into()
            },
            cves: vec![],
            cvss: None,
            cvss_vector: None,
            severity: Severity::High,
            state,
            first_seen: None,
            last_seen: None,
            confidence: 1.0,
            details_missing: false,
        }
    }

    #[test]
    fn apply_replace_retire_and_lookup_by_every_name() {
        let mut index = FindingIndex::new();
        assert!(index.apply(finding("10.0.0.1", "1", 443, FindingState::Open), 1));
        assert!(index.apply(finding("10.0.0.1", "2", 0, FindingState::Reopened), 1));
        assert!(index.apply(finding("10.0.0.1", "1", 443, FindingState::Open), 1));
        assert_eq!(index.len(), 2);
        let ip = HostKey::Ip("10.0.0.1".parse().unwrap());
        assert_eq!(index.on_host(&ip).len(), 2);
        assert_eq!(
            index
                .on_host(&HostKey::name("WEB01.example.com.").unwrap())
                .len(),
            2
        );
        assert_eq!(index.on_host(&HostKey::name("web01").unwrap()).len(), 2);
        assert_eq!(HostKey::name(" 10.0.0.1 "), Some(ip.clone()));
        // Fixed and accepted retire.
        assert!(index.apply(finding("10.0.0.1", "1", 443, FindingState::Fixed), 2));
        assert!(!index.apply(finding("10.0.0.9", "1", 443, FindingState::Accepted), 2));
        assert_eq!(index.on_host(&ip).len(), 1);
        // A full sync in generation 3 that only re-reported nothing retires the rest.
        assert_eq!(index.retire_older("s", 3), 1);
        assert!(index.is_empty());
        assert_eq!(index.hosts(), 0);
    }
}

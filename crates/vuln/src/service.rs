//! Running scanner syncs: on demand and on a schedule, never on the event path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use tokio::sync::Mutex;
use vowguard_core::{Error, Finding, FindingPages, Scanner};

use crate::index::SharedIndex;
use crate::store::FindingStore;

/// One configured scanner.
#[derive(Debug, Clone)]
pub struct ScannerEntry {
    /// Its component id (`[scanners.<id>]`).
    pub id: String,
    /// The connector.
    pub scanner: Arc<dyn Scanner>,
    /// How often the schedule syncs it.
    pub refresh: Duration,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// The scanner's component id.
    pub scanner: String,
    /// Whether it was a full sync (no checkpoint yet, or asked for).
    pub full: bool,
    /// Findings received.
    pub findings: u64,
    /// Pages received.
    pub pages: u64,
    /// Findings retired because a full sync no longer reported them.
    pub retired: u64,
    /// Findings stored without the scanner's details of their check (CVEs, CVSS, title),
    /// filled in by the next sync; see [`vowguard_core::Finding::details_missing`].
    pub details_missing: u64,
    /// Why those details are missing (no secrets in it).
    pub details_missing_reason: Option<String>,
}

/// The findings service: the store, the shared index and the scanners.
#[derive(Debug)]
pub struct VulnService {
    store: FindingStore,
    index: SharedIndex,
    scanners: Vec<ScannerEntry>,
    locks: HashMap<String, Mutex<()>>,
}

struct Pager<'a> {
    store: &'a FindingStore,
    index: &'a SharedIndex,
    generation: u64,
}

#[async_trait]
impl FindingPages for Pager<'_> {
    async fn page(&mut self, mut findings: Vec<Finding>) -> Result<(), Error> {
        {
            // Keep the earliest first-seen time known for a finding.
            let index = self.index.read();
            for finding in &mut findings {
                if let Some(known) = index.get(&finding.key())
                    && let Some(earlier) = known.first_seen
                    && finding.first_seen.is_none_or(|f| earlier < f)
                {
                    finding.first_seen = Some(earlier);
                }
            }
        }
        self.store.apply_page(self.generation, &findings).await?;
        let mut index = self.index.write();
        for finding in findings {
            index.apply(finding, self.generation);
        }
        Ok(())
    }
}

impl VulnService {
    /// A service over `store` (its findings loaded into a new index) and `scanners`.
    pub async fn open(store: FindingStore, scanners: Vec<ScannerEntry>) -> Result<Self, Error> {
        Self::open_with_index(store, scanners, SharedIndex::new()).await
    }

    /// Like [`VulnService::open`], loading the stored findings into an existing (shared)
    /// index, e.g. the one an enricher was already built with (its content is replaced).
    pub async fn open_with_index(
        store: FindingStore,
        scanners: Vec<ScannerEntry>,
        index: SharedIndex,
    ) -> Result<Self, Error> {
        // Loaded into a private index (no lock held across the reads), then swapped in.
        let mut loaded = crate::index::FindingIndex::new();
        store
            .load(|finding, generation| {
                loaded.apply(finding, generation);
            })
            .await?;
        *index.write() = loaded;
        let locks = scanners
            .iter()
            .map(|s| (s.id.clone(), Mutex::new(())))
            .collect();
        Ok(Self {
            store,
            index,
            scanners,
            locks,
        })
    }

    /// The shared index the correlation enricher reads.
    pub fn index(&self) -> SharedIndex {
        self.index.clone()
    }

    /// The store.
    pub fn store(&self) -> &FindingStore {
        &self.store
    }

    /// The configured scanners' ids.
    pub fn scanner_ids(&self) -> Vec<&str> {
        self.scanners.iter().map(|s| s.id.as_str()).collect()
    }

    /// Syncs scanner `id`: incrementally from its last checkpoint, or in full when it has
    /// none or `full` is asked. Pages are stored and indexed as they arrive; a failure is
    /// recorded and leaves the findings already kept in place.
    pub async fn sync(&self, id: &str, full: bool) -> Result<SyncReport, Error> {
        let Some(entry) = self.scanners.iter().find(|s| s.id == id) else {
            return Err(Error::config(format!(
                "no scanner `{id}`; configured: {}",
                if self.scanners.is_empty() {
                    "none".to_owned()
                } else {
                    self.scanner_ids().join(", ")
                }
            )));
        };
        let _running = self.locks[id].lock().await;
        let since = if full {
            None
        } else {
            self.store.status(id).await?.and_then(|s| s.checkpoint)
        };
        let generation = self.store.begin_sync(id, Utc::now()).await?;
        let mut pager = Pager {
            store: &self.store,
            index: &self.index,
            generation,
        };
        match entry.scanner.sync(since, &mut pager).await {
            Ok(summary) => {
                let full = since.is_none();
                let retired = self
                    .store
                    .finish_sync(
                        id,
                        generation,
                        full,
                        summary.findings,
                        summary.checkpoint,
                        Utc::now(),
                    )
                    .await?;
                if full {
                    self.index.write().retire_older(id, generation);
                }
                if summary.details_missing > 0 {
                    tracing::warn!(
                        scanner = id,
                        findings = summary.details_missing,
                        reason = summary
                            .details_missing_reason
                            .as_deref()
                            .unwrap_or("unknown"),
                        "findings stored without the scanner's details (CVEs, CVSS); the next sync fills them in"
                    );
                }
                Ok(SyncReport {
                    scanner: id.to_owned(),
                    full,
                    findings: summary.findings,
                    pages: summary.pages,
                    retired,
                    details_missing: summary.details_missing,
                    details_missing_reason: summary.details_missing_reason,
                })
            }
            Err(e) => {
                let e = e.with_component(id);
                if let Err(store_error) = self.store.fail_sync(id, &e.to_string()).await {
                    tracing::warn!(scanner = id, error = %store_error, "cannot record a failed sync");
                }
                Err(e)
            }
        }
    }

    /// Reloads the index from the store when the store's scanner states differ from `seen`
    /// (another process, such as `vowguard vulns sync`, synced into the same store); `seen`
    /// is updated. Returns whether it reloaded. The index is loaded privately and swapped
    /// in, so lookups never wait on the store.
    pub async fn reload_if_changed(
        &self,
        seen: &mut Vec<crate::store::ScannerStatus>,
    ) -> Result<bool, Error> {
        let now = self.store.statuses().await?;
        if &now == seen {
            return Ok(false);
        }
        let mut loaded = crate::index::FindingIndex::new();
        self.store
            .load(|finding, generation| {
                loaded.apply(finding, generation);
            })
            .await?;
        *self.index.write() = loaded;
        *seen = now;
        Ok(true)
    }

    /// Starts a task that checks the store every `every` and reloads the index when another
    /// process changed it (see [`VulnService::reload_if_changed`]), so `vowguard vulns sync`
    /// run beside a running instance takes effect without a restart.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut seen = service.store.statuses().await.unwrap_or_default();
            let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match service.reload_if_changed(&mut seen).await {
                    Ok(true) => tracing::info!(
                        findings = service.index.read().len(),
                        "findings store changed; index reloaded"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot check the findings store"),
                }
            }
        })
    }

    /// Starts one background task per scanner: a sync now, then one every `refresh`. A
    /// failed sync is logged and retried at the next tick; the findings kept stay in use.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        self.scanners
            .iter()
            .map(|entry| {
                let service = self.clone();
                let id = entry.id.clone();
                let refresh = entry.refresh.max(Duration::from_secs(1));
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(refresh);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        match service.sync(&id, false).await {
                            Ok(report) => tracing::info!(
                                scanner = %id,
                                findings = report.findings,
                                retired = report.retired,
                                full = report.full,
                                "scanner sync done"
                            ),
                            Err(e) => tracing::warn!(
                                scanner = %id,
                                error = %e,
                                "scanner sync failed; keeping the findings from the last good sync"
                            ),
                        }
                    }
                })
            })
            .collect()
    }
}

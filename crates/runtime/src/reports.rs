//! The report store as the runtime uses it: opened from `[store]`, fed from the audit log,
//! with the GDPR breach register on top (the `vowguard breach` and `vowguard report`
//! commands and `GET /api/reports/{kind}`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vowguard_audit::{AuditLog, AuditReader};
use vowguard_core::{AuditRecord, AuditTrail, CheckpointRef, Error};
use vowguard_router::{BreachLog, BreachRecord};
use vowguard_store::breach::opening_record;
use vowguard_store::config::StoreLocation;
use vowguard_store::report::{Report, ReportParams};
use vowguard_store::{
    AuditSource, BreachRegister, BreachStorage, CatchUpProgress, JsonlAudit, Store,
};

/// The store, the audit log it is projected from, and the breach register.
#[derive(Debug, Clone)]
pub struct Reports {
    /// The store.
    pub store: Store,
    /// Where the store reads audit records from.
    pub source: Arc<dyn AuditSource>,
    /// The register (appends breach changes to the audit log; its state is in
    /// [`BreachRegister::storage`]: the store, or the host's storage).
    pub register: BreachRegister,
}

/// The JSON-lines audit file used for breach changes when the audit log is disabled
/// (`[audit] enabled = false`): durable, but not tamper-evident and without checkpoints.
pub const INTERIM_AUDIT_FILE: &str = "audit-interim.jsonl";

/// How the store reaches the audit log.
#[derive(Debug, Clone)]
pub enum AuditAccess {
    /// The Merkle audit log in `<data_dir>/audit`: read through its files; breach changes
    /// appended through `writer` (None: read-only, changes are refused with the reason).
    Merkle {
        /// The open log, when this process holds it.
        writer: Option<AuditLog>,
    },
    /// Auditing is disabled: the interim JSON-lines file.
    Interim,
}

/// Opens the store at `location` over the audit log under `data_dir`; `dpo_contact` is
/// `[store] dpo_contact`.
pub async fn open(
    location: &StoreLocation,
    data_dir: &Path,
    dpo_contact: Option<String>,
    access: AuditAccess,
) -> Result<Reports, Error> {
    open_with(location, data_dir, dpo_contact, access, None).await
}

/// [`open`], with the breach register's state kept in `breaches` (a host's
/// [`BreachStorage`]) instead of the store.
pub async fn open_with(
    location: &StoreLocation,
    data_dir: &Path,
    dpo_contact: Option<String>,
    access: AuditAccess,
    breaches: Option<Arc<dyn BreachStorage>>,
) -> Result<Reports, Error> {
    let store = Store::open(location).await?;
    let (trail, source): (Arc<dyn AuditTrail>, Arc<dyn AuditSource>) = match access {
        AuditAccess::Merkle { writer } => {
            let source = Arc::new(MerkleSource::new(data_dir.join("audit")));
            let trail: Arc<dyn AuditTrail> = match writer {
                Some(log) => Arc::new(log),
                None => Arc::new(ReadOnlyTrail),
            };
            (trail, source)
        }
        AuditAccess::Interim => {
            let log = Arc::new(JsonlAudit::new(data_dir.join(INTERIM_AUDIT_FILE)));
            (log.clone(), log)
        }
    };
    let breaches = breaches.unwrap_or_else(|| Arc::new(store.clone()));
    let register = BreachRegister::new(breaches, trail, source.clone(), dpo_contact);
    Ok(Reports {
        store,
        source,
        register,
    })
}

/// The Merkle audit log as the store's record source: each call reads the log's files
/// (the writer may be another process), so the store can follow a running `vowguard run`.
#[derive(Debug, Clone)]
pub struct MerkleSource {
    dir: PathBuf,
}

impl MerkleSource {
    /// The log in `dir` (`<data_dir>/audit`).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn exists(&self) -> bool {
        self.dir.join("entries.log").exists()
    }
}

#[async_trait::async_trait]
impl AuditSource for MerkleSource {
    async fn records_from(
        &self,
        index: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, Error> {
        if !self.exists() {
            return Ok(Vec::new());
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            AuditReader::open(dir)?
                .records(index)?
                .take(limit)
                .collect::<Result<Vec<_>, Error>>()
        })
        .await
        .map_err(|e| Error::unavailable(format!("audit reader task failed: {e}")))?
    }

    async fn record_count(&self) -> Result<Option<u64>, Error> {
        if !self.exists() {
            return Ok(Some(0));
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || AuditReader::open(dir)?.len().map(Some))
            .await
            .map_err(|e| Error::unavailable(format!("audit reader task failed: {e}")))?
    }

    async fn checkpoint(&self) -> Result<Option<CheckpointRef>, Error> {
        if !self.exists() {
            return Ok(None);
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || AuditReader::open(dir)?.latest_checkpoint())
            .await
            .map_err(|e| Error::unavailable(format!("audit reader task failed: {e}")))?
    }
}

/// The trail of a process that reads the audit log but does not hold it: appends are
/// refused, saying why.
#[derive(Debug, Clone, Copy)]
struct ReadOnlyTrail;

#[async_trait::async_trait]
impl AuditTrail for ReadOnlyTrail {
    async fn append(&self, _records: Vec<AuditRecord>) -> Result<u64, Error> {
        Err(Error::unavailable(
            "the audit log is open read-only here (another vowguard process holds it); \
             stop `vowguard run` or make the change through the admin API",
        ))
    }
}

impl Reports {
    /// Brings the store up to date with the audit log, then computes the report citing the
    /// log's latest checkpoint.
    pub async fn report(&self, params: &ReportParams) -> Result<Report, Error> {
        self.report_with_progress(params, &|_| {}).await
    }

    /// Like [`Reports::report`], reporting how the catch-up with the audit log stands
    /// (the long part over a long history; see [`Store::catch_up_with_progress`]).
    pub async fn report_with_progress(
        &self,
        params: &ReportParams,
        progress: &(dyn Fn(CatchUpProgress) + Sync),
    ) -> Result<Report, Error> {
        self.store
            .catch_up_with_progress(self.source.as_ref(), progress)
            .await?;
        let checkpoint = self.source.checkpoint().await?;
        self.store.report(params, checkpoint).await
    }
}

/// The router's GDPR breach log for a run: each breach the guest-data-breach protocol opens
/// is queued (bounded, routing never waits) and appended to the audit log as a `breach
/// opened` record once the run's audit log is open ([`BreachQueue::start`]); the store
/// projects it into the register.
#[derive(Debug, Clone)]
pub struct QueuedBreachLog {
    queue: tokio::sync::mpsc::Sender<BreachRecord>,
}

/// Breaches waiting to be recorded before [`QueuedBreachLog`] refuses more.
const BREACH_QUEUE: usize = 1024;

impl BreachLog for QueuedBreachLog {
    fn record(&self, record: &BreachRecord) -> Result<(), Error> {
        self.queue.try_send(record.clone()).map_err(|e| {
            Error::unavailable(format!(
                "breach register: cannot queue breach {}: {e}",
                record.id
            ))
        })
    }
}

/// The receiving end of a [`QueuedBreachLog`].
#[derive(Debug)]
pub struct BreachQueue {
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<BreachRecord>>>,
    dpo_contact: Option<String>,
}

/// A breach log for the router and the queue a run drains into the audit log.
pub fn breach_queue(dpo_contact: Option<String>) -> (QueuedBreachLog, Arc<BreachQueue>) {
    let (queue, rx) = tokio::sync::mpsc::channel(BREACH_QUEUE);
    (
        QueuedBreachLog { queue },
        Arc::new(BreachQueue {
            rx: std::sync::Mutex::new(Some(rx)),
            dpo_contact,
        }),
    )
}

/// Stops a [`BreachQueue`] task after recording what is queued.
#[derive(Debug)]
pub struct BreachRecorder {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl BreachRecorder {
    /// Records every breach queued so far, then stops.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl BreachQueue {
    /// Starts appending queued breaches to `trail` (once per queue; None afterwards).
    pub fn start(&self, trail: Arc<dyn AuditTrail>) -> Option<BreachRecorder> {
        let mut rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let dpo = self.dpo_contact.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let record = |breach: BreachRecord| {
                let trail = trail.clone();
                let dpo = dpo.clone();
                async move {
                    let appended = match opening_record(&breach, chrono::Utc::now(), dpo.as_deref())
                    {
                        Ok(entry) => trail.append(vec![entry]).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    match appended {
                        Ok(()) => tracing::warn!(
                            breach_id = breach.id.as_str(),
                            "GDPR breach opened in the register (suspected; confirm it to start the 72-hour clock)"
                        ),
                        Err(e) => tracing::error!(
                            breach_id = breach.id.as_str(),
                            error = %e,
                            "could not record the breach in the audit log"
                        ),
                    }
                }
            };
            loop {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(breach) => record(breach).await,
                        None => break,
                    },
                    _ = &mut stopped => {
                        rx.close();
                        while let Some(breach) = rx.recv().await {
                            record(breach).await;
                        }
                        break;
                    }
                }
            }
        });
        Some(BreachRecorder { stop, task })
    }
}

/// Where a run appends breach changes: the audit log when it is open, else (auditing
/// disabled) the interim JSON-lines file under `data_dir`.
pub fn breach_trail(audit_log: &Option<AuditLog>, data_dir: &Path) -> Arc<dyn AuditTrail> {
    match audit_log {
        Some(log) => Arc::new(log.clone()),
        None => Arc::new(JsonlAudit::new(data_dir.join(INTERIM_AUDIT_FILE))),
    }
}

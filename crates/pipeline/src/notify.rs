//! Alert dispatch: one worker per notifier, rate-limited (alerts wait, in order, never
//! dropped), retried with the shared policy, every result written to the notification log
//! (a [`NotificationStorage`]: the [`NotificationLog`] file by default,
//! [`MemoryNotificationLog`] or a host's own).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;
use vowguard_core::jsonl_log::{JsonlLog, Rotation};
use vowguard_core::{Alert, Error, Priority, TokenBucket};

use crate::metrics::{LogFileMetrics, NotifierCounters};
use crate::pipeline::NotifierSpec;
use crate::sink_worker::aborted;

/// How many alerts one notifier may have in flight at once.
const NOTIFIER_CONCURRENCY: usize = 4;
/// How many records [`NotificationLog::recent`] keeps in memory.
const RECENT_CAPACITY: usize = 10_000;
/// Rotated notification-log files kept by default.
pub(crate) const DEFAULT_NOTIFICATION_FILES: usize = 10;

/// The result of sending one alert to one notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// When dispatch finished.
    pub time: DateTime<Utc>,
    /// The alert's id.
    pub alert_id: String,
    /// The alert group's dedup key.
    pub dedup_key: String,
    /// The route that sent it.
    pub route: String,
    /// The notifier id.
    pub notifier: String,
    /// The alert priority.
    pub priority: Priority,
    /// The event that raised it.
    pub event_id: String,
    /// Whether the channel accepted it.
    pub delivered: bool,
    /// The vendor's delivery id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// How many events the alert stood for (the grouper's `group_size`; absent for an
    /// alert that went through no grouping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<u64>,
}

/// File name of the active notification log in the data directory.
pub const NOTIFICATIONS_FILE: &str = "notifications.jsonl";

/// Where a pipeline records the result of every notification.
///
/// # Durability contract
///
/// The notification log is a report, not part of delivery: an alert counts as dispatched
/// once its channel answered (or the retries ran out), whether or not its record could be
/// stored. [`record`](Self::record) may return before the record is durable (the file log
/// writes to the page cache without `fdatasync`); a record that fails to store is logged
/// as an error and not retried. Records are passed in the order their dispatch finished.
#[async_trait]
pub trait NotificationStorage: Send + Sync + std::fmt::Debug {
    /// Stores one result.
    async fn record(&self, record: NotificationRecord) -> Result<(), Error>;

    /// The most recent records (a bounded number, at least the last one stored when
    /// anything was), oldest first.
    fn recent(&self) -> Vec<NotificationRecord>;

    /// What the storage's files hold now (zero for storage without files).
    fn usage(&self) -> LogFileMetrics;
}

/// The last records, at most `capacity`, oldest first.
#[derive(Debug)]
struct RecentRecords {
    records: Mutex<VecDeque<NotificationRecord>>,
    capacity: usize,
}

impl RecentRecords {
    fn new(capacity: usize) -> Self {
        Self {
            records: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    fn push(&self, record: NotificationRecord) {
        let mut records = self.records.lock().expect("log lock poisoned");
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }

    fn list(&self) -> Vec<NotificationRecord> {
        self.records
            .lock()
            .expect("log lock poisoned")
            .iter()
            .cloned()
            .collect()
    }
}

/// Notification records kept in memory only (the last `capacity` of them): for tests and
/// hosts that report notifications their own way. Nothing survives the process.
#[derive(Debug)]
pub struct MemoryNotificationLog {
    recent: RecentRecords,
}

impl MemoryNotificationLog {
    /// A log keeping the last `capacity` records (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            recent: RecentRecords::new(capacity),
        }
    }
}

#[async_trait]
impl NotificationStorage for MemoryNotificationLog {
    async fn record(&self, record: NotificationRecord) -> Result<(), Error> {
        self.recent.push(record);
        Ok(())
    }

    fn recent(&self) -> Vec<NotificationRecord> {
        self.recent.list()
    }

    fn usage(&self) -> LogFileMetrics {
        LogFileMetrics::default()
    }
}

/// Every notification result: appended to `<data_dir>/notifications.jsonl` (rotated by
/// size into `notifications.<n>.jsonl`, the oldest deleted beyond the configured number of
/// files) and kept in a bounded in-memory list for reports: the default
/// [`NotificationStorage`].
#[derive(Debug)]
pub struct NotificationLog {
    file: JsonlLog,
    recent: RecentRecords,
}

impl NotificationLog {
    /// A log that writes to `notifications.jsonl` in `data_dir`, rotating at 64 MiB and
    /// keeping 10 rotated files.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        Self::open_with(
            data_dir,
            Rotation {
                max_file_bytes: vowguard_core::jsonl_log::DEFAULT_MAX_FILE_BYTES,
                max_files: Some(DEFAULT_NOTIFICATION_FILES),
            },
        )
    }

    /// A log that writes to `notifications.jsonl` in `data_dir` with this rotation.
    pub fn open_with(data_dir: &Path, rotation: Rotation) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("cannot create data_dir {}", data_dir.display()), e))?;
        let file = JsonlLog::open(&data_dir.join(NOTIFICATIONS_FILE), rotation)?;
        Ok(Self {
            file,
            recent: RecentRecords::new(RECENT_CAPACITY),
        })
    }

    /// Where the log writes (the active file).
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[async_trait]
impl NotificationStorage for NotificationLog {
    async fn record(&self, record: NotificationRecord) -> Result<(), Error> {
        let line = serde_json::to_vec(&record).expect("a record always serialises");
        // Kept in memory whether or not the file takes it: reports still show it.
        self.recent.push(record);
        // Not synced: a page-cache write; the record is a report, the alert itself is
        // tracked by the alert path's journal position.
        self.file.append(&[line], false)
    }

    /// The most recent records (up to 10 000), oldest first.
    fn recent(&self) -> Vec<NotificationRecord> {
        self.recent.list()
    }

    /// What the log files hold now.
    fn usage(&self) -> LogFileMetrics {
        self.file.usage().into()
    }
}

/// One alert to send, and who to tell when it is done (delivered or given up).
pub(crate) type Dispatch = (Alert, oneshot::Sender<()>);

pub(crate) struct NotifierWorker {
    pub(crate) spec: NotifierSpec,
    pub(crate) rx: mpsc::Receiver<Dispatch>,
    pub(crate) log: Arc<dyn NotificationStorage>,
    pub(crate) counters: Arc<NotifierCounters>,
    /// Becomes true when the worker must stop at once (shutdown deadline passed): alerts
    /// in flight are abandoned; the alert path has not committed them, so they are sent
    /// again on the next start.
    pub(crate) abort: watch::Receiver<bool>,
    pub(crate) audit: Option<crate::audit::PipelineAudit>,
}

impl NotifierWorker {
    pub(crate) async fn run(mut self) {
        let limit = self
            .spec
            .rate_limit
            .or_else(|| self.spec.notifier.rate_limit());
        let bucket = limit.map(|l| Arc::new(TokenBucket::new(l)));
        let slots = Arc::new(Semaphore::new(NOTIFIER_CONCURRENCY));
        let mut tasks = JoinSet::new();
        let mut abort = self.abort.clone();
        loop {
            let (alert, done) = tokio::select! {
                next = self.rx.recv() => match next {
                    Some(next) => next,
                    None => break,
                },
                () = aborted(&mut abort) => {
                    tasks.abort_all();
                    return;
                }
            };
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("semaphore never closed"),
                () = aborted(&mut abort) => {
                    tasks.abort_all();
                    return;
                }
            };
            let spec = self.spec.clone();
            let bucket = bucket.clone();
            let log = self.log.clone();
            let counters = self.counters.clone();
            let audit = self.audit.clone();
            tasks.spawn(async move {
                let result = dispatch(&spec, bucket.as_deref(), &alert, &*log, &counters).await;
                if let Some(audit) = audit {
                    let detail = result.delivery_id.or(result.error);
                    let record = crate::audit::PipelineAudit::notification(
                        &alert,
                        &spec.id,
                        result.delivered,
                        detail,
                    );
                    audit.record(vec![record]).await;
                }
                drop(permit);
                let _ = done.send(());
            });
            while tasks.try_join_next().is_some() {}
        }
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                () = aborted(&mut abort) => {
                    tasks.abort_all();
                    return;
                }
            }
        }
        tracing::debug!(notifier = %self.spec.id, "notifier worker finished");
    }
}

async fn dispatch(
    spec: &NotifierSpec,
    bucket: Option<&TokenBucket>,
    alert: &Alert,
    log: &dyn NotificationStorage,
    counters: &NotifierCounters,
) -> NotificationRecord {
    let span = tracing::debug_span!(
        target: crate::TRACE_TARGET,
        "notify",
        notifier = %spec.id,
        kind = spec.notifier.kind(),
        event_id = %alert.event.id,
        alert_id = %alert.id,
        route = %alert.route,
        priority = %alert.priority,
        delivered = tracing::field::Empty,
        attempts = tracing::field::Empty,
    );
    let (result, attempts) = spec
        .retry
        .run(|_| async {
            if let Some(bucket) = bucket {
                bucket.acquire().await;
            }
            spec.notifier.notify(alert).await
        })
        .instrument(span.clone())
        .await;
    span.record("delivered", result.is_ok());
    span.record("attempts", attempts);
    counters
        .retried
        .fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
    let mut record = NotificationRecord {
        time: Utc::now(),
        alert_id: alert.id.clone(),
        dedup_key: alert.dedup_key.clone(),
        route: alert.route.clone(),
        notifier: spec.id.clone(),
        priority: alert.priority,
        event_id: alert.event.id.clone(),
        delivered: false,
        delivery_id: None,
        error: None,
        attempts,
        group_size: alert
            .params
            .get("group_size")
            .and_then(serde_json::Value::as_u64),
    };
    match result {
        Ok(receipt) => {
            counters.sent.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                notifier = %spec.id,
                route = %alert.route,
                priority = %alert.priority,
                event_id = %alert.event.id,
                "alert delivered"
            );
            record.delivered = true;
            record.delivery_id = receipt.delivery_id;
        }
        Err(e) => {
            let e = e.with_component(spec.id.clone());
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                notifier = %spec.id,
                route = %alert.route,
                event_id = %alert.event.id,
                attempts,
                error = %e,
                "alert not delivered"
            );
            record.error = Some(e.to_string());
        }
    }
    if let Err(e) = log.record(record.clone()).await {
        tracing::error!(notifier = %spec.id, error = %e, "cannot write notification log");
    }
    record
}

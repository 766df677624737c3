//! Alert dispatch: one worker per notifier, rate-limited (alerts wait, in order, never
//! dropped), retried with the shared policy, every result written to the notification log
//! (a [`NotificationStorage`]: the [`NotificationLog`] file by default,
//! [`MemoryNotificationLog`] or a host's own).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;
use vowguard_core::jsonl_log::{JsonlLog, Rotation};
use vowguard_core::{Alert, Error, Priority, TokenBucket};
use vowguard_router::coalesce_group_notifications;

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

/// What [`NotifierQueue::push`] did with a notification.
#[derive(Debug)]
pub(crate) enum Pushed {
    /// Queued behind the others.
    Queued,
    /// A notification of the same alert group was still waiting: the two are one now
    /// ([`coalesce_group_notifications`]); `dropped` (the dispatch id of the one no longer
    /// sent on its own) is done, `kept` stands for both and now says `merged`.
    Coalesced {
        dropped: u64,
        dropped_alert: Box<Alert>,
        kept: u64,
        merged: Box<Alert>,
    },
}

/// The notifications waiting for one notifier, in order, bounded.
///
/// A channel slower than the alert groups' timers (Slack's one message a second, a
/// PagerDuty outage being retried) would otherwise collect one notification per group
/// flush: a notification of a group still waiting here is merged into the waiting one
/// instead of queued behind it, so the queue holds at most one notification per group and
/// the channel, when it catches up, sends what the group is now. Notifications that belong
/// to no group wait in order; when `capacity` of them wait, [`push`](Self::push) waits
/// for room.
#[derive(Debug)]
pub(crate) struct NotifierQueue {
    state: Mutex<QueueState>,
    /// An entry arrived or the queue closed (one consumer: the notifier worker).
    ready: Notify,
    /// Room for one more entry (a permit per free place).
    room: Semaphore,
}

#[derive(Debug, Default)]
struct QueueState {
    next_place: u64,
    /// Place in line → (dispatch id, notification).
    waiting: BTreeMap<u64, (u64, Alert)>,
    /// Group (route and group key) → its place in line.
    groups: HashMap<String, u64>,
    closed: bool,
}

/// The group a notification speaks for, as a queue key (`None`: no group).
fn group_of(alert: &Alert) -> Option<String> {
    let key = alert.params.get("group_key")?.as_str()?;
    Some(format!("{}\u{0}{key}", alert.route))
}

impl NotifierQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            room: Semaphore::new(capacity.max(1)),
        }
    }

    /// Hands `alert` (dispatch `id`) to the notifier: merged into a waiting notification of
    /// its group, or queued (waiting for room when the queue is full).
    pub(crate) async fn push(&self, id: u64, alert: Alert) -> Pushed {
        let group = group_of(&alert);
        let mut alert = Some(alert);
        if let Some(pushed) = self.coalesce(group.as_deref(), id, &mut alert) {
            return pushed;
        }
        let permit = self.room.acquire().await.expect("never closed");
        // The line may have changed while waiting for room.
        if let Some(pushed) = self.coalesce(group.as_deref(), id, &mut alert) {
            return pushed;
        }
        permit.forget();
        let mut state = self.state.lock().expect("queue lock poisoned");
        let place = state.next_place;
        state.next_place += 1;
        state
            .waiting
            .insert(place, (id, alert.take().expect("not coalesced")));
        if let Some(group) = group {
            state.groups.insert(group, place);
        }
        drop(state);
        self.ready.notify_one();
        Pushed::Queued
    }

    /// Merges `alert` into the waiting notification of `group`, when there is one.
    fn coalesce(&self, group: Option<&str>, id: u64, alert: &mut Option<Alert>) -> Option<Pushed> {
        let group = group?;
        let mut state = self.state.lock().expect("queue lock poisoned");
        let place = *state.groups.get(group)?;
        let (waiting_id, waiting) = state.waiting.remove(&place).expect("indexed entry waits");
        let newer = alert.take().expect("offered once");
        let older_id = waiting.id.clone();
        let merged = coalesce_group_notifications(waiting.clone(), newer.clone());
        let (kept, dropped, dropped_alert) = if merged.id == older_id {
            (waiting_id, id, newer)
        } else {
            (id, waiting_id, waiting)
        };
        state.waiting.insert(place, (kept, merged.clone()));
        Some(Pushed::Coalesced {
            dropped,
            dropped_alert: Box::new(dropped_alert),
            kept,
            merged: Box::new(merged),
        })
    }

    /// The next notification to send (dispatch id and alert), in order; `None` once the
    /// queue is closed and empty.
    pub(crate) async fn pop(&self) -> Option<(u64, Alert)> {
        loop {
            {
                let mut state = self.state.lock().expect("queue lock poisoned");
                if let Some((place, entry)) = state.waiting.pop_first() {
                    if let Some(group) = group_of(&entry.1)
                        && state.groups.get(&group) == Some(&place)
                    {
                        state.groups.remove(&group);
                    }
                    drop(state);
                    self.room.add_permits(1);
                    return Some(entry);
                }
                if state.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// No more notifications come: [`pop`](Self::pop) returns what waits, then `None`.
    pub(crate) fn close(&self) {
        self.state.lock().expect("queue lock poisoned").closed = true;
        self.ready.notify_one();
    }

    /// Notifications waiting.
    pub(crate) fn len(&self) -> usize {
        self.state
            .lock()
            .expect("queue lock poisoned")
            .waiting
            .len()
    }
}

pub(crate) struct NotifierWorker {
    pub(crate) spec: NotifierSpec,
    pub(crate) queue: Arc<NotifierQueue>,
    /// Told the dispatch id of every notification once it is done (delivered or given up).
    pub(crate) done: mpsc::UnboundedSender<u64>,
    pub(crate) log: Arc<dyn NotificationStorage>,
    pub(crate) counters: Arc<NotifierCounters>,
    /// Becomes true when the worker must stop at once (shutdown deadline passed): alerts
    /// in flight are abandoned; the alert path has not committed them, so they are sent
    /// again on the next start.
    pub(crate) abort: watch::Receiver<bool>,
    pub(crate) audit: Option<crate::audit::PipelineAudit>,
}

impl NotifierWorker {
    pub(crate) async fn run(self) {
        let limit = self
            .spec
            .rate_limit
            .or_else(|| self.spec.notifier.rate_limit());
        let bucket = limit.map(|l| Arc::new(TokenBucket::new(l)));
        let slots = Arc::new(Semaphore::new(NOTIFIER_CONCURRENCY));
        let mut tasks = JoinSet::new();
        let mut abort = self.abort.clone();
        loop {
            let (id, alert) = tokio::select! {
                next = self.queue.pop() => match next {
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
            let done = self.done.clone();
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
                let _ = done.send(id);
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

#[cfg(test)]
mod queue_tests {
    use std::sync::Arc;

    use vowguard_core::{Alert, Category, Event, Priority, Severity};

    use super::{NotifierQueue, Pushed};

    fn alert(route: &str, group: Option<&str>, size: u64) -> Alert {
        let event = Arc::new(Event::new(
            Category::Authentication,
            "login",
            Severity::High,
        ));
        let mut a = Alert::new(event, Priority::P1High, route);
        if let Some(group) = group {
            a.params.insert("group_key".into(), group.into());
            a.params.insert("group_size".into(), size.into());
        }
        a
    }

    #[tokio::test]
    async fn a_group_waits_once_and_keeps_its_place_in_line() {
        let q = NotifierQueue::new(10);
        assert!(matches!(
            q.push(0, alert("r", Some("a"), 1)).await,
            Pushed::Queued
        ));
        assert!(matches!(
            q.push(1, alert("r", None, 1)).await,
            Pushed::Queued
        ));
        // Same key on another route: another group.
        assert!(matches!(
            q.push(2, alert("s", Some("a"), 1)).await,
            Pushed::Queued
        ));
        let newer = alert("r", Some("a"), 2);
        let newer_id = newer.id.clone();
        match q.push(3, newer).await {
            Pushed::Coalesced {
                dropped,
                kept,
                merged,
                ..
            } => {
                assert_eq!((dropped, kept), (0, 3));
                assert_eq!(merged.id, newer_id);
                assert_eq!(merged.params["group_size"], 3);
            }
            other => panic!("not merged: {other:?}"),
        }
        assert_eq!(q.len(), 3);
        // First in line still: the group's place, now with the merged notification.
        let (id, first) = q.pop().await.unwrap();
        assert_eq!(id, 3);
        assert_eq!(first.params["group_size"], 3);
        // Once taken, the next notification of the group waits again, at the end.
        assert!(matches!(
            q.push(4, alert("r", Some("a"), 1)).await,
            Pushed::Queued
        ));
        let order: Vec<u64> = [q.pop().await, q.pop().await, q.pop().await]
            .into_iter()
            .map(|e| e.unwrap().0)
            .collect();
        assert_eq!(order, [1, 2, 4]);
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_and_close_lets_the_rest_out() {
        use futures::FutureExt as _;

        let q = NotifierQueue::new(2);
        q.push(0, alert("r", None, 1)).await;
        q.push(1, alert("r", Some("g"), 1)).await;
        // A merge takes no room.
        assert!(matches!(
            q.push(2, alert("r", Some("g"), 1)).now_or_never(),
            Some(Pushed::Coalesced { .. })
        ));
        // No room: the third cannot be queued (its first poll waits for room).
        assert!(q.push(3, alert("r", None, 1)).now_or_never().is_none());
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().await.unwrap().0, 0);
        assert!(matches!(
            q.push(3, alert("r", None, 1)).now_or_never(),
            Some(Pushed::Queued)
        ));
        q.close();
        assert_eq!(q.pop().await.unwrap().0, 2);
        assert_eq!(q.pop().await.unwrap().0, 3);
        assert!(q.pop().await.is_none());
    }
}

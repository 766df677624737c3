//! The alert path: reads enriched events from the journal at its own position, routes them,
//! groups the alerts (group_wait / group_interval / repeat_interval, so a brute-force burst
//! is one notification, not one per event), hands the notifications to the notifier
//! workers, and commits its position.
//!
//! The position never moves past an event whose alert is still held in a group, nor past
//! what the last state snapshot covers; the snapshot lists the notifications the channels
//! have not finished (delivered or given up), so a crash can repeat an alert but never
//! lose one (without a state file, the position waits for the channels instead).
//!
//! Routing does not wait for the channels: a slow or rate-limited channel (Slack's one
//! message a second) holds back only its own queue, never the routing of later events, the
//! other channels or the journal; its queue merges a group's new notification into the one
//! still waiting (see [`NotifierQueue`](crate::notify::NotifierQueue)). When the pipeline
//! drains at the end of the input, pending groups are notified at once instead of waiting
//! out their timers.
//!
//! What a restart must not forget (alert groups in progress, the router's inhibition
//! sources) is kept in `<data_dir>/state/alerts.json`, a snapshot replaced atomically
//! after the batches it covers are dispatched (at most about once a second under load) and
//! at the end of the run. The snapshot records the journal sequence it covers: after a
//! restart the groups and inhibition are restored and the records it covers are not
//! routed again, and the position is never committed past what the last snapshot covers.
//! The notifications a channel had not finished when the snapshot was taken are in it too,
//! and are handed to their channels again at the next start.
//! Each alert gets a stable id from its journal record, so a notification re-created after
//! a crash is recognised by the notifiers that remember what they delivered.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use vowguard_core::{Alert, AlertRouting, Event, SnapshotFile};
use vowguard_journal::JournalReader;
use vowguard_router::{AlertGrouper, GroupTiming, GrouperSnapshot};

use crate::metrics::NotifierCounters;
use crate::notify::Pushed;
use crate::sink_worker::aborted;

/// Most alert groups held at once (beyond that alerts pass through ungrouped).
const MAX_GROUPS: usize = 10_000;

/// Least time between two state snapshots while alerts keep coming (bursts coalesce).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// Version of [`AlertPathState`]; a snapshot of another version is ignored.
const STATE_VERSION: u32 = 1;

/// What the alert path keeps across a restart.
#[derive(Debug, Serialize, Deserialize)]
struct AlertPathState {
    version: u32,
    /// Every journal record below this sequence number is routed, and the state below
    /// includes its effects.
    routed_upto: u64,
    groups: GrouperSnapshot,
    targets: HashMap<String, Vec<String>>,
    held: HashMap<String, u64>,
    /// The router's state (inhibition sources).
    #[serde(default)]
    router: Option<serde_json::Value>,
    /// Notifications handed to a channel and not finished when the snapshot was taken.
    #[serde(default)]
    undelivered: Vec<Undelivered>,
}

/// A notification a channel had not finished, kept across a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Undelivered {
    notifier: String,
    alert: Alert,
    /// The oldest journal sequence number it stands for.
    hold: u64,
}

/// The notifiers the alert path hands notifications to, by notifier id (each notifier's
/// counters hold its queue). Dropping it closes the queues: the notifier workers send what
/// waits, then finish.
pub(crate) struct NotifierQueues(pub(crate) HashMap<String, Arc<NotifierCounters>>);

impl NotifierQueues {
    fn close(&self) {
        for counters in self.0.values() {
            counters.queue.close();
        }
    }
}

impl Drop for NotifierQueues {
    fn drop(&mut self) {
        self.close();
    }
}

/// Notifications handed to the notifier queues and not finished yet.
#[derive(Debug, Default)]
struct InFlight {
    next_id: u64,
    /// Dispatch id → (notifier, notification, oldest journal sequence it stands for).
    entries: HashMap<u64, (String, Alert, Option<u64>)>,
    /// How many unfinished notifications stand for each journal sequence number.
    holds: BTreeMap<u64, usize>,
}

impl InFlight {
    fn insert(&mut self, notifier: &str, alert: Alert, hold: Option<u64>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.take_hold(hold);
        self.entries.insert(id, (notifier.to_owned(), alert, hold));
        id
    }

    /// Forgets a finished (or merged) notification; returns its hold.
    fn remove(&mut self, id: u64) -> Option<u64> {
        let (_, _, hold) = self.entries.remove(&id)?;
        self.release_hold(hold);
        hold
    }

    /// `dropped` was merged into `kept`, which now says `merged` and stands for both (the
    /// older of their two holds).
    fn merge(&mut self, dropped: u64, kept: u64, merged: Alert) {
        let dropped_hold = self.remove(dropped);
        let Some((_, alert, kept_hold)) = self.entries.get_mut(&kept) else {
            return;
        };
        *alert = merged;
        if let Some(older) = dropped_hold
            && kept_hold.is_none_or(|held| older < held)
        {
            let moved = kept_hold.replace(older);
            self.release_hold(moved);
            self.take_hold(Some(older));
        }
    }

    fn take_hold(&mut self, hold: Option<u64>) {
        if let Some(hold) = hold {
            *self.holds.entry(hold).or_default() += 1;
        }
    }

    fn release_hold(&mut self, hold: Option<u64>) {
        if let Some(hold) = hold
            && let Some(n) = self.holds.get_mut(&hold)
        {
            *n -= 1;
            if *n == 0 {
                self.holds.remove(&hold);
            }
        }
    }

    /// The oldest journal sequence number an unfinished notification stands for.
    fn oldest(&self) -> Option<u64> {
        self.holds.keys().next().copied()
    }

    /// What a snapshot keeps: the unfinished notifications that stand for journal records
    /// (repeats stand for none; their group sends them again).
    fn undelivered(&self) -> Vec<Undelivered> {
        let mut ids: Vec<u64> = self.entries.keys().copied().collect();
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| {
                let (notifier, alert, hold) = &self.entries[id];
                Some(Undelivered {
                    notifier: notifier.clone(),
                    alert: alert.clone(),
                    hold: (*hold)?,
                })
            })
            .collect()
    }
}

pub(crate) struct AlertWorker {
    pub(crate) reader: JournalReader,
    /// The next journal sequence number to route: every record below it is routed and
    /// its notifications handed over (the alert path's lag, for the metrics).
    pub(crate) position: Arc<AtomicU64>,
    pub(crate) router: Arc<dyn AlertRouting>,
    pub(crate) notifiers: NotifierQueues,
    /// The dispatch id of every notification a notifier worker finished.
    pub(crate) dispatched: mpsc::UnboundedReceiver<u64>,
    pub(crate) routed: Arc<AtomicU64>,
    /// Where the state a restart must not forget is kept (`None`: not kept).
    pub(crate) state: Option<SnapshotFile>,
    pub(crate) abort: watch::Receiver<bool>,
    /// Becomes true when the input has ended and the pipeline drains.
    pub(crate) draining: watch::Receiver<bool>,
    pub(crate) audit: Option<crate::audit::PipelineAudit>,
}

/// The grouping state of the alert path.
struct Groups {
    grouper: AlertGrouper,
    /// Notifier ids per group key.
    targets: HashMap<String, Vec<String>>,
    /// The oldest journal sequence number with an alert held in each group.
    held: HashMap<String, u64>,
    /// Records below this sequence number were routed before a restart (their effects are
    /// in the restored state): not routed again.
    skip_below: u64,
    /// What the last durable snapshot covers (`None`: no snapshot kept or none yet).
    persisted_upto: Option<u64>,
    /// State changed since the last snapshot.
    dirty: bool,
    last_snapshot: Option<Instant>,
    /// Notifications handed over and not finished.
    in_flight: InFlight,
}

impl AlertWorker {
    pub(crate) async fn run(mut self) {
        let mut groups = Groups {
            grouper: AlertGrouper::new(MAX_GROUPS),
            targets: HashMap::new(),
            held: HashMap::new(),
            skip_below: 0,
            persisted_upto: None,
            dirty: false,
            last_snapshot: None,
            in_flight: InFlight::default(),
        };
        let undelivered = self.restore(&mut groups);
        for Undelivered {
            notifier,
            alert,
            hold,
        } in undelivered
        {
            if self
                .hand_over(&notifier, alert, Some(hold), &mut groups)
                .await
                .is_err()
            {
                return;
            }
        }
        let mut read_upto: Option<u64> = None;
        let mut abort = self.abort.clone();
        let mut draining = self.draining.clone();
        loop {
            if *draining.borrow() && groups.grouper.has_pending() {
                let out = groups.grouper.flush_pending(Instant::now());
                if self.enqueue(out, None, None, &mut groups).await.is_err() {
                    return;
                }
                groups.held.clear();
                groups.dirty = true;
                self.snapshot(read_upto, &mut groups, true).await;
                if self.commit(read_upto, &groups).is_err() {
                    break;
                }
            }
            let deadline = groups.grouper.next_deadline();
            tokio::select! {
                r = self.reader.next_records(256, 4 << 20) => {
                    let records = match r {
                        Ok(records) => records,
                        Err(e) => {
                            tracing::error!(error = e.to_string().as_str(), "alert path cannot read the journal");
                            break;
                        }
                    };
                    let Some(last) = records.last().map(|r| r.seq) else { break };
                    if self.route_batch(records, &mut groups).await.is_err() {
                        return;
                    }
                    read_upto = Some(last + 1);
                    self.position.store(last + 1, Ordering::Relaxed);
                    // Draining and nothing left to read: the snapshot (and with it the
                    // commit the drain waits for) is written now, not at the next
                    // coalescing tick up to a second later.
                    let now = *draining.borrow() && self.reader.caught_up();
                    self.snapshot(read_upto, &mut groups, now).await;
                    if self.commit(read_upto, &groups).is_err() {
                        break;
                    }
                }
                () = sleep_until(deadline) => {
                    let out = groups.grouper.due(Instant::now());
                    groups.dirty |= !out.is_empty();
                    if self.enqueue(out, None, None, &mut groups).await.is_err() {
                        return;
                    }
                    self.snapshot(read_upto, &mut groups, false).await;
                    if self.commit(read_upto, &groups).is_err() {
                        break;
                    }
                }
                Some(id) = self.dispatched.recv() => {
                    let oldest = groups.in_flight.oldest();
                    let mut finished = groups.in_flight.remove(id).is_some();
                    while let Ok(id) = self.dispatched.try_recv() {
                        finished |= groups.in_flight.remove(id).is_some();
                    }
                    // The next snapshot no longer lists them.
                    groups.dirty |= finished;
                    // Only a notification standing for journal records moves the position
                    // (a repeat may finish after the drain has closed the journal).
                    if groups.in_flight.oldest() != oldest
                        && self.commit(read_upto, &groups).is_err()
                    {
                        break;
                    }
                }
                () = sleep_until(snapshot_deadline(&groups)) => {
                    self.snapshot(read_upto, &mut groups, false).await;
                    if self.commit(read_upto, &groups).is_err() {
                        break;
                    }
                }
                changed = draining.changed() => {
                    if changed.is_err() {
                        // The pipeline is gone; keep serving until the journal closes.
                        draining = watch::channel(true).1;
                    }
                    if *draining.borrow() && self.reader.caught_up() {
                        self.snapshot(read_upto, &mut groups, true).await;
                        if self.commit(read_upto, &groups).is_err() {
                            break;
                        }
                    }
                }
                () = aborted(&mut abort) => break,
            }
        }
        // The journal is closed (or the run aborted): no more notifications come. Unless
        // aborted, wait for the channels to finish what they were handed, so the snapshot
        // below does not list it to be sent again.
        self.notifiers.close();
        while !groups.in_flight.entries.is_empty() && !*abort.borrow() {
            tokio::select! {
                id = self.dispatched.recv() => match id {
                    Some(id) => {
                        groups.in_flight.remove(id);
                        groups.dirty = true;
                    }
                    None => break,
                },
                () = aborted(&mut abort) => break,
            }
        }
        // The state is consistent here (every batch read was routed and handed over; what a
        // channel has not finished is listed): keep it for the next start. An abort in the
        // middle of a batch returns above instead, leaving the last consistent snapshot.
        self.snapshot(read_upto, &mut groups, true).await;
        tracing::debug!("alert worker finished");
    }

    /// Restores the state an earlier run kept (groups, inhibition, what was routed);
    /// returns the notifications its channels had not finished.
    fn restore(&self, groups: &mut Groups) -> Vec<Undelivered> {
        let Some(file) = &self.state else {
            return Vec::new();
        };
        let state: AlertPathState = match file.load() {
            Ok(Some(state)) => state,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::error!(
                    error = e.to_string().as_str(),
                    "alert path state not restored; starting without it (alerts held in groups are rebuilt from the journal)"
                );
                return Vec::new();
            }
        };
        if state.version != STATE_VERSION {
            tracing::warn!(
                version = state.version,
                "alert path state of another version ignored"
            );
            return Vec::new();
        }
        if let Some(router_state) = state.router
            && let Err(e) = self.router.import_state(router_state)
        {
            tracing::error!(error = e.to_string().as_str(), "router state not restored");
        }
        groups
            .grouper
            .import(state.groups, Instant::now(), chrono::Utc::now());
        groups.targets = state.targets;
        groups.held = state.held;
        groups.skip_below = state.routed_upto;
        groups.persisted_upto = Some(state.routed_upto);
        tracing::info!(
            groups = groups.grouper.len(),
            routed_upto = state.routed_upto,
            undelivered = state.undelivered.len(),
            "alert path state restored"
        );
        state.undelivered
    }

    /// Writes the state snapshot when it changed: at once when `now`, otherwise at most
    /// once per [`SNAPSHOT_EVERY`] (the timer in the main loop writes what is left).
    async fn snapshot(&self, read_upto: Option<u64>, groups: &mut Groups, now: bool) {
        let Some(file) = &self.state else {
            groups.dirty = false;
            return;
        };
        let Some(routed_upto) = read_upto.or(groups.persisted_upto) else {
            groups.dirty = false;
            return;
        };
        if !groups.dirty && groups.persisted_upto == Some(routed_upto) {
            return;
        }
        if !now
            && groups
                .last_snapshot
                .is_some_and(|t| t.elapsed() < SNAPSHOT_EVERY)
        {
            groups.dirty = true;
            return;
        }
        let state = AlertPathState {
            version: STATE_VERSION,
            routed_upto,
            groups: groups.grouper.export(Instant::now(), chrono::Utc::now()),
            targets: groups.targets.clone(),
            held: groups.held.clone(),
            router: self.router.export_state(),
            undelivered: groups.in_flight.undelivered(),
        };
        let file = file.clone();
        let written = tokio::task::spawn_blocking(move || file.store(&state)).await;
        groups.last_snapshot = Some(Instant::now());
        match written {
            Ok(Ok(())) => {
                groups.persisted_upto = Some(routed_upto);
                groups.dirty = false;
            }
            Ok(Err(e)) => {
                // The position stays behind what the last good snapshot covers, so the
                // events are routed again after a restart: nothing is lost.
                tracing::error!(
                    error = e.to_string().as_str(),
                    "cannot write the alert path state"
                );
            }
            Err(e) => tracing::error!(
                error = e.to_string().as_str(),
                "alert path state writer failed"
            ),
        }
    }

    /// Routes every event of a batch and hands what is due to the notifier queues (without
    /// waiting for the channels).
    async fn route_batch(
        &self,
        records: Vec<vowguard_journal::Record>,
        groups: &mut Groups,
    ) -> Result<(), ()> {
        let mut audited = Vec::new();
        for record in records {
            let seq = record.seq;
            if seq < groups.skip_below {
                continue;
            }
            groups.dirty = true;
            // Records at the journal's tail come decoded; older ones are decoded here.
            let event = match record.event {
                Some(event) => event,
                None => match serde_json::from_slice::<Event>(&record.stored) {
                    Ok(event) => Arc::new(event),
                    Err(e) => {
                        tracing::error!(
                            seq,
                            error = e.to_string().as_str(),
                            "journal record is not an event; no alert"
                        );
                        continue;
                    }
                },
            };
            for (index, mut routed) in self.router.route(&event).into_iter().enumerate() {
                // The same record routed again after a restart gets the same id.
                routed.alert.id =
                    Alert::derive_id(&["journal", &seq.to_string(), &event.id, &index.to_string()]);
                self.router.on_routed(&routed);
                let grouping = self.router.grouping(&routed);
                if self.audit.is_some() {
                    let suppressed = grouping.as_ref().map(|g| format!("grouped into {}", g.key));
                    audited.push(crate::audit::PipelineAudit::routed(
                        &routed.alert,
                        &routed.notifiers,
                        suppressed,
                    ));
                }
                match grouping {
                    None => {
                        let out = vec![routed.alert];
                        self.enqueue(out, Some(&routed.notifiers), Some(seq), groups)
                            .await?;
                    }
                    Some(grouping) => {
                        let timing = GroupTiming {
                            group_wait: grouping.group_wait,
                            group_interval: grouping.group_interval,
                            repeat_interval: grouping.repeat_interval,
                            forget_after: grouping.forget_after,
                        };
                        groups
                            .targets
                            .insert(grouping.key.clone(), routed.notifiers.clone());
                        groups.held.entry(grouping.key.clone()).or_insert(seq);
                        let offered = grouping.key.clone();
                        let out = groups.grouper.offer(
                            routed.alert,
                            grouping.key,
                            timing,
                            Instant::now(),
                        );
                        // An alert passed through ungrouped (group bound reached) carries no key.
                        let fallback = groups.targets.get(&offered).cloned();
                        self.enqueue(out, fallback.as_deref(), Some(seq), groups)
                            .await?;
                    }
                }
            }
        }
        if let Some(audit) = &self.audit {
            audit.record(audited).await;
        }
        Ok(())
    }

    /// Hands notifications to their notifiers' queues (waiting only when a queue is full);
    /// `Err` when the pipeline is aborted meanwhile.
    ///
    /// A group's notification targets the group's notifiers and stands for the oldest
    /// journal record with an alert held in the group; any other goes to `fallback` and
    /// stands for `seq`.
    async fn enqueue(
        &self,
        alerts: Vec<Alert>,
        fallback: Option<&[String]>,
        seq: Option<u64>,
        groups: &mut Groups,
    ) -> Result<(), ()> {
        for alert in alerts {
            let key = alert
                .params
                .get("group_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned);
            let (targets, hold) = match &key {
                Some(key) => {
                    let hold = groups.held.remove(key);
                    (groups.targets.get(key).cloned().unwrap_or_default(), hold)
                }
                None => (fallback.map(<[String]>::to_vec).unwrap_or_default(), seq),
            };
            for id in &targets {
                self.hand_over(id, alert.clone(), hold, groups).await?;
            }
        }
        Ok(())
    }

    /// Hands one notification to the queue of notifier `id`, standing for journal record
    /// `hold`; `Err` when the pipeline is aborted while the queue is full.
    async fn hand_over(
        &self,
        id: &str,
        alert: Alert,
        hold: Option<u64>,
        groups: &mut Groups,
    ) -> Result<(), ()> {
        let Some(counters) = self.notifiers.0.get(id) else {
            tracing::error!(
                notifier = id,
                route = alert.route.as_str(),
                "route names an unknown notifier"
            );
            return Ok(());
        };
        let dispatch = groups.in_flight.insert(id, alert.clone(), hold);
        let mut abort = self.abort.clone();
        let pushed = tokio::select! {
            pushed = counters.queue.push(dispatch, alert) => pushed,
            () = aborted(&mut abort) => return Err(()),
        };
        self.routed.fetch_add(1, Ordering::Relaxed);
        if let Pushed::Coalesced {
            dropped,
            dropped_alert,
            kept,
            merged,
        } = pushed
        {
            counters.coalesced.fetch_add(1, Ordering::Relaxed);
            if let Some(audit) = &self.audit {
                let record = crate::audit::PipelineAudit::coalesced(&dropped_alert, id, &merged.id);
                audit.record(vec![record]).await;
            }
            groups.in_flight.merge(dropped, kept, *merged);
        }
        Ok(())
    }

    /// Commits up to what was read, but never past an alert still held in a group, nor
    /// past what the last durable state snapshot covers (which lists what the channels
    /// have not finished), nor, without a state file, past a notification a channel has
    /// not finished.
    fn commit(&mut self, read_upto: Option<u64>, groups: &Groups) -> Result<(), ()> {
        let Some(mut read_upto) = read_upto else {
            return Ok(());
        };
        if self.state.is_some() {
            match groups.persisted_upto {
                Some(persisted) => read_upto = read_upto.min(persisted),
                None => return Ok(()),
            }
        }
        // What a channel has not finished holds the position only without a state file:
        // with one, the snapshot the position is bounded by lists it (a slow channel must
        // not hold the journal: at full intake it would fill in a minute).
        let unfinished = if self.state.is_none() {
            groups.in_flight.oldest()
        } else {
            None
        };
        let upto = groups
            .held
            .values()
            .copied()
            .chain(unfinished)
            .min()
            .map_or(read_upto, |held| held.min(read_upto));
        if upto <= self.reader.committed() {
            // Nothing new (timers and finished notifications also land here after the
            // drain has closed the journal).
            return Ok(());
        }
        self.reader.commit(upto).map_err(|e| {
            tracing::error!(
                error = e.to_string().as_str(),
                "alert path cannot commit its journal position"
            );
        })
    }
}

/// When the coalesced state snapshot is due (never when nothing changed).
fn snapshot_deadline(groups: &Groups) -> Option<Instant> {
    if !groups.dirty {
        return None;
    }
    Some(
        groups
            .last_snapshot
            .map_or_else(Instant::now, |t| t + SNAPSHOT_EVERY),
    )
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vowguard_core::{Alert, Category, Event, Priority, Severity};

    use super::InFlight;

    fn alert() -> Alert {
        let event = Arc::new(Event::new(
            Category::Authentication,
            "login",
            Severity::High,
        ));
        Alert::new(event, Priority::P1High, "r")
    }

    /// A merged notification stands for the older journal record of the two, and the
    /// position is free once it finishes; a repeat (no record) holds nothing.
    #[test]
    fn a_merge_keeps_the_older_hold_and_finishing_releases_it() {
        let mut in_flight = InFlight::default();
        let first = in_flight.insert("slack", alert(), Some(3));
        let second = in_flight.insert("slack", alert(), Some(7));
        let repeat = in_flight.insert("slack", alert(), None);
        assert_eq!(in_flight.oldest(), Some(3));
        // The newer notification (hold 7) replaces the waiting one (hold 3).
        let merged = alert();
        let merged_id = merged.id.clone();
        in_flight.merge(first, second, merged);
        assert_eq!(in_flight.oldest(), Some(3));
        let kept = in_flight.undelivered();
        assert_eq!(kept.len(), 1, "the repeat stands for no record");
        assert_eq!(
            (kept[0].alert.id.as_str(), kept[0].hold),
            (merged_id.as_str(), 3)
        );
        // A repeat merged into it changes nothing.
        in_flight.merge(repeat, second, alert());
        assert_eq!(in_flight.oldest(), Some(3));
        assert_eq!(in_flight.remove(second), Some(3));
        assert_eq!(in_flight.oldest(), None);
        assert!(in_flight.entries.is_empty());
    }
}

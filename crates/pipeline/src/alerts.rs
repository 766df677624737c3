//! The alert path: reads enriched events from the journal at its own position, routes them,
//! groups the alerts (group_wait / group_interval / repeat_interval, so a brute-force burst
//! is one notification, not one per event), hands the notifications to the notifier
//! workers, and commits its position.
//!
//! The position never moves past an event whose alert is still held in a group, so a crash
//! can repeat an alert but never lose one; the dispatch of a batch completes (delivered or
//! given up) before the position moves past it. When the pipeline drains at the end of the
//! input, pending groups are notified at once instead of waiting out their timers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use vowguard_core::{Alert, AlertRouting, Event};
use vowguard_journal::JournalReader;
use vowguard_router::{AlertGrouper, GroupTiming};

use crate::notify::Dispatch;
use crate::sink_worker::aborted;

/// Most alert groups held at once (beyond that alerts pass through ungrouped).
const MAX_GROUPS: usize = 10_000;

pub(crate) struct AlertWorker {
    pub(crate) reader: JournalReader,
    pub(crate) router: Arc<dyn AlertRouting>,
    pub(crate) notifiers: HashMap<String, mpsc::Sender<Dispatch>>,
    pub(crate) routed: Arc<AtomicU64>,
    pub(crate) abort: watch::Receiver<bool>,
    /// Becomes true when the input has ended and the pipeline drains.
    pub(crate) draining: watch::Receiver<bool>,
}

/// The grouping state of the alert path.
struct Groups {
    grouper: AlertGrouper,
    /// Notifier ids per group key.
    targets: HashMap<String, Vec<String>>,
    /// The oldest journal sequence number with an alert held in each group.
    held: HashMap<String, u64>,
}

impl AlertWorker {
    pub(crate) async fn run(mut self) {
        let mut groups = Groups {
            grouper: AlertGrouper::new(MAX_GROUPS),
            targets: HashMap::new(),
            held: HashMap::new(),
        };
        let mut read_upto: Option<u64> = None;
        let mut abort = self.abort.clone();
        let mut draining = self.draining.clone();
        loop {
            if *draining.borrow() && groups.grouper.has_pending() {
                let out = groups.grouper.flush_pending(Instant::now());
                if self.dispatch(out, None, &mut groups).await.is_err() {
                    return;
                }
                groups.held.clear();
                if self.commit(read_upto, &groups).is_err() {
                    break;
                }
            }
            let deadline = groups.grouper.next_deadline();
            tokio::select! {
                r = self.reader.next_batch(256, 4 << 20) => {
                    let records = match r {
                        Ok(records) => records,
                        Err(e) => {
                            tracing::error!(error = %e, "alert path cannot read the journal");
                            break;
                        }
                    };
                    let Some(last) = records.last().map(|(seq, _)| *seq) else { break };
                    if self.route_batch(records, &mut groups).await.is_err() {
                        return;
                    }
                    read_upto = Some(last + 1);
                    if self.commit(read_upto, &groups).is_err() {
                        break;
                    }
                }
                () = sleep_until(deadline) => {
                    let out = groups.grouper.due(Instant::now());
                    if self.dispatch(out, None, &mut groups).await.is_err() {
                        return;
                    }
                    if self.commit(read_upto, &groups).is_err() {
                        break;
                    }
                }
                changed = draining.changed() => {
                    if changed.is_err() {
                        // The pipeline is gone; keep serving until the journal closes.
                        draining = watch::channel(true).1;
                    }
                }
                () = aborted(&mut abort) => break,
            }
        }
        tracing::debug!("alert worker finished");
    }

    /// Routes every event of a batch, hands what is due to the notifiers (all in flight at
    /// once), and waits until every one is dispatched.
    async fn route_batch(
        &self,
        records: Vec<(u64, Vec<u8>)>,
        groups: &mut Groups,
    ) -> Result<(), ()> {
        let mut pending = Vec::new();
        for (seq, bytes) in records {
            let event: Event = match serde_json::from_slice(&bytes) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(seq, error = %e, "journal record is not an event; no alert");
                    continue;
                }
            };
            let event = Arc::new(event);
            for routed in self.router.route(&event) {
                match self.router.grouping(&routed) {
                    None => {
                        let out = vec![routed.alert];
                        self.enqueue(out, Some(&routed.notifiers), groups, &mut pending)
                            .await;
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
                        self.enqueue(out, fallback.as_deref(), groups, &mut pending)
                            .await;
                    }
                }
            }
        }
        self.wait_all(pending).await
    }

    /// Sends notifications to their notifiers and waits until each is dispatched.
    async fn dispatch(
        &self,
        alerts: Vec<Alert>,
        fallback: Option<&[String]>,
        groups: &mut Groups,
    ) -> Result<(), ()> {
        let mut pending = Vec::new();
        self.enqueue(alerts, fallback, groups, &mut pending).await;
        self.wait_all(pending).await
    }

    /// Hands notifications to their notifiers; `pending` collects one completion per
    /// (notification, notifier).
    async fn enqueue(
        &self,
        alerts: Vec<Alert>,
        fallback: Option<&[String]>,
        groups: &mut Groups,
        pending: &mut Vec<oneshot::Receiver<()>>,
    ) {
        for alert in alerts {
            let key = alert
                .params
                .get("group_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned);
            let targets = match &key {
                Some(key) => {
                    groups.held.remove(key);
                    groups.targets.get(key).cloned().unwrap_or_default()
                }
                None => fallback.map(<[String]>::to_vec).unwrap_or_default(),
            };
            for id in &targets {
                let Some(tx) = self.notifiers.get(id) else {
                    tracing::error!(notifier = %id, route = %alert.route, "route names an unknown notifier");
                    continue;
                };
                let (done, wait) = oneshot::channel();
                if tx.send((alert.clone(), done)).await.is_err() {
                    tracing::error!(notifier = %id, "notifier worker stopped; alert not sent");
                    continue;
                }
                self.routed.fetch_add(1, Ordering::Relaxed);
                pending.push(wait);
            }
        }
    }

    /// Waits until every notification is dispatched (delivered or given up); `Err` when
    /// the pipeline is aborted meanwhile.
    async fn wait_all(&self, pending: Vec<oneshot::Receiver<()>>) -> Result<(), ()> {
        let mut abort = self.abort.clone();
        for wait in pending {
            tokio::select! {
                _ = wait => {}
                () = aborted(&mut abort) => return Err(()),
            }
        }
        Ok(())
    }

    /// Commits up to what was read, but never past an alert still held in a group.
    fn commit(&mut self, read_upto: Option<u64>, groups: &Groups) -> Result<(), ()> {
        let Some(read_upto) = read_upto else {
            return Ok(());
        };
        let upto = groups
            .held
            .values()
            .copied()
            .min()
            .map_or(read_upto, |held| held.min(read_upto));
        self.reader.commit(upto).map_err(|e| {
            tracing::error!(error = %e, "alert path cannot commit its journal position");
        })
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

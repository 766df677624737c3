//! The alert path: reads enriched events from the journal at its own position, routes them,
//! hands the alerts to the notifier workers, and commits the position once every alert of
//! the batch is dispatched (delivered or given up). After a crash, alerts of events whose
//! dispatch had not finished are routed again (at-least-once; PagerDuty deduplicates by key).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};
use vowguard_core::{AlertRouting, Event};
use vowguard_journal::JournalReader;

use crate::notify::Dispatch;
use crate::sink_worker::aborted;

pub(crate) struct AlertWorker {
    pub(crate) reader: JournalReader,
    pub(crate) router: Arc<dyn AlertRouting>,
    pub(crate) notifiers: HashMap<String, mpsc::Sender<Dispatch>>,
    pub(crate) routed: Arc<AtomicU64>,
    pub(crate) abort: watch::Receiver<bool>,
}

impl AlertWorker {
    pub(crate) async fn run(mut self) {
        loop {
            let records = tokio::select! {
                r = self.reader.next_batch(256, 4 << 20) => match r {
                    Ok(records) => records,
                    Err(e) => {
                        tracing::error!(error = %e, "alert path cannot read the journal");
                        break;
                    }
                },
                () = aborted(&mut self.abort) => break,
            };
            let Some(last) = records.last().map(|(seq, _)| *seq) else {
                break;
            };
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
                    for id in &routed.notifiers {
                        let Some(tx) = self.notifiers.get(id) else {
                            tracing::error!(notifier = %id, route = %routed.alert.route, "route names an unknown notifier");
                            continue;
                        };
                        let (done, wait) = oneshot::channel();
                        if tx.send((routed.alert.clone(), done)).await.is_err() {
                            tracing::error!(notifier = %id, "notifier worker stopped; alert not sent");
                            continue;
                        }
                        self.routed.fetch_add(1, Ordering::Relaxed);
                        pending.push(wait);
                    }
                }
            }
            for wait in pending {
                tokio::select! {
                    _ = wait => {}
                    () = aborted(&mut self.abort) => return,
                }
            }
            if let Err(e) = self.reader.commit(last + 1) {
                tracing::error!(error = %e, "alert path cannot commit its journal position");
                break;
            }
        }
        tracing::debug!("alert worker finished");
    }
}

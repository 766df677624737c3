//! Per-event acknowledgements: complete once every sink has finished with the event.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::sync::oneshot;

/// How an event ended across all sinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliverySummary {
    /// Sinks that delivered it.
    pub delivered: usize,
    /// Sinks that dead-lettered it.
    pub dead_lettered: usize,
}

/// Shared countdown of the sinks still working on one event.
#[derive(Debug)]
pub(crate) struct AckState {
    remaining: AtomicUsize,
    delivered: AtomicUsize,
    dead_lettered: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<DeliverySummary>>>,
}

impl AckState {
    pub(crate) fn new(sinks: usize) -> (Self, Delivery) {
        let (tx, rx) = oneshot::channel();
        let state = Self {
            remaining: AtomicUsize::new(sinks),
            delivered: AtomicUsize::new(0),
            dead_lettered: AtomicUsize::new(0),
            done: Mutex::new(Some(tx)),
        };
        if sinks == 0 {
            state.complete();
        }
        (state, Delivery { rx })
    }

    /// One sink is done: delivered (`true`) or dead-lettered (`false`).
    pub(crate) fn finish(&self, delivered: bool) {
        if delivered {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.complete();
        }
    }

    fn complete(&self) {
        let summary = DeliverySummary {
            delivered: self.delivered.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        };
        if let Some(tx) = self.done.lock().expect("ack lock poisoned").take() {
            // The submitter may not be waiting; that is fine.
            let _ = tx.send(summary);
        }
    }
}

/// Resolves when every sink has delivered or dead-lettered the submitted event.
///
/// Resolves to `None` if the pipeline was dropped before finishing with the event.
#[derive(Debug)]
pub struct Delivery {
    rx: oneshot::Receiver<DeliverySummary>,
}

impl Future for Delivery {
    type Output = Option<DeliverySummary>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn completes_after_last_sink() {
        let (state, delivery) = AckState::new(2);
        state.finish(true);
        state.finish(false);
        assert_eq!(
            delivery.await,
            Some(DeliverySummary {
                delivered: 1,
                dead_lettered: 1
            })
        );
        let (_state, delivery) = AckState::new(0);
        assert_eq!(delivery.await, Some(DeliverySummary::default()));
    }
}

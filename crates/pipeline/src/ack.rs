//! Per-event acknowledgements: complete once every sink has finished with the event.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

    fn is_complete(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    /// Whether the submitter still holds its [`Delivery`].
    pub(crate) fn is_awaited(&self) -> bool {
        self.done
            .lock()
            .expect("ack lock poisoned")
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
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

/// The acknowledgements of records appended by this run, by journal sequence number.
///
/// A sink can finish a record before the stage has registered its acknowledgement (the
/// record becomes readable when it is durable, the registration follows the append), so
/// early finishes are kept and applied at registration. Records recovered from an earlier
/// run (below `first_seq`) have no acknowledgement and are ignored.
///
/// Only acknowledgements somebody awaits are kept (the stdin and HTTP sources drop their
/// [`Delivery`]), so memory does not grow with a sink's backlog. Registration happens in
/// sequence order, so a finish for a record below the next one to register that has no
/// entry is for an untracked (or already complete) record and is dropped.
#[derive(Debug)]
pub(crate) struct AckRegistry {
    first_seq: u64,
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    entries: HashMap<u64, AckEntry>,
    /// Every record below this has been registered.
    next_unregistered: u64,
}

#[derive(Debug)]
enum AckEntry {
    Waiting(Arc<AckState>),
    Early {
        delivered: usize,
        dead_lettered: usize,
    },
}

impl AckRegistry {
    pub(crate) fn new(first_seq: u64) -> Self {
        Self {
            first_seq,
            inner: Mutex::new(Registry {
                entries: HashMap::new(),
                next_unregistered: first_seq,
            }),
        }
    }

    /// Registers the acknowledgement of record `seq` once it is durable. Called in
    /// sequence order.
    pub(crate) fn register(&self, seq: u64, ack: AckState) {
        if !ack.is_awaited() {
            // Nobody holds its `Delivery` (any longer): nothing to keep or complete.
            self.register_untracked(seq);
            return;
        }
        let mut inner = self.inner.lock().expect("ack registry poisoned");
        inner.next_unregistered = inner.next_unregistered.max(seq + 1);
        let entries = &mut inner.entries;
        let ack = Arc::new(ack);
        if let Some(AckEntry::Early {
            delivered,
            dead_lettered,
        }) = entries.remove(&seq)
        {
            for _ in 0..delivered {
                ack.finish(true);
            }
            for _ in 0..dead_lettered {
                ack.finish(false);
            }
        }
        if !ack.is_complete() && ack.is_awaited() {
            entries.insert(seq, AckEntry::Waiting(ack));
        }
    }

    /// Registers record `seq` as having no acknowledgement (recovered from an earlier
    /// run, or nobody awaits it): early finishes for it are dropped. Called in sequence
    /// order, like [`register`](Self::register).
    pub(crate) fn register_untracked(&self, seq: u64) {
        let mut inner = self.inner.lock().expect("ack registry poisoned");
        inner.next_unregistered = inner.next_unregistered.max(seq + 1);
        inner.entries.remove(&seq);
    }

    /// One sink is done with record `seq`.
    pub(crate) fn finish(&self, seq: u64, delivered: bool) {
        if seq < self.first_seq {
            return;
        }
        let mut inner = self.inner.lock().expect("ack registry poisoned");
        let registered = seq < inner.next_unregistered;
        let entries = &mut inner.entries;
        match entries.get_mut(&seq) {
            Some(AckEntry::Waiting(ack)) => {
                ack.finish(delivered);
                if ack.is_complete() {
                    entries.remove(&seq);
                }
            }
            Some(AckEntry::Early {
                delivered: d,
                dead_lettered: x,
            }) => {
                if delivered {
                    *d += 1;
                } else {
                    *x += 1;
                }
            }
            // Registered but not tracked (nobody awaits it), or already complete.
            None if registered => {}
            None => {
                let (d, x) = if delivered { (1, 0) } else { (0, 1) };
                entries.insert(
                    seq,
                    AckEntry::Early {
                        delivered: d,
                        dead_lettered: x,
                    },
                );
            }
        }
    }
}

/// Acknowledgements of events durable in the intake journal and not yet in the events
/// journal, by intake sequence number: the intake stage hands them over here once the
/// intake append returns, and the enrichment stage takes each one when it appends the
/// enriched event (and registers it in the [`AckRegistry`] under its events sequence).
///
/// Only awaited acknowledgements are kept. The enrichment stage can read a record before
/// the intake stage has handed its acknowledgement over (a record is readable as soon as
/// it is durable), so it waits for `handed_over` to pass the record first.
#[derive(Debug)]
pub(crate) struct IntakeAcks {
    /// Intake records below this were appended by an earlier run: they have none.
    first_seq: u64,
    waiting: Mutex<HashMap<u64, AckState>>,
    /// Every intake record below this has been handed over (or has no acknowledgement).
    handed_over: tokio::sync::watch::Sender<u64>,
}

impl IntakeAcks {
    pub(crate) fn new(first_seq: u64) -> Self {
        Self {
            first_seq,
            waiting: Mutex::new(HashMap::new()),
            handed_over: tokio::sync::watch::Sender::new(first_seq),
        }
    }

    /// The intake stage: the records `seqs` are durable with these acknowledgements.
    /// `None`: the submitter awaits nothing for that record.
    pub(crate) fn hand_over(&self, acks: impl IntoIterator<Item = (u64, Option<AckState>)>) {
        let mut end = None;
        {
            let mut waiting = self.waiting.lock().expect("intake acks poisoned");
            for (seq, ack) in acks {
                end = Some(seq + 1);
                if let Some(ack) = ack
                    && !ack.is_complete()
                    && ack.is_awaited()
                {
                    waiting.insert(seq, ack);
                }
            }
        }
        if let Some(end) = end {
            self.handed_over.send_modify(|h| *h = (*h).max(end));
        }
    }

    /// The intake stage has stopped: nothing more will be handed over.
    pub(crate) fn close(&self) {
        self.handed_over.send_modify(|h| *h = u64::MAX);
    }

    /// The enrichment stage: the acknowledgement of intake record `seq`, if anybody awaits
    /// one. Waits until the intake stage has handed `seq` over.
    pub(crate) async fn take(&self, seq: u64) -> Option<AckState> {
        if seq < self.first_seq {
            return None;
        }
        let mut rx = self.handed_over.subscribe();
        // The sender lives in `self`, so this only ends when `seq` is handed over.
        let _ = rx.wait_for(|h| *h > seq).await;
        self.waiting
            .lock()
            .expect("intake acks poisoned")
            .remove(&seq)
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

    #[tokio::test]
    async fn early_finishes_are_applied_at_registration() {
        let registry = AckRegistry::new(10);
        registry.finish(12, true);
        registry.finish(5, true); // recovered from an earlier run: ignored
        let (state, delivery) = AckState::new(2);
        registry.register(12, state);
        registry.finish(12, false);
        assert_eq!(
            delivery.await,
            Some(DeliverySummary {
                delivered: 1,
                dead_lettered: 1
            })
        );
        assert!(registry.inner.lock().unwrap().entries.is_empty());
    }

    #[test]
    fn acknowledgements_nobody_awaits_are_not_kept() {
        let registry = AckRegistry::new(0);
        // A backlog: 1 000 records journaled, the sinks not done with them yet.
        for seq in 0..1_000u64 {
            let (state, delivery) = AckState::new(2);
            drop(delivery); // what the stdin and HTTP sources do
            if seq % 2 == 0 {
                registry.finish(seq, true); // one sink ahead of the registration
            }
            registry.register(seq, state);
        }
        assert!(
            registry.inner.lock().unwrap().entries.is_empty(),
            "no memory per backlogged record when nobody awaits its acknowledgement"
        );
        // The sinks catch up: their finishes leave nothing behind either.
        for seq in 0..1_000u64 {
            if seq % 2 == 1 {
                registry.finish(seq, true);
            }
            registry.finish(seq, false);
        }
        assert!(registry.inner.lock().unwrap().entries.is_empty());
        // An awaited acknowledgement is still tracked until every sink is done.
        let (state, delivery) = AckState::new(1);
        registry.register(1_000, state);
        assert_eq!(registry.inner.lock().unwrap().entries.len(), 1);
        registry.finish(1_000, true);
        assert!(registry.inner.lock().unwrap().entries.is_empty());
        drop(delivery);
    }

    #[tokio::test]
    async fn intake_acks_wait_for_the_hand_over_and_keep_only_awaited_ones() {
        let acks = Arc::new(IntakeAcks::new(5));
        // Recovered from an earlier run: nothing to wait for.
        assert!(acks.take(3).await.is_none());
        // Read before it is handed over: waits for the hand-over.
        let taker = tokio::spawn({
            let acks = acks.clone();
            async move { acks.take(6).await.is_some() }
        });
        let (awaited, delivery) = AckState::new(1);
        let (unawaited, dropped) = AckState::new(1);
        drop(dropped);
        acks.hand_over([(5, Some(unawaited)), (6, Some(awaited))]);
        assert!(
            taker.await.unwrap(),
            "the awaited acknowledgement is handed on"
        );
        assert!(acks.take(5).await.is_none(), "nobody awaited that one");
        assert!(acks.waiting.lock().unwrap().is_empty());
        // The intake stage stops: later records have none, and nobody waits forever.
        acks.close();
        assert!(acks.take(7).await.is_none());
        drop(delivery);
    }
}

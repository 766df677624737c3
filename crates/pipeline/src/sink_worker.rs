//! One worker per sink: batch by count, encoded bytes and time; send; act on each event's
//! outcome (deliver, retry with the shared backoff, or dead-letter).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::time::Instant;
use vowguard_core::{EncodedEvent, Error, EventOutcome};

use crate::dead_letter::DeadLetterStore;
use crate::metrics::SinkCounters;
use crate::pipeline::{Envelope, SinkSpec};

/// One event in a batch: its envelope, its encoded bytes and the attempts made so far.
struct Item {
    envelope: Arc<Envelope>,
    encoded: EncodedEvent,
}

pub(crate) struct SinkWorker {
    pub(crate) spec: SinkSpec,
    pub(crate) rx: mpsc::Receiver<Arc<Envelope>>,
    pub(crate) dead_letters: DeadLetterStore,
    pub(crate) counters: Arc<SinkCounters>,
}

impl SinkWorker {
    pub(crate) async fn run(mut self) {
        let mut carry: Option<Item> = None;
        loop {
            let first = match carry.take() {
                Some(item) => item,
                None => match self.rx.recv().await {
                    Some(envelope) => match self.encode(envelope) {
                        Some(item) => item,
                        None => continue,
                    },
                    None => break,
                },
            };
            let (batch, next, closed) = self.fill_batch(first).await;
            carry = next;
            self.deliver(batch).await;
            if closed && carry.is_none() {
                break;
            }
        }
        tracing::debug!(sink = %self.spec.id, "sink worker finished");
    }

    /// Encodes one event; an encoding error dead-letters it at once.
    fn encode(&self, envelope: Arc<Envelope>) -> Option<Item> {
        self.counters.queued.fetch_sub(1, Ordering::Relaxed);
        match self.spec.sink.encode(&envelope.event) {
            Ok(bytes) => Some(Item {
                encoded: EncodedEvent {
                    event_id: envelope.event.id.clone(),
                    bytes,
                },
                envelope,
            }),
            Err(e) => {
                let e = e.with_component(self.spec.id.clone());
                self.dead_letter(&envelope, &e, 0);
                None
            }
        }
    }

    /// Collects events after `first` until a limit is reached or the wait runs out.
    /// Returns the batch, an event that did not fit (starts the next batch), and whether the
    /// queue is closed.
    async fn fill_batch(&mut self, first: Item) -> (Vec<Item>, Option<Item>, bool) {
        let limits = self.spec.batch;
        let deadline = Instant::now() + limits.max_wait();
        let mut bytes = first.encoded.bytes.len();
        let mut batch = vec![first];
        let mut closed = false;
        while batch.len() < limits.max_events.max(1) && bytes < limits.max_bytes {
            let envelope = match self.rx.try_recv() {
                Ok(envelope) => envelope,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(Some(envelope)) => envelope,
                        Ok(None) => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            };
            let Some(item) = self.encode(envelope) else {
                continue;
            };
            if bytes + item.encoded.bytes.len() > limits.max_bytes {
                return (batch, Some(item), closed);
            }
            bytes += item.encoded.bytes.len();
            batch.push(item);
        }
        (batch, None, closed)
    }

    /// Sends a batch until every event is delivered or dead-lettered.
    async fn deliver(&self, mut items: Vec<Item>) {
        let policy = self.spec.retry;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let refs: Vec<&EncodedEvent> = items.iter().map(|i| &i.encoded).collect();
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes.fetch_add(
                refs.iter().map(|e| e.bytes.len() as u64).sum(),
                Ordering::Relaxed,
            );
            let mut outcomes = self.spec.sink.send(&refs).await;
            if outcomes.len() != items.len() {
                tracing::error!(
                    sink = %self.spec.id,
                    expected = items.len(),
                    got = outcomes.len(),
                    "sink returned the wrong number of outcomes; resending the batch"
                );
                outcomes = (0..items.len())
                    .map(|_| {
                        EventOutcome::Retry(Error::internal(
                            "sink returned the wrong number of outcomes",
                        ))
                    })
                    .collect();
            }
            let mut retry = Vec::new();
            let mut last_error: Option<Error> = None;
            for (item, outcome) in items.into_iter().zip(outcomes) {
                match outcome {
                    EventOutcome::Delivered => {
                        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                        item.envelope.ack.finish(true);
                    }
                    EventOutcome::Rejected(e) => {
                        let e = e.with_component(self.spec.id.clone());
                        self.dead_letter(&item.envelope, &e, attempts);
                    }
                    EventOutcome::Retry(e) => {
                        let keep = match &last_error {
                            Some(prev) => e.retry_after() > prev.retry_after(),
                            None => true,
                        };
                        if keep {
                            last_error = Some(e);
                        }
                        retry.push(item);
                    }
                }
            }
            let Some(error) = last_error else { return };
            if !policy.allows_another(attempts) {
                let error = Error::new(
                    error.kind(),
                    format!("gave up after {attempts} attempts: {error}"),
                )
                .with_component(self.spec.id.clone());
                for item in &retry {
                    self.dead_letter(&item.envelope, &error, attempts);
                }
                return;
            }
            let delay = policy.delay(attempts, &error);
            self.counters
                .retried
                .fetch_add(retry.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                sink = %self.spec.id,
                events = retry.len(),
                attempt = attempts,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "delivery failed; retrying"
            );
            tokio::time::sleep(delay).await;
            items = retry;
        }
    }

    fn dead_letter(&self, envelope: &Envelope, error: &Error, attempts: u32) {
        tracing::error!(
            sink = %self.spec.id,
            event_id = %envelope.event.id,
            error = %error,
            "event dead-lettered"
        );
        if let Err(io) = self
            .dead_letters
            .record(&self.spec.id, &envelope.event, error, attempts)
        {
            // The event is still accounted for in the log line above; the store failing is
            // reported loudly rather than blocking the sink forever.
            tracing::error!(sink = %self.spec.id, event_id = %envelope.event.id, error = %io, "cannot write dead letter");
        }
        self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        envelope.ack.finish(false);
    }
}

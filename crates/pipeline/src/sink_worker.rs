//! One worker per sink, reading the journal at the sink's own position: batch by count,
//! encoded bytes and time; send; act on each event's outcome (deliver, retry with the
//! shared backoff, or dead-letter); then commit the position. A circuit breaker stops
//! hammering an endpoint that keeps failing, probes it, and resumes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use vowguard_core::{EncodedEvent, Error, Event, EventOutcome};
use vowguard_journal::{JournalError, JournalReader};

use crate::ack::AckRegistry;
use crate::dead_letter::{DeadLetter, DeadLetterStore};
use crate::metrics::SinkCounters;
use crate::pipeline::SinkSpec;

/// One event of a batch: where it is in the journal, the event and its encoded bytes.
struct Item {
    seq: u64,
    event: Event,
    encoded: EncodedEvent,
}

pub(crate) struct SinkWorker {
    pub(crate) spec: SinkSpec,
    pub(crate) reader: JournalReader,
    pub(crate) acks: Arc<AckRegistry>,
    pub(crate) dead_letters: DeadLetterStore,
    pub(crate) counters: Arc<SinkCounters>,
    /// Becomes true when the worker must stop at once (shutdown deadline passed).
    pub(crate) abort: watch::Receiver<bool>,
}

/// Why a delivery loop stopped before finishing its batch.
struct Aborted;

/// A dead letter decided but not yet written, with the journal position of its event.
struct PendingLetter {
    seq: u64,
    letter: DeadLetter,
}

impl SinkWorker {
    pub(crate) async fn run(mut self) {
        let limits = self.spec.batch;
        loop {
            let mut records = tokio::select! {
                r = self.reader.next_batch(limits.max_events.max(1), limits.max_bytes.max(1)) => match r {
                    Ok(records) => records,
                    Err(e) => {
                        tracing::error!(sink = %self.spec.id, error = %e, "cannot read the journal");
                        break;
                    }
                },
                () = aborted(&mut self.abort) => break,
            };
            if records.is_empty() {
                break; // the journal is closed
            }
            // Let the batch fill up for at most max_wait.
            let deadline = Instant::now() + limits.max_wait();
            while records.len() < limits.max_events {
                let more = self
                    .reader
                    .next_batch(limits.max_events - records.len(), limits.max_bytes);
                match tokio::time::timeout_at(deadline, more).await {
                    Ok(Ok(more)) if !more.is_empty() => records.extend(more),
                    _ => break,
                }
            }
            let last = records.last().map_or(0, |(seq, _)| *seq);
            let mut letters = Vec::new();
            let items: Vec<Item> = records
                .into_iter()
                .filter_map(|(seq, bytes)| self.decode(seq, &bytes, &mut letters))
                .collect();
            if let Some(oldest) = items.iter().map(|i| i.event.timestamp).min() {
                self.counters
                    .oldest_pending_ms
                    .store(oldest.timestamp_millis(), Ordering::Relaxed);
            }
            if self.deliver_in_chunks(items, &mut letters).await.is_err() {
                break; // aborted: nothing more is committed; the next run resends
            }
            // The position passes a dead-lettered event only once its letter is on disk.
            if self.store_dead_letters(letters).await.is_err() {
                break;
            }
            self.counters.oldest_pending_ms.store(0, Ordering::Relaxed);
            match self.reader.commit(last + 1) {
                Ok(()) => {}
                Err(JournalError::Closed) => {
                    // Shutting down: the batch is done and is sent again on the next start
                    // (at-least-once); nothing is lost.
                    tracing::debug!(sink = %self.spec.id, "journal closed before the position was committed");
                    break;
                }
                Err(e) => {
                    tracing::error!(sink = %self.spec.id, error = %e, "cannot commit the journal position");
                    break;
                }
            }
        }
        tracing::debug!(sink = %self.spec.id, "sink worker finished");
    }

    /// Decodes and encodes one record; a record that cannot be encoded is dead-lettered.
    fn decode(&self, seq: u64, bytes: &[u8], letters: &mut Vec<PendingLetter>) -> Option<Item> {
        let event: Event = match serde_json::from_slice(bytes) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(sink = %self.spec.id, seq, error = %e, "journal record is not an event; skipped");
                self.acks.finish(seq, false);
                return None;
            }
        };
        match self.spec.sink.encode(&event) {
            Ok(bytes) => Some(Item {
                seq,
                encoded: EncodedEvent {
                    event_id: event.id.clone(),
                    bytes,
                },
                event,
            }),
            Err(e) => {
                let e = e.with_component(self.spec.id.clone());
                letters.push(self.letter(seq, &event, &e, 0));
                None
            }
        }
    }

    /// Splits the items so each request stays within the encoded-bytes limit.
    async fn deliver_in_chunks(
        &self,
        items: Vec<Item>,
        letters: &mut Vec<PendingLetter>,
    ) -> Result<(), Aborted> {
        let max_bytes = self.spec.batch.max_bytes;
        let mut chunk = Vec::new();
        let mut bytes = 0usize;
        for item in items {
            let len = item.encoded.bytes.len();
            if !chunk.is_empty() && bytes + len > max_bytes {
                self.deliver(std::mem::take(&mut chunk), letters).await?;
                bytes = 0;
            }
            bytes += len;
            chunk.push(item);
        }
        if !chunk.is_empty() {
            self.deliver(chunk, letters).await?;
        }
        Ok(())
    }

    /// Sends a batch until every event is delivered or its dead letter is decided (added to
    /// `letters`). Aborting cancels a request in flight: the batch stays in the journal.
    async fn deliver(
        &self,
        mut items: Vec<Item>,
        letters: &mut Vec<PendingLetter>,
    ) -> Result<(), Aborted> {
        let policy = self.spec.retry;
        let breaker = self.spec.breaker;
        let mut abort = self.abort.clone();
        let mut attempts = 0u32;
        let mut consecutive_total_failures = 0u32;
        loop {
            attempts += 1;
            let refs: Vec<&EncodedEvent> = items.iter().map(|i| &i.encoded).collect();
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes.fetch_add(
                refs.iter().map(|e| e.bytes.len() as u64).sum(),
                Ordering::Relaxed,
            );
            let started = Instant::now();
            let mut outcomes = tokio::select! {
                outcomes = self.spec.sink.send(&refs) => outcomes,
                () = aborted(&mut abort) => return Err(Aborted),
            };
            self.counters.latency.record(started.elapsed());
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
            let total = items.len();
            let mut retry = Vec::new();
            let mut last_error: Option<Error> = None;
            for (item, outcome) in items.into_iter().zip(outcomes) {
                match outcome {
                    EventOutcome::Delivered => {
                        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                        self.acks.finish(item.seq, true);
                    }
                    EventOutcome::Rejected(e) => {
                        let e = e.with_component(self.spec.id.clone());
                        letters.push(self.letter(item.seq, &item.event, &e, attempts));
                    }
                    EventOutcome::Retry(e) => {
                        if last_error
                            .as_ref()
                            .is_none_or(|prev| e.retry_after() > prev.retry_after())
                        {
                            last_error = Some(e);
                        }
                        retry.push(item);
                    }
                }
            }
            let Some(error) = last_error else {
                return Ok(());
            };
            consecutive_total_failures = if retry.len() == total {
                consecutive_total_failures + 1
            } else {
                0
            };
            if breaker.failure_threshold > 0
                && consecutive_total_failures >= breaker.failure_threshold
            {
                self.open_circuit(&error, &mut abort).await?;
                consecutive_total_failures = 0;
                attempts = 0;
                items = retry;
                continue;
            }
            if !policy.allows_another(attempts) {
                let error = Error::new(
                    error.kind(),
                    format!("gave up after {attempts} attempts: {error}"),
                )
                .with_component(self.spec.id.clone());
                for item in &retry {
                    letters.push(self.letter(item.seq, &item.event, &error, attempts));
                }
                return Ok(());
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
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = aborted(&mut abort) => return Err(Aborted),
            }
            items = retry;
        }
    }

    /// The endpoint failed every event of the batch `failure_threshold` times in a row:
    /// stop sending, probe with the healthcheck (cool-down doubling up to the maximum), and
    /// return once it answers. The events wait in the journal meanwhile; none is dropped.
    async fn open_circuit(
        &self,
        error: &Error,
        abort: &mut watch::Receiver<bool>,
    ) -> Result<(), Aborted> {
        let breaker = self.spec.breaker;
        self.counters.circuit_open.store(true, Ordering::Relaxed);
        tracing::error!(sink = %self.spec.id, error = %error, "circuit open: the endpoint keeps failing; probing before sending again");
        let mut cooldown = Duration::from_millis(breaker.initial_cooldown_ms.max(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep(cooldown) => {}
                () = aborted(abort) => return Err(Aborted),
            }
            let probe = tokio::select! {
                probe = self.spec.sink.healthcheck() => probe,
                () = aborted(abort) => return Err(Aborted),
            };
            match probe {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(sink = %self.spec.id, error = %e, "circuit still open: probe failed");
                    cooldown =
                        (cooldown * 2).min(Duration::from_millis(breaker.max_cooldown_ms.max(1)));
                }
            }
        }
        self.counters.circuit_open.store(false, Ordering::Relaxed);
        tracing::info!(sink = %self.spec.id, "circuit closed: the endpoint answers again; resending");
        Ok(())
    }

    fn letter(&self, seq: u64, event: &Event, error: &Error, attempts: u32) -> PendingLetter {
        PendingLetter {
            seq,
            letter: DeadLetter::new(&self.spec.id, event, error, attempts),
        }
    }

    /// Writes the batch's dead letters durably (one write, one fsync, off the async
    /// threads), retrying with the sink's backoff until it succeeds; only then do their
    /// events count as done. `Err` when aborted meanwhile: the events stay in the journal.
    async fn store_dead_letters(&self, letters: Vec<PendingLetter>) -> Result<(), Aborted> {
        if letters.is_empty() {
            return Ok(());
        }
        let (seqs, letters): (Vec<u64>, Vec<DeadLetter>) =
            letters.into_iter().map(|p| (p.seq, p.letter)).unzip();
        let letters: Arc<[DeadLetter]> = letters.into();
        let mut abort = self.abort.clone();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let written = tokio::select! {
                written = self.dead_letters.write(letters.clone()) => written,
                () = aborted(&mut abort) => return Err(Aborted),
            };
            let Err(error) = written else { break };
            let delay = self.spec.retry.delay(attempt, &error);
            tracing::error!(
                sink = %self.spec.id,
                letters = letters.len(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "cannot write dead letters; retrying (the events stay in the journal until they are written)"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = aborted(&mut abort) => return Err(Aborted),
            }
        }
        for (seq, letter) in seqs.into_iter().zip(letters.iter()) {
            tracing::error!(sink = %self.spec.id, event_id = %letter.event.id, kind = %letter.kind, reason = %letter.reason, "event dead-lettered");
            self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            self.acks.finish(seq, false);
        }
        Ok(())
    }
}

/// Completes when the abort flag is (or becomes) true; never otherwise.
pub(crate) async fn aborted(abort: &mut watch::Receiver<bool>) {
    if abort.wait_for(|a| *a).await.is_err() {
        std::future::pending::<()>().await;
    }
}

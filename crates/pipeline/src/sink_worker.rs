//! One worker per sink, reading the journal at the sink's own position: batch by count,
//! encoded bytes and time; send up to `request.concurrency` batches at once; act on each
//! event's outcome (deliver, retry with the shared backoff, or dead-letter); then commit
//! the position up to the lowest unfinished batch. A circuit breaker stops hammering an
//! endpoint that keeps failing (no new batch starts while it is open), probes it, and
//! resumes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;
use vowguard_core::{EncodedEvent, Error, Event, EventOutcome};
use vowguard_journal::{JournalError, JournalReader, Record};

use crate::ack::AckRegistry;
use crate::audit::PipelineAudit;
use crate::concurrency::ConcurrencyLimit;
use crate::dead_letter::{DeadLetter, DeadLetterStorage};
use crate::metrics::SinkCounters;
use crate::pipeline::SinkSpec;

/// One event of a batch: where it is in the journal, the event (shared with the
/// journal's in-memory tail and the other sinks) and its encoded bytes.
struct Item {
    seq: u64,
    event: Arc<Event>,
    encoded: EncodedEvent,
}

pub(crate) struct SinkWorker {
    pub(crate) spec: SinkSpec,
    pub(crate) reader: JournalReader,
    pub(crate) acks: Arc<AckRegistry>,
    pub(crate) dead_letters: Arc<dyn DeadLetterStorage>,
    pub(crate) counters: Arc<SinkCounters>,
    /// Becomes true when the worker must stop at once (shutdown deadline passed).
    pub(crate) abort: watch::Receiver<bool>,
    pub(crate) audit: Option<PipelineAudit>,
}

/// What sends the batches of one sink; shared by the batches in flight.
struct Sender {
    spec: SinkSpec,
    acks: Arc<AckRegistry>,
    dead_letters: Arc<dyn DeadLetterStorage>,
    counters: Arc<SinkCounters>,
    abort: watch::Receiver<bool>,
    audit: Option<PipelineAudit>,
    /// True while the circuit is open: no batch starts or resends until it closes.
    circuit: watch::Sender<bool>,
    limit: ConcurrencyLimit,
}

/// Why a delivery loop stopped before finishing its batch.
struct Aborted;

/// A dead letter decided but not yet written, with the journal position of its event.
struct PendingLetter {
    seq: u64,
    letter: DeadLetter,
}

/// A batch read from the journal and not yet finished: `start..end` in the journal.
#[derive(Debug)]
struct InFlight {
    end: u64,
    done: bool,
    /// Timestamp (ms since the epoch) of its oldest event; 0 when it has none.
    oldest_ms: i64,
}

/// The batches in flight, by their first sequence number. Batches finish in any order;
/// the position advances only over the finished prefix, so it never passes an
/// unfinished batch.
#[derive(Debug, Default)]
struct Window {
    batches: BTreeMap<u64, InFlight>,
}

impl Window {
    fn start(&mut self, start: u64, end: u64, oldest_ms: i64) {
        self.batches.insert(
            start,
            InFlight {
                end,
                done: false,
                oldest_ms,
            },
        );
    }

    /// Marks a batch finished; returns the new commit position if the finished prefix
    /// grew.
    fn finish(&mut self, start: u64) -> Option<u64> {
        if let Some(batch) = self.batches.get_mut(&start) {
            batch.done = true;
        }
        let mut upto = None;
        while let Some(entry) = self.batches.first_entry() {
            if !entry.get().done {
                break;
            }
            upto = Some(entry.remove().end);
        }
        upto
    }

    /// The oldest event of the unfinished batches (ms since the epoch), 0 when idle.
    fn oldest_ms(&self) -> i64 {
        self.batches
            .values()
            .filter(|b| !b.done && b.oldest_ms != 0)
            .map(|b| b.oldest_ms)
            .min()
            .unwrap_or(0)
    }
}

/// Records read from the journal: decoded from its in-memory tail, or as stored.
type Records = Vec<Record>;

/// What one read of the journal gave.
enum Read {
    /// The first records of a new batch.
    First(Result<Records, JournalError>),
    /// More records for the batch being filled.
    More(Result<Records, JournalError>),
    /// The batch being filled waited its `max_wait`.
    Waited,
}

impl SinkWorker {
    pub(crate) async fn run(self) {
        let SinkWorker {
            spec,
            mut reader,
            acks,
            dead_letters,
            counters,
            mut abort,
            audit,
        } = self;
        let limit = ConcurrencyLimit::new(spec.request);
        let sender = Sender {
            spec,
            acks,
            dead_letters,
            counters,
            abort: abort.clone(),
            audit,
            circuit: watch::channel(false).0,
            limit,
        };
        let limits = sender.spec.batch;
        let max_events = limits.max_events.max(1);
        let max_bytes = limits.max_bytes.max(1);
        let mut circuit = sender.circuit.subscribe();
        let mut window = Window::default();
        let mut running: FuturesUnordered<_> = FuturesUnordered::new();
        // The batch being filled (it holds a request slot) and when it must go.
        let mut filling: Option<(Records, Instant)> = None;
        let mut journal_closed = false;
        loop {
            if journal_closed && filling.is_none() && running.is_empty() {
                break;
            }
            let circuit_open = *circuit.borrow_and_update();
            let limit = sender.limit.current();
            sender
                .counters
                .concurrency_limit
                .store(limit as u64, Ordering::Relaxed);
            let slot_free = running.len() < limit;
            let can_read = !journal_closed && (filling.is_some() || (slot_free && !circuit_open));
            let (wanted, fill_deadline) = match &filling {
                Some((records, deadline)) => (max_events - records.len(), Some(*deadline)),
                None => (max_events, None),
            };
            let read = async {
                match fill_deadline {
                    None => Read::First(reader.next_records(wanted, max_bytes).await),
                    Some(at) => {
                        match tokio::time::timeout_at(at, reader.next_records(wanted, max_bytes))
                            .await
                        {
                            Ok(more) => Read::More(more),
                            Err(_) => Read::Waited,
                        }
                    }
                }
            };
            tokio::select! {
                biased;
                () = aborted(&mut abort) => break,
                Some((start, result)) = running.next(), if !running.is_empty() => {
                    let result: Result<(), Aborted> = result;
                    if result.is_err() {
                        break; // aborted: nothing more is committed; the next run resends
                    }
                    let upto = window.finish(start);
                    sender.counters.in_flight.store(running.len() as u64, Ordering::Relaxed);
                    sender.counters.oldest_pending_ms.store(window.oldest_ms(), Ordering::Relaxed);
                    if let Some(upto) = upto
                        && !sender.commit(&mut reader, upto)
                    {
                        break;
                    }
                }
                read = read, if can_read => {
                    let ready = match read {
                        Read::First(Ok(records)) | Read::More(Ok(records)) if records.is_empty() => {
                            journal_closed = true;
                            filling.take().map(|(r, _)| r)
                        }
                        Read::First(Ok(records)) => {
                            let batch = (records, Instant::now() + limits.max_wait());
                            if batch.0.len() >= max_events { Some(batch.0) } else {
                                filling = Some(batch);
                                None
                            }
                        }
                        Read::More(Ok(more)) => {
                            let (records, _) = filling.as_mut().expect("a batch is being filled");
                            records.extend(more);
                            if records.len() >= max_events { filling.take().map(|(r, _)| r) } else { None }
                        }
                        Read::Waited => filling.take().map(|(r, _)| r),
                        Read::First(Err(e)) | Read::More(Err(e)) => {
                            tracing::error!(sink = %sender.spec.id, error = %e, "cannot read the journal");
                            break;
                        }
                    };
                    if let Some(records) = ready.filter(|r| !r.is_empty()) {
                        let (start, end, oldest_ms, batch) = sender.prepare(records);
                        window.start(start, end, oldest_ms);
                        running.push(async move { (start, batch.await) });
                        let in_flight = running.len();
                        sender.limit.started(in_flight);
                        sender.counters.in_flight.store(in_flight as u64, Ordering::Relaxed);
                        sender.counters.oldest_pending_ms.store(window.oldest_ms(), Ordering::Relaxed);
                    }
                }
                // Wakes the loop when the circuit closes, so new batches start again.
                _ = circuit.changed(), if circuit_open => {}
            }
        }
        // Whatever is still running is cancelled here, uncommitted: the next run resends it.
        drop(running);
        sender.counters.in_flight.store(0, Ordering::Relaxed);
        tracing::debug!(sink = %sender.spec.id, "sink worker finished");
    }
}

impl Sender {
    /// Decodes and encodes a batch read from the journal; returns its range, the
    /// timestamp of its oldest event and the future that delivers it (and writes its dead
    /// letters durably).
    fn prepare(
        &self,
        records: Records,
    ) -> (
        u64,
        u64,
        i64,
        impl std::future::Future<Output = Result<(), Aborted>> + '_,
    ) {
        let start = records.first().map_or(0, |r| r.seq);
        let end = records.last().map_or(0, |r| r.seq) + 1;
        let mut letters = Vec::new();
        let items: Vec<Item> = records
            .into_iter()
            .filter_map(|record| self.decode(record, &mut letters))
            .collect();
        let oldest_ms = items
            .iter()
            .map(|i| i.event.timestamp.timestamp_millis())
            .min()
            .unwrap_or(0);
        let batch = async move {
            self.deliver_in_chunks(items, &mut letters).await?;
            // The position passes a dead-lettered event only once its letter is on disk.
            self.store_dead_letters(letters).await
        };
        (start, end, oldest_ms, batch)
    }

    /// Commits the position; false when the worker must stop.
    fn commit(&self, reader: &mut JournalReader, upto: u64) -> bool {
        match reader.commit(upto) {
            Ok(()) => true,
            Err(JournalError::Closed) => {
                // Shutting down: the batch is done and is sent again on the next start
                // (at-least-once); nothing is lost.
                tracing::debug!(sink = %self.spec.id, "journal closed before the position was committed");
                false
            }
            Err(e) => {
                tracing::error!(sink = %self.spec.id, error = %e, "cannot commit the journal position");
                false
            }
        }
    }

    /// Decodes (unless the journal's tail had it decoded) and encodes one record; a record
    /// that cannot be encoded is dead-lettered.
    fn decode(&self, record: Record, letters: &mut Vec<PendingLetter>) -> Option<Item> {
        let seq = record.seq;
        let event = match record.event {
            Some(event) => event,
            None => match serde_json::from_slice::<Event>(&record.stored) {
                Ok(event) => Arc::new(event),
                Err(e) => {
                    tracing::error!(sink = %self.spec.id, seq, error = %e, "journal record is not an event; skipped");
                    self.acks.finish(seq, false);
                    return None;
                }
            },
        };
        // The record's bytes are the event's storage form: sinks embedding it copy them.
        match self.spec.sink.encode_stored(&event, &record.stored) {
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
            // No request goes out while the circuit is open.
            self.circuit_closed(&mut abort).await?;
            attempts += 1;
            let refs: Vec<&EncodedEvent> = items.iter().map(|i| &i.encoded).collect();
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes.fetch_add(
                refs.iter().map(|e| e.bytes.len() as u64).sum(),
                Ordering::Relaxed,
            );
            // One span per request, and inside it one per event (only when the span is
            // enabled: nothing is allocated for them otherwise).
            let batch_span = tracing::debug_span!(
                target: crate::TRACE_TARGET,
                "sink.send",
                sink = %self.spec.id,
                kind = self.spec.sink.kind(),
                events = items.len(),
                attempt = attempts,
            );
            let mut event_spans: Vec<tracing::Span> = if batch_span.is_disabled() {
                Vec::new()
            } else {
                items
                    .iter()
                    .map(|item| {
                        tracing::debug_span!(
                            target: crate::TRACE_TARGET,
                            parent: &batch_span,
                            "sink.event",
                            sink = %self.spec.id,
                            event_id = %item.event.id,
                            seq = item.seq,
                            outcome = tracing::field::Empty,
                        )
                    })
                    .collect()
            };
            let started = Instant::now();
            let mut outcomes = tokio::select! {
                outcomes = self.spec.sink.send(&refs).instrument(batch_span.clone()) => outcomes,
                () = aborted(&mut abort) => return Err(Aborted),
            };
            let rtt = started.elapsed();
            self.counters.latency.record(rtt);
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
            let mut audited = Vec::new();
            for (i, (item, outcome)) in items.into_iter().zip(outcomes).enumerate() {
                if let Some(span) = event_spans.get_mut(i) {
                    span.record(
                        "outcome",
                        match &outcome {
                            EventOutcome::Delivered => "delivered",
                            EventOutcome::Rejected(_) => "rejected",
                            EventOutcome::Retry(_) => "retry",
                        },
                    );
                    // Closed now: the event's time in this sink's request ends here.
                    drop(std::mem::replace(span, tracing::Span::none()));
                }
                match outcome {
                    EventOutcome::Delivered => {
                        if self.audit.is_some() {
                            audited.push(PipelineAudit::delivered(&item.event));
                        }
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
            if let Some(audit) = &self.audit {
                audit.outcomes(&self.spec.id, audited).await;
            }
            self.limit.answered(rtt, last_error.is_some());
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

    /// Waits while the circuit is open.
    async fn circuit_closed(&self, abort: &mut watch::Receiver<bool>) -> Result<(), Aborted> {
        let mut circuit = self.circuit.subscribe();
        tokio::select! {
            _ = circuit.wait_for(|open| !*open) => Ok(()),
            () = aborted(abort) => Err(Aborted),
        }
    }

    /// The endpoint failed every event of the batch `failure_threshold` times in a row:
    /// open the circuit (no batch of this sink starts or resends while it is open), probe
    /// with the healthcheck (cool-down doubling up to the maximum), and return once it
    /// answers. If another batch already opened it, wait for it to close instead. The
    /// events wait in the journal meanwhile; none is dropped.
    async fn open_circuit(
        &self,
        error: &Error,
        abort: &mut watch::Receiver<bool>,
    ) -> Result<(), Aborted> {
        let opened_here = self
            .circuit
            .send_if_modified(|open| !std::mem::replace(open, true));
        if !opened_here {
            return self.circuit_closed(abort).await;
        }
        let breaker = self.spec.breaker;
        self.counters.circuit_open.store(true, Ordering::Relaxed);
        tracing::error!(sink = %self.spec.id, error = %error, "circuit open: the endpoint keeps failing; probing before sending again");
        let mut cooldown = breaker.initial_cooldown.max(Duration::from_millis(1));
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
                        (cooldown * 2).min(breaker.max_cooldown.max(Duration::from_millis(1)));
                }
            }
        }
        self.counters.circuit_open.store(false, Ordering::Relaxed);
        self.circuit.send_replace(false);
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
        if let Some(audit) = &self.audit {
            let outcomes = letters
                .iter()
                .map(|l| PipelineAudit::dead_lettered(&l.event, &l.reason))
                .collect();
            audit.outcomes(&self.spec.id, outcomes).await;
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

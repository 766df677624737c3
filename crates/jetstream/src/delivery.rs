//! The pipeline on JetStream: intake publishes ([`EventQueue`] for [`JetStream`]), and one
//! worker per sink and replica delivers from the sink's durable consumer
//! ([`JetStreamDelivery`]).
//!
//! A sink's events are spread over the replicas by the server (one durable consumer, each
//! message to one replica). A worker pulls a batch, encodes and sends it through the sink
//! (in chunks of the sink's `max_events`), and settles each event by its outcome:
//! delivered ⇒ acked; `Retry` ⇒ NAKed with the sink's retry-policy delay; `Rejected`, an
//! event that cannot be decoded or encoded, or a retry on the last delivery MaxDeliver
//! allows ⇒ written to the dead-letter store, then acked. The in-flight bound is the
//! consumer's MaxAckPending, so a slow sink applies backpressure, not memory growth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vowguard_core::{EncodedEvent, Error, Event, EventOutcome, RetryPolicy};
use vowguard_pipeline::{DeadLetter, DeadLetterStorage, EventQueue, SinkSpec};

use crate::client::JetStream;
use crate::consumer::{BatchHandler, Delivery, SinkConsumer};

#[async_trait]
impl EventQueue for JetStream {
    fn backend(&self) -> &'static str {
        "jetstream"
    }

    async fn enqueue(&self, event: Event) -> Result<(), Error> {
        let payload = serde_json::to_vec(&event).map_err(|e| {
            Error::invalid_input(format!("event {} cannot be stored: {e}", event.id))
        })?;
        self.publish(&event.id, Bytes::from(payload))
            .await
            .map(|_| ())
    }
}

/// Per-sink counts of this replica.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// Events delivered and acked.
    pub delivered: AtomicU64,
    /// Events dead-lettered and acked.
    pub dead_lettered: AtomicU64,
    /// Events NAKed for a later redelivery.
    pub retried: AtomicU64,
    /// Events whose ack the server did not confirm (they may come again).
    pub unconfirmed: AtomicU64,
}

/// The sink workers of this replica; stop them with [`JetStreamDelivery::shutdown`].
#[derive(Debug)]
pub struct JetStreamDelivery {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    counters: BTreeMap<String, Arc<DeliveryCounters>>,
}

impl JetStreamDelivery {
    /// Opens (or checks) the durable consumer of every sink and starts its worker.
    pub async fn start(
        js: &JetStream,
        sinks: Vec<SinkSpec>,
        dead_letters: Arc<dyn DeadLetterStorage>,
    ) -> Result<Self, Error> {
        let (stop, _) = watch::channel(false);
        let mut this = Self {
            stop,
            tasks: Vec::new(),
            counters: BTreeMap::new(),
        };
        for spec in sinks {
            let wait = spec.batch.max_wait();
            let retry = spec.retry;
            let id = spec.id.clone();
            let handler = Arc::new(SinkHandler {
                spec,
                dead_letters: dead_letters.clone(),
            });
            if let Err(e) = this.add(js, &id, handler, retry, wait).await {
                // The workers already started must not keep running behind the caller.
                this.shutdown().await;
                return Err(e);
            }
        }
        Ok(this)
    }

    /// Opens (or checks) the durable consumer `name` and starts a worker feeding its
    /// batches to `handler` (the alert path uses this with its own handler). `retry` gives
    /// the NAK delays and the dead-letter write retries; `max_wait` how long a pull waits
    /// for a batch to fill (clamped to 100 ms ..= 5 s).
    pub async fn add(
        &mut self,
        js: &JetStream,
        name: &str,
        handler: Arc<dyn BatchHandler>,
        retry: RetryPolicy,
        max_wait: Duration,
    ) -> Result<Arc<DeliveryCounters>, Error> {
        if self.counters.contains_key(name) {
            return Err(Error::config(format!("duplicate consumer `{name}`")));
        }
        let exhausted = js.exhausted_events(name).await?;
        let consumer = js.consumer(name, None).await?;
        Ok(self.spawn(consumer, exhausted, handler, retry, max_wait))
    }

    /// Opens (or checks) the shared consumer of the raw events ([`crate::ENRICH_CONSUMER`])
    /// and starts this replica's enrichment worker: each raw event is enriched by
    /// `enrichers` (the local pipeline's stage: breakers, budget, concurrency), its
    /// enriched copy published (see [`JetStream::publish_enriched`]), and the raw message
    /// acked only after that PubAck. Needs [`crate::StreamSettings::raw_intake`].
    pub async fn add_enrichment(
        &mut self,
        js: &JetStream,
        enrichers: vowguard_pipeline::Enrichers,
        dead_letters: Arc<dyn DeadLetterStorage>,
    ) -> Result<Arc<DeliveryCounters>, Error> {
        let name = crate::client::ENRICH_CONSUMER;
        if self.counters.contains_key(name) {
            return Err(Error::config(format!("duplicate consumer `{name}`")));
        }
        let exhausted = js.exhausted_events(name).await?;
        let consumer = js.enrich_consumer().await?;
        let handler = Arc::new(crate::enrich::EnrichHandler::new(
            js.clone(),
            enrichers,
            dead_letters,
        ));
        Ok(self.spawn(
            consumer,
            exhausted,
            handler,
            RetryPolicy::default(),
            Duration::from_millis(100),
        ))
    }

    fn spawn(
        &mut self,
        consumer: SinkConsumer,
        exhausted: crate::ExhaustedEvents,
        handler: Arc<dyn BatchHandler>,
        retry: RetryPolicy,
        max_wait: Duration,
    ) -> Arc<DeliveryCounters> {
        let name = consumer.name().to_owned();
        let count = Arc::new(DeliveryCounters::default());
        self.counters.insert(name.clone(), count.clone());
        let worker = Worker {
            name,
            handler,
            retry,
            wait: max_wait.clamp(Duration::from_millis(100), Duration::from_secs(5)),
            counters: count.clone(),
        };
        let worker = Arc::new(worker);
        self.tasks.push(tokio::spawn(dead_letter_exhausted(
            exhausted,
            worker.clone(),
            self.stop.subscribe(),
        )));
        self.tasks
            .push(tokio::spawn(run(consumer, worker, self.stop.subscribe())));
        count
    }

    /// The counts of sink `id` on this replica.
    pub fn counters(&self, id: &str) -> Option<&Arc<DeliveryCounters>> {
        self.counters.get(id)
    }

    /// The counts of every consumer of this replica, by name.
    pub fn all_counters(&self) -> &BTreeMap<String, Arc<DeliveryCounters>> {
        &self.counters
    }

    /// Stops after the batches in flight are settled; what is left stays in the stream for
    /// the other replicas.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// One consumer's worker: its handler, retry policy and counts.
struct Worker {
    name: String,
    handler: Arc<dyn BatchHandler>,
    retry: RetryPolicy,
    wait: Duration,
    counters: Arc<DeliveryCounters>,
}

/// Dead-letters the events whose every delivery ended without an ack (see
/// [`crate::ExhaustedEvents`]).
async fn dead_letter_exhausted(
    mut exhausted: crate::ExhaustedEvents,
    worker: Arc<Worker>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = exhausted.next() => next,
            _ = stop.changed() => break,
        };
        let Some(next) = next else { break };
        let delivery = match next {
            Ok(delivery) => delivery,
            Err(e) => {
                tracing::error!(consumer = %worker.name, error = %e, "an event that reached MaxDeliver could not be read");
                continue;
            }
        };
        let error = Error::unavailable(format!(
            "not acknowledged after {} deliveries (the replica handling it stopped or hung each time)",
            delivery.attempt()
        ));
        let (stored, _) = worker
            .retry
            .run(|_| worker.handler.dead_letter(&delivery, &error))
            .await;
        match stored {
            Ok(()) => {
                worker
                    .counters
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(consumer = %worker.name, event_id = ?delivery.event_id(), error = %e, "dead letter not stored for an event that reached MaxDeliver");
            }
        }
    }
}

async fn run(consumer: SinkConsumer, worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    while !*stop.borrow() {
        let batch = tokio::select! {
            batch = consumer.next_batch(worker.wait) => batch,
            _ = stop.changed() => break,
        };
        let batch = match batch {
            Ok(batch) => {
                failures = 0;
                batch
            }
            Err(e) => {
                // Missed heartbeats, a server restart: not terminal, pull again after a backoff.
                failures += 1;
                let delay = worker.retry.delay(failures, &e);
                tracing::warn!(consumer = %worker.name, error = %e, ?delay, "pull failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        if batch.is_empty() {
            continue;
        }
        // Not interrupted by the stop: a batch in flight is settled before the worker ends.
        let report = consumer
            .process(&batch, worker.handler.as_ref(), &worker.retry)
            .await;
        let counters = &worker.counters;
        counters
            .delivered
            .fetch_add(report.delivered as u64, Ordering::Relaxed);
        counters
            .dead_lettered
            .fetch_add(report.dead_lettered as u64, Ordering::Relaxed);
        counters
            .retried
            .fetch_add(report.retried as u64, Ordering::Relaxed);
        counters
            .unconfirmed
            .fetch_add(report.unconfirmed as u64, Ordering::Relaxed);
    }
}

/// A sink and its dead-letter store, fed by a consumer.
struct SinkHandler {
    spec: SinkSpec,
    dead_letters: Arc<dyn DeadLetterStorage>,
}

fn decode(delivery: &Delivery) -> Result<Event, Error> {
    serde_json::from_slice(delivery.payload()).map_err(|e| {
        Error::invalid_input(format!(
            "stream message {:?} is not a vowguard event: {e}",
            delivery.event_id()
        ))
    })
}

#[async_trait]
impl BatchHandler for SinkHandler {
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Result<(), Error>> {
        let mut outcomes: Vec<Option<Result<(), Error>>> = vec![None; batch.len()];
        let mut encoded = Vec::new();
        let mut index = Vec::new();
        for (i, delivery) in batch.iter().enumerate() {
            let bytes = decode(delivery).and_then(|event| {
                let bytes = self.spec.sink.encode_stored(&event, delivery.payload())?;
                Ok(EncodedEvent {
                    event_id: event.id,
                    bytes,
                })
            });
            match bytes {
                Ok(e) => {
                    encoded.push(e);
                    index.push(i);
                }
                Err(e) => outcomes[i] = Some(Err(permanent(e))),
            }
        }
        let max = self.spec.batch.max_events.max(1);
        for (chunk, at) in encoded.chunks(max).zip(index.chunks(max)) {
            let refs: Vec<&EncodedEvent> = chunk.iter().collect();
            let sent = self.spec.sink.send(&refs).await;
            for (k, &i) in at.iter().enumerate() {
                outcomes[i] = Some(match sent.get(k) {
                    Some(EventOutcome::Delivered) => Ok(()),
                    Some(EventOutcome::Retry(e)) => Err(e.clone()),
                    Some(EventOutcome::Rejected(e)) => Err(permanent(e.clone())),
                    None => Err(Error::internal(format!(
                        "sink {} returned fewer outcomes than events",
                        self.spec.id
                    ))),
                });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::internal("event not settled"))))
            .collect()
    }

    async fn dead_letter(&self, delivery: &Delivery, error: &Error) -> Result<(), Error> {
        match decode(delivery) {
            Ok(event) => {
                let letter = DeadLetter::new(&self.spec.id, &event, error, delivery.attempt());
                self.dead_letters.write(Arc::from(vec![letter])).await
            }
            Err(e) => {
                // Not an event: nothing a replay could send; logged (by id) and dropped.
                tracing::error!(sink = %self.spec.id, error = %e, "dropping a stream message that is not an event");
                Ok(())
            }
        }
    }
}

/// A refusal stays a refusal even when the destination said it with a retryable kind.
fn permanent(e: Error) -> Error {
    if e.is_retryable() {
        Error::rejected(e.message().to_owned())
    } else {
        e
    }
}

//! Durable pull consumers: batches in, one explicit ack per event after the sink's outcome.
//!
//! The cycle of one batch ([`SinkConsumer::process`]):
//! 1. fetch up to `batch` messages (the server hands each to one replica only);
//! 2. while the handler delivers them, a progress keeper sends `+WPI` every third of
//!    AckWait, so a slow sink never makes the server redeliver work still in flight
//!    (an ack after AckWait expired would return Ok and be ignored: nats.rs #1042);
//! 3. each outcome is settled: delivered ⇒ double ack (the server confirms it, so a lost
//!    ack cannot cause a redelivery); a retryable failure ⇒ NAK with the delay of the
//!    shared [`RetryPolicy`] (no hot redelivery loop); a permanent failure, or a failure on
//!    the last delivery allowed by MaxDeliver ⇒ the handler dead-letters it durably, then
//!    it is acked.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::{Consumer, pull};
use async_nats::jetstream::message::{AckKind, Acker};
use bytes::Bytes;
use futures::StreamExt;
use vowguard_core::{Error, RetryPolicy};

/// One durable pull consumer (a sink's or the alert path's), shared by every replica.
pub struct SinkConsumer {
    consumer: Consumer<pull::Config>,
    name: String,
    ack_wait: Duration,
    max_deliver: i64,
    batch: usize,
}

impl std::fmt::Debug for SinkConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConsumer")
            .field("name", &self.name)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliver", &self.max_deliver)
            .finish_non_exhaustive()
    }
}

/// One event handed to this replica.
pub struct Delivery {
    /// The delivered message; `None` for an event read back from the stream after the
    /// server gave up on it (see [`ExhaustedEvents`]): nothing to ack any more.
    message: Option<Message>,
    payload: Bytes,
    event_id: Option<String>,
    attempt: u32,
    last: bool,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event_id", &self.event_id())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// The event id from `Nats-Msg-Id` (an enriched copy's suffix removed).
fn message_id(headers: Option<&async_nats::HeaderMap>) -> Option<String> {
    let id = headers?.get(async_nats::header::NATS_MESSAGE_ID)?.as_str();
    Some(
        id.strip_suffix(crate::client::ENRICHED_SUFFIX)
            .unwrap_or(id)
            .to_owned(),
    )
}

impl Delivery {
    fn delivered(message: Message, max_deliver: i64) -> Self {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1).max(1);
        Self {
            payload: message.payload.clone(),
            event_id: message_id(message.headers.as_ref()),
            attempt: u32::try_from(delivered).unwrap_or(u32::MAX),
            last: max_deliver > 0 && delivered >= max_deliver,
            message: Some(message),
        }
    }

    /// The event as published.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The event id (`Nats-Msg-Id`, without the suffix of an enriched copy), when the
    /// publisher set one.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    /// Which delivery of this event this is (1 = first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether MaxDeliver allows no further delivery: a failure now must be dead-lettered.
    pub fn is_last_attempt(&self) -> bool {
        self.last
    }

    /// Acks and waits for the server to confirm it.
    pub async fn ack(&self) -> Result<(), Error> {
        let Some(message) = &self.message else {
            return Ok(());
        };
        message
            .double_ack()
            .await
            .map_err(|e| Error::unavailable(format!("ack not confirmed: {e}")))
    }

    /// Asks for a redelivery after `delay`.
    pub async fn retry_after(&self, delay: Duration) -> Result<(), Error> {
        let Some(message) = &self.message else {
            return Ok(());
        };
        message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| Error::unavailable(format!("nak failed: {e}")))
    }

    fn acker(&self) -> Option<Acker> {
        let message = self.message.as_ref()?;
        Some(Acker::new(message.context.clone(), message.reply.clone()))
    }
}

/// Events the server stopped delivering because MaxDeliver was reached without an ack (the
/// replicas handling them died or hung each time: a poison event that crashes its
/// handler). Read from the server's `MAX_DELIVERIES` advisories in a queue group, so one
/// replica handles each, and fetched from the stream by sequence for the dead-letter store.
/// Advisories are core NATS: one sent while no replica listens is not seen.
pub struct ExhaustedEvents {
    subscriber: async_nats::Subscriber,
    stream: async_nats::jetstream::stream::Stream,
}

impl std::fmt::Debug for ExhaustedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExhaustedEvents").finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct MaxDeliveriesAdvisory {
    stream_seq: u64,
    deliveries: u64,
}

impl ExhaustedEvents {
    pub(crate) fn new(
        subscriber: async_nats::Subscriber,
        stream: async_nats::jetstream::stream::Stream,
    ) -> Self {
        Self { subscriber, stream }
    }

    /// The next exhausted event; `None` when the subscription ended (connection closed).
    pub async fn next(&mut self) -> Option<Result<Delivery, Error>> {
        loop {
            let advisory = self.subscriber.next().await?;
            let Ok(advisory) = serde_json::from_slice::<MaxDeliveriesAdvisory>(&advisory.payload)
            else {
                continue;
            };
            let message = match self.stream.get_raw_message(advisory.stream_seq).await {
                Ok(message) => message,
                Err(e) => {
                    return Some(Err(Error::unavailable(format!(
                        "stream message {} (MaxDeliver reached) cannot be read: {e}",
                        advisory.stream_seq
                    ))));
                }
            };
            return Some(Ok(Delivery {
                event_id: message_id(Some(&message.headers)),
                payload: message.payload,
                attempt: u32::try_from(advisory.deliveries).unwrap_or(u32::MAX),
                last: true,
                message: None,
            }));
        }
    }
}

/// What happened to the events of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchReport {
    /// Delivered and acked.
    pub delivered: usize,
    /// Dead-lettered (permanent failure or MaxDeliver reached) and acked.
    pub dead_lettered: usize,
    /// NAKed for a later redelivery.
    pub retried: usize,
    /// Settled, but the server did not confirm the ack or NAK: it may redeliver them.
    pub unconfirmed: usize,
}

/// What a consumer feeds its events to: a sink (or the alert path) and its dead-letter store.
#[async_trait::async_trait]
pub trait BatchHandler: Send + Sync {
    /// Delivers the batch; one outcome per event, in order.
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Result<(), Error>>;
    /// Stores an event that will not be delivered, durably, before it is acked.
    async fn dead_letter(&self, delivery: &Delivery, error: &Error) -> Result<(), Error>;
}

/// Counts of one consumer, across all replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerCounts {
    /// Events not yet delivered to any replica.
    pub pending: u64,
    /// Delivered, not yet acked.
    pub ack_pending: usize,
    /// Delivered more than once and not yet acked.
    pub redelivered: usize,
}

impl SinkConsumer {
    pub(crate) fn new(
        consumer: Consumer<pull::Config>,
        name: String,
        ack_wait: Duration,
        max_deliver: i64,
        batch: usize,
    ) -> Self {
        Self {
            consumer,
            name,
            ack_wait,
            max_deliver,
            batch,
        }
    }

    /// The durable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the server waits for an ack.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// Fetches up to one batch, waiting at most `wait` for the first event. An empty batch
    /// means nothing arrived in time. Transport errors (a server restart, missed
    /// heartbeats) are `Unavailable`: retry after a backoff.
    pub async fn next_batch(&self, wait: Duration) -> Result<Vec<Delivery>, Error> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(self.batch)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| Error::unavailable(format!("consumer {}: pull failed: {e}", self.name)))?;
        let mut out = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| {
                Error::unavailable(format!("consumer {}: pull failed: {e}", self.name))
            })?;
            out.push(Delivery::delivered(message, self.max_deliver));
        }
        Ok(out)
    }

    /// Delivers one batch through `handler` and settles every event (see the module docs).
    pub async fn process(
        &self,
        batch: &[Delivery],
        handler: &dyn BatchHandler,
        retry: &RetryPolicy,
    ) -> BatchReport {
        let keeper = ProgressKeeper::start(
            batch.iter().filter_map(Delivery::acker).collect(),
            self.ack_wait,
        );
        let outcomes = handler.deliver(batch).await;
        // Settled concurrently: each double ack is a round trip to the server.
        let settled = batch.iter().enumerate().map(|(i, delivery)| {
            let outcome = outcomes.get(i).cloned().unwrap_or_else(|| {
                Err(Error::internal(
                    "the handler returned fewer outcomes than events",
                ))
            });
            async move {
                match outcome {
                    Ok(()) => (Settled::Delivered, delivery.ack().await),
                    Err(error) if !error.is_retryable() || delivery.is_last_attempt() => {
                        let (stored, _) =
                            retry.run(|_| handler.dead_letter(delivery, &error)).await;
                        match stored {
                            Ok(()) => (Settled::DeadLettered, delivery.ack().await),
                            Err(e) => {
                                // Not stored: not acked either, so it is not lost (the server
                                // reports it in MAX_DELIVERIES advisories when no delivery is left).
                                tracing::error!(consumer = %self.name, event_id = ?delivery.event_id(), error = %e, "dead letter not stored; event left unacked");
                                let delay = retry.backoff_ceiling(delivery.attempt());
                                (Settled::Retried, delivery.retry_after(delay).await)
                            }
                        }
                    }
                    Err(error) => {
                        let delay = retry.delay(delivery.attempt(), &error);
                        (Settled::Retried, delivery.retry_after(delay).await)
                    }
                }
            }
        });
        let mut report = BatchReport::default();
        for ((settled, result), delivery) in futures::future::join_all(settled)
            .await
            .into_iter()
            .zip(batch)
        {
            match settled {
                Settled::Delivered => report.delivered += 1,
                Settled::DeadLettered => report.dead_lettered += 1,
                Settled::Retried => report.retried += 1,
            }
            if let Err(e) = result {
                tracing::warn!(consumer = %self.name, event_id = ?delivery.event_id(), error = %e, "ack not confirmed; the event may be redelivered");
                report.unconfirmed += 1;
            }
        }
        drop(keeper);
        report
    }

    /// Pending, ack-pending and redelivered counts from the server.
    pub async fn counts(&self) -> Result<ConsumerCounts, Error> {
        let info =
            self.consumer.get_info().await.map_err(|e| {
                Error::unavailable(format!("consumer {}: info failed: {e}", self.name))
            })?;
        Ok(ConsumerCounts {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            redelivered: info.num_redelivered,
        })
    }
}

enum Settled {
    Delivered,
    DeadLettered,
    Retried,
}

/// Sends `+WPI` for a batch every third of AckWait until dropped.
struct ProgressKeeper {
    task: tokio::task::JoinHandle<()>,
}

impl ProgressKeeper {
    fn start(ackers: Vec<Acker>, ack_wait: Duration) -> Self {
        let ackers = Arc::new(ackers);
        let every = (ack_wait / 3).max(Duration::from_millis(100));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                for acker in ackers.iter() {
                    if let Err(e) = acker.ack_with(AckKind::Progress).await {
                        tracing::debug!(error = %e, "progress ack failed");
                    }
                }
            }
        });
        Self { task }
    }
}

impl Drop for ProgressKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

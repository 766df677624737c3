//! Enrichment on the stream: the shared consumer [`crate::ENRICH_CONSUMER`] reads the raw
//! events intake published to `<subject>.raw`, runs the enrichers (the same stage as the
//! local pipeline: every enricher concurrently within its timeout and the event's budget,
//! each behind its circuit breaker), publishes each enriched event to `<subject>` with
//! `Nats-Msg-Id` = event id + [`crate::ENRICHED_SUFFIX`], and acks the raw message only
//! after that PubAck.
//!
//! So intake never waits for an enricher (its PubAck is the raw publish), a replica that
//! dies after publishing the enriched copy and before the ack costs one more enrichment of
//! that event on another replica, whose publish the server drops as a duplicate (inside the
//! stream's duplicate window), and a replica that dies before publishing loses nothing: the
//! raw event is redelivered after AckWait.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use vowguard_core::{Error, Event};
use vowguard_pipeline::{DeadLetter, DeadLetterStorage, Enrichers};

use crate::client::{ENRICH_CONSUMER, JetStream};
use crate::consumer::{BatchHandler, Delivery};

/// Enriches the raw events of a batch and publishes their enriched copies (see the module
/// docs). A raw message that is not an event, or whose enriched copy the server refuses
/// for good (larger than its max payload), is dead-lettered under the consumer's name; a
/// publish that fails while NATS is unavailable is retried (NAK with the retry policy's
/// delay), never dropped.
pub struct EnrichHandler {
    js: JetStream,
    enrichers: Enrichers,
    dead_letters: Arc<dyn DeadLetterStorage>,
}

impl std::fmt::Debug for EnrichHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrichHandler")
            .field("enrichers", &self.enrichers)
            .finish_non_exhaustive()
    }
}

impl EnrichHandler {
    /// A handler publishing through `js` (whose stream has `raw_intake`).
    pub fn new(
        js: JetStream,
        enrichers: Enrichers,
        dead_letters: Arc<dyn DeadLetterStorage>,
    ) -> Self {
        Self {
            js,
            enrichers,
            dead_letters,
        }
    }

    async fn enrich_and_publish(&self, delivery: &Delivery) -> Result<(), Error> {
        let event = decode(delivery)?;
        let event = self.enrichers.enrich(event).await;
        let payload = serde_json::to_vec(&event).map_err(|e| {
            Error::rejected(format!("enriched event {} cannot be stored: {e}", event.id))
        })?;
        let published = self
            .js
            .publish_enriched(&event.id, Bytes::from(payload))
            .await?;
        if published.duplicate {
            tracing::debug!(event_id = %event.id, attempt = delivery.attempt(), "enriched copy already in the stream (an earlier delivery published it)");
        }
        Ok(())
    }
}

fn decode(delivery: &Delivery) -> Result<Event, Error> {
    serde_json::from_slice(delivery.payload()).map_err(|e| {
        Error::rejected(format!(
            "raw stream message {:?} is not a vowguard event: {e}",
            delivery.event_id()
        ))
    })
}

#[async_trait]
impl BatchHandler for EnrichHandler {
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Result<(), Error>> {
        // `enrichment_concurrency` events at once, outcomes in order (built up front: a
        // closure inside the stream would not be `Send` for every lifetime).
        let work: Vec<_> = batch
            .iter()
            .map(|delivery| self.enrich_and_publish(delivery))
            .collect();
        futures::stream::iter(work)
            .buffered(self.enrichers.concurrency())
            .collect()
            .await
    }

    async fn dead_letter(&self, delivery: &Delivery, error: &Error) -> Result<(), Error> {
        match decode(delivery) {
            Ok(event) => {
                let letter = DeadLetter::new(ENRICH_CONSUMER, &event, error, delivery.attempt());
                self.dead_letters.write(Arc::from(vec![letter])).await
            }
            Err(e) => {
                tracing::error!(consumer = ENRICH_CONSUMER, error = %e, "dropping a raw stream message that is not an event");
                Ok(())
            }
        }
    }
}

//! The NATS JetStream queue backend of vowguard: several replicas share one durable stream,
//! nothing acknowledged is lost, nothing is sent twice.
//!
//! * [`JetStream::connect`] connects with the configured credentials (user/password, token,
//!   NKey, creds file; TLS) through [`connection`], the one NATS connection code of vowguard
//!   (the `nats` sink and source use it too), and creates the event stream or checks the
//!   existing one, refusing a conflicting field by name.
//! * [`JetStream::publish`] stores an event with `Nats-Msg-Id` = event id and waits for the
//!   PubAck; intake acknowledges its client only after it. A retried publish inside the
//!   duplicate window is a success.
//! * [`JetStream::consumer`] opens the durable pull consumer of a sink (or of the alert path),
//!   shared by all replicas so the work spreads; [`SinkConsumer::process`] acks each event
//!   only after its outcome (see the [`consumer`] module).
//! * [`JetStream::shared_state`] is a KV bucket for "already sent" marks and leases decided
//!   by the server, so two replicas never page twice (see the [`kv`] module).
//! * [`JetStream::shared_log`] is a bounded stream of records all replicas append to (the
//!   cluster's notification log; see the [`log`] module).
//!
//! * [`JetStreamDelivery`] runs the sinks of this replica from their consumers, and
//!   [`JetStream`] implements the pipeline's `EventQueue` for intake.
//! * With enrichers ([`StreamSettings::raw_intake`]), intake publishes raw events to
//!   `<subject>.raw`; the shared consumer [`ENRICH_CONSUMER`] enriches them
//!   ([`EnrichHandler`]), publishes each enriched copy to `<subject>` (what sinks and the
//!   alert path read) and acks the raw message after that PubAck.
//!
//! Semantics relied on are in `shared/PROTOCOLS-RESPONSE.md` §8.

mod client;
mod config;
pub mod connection;
pub mod consumer;
mod delivery;
mod enrich;
pub mod kv;
pub mod log;
mod status;

pub use client::{
    ENRICH_CONSUMER, ENRICHED_SUFFIX, JetStream, Published, RETRY_AFTER, enriched_message_id,
};
pub use config::{ConsumerSettings, JetStreamConfig, Storage, StreamSettings, TlsSettings};
pub use consumer::{
    BatchHandler, BatchReport, ConsumerCounts, Delivery, ExhaustedEvents, SinkConsumer,
};
pub use delivery::{DeliveryCounters, JetStreamDelivery};
pub use enrich::EnrichHandler;
pub use kv::{Lease, SharedState};
pub use log::SharedLog;
pub use status::{ConsumerStatus, StreamStatus};

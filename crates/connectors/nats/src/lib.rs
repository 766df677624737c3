//! NATS connectors for vowguard: the `nats` sink and the configuration and message decoding
//! of the `nats` source (which the runtime runs, next to its stdin and HTTP sources).
//!
//! How the pieces fit:
//!
//! * [`NatsConnection`] holds the connection keys both share (servers, one credential as
//!   `{ env }` / `{ file }`, TLS, deadlines); [`NatsClientSettings`] is the same with the
//!   credential resolved, and connects with reconnect backoff.
//! * [`SubjectTemplate`] renders a subject such as `security.{category}.{wedding_id}` from
//!   an event, every value sanitised to one token, so event text cannot add tokens or
//!   wildcards.
//! * [`NatsSink`] (`[sinks.<id>] type = "nats"`) publishes each event through JetStream
//!   (delivered only after the PubAck; `Nats-Msg-Id` = event id, so a retried publish is
//!   stored once) or core NATS (after a flush), and maps failures onto the pipeline's
//!   retry / dead-letter model.
//! * [`NatsSourceConfig`] (`[sources.<id>] type = "nats"`) and [`decode_event`]: a
//!   JetStream durable pull consumer or a core subscription, each message parsed by the
//!   ingest parser (a bad one is terminated with a counted reason, never redelivered).
//!
//! The sink registers itself with the vowguard registry; the runtime builds it from config.

mod connection;
mod sink;
mod source;
mod subject;

use std::sync::Arc;

use vowguard_core::{BuildContext, ComponentConfig, Error, Sink};

/// The client library, re-exported so the runtime's source and tests use the same version.
pub use async_nats;
pub use connection::{
    MAX_RECONNECT_DELAY, NatsClientSettings, NatsConnection, TlsSettings, reconnect_delay,
};
pub use sink::{Encoding, NatsSink, NatsSinkBuilder, NatsSinkConfig, PublishMode};
pub use source::{BadMessage, NatsSourceConfig, SourceMode, decode_event, stable_id};
pub use subject::{FIELDS, MAX_TEMPLATE_LEN, MAX_VALUE_LEN, SubjectTemplate};

/// The connector kind, as written in `type = "nats"`.
pub const KIND: &str = "nats";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "NATS (JetStream with PubAck and Nats-Msg-Id dedup, or core NATS); subject templated from event fields", build)
}

/// Builds the sink from its config table (the registry's build function).
fn build(ctx: &BuildContext<'_>, table: ComponentConfig) -> Result<Arc<dyn Sink>, Error> {
    let key = ctx.path();
    let config = NatsSinkConfig::from_config(table, &key)?;
    let sink = NatsSink::new(&config, &key, ctx.secrets, ctx.config_dir)?;
    Ok(Arc::new(sink.with_id(ctx.id)))
}

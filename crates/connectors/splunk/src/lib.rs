//! Splunk HTTP Event Collector sink for vowguard (connector kind `splunk_hec`).
//!
//! How the pieces fit:
//!
//! * [`SplunkHecConfig`] is the `[sinks.<id>]` table (`type = "splunk_hec"`).
//! * [`HecEncoder`] / [`encode_event`] turn one [`Event`](vowguard_core::Event) into one
//!   HEC JSON envelope (pure: tested with golden vectors and property tests);
//!   [`batch_body`] concatenates envelopes into a request body.
//! * [`SplunkHecSink`] posts a batch to `{endpoint}/services/collector/event` (one attempt),
//!   maps the answer onto one outcome per event in [`map_response`], and, with indexer
//!   acknowledgement enabled, waits until the batch is indexed: one background task per sink
//!   polls `{endpoint}/services/collector/ack` once per interval for every batch in flight
//!   (one request lists all outstanding ids), and an acknowledgement that never comes makes
//!   the batch retryable, never dropped.
//!
//! The sink registers itself with the vowguard registry; the runtime builds it from config.

mod ack;
mod config;
mod encode;
mod sink;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

pub use ack::{ack_request, parse_acks};
pub use config::{AckConfig, Compression, SplunkHecConfig, default_host};
pub use encode::{HecEncoder, batch_body, encode_event, format_time, indexed_fields};
pub use sink::{CHANNEL_HEADER, HecReply, SplunkHecSink, map_response, parse_ack};

/// The connector kind, as written in `type = "splunk_hec"`.
pub const KIND: &str = "splunk_hec";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "Splunk HTTP Event Collector (HEC JSON events, optional indexer acknowledgement)", build)
}

/// Builds the sink from its config table (the registry's build function).
fn build(ctx: &BuildContext<'_>, table: toml::Table) -> Result<Arc<dyn Sink>, Error> {
    let config: SplunkHecConfig = ctx.parse(table)?;
    let token = ctx.secret("token", &config.token)?;
    let sink = SplunkHecSink::new(config, token).map_err(|e| {
        Error::new(
            e.kind(),
            format!("`{}.{}`: {}", ctx.role.section(), ctx.id, e.message()),
        )
    })?;
    Ok(Arc::new(sink.with_id(ctx.id)))
}

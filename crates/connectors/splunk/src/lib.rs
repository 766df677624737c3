//! Splunk HTTP Event Collector sink for vowguard (connector kind `splunk_hec`).
//!
//! How the pieces fit:
//!
//! * [`SplunkHecSink::builder`] makes a sink in code, taking the resolved token directly;
//!   [`SplunkHecConfig`] is the `[sinks.<id>]` table (`type = "splunk_hec"`), which
//!   [`SplunkHecConfig::into_builder`] turns into the same builder once its secret is resolved.
//! * [`HecEncoder`] / [`encode_event`] turn one [`Event`](vowguard_core::Event) into one
//!   HEC JSON envelope (pure: tested with golden vectors and property tests); a request body
//!   is the envelopes concatenated.
//! * [`SplunkHecSink`] posts a batch to `{endpoint}/services/collector/event` (one attempt),
//!   maps the answer onto one outcome per event, and, with indexer
//!   acknowledgement enabled, waits until the batch is indexed: one background task per sink
//!   polls `{endpoint}/services/collector/ack` once per interval for every batch in flight
//!   (one request lists all outstanding ids), and an acknowledgement that never comes makes
//!   the batch retryable, never dropped.
//!
//! The sink registers itself with the vowguard registry; the runtime builds it from config.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use secrecy::SecretString;
//! use vowguard_splunk::{AckConfig, SplunkHecSink};
//!
//! # fn main() -> Result<(), vowguard_core::Error> {
//! let sink = SplunkHecSink::builder("https://splunk.example.org:8088")
//!     .token(SecretString::from("hec-token"))
//!     .index("wedding-security")
//!     .acknowledgements(AckConfig::enabled_with(
//!         Duration::from_millis(500),
//!         Duration::from_secs(30),
//!     ))
//!     .build()?;
//! # let _ = sink;
//! # Ok(())
//! # }
//! ```

mod ack;
mod builder;
mod config;
mod encode;
mod sink;

use std::sync::Arc;

use vowguard_core::{BuildContext, ComponentConfig, Error, Sink};

pub use builder::SplunkHecSinkBuilder;
pub use config::{AckConfig, Compression, SplunkHecConfig, default_host};
pub use encode::{HecEncoder, encode_event, format_time, indexed_fields};
pub use sink::{ACK_CONCURRENCY, CHANNEL_HEADER, SplunkHecSink};
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

/// Internals for this crate's integration tests, benches and fuzz targets; not a stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::ack::{ack_request, parse_acks};
    pub use crate::encode::batch_body;
}

/// The connector kind, as written in `type = "splunk_hec"`.
pub const KIND: &str = "splunk_hec";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "Splunk HTTP Event Collector (HEC JSON events, optional indexer acknowledgement)", build)
}

/// Builds the sink from its config table (the registry's build function).
fn build(ctx: &BuildContext<'_>, table: ComponentConfig) -> Result<Arc<dyn Sink>, Error> {
    let config: SplunkHecConfig = ctx.parse(table)?;
    let token = ctx.secret("token", &config.token)?;
    // The builder's errors already name the full key (`sinks.<id>.index`).
    let sink = config.into_builder(token).id(ctx.id).build()?;
    Ok(Arc::new(sink))
}

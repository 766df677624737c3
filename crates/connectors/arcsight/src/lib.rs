//! ArcSight sink for vowguard: every event as one CEF line in an RFC 5424 syslog message.
//!
//! * [`encode`] is the pure CEF encoder ([`CefEncoder::encode`]: event in, one line out),
//!   tested with the spec's golden vector and property tests.
//! * [`ArcSightSink`] wraps each CEF line in an RFC 5424 header
//!   ([`vowguard_syslog::format_rfc5424`]) and sends batches over the shared
//!   [`vowguard_syslog::SyslogClient`] (UDP, TCP or TLS; octet counting or LF framing),
//!   reporting one outcome per event; it is a thin wrapper around
//!   [`vowguard_syslog::SyslogSink`] with the CEF encoder as its [`vowguard_syslog::LineEncoder`].
//! * [`ArcSightSink::builder`] makes a sink in code; [`ArcSightConfig`] is the `[sinks.<id>]`
//!   table of `type = "arcsight"`, which [`ArcSightConfig::into_builder`] turns into the same
//!   builder.
//!
//! The CEF line never contains a raw CR or LF, so LF framing stays one message a line.

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

mod builder;
mod config;
pub mod encode;
mod sink;

pub use builder::ArcSightSinkBuilder;
pub use config::{ArcSightConfig, DEFAULT_APP_NAME, DEFAULT_DEVICE_PRODUCT, DEFAULT_DEVICE_VENDOR};
pub use encode::CefEncoder;
pub use sink::{ArcSightSink, KIND, MSGID};

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Sink>, Error> {
    let config: ArcSightConfig = ctx.parse(table)?;
    let sink = config
        .into_builder()
        .id(ctx.id)
        .build()
        .map_err(|e| ctx.builder_error(&e))?;
    Ok(Arc::new(sink))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "ArcSight: CEF over syslog (UDP/TCP/TLS)", build)
}

//! QRadar sink for vowguard: every event as one LEEF line in an RFC 5424 syslog message.
//!
//! * [`encode`] is the pure LEEF encoder ([`LeefEncoder::encode`]: event in, one line out),
//!   LEEF 2.0 with a configurable delimiter (default `^`) or LEEF 1.0 (tab).
//! * [`QRadarSink`] wraps each LEEF line in an RFC 5424 header
//!   ([`vowguard_syslog::format_rfc5424`]) and sends batches over the shared
//!   [`vowguard_syslog::SyslogClient`] (UDP, TCP or TLS; octet counting or LF framing),
//!   reporting one outcome per event; it is a thin wrapper around
//!   [`vowguard_syslog::SyslogSink`] with the LEEF encoder as its [`vowguard_syslog::LineEncoder`].
//! * [`QRadarSink::builder`] makes a sink in code; [`QRadarConfig`] is the `[sinks.<id>]`
//!   table of `type = "qradar"`, which [`QRadarConfig::into_builder`] turns into the same
//!   builder.
//!
//! LEEF has no escaping: the encoder replaces the delimiter, CR and LF in values with a
//! space and `|` in header fields with `/`, so a record is never broken and always one line.

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

mod builder;
mod config;
pub mod encode;
mod sink;

pub use builder::QRadarSinkBuilder;
pub use config::{DEFAULT_APP_NAME, DEFAULT_PRODUCT, DEFAULT_VENDOR, QRadarConfig};
pub use encode::{Delimiter, LeefEncoder, LeefVersion};
pub use sink::{KIND, MSGID, QRadarSink};

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Sink>, Error> {
    let config: QRadarConfig = ctx.parse(table)?;
    let sink = config
        .into_builder()
        .id(ctx.id)
        .build()
        .map_err(|e| ctx.builder_error(&e))?;
    Ok(Arc::new(sink))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "IBM QRadar: LEEF over syslog (UDP/TCP/TLS)", build)
}

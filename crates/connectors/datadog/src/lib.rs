//! Datadog Logs sink for vowguard (`type = "datadog_logs"`).
//!
//! Every event becomes one log entry for the
//! [HTTP intake v2](https://docs.datadoghq.com/api/latest/logs/#send-logs): `ddsource`,
//! `ddtags`, `hostname`, `service`, a `message`, a `status` from the severity, the
//! timestamp in epoch milliseconds, Datadog's standard attributes (`evt.*`,
//! `network.client.ip`, `usr.*`) and the whole event under `vowguard`. A batch is a JSON
//! array, gzip-compressed by default, posted with the `DD-API-KEY` header.
//!
//! * [`DatadogLogsSink::builder`] makes a sink in code, taking the resolved API key
//!   directly; [`DatadogConfig`] is the `[sinks.<id>]` table, which
//!   [`DatadogConfig::into_builder`] turns into the same builder once its secret is resolved.
//! * The pure encoder ([`LogEncoder`]), used by benchmarks and fuzzing.
//! * [`DatadogLogsSink`]: the intake call and the API key check.
//!
//! ```no_run
//! use vowguard_core::secrecy::SecretString;
//! use vowguard_datadog::DatadogLogsSink;
//!
//! # fn main() -> Result<(), vowguard_core::Error> {
//! let sink = DatadogLogsSink::builder()
//!     .api_key(SecretString::from("dd-api-key"))
//!     .site("datadoghq.eu")
//!     .build()?;
//! # let _ = sink;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod config;
mod encode;
mod sink;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

pub use builder::DatadogLogsSinkBuilder;
pub use config::{Compression, DEFAULT_SITE, DatadogConfig, SITES, Tags, machine_hostname};
pub use encode::{
    LogEncoder, MAX_BODY_BYTES, MAX_ENTRIES_PER_REQUEST, MAX_ENTRY_BYTES, MAX_TAG_CHARS,
    sanitize_tag, status,
};
pub use sink::{DatadogLogsSink, KIND};
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

/// Internals for this crate's integration tests, benches and fuzz targets; not a stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::array_body;
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "Datadog Logs HTTP intake v2 (JSON log entries)", build)
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Sink>, Error> {
    let config: DatadogConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    // The builder's errors already name the full key (`sinks.<id>.site`).
    let sink = config.into_builder(api_key).id(ctx.id).build()?;
    Ok(Arc::new(sink))
}

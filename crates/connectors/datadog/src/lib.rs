//! Datadog Logs sink for vowguard (`type = "datadog_logs"`).
//!
//! Every event becomes one log entry for the
//! [HTTP intake v2](https://docs.datadoghq.com/api/latest/logs/#send-logs): `ddsource`,
//! `ddtags`, `hostname`, `service`, a `message`, a `status` from the severity, the
//! timestamp in epoch milliseconds, Datadog's standard attributes (`evt.*`,
//! `network.client.ip`, `usr.*`) and the whole event under `vowguard`. A batch is a JSON
//! array, gzip-compressed by default, posted with the `DD-API-KEY` header.
//!
//! * [`config`]: the `[sinks.<id>]` table and the site -> URL mapping.
//! * [`encode`]: the pure encoder ([`LogEncoder`], [`array_body`]), used by benchmarks.
//! * [`sink`]: [`DatadogLogsSink`]: the intake call and the API key check.
#![forbid(unsafe_code)]

pub mod config;
pub mod encode;
pub mod sink;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

pub use config::{Compression, DEFAULT_SITE, DatadogConfig, SITES, Tags};
pub use encode::{LogEncoder, array_body, sanitize_tag, status};
pub use sink::{DatadogLogsSink, KIND};

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "Datadog Logs HTTP intake v2 (JSON log entries)", build)
}

fn build(ctx: &BuildContext<'_>, table: toml::Table) -> Result<Arc<dyn Sink>, Error> {
    let config: DatadogConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    let sink = DatadogLogsSink::new(&config, &api_key)
        .map_err(|e| {
            Error::config(format!(
                "`{}.{}`: {}",
                ctx.role.section(),
                ctx.id,
                e.message()
            ))
        })?
        .with_component_id(ctx.id);
    Ok(Arc::new(sink))
}

//! OpenTelemetry export of the per-event spans (cargo feature `otlp`): OTLP over HTTP
//! (protobuf) to `[telemetry.otlp] endpoint`, through reqwest with rustls.
//!
//! Only the spans under [`vowguard_pipeline::TRACE_TARGET`] go to the collector (enrich,
//! enricher, journal, sink.send, sink.event, notify, each with the event id); the log
//! output keeps its own filter. Spans are batched on a background thread and exported
//! every few seconds; [`OtlpGuard`] flushes what is left when it is dropped at exit.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use vowguard_core::Error;

use crate::config::OtlpConfig;

/// Flushes and stops the exporter when dropped (at the end of `vowguard run`).
#[must_use = "dropping the guard stops the export"]
pub struct OtlpGuard {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for OtlpGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpGuard").finish_non_exhaustive()
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        // Exports the spans still batched; errors are reported by the SDK's own log.
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OTLP exporter did not shut down cleanly");
        }
    }
}

/// A `tracing` layer exporting the pipeline's spans to `config`'s collector, and the guard
/// that flushes it. Errors name the `telemetry.otlp` key at fault.
pub fn layer<S>(config: &OtlpConfig) -> Result<(impl Layer<S> + use<S>, OtlpGuard), Error>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let url = config.traces_url()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(config.timeout.max(Duration::from_millis(1)))
        .build()
        .map_err(|e| Error::config(format!("`telemetry.otlp`: cannot start the exporter: {e}")))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("vowguard");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(
            Targets::new().with_target(vowguard_pipeline::TRACE_TARGET, tracing::Level::DEBUG),
        );
    Ok((layer, OtlpGuard { provider }))
}

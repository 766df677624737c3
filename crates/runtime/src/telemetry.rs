//! `GET /metrics` through the `metrics` facade and the Prometheus exporter.
//!
//! The pipeline emits its counters, gauges and latency histogram through the [`metrics`]
//! facade (see `vowguard_pipeline::METRICS`). `vowguard run` with an `http` source installs
//! a Prometheus recorder ([`metrics_exporter_prometheus`], recorder only: vowguard serves
//! the text itself) as the process's global recorder before the pipeline starts, and
//! `GET /metrics` renders it after emitting the current snapshot, so a scrape sees the
//! values of that moment. When the embedding process installed its own global recorder
//! first, that recorder keeps receiving the facade's metrics and `/metrics` renders a
//! private Prometheus recorder instead (counters and gauges, without the latency
//! histogram, whose samples go to the host's recorder).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use vowguard_pipeline::{LATENCY_BUCKETS, MetricsSnapshot, SINK_REQUEST_DURATION};

/// How often the exporter's histogram samples are folded into their buckets when nobody
/// scrapes (bounds the memory the samples take).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Metrics the HTTP server adds to the pipeline's: name and help text.
const SERVER_METRICS: [(&str, &str); 2] = [
    (
        "vowguard_http_events_accepted_total",
        "Events accepted on POST /v1/events.",
    ),
    (
        "vowguard_http_events_rejected_total",
        "Invalid events refused on POST /v1/events.",
    ),
];

/// The Prometheus exporter behind `GET /metrics`.
pub struct Exporter {
    handle: PrometheusHandle,
    /// The private recorder, when the process already had a global one.
    local: Option<PrometheusRecorder>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("global", &self.local.is_none())
            .finish_non_exhaustive()
    }
}

/// The process's exporter, installed as the global `metrics` recorder on first use when no
/// other recorder is installed. Call it before the pipeline starts so the latency
/// histogram registers with it.
pub fn exporter() -> &'static Exporter {
    static EXPORTER: OnceLock<Exporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let recorder = build_recorder();
        let handle = recorder.handle();
        let local = match metrics::set_global_recorder(recorder) {
            Ok(()) => None,
            Err(refused) => Some(refused.into_inner()),
        };
        let exporter = Exporter { handle, local };
        exporter.with_recorder(|| {
            vowguard_pipeline::describe_metrics();
            for (name, help) in SERVER_METRICS {
                metrics::describe_counter!(name, help);
            }
        });
        let upkeep = exporter.handle.clone();
        let spawned = std::thread::Builder::new()
            .name("vowguard-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the metrics upkeep thread; histogram samples are folded at each scrape only");
        }
        exporter
    })
}

fn build_recorder() -> PrometheusRecorder {
    // The buckets are a non-empty constant: the fallback is never taken.
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(SINK_REQUEST_DURATION.into()),
            &LATENCY_BUCKETS,
        )
        .map_or_else(
            |_| PrometheusBuilder::new().build_recorder(),
            PrometheusBuilder::build_recorder,
        )
}

impl Exporter {
    fn with_recorder(&self, f: impl FnOnce()) {
        match &self.local {
            Some(recorder) => metrics::with_local_recorder(recorder, f),
            None => f(),
        }
    }

    /// Emits `snapshot` and the HTTP server's counters (`accepted`, `rejected`) and renders
    /// everything in the Prometheus text exposition format.
    pub fn render(
        &self,
        snapshot: &MetricsSnapshot,
        accepted: u64,
        rejected: u64,
        webhooks: Option<&crate::webhooks::Intake>,
        cluster: Option<&crate::cluster::Cluster>,
    ) -> String {
        self.with_recorder(|| {
            snapshot.emit();
            if let Some(cluster) = cluster {
                cluster.emit();
            }
            if let Some(webhooks) = webhooks {
                webhooks.emit();
            }
            metrics::counter!(SERVER_METRICS[0].0).absolute(accepted);
            metrics::counter!(SERVER_METRICS[1].0).absolute(rejected);
        });
        self.handle.render()
    }
}

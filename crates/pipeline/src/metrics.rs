//! Counters kept by the pipeline, per sink and per notifier, and their emission through
//! the [`metrics`] facade.
//!
//! The pipeline keeps its own counters (read with [`crate::Pipeline::metrics`]) and
//! publishes them through the `metrics` facade, so the recorder a host installs
//! (`metrics::set_global_recorder`, a Prometheus or StatsD exporter, a test recorder) sees
//! them under the names below: counters and gauges every [`PUBLISH_INTERVAL`] while the
//! pipeline runs (and whenever [`MetricsSnapshot::emit`] is called), the sink request
//! latency histogram ([`SINK_REQUEST_DURATION`]) sample by sample as requests complete.
//! Without an installed recorder the facade does nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds (seconds) of the delivery-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often a running pipeline publishes its counters and gauges through the `metrics`
/// facade.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The name of the per-sink request latency histogram (seconds, label `sink`), recorded
/// through the `metrics` facade as each request completes. Exporters should use
/// [`LATENCY_BUCKETS`] as its buckets.
pub const SINK_REQUEST_DURATION: &str = "vowguard_sink_request_duration_seconds";

/// A handle on the facade's histogram (the no-op one until a sink id registers it).
struct FacadeHistogram(metrics::Histogram);

impl Default for FacadeHistogram {
    fn default() -> Self {
        Self(metrics::Histogram::noop())
    }
}

impl std::fmt::Debug for FacadeHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FacadeHistogram")
    }
}

/// A fixed-bucket latency histogram (Prometheus style: cumulative when rendered).
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    facade: FacadeHistogram,
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.facade.0.record(secs);
    }

    fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Request latency of one sink: counts per bucket of [`LATENCY_BUCKETS`] (the last is
/// `+Inf`), not cumulative, and the sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencyHistogram {
    /// Requests per bucket.
    pub counts: Vec<u64>,
    /// Sum of all latencies in seconds.
    pub sum_seconds: f64,
}

/// Live counters of one sink.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) circuit_open: AtomicBool,
    /// Requests (batches) in flight now.
    pub(crate) in_flight: AtomicU64,
    /// Requests allowed in flight now (fixed, or the adaptive limit).
    pub(crate) concurrency_limit: AtomicU64,
    /// Timestamp (ms since the epoch) of the oldest event being delivered; 0 when idle.
    pub(crate) oldest_pending_ms: AtomicI64,
    pub(crate) latency: Histogram,
}

/// Live counters of one notifier.
#[derive(Debug)]
pub(crate) struct NotifierCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    /// Notifications merged into a waiting one of their group.
    pub(crate) coalesced: AtomicU64,
    pub(crate) queue: Arc<crate::notify::NotifierQueue>,
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SinkMetrics {
    /// Events the destination accepted.
    pub delivered: u64,
    /// Event deliveries retried.
    pub retried: u64,
    /// Events sent to the dead-letter store.
    pub dead_lettered: u64,
    /// Batches sent (attempts included).
    pub batches: u64,
    /// Encoded bytes sent (attempts included, before compression).
    pub bytes: u64,
    /// Events in the journal this sink has not finished (its queue depth).
    pub queued: u64,
    /// Age in seconds of the oldest event being delivered (0 when idle).
    pub oldest_undelivered_age_seconds: f64,
    /// Whether the circuit breaker is open (the endpoint is being probed).
    pub circuit_open: bool,
    /// Requests (batches) in flight now.
    pub requests_in_flight: u64,
    /// Requests allowed in flight now (`request.concurrency`, or the adaptive limit).
    pub concurrency_limit: u64,
    /// Request latency.
    pub latency: LatencyHistogram,
}

/// A notifier's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifierMetrics {
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts that could not be delivered.
    pub failed: u64,
    /// Retries made.
    pub retried: u64,
    /// Notifications not sent on their own: merged into a notification of the same alert
    /// group still waiting for the channel (the channel was slower than the group).
    pub coalesced: u64,
    /// Notifications waiting for the channel now.
    pub queued: u64,
}

/// The journal at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JournalMetrics {
    /// Bytes on disk (in memory with `QueueStorage::Memory`).
    pub bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// Records retained.
    pub records: u64,
    /// Events refused because the journal was full (`when_full = "drop_newest"`).
    pub dropped_full: u64,
    /// Group commits (fsyncs) since start.
    pub fsyncs: u64,
    /// Whether appends are waiting for space right now (`when_full = "block"`: intake is
    /// being pushed back until the sinks catch up).
    pub appends_blocked: bool,
}

impl From<vowguard_journal::JournalStats> for JournalMetrics {
    fn from(stats: vowguard_journal::JournalStats) -> Self {
        Self {
            bytes: stats.bytes,
            max_bytes: stats.max_bytes,
            records: stats.records,
            dropped_full: stats.dropped_full,
            fsyncs: stats.fsyncs,
            appends_blocked: stats.appends_blocked,
        }
    }
}

/// The intake journal and the enrichment stage behind it (present when enrichers are
/// configured).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntakeMetrics {
    /// Events made durable in the intake journal (their sources were acknowledged then).
    pub journaled: u64,
    /// Events durable in the intake journal and not yet enriched into the events journal:
    /// the enrichment stage's lag.
    pub awaiting_enrichment: u64,
    /// The intake journal (`<data_dir>/intake`). Its `dropped_full` counts the events
    /// refused at intake (`when_full = "drop_newest"`).
    pub journal: JournalMetrics,
}

/// What the dead-letter store holds and how its writes went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetterMetrics {
    /// Bytes of every dead-letter file.
    pub bytes: u64,
    /// Letters stored (replayed ones included until their file is deleted).
    pub letters: u64,
    /// Dead-letter files (the active one included).
    pub files: u64,
    /// Writes made (each is one write and one `fdatasync` for every letter of a batch).
    pub writes: u64,
    /// Writes that failed (each is retried; the events stay in the journal meanwhile).
    pub write_failures: u64,
}

/// What an append-only log file (with its rotated files) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogFileMetrics {
    /// Bytes of every file.
    pub bytes: u64,
    /// Records in every file.
    pub records: u64,
    /// Files (the active one included).
    pub files: u64,
}

impl From<vowguard_core::JsonlUsage> for LogFileMetrics {
    fn from(u: vowguard_core::JsonlUsage) -> Self {
        Self {
            bytes: u.bytes,
            records: u.records,
            files: u.files,
        }
    }
}

/// Every counter of the pipeline at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Events submitted.
    pub events_in: u64,
    /// Events made durable in the events journal (enriched, when enrichers are configured).
    pub events_journaled: u64,
    /// Events with at least one enricher that did not contribute.
    pub events_not_fully_enriched: u64,
    /// Alerts routed to notifiers.
    pub alerts_routed: u64,
    /// Events durable in the journal that the alert path has not yet routed and handed
    /// over (its lag behind intake); `None` without routing.
    pub alert_path_lag: Option<u64>,
    /// The events journal (`<data_dir>/journal`). Behind an intake journal it never
    /// refuses (it waits for space): refusals are counted in `intake.journal`.
    pub journal: JournalMetrics,
    /// The intake journal and the enrichment lag; `None` without enrichers (events go
    /// straight to the events journal).
    pub intake: Option<IntakeMetrics>,
    /// The dead-letter store (`dead_letters*.jsonl`).
    pub dead_letters: DeadLetterMetrics,
    /// The notification log (`notifications*.jsonl`).
    pub notification_log: LogFileMetrics,
    /// Per sink id.
    pub sinks: BTreeMap<String, SinkMetrics>,
    /// Per notifier id.
    pub notifiers: BTreeMap<String, NotifierMetrics>,
    /// Per enricher id.
    pub enrichers: BTreeMap<String, crate::enrich::EnricherMetrics>,
}

impl MetricsSnapshot {
    /// Events refused because a journal was full (`when_full = "drop_newest"`), at intake
    /// or (without enrichers) at the events journal.
    pub fn events_dropped_full(&self) -> u64 {
        self.journal.dropped_full + self.intake.as_ref().map_or(0, |i| i.journal.dropped_full)
    }
}

impl SinkCounters {
    /// Counters of the sink `id`, its latency histogram registered with the `metrics`
    /// recorder installed now (the global one, or none).
    pub(crate) fn new(id: &str) -> Self {
        let counters = Self::default();
        Self {
            latency: Histogram {
                facade: FacadeHistogram(metrics::histogram!(
                    SINK_REQUEST_DURATION,
                    "sink" => id.to_owned()
                )),
                ..counters.latency
            },
            ..counters
        }
    }

    pub(crate) fn snapshot(&self, queued: u64) -> SinkMetrics {
        let oldest = self.oldest_pending_ms.load(Ordering::Relaxed);
        let age = if oldest == 0 {
            0.0
        } else {
            ((chrono::Utc::now().timestamp_millis() - oldest).max(0)) as f64 / 1e3
        };
        SinkMetrics {
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            queued,
            oldest_undelivered_age_seconds: age,
            circuit_open: self.circuit_open.load(Ordering::Relaxed),
            requests_in_flight: self.in_flight.load(Ordering::Relaxed),
            concurrency_limit: self.concurrency_limit.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

impl NotifierCounters {
    pub(crate) fn snapshot(&self) -> NotifierMetrics {
        NotifierMetrics {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            queued: self.queue.len() as u64,
        }
    }
}

/// Every metric the pipeline emits through the `metrics` facade: name, kind
/// (`counter`, `gauge` or `histogram`) and help text.
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "vowguard_events_received_total",
        "counter",
        "Events submitted to the pipeline.",
    ),
    (
        "vowguard_events_journaled_total",
        "counter",
        "Events made durable in the journal (enriched, when enrichers are configured).",
    ),
    (
        "vowguard_events_dropped_total",
        "counter",
        "Events refused because the journal was full.",
    ),
    (
        "vowguard_intake_journaled_total",
        "counter",
        "Events made durable in the intake journal, raw, before enrichment (0 without enrichers).",
    ),
    (
        "vowguard_enrichment_lag_events",
        "gauge",
        "Events durable in the intake journal and not yet enriched into the journal.",
    ),
    (
        "vowguard_intake_journal_bytes",
        "gauge",
        "Bytes of the intake journal on disk.",
    ),
    (
        "vowguard_intake_journal_max_bytes",
        "gauge",
        "Configured bound of the intake journal (0 without enrichers: no intake journal).",
    ),
    (
        "vowguard_intake_journal_records",
        "gauge",
        "Records retained in the intake journal.",
    ),
    (
        "vowguard_events_not_fully_enriched_total",
        "counter",
        "Events an enricher did not contribute to.",
    ),
    (
        "vowguard_alerts_routed_total",
        "counter",
        "Alerts handed to notifiers.",
    ),
    (
        "vowguard_alert_path_lag_events",
        "gauge",
        "Events durable in the journal and not yet routed by the alert path (0 without routing).",
    ),
    (
        "vowguard_journal_bytes",
        "gauge",
        "Bytes of the journal on disk.",
    ),
    (
        "vowguard_journal_max_bytes",
        "gauge",
        "Configured bound of the journal.",
    ),
    (
        "vowguard_journal_records",
        "gauge",
        "Records retained in the journal.",
    ),
    (
        "vowguard_dead_letter_bytes",
        "gauge",
        "Bytes of the dead-letter files (never deleted before they are replayed).",
    ),
    (
        "vowguard_dead_letter_records",
        "gauge",
        "Dead letters stored.",
    ),
    (
        "vowguard_dead_letter_files",
        "gauge",
        "Dead-letter files (the active one and rotated ones).",
    ),
    (
        "vowguard_dead_letter_write_failures_total",
        "counter",
        "Dead-letter writes that failed and were retried (the events stayed in the journal).",
    ),
    (
        "vowguard_notification_log_bytes",
        "gauge",
        "Bytes of the notification log files.",
    ),
    (
        "vowguard_notification_log_records",
        "gauge",
        "Records in the notification log files.",
    ),
    (
        "vowguard_notification_log_files",
        "gauge",
        "Notification log files (the active one and rotated ones).",
    ),
    (
        "vowguard_sink_delivered_total",
        "counter",
        "Events delivered per sink.",
    ),
    (
        "vowguard_sink_retried_total",
        "counter",
        "Event deliveries retried per sink.",
    ),
    (
        "vowguard_sink_dead_lettered_total",
        "counter",
        "Events dead-lettered per sink.",
    ),
    (
        "vowguard_sink_queue_depth",
        "gauge",
        "Journaled events a sink has not finished.",
    ),
    (
        "vowguard_sink_oldest_undelivered_age_seconds",
        "gauge",
        "Age of the oldest event being delivered.",
    ),
    (
        "vowguard_sink_circuit_open",
        "gauge",
        "1 while the sink's circuit breaker is open.",
    ),
    (
        "vowguard_sink_requests_in_flight",
        "gauge",
        "Batches a sink has in flight now.",
    ),
    (
        "vowguard_sink_concurrency_limit",
        "gauge",
        "Batches a sink may have in flight (request.concurrency, or the adaptive limit now).",
    ),
    (
        SINK_REQUEST_DURATION,
        "histogram",
        "Duration of requests to each sink.",
    ),
    (
        "vowguard_enricher_calls_total",
        "counter",
        "Calls made to each enricher (probes included).",
    ),
    (
        "vowguard_enricher_timeouts_total",
        "counter",
        "Enricher calls that ran out of time.",
    ),
    (
        "vowguard_enricher_errors_total",
        "counter",
        "Enricher calls that returned an error.",
    ),
    (
        "vowguard_enricher_skipped_total",
        "counter",
        "Events that skipped an enricher because its circuit was open.",
    ),
    (
        "vowguard_enricher_released_total",
        "counter",
        "Enricher calls released unanswered because the circuit opened while they waited.",
    ),
    (
        "vowguard_enricher_circuit_opened_total",
        "counter",
        "Times an enricher's circuit opened.",
    ),
    (
        "vowguard_enricher_circuit_open",
        "gauge",
        "1 while an enricher is skipped (circuit open or half-open).",
    ),
    (
        "vowguard_notifier_sent_total",
        "counter",
        "Alerts delivered per notifier.",
    ),
    (
        "vowguard_notifier_failed_total",
        "counter",
        "Alerts not delivered per notifier.",
    ),
    (
        "vowguard_notifier_retried_total",
        "counter",
        "Alert retries per notifier.",
    ),
    (
        "vowguard_notifier_coalesced_total",
        "counter",
        "Notifications merged into a waiting notification of the same alert group (the channel was slower than the group).",
    ),
    (
        "vowguard_notifier_queued",
        "gauge",
        "Notifications waiting for the channel per notifier.",
    ),
];

/// Describes every metric of [`METRICS`] (help text, and seconds as the latency
/// histogram's unit) to the recorder installed now.
pub fn describe_metrics() {
    for &(name, kind, help) in METRICS {
        match kind {
            "counter" => metrics::describe_counter!(name, help),
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
        }
    }
}

impl MetricsSnapshot {
    /// Emits every counter and gauge of this snapshot through the `metrics` facade (to the
    /// recorder installed now): counters as absolute values, gauges set, with the names of
    /// [`METRICS`] and the labels `sink`, `notifier` and `enricher`. The latency histogram
    /// is not here: its samples are recorded as requests complete.
    pub fn emit(&self) {
        use metrics::{counter, gauge};
        counter!("vowguard_events_received_total").absolute(self.events_in);
        counter!("vowguard_events_journaled_total").absolute(self.events_journaled);
        counter!("vowguard_events_dropped_total").absolute(self.events_dropped_full());
        let intake = self.intake.clone().unwrap_or_default();
        counter!("vowguard_intake_journaled_total").absolute(intake.journaled);
        gauge!("vowguard_enrichment_lag_events").set(intake.awaiting_enrichment as f64);
        gauge!("vowguard_intake_journal_bytes").set(intake.journal.bytes as f64);
        gauge!("vowguard_intake_journal_max_bytes").set(intake.journal.max_bytes as f64);
        gauge!("vowguard_intake_journal_records").set(intake.journal.records as f64);
        counter!("vowguard_events_not_fully_enriched_total")
            .absolute(self.events_not_fully_enriched);
        counter!("vowguard_alerts_routed_total").absolute(self.alerts_routed);
        gauge!("vowguard_alert_path_lag_events").set(self.alert_path_lag.unwrap_or(0) as f64);
        gauge!("vowguard_journal_bytes").set(self.journal.bytes as f64);
        gauge!("vowguard_journal_max_bytes").set(self.journal.max_bytes as f64);
        gauge!("vowguard_journal_records").set(self.journal.records as f64);
        gauge!("vowguard_dead_letter_bytes").set(self.dead_letters.bytes as f64);
        gauge!("vowguard_dead_letter_records").set(self.dead_letters.letters as f64);
        gauge!("vowguard_dead_letter_files").set(self.dead_letters.files as f64);
        counter!("vowguard_dead_letter_write_failures_total")
            .absolute(self.dead_letters.write_failures);
        gauge!("vowguard_notification_log_bytes").set(self.notification_log.bytes as f64);
        gauge!("vowguard_notification_log_records").set(self.notification_log.records as f64);
        gauge!("vowguard_notification_log_files").set(self.notification_log.files as f64);
        for (id, s) in &self.sinks {
            let sink = [("sink", id.clone())];
            counter!("vowguard_sink_delivered_total", &sink).absolute(s.delivered);
            counter!("vowguard_sink_retried_total", &sink).absolute(s.retried);
            counter!("vowguard_sink_dead_lettered_total", &sink).absolute(s.dead_lettered);
            gauge!("vowguard_sink_queue_depth", &sink).set(s.queued as f64);
            gauge!("vowguard_sink_oldest_undelivered_age_seconds", &sink)
                .set(s.oldest_undelivered_age_seconds);
            gauge!("vowguard_sink_circuit_open", &sink).set(f64::from(u8::from(s.circuit_open)));
            gauge!("vowguard_sink_requests_in_flight", &sink).set(s.requests_in_flight as f64);
            gauge!("vowguard_sink_concurrency_limit", &sink).set(s.concurrency_limit as f64);
        }
        for (id, e) in &self.enrichers {
            e.emit(id);
        }
        for (id, n) in &self.notifiers {
            let notifier = [("notifier", id.clone())];
            counter!("vowguard_notifier_sent_total", &notifier).absolute(n.sent);
            counter!("vowguard_notifier_failed_total", &notifier).absolute(n.failed);
            counter!("vowguard_notifier_retried_total", &notifier).absolute(n.retried);
            counter!("vowguard_notifier_coalesced_total", &notifier).absolute(n.coalesced);
            gauge!("vowguard_notifier_queued", &notifier).set(n.queued as f64);
        }
    }
}

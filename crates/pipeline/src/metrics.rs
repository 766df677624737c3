//! Counters kept by the pipeline, per sink and per notifier.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds (seconds) of the delivery-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket latency histogram (Prometheus style: cumulative when rendered).
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
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
#[derive(Debug, Default)]
pub(crate) struct NotifierCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
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
}

/// The journal at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JournalMetrics {
    /// Bytes on disk.
    pub bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// Records retained.
    pub records: u64,
    /// Events refused because the journal was full (`when_full = "drop_newest"`).
    pub dropped_full: u64,
    /// Group commits (fsyncs) since start.
    pub fsyncs: u64,
}

impl From<vowguard_journal::JournalStats> for JournalMetrics {
    fn from(stats: vowguard_journal::JournalStats) -> Self {
        Self {
            bytes: stats.bytes,
            max_bytes: stats.max_bytes,
            records: stats.records,
            dropped_full: stats.dropped_full,
            fsyncs: stats.fsyncs,
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
        }
    }
}

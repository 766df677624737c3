//! Counters kept by the pipeline, per sink and per notifier.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Live counters of one sink.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) queued: AtomicU64,
}

/// Live counters of one notifier.
#[derive(Debug, Default)]
pub(crate) struct NotifierCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    /// Events waiting in this sink's queue.
    pub queued: u64,
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

/// Every counter of the pipeline at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Events submitted.
    pub events_in: u64,
    /// Events with at least one enricher that did not contribute.
    pub events_not_fully_enriched: u64,
    /// Alerts routed to notifiers.
    pub alerts_routed: u64,
    /// Per sink id.
    pub sinks: BTreeMap<String, SinkMetrics>,
    /// Per notifier id.
    pub notifiers: BTreeMap<String, NotifierMetrics>,
}

impl SinkCounters {
    pub(crate) fn snapshot(&self) -> SinkMetrics {
        SinkMetrics {
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
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

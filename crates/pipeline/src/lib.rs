//! The vowguard delivery pipeline.
//!
//! ```text
//! submit(event) -> intake journal (raw, group commit; the event is now durable:
//!                  `Submitted::durable`, the source is acknowledged)
//!               -> enrichment stage, reading the intake journal (concurrent, order kept,
//!                  per-enricher timeout and circuit breaker, overall budget)
//!               -> journal (enriched, group commit; then the intake position moves on)
//!               -> alert path: its own journal position -> routing -> notifier workers
//!                  (rate limit, shared retry) -> notification log
//!               -> one worker per sink, each at its own journal position: batch, encode,
//!                  send up to `request.concurrency` batches at once, retry / circuit
//!                  breaker / dead-letter, commit the position up to the lowest
//!                  unfinished batch
//! ```
//!
//! Intake never waits on a third party: an event is acknowledged once it is durable raw in
//! the intake journal (`<data_dir>/intake`), and enriched afterwards; each enriched event
//! is written to the events journal exactly once, even across a crash. Without enrichers
//! there is no intake journal: events go straight to the events journal.
//!
//! The journal (`vowguard-journal`, in `<data_dir>/journal`) is the queue between
//! enrichment and the sinks: every sink reads it at its own durable position, so a slow or
//! failing sink never delays the others (the journal's size bound, `max_journal_bytes`, is
//! the only back-pressure), and after a crash or restart every sink resumes where it
//! stopped (at-least-once). Enrichment results are persisted with the event, not
//! recomputed. Each submitted event also carries an acknowledgement ([`Delivery`]) that
//! completes once every sink has delivered or dead-lettered it.

//! # Traces
//!
//! Each event's way through the pipeline is visible as `tracing` spans, all with the
//! event id (`event_id`) and at DEBUG level under the target [`TRACE_TARGET`]:
//! `enrich` (with one `enricher` span per enricher), `journal`, `sink.send` (one per
//! batch and attempt, with one `sink.event` span per event in it) and `notify` (per alert
//! and channel). With the usual `info` filter they are disabled and cost one cached
//! callsite check each; enable them with a `vowguard::trace=debug` directive or hand
//! them to an OpenTelemetry layer (the runtime's `otlp` feature does).

mod ack;
mod alerts;
mod audit;
mod concurrency;
mod dead_letter;
mod enrich;
mod intake;
mod metrics;
mod notify;
mod pipeline;
mod queue;
mod response;
mod sink_worker;
#[cfg(test)]
mod tests;

pub use ack::{Delivery, DeliverySummary};
pub use audit::PipelineAudit;
pub use concurrency::{Concurrency, DEFAULT_CONCURRENCY, DEFAULT_MAX_CONCURRENCY, RequestOptions};
pub use dead_letter::{
    DEAD_LETTERS_FILE, DeadLetter, DeadLetterStorage, DeadLetterStore, MemoryDeadLetters,
    REPLAYED_FILE, ReplayedLetter, read_dead_letters, read_replayed,
};
pub use enrich::{EnricherBreakerOptions, EnricherMetrics, Enrichers};
pub use intake::DEFAULT_MAX_INTAKE_BYTES;
pub use metrics::{
    DeadLetterMetrics, IntakeMetrics, JournalMetrics, LATENCY_BUCKETS, LatencyHistogram,
    LogFileMetrics, METRICS, MetricsSnapshot, NotifierMetrics, PUBLISH_INTERVAL,
    SINK_REQUEST_DURATION, SinkMetrics, describe_metrics,
};
pub use notify::{
    MemoryNotificationLog, NOTIFICATIONS_FILE, NotificationLog, NotificationRecord,
    NotificationStorage,
};
pub use pipeline::{
    ABORT_GRACE, BreakerOptions, DEFAULT_INTAKE_MAX_BYTES, Durable, EnricherSpec, NotifierSpec,
    Pipeline, PipelineOptions, PipelineSpec, SinkSpec, Submitted, event_weight,
};
pub use queue::{EventQueue, QueueStorage};
pub use response::{ResponseHook, RoutingWithResponse};
/// Re-exported: the rate limiter the dispatcher uses lives in core.
pub use vowguard_core::TokenBucket;
pub use vowguard_journal::WhenFull;

/// The `tracing` target of the per-event spans (see [Traces](crate#traces)).
pub const TRACE_TARGET: &str = "vowguard::trace";

//! The vowguard delivery pipeline.
//!
//! ```text
//! submit(event) -> enrichment (concurrent, per-enricher timeout, overall budget)
//!               -> routing (AlertRouting) -> notifier dispatchers (rate limit, retry)
//!               -> fan-out: one worker per sink (own queue, batch, encode, send, retry,
//!                  dead-letter) -> per-event acknowledgement when every sink is done
//! ```
//!
//! Every sink has its own queue and worker, so a slow or failing sink never delays the
//! others (until its queue is full, which pushes back on intake). Each submitted event
//! carries an acknowledgement ([`Delivery`]) that completes once every sink has delivered
//! or dead-lettered it; the durable journal builds on that to release records.

mod ack;
mod dead_letter;
mod enrich;
mod metrics;
mod notify;
mod pipeline;
mod sink_worker;

pub use ack::{Delivery, DeliverySummary};
pub use dead_letter::{DeadLetter, DeadLetterStore, read_dead_letters};
pub use metrics::{MetricsSnapshot, NotifierMetrics, SinkMetrics};
pub use notify::{NotificationLog, NotificationRecord};
pub use pipeline::{EnricherSpec, NotifierSpec, Pipeline, PipelineOptions, PipelineSpec, SinkSpec};
/// Re-exported: the rate limiter the dispatcher uses lives in core.
pub use vowguard_core::TokenBucket;

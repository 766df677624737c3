//! The queue between intake and delivery, behind one trait so a deployment picks its
//! backend: `local` (the journal of this process, the default) or `jetstream` (a NATS
//! JetStream stream shared by several replicas, in `vowguard-jetstream`).
//!
//! Intake (HTTP, webhooks, sources) hands an accepted event to [`EventQueue::enqueue`] and
//! acknowledges its client only once that returns `Ok`: the event is then durable in the
//! backend and reaches every sink at least once. An `Unavailable` error with a
//! `retry_after` means the backend cannot take events right now (HTTP 503 with
//! `Retry-After`).

use async_trait::async_trait;
use vowguard_core::{Error, Event};

use crate::pipeline::Pipeline;

/// Where accepted events wait for the sinks and the alert path.
#[async_trait]
pub trait EventQueue: Send + Sync + std::fmt::Debug {
    /// The backend's name as written in `[queue] type = "..."`.
    fn backend(&self) -> &'static str;

    /// Stores `event` durably; `Ok` means the source may be acknowledged.
    async fn enqueue(&self, event: Event) -> Result<(), Error>;
}

/// The local journal: an event is queued once it is fsynced in the journal that
/// acknowledges intake (see [`crate::Submitted::durable`]).
#[async_trait]
impl EventQueue for Pipeline {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn enqueue(&self, event: Event) -> Result<(), Error> {
        self.submit(event).await?.durable.await.map(|_| ())
    }
}

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

/// What holds a pipeline's accepted events until every sink and the alert path are done
/// with them ([`PipelineSpec::queue`](crate::PipelineSpec::queue)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueStorage {
    /// The durable journal in `<data_dir>/journal` (and `<data_dir>/intake` with
    /// enrichers): an event is acknowledged once fsynced and reaches every sink at least
    /// once, across crashes and restarts. The default.
    #[default]
    Journal,
    /// Memory only, **at-most-once**: an event is "durable" ([`crate::Submitted::durable`])
    /// once it is in this process's memory, and whatever the sinks have not finished when
    /// the pipeline stops (a shutdown deadline, a crash) is lost. Nothing is written to
    /// `<data_dir>/journal` or `<data_dir>/intake`, nor the alert path's state. Memory is
    /// bounded by `max_journal_bytes` (and `max_intake_journal_bytes` with enrichers),
    /// counted as the events' size in memory; when it is full, `when_full` applies as on
    /// disk (`block`: `submit` waits until the sinks catch up; `drop_newest`: refused).
    /// For tests and for hosts that accept losing queued events; dead letters and the
    /// notification log are still files in `data_dir` unless
    /// [`PipelineSpec::dead_letters`](crate::PipelineSpec::dead_letters) and
    /// [`PipelineSpec::notification_log`](crate::PipelineSpec::notification_log) say
    /// otherwise.
    ///
    /// A pipeline that writes nothing at all (no `data_dir` needed):
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use async_trait::async_trait;
    /// # use vowguard_core::{EncodedEvent, Error, Event, EventOutcome, Severity, Sink};
    /// use vowguard_pipeline::{
    ///     MemoryDeadLetters, MemoryNotificationLog, Pipeline, PipelineSpec, QueueStorage,
    ///     SinkSpec,
    /// };
    ///
    /// /// The host's own destination: here, a list.
    /// #[derive(Debug, Default)]
    /// struct Collect(Mutex<Vec<String>>);
    ///
    /// #[async_trait]
    /// impl Sink for Collect {
    ///     fn kind(&self) -> &'static str { "collect" }
    ///     fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
    ///         Ok(event.action.clone().into_bytes())
    ///     }
    ///     async fn healthcheck(&self) -> Result<(), Error> { Ok(()) }
    ///     async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
    ///         let mut got = self.0.lock().unwrap();
    ///         got.extend(batch.iter().map(|e| String::from_utf8_lossy(&e.bytes).into_owned()));
    ///         batch.iter().map(|_| EventOutcome::Delivered).collect()
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sink = Arc::new(Collect::default());
    /// let pipeline = Pipeline::start(PipelineSpec {
    ///     sinks: vec![SinkSpec::new("collect", sink.clone())],
    ///     queue: QueueStorage::Memory,
    ///     dead_letters: Some(Arc::new(MemoryDeadLetters::new(10_000))),
    ///     notification_log: Some(Arc::new(MemoryNotificationLog::new(1_000))),
    ///     ..PipelineSpec::default()
    /// })
    /// .await?;
    /// let submitted = pipeline
    ///     .submit(Event::new(vowguard_core::Category::Authentication, "login", Severity::High))
    ///     .await?;
    /// submitted.durable.await?; // in memory: lost if the process stops before delivery
    /// submitted.delivery.await;
    /// pipeline.shutdown().await;
    /// assert_eq!(*sink.0.lock().unwrap(), ["login"]);
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    Memory,
}

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

//! Wiring: specs in, workers out, [`Pipeline::submit`] and [`Pipeline::shutdown`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vowguard_core::{
    AlertRouting, BatchLimits, Enricher, Error, ErrorKind, Event, Notifier, RateLimit, RetryPolicy,
    Rotation, Sink,
};
use vowguard_journal::{Journal, JournalConfig, WhenFull};

use crate::ack::{AckRegistry, AckState, Delivery, IntakeAcks};
use crate::alerts::{AlertWorker, NotifierQueues};
use crate::audit::PipelineAudit;
use crate::concurrency::RequestOptions;
use crate::dead_letter::{DeadLetterStorage, DeadLetterStore};
use crate::enrich::{EnricherBreakerOptions, EnricherSlot, Enrichers};
use crate::intake::{EnrichmentStage, Intake, awaiting_enrichment};
use crate::metrics::{
    IntakeMetrics, JournalMetrics, MetricsSnapshot, NotifierCounters, SinkCounters,
};
use crate::notify::{NotificationLog, NotificationStorage, NotifierQueue, NotifierWorker};
use crate::queue::QueueStorage;
use crate::sink_worker::SinkWorker;

/// The journal reader name of a sink.
fn sink_reader(id: &str) -> String {
    format!("sink.{id}")
}

/// The journal reader name of the alert path.
const ALERTS_READER: &str = "alerts";

/// When a sink's circuit opens, and how it probes the endpoint before closing again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BreakerOptions {
    /// Consecutive attempts in which every event of the batch failed (retryably) before
    /// the circuit opens; 0 disables the breaker. While open, the batch waits (nothing is
    /// dead-lettered) and the endpoint is probed with the sink's healthcheck.
    pub failure_threshold: u32,
    /// First wait before a probe (`initial_cooldown = "1s"`; doubles after each failed probe).
    #[serde(with = "vowguard_core::duration")]
    pub initial_cooldown: Duration,
    /// Longest wait between probes (`max_cooldown = "1m"`).
    #[serde(with = "vowguard_core::duration")]
    pub max_cooldown: Duration,
}

impl BreakerOptions {
    /// These settings with [`failure_threshold`](Self::failure_threshold) set to `failure_threshold`.
    #[must_use]
    pub fn with_failure_threshold(mut self, failure_threshold: u32) -> Self {
        self.failure_threshold = failure_threshold;
        self
    }

    /// These settings with [`initial_cooldown`](Self::initial_cooldown) set to `initial_cooldown`.
    #[must_use]
    pub fn with_initial_cooldown(mut self, initial_cooldown: Duration) -> Self {
        self.initial_cooldown = initial_cooldown;
        self
    }

    /// These settings with [`max_cooldown`](Self::max_cooldown) set to `max_cooldown`.
    #[must_use]
    pub fn with_max_cooldown(mut self, max_cooldown: Duration) -> Self {
        self.max_cooldown = max_cooldown;
        self
    }
}

impl Default for BreakerOptions {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            initial_cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(60),
        }
    }
}

/// A sink with its id and delivery settings.
#[derive(Clone)]
pub struct SinkSpec {
    /// The component id (`[sinks.<id>]`).
    pub id: String,
    /// The sink.
    pub sink: Arc<dyn Sink>,
    /// Batch limits (the sink's own defaults unless configured).
    pub batch: BatchLimits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Circuit breaker.
    pub breaker: BreakerOptions,
    /// Requests in flight (`[sinks.<id>.request]`).
    pub request: RequestOptions,
}

impl SinkSpec {
    /// A spec with the sink's preferred batch limits and requests in flight, and the default
    /// retry and breaker.
    pub fn new(id: impl Into<String>, sink: Arc<dyn Sink>) -> Self {
        let batch = sink.batch_limits();
        let request = RequestOptions::for_sink(sink.as_ref());
        Self {
            id: id.into(),
            sink,
            batch,
            retry: RetryPolicy::default(),
            breaker: BreakerOptions::default(),
            request,
        }
    }
}

impl fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkSpec")
            .field("id", &self.id)
            .field("kind", &self.sink.kind())
            .field("batch", &self.batch)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("request", &self.request)
            .finish()
    }
}

/// A notifier with its id and dispatch settings.
#[derive(Clone)]
pub struct NotifierSpec {
    /// The component id (`[notifiers.<id>]`).
    pub id: String,
    /// The notifier.
    pub notifier: Arc<dyn Notifier>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Overrides the notifier's own documented rate limit.
    pub rate_limit: Option<RateLimit>,
}

impl NotifierSpec {
    /// A spec with the default retry policy and the notifier's own rate limit.
    pub fn new(id: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            id: id.into(),
            notifier,
            retry: RetryPolicy::default(),
            rate_limit: None,
        }
    }
}

impl fmt::Debug for NotifierSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierSpec")
            .field("id", &self.id)
            .field("kind", &self.notifier.kind())
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// An enricher with its id.
#[derive(Clone)]
pub struct EnricherSpec {
    /// The component id (`[enrichers.<id>]`).
    pub id: String,
    /// The enricher.
    pub enricher: Arc<dyn Enricher>,
}

impl fmt::Debug for EnricherSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnricherSpec")
            .field("id", &self.id)
            .field("kind", &self.enricher.kind())
            .finish()
    }
}

/// Default of [`PipelineOptions::intake_max_bytes`]: 4 MiB.
pub const DEFAULT_INTAKE_MAX_BYTES: usize = 4 << 20;

/// Tuning of the pipeline's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineOptions {
    /// Longest time enrichment may hold one event (each enricher also has its own timeout).
    pub enrichment_budget: Duration,
    /// Events enriched concurrently (order is preserved).
    pub enrichment_concurrency: usize,
    /// Events accepted by `submit` but not yet journaled before `submit` waits.
    pub intake_capacity: usize,
    /// Memory, in bytes, of the events accepted by `submit` and not yet journaled (the
    /// intake queue plus the group being written), estimated per event with
    /// [`event_weight`]: `submit` waits while the estimate is above this. A bound in bytes
    /// as well as in events, so a burst of large events cannot hold `intake_capacity`
    /// times the largest event. One event larger than the bound still passes, alone.
    /// Default 4 MiB (about 1 500 events of 600 bytes: more than one group commit).
    pub intake_max_bytes: usize,
    /// Upper bound of the intake journal on disk (`<data_dir>/intake`, raw events
    /// acknowledged to their sources and not yet enriched; used when enrichers are
    /// configured). `when_full` applies to it. Default 256 MiB.
    pub max_intake_journal_bytes: u64,
    /// Notifications each notifier may have waiting before routing waits. A notification
    /// of an alert group whose previous notification still waits is merged into it
    /// (counted in `NotifierMetrics::coalesced`) and takes no place, so a slow channel
    /// holds at most one waiting notification per group. Default 10 000.
    pub notifier_queue_capacity: usize,
    /// Upper bound of the journal on disk (`max_journal_bytes`).
    pub max_journal_bytes: u64,
    /// What happens when the journal is full.
    pub when_full: WhenFull,
    /// Size at which `dead_letters.jsonl` and `notifications.jsonl` are rotated into
    /// numbered files (`dead_letters.<n>.jsonl`, ...). Default 64 MiB.
    pub log_file_bytes: u64,
    /// Circuit breaker of every enricher: an enricher that keeps timing out is skipped
    /// (recorded in `enrichment.not_enriched`) instead of costing its timeout per event.
    pub enricher_breaker: EnricherBreakerOptions,
    /// Rotated notification-log files kept (the oldest is deleted beyond this). Dead
    /// letters are never deleted before they are replayed. Default 10.
    pub notification_log_max_files: usize,
}

impl PipelineOptions {
    /// These settings with [`enrichment_budget`](Self::enrichment_budget) set to `enrichment_budget`.
    #[must_use]
    pub fn with_enrichment_budget(mut self, enrichment_budget: Duration) -> Self {
        self.enrichment_budget = enrichment_budget;
        self
    }

    /// These settings with [`enrichment_concurrency`](Self::enrichment_concurrency) set to `enrichment_concurrency`.
    #[must_use]
    pub fn with_enrichment_concurrency(mut self, enrichment_concurrency: usize) -> Self {
        self.enrichment_concurrency = enrichment_concurrency;
        self
    }

    /// These settings with [`intake_capacity`](Self::intake_capacity) set to `intake_capacity`.
    #[must_use]
    pub fn with_intake_capacity(mut self, intake_capacity: usize) -> Self {
        self.intake_capacity = intake_capacity;
        self
    }

    /// These settings with [`max_intake_journal_bytes`](Self::max_intake_journal_bytes) set to `max_intake_journal_bytes`.
    #[must_use]
    pub fn with_max_intake_journal_bytes(mut self, max_intake_journal_bytes: u64) -> Self {
        self.max_intake_journal_bytes = max_intake_journal_bytes;
        self
    }

    /// These settings with [`notifier_queue_capacity`](Self::notifier_queue_capacity) set to `notifier_queue_capacity`.
    #[must_use]
    pub fn with_notifier_queue_capacity(mut self, notifier_queue_capacity: usize) -> Self {
        self.notifier_queue_capacity = notifier_queue_capacity;
        self
    }

    /// These settings with [`max_journal_bytes`](Self::max_journal_bytes) set to `max_journal_bytes`.
    #[must_use]
    pub fn with_max_journal_bytes(mut self, max_journal_bytes: u64) -> Self {
        self.max_journal_bytes = max_journal_bytes;
        self
    }

    /// These settings with [`when_full`](Self::when_full) set to `when_full`.
    #[must_use]
    pub fn with_when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// These settings with [`log_file_bytes`](Self::log_file_bytes) set to `log_file_bytes`.
    #[must_use]
    pub fn with_log_file_bytes(mut self, log_file_bytes: u64) -> Self {
        self.log_file_bytes = log_file_bytes;
        self
    }

    /// These settings with [`enricher_breaker`](Self::enricher_breaker) set to `enricher_breaker`.
    #[must_use]
    pub fn with_enricher_breaker(mut self, enricher_breaker: EnricherBreakerOptions) -> Self {
        self.enricher_breaker = enricher_breaker;
        self
    }

    /// These settings with [`notification_log_max_files`](Self::notification_log_max_files) set to `notification_log_max_files`.
    #[must_use]
    pub fn with_notification_log_max_files(mut self, notification_log_max_files: usize) -> Self {
        self.notification_log_max_files = notification_log_max_files;
        self
    }
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            enrichment_budget: Duration::from_secs(10),
            enrichment_concurrency: 64,
            intake_capacity: 4096,
            intake_max_bytes: DEFAULT_INTAKE_MAX_BYTES,
            max_intake_journal_bytes: crate::intake::DEFAULT_MAX_INTAKE_BYTES,
            notifier_queue_capacity: 10_000,
            max_journal_bytes: vowguard_journal::DEFAULT_MAX_BYTES,
            when_full: WhenFull::Block,
            log_file_bytes: vowguard_core::jsonl_log::DEFAULT_MAX_FILE_BYTES,
            enricher_breaker: EnricherBreakerOptions::default(),
            notification_log_max_files: crate::notify::DEFAULT_NOTIFICATION_FILES,
        }
    }
}

/// Everything a pipeline is built from.
#[derive(Debug, Default)]
pub struct PipelineSpec {
    /// Where the journal (`journal/`), dead letters and the notification log are written.
    pub data_dir: PathBuf,
    /// Destinations of every event.
    pub sinks: Vec<SinkSpec>,
    /// Context providers.
    pub enrichers: Vec<EnricherSpec>,
    /// Alert channels.
    pub notifiers: Vec<NotifierSpec>,
    /// Decides which alerts an event raises.
    pub router: Option<Arc<dyn AlertRouting>>,
    /// Stage tuning.
    pub options: PipelineOptions,
    /// Where dead letters go; `None`: [`DeadLetterStore`] in `data_dir` (rotated at
    /// `options.log_file_bytes`). A host's own must keep the durability contract of
    /// [`DeadLetterStorage`].
    pub dead_letters: Option<Arc<dyn DeadLetterStorage>>,
    /// Where notification results go; `None`: [`NotificationLog`] in `data_dir`.
    pub notification_log: Option<Arc<dyn NotificationStorage>>,
    /// What holds accepted events until the sinks are done: the durable journal (default)
    /// or memory only (at-most-once, see [`QueueStorage::Memory`]).
    pub queue: QueueStorage,
}

/// An accepted event waiting to be journaled, with the promises made to its submitter.
///
/// The event is boxed in its `Arc` here, once: the journal's tail and every reader share
/// it, and the intake channel moves a pointer instead of the whole event. A submission
/// nobody awaits ([`Pipeline::submit_unawaited`]) carries no promises at all.
struct Submission {
    event: Arc<Event>,
    promises: Option<Promises>,
    /// Its share of [`PipelineOptions::intake_max_bytes`], given back once its group is
    /// journaled (or refused).
    memory: OwnedSemaphorePermit,
}

/// What the submitter of one event awaits.
struct Promises {
    ack: AckState,
    durable: oneshot::Sender<Result<u64, Error>>,
}

/// What [`Pipeline::submit`] hands back.
#[derive(Debug)]
pub struct Submitted {
    /// Resolves once the event is durable (fsynced) in the journal that acknowledges
    /// intake, with its sequence number there, or with the reason it was not stored
    /// (journal full with `drop_newest`, disk error). Sources acknowledge their senders
    /// only after this.
    ///
    /// With enrichers configured that journal is the intake journal
    /// (`<data_dir>/intake`): the event is stored raw, before enrichment, so this never
    /// waits for an enricher; it is enriched afterwards and then moved to the events
    /// journal, across restarts if need be. Without enrichers it is the events journal
    /// (`<data_dir>/journal`) itself. Either way, once this resolves the event reaches
    /// every sink (at-least-once) even if the process crashes.
    pub durable: Durable,
    /// Resolves once every sink has delivered or dead-lettered the event.
    pub delivery: Delivery,
}

/// Resolves once an event is durable: in the intake journal when enrichers are configured,
/// in the events journal otherwise (see [`Submitted::durable`]).
#[derive(Debug)]
pub struct Durable(oneshot::Receiver<Result<u64, Error>>);

impl std::future::Future for Durable {
    type Output = Result<u64, Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(Error::unavailable(
                    "the pipeline stopped before storing the event",
                ))
            })
        })
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    events_in: AtomicU64,
    pub(crate) journaled: AtomicU64,
    intake_journaled: AtomicU64,
    pub(crate) not_fully_enriched: AtomicU64,
    alerts_routed: Arc<AtomicU64>,
    /// The next journal sequence number the alert path routes (`None`: no routing).
    alert_position: Option<Arc<AtomicU64>>,
    sinks: BTreeMap<String, Arc<SinkCounters>>,
    notifiers: BTreeMap<String, Arc<NotifierCounters>>,
    pub(crate) enrichers: Arc<[EnricherSlot]>,
    sink_count: usize,
    /// The events journal (`<data_dir>/journal`): what sinks and the alert path read.
    pub(crate) journal: Journal,
    /// The intake journal (`<data_dir>/intake`), when enrichers are configured.
    pub(crate) intake: Option<Journal>,
    dead_letters: Arc<dyn DeadLetterStorage>,
    notifications: Arc<dyn NotificationStorage>,
    audit: Option<PipelineAudit>,
}

/// The running pipeline. Submit events with [`Pipeline::submit`]; [`Pipeline::shutdown`]
/// stops intake and waits until every journaled event is delivered or dead-lettered and
/// every alert dispatched; [`Pipeline::shutdown_within`] gives up waiting after a deadline
/// (what is left stays in the journal for the next start).
#[derive(Debug)]
pub struct Pipeline {
    intake: mpsc::Sender<Submission>,
    /// [`PipelineOptions::intake_max_bytes`], in bytes, shared by the submissions not
    /// yet journaled.
    intake_memory: Arc<Semaphore>,
    /// The largest share one submission takes (the whole bound).
    intake_max_bytes: u32,
    pub(crate) shared: Arc<Shared>,
    abort: watch::Sender<bool>,
    draining: watch::Sender<bool>,
    stage: JoinHandle<()>,
    enrichment: Option<Enrichment>,
    readers: Vec<JoinHandle<()>>,
    notifier_workers: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Opens the journal in `<data_dir>/journal` (recovering what an earlier run left) and,
    /// when enrichers are configured, the intake journal in `<data_dir>/intake`, and starts
    /// the workers. Each sink resumes at its own last committed position; raw events an
    /// earlier run acknowledged but did not enrich are enriched now (without enrichers
    /// configured, they are moved to the events journal before this returns).
    pub async fn start(spec: PipelineSpec) -> Result<Self, Error> {
        Self::start_with_audit(spec, None).await
    }

    /// Like [`Pipeline::start`], appending what happens to `audit`: events accepted
    /// (durable in the audit log before the source is told they are stored), delivery
    /// outcomes, dead letters, alerts routed and notification results.
    pub async fn start_with_audit(
        spec: PipelineSpec,
        audit: Option<PipelineAudit>,
    ) -> Result<Self, Error> {
        let options = spec.options;
        let with_intake = !spec.enrichers.is_empty();
        let dead_letters: Arc<dyn DeadLetterStorage> = match spec.dead_letters {
            Some(storage) => storage,
            None => Arc::new(DeadLetterStore::open_with(
                &spec.data_dir,
                options.log_file_bytes,
            )?),
        };
        let notifications: Arc<dyn NotificationStorage> = match spec.notification_log {
            Some(storage) => storage,
            None => Arc::new(NotificationLog::open_with(
                &spec.data_dir,
                Rotation {
                    max_file_bytes: options.log_file_bytes,
                    max_files: Some(options.notification_log_max_files),
                },
            )?),
        };
        // Behind the intake journal, every event here is already acknowledged: the
        // enrichment stage waits for space, and `when_full` applies at intake.
        let when_full = if with_intake {
            WhenFull::Block
        } else {
            options.when_full
        };
        let journal_config = JournalConfig::new(spec.data_dir.join("journal"))
            .with_max_bytes(options.max_journal_bytes)
            .with_when_full(when_full);
        let in_memory = spec.queue == QueueStorage::Memory;
        let journal = if in_memory {
            tracing::info!(
                max_bytes = options.max_journal_bytes,
                "queue in memory (at-most-once): events not delivered when the pipeline stops are lost"
            );
            Journal::in_memory(journal_config)
        } else {
            let (journal, recovery) = Journal::open(journal_config).await?;
            if recovery.records > 0 || recovery.torn_records_dropped > 0 {
                tracing::info!(
                    records = recovery.records,
                    torn_records_dropped = recovery.torn_records_dropped,
                    "journal recovered; every sink resumes where it stopped"
                );
            }
            journal
        };
        let acks = Arc::new(AckRegistry::new(journal.stats().next_seq));
        let intake = if !in_memory {
            Intake::open(&spec.data_dir, &options, &journal, with_intake).await?
        } else if with_intake {
            Some(Intake::in_memory(&options, &journal)?)
        } else {
            None
        };
        let (abort, abort_rx) = watch::channel(false);
        let (draining, draining_rx) = watch::channel(false);

        // Readers of sinks (or the alert path) no longer configured would pin the journal.
        let mut wanted: Vec<String> = spec.sinks.iter().map(|s| sink_reader(&s.id)).collect();
        if spec.router.is_some() {
            wanted.push(ALERTS_READER.to_owned());
        }
        for reader in journal.stats().readers {
            if !wanted.contains(&reader.name) {
                tracing::warn!(reader = %reader.name, lag = reader.lag, "forgetting the journal position of a component no longer configured");
                journal.remove_reader(&reader.name)?;
            }
        }

        let mut readers = Vec::new();
        let mut sink_counters = BTreeMap::new();
        for sink in spec.sinks {
            if sink_counters.contains_key(&sink.id) {
                return Err(Error::config(format!("duplicate sink id `{}`", sink.id)));
            }
            sink.request.validate(&sink.id)?;
            let counters = Arc::new(SinkCounters::new(&sink.id));
            sink_counters.insert(sink.id.clone(), counters.clone());
            let worker = SinkWorker {
                reader: journal.reader(&sink_reader(&sink.id))?,
                spec: sink,
                acks: acks.clone(),
                dead_letters: dead_letters.clone(),
                counters,
                abort: abort_rx.clone(),
                audit: audit.clone(),
            };
            readers.push(tokio::spawn(worker.run()));
        }

        let mut notifier_queues = HashMap::new();
        let (dispatched_tx, dispatched_rx) = mpsc::unbounded_channel();
        let mut notifier_workers = Vec::new();
        let mut notifier_counters = BTreeMap::new();
        for notifier in spec.notifiers {
            if notifier_counters.contains_key(&notifier.id) {
                return Err(Error::config(format!(
                    "duplicate notifier id `{}`",
                    notifier.id
                )));
            }
            let queue = Arc::new(NotifierQueue::new(options.notifier_queue_capacity));
            let counters = Arc::new(NotifierCounters {
                sent: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                retried: AtomicU64::new(0),
                coalesced: AtomicU64::new(0),
                queue: queue.clone(),
            });
            notifier_counters.insert(notifier.id.clone(), counters.clone());
            notifier_queues.insert(notifier.id.clone(), counters.clone());
            let worker = NotifierWorker {
                spec: notifier,
                queue,
                done: dispatched_tx.clone(),
                log: notifications.clone(),
                counters,
                abort: abort_rx.clone(),
                audit: audit.clone(),
            };
            notifier_workers.push(tokio::spawn(worker.run()));
        }
        // Closed when dropped: without a router, the notifier workers finish at once.
        let notifier_queues = NotifierQueues(notifier_queues);
        let alerts_routed = Arc::new(AtomicU64::new(0));
        let mut alert_position = None;
        if let Some(router) = spec.router {
            let reader = journal.reader(ALERTS_READER)?;
            let position = Arc::new(AtomicU64::new(reader.position()));
            alert_position = Some(position.clone());
            let worker = AlertWorker {
                reader,
                position,
                router,
                notifiers: notifier_queues,
                dispatched: dispatched_rx,
                routed: alerts_routed.clone(),
                state: (!in_memory)
                    .then(|| vowguard_core::SnapshotFile::in_data_dir(&spec.data_dir, "alerts")),
                abort: abort_rx,
                draining: draining_rx,
                audit: audit.clone(),
            };
            readers.push(tokio::spawn(worker.run()));
        }

        let enrichers = Enrichers::new(spec.enrichers, &options)?.slots;
        let shared = Arc::new(Shared {
            events_in: AtomicU64::new(0),
            journaled: AtomicU64::new(0),
            intake_journaled: AtomicU64::new(0),
            not_fully_enriched: AtomicU64::new(0),
            alerts_routed,
            alert_position,
            sink_count: sink_counters.len(),
            sinks: sink_counters,
            notifiers: notifier_counters,
            enrichers: enrichers.clone(),
            journal,
            intake: intake
                .as_ref()
                .filter(|_| with_intake)
                .map(|(i, _)| i.journal.clone()),
            dead_letters,
            notifications,
            audit,
        });
        let (target, enrichment) = match intake {
            Some((intake, reader)) if with_intake => {
                let intake_acks = Arc::new(IntakeAcks::new(intake.journal.stats().next_seq));
                let (drain, drain_rx) = watch::channel(None);
                let stage = EnrichmentStage {
                    reader,
                    pairing: intake.pairing,
                    shared: shared.clone(),
                    enrichers,
                    budget: options.enrichment_budget,
                    concurrency: options.enrichment_concurrency.max(1),
                    acks: acks.clone(),
                    intake_acks: intake_acks.clone(),
                    drain: drain_rx,
                };
                let task = tokio::spawn(stage.run());
                (
                    Target::Intake {
                        journal: intake.journal,
                        acks: intake_acks,
                    },
                    Some(Enrichment { task, drain }),
                )
            }
            Some((intake, reader)) => {
                // No enricher any more: move what an earlier run left unenriched to the
                // events journal before anything else is appended there.
                let intake_next = intake.journal.stats().next_seq;
                let waiting = intake_next - reader.committed();
                if waiting > 0 {
                    tracing::info!(
                        waiting,
                        "moving raw events left in the intake journal to the journal (no enricher is configured)"
                    );
                }
                let (_drain, drain_rx) = watch::channel(Some(intake_next));
                let stage = EnrichmentStage {
                    reader,
                    pairing: intake.pairing,
                    shared: shared.clone(),
                    enrichers,
                    budget: options.enrichment_budget,
                    concurrency: options.enrichment_concurrency.max(1),
                    acks: acks.clone(),
                    intake_acks: Arc::new(IntakeAcks::new(intake_next)),
                    drain: drain_rx,
                };
                let left = intake_next.saturating_sub(stage.run().await);
                if left > 0 {
                    return Err(Error::unavailable(format!(
                        "{left} raw events in {} could not be moved to the journal; they stay there for the next start",
                        spec.data_dir.join(crate::intake::INTAKE_DIR).display()
                    )));
                }
                intake.retire().await?;
                (Target::Events, None)
            }
            None => (Target::Events, None),
        };
        let (intake, rx) = mpsc::channel(options.intake_capacity.max(1));
        let stage = Stage {
            target,
            acks,
            shared: shared.clone(),
        };
        let stage = tokio::spawn(stage.run(rx));
        crate::metrics::describe_metrics();
        tokio::spawn(publish_metrics(Arc::downgrade(&shared)));
        let intake_max_bytes = u32::try_from(options.intake_max_bytes.max(1)).unwrap_or(u32::MAX);
        Ok(Self {
            intake,
            intake_memory: Arc::new(Semaphore::new(intake_max_bytes as usize)),
            intake_max_bytes,
            shared,
            abort,
            draining,
            stage,
            enrichment,
            readers,
            notifier_workers,
        })
    }

    /// Hands an event to the pipeline, waiting while intake is full. The returned
    /// [`Submitted`] says when the event is durable and when every sink is done with it.
    pub async fn submit(&self, event: Event) -> Result<Submitted, Error> {
        let memory = self.reserve(&event).await?;
        let (ack, delivery) = AckState::new(self.shared.sink_count);
        let (durable, durable_rx) = oneshot::channel();
        self.hand_over(Submission {
            event: Arc::new(event),
            promises: Some(Promises { ack, durable }),
            memory,
        })
        .await?;
        Ok(Submitted {
            durable: Durable(durable_rx),
            delivery,
        })
    }

    /// Hands an event to the pipeline, waiting while intake is full, for a submitter that
    /// awaits neither durability nor delivery (the stdin source): the same journaling and
    /// delivery as [`submit`](Self::submit), without the two promises (and their
    /// allocations and locking) per event.
    pub async fn submit_unawaited(&self, event: Event) -> Result<(), Error> {
        let memory = self.reserve(&event).await?;
        self.hand_over(Submission {
            event: Arc::new(event),
            promises: None,
            memory,
        })
        .await
    }

    /// Waits until the event's estimated memory fits in
    /// [`PipelineOptions::intake_max_bytes`] and takes it.
    async fn reserve(&self, event: &Event) -> Result<OwnedSemaphorePermit, Error> {
        let weight = u32::try_from(event_weight(event))
            .unwrap_or(u32::MAX)
            .min(self.intake_max_bytes);
        self.intake_memory
            .clone()
            .acquire_many_owned(weight)
            .await
            .map_err(|_| Error::unavailable("the pipeline has stopped"))
    }

    async fn hand_over(&self, submission: Submission) -> Result<(), Error> {
        self.intake
            .send(submission)
            .await
            .map_err(|_| Error::unavailable("the pipeline has stopped"))?;
        self.shared.events_in.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counters at this moment.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.snapshot()
    }

    /// The log of every notification sent (or not).
    pub fn notifications(&self) -> Arc<dyn NotificationStorage> {
        self.shared.notifications.clone()
    }

    /// The audit trail this pipeline appends to, if any (admin actions are recorded there too).
    pub fn audit(&self) -> Option<&PipelineAudit> {
        self.shared.audit.as_ref()
    }

    /// The dead-letter storage.
    pub fn dead_letters(&self) -> &Arc<dyn DeadLetterStorage> {
        &self.shared.dead_letters
    }

    /// Stops intake and waits until every accepted event is journaled, delivered or
    /// dead-lettered by every sink, and every alert dispatched. Returns the final counters.
    pub async fn shutdown(self) -> MetricsSnapshot {
        self.shutdown_within(None).await
    }

    /// Like [`Pipeline::shutdown`], but bounded by `deadline` (counted from the call):
    /// when it passes, requests in flight to sinks and notifiers are cancelled, workers
    /// stop without committing what they had not finished, positions are persisted, and
    /// whatever is not delivered stays in the journal for the next start. Nothing
    /// acknowledged is lost; events accepted but not yet journaled when the deadline
    /// passes were never acknowledged (their `durable` resolves with an error). Returns
    /// within about `deadline` plus [`ABORT_GRACE`].
    pub async fn shutdown_within(self, deadline: Option<Duration>) -> MetricsSnapshot {
        match deadline {
            Some(limit) => self.shutdown_until(tokio::time::sleep(limit)).await,
            None => self.shutdown_until(std::future::pending()).await,
        }
    }

    /// Like [`Pipeline::shutdown_within`], but gives up waiting when `give_up` completes
    /// (for example a signal during a drain, followed by the shutdown timeout).
    pub async fn shutdown_until(self, give_up: impl Future<Output = ()>) -> MetricsSnapshot {
        let Self {
            intake,
            intake_memory,
            intake_max_bytes: _,
            shared,
            abort,
            draining,
            mut stage,
            enrichment,
            readers,
            notifier_workers,
        } = self;
        let give_up = give_up.fuse();
        let mut give_up = std::pin::pin!(give_up);
        drop(intake);
        // Submitters still waiting for intake memory are told the pipeline stopped.
        intake_memory.close();
        let staged = tokio::select! {
            staged = &mut stage => Some(staged),
            () = &mut give_up => None,
        };
        let mut stage_finished = staged.is_some();
        match staged {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::error!(error = %e, "pipeline stage failed"),
            None => {
                stage.abort();
                let _ = stage.await;
                tracing::warn!(
                    "shutdown deadline reached while accepted events were being journaled; those not yet journaled were not acknowledged"
                );
            }
        }
        if let Some(Enrichment { mut task, drain }) = enrichment {
            // Everything acknowledged is in the intake journal: enrich it all, unless the
            // deadline passes first (then what is left stays there for the next start).
            let enriched = if stage_finished {
                let upto = shared.intake.as_ref().map_or(0, |j| j.stats().next_seq);
                let _ = drain.send(Some(upto));
                tokio::select! {
                    done = &mut task => {
                        if let Err(e) = done {
                            tracing::error!(error = %e, "enrichment stage failed");
                        }
                        true
                    }
                    () = &mut give_up => false,
                }
            } else {
                false
            };
            if !enriched {
                task.abort();
                let _ = task.await;
                let left = shared
                    .intake
                    .as_ref()
                    .map_or(0, |j| awaiting_enrichment(&j.stats()));
                tracing::warn!(
                    waiting = left,
                    "shutdown deadline reached while events were being enriched; the raw events not yet enriched stay in the intake journal for the next start"
                );
            }
            stage_finished &= enriched;
        }
        // Alert groups waiting for their timers are notified now.
        let _ = draining.send(true);
        let caught_up = async {
            loop {
                let stats = shared.journal.stats();
                if stats.readers.iter().all(|r| r.committed >= stats.next_seq) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        // Once `give_up` has completed (the stage ran out of time), nothing more is waited for.
        let caught_up = stage_finished
            && tokio::select! {
                () = caught_up => true,
                () = &mut give_up => false,
            };
        let mut workers: Vec<Option<JoinHandle<()>>> = readers
            .into_iter()
            .chain(notifier_workers)
            .map(Some)
            .collect();
        if !caught_up {
            tracing::warn!(
                "shutdown deadline reached; deliveries in flight are cancelled and undelivered events stay in the journal for the next start"
            );
            let _ = abort.send(true);
            // Every worker stops at the abort signal (requests in flight are cancelled);
            // whatever has not stopped after the grace period is cancelled outright. The
            // journal is closed only after, so no worker commits into a closed journal.
            stop_workers(&mut workers).await;
        }
        if let Err(e) = shared.journal.close().await {
            tracing::error!(error = %e, "closing the journal failed");
        }
        if let Some(intake) = &shared.intake
            && let Err(e) = intake.close().await
        {
            tracing::error!(error = %e, "closing the intake journal failed");
        }
        // Every event is delivered and routed; the channels may still be sending what they
        // were handed (a rate-limited Slack behind its groups): wait for them, but not past
        // the deadline (what they had not finished is in the alert path's state snapshot
        // and is sent at the next start).
        let joined = caught_up
            && tokio::select! {
                () = join_workers(&mut workers) => true,
                () = &mut give_up => false,
            };
        if caught_up && !joined {
            tracing::warn!(
                "shutdown deadline reached while notifications were being sent; those not finished are sent at the next start"
            );
            let _ = abort.send(true);
            stop_workers(&mut workers).await;
        }
        join_workers(&mut workers).await;
        shared.snapshot()
    }
}

/// Waits for every worker still running (each slot emptied once joined).
async fn join_workers(workers: &mut [Option<JoinHandle<()>>]) {
    for slot in workers {
        if let Some(worker) = slot.as_mut() {
            report_worker(worker.await);
            *slot = None;
        }
    }
}

/// After the abort signal: gives the workers [`ABORT_GRACE`] to stop, then cancels the rest.
async fn stop_workers(workers: &mut [Option<JoinHandle<()>>]) {
    let grace = tokio::time::Instant::now() + ABORT_GRACE;
    for slot in workers {
        let Some(worker) = slot.as_mut() else {
            continue;
        };
        match tokio::time::timeout_at(grace, &mut *worker).await {
            Ok(result) => {
                report_worker(result);
                *slot = None;
            }
            Err(_) => worker.abort(),
        }
    }
}

fn report_worker(result: Result<(), tokio::task::JoinError>) {
    match result {
        Ok(()) => {}
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::error!(error = %e, "pipeline worker failed"),
    }
}

/// The running enrichment stage (intake journal → events journal).
#[derive(Debug)]
struct Enrichment {
    /// Ends with the intake position reached.
    task: JoinHandle<u64>,
    /// Tells the stage to stop once every intake record below the value is enriched.
    drain: watch::Sender<Option<u64>>,
}

/// How long workers get to stop after the shutdown deadline before they are cancelled.
pub const ABORT_GRACE: Duration = Duration::from_millis(500);

impl Shared {
    fn snapshot(&self) -> MetricsSnapshot {
        let stats = self.journal.stats();
        let lag = |id: &str| {
            let name = sink_reader(id);
            stats
                .readers
                .iter()
                .find(|r| r.name == name)
                .map_or(0, |r| r.lag)
        };
        MetricsSnapshot {
            events_in: self.events_in.load(Ordering::Relaxed),
            events_journaled: self.journaled.load(Ordering::Relaxed),
            events_not_fully_enriched: self.not_fully_enriched.load(Ordering::Relaxed),
            alerts_routed: self.alerts_routed.load(Ordering::Relaxed),
            alert_path_lag: self
                .alert_position
                .as_ref()
                .map(|p| stats.next_seq.saturating_sub(p.load(Ordering::Relaxed))),
            dead_letters: self.dead_letters.metrics(),
            notification_log: self.notifications.usage(),
            journal: JournalMetrics::from(stats.clone()),
            intake: self.intake.as_ref().map(|journal| {
                let stats = journal.stats();
                IntakeMetrics {
                    journaled: self.intake_journaled.load(Ordering::Relaxed),
                    awaiting_enrichment: awaiting_enrichment(&stats),
                    journal: JournalMetrics::from(stats),
                }
            }),
            sinks: self
                .sinks
                .iter()
                .map(|(id, c)| (id.clone(), c.snapshot(lag(id))))
                .collect(),
            notifiers: self
                .notifiers
                .iter()
                .map(|(id, c)| (id.clone(), c.snapshot()))
                .collect(),
            enrichers: self
                .enrichers
                .iter()
                .map(|e| (e.spec.id.clone(), e.metrics()))
                .collect(),
        }
    }
}

/// Where the intake stage appends.
enum Target {
    /// Straight into the events journal (no enricher configured).
    Events,
    /// Into the intake journal, raw; the enrichment stage moves them on.
    Intake {
        journal: Journal,
        acks: Arc<IntakeAcks>,
    },
}

/// The intake stage: accepted events are appended in groups (whatever is ready, up to
/// 1024) so many events share one fsync; then their submitters learn they are durable.
struct Stage {
    target: Target,
    acks: Arc<AckRegistry>,
    shared: Arc<Shared>,
}

/// Tells the enrichment stage that no more acknowledgements will be handed over, however
/// the intake stage ends (a shutdown deadline cancels it).
struct HandOverEnds(Option<Arc<IntakeAcks>>);

impl Drop for HandOverEnds {
    fn drop(&mut self) {
        if let Some(acks) = &self.0 {
            acks.close();
        }
    }
}

/// An estimate of the memory one decoded event holds: the struct, each string with the
/// allocator's overhead, the labels and attributes with their map nodes, and a share for
/// each enrichment part. Cheap (no serialisation); used to bound the intake queue in bytes.
pub fn event_weight(event: &Event) -> usize {
    /// Allocator bookkeeping and rounding per heap block, and per map entry its node share.
    const BLOCK: usize = 16;
    const ENTRY: usize = 48;
    let text = |s: &str| if s.is_empty() { 0 } else { s.len() + BLOCK };
    let optional = |s: &Option<String>| s.as_deref().map_or(0, text);
    fn value_weight(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(s) => s.len() + BLOCK,
            serde_json::Value::Array(items) => {
                items.len() * std::mem::size_of::<serde_json::Value>()
                    + BLOCK
                    + items.iter().map(value_weight).sum::<usize>()
            }
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + BLOCK
                        + ENTRY
                        + std::mem::size_of::<serde_json::Value>()
                        + value_weight(v)
                })
                .sum(),
            _ => 0,
        }
    }
    let enrichment = &event.enrichment;
    let enrichment_weight = [
        enrichment.threat.is_some(),
        enrichment.wedding.is_some(),
        enrichment.geo.is_some(),
    ]
    .iter()
    .filter(|present| **present)
    .count()
        * 512
        + (enrichment.patterns.len()
            + enrichment.vulnerabilities.len()
            + enrichment.not_enriched.len())
            * 256;
    std::mem::size_of::<Event>()
        + BLOCK
        + text(&event.id)
        + text(&event.action)
        + [
            &event.message,
            &event.user_id,
            &event.user_name,
            &event.user_agent,
            &event.domain,
            &event.url,
            &event.file_hash,
            &event.resource_type,
            &event.resource_id,
            &event.wedding_id,
            &event.destination_host,
        ]
        .into_iter()
        .map(optional)
        .sum::<usize>()
        + event
            .labels
            .iter()
            .map(|(k, v)| text(k) + text(v) + ENTRY)
            .sum::<usize>()
        + event
            .attributes
            .iter()
            .map(|(k, v)| {
                text(k) + ENTRY + std::mem::size_of::<serde_json::Value>() + value_weight(v)
            })
            .sum::<usize>()
        + enrichment_weight
}

/// The bytes an event is journaled as (in the intake journal and the events journal).
pub(crate) fn journal_record(event: &Event) -> Arc<[u8]> {
    serde_json::to_vec(event)
        .expect("an Event always serialises")
        .into()
}

/// Most "events accepted" audit records being written at once (one per group commit).
const MAX_AUDITS_IN_FLIGHT: usize = 4;

/// Most events appended in one group commit.
pub(crate) const MAX_GROUP: usize = 1024;

/// Moves the items `stream` has ready now into `group`, up to `max` in all, without
/// waiting. Polled outside tokio's per-task budget: within it, a task gets about 128
/// ready polls before every poll answers "not ready", which would cut each group commit
/// off at ~127 events however many are waiting.
pub(crate) fn take_ready<S: futures::Stream + ?Sized>(
    mut stream: std::pin::Pin<&mut S>,
    group: &mut Vec<S::Item>,
    max: usize,
) {
    while group.len() < max {
        match tokio::task::unconstrained(stream.next()).now_or_never() {
            Some(Some(next)) => group.push(next),
            _ => break,
        }
    }
}

impl Stage {
    async fn run(self, rx: mpsc::Receiver<Submission>) {
        let _hand_over_ends = HandOverEnds(match &self.target {
            Target::Intake { acks, .. } => Some(acks.clone()),
            Target::Events => None,
        });
        // Fused: `take_ready` may see the end before the loop below asks again.
        let intake = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .fuse();
        let mut intake = std::pin::pin!(intake);
        let mut audits = tokio::task::JoinSet::new();
        while let Some(first) = intake.next().await {
            let mut group = vec![first];
            take_ready(intake.as_mut(), &mut group, MAX_GROUP);
            self.append(group, &mut audits).await;
            while audits.try_join_next().is_some() {}
            // Each audit record in flight holds its group's digests: when the audit log
            // falls behind, intake waits for it instead of queueing records without bound.
            while audits.len() >= MAX_AUDITS_IN_FLIGHT {
                audits.join_next().await;
            }
        }
        while audits.join_next().await.is_some() {}
    }

    /// Journals a group; the sources are told it is durable once the journal (and, when
    /// auditing, the audit log: its record is written while the next group is journaled)
    /// has it.
    async fn append(&self, group: Vec<Submission>, audits: &mut tokio::task::JoinSet<()>) {
        // Each event is serialised once for the journal; the decoded event goes along so
        // that readers at the tail (sinks, the alert path, the enrichment stage) use it as is.
        let mut records = Vec::with_capacity(group.len());
        let mut events = Vec::with_capacity(group.len());
        let mut promises = Vec::with_capacity(group.len());
        // Given back (dropped) once the group is journaled or refused.
        let mut memory = Vec::with_capacity(group.len());
        // Serialised into one scratch buffer and copied out at its exact length: the records
        // live on in the journal's in-memory tail, so no slack capacity rides along.
        let mut scratch = Vec::with_capacity(4096);
        let mut digests = self
            .shared
            .audit
            .as_ref()
            .map(|_| Vec::with_capacity(group.len()));
        let journal_name = match &self.target {
            Target::Events => "events",
            Target::Intake { .. } => "intake",
        };
        // One span per event, open while its group is written and synced (only when the
        // spans are enabled: nothing is allocated for them otherwise).
        let mut spans: Vec<tracing::Span> = if tracing::span_enabled!(target: crate::TRACE_TARGET, tracing::Level::DEBUG)
        {
            Vec::with_capacity(group.len())
        } else {
            Vec::new()
        };
        let traced = spans.capacity() > 0;
        for Submission {
            event,
            promises: promised,
            memory: permit,
        } in group
        {
            memory.push(permit);
            if traced {
                spans.push(tracing::debug_span!(
                    target: crate::TRACE_TARGET,
                    "journal",
                    journal = journal_name,
                    event_id = %event.id,
                    seq = tracing::field::Empty,
                    error = tracing::field::Empty,
                ));
            }
            scratch.clear();
            serde_json::to_writer(&mut scratch, &*event).expect("an Event always serialises");
            if let Some(digests) = digests.as_mut() {
                digests.push(PipelineAudit::digest(&event, &scratch));
            }
            // One allocation, shared by the journal's tail and every reader.
            records.push(Arc::<[u8]>::from(scratch.as_slice()));
            events.push(event);
            promises.push(promised);
        }
        let journal = match &self.target {
            Target::Events => &self.shared.journal,
            Target::Intake { journal, .. } => journal,
        };
        let appended = journal.append_decoded(records, events).await;
        // Journaled (now counted by the journal's in-memory tail) or refused: intake may
        // take more.
        drop(memory);
        match &appended {
            Ok(range) => {
                for (span, seq) in spans.drain(..).zip(range.clone()) {
                    span.record("seq", seq);
                }
            }
            Err(e) => {
                for span in spans.drain(..) {
                    span.record("error", tracing::field::display(e));
                }
            }
        }
        match appended {
            Ok(range) => {
                let count = promises.len() as u64;
                let mut durables = Vec::with_capacity(promises.len());
                match &self.target {
                    Target::Events => {
                        self.shared.journaled.fetch_add(count, Ordering::Relaxed);
                        for (promised, seq) in promises.into_iter().zip(range) {
                            match promised {
                                Some(Promises { ack, durable }) => {
                                    self.acks.register(seq, ack);
                                    durables.push((durable, seq));
                                }
                                None => self.acks.register_untracked(seq),
                            }
                        }
                    }
                    Target::Intake { acks, .. } => {
                        self.shared
                            .intake_journaled
                            .fetch_add(count, Ordering::Relaxed);
                        let mut handed = Vec::with_capacity(count as usize);
                        for (promised, seq) in promises.into_iter().zip(range) {
                            match promised {
                                Some(Promises { ack, durable }) => {
                                    handed.push((seq, Some(ack)));
                                    durables.push((durable, seq));
                                }
                                None => handed.push((seq, None)),
                            }
                        }
                        acks.hand_over(handed);
                    }
                }
                match (self.shared.audit.clone(), digests) {
                    (Some(audit), Some(digests)) => {
                        audits.spawn(async move {
                            let recorded = audit.accepted(digests).await;
                            if let Err(e) = &recorded {
                                tracing::error!(events = durables.len(), error = %e, "audit: accepted events not recorded; not acknowledged");
                            }
                            for (durable, seq) in durables {
                                let _ = durable.send(recorded.clone().map(|_| seq));
                            }
                        });
                    }
                    _ => {
                        for (durable, seq) in durables {
                            let _ = durable.send(Ok(seq));
                        }
                    }
                }
            }
            Err(e) => {
                let error = e.into_core();
                if error.kind() == ErrorKind::RateLimited {
                    tracing::warn!(
                        events = promises.len(),
                        "journal full: events refused (when_full = \"drop_newest\")"
                    );
                } else {
                    tracing::error!(events = promises.len(), error = %error, "events could not be journaled");
                }
                for Promises { durable, .. } in promises.into_iter().flatten() {
                    let _ = durable.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Publishes the pipeline's counters and gauges through the `metrics` facade every
/// [`crate::metrics::PUBLISH_INTERVAL`] until the pipeline is gone.
async fn publish_metrics(shared: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(crate::metrics::PUBLISH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.snapshot().emit();
    }
}

//! Wiring: specs in, workers out, [`Pipeline::submit`] and [`Pipeline::shutdown`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vowguard_core::{
    Alert, AlertRouting, BatchLimits, Enricher, Error, Event, Notifier, RateLimit, RetryPolicy,
    Sink,
};

use crate::ack::{AckState, Delivery};
use crate::dead_letter::DeadLetterStore;
use crate::enrich::enrich;
use crate::metrics::{MetricsSnapshot, NotifierCounters, SinkCounters};
use crate::notify::{NotificationLog, NotifierWorker};
use crate::sink_worker::SinkWorker;

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
}

impl SinkSpec {
    /// A spec with the sink's preferred batch limits and the default retry policy.
    pub fn new(id: impl Into<String>, sink: Arc<dyn Sink>) -> Self {
        let batch = sink.batch_limits();
        Self {
            id: id.into(),
            sink,
            batch,
            retry: RetryPolicy::default(),
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

/// Tuning of the pipeline's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Longest time enrichment may hold one event (each enricher also has its own timeout).
    pub enrichment_budget: Duration,
    /// Events enriched concurrently (order is preserved).
    pub enrichment_concurrency: usize,
    /// Events each sink may have queued before intake waits.
    pub sink_queue_capacity: usize,
    /// Alerts each notifier may have queued before routing waits.
    pub notifier_queue_capacity: usize,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            enrichment_budget: Duration::from_secs(10),
            enrichment_concurrency: 64,
            sink_queue_capacity: 10_000,
            notifier_queue_capacity: 10_000,
        }
    }
}

/// Everything a pipeline is built from.
#[derive(Debug, Default)]
pub struct PipelineSpec {
    /// Where dead letters and the notification log are written.
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
}

/// An event on its way through the sinks, with its acknowledgement countdown.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) event: Arc<Event>,
    pub(crate) ack: AckState,
}

#[derive(Debug)]
struct Shared {
    events_in: AtomicU64,
    not_fully_enriched: AtomicU64,
    alerts_routed: AtomicU64,
    sinks: BTreeMap<String, Arc<SinkCounters>>,
    notifiers: BTreeMap<String, Arc<NotifierCounters>>,
    sink_count: usize,
    dead_letters: DeadLetterStore,
    notifications: Arc<NotificationLog>,
}

/// The running pipeline. Submit events with [`Pipeline::submit`]; [`Pipeline::shutdown`]
/// stops intake and waits until every event is delivered or dead-lettered and every alert
/// dispatched.
#[derive(Debug)]
pub struct Pipeline {
    intake: mpsc::Sender<(Event, AckState)>,
    shared: Arc<Shared>,
    stage: JoinHandle<()>,
    sink_workers: Vec<JoinHandle<()>>,
    notifier_workers: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the workers. Must be called within a tokio runtime.
    pub fn start(spec: PipelineSpec) -> Result<Self, Error> {
        let dead_letters = DeadLetterStore::open(&spec.data_dir)?;
        let notifications = Arc::new(NotificationLog::open(&spec.data_dir)?);
        let options = spec.options;

        let mut sink_txs = Vec::new();
        let mut sink_workers = Vec::new();
        let mut sink_counters = BTreeMap::new();
        for sink in spec.sinks {
            if sink_counters.contains_key(&sink.id) {
                return Err(Error::config(format!("duplicate sink id `{}`", sink.id)));
            }
            let (tx, rx) = mpsc::channel(options.sink_queue_capacity.max(1));
            let counters = Arc::new(SinkCounters::default());
            sink_counters.insert(sink.id.clone(), counters.clone());
            sink_txs.push((tx, counters.clone()));
            let worker = SinkWorker {
                spec: sink,
                rx,
                dead_letters: dead_letters.clone(),
                counters,
            };
            sink_workers.push(tokio::spawn(worker.run()));
        }

        let mut notifier_txs = HashMap::new();
        let mut notifier_workers = Vec::new();
        let mut notifier_counters = BTreeMap::new();
        for notifier in spec.notifiers {
            if notifier_counters.contains_key(&notifier.id) {
                return Err(Error::config(format!(
                    "duplicate notifier id `{}`",
                    notifier.id
                )));
            }
            let (tx, rx) = mpsc::channel(options.notifier_queue_capacity.max(1));
            let counters = Arc::new(NotifierCounters::default());
            notifier_counters.insert(notifier.id.clone(), counters.clone());
            notifier_txs.insert(notifier.id.clone(), tx);
            let worker = NotifierWorker {
                spec: notifier,
                rx,
                log: notifications.clone(),
                counters,
            };
            notifier_workers.push(tokio::spawn(worker.run()));
        }

        let shared = Arc::new(Shared {
            events_in: AtomicU64::new(0),
            not_fully_enriched: AtomicU64::new(0),
            alerts_routed: AtomicU64::new(0),
            sink_count: sink_txs.len(),
            sinks: sink_counters,
            notifiers: notifier_counters,
            dead_letters,
            notifications,
        });
        let (intake, rx) = mpsc::channel(1024);
        let stage = Stage {
            enrichers: spec.enrichers.into(),
            options,
            router: spec.router,
            sink_txs,
            notifier_txs,
            shared: shared.clone(),
        };
        let stage = tokio::spawn(stage.run(rx));
        Ok(Self {
            intake,
            shared,
            stage,
            sink_workers,
            notifier_workers,
        })
    }

    /// Hands an event to the pipeline, waiting while the pipeline is full. The returned
    /// [`Delivery`] completes when every sink has delivered or dead-lettered the event.
    pub async fn submit(&self, event: Event) -> Result<Delivery, Error> {
        let (ack, delivery) = AckState::new(self.shared.sink_count);
        self.intake
            .send((event, ack))
            .await
            .map_err(|_| Error::internal("the pipeline has stopped"))?;
        self.shared.events_in.fetch_add(1, Ordering::Relaxed);
        Ok(delivery)
    }

    /// Counters at this moment.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.snapshot()
    }

    /// The log of every notification sent (or not).
    pub fn notifications(&self) -> Arc<NotificationLog> {
        self.shared.notifications.clone()
    }

    /// The dead-letter store.
    pub fn dead_letters(&self) -> &DeadLetterStore {
        &self.shared.dead_letters
    }

    /// Stops intake and waits until every submitted event is delivered or dead-lettered and
    /// every alert dispatched. Returns the final counters.
    pub async fn shutdown(self) -> MetricsSnapshot {
        let Self {
            intake,
            shared,
            stage,
            sink_workers,
            notifier_workers,
        } = self;
        drop(intake);
        if let Err(e) = stage.await {
            tracing::error!(error = %e, "pipeline stage failed");
        }
        for worker in sink_workers.into_iter().chain(notifier_workers) {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "pipeline worker failed");
            }
        }
        shared.snapshot()
    }
}

impl Shared {
    fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            events_in: self.events_in.load(Ordering::Relaxed),
            events_not_fully_enriched: self.not_fully_enriched.load(Ordering::Relaxed),
            alerts_routed: self.alerts_routed.load(Ordering::Relaxed),
            sinks: self
                .sinks
                .iter()
                .map(|(id, c)| (id.clone(), c.snapshot()))
                .collect(),
            notifiers: self
                .notifiers
                .iter()
                .map(|(id, c)| (id.clone(), c.snapshot()))
                .collect(),
        }
    }
}

/// The enrichment → routing → fan-out stage.
struct Stage {
    enrichers: Arc<[EnricherSpec]>,
    options: PipelineOptions,
    router: Option<Arc<dyn AlertRouting>>,
    sink_txs: Vec<(mpsc::Sender<Arc<Envelope>>, Arc<SinkCounters>)>,
    notifier_txs: HashMap<String, mpsc::Sender<Alert>>,
    shared: Arc<Shared>,
}

impl Stage {
    async fn run(self, rx: mpsc::Receiver<(Event, AckState)>) {
        let intake = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let budget = self.options.enrichment_budget;
        let enriched = intake
            .map(|(event, ack)| {
                let enrichers = self.enrichers.clone();
                async move { (enrich(event, &enrichers, budget).await, ack) }
            })
            .buffered(self.options.enrichment_concurrency.max(1));
        let mut enriched = std::pin::pin!(enriched);
        while let Some((event, ack)) = enriched.next().await {
            if !event.enrichment.not_enriched.is_empty() {
                self.shared
                    .not_fully_enriched
                    .fetch_add(1, Ordering::Relaxed);
            }
            let envelope = Arc::new(Envelope {
                event: Arc::new(event),
                ack,
            });
            self.route(&envelope.event).await;
            for (tx, counters) in &self.sink_txs {
                counters.queued.fetch_add(1, Ordering::Relaxed);
                if tx.send(envelope.clone()).await.is_err() {
                    counters.queued.fetch_sub(1, Ordering::Relaxed);
                    tracing::error!(event_id = %envelope.event.id, "a sink worker stopped; event not delivered there");
                    envelope.ack.finish(false);
                }
            }
        }
    }

    /// Alerts go out before the event is queued for the SIEMs: paging must not wait on them.
    async fn route(&self, event: &Arc<Event>) {
        let Some(router) = &self.router else { return };
        for routed in router.route(event) {
            for id in &routed.notifiers {
                let Some(tx) = self.notifier_txs.get(id) else {
                    tracing::error!(notifier = %id, route = %routed.alert.route, "route names an unknown notifier");
                    continue;
                };
                self.shared.alerts_routed.fetch_add(1, Ordering::Relaxed);
                if tx.send(routed.alert.clone()).await.is_err() {
                    tracing::error!(notifier = %id, "notifier worker stopped; alert not sent");
                }
            }
        }
    }
}

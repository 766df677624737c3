//! The cluster mode: `[queue] type = "jetstream"`. Several replicas share one NATS
//! JetStream stream (see `vowguard-jetstream`).
//!
//! * Intake (`POST /v1/events`, `POST /v1/webhooks/<id>`, stdin) publishes every event to
//!   the stream through [`EventQueue`] and acknowledges its client only after the PubAck.
//!   While no PubAck can be had (NATS down or restarting, stream full) HTTP answers 503
//!   with `Retry-After` and stdin waits.
//! * Delivery: one durable pull consumer per sink, shared by the replicas
//!   ([`JetStreamDelivery`]); dead letters go to this replica's `dead_letters.jsonl`.
//! * The alert path: its own durable consumer ([`ALERTS_CONSUMER`]). A grouped alert is
//!   stored in its group in JetStream KV (`<stream>_groups`, compare-and-set) before its
//!   event is acked; every replica watches the groups and, once a group's `group_wait` /
//!   `group_interval` (or `repeat_interval`) has passed, the replica that claims it (a KV
//!   lease) seals its ONE notification in the group, sends it and clears it, as the
//!   single-process grouper would. Each channel of each notification is sent once across
//!   the cluster: a KV lease on `group/generation/channel`, the KV "already sent" mark
//!   checked, sent, marked, released. A replica that dies while holding a group stops
//!   renewing its claim; the claim expires after AckWait (at least 5 s) and another
//!   replica flushes the group (the sealed notification as it was, skipping the channels
//!   marked as sent). Ungrouped alerts are sent at once, once per alert and channel.
//! * [`Cluster::status`]: stream, consumers and this replica's connection, for
//!   `vowguard cluster status` and `GET /api/cluster/status`.
//!
//! Shared across replicas: the events, each sink's and the alert path's position and
//! in-flight set, alert groups (pending alerts, timers, the notification being sent),
//! "already sent" marks and leases, webhook delivery claims and "seen" marks (24 h), the
//! router's inhibition sources, the response engine's incident ids, incident states
//! (acknowledged, contained, resolved), run claims and run states (each step recorded
//! before a run moves on, so a replica taking a run over resumes it), the notifiers'
//! rate-limit counts and the notification log (see [`crate::cluster_state`]). Per replica
//! (not shared): dead-letter files, each replica's record file of incidents (timelines,
//! the alerts that replica handled) and the audit log.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vowguard_core::{Alert, AlertRouting, Error, ErrorKind, Event, RetryPolicy};
use vowguard_jetstream::connection::NatsClientSettings;
use vowguard_jetstream::consumer::{BatchHandler, Delivery};
use vowguard_jetstream::{
    ENRICH_CONSUMER, JetStream, JetStreamConfig, JetStreamDelivery, SharedLog, SharedState,
};
use vowguard_pipeline::{
    DeadLetter, DeadLetterStorage, Enrichers, EventQueue, NotificationRecord, NotifierSpec,
    SinkSpec,
};

use crate::assemble::Environment;
use crate::cluster_state::{
    Grouped, KvAlertGroups, KvInhibition, KvRateLimits, KvResponseCoordination, now_ms,
};
use crate::config::{Config, QueueConfig};

/// The durable consumer of the alert path (sink ids cannot take this name).
pub const ALERTS_CONSUMER: &str = "_alerts";

/// How long "already sent" marks are kept: longer than any redelivery of the event that
/// caused the notification.
const SENT_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// How long incident ids by fingerprint and "run finished" marks are kept across replicas.
const RESPONSE_MEMORY: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long an alert group is kept in KV beyond the longest grouping timer (at least
/// this long in all).
const GROUP_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// How long webhook deliveries are remembered across replicas (the local replay guard
/// keeps each source's `replay_window` on top).
const WEBHOOK_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The `[queue]` of a jetstream deployment with its secrets resolved.
#[derive(Clone)]
pub struct ClusterSetup {
    config: JetStreamConfig,
    /// The connection keys of `[queue]`, checked and resolved once (the one NATS
    /// connection code: `vowguard_jetstream::connection`).
    connection: NatsClientSettings,
}

impl std::fmt::Debug for ClusterSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSetup")
            .field("connection", &self.connection)
            .field("stream", &self.config.stream.name)
            .finish_non_exhaustive()
    }
}

/// Checks what the jetstream backend needs of the rest of the config and resolves the
/// credentials (errors are pushed, naming the key). `None` on the local backend.
pub(crate) fn setup(
    config: &Config,
    env: &Environment<'_>,
    spec: &vowguard_pipeline::PipelineSpec,
    errors: &mut Vec<Error>,
) -> Option<ClusterSetup> {
    let QueueConfig::Jetstream(queue) = &config.queue else {
        return None;
    };
    for sink in &spec.sinks {
        let valid = !sink.id.is_empty()
            && sink
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid || sink.id == ALERTS_CONSUMER || sink.id == ENRICH_CONSUMER {
            errors.push(Error::config(format!(
                "`sinks.{}`: on the jetstream backend a sink id names its durable consumer: letters, digits, `-` and `_` only, and not `{ALERTS_CONSUMER}` or `{ENRICH_CONSUMER}`",
                sink.id
            )));
        }
    }
    match ClusterSetup::resolve(queue, env, !spec.enrichers.is_empty()) {
        Ok(setup) => Some(setup),
        Err(mut found) => {
            errors.append(&mut found);
            None
        }
    }
}

impl ClusterSetup {
    /// The `[queue]` of a config file alone (for `vowguard cluster status`): `None` on the
    /// local backend.
    pub fn from_config(config: &Config, env: &Environment<'_>) -> Result<Option<Self>, Error> {
        let QueueConfig::Jetstream(queue) = &config.queue else {
            return Ok(None);
        };
        // Enrichers (or scanners, which add `vuln_correlation`) put raw events on their
        // own subject: the stream is checked with the subjects the replicas use.
        let enriching = !config.enrichers.is_empty() || !config.scanners.is_empty();
        Self::resolve(queue, env, enriching)
            .map(Some)
            .map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                Error::config(lines.join("\n"))
            })
    }

    /// Resolves the connection settings once (through the one NATS connection code), so a
    /// missing variable or file is reported at load with the other errors, by key.
    /// `enriching`: enrichers run on the stream (intake publishes raw events).
    fn resolve(
        queue: &JetStreamConfig,
        env: &Environment<'_>,
        enriching: bool,
    ) -> Result<Self, Vec<Error>> {
        let connection = queue
            .connection
            .resolve("queue", env.secrets, env.config_dir)
            .map_err(|e| vec![e])?;
        let mut config = queue.clone();
        config.stream.raw_intake = enriching;
        Ok(Self { config, connection })
    }

    /// The `[queue]` settings.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// Connects once and creates or checks the stream.
    pub async fn connect(&self) -> Result<JetStream, Error> {
        JetStream::connect_resolved(self.config.clone(), self.connection.clone(), "queue").await
    }
}

/// What the alert path of a replica is built from.
#[derive(Debug, Clone)]
pub struct AlertSetup {
    /// The router (shared with the local pipeline).
    pub router: Arc<dyn AlertRouting>,
    /// The notifiers by id.
    pub notifiers: Vec<NotifierSpec>,
    /// The same router as its concrete type, whose inhibition sources are shared with the
    /// other replicas (`None`: inhibition stays per replica).
    pub inhibition: Option<Arc<vowguard_router::Router>>,
    /// The response engine, whose incident ids and run claims are shared with the other
    /// replicas.
    pub response: Option<vowguard_response::ResponseEngine>,
}

/// The connection of this replica and its workers.
pub struct Cluster {
    setup: ClusterSetup,
    owner: String,
    /// Set once connected with the stream checked and the workers started.
    js: RwLock<Option<JetStream>>,
    /// Why intake cannot publish right now (connecting, or a fatal conflict).
    problem: RwLock<Option<String>>,
    delivery: tokio::sync::Mutex<Option<JetStreamDelivery>>,
    /// Webhook delivery claims (leases) and "seen" marks, once connected.
    webhooks: RwLock<Option<WebhookState>>,
    stop: watch::Sender<bool>,
    connector: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The flusher of the shared alert groups, once connected.
    flusher: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The enrichers of the `_enrich` worker (shared breakers and counters); empty when
    /// events are not enriched.
    enrichers: Enrichers,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("setup", &self.setup)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

/// This replica's name in leases and KV marks: host, pid and start time.
fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vowguard".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{host}-{}-{started}", std::process::id())
}

impl Cluster {
    /// Connects and starts the sink and alert workers of this replica. A refusal that a
    /// retry cannot fix (credentials, a conflicting stream or consumer, TLS) is returned;
    /// while NATS cannot be reached, it keeps trying in the background with the shared
    /// retry policy's backoff, intake answers 503 and `/health` says why.
    ///
    /// With `enrichers` (not empty), this replica also runs the shared `_enrich` consumer:
    /// intake publishes raw events, which are enriched here (or on another replica) and
    /// published again for the sinks and the alert path.
    pub async fn start(
        setup: ClusterSetup,
        sinks: Vec<SinkSpec>,
        enrichers: Enrichers,
        alerts: AlertSetup,
        dead_letters: Arc<dyn DeadLetterStorage>,
    ) -> Result<Arc<Self>, Error> {
        if setup.config.stream.raw_intake == enrichers.is_empty() {
            return Err(Error::internal(
                "the cluster setup and the enrichers disagree on whether events are enriched on the stream",
            ));
        }
        let (stop, _) = watch::channel(false);
        let this = Arc::new(Self {
            setup,
            owner: replica_name(),
            js: RwLock::new(None),
            problem: RwLock::new(Some("connecting to NATS".into())),
            delivery: tokio::sync::Mutex::new(None),
            webhooks: RwLock::new(None),
            stop,
            connector: std::sync::Mutex::new(None),
            flusher: std::sync::Mutex::new(None),
            enrichers: enrichers.clone(),
        });
        let workers = Workers {
            sinks,
            enrichers,
            alerts,
            dead_letters,
        };
        match this.attempt(&workers).await {
            Ok(()) => return Ok(this),
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "JetStream not reachable; intake answers 503 until it is, retrying");
                write(&this.problem, Some(e.to_string()));
            }
        }
        let connector = tokio::spawn(this.clone().keep_connecting(workers));
        *this
            .connector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(connector);
        Ok(this)
    }

    async fn attempt(&self, workers: &Workers) -> Result<(), Error> {
        let js = self.setup.connect().await?;
        // Boxed: opening every bucket and consumer makes a large future.
        let (delivery, webhooks, flusher) =
            Box::pin(workers.start(&js, &self.owner, self.stop.subscribe())).await?;
        *self.delivery.lock().await = Some(delivery);
        *self
            .flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = flusher;
        write(&self.webhooks, Some(webhooks));
        write(&self.js, Some(js));
        write(&self.problem, None);
        tracing::info!(
            servers = %self.setup.connection.servers(),
            stream = %self.setup.config.stream.name,
            replica = %self.owner,
            "JetStream queue ready"
        );
        Ok(())
    }

    async fn keep_connecting(self: Arc<Self>, workers: Workers) {
        let policy = RetryPolicy::default().with_max_attempts(u32::MAX);
        let mut stop = self.stop.subscribe();
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            match self.attempt(&workers).await {
                Ok(()) => return,
                Err(e) if !e.is_retryable() => {
                    tracing::error!(error = %e, "JetStream queue refused; intake answers 503");
                    write(&self.problem, Some(e.to_string()));
                    return;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = policy.delay(failures, &e);
                    tracing::warn!(error = %e, ?delay, "JetStream not reachable; retrying");
                    write(&self.problem, Some(e.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// The connection, once ready.
    pub fn jetstream(&self) -> Option<JetStream> {
        read(&self.js)
    }

    /// `None` when intake can publish; otherwise why not (for `/health`).
    pub fn problem(&self) -> Option<String> {
        match self.jetstream() {
            Some(js) if !js.is_connected() => Some(format!(
                "NATS unreachable (reconnecting to {})",
                self.setup.connection.servers()
            )),
            Some(_) => None,
            None => Some(read(&self.problem).unwrap_or_else(|| "connecting to NATS".into())),
        }
    }

    /// The `/health` section of the queue.
    pub fn health(&self) -> Value {
        let problem = self.problem();
        json!({
            "backend": "jetstream",
            "stream": self.setup.config.stream.name,
            "replica": self.owner,
            "ready": problem.is_none(),
            "problem": problem,
        })
    }

    /// Stream and consumer state from the server, and this replica's connection and
    /// counts.
    pub async fn status(&self) -> Value {
        let mut replica = json!({
            "name": self.owner,
            "connected": self.jetstream().is_some_and(|js| js.is_connected()),
            "problem": self.problem(),
        });
        if let Some(delivery) = self.delivery.lock().await.as_ref() {
            let counts: serde_json::Map<String, Value> = delivery
                .all_counters()
                .iter()
                .map(|(name, c)| {
                    (
                        name.clone(),
                        json!({
                            "delivered": c.delivered.load(Ordering::Relaxed),
                            "dead_lettered": c.dead_lettered.load(Ordering::Relaxed),
                            "retried": c.retried.load(Ordering::Relaxed),
                            "unconfirmed": c.unconfirmed.load(Ordering::Relaxed),
                        }),
                    )
                })
                .collect();
            replica["consumers"] = Value::Object(counts);
        }
        let stream = match self.jetstream() {
            Some(js) => match js.status().await {
                Ok(status) => stream_json(&status),
                Err(e) => json!({ "error": e.to_string() }),
            },
            None => Value::Null,
        };
        json!({ "backend": "jetstream", "stream": stream, "replica": replica })
    }

    /// Publishes this replica's delivery counts through the `metrics` facade.
    pub fn emit(&self) {
        for (id, m) in self.enrichers.metrics() {
            m.emit(&id);
        }
        let Ok(delivery) = self.delivery.try_lock() else {
            return;
        };
        let Some(delivery) = delivery.as_ref() else {
            return;
        };
        for (name, c) in delivery.all_counters() {
            for (outcome, count) in [
                ("delivered", &c.delivered),
                ("dead_lettered", &c.dead_lettered),
                ("retried", &c.retried),
                ("unconfirmed", &c.unconfirmed),
            ] {
                metrics::counter!("vowguard_cluster_consumer_events_total", "consumer" => name.clone(), "outcome" => outcome)
                    .absolute(count.load(Ordering::Relaxed));
            }
        }
        metrics::gauge!("vowguard_cluster_connected").set(if self.problem().is_none() {
            1.0
        } else {
            0.0
        });
    }

    /// Waits until no consumer of the stream has pending or unacknowledged events (every
    /// event published so far is delivered or dead-lettered, by some replica), or `give_up`.
    pub async fn drained(&self, give_up: impl std::future::Future<Output = ()>) -> bool {
        let mut give_up = std::pin::pin!(give_up);
        loop {
            if let Some(js) = self.jetstream()
                && let Ok(status) = js.status().await
                && status
                    .consumers
                    .iter()
                    .all(|c| c.pending == 0 && c.ack_pending == 0)
            {
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = &mut give_up => return false,
            }
        }
    }

    /// Stops pulling; the batches in flight are settled first (within `timeout`). What is
    /// left stays in the stream for the other replicas.
    pub async fn shutdown(&self, timeout: Duration) {
        let _ = self.stop.send(true);
        let connector = self
            .connector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(connector) = connector {
            connector.abort();
        }
        // A group flush in progress finishes (the flusher stops between flushes); a group
        // left pending or sealed in KV is flushed by another replica or the next start.
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut flusher) = flusher
            && tokio::time::timeout(timeout, &mut flusher).await.is_err()
        {
            tracing::warn!(
                "a group notification still sending after the shutdown timeout; another replica takes the group over"
            );
            flusher.abort();
        }
        if let Some(delivery) = self.delivery.lock().await.take()
            && tokio::time::timeout(timeout, delivery.shutdown())
                .await
                .is_err()
        {
            tracing::warn!(
                "batches still in flight after the shutdown timeout; the server redelivers them"
            );
        }
    }
}

fn stream_json(status: &vowguard_jetstream::StreamStatus) -> Value {
    json!({
        "name": status.name,
        "messages": status.messages,
        "bytes": status.bytes,
        "replicas": status.replicas,
        "consumers": status.consumers.iter().map(|c| json!({
            "name": c.name,
            "pending": c.pending,
            "ack_pending": c.ack_pending,
            "redelivered": c.redelivered,
            "waiting": c.waiting,
        })).collect::<Vec<_>>(),
    })
}

#[async_trait]
impl EventQueue for Cluster {
    fn backend(&self) -> &'static str {
        "jetstream"
    }

    async fn enqueue(&self, event: Event) -> Result<(), Error> {
        match self.jetstream() {
            Some(js) => js.enqueue(event).await,
            None => Err(Error::unavailable(format!(
                "the JetStream queue is not available: {}",
                self.problem().unwrap_or_default()
            ))
            .with_retry_after(vowguard_jetstream::RETRY_AFTER)),
        }
    }
}

/// What the workers of a replica are built from.
struct Workers {
    sinks: Vec<SinkSpec>,
    enrichers: Enrichers,
    alerts: AlertSetup,
    dead_letters: Arc<dyn DeadLetterStorage>,
}

impl Workers {
    async fn start(
        &self,
        js: &JetStream,
        owner: &str,
        stop: watch::Receiver<bool>,
    ) -> Result<(JetStreamDelivery, WebhookState, Option<JoinHandle<()>>), Error> {
        let config = js.config();
        let stream = &config.stream.name;
        let lease_ttl = config.consumers.ack_wait.max(Duration::from_secs(5));
        let buckets = async {
            let sent = js
                .shared_state(&format!("{stream}_sent"), SENT_MEMORY, owner)
                .await?;
            let leases = js
                .shared_state(&format!("{stream}_leases"), lease_ttl, owner)
                .await?;
            let seen = js
                .shared_state(&format!("{stream}_webhooks"), WEBHOOK_MEMORY, owner)
                .await?;
            let rates = js
                .shared_state(
                    &format!("{stream}_ratelimits"),
                    crate::cluster_state::RATE_WINDOW * 6,
                    owner,
                )
                .await?;
            let notification_log = js
                .shared_log(
                    &notification_log_name(stream),
                    NOTIFICATION_LOG_AGE,
                    NOTIFICATION_LOG_RECORDS,
                )
                .await?;
            Ok::<_, Error>((sent, leases, seen, rates, notification_log))
        };
        let (sent, leases, seen, rates, notification_log) = buckets.await?;
        // Groups are kept longer than any grouping timer runs (a flush rewrites them).
        let longest = self
            .alerts
            .inhibition
            .as_ref()
            .map_or(Duration::ZERO, |router| router.longest_group_timer());
        let groups = KvAlertGroups::new(
            js.shared_state(
                &format!("{stream}_groups"),
                longest.max(GROUP_MEMORY) + GROUP_MEMORY,
                owner,
            )
            .await?,
        );
        let rate_limits = KvRateLimits::new(rates);
        let inhibition = match &self.alerts.inhibition {
            Some(router) if router.inhibitor().has_rules() => {
                // Kept as long as the longest rule mutes (at least a minute).
                let ttl = router
                    .inhibitor()
                    .longest_duration()
                    .max(Duration::from_secs(60));
                let bucket = js
                    .shared_state(&format!("{stream}_inhibition"), ttl, owner)
                    .await?;
                router.share_inhibition();
                Some((router.clone(), KvInhibition::new(bucket)))
            }
            _ => None,
        };
        if let Some(engine) = &self.alerts.response {
            let incidents = js
                .shared_state(&format!("{stream}_incidents"), RESPONSE_MEMORY, owner)
                .await?;
            let finished = js
                .shared_state(&format!("{stream}_runs"), RESPONSE_MEMORY, owner)
                .await?;
            let states = js
                .shared_state(&format!("{stream}_runstate"), RESPONSE_MEMORY, owner)
                .await?;
            engine.coordinate_with(Arc::new(KvResponseCoordination::new(
                incidents,
                finished,
                leases.clone(),
                states,
                lease_ttl,
            )));
        }
        let webhooks = WebhookState {
            leases: leases.clone(),
            seen,
        };
        let mut delivery =
            JetStreamDelivery::start(js, self.sinks.clone(), self.dead_letters.clone()).await?;
        if !self.enrichers.is_empty()
            && let Err(e) = delivery
                .add_enrichment(js, self.enrichers.clone(), self.dead_letters.clone())
                .await
        {
            delivery.shutdown().await;
            return Err(e);
        }
        let mut flusher = None;
        if !self.alerts.notifiers.is_empty() {
            let handler = AlertHandler {
                router: self.alerts.router.clone(),
                notifiers: self
                    .alerts
                    .notifiers
                    .iter()
                    .map(|n| (n.id.clone(), n.clone()))
                    .collect(),
                inhibition,
                sent,
                leases,
                groups,
                renew_every: (lease_ttl / 3).max(Duration::from_millis(100)),
                rate_limits,
                notification_log,
                dead_letters: self.dead_letters.clone(),
            };
            let handler = Arc::new(handler);
            flusher = Some(tokio::spawn(
                GroupFlusher {
                    handler: handler.clone(),
                    stop,
                    due: HashMap::new(),
                    keys: HashMap::new(),
                    backoff: HashMap::new(),
                }
                .run(),
            ));
            if let Err(e) = delivery
                .add(
                    js,
                    ALERTS_CONSUMER,
                    handler,
                    RetryPolicy::default(),
                    Duration::from_millis(100),
                )
                .await
            {
                delivery.shutdown().await;
                if let Some(flusher) = flusher {
                    flusher.abort();
                }
                return Err(e);
            }
        }
        Ok((delivery, webhooks, flusher))
    }
}

/// Webhook deliveries across replicas: a lease while one replica publishes a delivery's
/// events, a "seen" mark once they are stored.
#[derive(Debug, Clone)]
struct WebhookState {
    leases: SharedState,
    seen: SharedState,
}

/// What a replica may do with a webhook delivery (see [`Cluster::claim_webhook`]).
#[derive(Debug)]
pub enum WebhookClaim {
    /// Not seen by any replica: publish it, then [`Cluster::commit_webhook`].
    Fresh(vowguard_jetstream::Lease),
    /// Already stored by some replica: answer as a duplicate.
    Replay,
    /// Another replica is publishing it right now.
    InFlight,
}

impl Cluster {
    fn webhook_key(source: &str, key: &[u8]) -> String {
        let mut out = format!("webhook/{source}/");
        vowguard_core::hex::encode_into(key, &mut out);
        out
    }

    /// Claims webhook delivery `key` of `source` across the replicas (the local replay
    /// guard has claimed it on this one). Without a connection nothing can be claimed:
    /// `Unavailable` (the sender retries).
    pub async fn claim_webhook(&self, source: &str, key: &[u8]) -> Result<WebhookClaim, Error> {
        let Some(state) = read(&self.webhooks) else {
            return Err(Error::unavailable("the JetStream queue is not available")
                .with_retry_after(vowguard_jetstream::RETRY_AFTER));
        };
        let k = Self::webhook_key(source, key);
        if state.seen.holder(&k).await?.is_some() {
            return Ok(WebhookClaim::Replay);
        }
        let Some(lease) = state.leases.acquire(&k).await? else {
            return Ok(WebhookClaim::InFlight);
        };
        if state.seen.holder(&k).await?.is_some() {
            state.leases.release(lease).await?;
            return Ok(WebhookClaim::Replay);
        }
        Ok(WebhookClaim::Fresh(lease))
    }

    /// Marks the delivery stored (its events are in the stream) and releases the claim.
    pub async fn commit_webhook(&self, source: &str, key: &[u8], lease: vowguard_jetstream::Lease) {
        let Some(state) = read(&self.webhooks) else {
            return;
        };
        let k = Self::webhook_key(source, key);
        if let Err(e) = state.seen.mark_once(&k).await {
            tracing::warn!(source, error = %e, "webhook delivery not marked as seen across replicas; a retry may be published again");
        }
        let _ = state.leases.release(lease).await;
    }

    /// Gives the claim up (the events were not stored): the sender's retry is processed.
    pub async fn release_webhook(&self, lease: vowguard_jetstream::Lease) {
        if let Some(state) = read(&self.webhooks) {
            let _ = state.leases.release(lease).await;
        }
    }
}

/// The alert path on the stream: routes each event and sends each alert once per group
/// and channel across the cluster.
struct AlertHandler {
    router: Arc<dyn AlertRouting>,
    /// The router's inhibition, shared through KV.
    inhibition: Option<(Arc<vowguard_router::Router>, KvInhibition)>,
    notifiers: HashMap<String, NotifierSpec>,
    sent: SharedState,
    leases: SharedState,
    /// The alert groups of all replicas.
    groups: KvAlertGroups,
    /// How often a flush renews its claim on a group.
    renew_every: Duration,
    /// Each notifier's rate limit, counted for the whole cluster.
    rate_limits: KvRateLimits,
    /// The cluster's notification log (every replica's sends).
    notification_log: SharedLog,
    dead_letters: Arc<dyn DeadLetterStorage>,
}

/// What one (alert, channel) came to.
enum Sent {
    Sent,
    AlreadySent,
}

impl AlertHandler {
    async fn route(&self, event: Event) -> Result<(), Error> {
        let event = Arc::new(event);
        // What other replicas remembered that could mute this event's alert, before the
        // (local, indexed) check; what this replica remembers, before anything is sent.
        if let Some((router, shared)) = &self.inhibition {
            router.load_shared_inhibition(&event, shared).await?;
        }
        let routed = self.router.route(&event);
        if let Some((router, shared)) = &self.inhibition {
            router.store_shared_inhibition(shared).await?;
        }
        let mut outcome = Ok(());
        for (index, mut routed) in routed.into_iter().enumerate() {
            // The same event routed again (a redelivery) gets the same alert id.
            routed.alert.id = Alert::derive_id(&["jetstream", &event.id, &index.to_string()]);
            self.router.on_routed(&routed);
            // A grouped alert joins its group in KV (the flusher of some replica sends the
            // group's notification when group_wait / group_interval have passed); once it
            // is stored there the event may be acked.
            if let Some(g) = self.router.grouping(&routed) {
                let timing = vowguard_router::GroupTiming {
                    group_wait: g.group_wait,
                    group_interval: g.group_interval,
                    repeat_interval: g.repeat_interval,
                    forget_after: g.forget_after,
                };
                match self
                    .groups
                    .offer(&g.key, &routed.notifiers, timing, &routed.alert)
                    .await
                {
                    Ok(Grouped::Stored) => {
                        metrics::counter!("vowguard_cluster_alerts_grouped_total").increment(1);
                        continue;
                    }
                    Ok(Grouped::TooLarge) => {
                        tracing::warn!(alert_id = %routed.alert.id, group = %g.key, "alert too large for a shared group; sent ungrouped");
                    }
                    Err(e) => {
                        tracing::warn!(alert_id = %routed.alert.id, error = %e, "alert not stored in its shared group; the event comes again");
                        outcome = Err(e);
                        continue;
                    }
                }
            }
            // Ungrouped: once per alert (its id is stable across redeliveries) and channel.
            if let Err(e) = self
                .send_to_channels(&routed.alert.id, &routed.notifiers, &routed.alert)
                .await
                && (outcome.is_ok() || e.is_retryable())
            {
                outcome = Err(e);
            }
        }
        outcome
    }

    /// Sends `alert` to every notifier in `notifiers` that has no "already sent" mark
    /// under `key/<notifier>`. A retryable failure wins over others: the caller tries
    /// again later and only the channels without a mark are tried.
    async fn send_to_channels(
        &self,
        key: &str,
        notifiers: &[String],
        alert: &Alert,
    ) -> Result<(), Error> {
        let mut outcome = Ok(());
        for notifier in notifiers {
            let channel_key = format!("{key}/{notifier}");
            let result = self.send_once(&channel_key, notifier, alert).await;
            let label = match &result {
                Ok(Sent::Sent) => "sent",
                Ok(Sent::AlreadySent) => "already_sent",
                Err(_) => "failed",
            };
            metrics::counter!("vowguard_cluster_notifications_total", "notifier" => notifier.clone(), "outcome" => label).increment(1);
            if let Err(e) = result {
                tracing::warn!(notifier = %notifier, alert_id = %alert.id, error = %e, "notification not sent");
                if outcome.is_ok() || e.is_retryable() {
                    outcome = Err(e);
                }
            }
        }
        outcome
    }

    async fn send_once(&self, key: &str, notifier: &str, alert: &Alert) -> Result<Sent, Error> {
        let Some(spec) = self.notifiers.get(notifier) else {
            tracing::error!(notifier, route = %alert.route, "route names an unknown notifier");
            return Ok(Sent::AlreadySent);
        };
        if self.sent.holder(key).await?.is_some() {
            return Ok(Sent::AlreadySent);
        }
        let Some(lease) = self.leases.acquire(key).await? else {
            let holder = self.leases.holder(key).await.ok().flatten();
            return Err(Error::unavailable(format!(
                "alert group {key} is being notified by replica {}",
                holder.as_deref().unwrap_or("(unknown)")
            ))
            .with_retry_after(Duration::from_secs(1)));
        };
        // Another replica may have sent and released between the check and the lease.
        if self.sent.holder(key).await?.is_some() {
            self.leases.release(lease).await?;
            return Ok(Sent::AlreadySent);
        }
        if let Some(limit) = spec.rate_limit.or_else(|| spec.notifier.rate_limit())
            && let Err(e) = self.rate_limits.admit(notifier, limit).await
        {
            self.leases.release(lease).await?;
            return Err(e);
        }
        let (result, attempts) = spec.retry.run(|_| spec.notifier.notify(alert)).await;
        // The "already sent" mark first: a replica killed between the send and the mark
        // means the group is paged again by the replica that takes it over, so nothing
        // else (the notification log's round trip) may widen that window.
        if result.is_ok()
            && let Err(e) = self.sent.mark_once(key).await
        {
            // Sent but not marked: a redelivery could send it again; said loudly.
            tracing::error!(key, error = %e, "notification sent but the \"already sent\" mark was not stored");
        }
        self.log_notification(notifier, alert, &result, attempts)
            .await;
        let outcome = match result {
            Ok(_) => {
                tracing::info!(notifier, alert_id = %alert.id, priority = ?alert.priority, "notification sent");
                Ok(Sent::Sent)
            }
            Err(e) => Err(e),
        };
        self.leases.release(lease).await?;
        outcome
    }
}

/// What one flush attempt of a shared group came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    /// The notification reached every channel (or had before).
    Sent,
    /// Nothing due yet: due at these Unix milliseconds.
    NotDue(i64),
    /// Another replica holds the group's flush claim.
    Busy,
    /// The group is gone (flushed and forgotten, or expired).
    Gone,
}

/// How often each replica looks for due groups among those its watch reported.
const FLUSH_TICK: Duration = Duration::from_millis(250);

/// Most groups one replica flushes at once.
const FLUSH_CONCURRENCY: usize = 8;

impl AlertHandler {
    /// Flushes group `key` if it is due: claims it (a lease, so two replicas never both
    /// flush it), seals its notification in KV (compare-and-set), sends it to each channel
    /// once (the "already sent" marks are named by the group's generation, so a replica
    /// taking over a sealed notification skips the channels that have it), then clears
    /// it. A replica that dies anywhere in between leaves the group (pending or sealed)
    /// in KV, and its claim expires: another replica flushes it.
    async fn flush_group(&self, key: &str) -> Result<Flushed, Error> {
        let claim_key = format!("flush/{key}");
        let Some(lease) = self.leases.acquire(&claim_key).await? else {
            return Ok(Flushed::Busy);
        };
        let result = self.flush_claimed(key, lease.clone()).await;
        if let Err(e) = self.leases.release(lease).await {
            tracing::debug!(group = %key, error = %e, "group flush claim not released; it expires");
        }
        result
    }

    async fn flush_claimed(
        &self,
        key: &str,
        lease: vowguard_jetstream::Lease,
    ) -> Result<Flushed, Error> {
        // A group with nothing pending or sealed and no alert for `forget_after` is
        // deleted (no more repeats), as the single-process grouper forgets it.
        if let Some((group, revision)) = self.groups.read(key).await?
            && group.forgotten(now_ms())
        {
            return Ok(if self.groups.delete(key, revision).await {
                Flushed::Gone
            } else {
                Flushed::NotDue(group.due_at_ms())
            });
        }
        let mut sealed = None;
        let mut not_due = None;
        let found = self
            .groups
            .change(key, |group| {
                let was_sealed = group.sealed().is_some();
                match group.seal(now_ms()) {
                    Some(alert) => {
                        sealed = Some((group.generation(), alert, group.notifiers.clone()));
                        not_due = None;
                        ((), !was_sealed)
                    }
                    None => {
                        sealed = None;
                        not_due = Some(group.due_at_ms());
                        ((), false)
                    }
                }
            })
            .await?;
        if found.is_none() {
            return Ok(Flushed::Gone);
        }
        let Some((generation, alert, notifiers)) = sealed else {
            return Ok(Flushed::NotDue(not_due.unwrap_or(i64::MAX)));
        };
        // Sending can take a while (retries, rate limits): the claim is renewed meanwhile.
        // A claim lost anyway (this replica stalled) leaves the channels guarded by their
        // own leases and marks.
        let prefix = format!("group/{key}/{generation}");
        let send = self.send_to_channels(&prefix, &notifiers, &alert);
        let mut send = std::pin::pin!(send);
        let mut lease = Some(lease);
        let mut renew = tokio::time::interval(self.renew_every);
        renew.tick().await;
        let sent = loop {
            tokio::select! {
                sent = &mut send => break sent,
                _ = renew.tick() => {
                    if let Some(held) = &lease {
                        match self.leases.renew(held).await {
                            Ok(Some(renewed)) => lease = Some(renewed),
                            Ok(None) => {
                                tracing::warn!(group = %key, "group flush claim taken over while sending; the channels' own marks keep each page single");
                                lease = None;
                            }
                            Err(e) => tracing::warn!(group = %key, error = %e, "group flush claim not renewed"),
                        }
                    }
                }
            }
        };
        sent?;
        self.groups
            .change(key, |group| ((), group.sent(generation)))
            .await?;
        tracing::info!(group = %key, generation, alert_id = %alert.id, size = %alert.params.get("group_size").cloned().unwrap_or_default(), "group notification sent");
        Ok(Flushed::Sent)
    }
}

/// Each replica's side of flushing the shared groups: a watch on the groups bucket keeps
/// every group's due time here; every [`FLUSH_TICK`] the due ones are flushed (whichever
/// replica claims a group first flushes it).
struct GroupFlusher {
    handler: Arc<AlertHandler>,
    stop: watch::Receiver<bool>,
    /// Due time (Unix ms) per group key, from the watch.
    due: HashMap<String, i64>,
    /// Group key per stored KV key (a delete names only the stored key).
    keys: HashMap<String, String>,
    /// Groups whose last flush failed: not tried again before this, and how often.
    backoff: HashMap<String, (tokio::time::Instant, u32)>,
}

impl GroupFlusher {
    async fn run(mut self) {
        let policy = RetryPolicy::default().with_max_attempts(u32::MAX);
        let mut watch_failures = 0u32;
        loop {
            if *self.stop.borrow() {
                return;
            }
            let changes = match self.handler.groups.bucket().watch().await {
                Ok(changes) => changes,
                Err(e) => {
                    watch_failures = watch_failures.saturating_add(1);
                    let delay = policy.delay(watch_failures, &e);
                    tracing::warn!(error = %e, ?delay, "cannot watch the shared alert groups; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = self.stop.changed() => return,
                    }
                }
            };
            watch_failures = 0;
            let mut changes = std::pin::pin!(changes);
            let mut tick = tokio::time::interval(FLUSH_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    change = changes.next() => match change {
                        Some(Ok((stored, value))) => self.learn(stored, value),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "shared alert group watch broke; watching again");
                            break;
                        }
                        None => break,
                    },
                    _ = tick.tick() => self.flush_due().await,
                    _ = self.stop.changed() => return,
                }
            }
        }
    }

    fn learn(&mut self, stored: String, value: Option<Vec<u8>>) {
        match value.and_then(|v| serde_json::from_slice::<vowguard_router::SharedGroup>(&v).ok()) {
            Some(group) => {
                self.due.insert(group.key.clone(), group.due_at_ms());
                self.keys.insert(stored, group.key);
            }
            None => {
                if let Some(key) = self.keys.remove(&stored) {
                    self.due.remove(&key);
                    self.backoff.remove(&key);
                }
            }
        }
    }

    async fn flush_due(&mut self) {
        let now = now_ms();
        let instant = tokio::time::Instant::now();
        let mut due: Vec<String> = self
            .due
            .iter()
            .filter(|(key, at)| {
                **at <= now
                    && self
                        .backoff
                        .get(*key)
                        .is_none_or(|(after, _)| *after <= instant)
            })
            .map(|(key, _)| key.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        due.sort();
        let handler = self.handler.clone();
        let results: Vec<(String, Result<Flushed, Error>)> = futures::stream::iter(due)
            .map(|key| {
                let handler = handler.clone();
                async move {
                    let result = handler.flush_group(&key).await;
                    (key, result)
                }
            })
            .buffer_unordered(FLUSH_CONCURRENCY)
            .collect()
            .await;
        let policy = RetryPolicy::default();
        for (key, result) in results {
            match result {
                // The watch reports the group's new due time; until then it is not due.
                Ok(Flushed::Sent) => {
                    self.due.insert(key.clone(), i64::MAX);
                    self.backoff.remove(&key);
                }
                Ok(Flushed::NotDue(at)) => {
                    self.due.insert(key.clone(), at);
                }
                Ok(Flushed::Gone) => {
                    self.due.remove(&key);
                    self.backoff.remove(&key);
                }
                // Another replica flushes it (or holds it until its claim expires).
                Ok(Flushed::Busy) => {
                    let after = instant + self.handler.renew_every;
                    self.backoff.insert(key, (after, 0));
                }
                Err(e) => {
                    let failures = self
                        .backoff
                        .get(&key)
                        .map_or(0, |(_, n)| *n)
                        .saturating_add(1);
                    let delay = policy.delay(failures, &e);
                    tracing::warn!(group = %key, error = %e, ?delay, "group notification not sent; trying again");
                    self.backoff.insert(key, (instant + delay, failures));
                }
            }
        }
    }
}

impl AlertHandler {
    /// Appends the outcome of one send to the cluster's notification log (a failure to do
    /// so is logged; the notification itself stands).
    async fn log_notification(
        &self,
        notifier: &str,
        alert: &Alert,
        result: &Result<vowguard_core::Receipt, Error>,
        attempts: u32,
    ) {
        let record = NotificationRecord {
            time: chrono::Utc::now(),
            alert_id: alert.id.clone(),
            dedup_key: alert.dedup_key.clone(),
            route: alert.route.clone(),
            notifier: notifier.to_owned(),
            priority: alert.priority,
            event_id: alert.event.id.clone(),
            delivered: result.is_ok(),
            delivery_id: result.as_ref().ok().and_then(|r| r.delivery_id.clone()),
            error: result.as_ref().err().map(ToString::to_string),
            attempts,
            group_size: None,
        };
        let line = serde_json::to_vec(&record).expect("a record always serialises");
        if let Err(e) = self.notification_log.append(line).await {
            tracing::warn!(notifier, alert_id = %alert.id, error = %e, "notification not written to the cluster's notification log");
        }
    }
}

/// How long the cluster's notification log keeps records, and how many at most.
const NOTIFICATION_LOG_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const NOTIFICATION_LOG_RECORDS: i64 = 100_000;

/// The name of the cluster's notification log stream for event stream `stream`.
fn notification_log_name(stream: &str) -> String {
    format!("{stream}_notifications")
}

/// `vowguard cluster notifications`: the newest `limit` records of the cluster's
/// notification log (every replica's sends), oldest first.
pub async fn notifications_of(
    setup: &ClusterSetup,
    limit: usize,
) -> Result<Vec<NotificationRecord>, Error> {
    let js = setup.connect().await?;
    let log = js
        .shared_log(
            &notification_log_name(&setup.config.stream.name),
            NOTIFICATION_LOG_AGE,
            NOTIFICATION_LOG_RECORDS,
        )
        .await?;
    Ok(log
        .recent(limit)
        .await?
        .iter()
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect())
}

/// Renders [`notifications_of`]'s answer as text, one line per send (event fields
/// escaped).
pub fn render_notifications(records: &[NotificationRecord]) -> String {
    use crate::logging::escape_control as esc;
    let mut out = String::new();
    for r in records {
        out.push_str(&format!(
            "{} {} {} alert={} event={} route={} attempts={}{}\n",
            r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            esc(&r.notifier),
            if r.delivered { "delivered" } else { "failed" },
            esc(&r.alert_id),
            esc(&r.event_id),
            esc(&r.route),
            r.attempts,
            r.error
                .as_deref()
                .map(|e| format!(" error={}", esc(e)))
                .unwrap_or_default(),
        ));
    }
    out
}

fn decode(delivery: &Delivery) -> Result<Event, Error> {
    serde_json::from_slice(delivery.payload()).map_err(|e| {
        Error::rejected(format!(
            "stream message {:?} is not a vowguard event: {e}",
            delivery.event_id()
        ))
    })
}

#[async_trait]
impl BatchHandler for AlertHandler {
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Result<(), Error>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            outcomes.push(match decode(delivery) {
                Ok(event) => self.route(event).await,
                Err(e) => Err(e),
            });
        }
        outcomes
    }

    async fn dead_letter(&self, delivery: &Delivery, error: &Error) -> Result<(), Error> {
        match decode(delivery) {
            Ok(event) => {
                let letter = DeadLetter::new(ALERTS_CONSUMER, &event, error, delivery.attempt());
                self.dead_letters.write(Arc::from(vec![letter])).await
            }
            Err(e) => {
                tracing::error!(error = %e, "dropping a stream message that is not an event");
                Ok(())
            }
        }
    }
}

/// Publishes `event`, waiting while the queue cannot take it (NATS down or restarting):
/// the backpressure of a source that has no client to answer 503 to. `Err` only for an
/// event the queue refuses for good, or when `stop` completes first.
pub async fn enqueue_waiting(
    queue: &dyn EventQueue,
    event: Event,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let policy = RetryPolicy::default().with_max_attempts(u32::MAX);
    let mut stop = std::pin::pin!(stop);
    let mut failures = 0u32;
    loop {
        match queue.enqueue(event.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() => {
                failures = failures.saturating_add(1);
                let delay = policy.delay(failures, &e);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(event_id = %event.id, error = %e, ?delay, "the queue cannot take events; waiting");
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    () = &mut stop => return Err(Error::new(ErrorKind::Unavailable, "stopped while waiting for the queue")),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Most events of the stdin source being published at once.
const STDIN_IN_FLIGHT: usize = 256;

/// Hands stdin events to the queue, [`STDIN_IN_FLIGHT`] at a time.
struct ToQueue {
    queue: Arc<dyn EventQueue>,
    stopped: watch::Receiver<bool>,
    in_flight:
        futures::stream::FuturesUnordered<futures::future::BoxFuture<'static, Result<(), Error>>>,
    refused: u64,
}

impl ToQueue {
    fn settled(&mut self, result: Result<(), Error>) {
        if let Err(e) = result {
            self.refused += 1;
            tracing::error!(error = %e, "event not queued");
        }
    }
}

impl crate::source::Accept for ToQueue {
    async fn accept(&mut self, event: Event) -> bool {
        let queue = self.queue.clone();
        let mut stopped = self.stopped.clone();
        self.in_flight.push(Box::pin(async move {
            enqueue_waiting(queue.as_ref(), event, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        }));
        if self.in_flight.len() >= STDIN_IN_FLIGHT
            && let Some(result) = self.in_flight.next().await
        {
            self.settled(result);
        }
        true
    }
}

/// Reads NDJSON events from `input` and publishes them (up to 256 (`STDIN_IN_FLIGHT`) at
/// once; each waits while the queue cannot take it) until the input ends or `stop`
/// completes. `accepted` counts the events the queue stored.
pub async fn read_ndjson_to_queue<R, S>(
    source_id: &str,
    input: R,
    max_line_bytes: usize,
    queue: Arc<dyn EventQueue>,
    stop: S,
) -> std::io::Result<crate::SourceStats>
where
    R: tokio::io::AsyncBufRead + Unpin,
    S: std::future::Future<Output = ()> + Clone,
{
    let (stop_tx, stopped) = watch::channel(false);
    let mut sink = ToQueue {
        queue,
        stopped,
        in_flight: futures::stream::FuturesUnordered::new(),
        refused: 0,
    };
    let mut stats =
        crate::source::read_events(source_id, input, max_line_bytes, stop.clone(), &mut sink)
            .await?;
    if stats.stopped {
        let _ = stop_tx.send(true);
    }
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            next = sink.in_flight.next() => match next {
                Some(result) => sink.settled(result),
                None => break,
            },
            () = &mut stop, if !*stop_tx.borrow() => {
                let _ = stop_tx.send(true);
            }
        }
    }
    stats.accepted = stats.accepted.saturating_sub(sink.refused);
    stats.rejected += sink.refused;
    Ok(stats)
}

/// `vowguard cluster status`: connects with the config's `[queue]` and reads the stream.
pub async fn status_of(setup: &ClusterSetup) -> Result<Value, Error> {
    let js = setup.connect().await?;
    let status = js.status().await?;
    Ok(json!({
        "backend": "jetstream",
        "servers": setup.config.connection.servers,
        "connected": js.is_connected(),
        "stream": stream_json(&status),
    }))
}

/// Renders [`status_of`]'s answer as text.
pub fn render_status(status: &Value) -> String {
    let mut out = String::new();
    let stream = &status["stream"];
    out.push_str(&format!(
        "stream {}: {} events, {} bytes, {} replica(s); connected to {}: {}\n",
        stream["name"].as_str().unwrap_or("?"),
        stream["messages"],
        stream["bytes"],
        stream["replicas"],
        status["servers"]
            .as_array()
            .map(|s| s
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        status["connected"],
    ));
    out.push_str(&format!(
        "{:<24} {:>10} {:>12} {:>12} {:>8}\n",
        "consumer", "pending", "ack_pending", "redelivered", "waiting"
    ));
    for c in stream["consumers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<24} {:>10} {:>12} {:>12} {:>8}\n",
            crate::logging::escape_control(c["name"].as_str().unwrap_or("?")),
            c["pending"],
            c["ack_pending"],
            c["redelivered"],
            c["waiting"],
        ));
    }
    out
}

/// The admin route `GET /api/cluster/status` (bearer token).
pub fn router(
    cluster: Option<Arc<Cluster>>,
    token: Option<vowguard_core::secrecy::SecretString>,
) -> axum::Router {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    type St = (
        Option<Arc<Cluster>>,
        Option<vowguard_core::secrecy::SecretString>,
    );
    async fn status(State(state): State<Arc<St>>, headers: HeaderMap) -> axum::response::Response {
        if let Err(refused) = crate::server::authorize_token(state.1.as_ref(), &headers) {
            return refused;
        }
        match &state.0 {
            Some(cluster) => axum::Json(cluster.status().await).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "backend": "local", "error": "not in cluster mode: `[queue] type = \"jetstream\"` is not configured" })),
            )
                .into_response(),
        }
    }
    axum::Router::new()
        .route("/api/cluster/status", axum::routing::get(status))
        .with_state(Arc::new((cluster, token)))
}

//! `POST /v1/webhooks/{source_id}`: verified, replay-proof intake from external tools
//! (`[webhooks.<id>]`), and `vowguard webhook sign|verify`.
//!
//! Per request, in order: the source is looked up (an unknown id is `404` with the same
//! body whatever ids exist), its rate limit taken (`429`), the body read within
//! `max_body_bytes` (`413`) and `body_timeout` (`408`), the signature checked on the raw
//! bytes (`401` with no detail), the payload mapped (`400`), the delivery claimed in the
//! replay guard (a processed delivery is `200` again without processing; one being
//! processed right now is `409`), the events submitted through the same path as
//! `POST /v1/events`, and `200` only once they are durable. Incident updates (PagerDuty
//! acknowledged/resolved, Slack "Acknowledge", Jira / ServiceNow ticket status changes) are
//! applied after that; a ticket status goes to the incident whose ticket it is and is never
//! pushed back to that ticket. The replay guards are opened ([`ReplayGuards::open`]) before
//! anything else of `vowguard run` starts. Every outcome is
//! counted per source and reason in `/metrics`; secrets never leave the verifier.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vowguard_core::{Error, ErrorKind, RateLimit};
use vowguard_pipeline::Pipeline;
use vowguard_response::{IncidentState, TicketStatusChange, TicketSync};
use vowguard_webhooks::{
    Claim, IncidentChange, IncidentSync, Refusal, ReplayGuard, Request, Source, TicketStatus,
};

use crate::server::{ServerState, json_error};

/// A token bucket that refuses instead of waiting.
#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.limit.per_second;
        self.tokens = (self.tokens + refill).min(f64::from(self.limit.burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One configured source at run time.
#[derive(Debug)]
struct Live {
    source: Source,
    guard: ReplayGuard,
    bucket: Option<Mutex<Bucket>>,
    accepted: AtomicU64,
    replayed: AtomicU64,
    events: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// jira / servicenow: the ticket system ids whose tickets this source updates.
    ticket_systems: Vec<String>,
    /// Ticket status changes by result (`applied`, `unknown_ticket`, ...).
    ticket_sync: Mutex<BTreeMap<&'static str, u64>>,
}

impl Live {
    fn refuse(&self, reason: &'static str) {
        *lock(&self.refused).entry(reason).or_default() += 1;
    }

    fn ticket_synced(&self, result: &'static str) {
        *lock(&self.ticket_sync).entry(result).or_default() += 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The webhook intake of a running server.
#[derive(Debug)]
pub struct Intake {
    sources: HashMap<String, Live>,
    pipeline: Arc<Pipeline>,
    response: Option<vowguard_response::ResponseEngine>,
    unknown: AtomicU64,
    /// The JetStream queue the events go to instead of the local pipeline, when set.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Where the replay guards live.
pub fn replay_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("webhooks")
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The webhook sources with their replay guards open, before anything else starts:
/// [`ReplayGuards::open`] at the very start of `vowguard run`, [`ReplayGuards::start`] once
/// the pipeline runs.
#[derive(Debug)]
pub struct ReplayGuards {
    opened: Vec<(Source, ReplayGuard)>,
}

impl ReplayGuards {
    /// Opens the replay guard of every source (`<replay_dir>/<id>.replay`, by default
    /// `<data_dir>/webhooks`). An error names the source's `replay_dir` key and the path.
    pub fn open(sources: Vec<Source>, data_dir: &Path) -> Result<Self, Error> {
        let default_dir = replay_dir(data_dir);
        let now = now_unix();
        let mut opened = Vec::with_capacity(sources.len());
        for source in sources {
            let (dir, key) = match &source.replay_dir {
                Some(dir) => (dir.clone(), format!("`webhooks.{}.replay_dir`", source.id)),
                None => (
                    default_dir.clone(),
                    format!(
                        "`webhooks.{}.replay_dir` (default `<data_dir>/webhooks`)",
                        source.id
                    ),
                ),
            };
            let guard = ReplayGuard::open(&dir, &source.id, source.replay_window_secs, now)
                .map_err(|e| {
                    Error::io(
                        format!(
                            "{key}: cannot open the replay guard {}",
                            dir.join(format!("{}.replay", source.id)).display()
                        ),
                        e,
                    )
                })?;
            opened.push((source, guard));
        }
        Ok(Self { opened })
    }

    /// The intake serving the opened sources; `None` when no source is configured.
    pub fn start(
        self,
        pipeline: Arc<Pipeline>,
        response: Option<vowguard_response::ResponseEngine>,
    ) -> Option<Intake> {
        if self.opened.is_empty() {
            return None;
        }
        let mut live = HashMap::new();
        for (source, guard) in self.opened {
            let bucket = source.rate_limit.map(|l| Mutex::new(Bucket::new(l)));
            let ticket_systems = match (&source.ticket_system, source.vendor) {
                (Some(system), _) => vec![system.clone()],
                (None, vowguard_webhooks::Vendor::Jira) => response
                    .as_ref()
                    .map(|e| e.ticket_systems_of_kind("jira"))
                    .unwrap_or_default(),
                (None, vowguard_webhooks::Vendor::ServiceNow) => response
                    .as_ref()
                    .map(|e| e.ticket_systems_of_kind("servicenow"))
                    .unwrap_or_default(),
                (None, _) => Vec::new(),
            };
            live.insert(
                source.id.clone(),
                Live {
                    source,
                    guard,
                    bucket,
                    accepted: AtomicU64::new(0),
                    replayed: AtomicU64::new(0),
                    events: AtomicU64::new(0),
                    refused: Mutex::new(BTreeMap::new()),
                    ticket_systems,
                    ticket_sync: Mutex::new(BTreeMap::new()),
                },
            );
        }
        Some(Intake {
            sources: live,
            pipeline,
            response,
            unknown: AtomicU64::new(0),
            cluster: None,
        })
    }
}

impl Intake {
    /// Opens the replay guard of every source and starts the intake ([`ReplayGuards`] in
    /// one go, for hosts that have nothing to start in between). `None` when no source is
    /// configured.
    pub fn open(
        sources: Vec<Source>,
        data_dir: &Path,
        pipeline: Arc<Pipeline>,
        response: Option<vowguard_response::ResponseEngine>,
    ) -> Result<Option<Self>, Error> {
        Ok(ReplayGuards::open(sources, data_dir)?.start(pipeline, response))
    }

    /// Sends the events to the JetStream queue (`[queue] type = "jetstream"`) instead of
    /// the local pipeline: the sender gets its 2xx only after every PubAck.
    pub fn with_cluster(mut self, cluster: Option<Arc<crate::cluster::Cluster>>) -> Self {
        self.cluster = cluster;
        self
    }

    /// Publishes the webhook counters through the `metrics` facade (rendered on `/metrics`
    /// by the exporter, like the pipeline's counters; a host's recorder sees them too).
    pub fn emit(&self) {
        metrics::counter!("vowguard_webhook_unknown_source_total")
            .absolute(self.unknown.load(Ordering::Relaxed));
        for (id, live) in &self.sources {
            let source = id.clone();
            metrics::counter!("vowguard_webhook_requests_total", "source" => source.clone(), "result" => "accepted")
                .absolute(live.accepted.load(Ordering::Relaxed));
            metrics::counter!("vowguard_webhook_requests_total", "source" => source.clone(), "result" => "replayed")
                .absolute(live.replayed.load(Ordering::Relaxed));
            metrics::counter!("vowguard_webhook_events_total", "source" => source.clone())
                .absolute(live.events.load(Ordering::Relaxed));
            for (reason, count) in lock(&live.refused).iter() {
                metrics::counter!("vowguard_webhook_refused_total", "source" => source.clone(), "reason" => *reason)
                    .absolute(*count);
            }
            for (result, count) in lock(&live.ticket_sync).iter() {
                metrics::counter!("vowguard_webhook_ticket_sync_total", "source" => source.clone(), "result" => *result)
                    .absolute(*count);
            }
        }
    }

    /// Applies an incident update from the other side; failures are logged, never sent
    /// back (the sender cannot fix them, and a retry would not help).
    async fn sync(&self, source_id: &str, sync: &IncidentSync) {
        let Some(engine) = &self.response else {
            tracing::info!(
                source = source_id,
                "webhook incident update ignored: automated response is off"
            );
            return;
        };
        let incident = engine
            .incident(&sync.reference)
            .or_else(|| engine.open_incident_for(&sync.reference));
        let Some(incident) = incident else {
            tracing::info!(
                source = source_id,
                "webhook incident update names no open vowguard incident"
            );
            return;
        };
        let result = match sync.change {
            IncidentChange::Acknowledge => engine.acknowledge(&incident.id, &sync.actor).await,
            IncidentChange::Resolve => {
                engine
                    .resolve(
                        &incident.id,
                        &sync.actor,
                        &format!("resolved in {source_id}"),
                    )
                    .await
            }
        };
        match result {
            Ok(_) => {
                tracing::info!(source = source_id, incident = %incident.id, actor = %sync.actor, "incident updated from webhook");
            }
            Err(e) => {
                tracing::info!(source = source_id, incident = %incident.id, error = %e, "incident update from webhook not applied");
            }
        }
    }
}

impl Intake {
    /// Applies a ticket status change (Jira, ServiceNow) to the incident the ticket was
    /// opened for. Never fails the request: the events are durable, and the sender could
    /// not fix an unknown ticket by retrying. Every outcome is counted per source.
    async fn ticket_status(&self, live: &Live, ticket: &TicketStatus) {
        let source_id = live.source.id.as_str();
        let Some(engine) = &self.response else {
            live.ticket_synced("response_off");
            tracing::info!(
                source = source_id,
                "webhook ticket status ignored: automated response is off"
            );
            return;
        };
        let Some((incident, system, key)) =
            engine.incident_for_ticket(&live.ticket_systems, &ticket.keys)
        else {
            live.ticket_synced("unknown_ticket");
            tracing::info!(
                source = source_id,
                vendor = ticket.vendor.as_str(),
                "webhook ticket status names no ticket vowguard opened"
            );
            return;
        };
        let to = ticket.change.map(|c| match c {
            IncidentChange::Acknowledge => IncidentState::Acknowledged,
            IncidentChange::Resolve => IncidentState::Resolved,
        });
        let change = TicketStatusChange {
            system: &system,
            key: &key,
            status: &ticket.status,
            from: ticket.from.as_deref(),
            to,
            actor: &ticket.actor,
        };
        match engine.ticket_status_changed(&incident.id, &change).await {
            Ok(outcome) => {
                let result = match outcome {
                    TicketSync::Applied(_) => "applied",
                    TicketSync::AlreadyThere(_) => "already_there",
                    TicketSync::Recorded => "unmapped_status",
                    TicketSync::Unchanged => "unchanged",
                };
                live.ticket_synced(result);
                tracing::info!(source = source_id, incident = %incident.id, ticket = %key, actor = %ticket.actor, result, "incident synced from ticket status");
            }
            Err(e) => {
                live.ticket_synced("failed");
                tracing::warn!(source = source_id, incident = %incident.id, error = %e, "ticket status not applied to the incident");
            }
        }
    }
}

fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not found")
}

fn unauthorized() -> Response {
    json_error(StatusCode::UNAUTHORIZED, "unauthorized")
}

fn retry_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A claimed delivery, released when dropped unless committed.
struct ClaimGuard<'a> {
    guard: &'a ReplayGuard,
    key: vowguard_webhooks::replay::Digest32,
    held: bool,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.guard.release(&self.key);
        }
    }
}

/// `POST /v1/webhooks/{source_id}`.
pub(crate) async fn receive(
    State(state): State<Arc<ServerState>>,
    UrlPath(source_id): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(intake) = state.webhooks.as_ref() else {
        return not_found();
    };
    let Some(live) = intake.sources.get(&source_id) else {
        intake.unknown.fetch_add(1, Ordering::Relaxed);
        return not_found();
    };
    if let Some(bucket) = &live.bucket
        && !lock(bucket).try_take()
    {
        live.refuse("rate_limited");
        return retry_after(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests",
        ));
    }
    let max = live.source.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        live.refuse("body_too_large");
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {max} bytes"),
        );
    }
    let timeout = Duration::from_millis(live.source.body_timeout_ms);
    let body = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            live.refuse("body_too_large");
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body exceeds {max} bytes"),
            );
        }
        Err(_) => {
            live.refuse("body_timeout");
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            );
        }
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let request = Request {
        headers: &pairs,
        query: query.as_deref(),
        body: &body,
    };
    let now = now_unix();
    let delivery = match live.source.accept(&request, now) {
        Ok(delivery) => delivery,
        Err(refusal @ Refusal::Unverified(_)) => {
            live.refuse(refusal.reason());
            tracing::debug!(source = %source_id, reason = refusal.reason(), "webhook refused");
            return unauthorized();
        }
        Err(Refusal::Payload(e)) => {
            live.refuse("bad_payload");
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("not a {source_id} payload: {e}"),
            );
        }
    };
    let key = vowguard_webhooks::replay::digest(&delivery.replay_key);
    match live.guard.claim(&key, now) {
        Claim::Replay => {
            live.replayed.fetch_add(1, Ordering::Relaxed);
            return axum::Json(json!({ "status": "duplicate" })).into_response();
        }
        Claim::InFlight => {
            live.refuse("in_flight");
            return retry_after(json_error(
                StatusCode::CONFLICT,
                "this delivery is being processed",
            ));
        }
        Claim::Fresh => {}
    }
    // Released on every early return and when the sender hangs up mid-request (the future is
    // dropped): the sender's retry is then processed, not refused as in flight.
    let mut claim = ClaimGuard {
        guard: &live.guard,
        key,
        held: true,
    };
    let mapped = delivery.mapped;
    let ids: Vec<String> = mapped.events.iter().map(|e| e.id.clone()).collect();
    let mut events = mapped.events;
    if let Some(cluster) = &intake.cluster {
        // Claimed across the replicas too: a delivery retried to another replica is a
        // duplicate there once stored here.
        let lease = match cluster.claim_webhook(&source_id, &key).await {
            Ok(crate::cluster::WebhookClaim::Fresh(lease)) => lease,
            Ok(crate::cluster::WebhookClaim::Replay) => {
                live.replayed.fetch_add(1, Ordering::Relaxed);
                return axum::Json(json!({ "status": "duplicate" })).into_response();
            }
            Ok(crate::cluster::WebhookClaim::InFlight) => {
                live.refuse("in_flight");
                return retry_after(json_error(
                    StatusCode::CONFLICT,
                    "this delivery is being processed",
                ));
            }
            Err(e) => {
                live.refuse("unavailable");
                return crate::server::not_queued(&e);
            }
        };
        // Every event stored in the stream (PubAck) before the sender gets its 2xx.
        let stored = futures::future::join_all(
            std::mem::take(&mut events)
                .into_iter()
                .map(|event| vowguard_pipeline::EventQueue::enqueue(cluster.as_ref(), event)),
        )
        .await;
        if let Some(e) = stored.into_iter().find_map(Result::err) {
            cluster.release_webhook(lease).await;
            live.refuse("unavailable");
            return crate::server::not_queued(&e);
        }
        cluster.commit_webhook(&source_id, &key, lease).await;
    }
    let mut pending = Vec::with_capacity(events.len());
    for event in events {
        match intake.pipeline.submit(event).await {
            Ok(submitted) => pending.push(submitted.durable),
            Err(e) => {
                live.refuse("unavailable");
                return retry_after(json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
            }
        }
    }
    for durable in pending {
        if let Err(e) = durable.await {
            live.refuse("unavailable");
            let status = if e.kind() == ErrorKind::RateLimited {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return retry_after(json_error(status, e.to_string()));
        }
    }
    live.events.fetch_add(ids.len() as u64, Ordering::Relaxed);
    for sync in &mapped.sync {
        intake.sync(&source_id, sync).await;
    }
    for ticket in &mapped.tickets {
        intake.ticket_status(live, ticket).await;
    }
    claim.held = false;
    // The append is synced: off the async workers.
    let committer = intake.clone();
    let id = source_id.clone();
    let committed =
        tokio::task::spawn_blocking(move || committer.sources[&id].guard.commit(&key, now))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    if let Err(e) = committed {
        // The events are durable: acknowledge. A retry may be processed again.
        tracing::warn!(source = %source_id, error = %e, "webhook replay guard not updated");
    }
    live.accepted.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = mapped.reply {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            reply,
        )
            .into_response();
    }
    axum::Json(json!({ "accepted": ids.len(), "ids": ids })).into_response()
}

/// `vowguard webhook ...`.
#[derive(Debug, clap::Subcommand)]
pub enum WebhookAction {
    /// Print the headers a sender of source ID would send with the body (signed with the
    /// source's first secret), for testing an integration.
    Sign {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The `[webhooks.<id>]` source.
        #[arg(long)]
        source: String,
        /// The body file (sent as is).
        #[arg(long)]
        body: PathBuf,
        /// The delivery id (Standard Webhooks, GitHub, Twilio, generic).
        #[arg(long, default_value = "msg_vowguard_test")]
        id: String,
        /// The unix timestamp to sign (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
        /// The request's query string (Twilio signs it).
        #[arg(long)]
        query: Option<String>,
    },
    /// Check a captured request against source ID's secrets; exit 0 when it verifies.
    Verify {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The `[webhooks.<id>]` source.
        #[arg(long)]
        source: String,
        /// The body file, byte for byte as received.
        #[arg(long)]
        body: PathBuf,
        /// A header as `Name: value` (repeat for each).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// The request's query string.
        #[arg(long)]
        query: Option<String>,
        /// The unix time to check timestamps against (default: now).
        #[arg(long)]
        now: Option<i64>,
    },
}

/// Builds every `[webhooks.<id>]`, pushing one error per bad source; webhooks need the
/// http source's server.
pub(crate) fn build_sources(
    config: &crate::Config,
    env: &crate::Environment<'_>,
    no_http_source: bool,
    errors: &mut Vec<Error>,
) -> Vec<Source> {
    let mut sources = Vec::with_capacity(config.webhooks.len());
    for (id, table) in &config.webhooks {
        if no_http_source {
            errors.push(Error::config(format!(
                "`webhooks.{id}`: webhooks are served by the http source: add `[server]` and \
                 `[sources.<id>] type = \"http\"`"
            )));
            continue;
        }
        match table.build(id, env.secrets, env.config_dir) {
            Ok(source) => {
                if let Err(e) = check_ticket_system(config, &source) {
                    errors.push(e);
                }
                sources.push(source);
            }
            Err(e) => errors.push(e),
        }
    }
    sources
}

/// A jira / servicenow source's `ticket_system` names a `[tickets.<id>]` of its type; without
/// it, one of its type must be configured (else no status change could ever find its
/// incident).
fn check_ticket_system(config: &crate::Config, source: &Source) -> Result<(), Error> {
    let kind = match source.vendor {
        vowguard_webhooks::Vendor::Jira => "jira",
        vowguard_webhooks::Vendor::ServiceNow => "servicenow",
        _ => return Ok(()),
    };
    let type_of = |table: &crate::config::ComponentConfig| table.kind().map(str::to_owned);
    match &source.ticket_system {
        Some(name) => match config.tickets.get(name) {
            None => Err(Error::config(format!(
                "`webhooks.{}.ticket_system`: no `[tickets.{name}]` is configured",
                source.id
            ))),
            Some(table) if type_of(table).as_deref() != Some(kind) => Err(Error::config(format!(
                "`webhooks.{}.ticket_system`: `[tickets.{name}]` is not of type `{kind}`",
                source.id
            ))),
            Some(_) => Ok(()),
        },
        None if config
            .tickets
            .values()
            .any(|t| type_of(t).as_deref() == Some(kind)) =>
        {
            Ok(())
        }
        None => Err(Error::config(format!(
            "`webhooks.{}`: a `{kind}` source updates incidents through the tickets vowguard \
             opened, but no `[tickets.<id>] type = \"{kind}\"` is configured",
            source.id
        ))),
    }
}

fn cli_source(config: &Path, id: &str) -> Result<Source, Error> {
    let parsed = crate::Config::load(config)?;
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let table = parsed.webhooks.get(id).ok_or_else(|| {
        Error::invalid_input(format!("no `[webhooks.{id}]` in {}", config.display()))
    })?;
    table.build(id, &vowguard_core::ProcessEnv, &dir)
}

fn read_body(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

/// Runs `vowguard webhook ...`; the text for standard output.
pub fn webhook(action: WebhookAction) -> Result<String, Error> {
    match action {
        WebhookAction::Sign {
            config,
            source,
            body,
            id,
            timestamp,
            query,
        } => {
            let source = cli_source(&config, &source)?;
            if matches!(
                source.scheme,
                vowguard_webhooks::Scheme::ServiceNow(vowguard_webhooks::ServiceNowAuth::Bearer)
            ) {
                // The header would be the secret itself: never printed.
                return Err(Error::invalid_input(
                    "a bearer-token source signs nothing: the sender sends `Authorization: \
                     Bearer <the source's secret>` (not printed here, it is the secret)",
                ));
            }
            let body = read_body(&body)?;
            let key = source
                .keys
                .first()
                .ok_or_else(|| Error::config("the source has no secret"))?;
            let headers = vowguard_webhooks::verify::sign(
                &source.scheme,
                key,
                &id,
                timestamp.unwrap_or_else(now_unix),
                query.as_deref(),
                &body,
            )
            .ok_or_else(|| {
                Error::invalid_input("the first secret cannot sign (an Ed25519 public key, whpk_)")
            })?;
            Ok(headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\n"))
                .collect())
        }
        WebhookAction::Verify {
            config,
            source,
            body,
            headers,
            query,
            now,
        } => {
            let source = cli_source(&config, &source)?;
            let body = read_body(&body)?;
            let mut pairs = Vec::with_capacity(headers.len());
            for h in &headers {
                let (name, value) = h
                    .split_once(':')
                    .ok_or_else(|| Error::invalid_input("--header: expected `Name: value`"))?;
                pairs.push((name.trim(), value.trim()));
            }
            let request = Request {
                headers: &pairs,
                query: query.as_deref(),
                body: &body,
            };
            match source.accept(&request, now.unwrap_or_else(now_unix)) {
                Ok(delivery) => Ok(format!(
                    "verified: replay key {}, {} event(s)\n",
                    crate::logging::escape_control(&delivery.replay_key),
                    delivery.mapped.events.len()
                )),
                Err(refusal) => Err(Error::invalid_input(format!(
                    "not verified: {}",
                    match &refusal {
                        Refusal::Unverified(r) => r.as_str().to_owned(),
                        Refusal::Payload(e) => format!("verified, but {e}"),
                    }
                ))),
            }
        }
    }
}

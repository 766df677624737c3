//! The HTTP server: the `http` source (`POST /v1/events`), `GET /health` and
//! `GET /metrics` (Prometheus text format, rendered by [`crate::telemetry`]).
//!
//! `POST /v1/events` takes one event object or an array of them. Each valid event is
//! submitted; the answer is `202 Accepted` only once every accepted event is durable in the
//! journal, so a client that got a 202 can forget the events. Invalid events are listed in
//! the answer by index with the field at fault (the valid ones around them are accepted);
//! a body with no valid event is `400`. When the journal is full (`when_full =
//! "drop_newest"`) the answer is `503` with `Retry-After` and nothing in the request is
//! acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use vowguard_core::secrecy::{ExposeSecret, SecretString};
use vowguard_core::{
    AlertRouting, Category, EncodedEvent, ErrorKind, Event, EventOutcome, Notifier, Priority, Sink,
    WeddingContext, WeddingPhase,
};
use vowguard_pipeline::Pipeline;

/// What the handlers share.
#[derive(Debug)]
pub struct ServerState {
    /// The running pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Events accepted over HTTP.
    pub accepted: AtomicU64,
    /// Events rejected over HTTP (invalid).
    pub rejected: AtomicU64,
    /// The admin bearer token; the admin endpoints are off without one.
    pub admin_token: Option<SecretString>,
    /// Every sink by id (for the SIEM integration test).
    pub sinks: Vec<(String, Arc<dyn Sink>)>,
    /// Every notifier by id (for the alert routing test).
    pub notifiers: Vec<(String, Arc<dyn Notifier>)>,
    /// The router.
    pub router: Arc<dyn AlertRouting>,
    /// The report store for `GET /api/reports/{kind}`, or why it is unavailable.
    pub reports: Result<Arc<crate::reports::Reports>, String>,
    /// The webhook intake (`[webhooks.*]`), when any source is configured.
    pub webhooks: Option<Arc<crate::webhooks::Intake>>,
    /// The JetStream queue (`[queue] type = "jetstream"`): intake publishes there instead
    /// of the local journal. `None` on the local backend.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The source whose connection `/health` reports (the `nats` source of a nats-only
    /// run); `None` for intake over HTTP.
    pub source: Option<Arc<dyn SourceHealth>>,
}

/// A source with a connection of its own (the `nats` source), reported by `/health` as
/// the queue's is: its state, and why it cannot read.
pub trait SourceHealth: Send + Sync + std::fmt::Debug {
    /// `None` while the source can read; otherwise why not.
    fn problem(&self) -> Option<String>;
    /// The `source` section of `/health`.
    fn health(&self) -> serde_json::Value;
}

/// `/health`, `/metrics` and the admin routes: what every server serves.
fn monitoring_routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(
            "/api/security/test-siem-integration",
            post(test_siem_integration),
        )
        .route("/api/security/test-alert-routing", post(test_alert_routing))
        .route("/api/reports/{kind}", get(report))
}

/// The routes of a run whose source is not HTTP (a `nats` source with `[server]`):
/// `/health`, `/metrics` and the admin routes, no intake.
pub fn monitoring_router(state: Arc<ServerState>, max_body_bytes: usize) -> Router {
    with_body_limit(monitoring_routes(), max_body_bytes).with_state(state)
}

/// The HTTP routes.
pub fn router(state: Arc<ServerState>, max_body_bytes: usize) -> Router {
    let routes = monitoring_routes()
        .route("/v1/events", post(ingest))
        .route("/v1/webhooks/{source_id}", post(crate::webhooks::receive));
    with_body_limit(routes, max_body_bytes).with_state(state)
}

/// `server.max_body_bytes` on every route, its 413 naming the key.
fn with_body_limit(
    routes: Router<Arc<ServerState>>,
    max_body_bytes: usize,
) -> Router<Arc<ServerState>> {
    routes
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::map_response(
            move |response: Response| async move {
                // Only axum's own refusal (plain text): a webhook source's JSON 413 names
                // its own limit.
                if response.status() == StatusCode::PAYLOAD_TOO_LARGE
                    && response.headers().get(header::CONTENT_TYPE)
                        != Some(&HeaderValue::from_static("application/json"))
                {
                    json_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the request body exceeds server.max_body_bytes ({max_body_bytes} bytes)"
                        ),
                    )
                } else {
                    response
                }
            },
        ))
}

pub(crate) fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// How many rejected items an answer lists; `rejected_total` counts them all.
pub const MAX_LISTED_REJECTIONS: usize = 100;

/// Accepted events not yet durable that one request may hold before it waits for the oldest.
const MAX_PENDING_PER_REQUEST: usize = 1024;

/// A valid event of a request body, as the parser hands it to the handler.
type ParsedItem = Event;

/// What the parser saw besides the valid events.
#[derive(Debug, Default)]
struct Rejections {
    /// The first [`MAX_LISTED_REJECTIONS`] invalid items, by index with the reason.
    listed: Vec<Value>,
    /// Every invalid item.
    total: u64,
}

impl Rejections {
    fn record(&mut self, index: usize, error: &impl std::fmt::Display) {
        self.total += 1;
        // The reason is only formatted for the items listed: a body of a million invalid
        // items costs a counter, not a million strings.
        if self.listed.len() < MAX_LISTED_REJECTIONS {
            self.listed
                .push(json!({ "index": index, "error": error.to_string() }));
        }
    }
}

/// Why a body is refused as a whole.
#[derive(Debug)]
enum BodyError {
    /// The top level is neither an object nor an array.
    NotEvents(&'static str),
    /// The parser stopped (the handler went away, or the JSON is malformed).
    Stopped(String),
}

/// Streams the items of a request body (one event object, or an array of them) into `items`,
/// one at a time: the body is never turned into one value tree, so memory per request is the
/// body, the largest single item and the channel, whatever the body holds.
fn parse_events(
    body: &[u8],
    items: &tokio::sync::mpsc::Sender<ParsedItem>,
) -> Result<Rejections, BodyError> {
    use serde::de::Deserializer as _;

    struct Top<'a> {
        items: &'a tokio::sync::mpsc::Sender<ParsedItem>,
        rejections: &'a mut Rejections,
    }

    impl Top<'_> {
        fn item<E: serde::de::Error>(
            &mut self,
            index: usize,
            item: vowguard_core::ingest::IngestEvent,
        ) -> Result<(), E> {
            match item.0 {
                Ok(event) => self
                    .items
                    .blocking_send(event)
                    .map_err(|_| E::custom("the request was abandoned")),
                Err(e) => {
                    self.rejections.record(index, &e);
                    Ok(())
                }
            }
        }
    }

    impl<'de> serde::de::Visitor<'de> for Top<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an event object or an array of events")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0;
            // Each item is parsed straight into an event (no value tree per item).
            while let Some(item) = seq.next_element::<vowguard_core::ingest::IngestEvent>()? {
                self.item(index, item)?;
                index += 1;
            }
            Ok(())
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(mut self, map: A) -> Result<(), A::Error> {
            let item =
                serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            self.item(0, item)
        }
    }

    // The top level decides the answer before anything is submitted.
    let mut peek = serde_json::Deserializer::from_slice(body);
    let top = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[' | b'{') => None,
        Some(b'"') => Some("a string"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        Some(_) => Some("a number"),
        None => None,
    };
    if let Some(kind) = top {
        return Err(BodyError::NotEvents(kind));
    }
    let mut rejections = Rejections::default();
    let visitor = Top {
        items,
        rejections: &mut rejections,
    };
    peek.deserialize_any(visitor)
        .and_then(|()| peek.end())
        .map_err(|e| BodyError::Stopped(e.to_string()))?;
    Ok(rejections)
}

async fn ingest(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    // A syntax check first, without building anything (`IgnoredAny` allocates nothing), so
    // a malformed body is refused whole before any of its events is submitted.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        );
    }
    // The parser runs on a blocking thread and hands the items over one by one through a
    // small channel: the handler submits each event as it arrives.
    let (items_tx, mut items) = tokio::sync::mpsc::channel::<ParsedItem>(64);
    let parser = tokio::task::spawn_blocking(move || parse_events(&body, &items_tx));
    let mut pending = std::collections::VecDeque::new();
    // On the jetstream backend: publishes waiting for their PubAck.
    let mut published = futures::stream::FuturesUnordered::new();
    let mut ids = Vec::new();
    let mut failure = None;
    while let Some(event) = items.recv().await {
        ids.push(event.id.clone());
        if let Some(cluster) = &state.cluster {
            let cluster = cluster.clone();
            published.push(async move {
                vowguard_pipeline::EventQueue::enqueue(cluster.as_ref(), event).await
            });
            if published.len() > MAX_PENDING_PER_REQUEST
                && let Some(Err(e)) = futures::StreamExt::next(&mut published).await
            {
                failure = Some(not_queued(&e));
                break;
            }
            continue;
        }
        match state.pipeline.submit(event).await {
            Ok(submitted) => pending.push_back(submitted.durable),
            Err(e) => {
                failure = Some(json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
                break;
            }
        }
        if pending.len() > MAX_PENDING_PER_REQUEST
            && let Some(oldest) = pending.pop_front()
            && let Err(e) = oldest.await
        {
            failure = Some(not_durable(&e));
            break;
        }
    }
    // Stops the parser if the loop ended early.
    drop(items);
    let rejections = match parser.await {
        Ok(Ok(rejections)) => rejections,
        Ok(Err(BodyError::NotEvents(kind))) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("expected an event object or an array of events, got {kind}"),
            );
        }
        Ok(Err(BodyError::Stopped(reason))) => {
            if let Some(failure) = failure {
                return failure;
            }
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid request: {reason}"),
            );
        }
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the request parser failed: {e}"),
            );
        }
    };
    if let Some(failure) = failure {
        return failure;
    }
    state
        .rejected
        .fetch_add(rejections.total, Ordering::Relaxed);
    if ids.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": "no valid event in the request",
                "rejected": rejections.listed,
                "rejected_total": rejections.total,
            })),
        )
            .into_response();
    }
    for durable in pending {
        if let Err(e) = durable.await {
            return not_durable(&e);
        }
    }
    while let Some(result) = futures::StreamExt::next(&mut published).await {
        if let Err(e) = result {
            return not_queued(&e);
        }
    }
    state
        .accepted
        .fetch_add(ids.len() as u64, Ordering::Relaxed);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "accepted": ids.len(),
            "ids": ids,
            "rejected": rejections.listed,
            "rejected_total": rejections.total,
        })),
    )
        .into_response()
}

/// The answer when an accepted event could not be made durable (nothing is acknowledged).
fn not_durable(e: &vowguard_core::Error) -> Response {
    let status = if e.kind() == ErrorKind::RateLimited {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut response = json_error(status, e.to_string());
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The answer when the JetStream queue did not store an event (nothing is acknowledged):
/// 503 with `Retry-After` while it cannot take events, 400 for an event it refuses.
pub(crate) fn not_queued(e: &vowguard_core::Error) -> Response {
    if e.kind() == ErrorKind::InvalidInput {
        return json_error(StatusCode::BAD_REQUEST, e.to_string());
    }
    let status = if e.is_retryable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let seconds = e.retry_after().map_or(1, |d| d.as_secs().max(1));
    let mut response = json_error(status, e.to_string());
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Checks `Authorization: Bearer <token>` in constant time. `Err` is the response to send.
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
fn authorize(state: &ServerState, headers: &HeaderMap) -> Result<(), Response> {
    authorize_token(state.admin_token.as_ref(), headers)
}

/// Checks `Authorization: Bearer <token>` against `token` in constant time (the admin
/// endpoints are off without one). `Err` is the response to send.
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
pub(crate) fn authorize_token(
    token: Option<&SecretString>,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let Some(expected) = token else {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "the admin API is disabled: set server.admin_token",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool =
        subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.expose_secret().as_bytes())
            .into();
    if ok {
        Ok(())
    } else {
        let mut response = json_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(response)
    }
}

/// `?from=&to=&format=` of `GET /api/reports/{kind}`.
#[derive(Debug, serde::Deserialize)]
struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// `GET /api/reports/{kind}?from=&to=&format=html|md|json` (admin token): a compliance
/// report computed from the audit log as of now.
async fn report(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    axum::extract::Path(kind): axum::extract::Path<String>,
    query: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use vowguard_store::report::{ReportFormat, ReportKind, ReportParams};
    if let Err(response) = authorize(&state, &headers) {
        return response;
    }
    let query = match query {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("query: {e}")),
    };
    let params = (|| {
        let kind: ReportKind = kind.parse()?;
        let format: ReportFormat = query.format.as_deref().unwrap_or("json").parse()?;
        let from = query
            .from
            .as_deref()
            .ok_or_else(|| vowguard_core::Error::invalid_input("`from` is required"))?;
        let to = query
            .to
            .as_deref()
            .ok_or_else(|| vowguard_core::Error::invalid_input("`to` is required"))?;
        let params = ReportParams::parse(kind, from, to).map_err(|e| {
            // The API's parameters are `from` and `to`, not the CLI's flags.
            vowguard_core::Error::new(
                e.kind(),
                e.to_string()
                    .replace("`--from`", "`from`")
                    .replace("`--to`", "`to`"),
            )
        })?;
        Ok::<_, vowguard_core::Error>((params, format))
    })();
    let (params, format) = match params {
        Ok(p) => p,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let reports = match &state.reports {
        Ok(reports) => reports.clone(),
        Err(why) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the report store is unavailable: {why}"),
            );
        }
    };
    let rendered = match reports.report(&params).await {
        Ok(report) => report.render(format),
        Err(e) => Err(e),
    };
    match rendered {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A clearly marked test event: SIEM searches and alert channels can tell it apart.
fn test_event(severity: vowguard_core::Severity) -> Event {
    let mut event = Event::new(Category::Detection, "vowguard.integration_test", severity);
    event.message = Some("vowguard integration test: no action needed".into());
    event.labels.insert("vowguard_test".into(), "true".into());
    event
}

/// Sends one marked test event straight to every sink (not through the journal) and answers
/// per sink: ok or the error, and the latency.
async fn test_siem_integration(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize(&state, &headers) {
        return response;
    }
    let event = test_event(vowguard_core::Severity::Info);
    let mut results = serde_json::Map::new();
    for (id, sink) in &state.sinks {
        let started = std::time::Instant::now();
        let outcome = match sink.encode(&event) {
            Err(e) => Err(e.to_string()),
            Ok(bytes) => {
                let encoded = EncodedEvent {
                    event_id: event.id.clone(),
                    bytes,
                };
                match sink.send(&[&encoded]).await.pop() {
                    Some(EventOutcome::Delivered) => Ok(()),
                    Some(EventOutcome::Retry(e) | EventOutcome::Rejected(e)) => Err(e.to_string()),
                    None => Err("the sink returned no outcome".into()),
                }
            }
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let entry = match outcome {
            Ok(()) => json!({ "kind": sink.kind(), "status": "ok", "latency_ms": latency_ms }),
            Err(e) => {
                json!({ "kind": sink.kind(), "status": "error", "error": e, "latency_ms": latency_ms })
            }
        };
        results.insert(id.clone(), entry);
    }
    let failed = results.values().filter(|r| r["status"] != "ok").count();
    let outcome = format!("{} sink(s) tested, {failed} failed", results.len());
    let target = results.keys().cloned().collect::<Vec<_>>().join(",");
    if let Err(response) = audit_admin(&state, "test.siem_integration", &target, &outcome).await {
        return response;
    }
    axum::Json(json!({ "event_id": event.id, "sinks": results })).into_response()
}

/// Records an admin action that happened (test events and notifications sent) in the audit
/// log before answering; a 503 when it cannot be recorded.
async fn audit_admin(
    state: &ServerState,
    action: &str,
    target: &str,
    result: &str,
) -> Result<(), Response> {
    let trail = state.pipeline.audit().map(|a| &a.trail);
    crate::audit::admin(trail, "admin_token", action, target, result)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, action, "audit: admin action not recorded");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the action ran but could not be recorded in the audit log",
            )
        })
}

/// Body of `POST /api/security/test-alert-routing`: `{"priority": "P1_HIGH",
/// "wedding_impact": true}` (`severity` is accepted as another name of `priority`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingTest {
    #[serde(alias = "severity")]
    priority: Priority,
    #[serde(default)]
    wedding_impact: bool,
}

/// The action of the routing test event: every channel shows the event's action (and
/// its message), so every test notification says TEST.
pub const ROUTING_TEST_ACTION: &str = "TEST.vowguard.alert_routing";

/// The first reason of every test notification.
pub const ROUTING_TEST_REASON: &str =
    "TEST notification from POST /api/security/test-alert-routing: no action needed";

/// The event `POST /api/security/test-alert-routing` routes: a marked test event of the
/// severity that maps to `priority`, optionally for a wedding happening today.
pub fn routing_test_event(priority: Priority, wedding_impact: bool) -> Event {
    let mut event = test_event(vowguard_router::default_severity(priority));
    event.action = ROUTING_TEST_ACTION.into();
    event.message = Some("TEST: vowguard alert routing test, no action needed".into());
    if wedding_impact {
        let today = chrono::Utc::now().date_naive();
        event.wedding_id = Some("vowguard-test-wedding".into());
        event.enrichment.wedding = Some(WeddingContext {
            wedding_id: "vowguard-test-wedding".into(),
            date: today,
            timezone: "UTC".into(),
            phase: WeddingPhase::DayOf,
            days_until: 0,
            weekend: false,
            season: vowguard_core::Season::Summer,
            guest_count: Some(120),
            vendor_count: Some(8),
        });
    }
    event
}

/// Marks a would-be alert as a test notification: `TEST` leads its route and reasons
/// (the event already says TEST in its action and message), and route mentions are
/// dropped so a test pages nobody through a route's `mention`.
pub fn mark_routing_test(alert: &mut vowguard_core::Alert) {
    alert.route = format!("TEST {}", alert.route);
    alert.reasons.insert(0, ROUTING_TEST_REASON.to_owned());
    alert.params.remove("mention");
    alert.params.insert("test".into(), Value::Bool(true));
}

/// Shows what the live router would decide for a marked test event of the requested
/// priority (optionally affecting a wedding happening today) and sends the marked test
/// notifications to the channels it names. Nothing else happens: no protocol action is
/// requested, no breach record opened, and no inhibition, grouping or delivery state is
/// touched. The answer carries the decision (priority, reasons, protocols, the actions
/// it would request, routes, inhibition) and each channel's result.
async fn test_alert_routing(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&state, &headers) {
        return response;
    }
    let request: RoutingTest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("invalid request: {e}")),
    };
    let event = Arc::new(routing_test_event(request.priority, request.wedding_impact));
    let Some(dry_run) = state.router.dry_run(&event) else {
        return json_error(
            StatusCode::NOT_IMPLEMENTED,
            "this router cannot show a decision without side effects",
        );
    };
    let mut alerts = Vec::new();
    for routed in dry_run.alerts {
        // The answer shows the live route and reasons; the notification is marked.
        let live = &routed.alert;
        let mut alert = live.clone();
        mark_routing_test(&mut alert);
        let mut channels = serde_json::Map::new();
        for id in &routed.notifiers {
            let Some((_, notifier)) = state.notifiers.iter().find(|(n, _)| n == id) else {
                channels.insert(
                    id.clone(),
                    json!({ "status": "error", "error": "no such notifier" }),
                );
                continue;
            };
            let started = std::time::Instant::now();
            let result = notifier.notify(&alert).await;
            let latency_ms = started.elapsed().as_secs_f64() * 1e3;
            let entry = match result {
                Ok(receipt) => {
                    json!({ "kind": notifier.kind(), "status": "ok", "delivery_id": receipt.delivery_id, "latency_ms": latency_ms })
                }
                Err(e) => {
                    json!({ "kind": notifier.kind(), "status": "error", "error": e.to_string(), "latency_ms": latency_ms })
                }
            };
            channels.insert(id.clone(), entry);
        }
        alerts.push(json!({
            "route": live.route,
            "priority": live.priority,
            "reasons": live.reasons,
            "dedup_key": live.dedup_key,
            "channels": channels,
        }));
    }
    let outcome = format!("{} alert(s) routed", alerts.len());
    let target = format!("priority={}", request.priority);
    if let Err(response) = audit_admin(&state, "test.alert_routing", &target, &outcome).await {
        return response;
    }
    axum::Json(json!({
        "test": true,
        "event_id": event.id,
        "requested_priority": request.priority,
        "wedding_impact": request.wedding_impact,
        "decision": dry_run.decision,
        "routed": !alerts.is_empty(),
        "alerts": alerts,
    }))
    .into_response()
}

async fn health(State(state): State<Arc<ServerState>>) -> Response {
    let metrics = state.pipeline.metrics();
    let open: Vec<&String> = metrics
        .sinks
        .iter()
        .filter(|(_, m)| m.circuit_open)
        .map(|(id, _)| id)
        .collect();
    let status = if open.is_empty() { "ok" } else { "degraded" };
    let mut body = json!({ "status": status, "circuit_open": open });
    let mut unavailable = false;
    // On the jetstream backend intake needs NATS: without it the replica takes no events.
    if let Some(cluster) = &state.cluster {
        body["queue"] = cluster.health();
        unavailable |= cluster.problem().is_some();
    }
    // A nats-only run reads nothing while its source cannot reach its server.
    if let Some(source) = &state.source {
        body["source"] = source.health();
        unavailable |= source.problem().is_some();
    }
    if unavailable {
        body["status"] = json!("unavailable");
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    axum::Json(body).into_response()
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let text = crate::telemetry::exporter().render(
        &state.pipeline.metrics(),
        state.accepted.load(Ordering::Relaxed),
        state.rejected.load(Ordering::Relaxed),
        state.webhooks.as_deref(),
        state.cluster.as_deref(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

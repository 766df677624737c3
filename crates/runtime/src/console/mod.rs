//! The operator console: read-only HTML pages at `/ui` on the HTTP server.
//!
//! * `/ui`: pipeline health per sink (delivered, retrying, circuit, queue depth, oldest
//!   undelivered age) and per notifier, and throughput / latency over the last hour
//!   (inline SVG drawn on the server).
//! * `/ui/alerts`: recent alerts with their route, priority and per-channel results.
//! * `/ui/dead-letters`: pending dead letters, with replay per sink (the one write action:
//!   a confirmation page, then a CSRF-protected `POST`).
//! * `/ui/incidents`: open incidents and GDPR breaches with their deadline countdown.
//!
//! Access needs the admin token: `Authorization: Bearer <server.admin_token>`, or the
//! session cookie the login form (`POST /ui/login`) sets, derived from the token
//! (`HttpOnly`, `SameSite=Strict`, `Path=/ui`); without either the answer is `401` with
//! the login form, and with no admin token configured the console is off (`403`). Pages
//! are rendered on the server, every event field HTML-escaped, under a strict
//! Content-Security-Policy (no script at all, styles only from the embedded
//! `/ui/static/console.css`). Each section renders what it can: a sink that is down, a
//! missing dead-letter file or an unavailable report store show as a note, not an error.

mod history;
mod html;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vowguard_core::secrecy::{ExposeSecret, SecretString};
use vowguard_pipeline::SinkSpec;

use crate::server::ServerState;
use history::{History, Sample};
use html::{bare_page, esc, format_duration, line_chart, page, query_value};

/// The session cookie's name.
const COOKIE: &str = "vowguard_console";
/// The Content-Security-Policy of every console response: nothing runs, nothing loads
/// from elsewhere, forms post only here, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// How long the store may take to answer a page before the section shows it unavailable.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);
/// Rows shown at most per table.
const MAX_ROWS: usize = 200;

/// What the console reads (and, for the replay, uses).
pub struct Console {
    server: Arc<ServerState>,
    response: Option<vowguard_response::ResponseEngine>,
    sinks: Vec<SinkSpec>,
    audit: Option<vowguard_audit::AuditLog>,
    data_dir: PathBuf,
    /// The JetStream queue, which the `_enrich` dead letters are replayed into.
    cluster: Option<Arc<crate::cluster::Cluster>>,
    history: Arc<History>,
    replaying: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console of the server `server`: `response` for incidents, `sinks` (their
    /// specs) and `audit` for the replay, `data_dir` for the dead letters. Call within a
    /// tokio runtime: starts sampling the pipeline for the charts. On the jetstream
    /// backend the enrichment consumer's dead letters (`_enrich`) are replayed into the
    /// stream of the server's cluster.
    pub fn new(
        server: Arc<ServerState>,
        response: Option<vowguard_response::ResponseEngine>,
        sinks: Vec<SinkSpec>,
        audit: Option<vowguard_audit::AuditLog>,
        data_dir: PathBuf,
    ) -> Self {
        let cluster = server.cluster.clone();
        let history = Arc::new(History::default());
        tokio::spawn(history::sample(Arc::downgrade(&server), history.clone()));
        Self {
            server,
            response,
            sinks,
            audit,
            data_dir,
            cluster,
            history,
            replaying: tokio::sync::Mutex::new(()),
        }
    }

    /// The `/ui` routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/ui", get(health))
            .route("/ui/alerts", get(alerts))
            .route("/ui/dead-letters", get(dead_letters))
            .route("/ui/dead-letters/replay", get(confirm_replay).post(replay))
            .route("/ui/incidents", get(incidents))
            .route("/ui/login", post(login))
            .route("/ui/static/console.css", get(stylesheet))
            .layer(axum::middleware::map_response(secure_headers))
            .with_state(Arc::new(self))
    }

    fn token(&self) -> Option<&SecretString> {
        self.server.admin_token.as_ref()
    }
}

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A value derived from the admin token for `purpose` (hex SHA-256): the session cookie
/// and the CSRF token. Neither reveals the token.
fn derived(token: &SecretString, purpose: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"vowguard-console\0")
        .chain_update(purpose.as_bytes())
        .chain_update(b"\0")
        .chain_update(token.expose_secret().as_bytes())
        .finalize();
    vowguard_core::hex::encode(&digest)
}

fn equal(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn login_form(note: &str) -> String {
    bare_page(
        "Sign in",
        &format!(
            "<p>{}</p><form method=\"post\" action=\"/ui/login\">\
<label>Admin token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> \
<button type=\"submit\">Sign in</button></form>",
            esc(note)
        ),
    )
}

/// Lets a request in with the bearer token or the session cookie; otherwise the response
/// to send (401 with the login form, or 403 when the console is off).
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
fn authorize(console: &Console, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = console.token() else {
        return Err(html(
            StatusCode::FORBIDDEN,
            bare_page(
                "Console disabled",
                "<p>The console needs <code>server.admin_token</code>.</p>",
            ),
        ));
    };
    if crate::server::authorize_token(Some(token), headers).is_ok() {
        return Ok(());
    }
    if cookie(headers, COOKIE).is_some_and(|c| equal(c, &derived(token, "session"))) {
        return Ok(());
    }
    let mut response = html(
        StatusCode::UNAUTHORIZED,
        login_form("Sign in with the admin token (server.admin_token)."),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(response)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(console): State<Arc<Console>>, Form(form): Form<LoginForm>) -> Response {
    let Some(token) = console.token() else {
        return authorize(&console, &HeaderMap::new()).unwrap_err();
    };
    if !equal(&form.token, token.expose_secret()) {
        return html(
            StatusCode::UNAUTHORIZED,
            login_form("Wrong token. Sign in with the admin token (server.admin_token)."),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        derived(token, "session")
    );
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
        .into_response()
}

fn circuit(open: bool) -> &'static str {
    if open {
        "<span class=\"bad\">open</span>"
    } else {
        "<span class=\"ok\">closed</span>"
    }
}

async fn health(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&console, &headers) {
        return refused;
    }
    let m = console.server.pipeline.metrics();
    let kinds: BTreeMap<&str, &str> = console
        .server
        .sinks
        .iter()
        .map(|(id, s)| (id.as_str(), s.kind()))
        .collect();
    let mut body = String::from(
        "<h2>Sinks</h2><table><tr><th>Sink</th><th>Kind</th><th>Delivered</th><th>Retrying</th>\
<th>Retries</th><th>Dead-lettered</th><th>Circuit</th><th>Queue depth</th><th>Oldest undelivered</th></tr>",
    );
    for (id, s) in &m.sinks {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            esc(kinds.get(id.as_str()).copied().unwrap_or("")),
            s.delivered,
            s.requests_in_flight,
            s.retried,
            s.dead_lettered,
            circuit(s.circuit_open),
            s.queued,
            if s.oldest_undelivered_age_seconds > 0.0 {
                format_duration(s.oldest_undelivered_age_seconds.round() as i64)
            } else {
                "–".to_owned()
            },
        );
    }
    body.push_str("</table><h2>Notifiers</h2><table><tr><th>Notifier</th><th>Sent</th><th>Failed</th><th>Retries</th></tr>");
    for (id, n) in &m.notifiers {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            n.sent,
            n.failed,
            n.retried
        );
    }
    let _ = write!(
        body,
        "</table><p class=\"note\">{} events received, {} journaled, {} dropped (journal full), {} alerts routed, {} dead letters stored.</p>",
        m.events_in,
        m.events_journaled,
        m.events_dropped_full(),
        m.alerts_routed,
        m.dead_letters.letters
    );
    let span = history::SPAN.as_secs_f64();
    let (received, delivered, latency) = console.history.series(Sample::of(&m, Utc::now()));
    let _ = write!(
        body,
        "<h2>Last hour</h2><div class=\"charts\">\
<figure>{}<figcaption>Events received per second</figcaption></figure>\
<figure>{}<figcaption>Events delivered per second (all sinks)</figcaption></figure>\
<figure>{}<figcaption>Mean sink request latency</figcaption></figure></div>",
        line_chart(&received, span, "events/s"),
        line_chart(&delivered, span, "events/s"),
        line_chart(&latency, span, "ms"),
    );
    html(StatusCode::OK, page("Pipeline health", &body))
}

async fn alerts(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&console, &headers) {
        return refused;
    }
    let records = console.server.pipeline.notifications().recent();
    // One row per alert (newest first), its channels' results together.
    let mut order: Vec<&str> = Vec::new();
    let mut by_alert: BTreeMap<&str, Vec<&vowguard_pipeline::NotificationRecord>> = BTreeMap::new();
    for r in records.iter().rev() {
        let entry = by_alert.entry(r.alert_id.as_str()).or_default();
        if entry.is_empty() {
            order.push(r.alert_id.as_str());
        }
        entry.push(r);
    }
    let mut body = String::from(
        "<table><tr><th>Time</th><th>Priority</th><th>Route</th><th>Event</th><th>Channels</th></tr>",
    );
    for alert in order.iter().take(MAX_ROWS) {
        let channels = &by_alert[alert];
        let first = channels[0];
        let mut results = String::new();
        for r in channels.iter().rev() {
            let outcome = if r.delivered {
                "<span class=\"ok\">delivered</span>".to_owned()
            } else {
                format!(
                    "<span class=\"bad\">failed</span> {}",
                    esc(r.error.as_deref().unwrap_or(""))
                )
            };
            let _ = write!(
                results,
                "<div>{}: {} ({} attempt{}){}</div>",
                esc(&r.notifier),
                outcome,
                r.attempts,
                if r.attempts == 1 { "" } else { "s" },
                r.group_size
                    .map(|n| format!(", group of {n}"))
                    .unwrap_or_default()
            );
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            first.time.format("%Y-%m-%d %H:%M:%S UTC"),
            esc(first.priority.as_str()),
            esc(&first.route),
            esc(&first.event_id),
            results
        );
    }
    body.push_str("</table>");
    if order.is_empty() {
        body.push_str("<p class=\"note\">No alert since the start.</p>");
    }
    html(StatusCode::OK, page("Recent alerts", &body))
}

async fn dead_letters(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&console, &headers) {
        return refused;
    }
    let data_dir = console.data_dir.clone();
    let pending = tokio::task::spawn_blocking(move || crate::dlq::pending(&data_dir, None)).await;
    let letters = match pending {
        Ok(Ok(letters)) => letters,
        Ok(Err(e)) => {
            let body = format!(
                "<p class=\"bad\">The dead letters cannot be read: {}</p>",
                esc(&e.to_string())
            );
            return html(StatusCode::OK, page("Dead letters", &body));
        }
        Err(e) => {
            let body = format!("<p class=\"bad\">{}</p>", esc(&e.to_string()));
            return html(StatusCode::OK, page("Dead letters", &body));
        }
    };
    let mut per_sink: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &letters {
        *per_sink.entry(l.sink.as_str()).or_default() += 1;
    }
    let mut body =
        String::from("<h2>Per sink</h2><table><tr><th>Sink</th><th>Pending</th><th></th></tr>");
    for (sink, n) in &per_sink {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{n}</td><td><a href=\"/ui/dead-letters/replay?sink={}\">Replay…</a></td></tr>",
            esc(sink),
            esc(&query_value(sink))
        );
    }
    let _ = write!(
        body,
        "</table><h2>Latest letters</h2><table><tr><th>Time</th><th>Sink</th><th>Event</th><th>Action</th><th>User</th><th>Message</th><th>Reason</th><th>Attempts</th></tr>"
    );
    for l in letters.iter().rev().take(MAX_ROWS) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.time.format("%Y-%m-%d %H:%M:%S UTC"),
            esc(&l.sink),
            esc(&l.event.id),
            esc(&l.event.action),
            esc(l.event.user_name.as_deref().unwrap_or("")),
            esc(l.event.message.as_deref().unwrap_or("")),
            esc(&l.reason),
            l.attempts
        );
    }
    body.push_str("</table>");
    if letters.is_empty() {
        body.push_str("<p class=\"note\">No pending dead letter.</p>");
    }
    html(StatusCode::OK, page("Dead letters", &body))
}

#[derive(Deserialize)]
struct SinkQuery {
    sink: String,
}

async fn confirm_replay(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<SinkQuery>,
) -> Response {
    if let Err(refused) = authorize(&console, &headers) {
        return refused;
    }
    let Some(token) = console.token() else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let data_dir = console.data_dir.clone();
    let sink = query.sink.clone();
    let count = tokio::task::spawn_blocking(move || crate::dlq::pending(&data_dir, Some(&sink)))
        .await
        .ok()
        .and_then(Result::ok)
        .map_or(0, |l| l.len());
    let body = format!(
        "<p>Send the {count} pending dead letter(s) of sink <strong>{}</strong> to it again? \
Letters delivered are marked replayed; letters that fail again stay listed.</p>\
<form method=\"post\" action=\"/ui/dead-letters/replay\">\
<input type=\"hidden\" name=\"sink\" value=\"{}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\">Replay {count} letter(s)</button></form> <p><a href=\"/ui/dead-letters\">Cancel</a></p>",
        esc(&query.sink),
        esc(&query.sink),
        derived(token, "csrf"),
    );
    html(StatusCode::OK, page("Replay dead letters", &body))
}

#[derive(Deserialize)]
struct ReplayForm {
    sink: String,
    csrf: String,
}

async fn replay(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<ReplayForm>,
) -> Response {
    if let Err(refused) = authorize(&console, &headers) {
        return refused;
    }
    let Some(token) = console.token() else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if !equal(&form.csrf, &derived(token, "csrf")) {
        return html(
            StatusCode::FORBIDDEN,
            page(
                "Replay refused",
                "<p class=\"bad\">The form's CSRF token is missing or wrong: open the replay page again.</p>",
            ),
        );
    }
    let stream = console.cluster.as_ref().and_then(|c| c.jetstream());
    let enrich = form.sink == vowguard_jetstream::ENRICH_CONSUMER;
    if enrich && console.cluster.is_some() && stream.is_none() {
        let body = "<p class=\"bad\">The JetStream queue is not reachable right now: the enrichment dead letters cannot be replayed into it. Try again once <code>/health</code> says it is.</p>";
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            page("Replay refused", body),
        );
    }
    let replayable =
        (enrich && stream.is_some()) || console.sinks.iter().any(|s| s.id == form.sink);
    if !replayable {
        let body = format!(
            "<p class=\"bad\">No sink <strong>{}</strong> is configured.</p>",
            esc(&form.sink)
        );
        return html(StatusCode::BAD_REQUEST, page("Replay refused", &body));
    }
    let _one_at_a_time = console.replaying.lock().await;
    let result = crate::dlq::replay_with(
        &console.data_dir,
        console.sinks.clone(),
        stream.as_ref(),
        console.audit.as_ref(),
        "console",
        Some(&form.sink),
        &|| {},
    )
    .await;
    let body = match result {
        Ok(report) => {
            let mut body = format!(
                "<p class=\"ok\">Replayed {} dead letter(s) of {}: {} delivered{}, {} failed again.</p>",
                report.replayed,
                esc(&form.sink),
                report.delivered,
                if report.requeued > 0 {
                    format!(", {} requeued to the stream", report.requeued)
                } else {
                    String::new()
                },
                report.failed.len()
            );
            for (sink, event, reason) in report.failed.iter().take(MAX_ROWS) {
                let _ = write!(
                    body,
                    "<div>{} <code>{}</code>: {}</div>",
                    esc(sink),
                    esc(event),
                    esc(reason)
                );
            }
            body
        }
        Err(e) => format!(
            "<p class=\"bad\">The replay failed: {}</p>",
            esc(&e.to_string())
        ),
    };
    html(
        StatusCode::OK,
        page(
            "Replay",
            &(body + "<p><a href=\"/ui/dead-letters\">Back to the dead letters</a></p>"),
        ),
    )
}

async fn incidents(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&console, &headers) {
        return refused;
    }
    let now = Utc::now();
    let mut body = String::from("<h2>Open incidents</h2>");
    match &console.response {
        None => body.push_str("<p class=\"note\">Automated response is not configured.</p>"),
        Some(engine) => {
            let open: Vec<_> = engine
                .incidents()
                .into_iter()
                .filter(|i| i.state != vowguard_response::IncidentState::Resolved)
                .collect();
            body.push_str("<table><tr><th>Opened</th><th>Priority</th><th>State</th><th>Title</th><th>Route</th><th>Alerts</th><th>Weddings</th></tr>");
            for i in open.iter().take(MAX_ROWS) {
                let _ = write!(
                    body,
                    "<tr><td>{} ({} ago)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    i.opened.at.format("%Y-%m-%d %H:%M UTC"),
                    format_duration((now - i.opened.at).num_seconds()),
                    esc(i.priority.as_str()),
                    esc(i.state.as_str()),
                    esc(&i.title),
                    esc(&i.route),
                    i.alert_count,
                    esc(&i.wedding_ids.join(", ")),
                );
            }
            body.push_str("</table>");
            if open.is_empty() {
                body.push_str("<p class=\"note\">No open incident.</p>");
            }
        }
    }
    body.push_str("<h2>Breaches (GDPR Art. 33: 72 hours from confirmation)</h2>");
    match &console.server.reports {
        Err(why) => {
            let _ = write!(
                body,
                "<p class=\"bad\">The report store is unavailable: {}</p>",
                esc(why)
            );
        }
        Ok(reports) => {
            match tokio::time::timeout(STORE_TIMEOUT, reports.register.storage().breaches()).await {
                Err(_) => {
                    body.push_str("<p class=\"bad\">The report store did not answer in time.</p>");
                }
                Ok(Err(e)) => {
                    let _ = write!(
                        body,
                        "<p class=\"bad\">The report store is unavailable: {}</p>",
                        esc(&e.to_string())
                    );
                }
                Ok(Ok(breaches)) => {
                    use vowguard_store::BreachStatus;
                    let open: Vec<_> = breaches
                        .into_iter()
                        .filter(|b| {
                            matches!(b.status, BreachStatus::Suspected | BreachStatus::Confirmed)
                        })
                        .collect();
                    body.push_str("<table><tr><th>Detected</th><th>Status</th><th>Wedding</th><th>First signal</th><th>Deadline</th><th>Countdown</th></tr>");
                    for b in open.iter().take(MAX_ROWS) {
                        let countdown = match b.deadline {
                            None => "<span class=\"note\">clock not running (unconfirmed)</span>"
                                .to_owned(),
                            Some(deadline) => {
                                let left = (deadline - now).num_seconds();
                                if left < 0 {
                                    format!(
                                        "<span class=\"bad\">overdue by {}</span>",
                                        format_duration(left)
                                    )
                                } else if left < 24 * 3600 {
                                    format!(
                                        "<span class=\"warn\">{} left</span>",
                                        format_duration(left)
                                    )
                                } else {
                                    format!("{} left", format_duration(left))
                                }
                            }
                        };
                        let _ = write!(
                            body,
                            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            b.detected_at.format("%Y-%m-%d %H:%M UTC"),
                            esc(b.status.as_str()),
                            esc(b.wedding_id.as_deref().unwrap_or("")),
                            esc(b.first_signal.as_deref().unwrap_or("")),
                            b.deadline
                                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                                .unwrap_or_default(),
                            countdown
                        );
                    }
                    body.push_str("</table>");
                    if open.is_empty() {
                        body.push_str("<p class=\"note\">No open breach.</p>");
                    }
                }
            }
        }
    }
    let _ = write!(
        body,
        "<p class=\"note\">As of {} (the page refreshes every 30 s).</p>",
        now.format("%Y-%m-%d %H:%M:%S UTC")
    );
    html(StatusCode::OK, page("Incidents and breaches", &body))
}

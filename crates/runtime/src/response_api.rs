//! The admin API of automated response, bearer-authenticated like the other admin
//! endpoints:
//!
//! * `GET /api/incidents`, `GET /api/incidents/{id}`
//! * `POST /api/incidents/{id}/ack`, `POST /api/incidents/{id}/resolve` (`{"as": "who",
//!   "note": "..."}`)
//! * `POST /api/playbook-runs/{id}/approve`, `POST /api/playbook-runs/{id}/reject`
//!   (`{"step": "approve_recovery", "as": "who", "comment": "...", "fields": {...}}`:
//!   the comment is optional; the fields are checked against the step's
//!   `response_fields`, a decision that does not fit is refused (400) and recorded)
//!
//! The acting identity (`as`, or `api` when absent) is recorded on the incident timeline;
//! an approval from someone the step does not allow is refused (403) and recorded.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vowguard_core::secrecy::SecretString;
use vowguard_core::{Error, ErrorKind};
use vowguard_response::ResponseEngine;

use crate::server::{authorize_token, json_error};

/// Longest accepted identity, in bytes.
const MAX_ACTOR_LEN: usize = 128;

struct ApiState {
    engine: Option<ResponseEngine>,
    token: Option<SecretString>,
}

/// The request body of the state-changing calls.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    /// Who acts.
    #[serde(default, rename = "as")]
    actor: Option<String>,
    /// A note (resolve).
    #[serde(default)]
    note: Option<String>,
    /// The approval step (approve/reject).
    #[serde(default)]
    step: Option<String>,
    /// A comment on the decision (approve/reject).
    #[serde(default)]
    comment: Option<String>,
    /// The structured fields the approval step declares (approve/reject).
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
}

/// The routes, sharing the admin token; `engine` is `None` when response is disabled.
pub fn router(engine: Option<ResponseEngine>, token: Option<SecretString>) -> Router {
    let state = Arc::new(ApiState { engine, token });
    Router::new()
        .route("/api/incidents", get(list))
        .route("/api/incidents/{id}", get(show))
        .route("/api/incidents/{id}/ack", post(ack))
        .route("/api/incidents/{id}/resolve", post(resolve))
        .route("/api/playbook-runs/{id}/approve", post(approve))
        .route("/api/playbook-runs/{id}/reject", post(reject))
        .with_state(state)
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
fn engine<'a>(state: &'a ApiState, headers: &HeaderMap) -> Result<&'a ResponseEngine, Response> {
    authorize_token(state.token.as_ref(), headers)?;
    state.engine.as_ref().ok_or_else(|| {
        json_error(
            StatusCode::NOT_FOUND,
            "automated response is disabled (response.enabled = false)",
        )
    })
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
fn actor(body: &ActBody) -> Result<String, Response> {
    let who = body.actor.clone().unwrap_or_else(|| "api".into());
    if who.is_empty()
        || who.len() > MAX_ACTOR_LEN
        || !who
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
    {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "`as`: an identity is 1-128 letters, digits, `-`, `_`, `.`, `@` or `:`",
        ));
    }
    Ok(who)
}

fn error_response(e: &Error) -> Response {
    let status = match e.kind() {
        ErrorKind::InvalidInput => StatusCode::NOT_FOUND,
        ErrorKind::Rejected => StatusCode::CONFLICT,
        // The cluster's shared state could not be reached: try again.
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_error(status, e.to_string())
}

async fn list(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let engine = match engine(&state, &headers) {
        Ok(e) => e,
        Err(r) => return r,
    };
    // In a cluster, each copy is brought up to the state the replicas share first.
    let incidents: Vec<serde_json::Value> = engine
        .refresh_incidents()
        .await
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id, "title": i.title, "priority": i.priority, "state": i.state,
                "opened": i.opened, "acknowledged": i.acknowledged, "contained": i.contained,
                "resolved": i.resolved, "alert_count": i.alert_count, "wedding_ids": i.wedding_ids,
                "tickets": i.tickets,
            })
        })
        .collect();
    Json(json!({ "incidents": incidents })).into_response()
}

async fn show(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let engine = match engine(&state, &headers) {
        Ok(e) => e,
        Err(r) => return r,
    };
    match engine.refresh_incident(&id).await {
        Some(incident) => {
            let runs = engine.runs(Some(&id));
            Json(json!({ "incident": incident, "runs": runs })).into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, "no such incident"),
    }
}

async fn ack(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ActBody>>,
) -> Response {
    let engine = match engine(&state, &headers) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let who = match actor(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match engine.acknowledge(&id, &who).await {
        Ok(incident) => Json(json!({ "incident": incident })).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn resolve(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ActBody>>,
) -> Response {
    let engine = match engine(&state, &headers) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let who = match actor(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let note = body.note.clone().unwrap_or_default();
    match engine.resolve(&id, &who, &note).await {
        Ok(incident) => Json(json!({ "incident": incident })).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn decide(
    state: &ApiState,
    id: &str,
    headers: &HeaderMap,
    body: Option<ActBody>,
    approve: bool,
) -> Response {
    let engine = match engine(state, headers) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = body.unwrap_or_default();
    let who = match actor(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(step) = body.step.as_deref() else {
        return json_error(StatusCode::BAD_REQUEST, "`step`: name the approval step");
    };
    match engine
        .decide_with(
            id,
            step,
            &who,
            approve,
            body.comment.as_deref(),
            &body.fields,
        )
        .await
    {
        Ok(()) => Json(json!({ "run": engine.run(id) })).into_response(),
        Err(e) if e.message().contains("may not decide") => {
            json_error(StatusCode::FORBIDDEN, e.to_string())
        }
        Err(e) => error_response(&e),
    }
}

async fn approve(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ActBody>>,
) -> Response {
    decide(&state, &id, &headers, body.map(|b| b.0), true).await
}

async fn reject(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ActBody>>,
) -> Response {
    decide(&state, &id, &headers, body.map(|b| b.0), false).await
}

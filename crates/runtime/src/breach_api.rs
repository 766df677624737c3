//! Breach register changes through the running process, bearer-authenticated like the other
//! admin endpoints. While `vowguard run` holds the audit log, `vowguard breach
//! confirm|update` cannot write to it from another process; these go through the process
//! that holds it:
//!
//! * `POST /api/breaches/{id}/confirm` (`{"as": "dpo", "at": "2026-06-13T14:00:00Z"}`,
//!   `at` defaulting to now)
//! * `POST /api/breaches/{id}/update` (`{"as": "dpo", "update": {<BreachUpdate fields>},
//!   "status": "notified_authority" | "notified_subjects" | "not_notifiable" | "closed",
//!   "at": "...", "reason": "..."}`: the fields, the status change, or both)
//! * `GET /api/breaches/{id}/notice?tz=Europe/Berlin`: the Art. 33 notice (text)
//!
//! The acting identity (`as`, or `api` when absent) is recorded with the change.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use vowguard_core::secrecy::SecretString;
use vowguard_core::{Error, ErrorKind};
use vowguard_store::{BreachChange, BreachUpdate};

use crate::reports::Reports;
use crate::server::{authorize_token, json_error};

struct ApiState {
    reports: Result<Arc<Reports>, String>,
    token: Option<SecretString>,
}

/// The body of `confirm` and `update`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    /// Who acts.
    #[serde(default, rename = "as")]
    actor: Option<String>,
    /// When (confirm, and the status change of an update); default now.
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    /// The fields to set (update).
    #[serde(default)]
    update: Option<BreachUpdate>,
    /// The status to move to (update).
    #[serde(default)]
    status: Option<String>,
    /// Why it is not notifiable (`status = "not_notifiable"`).
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NoticeQuery {
    tz: Option<String>,
}

/// The routes; `reports` is the run's report store (or why it is unavailable).
pub fn router(reports: Result<Arc<Reports>, String>, token: Option<SecretString>) -> Router {
    let state = Arc::new(ApiState { reports, token });
    Router::new()
        .route("/api/breaches/{id}/confirm", post(confirm))
        .route("/api/breaches/{id}/update", post(update))
        .route("/api/breaches/{id}/notice", get(notice))
        .with_state(state)
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
fn reports<'a>(state: &'a ApiState, headers: &HeaderMap) -> Result<&'a Reports, Response> {
    authorize_token(state.token.as_ref(), headers)?;
    state.reports.as_deref().map_err(|why| {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the breach register is unavailable: {why}"),
        )
    })
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response, built once per refused call"
)]
fn actor(body: &ChangeBody) -> Result<String, Response> {
    let who = body.actor.clone().unwrap_or_else(|| "api".into());
    if who.is_empty()
        || who.len() > 128
        || !who
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
    {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "`as`: an identity is 1-128 letters, digits, `-`, `_`, `.`, `@` or `:`",
        ));
    }
    Ok(format!("api:{who}"))
}

fn error_response(e: &Error) -> Response {
    let status = match e.kind() {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Rejected => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_error(status, e.to_string())
}

async fn confirm(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ChangeBody>>,
) -> Response {
    let reports = match reports(&state, &headers) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let who = match actor(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let now = Utc::now();
    let at = body.at.unwrap_or(now);
    match reports
        .register
        .change(&id, &BreachChange::Confirm { at }, &who, now)
        .await
    {
        Ok(breach) => Json(json!({ "breach": breach })).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn update(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ChangeBody>>,
) -> Response {
    let reports = match reports(&state, &headers) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let who = match actor(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let now = Utc::now();
    let at = body.at.unwrap_or(now);
    let status = match body.status.as_deref() {
        None => None,
        Some("notified_authority") => Some(BreachChange::NotifyAuthority { at }),
        Some("notified_subjects") => Some(BreachChange::NotifySubjects { at }),
        Some("closed") => Some(BreachChange::Close { at }),
        Some("not_notifiable") => match &body.reason {
            Some(reason) => Some(BreachChange::NotNotifiable {
                reason: reason.clone(),
            }),
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "`reason`: `status = \"not_notifiable\"` needs it (Art. 33(5): document why)",
                );
            }
        },
        Some(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "`status`: expected notified_authority, notified_subjects, not_notifiable or closed (confirm with /confirm)",
            );
        }
    };
    let fields = body.update.filter(|u| *u != BreachUpdate::default());
    if fields.is_none() && status.is_none() {
        return json_error(
            StatusCode::BAD_REQUEST,
            "nothing to update: give `update` fields or a `status`",
        );
    }
    let mut breach = None;
    if let Some(fields) = fields {
        match reports
            .register
            .change(&id, &BreachChange::Update(fields), &who, now)
            .await
        {
            Ok(b) => breach = Some(b),
            Err(e) => return error_response(&e),
        }
    }
    if let Some(change) = status {
        match reports.register.change(&id, &change, &who, now).await {
            Ok(b) => breach = Some(b),
            Err(e) => return error_response(&e),
        }
    }
    let missing = breach
        .as_ref()
        .map(vowguard_store::Breach::missing_content)
        .unwrap_or_default();
    Json(json!({ "breach": breach, "missing_for_notice": missing })).into_response()
}

async fn notice(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let reports = match reports(&state, &headers) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let tz = query.tz.unwrap_or_else(|| "UTC".into());
    let Ok(zone) = tz.parse::<chrono_tz::Tz>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "`tz`: unknown time zone (e.g. Europe/Berlin)",
        );
    };
    match reports.register.notice(&id, Utc::now(), zone).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error_response(&e),
    }
}

//! [`TheHiveTickets`]: opens, updates and resolves TheHive 5 alerts.

use std::fmt;

use async_trait::async_trait;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vowguard_core::{Error, Redactor, TicketDraft, TicketRef, TicketSystem, TicketUpdate};
use vowguard_http::reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use vowguard_http::reqwest::{Client, Method, StatusCode, Url};
use vowguard_http::{Answer, Exchange};

use crate::config::{TheHiveConfig, UpdateMode};
use crate::encode::{self, AlertTemplate};
use vowguard_core::{TicketIndex, TicketIndexEntry as IndexEntry};

/// A TheHive 5 organisation as a vowguard ticket system: one alert per incident.
pub struct TheHiveTickets {
    id: String,
    base: Url,
    api_key: SecretString,
    organisation: Option<HeaderValue>,
    template: AlertTemplate,
    update_mode: UpdateMode,
    resolve_status: String,
    client: Client,
    /// Send, read (capped at `vowguard_http::MAX_RESPONSE_BYTES`), classify; holds the
    /// redactor of the API key.
    http: Exchange,
    index: TicketIndex,
}

impl fmt::Debug for TheHiveTickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TheHiveTickets")
            .field("id", &self.id)
            .field("endpoint", &vowguard_http::origin(&self.base))
            .field("api_key", &"[redacted]")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl TheHiveTickets {
    /// The ticket system `[tickets.<id>]` from `config`, the resolved API key and the
    /// fingerprint index (see [`TicketIndex::load`]). Config errors name keys under
    /// `tickets.<id>`.
    pub fn new(
        id: &str,
        config: &TheHiveConfig,
        api_key: SecretString,
        index: TicketIndex,
    ) -> Result<Self, Error> {
        let prefix = format!("tickets.{id}");
        config.validate(&prefix)?;
        vowguard_http::sensitive_header(&format!("Bearer {}", api_key.expose_secret())).map_err(
            |_| {
                Error::config(format!(
                    "`{prefix}.api_key`: contains characters not allowed in an HTTP header"
                ))
            },
        )?;
        let organisation = config
            .organisation
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| Error::config(format!("`{prefix}.organisation`: not a header value")))?;
        Ok(Self {
            id: id.to_owned(),
            base: config.base_url(&prefix)?,
            http: Exchange::new().with_redactor(Redactor::new().secret(&api_key)),
            api_key,
            organisation,
            template: AlertTemplate {
                alert_type: config.alert_type.clone(),
                source: config.source.clone(),
                tags: config.tags.clone(),
                tlp: config.tlp,
                pap: config.pap,
                severity_by_priority: config.severity_by_priority,
                case_template: config.case_template.clone(),
            },
            update_mode: config.update_mode,
            resolve_status: config.resolve_status.clone(),
            client: vowguard_http::build_client(&config.http)?,
            index,
        })
    }

    /// The configured parts of every alert.
    pub fn template(&self) -> &AlertTemplate {
        &self.template
    }

    /// The fingerprint index.
    pub fn index(&self) -> &TicketIndex {
        &self.index
    }

    /// `base` + `segments`, each percent-encoded as one path segment (an id can never
    /// add a segment, a query or another host).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The analyst's link to an alert.
    fn alert_link(&self, id: &str) -> String {
        self.url(&["alerts", id, "details"]).to_string()
    }

    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, Error> {
        let auth =
            vowguard_http::sensitive_header(&format!("Bearer {}", self.api_key.expose_secret()))?;
        let mut request = self.client.request(method, url).header(AUTHORIZATION, auth);
        if let Some(org) = &self.organisation {
            request = request.header("X-Organisation", org.clone());
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| Error::encode(format!("{what}: cannot encode the body: {e}")))?;
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        self.http.send(request, what).await
    }

    /// `Ok(body)` for 2xx, else the mapped error.
    fn expect_success(&self, answer: Answer, what: &str) -> Result<String, Error> {
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            Err(self.failure(&answer, what))
        }
    }

    /// The error for a non-2xx answer, with TheHive's `type: message`.
    fn failure(&self, answer: &Answer, what: &str) -> Error {
        self.http.failure(answer, what, vendor_reason(&answer.body))
    }

    fn what(&self, action: &str) -> String {
        format!(
            "TheHive `tickets.{}` at {}: {action}",
            self.id,
            vowguard_http::origin(&self.base)
        )
    }

    async fn open_alert(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        if draft.fingerprint.trim().is_empty() {
            return Err(Error::invalid_input(
                "the ticket draft has an empty `fingerprint` (it is TheHive's sourceRef)",
            ));
        }
        let _one_open_per_fingerprint = self.index.lock(&draft.fingerprint).await;
        if let Some(known) = self.index.get(&draft.fingerprint) {
            return Ok(known);
        }
        let what = self.what("create alert");
        let body = encode::alert_body(draft, &self.template);
        let answer = self
            .exchange(
                Method::POST,
                self.url(&["api", "v1", "alert"]),
                Some(&body),
                &what,
            )
            .await?;
        let id = if answer.status.is_success() {
            alert_id(&answer.body).ok_or_else(|| {
                Error::internal(format!("{what}: TheHive answered without an alert `_id`"))
            })?
        } else if is_duplicate(answer.status, &answer.body) {
            self.find_alert(&encode::source_ref(&draft.fingerprint))
                .await?
        } else {
            return Err(self.failure(&answer, &what));
        };
        let url = self.alert_link(&id);
        self.index.remember(IndexEntry {
            fingerprint: draft.fingerprint.clone(),
            incident_id: draft.incident_id.clone(),
            key: id.clone(),
            url: Some(url.clone()),
            opened_at: Utc::now(),
            resolved_at: None,
        })?;
        Ok(TicketRef {
            system: self.id.clone(),
            key: id,
            url: Some(url),
        })
    }

    /// The id of the alert with our (type, source, `source_ref`).
    async fn find_alert(&self, source_ref: &str) -> Result<String, Error> {
        let what = self.what("find the existing alert");
        let mut url = self.url(&["api", "v1", "query"]);
        url.query_pairs_mut()
            .append_pair("name", "vowguard-find-alert");
        let query =
            encode::find_alert_query(&self.template.alert_type, &self.template.source, source_ref);
        let answer = self
            .exchange(Method::POST, url, Some(&query), &what)
            .await?;
        let body = self.expect_success(answer, &what)?;
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array()?.first().and_then(alert_id_of))
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "{what}: TheHive refused a duplicate alert but the query found none yet"
                ))
            })
    }

    async fn add_entry(&self, ticket: &TicketRef, text: &str) -> Result<(), Error> {
        match self.update_mode {
            UpdateMode::Comment => {
                let what = self.what("comment on alert");
                let answer = self
                    .exchange(
                        Method::POST,
                        self.url(&["api", "v1", "alert", &ticket.key, "comment"]),
                        Some(&json!({ "message": text })),
                        &what,
                    )
                    .await?;
                self.expect_success(answer, &what).map(drop)
            }
            UpdateMode::Description => {
                let what = self.what("append to the alert description");
                let url = self.url(&["api", "v1", "alert", &ticket.key]);
                let answer = self.exchange(Method::GET, url.clone(), None, &what).await?;
                let body = self.expect_success(answer, &what)?;
                let current = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("description")?.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if current.contains(text) {
                    // A retried update whose first attempt was applied.
                    return Ok(());
                }
                let description = encode::append_to_description(&current, text);
                let answer = self
                    .exchange(
                        Method::PATCH,
                        url,
                        Some(&json!({ "description": description })),
                        &what,
                    )
                    .await?;
                self.expect_success(answer, &what).map(drop)
            }
        }
    }

    async fn close_alert(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        let what = self.what("read the alert");
        let answer = self
            .exchange(
                Method::GET,
                self.url(&["api", "v1", "alert", &ticket.key]),
                None,
                &what,
            )
            .await?;
        let alert: Value =
            serde_json::from_str(&self.expect_success(answer, &what)?).unwrap_or(Value::Null);
        if alert.get("stage").and_then(Value::as_str) == Some("Closed")
            || alert.get("status").and_then(Value::as_str) == Some(self.resolve_status.as_str())
        {
            // Already closed (a repeated resolve, or an analyst closed it): change nothing.
            return Ok(());
        }
        self.add_entry(ticket, &encode::resolve_text(note)).await?;
        let what = self.what("set the alert status");
        let answer = self
            .exchange(
                Method::PATCH,
                self.url(&["api", "v1", "alert", &ticket.key]),
                Some(&json!({ "status": self.resolve_status })),
                &what,
            )
            .await?;
        self.expect_success(answer, &what).map(drop)
    }
}

#[async_trait]
impl TicketSystem for TheHiveTickets {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// Creates the alert (`sourceRef` = fingerprint); a duplicate refused by TheHive is
    /// found with a query and returned, never created twice.
    async fn open(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        self.http.redactor().result(self.open_alert(draft).await)
    }

    /// Adds a comment (or appends to the description, `update_mode = "description"`).
    async fn update(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error> {
        self.http
            .redactor()
            .result(self.add_entry(ticket, &encode::entry_text(update)).await)
    }

    /// Reads the alert; unless it is already closed, records the note like an update and
    /// sets `resolve_status`.
    async fn resolve(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        self.http
            .redactor()
            .result(self.close_alert(ticket, note).await)
    }

    /// `GET /api/v1/user/current`: the key is valid and TheHive answers.
    async fn healthcheck(&self) -> Result<(), Error> {
        let what = self.what("check the API key");
        let result = async {
            let answer = self
                .exchange(
                    Method::GET,
                    self.url(&["api", "v1", "user", "current"]),
                    None,
                    &what,
                )
                .await?;
            self.expect_success(answer, &what).map(drop)
        }
        .await;
        self.http.redactor().result(result)
    }
}

/// `type: message` from a TheHive error body.
pub fn vendor_reason(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let message = value.get("message").and_then(Value::as_str);
    let kind = value.get("type").and_then(Value::as_str);
    match (kind, message) {
        (Some(k), Some(m)) => Some(format!("{k}: {m}")),
        (None, Some(m)) => Some(m.to_owned()),
        (Some(k), None) => Some(k.to_owned()),
        (None, None) => None,
    }
}

/// Whether TheHive refused the alert because (type, source, sourceRef) exists: 400 (or
/// 409) with "already exists" in the message.
pub fn is_duplicate(status: StatusCode, body: &str) -> bool {
    matches!(status.as_u16(), 400 | 409) && body.to_ascii_lowercase().contains("already exists")
}

fn alert_id(body: &str) -> Option<String> {
    alert_id_of(&serde_json::from_str::<Value>(body).ok()?)
}

fn alert_id_of(alert: &Value) -> Option<String> {
    let id = alert.get("_id")?.as_str()?;
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_reasons() {
        assert!(is_duplicate(
            StatusCode::BAD_REQUEST,
            r#"{"type":"CreateError","message":"Alert already exists"}"#
        ));
        assert!(!is_duplicate(
            StatusCode::BAD_REQUEST,
            r#"{"type":"BadRequest","message":"Invalid severity"}"#
        ));
        assert!(!is_duplicate(
            StatusCode::INTERNAL_SERVER_ERROR,
            "already exists"
        ));
        assert_eq!(
            vendor_reason(r#"{"type":"AuthenticationError","message":"no"}"#).as_deref(),
            Some("AuthenticationError: no")
        );
        assert_eq!(vendor_reason("<html>"), None);
    }
}

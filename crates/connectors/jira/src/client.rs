//! The Jira Cloud ticket system: REST v3 calls and how their answers map onto vowguard
//! errors.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;
use vowguard_core::{
    Error, ErrorKind, Redactor, SnapshotFile, TicketDraft, TicketRef, TicketSystem, TicketUpdate,
};
use vowguard_http::reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use vowguard_http::reqwest::{Client, Method, Url};
use vowguard_http::{Answer, Exchange};

use crate::config::{JiraConfig, PriorityNames};
use crate::encode::{self, IssueTemplate};
use crate::state::{IssueMap, Known};

/// Opens, comments on and resolves Jira Cloud issues; idempotent on the draft's
/// fingerprint (see [`crate::state`]).
pub struct JiraTickets {
    id: String,
    base: Url,
    authorization: HeaderValue,
    client: Client,
    /// Send, read (capped), classify; holds the redactor of the token and credentials.
    exchange: Exchange,
    template: IssueTemplate,
    priorities: Option<PriorityNames>,
    resolve_transition: String,
    settle: Duration,
    max_remembered: usize,
    /// Held for the whole of `open`, so two opens of one incident cannot both create.
    map: Mutex<IssueMap>,
}

impl fmt::Debug for JiraTickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraTickets")
            .field("id", &self.id)
            .field("site", &vowguard_http::origin(&self.base))
            .field("project", &self.template.project)
            .field("authorization", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl JiraTickets {
    /// A ticket system for component `id` (`[tickets.<id>]`) from `config` and the
    /// resolved API token, remembering issues in memory only; add
    /// [`JiraTickets::with_state_file`] to survive restarts.
    pub fn with_id(id: &str, config: &JiraConfig, api_token: &SecretString) -> Result<Self, Error> {
        let prefix = format!("tickets.{id}");
        config.validate(&prefix)?;
        let credentials = format!("{}:{}", config.email.trim(), api_token.expose_secret());
        let encoded = BASE64.encode(credentials.as_bytes());
        let authorization = vowguard_http::sensitive_header(&format!("Basic {encoded}"))?;
        Ok(Self {
            id: id.to_owned(),
            base: config.base_url(&prefix)?,
            authorization,
            client: vowguard_http::build_client(&config.http)?,
            exchange: Exchange::new().with_redactor(
                Redactor::new()
                    .secret(api_token)
                    .text(&encoded)
                    .text(&credentials),
            ),
            template: IssueTemplate {
                project: config.project.clone(),
                issue_type: config.issue_type.clone(),
                labels: config.labels.clone(),
                task_style: config.task_style,
            },
            priorities: config.set_priority.then(|| config.priorities.clone()),
            resolve_transition: config.resolve_transition.clone(),
            settle: config.search_settle,
            max_remembered: config.max_remembered,
            map: Mutex::new(IssueMap::in_memory(config.max_remembered)),
        })
    }

    /// Keeps the fingerprint → issue-key map in `file` (loaded now, written before every
    /// `open` returns). An unreadable file is an error naming it.
    pub fn with_state_file(self, file: SnapshotFile) -> Result<Self, Error> {
        let map = IssueMap::load(file, self.max_remembered)?;
        Ok(Self {
            map: Mutex::new(map),
            ..self
        })
    }

    /// The request body `open` sends to create an issue for `draft`.
    pub fn create_body(&self, draft: &TicketDraft) -> Value {
        let priority = self.priorities.as_ref().map(|p| p.name(draft.priority));
        encode::create_body(draft, &self.template, priority)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(["rest", "api", "3"]);
            path.extend(segments);
        }
        url
    }

    fn ticket_ref(&self, key: &str) -> TicketRef {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(["browse", key]);
        }
        TicketRef {
            system: self.id.clone(),
            key: key.to_owned(),
            url: Some(url.to_string()),
        }
    }

    /// Sends one request and returns the parsed JSON answer (`Null` for an empty body);
    /// any non-2xx is mapped onto an error carrying Jira's messages.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, Error> {
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| Error::encode(format!("{what}: cannot encode the body: {e}")))?;
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let answer = self.exchange.send(request, what).await?;
        map_response(&self.exchange, &answer, what)
    }

    async fn search(&self, label: &str) -> Result<Option<String>, Error> {
        let what = format!(
            "search Jira issues at {}",
            vowguard_http::origin(&self.base)
        );
        let body = encode::search_body(&self.template.project, label);
        let answer = self
            .call(
                Method::POST,
                self.url(&["search", "jql"]),
                Some(&body),
                &what,
            )
            .await
            .map_err(|e| {
                if e.status() == Some(410) {
                    Error::rejected(format!(
                        "{what}: Jira answered 410 Gone for /rest/api/3/search/jql; \
                         this is not a Jira Cloud site with the enhanced search API"
                    ))
                    .with_status(410)
                } else {
                    e
                }
            })?;
        let first = answer
            .get("issues")
            .and_then(Value::as_array)
            .and_then(|issues| issues.first())
            .and_then(|issue| {
                issue.get("key").or_else(|| issue.get("id")).and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| Some(v.to_string()))
                })
            });
        Ok(first.filter(|k| valid_issue_key(k)))
    }

    async fn create(&self, draft: &TicketDraft) -> Result<String, Error> {
        let what = format!("create Jira issue at {}", vowguard_http::origin(&self.base));
        let body = self.create_body(draft);
        let answer = self
            .call(Method::POST, self.url(&["issue"]), Some(&body), &what)
            .await?;
        answer
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| valid_issue_key(k))
            .map(str::to_owned)
            .ok_or_else(|| {
                // Jira said yes but the key is unreadable: the issue may exist.
                Error::unavailable(format!(
                    "{what}: the answer carries no issue key; the issue may have been created"
                ))
            })
    }

    async fn open_locked(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        let label = encode::fingerprint_label(&draft.fingerprint);
        let mut map = self.map.lock().await;
        let pending_since = match map.get(&label) {
            Some(Known::Created { key, .. }) => return Ok(self.ticket_ref(key)),
            Some(Known::Pending { since }) => Some(*since),
            None => None,
        };
        if let Some(key) = self.search(&label).await? {
            map.set(
                &label,
                Known::Created {
                    key: key.clone(),
                    at: Utc::now(),
                },
            )
            .await?;
            return Ok(self.ticket_ref(&key));
        }
        if let Some(since) = pending_since {
            let waited = (Utc::now() - since).to_std().unwrap_or(Duration::ZERO);
            if waited < self.settle {
                let remaining = self.settle - waited;
                return Err(Error::unavailable(format!(
                    "an earlier create of this incident's Jira issue may have succeeded; \
                     waiting up to {}s for Jira search to show it before creating it",
                    remaining.as_secs().max(1)
                ))
                .with_retry_after(remaining.min(Duration::from_secs(5))));
            }
        }
        map.set(&label, Known::Pending { since: Utc::now() })
            .await?;
        match self.create(draft).await {
            Ok(key) => {
                map.set(
                    &label,
                    Known::Created {
                        key: key.clone(),
                        at: Utc::now(),
                    },
                )
                .await?;
                tracing::info!(ticket_system = %self.id, issue = %key, "opened Jira issue");
                Ok(self.ticket_ref(&key))
            }
            Err(e) => {
                if !outcome_unknown(&e) {
                    map.remove(&label).await?;
                }
                Err(e)
            }
        }
    }

    async fn comment(&self, key: &str, body: &Value, what: &str) -> Result<(), Error> {
        self.call(
            Method::POST,
            self.url(&["issue", key, "comment"]),
            Some(body),
            what,
        )
        .await
        .map(drop)
    }

    async fn resolve_inner(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        let key = checked_key(&ticket.key)?;
        let origin = vowguard_http::origin(&self.base);
        let what = format!("read Jira issue {key} at {origin}");
        let mut url = self.url(&["issue", key]);
        url.query_pairs_mut().append_pair("fields", "status");
        let issue = self.call(Method::GET, url, None, &what).await?;
        let category = issue
            .pointer("/fields/status/statusCategory/key")
            .and_then(Value::as_str);
        if category == Some("done") {
            return Ok(());
        }
        let what = format!("list transitions of Jira issue {key} at {origin}");
        let answer = self
            .call(
                Method::GET,
                self.url(&["issue", key, "transitions"]),
                None,
                &what,
            )
            .await?;
        let transitions = answer
            .get("transitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let wanted = self.resolve_transition.trim();
        let found = transitions.iter().find(|t| {
            let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
            name.trim().eq_ignore_ascii_case(wanted)
        });
        let Some(transition_id) = found.and_then(|t| match t.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }) else {
            let names: Vec<&str> = transitions
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect();
            return Err(Error::rejected(format!(
                "Jira issue {key} has no transition named {wanted:?} (`tickets.{}.resolve_transition`); \
                 available: {}",
                self.id,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    vowguard_http::snippet(&names.join(", "))
                }
            )));
        };
        let update = vowguard_core::TicketUpdate {
            at: Utc::now(),
            author: "vowguard".into(),
            text: format!("Resolved: {note}"),
        };
        self.comment(
            key,
            &encode::comment_body(&update),
            &format!("comment on Jira issue {key} at {origin}"),
        )
        .await?;
        self.call(
            Method::POST,
            self.url(&["issue", key, "transitions"]),
            Some(&encode::transition_body(&transition_id)),
            &format!("transition Jira issue {key} at {origin}"),
        )
        .await?;
        tracing::info!(ticket_system = %self.id, issue = %key, "resolved Jira issue");
        Ok(())
    }

    async fn healthcheck_inner(&self) -> Result<(), Error> {
        let origin = vowguard_http::origin(&self.base);
        self.call(
            Method::GET,
            self.url(&["myself"]),
            None,
            &format!("check Jira credentials at {origin}"),
        )
        .await?;
        self.call(
            Method::GET,
            self.url(&["project", &self.template.project]),
            None,
            &format!("read Jira project {} at {origin}", self.template.project),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl TicketSystem for JiraTickets {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// Returns the issue remembered for the fingerprint; else the oldest issue search finds
    /// with the fingerprint label; else creates one (see [`crate::state`] for what happens
    /// after an answer that leaves the outcome unknown).
    async fn open(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        self.exchange
            .redactor()
            .result(self.open_locked(draft).await)
    }

    /// Adds an ADF comment: `[time] author`, then the text.
    async fn update(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error> {
        let result = async {
            let key = checked_key(&ticket.key)?;
            let what = format!(
                "comment on Jira issue {key} at {}",
                vowguard_http::origin(&self.base)
            );
            self.comment(key, &encode::comment_body(update), &what)
                .await
        }
        .await;
        self.exchange.redactor().result(result)
    }

    /// Does nothing when the issue's status is already in the Done category; else comments
    /// `Resolved: <note>` and applies the transition named `resolve_transition`.
    async fn resolve(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        self.exchange
            .redactor()
            .result(self.resolve_inner(ticket, note).await)
    }

    /// Checks the credentials (`GET /rest/api/3/myself`) and the project.
    async fn healthcheck(&self) -> Result<(), Error> {
        self.exchange
            .redactor()
            .result(self.healthcheck_inner().await)
    }
}

/// Whether a failed create may still have created the issue (a 5xx, a timeout, a lost
/// connection, a 2xx without a key), as opposed to a refusal that certainly did not.
pub fn outcome_unknown(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Internal
    )
}

/// Whether `key` looks like a Jira issue key (`SEC-42`) or id (`10042`).
pub fn valid_issue_key(key: &str) -> bool {
    if key.is_empty() || key.len() > 64 {
        return false;
    }
    if key.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let Some((project, number)) = key.rsplit_once('-') else {
        return false;
    };
    crate::config::valid_project_key(project)
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn checked_key(key: &str) -> Result<&str, Error> {
    if valid_issue_key(key) {
        Ok(key)
    } else {
        Err(Error::invalid_input(format!(
            "`{}` is not a Jira issue key",
            vowguard_http::snippet(&key.chars().take(64).collect::<String>())
        )))
    }
}

/// Maps Jira's answer: 2xx is the parsed JSON body (`Null` when empty); anything else an
/// error (429/5xx retryable with `Retry-After`, 401/403 unauthorized, other 4xx rejected)
/// carrying Jira's `errorMessages` and `errors`.
pub(crate) fn map_response(
    exchange: &Exchange,
    answer: &Answer,
    what: &str,
) -> Result<Value, Error> {
    let (status, body) = (answer.status, answer.body.as_str());
    if status.is_success() {
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(body).map_err(|_| {
            Error::internal(format!(
                "{what}: HTTP {status} with a body that is not JSON: {}",
                vowguard_http::snippet(body)
            ))
        });
    }
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .as_ref()
        .and_then(vendor_reason);
    Err(exchange.failure(answer, what, reason))
}

/// `message; message; field: message` from a Jira error body.
fn vendor_reason(body: &Value) -> Option<String> {
    let mut parts: Vec<String> = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        for (field, message) in errors {
            let message = message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_owned);
            parts.push(format!("{field}: {message}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use vowguard_http::reqwest::StatusCode;
    use vowguard_http::reqwest::header::{HeaderMap, RETRY_AFTER};

    use super::*;

    fn map_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
        what: &str,
    ) -> Result<Value, Error> {
        let answer = Answer {
            status,
            headers: headers.clone(),
            body: body.to_owned(),
            truncated: false,
        };
        super::map_response(&Exchange::new(), &answer, what)
    }

    #[test]
    fn maps_answers() {
        let none = HeaderMap::new();
        assert_eq!(
            map_response(StatusCode::NO_CONTENT, &none, "", "x").unwrap(),
            Value::Null
        );
        let e = map_response(
            StatusCode::BAD_REQUEST,
            &none,
            r#"{"errorMessages":["Bad"],"errors":{"priority":"Field 'priority' cannot be set."}}"#,
            "create",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(
            e.to_string()
                .contains("Bad; priority: Field 'priority' cannot be set."),
            "{e}"
        );
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("4"));
        let e = map_response(StatusCode::TOO_MANY_REQUESTS, &h, "", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
        let e = map_response(StatusCode::UNAUTHORIZED, &none, "", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e = map_response(StatusCode::OK, &none, "<html>", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(outcome_unknown(&e), "a 2xx we cannot read may have created");
    }

    #[test]
    fn issue_keys() {
        for good in ["SEC-1", "S2_X-4200", "10042"] {
            assert!(valid_issue_key(good), "{good}");
        }
        for bad in [
            "",
            "SEC",
            "SEC-",
            "sec-1",
            "SEC-1/../x",
            "SEC-1?x",
            "-1",
            "SEC-1a",
        ] {
            assert!(!valid_issue_key(bad), "{bad}");
        }
    }
}

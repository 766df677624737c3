//! The ServiceNow ticket system: Table API calls and how their answers map onto vowguard
//! errors.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;
use vowguard_core::{Error, Redactor, TicketDraft, TicketRef, TicketSystem, TicketUpdate};
use vowguard_http::reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use vowguard_http::reqwest::{Client, Method, Url};
use vowguard_http::{Answer, Exchange};

use crate::config::{PriorityMap, ServiceNowConfig};
use crate::encode::{self, IncidentTemplate};

/// The resolved credential: Basic (user name and password) or a bearer token.
pub enum Credential {
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
        }
    }
}

/// Opens, annotates and resolves ServiceNow incidents; idempotent on the draft's
/// fingerprint through `correlation_id` (looked up before every create).
pub struct ServiceNowTickets {
    id: String,
    base: Url,
    table: String,
    authorization: HeaderValue,
    client: Client,
    /// Send, read (capped), classify; holds the redactor of the credential.
    exchange: Exchange,
    template: IncidentTemplate,
    priorities: PriorityMap,
    resolve_state: u8,
    close_code: String,
    /// Held for the whole of `open`, so two opens of one incident cannot both create.
    open_lock: Mutex<()>,
}

impl fmt::Debug for ServiceNowTickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceNowTickets")
            .field("id", &self.id)
            .field("instance", &vowguard_http::origin(&self.base))
            .field("table", &self.table)
            .field("authorization", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ServiceNowTickets {
    /// A ticket system for component `id` (`[tickets.<id>]`) from `config` and the
    /// resolved credential.
    pub fn with_id(
        id: &str,
        config: &ServiceNowConfig,
        credential: &Credential,
    ) -> Result<Self, Error> {
        let prefix = format!("tickets.{id}");
        config.validate(&prefix)?;
        let (header, redactor) = match credential {
            Credential::Basic { username, password } => {
                let pair = format!("{}:{}", username.trim(), password.expose_secret());
                let encoded = BASE64.encode(pair.as_bytes());
                let redactor = Redactor::new().secret(password).text(&encoded).text(&pair);
                (format!("Basic {encoded}"), redactor)
            }
            Credential::Bearer(token) => (
                format!("Bearer {}", token.expose_secret().trim()),
                Redactor::new().secret(token),
            ),
        };
        Ok(Self {
            id: id.to_owned(),
            base: config.base_url(&prefix)?,
            table: config.table.clone(),
            authorization: vowguard_http::sensitive_header(&header)?,
            client: vowguard_http::build_client(&config.http)?,
            exchange: Exchange::new().with_redactor(redactor),
            template: IncidentTemplate {
                caller_id: config.caller_id.clone(),
                assignment_group: config.assignment_group.clone(),
                category: config.category.clone(),
                subcategory: config.subcategory.clone(),
            },
            priorities: config.priorities.clone(),
            resolve_state: config.resolve_state,
            close_code: config.close_code.clone(),
            open_lock: Mutex::new(()),
        })
    }

    /// The request body `open` sends to create an incident for `draft`.
    pub fn create_body(&self, draft: &TicketDraft) -> Value {
        encode::create_body(draft, &self.template, self.priorities.get(draft.priority))
    }

    fn table_url(&self, sys_id: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(["api", "now", "table", self.table.as_str()]);
            if let Some(sys_id) = sys_id {
                path.push(sys_id);
            }
        }
        url
    }

    fn ticket_ref(&self, sys_id: &str) -> TicketRef {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.push("nav_to.do");
        }
        url.query_pairs_mut()
            .append_pair("uri", &format!("{}.do?sys_id={sys_id}", self.table));
        TicketRef {
            system: self.id.clone(),
            key: sys_id.to_owned(),
            url: Some(url.to_string()),
        }
    }

    /// Sends one request and returns the answer's `result`; non-2xx answers, and 2xx
    /// answers without a `result` (a hibernating instance), are errors.
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

    async fn lookup(&self, correlation_id: &str) -> Result<Option<String>, Error> {
        let what = format!(
            "look up ServiceNow {} by correlation_id at {}",
            self.table,
            vowguard_http::origin(&self.base)
        );
        let mut url = self.table_url(None);
        url.query_pairs_mut()
            .append_pair("sysparm_query", &encode::lookup_query(correlation_id))
            .append_pair("sysparm_fields", "sys_id,number,state")
            .append_pair("sysparm_limit", "1")
            .append_pair("sysparm_exclude_reference_link", "true");
        let result = self.call(Method::GET, url, None, &what).await?;
        let records = result.as_array().ok_or_else(|| {
            Error::unavailable(format!("{what}: `result` is not a list of records"))
        })?;
        Ok(records
            .first()
            .and_then(|r| r.get("sys_id"))
            .and_then(Value::as_str)
            .filter(|s| valid_sys_id(s))
            .map(str::to_owned))
    }

    async fn create(&self, draft: &TicketDraft) -> Result<String, Error> {
        let what = format!(
            "create ServiceNow {} at {}",
            self.table,
            vowguard_http::origin(&self.base)
        );
        let mut url = self.table_url(None);
        url.query_pairs_mut()
            .append_pair("sysparm_fields", "sys_id,number")
            .append_pair("sysparm_exclude_reference_link", "true");
        let result = self
            .call(Method::POST, url, Some(&self.create_body(draft)), &what)
            .await?;
        result
            .get("sys_id")
            .and_then(Value::as_str)
            .filter(|s| valid_sys_id(s))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "{what}: the answer carries no sys_id; the incident may have been created \
                     (the next attempt looks it up by correlation_id first)"
                ))
            })
    }

    async fn open_inner(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        let _guard = self.open_lock.lock().await;
        let correlation_id = encode::correlation_id(&draft.fingerprint);
        if let Some(sys_id) = self.lookup(&correlation_id).await? {
            return Ok(self.ticket_ref(&sys_id));
        }
        let sys_id = self.create(draft).await?;
        tracing::info!(ticket_system = %self.id, sys_id = %sys_id, "opened ServiceNow incident");
        Ok(self.ticket_ref(&sys_id))
    }

    async fn patch(&self, sys_id: &str, body: &Value, what: &str) -> Result<Value, Error> {
        let mut url = self.table_url(Some(sys_id));
        url.query_pairs_mut()
            .append_pair("sysparm_fields", "sys_id,state")
            .append_pair("sysparm_exclude_reference_link", "true");
        self.call(Method::PATCH, url, Some(body), what).await
    }

    async fn update_inner(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error> {
        let sys_id = checked_sys_id(&ticket.key)?;
        let what = format!(
            "add a work note to ServiceNow {} {sys_id} at {}",
            self.table,
            vowguard_http::origin(&self.base)
        );
        self.patch(sys_id, &encode::work_note_body(update), &what)
            .await
            .map(drop)
    }

    async fn resolve_inner(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        let sys_id = checked_sys_id(&ticket.key)?;
        let origin = vowguard_http::origin(&self.base);
        let what = format!("read ServiceNow {} {sys_id} at {origin}", self.table);
        let mut url = self.table_url(Some(sys_id));
        url.query_pairs_mut()
            .append_pair("sysparm_fields", "sys_id,state")
            .append_pair("sysparm_exclude_reference_link", "true");
        let record = self.call(Method::GET, url, None, &what).await?;
        let state = match record.get("state") {
            Some(Value::String(s)) => s.trim().parse::<u8>().ok(),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            _ => None,
        };
        // 6 Resolved, 7 Closed, 8 Canceled: nothing left to do.
        if state.is_some_and(|s| s >= 6) {
            return Ok(());
        }
        let what = format!("resolve ServiceNow {} {sys_id} at {origin}", self.table);
        self.patch(
            sys_id,
            &encode::resolve_body(self.resolve_state, &self.close_code, note),
            &what,
        )
        .await?;
        tracing::info!(ticket_system = %self.id, sys_id = %sys_id, "resolved ServiceNow incident");
        Ok(())
    }

    async fn healthcheck_inner(&self) -> Result<(), Error> {
        let what = format!(
            "read ServiceNow {} at {}",
            self.table,
            vowguard_http::origin(&self.base)
        );
        let mut url = self.table_url(None);
        url.query_pairs_mut()
            .append_pair("sysparm_limit", "1")
            .append_pair("sysparm_fields", "sys_id");
        self.call(Method::GET, url, None, &what).await.map(drop)
    }
}

#[async_trait]
impl TicketSystem for ServiceNowTickets {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// Returns the oldest incident whose `correlation_id` is the draft's, else creates one.
    async fn open(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        self.exchange
            .redactor()
            .result(self.open_inner(draft).await)
    }

    /// Adds a work note: `[time] author`, then the text.
    async fn update(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error> {
        self.exchange
            .redactor()
            .result(self.update_inner(ticket, update).await)
    }

    /// Sets `state` (6 or 7), `close_code` and `close_notes`, unless the incident is
    /// already resolved, closed or canceled.
    async fn resolve(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        self.exchange
            .redactor()
            .result(self.resolve_inner(ticket, note).await)
    }

    /// Reads one record of the table (credentials, ACLs, a hibernating instance).
    async fn healthcheck(&self) -> Result<(), Error> {
        self.exchange
            .redactor()
            .result(self.healthcheck_inner().await)
    }
}

/// Whether `key` is a ServiceNow `sys_id` (32 hex digits).
pub fn valid_sys_id(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

fn checked_sys_id(key: &str) -> Result<&str, Error> {
    if valid_sys_id(key) {
        Ok(key)
    } else {
        Err(Error::invalid_input(format!(
            "`{}` is not a ServiceNow sys_id",
            vowguard_http::snippet(&key.chars().take(64).collect::<String>())
        )))
    }
}

/// Maps ServiceNow's answer: a 2xx is its `result` (an error when `result` is missing or
/// `null`, which a hibernating instance answers, or the body is not JSON); anything else an
/// error (429/5xx retryable with `Retry-After`, 401/403 unauthorized, other 4xx rejected)
/// carrying ServiceNow's `error.message` and `error.detail`.
pub(crate) fn map_response(
    exchange: &Exchange,
    answer: &Answer,
    what: &str,
) -> Result<Value, Error> {
    let (status, body) = (answer.status, answer.body.as_str());
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if status.is_success() {
        return match parsed.as_ref().and_then(|v| v.get("result")) {
            Some(result) if !result.is_null() => Ok(result.clone()),
            _ => Err(Error::unavailable(format!(
                "{what}: HTTP {status} without a `result`; the instance may be hibernating \
                 (wake it up) or a proxy answered: {}",
                vowguard_http::snippet(body)
            ))
            .with_status(status.as_u16())),
        };
    }
    let reason = parsed.as_ref().and_then(vendor_reason);
    Err(exchange.failure(answer, what, reason))
}

/// `message: detail` from a ServiceNow error body.
fn vendor_reason(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let message = error.get("message").and_then(Value::as_str);
    let detail = error.get("detail").and_then(Value::as_str);
    match (message, detail) {
        (Some(m), Some(d)) if !d.is_empty() => Some(format!("{m}: {d}")),
        (Some(m), _) => Some(m.to_owned()),
        (None, Some(d)) => Some(d.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vowguard_core::ErrorKind;
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
            map_response(StatusCode::OK, &none, r#"{"result":[]}"#, "x").unwrap(),
            serde_json::json!([])
        );
        for hibernating in [
            r#"{"result":null}"#,
            "{}",
            "<html>Instance hibernating</html>",
        ] {
            let e = map_response(StatusCode::OK, &none, hibernating, "x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{hibernating}");
            assert!(e.to_string().contains("hibernating"), "{e}");
        }
        let e = map_response(
            StatusCode::BAD_REQUEST,
            &none,
            r#"{"error":{"message":"Invalid table","detail":"no such table"},"status":"failure"}"#,
            "x",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(
            e.to_string().contains("Invalid table: no such table"),
            "{e}"
        );
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let e = map_response(StatusCode::TOO_MANY_REQUESTS, &h, "", "x").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = map_response(StatusCode::FORBIDDEN, &none, "", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn sys_ids() {
        assert!(valid_sys_id("9d385017c611228701d22104cc95c371"));
        for bad in ["", "9d385017", "9d385017c611228701d22104cc95c37/", "../x"] {
            assert!(!valid_sys_id(bad), "{bad}");
        }
    }
}

//! The calls: `POST /_bulk` with per-item outcomes, 413 splitting, and the health check.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use vowguard_core::secrecy::{ExposeSecret, SecretString};
use vowguard_core::{
    BatchLimits, EncodedEvent, Error, ErrorKind, Event, EventOutcome, Redactor, Sink,
};
use vowguard_http::HttpSinkOptions;
use vowguard_http::reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue,
};
use vowguard_http::reqwest::{self, StatusCode, Url};

use crate::builder::ElasticsearchSinkBuilder;
use crate::config::{BulkAction, Compression, ElasticsearchConfig};
use crate::encode::BulkEncoder;

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "elasticsearch";

/// How the sink authenticates.
pub(crate) enum Credentials {
    /// No `Authorization` header (a cluster without security, or a proxy that adds it).
    None,
    /// `Authorization: ApiKey <value>`; `value` is the base64 of `id:key`.
    ApiKey(SecretString),
    /// HTTP Basic.
    Basic {
        /// The user name (not secret; shown in Debug).
        username: String,
        /// The password.
        password: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::ApiKey(_) => f.write_str("ApiKey([redacted])"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

impl Credentials {
    /// Removes the API key, the password and the Basic header value from vendor text.
    fn redactor(&self) -> Redactor {
        match self {
            Self::None => Redactor::new(),
            Self::ApiKey(key) => Redactor::new().secret(key),
            Self::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose_secret());
                Redactor::new()
                    .secret(password)
                    .text(&base64::engine::general_purpose::STANDARD.encode(pair))
            }
        }
    }

    fn header(&self) -> Result<Option<HeaderValue>, Error> {
        let value = match self {
            Self::None => return Ok(None),
            Self::ApiKey(key) => format!("ApiKey {}", key.expose_secret().trim()),
            Self::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose_secret());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        vowguard_http::sensitive_header(&value).map(Some)
    }
}

/// Sends events to Elasticsearch with the bulk API.
///
/// One [`Sink::send`] is one bulk request, except when the cluster answers 413 (body larger
/// than `http.max_content_length`): the sink then splits the batch in halves and sends them
/// one after the other within the same call, down to single events; a single event that
/// still gets 413 is rejected. The pipeline has no split hook, so this is the only place
/// that can do it (with the shared [`vowguard_http::send_splitting_on_413`]).
pub struct ElasticsearchSink {
    component: String,
    client: reqwest::Client,
    bulk_url: Url,
    health_url: Url,
    origin: String,
    auth: Option<HeaderValue>,
    compression: Compression,
    encoder: BulkEncoder,
    /// Removes the credentials from vendor text in every error this sink returns.
    redactor: Redactor,
}

impl fmt::Debug for ElasticsearchSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchSink")
            .field("component", &self.component)
            .field("endpoint", &self.origin)
            .field("auth", &self.auth.as_ref().map(|_| "[redacted]"))
            .field("compression", &self.compression)
            .field("target", self.encoder.target())
            .finish()
    }
}

impl ElasticsearchSink {
    /// A builder for a sink posting to `endpoint`, the cluster's base URL (e.g.
    /// `https://es.example.org:9200`; a path prefix is kept).
    ///
    /// ```no_run
    /// use vowguard_core::secrecy::SecretString;
    /// use vowguard_elasticsearch::ElasticsearchSink;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let sink = ElasticsearchSink::builder("https://es.example.org:9200")
    ///     .basic_auth("elastic", SecretString::from("changeme"))
    ///     .data_stream("logs-vowguard-default")
    ///     .build()?;
    /// # let _ = sink;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(endpoint: impl Into<String>) -> ElasticsearchSinkBuilder {
        ElasticsearchSinkBuilder::new(endpoint)
    }

    /// A sink from a checked config and already-resolved credentials (the `api_key` /
    /// `password` references in `config` are not read here).
    pub(crate) fn from_parts(
        config: &ElasticsearchConfig,
        credentials: &Credentials,
        options: HttpSinkOptions,
    ) -> Result<Self, Error> {
        let endpoint = vowguard_http::parse_url("endpoint", &config.endpoint)?;
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(Error::config(
                "`endpoint`: do not put credentials in the URL; use `username` + `password` or `api_key`",
            ));
        }
        let base = config.endpoint.trim_end_matches('/');
        let mut bulk_url = vowguard_http::parse_url("endpoint", &format!("{base}/_bulk"))?;
        {
            let mut query = bulk_url.query_pairs_mut();
            query.append_pair("filter_path", "errors,items.*.status,items.*.error");
            if let Some(pipeline) = &config.pipeline {
                query.append_pair("pipeline", pipeline);
            }
        }
        let health_url = vowguard_http::parse_url("endpoint", &format!("{base}/"))?;
        Ok(Self {
            client: options.client()?,
            component: options.id.unwrap_or_else(|| KIND.to_owned()),
            origin: vowguard_http::origin(&endpoint),
            bulk_url,
            health_url,
            auth: credentials.header()?,
            redactor: credentials.redactor(),
            compression: config.compression,
            encoder: BulkEncoder::new(config.target()?),
        })
    }

    /// The encoder this sink uses.
    pub fn encoder(&self) -> &BulkEncoder {
        &self.encoder
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        headers
    }

    /// One bulk request for `events`; `Ok` carries the per-event outcomes, `Err` a
    /// request-level failure (413 is reported as such so the caller can split).
    async fn post_bulk(&self, events: &[&EncodedEvent]) -> Result<Vec<EventOutcome>, Error> {
        let mut body = Vec::with_capacity(events.iter().map(|e| e.bytes.len()).sum());
        for event in events {
            body.extend_from_slice(&event.bytes);
        }
        let mut request = self
            .client
            .post(self.bulk_url.clone())
            .headers(self.headers())
            .header(CONTENT_TYPE, "application/x-ndjson");
        if self.compression == Compression::Gzip {
            body = vowguard_http::gzip(&body);
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        let what = format!("bulk request to {}", self.origin);
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        if !status.is_success() {
            return Err(request_error(status, &headers, &what, &text));
        }
        Ok(bulk_outcomes(&text, events, self.encoder.action(), &what))
    }

    /// Names the component and removes the credentials from vendor text: every error this
    /// sink returns goes through here.
    fn tag(&self, error: Error) -> Error {
        self.redactor
            .error(error)
            .with_component(self.component.clone())
    }
}

/// Maps a non-2xx bulk or health response onto an [`Error`]: the shared status rules
/// (429/408/5xx retryable with Retry-After, 401/403 unauthorized, other 4xx rejected), with
/// Elasticsearch's `error.type: error.reason` as the reason when the body has one.
pub(crate) fn request_error(
    status: StatusCode,
    headers: &HeaderMap,
    what: &str,
    body: &str,
) -> Error {
    let reason = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .map_or_else(|| body.to_owned(), |e| e.describe());
    match vowguard_http::classify_status(status, headers, what, &reason) {
        Ok(()) => Error::internal(format!("{what}: HTTP {status} treated as an error")),
        Err(e) => e,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ItemError>,
}

/// The filtered bulk response (`filter_path=errors,items.*.status,items.*.error`).
#[derive(Debug, Deserialize)]
pub(crate) struct BulkResponse {
    /// True when at least one item failed.
    #[serde(default)]
    pub(crate) errors: bool,
    /// One entry per action, keyed by the action name (`index`, `create`).
    #[serde(default)]
    pub(crate) items: Vec<HashMap<String, BulkItem>>,
}

/// The result of one action.
#[derive(Debug, Deserialize)]
pub(crate) struct BulkItem {
    /// The HTTP-like status of this item.
    pub(crate) status: u16,
    /// Why it failed, when it did.
    #[serde(default)]
    pub(crate) error: Option<ItemError>,
}

/// An Elasticsearch error object.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemError {
    /// e.g. `document_parsing_exception`.
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    /// Human reason.
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// The underlying cause, when given.
    #[serde(default)]
    pub(crate) caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    /// `type: reason (caused by: type: reason)`, control characters removed.
    pub(crate) fn describe(&self) -> String {
        let mut out = match (&self.kind, &self.reason) {
            (Some(k), Some(r)) => format!("{k}: {r}"),
            (Some(k), None) => k.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => "no reason given".to_owned(),
        };
        if let Some(cause) = &self.caused_by {
            out.push_str(" (caused by: ");
            out.push_str(&cause.describe());
            out.push(')');
        }
        vowguard_http::snippet(&out)
    }
}

/// The outcome of one bulk item: <300 delivered; 409 on `create` delivered (already
/// there); 429 and 5xx retry that item only; any other status rejected with the reason.
pub(crate) fn item_outcome(action: BulkAction, item: &BulkItem, event_id: &str) -> EventOutcome {
    let status = item.status;
    if status < 300 || (status == 409 && action == BulkAction::Create) {
        return EventOutcome::Delivered;
    }
    let reason = item
        .error
        .as_ref()
        .map_or_else(|| "no reason given".to_owned(), ItemError::describe);
    let message = format!("bulk item for event {event_id}: {reason}");
    let kind = match status {
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Rejected,
    };
    EventOutcome::from_error(Error::new(kind, message).with_status(status))
}

/// Per-event outcomes from a 2xx bulk answer. `errors:false` delivers everything; with
/// `errors:true` each item decides; an unreadable answer or a wrong item count retries all
/// (safe: the `_id` makes a resend idempotent).
pub(crate) fn bulk_outcomes(
    body: &str,
    events: &[&EncodedEvent],
    action: BulkAction,
    what: &str,
) -> Vec<EventOutcome> {
    let retry_all = |why: String| {
        // The reason quotes the cluster's answer: it reaches the logs through the outcome,
        // after the sink has redacted it, not from here.
        tracing::warn!(target: "vowguard::elasticsearch", "{what}: unusable bulk answer; retrying the whole batch");
        EventOutcome::for_all(events.len(), &Err(Error::unavailable(why)))
    };
    let response: BulkResponse = match serde_json::from_str(body) {
        Ok(r) => r,
        Err(e) => {
            return retry_all(format!(
                "{what}: unreadable bulk response ({e}): {}",
                vowguard_http::snippet(body)
            ));
        }
    };
    if !response.errors {
        return EventOutcome::for_all(events.len(), &Ok(()));
    }
    if response.items.len() != events.len() {
        return retry_all(format!(
            "{what}: bulk response has {} items for {} events",
            response.items.len(),
            events.len()
        ));
    }
    response
        .items
        .iter()
        .zip(events)
        .map(|(entry, event)| match entry.values().next() {
            Some(item) => item_outcome(action, item, &event.event_id),
            None => EventOutcome::Retry(Error::unavailable(format!(
                "{what}: empty bulk item for event {}",
                event.event_id
            ))),
        })
        .collect()
}

#[async_trait]
impl Sink for ElasticsearchSink {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::new(1000, 5_000_000, std::time::Duration::from_millis(1000))
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.encoder.encode(event).map_err(|e| self.tag(e))
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        vowguard_http::send_splitting_on_413(
            batch,
            "the cluster accepts (http.max_content_length)",
            |events| self.post_bulk(events),
        )
        .await
        .into_iter()
        .map(|outcome| vowguard_http::map_outcome_error(outcome, |e| self.tag(e)))
        .collect()
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        let what = format!("health check of {}", self.origin);
        let response = self
            .client
            .get(self.health_url.clone())
            .headers(self.headers())
            .send()
            .await
            .map_err(|e| self.tag(vowguard_http::transport_error(e, &what)))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(self.tag(request_error(status, &headers, &what, &text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> EncodedEvent {
        EncodedEvent {
            event_id: id.into(),
            bytes: Vec::new(),
        }
    }

    #[test]
    fn item_rules() {
        let item = |status, error: Option<&str>| BulkItem {
            status,
            error: error.map(|t| ItemError {
                kind: Some(t.into()),
                reason: Some("why".into()),
                caused_by: None,
            }),
        };
        assert!(item_outcome(BulkAction::Index, &item(201, None), "e").is_delivered());
        assert!(
            item_outcome(
                BulkAction::Create,
                &item(409, Some("version_conflict_engine_exception")),
                "e"
            )
            .is_delivered()
        );
        assert!(matches!(
            item_outcome(
                BulkAction::Index,
                &item(409, Some("version_conflict_engine_exception")),
                "e"
            ),
            EventOutcome::Rejected(_)
        ));
        let EventOutcome::Retry(e) = item_outcome(
            BulkAction::Index,
            &item(429, Some("es_rejected_execution_exception")),
            "e",
        ) else {
            panic!("429 retries")
        };
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(matches!(
            item_outcome(BulkAction::Index, &item(503, None), "e"),
            EventOutcome::Retry(_)
        ));
        let EventOutcome::Rejected(e) = item_outcome(
            BulkAction::Index,
            &item(400, Some("document_parsing_exception")),
            "e9",
        ) else {
            panic!("400 rejects")
        };
        assert_eq!(
            e.to_string(),
            "bulk item for event e9: document_parsing_exception: why (status 400)"
        );
    }

    #[test]
    fn unreadable_or_mismatched_response_retries_all() {
        let (a, b) = (ev("a"), ev("b"));
        let events = [&a, &b];
        for body in [
            "<html>",
            r#"{"errors":true,"items":[{"index":{"status":201}}]}"#,
        ] {
            let out = bulk_outcomes(body, &events, BulkAction::Index, "bulk");
            assert_eq!(out.len(), 2);
            assert!(
                out.iter().all(|o| matches!(o, EventOutcome::Retry(_))),
                "{body}"
            );
        }
        let out = bulk_outcomes(r#"{"errors":false}"#, &events, BulkAction::Index, "bulk");
        assert!(out.iter().all(EventOutcome::is_delivered));
    }

    #[test]
    fn request_error_uses_es_reason() {
        let e = request_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            "bulk",
            r#"{"error":{"type":"illegal_argument_exception","reason":"bad pipeline"},"status":400}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(
            e.to_string()
                .contains("illegal_argument_exception: bad pipeline"),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let c = Credentials::Basic {
            username: "elastic".into(),
            password: SecretString::from("hunter2-pw"),
        };
        assert!(!format!("{c:?}").contains("hunter2-pw"));
        let c = Credentials::ApiKey(SecretString::from("c2VjcmV0OmtleQ=="));
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        let mut config = ElasticsearchConfig::new("http://127.0.0.1:9200");
        config.username = Some("elastic".into());
        let sink = ElasticsearchSink::from_parts(&config, &c, HttpSinkOptions::new()).unwrap();
        assert!(!format!("{sink:?}").contains("c2VjcmV0"), "{sink:?}");
    }

    #[test]
    fn refuses_credentials_in_url() {
        let config = ElasticsearchConfig::new("https://elastic:pw@es.example.org");
        let err =
            ElasticsearchSink::from_parts(&config, &Credentials::None, HttpSinkOptions::new())
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("do not put credentials in the URL") && !err.contains("pw@"),
            "{err}"
        );
    }
}

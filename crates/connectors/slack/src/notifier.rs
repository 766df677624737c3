//! The calls: posting to an incoming webhook or `chat.postMessage`, `auth.test`, and the
//! one function that maps every Slack answer onto a vowguard [`Error`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use vowguard_core::{
    Alert, Error, ErrorKind, Notifier, RateLimit, Receipt, Redactor, SnapshotFile,
};
use vowguard_http::reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use vowguard_http::reqwest::{self, StatusCode, Url};
use vowguard_http::{
    HttpSinkOptions, classify_status, origin, parse_url, retry_after, sensitive_header, snippet,
    transport_error,
};

use crate::builder::SlackNotifierBuilder;
use crate::config::{Mention, Mode, SlackConfig, clean_channels};
use crate::encode::build_message;

/// How many alerts' per-channel progress is remembered for retries.
pub const DELIVERY_MEMORY: usize = 1024;

const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The secret a Slack notifier authenticates with; which one selects the mode.
#[derive(Debug)]
pub(crate) enum SlackCredential {
    /// An incoming-webhook URL (`https://hooks.slack.com/services/...`).
    WebhookUrl(SecretString),
    /// A bot token (`xoxb-...`) for `chat.postMessage`.
    BotToken(SecretString),
}

enum Target {
    Webhook {
        /// Secret: never printed.
        url: Url,
    },
    Bot {
        /// `Bearer <token>`, marked sensitive.
        authorization: HeaderValue,
        post_message: Url,
        auth_test: Url,
        channels: Vec<String>,
    },
}

/// Delivers alerts to Slack (see the crate docs).
pub struct SlackNotifier {
    client: reqwest::Client,
    target: Target,
    /// `scheme://host[:port]` of the endpoint: the only part of it errors show.
    origin: String,
    mentions: Vec<Mention>,
    delivered: Mutex<DeliveryMemory>,
    /// Removes the webhook URL (and its parts) or the bot token from every vendor answer.
    redactor: Redactor,
    /// The component id, named in every error this notifier returns.
    id: Option<String>,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SlackNotifier");
        match &self.target {
            Target::Webhook { .. } => d.field("mode", &"webhook"),
            Target::Bot { channels, .. } => d.field("mode", &"bot").field("channels", channels),
        };
        d.field("origin", &self.origin)
            .field("mentions", &self.mentions)
            .finish_non_exhaustive()
    }
}

impl SlackNotifier {
    /// A builder for a notifier: set [`webhook_url`](SlackNotifierBuilder::webhook_url)
    /// or [`bot_token`](SlackNotifierBuilder::bot_token) (with
    /// [`channels`](SlackNotifierBuilder::channels)).
    ///
    /// ```no_run
    /// use vowguard_core::secrecy::SecretString;
    /// use vowguard_slack::SlackNotifier;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let url = std::env::var("SLACK_WEBHOOK_URL").unwrap_or_default();
    /// let notifier = SlackNotifier::builder()
    ///     .webhook_url(SecretString::from(url))
    ///     .build()?;
    /// # let _ = notifier;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> SlackNotifierBuilder {
        SlackNotifierBuilder::new()
    }

    /// A notifier for the non-secret values of `config` (its secret references are not
    /// read), authenticating with `credential`, which selects the mode.
    pub(crate) fn from_parts(
        config: &SlackConfig,
        credential: SlackCredential,
        options: HttpSinkOptions,
    ) -> Result<Self, Error> {
        let mode = match &credential {
            SlackCredential::WebhookUrl(_) => Mode::Webhook,
            SlackCredential::BotToken(_) => Mode::Bot,
        };
        let valid = config
            .validate(mode)
            .map_err(crate::config::Problem::into_error)?;
        let client = options.client()?;
        let redactor = match &credential {
            SlackCredential::WebhookUrl(secret) => {
                Redactor::new().secret(secret).url(secret.expose_secret())
            }
            SlackCredential::BotToken(token) => Redactor::new().secret(token),
        };
        let (target, origin) = match credential {
            SlackCredential::WebhookUrl(secret) => {
                let url = parse_url("webhook_url", secret.expose_secret().trim())?;
                let origin = origin(&url);
                (Target::Webhook { url }, origin)
            }
            SlackCredential::BotToken(token) => {
                let authorization =
                    sensitive_header(&format!("Bearer {}", token.expose_secret().trim()))?;
                let post_message = parse_url(
                    "api_base_url",
                    &format!("{}/chat.postMessage", valid.api_base_url),
                )?;
                let auth_test =
                    parse_url("api_base_url", &format!("{}/auth.test", valid.api_base_url))?;
                let origin = origin(&post_message);
                let target = Target::Bot {
                    authorization,
                    post_message,
                    auth_test,
                    channels: valid.channels,
                };
                (target, origin)
            }
        };
        Ok(Self {
            client,
            target,
            origin,
            mentions: valid.mentions,
            delivered: Mutex::new(DeliveryMemory::new(DELIVERY_MEMORY)),
            redactor,
            id: options.id,
        })
    }

    /// Keeps the per-alert channel memory in `file` (loaded now, replaced on every
    /// change), so a restart neither posts an alert again to a channel that already has it
    /// nor loses track of a partial delivery. An unreadable file is logged and ignored.
    pub(crate) fn with_state_file(self, file: SnapshotFile) -> Self {
        {
            let mut memory = self.memory();
            match file.load::<Vec<(String, Vec<(String, String)>)>>() {
                Ok(Some(entries)) => {
                    for (alert_id, delivered) in entries {
                        memory.remember(&alert_id, delivered);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(
                    error = e.to_string().as_str(),
                    "Slack delivery memory not restored; starting empty"
                ),
            }
            memory.file = Some(file);
        }
        self
    }

    /// Configured mentions plus the route's `mention` param (a string or an array).
    fn mentions_for(&self, alert: &Alert) -> Result<Vec<Mention>, Error> {
        let mut out = self.mentions.clone();
        for raw in param_strings(alert, "mention")?.unwrap_or_default() {
            let mention = raw
                .parse::<Mention>()
                .map_err(|e| param_error(alert, "mention", &e))?;
            if !out.contains(&mention) {
                out.push(mention);
            }
        }
        Ok(out)
    }

    /// The route's `channel` / `channels` params when set, otherwise the configured ones.
    fn channels_for(&self, alert: &Alert, configured: &[String]) -> Result<Vec<String>, Error> {
        let mut requested = Vec::new();
        let mut overridden = false;
        for key in ["channel", "channels"] {
            if let Some(list) = param_strings(alert, key)? {
                overridden = true;
                requested.extend(list);
            }
        }
        if !overridden {
            return Ok(configured.to_vec());
        }
        let channels = clean_channels(&requested).map_err(|m| param_error(alert, "channel", &m))?;
        if channels.is_empty() {
            return Err(param_error(alert, "channels", "names no channel"));
        }
        Ok(channels)
    }

    /// One request; the answer's body and any error come back without the credential, so
    /// nothing built from them (errors, logs, the notification log) can carry it.
    async fn post(&self, url: &Url, body: Vec<u8>, what: &str) -> Result<Answer, Error> {
        self.redactor.result(self.post_raw(url, body, what).await)
    }

    async fn post_raw(&self, url: &Url, body: Vec<u8>, what: &str) -> Result<Answer, Error> {
        let mut request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, JSON_UTF8)
            .body(body);
        if let Target::Bot { authorization, .. } = &self.target {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = request.send().await.map_err(|e| transport_error(e, what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|e| transport_error(e, what))?;
        Ok(Answer {
            status,
            headers,
            body: self.redactor.redact(&body).into_owned(),
        })
    }

    async fn post_webhook(
        &self,
        url: &Url,
        alert: &Alert,
        message: &Value,
    ) -> Result<Receipt, Error> {
        if alert.params.contains_key("channel") || alert.params.contains_key("channels") {
            tracing::warn!(
                route = %alert.route,
                "a Slack incoming webhook posts to its own channel; the route's channel param is ignored"
            );
        }
        let what = format!("post to Slack incoming webhook at {}", self.origin);
        let answer = self.post(url, encode(message)?, &what).await?;
        classify_response(
            Api::Webhook,
            answer.status,
            &answer.headers,
            &answer.body,
            &what,
        )?;
        Ok(Receipt { delivery_id: None })
    }

    async fn post_to_channels(
        &self,
        post_message: &Url,
        channels: &[String],
        alert: &Alert,
        message: &Value,
    ) -> Result<Receipt, Error> {
        let mut done = self.memory().get(&alert.id);
        let mut failed: Vec<(String, Error)> = Vec::new();
        for channel in channels {
            if done.iter().any(|(c, _)| c == channel) {
                continue;
            }
            let mut payload = message.clone();
            payload["channel"] = json!(channel);
            let what = format!("Slack chat.postMessage to {channel} at {}", self.origin);
            let result = match self.post(post_message, encode(&payload)?, &what).await {
                Ok(a) => classify_response(Api::WebApi, a.status, &a.headers, &a.body, &what),
                Err(e) => Err(e),
            };
            match result {
                Ok(ts) => done.push((channel.clone(), ts.unwrap_or_default())),
                Err(e) => {
                    // A refused token fails every channel alike: stop here.
                    let stop = e.kind() == ErrorKind::Unauthorized;
                    failed.push((channel.clone(), e));
                    if stop {
                        break;
                    }
                }
            }
        }
        if failed.is_empty() {
            // Remembered (not forgotten) on success too: the same alert handed over again
            // (re-created from the journal after a crash) is not posted twice.
            self.memory().remember(&alert.id, done.clone());
            let ids: Vec<String> = channels
                .iter()
                .filter_map(|c| done.iter().find(|(d, _)| d == c))
                .map(|(c, ts)| format!("{c}:{ts}"))
                .collect();
            return Ok(Receipt {
                delivery_id: Some(ids.join(",")),
            });
        }
        if !done.is_empty() {
            self.memory().remember(&alert.id, done.clone());
        }
        Err(combine(failed, &done, channels.len(), &self.origin))
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, DeliveryMemory> {
        self.delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.deliver(alert).await.map_err(|e| self.tag(e))
    }

    /// Bot mode calls `auth.test`; webhook mode only checks the URL (posting would send a
    /// message to the channel).
    async fn healthcheck(&self) -> Result<(), Error> {
        self.check().await.map_err(|e| self.tag(e))
    }

    /// Slack allows about one message per second per channel, with short bursts.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: 1.0,
            burst: 3,
        })
    }
}

impl SlackNotifier {
    /// Names the component in `error`, when the notifier has an id.
    fn tag(&self, error: Error) -> Error {
        match &self.id {
            Some(id) => error.with_component(id.clone()),
            None => error,
        }
    }

    async fn deliver(&self, alert: &Alert) -> Result<Receipt, Error> {
        let mentions = self.mentions_for(alert)?;
        let message = build_message(alert, &mentions);
        match &self.target {
            Target::Webhook { url } => self.post_webhook(url, alert, &message).await,
            Target::Bot {
                post_message,
                channels,
                ..
            } => {
                let channels = self.channels_for(alert, channels)?;
                self.post_to_channels(post_message, &channels, alert, &message)
                    .await
            }
        }
    }

    async fn check(&self) -> Result<(), Error> {
        match &self.target {
            Target::Webhook { .. } => Ok(()),
            Target::Bot { auth_test, .. } => {
                let what = format!("Slack auth.test at {}", self.origin);
                let a = self.post(auth_test, b"{}".to_vec(), &what).await?;
                classify_response(Api::WebApi, a.status, &a.headers, &a.body, &what).map(|_| ())
            }
        }
    }
}

fn encode(message: &Value) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(message).map_err(|e| Error::encode(format!("Slack message: {e}")))
}

/// A route param as a list of strings: a string or an array of strings; `None` when absent.
fn param_strings(alert: &Alert, key: &str) -> Result<Option<Vec<String>>, Error> {
    match alert.params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| param_error(alert, key, "expected a string or an array of strings")),
        Some(_) => Err(param_error(
            alert,
            key,
            "expected a string or an array of strings",
        )),
    }
}

fn param_error(alert: &Alert, key: &str, message: &str) -> Error {
    Error::config(format!(
        "route `{}`: Slack param `{key}`: {message}",
        alert.route
    ))
}

/// One combined error for a multi-channel post where some channels failed.
///
/// The kind is retryable when any failed channel may still succeed (so the dispatcher
/// comes back for it; channels already posted to are skipped), otherwise the most
/// telling permanent kind (unauthorized before rejected).
fn combine(
    mut failed: Vec<(String, Error)>,
    delivered: &[(String, String)],
    total: usize,
    origin: &str,
) -> Error {
    if total == 1 && failed.len() == 1 {
        return failed.remove(0).1;
    }
    let rank = |e: &Error| match e.kind() {
        ErrorKind::RateLimited => 0,
        k if e.is_retryable() && k != ErrorKind::RateLimited => 1,
        ErrorKind::Unauthorized => 2,
        _ => 3,
    };
    let worst = failed
        .iter()
        .map(|(_, e)| e)
        .min_by_key(|e| rank(e))
        .expect("at least one failure");
    let mut message = format!(
        "Slack chat.postMessage at {origin}: {} of {total} channels failed: {}",
        failed.len(),
        failed
            .iter()
            .map(|(_, e)| e.message())
            .collect::<Vec<_>>()
            .join("; ")
    );
    if !delivered.is_empty() {
        let names: Vec<&str> = delivered.iter().map(|(c, _)| c.as_str()).collect();
        message.push_str(&format!("; already delivered to {}", names.join(", ")));
    }
    let mut error = Error::new(worst.kind(), message);
    if let Some(status) = worst.status() {
        error = error.with_status(status);
    }
    let wait = failed
        .iter()
        .filter(|(_, e)| e.is_retryable())
        .filter_map(|(_, e)| e.retry_after())
        .max();
    if let (true, Some(wait)) = (worst.is_retryable(), wait) {
        error = error.with_retry_after(wait);
    }
    error
}

/// A raw HTTP answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// Which Slack surface answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Incoming webhook: plain-text body, `ok` or an error code.
    Webhook,
    /// Web API: HTTP 200 with `{"ok":true,...}` or `{"ok":false,"error":"..."}`.
    WebApi,
}

#[derive(Deserialize)]
struct ApiAnswer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Deserialize)]
struct ResponseMetadata {
    #[serde(default)]
    messages: Vec<String>,
}

/// Maps every Slack answer onto `Ok(ts)` or an [`Error`]: HTTP 429 / 408 / 5xx are
/// retryable whatever the body (with `Retry-After`); otherwise the vendor's error code
/// decides ([`code_kind`]); other statuses go through [`classify_status`].
pub(crate) fn classify_response(
    api: Api,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
) -> Result<Option<String>, Error> {
    if matches!(status.as_u16(), 408 | 429) || status.is_server_error() {
        classify_status(status, headers, what, body)?;
    }
    match api {
        Api::Webhook => {
            let text = body.trim();
            if is_error_code(text) && text != "ok" {
                return Err(vendor_error(text, "", status, headers, what));
            }
            classify_status(status, headers, what, body)?;
            Ok(None)
        }
        Api::WebApi => match serde_json::from_str::<ApiAnswer>(body) {
            Ok(answer) if answer.ok && status.is_success() => Ok(answer.ts),
            Ok(answer) if !answer.ok => {
                let code = answer.error.unwrap_or_else(|| "unknown_error".to_owned());
                let detail = answer
                    .response_metadata
                    .map(|m| m.messages.join(" "))
                    .unwrap_or_default();
                Err(vendor_error(&code, &detail, status, headers, what))
            }
            _ => {
                classify_status(status, headers, what, body)?;
                Err(
                    Error::unavailable(format!("{what}: unexpected answer: {}", snippet(body)))
                        .with_status(status.as_u16()),
                )
            }
        },
    }
}

/// A Slack error code: a short snake_case word.
fn is_error_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What a Slack error code means for retrying.
pub(crate) fn code_kind(code: &str) -> ErrorKind {
    match code {
        "ratelimited" | "rate_limited" => ErrorKind::RateLimited,
        "invalid_auth"
        | "not_authed"
        | "token_revoked"
        | "token_expired"
        | "account_inactive"
        | "missing_scope"
        | "no_permission"
        | "invalid_token"
        | "not_allowed_token_type"
        | "ekm_access_denied"
        | "team_access_not_granted"
        | "access_denied" => ErrorKind::Unauthorized,
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "rollup_error" => ErrorKind::Unavailable,
        _ => ErrorKind::Rejected,
    }
}

fn vendor_error(
    code: &str,
    detail: &str,
    status: StatusCode,
    headers: &HeaderMap,
    what: &str,
) -> Error {
    let code = snippet(code);
    let message = if detail.trim().is_empty() {
        format!("{what}: {code}")
    } else {
        format!("{what}: {code} ({})", snippet(detail))
    };
    let mut error = Error::new(code_kind(&code), message).with_status(status.as_u16());
    if let Some(after) = retry_after(headers) {
        error = error.with_retry_after(after);
    }
    error
}

/// Which channels each recent alert was already posted to, so a retry of the same alert
/// (or the same alert after a restart, when a state file is kept) skips them. Holds at
/// most `capacity` alerts; the oldest is forgotten first.
struct DeliveryMemory {
    capacity: usize,
    order: VecDeque<String>,
    channels: HashMap<String, Vec<(String, String)>>,
    /// Where the memory is kept across restarts, when it is.
    file: Option<SnapshotFile>,
}

impl DeliveryMemory {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::new(),
            channels: HashMap::new(),
            file: None,
        }
    }

    /// Writes the memory to its state file (oldest first). A failure is logged: the
    /// memory still works for this run.
    fn persist(&self) {
        let Some(file) = &self.file else { return };
        let entries: Vec<(&String, &Vec<(String, String)>)> = self
            .order
            .iter()
            .filter_map(|id| self.channels.get(id).map(|d| (id, d)))
            .collect();
        if let Err(e) = file.store(&entries) {
            tracing::error!(
                error = e.to_string().as_str(),
                "cannot keep the Slack delivery memory"
            );
        }
    }

    /// `(channel, ts)` already delivered for `alert_id`.
    fn get(&self, alert_id: &str) -> Vec<(String, String)> {
        self.channels.get(alert_id).cloned().unwrap_or_default()
    }

    fn remember(&mut self, alert_id: &str, delivered: Vec<(String, String)>) {
        if self
            .channels
            .insert(alert_id.to_owned(), delivered)
            .is_none()
        {
            self.order.push_back(alert_id.to_owned());
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.channels.remove(&oldest);
            }
        }
        self.persist();
    }

    #[cfg(test)]
    fn forget(&mut self, alert_id: &str) {
        if self.channels.remove(alert_id).is_some() {
            self.order.retain(|id| id != alert_id);
        }
        self.persist();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vowguard_http::reqwest::header::RETRY_AFTER;

    use super::*;

    fn classify(api: Api, status: u16, body: &str) -> Result<Option<String>, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        classify_response(
            api,
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body,
            "post",
        )
    }

    #[test]
    fn webhook_answers() {
        assert_eq!(classify(Api::Webhook, 200, "ok").unwrap(), None);
        for (status, body, kind) in [
            (400, "invalid_payload", ErrorKind::Rejected),
            (400, "no_text", ErrorKind::Rejected),
            (403, "action_prohibited", ErrorKind::Rejected),
            (404, "no_service", ErrorKind::Rejected),
            (404, "channel_not_found", ErrorKind::Rejected),
            (410, "channel_is_archived", ErrorKind::Rejected),
            (
                400,
                "posting_to_general_channel_denied",
                ErrorKind::Rejected,
            ),
            (403, "invalid_token", ErrorKind::Unauthorized),
            (200, "invalid_payload", ErrorKind::Rejected),
            (429, "rate_limited", ErrorKind::RateLimited),
            (500, "rollup_error", ErrorKind::Unavailable),
            (503, "<html>busy</html>", ErrorKind::Unavailable),
            (401, "<html>no</html>", ErrorKind::Unauthorized),
        ] {
            let e = classify(Api::Webhook, status, body).unwrap_err();
            assert_eq!(e.kind(), kind, "{status} {body}");
            assert_eq!(e.status(), Some(status));
        }
        let e = classify(Api::Webhook, 404, "channel_not_found").unwrap_err();
        assert_eq!(e.to_string(), "post: channel_not_found (status 404)");
        let e = classify(Api::Webhook, 429, "").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn web_api_answers() {
        assert_eq!(
            classify(Api::WebApi, 200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#).unwrap(),
            Some("1.2".into())
        );
        for (code, kind) in [
            ("ratelimited", ErrorKind::RateLimited),
            ("invalid_auth", ErrorKind::Unauthorized),
            ("not_authed", ErrorKind::Unauthorized),
            ("token_revoked", ErrorKind::Unauthorized),
            ("account_inactive", ErrorKind::Unauthorized),
            ("missing_scope", ErrorKind::Unauthorized),
            ("channel_not_found", ErrorKind::Rejected),
            ("is_archived", ErrorKind::Rejected),
            ("not_in_channel", ErrorKind::Rejected),
            ("msg_too_long", ErrorKind::Rejected),
            ("internal_error", ErrorKind::Unavailable),
            ("fatal_error", ErrorKind::Unavailable),
            ("service_unavailable", ErrorKind::Unavailable),
            ("request_timeout", ErrorKind::Unavailable),
        ] {
            let e = classify(
                Api::WebApi,
                200,
                &format!(r#"{{"ok":false,"error":"{code}"}}"#),
            )
            .unwrap_err();
            assert_eq!(e.kind(), kind, "{code}");
            assert!(e.message().ends_with(code), "{e}");
        }
        let e = classify(Api::WebApi, 200, r#"{"ok":false,"error":"ratelimited"}"#).unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = classify(
            Api::WebApi,
            200,
            r#"{"ok":false,"error":"invalid_blocks","response_metadata":{"messages":["[ERROR] bad"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.message(), "post: invalid_blocks ([ERROR] bad)");
        assert_eq!(
            classify(Api::WebApi, 200, "<html>").unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Api::WebApi, 502, "").unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Api::WebApi, 404, "nope").unwrap_err().kind(),
            ErrorKind::Rejected
        );
    }

    #[test]
    fn combine_prefers_retryable() {
        let failed = vec![
            (
                "#a".to_owned(),
                Error::rejected("a: channel_not_found").with_status(200),
            ),
            (
                "#b".to_owned(),
                Error::new(ErrorKind::RateLimited, "b: ratelimited")
                    .with_status(429)
                    .with_retry_after(Duration::from_secs(5)),
            ),
        ];
        let e = combine(
            failed,
            &[("#c".into(), "1.1".into())],
            3,
            "https://slack.com",
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        assert_eq!(
            e.message(),
            "Slack chat.postMessage at https://slack.com: 2 of 3 channels failed: \
             a: channel_not_found; b: ratelimited; already delivered to #c"
        );
        let failed = vec![
            ("#a".to_owned(), Error::rejected("a")),
            ("#b".to_owned(), Error::new(ErrorKind::Unauthorized, "b")),
        ];
        assert_eq!(combine(failed, &[], 2, "o").kind(), ErrorKind::Unauthorized);
    }

    /// The channel memory survives a restart: a notifier reopened on the same state file
    /// does not post again to a channel that already has the alert.
    #[tokio::test]
    async fn delivered_channels_survive_a_restart() {
        use wiremock::matchers::{body_partial_json, method};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let ok = |ts: &str| {
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "channel": "C", "ts": ts}))
        };
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"channel": "#a"})))
            .respond_with(ok("1.1"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"channel": "#b"})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"ok": false, "error": "internal_error"})),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"channel": "#b"})))
            .respond_with(ok("2.2"))
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_data_dir(dir.path(), "notifier-slack");
        let open = || {
            let config: SlackConfig = toml::from_str(&format!(
                "bot_token = {{ env = \"T\" }}\nchannels = [\"#a\", \"#b\"]\napi_base_url = \"{}\"\n",
                server.uri()
            ))
            .unwrap();
            config
                .into_builder(None, Some(SecretString::from("xoxb-1")))
                .state_file(file.clone())
                .build()
                .unwrap()
        };
        let mut event = vowguard_core::Event::new(
            vowguard_core::Category::Authentication,
            "login",
            vowguard_core::Severity::High,
        );
        event.id = "e-1".into();
        let alert = Alert::new(
            std::sync::Arc::new(event),
            vowguard_core::Priority::P1High,
            "r",
        );
        let n = open();
        n.notify(&alert).await.unwrap_err();
        drop(n);
        // A restart: #b still missing, #a not posted again.
        let n = open();
        let receipt = n.notify(&alert).await.unwrap();
        assert_eq!(receipt.delivery_id.as_deref(), Some("#a:1.1,#b:2.2"));
        drop(n);
        // Delivered everywhere, then a restart: handed the same alert again (re-created
        // from the journal after a crash), nothing is posted.
        let receipt = open().notify(&alert).await.unwrap();
        assert_eq!(receipt.delivery_id.as_deref(), Some("#a:1.1,#b:2.2"));
        server.verify().await;
    }

    #[test]
    fn memory_is_bounded() {
        let mut m = DeliveryMemory::new(2);
        m.remember("a", vec![("#x".into(), "1".into())]);
        m.remember("b", vec![]);
        m.remember("a", vec![("#y".into(), "2".into())]);
        assert_eq!(m.get("a"), [("#y".to_owned(), "2".to_owned())]);
        m.remember("c", vec![]);
        assert!(m.get("a").is_empty() && !m.channels.contains_key("a"));
        assert_eq!(m.order.len(), 2);
        m.forget("b");
        assert_eq!(m.order, ["c"]);
    }
}

//! The SMS notifier: one Twilio Messages API request per recipient, with a record of who
//! already got each alert so a retry never texts anyone twice.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vowguard_core::{
    Alert, Error, ErrorKind, Notifier, RateLimit, Receipt, Redactor, SnapshotFile,
};
use vowguard_http::HttpSinkOptions;
use vowguard_http::reqwest::header::HeaderMap;
use vowguard_http::reqwest::{Client, StatusCode, Url};

use crate::builder::SmsNotifierBuilder;
use crate::config::{Sender, Settings, validate_e164};
use crate::encode::{self, MessageOptions};

/// Alerts whose per-recipient delivery state is remembered (oldest forgotten first).
pub(crate) const DELIVERY_LOG_CAPACITY: usize = 4096;

/// Twilio error codes that refuse one recipient or message for good.
pub(crate) const PERMANENT_CODES: &[u64] = &[
    21211, // invalid To number
    21408, // permission to send to this region not enabled
    21610, // recipient replied STOP (opted out): never retry
    21612, // To number not reachable by this From / Messaging Service
    21614, // To number is not a mobile number
    21617, // body too long
];
/// Twilio's "too many requests" error code.
pub(crate) const RATE_LIMIT_CODE: u64 = 20429;

/// What became of one recipient of one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum RecipientState {
    /// Twilio accepted the message; its `sid`.
    Sent(Option<String>),
    /// Refused for good (opted out, invalid number...); never retried.
    Failed(String),
}

/// Per-alert delivery state, bounded to [`DELIVERY_LOG_CAPACITY`] alerts; kept in a state
/// file across restarts when one is set.
#[derive(Debug, Default)]
struct DeliveryLog {
    alerts: HashMap<String, HashMap<String, RecipientState>>,
    order: VecDeque<String>,
    file: Option<SnapshotFile>,
}

/// One alert's recipients, as the state file keeps them.
type StoredAlert = (String, Vec<(String, RecipientState)>);

impl DeliveryLog {
    /// Writes the log to its state file (oldest alert first). A failure is logged: the log
    /// still works for this run.
    fn persist(&self) {
        let Some(file) = &self.file else { return };
        let entries: Vec<StoredAlert> = self
            .order
            .iter()
            .filter_map(|id| {
                let recipients = self.alerts.get(id)?;
                let mut list: Vec<(String, RecipientState)> = recipients
                    .iter()
                    .map(|(to, state)| (to.clone(), state.clone()))
                    .collect();
                list.sort_by(|a, b| a.0.cmp(&b.0));
                Some((id.clone(), list))
            })
            .collect();
        if let Err(e) = file.store(&entries) {
            tracing::error!(
                error = e.to_string().as_str(),
                "cannot keep the SMS delivery log"
            );
        }
    }

    fn get(&self, alert_id: &str, recipient: &str) -> Option<RecipientState> {
        self.alerts.get(alert_id)?.get(recipient).cloned()
    }

    fn record(&mut self, alert_id: &str, recipient: &str, state: RecipientState) {
        if !self.alerts.contains_key(alert_id) {
            while self.order.len() >= DELIVERY_LOG_CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.alerts.remove(&old);
                }
            }
            self.order.push_back(alert_id.to_owned());
        }
        self.alerts
            .entry(alert_id.to_owned())
            .or_default()
            .insert(recipient.to_owned(), state);
        self.persist();
    }
}

/// Delivers alerts as SMS through Twilio.
pub struct SmsNotifier {
    messages_url: Url,
    account_url: Url,
    account_sid: String,
    auth_token: SecretString,
    sender: Sender,
    to: Vec<String>,
    options: MessageOptions,
    client: Client,
    log: Mutex<DeliveryLog>,
    /// Removes the auth token and account SID from vendor text and masks every phone
    /// number in it (Twilio quotes the `To` number in its errors).
    redactor: Redactor,
}

impl fmt::Debug for SmsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsNotifier")
            .field("api", &vowguard_http::origin(&self.messages_url))
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("sender", &self.sender)
            .field("recipients", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl SmsNotifier {
    /// A builder for a notifier of the Twilio account `account_sid` (`AC` and 32 hex
    /// digits); [`SmsNotifierBuilder::auth_token`] and a sender are required.
    ///
    /// ```no_run
    /// use secrecy::SecretString;
    /// use vowguard_sms::SmsNotifier;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let notifier = SmsNotifier::builder("AC0123456789abcdef0123456789abcdef")
    ///     .auth_token(SecretString::from("twilio-auth-token"))
    ///     .messaging_service_sid("MG0123456789abcdef0123456789abcdef")
    ///     .build()?;
    /// # let _ = notifier;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(account_sid: impl Into<String>) -> SmsNotifierBuilder {
        SmsNotifierBuilder::new(account_sid.into())
    }

    /// The notifier for the component `id` (`[notifiers.<id>]`, named in errors).
    pub(crate) fn from_parts(
        prefix: &str,
        config: &Settings,
        auth_token: SecretString,
        options: &HttpSinkOptions,
    ) -> Result<Self, Error> {
        let sender = config.validate(prefix)?;
        let base = config.api_base_url.trim_end_matches('/');
        let sid = &config.account_sid;
        let key = format!("{prefix}.api_base_url");
        Ok(Self {
            messages_url: vowguard_http::parse_url(
                &key,
                &format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"),
            )?,
            account_url: vowguard_http::parse_url(
                &key,
                &format!("{base}/2010-04-01/Accounts/{sid}.json"),
            )?,
            account_sid: sid.clone(),
            redactor: Redactor::new()
                .secret(&auth_token)
                .text(sid)
                .phone_numbers(),
            auth_token,
            sender,
            to: config.to.clone(),
            options: MessageOptions {
                link_base: config.link_base.clone(),
            },
            client: options.client()?,
            log: Mutex::new(DeliveryLog::default()),
        })
    }

    /// Keeps the per-alert recipient log in `file` (loaded now, replaced on every change),
    /// so a restart never texts a recipient again an alert they already got. An unreadable
    /// file is logged and ignored.
    pub(crate) fn with_state_file(self, file: SnapshotFile) -> Self {
        {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            match file.load::<Vec<StoredAlert>>() {
                Ok(Some(entries)) => {
                    for (alert_id, recipients) in entries {
                        for (to, state) in recipients {
                            log.record(&alert_id, &to, state);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(
                    error = e.to_string().as_str(),
                    "SMS delivery log not restored; starting empty"
                ),
            }
            log.file = Some(file);
        }
        self
    }

    /// The text this notifier sends for `alert`.
    pub fn message(&self, alert: &Alert) -> String {
        encode::build_message(alert, &self.options)
    }

    /// The recipients of `alert`: the route's `recipients` parameter (an array of E.164
    /// numbers) when present, else the configured `to`. An invalid parameter is rejected.
    pub fn recipients(&self, alert: &Alert) -> Result<Vec<String>, Error> {
        let numbers = match alert.params.get("recipients") {
            None => self.to.clone(),
            Some(Value::Array(items)) => {
                let mut numbers = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let number = item.as_str().ok_or_else(|| {
                        Error::rejected(format!(
                            "route `{}`: parameter `recipients[{i}]` is not a string",
                            alert.route
                        ))
                    })?;
                    validate_e164(number).map_err(|why| {
                        Error::rejected(format!(
                            "route `{}`: parameter `recipients[{i}]` {} is not an E.164 number ({why})",
                            alert.route,
                            mask(number)
                        ))
                    })?;
                    numbers.push(number.to_owned());
                }
                numbers
            }
            Some(_) => {
                return Err(Error::rejected(format!(
                    "route `{}`: parameter `recipients` must be an array of E.164 numbers",
                    alert.route
                )));
            }
        };
        let mut unique = Vec::with_capacity(numbers.len());
        for n in numbers {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        if unique.is_empty() {
            return Err(Error::rejected(format!(
                "no SMS recipients: set `to` or the `recipients` parameter of route `{}`",
                alert.route
            )));
        }
        Ok(unique)
    }

    /// Texts one recipient; the error (Twilio's message included) comes back with every
    /// phone number masked and no credential.
    async fn send_one(&self, to: &str, body: &str) -> Result<Option<String>, Error> {
        self.redactor.result(self.post_message(to, body).await)
    }

    async fn post_message(&self, to: &str, body: &str) -> Result<Option<String>, Error> {
        let what = format!(
            "send SMS to {} via Twilio at {}",
            mask(to),
            vowguard_http::origin(&self.messages_url)
        );
        let sender = match &self.sender {
            Sender::Number(from) => ("From", from.as_str()),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = [("To", to), sender, ("Body", body)];
        let response = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        map_response(status, &headers, &text, &what)
    }

    async fn check_account(&self) -> Result<(), Error> {
        let what = format!(
            "check Twilio credentials at {}",
            vowguard_http::origin(&self.account_url)
        );
        let response = self
            .client
            .get(self.account_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        map_response(status, &headers, &text, &what).map(|_| ())
    }

    fn state(&self, alert_id: &str, recipient: &str) -> Option<RecipientState> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(alert_id, recipient)
    }

    fn record(&self, alert_id: &str, recipient: &str, state: RecipientState) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(alert_id, recipient, state);
    }
}

#[async_trait]
impl Notifier for SmsNotifier {
    fn kind(&self) -> &'static str {
        "sms"
    }

    /// Texts every recipient that has not yet received (or permanently refused) this
    /// alert. A rate limit stops the round; other retryable failures let the remaining
    /// recipients still be tried, and the error is returned so the dispatcher retries the
    /// ones left. Permanently refused recipients (opted out, invalid) are never retried.
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        let recipients = self.recipients(alert)?;
        let body = self.message(alert);
        let mut retry: Option<Error> = None;
        for to in &recipients {
            if self.state(&alert.id, to).is_some() {
                continue;
            }
            match self.send_one(to, &body).await {
                Ok(sid) => self.record(&alert.id, to, RecipientState::Sent(sid)),
                Err(e) if e.kind() == ErrorKind::Unauthorized => return Err(e),
                Err(e) if e.kind() == ErrorKind::RateLimited => {
                    retry = Some(e);
                    break;
                }
                Err(e) if e.is_retryable() => {
                    retry.get_or_insert(e);
                }
                Err(e) => {
                    tracing::warn!(alert = %alert.id, error = %e, "SMS recipient refused for good");
                    self.record(&alert.id, to, RecipientState::Failed(e.to_string()));
                }
            }
        }
        let states: Vec<Option<RecipientState>> = recipients
            .iter()
            .map(|to| self.state(&alert.id, to))
            .collect();
        if let Some(e) = retry {
            let pending = states.iter().filter(|s| s.is_none()).count();
            return Err(with_message(
                &e,
                format!(
                    "{}; {pending} of {} recipients still to text",
                    e.message(),
                    recipients.len()
                ),
            ));
        }
        let mut sids = Vec::new();
        let mut failures = Vec::new();
        for state in states.into_iter().flatten() {
            match state {
                RecipientState::Sent(sid) => sids.push(sid.unwrap_or_default()),
                RecipientState::Failed(reason) => failures.push(reason),
            }
        }
        if sids.is_empty() {
            return Err(Error::rejected(format!(
                "no SMS recipient accepted the alert: {}",
                failures.join("; ")
            )));
        }
        Ok(Receipt {
            delivery_id: Some(sids.join(",")),
        })
    }

    /// Fetches the account resource (`GET /2010-04-01/Accounts/{sid}.json`) to check the
    /// credentials; sends no message.
    async fn healthcheck(&self) -> Result<(), Error> {
        self.redactor.result(self.check_account().await)
    }

    /// A Twilio long code sends about one message per second.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: 1.0,
            burst: 5,
        })
    }
}

/// `+4477****23`: enough of a number to tell recipients apart in logs and errors.
pub(crate) fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

fn with_message(e: &Error, message: String) -> Error {
    let mut copy = Error::new(e.kind(), message);
    if let Some(s) = e.status() {
        copy = copy.with_status(s);
    }
    if let Some(r) = e.retry_after() {
        copy = copy.with_retry_after(r);
    }
    copy
}

/// Maps Twilio's answer: 2xx delivered (with the message `sid`); error code 20429 or HTTP
/// 429 rate limited; codes 21211, 21408, 21610, 21612, 21614, 21617 rejected for good;
/// 401/403 unauthorized; 5xx unavailable; other 4xx rejected. Errors carry Twilio's `code`
/// and `message`.
pub(crate) fn map_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
) -> Result<Option<String>, Error> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if status.is_success() {
        return Ok(parsed
            .as_ref()
            .and_then(|v| v.get("sid"))
            .and_then(Value::as_str)
            .map(str::to_owned));
    }
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_u64);
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str);
    let reason = match (code, message) {
        (Some(code), Some(m)) => format!("Twilio error {code}: {m}"),
        (Some(code), None) => format!("Twilio error {code}"),
        (None, Some(m)) => m.to_owned(),
        (None, None) => body.to_owned(),
    };
    let reason = vowguard_http::snippet(&reason);
    match code {
        Some(RATE_LIMIT_CODE) => {
            let mut e = Error::new(ErrorKind::RateLimited, format!("{what}: {reason}"))
                .with_status(status.as_u16());
            if let Some(after) = vowguard_http::retry_after(headers) {
                e = e.with_retry_after(after);
            }
            Err(e)
        }
        Some(c) if PERMANENT_CODES.contains(&c) => {
            Err(Error::rejected(format!("{what}: {reason}")).with_status(status.as_u16()))
        }
        _ => {
            vowguard_http::classify_status(status, headers, what, &reason)?;
            Err(Error::internal(format!("{what}: unexpected HTTP {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_twilio_errors() {
        let none = HeaderMap::new();
        let ok = map_response(
            StatusCode::CREATED,
            &none,
            r#"{"sid":"SM1","status":"queued"}"#,
            "send",
        )
        .unwrap();
        assert_eq!(ok.as_deref(), Some("SM1"));
        let cases = [
            (
                400,
                r#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#,
                ErrorKind::Rejected,
            ),
            (
                400,
                r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#,
                ErrorKind::Rejected,
            ),
            (
                400,
                r#"{"code":21617,"message":"The concatenated message body exceeds the 1600 character limit","status":400}"#,
                ErrorKind::Rejected,
            ),
            (
                400,
                r#"{"code":21408,"message":"Permission to send an SMS has not been enabled","status":400}"#,
                ErrorKind::Rejected,
            ),
            (
                400,
                r#"{"code":21612,"message":"The 'To' phone number is not currently reachable","status":400}"#,
                ErrorKind::Rejected,
            ),
            (
                429,
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
                ErrorKind::RateLimited,
            ),
            (
                400,
                r#"{"code":20429,"message":"Too Many Requests","status":400}"#,
                ErrorKind::RateLimited,
            ),
            (429, "", ErrorKind::RateLimited),
            (
                401,
                r#"{"code":20003,"message":"Authenticate","status":401}"#,
                ErrorKind::Unauthorized,
            ),
            (500, "", ErrorKind::Unavailable),
            (
                503,
                r#"{"code":20500,"message":"Internal Server Error","status":503}"#,
                ErrorKind::Unavailable,
            ),
            (
                400,
                r#"{"code":21602,"message":"Message body is required","status":400}"#,
                ErrorKind::Rejected,
            ),
        ];
        for (status, body, kind) in cases {
            let e = map_response(StatusCode::from_u16(status).unwrap(), &none, body, "send")
                .unwrap_err();
            assert_eq!(e.kind(), kind, "{status} {body}");
            assert_eq!(e.status(), Some(status));
            if let Ok(v) = serde_json::from_str::<Value>(body) {
                assert!(
                    e.to_string().contains(v["message"].as_str().unwrap()),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn masks_numbers() {
        assert_eq!(mask("+447700900123"), "+447*******23");
        assert_eq!(mask("+1234"), "*****");
    }

    /// Who already got an alert survives a restart: a notifier reopened on the same state
    /// file texts only the recipient still missing, and nobody twice.
    #[tokio::test]
    async fn texted_recipients_survive_a_restart() {
        use wiremock::matchers::{body_string_contains, method};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let created = |sid: &str| {
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": sid, "status": "queued"}))
        };
        Mock::given(method("POST"))
            .and(body_string_contains("To=%2B447700900123"))
            .respond_with(created("SM-ana"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("To=%2B15551234567"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("To=%2B15551234567"))
            .respond_with(created("SM-ben"))
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_data_dir(dir.path(), "notifier-sms");
        let open = || {
            let mut c = crate::SmsConfig::new(
                "AC0123456789abcdef0123456789abcdef",
                vowguard_core::SecretRef::Env("TW".into()),
                "+15005550006",
                vec!["+447700900123".into(), "+15551234567".into()],
            );
            c.api_base_url = server.uri();
            c.into_builder(SecretString::from("tok"))
                .state_file(file.clone())
                .build()
                .unwrap()
        };
        let event = vowguard_core::Event::new(
            vowguard_core::Category::Authentication,
            "login",
            vowguard_core::Severity::High,
        );
        let alert = Alert::new(
            std::sync::Arc::new(event),
            vowguard_core::Priority::P1High,
            "r",
        );
        let n = open();
        n.notify(&alert).await.unwrap_err();
        drop(n);
        let receipt = open().notify(&alert).await.unwrap();
        assert_eq!(receipt.delivery_id.as_deref(), Some("SM-ana,SM-ben"));
        let receipt = open().notify(&alert).await.unwrap();
        assert_eq!(receipt.delivery_id.as_deref(), Some("SM-ana,SM-ben"));
        server.verify().await;
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("tok"), "no secret in the state file");
    }

    #[test]
    fn delivery_log_is_bounded() {
        let mut log = DeliveryLog::default();
        for i in 0..DELIVERY_LOG_CAPACITY + 10 {
            log.record(&format!("a{i}"), "+1", RecipientState::Sent(None));
        }
        assert_eq!(log.alerts.len(), DELIVERY_LOG_CAPACITY);
        assert!(log.get("a0", "+1").is_none());
        assert!(
            log.get(&format!("a{}", DELIVERY_LOG_CAPACITY + 9), "+1")
                .is_some()
        );
    }
}

//! The PagerDuty notifier: posts one encoded event per alert and maps the answer.

use std::fmt;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use vowguard_core::{Alert, Error, Notifier, RateLimit, Receipt, Redactor};
use vowguard_http::reqwest::header::{CONTENT_TYPE, HeaderMap};
use vowguard_http::reqwest::{Client, StatusCode, Url};

use vowguard_http::HttpOptions;

use crate::builder::PagerDutyNotifierBuilder;
use crate::encode::{self, EventTemplate};

/// Length of an Events API v2 integration (routing) key.
pub const ROUTING_KEY_LEN: usize = 32;

/// Delivers alerts as PagerDuty Events API v2 events.
pub struct PagerDutyNotifier {
    url: Url,
    routing_key: SecretString,
    template: EventTemplate,
    client: Client,
    /// Removes the routing key from vendor text in every error.
    redactor: Redactor,
}

impl fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifier")
            .field("endpoint", &vowguard_http::origin(&self.url))
            .field("routing_key", &"[redacted]")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl PagerDutyNotifier {
    /// A builder for a notifier; [`PagerDutyNotifierBuilder::routing_key`] is required.
    ///
    /// ```no_run
    /// use secrecy::SecretString;
    /// use vowguard_pagerduty::PagerDutyNotifier;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let notifier = PagerDutyNotifier::builder()
    ///     .routing_key(SecretString::from("R0UTINGKEYR0UTINGKEYR0UTINGKEY12"))
    ///     .build()?;
    /// # let _ = notifier;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> PagerDutyNotifierBuilder {
        PagerDutyNotifierBuilder::new()
    }

    /// The notifier for checked parts (the builder's checks are done).
    pub(crate) fn from_parts(
        url: Url,
        routing_key: SecretString,
        template: EventTemplate,
        http: &HttpOptions,
    ) -> Result<Self, Error> {
        Ok(Self {
            url,
            redactor: Redactor::new().secret(&routing_key),
            routing_key,
            template,
            client: vowguard_http::build_client(http)?,
        })
    }

    /// The configured parts of every event (source, component, client, links).
    pub fn template(&self) -> &EventTemplate {
        &self.template
    }

    /// The request body this notifier would send for `alert`.
    pub fn encode(&self, alert: &Alert) -> Result<Vec<u8>, Error> {
        encode::encode_event(alert, self.routing_key.expose_secret(), &self.template)
    }

    async fn send_event(&self, alert: &Alert) -> Result<Receipt, Error> {
        let body = self.encode(alert)?;
        let what = format!(
            "send PagerDuty {} event to {}",
            encode::event_action(alert.action),
            vowguard_http::origin(&self.url)
        );
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
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
        map_response(status, &headers, &text, &what, &encode::dedup_key(alert))
    }
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    /// Sends the event; every error comes back without the routing key.
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.redactor.result(self.send_event(alert).await)
    }

    /// Checks that the routing key looks like an integration key (32 letters and digits);
    /// sends nothing, since any event would open or touch an incident.
    async fn healthcheck(&self) -> Result<(), Error> {
        check_routing_key(self.routing_key.expose_secret())
    }

    /// About 120 events per minute per routing key.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: 2.0,
            burst: 10,
        })
    }
}

/// Checks the shape of an integration key without printing it.
pub(crate) fn check_routing_key(key: &str) -> Result<(), Error> {
    if key.len() == ROUTING_KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "the PagerDuty routing key is not an Events API v2 integration key \
             ({ROUTING_KEY_LEN} letters and digits, from the service's Integrations tab); \
             it has {} characters",
            key.chars().count()
        )))
    }
}

/// Maps PagerDuty's answer onto a [`Receipt`] or an [`Error`]: 2xx delivered (the
/// receipt carries the `dedup_key` PagerDuty answered, else `sent_dedup_key`); 400 rejected
/// with PagerDuty's `message` and `errors`; 429 rate limited and 5xx unavailable (both
/// retryable, with `Retry-After` when sent); 401/403 unauthorized.
pub(crate) fn map_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
    sent_dedup_key: &str,
) -> Result<Receipt, Error> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if status.is_success() {
        let dedup_key = parsed
            .as_ref()
            .and_then(|v| v.get("dedup_key"))
            .and_then(Value::as_str)
            .unwrap_or(sent_dedup_key);
        return Ok(Receipt {
            delivery_id: Some(dedup_key.to_owned()),
        });
    }
    let reason = parsed
        .as_ref()
        .and_then(vendor_reason)
        .unwrap_or_else(|| body.to_owned());
    vowguard_http::classify_status(status, headers, what, &reason)?;
    Err(Error::internal(format!("{what}: unexpected HTTP {status}")))
}

/// `message: error; error` from a PagerDuty error body.
fn vendor_reason(body: &Value) -> Option<String> {
    let message = body.get("message").and_then(Value::as_str);
    let errors: Vec<&str> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match (message, errors.is_empty()) {
        (None, true) => None,
        (Some(m), true) => Some(m.to_owned()),
        (None, false) => Some(errors.join("; ")),
        (Some(m), false) => Some(format!("{m}: {}", errors.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vowguard_core::ErrorKind;
    use vowguard_http::reqwest::header::{HeaderValue, RETRY_AFTER};

    use super::*;

    #[test]
    fn maps_responses() {
        let none = HeaderMap::new();
        let ok = map_response(
            StatusCode::ACCEPTED,
            &none,
            r#"{"status":"success","message":"Event processed","dedup_key":"k-1"}"#,
            "send",
            "sent",
        )
        .unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("k-1"));
        let ok = map_response(StatusCode::ACCEPTED, &none, "", "send", "sent").unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("sent"));

        let e = map_response(
            StatusCode::BAD_REQUEST,
            &none,
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing"]}"#,
            "send",
            "sent",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(!e.is_retryable());
        assert!(
            e.to_string()
                .contains("Event object is invalid: 'payload.summary' is missing"),
            "{e}"
        );

        let e = map_response(StatusCode::TOO_MANY_REQUESTS, &none, "", "send", "k").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        let e = map_response(StatusCode::TOO_MANY_REQUESTS, &h, "", "send", "k").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));

        let e = map_response(StatusCode::BAD_GATEWAY, &none, "<html>", "send", "k").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let e = map_response(StatusCode::FORBIDDEN, &none, "", "send", "k").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn routing_key_shape() {
        assert!(check_routing_key("0123456789abcdef0123456789ABCDEF").is_ok());
        for bad in [
            "",
            "short",
            "0123456789abcdef0123456789abcde!",
            &"a".repeat(33),
        ] {
            let e = check_routing_key(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(bad.is_empty() || !e.to_string().contains(bad), "{e}");
        }
    }
}

//! The calls: `POST /api/v2/logs` (split to the intake limits, and in halves on 413) and the
//! API key check as health check.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use vowguard_core::secrecy::ExposeSecret;
use vowguard_core::{
    BatchLimits, EncodedEvent, Error, ErrorKind, Event, EventOutcome, Redactor, Sink,
};
use vowguard_http::reqwest::header::{
    ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue,
};
use vowguard_http::reqwest::{self, StatusCode, Url};

use crate::builder::DatadogLogsSinkBuilder;
use crate::config::{Compression, machine_hostname};
use crate::encode::{LogEncoder, MAX_BODY_BYTES, MAX_ENTRIES_PER_REQUEST, array_body};

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "datadog_logs";

const API_KEY_HEADER: &str = "dd-api-key";

/// Sends events to the Datadog Logs HTTP intake (v2).
///
/// One [`Sink::send`] is normally one request. A batch over the intake's limits (1000
/// entries, 5 MB uncompressed) is cut into several requests, and a 413 answer splits a
/// request in halves, sent one after the other within the same call down to single events
/// (a single event that still gets 413 is rejected; see
/// [`vowguard_http::send_ranges_splitting_on_413`]).
pub struct DatadogLogsSink {
    component: String,
    client: reqwest::Client,
    logs_url: Url,
    validate_url: Url,
    intake_origin: String,
    api_origin: String,
    api_key: HeaderValue,
    compression: Compression,
    encoder: LogEncoder,
    /// Removes the API key from vendor text in every error this sink returns.
    redactor: Redactor,
}

impl fmt::Debug for DatadogLogsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatadogLogsSink")
            .field("component", &self.component)
            .field("intake", &self.intake_origin)
            .field("api", &self.api_origin)
            .field("api_key", &"[redacted]")
            .field("compression", &self.compression)
            .field("encoder", &self.encoder)
            .finish()
    }
}

impl DatadogLogsSink {
    /// A builder for a sink; [`DatadogLogsSinkBuilder::api_key`] is required.
    ///
    /// ```no_run
    /// use vowguard_core::secrecy::SecretString;
    /// use vowguard_datadog::DatadogLogsSink;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let sink = DatadogLogsSink::builder()
    ///     .api_key(SecretString::from("dd-api-key"))
    ///     .build()?;
    /// # let _ = sink;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> DatadogLogsSinkBuilder {
        DatadogLogsSinkBuilder::new()
    }

    /// The sink a builder describes (the builder's checks are here).
    pub(crate) fn from_builder(builder: DatadogLogsSinkBuilder) -> Result<Self, Error> {
        let (intake, api) = builder.bases()?;
        let DatadogLogsSinkBuilder {
            api_key,
            hostname,
            service,
            ddsource,
            tags,
            compression,
            options,
            ..
        } = builder;
        let api_key = api_key.ok_or_else(|| {
            Error::config("`api_key`: required (the Datadog API key, set with `.api_key(..)`)")
        })?;
        let logs_url = vowguard_http::parse_url("endpoint", &format!("{intake}/api/v2/logs"))?;
        let validate_url =
            vowguard_http::parse_url("api_endpoint", &format!("{api}/api/v1/validate"))?;
        let hostname = hostname.unwrap_or_else(machine_hostname);
        let header =
            vowguard_http::sensitive_header(api_key.expose_secret().trim()).map_err(|_| {
                Error::config("`api_key`: contains characters not allowed in an HTTP header")
            })?;
        Ok(Self {
            client: options.client()?,
            component: options.id.unwrap_or_else(|| KIND.to_owned()),
            intake_origin: vowguard_http::origin(&logs_url),
            api_origin: vowguard_http::origin(&validate_url),
            logs_url,
            validate_url,
            api_key: header,
            redactor: Redactor::new().secret(&api_key),
            compression,
            encoder: LogEncoder::new(ddsource, service, hostname, &tags),
        })
    }

    /// The encoder this sink uses.
    pub fn encoder(&self) -> &LogEncoder {
        &self.encoder
    }

    async fn post_logs(&self, events: &[&EncodedEvent]) -> Result<(), Error> {
        let mut body = array_body(events.iter().map(|e| e.bytes.as_slice()));
        let mut request = self
            .client
            .post(self.logs_url.clone())
            .header(API_KEY_HEADER, self.api_key.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json");
        if self.compression == Compression::Gzip {
            body = vowguard_http::gzip(&body);
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        let what = format!("log intake at {}", self.intake_origin);
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Err(response_error(status, &headers, &what, &text))
    }

    /// Names the component and removes the API key from vendor text: every error this sink
    /// returns goes through here.
    fn tag(&self, error: Error) -> Error {
        self.redactor
            .error(error)
            .with_component(self.component.clone())
    }
}

/// Maps a non-2xx Datadog answer onto an [`Error`] with the shared status rules: 400
/// rejected, 401/403 unauthorized, 408/429/5xx retryable (Retry-After kept), 413 rejected
/// (the sink splits before giving up). The reason is Datadog's `errors` text when present.
pub(crate) fn response_error(
    status: StatusCode,
    headers: &HeaderMap,
    what: &str,
    body: &str,
) -> Error {
    #[derive(Deserialize)]
    struct ErrorBody {
        errors: Vec<serde_json::Value>,
    }
    let reason = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .filter(|b| !b.errors.is_empty())
        .map_or_else(
            || body.to_owned(),
            |b| {
                b.errors
                    .iter()
                    .map(|e| match e {
                        serde_json::Value::String(s) => s.clone(),
                        other => other
                            .get("detail")
                            .or_else(|| other.get("title"))
                            .and_then(|d| d.as_str())
                            .map_or_else(|| other.to_string(), str::to_owned),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        );
    match vowguard_http::classify_status(status, headers, what, &reason) {
        Ok(()) => Error::internal(format!("{what}: HTTP {status} treated as an error")),
        Err(e) => e,
    }
}

/// Cuts `batch` into ranges of at most [`MAX_ENTRIES_PER_REQUEST`] entries and
/// [`MAX_BODY_BYTES`] of array body each.
pub(crate) fn request_ranges(batch: &[&EncodedEvent]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 2; // the brackets
    for (i, event) in batch.iter().enumerate() {
        let add = event.bytes.len() + usize::from(i > start);
        if i > start && (i - start == MAX_ENTRIES_PER_REQUEST || bytes + add > MAX_BODY_BYTES) {
            ranges.push((start, i));
            start = i;
            bytes = 2 + event.bytes.len();
        } else {
            bytes += add;
        }
    }
    if start < batch.len() {
        ranges.push((start, batch.len()));
    }
    ranges
}

#[async_trait]
impl Sink for DatadogLogsSink {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::new(
            MAX_ENTRIES_PER_REQUEST,
            4_500_000,
            std::time::Duration::from_millis(1000),
        )
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.encoder.encode(event).map_err(|e| self.tag(e))
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let requests = request_ranges(batch)
            .into_iter()
            .map(|(start, end)| start..end);
        vowguard_http::send_ranges_splitting_on_413(
            batch,
            requests,
            "the Datadog intake accepts",
            |events| async move {
                self.post_logs(events)
                    .await
                    .map(|()| EventOutcome::for_all(events.len(), &Ok(())))
            },
        )
        .await
        .into_iter()
        .map(|outcome| vowguard_http::map_outcome_error(outcome, |e| self.tag(e)))
        .collect()
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        #[derive(Deserialize)]
        struct Valid {
            #[serde(default)]
            valid: bool,
        }
        let what = format!("API key validation at {}", self.api_origin);
        let response = self
            .client
            .get(self.validate_url.clone())
            .header(API_KEY_HEADER, self.api_key.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.tag(vowguard_http::transport_error(e, &what)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| self.tag(vowguard_http::transport_error(e, &what)))?;
        if !status.is_success() {
            return Err(self.tag(response_error(status, &headers, &what, &text)));
        }
        match serde_json::from_str::<Valid>(&text) {
            Ok(Valid { valid: true }) => Ok(()),
            _ => Err(self.tag(
                Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "{what}: the API key is not valid: {}",
                        vowguard_http::snippet(&text)
                    ),
                )
                .with_status(status.as_u16()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(len: usize) -> EncodedEvent {
        EncodedEvent {
            event_id: "e".into(),
            bytes: vec![b'x'; len],
        }
    }

    #[test]
    fn ranges_respect_count_and_bytes() {
        let small: Vec<EncodedEvent> = (0..2500).map(|_| ev(10)).collect();
        let refs: Vec<&EncodedEvent> = small.iter().collect();
        assert_eq!(
            request_ranges(&refs),
            [(0, 1000), (1000, 2000), (2000, 2500)]
        );

        let big: Vec<EncodedEvent> = (0..6).map(|_| ev(999_999)).collect();
        let refs: Vec<&EncodedEvent> = big.iter().collect();
        // 5 entries + 4 commas + 2 brackets = 5_000_001 > 5 MB, so 4 per request.
        assert_eq!(request_ranges(&refs), [(0, 4), (4, 6)]);
        assert!(request_ranges(&[]).is_empty());
    }

    #[test]
    fn datadog_error_reason() {
        let e = response_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            "log intake",
            r#"{"errors":[{"status":"400","title":"Bad Request","detail":"invalid JSON payload"}]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(e.to_string().contains("invalid JSON payload"), "{e}");
        let e = response_error(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            "x",
            r#"{"errors":["Forbidden"]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.to_string().contains("Forbidden"));
    }
}

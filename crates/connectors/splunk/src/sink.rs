//! The HTTP side: sending batches, mapping HEC answers, indexer acknowledgement, health.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::Deserialize;
use vowguard_core::{
    BatchLimits, EncodedEvent, Error, ErrorKind, Event, EventOutcome, Redactor, Sink,
};
use vowguard_http::reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue,
};
use vowguard_http::reqwest::{Client, StatusCode, Url};
use vowguard_http::{
    classify_status, origin, retry_after, sensitive_header, snippet, transport_error,
};

use crate::KIND;
use crate::ack::{AckEndpoint, AckFailure, AckPoller, PollPace};
use crate::builder::SplunkHecSinkBuilder;
use crate::config::{AckConfig, Compression};
use crate::encode::{HecEncoder, batch_body};

/// Batches in flight by default with indexer acknowledgement (`request.concurrency` when
/// not configured). Each batch holds its request slot from sending until Splunk confirms it:
/// the request round trip, then up to one poll interval and the poll's own round trip. 16
/// batches of 500 keep 8 000 events in flight, 50 000 events/s at 160 ms per batch; memory
/// stays bounded by 16 batches.
pub const ACK_CONCURRENCY: usize = 16;

/// The header naming the data channel used for indexer acknowledgement.
pub const CHANNEL_HEADER: &str = "X-Splunk-Request-Channel";

/// Sends events to a Splunk HTTP Event Collector.
///
/// Build one with [`SplunkHecSink::builder`] (or from config through the registry as
/// `type = "splunk_hec"`). `Debug` never shows the token.
pub struct SplunkHecSink {
    client: Client,
    encoder: HecEncoder,
    event_url: Url,
    health_url: Url,
    origin: String,
    auth: HeaderValue,
    compression: Compression,
    acknowledgements: AckConfig,
    /// The data channel, chosen once per sink; only set when acknowledgement is enabled.
    channel: Option<String>,
    /// Polls for every batch waiting on indexer acknowledgement (only when enabled).
    acks: Option<Arc<AckPoller>>,
    id: Option<String>,
    /// Removes the token from vendor text in every error this sink returns.
    redactor: Redactor,
}

impl fmt::Debug for SplunkHecSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplunkHecSink")
            .field("id", &self.id)
            .field("endpoint", &self.origin)
            .field("encoder", &self.encoder)
            .field("compression", &self.compression)
            .field("acknowledgements", &self.acknowledgements)
            .field("channel", &self.channel)
            .field("acks", &self.acks)
            .finish_non_exhaustive()
    }
}

impl SplunkHecSink {
    /// A builder for a sink posting to `endpoint`, the collector's base URL (e.g.
    /// `https://splunk.example.org:8088`); the sink appends `/services/collector/event`,
    /// `/services/collector/ack` and `/services/collector/health`.
    ///
    /// ```no_run
    /// use secrecy::SecretString;
    /// use vowguard_splunk::SplunkHecSink;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let sink = SplunkHecSink::builder("https://splunk.example.org:8088")
    ///     .token(SecretString::from("hec-token"))
    ///     .index("wedding-security")
    ///     .build()?;
    /// # let _ = sink;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(endpoint: impl Into<String>) -> SplunkHecSinkBuilder {
        SplunkHecSinkBuilder::new(endpoint)
    }

    /// The sink a checked builder describes.
    ///
    /// The token moves in, so no copy outlives this call except the sensitive
    /// `Authorization` header value.
    pub(crate) fn from_builder(builder: SplunkHecSinkBuilder) -> Result<Self, Error> {
        let SplunkHecSinkBuilder {
            endpoint,
            token,
            index,
            host,
            source,
            sourcetype,
            compression,
            acknowledgements,
            options,
        } = builder;
        let token = token.ok_or_else(|| Error::config("`token`: required"))?;
        let base = base_url(&endpoint)?;
        let auth =
            sensitive_header(&format!("Splunk {}", token.expose_secret())).map_err(|_| {
                Error::config("`token`: contains characters not allowed in an HTTP header")
            })?;
        let redactor = Redactor::new().secret(&token);
        let client = options.client()?;
        let channel = acknowledgements
            .enabled
            .then(|| uuid::Uuid::now_v7().to_string());
        let acks = channel.as_ref().map(|channel| {
            AckPoller::new(AckEndpoint {
                client: client.clone(),
                ack_url: service_url(&base, "ack"),
                auth: auth.clone(),
                channel: channel.clone(),
                origin: origin(&base),
                request_timeout: options.http.timeout,
                pace: acknowledgements
                    .poll_interval
                    .map_or_else(PollPace::adaptive, PollPace::fixed),
            })
        });
        Ok(Self {
            client,
            encoder: HecEncoder::new(host, source, sourcetype, index),
            event_url: service_url(&base, "event"),
            health_url: service_url(&base, "health"),
            origin: origin(&base),
            auth,
            redactor,
            compression,
            acknowledgements,
            channel,
            acks,
            id: options.id,
        })
    }

    /// The encoder this sink uses.
    pub fn encoder(&self) -> &HecEncoder {
        &self.encoder
    }

    /// The data channel sent as `X-Splunk-Request-Channel` (only with acknowledgement).
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// Names the component and removes the token from vendor text: every error this sink
    /// returns goes through here.
    fn tag(&self, error: Error) -> Error {
        let error = self.redactor.error(error);
        match &self.id {
            Some(id) => error.with_component(id.clone()),
            None => error,
        }
    }

    fn tag_all(&self, outcomes: Vec<EventOutcome>) -> Vec<EventOutcome> {
        outcomes
            .into_iter()
            .map(|o| match o {
                EventOutcome::Delivered => EventOutcome::Delivered,
                EventOutcome::Retry(e) => EventOutcome::Retry(self.tag(e)),
                EventOutcome::Rejected(e) => EventOutcome::Rejected(self.tag(e)),
            })
            .collect()
    }

    async fn send_once(&self, batch: &[&EncodedEvent], what: &str) -> Vec<EventOutcome> {
        let body = batch_body(batch);
        let mut request = self
            .client
            .post(self.event_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json");
        let body = match self.compression {
            Compression::None => body,
            Compression::Gzip => {
                request = request.header(CONTENT_ENCODING, "gzip");
                vowguard_http::gzip(&body)
            }
        };
        if let Some(channel) = &self.channel {
            request = request.header(CHANNEL_HEADER, channel);
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(e) => return failed(batch.len(), transport_error(e, what)),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return failed(batch.len(), transport_error(e, what)),
        };
        match map_response(status, &headers, &text, batch, what) {
            HecReply::Outcomes(outcomes) => outcomes,
            HecReply::Accepted { ack_id } => match (ack_id, self.acknowledgements.enabled) {
                (Some(ack_id), true) => match self.wait_for_ack(ack_id, what).await {
                    Ok(()) => delivered(batch.len()),
                    Err(e) => failed(batch.len(), e),
                },
                (None, true) => {
                    tracing::warn!(
                        endpoint = %self.origin,
                        "Splunk accepted the batch without an ackId: indexer acknowledgement is \
                         probably disabled on the HEC token, so indexing cannot be confirmed"
                    );
                    delivered(batch.len())
                }
                (_, false) => delivered(batch.len()),
            },
        }
    }

    /// Waits until the sink's ack poller sees Splunk confirm `ack_id`, or the timeout
    /// passes. A confirmation that never comes is a retryable error: the batch is sent again.
    async fn wait_for_ack(&self, ack_id: u64, what: &str) -> Result<(), Error> {
        let Some(acks) = &self.acks else {
            return Ok(());
        };
        let timeout = self.acknowledgements.timeout;
        match acks.wait(ack_id, timeout).await {
            Ok(()) => Ok(()),
            Err(AckFailure::TimedOut { last_problem }) => {
                let detail = last_problem
                    .map(|p| format!(" (last poll: {p})"))
                    .unwrap_or_default();
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{what}: Splunk accepted the batch (ackId {ack_id}) but did not confirm \
                         indexing within {} ms{detail}; the batch will be sent again",
                        timeout.as_millis()
                    ),
                ))
            }
            Err(AckFailure::Superseded) => Err(Error::unavailable(format!(
                "{what}: Splunk accepted the batch (ackId {ack_id}) but handed the same ackId to \
                 a later batch before confirming it (restarted?); the batch will be sent again"
            ))),
        }
    }

    /// How many indexer-acknowledgement polls this sink has sent (0 without acknowledgement):
    /// one per poll interval while batches wait, however many are in flight.
    pub fn ack_polls(&self) -> u64 {
        self.acks.as_ref().map_or(0, |acks| acks.polls())
    }

    /// The time between two indexer-acknowledgement polls now (`None` without
    /// acknowledgement): `acknowledgements.poll_interval_ms` when configured, else the
    /// interval adapted to how fast Splunk confirms.
    pub fn ack_poll_interval(&self) -> Option<Duration> {
        self.acks.as_ref().map(|acks| acks.poll_interval())
    }
}

/// Whether an ack answer `{"acks":{"<id>":true}}` confirms `ack_id`; `None` when the
/// answer is not of that shape.
#[cfg(test)]
pub(crate) fn parse_ack(body: &str, ack_id: u64) -> Option<bool> {
    Some(
        crate::ack::parse_acks(body)?
            .get(&ack_id)
            .copied()
            .unwrap_or(false),
    )
}

#[async_trait]
impl Sink for SplunkHecSink {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// 500 events, 800 000 bytes (HEC's default `max_content_length` is 1 MB), 1 s.
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::new(500, 800_000, Duration::from_millis(1_000))
    }

    /// With indexer acknowledgement, [`ACK_CONCURRENCY`] batches: each request then waits
    /// for its confirmation (a poll) after Splunk answered. Without, the pipeline's default.
    fn default_concurrency(&self) -> Option<usize> {
        self.acks.is_some().then_some(ACK_CONCURRENCY)
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.encoder.encode(event).map_err(|e| self.tag(e))
    }

    fn encode_stored(&self, event: &Event, stored: &[u8]) -> Result<Vec<u8>, Error> {
        self.encoder
            .encode_stored(event, stored)
            .map_err(|e| self.tag(e))
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        if batch.is_empty() {
            return Vec::new();
        }
        let what = format!(
            "send {} event(s) to Splunk HEC at {}",
            batch.len(),
            self.origin
        );
        let outcomes = self.send_once(batch, &what).await;
        debug_assert_eq!(outcomes.len(), batch.len());
        self.tag_all(outcomes)
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        let what = format!("healthcheck of Splunk HEC at {}", self.origin);
        let response = self
            .client
            .get(self.health_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .map_err(|e| self.tag(transport_error(e, &what)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| self.tag(transport_error(e, &what)))?;
        if status == StatusCode::OK {
            return Ok(());
        }
        let reason = match serde_json::from_str::<HecResponse>(&text) {
            Ok(reply) => format!(
                "{} (code {})",
                reply.text.as_deref().unwrap_or(""),
                reply.code
            ),
            Err(_) => text,
        };
        classify_status(status, &headers, &what, &reason).map_err(|e| self.tag(e))?;
        Err(self.tag(
            Error::unavailable(format!("{what}: HTTP {status}: {}", snippet(&reason)))
                .with_status(status.as_u16()),
        ))
    }
}

/// What Splunk said about one request to `/services/collector/event`.
#[derive(Debug)]
pub(crate) enum HecReply {
    /// Every event was accepted (code 0). With indexer acknowledgement, `ack_id` is the id
    /// to poll before counting the batch as delivered.
    Accepted {
        /// The `ackId` of the request, when Splunk gave one.
        ack_id: Option<u64>,
    },
    /// Not (entirely) accepted: one outcome per event, in order.
    Outcomes(Vec<EventOutcome>),
}

/// The JSON answer of HEC: `{"text":..,"code":N,"invalid-event-number":I,"ackId":A}`.
#[derive(Debug, Deserialize)]
struct HecResponse {
    #[serde(default)]
    text: Option<String>,
    code: i64,
    #[serde(default, rename = "invalid-event-number")]
    invalid_event_number: Option<u64>,
    #[serde(default, rename = "ackId")]
    ack_id: Option<u64>,
}

/// Maps one HEC answer onto per-event outcomes: the only place HEC codes are interpreted.
///
/// | code | meaning | outcome |
/// |---|---|---|
/// | 0 | success | accepted (then acknowledgement, if enabled) |
/// | 1, 2, 3, 4 | token disabled / required / invalid authorization / invalid token | all rejected, `Unauthorized` |
/// | 5, 12, 13 | no data / event field required / event field blank | all rejected |
/// | 6 | invalid data format at `invalid-event-number` I | before I delivered, I rejected, after I retried |
/// | 7 | incorrect index | all rejected |
/// | 8, 9 | internal error / server busy | all retried, with `Retry-After` |
/// | 10, 11, 14 | data channel missing / invalid, ack disabled | all rejected, with a config hint |
/// | 15 | error in handling indexed fields | all rejected |
/// | other | | by HTTP status: 429/5xx/408 retried, 401/403 unauthorized, other 4xx rejected |
///
/// A body that is not HEC JSON counts as success only with HTTP 200.
pub(crate) fn map_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    batch: &[&EncodedEvent],
    what: &str,
) -> HecReply {
    let n = batch.len();
    let Ok(reply) = serde_json::from_str::<HecResponse>(body) else {
        if status == StatusCode::OK {
            return HecReply::Accepted { ack_id: None };
        }
        let error = classify_status(status, headers, what, body)
            .err()
            .unwrap_or_else(|| {
                Error::unavailable(format!(
                    "{what}: unexpected HTTP {status} without a HEC answer: {}",
                    snippet(body)
                ))
                .with_status(status.as_u16())
            });
        return HecReply::Outcomes(failed(n, error));
    };
    let code = reply.code;
    let text = snippet(reply.text.as_deref().unwrap_or(""));
    let vendor = format!("{what}: Splunk HEC code {code}: {text}");
    let http = status.as_u16();
    let error =
        |kind: ErrorKind, hint: &str| Error::new(kind, format!("{vendor}{hint}")).with_status(http);
    let fail_all = |e: Error| HecReply::Outcomes(failed(n, e));
    match code {
        0 => HecReply::Accepted {
            ack_id: reply.ack_id,
        },
        1..=4 => fail_all(error(
            ErrorKind::Unauthorized,
            "; check the HEC token (`token`) and that it is enabled",
        )),
        5 | 12 | 13 => fail_all(error(ErrorKind::Rejected, "")),
        6 => HecReply::Outcomes(split_invalid(
            reply.invalid_event_number,
            batch,
            &vendor,
            http,
        )),
        7 => fail_all(error(
            ErrorKind::Rejected,
            "; check `index` and that the token may write to it",
        )),
        8 | 9 => {
            let mut e = error(ErrorKind::Unavailable, "");
            if let Some(after) = retry_after(headers) {
                e = e.with_retry_after(after);
            }
            fail_all(e)
        }
        10 | 11 => fail_all(error(
            ErrorKind::Rejected,
            "; the token has indexer acknowledgement enabled: set `acknowledgements.enabled = true` \
             or disable acknowledgement on the token",
        )),
        14 => fail_all(error(
            ErrorKind::Rejected,
            "; set `acknowledgements.enabled = false` or enable indexer acknowledgement on the token",
        )),
        15 => fail_all(error(ErrorKind::Rejected, "; an indexed field was refused")),
        _ => {
            let e = classify_status(status, headers, &vendor, "")
                .err()
                .unwrap_or_else(|| error(ErrorKind::Unavailable, "; unexpected code, resending"));
            fail_all(e)
        }
    }
}

/// Code 6: the events before `invalid` were processed, `invalid` is bad, the ones after it
/// were never looked at and are sent again.
fn split_invalid(
    invalid: Option<u64>,
    batch: &[&EncodedEvent],
    vendor: &str,
    http: u16,
) -> Vec<EventOutcome> {
    let bad = invalid
        .and_then(|i| usize::try_from(i).ok())
        .filter(|i| *i < batch.len());
    let Some(bad) = bad else {
        let e = Error::rejected(format!(
            "{vendor}; Splunk did not say which event is invalid, so the whole batch is rejected"
        ))
        .with_status(http);
        return failed(batch.len(), e);
    };
    batch
        .iter()
        .enumerate()
        .map(|(i, event)| {
            if i < bad {
                EventOutcome::Delivered
            } else if i == bad {
                EventOutcome::Rejected(
                    Error::rejected(format!("{vendor} (event {i}, id {})", event.event_id))
                        .with_status(http),
                )
            } else {
                EventOutcome::Retry(Error::unavailable(format!(
                    "{vendor}: not processed because event {bad} (id {}) before it was invalid; \
                     sending it again",
                    batch[bad].event_id
                )))
            }
        })
        .collect()
}

/// `n` delivered events.
fn delivered(n: usize) -> Vec<EventOutcome> {
    (0..n).map(|_| EventOutcome::Delivered).collect()
}

/// The same failure for `n` events: retried or rejected by the error's kind.
fn failed(n: usize, error: Error) -> Vec<EventOutcome> {
    EventOutcome::for_all(n, &Err(error))
}

/// Parses `endpoint`: http(s), no query or fragment; a trailing `/services/collector` or
/// `/services/collector/event` is dropped so both spellings work.
fn base_url(endpoint: &str) -> Result<Url, Error> {
    let mut url = vowguard_http::parse_url("endpoint", endpoint)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            "`endpoint`: must be a base URL without query or fragment, e.g. https://splunk.example.org:8088",
        ));
    }
    let path = url.path().trim_end_matches('/');
    let path = path
        .strip_suffix("/services/collector/event")
        .or_else(|| path.strip_suffix("/services/collector"))
        .unwrap_or(path)
        .to_owned();
    url.set_path(&path);
    Ok(url)
}

fn service_url(base: &Url, service: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/services/collector/{service}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Vec<EncodedEvent> {
        (0..n)
            .map(|i| EncodedEvent {
                event_id: format!("e{i}"),
                bytes: b"{}".to_vec(),
            })
            .collect()
    }

    fn map(status: u16, body: &str, n: usize) -> HecReply {
        let events = batch(n);
        let refs: Vec<&EncodedEvent> = events.iter().collect();
        map_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body,
            &refs,
            "send",
        )
    }

    fn outcomes(reply: HecReply) -> Vec<EventOutcome> {
        match reply {
            HecReply::Outcomes(o) => o,
            HecReply::Accepted { .. } => panic!("expected outcomes, got accepted"),
        }
    }

    fn kinds(reply: HecReply) -> Vec<String> {
        outcomes(reply)
            .iter()
            .map(|o| match o {
                EventOutcome::Delivered => "delivered".to_owned(),
                EventOutcome::Retry(e) => format!("retry:{}", e.kind()),
                EventOutcome::Rejected(e) => format!("rejected:{}", e.kind()),
            })
            .collect()
    }

    #[test]
    fn success_with_and_without_ack_id() {
        assert!(matches!(
            map(200, r#"{"text":"Success","code":0}"#, 2),
            HecReply::Accepted { ack_id: None }
        ));
        assert!(matches!(
            map(200, r#"{"text":"Success","code":0,"ackId":7}"#, 2),
            HecReply::Accepted { ack_id: Some(7) }
        ));
    }

    #[test]
    fn token_codes_are_unauthorized() {
        for (code, status) in [(1, 403), (2, 401), (3, 401), (4, 403)] {
            let body = format!(r#"{{"text":"Invalid token","code":{code}}}"#);
            assert_eq!(
                kinds(map(status, &body, 2)),
                ["rejected:unauthorized"; 2],
                "code {code}"
            );
        }
    }

    #[test]
    fn permanent_codes_are_rejected() {
        for code in [5, 7, 10, 11, 12, 13, 14, 15] {
            let body = format!(r#"{{"text":"nope","code":{code}}}"#);
            assert_eq!(
                kinds(map(400, &body, 1)),
                ["rejected:rejected"],
                "code {code}"
            );
        }
        let o = outcomes(map(
            400,
            r#"{"text":"Incorrect index","code":7,"invalid-event-number":0}"#,
            1,
        ));
        let EventOutcome::Rejected(e) = &o[0] else {
            panic!()
        };
        assert!(e.to_string().contains("Incorrect index"), "{e}");
        assert!(e.to_string().contains("`index`"), "{e}");
        assert_eq!(e.status(), Some(400));
    }

    #[test]
    fn channel_and_ack_codes_give_a_config_hint() {
        let o = outcomes(map(
            400,
            r#"{"text":"Data channel is missing","code":10}"#,
            1,
        ));
        let EventOutcome::Rejected(e) = &o[0] else {
            panic!()
        };
        assert!(
            e.to_string().contains("acknowledgements.enabled = true"),
            "{e}"
        );
        let o = outcomes(map(400, r#"{"text":"ACK is disabled","code":14}"#, 1));
        let EventOutcome::Rejected(e) = &o[0] else {
            panic!()
        };
        assert!(
            e.to_string().contains("acknowledgements.enabled = false"),
            "{e}"
        );
    }

    #[test]
    fn busy_codes_retry_with_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        let events = batch(2);
        let refs: Vec<&EncodedEvent> = events.iter().collect();
        let reply = map_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers,
            r#"{"text":"Server is busy","code":9}"#,
            &refs,
            "send",
        );
        for o in outcomes(reply) {
            let EventOutcome::Retry(e) = o else {
                panic!("expected retry")
            };
            assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
            assert!(e.to_string().contains("Server is busy"));
        }
        assert_eq!(
            kinds(map(500, r#"{"text":"Internal server error","code":8}"#, 1)),
            ["retry:unavailable"]
        );
    }

    #[test]
    fn invalid_event_splits_the_batch() {
        let body = r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#;
        assert_eq!(
            kinds(map(400, body, 4)),
            [
                "delivered",
                "rejected:rejected",
                "retry:unavailable",
                "retry:unavailable"
            ]
        );
        let body0 = r#"{"text":"Invalid data format","code":6,"invalid-event-number":0}"#;
        assert_eq!(
            kinds(map(400, body0, 2)),
            ["rejected:rejected", "retry:unavailable"]
        );
        // Out of range or missing: Splunk did not say; nothing is marked delivered.
        let far = r#"{"text":"Invalid data format","code":6,"invalid-event-number":9}"#;
        assert_eq!(kinds(map(400, far, 2)), ["rejected:rejected"; 2]);
        let none = r#"{"text":"Invalid data format","code":6}"#;
        assert_eq!(kinds(map(400, none, 2)), ["rejected:rejected"; 2]);
    }

    #[test]
    fn non_json_and_unknown_codes_go_by_status() {
        assert!(matches!(
            map(200, "OK", 1),
            HecReply::Accepted { ack_id: None }
        ));
        assert_eq!(kinds(map(204, "", 1)), ["retry:unavailable"]);
        assert_eq!(
            kinds(map(502, "<html>bad gateway</html>", 2)),
            ["retry:unavailable"; 2]
        );
        assert_eq!(kinds(map(429, "slow down", 1)), ["retry:rate_limited"]);
        assert_eq!(kinds(map(413, "too large", 1)), ["rejected:rejected"]);
        assert_eq!(
            kinds(map(503, r#"{"text":"HEC is unhealthy","code":18}"#, 1)),
            ["retry:unavailable"]
        );
        assert_eq!(
            kinds(map(400, r#"{"text":"whatever","code":99}"#, 1)),
            ["rejected:rejected"]
        );
        assert_eq!(
            kinds(map(200, r#"{"text":"whatever","code":99}"#, 1)),
            ["retry:unavailable"]
        );
    }

    #[test]
    fn ack_answers() {
        assert_eq!(parse_ack(r#"{"acks":{"3":true}}"#, 3), Some(true));
        assert_eq!(parse_ack(r#"{"acks":{"3":false}}"#, 3), Some(false));
        assert_eq!(parse_ack(r#"{"acks":{"4":true}}"#, 3), Some(false));
        assert_eq!(parse_ack("nope", 3), None);
    }

    #[test]
    fn endpoint_paths() {
        for endpoint in [
            "https://splunk.example.org:8088",
            "https://splunk.example.org:8088/",
            "https://splunk.example.org:8088/services/collector",
            "https://splunk.example.org:8088/services/collector/event/",
        ] {
            let base = base_url(endpoint).unwrap();
            assert_eq!(
                service_url(&base, "event").as_str(),
                "https://splunk.example.org:8088/services/collector/event",
                "{endpoint}"
            );
        }
        let base = base_url("https://proxy.example.org/splunk/").unwrap();
        assert_eq!(
            service_url(&base, "ack").as_str(),
            "https://proxy.example.org/splunk/services/collector/ack"
        );
        assert!(base_url("https://x/?token=abc").is_err());
        assert!(base_url("ftp://x").is_err());
        assert!(
            base_url("not a url")
                .unwrap_err()
                .to_string()
                .contains("`endpoint`")
        );
    }
}

//! [`Exchange`]: one request sent, its status and headers read, its body read up to a cap,
//! and a non-2xx answer classified onto a vowguard [`Error`], written once for every
//! request/response connector.

use std::borrow::Cow;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use vowguard_core::{Error, ErrorKind, Redactor};

use crate::{MAX_RESPONSE_BYTES, classify_status, transport_error};

/// What a vendor answered: the status, the headers and the body, decoded as text (invalid
/// UTF-8 replaced) and cut at the [`Exchange`]'s cap.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers (for `Retry-After` and vendor rate-limit headers).
    pub headers: HeaderMap,
    /// The body, at most [`Exchange::max_body_bytes`] bytes of it.
    pub body: String,
    /// Whether the vendor sent more than the cap (the rest was dropped unread).
    pub truncated: bool,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// How a connector exchanges requests with one vendor API: how much of an answer it reads,
/// which secrets are kept out of its errors, and how long a 429 without `Retry-After`
/// pauses.
///
/// [`Exchange::send`] makes one attempt (retries belong to `vowguard_core::retry` and the
/// callers' policies) and returns any status as an [`Answer`]; [`Exchange::failure`] maps a
/// non-2xx answer onto an [`Error`]: 429 `RateLimited`, 408 `Timeout`, 5xx `Unavailable`
/// (all retryable, carrying `Retry-After` or the configured default), 401/403
/// `Unauthorized`, other codes `Rejected`. The message names what was attempted and quotes
/// the vendor's reason (or the body) as a [`snippet`](crate::snippet) — at most 512
/// characters, control characters replaced — with the connector's secrets redacted; a
/// transport failure never shows the URL.
///
/// ```no_run
/// # async fn demo() -> Result<(), vowguard_core::Error> {
/// use vowguard_core::Redactor;
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_http::{Exchange, HttpOptions, build_client};
///
/// let key = SecretString::from("k-123456");
/// let client = build_client(&HttpOptions::default())?;
/// let exchange = Exchange::new().with_redactor(Redactor::new().secret(&key));
/// let request = client.get("https://api.example.com/v1/thing");
/// // 2xx: the answer; anything else: the classified error, the key never in it.
/// let answer = exchange.send_ok(request, "look up thing", |_| None).await?;
/// println!("{}", answer.body);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Exchange {
    max_body_bytes: usize,
    redactor: Redactor,
    default_retry_after: Option<Duration>,
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

impl Exchange {
    /// Reads at most [`MAX_RESPONSE_BYTES`] of an answer, redacts nothing, and adds no
    /// pause to a 429 without `Retry-After`.
    pub fn new() -> Self {
        Self {
            max_body_bytes: MAX_RESPONSE_BYTES,
            redactor: Redactor::new(),
            default_retry_after: None,
        }
    }

    /// Reads at most `max` bytes of each answer and drops the rest, so a vendor (or
    /// something impersonating one) cannot make an answer cost unbounded memory.
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Removes these secrets from every error this exchange returns.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// A 429 without a usable `Retry-After` carries `after` instead, so the caller's retry
    /// (or quota pause) waits at least that long.
    pub fn with_default_retry_after(mut self, after: Duration) -> Self {
        self.default_retry_after = Some(after);
        self
    }

    /// The most bytes of an answer read.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The secrets kept out of errors.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Sends `request` once and reads the answer, whatever its status. A failure to send or
    /// to read the body is an error naming `what` (timeouts `Timeout`, the rest
    /// `Unavailable`, a request that cannot be built `Config`), never the URL.
    pub async fn send(&self, request: RequestBuilder, what: &str) -> Result<Answer, Error> {
        let mut response = request
            .send()
            .await
            .map_err(|e| self.redactor.error(transport_error(e, what)))?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let (bytes, truncated) = read_body(response, self.max_body_bytes, what)
            .await
            .map_err(|e| self.redactor.error(e))?;
        let body = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok(Answer {
            status,
            headers,
            body,
            truncated,
        })
    }

    /// The error for a non-2xx `answer` (see the type's docs). `reason` is the vendor's own
    /// message when the caller could extract one; otherwise the body is quoted. A 2xx
    /// answer passed here is an `Internal` error (a caller bug).
    pub fn failure(&self, answer: &Answer, what: &str, reason: Option<String>) -> Error {
        let reason = reason.map_or(Cow::Borrowed(answer.body.as_str()), Cow::Owned);
        let reason = self.redactor.redact(&reason);
        let error = match classify_status(answer.status, &answer.headers, what, &reason) {
            Err(error) => error,
            Ok(()) => Error::internal(format!("{what}: HTTP {} is not an error", answer.status)),
        };
        let error = match self.default_retry_after {
            Some(after)
                if error.kind() == ErrorKind::RateLimited && error.retry_after().is_none() =>
            {
                error.with_retry_after(after)
            }
            _ => error,
        };
        self.redactor.error(error)
    }

    /// [`Self::send`], then 2xx answers returned and any other mapped with
    /// [`Self::failure`], `reason` extracting the vendor's message from the body.
    pub async fn send_ok(
        &self,
        request: RequestBuilder,
        what: &str,
        reason: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Answer, Error> {
        let answer = self.send(request, what).await?;
        if answer.is_success() {
            Ok(answer)
        } else {
            let reason = reason(&answer.body);
            Err(self.failure(&answer, what, reason))
        }
    }
}

/// At most `max` bytes of the body, and whether there was more.
async fn read_body(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<(Vec<u8>, bool), Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, what))?
    {
        let room = max.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
        if body.len() == max {
            // Full: one more read tells whether anything was left out.
            let more = response
                .chunk()
                .await
                .map_err(|e| transport_error(e, what))?;
            return Ok((body, more.is_some_and(|c| !c.is_empty())));
        }
    }
    Ok((body, false))
}

#[cfg(test)]
mod tests {
    use vowguard_core::secrecy::SecretString;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::{HttpOptions, build_client};

    const KEY: &str = "sekrit-key-0042";

    async fn serve(template: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(template)
            .mount(&server)
            .await;
        server
    }

    fn exchange() -> Exchange {
        Exchange::new().with_redactor(Redactor::new().secret(&SecretString::from(KEY)))
    }

    #[tokio::test]
    async fn success_bodies_are_read_and_capped() {
        let client = build_client(&HttpOptions::default()).unwrap();
        let server = serve(ResponseTemplate::new(200).set_body_string("x".repeat(5000))).await;
        let whole = exchange()
            .send_ok(client.get(server.uri()), "get", |_| None)
            .await
            .unwrap();
        assert_eq!((whole.body.len(), whole.truncated), (5000, false));
        let exact = exchange()
            .with_max_body_bytes(5000)
            .send(client.get(server.uri()), "get")
            .await
            .unwrap();
        assert_eq!((exact.body.len(), exact.truncated), (5000, false));
        let cut = exchange()
            .with_max_body_bytes(1000)
            .send(client.get(server.uri()), "get")
            .await
            .unwrap();
        assert_eq!((cut.body.len(), cut.truncated), (1000, true));
    }

    #[tokio::test]
    async fn failures_are_classified_with_the_vendor_reason_and_no_secret() {
        let client = build_client(&HttpOptions::default()).unwrap();
        let body = format!("{{\"message\":\"key {KEY} is not valid\"}}");
        let server = serve(ResponseTemplate::new(401).set_body_string(body)).await;
        let e = exchange()
            .send_ok(client.get(server.uri()), "look up x", |b| {
                Some(
                    b.trim_start_matches("{\"message\":\"")
                        .trim_end_matches("\"}")
                        .to_owned(),
                )
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.status(), Some(401));
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "look up x: HTTP 401 Unauthorized: key [redacted] is not valid (status 401)"
        );
    }

    #[tokio::test]
    async fn a_429_carries_retry_after_or_the_default() {
        let client = build_client(&HttpOptions::default()).unwrap();
        let with = serve(ResponseTemplate::new(429).insert_header("retry-after", "7")).await;
        let without = serve(ResponseTemplate::new(429)).await;
        let ex = exchange().with_default_retry_after(Duration::from_secs(60));
        let e = ex
            .send_ok(client.get(with.uri()), "get", |_| None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = ex
            .send_ok(client.get(without.uri()), "get", |_| None)
            .await
            .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        let e = exchange()
            .send_ok(client.get(without.uri()), "get", |_| None)
            .await
            .unwrap_err();
        assert_eq!(e.retry_after(), None);
        assert!(e.is_retryable());
    }

    #[tokio::test]
    async fn server_errors_are_retryable_client_errors_permanent() {
        let client = build_client(&HttpOptions::default()).unwrap();
        for (status, kind, retryable) in [
            (500, ErrorKind::Unavailable, true),
            (503, ErrorKind::Unavailable, true),
            (408, ErrorKind::Timeout, true),
            (403, ErrorKind::Unauthorized, false),
            (400, ErrorKind::Rejected, false),
            (422, ErrorKind::Rejected, false),
        ] {
            let server = serve(ResponseTemplate::new(status).set_body_string("a\r\nb")).await;
            let e = exchange()
                .send_ok(client.get(server.uri()), "get", |_| None)
                .await
                .unwrap_err();
            assert_eq!((e.kind(), e.is_retryable()), (kind, retryable), "{status}");
            assert!(e.to_string().contains(": a  b"), "controls replaced: {e}");
        }
    }

    #[tokio::test]
    async fn long_bodies_are_quoted_as_a_snippet() {
        let client = build_client(&HttpOptions::default()).unwrap();
        let server = serve(ResponseTemplate::new(400).set_body_string("y".repeat(10_000))).await;
        let e = exchange()
            .send_ok(client.get(server.uri()), "get", |_| None)
            .await
            .unwrap_err();
        assert!(e.to_string().len() < 700, "{e}");
    }

    #[test]
    fn a_success_is_not_a_failure() {
        let answer = Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: String::new(),
            truncated: false,
        };
        assert_eq!(
            exchange().failure(&answer, "get", None).kind(),
            ErrorKind::Internal
        );
    }

    #[tokio::test]
    async fn transport_failures_never_show_the_url() {
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = reserved.local_addr().unwrap();
        let client = build_client(&HttpOptions::default()).unwrap();
        let e = exchange()
            .send(
                client.get(format!("http://{addr}/hook/{KEY}?token=abc")),
                "post",
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(!e.to_string().contains(KEY), "{e}");
        assert!(!e.to_string().contains("token=abc"), "{e}");
    }
}

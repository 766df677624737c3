//! Shared HTTP plumbing for vowguard connectors.
//!
//! * [`HttpOptions`] / [`build_client`]: one reqwest client setup (rustls, timeouts, no
//!   redirects so credentials never follow a redirect to another host).
//! * [`classify_status`]: maps an HTTP status onto the vowguard [`Error`] kinds
//!   (429/5xx/408 retryable with `Retry-After`, 401/403 unauthorized, other 4xx rejected).
//! * [`transport_error`]: maps reqwest failures, with the URL stripped (webhook URLs carry
//!   secrets in their path).
//! * [`origin`]: the part of a URL that is safe to print.
//! * [`Exchange`]: send one request, read its status and body (capped), classify a non-2xx
//!   answer with the connector's secrets redacted: the one request/response exchange of
//!   the ticket, SOAR and threat-intel connectors.
//! * [`HttpSinkOptions`] / [`HttpSinkBuilder`]: the component id and HTTP options every
//!   connector builder embeds, with their shared setters.
//! * [`send_splitting_on_413`] / [`send_ranges_splitting_on_413`]: send a batch and, on a
//!   413 answer, in halves down to single events (a single event still 413 is rejected).

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, ErrorKind};

pub use reqwest;

/// The largest vendor answer a connector reads (bigger answers are cut here; every JSON
/// answer a connector expects is far smaller).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

mod exchange;
mod sink_options;
mod split;
pub use exchange::{Answer, Exchange};
pub use sink_options::{HttpSinkBuilder, HttpSinkOptions};
pub use split::{map_outcome_error, send_ranges_splitting_on_413, send_splitting_on_413};

/// Timeouts and pool of a connector's HTTP client (the `http` table of a component). Every
/// HTTP connector builds its client from these with [`build_client`] (rustls with the
/// platform's roots, the `vowguard/<version>` user agent, no redirects), so they are set
/// one way for all of them.
///
/// ```
/// use std::time::Duration;
///
/// use vowguard_http::HttpOptions;
///
/// let http = HttpOptions::default()
///     .with_timeout(Duration::from_secs(3))
///     .with_connect_timeout(Duration::from_secs(1));
/// assert_eq!(http.pool_max_idle_per_host, 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Whole-request timeout (`timeout = "10s"`).
    #[serde(with = "vowguard_core::duration")]
    pub timeout: Duration,
    /// TCP + TLS connect timeout (`connect_timeout = "5s"`).
    #[serde(with = "vowguard_core::duration")]
    pub connect_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            pool_max_idle_per_host: 8,
        }
    }
}

impl HttpOptions {
    /// These options with `timeout` as the whole-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// These options with `timeout` as the TCP + TLS connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// These options keeping at most `idle` idle connections per host.
    #[must_use]
    pub fn with_pool_max_idle_per_host(mut self, idle: usize) -> Self {
        self.pool_max_idle_per_host = idle;
        self
    }
}

/// The `User-Agent` every connector sends.
pub const USER_AGENT: &str = concat!("vowguard/", env!("CARGO_PKG_VERSION"));

/// Builds the reqwest client connectors share: rustls with the platform's roots, the
/// configured timeouts, and no redirect following.
pub fn build_client(options: &HttpOptions) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .pool_max_idle_per_host(options.pool_max_idle_per_host)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::config(format!("cannot build HTTP client: {}", e.without_url())))
}

/// Parses an endpoint from config; the error names the key but not the value (it may be a
/// secret webhook URL).
pub fn parse_url(key: &str, value: &str) -> Result<Url, Error> {
    let url =
        Url::parse(value).map_err(|e| Error::config(format!("`{key}`: not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(format!(
            "`{key}`: scheme must be http or https, got {}",
            url.scheme()
        )));
    }
    Ok(url)
}

/// `scheme://host[:port]`: the part of a URL that may appear in logs and errors.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A header value marked sensitive (hidden from reqwest/hyper debug output).
pub fn sensitive_header(value: &str) -> Result<HeaderValue, Error> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        Error::config("a credential contains characters not allowed in an HTTP header")
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Parses `Retry-After` (delta-seconds or an HTTP-date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// At most 512 characters of a response body, control characters replaced, for error
/// messages and dead-letter records.
pub fn snippet(body: &str) -> String {
    let mut out: String = body
        .chars()
        .take(512)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.chars().nth(512).is_some() {
        out.push('…');
    }
    out
}

/// Maps a status onto `Ok(())` (2xx) or an [`Error`]: 429 rate-limited, 408 timeout, 5xx
/// unavailable (all retryable, carrying `Retry-After`), 401/403 unauthorized, other codes
/// rejected. `what` says what was attempted, `body` is the vendor's answer.
pub fn classify_status(
    status: StatusCode,
    headers: &HeaderMap,
    what: &str,
    body: &str,
) -> Result<(), Error> {
    if status.is_success() {
        return Ok(());
    }
    let kind = match status.as_u16() {
        429 => ErrorKind::RateLimited,
        408 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Unavailable,
        401 | 403 => ErrorKind::Unauthorized,
        _ => ErrorKind::Rejected,
    };
    let reason = snippet(body);
    let message = if reason.trim().is_empty() {
        format!("{what}: HTTP {status}")
    } else {
        format!("{what}: HTTP {status}: {reason}")
    };
    let mut error = Error::new(kind, message).with_status(status.as_u16());
    if let Some(after) = retry_after(headers) {
        error = error.with_retry_after(after);
    }
    Err(error)
}

/// Maps a reqwest failure (connect, timeout, body) onto an [`Error`], never printing the
/// URL: timeouts are [`ErrorKind::Timeout`], everything on the wire
/// [`ErrorKind::Unavailable`], a request that could not be built [`ErrorKind::Config`].
pub fn transport_error(error: reqwest::Error, what: &str) -> Error {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_builder() {
        ErrorKind::Config
    } else {
        ErrorKind::Unavailable
    };
    let detail = describe(&error.without_url());
    Error::new(kind, format!("{what}: {detail}"))
}

/// Reads at most `max` bytes of a response body and drops the rest, so a vendor (or
/// something impersonating one) cannot make an answer cost unbounded memory. Read errors are
/// mapped like [`transport_error`].
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, what))?
    {
        let room = max.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    Ok(body)
}

/// reqwest's Display stops at "error sending request"; include the chain's causes.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Gzip-compresses a request body (default level).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder
        .write_all(body)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    #[tokio::test]
    async fn read_capped_keeps_at_most_max_bytes() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 300_000]))
            .mount(&server)
            .await;
        let client = build_client(&HttpOptions::default()).unwrap();
        let get = || client.get(server.uri()).send();
        let capped = read_capped(get().await.unwrap(), 1000, "get")
            .await
            .unwrap();
        assert_eq!(capped.len(), 1000);
        let whole = read_capped(get().await.unwrap(), 1_000_000, "get")
            .await
            .unwrap();
        assert_eq!(whole.len(), 300_000, "a smaller answer is read whole");
    }

    #[test]
    fn classifies_statuses() {
        let none = HeaderMap::new();
        assert!(classify_status(StatusCode::OK, &none, "send", "").is_ok());
        let e = classify_status(
            StatusCode::TOO_MANY_REQUESTS,
            &headers("7"),
            "send",
            "slow down",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            e.to_string(),
            "send: HTTP 429 Too Many Requests: slow down (status 429)"
        );
        let e = classify_status(StatusCode::SERVICE_UNAVAILABLE, &none, "send", "").unwrap_err();
        assert!(e.is_retryable());
        let e = classify_status(StatusCode::FORBIDDEN, &none, "send", "").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(!e.is_retryable());
        let e = classify_status(StatusCode::BAD_REQUEST, &none, "send", "").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
    }

    #[test]
    fn retry_after_http_date() {
        let future = SystemTime::now() + Duration::from_secs(120);
        let d = retry_after(&headers(&httpdate::fmt_http_date(future))).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(retry_after(&headers("garbage")), None);
    }

    #[test]
    fn origin_hides_path_and_query() {
        let url = parse_url("k", "https://hooks.slack.com/services/T0/B0/SECRET?x=1").unwrap();
        assert_eq!(origin(&url), "https://hooks.slack.com");
        assert!(parse_url("k", "ftp://x").is_err());
    }

    #[test]
    fn snippet_truncates_and_strips_controls() {
        assert_eq!(snippet("a\r\nb"), "a  b");
        assert_eq!(snippet(&"x".repeat(600)).chars().count(), 513);
    }

    #[tokio::test]
    async fn transport_error_never_prints_url() {
        // Nothing listens on port 9 of loopback: connection refused.
        let client = build_client(&HttpOptions::default()).unwrap();
        let err = client
            .post("http://127.0.0.1:9/services/T0/B0/SECRETPATH")
            .send()
            .await
            .unwrap_err();
        let e = transport_error(err, "post to slack");
        assert!(e.is_retryable());
        assert!(!e.to_string().contains("SECRETPATH"), "{e}");
    }
}

//! The call: `GET /v2/{type}/{value}?fields=entity,risk,timestamps`, and the one function
//! that maps every Recorded Future answer onto a vowguard [`Error`] (or onto "unknown" for a
//! 404).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use vowguard_core::{Error, ErrorKind, Redactor, ThreatIntel};
use vowguard_enrich::{
    ApiResponse, Indicator, IndicatorKind, KeyedApi, QuotaPause, ReputationProvider, ThreatEnricher,
};
use vowguard_http::reqwest::StatusCode;
use vowguard_http::reqwest::header::{HeaderMap, HeaderName};
use vowguard_http::{MAX_RESPONSE_BYTES, classify_status};

use crate::KIND;
use crate::config::{DEFAULT_BASE_URL, RecordedFutureConfig};
use crate::encode::{RfType, error_reason, lookup_url, parse_lookup};

/// How long a 429 pauses lookups when Recorded Future sends no `Retry-After`.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = QuotaPause::DEFAULT_PAUSE;

/// The longest pause a 429 can impose.
pub const MAX_RATE_LIMIT_PAUSE: Duration = QuotaPause::MAX_PAUSE;

const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-rftoken");

/// Looks IPs, domains, URLs and file hashes up in Recorded Future (see the crate docs).
/// Wrap it in a [`ThreatEnricher`] (or use [`enricher`]) to enrich events.
pub struct RecordedFutureProvider {
    /// Client, base URL and the token (marked sensitive; never printed).
    api: KeyedApi,
    component: String,
    /// After a 429: no request until the pause has passed.
    quota: QuotaPause,
}

impl fmt::Debug for RecordedFutureProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedFutureProvider")
            .field("component", &self.component)
            .field("origin", &self.api.origin())
            .finish_non_exhaustive()
    }
}

impl RecordedFutureProvider {
    /// A provider for `config`, authenticating with `api_token` (the resolved `api_token`).
    pub fn new(config: &RecordedFutureConfig, api_token: &SecretString) -> Result<Self, Error> {
        let api = KeyedApi::new(
            config.base_url.as_deref(),
            DEFAULT_BASE_URL,
            TOKEN_HEADER,
            api_token,
            &config.http,
        )?
        .with_max_response_bytes(MAX_RESPONSE_BYTES);
        Ok(Self {
            api,
            component: KIND.to_owned(),
            quota: QuotaPause::with_limits(DEFAULT_RATE_LIMIT_PAUSE, MAX_RATE_LIMIT_PAUSE),
        })
    }

    /// Names the component (the config id) in errors; [`KIND`] unless set.
    pub fn with_component(mut self, id: impl Into<String>) -> Self {
        self.component = id.into();
        self
    }

    fn pause(&self, error: &Error) {
        if let Some(wait) = self.quota.record(error) {
            tracing::warn!(
                target: "vowguard::recorded_future",
                component = %self.component,
                pause_secs = wait.as_secs(),
                "Recorded Future rate limit or quota reached; no lookups until the pause ends"
            );
        }
    }

    async fn fetch(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let kind = match indicator.kind {
            IndicatorKind::Ip => RfType::Ip,
            IndicatorKind::Domain => RfType::Domain,
            IndicatorKind::Url => RfType::Url,
            IndicatorKind::FileHash => RfType::Hash,
        };
        // A URL may carry tokens in its query: errors name only the type.
        let what = if kind == RfType::Url {
            format!("Recorded Future url lookup at {}", self.api.origin())
        } else {
            format!(
                "Recorded Future {} lookup of {} at {}",
                kind.as_str(),
                indicator.value,
                self.api.origin()
            )
        };
        self.quota
            .check(&what, "Recorded Future asked to slow down")?;
        let url = lookup_url(self.api.base(), kind, &indicator.value)?;
        let ApiResponse {
            status,
            headers,
            body,
        } = self.api.get(url, &what).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let error = response_error(status, &headers, &what, &body);
            self.pause(&error);
            return Err(error);
        }
        parse_lookup(&body, &indicator.value)
    }
}

/// Maps a non-2xx Recorded Future answer other than 404 (which is "unknown") onto an
/// [`Error`]: 429 `RateLimited` with `Retry-After` (60 s when absent); 5xx / 408
/// retryable; 401 / 403 (a wrong or expired token, a lookup the token may not make)
/// `Unauthorized`; other 4xx `Rejected`. The message carries Recorded Future's
/// `error.message`.
pub fn response_error(status: StatusCode, headers: &HeaderMap, what: &str, body: &str) -> Error {
    let reason = error_reason(body);
    let Err(error) = classify_status(status, headers, what, &reason) else {
        return Error::internal(format!("{what}: HTTP {status} is not an error"));
    };
    if error.kind() == ErrorKind::RateLimited && error.retry_after().is_none() {
        return error.with_retry_after(DEFAULT_RATE_LIMIT_PAUSE);
    }
    error
}

#[async_trait]
impl ReputationProvider for RecordedFutureProvider {
    fn name(&self) -> &'static str {
        KIND
    }

    fn redactor(&self) -> &Redactor {
        self.api.redactor()
    }

    /// IP addresses, domains and host names, URLs and file hashes.
    fn supports(&self, kind: &IndicatorKind) -> bool {
        matches!(
            kind,
            IndicatorKind::Ip
                | IndicatorKind::Domain
                | IndicatorKind::Url
                | IndicatorKind::FileHash
        )
    }

    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        self.fetch(indicator)
            .await
            .map_err(|e| e.with_component(self.component.clone()))
    }
}

/// An enricher for `config`: a [`RecordedFutureProvider`] behind the cache and limits the
/// config asks for. This is what `type = "recorded_future"` builds.
pub fn enricher(
    config: &RecordedFutureConfig,
    api_token: &SecretString,
) -> Result<ThreatEnricher<RecordedFutureProvider>, Error> {
    let provider = RecordedFutureProvider::new(config, api_token)?;
    Ok(ThreatEnricher::new(provider, config.cache, config.limits()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_http::reqwest::header::HeaderValue;

    #[test]
    fn maps_statuses() {
        let none = HeaderMap::new();
        let e = response_error(StatusCode::TOO_MANY_REQUESTS, &none, "lookup", "");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(DEFAULT_RATE_LIMIT_PAUSE));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let e = response_error(StatusCode::TOO_MANY_REQUESTS, &h, "lookup", "");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        for (status, kind) in [
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Unauthorized),
            (400, ErrorKind::Rejected),
            (500, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
        ] {
            let e = response_error(
                StatusCode::from_u16(status).unwrap(),
                &none,
                "lookup",
                r#"{"error": {"status": 0, "message": "Invalid token"}}"#,
            );
            assert_eq!(e.kind(), kind, "{status}");
            assert!(e.to_string().contains("Invalid token"), "{e}");
        }
    }
}

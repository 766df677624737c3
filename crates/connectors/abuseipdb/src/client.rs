//! The call: `GET /api/v2/check`, and the one function that maps every AbuseIPDB answer
//! onto a vowguard [`Error`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use vowguard_core::{Error, ErrorKind, Redactor, ThreatIntel};
use vowguard_enrich::{
    ApiResponse, Indicator, IndicatorKind, KeyedApi, QuotaPause, ReputationProvider, ThreatEnricher,
};
use vowguard_http::classify_status;
use vowguard_http::reqwest::StatusCode;
use vowguard_http::reqwest::header::{HeaderMap, HeaderName};

use crate::KIND;
use crate::config::{AbuseIpdbConfig, DEFAULT_BASE_URL};
use crate::encode::{check_url, error_reason, parse_check};

/// How long lookups pause after a 429 that carries no `Retry-After` (nor
/// `X-RateLimit-Reset`).
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = QuotaPause::DEFAULT_PAUSE;

/// The longest pause a 429 can impose (the daily quota can announce a reset hours away;
/// after this long one lookup tries again).
pub const MAX_RATE_LIMIT_PAUSE: Duration = QuotaPause::MAX_PAUSE;

const KEY_HEADER: HeaderName = HeaderName::from_static("key");

/// Looks IP addresses up in AbuseIPDB (see the crate docs). Wrap it in a
/// [`ThreatEnricher`] (or use [`enricher`]) to enrich events.
pub struct AbuseIpdbProvider {
    /// Client, base URL and the API key (marked sensitive; never printed).
    api: KeyedApi,
    max_age_in_days: u32,
    component: String,
    /// After a 429: no request until the pause has passed.
    quota: QuotaPause,
}

impl fmt::Debug for AbuseIpdbProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbuseIpdbProvider")
            .field("component", &self.component)
            .field("origin", &self.api.origin())
            .field("max_age_in_days", &self.max_age_in_days)
            .finish_non_exhaustive()
    }
}

impl AbuseIpdbProvider {
    /// A provider for `config`, authenticating with `api_key` (the resolved `api_key`).
    pub fn new(config: &AbuseIpdbConfig, api_key: &SecretString) -> Result<Self, Error> {
        if !(1..=365).contains(&config.max_age_in_days) {
            return Err(Error::config(format!(
                "`max_age_in_days`: must be 1..=365, got {}",
                config.max_age_in_days
            )));
        }
        let api = KeyedApi::new(
            config.base_url.as_deref(),
            DEFAULT_BASE_URL,
            KEY_HEADER,
            api_key,
            &config.http,
        )?;
        Ok(Self {
            api,
            max_age_in_days: config.max_age_in_days,
            component: KIND.to_owned(),
            quota: QuotaPause::with_limits(DEFAULT_RATE_LIMIT_PAUSE, MAX_RATE_LIMIT_PAUSE),
        })
    }

    /// Names the component (the config id) in errors; [`KIND`] unless set.
    pub fn with_component(mut self, id: impl Into<String>) -> Self {
        self.component = id.into();
        self
    }

    fn tag(&self, error: Error) -> Error {
        error.with_component(self.component.clone())
    }

    fn pause(&self, error: &Error) {
        if let Some(wait) = self.quota.record(error) {
            tracing::warn!(
                target: "vowguard::abuseipdb",
                component = %self.component,
                pause_secs = wait.as_secs(),
                "AbuseIPDB rate limit reached; no lookups until the pause ends"
            );
        }
    }

    async fn check(&self, ip: IpAddr, value: &str) -> Result<Option<ThreatIntel>, Error> {
        let what = format!("AbuseIPDB check of {ip} at {}", self.api.origin());
        self.quota
            .check(&what, "AbuseIPDB asked to pause after a 429")?;
        let url = check_url(self.api.base(), ip, self.max_age_in_days)?;
        let ApiResponse {
            status,
            headers,
            body,
        } = self.api.get(url, &what).await?;
        if !status.is_success() {
            let error = response_error(status, &headers, &what, &body);
            self.pause(&error);
            return Err(error);
        }
        parse_check(&body, value)
    }
}

/// Maps a non-2xx AbuseIPDB answer onto an [`Error`]: 429 `RateLimited` with `Retry-After`
/// (or, without it, the time until `X-RateLimit-Reset`); 5xx / 408 retryable; 401 / 403
/// `Unauthorized`; 422 (an address AbuseIPDB refuses) and other 4xx `Rejected`. The message
/// carries AbuseIPDB's `errors[].detail`.
pub fn response_error(status: StatusCode, headers: &HeaderMap, what: &str, body: &str) -> Error {
    let reason = error_reason(body);
    let Err(error) = classify_status(status, headers, what, &reason) else {
        return Error::internal(format!("{what}: HTTP {status} is not an error"));
    };
    let reset = (error.kind() == ErrorKind::RateLimited && error.retry_after().is_none())
        .then(|| rate_limit_reset(headers))
        .flatten();
    match reset {
        Some(reset) => error.with_retry_after(reset),
        None => error,
    }
}

/// The time until `X-RateLimit-Reset` (a Unix timestamp).
fn rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    let epoch: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let reset = std::time::UNIX_EPOCH + Duration::from_secs(epoch);
    Some(
        reset
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[async_trait]
impl ReputationProvider for AbuseIpdbProvider {
    fn name(&self) -> &'static str {
        KIND
    }

    fn redactor(&self) -> &Redactor {
        self.api.redactor()
    }

    /// IP addresses only.
    fn supports(&self, kind: &IndicatorKind) -> bool {
        *kind == IndicatorKind::Ip
    }

    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        if indicator.kind != IndicatorKind::Ip {
            return Err(self.tag(Error::invalid_input(format!(
                "AbuseIPDB looks up IP addresses only, not a {}",
                indicator.kind
            ))));
        }
        let ip: IpAddr = indicator.value.trim().parse().map_err(|_| {
            self.tag(Error::invalid_input(format!(
                "AbuseIPDB check: {:?} is not an IP address",
                indicator.value
            )))
        })?;
        self.check(ip, &indicator.value)
            .await
            .map_err(|e| self.tag(e))
    }
}

/// An enricher for `config`: an [`AbuseIpdbProvider`] behind the cache and limits the
/// config asks for. This is what `type = "abuseipdb"` builds.
pub fn enricher(
    config: &AbuseIpdbConfig,
    api_key: &SecretString,
) -> Result<ThreatEnricher<AbuseIpdbProvider>, Error> {
    let provider = AbuseIpdbProvider::new(config, api_key)?;
    Ok(ThreatEnricher::new(provider, config.cache, config.limits()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_http::reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn maps_statuses() {
        let body = r#"{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.","status":429}]}"#;
        let e = response_error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "29".into())]),
            "check",
            body,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(29)));
        assert!(e.to_string().contains("Daily rate limit of 1000"), "{e}");

        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let e = response_error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("x-ratelimit-reset", reset.to_string())]),
            "check",
            body,
        );
        let after = e.retry_after().unwrap();
        assert!(after > Duration::from_secs(500) && after <= Duration::from_secs(600));

        let none = HeaderMap::new();
        for (status, kind) in [
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Unauthorized),
            (422, ErrorKind::Rejected),
            (400, ErrorKind::Rejected),
            (500, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
        ] {
            let e = response_error(StatusCode::from_u16(status).unwrap(), &none, "check", "");
            assert_eq!(e.kind(), kind, "{status}");
            assert_eq!(e.status(), Some(status));
        }
    }
}

//! [`AbuseIpdb`]: what the AbuseIPDB enricher does differently from the other
//! threat-intelligence providers (IP addresses only, the request `GET /api/v2/check`, the
//! key in `Key`, `X-RateLimit-Reset` on a 429, the answer parsed by `parse_check`); the
//! rest is [`IntelProvider`]'s.

use std::net::IpAddr;
use std::time::Duration;

use vowguard_core::{Error, ThreatIntel};
use vowguard_enrich::{
    Indicator, IndicatorKind, IntelApi, IntelBuilder, IntelProvider, IntelVendor, ProviderLimits,
    ThreatEnricher,
};
use vowguard_http::Answer;
use vowguard_http::reqwest::RequestBuilder;
use vowguard_http::reqwest::header::{HeaderMap, HeaderName};

use crate::KIND;
use crate::config::{DEFAULT_BASE_URL, DEFAULT_LIMITS};
use crate::encode::{MAX_AGE_IN_DAYS, check_url, error_reason, parse_check};

/// The AbuseIPDB vendor and its one setting, `max_age_in_days`.
///
/// ```no_run
/// use vowguard_abuseipdb::AbuseIpdb;
/// use vowguard_core::secrecy::SecretString;
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let enricher = AbuseIpdb::builder()
///     .api_key(SecretString::from("abuseipdb-api-key"))
///     .id("reputation")
///     .build()?;
/// // Reports from the last 30 days only:
/// let recent = AbuseIpdb::default()
///     .max_age_in_days(30)
///     .into_builder()
///     .api_key(SecretString::from("abuseipdb-api-key"))
///     .build()?;
/// # let _ = (enricher, recent);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AbuseIpdb {
    max_age_in_days: u32,
}

impl Default for AbuseIpdb {
    fn default() -> Self {
        Self {
            max_age_in_days: MAX_AGE_IN_DAYS,
        }
    }
}

/// Builds an AbuseIPDB enricher ([`AbuseIpdb::builder`]).
pub type AbuseIpdbBuilder = IntelBuilder<AbuseIpdb>;
/// The AbuseIPDB provider: [`IntelProvider`] with the [`AbuseIpdb`] vendor.
pub type AbuseIpdbProvider = IntelProvider<AbuseIpdb>;
/// The AbuseIPDB enricher: the provider behind its cache and limits.
pub type AbuseIpdbEnricher = ThreatEnricher<AbuseIpdbProvider>;

impl AbuseIpdb {
    /// A builder with every default (reports of the last 90 days); set at least
    /// [`IntelBuilder::api_key`].
    pub fn builder() -> AbuseIpdbBuilder {
        IntelBuilder::new(Self::default())
    }

    /// Only reports from the last `days` days count (`maxAgeInDays`, 1..=365, checked at
    /// build).
    pub fn max_age_in_days(mut self, days: u32) -> Self {
        self.max_age_in_days = days;
        self
    }

    /// A builder for these settings.
    pub fn into_builder(self) -> AbuseIpdbBuilder {
        IntelBuilder::new(self)
    }
}

impl IntelVendor for AbuseIpdb {
    const KIND: &'static str = KIND;
    const NAME: &'static str = "AbuseIPDB";
    const DEFAULT_BASE_URL: Option<&'static str> = Some(DEFAULT_BASE_URL);
    const API_KEY: Option<(HeaderName, &'static str)> =
        Some((HeaderName::from_static("key"), "api_key"));
    const DEFAULT_LIMITS: ProviderLimits = DEFAULT_LIMITS;
    /// Without `Retry-After`, `X-RateLimit-Reset` says how long ([`Self::rate_limit_reset`]).
    const DEFAULT_RETRY_AFTER: Option<Duration> = None;

    fn validate(&self) -> Result<(), Error> {
        if (1..=365).contains(&self.max_age_in_days) {
            Ok(())
        } else {
            Err(Error::config(format!(
                "`max_age_in_days`: must be 1..=365, got {}",
                self.max_age_in_days
            )))
        }
    }

    /// IP addresses only.
    fn supports(&self, kind: &IndicatorKind) -> bool {
        *kind == IndicatorKind::Ip
    }

    fn what(&self, indicator: &Indicator, origin: &str) -> String {
        format!("AbuseIPDB check of {} at {origin}", indicator.value.trim())
    }

    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
        let ip: IpAddr = indicator.value.trim().parse().map_err(|_| {
            Error::invalid_input(format!(
                "AbuseIPDB check: {:?} is not an IP address",
                indicator.value
            ))
        })?;
        Ok(api.get(check_url(api.base(), ip, self.max_age_in_days)?))
    }

    /// AbuseIPDB's `errors[].detail`.
    fn error_reason(&self, body: &str) -> Option<String> {
        Some(error_reason(body))
    }

    /// AbuseIPDB answers for every address it accepts; a 404 is an error, not unknown.
    fn unknown(&self, _answer: &Answer) -> bool {
        false
    }

    /// The time until `X-RateLimit-Reset` (a Unix timestamp).
    fn rate_limit_reset(&self, answer: &Answer) -> Option<Duration> {
        rate_limit_reset(&answer.headers)
    }

    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        parse_check(body, &indicator.value)
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

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;
    use vowguard_enrich::answer_error;
    use vowguard_http::Exchange;
    use vowguard_http::reqwest::StatusCode;
    use vowguard_http::reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn response_error(status: StatusCode, headers: &HeaderMap, what: &str, body: &str) -> Error {
        let answer = Answer {
            status,
            headers: headers.clone(),
            body: body.to_owned(),
            truncated: false,
        };
        answer_error(&AbuseIpdb::default(), &Exchange::new(), &answer, what)
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

    #[test]
    fn max_age_is_checked_at_build() {
        for days in [0, 366] {
            let e = AbuseIpdb::default()
                .max_age_in_days(days)
                .into_builder()
                .api_key("k".into())
                .build()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("`max_age_in_days`"), "{e}");
        }
    }
}

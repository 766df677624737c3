//! The call: `GET /api/v3/{collection}/{id}`, and the one function that maps every
//! VirusTotal answer onto a vowguard [`Error`] (or onto "unknown" for a 404).

use std::fmt;
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
use crate::config::{DEFAULT_BASE_URL, VirusTotalConfig};
use crate::encode::{
    Collection, error_code, error_reason, is_file_hash, object_url, parse_object, url_id,
};

/// How long a 429 (quota exceeded) pauses lookups when VirusTotal sends no `Retry-After`:
/// the public quota is per minute.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = QuotaPause::DEFAULT_PAUSE;

/// The longest pause a 429 can impose.
pub const MAX_RATE_LIMIT_PAUSE: Duration = QuotaPause::MAX_PAUSE;

const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-apikey");

/// Looks IPs, domains, URLs and file hashes up in VirusTotal (see the crate docs). Wrap it
/// in a [`ThreatEnricher`] (or use [`enricher`]) to enrich events.
pub struct VirusTotalProvider {
    /// Client, base URL and the API key (marked sensitive; never printed).
    api: KeyedApi,
    component: String,
    /// After a 429: no request until the pause has passed.
    quota: QuotaPause,
}

impl fmt::Debug for VirusTotalProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirusTotalProvider")
            .field("component", &self.component)
            .field("origin", &self.api.origin())
            .finish_non_exhaustive()
    }
}

/// What a non-2xx answer means.
#[derive(Debug)]
pub enum Answer {
    /// 404 `NotFoundError`: VirusTotal does not know the object (unknown, not benign).
    NotFound,
    /// Any other failure.
    Failed(Error),
}

impl VirusTotalProvider {
    /// A provider for `config`, authenticating with `api_key` (the resolved `api_key`).
    pub fn new(config: &VirusTotalConfig, api_key: &SecretString) -> Result<Self, Error> {
        let api = KeyedApi::new(
            config.base_url.as_deref(),
            DEFAULT_BASE_URL,
            API_KEY_HEADER,
            api_key,
            &config.http,
        )?;
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
                target: "vowguard::virustotal",
                component = %self.component,
                pause_secs = wait.as_secs(),
                "VirusTotal rate limit reached; no lookups until the pause ends"
            );
        }
    }

    async fn fetch(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let (collection, id) = match indicator.kind {
            IndicatorKind::Ip => (Collection::IpAddresses, indicator.value.clone()),
            IndicatorKind::Domain => (Collection::Domains, indicator.value.clone()),
            IndicatorKind::Url => (Collection::Urls, url_id(&indicator.value)),
            IndicatorKind::FileHash => {
                if !is_file_hash(&indicator.value) {
                    return Err(Error::invalid_input(format!(
                        "VirusTotal lookup: {:?} is not an MD5, SHA-1 or SHA-256 hash",
                        indicator.value
                    )));
                }
                (Collection::Files, indicator.value.clone())
            }
        };
        // A URL may carry tokens in its query: errors name only the collection.
        let what = if collection == Collection::Urls {
            format!("VirusTotal URL lookup at {}", self.api.origin())
        } else {
            format!(
                "VirusTotal lookup of {} {} at {}",
                indicator.kind,
                indicator.value,
                self.api.origin()
            )
        };
        self.quota
            .check(&what, "the VirusTotal quota was exceeded")?;
        let url = object_url(self.api.base(), collection, &id)?;
        let ApiResponse {
            status,
            headers,
            body,
        } = self.api.get(url, &what).await?;
        if !status.is_success() {
            return match classify_response(status, &headers, &what, &body) {
                Answer::NotFound => Ok(None),
                Answer::Failed(error) => {
                    self.pause(&error);
                    Err(error)
                }
            };
        }
        parse_object(&body, &indicator.value)
    }
}

/// Maps a non-2xx VirusTotal answer: 404 `NotFoundError` is [`Answer::NotFound`]; a 404
/// without it (a wrong `base_url`) is `Rejected`; 429 (`QuotaExceededError`,
/// `TooManyRequestsError`) is `RateLimited` with `Retry-After`, or 60 s when absent; 5xx
/// (`TransientError`, `DeadlineExceededError`) retryable; 401 (`WrongCredentialsError`,
/// `AuthenticationRequiredError`, `UserNotActiveError`) and 403 (`ForbiddenError`)
/// `Unauthorized`; other 4xx (`InvalidArgumentError`, `BadRequestError`) `Rejected`. The
/// message carries VirusTotal's `code: message`.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    what: &str,
    body: &str,
) -> Answer {
    if status == StatusCode::NOT_FOUND && error_code(body).as_deref() == Some("NotFoundError") {
        return Answer::NotFound;
    }
    let reason = error_reason(body);
    let error = match classify_status(status, headers, what, &reason) {
        Err(e) => e,
        Ok(()) => Error::internal(format!("{what}: HTTP {status} is not an error")),
    };
    if error.kind() == ErrorKind::RateLimited && error.retry_after().is_none() {
        return Answer::Failed(error.with_retry_after(DEFAULT_RATE_LIMIT_PAUSE));
    }
    Answer::Failed(error)
}

#[async_trait]
impl ReputationProvider for VirusTotalProvider {
    fn name(&self) -> &'static str {
        KIND
    }

    fn redactor(&self) -> &Redactor {
        self.api.redactor()
    }

    /// IP addresses, domains, URLs and file hashes.
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

/// An enricher for `config`: a [`VirusTotalProvider`] behind the cache and limits the config
/// asks for. This is what `type = "virustotal"` builds.
pub fn enricher(
    config: &VirusTotalConfig,
    api_key: &SecretString,
) -> Result<ThreatEnricher<VirusTotalProvider>, Error> {
    let provider = VirusTotalProvider::new(config, api_key)?;
    Ok(ThreatEnricher::new(provider, config.cache, config.limits()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_http::reqwest::header::HeaderValue;

    fn failed(answer: Answer) -> Error {
        match answer {
            Answer::Failed(e) => e,
            Answer::NotFound => panic!("expected an error"),
        }
    }

    #[test]
    fn maps_answers() {
        let none = HeaderMap::new();
        let not_found = r#"{"error":{"code":"NotFoundError","message":"Resource not found."}}"#;
        assert!(matches!(
            classify_response(StatusCode::NOT_FOUND, &none, "lookup", not_found),
            Answer::NotFound
        ));
        let e = failed(classify_response(
            StatusCode::NOT_FOUND,
            &none,
            "lookup",
            "<html>Not Found</html>",
        ));
        assert_eq!(e.kind(), ErrorKind::Rejected);

        let quota = r#"{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}"#;
        let e = failed(classify_response(
            StatusCode::TOO_MANY_REQUESTS,
            &none,
            "lookup",
            quota,
        ));
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(DEFAULT_RATE_LIMIT_PAUSE));
        assert!(
            e.to_string().contains("QuotaExceededError: Quota exceeded"),
            "{e}"
        );

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("5"));
        let e = failed(classify_response(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            "lookup",
            quota,
        ));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));

        for (status, code, kind) in [
            (401, "WrongCredentialsError", ErrorKind::Unauthorized),
            (401, "AuthenticationRequiredError", ErrorKind::Unauthorized),
            (403, "ForbiddenError", ErrorKind::Unauthorized),
            (400, "InvalidArgumentError", ErrorKind::Rejected),
            (503, "TransientError", ErrorKind::Unavailable),
            (504, "DeadlineExceededError", ErrorKind::Unavailable),
        ] {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            let e = failed(classify_response(
                StatusCode::from_u16(status).unwrap(),
                &none,
                "lookup",
                &body,
            ));
            assert_eq!(e.kind(), kind, "{status} {code}");
            assert!(e.to_string().contains(code), "{e}");
        }
    }
}

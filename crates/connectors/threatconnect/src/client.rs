//! The call: `GET /v3/indicators/{summary}?fields=...`, signed (HMAC) or with a token, and
//! the one function that maps every ThreatConnect answer onto a vowguard [`Error`] (or onto
//! "unknown" for a 404).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use vowguard_core::{Error, ErrorKind, Redactor, ThreatIntel};
use vowguard_enrich::{Indicator, IndicatorKind, QuotaPause, ReputationProvider, ThreatEnricher};
use vowguard_http::reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName};
use vowguard_http::reqwest::{self, StatusCode, Url};
use vowguard_http::{
    MAX_RESPONSE_BYTES, build_client, classify_status, origin, parse_url, read_capped,
    sensitive_header, transport_error,
};

use crate::KIND;
use crate::config::{Credentials, DEFAULT_BASE_URL, ThreatConnectConfig};
use crate::encode::{error_reason, indicator_url, parse_indicator, summary};
use crate::sign::{authorization, path_and_query};

/// How long a 429 pauses lookups when ThreatConnect sends no `Retry-After`.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = QuotaPause::DEFAULT_PAUSE;

/// The longest pause a 429 can impose.
pub const MAX_RATE_LIMIT_PAUSE: Duration = QuotaPause::MAX_PAUSE;

const TIMESTAMP: HeaderName = HeaderName::from_static("timestamp");

/// Looks IPs, domains, URLs and file hashes up as ThreatConnect indicators (see the crate
/// docs). Wrap it in a [`ThreatEnricher`] (or use [`enricher`]) to enrich events.
pub struct ThreatConnectProvider {
    client: reqwest::Client,
    base: Url,
    origin: String,
    owner: Option<String>,
    credentials: Credentials,
    redactor: Redactor,
    component: String,
    /// After a 429: no request until the pause has passed.
    quota: QuotaPause,
}

impl fmt::Debug for ThreatConnectProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreatConnectProvider")
            .field("component", &self.component)
            .field("origin", &self.origin)
            .field("owner", &self.owner)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The current Unix time in seconds (the `Timestamp` header).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ThreatConnectProvider {
    /// A provider for `config` with resolved `credentials`. Errors (`Config`): `base_url`
    /// is not an http(s) URL (named), or a credential holds characters not allowed in a
    /// header.
    pub fn new(config: &ThreatConnectConfig, credentials: Credentials) -> Result<Self, Error> {
        let base = parse_url(
            "base_url",
            config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )?;
        let credentials = match credentials {
            Credentials::Token(token) => {
                let token = token.expose_secret().trim().to_owned();
                sensitive_header(&format!("TC-Token {token}"))?;
                Credentials::Token(token.into())
            }
            Credentials::Hmac {
                access_id,
                secret_key,
            } => {
                let access_id = access_id.trim().to_owned();
                sensitive_header(&format!("TC {access_id}:x"))
                    .map_err(|_| Error::config("`access_id`: not allowed in an HTTP header"))?;
                Credentials::Hmac {
                    access_id,
                    secret_key: secret_key.expose_secret().trim().to_owned().into(),
                }
            }
        };
        let redactor = match &credentials {
            Credentials::Token(token) => Redactor::new().secret(token),
            Credentials::Hmac { secret_key, .. } => Redactor::new().secret(secret_key),
        };
        Ok(Self {
            client: build_client(&config.http)?,
            origin: origin(&base),
            base,
            owner: config.owner.clone(),
            credentials,
            redactor,
            component: KIND.to_owned(),
            quota: QuotaPause::with_limits(DEFAULT_RATE_LIMIT_PAUSE, MAX_RATE_LIMIT_PAUSE),
        })
    }

    /// Names the component (the config id) in errors; [`KIND`] unless set.
    pub fn with_component(mut self, id: impl Into<String>) -> Self {
        self.component = id.into();
        self
    }

    /// The authentication headers of a `GET url` made at `timestamp`: `Authorization:
    /// TC-Token <token>`, or `Timestamp` and `Authorization: TC <access id>:<signature>`.
    /// Values are marked sensitive.
    pub fn auth_headers(&self, url: &Url, timestamp: u64) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        match &self.credentials {
            Credentials::Token(token) => {
                headers.insert(
                    AUTHORIZATION,
                    sensitive_header(&format!("TC-Token {}", token.expose_secret()))?,
                );
            }
            Credentials::Hmac {
                access_id,
                secret_key,
            } => {
                let value = authorization(
                    access_id,
                    secret_key.expose_secret(),
                    &path_and_query(url),
                    "GET",
                    timestamp,
                );
                headers.insert(TIMESTAMP, timestamp.into());
                headers.insert(AUTHORIZATION, sensitive_header(&value)?);
            }
        }
        Ok(headers)
    }

    fn pause(&self, error: &Error) {
        if let Some(wait) = self.quota.record(error) {
            tracing::warn!(
                target: "vowguard::threatconnect",
                component = %self.component,
                pause_secs = wait.as_secs(),
                "ThreatConnect rate limit reached; no lookups until the pause ends"
            );
        }
    }

    async fn fetch(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let summary = summary(&indicator.kind, &indicator.value);
        // A URL may carry tokens in its query: errors name only the kind.
        let what = if indicator.kind == IndicatorKind::Url {
            format!("ThreatConnect url lookup at {}", self.origin)
        } else {
            format!(
                "ThreatConnect {} lookup of {summary} at {}",
                indicator.kind, self.origin
            )
        };
        self.quota
            .check(&what, "ThreatConnect asked to slow down")?;
        let url = indicator_url(&self.base, &summary, self.owner.as_deref())?;
        let headers = self.auth_headers(&url, unix_now())?;
        let response = self
            .client
            .get(url)
            .headers(headers)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, MAX_RESPONSE_BYTES, &what).await?;
        let body = String::from_utf8_lossy(&body);
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let error = response_error(status, &headers, &what, &body);
            self.pause(&error);
            return Err(error);
        }
        parse_indicator(&body, &indicator.value)
    }
}

/// Maps a non-2xx ThreatConnect answer other than 404 (which is "unknown") onto an
/// [`Error`]: 429 `RateLimited` with `Retry-After` (60 s when absent); 5xx / 408
/// retryable; 401 (a bad token) / 403 (a bad signature, a timestamp more than 5 minutes off,
/// an owner the user may not read) `Unauthorized`; other 4xx `Rejected`. The message carries
/// ThreatConnect's `message`.
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
impl ReputationProvider for ThreatConnectProvider {
    fn name(&self) -> &'static str {
        KIND
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// IP addresses (Address), host names (Host), URLs (URL) and file hashes (File).
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

/// An enricher for `config` with resolved `credentials`: a [`ThreatConnectProvider`] behind
/// the cache and limits the config asks for. This is what `type = "threatconnect"` builds.
pub fn enricher(
    config: &ThreatConnectConfig,
    credentials: Credentials,
) -> Result<ThreatEnricher<ThreatConnectProvider>, Error> {
    let provider = ThreatConnectProvider::new(config, credentials)?;
    Ok(ThreatEnricher::new(provider, config.cache, config.limits()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
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
                r#"{"status": "Failure", "message": "Signature data did not match"}"#,
            );
            assert_eq!(e.kind(), kind, "{status}");
            assert!(
                e.to_string().contains("Signature data did not match"),
                "{e}"
            );
        }
    }

    #[test]
    fn auth_headers_exact_form() {
        let url = Url::parse(
            "https://app.threatconnect.com/api/v3/indicators/evil.example?fields=threatAssess",
        )
        .unwrap();
        let config = ThreatConnectConfig::with_token(vowguard_core::SecretRef::Env("T".into()));
        let p = ThreatConnectProvider::new(
            &config,
            Credentials::Hmac {
                access_id: " 12345678901234567890 ".into(),
                secret_key: SecretString::from("secret-key-for-golden\n"),
            },
        )
        .unwrap();
        let h = p.auth_headers(&url, 1_767_225_600).unwrap();
        assert_eq!(h.get("timestamp").unwrap(), "1767225600");
        assert_eq!(
            h.get("authorization").unwrap(),
            "TC 12345678901234567890:BNsvPM6EWkR5kYoiEu/CWQhCGYE0heCAtYP3aHKlQbY="
        );
        assert!(h.get("authorization").unwrap().is_sensitive());
        let p = ThreatConnectProvider::new(&config, Credentials::Token(" tok-1 ".into())).unwrap();
        let h = p.auth_headers(&url, 1).unwrap();
        assert_eq!(h.get("authorization").unwrap(), "TC-Token tok-1");
        assert!(h.get("timestamp").is_none());
    }

    #[test]
    fn bad_credentials_and_base_url_are_config_errors() {
        let config = ThreatConnectConfig::with_token(vowguard_core::SecretRef::Env("T".into()));
        let e =
            ThreatConnectProvider::new(&config, Credentials::Token("a\u{7f}b".into())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("a\u{7f}b"));
        let e = ThreatConnectProvider::new(
            &config,
            Credentials::Hmac {
                access_id: "a\nb".into(),
                secret_key: "k".into(),
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("access_id"), "{e}");
        let mut bad = config;
        bad.base_url = Some("ftp://tc.example".into());
        let e = ThreatConnectProvider::new(&bad, Credentials::Token("t".into())).unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
    }
}

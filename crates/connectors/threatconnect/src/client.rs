//! [`ThreatConnect`]: what the ThreatConnect enricher does differently from the other
//! threat-intelligence providers (the request `GET /v3/indicators/{summary}?fields=...`,
//! signed with HMAC or carrying a token, the answer parsed by `parse_indicator`); the rest
//! is [`IntelProvider`]'s.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Error, ThreatIntel};
use vowguard_enrich::{
    Indicator, IndicatorKind, IntelApi, IntelBuilder, IntelProvider, IntelVendor, ProviderLimits,
    ThreatEnricher,
};
use vowguard_http::reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName};
use vowguard_http::reqwest::{RequestBuilder, Url};
use vowguard_http::sensitive_header;

use crate::KIND;
use crate::config::{Credentials, DEFAULT_BASE_URL, DEFAULT_LIMITS};
use crate::encode::{error_reason, indicator_url, parse_indicator, summary};
use crate::sign::{authorization, path_and_query};

const TIMESTAMP: HeaderName = HeaderName::from_static("timestamp");

/// The ThreatConnect vendor: its credentials (an API token, or an Access ID and Secret Key
/// that sign each request) and the owner indicators are looked up in.
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_threatconnect::{Credentials, ThreatConnect};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let enricher = ThreatConnect::new(Credentials::Hmac {
///     access_id: "12345678901234567890".into(),
///     secret_key: SecretString::from("tc-secret-key"),
/// })
/// .owner("Example Organization")
/// .into_builder()
/// .id("tc")
/// .build()?;
/// # let _ = enricher;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ThreatConnect {
    credentials: Credentials,
    owner: Option<String>,
}

impl fmt::Debug for ThreatConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreatConnect")
            .field("credentials", &self.credentials)
            .field("owner", &self.owner)
            .finish()
    }
}

/// Builds a ThreatConnect enricher ([`ThreatConnect::into_builder`]).
pub type ThreatConnectBuilder = IntelBuilder<ThreatConnect>;
/// The ThreatConnect provider: [`IntelProvider`] with the [`ThreatConnect`] vendor.
pub type ThreatConnectProvider = IntelProvider<ThreatConnect>;
/// The ThreatConnect enricher: the provider behind its cache and limits.
pub type ThreatConnectEnricher = ThreatEnricher<ThreatConnectProvider>;

/// The current Unix time in seconds (the `Timestamp` header).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ThreatConnect {
    /// A vendor authenticating with resolved `credentials` (surrounding white space
    /// trimmed; checked at build), looking indicators up in the API user's organization.
    pub fn new(credentials: Credentials) -> Self {
        let credentials = match credentials {
            Credentials::Token(token) => {
                Credentials::Token(token.expose_secret().trim().to_owned().into())
            }
            Credentials::Hmac {
                access_id,
                secret_key,
            } => Credentials::Hmac {
                access_id: access_id.trim().to_owned(),
                secret_key: secret_key.expose_secret().trim().to_owned().into(),
            },
        };
        Self {
            credentials,
            owner: None,
        }
    }

    /// Looks indicators up in this owner (organization, community or source).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// A builder for these settings.
    pub fn into_builder(self) -> ThreatConnectBuilder {
        IntelBuilder::new(self)
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
}

impl IntelVendor for ThreatConnect {
    const KIND: &'static str = KIND;
    const NAME: &'static str = "ThreatConnect";
    const DEFAULT_BASE_URL: Option<&'static str> = Some(DEFAULT_BASE_URL);
    /// Requests are signed or carry the token in [`ThreatConnect::auth_headers`].
    const API_KEY: Option<(HeaderName, &'static str)> = None;
    const DEFAULT_LIMITS: ProviderLimits = DEFAULT_LIMITS;
    const MAX_RESPONSE_BYTES: usize = vowguard_http::MAX_RESPONSE_BYTES;

    /// The token, or the Access ID, must fit in a header; neither may be empty.
    fn validate(&self) -> Result<(), Error> {
        match &self.credentials {
            Credentials::Token(token) => {
                if token.expose_secret().is_empty() {
                    return Err(Error::config("`api_token`: is empty"));
                }
                sensitive_header(&format!("TC-Token {}", token.expose_secret())).map_err(|_| {
                    Error::config("`api_token`: contains characters not allowed in an HTTP header")
                })?;
            }
            Credentials::Hmac {
                access_id,
                secret_key,
            } => {
                if access_id.is_empty() {
                    return Err(Error::config("`access_id`: must not be empty"));
                }
                if secret_key.expose_secret().is_empty() {
                    return Err(Error::config("`secret_key`: is empty"));
                }
                sensitive_header(&format!("TC {access_id}:x"))
                    .map_err(|_| Error::config("`access_id`: not allowed in an HTTP header"))?;
            }
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<SecretString> {
        match &self.credentials {
            Credentials::Token(token) => vec![token.clone()],
            Credentials::Hmac { secret_key, .. } => vec![secret_key.clone()],
        }
    }

    /// `ThreatConnect {kind} lookup of {summary} at {origin}`; a URL's value is left out.
    fn what(&self, indicator: &Indicator, origin: &str) -> String {
        if indicator.kind == IndicatorKind::Url {
            format!("ThreatConnect url lookup at {origin}")
        } else {
            format!(
                "ThreatConnect {} lookup of {} at {origin}",
                indicator.kind,
                summary(&indicator.kind, &indicator.value)
            )
        }
    }

    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
        let summary = summary(&indicator.kind, &indicator.value);
        let url = indicator_url(api.base(), &summary, self.owner.as_deref())?;
        let headers = self.auth_headers(&url, unix_now())?;
        Ok(api
            .client()
            .get(url)
            .headers(headers)
            .header(ACCEPT, "application/json"))
    }

    /// ThreatConnect's `message`.
    fn error_reason(&self, body: &str) -> Option<String> {
        Some(error_reason(body))
    }

    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        parse_indicator(body, &indicator.value)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vowguard_core::ErrorKind;
    use vowguard_enrich::{QuotaPause, answer_error};
    use vowguard_http::reqwest::StatusCode;
    use vowguard_http::reqwest::header::HeaderValue;
    use vowguard_http::{Answer, Exchange};

    use super::*;

    fn response_error(status: StatusCode, headers: &HeaderMap, what: &str, body: &str) -> Error {
        let answer = Answer {
            status,
            headers: headers.clone(),
            body: body.to_owned(),
            truncated: false,
        };
        let exchange = Exchange::new().with_default_retry_after(QuotaPause::DEFAULT_PAUSE);
        let vendor = ThreatConnect::new(Credentials::Token("t".into()));
        answer_error(&vendor, &exchange, &answer, what)
    }

    #[test]
    fn maps_statuses() {
        let none = HeaderMap::new();
        let e = response_error(StatusCode::TOO_MANY_REQUESTS, &none, "lookup", "");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(QuotaPause::DEFAULT_PAUSE));
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
        let v = ThreatConnect::new(Credentials::Hmac {
            access_id: " 12345678901234567890 ".into(),
            secret_key: SecretString::from("secret-key-for-golden\n"),
        });
        let h = v.auth_headers(&url, 1_767_225_600).unwrap();
        assert_eq!(h.get("timestamp").unwrap(), "1767225600");
        assert_eq!(
            h.get("authorization").unwrap(),
            "TC 12345678901234567890:BNsvPM6EWkR5kYoiEu/CWQhCGYE0heCAtYP3aHKlQbY="
        );
        assert!(h.get("authorization").unwrap().is_sensitive());
        let v = ThreatConnect::new(Credentials::Token(" tok-1 ".into()));
        let h = v.auth_headers(&url, 1).unwrap();
        assert_eq!(h.get("authorization").unwrap(), "TC-Token tok-1");
        assert!(h.get("timestamp").is_none());
    }

    #[test]
    fn bad_credentials_and_base_url_are_config_errors() {
        let e = ThreatConnect::new(Credentials::Token("a\u{7f}b".into()))
            .into_builder()
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("api_token"), "{e}");
        assert!(!e.to_string().contains("a\u{7f}b"));
        let e = ThreatConnect::new(Credentials::Hmac {
            access_id: "a\nb".into(),
            secret_key: "k".into(),
        })
        .into_builder()
        .build()
        .unwrap_err();
        assert!(e.to_string().contains("access_id"), "{e}");
        let e = ThreatConnect::new(Credentials::Token("t".into()))
            .into_builder()
            .base_url("ftp://tc.example")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
    }
}

//! [`VirusTotal`]: what the VirusTotal enricher does differently from the other
//! threat-intelligence providers (the request `GET /api/v3/{collection}/{id}`, the key in
//! `x-apikey`, a 404 `NotFoundError` as unknown, the answer parsed by `parse_object`); the
//! rest is [`IntelProvider`]'s.

use vowguard_core::{Error, ThreatIntel};
use vowguard_enrich::{
    Indicator, IndicatorKind, IntelApi, IntelBuilder, IntelProvider, IntelVendor, ProviderLimits,
    ThreatEnricher,
};
use vowguard_http::Answer;
use vowguard_http::reqwest::header::HeaderName;
use vowguard_http::reqwest::{RequestBuilder, StatusCode};

use crate::KIND;
use crate::config::{DEFAULT_BASE_URL, DEFAULT_LIMITS};
use crate::encode::{
    Collection, error_code, error_reason, is_file_hash, object_url, parse_object, url_id,
};

/// The VirusTotal vendor: no settings of its own beyond the shared ones of
/// [`IntelBuilder`].
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_virustotal::VirusTotal;
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let enricher = VirusTotal::builder()
///     .api_key(SecretString::from("vt-api-key"))
///     .id("virustotal")
///     .build()?;
/// # let _ = enricher;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VirusTotal;

/// Builds a VirusTotal enricher ([`VirusTotal::builder`]).
pub type VirusTotalBuilder = IntelBuilder<VirusTotal>;
/// The VirusTotal provider: [`IntelProvider`] with the [`VirusTotal`] vendor.
pub type VirusTotalProvider = IntelProvider<VirusTotal>;
/// The VirusTotal enricher: the provider behind its cache and limits.
pub type VirusTotalEnricher = ThreatEnricher<VirusTotalProvider>;

impl VirusTotal {
    /// A builder with every default; set at least [`IntelBuilder::api_key`].
    pub fn builder() -> VirusTotalBuilder {
        IntelBuilder::new(Self)
    }
}

impl IntelVendor for VirusTotal {
    const KIND: &'static str = KIND;
    const NAME: &'static str = "VirusTotal";
    const DEFAULT_BASE_URL: Option<&'static str> = Some(DEFAULT_BASE_URL);
    const API_KEY: Option<(HeaderName, &'static str)> =
        Some((HeaderName::from_static("x-apikey"), "api_key"));
    const DEFAULT_LIMITS: ProviderLimits = DEFAULT_LIMITS;

    /// `VirusTotal lookup of {kind} {value} at {origin}`; a URL's value is left out.
    fn what(&self, indicator: &Indicator, origin: &str) -> String {
        if indicator.kind == IndicatorKind::Url {
            format!("VirusTotal URL lookup at {origin}")
        } else {
            format!(
                "VirusTotal lookup of {} {} at {origin}",
                indicator.kind, indicator.value
            )
        }
    }

    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
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
        Ok(api.get(object_url(api.base(), collection, &id)?))
    }

    /// VirusTotal's `code: message`.
    fn error_reason(&self, body: &str) -> Option<String> {
        Some(error_reason(body))
    }

    /// A 404 `NotFoundError`; a 404 without it (a wrong `base_url`) is an error.
    fn unknown(&self, answer: &Answer) -> bool {
        answer.status == StatusCode::NOT_FOUND
            && error_code(&answer.body).as_deref() == Some("NotFoundError")
    }

    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        parse_object(body, &indicator.value)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vowguard_core::ErrorKind;
    use vowguard_enrich::{QuotaPause, answer_error};
    use vowguard_http::Exchange;
    use vowguard_http::reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    fn answer(status: StatusCode, headers: &HeaderMap, body: &str) -> Answer {
        Answer {
            status,
            headers: headers.clone(),
            body: body.to_owned(),
            truncated: false,
        }
    }

    fn failed(status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
        let answer = answer(status, headers, body);
        assert!(!VirusTotal.unknown(&answer), "expected an error");
        let exchange = Exchange::new().with_default_retry_after(QuotaPause::DEFAULT_PAUSE);
        answer_error(&VirusTotal, &exchange, &answer, "lookup")
    }

    #[test]
    fn maps_answers() {
        let none = HeaderMap::new();
        let not_found = r#"{"error":{"code":"NotFoundError","message":"Resource not found."}}"#;
        assert!(VirusTotal.unknown(&answer(StatusCode::NOT_FOUND, &none, not_found)));
        let e = failed(StatusCode::NOT_FOUND, &none, "<html>Not Found</html>");
        assert_eq!(e.kind(), ErrorKind::Rejected);

        let quota = r#"{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}"#;
        let e = failed(StatusCode::TOO_MANY_REQUESTS, &none, quota);
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(QuotaPause::DEFAULT_PAUSE));
        assert!(
            e.to_string().contains("QuotaExceededError: Quota exceeded"),
            "{e}"
        );

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("5"));
        let e = failed(StatusCode::TOO_MANY_REQUESTS, &h, quota);
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
            let e = failed(StatusCode::from_u16(status).unwrap(), &none, &body);
            assert_eq!(e.kind(), kind, "{status} {code}");
            assert!(e.to_string().contains(code), "{e}");
        }
    }
}

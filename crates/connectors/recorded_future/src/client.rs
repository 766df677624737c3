//! [`RecordedFuture`]: what the Recorded Future enricher does differently from the other
//! threat-intelligence providers (the request `GET /v2/{type}/{value}?fields=...`, the token
//! in `X-RFToken`, the answer parsed by `parse_lookup`); the rest is [`IntelProvider`]'s.

use vowguard_core::{Error, ThreatIntel};
use vowguard_enrich::{
    Indicator, IndicatorKind, IntelApi, IntelBuilder, IntelProvider, IntelVendor, ProviderLimits,
    ThreatEnricher,
};
use vowguard_http::reqwest::RequestBuilder;
use vowguard_http::reqwest::header::HeaderName;

use crate::KIND;
use crate::config::{DEFAULT_BASE_URL, DEFAULT_LIMITS};
use crate::encode::{RfType, error_reason, lookup_url, parse_lookup};

/// The Recorded Future vendor: no settings of its own beyond the shared ones of
/// [`IntelBuilder`].
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_recorded_future::RecordedFuture;
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let enricher = RecordedFuture::builder()
///     .api_key(SecretString::from("rf-api-token"))
///     .id("rf")
///     .build()?;
/// # let _ = enricher;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedFuture;

/// Builds a Recorded Future enricher ([`RecordedFuture::builder`]); its
/// [`api_key`](IntelBuilder::api_key) is the Connect API token.
pub type RecordedFutureBuilder = IntelBuilder<RecordedFuture>;
/// The Recorded Future provider: [`IntelProvider`] with the [`RecordedFuture`] vendor.
pub type RecordedFutureProvider = IntelProvider<RecordedFuture>;
/// The Recorded Future enricher: the provider behind its cache and limits.
pub type RecordedFutureEnricher = ThreatEnricher<RecordedFutureProvider>;

impl RecordedFuture {
    /// A builder with every default; set at least the token ([`IntelBuilder::api_key`]).
    pub fn builder() -> RecordedFutureBuilder {
        IntelBuilder::new(Self)
    }
}

fn rf_type(kind: &IndicatorKind) -> RfType {
    match kind {
        IndicatorKind::Ip => RfType::Ip,
        IndicatorKind::Domain => RfType::Domain,
        IndicatorKind::Url => RfType::Url,
        IndicatorKind::FileHash => RfType::Hash,
    }
}

impl IntelVendor for RecordedFuture {
    const KIND: &'static str = KIND;
    const NAME: &'static str = "Recorded Future";
    const DEFAULT_BASE_URL: Option<&'static str> = Some(DEFAULT_BASE_URL);
    const API_KEY: Option<(HeaderName, &'static str)> =
        Some((HeaderName::from_static("x-rftoken"), "api_token"));
    const DEFAULT_LIMITS: ProviderLimits = DEFAULT_LIMITS;
    const MAX_RESPONSE_BYTES: usize = vowguard_http::MAX_RESPONSE_BYTES;

    /// `Recorded Future {type} lookup of {value} at {origin}`; a URL's value is left out.
    fn what(&self, indicator: &Indicator, origin: &str) -> String {
        match rf_type(&indicator.kind) {
            RfType::Url => format!("Recorded Future url lookup at {origin}"),
            kind => format!(
                "Recorded Future {} lookup of {} at {origin}",
                kind.as_str(),
                indicator.value
            ),
        }
    }

    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
        let url = lookup_url(api.base(), rf_type(&indicator.kind), &indicator.value)?;
        Ok(api.get(url))
    }

    /// Recorded Future's `error.message`.
    fn error_reason(&self, body: &str) -> Option<String> {
        Some(error_reason(body))
    }

    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        parse_lookup(body, &indicator.value)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vowguard_core::ErrorKind;
    use vowguard_enrich::{QuotaPause, answer_error};
    use vowguard_http::reqwest::StatusCode;
    use vowguard_http::reqwest::header::{HeaderMap, HeaderValue};
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
        answer_error(&RecordedFuture, &exchange, &answer, what)
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
                r#"{"error": {"status": 0, "message": "Invalid token"}}"#,
            );
            assert_eq!(e.kind(), kind, "{status}");
            assert!(e.to_string().contains("Invalid token"), "{e}");
        }
    }
}

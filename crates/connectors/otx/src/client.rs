//! [`Otx`]: what the OTX enricher does differently from the other threat-intelligence
//! providers (the request `GET /api/v1/indicators/{type}/{value}/general`, the API key in
//! `X-OTX-API-KEY`, the answer parsed by `parse_general`); the rest is
//! [`IntelProvider`]'s.

use std::net::IpAddr;

use vowguard_core::{Error, ThreatIntel};
use vowguard_enrich::{
    Indicator, IndicatorKind, IntelApi, IntelBuilder, IntelProvider, IntelVendor, ProviderLimits,
    ThreatEnricher,
};
use vowguard_http::reqwest::RequestBuilder;
use vowguard_http::reqwest::header::HeaderName;

use crate::KIND;
use crate::config::{DEFAULT_BASE_URL, DEFAULT_LIMITS};
use crate::encode::{OtxType, error_reason, general_url, parse_general};

/// The OTX vendor: no settings of its own beyond the shared ones of [`IntelBuilder`].
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_otx::Otx;
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let enricher = Otx::builder()
///     .api_key(SecretString::from("otx-api-key"))
///     .id("otx")
///     .build()?;
/// # let _ = enricher;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Otx;

/// Builds an OTX enricher ([`Otx::builder`]).
pub type OtxBuilder = IntelBuilder<Otx>;
/// The OTX provider: [`IntelProvider`] with the [`Otx`] vendor.
pub type OtxProvider = IntelProvider<Otx>;
/// The OTX enricher: the provider behind its cache and limits.
pub type OtxEnricher = ThreatEnricher<OtxProvider>;

impl Otx {
    /// A builder with every default; set at least [`IntelBuilder::api_key`].
    pub fn builder() -> OtxBuilder {
        IntelBuilder::new(Self)
    }

    fn otx_type(indicator: &Indicator) -> Result<OtxType, Error> {
        Ok(match indicator.kind {
            IndicatorKind::Ip => {
                let ip: IpAddr = indicator.value.trim().parse().map_err(|_| {
                    Error::invalid_input(format!(
                        "OTX lookup: {:?} is not an IP address",
                        indicator.value
                    ))
                })?;
                OtxType::for_ip(ip)
            }
            IndicatorKind::Domain => OtxType::for_domain(&indicator.value),
            IndicatorKind::Url => OtxType::Url,
            IndicatorKind::FileHash => OtxType::File,
        })
    }
}

impl IntelVendor for Otx {
    const KIND: &'static str = KIND;
    const NAME: &'static str = "OTX";
    const DEFAULT_BASE_URL: Option<&'static str> = Some(DEFAULT_BASE_URL);
    const API_KEY: Option<(HeaderName, &'static str)> =
        Some((HeaderName::from_static("x-otx-api-key"), "api_key"));
    const DEFAULT_LIMITS: ProviderLimits = DEFAULT_LIMITS;

    /// `OTX {type} lookup of {value} at {origin}`; a URL's value is left out.
    fn what(&self, indicator: &Indicator, origin: &str) -> String {
        if indicator.kind == IndicatorKind::Url {
            return format!("OTX url lookup at {origin}");
        }
        match Self::otx_type(indicator) {
            Ok(kind) => format!(
                "OTX {} lookup of {} at {origin}",
                kind.as_str(),
                indicator.value
            ),
            Err(_) => format!("OTX {} lookup at {origin}", indicator.kind),
        }
    }

    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
        let kind = Self::otx_type(indicator)?;
        Ok(api.get(general_url(api.base(), kind, &indicator.value)?))
    }

    /// OTX's `detail`.
    fn error_reason(&self, body: &str) -> Option<String> {
        Some(error_reason(body))
    }

    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        parse_general(body, &indicator.value)
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
        answer_error(&Otx, &exchange, &answer, what)
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
            (502, ErrorKind::Unavailable),
        ] {
            let e = response_error(
                StatusCode::from_u16(status).unwrap(),
                &none,
                "lookup",
                r#"{"detail": "Invalid API key"}"#,
            );
            assert_eq!(e.kind(), kind, "{status}");
            assert!(e.to_string().contains("Invalid API key"), "{e}");
        }
    }
}

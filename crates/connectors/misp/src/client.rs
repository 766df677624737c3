//! [`Misp`]: what the MISP enricher does differently from the other threat-intelligence
//! providers (a `POST /attributes/restSearch` per indicator, the key in `Authorization`,
//! "Nothing found" 404s as unknown, sightings after a hit); the rest is
//! [`IntelProvider`]'s.

use std::time::Duration;

use vowguard_core::{Error, ThreatIntel};
use vowguard_enrich::{
    Indicator, IntelApi, IntelBuilder, IntelProvider, IntelVendor, ProviderLimits, ThreatEnricher,
};
use vowguard_http::Answer;
use vowguard_http::reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName};
use vowguard_http::reqwest::{RequestBuilder, StatusCode, Url};

use crate::KIND;
use crate::config::DEFAULT_LIMITS;
use crate::encode::{intel_from_attributes, parse_attributes, search_body, sighting_body};

/// The MISP vendor and its settings: which attributes count and whether hits are
/// reported back as sightings.
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_misp::Misp;
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let enricher = Misp::default()
///     .to_ids_only(true)
///     .report_sightings(true)
///     .into_builder()
///     .base_url("https://misp.example.org")
///     .api_key(SecretString::from("misp-automation-key"))
///     .id("intel")
///     .build()?;
/// # let _ = enricher;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Misp {
    to_ids_only: bool,
    benign_tags: Vec<String>,
    report_sightings: bool,
}

impl Default for Misp {
    /// Every attribute counts, `false-positive` marks a known false positive, no
    /// sightings.
    fn default() -> Self {
        Self {
            to_ids_only: false,
            benign_tags: vec!["false-positive".to_owned()],
            report_sightings: false,
        }
    }
}

/// Builds a MISP enricher ([`Misp::builder`]); its base URL (the `url` key) is required.
pub type MispBuilder = IntelBuilder<Misp>;
/// The MISP provider: [`IntelProvider`] with the [`Misp`] vendor.
pub type MispProvider = IntelProvider<Misp>;
/// The MISP enricher: the provider behind its cache and limits.
pub type MispEnricher = ThreatEnricher<MispProvider>;

impl Misp {
    /// A builder with the default settings; set at least [`IntelBuilder::base_url`] and
    /// [`IntelBuilder::api_key`].
    pub fn builder() -> MispBuilder {
        IntelBuilder::new(Self::default())
    }

    /// Ask MISP only for attributes flagged `to_ids`.
    pub fn to_ids_only(mut self, yes: bool) -> Self {
        self.to_ids_only = yes;
        self
    }

    /// Tags (case-insensitive) that mark an attribute as a known false positive.
    pub fn benign_tags(mut self, tags: Vec<String>) -> Self {
        self.benign_tags = tags;
        self
    }

    /// After a hit, report a sighting (`POST /sightings/add`), fire-and-forget.
    pub fn report_sightings(mut self, yes: bool) -> Self {
        self.report_sightings = yes;
        self
    }

    /// A builder for these settings.
    pub fn into_builder(self) -> MispBuilder {
        IntelBuilder::new(self)
    }
}

fn endpoint(base: &Url, path: &str) -> Result<Url, Error> {
    vowguard_http::parse_url(
        "url",
        &format!("{}/{path}", base.as_str().trim_end_matches('/')),
    )
}

impl IntelVendor for Misp {
    const KIND: &'static str = KIND;
    const NAME: &'static str = "MISP";
    /// A MISP instance is your own: no default.
    const DEFAULT_BASE_URL: Option<&'static str> = None;
    const BASE_URL_FIELD: &'static str = "url";
    const API_KEY: Option<(HeaderName, &'static str)> = Some((AUTHORIZATION, "api_key"));
    const DEFAULT_LIMITS: ProviderLimits = DEFAULT_LIMITS;
    /// MISP sends no quota; a 429 without `Retry-After` pauses the default 60 s.
    const DEFAULT_RETRY_AFTER: Option<Duration> = None;

    /// `MISP attribute search at {origin}` (the indicator is in the request body, not the
    /// message).
    fn what(&self, _indicator: &Indicator, origin: &str) -> String {
        format!("MISP attribute search at {origin}")
    }

    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
        Ok(api
            .post(endpoint(api.base(), "attributes/restSearch")?)
            .header(CONTENT_TYPE, "application/json")
            .body(search_body(indicator, self.to_ids_only)))
    }

    /// The body as it is (MISP's errors are short JSON documents).
    fn error_reason(&self, _body: &str) -> Option<String> {
        None
    }

    /// 404 "Nothing found" / "No matches" (older MISP) is no attributes.
    fn unknown(&self, answer: &Answer) -> bool {
        answer.status == StatusCode::NOT_FOUND
            && (answer.body.contains("Nothing found") || answer.body.contains("No matches"))
    }

    /// Malformed JSON is rejected.
    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let attributes = parse_attributes(body.as_bytes())?;
        Ok(intel_from_attributes(
            &attributes,
            indicator,
            &self.benign_tags,
        ))
    }

    /// With `report_sightings`, posts a sighting in the background; its failure is logged
    /// at debug level (redacted) and never fails the enrichment.
    fn after_hit(&self, api: &IntelApi, indicator: &Indicator) {
        if !self.report_sightings {
            return;
        }
        let Ok(url) = endpoint(api.base(), "sightings/add") else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request = api
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(sighting_body(indicator));
        let exchange = api.exchange().clone();
        let what = format!("MISP sighting at {}", api.origin());
        let kind = indicator.kind.clone();
        runtime.spawn(async move {
            match exchange.send_ok(request, &what, |_| None).await {
                Ok(_) => tracing::debug!(indicator = %kind, "MISP sighting reported"),
                Err(error) => {
                    tracing::debug!(indicator = %kind, error = %error, "MISP sighting failed");
                }
            }
        });
    }
}

//! The MISP calls: attribute search and sightings.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Error, Redactor, ThreatIntel};
use vowguard_enrich::{Indicator, IndicatorKind, ReputationProvider, ThreatEnricher};
use vowguard_http::reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use vowguard_http::reqwest::{Client, StatusCode, Url};

use crate::config::MispConfig;
use crate::encode::{
    PROVIDER, intel_from_attributes, parse_attributes, search_body, sighting_body,
};

/// The MISP enricher: [`MispProvider`] behind the shared cache and limits.
pub type MispEnricher = ThreatEnricher<MispProvider>;

/// Looks indicators up in MISP with `POST /attributes/restSearch`.
pub struct MispProvider {
    client: Client,
    search_url: Url,
    sightings_url: Url,
    origin: String,
    headers: HeaderMap,
    redactor: Redactor,
    to_ids_only: bool,
    benign_tags: Vec<String>,
    report_sightings: bool,
}

impl fmt::Debug for MispProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MispProvider")
            .field("origin", &self.origin)
            .field("to_ids_only", &self.to_ids_only)
            .field("benign_tags", &self.benign_tags)
            .field("report_sightings", &self.report_sightings)
            .finish_non_exhaustive()
    }
}

fn endpoint(base: &str, path: &str) -> Result<Url, Error> {
    vowguard_http::parse_url(
        "url",
        &format!("{}/{path}", base.trim().trim_end_matches('/')),
    )
}

impl MispProvider {
    /// A provider for `config` with the resolved `api_key`.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "ownership of the secret moves into the provider (zeroized on drop)"
    )]
    pub fn new(config: &MispConfig, api_key: SecretString) -> Result<Self, Error> {
        let search_url = endpoint(&config.url, "attributes/restSearch")?;
        let sightings_url = endpoint(&config.url, "sightings/add")?;
        if api_key.expose_secret().trim().is_empty() {
            return Err(Error::config("`api_key`: the MISP API key is empty"));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            vowguard_http::sensitive_header(api_key.expose_secret().trim())?,
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Self {
            client: vowguard_http::build_client(&config.http)?,
            origin: vowguard_http::origin(&search_url),
            search_url,
            sightings_url,
            headers,
            redactor: Redactor::new().secret(&api_key),
            to_ids_only: config.to_ids_only,
            benign_tags: config.benign_tags.clone(),
            report_sightings: config.report_sightings,
        })
    }

    /// The whole enricher: this provider with the config's cache and limits.
    pub fn enricher(config: &MispConfig, api_key: SecretString) -> Result<MispEnricher, Error> {
        let provider = Self::new(config, api_key)?;
        Ok(ThreatEnricher::new(
            provider,
            config.cache,
            config.provider_limits(),
        ))
    }

    /// Maps one restSearch answer onto attributes or an [`Error`]: 2xx parsed (malformed
    /// JSON rejected), 404 "Nothing found" / "No matches" (older MISP) is no attributes,
    /// 429/5xx/408 retryable with `Retry-After`, 401/403 unauthorized, other 4xx rejected.
    fn interpret(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<crate::encode::Attribute>, Error> {
        let text = self
            .redactor
            .redact(&String::from_utf8_lossy(body))
            .into_owned();
        let what = format!("MISP attribute search at {}", self.origin);
        if status == StatusCode::NOT_FOUND
            && (text.contains("Nothing found") || text.contains("No matches"))
        {
            return Ok(Vec::new());
        }
        vowguard_http::classify_status(status, headers, &what, &text)?;
        parse_attributes(body).map_err(|e| self.redactor.error(e))
    }

    fn spawn_sighting(&self, indicator: &Indicator) {
        let request = self
            .client
            .post(self.sightings_url.clone())
            .headers(self.headers.clone())
            .body(sighting_body(indicator));
        let origin = self.origin.clone();
        let kind = indicator.kind.clone();
        let redactor = self.redactor.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let what = format!("MISP sighting at {origin}");
            let result = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.text().await.unwrap_or_default();
                    vowguard_http::classify_status(status, &headers, &what, &body)
                }
                Err(e) => Err(vowguard_http::transport_error(e, &what)),
            };
            match redactor.result(result) {
                Ok(()) => tracing::debug!(indicator = %kind, "MISP sighting reported"),
                Err(error) => {
                    tracing::debug!(indicator = %kind, error = %error, "MISP sighting failed");
                }
            }
        });
    }
}

#[async_trait]
impl ReputationProvider for MispProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn supports(&self, _kind: &IndicatorKind) -> bool {
        true
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let what = format!("MISP attribute search at {}", self.origin);
        let response = self
            .client
            .post(self.search_url.clone())
            .headers(self.headers.clone())
            .body(search_body(indicator, self.to_ids_only))
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let attributes = self.interpret(status, &headers, &body)?;
        let intel = intel_from_attributes(&attributes, indicator, &self.benign_tags);
        if intel.is_some() && self.report_sightings {
            self.spawn_sighting(indicator);
        }
        Ok(intel)
    }
}

/// Builds the enricher for the registry.
pub(crate) fn build_enricher(
    config: &MispConfig,
    api_key: SecretString,
) -> Result<Arc<MispEnricher>, Error> {
    MispProvider::enricher(config, api_key).map(Arc::new)
}

//! The `[enrichers.<id>]` table of a `type = "misp"` enricher.

use secrecy::SecretString;
use serde::Deserialize;
use vowguard_core::SecretRef;
use vowguard_enrich::{CacheOptions, LimitsConfig, ProviderLimits};
use vowguard_http::HttpOptions;

use crate::client::{Misp, MispBuilder};

/// The MISP enricher's default limits: 2000 ms per lookup, 8 concurrent lookups, no rate
/// limit (a MISP instance is usually your own).
pub const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(2_000, 8, None);

/// Configuration of the MISP enricher.
///
/// ```toml
/// [enrichers.misp]
/// type = "misp"
/// url = "https://misp.example.org"
/// api_key = { env = "MISP_API_KEY" }
/// to_ids_only = false
/// benign_tags = ["false-positive"]
/// report_sightings = false
/// cache = { ttl = "1h", negative_ttl = "10m", max_entries = 100000 }
/// limits = { timeout = "2s", concurrency = 8 }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MispConfig {
    /// Base URL of the MISP instance, e.g. `https://misp.example.org` (a path prefix is
    /// kept; tests point it at a mock).
    pub url: String,
    /// The MISP automation key (sent as `Authorization: <key>`).
    pub api_key: SecretRef,
    /// Ask MISP only for attributes flagged `to_ids` (adds `"to_ids": true` to the search).
    /// Default false: context attributes count too, as Suspicious; the verdict is Malicious
    /// only when an attribute is flagged `to_ids`.
    #[serde(default)]
    pub to_ids_only: bool,
    /// Tags (case-insensitive) that mark an attribute as a known false positive; an
    /// indicator whose attributes all carry one is Benign. Default `["false-positive"]`.
    #[serde(default = "default_benign_tags")]
    pub benign_tags: Vec<String>,
    /// After a hit, report a sighting (`POST /sightings/add`, source `vowguard`),
    /// fire-and-forget. Default false.
    #[serde(default)]
    pub report_sightings: bool,
    /// Lookup cache (defaults: 1 h for hits, 10 min for misses, 100 000 entries).
    #[serde(default)]
    pub cache: CacheOptions,
    /// Overrides of [`DEFAULT_LIMITS`] (`timeout`, `concurrency`, `rate`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_benign_tags() -> Vec<String> {
    vec!["false-positive".to_owned()]
}

impl MispConfig {
    /// A config for `url` and `api_key` with every other key at its default.
    pub fn new(url: impl Into<String>, api_key: SecretRef) -> Self {
        Self {
            url: url.into(),
            api_key,
            to_ids_only: false,
            benign_tags: default_benign_tags(),
            report_sightings: false,
            cache: CacheOptions::default(),
            limits: LimitsConfig::default(),
            http: HttpOptions::default(),
        }
    }

    /// The effective per-lookup limits.
    pub fn provider_limits(&self) -> ProviderLimits {
        self.limits.resolve(DEFAULT_LIMITS)
    }

    /// The builder this table describes, with `api_key` the resolved `api_key`.
    pub fn into_builder(self, api_key: SecretString) -> MispBuilder {
        let limits = self.provider_limits();
        Misp::default()
            .to_ids_only(self.to_ids_only)
            .benign_tags(self.benign_tags)
            .report_sightings(self.report_sightings)
            .into_builder()
            .base_url(self.url)
            .api_key(api_key)
            .cache(self.cache)
            .limits(limits)
            .http(self.http)
    }
}

//! The `[enrichers.<id>]` table of a `type = "otx"` enricher.

use secrecy::SecretString;
use serde::Deserialize;
use vowguard_core::{RateLimit, SecretRef};
use vowguard_enrich::{CacheOptions, LimitsConfig, ProviderLimits};
use vowguard_http::HttpOptions;

use crate::client::{Otx, OtxBuilder};

/// Where the OTX API lives unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://otx.alienvault.com";

/// Default limits: 3000 ms per lookup, 4 concurrent lookups, 10 lookups a second with
/// bursts of 20.
///
/// OTX does not document a per-key rate for indicator lookups, so this is a moderate
/// choice, not a vendor figure; a 429 from OTX pauses lookups (see the crate docs).
/// The cache (1 h per indicator) keeps repeated indicators free.
pub const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(
    3_000,
    4,
    Some(RateLimit {
        per_second: 10.0,
        burst: 20,
    }),
);

/// Configuration of the AlienVault OTX enricher.
///
/// ```toml
/// [enrichers.otx]
/// type = "otx"
/// api_key = { env = "OTX_API_KEY" }
/// # base_url = "https://otx.alienvault.com"
/// # cache = { ttl = "1h", negative_ttl = "10m", max_entries = 100000 }
/// # limits = { timeout = "3s", concurrency = 4, rate = { per_second = 10.0, burst = 20 } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtxConfig {
    /// API base URL, default [`DEFAULT_BASE_URL`] (tests point it at a mock).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The OTX API key, sent in the `X-OTX-API-KEY` header.
    pub api_key: SecretRef,
    /// Answer cache (known answers 1 h, unknown answers (no pulses, 404) 10 min by default).
    #[serde(default)]
    pub cache: CacheOptions,
    /// Overrides of [`DEFAULT_LIMITS`], key by key.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

impl OtxConfig {
    /// A config with every default and `api_key`.
    pub fn new(api_key: SecretRef) -> Self {
        Self {
            base_url: None,
            api_key,
            cache: CacheOptions::default(),
            limits: LimitsConfig::default(),
            http: HttpOptions::default(),
        }
    }

    /// The limits in force: [`DEFAULT_LIMITS`] with the configured overrides.
    pub fn limits(&self) -> ProviderLimits {
        self.limits.resolve(DEFAULT_LIMITS)
    }

    /// The builder this table describes, with `api_key` the resolved `api_key`.
    pub fn into_builder(self, api_key: SecretString) -> OtxBuilder {
        let limits = self.limits();
        let builder = Otx::builder()
            .api_key(api_key)
            .cache(self.cache)
            .limits(limits)
            .http(self.http);
        match self.base_url {
            Some(url) => builder.base_url(url),
            None => builder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: OtxConfig = toml::from_str("api_key = { env = \"K\" }").unwrap();
        assert_eq!(c, OtxConfig::new(SecretRef::Env("K".into())));
        assert_eq!(c.limits(), DEFAULT_LIMITS);
        let c: OtxConfig = toml::from_str(
            "api_key = { env = \"K\" }\nlimits = { concurrency = 8, rate = { per_second = 500.0, burst = 50 } }",
        )
        .unwrap();
        let limits = c.limits();
        assert_eq!(limits.timeout, std::time::Duration::from_secs(3));
        assert_eq!(limits.concurrency, 8);
        assert_eq!(limits.rate.unwrap().burst, 50);
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("api_key = { env = \"K\" }\nurl = \"x\"", "url"),
            ("api_key = { env = \"K\" }\nlimits = { rps = 1 }", "rps"),
            (
                "api_key = { env = \"K\" }\nhttp = { timeout_s = 1 }",
                "timeout_s",
            ),
        ] {
            let err = toml::from_str::<OtxConfig>(text).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}

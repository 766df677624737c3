//! The `[enrichers.<id>]` table of a `type = "virustotal"` enricher.

use secrecy::SecretString;
use serde::Deserialize;
use vowguard_core::{RateLimit, SecretRef};
use vowguard_enrich::{CacheOptions, LimitsConfig, ProviderLimits};
use vowguard_http::HttpOptions;

use crate::client::{VirusTotal, VirusTotalBuilder};

/// Where the VirusTotal API lives unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://www.virustotal.com";

/// Default limits: 3000 ms per lookup, 2 concurrent lookups, 4 lookups a minute with
/// bursts of 4 (the public API's quota).
///
/// Lookups beyond the quota wait for a token. The pipeline bounds every enricher with
/// [`Enricher::timeout`](vowguard_core::Enricher::timeout), so during a burst the events
/// whose lookup would wait too long are marked "not enriched by virustotal" and go on
/// undelayed, rather than queueing behind the quota: that is intended. The cache (1 h per
/// indicator) keeps repeated indicators free. Raise `limits.rate` for a premium key.
pub const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(
    3_000,
    2,
    Some(RateLimit {
        per_second: 4.0 / 60.0,
        burst: 4,
    }),
);

/// Configuration of the VirusTotal enricher.
///
/// ```toml
/// [enrichers.virustotal]
/// type = "virustotal"
/// api_key = { env = "VT_API_KEY" }
/// # base_url = "https://www.virustotal.com"
/// # cache = { ttl = "1h", negative_ttl = "10m", max_entries = 100000 }
/// # limits = { timeout = "3s", concurrency = 2, rate = { per_second = 0.0667, burst = 4 } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VirusTotalConfig {
    /// API base URL, default [`DEFAULT_BASE_URL`] (tests point it at a mock).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API key, sent in the `x-apikey` header.
    pub api_key: SecretRef,
    /// Answer cache (known answers 1 h, unknown (404) answers 10 min by default).
    #[serde(default)]
    pub cache: CacheOptions,
    /// Overrides of [`DEFAULT_LIMITS`], key by key.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

impl VirusTotalConfig {
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
    pub fn into_builder(self, api_key: SecretString) -> VirusTotalBuilder {
        let limits = self.limits();
        let builder = VirusTotal::builder()
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
        let c: VirusTotalConfig = toml::from_str("api_key = { env = \"K\" }").unwrap();
        assert_eq!(c, VirusTotalConfig::new(SecretRef::Env("K".into())));
        assert_eq!(c.limits(), DEFAULT_LIMITS);
        let c: VirusTotalConfig = toml::from_str(
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
            let err = toml::from_str::<VirusTotalConfig>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}

//! The `[enrichers.<id>]` table of a `type = "abuseipdb"` enricher.

use secrecy::SecretString;
use serde::Deserialize;
use vowguard_core::{RateLimit, SecretRef};
use vowguard_enrich::{CacheOptions, LimitsConfig, ProviderLimits};
use vowguard_http::HttpOptions;

use crate::client::{AbuseIpdb, AbuseIpdbBuilder};
use crate::encode::MAX_AGE_IN_DAYS;

/// Where the AbuseIPDB API lives unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.abuseipdb.com";

/// Default limits: 2000 ms per lookup, 4 concurrent lookups, 1 lookup/s with bursts of 10.
///
/// The free plan allows 1,000 checks a day (about 0.0116/s). A rate that low would hold
/// every lookup for minutes, so the default only smooths bursts; the cache (one lookup per
/// address per hour) keeps usage down, and AbuseIPDB's own 429 + `Retry-After` pauses
/// lookups when the daily quota runs out. Set `limits.rate` to match a paid plan.
pub const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(
    2_000,
    4,
    Some(RateLimit {
        per_second: 1.0,
        burst: 10,
    }),
);

/// Configuration of the AbuseIPDB enricher.
///
/// ```toml
/// [enrichers.abuseipdb]
/// type = "abuseipdb"
/// api_key = { env = "ABUSEIPDB_API_KEY" }
/// # base_url = "https://api.abuseipdb.com"
/// # max_age_in_days = 90
/// # cache = { ttl = "1h", negative_ttl = "10m", max_entries = 100000 }
/// # limits = { timeout = "2s", concurrency = 4, rate = { per_second = 1.0, burst = 10 } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AbuseIpdbConfig {
    /// API base URL, default [`DEFAULT_BASE_URL`] (tests point it at a mock).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The APIv2 key, sent in the `Key` header.
    pub api_key: SecretRef,
    /// Only reports from the last this many days count (`maxAgeInDays`, 1..=365). Default 90.
    #[serde(default = "default_max_age")]
    pub max_age_in_days: u32,
    /// Answer cache (known answers 1 h, "not public" answers 10 min by default).
    #[serde(default)]
    pub cache: CacheOptions,
    /// Overrides of [`DEFAULT_LIMITS`], key by key.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_max_age() -> u32 {
    MAX_AGE_IN_DAYS
}

impl AbuseIpdbConfig {
    /// A config with every default and `api_key`.
    pub fn new(api_key: SecretRef) -> Self {
        Self {
            base_url: None,
            api_key,
            max_age_in_days: MAX_AGE_IN_DAYS,
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
    pub fn into_builder(self, api_key: SecretString) -> AbuseIpdbBuilder {
        let limits = self.limits();
        let builder = AbuseIpdb::default()
            .max_age_in_days(self.max_age_in_days)
            .into_builder()
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
        let c: AbuseIpdbConfig = toml::from_str("api_key = { env = \"K\" }").unwrap();
        assert_eq!(c, AbuseIpdbConfig::new(SecretRef::Env("K".into())));
        assert_eq!(c.limits(), DEFAULT_LIMITS);
        let c: AbuseIpdbConfig = toml::from_str(
            "api_key = { env = \"K\" }\nmax_age_in_days = 30\nlimits = { timeout = \"500ms\" }\ncache = { ttl = \"1m\" }",
        )
        .unwrap();
        assert_eq!(c.max_age_in_days, 30);
        assert_eq!(c.limits().timeout, std::time::Duration::from_millis(500));
        assert_eq!(c.limits().concurrency, 4);
        assert_eq!(c.cache.ttl, std::time::Duration::from_secs(60));
        assert_eq!(c.cache.negative_ttl, std::time::Duration::from_secs(600));
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("api_key = { env = \"K\" }\nbase_uri = \"x\"", "base_uri"),
            (
                "api_key = { env = \"K\" }\nlimits = { timeout = 1 }",
                "timeout",
            ),
            ("api_key = { env = \"K\" }\ncache = { ttl = 1 }", "ttl"),
        ] {
            let err = toml::from_str::<AbuseIpdbConfig>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        let err = toml::from_str::<AbuseIpdbConfig>("api_key = \"inline\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("inline secrets are not accepted"), "{err}");
    }
}

//! The `[enrichers.<id>]` table of a `type = "recorded_future"` enricher.

use secrecy::SecretString;
use serde::Deserialize;
use vowguard_core::{RateLimit, SecretRef};
use vowguard_enrich::{CacheOptions, LimitsConfig, ProviderLimits};
use vowguard_http::HttpOptions;

use crate::client::{RecordedFuture, RecordedFutureBuilder};

/// Where the Connect API lives unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.recordedfuture.com";

/// Default limits: 3000 ms per lookup, 4 concurrent lookups, 10 lookups a second with
/// bursts of 20.
///
/// Recorded Future meters lookups per token (a contract quota, not a published rate), so
/// this is a moderate choice, not a vendor figure; a 429 pauses lookups (see the crate
/// docs) and the cache (1 h per indicator) keeps repeated indicators free.
pub const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(
    3_000,
    4,
    Some(RateLimit {
        per_second: 10.0,
        burst: 20,
    }),
);

/// Configuration of the Recorded Future enricher.
///
/// ```toml
/// [enrichers.rf]
/// type = "recorded_future"
/// api_token = { env = "RF_API_TOKEN" }
/// # base_url = "https://api.recordedfuture.com"
/// # cache = { ttl = "1h", negative_ttl = "10m", max_entries = 100000 }
/// # limits = { timeout = "3s", concurrency = 4, rate = { per_second = 10.0, burst = 20 } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecordedFutureConfig {
    /// API base URL, default [`DEFAULT_BASE_URL`] (tests point it at a mock).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The Connect API token, sent in the `X-RFToken` header.
    pub api_token: SecretRef,
    /// Answer cache (known answers 1 h, unknown answers (risk score 0, 404) 10 min by
    /// default).
    #[serde(default)]
    pub cache: CacheOptions,
    /// Overrides of [`DEFAULT_LIMITS`], key by key.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

impl RecordedFutureConfig {
    /// A config with every default and `api_token`.
    pub fn new(api_token: SecretRef) -> Self {
        Self {
            base_url: None,
            api_token,
            cache: CacheOptions::default(),
            limits: LimitsConfig::default(),
            http: HttpOptions::default(),
        }
    }

    /// The limits in force: [`DEFAULT_LIMITS`] with the configured overrides.
    pub fn limits(&self) -> ProviderLimits {
        self.limits.resolve(DEFAULT_LIMITS)
    }

    /// The builder this table describes, with `api_token` the resolved `api_token`.
    pub fn into_builder(self, api_token: SecretString) -> RecordedFutureBuilder {
        let limits = self.limits();
        let builder = RecordedFuture::builder()
            .api_key(api_token)
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
        let c: RecordedFutureConfig = toml::from_str("api_token = { env = \"T\" }").unwrap();
        assert_eq!(c, RecordedFutureConfig::new(SecretRef::Env("T".into())));
        assert_eq!(c.limits(), DEFAULT_LIMITS);
        let c: RecordedFutureConfig =
            toml::from_str("api_token = { env = \"T\" }\nlimits = { concurrency = 8 }").unwrap();
        assert_eq!(c.limits().concurrency, 8);
        assert_eq!(c.limits().timeout, std::time::Duration::from_secs(3));
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("api_token = { env = \"T\" }\napi_key = \"x\"", "api_key"),
            ("api_token = { env = \"T\" }\nlimits = { rps = 1 }", "rps"),
        ] {
            let err = toml::from_str::<RecordedFutureConfig>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        let err = toml::from_str::<RecordedFutureConfig>("")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_token"), "{err}");
    }
}

//! The `[scanners.<id>]` tables of `type = "tenable"` and `type = "nessus_file"`.

use serde::Deserialize;
use vowguard_core::SecretRef;
use vowguard_http::HttpOptions;

/// Where Tenable Vulnerability Management lives unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://cloud.tenable.com";

/// Configuration of the Tenable export API scanner.
///
/// ```toml
/// [scanners.tenable]
/// type = "tenable"
/// access_key = { env = "TENABLE_ACCESS_KEY" }
/// secret_key = { env = "TENABLE_SECRET_KEY" }
/// # base_url = "https://cloud.tenable.com"
/// # num_assets = 500
/// # max_chunk_bytes = 67108864
/// # poll = { initial = "1s", max = "30s", max_wait = "1h" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenableConfig {
    /// API base URL, default [`DEFAULT_BASE_URL`] (tests point it at a mock).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API access key.
    pub access_key: SecretRef,
    /// The API secret key.
    pub secret_key: SecretRef,
    /// Assets per export chunk (`num_assets`, 50..=5000). Default 500.
    #[serde(default = "default_num_assets")]
    pub num_assets: u32,
    /// Largest chunk body read, in bytes (a larger one is an error). Default 64 MiB.
    #[serde(default = "default_max_chunk_bytes")]
    pub max_chunk_bytes: usize,
    /// How the export status is polled.
    #[serde(default)]
    pub poll: PollOptions,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

impl TenableConfig {
    /// A configuration for the account with these API keys, every other key at its default.
    pub fn new(access_key: SecretRef, secret_key: SecretRef) -> Self {
        Self {
            base_url: None,
            access_key,
            secret_key,
            num_assets: default_num_assets(),
            max_chunk_bytes: default_max_chunk_bytes(),
            poll: PollOptions::default(),
            http: HttpOptions::default(),
        }
    }

    /// These settings with [`base_url`](Self::base_url) set to `base_url`.
    #[must_use]
    pub fn with_base_url(mut self, base_url: Option<String>) -> Self {
        self.base_url = base_url;
        self
    }

    /// These settings with [`access_key`](Self::access_key) set to `access_key`.
    #[must_use]
    pub fn with_access_key(mut self, access_key: SecretRef) -> Self {
        self.access_key = access_key;
        self
    }

    /// These settings with [`secret_key`](Self::secret_key) set to `secret_key`.
    #[must_use]
    pub fn with_secret_key(mut self, secret_key: SecretRef) -> Self {
        self.secret_key = secret_key;
        self
    }

    /// These settings with [`num_assets`](Self::num_assets) set to `num_assets`.
    #[must_use]
    pub fn with_num_assets(mut self, num_assets: u32) -> Self {
        self.num_assets = num_assets;
        self
    }

    /// These settings with [`max_chunk_bytes`](Self::max_chunk_bytes) set to `max_chunk_bytes`.
    #[must_use]
    pub fn with_max_chunk_bytes(mut self, max_chunk_bytes: usize) -> Self {
        self.max_chunk_bytes = max_chunk_bytes;
        self
    }

    /// These settings with [`poll`](Self::poll) set to `poll`.
    #[must_use]
    pub fn with_poll(mut self, poll: PollOptions) -> Self {
        self.poll = poll;
        self
    }

    /// These settings with [`http`](Self::http) set to `http`.
    #[must_use]
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

fn default_num_assets() -> u32 {
    500
}

fn default_max_chunk_bytes() -> usize {
    64 * 1024 * 1024
}

/// Export status polling: exponential backoff from `initial` to `max`, giving up
/// (a timeout error, retried at the next scheduled sync) after `max_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PollOptions {
    /// First wait between two status polls. Default `"1s"`.
    #[serde(with = "vowguard_core::duration")]
    pub initial: std::time::Duration,
    /// Longest wait between two status polls. Default `"30s"`.
    #[serde(with = "vowguard_core::duration")]
    pub max: std::time::Duration,
    /// Longest time one export may take. Default `"1h"`.
    #[serde(with = "vowguard_core::duration")]
    pub max_wait: std::time::Duration,
}

impl PollOptions {
    /// These settings with [`initial`](Self::initial) set to `initial`.
    #[must_use]
    pub fn with_initial(mut self, initial: std::time::Duration) -> Self {
        self.initial = initial;
        self
    }

    /// These settings with [`max`](Self::max) set to `max`.
    #[must_use]
    pub fn with_max(mut self, max: std::time::Duration) -> Self {
        self.max = max;
        self
    }

    /// These settings with [`max_wait`](Self::max_wait) set to `max_wait`.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: std::time::Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            initial: std::time::Duration::from_secs(1),
            max: std::time::Duration::from_secs(30),
            max_wait: std::time::Duration::from_secs(3_600),
        }
    }
}

/// Configuration of the `.nessus` file importer.
///
/// ```toml
/// [scanners.nessus]
/// type = "nessus_file"
/// paths = ["scans/weekly.nessus"]
/// # include_info = false
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NessusFileConfig {
    /// The files to import, relative to the config file's directory.
    pub paths: Vec<String>,
    /// Also import informational items (severity 0). Default false.
    #[serde(default)]
    pub include_info: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: TenableConfig =
            toml::from_str("access_key = { env = \"A\" }\nsecret_key = { env = \"S\" }").unwrap();
        assert_eq!(c.num_assets, 500);
        assert_eq!(c.poll, PollOptions::default());
        let err = toml::from_str::<TenableConfig>(
            "access_key = { env = \"A\" }\nsecret_key = { env = \"S\" }\npoll = { initial = 1 }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("initial"), "{err}");
        let err =
            toml::from_str::<TenableConfig>("access_key = \"x\"\nsecret_key = { env = \"S\" }")
                .unwrap_err()
                .to_string();
        assert!(err.contains("inline secrets are not accepted"), "{err}");
    }
}

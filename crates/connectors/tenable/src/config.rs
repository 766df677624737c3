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

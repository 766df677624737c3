//! The `[scanners.<id>]` table of a `type = "qualys"` scanner.

use serde::Deserialize;
use vowguard_core::{Error, RetryPolicy, SecretRef};
use vowguard_http::HttpOptions;
use vowguard_http::reqwest::Url;

/// The detection statuses asked for unless `statuses` says otherwise.
pub const DEFAULT_STATUSES: [&str; 4] = ["New", "Active", "Re-Opened", "Fixed"];

/// Configuration of the Qualys VMDR scanner.
///
/// ```toml
/// [scanners.qualys]
/// type = "qualys"
/// url = "https://qualysapi.qualys.eu"        # your platform's API server
/// username = "wedding_api"
/// password = { env = "QUALYS_PASSWORD" }
/// # statuses = ["New", "Active", "Re-Opened", "Fixed"]
/// # truncation_limit = 1000                 # hosts per page
/// # include_info = false                    # TYPE=Info detections
/// # max_page_bytes = 67108864
/// # max_quota_wait = "5m"
/// # kb_cache_ttl = "1d"
/// # kb_batch = 300
/// # retry = { max_attempts = 5 }
/// # http = { timeout = "5m" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QualysConfig {
    /// The platform's API server, e.g. `https://qualysapi.qualys.com` (a path prefix is
    /// kept, for proxies). Next-page URLs must point at the same origin.
    pub url: String,
    /// The API user (Basic auth).
    pub username: String,
    /// Its password. A secret.
    pub password: SecretRef,
    /// Detection statuses to list; default New, Active, Re-Opened, Fixed (fixed ones retire
    /// findings in the store).
    #[serde(default = "default_statuses")]
    pub statuses: Vec<String>,
    /// Hosts per page (`truncation_limit`, 1..=1000000). Default 1000.
    #[serde(default = "default_truncation_limit")]
    pub truncation_limit: u32,
    /// Keep `TYPE=Info` detections (information gathered). Default false.
    #[serde(default)]
    pub include_info: bool,
    /// Largest page read, in bytes (a bigger answer is an error: lower
    /// `truncation_limit`). Default 64 MiB.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: usize,
    /// Longest wait for the API quota (`X-RateLimit-ToWait-Sec`) inside one sync; a longer
    /// one ends the sync with a rate-limit error carrying the wait. Default `"5m"`.
    #[serde(default = "default_max_quota_wait", with = "vowguard_core::duration")]
    pub max_quota_wait: std::time::Duration,
    /// How long a KnowledgeBase entry (QID → CVEs, CVSS, title) is kept. Default `"1d"`.
    #[serde(default = "default_kb_cache_ttl", with = "vowguard_core::duration")]
    pub kb_cache_ttl: std::time::Duration,
    /// QIDs per KnowledgeBase request (1..=1000). Default 300.
    #[serde(default = "default_kb_batch")]
    pub kb_batch: usize,
    /// Retries of one request (5xx, timeouts, 409 concurrency refusals).
    #[serde(default)]
    pub retry: RetryPolicy,
    /// HTTP client timeouts; the default whole-request timeout is 300 s (detection pages
    /// take long to produce).
    #[serde(default = "default_http")]
    pub http: HttpOptions,
}

fn default_statuses() -> Vec<String> {
    DEFAULT_STATUSES.iter().map(|s| (*s).to_owned()).collect()
}
fn default_truncation_limit() -> u32 {
    1000
}
fn default_max_page_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_max_quota_wait() -> std::time::Duration {
    std::time::Duration::from_secs(300)
}
fn default_kb_cache_ttl() -> std::time::Duration {
    std::time::Duration::from_secs(86_400)
}
fn default_kb_batch() -> usize {
    300
}
fn default_http() -> HttpOptions {
    HttpOptions::default().with_timeout(std::time::Duration::from_secs(300))
}

impl QualysConfig {
    /// A configuration with every default.
    pub fn new(url: impl Into<String>, username: impl Into<String>, password: SecretRef) -> Self {
        Self {
            url: url.into(),
            username: username.into(),
            password,
            statuses: default_statuses(),
            truncation_limit: default_truncation_limit(),
            include_info: false,
            max_page_bytes: default_max_page_bytes(),
            max_quota_wait: default_max_quota_wait(),
            kb_cache_ttl: default_kb_cache_ttl(),
            kb_batch: default_kb_batch(),
            retry: RetryPolicy::default(),
            http: default_http(),
        }
    }

    /// Checks values; errors name the key under `prefix` (`scanners.<id>`).
    pub fn validate(&self, prefix: &str) -> Result<Url, Error> {
        let url = vowguard_http::parse_url(&format!("{prefix}.url"), &self.url)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(format!(
                "`{prefix}.url`: must not hold credentials; use `username` and `password`"
            )));
        }
        if self.username.trim().is_empty() || self.username.contains(':') {
            return Err(Error::config(format!(
                "`{prefix}.username`: must be the API user name (no `:`)"
            )));
        }
        for status in &self.statuses {
            if !DEFAULT_STATUSES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(status))
            {
                return Err(Error::config(format!(
                    "`{prefix}.statuses`: unknown status `{}`; expected New, Active, Re-Opened or Fixed",
                    crate::parse::printable(status, 40)
                )));
            }
        }
        if self.statuses.is_empty() {
            return Err(Error::config(format!(
                "`{prefix}.statuses`: must not be empty"
            )));
        }
        if !(1..=1_000_000).contains(&self.truncation_limit) {
            return Err(Error::config(format!(
                "`{prefix}.truncation_limit`: must be 1..=1000000, got {}",
                self.truncation_limit
            )));
        }
        if !(1..=1000).contains(&self.kb_batch) {
            return Err(Error::config(format!(
                "`{prefix}.kb_batch`: must be 1..=1000, got {}",
                self.kb_batch
            )));
        }
        if self.max_page_bytes < 1024 {
            return Err(Error::config(format!(
                "`{prefix}.max_page_bytes`: must be at least 1024"
            )));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<QualysConfig, toml::de::Error> {
        toml::from_str(&format!(
            "url = \"https://qualysapi.qualys.eu\"\nusername = \"u\"\npassword = {{ env = \"P\" }}\n{extra}"
        ))
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(
            c,
            QualysConfig::new(
                "https://qualysapi.qualys.eu",
                "u",
                SecretRef::Env("P".into())
            )
        );
        assert_eq!(c.http.timeout, std::time::Duration::from_secs(300));
        c.validate("scanners.q").unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse("truncation = 5").unwrap_err().to_string();
        assert!(err.contains("truncation"), "{err}");
        let err = parse("password2 = 1").unwrap_err().to_string();
        assert!(err.contains("password2"), "{err}");
        for (extra, key) in [
            ("statuses = [\"Open\"]", "scanners.q.statuses"),
            ("statuses = []", "scanners.q.statuses"),
            ("truncation_limit = 0", "scanners.q.truncation_limit"),
            ("kb_batch = 5000", "scanners.q.kb_batch"),
            ("max_page_bytes = 10", "scanners.q.max_page_bytes"),
        ] {
            let err = parse(extra)
                .unwrap()
                .validate("scanners.q")
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{key}`")), "{extra}: {err}");
        }
        let mut c = parse("").unwrap();
        c.url = "ftp://x".into();
        assert!(
            c.validate("scanners.q")
                .unwrap_err()
                .to_string()
                .contains("`scanners.q.url`")
        );
        c.url = "https://user:pw@qualysapi.qualys.eu".into();
        let err = c.validate("scanners.q").unwrap_err().to_string();
        assert!(
            err.contains("`scanners.q.url`") && !err.contains("pw"),
            "{err}"
        );
    }
}

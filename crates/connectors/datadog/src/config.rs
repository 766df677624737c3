//! Configuration of the `datadog_logs` sink.
//!
//! ```toml
//! [sinks.datadog]
//! type = "datadog_logs"
//! api_key = { env = "DD_API_KEY" }
//! site = "datadoghq.eu"                  # default datadoghq.com
//! ddtags = ["env:prod", "team:secops"]   # or "env:prod,team:secops"
//! ```

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};
use vowguard_http::HttpOptions;

/// The Datadog sites this sink knows (`site` must be one of them unless `endpoint` and
/// `api_endpoint` are both set).
pub const SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "ddog-gov.com",
];

/// The default site.
pub const DEFAULT_SITE: &str = "datadoghq.com";

/// The `[sinks.<id>]` table of a `datadog_logs` sink (`type`, `batch` and `retry` are
/// handled by the runtime and are not part of it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DatadogConfig {
    /// The API key, sent as `DD-API-KEY`.
    pub api_key: SecretRef,
    /// The Datadog site: logs go to `https://http-intake.logs.<site>`, the key check to
    /// `https://api.<site>`. Default `datadoghq.com`; see [`SITES`].
    #[serde(default = "default_site")]
    pub site: String,
    /// Overrides the logs intake base URL (tests, proxies).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Overrides the API base URL used by the health check (`/api/v1/validate`).
    #[serde(default)]
    pub api_endpoint: Option<String>,
    /// The `service` of every log. Default `vowguard`.
    #[serde(default = "default_name")]
    pub service: String,
    /// The `ddsource` of every log. Default `vowguard`.
    #[serde(default = "default_name")]
    pub ddsource: String,
    /// Tags added to every log: a list or a comma-separated string.
    #[serde(default)]
    pub ddtags: Tags,
    /// The `hostname` of every log. Default: this machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Request body compression: `gzip` (default) or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_site() -> String {
    DEFAULT_SITE.to_owned()
}

fn default_name() -> String {
    "vowguard".to_owned()
}

impl DatadogConfig {
    /// A config with every key at its default; `api_key` is only read by the registry build.
    pub fn new(api_key: SecretRef) -> Self {
        Self {
            api_key,
            site: default_site(),
            endpoint: None,
            api_endpoint: None,
            service: default_name(),
            ddsource: default_name(),
            ddtags: Tags::default(),
            hostname: None,
            compression: Compression::Gzip,
            http: HttpOptions::default(),
        }
    }
}

/// The logs intake base URL: `endpoint`, else `https://http-intake.logs.<site>`.
pub(crate) fn intake_base(site: &str, endpoint: Option<&str>) -> Result<String, Error> {
    match endpoint {
        Some(endpoint) => Ok(endpoint.trim_end_matches('/').to_owned()),
        None => Ok(format!("https://http-intake.logs.{}", known_site(site)?)),
    }
}

/// The API base URL: `api_endpoint`, else `https://api.<site>`.
pub(crate) fn api_base(site: &str, api_endpoint: Option<&str>) -> Result<String, Error> {
    match api_endpoint {
        Some(endpoint) => Ok(endpoint.trim_end_matches('/').to_owned()),
        None => Ok(format!("https://api.{}", known_site(site)?)),
    }
}

fn known_site(site: &str) -> Result<&str, Error> {
    let site = site.trim().trim_end_matches('/');
    if SITES.contains(&site) {
        Ok(site)
    } else {
        Err(Error::config(format!(
            "`site`: unknown Datadog site {site:?}; expected one of {} (or set `endpoint` and `api_endpoint`)",
            SITES.join(", ")
        )))
    }
}

/// Tags as a list or a comma-separated string (default: none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Tags {
    /// `"env:prod,team:secops"`.
    Joined(String),
    /// `["env:prod", "team:secops"]`.
    List(Vec<String>),
}

impl Default for Tags {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl Tags {
    /// The tags one by one, trimmed, empty ones dropped.
    pub fn to_vec(&self) -> Vec<String> {
        let items: Vec<&str> = match self {
            Self::Joined(s) => s.split(',').collect(),
            Self::List(list) => list.iter().map(String::as_str).collect(),
        };
        items
            .into_iter()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Compression {
    /// Send the body as is.
    None,
    /// Gzip the body (`Content-Encoding: gzip`).
    #[default]
    Gzip,
}

/// This machine's host name: `$HOSTNAME`, else the kernel's, else `/etc/hostname`, else
/// `localhost`.
pub fn machine_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DatadogConfig {
        DatadogConfig::new(SecretRef::Env("DD".into()))
    }

    #[test]
    fn site_to_urls() {
        let mut c = config();
        assert_eq!(
            intake_base(&c.site, c.endpoint.as_deref()).unwrap(),
            "https://http-intake.logs.datadoghq.com"
        );
        assert_eq!(
            api_base(&c.site, c.api_endpoint.as_deref()).unwrap(),
            "https://api.datadoghq.com"
        );
        for (site, intake) in [
            ("datadoghq.eu", "https://http-intake.logs.datadoghq.eu"),
            (
                "us3.datadoghq.com",
                "https://http-intake.logs.us3.datadoghq.com",
            ),
            (
                "us5.datadoghq.com",
                "https://http-intake.logs.us5.datadoghq.com",
            ),
            (
                "ap1.datadoghq.com",
                "https://http-intake.logs.ap1.datadoghq.com",
            ),
            ("ddog-gov.com", "https://http-intake.logs.ddog-gov.com"),
        ] {
            c.site = site.into();
            assert_eq!(intake_base(&c.site, c.endpoint.as_deref()).unwrap(), intake);
            assert_eq!(
                api_base(&c.site, c.api_endpoint.as_deref()).unwrap(),
                format!("https://api.{site}")
            );
        }
        c.site = "datadoghq.evil".into();
        let err = intake_base(&c.site, c.endpoint.as_deref())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown Datadog site") && err.contains("datadoghq.eu"),
            "{err}"
        );
        c.endpoint = Some("http://127.0.0.1:1/".into());
        assert_eq!(
            intake_base(&c.site, c.endpoint.as_deref()).unwrap(),
            "http://127.0.0.1:1"
        );
    }

    #[test]
    fn tags_list_or_string() {
        #[derive(Deserialize)]
        struct H {
            #[serde(default)]
            ddtags: Tags,
        }
        let h: H = toml::from_str("ddtags = \"env:prod, team:secops,\"").unwrap();
        assert_eq!(h.ddtags.to_vec(), ["env:prod", "team:secops"]);
        let h: H = toml::from_str("ddtags = [\"env:prod\"]").unwrap();
        assert_eq!(h.ddtags.to_vec(), ["env:prod"]);
        let h: H = toml::from_str("").unwrap();
        assert!(h.ddtags.to_vec().is_empty());
    }
}

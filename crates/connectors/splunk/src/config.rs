//! Configuration of the `splunk_hec` sink (the `[sinks.<id>]` table).

use std::time::Duration;

use serde::Deserialize;
use vowguard_core::SecretRef;
use vowguard_http::HttpOptions;

/// Configuration of one Splunk HTTP Event Collector sink.
///
/// ```toml
/// [sinks.splunk]
/// type = "splunk_hec"
/// endpoint = "https://splunk.example.org:8088"
/// token = { env = "SPLUNK_HEC_TOKEN" }
/// index = "wedding-security"
/// compression = "gzip"
/// acknowledgements = { enabled = true }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SplunkHecConfig {
    /// Base URL of the collector, e.g. `https://splunk.example.org:8088` (required). The
    /// sink appends `/services/collector/event`, `/services/collector/ack` and
    /// `/services/collector/health`.
    pub endpoint: String,
    /// The HEC token, `{ env = "NAME" }` or `{ file = "path" }` (required).
    pub token: SecretRef,
    /// The index to write to; when absent the token's default index is used.
    #[serde(default)]
    pub index: Option<String>,
    /// The `host` of every event. Default: `HOSTNAME` from the environment, else
    /// `/etc/hostname`, else `vowguard`.
    #[serde(default = "default_host")]
    pub host: String,
    /// The `source` of every event. Default `vowguard`.
    #[serde(default = "default_source")]
    pub source: String,
    /// The `sourcetype` of every event. Default `_json`.
    #[serde(default = "default_sourcetype")]
    pub sourcetype: String,
    /// Request body compression. Default `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Indexer acknowledgement. Default: disabled.
    #[serde(default)]
    pub acknowledgements: AckConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Compression {
    /// Sent as is.
    #[default]
    None,
    /// Gzip, with `Content-Encoding: gzip`.
    Gzip,
}

/// Indexer acknowledgement (the `acknowledgements` table).
///
/// When enabled, a batch counts as delivered only once Splunk confirms it was indexed; a
/// confirmation that does not come within `timeout` makes the whole batch retryable
/// (it is sent again, never dropped). The HEC token must have indexer acknowledgement
/// enabled too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AckConfig {
    /// Whether to wait for indexer acknowledgement. Default `false`.
    pub enabled: bool,
    /// Time between two polls of `/services/collector/ack`. Default: not set, the interval
    /// follows how fast Splunk confirms (starts at 100 ms, kept between 20 ms and 1 s; see
    /// the crate README). Set (`poll_interval = "500ms"`), it is fixed.
    #[serde(default, with = "vowguard_core::duration::option")]
    pub poll_interval: Option<Duration>,
    /// How long to wait for the acknowledgement before resending. Default `"30s"`.
    #[serde(with = "vowguard_core::duration")]
    pub timeout: Duration,
}

impl Default for AckConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            poll_interval: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl AckConfig {
    /// Acknowledgement on: poll every `poll_interval` (fixed), resend after `timeout`.
    pub fn enabled_with(poll_interval: Duration, timeout: Duration) -> Self {
        Self {
            enabled: true,
            poll_interval: Some(poll_interval),
            timeout,
        }
    }

    /// Acknowledgement on with the defaults: the poll interval follows how fast Splunk
    /// confirms, resend after 30 s.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }
}

impl SplunkHecConfig {
    /// A configuration with every optional key at its default.
    pub fn new(endpoint: impl Into<String>, token: SecretRef) -> Self {
        Self {
            endpoint: endpoint.into(),
            token,
            index: None,
            host: default_host(),
            source: default_source(),
            sourcetype: default_sourcetype(),
            compression: Compression::default(),
            acknowledgements: AckConfig::default(),
            http: HttpOptions::default(),
        }
    }
}

/// The machine's host name: `HOSTNAME`, else the first line of `/etc/hostname`, else
/// `vowguard`.
pub fn default_host() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .and_then(|h| non_empty_line(&h))
        .or_else(|| from_file().and_then(|h| non_empty_line(&h)))
        .unwrap_or_else(|| "vowguard".to_owned())
}

fn non_empty_line(text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

fn default_source() -> String {
    "vowguard".to_owned()
}

fn default_sourcetype() -> String {
    "_json".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c: SplunkHecConfig = toml::from_str(
            "endpoint = \"https://splunk.example.org:8088\"\ntoken = { env = \"T\" }",
        )
        .unwrap();
        assert_eq!(c.index, None);
        assert_eq!(c.host, default_host());
        assert!(!c.host.is_empty());
        assert_eq!(c.source, "vowguard");
        assert_eq!(c.sourcetype, "_json");
        assert_eq!(c.compression, Compression::None);
        assert_eq!(
            c.acknowledgements,
            AckConfig {
                enabled: false,
                poll_interval: None,
                timeout: Duration::from_secs(30)
            }
        );
        assert_eq!(c.http, HttpOptions::default());
        assert_eq!(
            c,
            SplunkHecConfig::new(
                "https://splunk.example.org:8088",
                SecretRef::Env("T".into())
            )
        );
    }

    #[test]
    fn full_config() {
        let c: SplunkHecConfig = toml::from_str(
            r#"
            endpoint = "https://splunk.example.org:8088"
            token = { file = "/run/secrets/hec" }
            index = "wedding-security"
            host = "gw1"
            source = "wedsync-security-audit"
            sourcetype = "vowguard:event"
            compression = "gzip"
            acknowledgements = { enabled = true, poll_interval = "100ms" }
            http = { timeout = "2s" }
            "#,
        )
        .unwrap();
        assert_eq!(c.index.as_deref(), Some("wedding-security"));
        assert_eq!(c.host, "gw1");
        assert_eq!(c.compression, Compression::Gzip);
        assert!(c.acknowledgements.enabled);
        assert_eq!(
            c.acknowledgements.poll_interval,
            Some(Duration::from_millis(100))
        );
        assert_eq!(c.acknowledgements.timeout, Duration::from_secs(30));
        assert_eq!(c.http.timeout, Duration::from_secs(2));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<SplunkHecConfig>(
            "endpoint = \"https://x\"\ntoken = { env = \"T\" }\nindx = \"a\"",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("indx"), "{err}");
        let err = toml::from_str::<SplunkHecConfig>(
            "endpoint = \"https://x\"\ntoken = { env = \"T\" }\nacknowledgements = { enable = true }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("enable"), "{err}");
        let err = toml::from_str::<SplunkHecConfig>(
            "endpoint = \"https://x\"\ntoken = { env = \"T\" }\ncompression = \"zstd\"",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("zstd"), "{err}");
    }

    #[test]
    fn host_line() {
        assert_eq!(non_empty_line("gw1\n"), Some("gw1".into()));
        assert_eq!(non_empty_line("  \n"), None);
        assert_eq!(non_empty_line(""), None);
    }
}

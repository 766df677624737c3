//! Configuration of the `pagerduty` notifier.

use serde::{Deserialize, Serialize};
use vowguard_core::SecretRef;
use vowguard_http::HttpOptions;

/// The Events API v2 host in PagerDuty's US service region.
pub const US_ENDPOINT: &str = "https://events.pagerduty.com";
/// The Events API v2 host in PagerDuty's EU service region.
pub const EU_ENDPOINT: &str = "https://events.eu.pagerduty.com";
/// The path events are posted to, below the endpoint.
pub const ENQUEUE_PATH: &str = "/v2/enqueue";

/// The PagerDuty service region the account lives in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Region {
    /// `https://events.pagerduty.com` (the default).
    #[default]
    Us,
    /// `https://events.eu.pagerduty.com`.
    Eu,
}

/// A link attached to every triggered incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Link {
    /// The URL.
    pub href: String,
    /// The text shown for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Link {
    /// A link to `href` (checked when the notifier is built), shown as the URL itself.
    pub fn new(href: impl Into<String>) -> Self {
        Self {
            href: href.into(),
            text: None,
        }
    }

    /// The text shown for the link instead of its URL.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
}

/// `[notifiers.<id>]` with `type = "pagerduty"`.
///
/// ```toml
/// [notifiers.oncall]
/// type = "pagerduty"
/// routing_key = { env = "PAGERDUTY_ROUTING_KEY" }
/// region = "eu"
/// links = [{ href = "https://runbooks.example.org/security", text = "Runbook" }]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PagerDutyConfig {
    /// The integration (routing) key of an Events API v2 integration. A secret.
    pub routing_key: SecretRef,
    /// Service region; `us` (default) or `eu`. Ignored when `endpoint` is set.
    #[serde(default)]
    pub region: Region,
    /// Base URL overriding the region's host (tests, proxies); `/v2/enqueue` is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `payload.source`; default: this machine's host name, or `vowguard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `payload.component`; default `vowguard`.
    #[serde(default = "default_vowguard")]
    pub component: String,
    /// `client` shown in PagerDuty; default `vowguard`.
    #[serde(default = "default_vowguard")]
    pub client: String,
    /// `client_url` shown in PagerDuty (e.g. the vowguard dashboard); default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// Links added to every triggered incident; default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_vowguard() -> String {
    "vowguard".to_owned()
}

impl PagerDutyConfig {
    /// A configuration with every default and the given routing key reference.
    pub fn new(routing_key: SecretRef) -> Self {
        Self {
            routing_key,
            region: Region::Us,
            endpoint: None,
            source: None,
            component: default_vowguard(),
            client: default_vowguard(),
            client_url: None,
            links: Vec::new(),
            http: HttpOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c: PagerDutyConfig = toml::from_str("routing_key = { env = \"PD\" }").unwrap();
        assert_eq!(c, PagerDutyConfig::new(SecretRef::Env("PD".into())));
        assert_eq!(c.region, Region::Us);
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let err =
            toml::from_str::<PagerDutyConfig>("routing_key = { env = \"PD\" }\nregion = \"apac\"")
                .unwrap_err()
                .to_string();
        assert!(err.contains("apac"), "{err}");
    }
}

//! Configuration of the `pagerduty` notifier.

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};
use vowguard_http::HttpOptions;
use vowguard_http::reqwest::Url;

/// The Events API v2 host in PagerDuty's US service region.
pub const US_ENDPOINT: &str = "https://events.pagerduty.com";
/// The Events API v2 host in PagerDuty's EU service region.
pub const EU_ENDPOINT: &str = "https://events.eu.pagerduty.com";
/// The path events are posted to, below the endpoint.
pub const ENQUEUE_PATH: &str = "/v2/enqueue";

/// The PagerDuty service region the account lives in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
pub struct Link {
    /// The URL.
    pub href: String,
    /// The text shown for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
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

    /// The full enqueue URL (`endpoint` or the region's host, plus `/v2/enqueue`).
    /// `prefix` is the component's config path (e.g. `notifiers.oncall`), named in errors.
    pub fn enqueue_url(&self, prefix: &str) -> Result<Url, Error> {
        let base = match (&self.endpoint, self.region) {
            (Some(endpoint), _) => endpoint.as_str(),
            (None, Region::Us) => US_ENDPOINT,
            (None, Region::Eu) => EU_ENDPOINT,
        };
        let full = format!("{}{ENQUEUE_PATH}", base.trim_end_matches('/'));
        vowguard_http::parse_url(&format!("{prefix}.endpoint"), &full)
    }

    /// Checks the values serde cannot: URLs of `client_url` and `links`, non-empty names.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        self.enqueue_url(prefix)?;
        if let Some(url) = &self.client_url {
            vowguard_http::parse_url(&format!("{prefix}.client_url"), url)?;
        }
        for (i, link) in self.links.iter().enumerate() {
            vowguard_http::parse_url(&format!("{prefix}.links[{i}].href"), &link.href)?;
        }
        for (field, value) in [("component", &self.component), ("client", &self.client)] {
            if value.trim().is_empty() {
                return Err(Error::config(format!(
                    "`{prefix}.{field}`: must not be empty"
                )));
            }
        }
        if self.source.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(Error::config(format!(
                "`{prefix}.source`: must not be empty"
            )));
        }
        Ok(())
    }

    /// `payload.source`: the configured one, else the host name, else `vowguard`.
    pub fn resolved_source(&self) -> String {
        if let Some(source) = &self.source {
            return source.clone();
        }
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h.len() <= 255)
            .unwrap_or_else(default_vowguard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_regions() {
        let c: PagerDutyConfig = toml::from_str("routing_key = { env = \"PD\" }").unwrap();
        assert_eq!(c, PagerDutyConfig::new(SecretRef::Env("PD".into())));
        assert_eq!(
            c.enqueue_url("n").unwrap().as_str(),
            "https://events.pagerduty.com/v2/enqueue"
        );
        let c: PagerDutyConfig =
            toml::from_str("routing_key = { env = \"PD\" }\nregion = \"eu\"").unwrap();
        assert_eq!(
            c.enqueue_url("n").unwrap().as_str(),
            "https://events.eu.pagerduty.com/v2/enqueue"
        );
        let c: PagerDutyConfig = toml::from_str(
            "routing_key = { env = \"PD\" }\nregion = \"eu\"\nendpoint = \"http://127.0.0.1:9/\"",
        )
        .unwrap();
        assert_eq!(
            c.enqueue_url("n").unwrap().as_str(),
            "http://127.0.0.1:9/v2/enqueue"
        );
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let err =
            toml::from_str::<PagerDutyConfig>("routing_key = { env = \"PD\" }\nregion = \"apac\"")
                .unwrap_err()
                .to_string();
        assert!(err.contains("apac"), "{err}");
        let mut c = PagerDutyConfig::new(SecretRef::Env("PD".into()));
        c.links.push(Link {
            href: "javascript:alert(1)".into(),
            text: None,
        });
        let err = c.validate("notifiers.oncall").unwrap_err().to_string();
        assert!(err.contains("`notifiers.oncall.links[0].href`"), "{err}");
    }
}

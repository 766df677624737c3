//! [`PagerDutyNotifierBuilder`]: the one way a [`PagerDutyNotifier`] is made, from code or
//! from config.

use std::fmt;

use secrecy::SecretString;
use vowguard_core::Error;
use vowguard_http::reqwest::Url;
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{ENQUEUE_PATH, EU_ENDPOINT, Link, PagerDutyConfig, Region, US_ENDPOINT};
use crate::encode::EventTemplate;
use crate::notifier::PagerDutyNotifier;

/// Builds a [`PagerDutyNotifier`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`notifiers.<id>.client_url`, with `<id>` from [`id`](Self::id), default `pagerduty`).
///
/// Start from [`PagerDutyNotifier::builder`] (in code) or [`PagerDutyConfig::into_builder`]
/// (from a `[notifiers.<id>]` table, once its secret is resolved). `Debug` never shows the
/// routing key.
///
/// ```no_run
/// use secrecy::SecretString;
/// use vowguard_pagerduty::{HttpSinkBuilder, PagerDutyNotifier, Region};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let notifier = PagerDutyNotifier::builder()
///     .routing_key(SecretString::from("R0UTINGKEYR0UTINGKEYR0UTINGKEY12"))
///     .region(Region::Eu)
///     .client_url("https://vowguard.example.org/ui")
///     .id("oncall")
///     .build()?;
/// # let _ = notifier;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PagerDutyNotifierBuilder {
    routing_key: Option<SecretString>,
    region: Region,
    endpoint: Option<String>,
    source: Option<String>,
    component: String,
    client: String,
    client_url: Option<String>,
    links: Vec<Link>,
    options: HttpSinkOptions,
}

impl fmt::Debug for PagerDutyNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifierBuilder")
            .field(
                "routing_key",
                &self.routing_key.as_ref().map(|_| "[redacted]"),
            )
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("source", &self.source)
            .field("component", &self.component)
            .field("client", &self.client)
            .field("client_url", &self.client_url)
            .field("links", &self.links)
            .field("options", &self.options)
            .finish()
    }
}

impl PagerDutyNotifierBuilder {
    pub(crate) fn new() -> Self {
        Self {
            routing_key: None,
            region: Region::Us,
            endpoint: None,
            source: None,
            component: "vowguard".to_owned(),
            client: "vowguard".to_owned(),
            client_url: None,
            links: Vec::new(),
            options: HttpSinkOptions::new(),
        }
    }

    /// The integration (routing) key of an Events API v2 integration (required).
    pub fn routing_key(mut self, key: SecretString) -> Self {
        self.routing_key = Some(key);
        self
    }

    /// Service region; default [`Region::Us`]. Ignored when an endpoint is set.
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Base URL overriding the region's host (tests, proxies); `/v2/enqueue` is appended.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// `payload.source`; default: this machine's host name, or `vowguard`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// `payload.component`; default `vowguard`.
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = component.into();
        self
    }

    /// `client` shown in PagerDuty; default `vowguard`.
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.client = client.into();
        self
    }

    /// `client_url` shown in PagerDuty (e.g. the vowguard console); default none.
    pub fn client_url(mut self, url: impl Into<String>) -> Self {
        self.client_url = Some(url.into());
        self
    }

    /// Links added to every triggered incident; default none.
    pub fn links(mut self, links: impl IntoIterator<Item = Link>) -> Self {
        self.links = links.into_iter().collect();
        self
    }

    /// Checks every value and builds the notifier. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: a missing
    /// `routing_key`, an `endpoint`, `client_url` or link `href` that is not http(s), an
    /// empty `component`, `client` or `source`.
    pub fn build(self) -> Result<PagerDutyNotifier, Error> {
        let prefix = self.options.key_prefix("notifiers", "pagerduty");
        let url = self.validate(&prefix)?;
        let Some(routing_key) = self.routing_key else {
            return Err(Error::config(format!(
                "`{prefix}.routing_key`: required (the Events API v2 integration key, set with `.routing_key(..)`)"
            )));
        };
        let template = EventTemplate {
            source: self.source.unwrap_or_else(default_source),
            component: self.component,
            client: self.client,
            client_url: self.client_url,
            links: self.links,
        };
        PagerDutyNotifier::from_parts(url, routing_key, template, &self.options.http)
    }

    /// The full enqueue URL (the endpoint or the region's host, plus `/v2/enqueue`).
    fn enqueue_url(&self, prefix: &str) -> Result<Url, Error> {
        let base = match (&self.endpoint, self.region) {
            (Some(endpoint), _) => endpoint.as_str(),
            (None, Region::Eu) => EU_ENDPOINT,
            (None, _) => US_ENDPOINT,
        };
        let full = format!("{}{ENQUEUE_PATH}", base.trim_end_matches('/'));
        vowguard_http::parse_url(&format!("{prefix}.endpoint"), &full)
    }

    /// Checks the values serde cannot (URLs, non-empty names); the enqueue URL.
    fn validate(&self, prefix: &str) -> Result<Url, Error> {
        let url = self.enqueue_url(prefix)?;
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
        Ok(url)
    }
}

/// `payload.source` when none is set: the host name, else `vowguard`.
fn default_source() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= 255)
        .unwrap_or_else(|| "vowguard".to_owned())
}

impl PagerDutyConfig {
    /// The builder for this configuration, with `routing_key` the resolved
    /// `self.routing_key`: the registry's factory resolves the secret reference, then calls
    /// this and [`PagerDutyNotifierBuilder::build`].
    pub fn into_builder(self, routing_key: SecretString) -> PagerDutyNotifierBuilder {
        PagerDutyNotifierBuilder {
            routing_key: Some(routing_key),
            region: self.region,
            endpoint: self.endpoint,
            source: self.source,
            component: self.component,
            client: self.client,
            client_url: self.client_url,
            links: self.links,
            options: HttpSinkOptions::new().with_http(self.http),
        }
    }
}

/// `.id(..)` (default `pagerduty`, named in config errors), `.http(..)` and
/// `.with_options(..)`.
impl HttpSinkBuilder for PagerDutyNotifierBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::{ErrorKind, SecretRef};

    use super::*;

    const KEY: &str = "R0UTINGKEYR0UTINGKEYR0UTINGKEY12";

    fn builder() -> PagerDutyNotifierBuilder {
        PagerDutyNotifier::builder().routing_key(KEY.into())
    }

    fn error(builder: PagerDutyNotifierBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn regions_and_endpoint() {
        let url = |b: PagerDutyNotifierBuilder| b.enqueue_url("n").unwrap().to_string();
        assert_eq!(url(builder()), "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(
            url(builder().region(Region::Eu)),
            "https://events.eu.pagerduty.com/v2/enqueue"
        );
        let config: PagerDutyConfig = toml::from_str(
            "routing_key = { env = \"PD\" }\nregion = \"eu\"\nendpoint = \"http://127.0.0.1:9/\"",
        )
        .unwrap();
        assert_eq!(
            url(config.into_builder(KEY.into())),
            "http://127.0.0.1:9/v2/enqueue"
        );
    }

    #[test]
    fn validation_names_the_key() {
        assert!(error(PagerDutyNotifier::builder()).contains("`notifiers.pagerduty.routing_key`"));
        let js = Link {
            href: "javascript:alert(1)".into(),
            text: None,
        };
        assert!(
            error(builder().id("oncall").links([js])).contains("`notifiers.oncall.links[0].href`")
        );
        assert!(error(builder().client_url("ftp://x")).contains("client_url"));
        assert!(error(builder().component(" ")).contains("`notifiers.pagerduty.component`"));
        assert!(error(builder().source("")).contains("`notifiers.pagerduty.source`"));
        let mut config = PagerDutyConfig::new(SecretRef::Env("PD".into()));
        config.client = String::new();
        assert!(error(config.into_builder(KEY.into())).contains("client"));
        let debug = format!("{:?}", builder());
        assert!(!debug.contains(KEY), "{debug}");
        builder().build().unwrap();
    }
}

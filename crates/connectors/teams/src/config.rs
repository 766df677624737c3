//! Configuration of the `teams` notifier.

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};
use vowguard_http::HttpOptions;

/// A button (`Action.OpenUrl`) shown under every card, e.g. a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CardLink {
    /// The button text.
    pub title: String,
    /// The http(s) URL it opens.
    pub url: String,
}

impl CardLink {
    /// A button showing `title` that opens `url` (checked when the notifier is built).
    pub fn new(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            url: url.into(),
        }
    }
}

/// `[notifiers.<id>]` with `type = "teams"`.
///
/// ```toml
/// [notifiers.secops-teams]
/// type = "teams"
/// webhook_url = { env = "TEAMS_WEBHOOK_URL" }
/// links = [{ title = "Runbook", url = "https://runbooks.example.org/security" }]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TeamsConfig {
    /// The Workflows (Power Automate) "When a Teams webhook request is received" URL. A
    /// secret: it carries a `sig=` signature. Tests point it at a mock server.
    pub webhook_url: SecretRef,
    /// Buttons added to every card; default none. Routes may add more with the `links`
    /// parameter (same shape).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<CardLink>,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

impl TeamsConfig {
    /// A configuration with every default and the given webhook URL reference.
    pub fn new(webhook_url: SecretRef) -> Self {
        Self {
            webhook_url,
            links: Vec::new(),
            http: HttpOptions::default(),
        }
    }
}

/// Checks the link URLs; `prefix` is the component's config path, named in errors.
pub(crate) fn validate_links(links: &[CardLink], prefix: &str) -> Result<(), Error> {
    for (i, link) in links.iter().enumerate() {
        vowguard_http::parse_url(&format!("{prefix}.links[{i}].url"), &link.url)?;
        if link.title.trim().is_empty() {
            return Err(Error::config(format!(
                "`{prefix}.links[{i}].title`: must not be empty"
            )));
        }
    }
    Ok(())
}

//! [`TeamsNotifierBuilder`]: the one way a [`TeamsNotifier`] is made, from code or from
//! config.

use std::fmt;

use secrecy::SecretString;
use vowguard_core::Error;
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{CardLink, TeamsConfig};
use crate::notifier::TeamsNotifier;

/// Builds a [`TeamsNotifier`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`notifiers.<id>.links[0].url`, with `<id>` from [`id`](Self::id), default `teams`).
///
/// Start from [`TeamsNotifier::builder`] (in code) or [`TeamsConfig::into_builder`] (from a
/// `[notifiers.<id>]` table, once its secret is resolved). `Debug` never shows the URL.
///
/// ```no_run
/// use secrecy::SecretString;
/// use vowguard_teams::{CardLink, HttpSinkBuilder, TeamsNotifier};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let url = std::env::var("TEAMS_WEBHOOK_URL").unwrap_or_default();
/// let notifier = TeamsNotifier::builder()
///     .webhook_url(SecretString::from(url))
///     .links([CardLink::new("Runbook", "https://runbooks.example.org/security")])
///     .id("secops-teams")
///     .build()?;
/// # let _ = notifier;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct TeamsNotifierBuilder {
    pub(crate) webhook_url: Option<SecretString>,
    pub(crate) links: Vec<CardLink>,
    pub(crate) options: HttpSinkOptions,
}

impl fmt::Debug for TeamsNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsNotifierBuilder")
            .field(
                "webhook_url",
                &self.webhook_url.as_ref().map(|_| "[redacted]"),
            )
            .field("links", &self.links)
            .field("options", &self.options)
            .finish()
    }
}

impl TeamsNotifierBuilder {
    pub(crate) fn new() -> Self {
        Self {
            webhook_url: None,
            links: Vec::new(),
            options: HttpSinkOptions::new(),
        }
    }

    /// The Workflows (Power Automate) "When a Teams webhook request is received" URL
    /// (required). A secret: it carries a `sig=` signature.
    pub fn webhook_url(mut self, url: SecretString) -> Self {
        self.webhook_url = Some(url);
        self
    }

    /// Buttons added to every card (default none); routes may add more.
    pub fn links(mut self, links: impl IntoIterator<Item = CardLink>) -> Self {
        self.links = links.into_iter().collect();
        self
    }

    /// Checks every value and builds the notifier. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: a missing or
    /// non-http(s) `webhook_url` (never quoted), a link with a bad `url` or an empty
    /// `title`.
    pub fn build(self) -> Result<TeamsNotifier, Error> {
        TeamsNotifier::from_builder(self)
    }
}

impl TeamsConfig {
    /// The builder for this configuration, with `webhook_url` the resolved
    /// `self.webhook_url`: the registry's factory resolves the secret reference, then calls
    /// this and [`TeamsNotifierBuilder::build`].
    pub fn into_builder(self, webhook_url: SecretString) -> TeamsNotifierBuilder {
        TeamsNotifierBuilder {
            webhook_url: Some(webhook_url),
            links: self.links,
            options: HttpSinkOptions::new().with_http(self.http),
        }
    }
}

/// `.id(..)` (default `teams`, named in config errors and every error the notifier
/// returns), `.http(..)` and `.with_options(..)`.
impl HttpSinkBuilder for TeamsNotifierBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;

    use super::*;

    fn error(builder: TeamsNotifierBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_key() {
        assert!(error(TeamsNotifier::builder()).contains("`notifiers.teams.webhook_url`"));
        let b =
            || TeamsNotifier::builder().webhook_url("https://x.example.org/w?sig=S3CR3T".into());
        let bad_link = CardLink {
            title: "Runbook".into(),
            url: "ftp://x".into(),
        };
        assert!(error(b().id("ops").links([bad_link])).contains("notifiers.ops.links[0].url"));
        let empty_title = CardLink {
            title: " ".into(),
            url: "https://x".into(),
        };
        assert!(error(b().links([empty_title])).contains("links[0].title"));
        let err = error(TeamsNotifier::builder().webhook_url("not a url S3CR3T".into()));
        assert!(
            err.contains("webhook_url") && !err.contains("S3CR3T"),
            "{err}"
        );
        let debug = format!("{:?}", b());
        assert!(!debug.contains("S3CR3T"), "{debug}");
        b().build().unwrap();
    }
}

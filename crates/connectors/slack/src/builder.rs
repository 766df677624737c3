//! [`SlackNotifierBuilder`]: the one way a [`SlackNotifier`] is made, from code or from
//! config.

use std::fmt;

use vowguard_core::secrecy::SecretString;
use vowguard_core::{Error, SnapshotFile};
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{Problem, SlackConfig};
use crate::notifier::{SlackCredential, SlackNotifier};

/// Builds a [`SlackNotifier`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`notifiers.<id>.channels`, with `<id>` from [`id`](HttpSinkBuilder::id), default
/// `slack`). The component id and HTTP client options are set through
/// [`HttpSinkBuilder`] (`.id(..)`, `.http(..)`), re-exported by this crate.
///
/// Exactly one of [`webhook_url`](Self::webhook_url) (incoming webhook) and
/// [`bot_token`](Self::bot_token) (`chat.postMessage`, which needs
/// [`channels`](Self::channels)) selects the mode. Start from [`SlackNotifier::builder`] (in
/// code) or [`SlackConfig::into_builder`] (from a `[notifiers.<id>]` table, once its secret
/// is resolved). `Debug` never shows the webhook URL or the token.
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_slack::{HttpSinkBuilder, SlackNotifier};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let notifier = SlackNotifier::builder()
///     .bot_token(SecretString::from("xoxb-0000-0000"))
///     .channels(["#security-emergency", "#wedding-ops-urgent"])
///     .mentions(["here"])
///     .id("secops")
///     .build()?;
/// # let _ = notifier;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SlackNotifierBuilder {
    /// Every non-secret value; its secret references and `http` are unused (the HTTP
    /// options are in `options`).
    config: SlackConfig,
    webhook_url: Option<SecretString>,
    bot_token: Option<SecretString>,
    state_file: Option<SnapshotFile>,
    options: HttpSinkOptions,
}

impl fmt::Debug for SlackNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifierBuilder")
            .field(
                "webhook_url",
                &self.webhook_url.as_ref().map(|_| "[redacted]"),
            )
            .field("bot_token", &self.bot_token.as_ref().map(|_| "[redacted]"))
            .field("channels", &self.config.channels)
            .field("api_base_url", &self.config.api_base_url)
            .field("mentions", &self.config.mentions)
            .field("state_file", &self.state_file.is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl SlackNotifierBuilder {
    pub(crate) fn new() -> Self {
        SlackConfig::default().into_builder(None, None)
    }

    /// Posts through this incoming-webhook URL (a secret: anyone holding it can post).
    /// Excludes [`bot_token`](Self::bot_token).
    pub fn webhook_url(mut self, url: SecretString) -> Self {
        self.webhook_url = Some(url);
        self
    }

    /// Posts with `chat.postMessage` as this bot (`xoxb-...`). Excludes
    /// [`webhook_url`](Self::webhook_url); needs [`channels`](Self::channels).
    pub fn bot_token(mut self, token: SecretString) -> Self {
        self.bot_token = Some(token);
        self
    }

    /// Channel names (`#security-emergency`) or ids (`C0123ABC`) a bot-mode alert is posted
    /// to; a route can replace them per alert. Not allowed with a webhook.
    pub fn channels<I, S>(mut self, channels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.channels = channels.into_iter().map(Into::into).collect();
        self
    }

    /// Who every triggered alert notifies: `channel`, `here`, `everyone`, a user id
    /// (`U123ABC`) or a user group (`subteam^S123` or `S123`). Default: nobody.
    pub fn mentions<I, S>(mut self, mentions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.mentions = mentions.into_iter().map(Into::into).collect();
        self
    }

    /// Web API base URL, default [`DEFAULT_API_BASE_URL`](crate::DEFAULT_API_BASE_URL)
    /// (tests point it at a mock).
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.config.api_base_url = Some(url.into());
        self
    }

    /// Keeps the per-alert channel memory in `file` (loaded at build, replaced on every
    /// change), so a restart neither posts an alert again to a channel that already has it
    /// nor loses track of a partial delivery. Default: in memory only.
    pub fn state_file(mut self, file: SnapshotFile) -> Self {
        self.state_file = Some(file);
        self
    }

    /// Checks every value and builds the notifier. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: neither or
    /// both of `webhook_url` and `bot_token`, `channels` missing (bot) or set (webhook) or
    /// malformed, a malformed `mentions` entry, a URL that is not http(s).
    pub fn build(self) -> Result<SlackNotifier, Error> {
        let prefix = self.options.key_prefix("notifiers", crate::KIND);
        self.build_unqualified()
            .map_err(|e| vowguard_core::qualify_error(&prefix, &e))
    }

    /// [`build`](Self::build), with errors naming the field only.
    fn build_unqualified(self) -> Result<SlackNotifier, Error> {
        let Self {
            config,
            webhook_url,
            bot_token,
            state_file,
            options,
        } = self;
        let credential = match (webhook_url, bot_token) {
            (Some(url), None) => SlackCredential::WebhookUrl(url),
            (None, Some(token)) => SlackCredential::BotToken(token),
            (Some(_), Some(_)) => {
                return Err(Problem::both_credentials().into_error());
            }
            (None, None) => return Err(Problem::no_credential().into_error()),
        };
        let notifier = SlackNotifier::from_parts(&config, credential, options)?;
        Ok(match state_file {
            Some(file) => notifier.with_state_file(file),
            None => notifier,
        })
    }
}

impl SlackConfig {
    /// The builder for this configuration, with `webhook_url` / `bot_token` the resolved
    /// `self.webhook_url` / `self.bot_token` (each `None` when not configured): the
    /// registry's factory resolves the secret references, then calls this and
    /// [`SlackNotifierBuilder::build`].
    pub fn into_builder(
        mut self,
        webhook_url: Option<SecretString>,
        bot_token: Option<SecretString>,
    ) -> SlackNotifierBuilder {
        self.webhook_url = None;
        self.bot_token = None;
        let options = HttpSinkOptions::new().with_http(std::mem::take(&mut self.http));
        SlackNotifierBuilder {
            config: self,
            webhook_url,
            bot_token,
            state_file: None,
            options,
        }
    }
}

/// `.id(..)` (default `slack`, named in config errors and every error the notifier
/// returns), `.http(..)` and `.with_options(..)`.
impl HttpSinkBuilder for SlackNotifierBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;

    use super::*;

    fn error(builder: SlackNotifierBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_field() {
        let hook = || SlackNotifier::builder().webhook_url("https://hooks.slack.com/x".into());
        let bot = || SlackNotifier::builder().bot_token("xoxb-1".into());
        assert!(error(SlackNotifier::builder()).contains("exactly one"));
        assert!(error(hook().bot_token("xoxb-1".into())).contains("not both"));
        assert!(error(bot()).contains("`notifiers.slack.channels`"));
        assert!(error(hook().id("ops").channels(["#a"])).contains("`notifiers.ops.channels`"));
        assert!(
            error(bot().channels(["#a"]).mentions(["nobody at all"]))
                .contains("`notifiers.slack.mentions`")
        );
        let err = error(SlackNotifier::builder().webhook_url("ftp://SECRET-HOOK".into()));
        assert!(
            err.contains("`notifiers.slack.webhook_url`") && !err.contains("SECRET-HOOK"),
            "{err}"
        );
        bot().channels(["#a"]).build().unwrap();
        hook().build().unwrap();
    }

    #[test]
    fn debug_hides_the_secrets() {
        let debug = format!(
            "{:?}",
            SlackNotifier::builder()
                .webhook_url("https://hooks.slack.com/SECRET-1".into())
                .bot_token("xoxb-SECRET-2".into())
        );
        assert!(!debug.contains("SECRET"), "{debug}");
    }
}

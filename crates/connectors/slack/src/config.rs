//! The `[notifiers.<id>]` table of a `type = "slack"` notifier, and mention parsing.
//!
//! Two modes, exactly one of which is configured:
//!
//! * `webhook_url`: an incoming webhook (a secret URL) that posts to the one channel it was
//!   created for;
//! * `bot_token` + `channels`: `chat.postMessage` to each listed channel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vowguard_core::{BuildContext, Error, SecretRef};
use vowguard_http::HttpOptions;

/// Where the Slack Web API lives unless `api_base_url` says otherwise.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api";

/// Longest channel name or id accepted (Slack names are at most 80 characters, plus `#`).
const MAX_CHANNEL_LEN: usize = 100;

/// Configuration of the Slack notifier.
///
/// ```toml
/// [notifiers.secops]
/// type = "slack"
/// bot_token = { env = "SLACK_BOT_TOKEN" }
/// channels = ["#security-emergency", "#wedding-ops-urgent"]
/// mentions = ["here", "subteam^S0123ABC"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SlackConfig {
    /// Incoming-webhook URL (a secret: anyone holding it can post). Mutually exclusive
    /// with `bot_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretRef>,
    /// Bot token (`xoxb-...`) for `chat.postMessage`. Mutually exclusive with `webhook_url`;
    /// needs `channels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<SecretRef>,
    /// Channel names (`#security-emergency`) or ids (`C0123ABC`) a bot-mode alert is posted
    /// to. Required with `bot_token`, not allowed with `webhook_url`. A route can replace
    /// them per alert with the `channel` / `channels` params.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Web API base URL, default [`DEFAULT_API_BASE_URL`] (tests point it at a mock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// Who is notified by every triggered alert: `channel`, `here`, `everyone`, a user id
    /// (`U123ABC`) or a user group (`subteam^S123` or `S123`). Default: nobody.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Which of the two delivery modes a config selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Incoming webhook: fixed channel.
    Webhook,
    /// `chat.postMessage` with a bot token.
    Bot,
}

/// A config problem: the key at fault (none for the component as a whole) and what is
/// wrong with it. The caller turns it into an error that names the full key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
}

impl Problem {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    /// Both credentials are set.
    pub(crate) fn both_credentials() -> Self {
        Self::whole(
            "set exactly one of `webhook_url` (incoming webhook) and `bot_token` (chat.postMessage), not both",
        )
    }

    /// No credential is set.
    pub(crate) fn no_credential() -> Self {
        Self::whole(
            "set exactly one of `webhook_url` (incoming webhook) and `bot_token` (chat.postMessage)",
        )
    }

    /// The problem as an error naming the field relative to the component.
    pub(crate) fn into_error(self) -> Error {
        match self.field {
            Some(field) => Error::config(format!("`{field}`: {}", self.message)),
            None => Error::config(self.message),
        }
    }

    /// The problem as an error naming the full key, e.g. `notifiers.secops.mentions`.
    pub(crate) fn into_error_in(self, ctx: &BuildContext<'_>) -> Error {
        match self.field {
            Some(field) => ctx.config_error(field, self.message),
            None => Error::config(format!(
                "`{}.{}`: {}",
                ctx.role.section(),
                ctx.id,
                self.message
            )),
        }
    }
}

impl SlackConfig {
    /// The mode selected by `webhook_url` / `bot_token`; exactly one must be set.
    pub fn mode(&self) -> Result<Mode, Error> {
        self.mode_problem().map_err(Problem::into_error)
    }

    pub(crate) fn mode_problem(&self) -> Result<Mode, Problem> {
        match (&self.webhook_url, &self.bot_token) {
            (Some(_), None) => Ok(Mode::Webhook),
            (None, Some(_)) => Ok(Mode::Bot),
            (Some(_), Some(_)) => Err(Problem::both_credentials()),
            (None, None) => Err(Problem::no_credential()),
        }
    }

    /// Checks everything but the secrets for `mode`: channels, mentions, base URL.
    pub(crate) fn validate(&self, mode: Mode) -> Result<Validated, Problem> {
        let channels = match mode {
            Mode::Webhook => {
                if !self.channels.is_empty() {
                    return Err(Problem::new(
                        "channels",
                        "an incoming webhook always posts to the channel it was created for; \
                         remove `channels` or use `bot_token`",
                    ));
                }
                Vec::new()
            }
            Mode::Bot => {
                if self.channels.is_empty() {
                    return Err(Problem::new(
                        "channels",
                        "list at least one channel to post to, e.g. [\"#security-emergency\"]",
                    ));
                }
                clean_channels(&self.channels).map_err(|m| Problem::new("channels", m))?
            }
        };
        let mut mentions = Vec::new();
        for m in &self.mentions {
            let mention = m
                .parse::<Mention>()
                .map_err(|e| Problem::new("mentions", e))?;
            if !mentions.contains(&mention) {
                mentions.push(mention);
            }
        }
        let base = self
            .api_base_url
            .as_deref()
            .unwrap_or(DEFAULT_API_BASE_URL)
            .trim_end_matches('/')
            .to_owned();
        Ok(Validated {
            channels,
            mentions,
            api_base_url: base,
        })
    }
}

/// The parts of a config checked and normalised.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub(crate) channels: Vec<String>,
    pub(crate) mentions: Vec<Mention>,
    pub(crate) api_base_url: String,
}

/// Checks channel names/ids and removes duplicates, keeping the order.
pub(crate) fn clean_channels<S: AsRef<str>>(channels: &[S]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(channels.len());
    for c in channels {
        let c = c.as_ref().trim();
        if c.is_empty() || c == "#" {
            return Err("a channel name is empty".to_owned());
        }
        if c.chars().count() > MAX_CHANNEL_LEN {
            return Err(format!(
                "channel name longer than {MAX_CHANNEL_LEN} characters"
            ));
        }
        if c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(format!(
                "channel {c:?} contains whitespace or control characters"
            ));
        }
        if !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
    }
    Ok(out)
}

/// Someone a message notifies, as the config asks for it.
///
/// Only configuration (the notifier's `mentions`, a route's `mention` param) creates
/// mentions; event text that looks like one is escaped and pings nobody.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mention {
    /// `<!channel>`: every member of the channel.
    Channel,
    /// `<!here>`: active members of the channel.
    Here,
    /// `<!everyone>`: everyone in the workspace (only in #general).
    Everyone,
    /// `<@U123ABC>`: one user, by id.
    User(String),
    /// `<!subteam^S123>`: a user group, by id.
    Group(String),
}

const MENTION_FORMS: &str = "expected `channel`, `here`, `everyone`, a user id like `U123ABC`, \
     or a user group like `subteam^S123` / `S123`";

/// True for a Slack id: the given prefix letter, then at least one uppercase letter or digit.
fn is_id(s: &str, prefixes: &[char]) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if prefixes.contains(&c))
        && s.len() >= 2
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl FromStr for Mention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "channel" => return Ok(Self::Channel),
            "here" => return Ok(Self::Here),
            "everyone" => return Ok(Self::Everyone),
            _ => {}
        }
        if let Some(group) = s.strip_prefix("subteam^") {
            if is_id(group, &['S']) {
                return Ok(Self::Group(group.to_owned()));
            }
        } else if is_id(s, &['S']) {
            return Ok(Self::Group(s.to_owned()));
        } else if is_id(s, &['U', 'W']) {
            return Ok(Self::User(s.to_owned()));
        }
        Err(format!("{s:?} is not a mention: {MENTION_FORMS}"))
    }
}

impl Mention {
    /// The Slack markup that notifies: `<!channel>`, `<@U123>`, `<!subteam^S123>`...
    pub fn render(&self) -> String {
        match self {
            Self::Channel => "<!channel>".to_owned(),
            Self::Here => "<!here>".to_owned(),
            Self::Everyone => "<!everyone>".to_owned(),
            Self::User(id) => format!("<@{id}>"),
            Self::Group(id) => format!("<!subteam^{id}>"),
        }
    }
}

impl fmt::Display for Mention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_forms() {
        let cases = [
            ("channel", "<!channel>"),
            ("here", "<!here>"),
            ("everyone", "<!everyone>"),
            ("U123ABC", "<@U123ABC>"),
            ("W0ENTERPRISE1", "<@W0ENTERPRISE1>"),
            ("subteam^S123", "<!subteam^S123>"),
            ("S123", "<!subteam^S123>"),
        ];
        for (input, rendered) in cases {
            assert_eq!(
                input.parse::<Mention>().unwrap().render(),
                rendered,
                "{input}"
            );
        }
        for bad in [
            "",
            "@channel",
            "Channel",
            "u123",
            "U",
            "U12 3",
            "U1>",
            "<!channel>",
            "subteam^X1",
            "subteam^S1|x",
            "S1&",
            "C123",
            "U123abc",
        ] {
            let err = bad.parse::<Mention>().unwrap_err();
            assert!(err.contains("is not a mention"), "{bad}: {err}");
        }
    }

    fn parse(text: &str) -> SlackConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn modes() {
        let c = parse("webhook_url = { env = \"W\" }");
        assert_eq!(c.mode().unwrap(), Mode::Webhook);
        let c = parse("bot_token = { env = \"T\" }\nchannels = [\"#a\"]");
        assert_eq!(c.mode().unwrap(), Mode::Bot);
        for text in [
            "",
            "webhook_url = { env = \"W\" }\nbot_token = { env = \"T\" }",
        ] {
            let err = parse(text).mode().unwrap_err().to_string();
            assert!(
                err.contains("webhook_url") && err.contains("bot_token"),
                "{err}"
            );
        }
    }

    #[test]
    fn validation() {
        let c = parse("bot_token = { env = \"T\" }");
        assert_eq!(c.validate(Mode::Bot).unwrap_err().field, Some("channels"));
        let c = parse("webhook_url = { env = \"W\" }\nchannels = [\"#a\"]");
        assert_eq!(
            c.validate(Mode::Webhook).unwrap_err().field,
            Some("channels")
        );
        let c = parse("bot_token = { env = \"T\" }\nchannels = [\"#a\", \"# b\"]");
        assert_eq!(c.validate(Mode::Bot).unwrap_err().field, Some("channels"));
        let c = parse("bot_token = { env = \"T\" }\nchannels = [\"#a\"]\nmentions = [\"@bob\"]");
        let p = c.validate(Mode::Bot).unwrap_err();
        assert_eq!(p.field, Some("mentions"));
        assert!(p.message.contains("\"@bob\""), "{}", p.message);
        let c = parse(
            "bot_token = { env = \"T\" }\nchannels = [\"#a\", \"#a\", \"C1\"]\n\
             mentions = [\"here\", \"here\", \"S1\"]\napi_base_url = \"http://127.0.0.1:1/api/\"",
        );
        let v = c.validate(Mode::Bot).unwrap();
        assert_eq!(v.channels, ["#a", "C1"]);
        assert_eq!(v.mentions, [Mention::Here, Mention::Group("S1".into())]);
        assert_eq!(v.api_base_url, "http://127.0.0.1:1/api");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<SlackConfig>("webhook_url = { env = \"W\" }\nchanel = \"#a\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("chanel"), "{err}");
    }
}

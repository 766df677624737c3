//! [`SmsNotifierBuilder`]: the one way an [`SmsNotifier`] is made, from code or from config.

use std::fmt;

use secrecy::SecretString;
use vowguard_core::{Error, SnapshotFile};
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{Settings, SmsConfig};
use crate::notifier::SmsNotifier;

/// Builds an [`SmsNotifier`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`notifiers.<id>.to[0]`, with `<id>` from [`id`](HttpSinkBuilder::id), default `sms`).
/// The component id and HTTP client options are set through [`HttpSinkBuilder`]
/// (`.id(..)`, `.http(..)`), re-exported by this crate.
///
/// Start from [`SmsNotifier::builder`] (in code) or [`SmsConfig::into_builder`] (from a
/// `[notifiers.<id>]` table, once its secret is resolved). `Debug` never shows the token.
///
/// ```no_run
/// use secrecy::SecretString;
/// use vowguard_sms::{HttpSinkBuilder, SmsNotifier};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let notifier = SmsNotifier::builder("AC0123456789abcdef0123456789abcdef")
///     .auth_token(SecretString::from("twilio-auth-token"))
///     .from("+15005550006")
///     .to(["+447700900123"])
///     .link_base("https://sec.example.org/a/")
///     .id("oncall-sms")
///     .build()?;
/// # let _ = notifier;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SmsNotifierBuilder {
    settings: Settings,
    auth_token: Option<SecretString>,
    state_file: Option<SnapshotFile>,
    options: HttpSinkOptions,
}

impl fmt::Debug for SmsNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsNotifierBuilder")
            .field("settings", &self.settings)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[redacted]"),
            )
            .field("state_file", &self.state_file.is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl SmsNotifierBuilder {
    pub(crate) fn new(account_sid: String) -> Self {
        Self {
            settings: Settings::new(account_sid),
            auth_token: None,
            state_file: None,
            options: HttpSinkOptions::new(),
        }
    }

    /// The account's auth token (or an API key secret); required.
    pub fn auth_token(mut self, token: SecretString) -> Self {
        self.auth_token = Some(token);
        self
    }

    /// The sending number, E.164. Exactly one of this and
    /// [`messaging_service_sid`](Self::messaging_service_sid).
    pub fn from(mut self, number: impl Into<String>) -> Self {
        self.settings.from = Some(number.into());
        self
    }

    /// A Messaging Service SID (`MG` and 32 hex digits), instead of [`from`](Self::from).
    pub fn messaging_service_sid(mut self, sid: impl Into<String>) -> Self {
        self.settings.messaging_service_sid = Some(sid.into());
        self
    }

    /// Recipients, E.164; routes may replace them. Default: none (every route must then set
    /// them).
    pub fn to<I, S>(mut self, numbers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.to = numbers.into_iter().map(Into::into).collect();
        self
    }

    /// Base URL of the Twilio API; default `https://api.twilio.com` (tests use a mock).
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.api_base_url = url.into();
        self
    }

    /// Ends messages with this URL followed by the alert id (instead of a short reference);
    /// at most 100 GSM-7 characters.
    pub fn link_base(mut self, url: impl Into<String>) -> Self {
        self.settings.link_base = Some(url.into());
        self
    }

    /// Keeps the per-alert recipient log in `file` (loaded at build, replaced on every
    /// change), so a restart never texts a recipient again an alert they already got.
    /// Default: in memory only.
    pub fn state_file(mut self, file: SnapshotFile) -> Self {
        self.state_file = Some(file);
        self
    }

    /// Checks every value and builds the notifier. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: a missing
    /// `auth_token`, a malformed `account_sid` or `messaging_service_sid`, neither or both
    /// of `from` and `messaging_service_sid`, a number that is not E.164, a bad URL.
    pub fn build(self) -> Result<SmsNotifier, Error> {
        let prefix = self.options.key_prefix("notifiers", crate::KIND);
        let Some(auth_token) = self.auth_token else {
            return Err(Error::config(format!(
                "`{prefix}.auth_token`: required (the Twilio auth token, set with `.auth_token(..)`)"
            )));
        };
        let notifier = SmsNotifier::from_parts(&prefix, &self.settings, auth_token, &self.options)?;
        Ok(match self.state_file {
            Some(file) => notifier.with_state_file(file),
            None => notifier,
        })
    }
}

impl SmsConfig {
    /// The builder for this configuration, with `auth_token` the resolved
    /// `self.auth_token`: the registry's factory resolves the secret reference, then calls
    /// this and [`SmsNotifierBuilder::build`].
    pub fn into_builder(self, auth_token: SecretString) -> SmsNotifierBuilder {
        SmsNotifierBuilder {
            settings: self.settings(),
            auth_token: Some(auth_token),
            state_file: None,
            options: HttpSinkOptions::new().with_http(self.http),
        }
    }
}

/// `.id(..)` (default `sms`, named in config errors), `.http(..)` and `.with_options(..)`.
impl HttpSinkBuilder for SmsNotifierBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;

    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn error(builder: SmsNotifierBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_key() {
        let b = || SmsNotifier::builder(SID).auth_token("TOKEN-SECRET".into());
        assert!(
            error(SmsNotifier::builder(SID).from("+15005550006"))
                .contains("`notifiers.sms.auth_token`")
        );
        assert!(error(b()).contains("`from`"));
        assert!(
            error(b().id("oncall").from("+15005550006").to(["12345"]))
                .contains("`notifiers.oncall.to[0]`")
        );
        assert!(
            error(
                SmsNotifier::builder("AC1")
                    .auth_token("t".into())
                    .from("+15005550006")
            )
            .contains("account_sid")
        );
        let debug = format!("{:?}", b());
        assert!(!debug.contains("TOKEN-SECRET"), "{debug}");
        b().from("+15005550006")
            .to(["+447700900123"])
            .build()
            .unwrap();
    }
}

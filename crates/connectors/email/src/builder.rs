//! [`EmailNotifierBuilder`]: the one way an [`EmailNotifier`] is made, from code or from
//! config.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use vowguard_core::Error;

use crate::config::{EmailConfig, TlsMode};
use crate::notifier::EmailNotifier;

/// Builds an [`EmailNotifier`]; every value is checked at [`build`](Self::build) (without
/// the network), and an invalid one is a [`Config`](vowguard_core::ErrorKind::Config)
/// error naming the field (with an [`id`](Self::id), the full key `notifiers.<id>.<field>`).
///
/// Start from [`EmailNotifier::builder`] (in code) or [`EmailConfig::into_builder`] (from a
/// `[notifiers.<id>]` table, once its secret is resolved). `Debug` never shows the password.
///
/// ```no_run
/// use secrecy::SecretString;
/// use vowguard_email::{EmailNotifier, TlsMode};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let notifier = EmailNotifier::builder("smtp.example.org")
///     .from("vowguard <alerts@example.org>")
///     .to(["secops@example.org"])
///     .tls(TlsMode::Tls)
///     .credentials("alerts", SecretString::from("smtp-password"))
///     .id("mail")
///     .build()?;
/// # let _ = notifier;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct EmailNotifierBuilder {
    /// Every non-secret value; its `password` reference is unused (always `None`).
    config: EmailConfig,
    password: Option<SecretString>,
    config_dir: PathBuf,
    id: Option<String>,
}

impl fmt::Debug for EmailNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifierBuilder")
            .field("config", &self.config)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("config_dir", &self.config_dir)
            .field("id", &self.id)
            .finish()
    }
}

impl EmailNotifierBuilder {
    pub(crate) fn new(host: String) -> Self {
        EmailConfig::new(host, String::new(), Vec::new()).into_builder(None)
    }

    /// The sender mailbox (required), e.g. `vowguard <alerts@example.org>`.
    pub fn from(mut self, mailbox: impl Into<String>) -> Self {
        self.config.from = mailbox.into();
        self
    }

    /// The default recipients (at least one); a route's `params.recipients` replaces them.
    pub fn to<I, S>(mut self, mailboxes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.to = mailboxes.into_iter().map(Into::into).collect();
        self
    }

    /// SMTP server port; default by [`tls`](Self::tls): 587, 465 or 25.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = Some(port);
        self
    }

    /// Connection security; [`TlsMode::Starttls`] by default.
    pub fn tls(mut self, tls: TlsMode) -> Self {
        self.config.tls = tls;
        self
    }

    /// Extra root CA certificate(s), PEM, trusted in addition to the platform's roots; a
    /// relative path is taken from [`config_dir`](Self::config_dir).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.ca_file = Some(path.into());
        self
    }

    /// SMTP AUTH with this user name and password.
    pub fn credentials(mut self, username: impl Into<String>, password: SecretString) -> Self {
        self.config.username = Some(username.into());
        self.password = Some(password);
        self
    }

    /// Put in front of every subject; `[vowguard]` by default.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.subject_prefix = prefix.into();
        self
    }

    /// Most pooled SMTP connections; 4 by default.
    pub fn pool_max_size(mut self, size: u32) -> Self {
        self.config.pool_max_size = size;
        self
    }

    /// Timeout of each network operation; 10 seconds by default.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The directory a relative [`ca_file`](Self::ca_file) is taken from (the config
    /// file's); the working directory by default.
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = dir.into();
        self
    }

    /// The component id (the config table key): errors carry it and name full config keys
    /// (`notifiers.<id>.<field>`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Checks every value, loads the CA file and builds the notifier; does not connect.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the field: a bad `host`,
    /// `from` or `to` mailbox, no recipient, a user without a password or the reverse, a
    /// password over plain SMTP to a non-local host, an unreadable `ca_file`, a zero
    /// `port`, `pool_max_size` or `timeout`.
    pub fn build(self) -> Result<EmailNotifier, Error> {
        EmailNotifier::from_parts(self.id, self.config, self.password, &self.config_dir)
    }
}

impl EmailConfig {
    /// The builder for this configuration, with `password` the resolved `self.password`
    /// (`None` when not configured): the registry's factory resolves the secret reference,
    /// then calls this and [`EmailNotifierBuilder::build`].
    pub fn into_builder(mut self, password: Option<SecretString>) -> EmailNotifierBuilder {
        self.password = None;
        EmailNotifierBuilder {
            config: self,
            password,
            config_dir: PathBuf::from("."),
            id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;

    use super::*;

    fn error(builder: EmailNotifierBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_field() {
        let b = || {
            EmailNotifier::builder("smtp.example.org")
                .from("alerts@example.org")
                .to(["secops@example.org"])
        };
        assert!(
            error(EmailNotifier::builder("smtp.example.org").to(["a@example.org"]))
                .contains("`from`")
        );
        assert!(error(b().to(Vec::<String>::new())).contains("`to`"));
        assert!(error(b().port(0)).contains("`port`"));
        assert!(
            error(b().tls(TlsMode::None).credentials("u", "PW-SECRET".into())).contains("`tls`")
        );
        let err = error(b().id("mail").pool_max_size(0));
        assert!(
            err.starts_with("mail: `notifiers.mail.pool_max_size`"),
            "{err}"
        );
        let debug = format!("{:?}", b().credentials("u", "PW-SECRET".into()));
        assert!(!debug.contains("PW-SECRET"), "{debug}");
        b().build().unwrap();
    }
}

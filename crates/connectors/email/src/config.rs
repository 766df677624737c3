//! Configuration of the `email` notifier (`[notifiers.<id>]` with `type = "email"`).
//!
//! ```toml
//! [notifiers.mail]
//! type = "email"
//! host = "smtp.example.org"
//! # port = 587                      # default by `tls`: starttls 587, tls 465, none 25
//! # tls = "starttls"                # "starttls" (default, never downgrades) | "tls" | "none"
//! username = "vowguard"
//! password = { env = "SMTP_PASSWORD" }
//! from = "vowguard <alerts@example.org>"
//! to = ["secops@example.org"]
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain connection upgraded with `STARTTLS` (RFC 3207). The upgrade is required: a
    /// server that does not offer it is refused, never used in plain text. Port 587.
    #[default]
    Starttls,
    /// Implicit TLS from the first byte (RFC 8314 "submissions"). Port 465.
    Tls,
    /// No encryption at all. Only when written explicitly; meant for a relay on the same
    /// host or network segment. Port 25.
    None,
}

impl TlsMode {
    /// The port used when `port` is not configured.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Starttls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }

    /// The value as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }
}

impl<'de> Deserialize<'de> for TlsMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.as_str() {
            "starttls" => Ok(Self::Starttls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => Err(serde::de::Error::custom(format!(
                "`tls` must be \"starttls\", \"tls\" or \"none\" (plain SMTP only when \
                 written as tls = \"none\"), got {other:?}"
            ))),
        }
    }
}

/// Configuration of the email notifier. Every key but `host`, `from` and `to` has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EmailConfig {
    /// SMTP server host name (or IP address); also the name the TLS certificate must carry.
    pub host: String,
    /// SMTP server port; defaults by [`EmailConfig::tls`]: 587, 465 or 25.
    #[serde(default)]
    pub port: Option<u16>,
    /// Connection security; `starttls` by default.
    #[serde(default)]
    pub tls: TlsMode,
    /// Extra root CA certificate(s), PEM, trusted in addition to the platform's roots (for
    /// private relays and tests). Certificate verification is always on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user name; set together with `password`.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP AUTH password (`{ env = "..." }` or `{ file = "..." }`); set together with
    /// `username`.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Sender mailbox, e.g. `vowguard <alerts@example.org>`.
    pub from: String,
    /// Default recipients; a route's `params.recipients` replaces them.
    pub to: Vec<String>,
    /// Put in front of every subject; `[vowguard]` by default.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Most pooled SMTP connections; 4 by default.
    #[serde(default = "default_pool_max_size")]
    pub pool_max_size: u32,
    /// Timeout of each network operation (connect, each SMTP command); `"10s"` by
    /// default. One whole delivery may take at most three times this.
    #[serde(default = "default_timeout", with = "vowguard_core::duration")]
    pub timeout: Duration,
}

fn default_subject_prefix() -> String {
    "[vowguard]".to_owned()
}

fn default_pool_max_size() -> u32 {
    4
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl EmailConfig {
    /// A configuration with every default, for `host`, `from` and `to`.
    pub fn new(host: impl Into<String>, from: impl Into<String>, to: Vec<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            tls: TlsMode::default(),
            ca_file: None,
            username: None,
            password: None,
            from: from.into(),
            to,
            subject_prefix: default_subject_prefix(),
            pool_max_size: default_pool_max_size(),
            timeout: default_timeout(),
        }
    }

    /// The port in use: the configured one or the default of the TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    /// Checks everything that can be checked without the network. `key` turns a field name
    /// into the config key named in errors (e.g. `to[1]` → `notifiers.mail.to[1]`).
    pub(crate) fn validate(
        &self,
        key: &dyn Fn(&str) -> String,
        has_password: bool,
    ) -> Result<Validated, Error> {
        let host = self.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::config(format!(
                "`{}`: expected a host name or IP address, got {:?}",
                key("host"),
                self.host
            )));
        }
        if self.port == Some(0) {
            return Err(Error::config(format!("`{}`: must not be 0", key("port"))));
        }
        let from = parse_mailbox(&self.from)
            .map_err(|reason| Error::config(format!("`{}`: {reason}", key("from"))))?;
        if self.to.is_empty() {
            return Err(Error::config(format!(
                "`{}`: list at least one recipient",
                key("to")
            )));
        }
        let to = self
            .to
            .iter()
            .enumerate()
            .map(|(i, address)| {
                parse_mailbox(address).map_err(|reason| {
                    Error::config(format!("`{}`: {reason}", key(&format!("to[{i}]"))))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        match (&self.username, has_password) {
            (Some(_), false) => {
                return Err(Error::config(format!(
                    "`{}`: `username` is set but `password` is not; set both or neither",
                    key("password")
                )));
            }
            (None, true) => {
                return Err(Error::config(format!(
                    "`{}`: `password` is set but `username` is not; set both or neither",
                    key("username")
                )));
            }
            (Some(user), true) if user.trim().is_empty() => {
                return Err(Error::config(format!(
                    "`{}`: must not be empty",
                    key("username")
                )));
            }
            _ => {}
        }
        if self.tls == TlsMode::None && has_password && !is_loopback(host) {
            return Err(Error::config(format!(
                "`{}`: the password would cross the network in plain text to {host}; use \
                 tls = \"starttls\" or \"tls\" (plain SMTP with AUTH is accepted only for a \
                 relay on localhost)",
                key("tls")
            )));
        }
        if self.pool_max_size == 0 {
            return Err(Error::config(format!(
                "`{}`: must be at least 1",
                key("pool_max_size")
            )));
        }
        if self.timeout.is_zero() {
            return Err(Error::config(format!(
                "`{}`: must be more than 0s",
                key("timeout")
            )));
        }
        if self.subject_prefix.chars().any(char::is_control) {
            return Err(Error::config(format!(
                "`{}`: must not contain control characters (line breaks would end the header)",
                key("subject_prefix")
            )));
        }
        Ok(Validated {
            host: host.to_owned(),
            from,
            to,
        })
    }
}

/// What [`EmailConfig::validate`] parsed.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub(crate) host: String,
    pub(crate) from: Mailbox,
    pub(crate) to: Vec<Mailbox>,
}

/// Parses one mailbox (`user@example.org` or `Name <user@example.org>`), refusing anything
/// with control characters.
pub(crate) fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    if text.chars().any(char::is_control) {
        return Err("not a valid email address: contains control characters".to_owned());
    }
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("not a valid email address {text:?} ({e})"))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(field: &str) -> String {
        format!("notifiers.mail.{field}")
    }

    fn parse(text: &str) -> Result<EmailConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults() {
        let c = parse(
            "host = \"smtp.example.org\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]",
        )
        .unwrap();
        assert_eq!(c.tls, TlsMode::Starttls, "secure by default");
        assert_eq!(c.effective_port(), 587);
        assert_eq!(c.subject_prefix, "[vowguard]");
        assert_eq!(c.pool_max_size, 4);
        assert_eq!(c.timeout, std::time::Duration::from_millis(10_000));
        assert_eq!(
            c,
            EmailConfig::new(
                "smtp.example.org",
                "a@example.org",
                vec!["b@example.org".into()]
            )
        );
        let mut tls = c;
        tls.tls = TlsMode::Tls;
        assert_eq!(tls.effective_port(), 465);
        tls.tls = TlsMode::None;
        assert_eq!(tls.effective_port(), 25);
        tls.port = Some(2525);
        assert_eq!(tls.effective_port(), 2525);
    }

    #[test]
    fn unknown_keys_and_tls_values_are_refused() {
        let base = "host = \"h\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n";
        let err = parse(&format!("{base}tls = \"plain\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("starttls") && err.contains("none"), "{err}");
        let err = parse(&format!("{base}starttls = false"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `starttls`"), "{err}");
        // The runtime reports `message()` (as `BuildContext::parse` does), which does not
        // quote the offending line, so an inline password is not echoed back.
        let err = parse(&format!("{base}password = \"hunter2\"")).unwrap_err();
        assert!(
            err.message().contains("inline secrets are not accepted"),
            "{err}"
        );
        assert!(!err.message().contains("hunter2"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let ok = EmailConfig::new(
            "smtp.example.org",
            "vowguard <a@example.org>",
            vec!["b@example.org".into()],
        );
        let v = ok.validate(&key, false).unwrap();
        assert_eq!(v.from.email.to_string(), "a@example.org");
        assert_eq!(v.to.len(), 1);

        let cases: Vec<(EmailConfig, bool, &str)> = vec![
            (
                EmailConfig {
                    to: vec!["b@example.org".into(), "not an address".into()],
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.to[1]`: not a valid email address",
            ),
            (
                EmailConfig {
                    to: vec![],
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.to`: list at least one recipient",
            ),
            (
                EmailConfig {
                    from: "alerts".into(),
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.from`: not a valid email address",
            ),
            (
                EmailConfig {
                    from: "a@example.org\r\nBcc: x@example.org".into(),
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.from`: not a valid email address: contains control characters",
            ),
            (
                EmailConfig {
                    username: Some("u".into()),
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.password`: `username` is set but `password` is not",
            ),
            (
                ok.clone(),
                true,
                "`notifiers.mail.username`: `password` is set but `username` is not",
            ),
            (
                EmailConfig {
                    tls: TlsMode::None,
                    username: Some("u".into()),
                    ..ok.clone()
                },
                true,
                "`notifiers.mail.tls`: the password would cross the network in plain text",
            ),
            (
                EmailConfig {
                    host: " ".into(),
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.host`",
            ),
            (
                EmailConfig {
                    port: Some(0),
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.port`",
            ),
            (
                EmailConfig {
                    pool_max_size: 0,
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.pool_max_size`",
            ),
            (
                EmailConfig {
                    timeout: Duration::ZERO,
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.timeout`",
            ),
            (
                EmailConfig {
                    subject_prefix: "[x]\r\nBcc: y@example.org".into(),
                    ..ok.clone()
                },
                false,
                "`notifiers.mail.subject_prefix`",
            ),
        ];
        for (config, has_password, expected) in cases {
            let err = config.validate(&key, has_password).unwrap_err();
            assert_eq!(err.kind(), vowguard_core::ErrorKind::Config);
            assert!(err.to_string().starts_with(expected), "{err}");
        }
        // Plain SMTP with AUTH is fine towards a relay on this host.
        let local = EmailConfig {
            host: "127.0.0.1".into(),
            tls: TlsMode::None,
            username: Some("u".into()),
            ..ok
        };
        local.validate(&key, true).unwrap();
    }
}

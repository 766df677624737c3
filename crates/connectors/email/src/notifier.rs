//! The SMTP calls: one pool of `TCP_NODELAY` connections per notifier (see `smtp.rs`), and
//! the one function ([`classify`]) that maps lettre's errors onto vowguard's.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Alert, Error, ErrorKind, Notifier, RateLimit, Receipt, Redactor};

use crate::builder::EmailNotifierBuilder;
use crate::config::{EmailConfig, TlsMode};
use crate::encode::{self, BuiltMessage};
use crate::smtp::{Security, SmtpClient, SmtpFailure, implicit_tls_config};

/// The connector kind, as written in `type = "email"`.
pub const KIND: &str = "email";

/// Sends alert emails over SMTP.
///
/// Connections (`TCP_NODELAY`, TLS as configured, authenticated) are kept in a pool of at
/// most `pool_max_size` idle ones and reused: an alert costs the SMTP round trips of one
/// message, not a connection set-up.
pub struct EmailNotifier {
    component: Option<String>,
    config: EmailConfig,
    /// `host:port`, for messages.
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    smtp: SmtpClient,
    /// Removes the SMTP password from server replies in every error.
    redactor: Redactor,
    /// Whether the notifier authenticates (only this is shown by `Debug`).
    has_password: bool,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("component", &self.component)
            .field("server", &self.server)
            .field("tls", &self.config.tls)
            .field("username", &self.config.username)
            .field("password", &self.has_password.then_some("<redacted>"))
            .field("from", &self.config.from)
            .field("to", &self.config.to)
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// A builder for a notifier sending through the SMTP server `host`;
    /// [`from`](EmailNotifierBuilder::from) and [`to`](EmailNotifierBuilder::to) are
    /// required.
    ///
    /// ```no_run
    /// use vowguard_email::EmailNotifier;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let notifier = EmailNotifier::builder("smtp.example.org")
    ///     .from("vowguard <alerts@example.org>")
    ///     .to(["secops@example.org"])
    ///     .build()?;
    /// # let _ = notifier;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(host: impl Into<String>) -> EmailNotifierBuilder {
        EmailNotifierBuilder::new(host.into())
    }

    /// The notifier for `config` (whose `password` reference is not read) and the resolved
    /// `password`. With a `component` id, errors carry it and name full config keys
    /// (`notifiers.<id>.<field>`); a relative `ca_file` is taken from `config_dir`.
    pub(crate) fn from_parts(
        component: Option<String>,
        config: EmailConfig,
        password: Option<SecretString>,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        let prefix = component
            .as_ref()
            .map(|id| format!("notifiers.{id}."))
            .unwrap_or_default();
        let key = |field: &str| format!("{prefix}{field}");
        Self::build(component, config, password, &key, config_dir)
    }

    fn build(
        component: Option<String>,
        config: EmailConfig,
        password: Option<SecretString>,
        key: &dyn Fn(&str) -> String,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        let with_component = |e: Error| match &component {
            Some(id) => e.with_component(id.clone()),
            None => e,
        };
        let valid = config
            .validate(key, password.is_some())
            .map_err(with_component)?;
        let port = config.effective_port();
        let server = format!("{}:{port}", valid.host);
        let extra_root = || -> Result<Option<(Vec<u8>, std::path::PathBuf)>, Error> {
            let Some(path) = &config.ca_file else {
                return Ok(None);
            };
            let path = config_dir.join(path);
            let pem = std::fs::read(&path).map_err(|e| {
                Error::config(format!(
                    "`{}`: cannot read {}: {e}",
                    key("ca_file"),
                    path.display()
                ))
            })?;
            Ok(Some((pem, path)))
        };
        let security = match config.tls {
            TlsMode::Starttls => {
                let mut tls = TlsParameters::builder(valid.host.clone());
                if let Some((pem, path)) = extra_root().map_err(with_component)? {
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        with_component(Error::config(format!(
                            "`{}`: {} is not a PEM certificate: {e}",
                            key("ca_file"),
                            path.display()
                        )))
                    })?;
                    tls = tls.add_root_certificate(cert);
                }
                Security::Starttls(tls.build_rustls().map_err(|e| {
                    with_component(Error::config(format!(
                        "`{}`: cannot set up TLS: {e}",
                        key("tls")
                    )))
                })?)
            }
            TlsMode::Tls => {
                let mut roots = Vec::new();
                if let Some((pem, path)) = extra_root().map_err(with_component)? {
                    roots = pem_certificates(&pem).map_err(|e| {
                        with_component(Error::config(format!(
                            "`{}`: {} is not a PEM certificate: {e}",
                            key("ca_file"),
                            path.display()
                        )))
                    })?;
                }
                Security::Implicit(implicit_tls_config(roots).map_err(|e| {
                    with_component(Error::config(format!(
                        "`{}`: cannot set up TLS: {e}",
                        key("tls")
                    )))
                })?)
            }
            TlsMode::None => Security::None,
        };
        let has_password = password.is_some();
        let redactor = password
            .as_ref()
            .map_or_else(Redactor::new, |p| Redactor::new().secret(p));
        let credentials = match (&config.username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            )),
            _ => None,
        };
        let smtp = SmtpClient::new(
            valid.host.clone(),
            port,
            security,
            credentials,
            config.timeout,
            config.pool_max_size as usize,
        );
        Ok(Self {
            component,
            server,
            from: valid.from,
            to: valid.to,
            smtp,
            redactor,
            has_password,
            config,
        })
    }

    /// The configuration this notifier was built from (without the password reference).
    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// Builds the email for `alert` (recipients from the route's `params.recipients` or
    /// `to`), dated now, without sending it.
    pub fn message(&self, alert: &Alert) -> Result<BuiltMessage, Error> {
        encode::build_message(
            alert,
            &self.from,
            &self.to,
            &self.config.subject_prefix,
            SystemTime::now(),
        )
        .map_err(|e| self.tag(e))
    }

    /// Names the component and removes the password from the server's text: every error
    /// this notifier returns goes through here.
    fn tag(&self, e: Error) -> Error {
        let e = self.redactor.error(e);
        match &self.component {
            Some(id) if e.component().is_none() => e.with_component(id.clone()),
            _ => e,
        }
    }

    /// The whole-delivery deadline: three times the per-operation timeout.
    fn deadline(&self) -> Duration {
        self.config.timeout.saturating_mul(3)
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        let built = self.message(alert)?;
        let what = format!("sending alert email via {}", self.server);
        let envelope = built.message.envelope().clone();
        let bytes = built.message.formatted();
        let sent = tokio::time::timeout(self.deadline(), self.smtp.send(&envelope, &bytes)).await;
        match sent {
            Ok(Ok(response)) => {
                tracing::debug!(
                    server = %self.server,
                    message_id = %built.message_id,
                    code = %response.code(),
                    "alert email accepted"
                );
                Ok(Receipt {
                    delivery_id: Some(built.message_id),
                })
            }
            Ok(Err(e)) => Err(self.tag(failure(&what, e))),
            Err(_) => Err(self.tag(Error::new(
                ErrorKind::Timeout,
                format!("{what}: no answer within {:?}", self.deadline()),
            ))),
        }
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        let what = format!("checking SMTP server {}", self.server);
        match tokio::time::timeout(self.deadline(), self.smtp.check()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(self.tag(Error::unavailable(format!(
                "{what}: the server did not answer NOOP"
            )))),
            Ok(Err(e)) => Err(self.tag(failure(&what, e))),
            Err(_) => Err(self.tag(Error::new(
                ErrorKind::Timeout,
                format!("{what}: no answer within {:?}", self.deadline()),
            ))),
        }
    }

    /// SMTP has no protocol-level rate; relays throttle per account (commonly a few
    /// messages per second, e.g. Amazon SES starts at 1–14/s, Google Workspace's relay
    /// at a daily quota). 5 per second with bursts of 10 stays under typical relay limits
    /// while a burst of related alerts still goes out at once.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: 5.0,
            burst: 10,
        })
    }
}

/// A failure of the SMTP client as a vowguard [`Error`]: lettre's through [`classify`],
/// ours (TCP connect, implicit TLS set-up) prefixed with `what`.
fn failure(what: &str, e: SmtpFailure) -> Error {
    match e {
        SmtpFailure::Lettre(e) => classify(what, &e),
        SmtpFailure::Vowguard(e) => Error::new(e.kind(), format!("{what}: {}", e.message())),
    }
}

/// The certificates of a PEM file (at least one).
fn pem_certificates(pem: &[u8]) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block".to_owned());
    }
    Ok(certs)
}

/// Maps a lettre SMTP error onto a vowguard [`Error`]; `what` names the attempt.
///
/// * 4xx replies (421 service unavailable, 450/451/452 mailbox busy / local error /
///   storage), connection and I/O failures → `Unavailable` (retryable); timeouts →
///   `Timeout` (retryable).
/// * 530/534/535/538 (authentication required / too weak / credentials invalid /
///   encryption required for auth) → `Unauthorized`; other 5xx (550 mailbox unavailable,
///   554 transaction failed ...) → `Rejected`.
/// * A TLS failure (untrusted or wrong-name certificate, protocol mismatch) or a server
///   that does not offer the required STARTTLS → `Config`: not retryable, fix the server
///   or `ca_file`/`tls`.
/// * Anything else lettre refuses locally (e.g. an address needing SMTPUTF8 the server
///   lacks) → `Rejected`.
pub(crate) fn classify(what: &str, e: &lettre::transport::smtp::Error) -> Error {
    let reason = reason(e);
    if let Some(code) = e.status() {
        let status = code.to_string().parse::<u16>().unwrap_or_default();
        let kind = if e.is_transient() {
            ErrorKind::Unavailable
        } else if matches!(status, 530 | 534 | 535 | 538) {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::Rejected
        };
        let hint = if kind == ErrorKind::Unauthorized {
            "; check `username` and `password`"
        } else {
            ""
        };
        return Error::new(kind, format!("{what}: the server answered {reason}{hint}"))
            .with_status(status);
    }
    if let Some(tls) = rustls_error(e) {
        return Error::config(format!(
            "{what}: TLS handshake failed ({tls}); the server certificate must be valid for \
             the configured `host` and signed by a trusted root (add a private CA with \
             `ca_file`), and `tls` must match the port (\"starttls\" on 587, \"tls\" on 465)"
        ));
    }
    if e.is_tls() {
        return Error::config(format!("{what}: TLS failed: {reason}"));
    }
    if e.is_timeout() {
        return Error::new(ErrorKind::Timeout, format!("{what}: timed out: {reason}"));
    }
    if e.is_client() {
        if reason.contains("STARTTLS") {
            return Error::config(format!(
                "{what}: the server does not offer STARTTLS; refusing to send in plain text \
                 (use tls = \"tls\" if the server speaks implicit TLS, or tls = \"none\" \
                 only for a local relay)"
            ));
        }
        return Error::rejected(format!("{what}: {reason}"));
    }
    Error::unavailable(format!("{what}: {reason}"))
}

/// lettre's message (with the server's reply text) as one safe, bounded line.
fn reason(e: &lettre::transport::smtp::Error) -> String {
    encode::one_line(&e.to_string(), 300)
}

/// The rustls error behind a failed connection, if the failure was the TLS handshake.
fn rustls_error(e: &lettre::transport::smtp::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = inner {
            return Some(tls.to_string());
        }
        source = err.source();
    }
    None
}

//! The one NATS connection code of vowguard: servers, one credential (user/password,
//! token, NKey seed or a creds file, each `{ env }` / `{ file }`), TLS, deadlines and
//! reconnect backoff. The queue backend (`[queue]`, [`crate::JetStream::connect`]) and the
//! `nats` sink and source (`vowguard-nats`, which re-exports these types) connect through
//! [`NatsClientSettings::connect`]; every error names the config key at fault and never
//! shows the credential.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use vowguard_core::{Error, ErrorKind, Redactor, SecretLookup, SecretRef};

/// Longest pause between two reconnect attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The connection keys of a `nats` sink or source table and of `[queue]` (written at the
/// top level of the table, next to the component's own keys; `JetStreamConfig` flattens
/// it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NatsConnection {
    /// Server URLs (`nats://host:port` or `tls://host:port`, no credentials in them); the
    /// client fails over between them. Default `["nats://127.0.0.1:4222"]`.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// User name for user/password authentication (with `password`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password for `user`.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Token authentication.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// A user NKey seed (`SU...`).
    #[serde(default)]
    pub nkey_seed: Option<SecretRef>,
    /// A decentralised-auth creds file (user JWT and NKey seed), as `nsc` writes it.
    #[serde(default)]
    pub credentials: Option<SecretRef>,
    /// TLS to the servers (required once this table is present).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Deadline of connecting, of each PubAck / flush and of acks
    /// (`request_timeout = "5s"`, the default).
    #[serde(default = "default_request_timeout", with = "vowguard_core::duration")]
    pub request_timeout: Duration,
}

impl Default for NatsConnection {
    fn default() -> Self {
        Self {
            servers: default_servers(),
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            credentials: None,
            tls: None,
            request_timeout: default_request_timeout(),
        }
    }
}

/// TLS settings; the system roots are trusted unless `ca_file` is given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSettings {
    /// PEM file of the CA that signed the servers' certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_servers() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".into()]
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A resolved credential (never printed).
#[derive(Clone)]
enum Auth {
    None,
    UserPassword(String, SecretString),
    Token(SecretString),
    NKey(SecretString),
    Creds(SecretString),
}

/// Connection settings with their secrets resolved and every value checked: ready to
/// [`connect`](NatsClientSettings::connect). `Debug` never shows a secret; a clone shares
/// nothing mutable (each `connect` makes its own client).
#[derive(Clone)]
#[non_exhaustive]
pub struct NatsClientSettings {
    servers: Vec<ServerAddr>,
    server_text: String,
    auth: Auth,
    auth_key: String,
    tls: Option<TlsSettings>,
    /// Where the settings sit in the config file (`queue`, `sinks.bus`).
    key: String,
    base_dir: PathBuf,
    request_timeout: Duration,
    max_reconnect_delay: Duration,
    name: String,
    subscription_capacity: Option<usize>,
    redactor: Redactor,
}

impl fmt::Debug for NatsClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsClientSettings")
            .field("servers", &self.server_text)
            .field("auth", &self.auth_key)
            .field("tls", &self.tls)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl NatsConnection {
    /// Checks the settings and resolves the credential. `key` is where this table sits in
    /// the config file (`sinks.bus`), named in every error; relative files are taken from
    /// `base_dir`.
    pub fn resolve(
        &self,
        key: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<NatsClientSettings, Error> {
        let servers = self.validate(key)?;
        let (auth, auth_key) = self.resolve_auth(key, lookup, base_dir)?;
        let redactor = match &auth {
            Auth::None => Redactor::new(),
            Auth::UserPassword(_, s) | Auth::Token(s) | Auth::NKey(s) | Auth::Creds(s) => {
                Redactor::new().secret(s)
            }
        };
        Ok(NatsClientSettings {
            servers,
            server_text: self.servers.join(", "),
            auth,
            auth_key,
            tls: self.tls.clone(),
            key: key.to_owned(),
            base_dir: base_dir.to_owned(),
            request_timeout: self.request_timeout,
            max_reconnect_delay: MAX_RECONNECT_DELAY,
            name: "vowguard".into(),
            subscription_capacity: None,
            redactor,
        })
    }

    /// Checks the settings without resolving the credential (at config load); returns
    /// the parsed server addresses. `key` is named in every error.
    pub fn validate(&self, key: &str) -> Result<Vec<ServerAddr>, Error> {
        if self.servers.is_empty() {
            return Err(Error::config(format!(
                "`{key}.servers`: give at least one server URL"
            )));
        }
        let mut servers = Vec::with_capacity(self.servers.len());
        for (i, url) in self.servers.iter().enumerate() {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| url.starts_with(s));
            if !scheme_ok || url.contains('@') {
                return Err(Error::config(format!(
                    "`{key}.servers[{i}]`: expected nats://host:port or tls://host:port without credentials (put them in `{key}.user`/`password`, `token`, `nkey_seed` or `credentials`)"
                )));
            }
            servers.push(url.parse::<ServerAddr>().map_err(|e| {
                Error::config(format!("`{key}.servers[{i}]`: not a server URL: {e}"))
            })?);
        }
        let methods = [
            self.password.is_some() || self.user.is_some(),
            self.token.is_some(),
            self.nkey_seed.is_some(),
            self.credentials.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(Error::config(format!(
                "`{key}`: choose one of user/password, token, nkey_seed or credentials"
            )));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(Error::config(format!(
                "`{key}.password`: user and password go together"
            )));
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err(Error::config(format!(
                "`{key}.tls.key_file`: cert_file and key_file go together"
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::config(format!(
                "`{key}.request_timeout`: must be greater than 0"
            )));
        }
        Ok(servers)
    }

    fn resolve_auth(
        &self,
        key: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<(Auth, String), Error> {
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            let pass = password.resolve(&format!("{key}.password"), lookup, base_dir)?;
            return Ok((
                Auth::UserPassword(user.clone(), pass),
                format!("{key}.user/{key}.password"),
            ));
        }
        if let Some(token) = &self.token {
            let token = token.resolve(&format!("{key}.token"), lookup, base_dir)?;
            return Ok((Auth::Token(token), format!("{key}.token")));
        }
        if let Some(seed) = &self.nkey_seed {
            let seed = seed.resolve(&format!("{key}.nkey_seed"), lookup, base_dir)?;
            if !seed.expose_secret().starts_with("SU") {
                return Err(Error::config(format!(
                    "`{key}.nkey_seed`: not a user NKey seed (it starts with SU)"
                )));
            }
            return Ok((Auth::NKey(seed), format!("{key}.nkey_seed")));
        }
        if let Some(creds) = &self.credentials {
            let text = creds.resolve(&format!("{key}.credentials"), lookup, base_dir)?;
            if !text.expose_secret().contains("BEGIN NATS USER JWT") {
                return Err(Error::config(format!(
                    "`{key}.credentials`: not a NATS creds file (no USER JWT block)"
                )));
            }
            return Ok((Auth::Creds(text), format!("{key}.credentials")));
        }
        Ok((Auth::None, format!("{key} (no credentials configured)")))
    }
}

impl NatsClientSettings {
    /// The deadline of connecting, PubAcks, flushes and acks.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The configured servers, for messages (they never hold credentials).
    pub fn servers(&self) -> &str {
        &self.server_text
    }

    /// The client name the server shows (`vowguard` by default).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The longest pause between two reconnect attempts ([`MAX_RECONNECT_DELAY`] by
    /// default): the queue backend keeps it short, since intake answers 503 meanwhile.
    pub fn with_max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Messages buffered per subscription before the server's slow-consumer handling drops
    /// them (core NATS subscriptions only): bounds the memory of a core source.
    pub fn with_subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = Some(capacity);
        self
    }

    /// Removes the credential from any text (vendor errors quoting it).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Connects (one attempt at each server; the caller retries through the shared retry
    /// policy). Once connected the client reconnects by itself, forever, with a backoff
    /// doubling from 100 ms to [`MAX_RECONNECT_DELAY`] (or
    /// [`NatsClientSettings::with_max_reconnect_delay`]).
    ///
    /// Errors: refused credentials are `Unauthorized` naming the credential's key; TLS
    /// failures are `Config` naming the `tls` key; anything else is `Unavailable`.
    pub async fn connect(&self) -> Result<async_nats::Client, Error> {
        let mut options = match &self.auth {
            Auth::None => ConnectOptions::new(),
            Auth::UserPassword(user, pass) => {
                ConnectOptions::with_user_and_password(user.clone(), pass.expose_secret().into())
            }
            Auth::Token(token) => ConnectOptions::with_token(token.expose_secret().to_owned()),
            Auth::NKey(seed) => ConnectOptions::with_nkey(seed.expose_secret().to_owned()),
            Auth::Creds(text) => {
                ConnectOptions::with_credentials(text.expose_secret()).map_err(|e| {
                    self.redactor.error(Error::config(format!(
                        "`{}`: unreadable creds file: {e}",
                        self.auth_key
                    )))
                })?
            }
        };
        if let Some(tls) = &self.tls {
            options = options.require_tls(true);
            if let Some(ca) = &tls.ca_file {
                options = options.add_root_certificates(self.base_dir.join(ca));
            }
            if let (Some(cert), Some(pem_key)) = (&tls.cert_file, &tls.key_file) {
                options = options
                    .add_client_certificate(self.base_dir.join(cert), self.base_dir.join(pem_key));
            }
        }
        if let Some(capacity) = self.subscription_capacity {
            options = options.subscription_capacity(capacity);
        }
        options = options
            .name(self.name.clone())
            .connection_timeout(self.request_timeout)
            .request_timeout(Some(self.request_timeout))
            .max_reconnects(None)
            .reconnect_delay_callback({
                let max = self.max_reconnect_delay;
                move |attempts| reconnect_delay(attempts).min(max)
            });
        let client = options
            .connect(self.servers.clone())
            .await
            .map_err(|e| self.connect_error(&e))?;
        Ok(client)
    }

    fn connect_error(&self, e: &async_nats::ConnectError) -> Error {
        let what = format!("cannot connect to NATS at {}", self.server_text);
        let error = match e.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "{what}: the server refused the credentials in `{}`",
                        self.auth_key
                    ),
                )
            }
            ConnectErrorKind::Tls => Error::config(format!(
                "{what}: TLS failed ({e}); check `{}.tls`",
                self.key
            )),
            ConnectErrorKind::ServerParse => Error::config(format!("`{}.servers`: {e}", self.key)),
            _ => Error::unavailable(format!("{what}: {e}")),
        };
        self.redactor.error(error)
    }
}

/// The pause before reconnect attempt `attempts`: 100 ms doubling up to
/// [`MAX_RECONNECT_DELAY`].
pub fn reconnect_delay(attempts: usize) -> Duration {
    let exp = attempts.saturating_sub(1).min(16) as u32;
    Duration::from_millis(100u64.saturating_mul(1 << exp)).min(MAX_RECONNECT_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::SecretMap;

    fn parse(text: &str) -> NatsConnection {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn defaults_resolve() {
        let settings = parse("")
            .resolve("sinks.bus", &SecretMap::new(), Path::new("."))
            .expect("valid");
        assert_eq!(settings.servers(), "nats://127.0.0.1:4222");
        assert_eq!(settings.request_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("servers = []", "`sinks.bus.servers`"),
            (
                "servers = [\"nats://u:p@h:4222\"]",
                "`sinks.bus.servers[0]`",
            ),
            ("servers = [\"http://h:4222\"]", "`sinks.bus.servers[0]`"),
            ("user = \"a\"", "`sinks.bus.password`"),
            (
                "token = { env = \"T\" }\nnkey_seed = { env = \"N\" }",
                "choose one",
            ),
            ("[tls]\ncert_file = \"c.pem\"", "`sinks.bus.tls.key_file`"),
            ("request_timeout = \"0s\"", "`sinks.bus.request_timeout`"),
            ("token = { env = \"MISSING\" }", "`sinks.bus.token`"),
        ];
        for (text, want) in cases {
            let err = parse(text)
                .resolve("sinks.bus", &SecretMap::new(), Path::new("."))
                .expect_err(text);
            assert!(err.message().contains(want), "{text}: {}", err.message());
        }
    }

    #[test]
    fn bad_credentials_are_refused_without_echo() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.creds"), "hunter2-creds").expect("write");
        let err = parse("credentials = { file = \"bad.creds\" }")
            .resolve("sources.bus", &SecretMap::new(), dir.path())
            .expect_err("refused");
        assert!(err.message().contains("`sources.bus.credentials`"));
        assert!(!err.to_string().contains("hunter2"));
        let lookup = SecretMap::new().with("SEED", "SAxyz-not-a-user-seed");
        let err = parse("nkey_seed = { env = \"SEED\" }")
            .resolve("sources.bus", &lookup, dir.path())
            .expect_err("refused");
        assert!(err.message().contains("`sources.bus.nkey_seed`"));
        assert!(!err.to_string().contains("SAxyz"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let lookup = SecretMap::new().with("T", "tok-7f3a9c");
        let settings = parse("token = { env = \"T\" }")
            .resolve("sinks.bus", &lookup, Path::new("."))
            .expect("valid");
        let debug = format!("{settings:?}");
        assert!(!debug.contains("tok-7f3a9c"), "{debug}");
        assert!(debug.contains("sinks.bus.token"), "{debug}");
    }

    #[test]
    fn reconnect_backoff_grows_and_is_capped() {
        assert_eq!(reconnect_delay(1), Duration::from_millis(100));
        assert_eq!(reconnect_delay(2), Duration::from_millis(200));
        assert_eq!(reconnect_delay(4), Duration::from_millis(800));
        assert_eq!(reconnect_delay(100), MAX_RECONNECT_DELAY);
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
    }
}

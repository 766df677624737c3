//! The `[queue]` settings of the JetStream backend, as written in the config file.
//!
//! ```toml
//! [queue]
//! type = "jetstream"                      # read by the runtime, not by this struct
//! servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
//! credentials = { file = "/etc/vowguard/nats.creds" }   # NKey/JWT creds file
//! [queue.tls]
//! ca_file = "/etc/vowguard/nats-ca.pem"
//! [queue.stream]
//! name = "VOWGUARD"
//! replicas = 3
//! ```

use std::time::Duration;

use serde::Deserialize;
use vowguard_core::Error;

use crate::connection::NatsConnection;
pub use crate::connection::TlsSettings;

/// Connection, credentials, stream and consumer settings of the JetStream queue.
///
/// The connection keys (`servers`, `user`/`password`, `token`, `nkey_seed`,
/// `credentials`, `[queue.tls]`, `request_timeout`) are the one [`NatsConnection`] of
/// vowguard, flattened: they are written at the top of `[queue]`, as in a `nats` sink or
/// source table, and checked and resolved by the same code.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JetStreamConfig {
    /// Servers, credential, TLS and the deadline of connecting, of each JetStream API
    /// call and of each PubAck.
    #[serde(flatten)]
    pub connection: NatsConnection,
    /// The stream that carries the events.
    #[serde(default)]
    pub stream: StreamSettings,
    /// Defaults of the durable consumers (one per sink and one for the alert path).
    #[serde(default)]
    pub consumers: ConsumerSettings,
}

/// How events are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Storage {
    /// On disk (the default): survives a server restart.
    #[default]
    File,
    /// In memory: lost when the server stops.
    Memory,
}

/// The event stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StreamSettings {
    /// Stream name.
    pub name: String,
    /// The subject events are published on (the stream's only subject).
    pub subject: String,
    /// Copies kept by a JetStream cluster (1, 3 or 5). 3 survives one lost server and an
    /// OS crash between fsyncs.
    pub replicas: usize,
    /// Bytes kept at most; a full stream refuses new events (discard = new), so intake
    /// answers 503 instead of dropping unconsumed work.
    pub max_bytes: i64,
    /// How long an event is kept at most (`max_age = "7d"`).
    #[serde(with = "vowguard_core::duration")]
    pub max_age: Duration,
    /// Window in which a re-published event id is recognised as a duplicate
    /// (`duplicate_window = "2m"`).
    #[serde(with = "vowguard_core::duration")]
    pub duplicate_window: Duration,
    /// Where the server stores the events.
    pub storage: Storage,
    /// Set by the runtime when enrichers are configured (not a config key): intake
    /// publishes raw events to [`StreamSettings::raw_subject`], the shared `_enrich`
    /// consumer enriches them onto `subject`, and the stream carries both subjects.
    #[serde(skip)]
    pub raw_intake: bool,
}

impl StreamSettings {
    /// The subject of raw events awaiting enrichment: `<subject>.raw`.
    pub fn raw_subject(&self) -> String {
        format!("{}.raw", self.subject)
    }

    /// Where intake publishes: the raw subject when enrichers run on the stream, else
    /// `subject`.
    pub fn intake_subject(&self) -> String {
        if self.raw_intake {
            self.raw_subject()
        } else {
            self.subject.clone()
        }
    }

    /// The subjects of the stream: `subject`, and the raw subject with enrichers.
    pub fn subjects(&self) -> Vec<String> {
        let mut subjects = vec![self.subject.clone()];
        if self.raw_intake {
            subjects.push(self.raw_subject());
        }
        subjects
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "VOWGUARD".into(),
            subject: "vowguard.events".into(),
            replicas: 1,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            storage: Storage::File,
            raw_intake: false,
        }
    }
}

/// Durable consumer defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// How long the server waits for an ack before redelivering (`ack_wait = "30s"`); size
    /// it to the slowest batch of the slowest sink (progress acks extend it while a batch
    /// is in flight).
    #[serde(with = "vowguard_core::duration")]
    pub ack_wait: Duration,
    /// Deliveries at most; the last failed one is dead-lettered, never redelivered again.
    pub max_deliver: i64,
    /// Messages delivered and not yet acked, across all replicas: the bound on in-flight
    /// work (backpressure for slow sinks).
    pub max_ack_pending: i64,
    /// Messages fetched per pull.
    pub batch: usize,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_deliver: 8,
            max_ack_pending: 1000,
            batch: 100,
        }
    }
}

impl JetStreamConfig {
    /// Checks the settings; `key` is where they sit in the config file (`queue`) and is
    /// named in every error.
    pub fn validate(&self, key: &str) -> Result<(), Error> {
        self.connection.validate(key)?;
        let s = &self.stream;
        if !valid_name(&s.name) {
            return Err(Error::config(format!(
                "`{key}.stream.name`: letters, digits, `-` and `_` only"
            )));
        }
        if s.subject.is_empty()
            || s.subject.contains([' ', '*', '>'])
            || s.subject.starts_with('.')
            || s.subject.ends_with('.')
            || s.subject.contains("..")
        {
            return Err(Error::config(format!(
                "`{key}.stream.subject`: a literal subject such as vowguard.events"
            )));
        }
        if !matches!(s.replicas, 1 | 3 | 5) {
            return Err(Error::config(format!("`{key}.stream.replicas`: 1, 3 or 5")));
        }
        if s.max_bytes <= 0 || s.max_age.is_zero() || s.duplicate_window.is_zero() {
            return Err(Error::config(format!(
                "`{key}.stream`: max_bytes, max_age and duplicate_window must be > 0"
            )));
        }
        if s.duplicate_window > s.max_age {
            return Err(Error::config(format!(
                "`{key}.stream.duplicate_window`: longer than max_age"
            )));
        }
        let c = &self.consumers;
        if c.ack_wait.is_zero() {
            return Err(Error::config(format!(
                "`{key}.consumers.ack_wait`: must be > 0"
            )));
        }
        if c.max_deliver < 1 {
            return Err(Error::config(format!(
                "`{key}.consumers.max_deliver`: must be >= 1"
            )));
        }
        if c.max_ack_pending < 1 || c.batch == 0 || c.batch as i64 > c.max_ack_pending {
            return Err(Error::config(format!(
                "`{key}.consumers.batch`: between 1 and max_ack_pending"
            )));
        }
        Ok(())
    }

    /// The deadline of API calls and PubAcks (`request_timeout`).
    pub fn request_timeout(&self) -> Duration {
        self.connection.request_timeout
    }
}

/// Stream and consumer names: `[A-Za-z0-9_-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> JetStreamConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse("");
        c.validate("queue").expect("valid");
        assert_eq!(c.stream.name, "VOWGUARD");
        assert_eq!(c.consumers.max_deliver, 8);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("servers = []", "`queue.servers`"),
            ("servers = [\"nats://u:p@h:4222\"]", "`queue.servers[0]`"),
            ("user = \"a\"", "`queue.password`"),
            (
                "token = { env = \"T\" }\nnkey_seed = { env = \"N\" }",
                "choose one",
            ),
            ("[stream]\nreplicas = 2", "`queue.stream.replicas`"),
            ("[stream]\nname = \"a.b\"", "`queue.stream.name`"),
            ("[stream]\nsubject = \"a.>\"", "`queue.stream.subject`"),
            (
                "[consumers]\nmax_deliver = 0",
                "`queue.consumers.max_deliver`",
            ),
            ("[consumers]\nbatch = 2000", "`queue.consumers.batch`"),
            ("[tls]\ncert_file = \"c.pem\"", "`queue.tls.key_file`"),
        ];
        for (text, want) in cases {
            let err = parse(text).validate("queue").expect_err(text);
            assert!(err.message().contains(want), "{text}: {}", err.message());
        }
    }

    #[test]
    fn inline_secrets_and_unknown_keys_are_refused() {
        assert!(toml::from_str::<JetStreamConfig>("token = \"abc\"").is_err());
        let err = toml::from_str::<JetStreamConfig>("sever = []").expect_err("refused");
        assert!(err.to_string().contains("sever"), "{err}");
        assert!(toml::from_str::<JetStreamConfig>("[tls]\nca = \"x\"").is_err());
        assert!(toml::from_str::<JetStreamConfig>("[stream]\nnmae = \"x\"").is_err());
    }

    /// The connection keys are the one `NatsConnection`, flattened: written at the top of
    /// `[queue]` as before, next to `[queue.stream]` and `[queue.consumers]`.
    #[test]
    fn connection_keys_sit_at_the_top_of_the_table() {
        let c = parse(
            "servers = [\"nats://10.0.0.1:4222\", \"tls://10.0.0.2:4222\"]\n\
             token = { env = \"T\" }\nrequest_timeout = \"2s\"\n\
             [tls]\nca_file = \"ca.pem\"\n[stream]\nreplicas = 3\n[consumers]\nbatch = 10",
        );
        assert_eq!(
            c.connection.servers,
            ["nats://10.0.0.1:4222", "tls://10.0.0.2:4222"]
        );
        assert!(c.connection.token.is_some());
        assert_eq!(c.request_timeout(), Duration::from_secs(2));
        assert_eq!(
            c.connection.tls.as_ref().and_then(|t| t.ca_file.as_deref()),
            Some(std::path::Path::new("ca.pem"))
        );
        assert_eq!((c.stream.replicas, c.consumers.batch), (3, 10));
        let defaults = parse("");
        assert_eq!(defaults.connection, NatsConnection::default());
        assert_eq!(defaults.request_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn credentials_are_resolved_and_checked_without_echo() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.creds"), "hunter2").expect("write");
        let c = parse("credentials = { file = \"bad.creds\" }");
        let err = c
            .connection
            .resolve("queue", &vowguard_core::SecretMap::new(), dir.path())
            .expect_err("refused");
        assert!(err.message().contains("`queue.credentials`"));
        assert!(!err.message().contains("hunter2"));

        let c = parse("nkey_seed = { env = \"SEED\" }");
        let lookup = vowguard_core::SecretMap::new().with("SEED", "SAxyz");
        let err = c
            .connection
            .resolve("queue", &lookup, dir.path())
            .expect_err("refused");
        assert!(err.message().contains("`queue.nkey_seed`"));
        assert!(!err.message().contains("SAxyz"));

        let c = parse("user = \"u\"\npassword = { env = \"MISSING\" }");
        let err = c
            .connection
            .resolve("queue", &vowguard_core::SecretMap::new(), dir.path())
            .expect_err("refused");
        assert!(err.message().contains("queue.password"));
    }
}

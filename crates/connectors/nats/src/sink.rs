//! The `nats` sink: every event published to a subject, through JetStream (counted as
//! delivered only after the PubAck, `Nats-Msg-Id` = event id) or core NATS (after a flush).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::OnceCell;
use vowguard_core::{
    BatchLimits, ComponentConfig, EncodedEvent, Error, ErrorKind, Event, EventOutcome,
    SecretLookup, Sink,
};

use crate::KIND;
use crate::connection::{NatsClientSettings, NatsConnection, split_connection};
use crate::subject::SubjectTemplate;

/// How events are handed to NATS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PublishMode {
    /// JetStream publish; delivered once the server's PubAck says the event is stored (a
    /// duplicate PubAck for a retried event is a success). The subject must belong to a
    /// stream.
    #[default]
    Jetstream,
    /// Core NATS publish; delivered once a flush round trip confirms the server read it.
    /// At most once for subscribers that are not listening at that moment.
    Core,
}

/// How each event is written into the message payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// The event as vowguard stores it in its journal (compact JSON, enrichment included).
    #[default]
    Json,
    /// The event without the `enrichment` member: exactly the ingest contract, so another
    /// vowguard's `nats` source (or any ingest client) accepts it as is.
    IngestJson,
}

/// The sink's own keys (next to the connection keys of [`NatsConnection`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnKeys {
    subject: String,
    #[serde(default)]
    mode: PublishMode,
    #[serde(default)]
    encoding: Encoding,
}

/// Configuration of one `nats` sink (the `[sinks.<id>]` table, `type = "nats"`).
///
/// ```toml
/// [sinks.bus]
/// type = "nats"
/// servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
/// credentials = { file = "/etc/vowguard/nats.creds" }
/// subject = "security.{category}.{severity}"
/// mode = "jetstream"          # or "core"
/// encoding = "json"           # or "ingest_json"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsSinkConfig {
    /// Servers, credentials, TLS and deadlines.
    pub connection: NatsConnection,
    /// The subject template (`subject`), e.g. `security.{category}.{wedding_id}`; see
    /// [`SubjectTemplate`].
    pub subject: String,
    /// `mode`: `jetstream` (default) or `core`.
    pub mode: PublishMode,
    /// `encoding`: `json` (default) or `ingest_json`.
    pub encoding: Encoding,
}

impl NatsSinkConfig {
    /// A configuration publishing to `subject` through JetStream on the local server.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            connection: NatsConnection::default(),
            subject: subject.into(),
            mode: PublishMode::default(),
            encoding: Encoding::default(),
        }
    }

    /// Reads a `[sinks.<id>]` table (without `type` and the runtime's common keys).
    /// Errors name the key, prefixed with `key` (e.g. `sinks.bus`).
    pub fn from_config(table: ComponentConfig, key: &str) -> Result<Self, Error> {
        let (connection, own) = split_connection(table);
        let connection: NatsConnection = connection.parse(key)?;
        let own: OwnKeys = own.parse(key)?;
        Ok(Self {
            connection,
            subject: own.subject,
            mode: own.mode,
            encoding: own.encoding,
        })
    }
}

/// A connection made on first use: the sink is built without a network round trip, and a
/// server that is down at start is an ordinary retryable failure of the first batches.
struct Connected {
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
}

/// Publishes events to NATS. Build one with [`NatsSink::builder`] or from config through
/// the registry as `type = "nats"`. `Debug` never shows a credential.
///
/// ```no_run
/// # async fn demo() -> Result<(), vowguard_core::Error> {
/// use vowguard_nats::{NatsSink, PublishMode};
///
/// let sink = NatsSink::builder("security.{category}.{severity}")
///     .servers(["nats://127.0.0.1:4222"])
///     .mode(PublishMode::Jetstream)
///     .build()?;
/// vowguard_core::Sink::healthcheck(&sink).await?;
/// # Ok(())
/// # }
/// ```
pub struct NatsSink {
    settings: NatsClientSettings,
    subject: SubjectTemplate,
    mode: PublishMode,
    encoding: Encoding,
    connected: OnceCell<Connected>,
    duplicates: AtomicU64,
    id: Option<String>,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .field("subject", &self.subject.as_str())
            .field("mode", &self.mode)
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// Builds a [`NatsSink`]; every setting has the default of [`NatsSinkConfig`].
#[derive(Debug, Clone)]
pub struct NatsSinkBuilder {
    config: NatsSinkConfig,
    key: String,
}

impl NatsSinkBuilder {
    /// The servers to connect to.
    pub fn servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.connection.servers = servers.into_iter().map(Into::into).collect();
        self
    }

    /// JetStream (default) or core NATS.
    pub fn mode(mut self, mode: PublishMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The payload encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.config.encoding = encoding;
        self
    }

    /// Deadline of connecting and of each PubAck or flush.
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config.connection.request_timeout = timeout.max(std::time::Duration::from_millis(1));
        self
    }

    /// All connection settings at once (credentials are references, resolved in
    /// [`NatsSinkBuilder::build_with`]).
    pub fn connection(mut self, connection: NatsConnection) -> Self {
        self.config.connection = connection;
        self
    }

    /// The config key named in errors (default `sinks.nats`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Builds the sink; credential references are resolved from the process environment
    /// and relative files from the working directory.
    pub fn build(self) -> Result<NatsSink, Error> {
        self.build_with(&vowguard_core::ProcessEnv, Path::new("."))
    }

    /// Builds the sink, resolving credential references through `lookup` and `base_dir`.
    pub fn build_with(self, lookup: &dyn SecretLookup, base_dir: &Path) -> Result<NatsSink, Error> {
        NatsSink::new(&self.config, &self.key, lookup, base_dir)
    }
}

impl NatsSink {
    /// A builder publishing to the subject template `subject`.
    pub fn builder(subject: impl Into<String>) -> NatsSinkBuilder {
        NatsSinkBuilder {
            config: NatsSinkConfig::new(subject),
            key: "sinks.nats".into(),
        }
    }

    /// A sink for `config`; `key` (e.g. `sinks.bus`) is named in configuration errors.
    pub fn new(
        config: &NatsSinkConfig,
        key: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<Self, Error> {
        let subject = SubjectTemplate::parse(&config.subject, &format!("{key}.subject"))?;
        let settings = config.connection.resolve(key, lookup, base_dir)?;
        Ok(Self {
            settings,
            subject,
            mode: config.mode,
            encoding: config.encoding,
            connected: OnceCell::new(),
            duplicates: AtomicU64::new(0),
            id: None,
        })
    }

    /// Names the component (the id chosen in the config) in every error this sink returns.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The subject template.
    pub fn subject(&self) -> &SubjectTemplate {
        &self.subject
    }

    /// How many publishes the server answered as duplicates (an event id it already held:
    /// a retried publish, counted as delivered and stored once).
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    fn tag(&self, error: Error) -> Error {
        let error = self.settings.redactor().error(error);
        match &self.id {
            Some(id) => error.with_component(id.clone()),
            None => error,
        }
    }

    async fn connection(&self) -> Result<&Connected, Error> {
        self.connected
            .get_or_try_init(|| async {
                let client = self.settings.connect().await?;
                let timeout = self.settings.request_timeout();
                let jetstream = async_nats::jetstream::ContextBuilder::new()
                    .timeout(timeout)
                    .ack_timeout(timeout)
                    .build(client.clone());
                Ok(Connected { client, jetstream })
            })
            .await
    }

    fn payload(&self, event: &Event, stored: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        let subject = self.subject.render(event);
        let mut out = Vec::with_capacity(subject.len() + 1 + stored.map_or(512, <[u8]>::len));
        out.extend_from_slice(subject.as_bytes());
        out.push(b'\n');
        match (self.encoding, stored) {
            (Encoding::Json, Some(stored)) => out.extend_from_slice(stored),
            (Encoding::Json, None) => serde_json::to_writer(&mut out, event)
                .map_err(|e| Error::encode(format!("cannot encode event {}: {e}", event.id)))?,
            (Encoding::IngestJson, _) => {
                let mut value = serde_json::to_value(event)
                    .map_err(|e| Error::encode(format!("cannot encode event {}: {e}", event.id)))?;
                if let Some(object) = value.as_object_mut() {
                    object.remove("enrichment");
                }
                serde_json::to_writer(&mut out, &value)
                    .map_err(|e| Error::encode(format!("cannot encode event {}: {e}", event.id)))?;
            }
        }
        Ok(out)
    }

    async fn send_jetstream(
        &self,
        connected: &Connected,
        batch: &[&EncodedEvent],
    ) -> Vec<EventOutcome> {
        // Every publish is sent before any PubAck is awaited: one round trip per batch, not
        // per event. The batch limits bound what is in flight.
        let mut pending = Vec::with_capacity(batch.len());
        let timeout = self.settings.request_timeout();
        for event in batch {
            let (subject, payload) = split(&event.bytes);
            let message = PublishMessage::build()
                .payload(Bytes::copy_from_slice(payload))
                .message_id(event.event_id.as_str());
            // Bounded: while disconnected the client's buffer can fill up.
            let publish = connected
                .jetstream
                .send_publish(subject.to_owned(), message);
            let sent = match tokio::time::timeout(timeout, publish).await {
                Ok(Ok(ack)) => Ok(ack),
                Ok(Err(e)) => {
                    Err(self.publish_error(&e, subject, &event.event_id, event.bytes.len()))
                }
                Err(_) => Err(self.not_handed_over(subject, &event.event_id)),
            };
            pending.push((subject, sent));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for (event, (subject, sent)) in batch.iter().zip(pending) {
            let result = match sent {
                Ok(ack) => ack.await.map_err(|e| {
                    self.publish_error(&e, subject, &event.event_id, event.bytes.len())
                }),
                Err(e) => Err(e),
            };
            outcomes.push(match result {
                Ok(ack) => {
                    if ack.duplicate {
                        self.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    EventOutcome::Delivered
                }
                Err(e) => EventOutcome::from_error(self.tag(e)),
            });
        }
        outcomes
    }

    /// A publish the client could not take within the deadline (disconnected, its buffer
    /// full): retried.
    fn not_handed_over(&self, subject: &str, event_id: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "publish of event {event_id} to {subject} on {}: the client could not send it within {} ms (disconnected?); the event will be sent again",
                self.settings.servers(),
                self.settings.request_timeout().as_millis()
            ),
        )
    }

    /// Maps a JetStream publish failure onto the pipeline's model.
    fn publish_error(
        &self,
        e: &async_nats::jetstream::context::PublishError,
        subject: &str,
        event_id: &str,
        size: usize,
    ) -> Error {
        let at = format!(
            "publish of event {event_id} to {subject} on {}",
            self.settings.servers()
        );
        match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => Error::invalid_input(format!(
                "{at}: the event ({size} bytes) is larger than the server's max_payload"
            )),
            PublishErrorKind::StreamNotFound => Error::unavailable(format!(
                "{at}: no JetStream stream captures this subject; create one (nats stream add) \
                 or change `subject`; the event will be sent again"
            )),
            PublishErrorKind::TimedOut => Error::new(
                ErrorKind::Timeout,
                format!(
                    "{at}: no PubAck within {} ms; the event will be sent again (the same Nats-Msg-Id, so it is stored once)",
                    self.settings.request_timeout().as_millis()
                ),
            ),
            _ => {
                let text = e.to_string();
                if text.contains("permissions") || text.contains("authorization") {
                    Error::new(
                        ErrorKind::Unauthorized,
                        format!("{at}: {text}; check the credentials' publish permissions"),
                    )
                } else {
                    Error::unavailable(format!("{at}: {text}"))
                }
            }
        }
    }

    async fn send_core(&self, connected: &Connected, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let mut outcomes: Vec<Option<EventOutcome>> = Vec::with_capacity(batch.len());
        for event in batch {
            let (subject, payload) = split(&event.bytes);
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, event.event_id.as_str());
            let publish = connected.client.publish_with_headers(
                subject.to_owned(),
                headers,
                Bytes::copy_from_slice(payload),
            );
            let Ok(result) = tokio::time::timeout(self.settings.request_timeout(), publish).await
            else {
                let error = self.not_handed_over(subject, &event.event_id);
                outcomes.push(Some(EventOutcome::from_error(self.tag(error))));
                continue;
            };
            outcomes.push(match result {
                Ok(()) => None,
                Err(e) => {
                    let at = format!("publish of event {} to {subject}", event.event_id);
                    let error = match e.kind() {
                        async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                            Error::invalid_input(format!(
                                "{at}: the event ({} bytes) is larger than the server's max_payload",
                                event.bytes.len()
                            ))
                        }
                        _ => Error::unavailable(format!("{at}: {e}")),
                    };
                    Some(EventOutcome::from_error(self.tag(error)))
                }
            });
        }
        let timeout = self.settings.request_timeout();
        let flushed = match tokio::time::timeout(timeout, connected.client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::unavailable(format!(
                "flush to NATS at {} failed: {e}",
                self.settings.servers()
            ))),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "flush to NATS at {} not confirmed within {} ms",
                    self.settings.servers(),
                    timeout.as_millis()
                ),
            )),
        };
        outcomes
            .into_iter()
            .map(|o| match o {
                Some(outcome) => outcome,
                None => match &flushed {
                    Ok(()) => EventOutcome::Delivered,
                    Err(e) => EventOutcome::from_error(self.tag(e.clone())),
                },
            })
            .collect()
    }
}

/// Splits an encoded event into its subject and payload (see [`Sink::encode`] below).
fn split(bytes: &[u8]) -> (&str, &[u8]) {
    let at = bytes.iter().position(|b| *b == b'\n').unwrap_or(0);
    let subject = std::str::from_utf8(&bytes[..at]).unwrap_or("_");
    (subject, bytes.get(at + 1..).unwrap_or_default())
}

#[async_trait]
impl Sink for NatsSink {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// 500 events, 4 MB, 200 ms: publishes are pipelined, so a batch costs one round trip.
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::new(500, 4_000_000, std::time::Duration::from_millis(200))
    }

    /// The rendered subject, a newline, then the payload (the subject is sanitised and never
    /// holds a newline).
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.payload(event, None).map_err(|e| self.tag(e))
    }

    fn encode_stored(&self, event: &Event, stored: &[u8]) -> Result<Vec<u8>, Error> {
        self.payload(event, Some(stored)).map_err(|e| self.tag(e))
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        if batch.is_empty() {
            return Vec::new();
        }
        let connected = match self.connection().await {
            Ok(connected) => connected,
            Err(e) => return EventOutcome::for_all(batch.len(), &Err(self.tag(e))),
        };
        match self.mode {
            PublishMode::Jetstream => self.send_jetstream(connected, batch).await,
            PublishMode::Core => self.send_core(connected, batch).await,
        }
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        let connected = self.connection().await.map_err(|e| self.tag(e))?;
        match self.mode {
            PublishMode::Core => {
                tokio::time::timeout(self.settings.request_timeout(), connected.client.flush())
                    .await
                    .map_err(|_| {
                        self.tag(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "healthcheck of NATS at {}: no answer",
                                self.settings.servers()
                            ),
                        ))
                    })?
                    .map_err(|e| {
                        self.tag(Error::unavailable(format!(
                            "healthcheck of NATS at {}: {e}",
                            self.settings.servers()
                        )))
                    })
            }
            PublishMode::Jetstream => {
                connected.jetstream.query_account().await.map_err(|e| {
                    self.tag(Error::unavailable(format!(
                        "healthcheck of NATS at {}: JetStream is not available to this account ({e}); use `mode = \"core\"` or enable JetStream",
                        self.settings.servers()
                    )))
                })?;
                if self.subject.is_literal() {
                    connected
                        .jetstream
                        .stream_by_subject(self.subject.as_str())
                        .await
                        .map_err(|e| {
                            self.tag(Error::config(format!(
                                "healthcheck of NATS at {}: no stream captures `subject` {} ({e}); create one (nats stream add)",
                                self.settings.servers(),
                                self.subject.as_str()
                            )))
                        })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::SecretMap;

    fn config(text: &str) -> Result<NatsSinkConfig, Error> {
        let table: ComponentConfig = toml::from_str(text).unwrap();
        NatsSinkConfig::from_config(table, "sinks.bus")
    }

    #[test]
    fn config_keys() {
        let c = config(
            "subject = \"a.{category}\"\nservers = [\"nats://h:1\"]\nmode = \"core\"\nencoding = \"ingest_json\"\ntoken = { env = \"T\" }",
        )
        .unwrap();
        assert_eq!(c.mode, PublishMode::Core);
        assert_eq!(c.encoding, Encoding::IngestJson);
        assert_eq!(c.connection.servers, ["nats://h:1"]);
        let c = config("subject = \"a\"").unwrap();
        assert_eq!(c, NatsSinkConfig::new("a"));
    }

    #[test]
    fn config_errors_name_the_key() {
        for (text, want) in [
            ("", "`sinks.bus`: missing field `subject`"),
            ("subject = \"a\"\nsubjekt = \"b\"", "subjekt"),
            ("subject = \"a\"\nmode = \"push\"", "`sinks.bus.mode`"),
            ("subject = \"a\"\ntoken = \"inline\"", "`sinks.bus.token`"),
            ("subject = \"a\"\n[tls]\nca = \"x\"", "`sinks.bus.tls`"),
        ] {
            let err = config(text).unwrap_err();
            assert!(err.message().contains(want), "{text}: {}", err.message());
            assert!(!err.message().contains("inline\""), "{}", err.message());
        }
        let c = config("subject = \"a.*\"").unwrap();
        let err = NatsSink::new(&c, "sinks.bus", &SecretMap::new(), Path::new(".")).unwrap_err();
        assert!(
            err.message().contains("`sinks.bus.subject`"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn encodes_subject_then_payload() {
        let sink = NatsSink::builder("sec.{category}.{wedding_id}")
            .build()
            .unwrap();
        let mut event = Event::new(
            vowguard_core::Category::Authentication,
            "login",
            vowguard_core::Severity::High,
        );
        event.wedding_id = Some("w.1 >".into());
        let bytes = sink.encode(&event).unwrap();
        let (subject, payload) = split(&bytes);
        assert_eq!(subject, "sec.authentication.w_1__");
        assert_eq!(payload, serde_json::to_vec(&event).unwrap());
        let stored = serde_json::to_vec(&event).unwrap();
        assert_eq!(sink.encode_stored(&event, &stored).unwrap(), bytes);

        let ingest = NatsSink::builder("a")
            .encoding(Encoding::IngestJson)
            .build()
            .unwrap();
        let bytes = ingest.encode(&event).unwrap();
        let (_, payload) = split(&bytes);
        let back = Event::from_json_str(std::str::from_utf8(payload).unwrap()).unwrap();
        assert_eq!(back, event);
    }
}

//! The `nats` source's configuration and message decoding. The runtime runs the source
//! (`vowguard-runtime`, module `nats_source`): it pulls messages, decodes them here, hands
//! each event to vowguard's queue and acks the message only once the queue says the event
//! is durable.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, ErrorCode};
use serde::{Deserialize, Deserializer};
use vowguard_core::{ComponentConfig, Error, Event, SecretLookup};

use crate::connection::{NatsClientSettings, NatsConnection, split_connection};

/// Where the source reads from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceMode {
    /// A durable pull consumer on a JetStream stream (default): nothing is lost while
    /// vowguard is down, and a message is acked only once its event is durable here.
    #[default]
    Jetstream,
    /// A core NATS subscription (in a queue group): at most once. A message with a reply
    /// subject (a request) is answered once its event is durable, or with the reason it
    /// was refused, so publishers that use request/reply get the same guarantee.
    Core,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnKeys {
    #[serde(default)]
    mode: SourceMode,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    queue_group: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    consumer: Option<String>,
    #[serde(default = "default_ack_wait", with = "vowguard_core::duration")]
    ack_wait: Duration,
    #[serde(default = "default_max_deliver")]
    max_deliver: i64,
    #[serde(default = "default_max_in_flight")]
    max_in_flight: usize,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: usize,
}

fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}

fn default_max_deliver() -> i64 {
    -1
}

fn default_max_in_flight() -> usize {
    256
}

fn default_max_message_bytes() -> usize {
    1 << 20
}

/// Configuration of one `nats` source (`[sources.<id>]`, `type = "nats"`).
///
/// ```toml
/// [sources.platform]
/// type = "nats"
/// servers = ["nats://127.0.0.1:4222"]
/// credentials = { file = "/etc/vowguard/nats.creds" }
/// mode = "jetstream"          # default; or "core" with `subject` and `queue_group`
/// stream = "PLATFORM_SECURITY"
/// consumer = "vowguard"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsSourceConfig {
    /// Servers, credentials, TLS and deadlines.
    pub connection: NatsConnection,
    /// `mode`: `jetstream` (default) or `core`.
    pub mode: SourceMode,
    /// `subject`: core mode, the subject subscribed to (wildcards allowed); JetStream
    /// mode, the filter of a consumer vowguard creates (default: the whole stream).
    pub subject: Option<String>,
    /// `queue_group` (core mode): replicas in the same group share the messages. Default
    /// `vowguard`.
    pub queue_group: String,
    /// `stream` (JetStream mode, required): the existing stream the platform publishes to.
    pub stream: Option<String>,
    /// `consumer` (JetStream mode, required): the durable pull consumer's name; created
    /// when missing, checked when present (it must be a pull consumer with explicit acks).
    pub consumer: Option<String>,
    /// `ack_wait` of a consumer vowguard creates (default `"30s"`). While an event waits
    /// for vowguard's queue, progress acks keep it from being redelivered.
    pub ack_wait: Duration,
    /// `max_deliver` of a consumer vowguard creates (default -1, unlimited): a message is
    /// only redelivered when vowguard could not store it (NAK with a growing delay) or
    /// died before acking; a malformed one is terminated at once, never redelivered, so a
    /// limit would only drop good events during a long outage of vowguard's queue.
    pub max_deliver: i64,
    /// `max_in_flight` (default 256): messages being handled at once; the source stops
    /// pulling while this many wait for vowguard's queue (backpressure, bounded memory).
    pub max_in_flight: usize,
    /// `max_message_bytes` (default 1 MiB): a larger message is terminated, not parsed.
    pub max_message_bytes: usize,
}

impl<'de> Deserialize<'de> for NatsSourceConfig {
    /// Reads the table, naming unknown and bad keys (with no value quoted).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = ComponentConfig::deserialize(deserializer)?;
        Self::from_config(table, "")
            .map_err(|e| serde::de::Error::custom(e.message().replacen("``: ", "", 1)))
    }
}

impl NatsSourceConfig {
    /// Reads a `[sources.<id>]` table (without `type`); errors name the key, prefixed with
    /// `key` (e.g. `sources.platform`).
    pub fn from_config(mut table: ComponentConfig, key: &str) -> Result<Self, Error> {
        table.remove("type");
        let (connection, own) = split_connection(table);
        let prefix = |k: &str| {
            if key.is_empty() {
                k.to_owned()
            } else {
                format!("{key}.{k}")
            }
        };
        let connection: NatsConnection = connection.parse(key)?;
        let own: OwnKeys = own.parse(key)?;
        let config = Self {
            connection,
            mode: own.mode,
            subject: own.subject,
            queue_group: own.queue_group.unwrap_or_else(|| "vowguard".into()),
            stream: own.stream,
            consumer: own.consumer,
            ack_wait: own.ack_wait,
            max_deliver: own.max_deliver,
            max_in_flight: own.max_in_flight,
            max_message_bytes: own.max_message_bytes,
        };
        let fail = |k: &str, why: &str| Err(Error::config(format!("`{}`: {why}", prefix(k))));
        match config.mode {
            SourceMode::Jetstream => {
                match &config.stream {
                    None => return fail("stream", "required with mode = \"jetstream\""),
                    Some(s) if !valid_name(s) => {
                        return fail("stream", "letters, digits, `-` and `_` only");
                    }
                    _ => {}
                }
                match &config.consumer {
                    None => return fail("consumer", "required with mode = \"jetstream\""),
                    Some(c) if !valid_name(c) => {
                        return fail("consumer", "letters, digits, `-` and `_` only");
                    }
                    _ => {}
                }
            }
            SourceMode::Core => {
                if config.subject.is_none() {
                    return fail("subject", "required with mode = \"core\"");
                }
                if config.stream.is_some() || config.consumer.is_some() {
                    return fail("stream", "only with mode = \"jetstream\"");
                }
                if config.queue_group.is_empty()
                    || config.queue_group.contains(|c: char| c.is_whitespace())
                {
                    return fail("queue_group", "a name without whitespace");
                }
            }
        }
        if let Some(subject) = &config.subject
            && (subject.is_empty()
                || subject.contains(|c: char| c.is_whitespace() || c.is_control())
                || subject.split('.').any(str::is_empty))
        {
            return fail(
                "subject",
                "a subject such as platform.security.> (no whitespace or empty tokens)",
            );
        }
        if config.ack_wait.is_zero() {
            return fail("ack_wait", "must be greater than 0");
        }
        if config.max_deliver == 0 || config.max_deliver < -1 {
            return fail("max_deliver", "-1 (unlimited) or at least 1");
        }
        if config.max_in_flight == 0 || config.max_in_flight > 100_000 {
            return fail("max_in_flight", "between 1 and 100000");
        }
        if config.max_message_bytes == 0 {
            return fail("max_message_bytes", "must be greater than 0");
        }
        Ok(config)
    }

    /// Resolves the connection settings (credentials read now); `key` is named in errors.
    pub fn resolve(
        &self,
        key: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<NatsClientSettings, Error> {
        Ok(self
            .connection
            .resolve(key, lookup, base_dir)?
            .with_subscription_capacity(self.max_in_flight.max(64) * 4))
    }

    /// The consumer vowguard creates when it is missing.
    pub fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: self.consumer.clone(),
            description: Some("vowguard nats source".into()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            max_ack_pending: i64::try_from(self.max_in_flight.max(1000)).unwrap_or(1000),
            filter_subject: self.subject.clone().unwrap_or_default(),
            ..Default::default()
        }
    }

    /// Opens the durable pull consumer: creates it when missing, checks it otherwise. An
    /// existing consumer that is not a pull consumer with explicit acks is refused, naming
    /// the field (with `ack_policy = all` one ack would settle earlier messages still
    /// waiting for vowguard's queue). `key` is the source's config key.
    pub async fn open_consumer(
        &self,
        client: &async_nats::Client,
        key: &str,
    ) -> Result<consumer::Consumer<pull::Config>, Error> {
        self.find_consumer(client, key, true)
            .await?
            .ok_or_else(|| Error::internal(format!("`{key}.consumer`: not created")))
    }

    /// What `vowguard validate` checks: the stream exists, and the consumer, when it exists,
    /// is a pull consumer with explicit acks (a missing one is created by the run, not here).
    pub async fn check(&self, client: &async_nats::Client, key: &str) -> Result<(), Error> {
        self.find_consumer(client, key, false).await.map(|_| ())
    }

    async fn find_consumer(
        &self,
        client: &async_nats::Client,
        key: &str,
        create: bool,
    ) -> Result<Option<consumer::Consumer<pull::Config>>, Error> {
        let (Some(stream_name), Some(name)) = (&self.stream, &self.consumer) else {
            return Err(Error::config(format!(
                "`{key}`: `stream` and `consumer` are required with mode = \"jetstream\""
            )));
        };
        let js = jetstream::new(client.clone());
        let stream = js.get_stream(stream_name).await.map_err(|e| {
            let not_found = matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND);
            if not_found {
                Error::config(format!(
                    "`{key}.stream`: stream {stream_name} does not exist on the server; the platform's stream must exist (vowguard reads it, never creates it)"
                ))
            } else {
                api_error(key, "stream lookup", &e)
            }
        })?;
        match js
            .get_consumer_from_stream::<pull::Config, _, _>(name.as_str(), stream_name.as_str())
            .await
        {
            Ok(consumer) => {
                let have = &consumer.cached_info().config;
                if have.ack_policy != AckPolicy::Explicit {
                    return Err(Error::config(format!(
                        "`{key}.consumer`: consumer {name} on stream {stream_name} has ack_policy = {:?}; the source needs Explicit (delete it with nats consumer rm to let vowguard create it)",
                        have.ack_policy
                    )));
                }
                if let Some(deliver) = &have.deliver_subject {
                    return Err(Error::config(format!(
                        "`{key}.consumer`: consumer {name} is a push consumer (deliver_subject {deliver:?}); the source needs a pull consumer"
                    )));
                }
                Ok(Some(consumer))
            }
            Err(e) => {
                let not_found = matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND);
                if !not_found {
                    return Err(api_error(key, "consumer lookup", &e));
                }
                if !create {
                    return Ok(None);
                }
                tracing::info!(consumer = %name, stream = %stream_name, "creating the source's durable pull consumer");
                stream
                    .create_consumer(self.consumer_config())
                    .await
                    .map(Some)
                    .map_err(|e| api_error(key, "consumer create", &e))
            }
        }
    }
}

fn api_error(key: &str, what: &str, e: &dyn std::fmt::Display) -> Error {
    let text = e.to_string();
    if text.contains("authorization") || text.contains("permissions") {
        Error::new(
            vowguard_core::ErrorKind::Unauthorized,
            format!(
                "`{key}`: JetStream {what} refused: {text}; check the credentials' permissions"
            ),
        )
    } else {
        Error::unavailable(format!("`{key}`: JetStream {what} failed: {text}"))
    }
}

/// Stream and consumer names: `[A-Za-z0-9_-]+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a message was refused for good (terminated, never redelivered), with a counter label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMessage {
    /// `too_large`, `not_utf8` or `invalid_event`: the `reason` label of the counter.
    pub reason: &'static str,
    /// What is wrong, naming the field at fault (never quoting the payload).
    pub detail: String,
}

/// Parses one message with the project's ingest parser.
///
/// A message larger than `max_bytes` is refused unread. An event without an `id` gets
/// `fallback_id` (when given: derived from the message's stream and sequence or its
/// `Nats-Msg-Id`), so a redelivered message keeps its id and sinks can deduplicate it.
pub fn decode_event(
    payload: &[u8],
    max_bytes: usize,
    fallback_id: Option<&str>,
) -> Result<Event, BadMessage> {
    if payload.len() > max_bytes {
        return Err(BadMessage {
            reason: "too_large",
            detail: format!(
                "message of {} bytes is larger than max_message_bytes ({max_bytes})",
                payload.len()
            ),
        });
    }
    let text = std::str::from_utf8(payload).map_err(|e| BadMessage {
        reason: "not_utf8",
        detail: format!("not UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    let mut event = Event::from_json_str(text).map_err(|e| BadMessage {
        reason: "invalid_event",
        detail: e.to_string(),
    })?;
    if let Some(fallback) = fallback_id
        && !has_id(text)
    {
        event.id = fallback.to_owned();
    }
    Ok(event)
}

/// Whether the (already valid) JSON object has a top-level `id`.
fn has_id(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        id: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Probe>(text).is_ok_and(|p| p.id.is_some())
}

/// A stable event id for a message without one: its `Nats-Msg-Id` when that is a valid
/// event id, else `nats-<stream>-<sequence>`.
pub fn stable_id(msg_id: Option<&str>, stream: &str, sequence: u64) -> String {
    match msg_id {
        Some(id)
            if !id.is_empty()
                && id.len() <= vowguard_core::event::MAX_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            id.to_owned()
        }
        _ => format!("nats-{stream}-{sequence}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<NatsSourceConfig, Error> {
        NatsSourceConfig::from_config(toml::from_str(text).unwrap(), "sources.bus")
    }

    #[test]
    fn jetstream_and_core_configs() {
        let c = config("stream = \"PLATFORM\"\nconsumer = \"vowguard\"").unwrap();
        assert_eq!(c.mode, SourceMode::Jetstream);
        assert_eq!(c.max_deliver, -1);
        assert_eq!(c.max_in_flight, 256);
        let pull = c.consumer_config();
        assert_eq!(pull.ack_policy, AckPolicy::Explicit);
        assert_eq!(pull.durable_name.as_deref(), Some("vowguard"));
        let c = config("mode = \"core\"\nsubject = \"platform.security.>\"\nqueue_group = \"vg\"")
            .unwrap();
        assert_eq!(c.queue_group, "vg");
    }

    #[test]
    fn errors_name_the_key() {
        for (text, want) in [
            ("consumer = \"c\"", "`sources.bus.stream`: required"),
            ("stream = \"S\"", "`sources.bus.consumer`: required"),
            ("stream = \"a.b\"\nconsumer = \"c\"", "`sources.bus.stream`"),
            ("mode = \"core\"", "`sources.bus.subject`: required"),
            (
                "mode = \"core\"\nsubject = \"a..b\"",
                "`sources.bus.subject`",
            ),
            (
                "stream = \"S\"\nconsumer = \"c\"\nmax_in_flight = 0",
                "`sources.bus.max_in_flight`",
            ),
            (
                "stream = \"S\"\nconsumer = \"c\"\nmax_deliver = 0",
                "`sources.bus.max_deliver`",
            ),
            ("stream = \"S\"\nconsumer = \"c\"\nstrem = 1", "strem"),
            (
                "stream = \"S\"\nconsumer = \"c\"\npassword = \"p4ss\"",
                "`sources.bus.password`",
            ),
        ] {
            let err = config(text).unwrap_err();
            assert!(err.message().contains(want), "{text}: {}", err.message());
            assert!(!err.message().contains("p4ss"));
        }
    }

    #[test]
    fn deserialises_inside_a_tagged_table() {
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Source {
            Nats(NatsSourceConfig),
        }
        let Source::Nats(c) =
            toml::from_str("type = \"nats\"\nstream = \"S\"\nconsumer = \"c\"").unwrap();
        assert_eq!(c.stream.as_deref(), Some("S"));
        let err = toml::from_str::<Source>("type = \"nats\"\nstream = \"S\"")
            .err()
            .unwrap();
        assert!(err.to_string().contains("`consumer`: required"), "{err}");
    }

    #[test]
    fn decoding_names_the_field_and_bounds_the_size() {
        let ok = decode_event(
            br#"{"action":"login","severity":"low"}"#,
            100,
            Some("nats-S-7"),
        )
        .unwrap();
        assert_eq!(ok.id, "nats-S-7");
        let with_id = decode_event(
            br#"{"id":"evt-1","action":"login","severity":"low"}"#,
            100,
            Some("nats-S-7"),
        )
        .unwrap();
        assert_eq!(with_id.id, "evt-1");
        let bad = decode_event(br#"{"action":"login"}"#, 100, None).unwrap_err();
        assert_eq!(bad.reason, "invalid_event");
        assert_eq!(bad.detail, "field `severity`: is required");
        let big = decode_event(&[b' '; 101], 100, None).unwrap_err();
        assert_eq!(big.reason, "too_large");
        let bin = decode_event(&[0xff, 0xfe], 100, None).unwrap_err();
        assert_eq!(bin.reason, "not_utf8");
    }

    #[test]
    fn stable_ids() {
        assert_eq!(stable_id(Some("abc-1"), "S", 3), "abc-1");
        assert_eq!(stable_id(Some("has space"), "S", 3), "nats-S-3");
        assert_eq!(stable_id(None, "S", 3), "nats-S-3");
    }
}

//! Connecting, creating or checking the stream and consumers, publishing with PubAck.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use vowguard_core::{Error, ErrorKind, SecretLookup};

use crate::config::{JetStreamConfig, Storage, valid_name};
use crate::connection::NatsClientSettings;
use crate::consumer::{ExhaustedEvents, SinkConsumer};

/// The durable consumer that enriches raw events (sink ids cannot take this name).
pub const ENRICH_CONSUMER: &str = "_enrich";

/// Appended to an event id to make the `Nats-Msg-Id` of its enriched copy (the raw event
/// has the event id itself; both share the stream's duplicate window).
pub const ENRICHED_SUFFIX: &str = ":enriched";

/// The `Nats-Msg-Id` of the enriched copy of event `event_id`.
pub fn enriched_message_id(event_id: &str) -> String {
    format!("{event_id}{ENRICHED_SUFFIX}")
}

/// The longest pause between two reconnect attempts of the queue's connection.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// How long intake tells its clients to wait when JetStream cannot take events.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A connection to JetStream with the event stream checked: publishes events and opens the
/// durable consumers. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    context: jetstream::Context,
    config: JetStreamConfig,
    key: String,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("servers", &self.config.connection.servers)
            .field("stream", &self.config.stream.name)
            .finish_non_exhaustive()
    }
}

/// The answer to a publish: where the event sits in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// Stream sequence of the event.
    pub sequence: u64,
    /// The server already held this event id (a retried publish): stored once, a success.
    pub duplicate: bool,
}

impl JetStream {
    /// Connects (one attempt; the caller retries with its [`vowguard_core::RetryPolicy`],
    /// so `Unavailable` errors are retryable), then creates the event stream or checks the
    /// existing one against `config`. `key` is the config section (`queue`), named in errors.
    pub async fn connect(
        config: JetStreamConfig,
        key: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<Self, Error> {
        config.validate(key)?;
        let settings = config.connection.resolve(key, lookup, base_dir)?;
        Self::connect_resolved(config, settings, key).await
    }

    /// [`JetStream::connect`] with the connection settings of `config` already resolved
    /// (by [`crate::connection::NatsConnection::resolve`], e.g. once at config load).
    pub async fn connect_resolved(
        config: JetStreamConfig,
        settings: NatsClientSettings,
        key: &str,
    ) -> Result<Self, Error> {
        config.validate(key)?;
        // Short: intake answers 503 while the connection is down.
        let settings = settings.with_max_reconnect_delay(MAX_RECONNECT_DELAY);
        let timeout = config.request_timeout();
        let client = settings.connect().await.map_err(|e| {
            let e = e.with_component(key.to_owned());
            if e.is_retryable() {
                e.with_retry_after(RETRY_AFTER)
            } else {
                e
            }
        })?;
        let context = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .ack_timeout(timeout)
            .build(client.clone());
        let this = Self {
            client,
            context,
            config,
            key: key.to_owned(),
        };
        this.ensure_stream().await?;
        Ok(this)
    }

    /// The settings this connection was made with.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// Whether the client is connected right now (for `/health`).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub(crate) fn context(&self) -> &jetstream::Context {
        &self.context
    }

    fn wanted_stream(&self) -> stream::Config {
        let s = &self.config.stream;
        stream::Config {
            name: s.name.clone(),
            subjects: s.subjects(),
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            storage: match s.storage {
                Storage::File => StorageType::File,
                Storage::Memory => StorageType::Memory,
            },
            num_replicas: s.replicas,
            max_bytes: s.max_bytes,
            max_age: s.max_age,
            duplicate_window: s.duplicate_window,
            description: Some("vowguard security events".into()),
            // The server's spelling of "unlimited", so a second start compares equal.
            max_messages: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_message_size: -1,
            ..Default::default()
        }
    }

    async fn ensure_stream(&self) -> Result<(), Error> {
        let wanted = self.wanted_stream();
        match self.context.get_stream(&wanted.name).await {
            Ok(mut existing) => {
                let info = existing
                    .info()
                    .await
                    .map_err(|e| self.api_error("stream info", &e))?;
                if let Some(conflict) = stream_conflict(&info.config, &wanted) {
                    return Err(Error::config(format!(
                        "`{}.stream`: stream {} exists with {conflict}; change the setting or the stream (nats stream edit), vowguard does not change it",
                        self.key, wanted.name
                    )));
                }
                Ok(())
            }
            Err(e) => {
                let not_found = matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND);
                if !not_found {
                    return Err(self.api_error("stream lookup", &e));
                }
                self.context
                    .create_stream(wanted)
                    .await
                    .map_err(|e| self.api_error("stream create", &e))?;
                Ok(())
            }
        }
    }

    /// Creates the durable pull consumer `name` (a sink id, or `_alerts`) of the enriched
    /// events or checks the existing one: fields fixed at creation that differ are
    /// refused, named; AckWait, MaxDeliver and MaxAckPending are updated to ours.
    /// `ack_wait` overrides the default for this sink.
    pub async fn consumer(
        &self,
        name: &str,
        ack_wait: Option<Duration>,
    ) -> Result<SinkConsumer, Error> {
        let c = &self.config.consumers;
        let ack_wait = ack_wait.unwrap_or(c.ack_wait);
        let filter = self.config.stream.subject.clone();
        self.open_consumer(name, ack_wait, filter, c.max_deliver)
            .await
    }

    /// The shared durable consumer [`ENRICH_CONSUMER`] of the raw events (only when
    /// [`crate::StreamSettings::raw_intake`] is set). It has no MaxDeliver limit: the
    /// enrichment itself never fails, and a limit would only drop good events while the
    /// enriched copy cannot be published (NATS down, stream full).
    pub async fn enrich_consumer(&self) -> Result<SinkConsumer, Error> {
        let stream = &self.config.stream;
        if !stream.raw_intake {
            return Err(Error::internal(
                "the enrichment consumer needs `raw_intake` (raw events on their own subject)",
            ));
        }
        let ack_wait = self.config.consumers.ack_wait;
        self.open_consumer(ENRICH_CONSUMER, ack_wait, stream.raw_subject(), -1)
            .await
    }

    async fn open_consumer(
        &self,
        name: &str,
        ack_wait: Duration,
        filter_subject: String,
        max_deliver: i64,
    ) -> Result<SinkConsumer, Error> {
        if !valid_name(name) {
            return Err(Error::config(format!(
                "consumer `{name}`: JetStream consumer names take letters, digits, `-` and `_` only"
            )));
        }
        let c = &self.config.consumers;
        let wanted = pull::Config {
            durable_name: Some(name.to_owned()),
            description: Some(format!("vowguard {name}")),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            max_deliver,
            max_ack_pending: c.max_ack_pending,
            filter_subject,
            ..Default::default()
        };
        let stream_name = &self.config.stream.name;
        let existing = self
            .context
            .get_consumer_from_stream::<pull::Config, _, _>(name, stream_name)
            .await;
        let consumer = match existing {
            Ok(consumer) => {
                let have = consumer.cached_info().config.clone();
                if let Some(conflict) = consumer_conflict(&have, &wanted) {
                    return Err(Error::config(format!(
                        "`{}`: consumer {name} on stream {stream_name} exists with {conflict}; delete it (nats consumer rm) to recreate it",
                        self.key
                    )));
                }
                if have.ack_wait != wanted.ack_wait
                    || have.max_deliver != wanted.max_deliver
                    || have.max_ack_pending != wanted.max_ack_pending
                {
                    tracing::info!(
                        consumer = name,
                        "updating ack_wait/max_deliver/max_ack_pending of the consumer"
                    );
                    // NATS 2.9 updates the editable fields of an existing durable on create.
                    self.context
                        .create_consumer_on_stream(wanted, stream_name)
                        .await
                        .map_err(|e| self.api_error("consumer update", &e))?
                } else {
                    consumer
                }
            }
            Err(e) => {
                let not_found = matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND);
                if !not_found {
                    return Err(self.api_error("consumer lookup", &e));
                }
                self.context
                    .create_consumer_on_stream(wanted, stream_name)
                    .await
                    .map_err(|e| self.api_error("consumer create", &e))?
            }
        };
        Ok(SinkConsumer::new(
            consumer,
            name.to_owned(),
            ack_wait,
            max_deliver,
            c.batch,
        ))
    }

    /// The events the server stopped delivering to consumer `name` after MaxDeliver
    /// deliveries without an ack; subscribe before starting the consumer's workers.
    pub async fn exhausted_events(&self, name: &str) -> Result<ExhaustedEvents, Error> {
        let stream_name = &self.config.stream.name;
        let subject = format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream_name}.{name}");
        let subscriber = self
            .client
            .queue_subscribe(subject, "vowguard".to_owned())
            .await
            .map_err(|e| self.api_error("advisory subscribe", &e))?;
        let stream = self
            .context
            .get_stream(stream_name)
            .await
            .map_err(|e| self.api_error("stream lookup", &e))?;
        Ok(ExhaustedEvents::new(subscriber, stream))
    }

    /// Publishes one event with `Nats-Msg-Id` = `event_id` and waits for the PubAck.
    /// A duplicate (the same id inside the duplicate window, e.g. a retried publish whose
    /// first PubAck was lost) is a success. While the server cannot be reached or does not
    /// answer, the error is `Unavailable` with a `Retry-After` (intake answers 503).
    /// With enrichers on the stream (`raw_intake`) the event goes to the raw subject, for
    /// the [`ENRICH_CONSUMER`]; else straight to the subject the sinks read.
    pub async fn publish(&self, event_id: &str, payload: Bytes) -> Result<Published, Error> {
        self.publish_to(self.config.stream.intake_subject(), event_id, payload)
            .await
    }

    /// Publishes an event again where intake publishes it (see [`JetStream::publish`]),
    /// under `message_id` instead of its event id: a replay of a dead letter, whose first
    /// publish may still be inside the duplicate window (a replay retried inside it is
    /// stored once).
    pub async fn republish(&self, message_id: &str, payload: Bytes) -> Result<Published, Error> {
        self.publish_to(self.config.stream.intake_subject(), message_id, payload)
            .await
    }

    /// Publishes the enriched copy of event `event_id` to the subject the sinks and the
    /// alert path read, with `Nats-Msg-Id` = [`enriched_message_id`] and waits for the
    /// PubAck: a raw event enriched again after a redelivery (its replica died before the
    /// ack) is stored once, a duplicate inside the duplicate window.
    pub async fn publish_enriched(
        &self,
        event_id: &str,
        payload: Bytes,
    ) -> Result<Published, Error> {
        self.publish_to(
            self.config.stream.subject.clone(),
            &enriched_message_id(event_id),
            payload,
        )
        .await
    }

    async fn publish_to(
        &self,
        subject: String,
        message_id: &str,
        payload: Bytes,
    ) -> Result<Published, Error> {
        let message = PublishMessage::build()
            .payload(payload)
            .message_id(message_id);
        let ack = self
            .context
            .send_publish(subject, message)
            .await
            .map_err(|e| self.publish_error(&e))?
            .await
            .map_err(|e| self.publish_error(&e))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    fn publish_error(&self, e: &jetstream::context::PublishError) -> Error {
        let message = format!("publish to stream {} failed: {e}", self.config.stream.name);
        match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => Error::invalid_input(message),
            PublishErrorKind::StreamNotFound => {
                Error::unavailable(message).with_retry_after(RETRY_AFTER)
            }
            _ => Error::unavailable(message).with_retry_after(RETRY_AFTER),
        }
        .with_component(self.key.clone())
    }

    pub(crate) fn api_error(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        let text = e.to_string();
        let kind = if text.contains("authorization") || text.contains("permissions") {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::Unavailable
        };
        Error::new(kind, format!("JetStream {what} failed: {text}"))
            .with_retry_after(RETRY_AFTER)
            .with_component(self.key.clone())
    }
}

/// The first field of an existing stream that differs from ours, as `field = theirs (ours: x)`.
pub(crate) fn stream_conflict(have: &stream::Config, want: &stream::Config) -> Option<String> {
    fn diff<T: std::fmt::Debug + PartialEq>(field: &str, have: &T, want: &T) -> Option<String> {
        (have != want).then(|| format!("{field} = {have:?} (ours: {want:?})"))
    }
    diff("subjects", &have.subjects, &want.subjects)
        .or_else(|| diff("retention", &have.retention, &want.retention))
        .or_else(|| diff("storage", &have.storage, &want.storage))
        .or_else(|| diff("discard", &have.discard, &want.discard))
        .or_else(|| {
            diff(
                "replicas",
                &have.num_replicas.max(1),
                &want.num_replicas.max(1),
            )
        })
        .or_else(|| diff("max_bytes", &have.max_bytes, &want.max_bytes))
        .or_else(|| diff("max_age", &have.max_age, &want.max_age))
        .or_else(|| {
            diff(
                "duplicate_window",
                &have.duplicate_window,
                &want.duplicate_window,
            )
        })
        .or_else(|| {
            diff(
                "max_msgs",
                &unlimited(have.max_messages),
                &unlimited(want.max_messages),
            )
        })
        .or_else(|| {
            diff(
                "max_msgs_per_subject",
                &unlimited(have.max_messages_per_subject),
                &unlimited(want.max_messages_per_subject),
            )
        })
        .or_else(|| diff("sealed", &have.sealed, &want.sealed))
        .or_else(|| {
            have.mirror
                .is_some()
                .then(|| "mirror set (ours: none)".to_owned())
        })
}

/// Limits: 0 and -1 both mean none.
fn unlimited(limit: i64) -> i64 {
    if limit <= 0 { -1 } else { limit }
}

/// The first field fixed at creation that differs between an existing consumer and ours.
pub(crate) fn consumer_conflict(have: &consumer::Config, want: &pull::Config) -> Option<String> {
    fn diff<T: std::fmt::Debug + PartialEq>(field: &str, have: &T, want: &T) -> Option<String> {
        (have != want).then(|| format!("{field} = {have:?} (ours: {want:?})"))
    }
    diff("ack_policy", &have.ack_policy, &want.ack_policy)
        .or_else(|| diff("deliver_policy", &have.deliver_policy, &want.deliver_policy))
        .or_else(|| diff("filter_subject", &have.filter_subject, &want.filter_subject))
        .or_else(|| diff("durable_name", &have.durable_name, &want.durable_name))
        .or_else(|| {
            have.deliver_subject
                .as_ref()
                .map(|d| format!("deliver_subject = {d:?} (ours: none, a pull consumer)"))
        })
        .or_else(|| {
            (!have.backoff.is_empty()).then(|| {
                format!(
                    "backoff = {:?} (ours: none; it would override ack_wait)",
                    have.backoff
                )
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> stream::Config {
        stream::Config {
            name: "S".into(),
            subjects: vec!["v.e".into()],
            discard: DiscardPolicy::New,
            num_replicas: 3,
            max_bytes: 10,
            ..Default::default()
        }
    }

    #[test]
    fn an_identical_stream_has_no_conflict() {
        assert_eq!(stream_conflict(&ours(), &ours()), None);
    }

    #[test]
    fn a_conflicting_stream_field_is_named() {
        let mut have = ours();
        have.retention = RetentionPolicy::WorkQueue;
        assert_eq!(
            stream_conflict(&have, &ours()).as_deref(),
            Some("retention = WorkQueue (ours: Limits)")
        );
        let mut have = ours();
        have.num_replicas = 1;
        assert!(
            stream_conflict(&have, &ours())
                .expect("conflict")
                .starts_with("replicas = 1")
        );
        let mut have = ours();
        have.subjects.push("other".into());
        assert!(
            stream_conflict(&have, &ours())
                .expect("conflict")
                .starts_with("subjects")
        );
    }

    #[test]
    fn consumer_conflicts_name_fixed_fields_only() {
        let want = pull::Config {
            durable_name: Some("sink-a".into()),
            ack_policy: AckPolicy::Explicit,
            filter_subject: "v.e".into(),
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        };
        let base = consumer::Config {
            durable_name: Some("sink-a".into()),
            ack_policy: AckPolicy::Explicit,
            filter_subject: "v.e".into(),
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        };
        let mut have = base.clone();
        have.ack_wait = Duration::from_secs(5);
        have.max_deliver = 3;
        assert_eq!(consumer_conflict(&have, &want), None);
        have.ack_policy = AckPolicy::All;
        assert_eq!(
            consumer_conflict(&have, &want).as_deref(),
            Some("ack_policy = All (ours: Explicit)")
        );
        let mut have = base.clone();
        have.backoff = vec![Duration::from_secs(1)];
        assert!(
            consumer_conflict(&have, &want)
                .expect("conflict")
                .starts_with("backoff")
        );
        let mut have = base;
        have.deliver_subject = Some("push.x".into());
        assert!(
            consumer_conflict(&have, &want)
                .expect("conflict")
                .starts_with("deliver_subject")
        );
    }
}

//! The `nats` source: events a platform already publishes to NATS.
//!
//! * JetStream mode (the default): a durable pull consumer on the platform's stream. Each
//!   message is parsed with the ingest parser; a bad one (too large, not UTF-8, breaking the
//!   event contract) is terminated (`+TERM`) at once with a counted reason and a log line
//!   naming its stream sequence and the field at fault, so it never loops. A good one is
//!   handed to vowguard's queue ([`EventQueue::enqueue`]) and acked only when that returns
//!   (the event is durable), with a double ack so a lost ack cannot cause a redelivery.
//!   While the queue makes it wait (a full journal that blocks), progress acks (`+WPI`)
//!   keep the server from redelivering it; when the queue refuses it for now, it is NAKed
//!   with the shared retry policy's delay (no hot loop). A vowguard that dies before the
//!   ack loses nothing: the server redelivers after `ack_wait`, with the same event id
//!   (the event's own, else `Nats-Msg-Id`, else `nats-<stream>-<sequence>`).
//! * Core mode: a subscription in a queue group. Core NATS has no redelivery; a message
//!   with a reply subject (sent with `request`) is answered once its event is durable, or
//!   with the reason it was refused, so such publishers get the same guarantee.
//!
//! At most `max_in_flight` messages are handled at once; the source stops pulling while
//! they wait (backpressure: memory stays bounded whatever the publisher does). A lost
//! connection or consumer stream is rebuilt with the shared backoff; the client itself
//! reconnects with capped exponential backoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use vowguard_core::{Error, ErrorKind, RetryPolicy};
use vowguard_nats::async_nats;
use vowguard_nats::async_nats::jetstream::message::AckKind;
use vowguard_nats::{NatsClientSettings, NatsSourceConfig, SourceMode, decode_event, stable_id};
use vowguard_pipeline::EventQueue;

/// Counters of one `nats` source, readable while it runs.
#[derive(Debug, Default)]
pub struct NatsSourceCounters {
    received: AtomicU64,
    accepted: AtomicU64,
    terminated: AtomicU64,
    too_large: AtomicU64,
    not_utf8: AtomicU64,
    invalid_event: AtomicU64,
    terminated_other: AtomicU64,
    requeued: AtomicU64,
    ack_failures: AtomicU64,
}

/// What a `nats` source did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsSourceStats {
    /// Messages received (redeliveries included).
    pub received: u64,
    /// Events durable in vowguard's queue, their messages acked (or requests answered).
    pub accepted: u64,
    /// Messages refused for good (too large, not UTF-8, not a valid event, refused by the
    /// queue as invalid): terminated, never redelivered.
    pub terminated: u64,
    /// Of `terminated`: larger than `max_message_bytes`.
    pub too_large: u64,
    /// Of `terminated`: not UTF-8.
    pub not_utf8: u64,
    /// Of `terminated`: not JSON, or breaking the event contract (the log names the field).
    pub invalid_event: u64,
    /// Messages NAKed with a delay because vowguard's queue could not take them yet.
    pub requeued: u64,
    /// Acks the server did not confirm (the message may be delivered again; the event id
    /// stays the same).
    pub ack_failures: u64,
}

impl NatsSourceCounters {
    /// The counters now.
    pub fn snapshot(&self) -> NatsSourceStats {
        NatsSourceStats {
            received: self.received.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            terminated: self.terminated.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
            not_utf8: self.not_utf8.load(Ordering::Relaxed),
            invalid_event: self.invalid_event.load(Ordering::Relaxed),
            requeued: self.requeued.load(Ordering::Relaxed),
            ack_failures: self.ack_failures.load(Ordering::Relaxed),
        }
    }
}

/// Where the connection of a `nats` source stands, for `/health`: `connecting` (before
/// the first connection), `connected`, `reconnecting` (with why: the server cannot be
/// reached, the connection was lost, the consumer stream failed), `failed` (refused for
/// good, e.g. credentials) or `stopped`. Shared with the HTTP server while the source runs.
#[derive(Debug)]
pub struct NatsSourceHealth {
    id: String,
    mode: &'static str,
    servers: String,
    state: std::sync::Mutex<Connection>,
}

#[derive(Debug)]
struct Connection {
    state: &'static str,
    problem: Option<String>,
    /// The live client once connected: its own reconnecting shows between our attempts.
    client: Option<async_nats::Client>,
}

impl NatsSourceHealth {
    fn set(
        &self,
        state: &'static str,
        problem: Option<String>,
        client: Option<async_nats::Client>,
    ) {
        let mut c = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c = Connection {
            state,
            problem,
            client,
        };
    }

    /// The state now and why it is not `connected` (`None` when it is).
    pub fn state(&self) -> (&'static str, Option<String>) {
        let c = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &c.client {
            Some(client)
                if c.state == "connected"
                    && client.connection_state() != async_nats::connection::State::Connected =>
            {
                (
                    "reconnecting",
                    Some(format!(
                        "connection to NATS lost; the client is reconnecting to {}",
                        self.servers
                    )),
                )
            }
            _ => (c.state, c.problem.clone()),
        }
    }
}

impl crate::server::SourceHealth for NatsSourceHealth {
    fn problem(&self) -> Option<String> {
        match self.state() {
            ("connected", _) => None,
            (state, problem) => Some(problem.unwrap_or_else(|| state.to_owned())),
        }
    }

    fn health(&self) -> serde_json::Value {
        let (state, problem) = self.state();
        serde_json::json!({
            "id": self.id,
            "type": "nats",
            "mode": self.mode,
            "servers": self.servers,
            "state": state,
            "connected": state == "connected",
            "problem": problem,
        })
    }
}

/// One configured `nats` source.
///
/// ```no_run
/// # async fn demo(queue: std::sync::Arc<dyn vowguard_pipeline::EventQueue>) -> Result<(), vowguard_core::Error> {
/// use vowguard_runtime::nats_source::NatsSource;
///
/// let table = vowguard_core::ComponentConfig::from_toml("stream = \"PLATFORM\"\nconsumer = \"vowguard\"")?;
/// let config = vowguard_nats::NatsSourceConfig::from_config(table, "sources.platform")?;
/// let settings = config.resolve(
///     "sources.platform",
///     &vowguard_core::ProcessEnv,
///     std::path::Path::new("."),
/// )?;
/// let source = NatsSource::new("platform", config, settings);
/// let stats = source.run(queue, tokio::signal::ctrl_c().map(|_| ())).await?;
/// println!("{} events accepted", stats.accepted);
/// # Ok(())
/// # }
/// # use futures::FutureExt;
/// ```
#[derive(Debug)]
pub struct NatsSource {
    id: String,
    key: String,
    config: NatsSourceConfig,
    settings: NatsClientSettings,
    counters: Arc<NatsSourceCounters>,
    health: Arc<NatsSourceHealth>,
    retry: RetryPolicy,
}

type Handling = Pin<Box<dyn Future<Output = ()> + Send>>;

impl NatsSource {
    /// A source `sources.<id>` with its connection settings resolved.
    pub fn new(
        id: impl Into<String>,
        config: NatsSourceConfig,
        settings: NatsClientSettings,
    ) -> Self {
        let id = id.into();
        let health = Arc::new(NatsSourceHealth {
            id: id.clone(),
            mode: match config.mode {
                SourceMode::Jetstream => "jetstream",
                SourceMode::Core => "core",
            },
            servers: settings.servers().to_owned(),
            state: std::sync::Mutex::new(Connection {
                state: "connecting",
                problem: Some(format!("connecting to NATS at {}", settings.servers())),
                client: None,
            }),
        });
        Self {
            key: format!("sources.{id}"),
            id,
            config,
            settings,
            counters: Arc::default(),
            health,
            retry: RetryPolicy::default(),
        }
    }

    /// The backoff of NAKs and of rebuilding a lost consumer stream (default: the shared
    /// [`RetryPolicy`]'s defaults).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The live counters.
    pub fn counters(&self) -> Arc<NatsSourceCounters> {
        self.counters.clone()
    }

    /// The live state of its connection (for `/health`).
    pub fn health(&self) -> Arc<NatsSourceHealth> {
        self.health.clone()
    }

    /// Reads until `stop` completes, handing each event to `queue`; then stops pulling,
    /// lets the messages in flight finish (acked, or left for redelivery), and returns the
    /// counters. Connection failures are retried with backoff (the reason is logged);
    /// configuration errors and refused credentials end the run with an error naming the key.
    pub async fn run(
        &self,
        queue: Arc<dyn EventQueue>,
        stop: impl Future<Output = ()>,
    ) -> Result<NatsSourceStats, Error> {
        let mut stop = std::pin::pin!(stop);
        let mut in_flight: FuturesUnordered<Handling> = FuturesUnordered::new();
        let mut failures = 0u32;
        let result = 'connect: loop {
            // Messages already in flight keep being handled while (re)connecting.
            let mut connecting = Box::pin(self.settings.connect());
            let client = loop {
                tokio::select! {
                    client = &mut connecting => break client,
                    () = &mut stop => break 'connect Ok(()),
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                }
            };
            let client = match client {
                Ok(client) => client,
                Err(e) => {
                    let e = e.with_component(self.id.clone());
                    if !e.is_retryable() {
                        self.health.set("failed", Some(e.to_string()), None);
                        break 'connect Err(e);
                    }
                    self.health.set("reconnecting", Some(e.to_string()), None);
                    failures += 1;
                    let delay = self.retry.backoff_ceiling(failures);
                    tracing::warn!(source = %self.id, error = %e, retry_in_ms = delay.as_millis() as u64, "NATS source cannot connect; retrying");
                    if pause(delay, &mut in_flight, &mut stop).await {
                        continue 'connect;
                    }
                    break 'connect Ok(());
                }
            };
            self.health.set("connected", None, Some(client.clone()));
            let outcome = match self.config.mode {
                SourceMode::Jetstream => {
                    self.consume_jetstream(
                        &client,
                        &queue,
                        &mut in_flight,
                        &mut stop,
                        &mut failures,
                    )
                    .await
                }
                SourceMode::Core => {
                    self.consume_core(&client, &queue, &mut in_flight, &mut stop, &mut failures)
                        .await
                }
            };
            match outcome {
                Ok(Continue::Stopped) => break 'connect Ok(()),
                Ok(Continue::Rebuild) => {}
                Err(e) if e.is_retryable() => {
                    self.health.set("reconnecting", Some(e.to_string()), None);
                    failures += 1;
                    let delay = self.retry.backoff_ceiling(failures);
                    tracing::warn!(source = %self.id, error = %e, retry_in_ms = delay.as_millis() as u64, "NATS source interrupted; resuming");
                    if !pause(delay, &mut in_flight, &mut stop).await {
                        break 'connect Ok(());
                    }
                }
                Err(e) => {
                    let e = e.with_component(self.id.clone());
                    self.health.set("failed", Some(e.to_string()), None);
                    break 'connect Err(e);
                }
            }
        };
        if result.is_ok() {
            self.health
                .set("stopped", Some("the source stopped".into()), None);
        }
        // Messages in flight finish (acked once durable); bounded, since an unacked message
        // is redelivered anyway.
        let drain = async { while in_flight.next().await.is_some() {} };
        let deadline = self.config.ack_wait.max(Duration::from_secs(5));
        if tokio::time::timeout(deadline, drain).await.is_err() {
            tracing::warn!(source = %self.id, "messages still waiting for the queue at stop are left unacked; the server redelivers them");
        }
        result.map(|()| self.counters.snapshot())
    }

    async fn consume_jetstream(
        &self,
        client: &async_nats::Client,
        queue: &Arc<dyn EventQueue>,
        in_flight: &mut FuturesUnordered<Handling>,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
        failures: &mut u32,
    ) -> Result<Continue, Error> {
        let consumer = self.config.open_consumer(client, &self.key).await?;
        let stream_name = self.config.stream.clone().unwrap_or_default();
        let batch = self.config.max_in_flight.min(256);
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .messages()
            .await
            .map_err(|e| {
                Error::unavailable(format!("`{}`: cannot pull from consumer: {e}", self.key))
            })?;
        tracing::info!(source = %self.id, stream = %stream_name, consumer = ?self.config.consumer, "NATS source reading");
        loop {
            tokio::select! {
                biased;
                () = &mut *stop => return Ok(Continue::Stopped),
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                next = messages.next(), if in_flight.len() < self.config.max_in_flight => match next {
                    Some(Ok(message)) => {
                        *failures = 0;
                        in_flight.push(Box::pin(handle_jetstream(
                            self.context(queue),
                            stream_name.clone(),
                            message,
                        )));
                    }
                    Some(Err(e)) => {
                        return Err(Error::unavailable(format!(
                            "`{}`: consumer stream failed: {e}",
                            self.key
                        )));
                    }
                    None => return Ok(Continue::Rebuild),
                },
            }
        }
    }

    async fn consume_core(
        &self,
        client: &async_nats::Client,
        queue: &Arc<dyn EventQueue>,
        in_flight: &mut FuturesUnordered<Handling>,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
        failures: &mut u32,
    ) -> Result<Continue, Error> {
        let subject = self.config.subject.clone().unwrap_or_default();
        let mut subscriber = client
            .queue_subscribe(subject.clone(), self.config.queue_group.clone())
            .await
            .map_err(|e| {
                Error::unavailable(format!("`{}.subject`: cannot subscribe: {e}", self.key))
            })?;
        tracing::info!(source = %self.id, subject = %subject, queue_group = %self.config.queue_group, "NATS source subscribed");
        loop {
            tokio::select! {
                biased;
                () = &mut *stop => {
                    let _ = subscriber.unsubscribe().await;
                    return Ok(Continue::Stopped);
                }
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                next = subscriber.next(), if in_flight.len() < self.config.max_in_flight => match next {
                    Some(message) => {
                        *failures = 0;
                        in_flight.push(Box::pin(handle_core(
                            self.context(queue),
                            client.clone(),
                            message,
                        )));
                    }
                    None => return Ok(Continue::Rebuild),
                },
            }
        }
    }

    fn context(&self, queue: &Arc<dyn EventQueue>) -> HandlerContext {
        HandlerContext {
            source: self.id.clone(),
            queue: queue.clone(),
            counters: self.counters.clone(),
            retry: self.retry,
            max_message_bytes: self.config.max_message_bytes,
            progress_every: self.config.ack_wait.div_f64(3.0),
        }
    }
}

/// What `vowguard validate` checks of a `nats` source: the server takes the connection and
/// credentials, and in JetStream mode the stream exists and an existing consumer fits.
pub async fn healthcheck(
    id: &str,
    config: &NatsSourceConfig,
    settings: &NatsClientSettings,
) -> Result<(), Error> {
    let key = format!("sources.{id}");
    let client = settings.connect().await?;
    match config.mode {
        SourceMode::Jetstream => config.check(&client, &key).await,
        SourceMode::Core => client
            .flush()
            .await
            .map_err(|e| Error::unavailable(format!("`{key}`: NATS did not answer: {e}"))),
    }
}

/// Waits `delay` while handling the messages in flight; `false` when `stop` completed first.
async fn pause(
    delay: Duration,
    in_flight: &mut FuturesUnordered<Handling>,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            () = &mut *stop => return false,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}

/// What the consume loop does next.
enum Continue {
    Stopped,
    Rebuild,
}

/// What one message's handling needs.
struct HandlerContext {
    source: String,
    queue: Arc<dyn EventQueue>,
    counters: Arc<NatsSourceCounters>,
    retry: RetryPolicy,
    max_message_bytes: usize,
    progress_every: Duration,
}

impl HandlerContext {
    fn terminated(&self, reason: &'static str) {
        self.counters.terminated.fetch_add(1, Ordering::Relaxed);
        match reason {
            "too_large" => &self.counters.too_large,
            "not_utf8" => &self.counters.not_utf8,
            "invalid_event" => &self.counters.invalid_event,
            _ => &self.counters.terminated_other,
        }
        .fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vowguard_nats_source_terminated_total", "source" => self.source.clone(), "reason" => reason)
            .increment(1);
    }

    fn accepted(&self) {
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vowguard_nats_source_accepted_total", "source" => self.source.clone())
            .increment(1);
    }
}

fn message_id(headers: Option<&async_nats::HeaderMap>) -> Option<&str> {
    headers?
        .get(async_nats::header::NATS_MESSAGE_ID)
        .map(async_nats::HeaderValue::as_str)
}

async fn handle_jetstream(
    cx: HandlerContext,
    stream: String,
    message: async_nats::jetstream::Message,
) {
    cx.counters.received.fetch_add(1, Ordering::Relaxed);
    let (sequence, delivered) = message
        .info()
        .map(|i| (i.stream_sequence, i.delivered.max(1)))
        .unwrap_or((0, 1));
    let fallback = stable_id(message_id(message.headers.as_ref()), &stream, sequence);
    let event = match decode_event(&message.payload, cx.max_message_bytes, Some(&fallback)) {
        Ok(event) => event,
        Err(bad) => {
            tracing::warn!(source = %cx.source, stream = %stream, sequence, reason = bad.reason, "message terminated (never redelivered): {}", bad.detail);
            cx.terminated(bad.reason);
            if let Err(e) = message.ack_with(AckKind::Term).await {
                cx.counters.ack_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %cx.source, sequence, "terminating the message failed: {e}");
            }
            return;
        }
    };
    let event_id = event.id.clone();
    // Progress acks while the queue makes us wait, so the server does not redeliver an
    // event that is about to be stored.
    let enqueue = cx.queue.enqueue(event);
    tokio::pin!(enqueue);
    let mut progress = tokio::time::interval_at(
        tokio::time::Instant::now() + cx.progress_every,
        cx.progress_every,
    );
    let stored = loop {
        tokio::select! {
            result = &mut enqueue => break result,
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    };
    match stored {
        Ok(()) => {
            cx.accepted();
            if let Err(e) = message.double_ack().await {
                cx.counters.ack_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %cx.source, sequence, event_id = %event_id, "the event is stored but the server did not confirm the ack ({e}); it may be delivered again with the same id");
            }
        }
        Err(e) if e.is_retryable() => {
            cx.counters.requeued.fetch_add(1, Ordering::Relaxed);
            let delay = cx
                .retry
                .delay(u32::try_from(delivered).unwrap_or(u32::MAX), &e);
            tracing::warn!(source = %cx.source, sequence, event_id = %event_id, error = %e, retry_in_ms = delay.as_millis() as u64, "vowguard's queue cannot take the event now; the server redelivers it later");
            if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(source = %cx.source, sequence, "nak failed ({e}); the server redelivers after ack_wait");
            }
        }
        Err(e) => {
            tracing::warn!(source = %cx.source, stream = %stream, sequence, event_id = %event_id, error = %e, "the queue refused the event for good; message terminated");
            cx.terminated(refusal_reason(&e));
            if let Err(e) = message.ack_with(AckKind::Term).await {
                cx.counters.ack_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %cx.source, sequence, "terminating the message failed: {e}");
            }
        }
    }
}

fn refusal_reason(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::Rejected | ErrorKind::Encode => "refused_by_queue",
        _ => "queue_error",
    }
}

/// The answer to a core request: `{"accepted":true,"id":..}` or
/// `{"accepted":false,"retry":bool,"error":..}`.
fn reply_body(result: Result<&str, (&str, bool)>) -> String {
    let value = match result {
        Ok(id) => serde_json::json!({ "accepted": true, "id": id }),
        Err((error, retry)) => {
            serde_json::json!({ "accepted": false, "retry": retry, "error": error })
        }
    };
    value.to_string()
}

async fn handle_core(cx: HandlerContext, client: async_nats::Client, message: async_nats::Message) {
    cx.counters.received.fetch_add(1, Ordering::Relaxed);
    let reply = |body: String| {
        let client = client.clone();
        let to = message.reply.clone();
        async move {
            if let Some(to) = to {
                let _ = client.publish(to, body.into()).await;
            }
        }
    };
    let event = match decode_event(&message.payload, cx.max_message_bytes, None) {
        Ok(event) => event,
        Err(bad) => {
            tracing::warn!(source = %cx.source, subject = %message.subject, reason = bad.reason, "message refused: {}", bad.detail);
            cx.terminated(bad.reason);
            reply(reply_body(Err((&bad.detail, false)))).await;
            return;
        }
    };
    let event_id = event.id.clone();
    match cx.queue.enqueue(event).await {
        Ok(()) => {
            cx.accepted();
            reply(reply_body(Ok(&event_id))).await;
        }
        Err(e) => {
            let retry = e.is_retryable();
            if retry {
                cx.counters.requeued.fetch_add(1, Ordering::Relaxed);
            } else {
                cx.terminated(refusal_reason(&e));
            }
            tracing::warn!(source = %cx.source, event_id = %event_id, error = %e, "the queue did not take the event (core NATS: only a requester can send it again)");
            reply(reply_body(Err((e.message(), retry)))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_bodies() {
        assert_eq!(reply_body(Ok("evt-1")), r#"{"accepted":true,"id":"evt-1"}"#);
        let body = reply_body(Err(("field `severity`: is required", false)));
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["accepted"], false);
        assert_eq!(value["retry"], false);
        assert_eq!(value["error"], "field `severity`: is required");
    }
}

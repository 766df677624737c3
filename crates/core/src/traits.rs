//! The three connector roles: [`Sink`], [`Enricher`] and [`Notifier`].

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::enrichment::Enrichment;
use crate::error::Error;
use crate::event::Event;

/// One event encoded for one sink, ready to be placed in a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The event's id (for logs and dead letters).
    pub event_id: String,
    /// The encoded bytes (a HEC envelope, a bulk action + document, a CEF line, ...).
    pub bytes: Vec<u8>,
}

/// What became of one event in one batch.
#[derive(Debug)]
pub enum EventOutcome {
    /// The destination has it.
    Delivered,
    /// Not delivered; sending it again later may work (the error says when, if it knows).
    Retry(Error),
    /// Not delivered and never will be as it is; goes to the dead-letter store.
    Rejected(Error),
}

impl EventOutcome {
    /// `Retry` for a retryable error, `Rejected` otherwise.
    pub fn from_error(error: Error) -> Self {
        if error.is_retryable() {
            Self::Retry(error)
        } else {
            Self::Rejected(error)
        }
    }

    /// The same outcome for each of `n` events (a whole request succeeded or failed).
    pub fn for_all(n: usize, result: &Result<(), Error>) -> Vec<EventOutcome> {
        (0..n)
            .map(|_| match result {
                Ok(()) => Self::Delivered,
                Err(e) => Self::from_error(e.clone()),
            })
            .collect()
    }

    /// True for [`EventOutcome::Delivered`].
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Delivered)
    }
}

/// Limits of one batch sent to a sink. A batch is sent when any limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BatchLimits {
    /// Most events in one batch.
    pub max_events: usize,
    /// Most encoded bytes in one batch (before compression). A single larger event is
    /// still sent, alone.
    pub max_bytes: usize,
    /// Longest time the first event of a batch waits for others (`max_wait = "1s"`).
    #[serde(with = "crate::duration")]
    pub max_wait: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_events: 500,
            max_bytes: 1_000_000,
            max_wait: Duration::from_secs(1),
        }
    }
}

impl BatchLimits {
    /// Limits of at most `max_events` events and `max_bytes` encoded bytes per batch, the
    /// first event waiting at most `max_wait` for others.
    pub fn new(max_events: usize, max_bytes: usize, max_wait: Duration) -> Self {
        Self {
            max_events,
            max_bytes,
            max_wait,
        }
    }

    /// [`BatchLimits::max_wait`] (kept for callers of the method).
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

/// A destination for every event: a SIEM or log platform.
///
/// The pipeline calls [`Sink::encode`] once per event (a pure function, so it is tested
/// with golden vectors and fuzzed), batches the encoded events by count, bytes and time,
/// calls [`Sink::send`], and acts on the per-event outcomes: delivered, retried with the
/// shared backoff, or dead-lettered. Sinks do not retry themselves.
#[async_trait]
pub trait Sink: Send + Sync + Debug {
    /// The connector kind, as written in `type = "..."`.
    fn kind(&self) -> &'static str;

    /// The batch limits this destination prefers; configuration may override them.
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::default()
    }

    /// Requests this destination should have in flight when `request.concurrency` is not
    /// configured; `None` (the default) leaves the pipeline's default. A sink whose requests
    /// wait long after the destination answered (Splunk indexer acknowledgement) needs more
    /// batches in flight to keep up.
    fn default_concurrency(&self) -> Option<usize> {
        None
    }

    /// Encodes one event. An error rejects that event alone.
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error>;

    /// Encodes one event whose storage form is already at hand: `stored` is exactly
    /// `serde_json::to_vec(event)` (the journal record the event was read from). A sink
    /// whose output embeds the storage JSON (the Splunk HEC `event` member, for one)
    /// copies `stored` instead of serialising the event again; the output must be the same
    /// as [`Sink::encode`]'s. The default calls [`Sink::encode`].
    fn encode_stored(&self, event: &Event, stored: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = stored;
        self.encode(event)
    }

    /// Sends one batch; returns exactly one outcome per event, in order.
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome>;

    /// Checks that the destination is reachable and accepts our credentials.
    async fn healthcheck(&self) -> Result<(), Error>;
}

/// Adds context to an event within a deadline.
///
/// An enricher never blocks delivery: when it fails or exceeds [`Enricher::timeout`], the
/// event goes on, marked as not enriched by it.
#[async_trait]
pub trait Enricher: Send + Sync + Debug {
    /// The connector kind, as written in `type = "..."`.
    fn kind(&self) -> &'static str;

    /// How long one call to [`Enricher::enrich`] may take.
    fn timeout(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// Looks the event up and returns what was learned (merged by the pipeline).
    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error>;
}

/// Proof that a notifier delivered an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The vendor's id for the delivery (PagerDuty dedup key, Slack `ts`, Twilio `sid`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// Delivers one [`Alert`] to one channel (PagerDuty, Slack, Teams, SMS, email).
///
/// Notifiers do not retry themselves: the dispatcher retries retryable errors with the
/// shared [`RetryPolicy`](crate::RetryPolicy), honouring `Retry-After`.
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// The connector kind, as written in `type = "..."`.
    fn kind(&self) -> &'static str;

    /// Delivers the alert once.
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error>;

    /// Checks the configuration can work (without sending a message where possible).
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The vendor's documented sending rate for this notifier; the dispatcher queues alerts
    /// in order (never drops them) to stay under it. `None` means no limit.
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }
}

/// A token-bucket rate: `per_second` tokens refill continuously, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained messages per second.
    pub per_second: f64,
    /// Messages that may be sent at once after a quiet period.
    pub burst: u32,
}

/// An alert together with the notifier ids it must reach.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedAlert {
    /// The alert.
    pub alert: crate::alert::Alert,
    /// Ids of the notifiers (`[notifiers.<id>]`) that receive it.
    pub notifiers: Vec<String>,
}

/// How an alert is grouped with others before it is sent (Alertmanager's timers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGrouping {
    /// Alerts with the same key form one group and one notification.
    pub key: String,
    /// How long the first notification of a new group waits for more alerts.
    pub group_wait: Duration,
    /// Least time between two notifications of a group that received new alerts.
    pub group_interval: Duration,
    /// After how long an unchanged group is notified again.
    pub repeat_interval: Duration,
    /// After how long without alerts a group is forgotten.
    pub forget_after: Duration,
}

/// What routing an event would do, computed without any side effect (no action requested,
/// no breach record, no inhibition, grouping or delivery state changed).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingDryRun {
    /// The alerts the live router would hand to notifiers (none when inhibited).
    pub alerts: Vec<RoutedAlert>,
    /// The decision, as the router describes it (priority, reasons, protocols, actions it
    /// would request, routes, inhibition it would apply).
    pub decision: serde_json::Value,
}

/// Decides which alerts an enriched event raises and where they go. Implemented by
/// `vowguard-router`; the pipeline calls it once per event after enrichment.
pub trait AlertRouting: Send + Sync + Debug {
    /// The alerts `event` raises (none for most events), with the routing's side effects
    /// (protocol actions, breach records, inhibition state).
    fn route(&self, event: &std::sync::Arc<Event>) -> Vec<RoutedAlert>;

    /// What [`route`](Self::route) would do for `event`, without its side effects; `None`
    /// when the implementation cannot tell.
    fn dry_run(&self, event: &std::sync::Arc<Event>) -> Option<RoutingDryRun> {
        let _ = event;
        None
    }

    /// The routing state a restart must not forget (inhibition sources), for the host
    /// to persist; `None` when there is none.
    fn export_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores state from [`export_state`](Self::export_state) (at start, before routing).
    fn import_state(&self, state: serde_json::Value) -> Result<(), Error> {
        let _ = state;
        Ok(())
    }

    /// How `alert` is grouped; `None` sends it at once, ungrouped (the default).
    fn grouping(&self, alert: &RoutedAlert) -> Option<AlertGrouping> {
        let _ = alert;
        None
    }

    /// Called once for each alert [`route`](Self::route) returned, after the pipeline gave
    /// it its stable id and before grouping (so every alert of a group is seen). Hosts use it
    /// to hand alerts to automated response; it must not block. Default: nothing.
    fn on_routed(&self, alert: &RoutedAlert) {
        let _ = alert;
    }
}

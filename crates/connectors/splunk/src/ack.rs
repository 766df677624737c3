//! Indexer acknowledgement: one background poller per sink serves every batch in flight.
//!
//! Each `send` that got an `ackId` registers it here and waits. One task per sink (started
//! on the first registration, ending when nothing is outstanding) posts every outstanding id
//! in one `POST /services/collector/ack` per poll interval and wakes the batches Splunk
//! confirmed. So with `request.concurrency` batches in flight there is one poll per interval,
//! not one per batch. The interval is `poll_interval` when configured; by default it
//! follows how fast Splunk confirms ([`PollPace`]). A batch whose confirmation does not come within `timeout` is retried
//! (sent again), never dropped; so is a batch whose `ackId` Splunk hands out again on the same
//! channel before confirming the first (the old id is then unknowable).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use vowguard_http::reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use vowguard_http::reqwest::{Client, Url};
use vowguard_http::{classify_status, snippet, transport_error};

use crate::sink::CHANNEL_HEADER;

/// The shortest time one acknowledgement poll is given, even right at a deadline.
const MIN_POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// The first interval of the adaptive pace.
const ADAPTIVE_START: Duration = Duration::from_millis(100);
/// The shortest adaptive interval: at most 50 polls per second per sink.
const ADAPTIVE_MIN: Duration = Duration::from_millis(20);
/// The longest adaptive interval.
const ADAPTIVE_MAX: Duration = Duration::from_millis(1_000);

/// At most this many ids in one poll (HEC has no documented limit; this keeps each request
/// and answer small). More outstanding ids are polled in several requests of one round.
const MAX_IDS_PER_POLL: usize = 1_000;

/// Why a registered batch stopped waiting without a confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckFailure {
    /// No confirmation before the deadline; the last poll problem, if the last poll failed.
    TimedOut {
        /// A secret-free description of the last failed poll.
        last_problem: Option<String>,
    },
    /// Splunk gave the same `ackId` to a later batch on this channel before confirming this
    /// one: a confirmation can no longer be told apart.
    Superseded,
}

/// Where and how to poll: the parts of the sink the background task needs.
pub(crate) struct AckEndpoint {
    pub(crate) client: Client,
    pub(crate) ack_url: Url,
    pub(crate) auth: HeaderValue,
    pub(crate) channel: String,
    /// `scheme://host:port`, for messages.
    pub(crate) origin: String,
    /// The client's whole-request timeout (`http.timeout`): no poll waits longer.
    pub(crate) request_timeout: Duration,
    /// How long between two polls (the start of one to the start of the next).
    pub(crate) pace: PollPace,
}

/// The time between two acknowledgement polls: fixed (`poll_interval_ms` configured) or
/// adaptive (the default).
///
/// Adaptive: it starts at 100 ms and stays between 20 ms and 1 s. After each poll, if an id
/// that had already waited a whole interval before the poll is still unconfirmed, indexing
/// takes longer than the interval: it grows by a quarter (polling sooner would only ask
/// again). Otherwise, if the poll confirmed something, indexing was at least as fast as the
/// interval: it shrinks by a quarter. A failed poll doubles it. So the interval settles
/// near Splunk's indexing latency: a batch waits little beyond its confirmation, and a slow
/// indexer is not polled more often than it confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollPace {
    interval: Duration,
    adaptive: bool,
}

impl PollPace {
    /// Always `interval`.
    pub(crate) fn fixed(interval: Duration) -> Self {
        Self {
            interval,
            adaptive: false,
        }
    }

    /// Follows how fast Splunk confirms.
    pub(crate) fn adaptive() -> Self {
        Self {
            interval: ADAPTIVE_START,
            adaptive: true,
        }
    }

    /// The current interval.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// After a poll that answered: `overdue_pending` when an id that had waited at least the
    /// interval before the poll is still unconfirmed; `confirmed` how many ids it confirmed.
    fn answered(&mut self, overdue_pending: bool, confirmed: usize) {
        if !self.adaptive {
            return;
        }
        if overdue_pending {
            self.interval = (self.interval * 5 / 4).min(ADAPTIVE_MAX);
        } else if confirmed > 0 {
            self.interval = (self.interval * 3 / 4).max(ADAPTIVE_MIN);
        }
    }

    /// After a poll that failed.
    fn failed(&mut self) {
        if self.adaptive {
            self.interval = (self.interval * 2).min(ADAPTIVE_MAX);
        }
    }
}

/// The outstanding acknowledgements of one sink and its poller.
pub(crate) struct AckPoller {
    endpoint: AckEndpoint,
    state: Mutex<AckState>,
}

struct AckState {
    /// `ackId` → the batch waiting for it.
    waiting: HashMap<u64, Waiter>,
    /// The background task while it runs (it stops when `waiting` is empty). Also restarted
    /// when it ended some other way (its runtime shut down while the sink lives on).
    task: Option<tokio::task::JoinHandle<()>>,
    /// What went wrong with the last poll (cleared by a successful one).
    last_problem: Option<String>,
    /// Polls sent so far (for tests and `Debug`).
    polls: u64,
    /// The time between two polls (adapted after each poll unless fixed).
    pace: PollPace,
    /// Tells waiters apart when Splunk reuses an id.
    next_serial: u64,
}

struct Waiter {
    /// Unique per registration.
    serial: u64,
    /// When the batch started waiting.
    registered: Instant,
    deadline: Instant,
    /// Told `true` once Splunk confirms the id; dropped (the waiter sees an error) when the
    /// id is superseded.
    done: oneshot::Sender<bool>,
}

impl fmt::Debug for AckPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("AckPoller")
            .field("pace", &state.pace)
            .field("outstanding", &state.waiting.len())
            .field("polls", &state.polls)
            .finish_non_exhaustive()
    }
}

impl AckPoller {
    pub(crate) fn new(endpoint: AckEndpoint) -> Arc<Self> {
        let pace = endpoint.pace;
        Arc::new(Self {
            endpoint,
            state: Mutex::new(AckState {
                waiting: HashMap::new(),
                task: None,
                last_problem: None,
                polls: 0,
                pace,
                next_serial: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        // The state stays consistent across a panic (each update is one map operation).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many polls were sent so far.
    pub(crate) fn polls(&self) -> u64 {
        self.lock().polls
    }

    /// The time between two polls now.
    pub(crate) fn poll_interval(&self) -> Duration {
        self.lock().pace.interval()
    }

    /// Waits until Splunk confirms `ack_id` (`Ok`) or `timeout` passes (`Err`).
    pub(crate) async fn wait(
        self: &Arc<Self>,
        ack_id: u64,
        timeout: Duration,
    ) -> Result<(), AckFailure> {
        let registered = Instant::now();
        let deadline = registered + timeout;
        let (done, confirmed) = oneshot::channel();
        let serial;
        {
            let mut state = self.lock();
            serial = state.next_serial;
            state.next_serial += 1;
            match state.waiting.entry(ack_id) {
                Entry::Occupied(mut old) => {
                    tracing::warn!(
                        endpoint = %self.endpoint.origin,
                        ack_id,
                        "Splunk handed out an ackId that is still outstanding on this channel \
                         (was it restarted?); the earlier batch will be sent again"
                    );
                    // Dropping the old sender tells the earlier batch it was superseded.
                    old.insert(Waiter {
                        serial,
                        registered,
                        deadline,
                        done,
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(Waiter {
                        serial,
                        registered,
                        deadline,
                        done,
                    });
                }
            }
            if state
                .task
                .as_ref()
                .is_none_or(tokio::task::JoinHandle::is_finished)
            {
                state.task = Some(tokio::spawn(Arc::clone(self).run()));
            }
        }
        // Whatever happens to this future (confirmed, timed out, cancelled), the entry goes:
        // the guard removes it unless the poller already did.
        let _forget = Forget {
            poller: self,
            ack_id,
            serial,
        };
        match tokio::time::timeout_at(deadline, confirmed).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(AckFailure::Superseded),
            Err(_) => Err(AckFailure::TimedOut {
                last_problem: self.lock().last_problem.clone(),
            }),
        }
    }

    /// The background task: polls every outstanding id once per interval until none is left.
    async fn run(self: Arc<Self>) {
        // Indexing takes a moment: the first poll comes one interval after the first batch.
        let mut next = Instant::now() + self.poll_interval();
        loop {
            tokio::time::sleep_until(next).await;
            let started = Instant::now();
            let Some((ids, poll_timeout)) = self.round() else {
                return;
            };
            for chunk in ids.chunks(MAX_IDS_PER_POLL) {
                let answer = self.poll(chunk, poll_timeout).await;
                self.settle(chunk, answer, started);
            }
            // One interval from the start of this poll; at once if the poll took longer.
            next = started + self.poll_interval();
        }
    }

    /// The ids to poll this round and how long the poll may take; `None` (and the task
    /// marked stopped) when nothing is outstanding.
    fn round(&self) -> Option<(Vec<u64>, Duration)> {
        let mut state = self.lock();
        // Batches that stopped waiting are not polled for (their guard removes them; this
        // is the backstop).
        state.waiting.retain(|_, w| !w.done.is_closed());
        if state.waiting.is_empty() {
            // Detaches this task's own handle; the next registration starts a new task.
            state.task = None;
            return None;
        }
        let now = Instant::now();
        let latest = state
            .waiting
            .values()
            .map(|w| w.deadline)
            .max()
            .unwrap_or(now);
        let mut ids: Vec<u64> = state.waiting.keys().copied().collect();
        ids.sort_unstable();
        state.polls += ids.len().div_ceil(MAX_IDS_PER_POLL) as u64;
        // A poll is worth waiting for while some batch still waits, never longer than the
        // client's own timeout.
        let left = latest.saturating_duration_since(now);
        let timeout = self
            .endpoint
            .request_timeout
            .min(left.max(MIN_POLL_TIMEOUT));
        Some((ids, timeout))
    }

    /// Wakes the confirmed batches, or records why the poll failed; adapts the pace to the
    /// answer of the poll that `started` then.
    fn settle(&self, ids: &[u64], answer: Result<HashMap<u64, bool>, String>, started: Instant) {
        let mut state = self.lock();
        match answer {
            Ok(acks) => {
                state.last_problem = None;
                let due = started.checked_sub(state.pace.interval());
                let (mut confirmed, mut overdue_pending) = (0, false);
                for id in ids {
                    if acks.get(id).copied().unwrap_or(false) {
                        if let Some(waiter) = state.waiting.remove(id) {
                            confirmed += 1;
                            // The batch may have stopped waiting meanwhile: nothing to tell.
                            let _ = waiter.done.send(true);
                        }
                    } else if let Some(waiter) = state.waiting.get(id) {
                        overdue_pending |= due.is_some_and(|due| waiter.registered <= due);
                    }
                }
                state.pace.answered(overdue_pending, confirmed);
            }
            Err(problem) => {
                state.last_problem = Some(problem);
                state.pace.failed();
            }
        }
    }

    /// One poll for `ids`: the answer per id, or a secret-free description of the failure.
    async fn poll(&self, ids: &[u64], timeout: Duration) -> Result<HashMap<u64, bool>, String> {
        let endpoint = &self.endpoint;
        let what = format!("poll indexer acknowledgement at {}", endpoint.origin);
        let response = endpoint
            .client
            .post(endpoint.ack_url.clone())
            .timeout(timeout)
            .header(AUTHORIZATION, endpoint.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CHANNEL_HEADER, endpoint.channel.as_str())
            .body(ack_request(ids))
            .send()
            .await
            .map_err(|e| transport_error(e, &what).to_string())?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(e, &what).to_string())?;
        classify_status(status, &headers, &what, &text).map_err(|e| e.to_string())?;
        parse_acks(&text).ok_or_else(|| format!("{what}: unexpected answer: {}", snippet(&text)))
    }
}

/// Removes a waiter's entry when its `wait` ends, unless a later batch took the id over.
struct Forget<'a> {
    poller: &'a AckPoller,
    ack_id: u64,
    serial: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut state = self.poller.lock();
        if let Entry::Occupied(entry) = state.waiting.entry(self.ack_id)
            && entry.get().serial == self.serial
        {
            entry.remove();
        }
    }
}

/// The body of one ack poll: `{"acks":[1,2,3]}`.
pub fn ack_request(ids: &[u64]) -> String {
    let mut body = String::with_capacity(10 + ids.len() * 8);
    body.push_str("{\"acks\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&id.to_string());
    }
    body.push_str("]}");
    body
}

/// The answer of an ack poll, `{"acks":{"<id>":true,"<id>":false}}`, as id → confirmed;
/// `None` when the answer is not of that shape (keys that are not ids are ignored).
pub fn parse_acks(body: &str) -> Option<HashMap<u64, bool>> {
    #[derive(Deserialize)]
    struct AckReply {
        acks: HashMap<String, bool>,
    }
    let reply: AckReply = serde_json::from_str(body).ok()?;
    Some(
        reply
            .acks
            .into_iter()
            .filter_map(|(id, confirmed)| Some((id.parse().ok()?, confirmed)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_pace_follows_the_confirmations() {
        let ms = Duration::from_millis;
        let mut pace = PollPace::adaptive();
        assert_eq!(pace.interval(), ADAPTIVE_START);
        // Confirmed at once, poll after poll: down to the floor, never below.
        for _ in 0..20 {
            pace.answered(false, 3);
        }
        assert_eq!(pace.interval(), ADAPTIVE_MIN);
        // Ids that waited a whole interval still pending: up to the ceiling, never above.
        for _ in 0..30 {
            pace.answered(true, 1);
        }
        assert_eq!(pace.interval(), ADAPTIVE_MAX);
        // Nothing confirmed and nothing overdue (only fresh ids pending): unchanged.
        pace.answered(false, 0);
        assert_eq!(pace.interval(), ADAPTIVE_MAX);
        pace.answered(false, 1);
        assert_eq!(pace.interval(), ms(750));
        pace.failed();
        assert_eq!(pace.interval(), ADAPTIVE_MAX);
        // A configured interval never moves.
        let mut fixed = PollPace::fixed(ms(500));
        fixed.answered(false, 5);
        fixed.answered(true, 0);
        fixed.failed();
        assert_eq!(fixed.interval(), ms(500));
    }

    #[test]
    fn request_lists_every_id() {
        assert_eq!(ack_request(&[]), r#"{"acks":[]}"#);
        assert_eq!(ack_request(&[3]), r#"{"acks":[3]}"#);
        assert_eq!(ack_request(&[0, 7, 12]), r#"{"acks":[0,7,12]}"#);
    }

    #[test]
    fn answers_map_ids() {
        let acks = parse_acks(r#"{"acks":{"1":true,"2":false,"x":true}}"#).unwrap();
        assert_eq!(acks.len(), 2);
        assert_eq!(acks.get(&1), Some(&true));
        assert_eq!(acks.get(&2), Some(&false));
        assert!(parse_acks(r#"{"acks":[1]}"#).is_none());
        assert!(parse_acks("nope").is_none());
    }
}

//! The enrichment stage: every enricher concurrently, each within its own timeout and the
//! overall budget; failures are recorded on the event, never block it.
//!
//! Each enricher has a circuit breaker: after `failure_threshold` consecutive timeouts or
//! unavailable answers it opens, and the enricher is skipped at once (the event records
//! why in `enrichment.not_enriched`) for `cooldown`; then one event probes it
//! (half-open) while the others still skip; an answer closes the breaker, another failure
//! opens it for a new cool-down. So an enricher that never answers costs its timeout once
//! per cool-down, not once per event.
//!
//! Waiting for the first timeouts would still hold every event in flight for a whole
//! timeout when an enricher stops answering (a black hole accepts the connection and never
//! replies): the stage enriches `enrichment_concurrency` events at once, so the events
//! behind them wait in the intake journal, and their delay adds up to the timeout plus the
//! time to catch up. So the breaker also watches for a stall: when at least
//! `failure_threshold` calls are waiting on the enricher and none of its calls has answered
//! for four times its usual answer time (a quarter of the call's deadline before it has
//! ever answered; between 100 ms and the deadline), the circuit opens at once. And
//! whenever the circuit opens, every call still waiting on the enricher is released (the
//! event records "circuit opened while waiting"), so events already under way do not wait
//! out their own timeouts either. An enricher that answers slowly but steadily does not
//! stall: each answer restarts the window, and the window grows with its answer time. The
//! price: an enricher that is slow from its very first call (slower than a quarter of its
//! deadline while `failure_threshold` calls wait) is skipped for one cool-down, until its
//! probe answers and sets its usual answer time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;
use vowguard_core::{Event, NotEnriched};

use crate::pipeline::EnricherSpec;

/// When an enricher's circuit opens and how long it stays open
/// (`[pipeline.enricher_breaker]`, for every enricher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EnricherBreakerOptions {
    /// Consecutive timeouts or unavailable answers (unreachable, 5xx, 429) that open the
    /// circuit; 0 disables the breaker (every event waits for every enricher).
    pub failure_threshold: u32,
    /// How long the enricher is skipped once the circuit opens (`cooldown = "30s"`); then
    /// one event probes it.
    #[serde(with = "vowguard_core::duration")]
    pub cooldown: Duration,
}

impl Default for EnricherBreakerOptions {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// An enricher's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EnricherMetrics {
    /// Calls made (probes included).
    pub calls: u64,
    /// Calls that ran out of time (the enricher's timeout or the enrichment budget).
    pub timeouts: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Events that skipped the enricher because its circuit was open.
    pub skipped: u64,
    /// Calls released unanswered because the circuit opened while they waited (a stall,
    /// or the timeouts of earlier calls).
    pub released: u64,
    /// Times the circuit opened.
    pub circuit_opened: u64,
    /// Whether the circuit is open or half-open now (the enricher is being skipped).
    pub circuit_open: bool,
}

impl EnricherMetrics {
    /// Publishes these counts of enricher `id` through the `metrics` facade
    /// (`vowguard_enricher_*{enricher}`).
    pub fn emit(&self, id: &str) {
        let enricher = [("enricher", id.to_owned())];
        metrics::counter!("vowguard_enricher_calls_total", &enricher).absolute(self.calls);
        metrics::counter!("vowguard_enricher_timeouts_total", &enricher).absolute(self.timeouts);
        metrics::counter!("vowguard_enricher_errors_total", &enricher).absolute(self.errors);
        metrics::counter!("vowguard_enricher_skipped_total", &enricher).absolute(self.skipped);
        metrics::counter!("vowguard_enricher_released_total", &enricher).absolute(self.released);
        metrics::counter!("vowguard_enricher_circuit_opened_total", &enricher)
            .absolute(self.circuit_opened);
        metrics::gauge!("vowguard_enricher_circuit_open", &enricher)
            .set(f64::from(u8::from(self.circuit_open)));
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    released: AtomicU64,
    circuit_opened: AtomicU64,
    circuit_open: AtomicBool,
}

/// The shortest stall window: a quarter of a very short deadline would open circuits on
/// ordinary jitter.
pub(crate) const MIN_STALL: Duration = Duration::from_millis(100);

/// The calls waiting on an enricher, for stall detection.
#[derive(Debug, Default)]
struct Waiting {
    /// Calls started and not yet ended.
    calls: usize,
    /// Since when no call has answered while some were waiting: the later of the last
    /// answer and the moment the first of the waiting calls started. `None` when no call
    /// waits.
    since: Option<Instant>,
    /// Moving average of how long the enricher takes to answer (`None` until it first
    /// answers): the stall window is four times that, so a slow but steady enricher is
    /// not taken for a stalled one.
    typical: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` consecutive failures so far.
    Closed { failures: u32 },
    /// Skipped until `until`; opened after `failures` consecutive failures.
    Open { until: Instant, failures: u32 },
    /// One probe is in flight; everything else skips.
    HalfOpen { failures: u32 },
}

/// What an event may do with an enricher.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Call { probe: bool },
    Skip { failures: u32 },
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The enricher answered (a result, or a definite error such as invalid input).
    Answered,
    /// Timed out or unavailable: counts towards opening the circuit.
    Failed,
}

/// An enricher with its breaker and counters.
#[derive(Debug)]
pub(crate) struct EnricherSlot {
    pub(crate) spec: EnricherSpec,
    options: EnricherBreakerOptions,
    state: Mutex<State>,
    counters: Counters,
    waiting: Mutex<Waiting>,
    /// Bumped every time the circuit opens: releases the calls waiting on the enricher.
    opened: watch::Sender<u64>,
}

impl EnricherSlot {
    pub(crate) fn new(spec: EnricherSpec, options: EnricherBreakerOptions) -> Self {
        Self {
            spec,
            options,
            state: Mutex::new(State::Closed { failures: 0 }),
            counters: Counters::default(),
            waiting: Mutex::new(Waiting::default()),
            opened: watch::Sender::new(0),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().expect("enricher waiting lock poisoned")
    }

    /// A call starts waiting on the enricher.
    fn call_started(&self, now: Instant) {
        let mut waiting = self.waiting();
        waiting.calls += 1;
        waiting.since.get_or_insert(now);
    }

    /// A call that started at `started` ended; `answered` when the enricher answered it
    /// (restarting the stall window for the calls still waiting).
    fn call_ended(&self, now: Instant, started: Instant, answered: bool) {
        let mut waiting = self.waiting();
        waiting.calls = waiting.calls.saturating_sub(1);
        if answered {
            let took = now.duration_since(started);
            waiting.typical = Some(match waiting.typical {
                None => took,
                Some(typical) => (typical * 4 + took) / 5,
            });
        }
        if waiting.calls == 0 {
            waiting.since = None;
        } else if answered {
            waiting.since = Some(now);
        }
    }

    /// How long calls may wait with no answer before the enricher counts as stalled:
    /// four times its usual answer time (a quarter of `deadline` until it has answered
    /// once), between [`MIN_STALL`] and `deadline`.
    fn stall_window(&self, deadline: Duration) -> Duration {
        let window = self
            .waiting()
            .typical
            .map_or(deadline / 4, |typical| typical * 4);
        window.clamp(MIN_STALL.min(deadline), deadline)
    }

    /// Opens a closed circuit when at least `failure_threshold` calls wait and none has
    /// answered for `window`; true when it did.
    fn open_if_stalled(&self, now: Instant, window: Duration) -> bool {
        if self.options.failure_threshold == 0 {
            return false;
        }
        let (calls, since) = {
            let waiting = self.waiting();
            (waiting.calls, waiting.since)
        };
        let threshold = usize::try_from(self.options.failure_threshold).unwrap_or(usize::MAX);
        let stalled = calls >= threshold && since.is_some_and(|t| now.duration_since(t) >= window);
        if !stalled {
            return false;
        }
        let mut state = self.lock();
        let State::Closed { failures } = *state else {
            return false;
        };
        tracing::warn!(
            enricher = %self.spec.id,
            waiting = calls,
            stalled_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            "enricher stalled: calls are waiting and none has answered"
        );
        self.open(&mut state, now, failures);
        true
    }

    pub(crate) fn metrics(&self) -> EnricherMetrics {
        let c = &self.counters;
        EnricherMetrics {
            calls: c.calls.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            released: c.released.load(Ordering::Relaxed),
            circuit_opened: c.circuit_opened.load(Ordering::Relaxed),
            circuit_open: c.circuit_open.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("enricher breaker lock poisoned")
    }

    fn admit(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Admission::Call { probe: false },
            State::Open { until, failures } if now >= until => {
                *state = State::HalfOpen { failures };
                Admission::Call { probe: true }
            }
            State::Open { failures, .. } | State::HalfOpen { failures } => {
                Admission::Skip { failures }
            }
        }
    }

    fn record(&self, now: Instant, outcome: Outcome) {
        let mut state = self.lock();
        let failures = match (*state, outcome) {
            (_, Outcome::Answered) => {
                if !matches!(*state, State::Closed { .. }) {
                    tracing::info!(enricher = %self.spec.id, "enricher circuit closed: it answers again");
                }
                *state = State::Closed { failures: 0 };
                self.counters.circuit_open.store(false, Ordering::Relaxed);
                return;
            }
            (State::Closed { failures } | State::Open { failures, .. }, Outcome::Failed) => {
                failures.saturating_add(1)
            }
            (State::HalfOpen { failures }, Outcome::Failed) => {
                // The probe failed: open again for a new cool-down.
                self.open(&mut state, now, failures.saturating_add(1));
                return;
            }
        };
        match *state {
            State::Closed { .. }
                if self.options.failure_threshold > 0
                    && failures >= self.options.failure_threshold =>
            {
                self.open(&mut state, now, failures);
            }
            State::Closed { .. } => *state = State::Closed { failures },
            // Calls that started before the circuit opened and fail after: already open.
            State::Open { until, .. } => *state = State::Open { until, failures },
            State::HalfOpen { .. } => unreachable!("handled above"),
        }
    }

    fn open(&self, state: &mut State, now: Instant, failures: u32) {
        let cooldown = self.options.cooldown;
        *state = State::Open {
            until: now + cooldown,
            failures,
        };
        self.counters.circuit_opened.fetch_add(1, Ordering::Relaxed);
        self.counters.circuit_open.store(true, Ordering::Relaxed);
        self.opened
            .send_modify(|generation| *generation = generation.wrapping_add(1));
        tracing::warn!(
            enricher = %self.spec.id,
            failures,
            cooldown_ms = self.options.cooldown.as_millis() as u64,
            "enricher circuit open: it keeps timing out or is unavailable; events skip it until the next probe"
        );
    }
}

/// Puts a half-open breaker back to "probe again" if the probe is cancelled before it
/// ends (the stage stopping at a shutdown deadline), so it never stays half-open.
struct ProbeGuard<'a> {
    slot: &'a EnricherSlot,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.slot.lock();
            if let State::HalfOpen { failures } = *state {
                *state = State::Open {
                    until: Instant::now(),
                    failures,
                };
            }
        }
    }
}

/// Ends a call's wait on the enricher however the call ends (answered, timed out,
/// released, or dropped at a shutdown deadline).
struct WaitingGuard<'a> {
    slot: &'a EnricherSlot,
    started: Instant,
    answered: bool,
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.slot
            .call_ended(Instant::now(), self.started, self.answered);
    }
}

/// Runs one enricher on `event` within `deadline`, through its breaker.
async fn call(
    slot: &EnricherSlot,
    event: &Event,
    budget: Duration,
) -> Result<vowguard_core::Enrichment, String> {
    let probe = match slot.admit(Instant::now()) {
        Admission::Call { probe } => probe,
        Admission::Skip { failures } => {
            slot.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return Err(format!(
                "circuit open after {failures} consecutive timeouts or unavailable answers"
            ));
        }
    };
    let mut guard = ProbeGuard { slot, armed: probe };
    let deadline = slot.spec.enricher.timeout().min(budget);
    slot.counters.calls.fetch_add(1, Ordering::Relaxed);
    let span = tracing::debug_span!(
        target: crate::TRACE_TARGET,
        "enricher",
        enricher = %slot.spec.id,
        event_id = %event.id,
        outcome = tracing::field::Empty,
    );
    let mut opened = slot.opened.subscribe();
    let stall_window = slot.stall_window(deadline);
    let started = Instant::now();
    slot.call_started(started);
    let mut waiting = WaitingGuard {
        slot,
        started,
        answered: false,
    };
    let answer =
        tokio::time::timeout(deadline, slot.spec.enricher.enrich(event)).instrument(span.clone());
    tokio::pin!(answer);
    let stall_check = tokio::time::sleep_until(started + stall_window);
    tokio::pin!(stall_check);
    let mut stall_checked = false;
    let outcome = loop {
        tokio::select! {
            biased;
            outcome = &mut answer => break Some(outcome),
            () = &mut stall_check, if !stall_checked => {
                stall_checked = true;
                slot.open_if_stalled(Instant::now(), stall_window);
            }
            Ok(()) = opened.changed() => break None,
        }
    };
    span.record(
        "outcome",
        match &outcome {
            Some(Ok(Ok(_))) => "answered",
            Some(Ok(Err(_))) => "error",
            Some(Err(_)) => "timeout",
            None => "released",
        },
    );
    guard.armed = false;
    let now = Instant::now();
    let Some(outcome) = outcome else {
        // The circuit opened while this call waited (a stall, or the timeouts of calls
        // that started earlier): the event goes on without this enricher.
        slot.counters.released.fetch_add(1, Ordering::Relaxed);
        return Err(format!(
            "circuit opened while waiting ({} ms): the enricher stopped answering",
            now.duration_since(started).as_millis()
        ));
    };
    waiting.answered = matches!(outcome, Ok(Ok(_)) | Ok(Err(_)));
    match outcome {
        Ok(Ok(enrichment)) => {
            slot.record(now, Outcome::Answered);
            Ok(enrichment)
        }
        Ok(Err(e)) => {
            slot.counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(enricher = %slot.spec.id, event_id = %event.id, error = %e, "enricher failed");
            let counted = if e.is_retryable() {
                Outcome::Failed
            } else {
                Outcome::Answered
            };
            slot.record(now, counted);
            Err(format!("{}: {}", e.kind(), e.message()))
        }
        Err(_) => {
            slot.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(enricher = %slot.spec.id, event_id = %event.id, "enricher timed out");
            slot.record(now, Outcome::Failed);
            Err(format!("timeout after {} ms", deadline.as_millis()))
        }
    }
}

/// Runs every enricher on `event` and merges what they return.
pub(crate) async fn enrich(
    mut event: Event,
    enrichers: &[EnricherSlot],
    budget: Duration,
) -> Event {
    if enrichers.is_empty() {
        return event;
    }
    let span = tracing::debug_span!(
        target: crate::TRACE_TARGET,
        "enrich",
        event_id = %event.id,
        enrichers = enrichers.len(),
    );
    let results = join_all(enrichers.iter().map(|slot| {
        let event = &event;
        async move { (slot.spec.id.as_str(), call(slot, event, budget).await) }
    }))
    .instrument(span)
    .await;
    for (id, outcome) in results {
        match outcome {
            Ok(enrichment) => event.enrichment.merge(enrichment),
            Err(reason) => event.enrichment.not_enriched.push(NotEnriched {
                enricher: id.to_owned(),
                reason,
            }),
        }
    }
    event
}

/// The configured enrichers with their circuit breakers, the per-event budget and how many
/// events are enriched at once: the enrichment stage of the local pipeline, and what the
/// `_enrich` consumer of the jetstream backend runs, so both enrich the same way.
#[derive(Debug, Clone)]
pub struct Enrichers {
    pub(crate) slots: Arc<[EnricherSlot]>,
    budget: Duration,
    concurrency: usize,
}

impl Enrichers {
    /// Gives each enricher its breaker (`options.enricher_breaker`); the budget and
    /// concurrency are `options.enrichment_budget` and `options.enrichment_concurrency`.
    /// Two enrichers with one id are refused.
    pub fn new(
        specs: Vec<EnricherSpec>,
        options: &crate::PipelineOptions,
    ) -> Result<Self, vowguard_core::Error> {
        let mut slots: Vec<EnricherSlot> = Vec::with_capacity(specs.len());
        for spec in specs {
            if slots.iter().any(|e| e.spec.id == spec.id) {
                return Err(vowguard_core::Error::config(format!(
                    "duplicate enricher id `{}`",
                    spec.id
                )));
            }
            slots.push(EnricherSlot::new(spec, options.enricher_breaker));
        }
        Ok(Self {
            slots: slots.into(),
            budget: options.enrichment_budget,
            concurrency: options.enrichment_concurrency.max(1),
        })
    }

    /// Whether no enricher is configured.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Events to enrich at once (at least 1).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Runs every enricher on `event` concurrently, each within its timeout and the
    /// budget, through its breaker; what did not answer is recorded in
    /// `enrichment.not_enriched`. Never fails.
    pub async fn enrich(&self, event: Event) -> Event {
        enrich(event, &self.slots, self.budget).await
    }

    /// Each enricher's counters, by id.
    pub fn metrics(&self) -> std::collections::BTreeMap<String, EnricherMetrics> {
        self.slots
            .iter()
            .map(|e| (e.spec.id.clone(), e.metrics()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use async_trait::async_trait;
    use futures::StreamExt;
    use vowguard_core::{Enricher, Enrichment, Error, Severity};

    use super::*;

    /// Never answers until `answering` is set; counts calls.
    #[derive(Debug, Default)]
    struct BlackHole {
        calls: AtomicU32,
        answering: AtomicBool,
    }

    const TIMEOUT: Duration = Duration::from_secs(2);
    const COOLDOWN_MS: u64 = 10_000;
    const THRESHOLD: u32 = 5;
    /// Events enriched at once (the stage's `enrichment_concurrency`).
    const CONCURRENCY: usize = 8;

    #[async_trait]
    impl Enricher for BlackHole {
        fn kind(&self) -> &'static str {
            "black_hole"
        }
        fn timeout(&self) -> Duration {
            TIMEOUT
        }
        async fn enrich(&self, _: &Event) -> Result<Enrichment, Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.answering.load(Ordering::SeqCst) {
                return Ok(Enrichment::default());
            }
            std::future::pending().await
        }
    }

    fn event(i: usize) -> Event {
        let mut e = Event::new(
            vowguard_core::Category::Authentication,
            "login",
            Severity::High,
        );
        e.id = format!("e{i}");
        e
    }

    fn slot(enricher: Arc<BlackHole>, failure_threshold: u32) -> Arc<[EnricherSlot]> {
        vec![EnricherSlot::new(
            EnricherSpec {
                id: "misp".into(),
                enricher,
            },
            EnricherBreakerOptions {
                failure_threshold,
                cooldown: Duration::from_millis(COOLDOWN_MS),
            },
        )]
        .into()
    }

    /// Runs `n` events, one every 100 ms (virtual), through the stage's enrichment
    /// (ordered, `CONCURRENCY` at once); returns them and the virtual time it took.
    async fn run(slots: &Arc<[EnricherSlot]>, n: usize) -> (Vec<Event>, Duration) {
        let started = Instant::now();
        let arrivals = futures::stream::iter(0..n).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            event(i)
        });
        let events: Vec<Event> = arrivals
            .map(|e| {
                let slots = slots.clone();
                async move { enrich(e, &slots, Duration::from_secs(10)).await }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        (events, started.elapsed())
    }

    /// On tokio's paused clock: the assertions count calls against breaker windows of
    /// virtual time, never how fast this machine is.
    #[tokio::test(start_paused = true)]
    async fn an_enricher_that_never_answers_costs_its_timeout_once_per_window() {
        let enricher = Arc::new(BlackHole::default());
        let slots = slot(enricher.clone(), THRESHOLD);
        let (events, elapsed) = run(&slots, 1_000).await;

        // Every call waits out the timeout (the enricher never answers).
        let waited = u64::from(enricher.calls.load(Ordering::SeqCst));
        let windows = elapsed.as_millis() as u64 / COOLDOWN_MS + 1;
        // Before the circuit first opens, the calls already under way (at most
        // CONCURRENCY - 1 besides the THRESHOLD that open it) also wait; after that, one
        // probe per window.
        let bound = u64::from(THRESHOLD) + CONCURRENCY as u64 - 1 + windows;
        assert!(
            waited <= bound,
            "{waited} calls waited out the timeout over {windows} windows ({elapsed:?})"
        );
        assert!(windows >= 5, "the run spans several windows: {elapsed:?}");
        assert!(
            waited > u64::from(THRESHOLD),
            "after each cool-down one event probes the enricher again"
        );
        let m = slots[0].metrics();
        assert_eq!(m.calls, waited);
        // The first calls are released when the stall opens the circuit; the probes time
        // out.
        assert_eq!(m.timeouts + m.released, waited);
        assert!(m.released >= u64::from(THRESHOLD), "{m:?}");
        assert_eq!(m.skipped + m.calls, 1_000);
        assert!(m.circuit_open);
        assert!(
            m.circuit_opened >= 2,
            "every failed probe reopens it: {m:?}"
        );

        // Every event says it was not enriched, and why.
        assert!(events.iter().all(|e| e.enrichment.not_enriched.len() == 1));
        let skipped: Vec<_> = events
            .iter()
            .map(|e| &e.enrichment.not_enriched[0])
            .filter(|n| n.reason.starts_with("circuit open after "))
            .collect();
        assert_eq!(skipped.len() as u64, m.skipped);
        assert!(skipped.iter().all(|n| {
            n.enricher == "misp"
                && n.reason
                    .ends_with("consecutive timeouts or unavailable answers")
        }));
        assert!(
            events[0].enrichment.not_enriched[0]
                .reason
                .starts_with("circuit opened while waiting (500 ms)"),
            "{:?}",
            events[0].enrichment.not_enriched
        );

        // The enricher answers again: the next probe closes the circuit and events are
        // enriched again.
        enricher.answering.store(true, Ordering::SeqCst);
        let (events, _) = run(&slots, 200).await;
        let m = slots[0].metrics();
        assert!(!m.circuit_open, "{m:?}");
        assert!(events.last().unwrap().enrichment.not_enriched.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_breaker_every_event_waits_out_the_timeout() {
        let enricher = Arc::new(BlackHole::default());
        let slots = slot(enricher.clone(), 0);
        let (events, _) = run(&slots, 50).await;
        assert_eq!(enricher.calls.load(Ordering::SeqCst), 50);
        assert!(
            events
                .iter()
                .all(|e| e.enrichment.not_enriched[0].reason == "timeout after 2000 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_lets_the_next_event_probe() {
        let enricher = Arc::new(BlackHole::default());
        let slots = slot(enricher.clone(), 1);
        let _ = run(&slots, 1).await;
        assert!(slots[0].metrics().circuit_open);
        tokio::time::advance(Duration::from_millis(COOLDOWN_MS)).await;
        // A probe starts and is dropped before it ends.
        let probe = enrich(event(1), &slots, Duration::from_secs(10));
        assert!(futures::FutureExt::now_or_never(probe).is_none());
        enricher.answering.store(true, Ordering::SeqCst);
        let e = enrich(event(2), &slots, Duration::from_secs(10)).await;
        assert!(e.enrichment.not_enriched.is_empty(), "{:?}", e.enrichment);
        assert!(!slots[0].metrics().circuit_open);
    }

    /// Answers every call after `delay`.
    #[derive(Debug)]
    struct Slow {
        delay: Duration,
    }

    #[async_trait]
    impl Enricher for Slow {
        fn kind(&self) -> &'static str {
            "slow"
        }

        fn timeout(&self) -> Duration {
            TIMEOUT
        }

        async fn enrich(&self, _: &Event) -> Result<Enrichment, Error> {
            tokio::time::sleep(self.delay).await;
            Ok(Enrichment::default())
        }
    }

    fn slow_slot(delay: Duration) -> Arc<[EnricherSlot]> {
        vec![EnricherSlot::new(
            EnricherSpec {
                id: "otx".into(),
                enricher: Arc::new(Slow { delay }),
            },
            EnricherBreakerOptions {
                failure_threshold: THRESHOLD,
                cooldown: Duration::from_millis(COOLDOWN_MS),
            },
        )]
        .into()
    }

    /// Enriches `n` events that all arrive at once; returns them and the virtual time.
    async fn burst(slots: &Arc<[EnricherSlot]>, n: usize) -> (Vec<Event>, Duration) {
        let started = Instant::now();
        let events =
            join_all((0..n).map(|i| enrich(event(i), slots, Duration::from_secs(10)))).await;
        (events, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_enricher_releases_every_waiting_event_after_a_quarter_of_its_timeout() {
        let enricher = Arc::new(BlackHole::default());
        let slots = slot(enricher.clone(), THRESHOLD);
        let (events, elapsed) = burst(&slots, 8).await;
        // Not the 2 s timeout: the stall is seen after 500 ms and every call is released.
        assert_eq!(elapsed, TIMEOUT / 4);
        for e in &events {
            assert_eq!(e.enrichment.not_enriched.len(), 1);
            assert_eq!(
                e.enrichment.not_enriched[0].reason,
                "circuit opened while waiting (500 ms): the enricher stopped answering"
            );
        }
        let m = slots[0].metrics();
        assert_eq!((m.calls, m.released, m.timeouts, m.skipped), (8, 8, 0, 0));
        assert_eq!(m.circuit_opened, 1);
        assert!(m.circuit_open);
        // The next event skips at once.
        let (events, elapsed) = burst(&slots, 1).await;
        assert_eq!(elapsed, Duration::ZERO);
        assert!(
            events[0].enrichment.not_enriched[0]
                .reason
                .starts_with("circuit open after ")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fewer_waiting_calls_than_the_threshold_are_not_a_stall() {
        let enricher = Arc::new(BlackHole::default());
        let slots = slot(enricher.clone(), THRESHOLD);
        let (events, elapsed) = burst(&slots, THRESHOLD as usize - 1).await;
        assert_eq!(elapsed, TIMEOUT, "each waits out its own timeout");
        assert!(
            events
                .iter()
                .all(|e| e.enrichment.not_enriched[0].reason == "timeout after 2000 ms")
        );
        assert_eq!(slots[0].metrics().released, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_circuit_opened_by_a_timeout_releases_the_calls_still_waiting() {
        // The first call has a 100 ms budget, so it times out (opening the circuit at a
        // threshold of 1) before any stall window of the second call ends.
        let enricher = Arc::new(BlackHole::default());
        let slots = slot(enricher.clone(), 1);
        let first = enrich(event(0), &slots, Duration::from_millis(100));
        let later = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            enrich(event(1), &slots, Duration::from_secs(10)).await
        };
        let started = Instant::now();
        let (first, later) = tokio::join!(first, later);
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        assert_eq!(
            first.enrichment.not_enriched[0].reason,
            "timeout after 100 ms"
        );
        assert_eq!(
            later.enrichment.not_enriched[0].reason,
            "circuit opened while waiting (50 ms): the enricher stopped answering"
        );
        let m = slots[0].metrics();
        assert_eq!((m.timeouts, m.released, m.circuit_opened), (1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_enricher_is_not_a_stall() {
        // Answers take 1.5 s (within the 2 s timeout). Once it has answered, its usual
        // answer time sets the stall window, so a steady flow of events is enriched.
        let slots = slow_slot(Duration::from_millis(1_500));
        let warm = enrich(event(0), &slots, Duration::from_secs(10)).await;
        assert!(warm.enrichment.not_enriched.is_empty());
        let (events, _) = run(&slots, 100).await;
        assert!(
            events.iter().all(|e| e.enrichment.not_enriched.is_empty()),
            "{:?}",
            events
                .iter()
                .find(|e| !e.enrichment.not_enriched.is_empty())
        );
        let m = slots[0].metrics();
        assert_eq!((m.circuit_opened, m.released, m.timeouts), (0, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_enricher_slow_from_its_first_call_is_skipped_for_one_cool_down() {
        // The documented price of stall detection: before any answer, the window is a
        // quarter of the deadline. After the cool-down the probe answers and sets the
        // usual answer time; from then on the same load is enriched.
        let slots = slow_slot(Duration::from_millis(1_500));
        let (events, _) = burst(&slots, 8).await;
        assert!(events.iter().all(|e| {
            e.enrichment.not_enriched[0]
                .reason
                .starts_with("circuit opened while waiting")
        }));
        tokio::time::advance(Duration::from_millis(COOLDOWN_MS)).await;
        let probe = enrich(event(100), &slots, Duration::from_secs(10)).await;
        assert!(probe.enrichment.not_enriched.is_empty());
        let (events, _) = burst(&slots, 8).await;
        assert!(events.iter().all(|e| e.enrichment.not_enriched.is_empty()));
    }
}

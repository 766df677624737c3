//! The enrichment stage: every enricher concurrently, each within its own timeout and the
//! overall budget; failures are recorded on the event, never block it.
//!
//! Each enricher has a circuit breaker: after `failure_threshold` consecutive timeouts or
//! unavailable answers it opens, and the enricher is skipped at once (the event records
//! why in `enrichment.not_enriched`) for `cooldown`; then one event probes it
//! (half-open) while the others still skip; an answer closes the breaker, another failure
//! opens it for a new cool-down. So an enricher that never answers costs its timeout once
//! per cool-down, not once per event.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Instrument as _;
use vowguard_core::{Event, NotEnriched};

use crate::pipeline::EnricherSpec;

/// When an enricher's circuit opens and how long it stays open
/// (`[pipeline.enricher_breaker]`, for every enricher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
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
    /// Times the circuit opened.
    pub circuit_opened: u64,
    /// Whether the circuit is open or half-open now (the enricher is being skipped).
    pub circuit_open: bool,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    circuit_opened: AtomicU64,
    circuit_open: AtomicBool,
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
}

impl EnricherSlot {
    pub(crate) fn new(spec: EnricherSpec, options: EnricherBreakerOptions) -> Self {
        Self {
            spec,
            options,
            state: Mutex::new(State::Closed { failures: 0 }),
            counters: Counters::default(),
        }
    }

    pub(crate) fn metrics(&self) -> EnricherMetrics {
        let c = &self.counters;
        EnricherMetrics {
            calls: c.calls.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
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
    let outcome = tokio::time::timeout(deadline, slot.spec.enricher.enrich(event))
        .instrument(span.clone())
        .await;
    span.record(
        "outcome",
        match &outcome {
            Ok(Ok(_)) => "answered",
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        },
    );
    guard.armed = false;
    let now = Instant::now();
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
        assert_eq!(m.timeouts, waited);
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
            events[0].enrichment.not_enriched[0].reason == "timeout after 2000 ms",
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
}

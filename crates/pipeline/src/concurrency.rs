//! How many requests a sink keeps in flight: a fixed number, or an adaptive limit (additive
//! increase, multiplicative decrease on back-pressure or rising latency, in the spirit of
//! Vector's adaptive request concurrency).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Requests in flight per sink when nothing is configured.
///
/// Four batches in flight multiply what one sink can push through a slow acknowledgement
/// path (Splunk indexer acknowledgement: `max_events / ack latency` per request) by four,
/// while keeping what a crash may send twice small (at most the three batches finished
/// above an unfinished one) and the memory per sink bounded (four batches). A sink may ask
/// for another default ([`Sink::default_concurrency`](vowguard_core::Sink::default_concurrency):
/// Splunk HEC with indexer acknowledgement asks for 16); `request.concurrency` overrides both.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Ceiling of the adaptive limit when nothing is configured.
pub const DEFAULT_MAX_CONCURRENCY: usize = 32;

/// `concurrency`: a fixed number of requests in flight, or `"adaptive"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Concurrency {
    /// Exactly this many requests in flight at most (1 sends one batch at a time).
    Fixed(usize),
    /// Start at one request and adapt between 1 and `max_concurrency`: one more after each
    /// observation window (about one request round trip) in which the limit was used and
    /// latency stayed steady; a tenth fewer (at least one fewer) after a window with a
    /// retryable failure (429, 5xx, timeout) or a mean latency 50% above the running
    /// average.
    Adaptive,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self::Fixed(DEFAULT_CONCURRENCY)
    }
}

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConcurrencyVisitor;
        impl Visitor<'_> for ConcurrencyVisitor {
            type Value = Concurrency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of requests (at least 1) or \"adaptive\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Concurrency, E> {
                match usize::try_from(v) {
                    Ok(n) if n >= 1 => Ok(Concurrency::Fixed(n)),
                    _ => Err(E::custom(format!(
                        "{v} is not a number of requests: use at least 1 (1 sends one batch at a time) or \"adaptive\""
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Concurrency, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is not a number of requests: use at least 1 or \"adaptive\""
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Concurrency, E> {
                if v == "adaptive" {
                    Ok(Concurrency::Adaptive)
                } else {
                    Err(E::custom(
                        "expected a number of requests (at least 1) or \"adaptive\"",
                    ))
                }
            }
        }
        deserializer.deserialize_any(ConcurrencyVisitor)
    }
}

/// Request settings of a sink (`[sinks.<id>.request]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Batches in flight at once (`request.concurrency`): a number (default
    /// [`DEFAULT_CONCURRENCY`], or the sink's own, see [`RequestOptions::for_sink`]; 1 sends
    /// one batch at a time) or `"adaptive"`.
    pub concurrency: Concurrency,
    /// Ceiling of the adaptive limit (`request.max_concurrency`, default
    /// [`DEFAULT_MAX_CONCURRENCY`]); ignored with a fixed concurrency.
    pub max_concurrency: usize,
}

impl RequestOptions {
    /// These settings with [`concurrency`](Self::concurrency) set to `concurrency`.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// These settings with [`max_concurrency`](Self::max_concurrency) set to `max_concurrency`.
    #[must_use]
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency;
        self
    }
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            concurrency: Concurrency::default(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

impl RequestOptions {
    /// The defaults for `sink`: its own [`Sink::default_concurrency`](vowguard_core::Sink::default_concurrency)
    /// as a fixed number when it has one, else [`DEFAULT_CONCURRENCY`].
    pub fn for_sink(sink: &dyn vowguard_core::Sink) -> Self {
        Self {
            concurrency: sink
                .default_concurrency()
                .map_or_else(Concurrency::default, |n| Concurrency::Fixed(n.max(1))),
            ..Self::default()
        }
    }

    /// Checks the values; errors name the key (`sinks.<id>.request.…`).
    pub fn validate(&self, sink_id: &str) -> Result<(), vowguard_core::Error> {
        if self.concurrency == Concurrency::Fixed(0) {
            return Err(vowguard_core::Error::config(format!(
                "`sinks.{sink_id}.request.concurrency`: must be at least 1 (1 sends one batch at a time) or \"adaptive\""
            )));
        }
        if self.concurrency == Concurrency::Adaptive && self.max_concurrency == 0 {
            return Err(vowguard_core::Error::config(format!(
                "`sinks.{sink_id}.request.max_concurrency`: must be at least 1"
            )));
        }
        Ok(())
    }
}

/// Decrease factor of the adaptive limit (numerator over 10).
const DECREASE_TENTHS: usize = 9;
/// A window's mean latency above the running average times this is congestion.
const LATENCY_THRESHOLD: f64 = 1.5;
/// Weight of the newest window in the running average latency.
const EWMA_WEIGHT: f64 = 0.4;

/// The live concurrency limit of one sink.
#[derive(Debug)]
pub(crate) struct ConcurrencyLimit {
    inner: Option<Mutex<Adaptive>>,
    fixed: usize,
}

impl ConcurrencyLimit {
    pub(crate) fn new(options: RequestOptions) -> Self {
        match options.concurrency {
            Concurrency::Fixed(n) => Self {
                inner: None,
                fixed: n.max(1),
            },
            Concurrency::Adaptive => Self {
                inner: Some(Mutex::new(Adaptive::new(options.max_concurrency.max(1)))),
                fixed: 1,
            },
        }
    }

    /// Requests that may be in flight now.
    pub(crate) fn current(&self) -> usize {
        match &self.inner {
            None => self.fixed,
            Some(a) => a.lock().expect("concurrency lock poisoned").limit,
        }
    }

    /// A request starts with `in_flight` requests (itself included) in flight.
    pub(crate) fn started(&self, in_flight: usize) {
        if let Some(a) = &self.inner {
            a.lock()
                .expect("concurrency lock poisoned")
                .started(in_flight);
        }
    }

    /// A request answered after `rtt`; `back_pressure` when some of its events must be
    /// retried (429, 5xx, timeout).
    pub(crate) fn answered(&self, rtt: Duration, back_pressure: bool) {
        if let Some(a) = &self.inner {
            a.lock().expect("concurrency lock poisoned").answered(
                Instant::now(),
                rtt,
                back_pressure,
            );
        }
    }
}

/// Additive increase, multiplicative decrease, one decision per observation window.
#[derive(Debug)]
pub(crate) struct Adaptive {
    pub(crate) limit: usize,
    max: usize,
    /// Running average latency in seconds (none before the first steady window).
    average: Option<f64>,
    window_end: Option<Instant>,
    rtt_sum: f64,
    rtt_count: u32,
    back_pressure: bool,
    limit_reached: bool,
}

impl Adaptive {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            limit: 1,
            max,
            average: None,
            window_end: None,
            rtt_sum: 0.0,
            rtt_count: 0,
            back_pressure: false,
            limit_reached: false,
        }
    }

    pub(crate) fn started(&mut self, in_flight: usize) {
        if in_flight >= self.limit {
            self.limit_reached = true;
        }
    }

    pub(crate) fn answered(&mut self, now: Instant, rtt: Duration, back_pressure: bool) {
        self.rtt_sum += rtt.as_secs_f64();
        self.rtt_count += 1;
        self.back_pressure |= back_pressure;
        let window_end = *self.window_end.get_or_insert(now);
        if now < window_end {
            return;
        }
        let mean = self.rtt_sum / f64::from(self.rtt_count.max(1));
        let slower = self
            .average
            .is_some_and(|average| mean > average * LATENCY_THRESHOLD);
        if self.back_pressure || slower {
            let decreased = self.limit * DECREASE_TENTHS / 10;
            self.limit = decreased.min(self.limit - 1).max(1);
        } else if self.limit_reached {
            self.limit = (self.limit + 1).min(self.max);
        }
        if !self.back_pressure {
            self.average = Some(match self.average {
                None => mean,
                Some(average) => average * (1.0 - EWMA_WEIGHT) + mean * EWMA_WEIGHT,
            });
        }
        let window = Duration::from_secs_f64(self.average.unwrap_or(mean).max(0.0));
        self.window_end = Some(now + window);
        self.rtt_sum = 0.0;
        self.rtt_count = 0;
        self.back_pressure = false;
        self.limit_reached = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn parses_a_number_or_adaptive_and_refuses_zero() {
        #[derive(Deserialize)]
        struct Table {
            request: RequestOptions,
        }
        let parse = |s: &str| serde_json::from_str::<Table>(s).map(|t| t.request);
        assert_eq!(
            parse(r#"{"request": {"concurrency": 8}}"#)
                .unwrap()
                .concurrency,
            Concurrency::Fixed(8)
        );
        let adaptive =
            parse(r#"{"request": {"concurrency": "adaptive", "max_concurrency": 10}}"#).unwrap();
        assert_eq!(adaptive.concurrency, Concurrency::Adaptive);
        assert_eq!(adaptive.max_concurrency, 10);
        assert_eq!(
            parse(r#"{"request": {}}"#).unwrap(),
            RequestOptions::default()
        );
        for bad in ["0", "-1", "\"lots\""] {
            let e = parse(&format!(r#"{{"request": {{"concurrency": {bad}}}}}"#))
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("at least 1"), "{bad}: {e}");
        }
        let e = RequestOptions::default()
            .with_concurrency(Concurrency::Fixed(0))
            .validate("siem")
            .unwrap_err();
        assert!(
            e.to_string().contains("sinks.siem.request.concurrency"),
            "{e}"
        );
    }

    /// Drives one window per call: `n` answers of `rtt`, with the limit in use.
    fn window(a: &mut Adaptive, now: &mut Instant, rtt: Duration, back_pressure: bool) {
        a.started(a.limit);
        *now += rtt;
        a.answered(*now, rtt, back_pressure);
    }

    #[test]
    fn adaptive_grows_while_latency_is_steady_and_backs_off_on_pressure() {
        let mut a = Adaptive::new(6);
        let mut now = Instant::now();
        assert_eq!(a.limit, 1);
        for expected in [2, 3, 4, 5, 6, 6] {
            window(&mut a, &mut now, 50 * MS, false);
            assert_eq!(a.limit, expected);
        }
        window(&mut a, &mut now, 50 * MS, true);
        assert_eq!(
            a.limit, 5,
            "a retryable failure: a tenth fewer, at least one"
        );
        window(&mut a, &mut now, 500 * MS, false);
        assert_eq!(a.limit, 4, "latency ten times the average: fewer");
        for _ in 0..40 {
            window(&mut a, &mut now, 50 * MS, true);
        }
        assert_eq!(a.limit, 1, "never below one");
    }

    #[test]
    fn adaptive_does_not_grow_when_the_limit_is_not_used() {
        let mut a = Adaptive::new(8);
        let mut now = Instant::now();
        for _ in 0..5 {
            now += 10 * MS;
            a.answered(now, 10 * MS, false);
        }
        assert_eq!(a.limit, 1);
    }
}

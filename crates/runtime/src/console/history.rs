//! The last hour of throughput and latency, sampled from the pipeline's counters.

use std::collections::VecDeque;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use vowguard_pipeline::MetricsSnapshot;

use crate::server::ServerState;

/// How often a sample is taken.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// How long samples are kept.
pub(crate) const SPAN: Duration = Duration::from_secs(3600);

/// Cumulative counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at: DateTime<Utc>,
    pub(crate) events_in: u64,
    pub(crate) delivered: u64,
    pub(crate) requests: u64,
    pub(crate) latency_sum: f64,
}

impl Sample {
    pub(crate) fn of(m: &MetricsSnapshot, at: DateTime<Utc>) -> Self {
        Self {
            at,
            events_in: m.events_in,
            delivered: m.sinks.values().map(|s| s.delivered).sum(),
            requests: m
                .sinks
                .values()
                .map(|s| s.latency.counts.iter().sum::<u64>())
                .sum(),
            latency_sum: m.sinks.values().map(|s| s.latency.sum_seconds).sum(),
        }
    }
}

/// Samples of the last [`SPAN`] (at most `SPAN / SAMPLE_INTERVAL` + 1).
#[derive(Debug, Default)]
pub(crate) struct History {
    samples: Mutex<VecDeque<Sample>>,
}

/// One chart point: seconds before `now` and the value.
pub(crate) type Point = (f64, f64);

impl History {
    pub(crate) fn push(&self, sample: Sample) {
        let cap = (SPAN.as_secs() / SAMPLE_INTERVAL.as_secs()) as usize + 1;
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == cap {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Events received per second, events delivered per second and mean request latency
    /// (ms) between consecutive samples, the last point ending at `now` (whose sample is
    /// `current`, not stored).
    pub(crate) fn series(&self, current: Sample) -> (Vec<Point>, Vec<Point>, Vec<Point>) {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let all: Vec<Sample> = samples.iter().copied().chain([current]).collect();
        let (mut received, mut delivered, mut latency) = (Vec::new(), Vec::new(), Vec::new());
        for pair in all.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let secs = (b.at - a.at).num_milliseconds() as f64 / 1e3;
            if secs <= 0.0 {
                continue;
            }
            let x = (b.at - current.at).num_milliseconds() as f64 / 1e3;
            received.push((x, b.events_in.saturating_sub(a.events_in) as f64 / secs));
            delivered.push((x, b.delivered.saturating_sub(a.delivered) as f64 / secs));
            let requests = b.requests.saturating_sub(a.requests);
            let mean = if requests == 0 {
                0.0
            } else {
                (b.latency_sum - a.latency_sum).max(0.0) / requests as f64 * 1e3
            };
            latency.push((x, mean));
        }
        (received, delivered, latency)
    }
}

/// Samples `state`'s pipeline every [`SAMPLE_INTERVAL`] into `history` until the server
/// state is gone.
pub(crate) async fn sample(state: Weak<ServerState>, history: std::sync::Arc<History>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        history.push(Sample::of(&state.pipeline.metrics(), Utc::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, events_in: u64, requests: u64, latency_sum: f64) -> Sample {
        Sample {
            at: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            events_in,
            delivered: events_in,
            requests,
            latency_sum,
        }
    }

    #[test]
    fn rates_and_mean_latency_between_samples() {
        let h = History::default();
        h.push(at(0, 0, 0, 0.0));
        h.push(at(10, 100, 4, 0.2));
        let (received, delivered, latency) = h.series(at(20, 150, 4, 0.2));
        assert_eq!(received, vec![(-10.0, 10.0), (0.0, 5.0)]);
        assert_eq!(delivered, received);
        assert_eq!(latency.len(), 2);
        assert!((latency[0].1 - 50.0).abs() < 1e-9, "{latency:?}");
        assert_eq!(latency[1], (0.0, 0.0), "no request in the last interval");
    }

    #[test]
    fn keeps_one_hour() {
        let h = History::default();
        for i in 0..1000 {
            h.push(at(i * 10, i as u64, 0, 0.0));
        }
        let (received, ..) = h.series(at(10_000, 1000, 0, 0.0));
        assert_eq!(received.len(), 361);
    }
}

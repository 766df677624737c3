//! A token bucket that makes callers wait, in order, instead of dropping.

use std::time::Duration;

use crate::traits::RateLimit;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Token bucket: `per_second` tokens refill continuously up to `burst`. [`TokenBucket::acquire`]
/// waits for a token; callers are served in the order they arrive (the lock is fair).
#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket for `limit`.
    pub fn new(limit: RateLimit) -> Self {
        let burst = f64::from(limit.burst.max(1));
        Self {
            limit: RateLimit {
                per_second: limit.per_second.max(f64::MIN_POSITIVE),
                burst: limit.burst.max(1),
            },
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a token is available and takes it.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        let burst = f64::from(self.limit.burst);
        loop {
            let now = Instant::now();
            let (tokens, last) = *state;
            let refilled = (tokens
                + now.duration_since(last).as_secs_f64() * self.limit.per_second)
                .min(burst);
            if refilled >= 1.0 {
                *state = (refilled - 1.0, now);
                return;
            }
            *state = (refilled, now);
            let wait = (1.0 - refilled) / self.limit.per_second;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_instead_of_dropping() {
        let bucket = TokenBucket::new(RateLimit {
            per_second: 2.0,
            burst: 2,
        });
        let start = Instant::now();
        for _ in 0..6 {
            bucket.acquire().await;
        }
        // 2 immediately, then 4 more at 2/s: exactly 2 s of (paused, deterministic) time.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}

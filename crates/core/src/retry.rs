//! The one retry/backoff mechanism shared by sink delivery and notifier dispatch:
//! exponential backoff with full jitter, `Retry-After` honoured (up to a cap), and a limit
//! on attempts.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How to retry a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Most attempts in all, the first included. After the last, the event is
    /// dead-lettered (a sink) or the alert reported failed (a notifier).
    pub max_attempts: u32,
    /// Upper bound of the first backoff (`initial_backoff = "200ms"`).
    #[serde(with = "crate::duration")]
    pub initial_backoff: Duration,
    /// Upper bound of any backoff (`max_backoff = "30s"`).
    #[serde(with = "crate::duration")]
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured (`max_retry_after = "5m"`); a longer one is cut to this.
    #[serde(with = "crate::duration")]
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// These settings with [`max_attempts`](Self::max_attempts) set to `max_attempts`.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// These settings with [`initial_backoff`](Self::initial_backoff) set to `initial_backoff`.
    #[must_use]
    pub fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// These settings with [`max_backoff`](Self::max_backoff) set to `max_backoff`.
    #[must_use]
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// These settings with [`max_retry_after`](Self::max_retry_after) set to `max_retry_after`.
    #[must_use]
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the backoff before retry number `retry` (1 = the first retry):
    /// `min(max_backoff, initial * 2^(retry-1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(32);
        self.initial_backoff
            .saturating_mul(1u32 << exp.min(31))
            .min(self.max_backoff)
    }

    /// How long to wait before retry number `retry` after `error`: the server's
    /// `Retry-After` when it gave one (capped), otherwise a full-jitter backoff, a uniform
    /// random duration in `[0, ceiling]`.
    pub fn delay(&self, retry: u32, error: &Error) -> Duration {
        match error.retry_after() {
            Some(after) => after.min(self.max_retry_after),
            None => {
                let ceiling = self.backoff_ceiling(retry).as_millis() as u64;
                Duration::from_millis(fastrand::u64(0..=ceiling))
            }
        }
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts.max(1)
    }

    /// Runs `op` until it succeeds, fails permanently, or attempts run out. Returns the
    /// result and the number of attempts made.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> (Result<T, Error>, u32)
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match op(attempts).await {
                Ok(value) => return (Ok(value), attempts),
                Err(e) if e.is_retryable() && self.allows_another(attempts) => {
                    tokio::time::sleep(self.delay(attempts, &e)).await;
                }
                Err(e) => return (Err(e), attempts),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn ceiling_grows_and_caps() {
        let p = RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(1_000));
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(4), Duration::from_millis(800));
        assert_eq!(p.backoff_ceiling(5), Duration::from_millis(1_000));
        assert_eq!(p.backoff_ceiling(500), Duration::from_millis(1_000));
    }

    #[test]
    fn jitter_stays_within_ceiling_and_retry_after_wins() {
        let p = RetryPolicy::default();
        let e = Error::unavailable("x");
        for retry in 1..10 {
            assert!(p.delay(retry, &e) <= p.backoff_ceiling(retry));
        }
        let e = Error::new(ErrorKind::RateLimited, "x").with_retry_after(Duration::from_secs(7));
        assert_eq!(p.delay(1, &e), Duration::from_secs(7));
        let e =
            Error::new(ErrorKind::RateLimited, "x").with_retry_after(Duration::from_secs(9_999));
        assert_eq!(p.delay(1, &e), p.max_retry_after);
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_retryable_only() {
        let p = RetryPolicy::default().with_max_attempts(3);
        let (r, n) = p
            .run(|_| async { Err::<(), _>(Error::unavailable("down")) })
            .await;
        assert!(r.is_err());
        assert_eq!(n, 3);
        let (r, n) = p
            .run(|_| async { Err::<(), _>(Error::rejected("bad")) })
            .await;
        assert!(r.is_err());
        assert_eq!(n, 1);
        let (r, n) = p
            .run(|attempt| async move {
                if attempt < 2 {
                    Err(Error::unavailable("down"))
                } else {
                    Ok(attempt)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(n, 2);
    }
}

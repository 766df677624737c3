//! [`QuotaPause`]: after a provider answers 429, stop asking it until the pause it asked
//! for has passed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use vowguard_core::{Error, ErrorKind};

/// Remembers a provider's "too many requests" answer and makes later lookups fail fast.
///
/// Reputation APIs count every request against a quota, including the ones refused with
/// 429, so hammering them while over quota only prolongs the refusal. A provider calls
/// [`QuotaPause::record`] with every error it returns; a `RateLimited` error pauses all
/// lookups for its `Retry-After` ([`QuotaPause::DEFAULT_PAUSE`] when it carries none,
/// never longer than [`QuotaPause::MAX_PAUSE`]). Before each request the provider calls
/// [`QuotaPause::check`], which during a pause returns a `RateLimited` error carrying the
/// time left, without any request being made. Once the pause has passed, one lookup tries
/// again (and a new 429 starts a new pause).
///
/// ```
/// use std::time::Duration;
/// use vowguard_core::{Error, ErrorKind};
/// use vowguard_enrich::QuotaPause;
///
/// let pause = QuotaPause::new();
/// assert!(pause.check("lookup of 203.0.113.7", "quota exceeded").is_ok());
/// let answer = Error::new(ErrorKind::RateLimited, "HTTP 429").with_retry_after(Duration::from_secs(30));
/// assert_eq!(pause.record(&answer), Some(Duration::from_secs(30)));
/// let refused = pause.check("lookup of 203.0.113.7", "quota exceeded").unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::RateLimited);
/// assert!(refused.retry_after().unwrap() <= Duration::from_secs(30));
/// ```
#[derive(Debug)]
pub struct QuotaPause {
    /// No request before this instant.
    until: Mutex<Option<Instant>>,
    default_pause: Duration,
    max_pause: Duration,
}

impl Default for QuotaPause {
    fn default() -> Self {
        Self::new()
    }
}

impl QuotaPause {
    /// How long a 429 without `Retry-After` pauses lookups: 60 s.
    pub const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

    /// The longest pause a 429 can impose: 1 h (a daily quota can announce a reset hours
    /// away; after this long one lookup tries again).
    pub const MAX_PAUSE: Duration = Duration::from_secs(3_600);

    /// No pause running; [`Self::DEFAULT_PAUSE`] and [`Self::MAX_PAUSE`].
    pub fn new() -> Self {
        Self::with_limits(Self::DEFAULT_PAUSE, Self::MAX_PAUSE)
    }

    /// No pause running; a 429 without `Retry-After` pauses for `default_pause`, and no
    /// pause lasts longer than `max_pause`.
    pub fn with_limits(default_pause: Duration, max_pause: Duration) -> Self {
        Self {
            until: Mutex::new(None),
            default_pause,
            max_pause,
        }
    }

    /// The remaining pause, if one is running.
    pub fn remaining(&self) -> Option<Duration> {
        self.remaining_at(Instant::now())
    }

    /// `Err(RateLimited)` while a pause runs, carrying the time left as `retry_after`, with
    /// the message `"{what}: skipped, {why} (N s left)"`; `Ok(())` otherwise.
    pub fn check(&self, what: &str, why: &str) -> Result<(), Error> {
        self.check_at(what, why, Instant::now())
    }

    /// Starts a pause when `error` is `RateLimited` and returns its length (the error's
    /// `retry_after`, else the default pause, capped at the maximum); other errors change
    /// nothing and give `None`. A new 429 replaces a running pause.
    pub fn record(&self, error: &Error) -> Option<Duration> {
        self.record_at(error, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remaining_at(&self, now: Instant) -> Option<Duration> {
        let mut guard = self.lock();
        let until = (*guard)?;
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            *guard = None;
            return None;
        }
        Some(left)
    }

    fn check_at(&self, what: &str, why: &str, now: Instant) -> Result<(), Error> {
        match self.remaining_at(now) {
            None => Ok(()),
            Some(left) => Err(Error::new(
                ErrorKind::RateLimited,
                format!("{what}: skipped, {why} ({} s left)", left.as_secs().max(1)),
            )
            .with_retry_after(left)),
        }
    }

    fn record_at(&self, error: &Error, now: Instant) -> Option<Duration> {
        if error.kind() != ErrorKind::RateLimited {
            return None;
        }
        let wait = error
            .retry_after()
            .unwrap_or(self.default_pause)
            .min(self.max_pause);
        *self.lock() = Some(now + wait);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(after: Option<u64>) -> Error {
        let e = Error::new(ErrorKind::RateLimited, "HTTP 429");
        match after {
            Some(s) => e.with_retry_after(Duration::from_secs(s)),
            None => e,
        }
    }

    #[test]
    fn no_pause_until_a_429() {
        let pause = QuotaPause::new();
        assert_eq!(pause.remaining(), None);
        assert!(pause.check("lookup", "paused").is_ok());
        for error in [
            Error::unavailable("HTTP 503").with_retry_after(Duration::from_secs(30)),
            Error::new(ErrorKind::Unauthorized, "HTTP 401"),
            Error::new(ErrorKind::Rejected, "HTTP 400"),
        ] {
            assert_eq!(pause.record(&error), None, "{error}");
            assert_eq!(pause.remaining(), None, "{error}");
            assert!(pause.check("lookup", "paused").is_ok());
        }
    }

    #[test]
    fn retry_after_default_and_cap() {
        let pause = QuotaPause::new();
        assert_eq!(
            pause.record(&limited(Some(29))),
            Some(Duration::from_secs(29))
        );
        assert_eq!(
            pause.record(&limited(None)),
            Some(QuotaPause::DEFAULT_PAUSE)
        );
        assert_eq!(
            pause.record(&limited(Some(86_400))),
            Some(QuotaPause::MAX_PAUSE)
        );
        let custom = QuotaPause::with_limits(Duration::from_secs(5), Duration::from_secs(10));
        assert_eq!(custom.record(&limited(None)), Some(Duration::from_secs(5)));
        assert_eq!(
            custom.record(&limited(Some(60))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            QuotaPause::default().default_pause,
            QuotaPause::DEFAULT_PAUSE
        );
        assert_eq!(QuotaPause::default().max_pause, QuotaPause::MAX_PAUSE);
    }

    #[test]
    fn fails_fast_during_the_pause_and_ends() {
        let pause = QuotaPause::new();
        let t0 = Instant::now();
        pause.record_at(&limited(Some(30)), t0);
        assert_eq!(
            pause.remaining_at(t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(20))
        );
        let e = pause
            .check_at(
                "lookup of 203.0.113.7",
                "the quota was exceeded",
                t0 + Duration::from_secs(10),
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(20)));
        assert!(
            e.to_string()
                .contains("lookup of 203.0.113.7: skipped, the quota was exceeded (20 s left)"),
            "{e}"
        );
        // Less than a second left still says 1 s.
        let e = pause
            .check_at("x", "y", t0 + Duration::from_millis(29_500))
            .unwrap_err();
        assert!(e.to_string().contains("(1 s left)"), "{e}");
        // Over: lookups go ahead again, and the pause is forgotten.
        let end = t0 + Duration::from_secs(30);
        assert!(pause.check_at("x", "y", end).is_ok());
        assert_eq!(pause.remaining_at(t0), None);
    }

    #[test]
    fn a_new_429_replaces_the_pause() {
        let pause = QuotaPause::new();
        let t0 = Instant::now();
        pause.record_at(&limited(Some(600)), t0);
        pause.record_at(&limited(Some(5)), t0);
        assert_eq!(pause.remaining_at(t0), Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_zero_retry_after_does_not_pause() {
        let pause = QuotaPause::new();
        assert_eq!(pause.record(&limited(Some(0))), Some(Duration::ZERO));
        assert_eq!(pause.remaining(), None);
    }
}

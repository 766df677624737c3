//! Per-provider limits: a timeout per lookup, a concurrency limit and a rate limit.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use vowguard_core::{Error, ErrorKind, RateLimit, TokenBucket};

/// Per-provider limits: timeout per lookup, concurrent lookups, rate.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderLimits {
    /// Longest one lookup may take (`timeout = "2s"`; waiting for a slot or a rate token
    /// is not counted; the enricher's overall timeout bounds that).
    #[serde(with = "vowguard_core::duration")]
    pub timeout: Duration,
    /// Most lookups in flight at once (0 is treated as 1).
    pub concurrency: usize,
    /// Sustained lookup rate; `None` for no limit.
    #[serde(default)]
    pub rate: Option<RateLimit>,
}

impl Default for ProviderLimits {
    /// 2000 ms, 8 concurrent lookups, no rate limit.
    fn default() -> Self {
        Self::new(2_000, 8, None)
    }
}

impl ProviderLimits {
    /// Limits with these values (the timeout in milliseconds, for the vendors' constant
    /// defaults).
    pub const fn new(timeout_ms: u64, concurrency: usize, rate: Option<RateLimit>) -> Self {
        Self {
            timeout: Duration::from_millis(timeout_ms),
            concurrency,
            rate,
        }
    }

    /// [`ProviderLimits::timeout`] (kept for callers of the method).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The `limits` table of a provider's config: every key optional, each overriding the
/// provider's own default (see [`LimitsConfig::resolve`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Overrides [`ProviderLimits::timeout`] (`timeout = "2s"`).
    #[serde(with = "vowguard_core::duration::option")]
    pub timeout: Option<Duration>,
    /// Overrides [`ProviderLimits::concurrency`].
    pub concurrency: Option<usize>,
    /// Overrides [`ProviderLimits::rate`] (a provider default rate cannot be removed, only
    /// changed).
    pub rate: Option<RateLimit>,
}

impl LimitsConfig {
    /// These settings with [`timeout`](Self::timeout) set to `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// These settings with [`concurrency`](Self::concurrency) set to `concurrency`.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: Option<usize>) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// These settings with [`rate`](Self::rate) set to `rate`.
    #[must_use]
    pub fn with_rate(mut self, rate: Option<RateLimit>) -> Self {
        self.rate = rate;
        self
    }
}

impl LimitsConfig {
    /// The provider's `defaults` with the configured keys replaced.
    pub fn resolve(&self, defaults: ProviderLimits) -> ProviderLimits {
        ProviderLimits {
            timeout: self.timeout.unwrap_or(defaults.timeout),
            concurrency: self.concurrency.unwrap_or(defaults.concurrency),
            rate: self.rate.or(defaults.rate),
        }
    }
}

/// Enforces [`ProviderLimits`] around each lookup.
pub struct ProviderGate {
    limits: ProviderLimits,
    slots: Semaphore,
    bucket: Option<TokenBucket>,
}

impl fmt::Debug for ProviderGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderGate")
            .field("limits", &self.limits)
            .field("free_slots", &self.slots.available_permits())
            .finish()
    }
}

impl ProviderGate {
    /// A gate for `limits`.
    pub fn new(limits: ProviderLimits) -> Self {
        Self {
            limits,
            slots: Semaphore::new(limits.concurrency.max(1)),
            bucket: limits.rate.map(TokenBucket::new),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> ProviderLimits {
        self.limits
    }

    /// Waits for a concurrency slot and a rate token, then runs `f` within
    /// [`ProviderLimits::timeout`] (elapsed: [`ErrorKind::Timeout`]).
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Error::internal("provider gate closed"))?;
        if let Some(bucket) = &self.bucket {
            bucket.acquire().await;
        }
        match tokio::time::timeout(self.limits.timeout(), f()).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "lookup did not finish within {}",
                    vowguard_core::duration::format(self.limits.timeout)
                ),
            )),
        }
    }
}

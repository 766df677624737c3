//! A TTL cache with negative caching, single-flight and a size bound, on `moka`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use moka::Expiry;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use serde::Deserialize;
use tokio::time::Instant;
use vowguard_core::Error;

/// How long answers are kept and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CacheOptions {
    /// How long a known answer (`Ok(Some(_))`) is kept (`ttl = "1h"`, the default).
    #[serde(with = "vowguard_core::duration")]
    pub ttl: Duration,
    /// How long an "unknown to the provider" answer (`Ok(None)`) is kept
    /// (`negative_ttl = "10m"`, the default).
    #[serde(with = "vowguard_core::duration")]
    pub negative_ttl: Duration,
    /// Most entries kept; the least recently used are evicted beyond it. Default 100 000.
    /// 0 disables caching (concurrent lookups are still shared).
    pub max_entries: usize,
}

impl CacheOptions {
    /// These settings with [`ttl`](Self::ttl) set to `ttl`.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// These settings with [`negative_ttl`](Self::negative_ttl) set to `negative_ttl`.
    #[must_use]
    pub fn with_negative_ttl(mut self, negative_ttl: Duration) -> Self {
        self.negative_ttl = negative_ttl;
        self
    }

    /// These settings with [`max_entries`](Self::max_entries) set to `max_entries`.
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(600),
            max_entries: 100_000,
        }
    }
}

/// Counters of a [`LookupCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from a fresh known (`Some`) entry.
    pub hits: u64,
    /// Lookups that ran the fetch (the leader of a flight).
    pub misses: u64,
    /// Lookups answered from a fresh negative (`None`, unknown) entry.
    pub negative_hits: u64,
    /// Lookups that joined a fetch already in flight for the same key.
    pub in_flight_joins: u64,
    /// Entries currently stored (fresh or not yet purged), as of the cache's last
    /// maintenance (see [`LookupCache::run_pending_tasks`]).
    pub entries: usize,
}

/// What the cache stores for a key: the answer and when it stops being fresh.
#[derive(Clone)]
struct Stored<V> {
    value: Option<V>,
    /// On tokio's clock, so tests can use its paused time; moka's own expiry (on the real
    /// clock, same durations) reclaims the memory.
    expires_at: Instant,
}

/// moka's per-entry expiry: known answers live `ttl`, unknown answers `negative_ttl`.
struct PerAnswerTtl {
    ttl: Duration,
    negative_ttl: Duration,
}

impl PerAnswerTtl {
    fn of<V>(&self, stored: &Stored<V>) -> Duration {
        if stored.value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        }
    }
}

impl<V> Expiry<String, Stored<V>> for PerAnswerTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Stored<V>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.of(value))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Stored<V>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.of(value))
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    negative_hits: AtomicU64,
    /// Signed: a lookup counts itself as a join before moka decides, and the one whose
    /// fetch runs takes it back.
    in_flight_joins: AtomicI64,
}

struct Shared<V: Clone + Send + Sync + 'static> {
    options: CacheOptions,
    cache: Cache<String, Stored<V>>,
    counters: Counters,
}

/// A TTL cache with negative caching and single-flight, on a `moka` cache.
///
/// * `Ok(Some(v))` answers are kept for [`CacheOptions::ttl`], `Ok(None)` ("the
///   provider does not know it", i.e. unknown) for [`CacheOptions::negative_ttl`].
/// * Errors are never cached: the next lookup tries again.
/// * Concurrent lookups of the same key share one fetch (moka's coalesced insert); every
///   waiter gets the value or a copy of the error. If the fetching caller is cancelled, a
///   waiter takes over.
/// * At most [`CacheOptions::max_entries`] entries, least recently used evicted first, in
///   O(1) per insert. moka applies evictions in its maintenance, which runs as writes
///   accumulate (or with [`Self::run_pending_tasks`]), so the count can briefly exceed the
///   bound by the writes not yet applied.
///
/// Freshness is judged on [`tokio::time::Instant`], so tests can use tokio's paused clock.
/// Cloning is cheap and shares the cache.
pub struct LookupCache<V: Clone + Send + Sync + 'static> {
    shared: Arc<Shared<V>>,
}

impl<V: Clone + Send + Sync + 'static> Clone for LookupCache<V> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> fmt::Debug for LookupCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupCache")
            .field("options", &self.shared.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> LookupCache<V> {
    /// An empty cache.
    pub fn new(options: CacheOptions) -> Self {
        let expiry = PerAnswerTtl {
            ttl: options.ttl,
            negative_ttl: options.negative_ttl,
        };
        let cache = Cache::builder()
            .max_capacity(options.max_entries as u64)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(expiry)
            .build();
        Self {
            shared: Arc::new(Shared {
                options,
                cache,
                counters: Counters::default(),
            }),
        }
    }

    /// The options the cache was built with.
    pub fn options(&self) -> CacheOptions {
        self.shared.options
    }

    fn ttl_of(&self, value: &Option<V>) -> Duration {
        if value.is_some() {
            self.shared.options.ttl
        } else {
            self.shared.options.negative_ttl
        }
    }

    fn stored(&self, value: Option<V>) -> Stored<V> {
        let ttl = self.ttl_of(&value);
        Stored {
            value,
            expires_at: Instant::now() + ttl,
        }
    }

    fn keeps(&self, value: &Option<V>) -> bool {
        self.shared.options.max_entries > 0 && !self.ttl_of(value).is_zero()
    }

    /// Cached value if fresh; otherwise runs `fetch` once for all concurrent callers of the
    /// same key (the others await the same result). `Ok(Some(v))` is cached for the TTL,
    /// `Ok(None)` for the negative TTL; `Err` is not cached (every waiter gets a copy).
    pub async fn get_or_fetch<F, Fut>(&self, key: &str, fetch: F) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, Error>>,
    {
        let shared = &self.shared;
        let counters = &shared.counters;
        if let Some(stored) = shared.cache.get(key).await {
            if stored.expires_at > Instant::now() {
                let counter = if stored.value.is_some() {
                    &counters.hits
                } else {
                    &counters.negative_hits
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return Ok(stored.value);
            }
            shared.cache.invalidate(key).await;
        }
        // Counted as a join until moka runs this caller's fetch (then it is the miss).
        counters.in_flight_joins.fetch_add(1, Ordering::Relaxed);
        let init = async {
            counters.in_flight_joins.fetch_sub(1, Ordering::Relaxed);
            counters.misses.fetch_add(1, Ordering::Relaxed);
            fetch().await.map(|value| self.stored(value))
        };
        let entry = shared
            .cache
            .entry_by_ref(key)
            .or_try_insert_with(init)
            .await
            .map_err(|error| Error::clone(&error))?;
        let fresh = entry.is_fresh();
        let stored = entry.into_value();
        if fresh && !self.keeps(&stored.value) {
            shared.cache.invalidate(key).await;
        }
        Ok(stored.value)
    }

    /// Stores `value` for `key` as if a fetch had returned it.
    pub async fn insert(&self, key: &str, value: Option<V>) {
        if self.keeps(&value) {
            let stored = self.stored(value);
            self.shared.cache.insert(key.to_owned(), stored).await;
        }
    }

    /// Applies moka's pending maintenance now: evictions beyond the size bound and removal
    /// of expired entries (it otherwise runs as writes accumulate).
    pub async fn run_pending_tasks(&self) {
        self.shared.cache.run_pending_tasks().await;
    }

    /// Counters and the current number of entries.
    pub fn stats(&self) -> CacheStats {
        let counters = &self.shared.counters;
        CacheStats {
            hits: counters.hits.load(Ordering::Relaxed),
            misses: counters.misses.load(Ordering::Relaxed),
            negative_hits: counters.negative_hits.load(Ordering::Relaxed),
            in_flight_joins: u64::try_from(counters.in_flight_joins.load(Ordering::Relaxed))
                .unwrap_or(0),
            entries: usize::try_from(self.shared.cache.entry_count()).unwrap_or(usize::MAX),
        }
    }
}

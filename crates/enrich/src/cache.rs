//! A TTL cache with negative caching, single-flight and a size bound.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use vowguard_core::Error;

/// How long answers are kept and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheOptions {
    /// Seconds a known answer (`Ok(Some(_))`) is kept. Default 3600.
    pub ttl_secs: u64,
    /// Seconds an "unknown to the provider" answer (`Ok(None)`) is kept. Default 600.
    pub negative_ttl_secs: u64,
    /// Most entries kept; the oldest are evicted beyond it. Default 100 000. 0 disables
    /// caching (concurrent lookups are still shared).
    pub max_entries: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl_secs: 3600,
            negative_ttl_secs: 600,
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
    /// Entries currently stored (fresh or not yet purged).
    pub entries: usize,
}

struct Entry<V> {
    value: Option<V>,
    expires_at: Instant,
    seq: u64,
}

/// What a flight's waiters receive: the value or a shared copy of the error.
type FlightResult<V> = Option<Result<Option<V>, Error>>;

struct Inner<V> {
    entries: HashMap<String, Entry<V>>,
    /// Keys in insertion order with the sequence number they were inserted with; a pair
    /// whose sequence no longer matches the entry is stale and skipped.
    order: VecDeque<(String, u64)>,
    in_flight: HashMap<String, watch::Sender<FlightResult<V>>>,
    next_seq: u64,
    stats: CacheStats,
}

struct Shared<V> {
    options: CacheOptions,
    inner: Mutex<Inner<V>>,
}

impl<V> Shared<V> {
    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A TTL cache with negative caching and single-flight.
///
/// * `Ok(Some(v))` answers are kept for [`CacheOptions::ttl_secs`], `Ok(None)` ("the
///   provider does not know it", i.e. unknown) for [`CacheOptions::negative_ttl_secs`].
/// * Errors are never cached: the next lookup tries again.
/// * Concurrent lookups of the same key share one fetch; every waiter gets the value or a
///   copy of the error. If the fetching caller is cancelled, a waiter takes over.
/// * At most [`CacheOptions::max_entries`] entries: beyond it the oldest inserted are
///   evicted (amortised O(1)).
///
/// Time is [`tokio::time::Instant`], so tests can use tokio's paused clock. Cloning is
/// cheap and shares the cache.
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

enum Step<V> {
    Done(Option<V>),
    Join(watch::Receiver<FlightResult<V>>),
    Lead,
}

/// Removes the flight if the leader is dropped before finishing, so waiters take over.
struct FlightGuard<'a, V: Clone + Send + Sync + 'static> {
    cache: &'a LookupCache<V>,
    key: &'a str,
    done: bool,
}

impl<V: Clone + Send + Sync + 'static> Drop for FlightGuard<'_, V> {
    fn drop(&mut self) {
        if !self.done {
            // Dropping the sender wakes the waiters with "closed"; they retry.
            let sender = self.cache.shared.lock().in_flight.remove(self.key);
            drop(sender);
        }
    }
}

impl<V: Clone + Send + Sync + 'static> LookupCache<V> {
    /// An empty cache.
    pub fn new(options: CacheOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                inner: Mutex::new(Inner {
                    entries: HashMap::new(),
                    order: VecDeque::new(),
                    in_flight: HashMap::new(),
                    next_seq: 0,
                    stats: CacheStats::default(),
                }),
            }),
        }
    }

    /// The options the cache was built with.
    pub fn options(&self) -> CacheOptions {
        self.shared.options
    }

    /// Cached value if fresh; otherwise runs `fetch` once for all concurrent callers of the
    /// same key (the others await the same result). `Ok(Some(v))` is cached for the TTL,
    /// `Ok(None)` for the negative TTL; `Err` is not cached (every waiter gets a copy).
    pub async fn get_or_fetch<F, Fut>(&self, key: &str, fetch: F) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, Error>>,
    {
        loop {
            match self.step(key) {
                Step::Done(value) => return Ok(value),
                Step::Join(mut rx) => {
                    let outcome = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|r| r.clone());
                    match outcome {
                        Some(Ok(value)) => return Ok(value),
                        Some(Err(e)) => return Err(e),
                        // The leader was cancelled: look again (maybe lead ourselves).
                        None => continue,
                    }
                }
                Step::Lead => return self.lead(key, fetch).await,
            }
        }
    }

    fn step(&self, key: &str) -> Step<V> {
        let now = Instant::now();
        let mut inner = self.shared.lock();
        let inner = &mut *inner;
        match inner.entries.get(key) {
            Some(entry) if entry.expires_at > now => {
                if entry.value.is_some() {
                    inner.stats.hits += 1;
                } else {
                    inner.stats.negative_hits += 1;
                }
                return Step::Done(entry.value.clone());
            }
            Some(_) => {
                inner.entries.remove(key);
            }
            None => {}
        }
        if let Some(sender) = inner.in_flight.get(key) {
            inner.stats.in_flight_joins += 1;
            return Step::Join(sender.subscribe());
        }
        inner.stats.misses += 1;
        let (sender, _) = watch::channel(None);
        inner.in_flight.insert(key.to_owned(), sender);
        Step::Lead
    }

    async fn lead<F, Fut>(&self, key: &str, fetch: F) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, Error>>,
    {
        let mut guard = FlightGuard {
            cache: self,
            key,
            done: false,
        };
        let result = fetch().await;
        guard.done = true;
        let sender = {
            let mut inner = self.shared.lock();
            let sender = inner.in_flight.remove(key);
            if let Ok(value) = &result {
                self.insert_locked(&mut inner, key, value.clone());
            }
            sender
        };
        match result {
            Ok(value) => {
                if let Some(sender) = sender {
                    sender.send_replace(Some(Ok(value.clone())));
                }
                Ok(value)
            }
            Err(error) => {
                if let Some(sender) = sender {
                    sender.send_replace(Some(Err(error.clone())));
                }
                Err(error)
            }
        }
    }

    fn insert_locked(&self, inner: &mut Inner<V>, key: &str, value: Option<V>) {
        let options = self.shared.options;
        let ttl = if value.is_some() {
            options.ttl_secs
        } else {
            options.negative_ttl_secs
        };
        if options.max_entries == 0 || ttl == 0 {
            return;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let expires_at = Instant::now() + Duration::from_secs(ttl);
        inner.entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at,
                seq,
            },
        );
        inner.order.push_back((key.to_owned(), seq));
        while inner.entries.len() > options.max_entries {
            let Some((old_key, old_seq)) = inner.order.pop_front() else {
                break;
            };
            if inner
                .entries
                .get(&old_key)
                .is_some_and(|e| e.seq == old_seq)
            {
                inner.entries.remove(&old_key);
            }
        }
        // Stale pairs (entries expired and re-inserted, or removed) are compacted away
        // once they outnumber live entries, keeping the queue O(entries).
        if inner.order.len() > 2 * inner.entries.len() + 64 {
            let entries = &inner.entries;
            inner
                .order
                .retain(|(k, s)| entries.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    /// Stores `value` for `key` as if a fetch had returned it.
    pub fn insert(&self, key: &str, value: Option<V>) {
        let mut inner = self.shared.lock();
        self.insert_locked(&mut inner, key, value);
    }

    /// Counters and the current number of entries.
    pub fn stats(&self) -> CacheStats {
        let inner = self.shared.lock();
        CacheStats {
            entries: inner.entries.len(),
            ..inner.stats
        }
    }
}

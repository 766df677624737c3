//! LookupCache: hits, misses, negative caching, errors, single-flight, eviction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use vowguard_core::{Error, ErrorKind};
use vowguard_enrich::{CacheOptions, CacheStats, LookupCache};

fn options() -> CacheOptions {
    CacheOptions::default()
        .with_ttl(std::time::Duration::from_secs(60))
        .with_negative_ttl(std::time::Duration::from_secs(10))
        .with_max_entries(100)
}

async fn fetch_count(
    cache: &LookupCache<u32>,
    key: &str,
    calls: &AtomicUsize,
    answer: Option<u32>,
) -> Result<Option<u32>, Error> {
    cache
        .get_or_fetch(key, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(answer)
        })
        .await
}

#[test]
fn defaults_and_config() {
    let d = CacheOptions::default();
    assert_eq!(
        (d.ttl, d.negative_ttl, d.max_entries),
        (Duration::from_secs(3600), Duration::from_secs(600), 100_000)
    );
    let partial: CacheOptions = toml::from_str("ttl = \"5s\"").unwrap();
    assert_eq!(
        (partial.ttl, partial.negative_ttl),
        (Duration::from_secs(5), Duration::from_secs(600))
    );
    let err = toml::from_str::<CacheOptions>("tll = \"5s\"").unwrap_err();
    assert!(err.to_string().contains("tll"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn hit_then_expiry() {
    let cache = LookupCache::new(options());
    let calls = AtomicUsize::new(0);
    assert_eq!(
        fetch_count(&cache, "ip:1", &calls, Some(7)).await.unwrap(),
        Some(7)
    );
    assert_eq!(
        fetch_count(&cache, "ip:1", &calls, Some(8)).await.unwrap(),
        Some(7)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        fetch_count(&cache, "ip:1", &calls, Some(8)).await.unwrap(),
        Some(7)
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        fetch_count(&cache, "ip:1", &calls, Some(8)).await.unwrap(),
        Some(8)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    cache.run_pending_tasks().await;
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 2,
            misses: 2,
            negative_hits: 0,
            in_flight_joins: 0,
            entries: 1
        }
    );
}

#[tokio::test(start_paused = true)]
async fn negative_answers_cached_for_negative_ttl() {
    let cache = LookupCache::new(options());
    let calls = AtomicUsize::new(0);
    assert_eq!(
        fetch_count(&cache, "ip:2", &calls, None).await.unwrap(),
        None
    );
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(
        fetch_count(&cache, "ip:2", &calls, Some(1)).await.unwrap(),
        None
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().negative_hits, 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    // negative TTL (10 s) is over although the positive TTL (60 s) is not
    assert_eq!(
        fetch_count(&cache, "ip:2", &calls, Some(1)).await.unwrap(),
        Some(1)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let cache: LookupCache<u32> = LookupCache::new(options());
    let calls = AtomicUsize::new(0);
    for _ in 0..3 {
        let err = cache
            .get_or_fetch("k", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::new(ErrorKind::RateLimited, "slow down").with_status(429))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.status(), Some(429));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    cache.run_pending_tasks().await;
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(
        fetch_count(&cache, "k", &calls, Some(3)).await.unwrap(),
        Some(3)
    );
}

#[tokio::test]
async fn keys_are_independent() {
    let cache = LookupCache::new(options());
    let calls = AtomicUsize::new(0);
    fetch_count(&cache, "a", &calls, Some(1)).await.unwrap();
    assert_eq!(
        fetch_count(&cache, "b", &calls, Some(2)).await.unwrap(),
        Some(2)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// N concurrent callers; the fetch waits on a Notify so all of them are in flight together.
async fn single_flight(answer: Result<Option<u32>, ErrorKind>) -> Vec<Result<Option<u32>, Error>> {
    const N: usize = 20;
    let cache: LookupCache<u32> = LookupCache::new(options());
    let calls = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (cache, calls, release) = (cache.clone(), calls.clone(), release.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_fetch("ip:203.0.113.7", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    answer.map_err(|k| Error::new(k, "provider down").with_status(503))
                })
                .await
        }));
    }
    // Wait until the leader is fetching and everyone else has joined.
    while calls.load(Ordering::SeqCst) == 0 || cache.stats().in_flight_joins < (N - 1) as u64 {
        tokio::task::yield_now().await;
    }
    release.notify_one();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "fetch ran once");
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(cache.stats().in_flight_joins, (N - 1) as u64);
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_shares_the_value() {
    for r in single_flight(Ok(Some(42))).await {
        assert_eq!(r.unwrap(), Some(42));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_shares_the_error_to_every_waiter() {
    for r in single_flight(Err(ErrorKind::Unavailable)).await {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.status(), Some(503));
        assert!(e.to_string().contains("provider down"));
    }
}

#[tokio::test]
async fn cancelled_leader_hands_over_to_a_waiter() {
    let cache: LookupCache<u32> = LookupCache::new(options());
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_fetch("k", std::future::pending::<Result<Option<u32>, Error>>)
                .await
        })
    };
    while cache.stats().misses == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_or_fetch("k", || async { Ok(Some(5)) }).await })
    };
    while cache.stats().in_flight_joins == 0 {
        tokio::task::yield_now().await;
    }
    leader.abort();
    let r = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter must not hang")
        .unwrap();
    assert_eq!(r.unwrap(), Some(5));
    assert_eq!(cache.stats().misses, 2);
}

#[tokio::test]
async fn eviction_keeps_the_bound_and_drops_the_oldest() {
    let cache = LookupCache::new(options().with_max_entries(10));
    let calls = AtomicUsize::new(0);
    for i in 0..1000u32 {
        fetch_count(&cache, &format!("k{i}"), &calls, Some(i))
            .await
            .unwrap();
        cache.run_pending_tasks().await;
        assert!(cache.stats().entries <= 10);
    }
    assert_eq!(cache.stats().entries, 10);
    // the newest are kept, the oldest refetched
    let before = calls.load(Ordering::SeqCst);
    assert_eq!(
        fetch_count(&cache, "k999", &calls, None).await.unwrap(),
        Some(999)
    );
    assert_eq!(
        fetch_count(&cache, "k990", &calls, None).await.unwrap(),
        Some(990)
    );
    assert_eq!(calls.load(Ordering::SeqCst), before);
    assert_eq!(fetch_count(&cache, "k0", &calls, None).await.unwrap(), None);
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(start_paused = true)]
async fn re_inserting_expired_keys_stays_bounded() {
    let cache = LookupCache::new(
        CacheOptions::default()
            .with_ttl(std::time::Duration::from_secs(1))
            .with_negative_ttl(std::time::Duration::from_secs(1))
            .with_max_entries(3),
    );
    let calls = AtomicUsize::new(0);
    for round in 0..500u32 {
        for k in ["a", "b"] {
            fetch_count(&cache, k, &calls, Some(round)).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1000);
    cache.run_pending_tasks().await;
    assert!(cache.stats().entries <= 3);
    // Two live keys and two new ones: the bound holds, the least recently used goes.
    fetch_count(&cache, "c", &calls, Some(1)).await.unwrap();
    fetch_count(&cache, "d", &calls, Some(1)).await.unwrap();
    cache.run_pending_tasks().await;
    assert_eq!(cache.stats().entries, 3);
    let before = calls.load(Ordering::SeqCst);
    fetch_count(&cache, "d", &calls, Some(1)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), before, "the newest is kept");
}

#[tokio::test]
async fn zero_max_entries_disables_caching() {
    let cache = LookupCache::new(options().with_max_entries(0));
    let calls = AtomicUsize::new(0);
    fetch_count(&cache, "k", &calls, Some(1)).await.unwrap();
    fetch_count(&cache, "k", &calls, Some(1)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    cache.run_pending_tasks().await;
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn debug_shows_options() {
    let cache: LookupCache<u32> = LookupCache::new(options());
    assert!(format!("{cache:?}").contains("ttl: 60s"));
}

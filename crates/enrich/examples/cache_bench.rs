//! `LookupCache` micro-benchmark, criterion-free: the cost of one `get_or_fetch` on a hit
//! and on a miss that evicts, against a reference measured in the same run (a
//! `Mutex<HashMap>` doing the same lookups, with no TTL, no single-flight and no eviction:
//! the floor any cache pays).
//!
//! Workloads (seeded key order, no I/O; the fetch answers at once):
//! 1. hits: 1,000 keys cached, 1,000,000 lookups spread over them;
//! 2. misses with eviction: `max_entries` 10,000, 200,000 distinct keys (every lookup
//!    fetches and, past 10,000, evicts).
//!
//! Run: `cargo run --release -p vowguard-enrich --example cache_bench` (or without
//! `--release` on a loaded machine, and say so with the figures).
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use vowguard_enrich::{CacheOptions, LookupCache};

const HIT_KEYS: u64 = 1_000;
const HIT_LOOKUPS: u64 = 1_000_000;
const MISS_BOUND: usize = 10_000;
const MISS_KEYS: u64 = 200_000;

/// `n` indices below `modulo` from a seeded xorshift, so every run looks up the same keys
/// in the same order.
fn seeded_indices(n: u64, modulo: u64) -> Vec<usize> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % modulo).expect("small")
        })
        .collect()
}

fn distinct(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("ip:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect()
}

async fn cache_ns(options: CacheOptions, warm: &[String], run: &[String]) -> f64 {
    let cache: LookupCache<u32> = LookupCache::new(options);
    for key in warm {
        let _ = cache.get_or_fetch(key, || async { Ok(Some(1)) }).await;
    }
    let start = Instant::now();
    for key in run {
        let _ = cache.get_or_fetch(key, || async { Ok(Some(1)) }).await;
    }
    start.elapsed().as_nanos() as f64 / run.len() as f64
}

fn reference_ns(warm: &[String], run: &[String]) -> f64 {
    let map: Mutex<HashMap<String, u32>> = Mutex::new(HashMap::new());
    let lookup = |key: &String| {
        let mut map = map.lock().unwrap();
        match map.get(key) {
            Some(v) => *v,
            None => {
                map.insert(key.clone(), 1);
                1
            }
        }
    };
    for key in warm {
        lookup(key);
    }
    let start = Instant::now();
    let mut sum = 0u64;
    for key in run {
        sum += u64::from(lookup(key));
    }
    let elapsed = start.elapsed();
    assert_eq!(sum, run.len() as u64);
    elapsed.as_nanos() as f64 / run.len() as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("cache_bench ({profile} build)");
    let options = CacheOptions::default().with_max_entries(100_000);
    let warm = distinct(HIT_KEYS);
    let hits: Vec<String> = seeded_indices(HIT_LOOKUPS, HIT_KEYS)
        .into_iter()
        .map(|i| warm[i].clone())
        .collect();
    let hit_cache = cache_ns(options, &warm, &hits).await;
    let hit_reference = reference_ns(&warm, &hits);
    println!(
        "hits:   {hit_cache:8.0} ns/lookup  (reference {hit_reference:6.0} ns, ratio {:.1}x)",
        hit_cache / hit_reference
    );
    let misses = distinct(MISS_KEYS);
    let bounded = CacheOptions::default().with_max_entries(MISS_BOUND);
    let miss_cache = cache_ns(bounded, &[], &misses).await;
    let miss_reference = reference_ns(&[], &misses);
    println!(
        "misses: {miss_cache:8.0} ns/lookup  (reference {miss_reference:6.0} ns, ratio {:.1}x; bound {MISS_BOUND}, {MISS_KEYS} keys)",
        miss_cache / miss_reference
    );
}

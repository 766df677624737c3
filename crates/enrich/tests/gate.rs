//! ProviderGate: timeout, concurrency limit, rate limit; LimitsConfig.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use vowguard_core::{Error, ErrorKind, RateLimit};
use vowguard_enrich::{LimitsConfig, ProviderGate, ProviderLimits};

#[tokio::test(start_paused = true)]
async fn timeout_gives_timeout_kind() {
    let gate = ProviderGate::new(ProviderLimits::new(100, 4, None));
    let err = gate
        .run(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(err.to_string().contains("within 100ms"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn passes_results_and_errors_through() {
    let gate = ProviderGate::new(ProviderLimits::default());
    assert_eq!(gate.run(|| async { Ok::<_, Error>(3) }).await.unwrap(), 3);
    let err = gate
        .run(|| async { Err::<(), _>(Error::new(ErrorKind::Unauthorized, "bad key")) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test(start_paused = true)]
async fn concurrency_limit_is_respected() {
    let gate = Arc::new(ProviderGate::new(ProviderLimits::new(10_000, 3, None)));
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (gate, now, max) = (gate.clone(), now.clone(), max.clone());
        tasks.push(tokio::spawn(async move {
            gate.run(|| async {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Error>(())
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(max.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn zero_concurrency_means_one() {
    // Several lookups at once: with 0 meaning "unlimited" they would overlap.
    let gate = Arc::new(ProviderGate::new(ProviderLimits::new(10_000, 0, None)));
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (gate, now, max) = (gate.clone(), now.clone(), max.clone());
        tasks.push(tokio::spawn(async move {
            gate.run(|| async {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Error>(i)
            })
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), i);
    }
    assert_eq!(max.load(Ordering::SeqCst), 1, "0 must mean one at a time");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_waits() {
    let gate = ProviderGate::new(ProviderLimits::new(
        1000,
        8,
        Some(RateLimit {
            per_second: 4.0,
            burst: 2,
        }),
    ));
    let start = Instant::now();
    for _ in 0..10 {
        gate.run(|| async { Ok::<_, Error>(()) }).await.unwrap();
    }
    // 2 at once, then 8 more at 4/s
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[test]
fn limits_config_overrides_provider_defaults() {
    let defaults = ProviderLimits::new(
        5000,
        4,
        Some(RateLimit {
            per_second: 0.06,
            burst: 1,
        }),
    );
    let none: LimitsConfig = toml::from_str("").unwrap();
    assert_eq!(none.resolve(defaults), defaults);
    let some: LimitsConfig =
        toml::from_str("timeout = \"300ms\"\nrate = { per_second = 2.0, burst = 5 }").unwrap();
    let r = some.resolve(defaults);
    assert_eq!(
        (r.timeout, r.concurrency),
        (std::time::Duration::from_millis(300), 4)
    );
    assert_eq!(r.rate.unwrap().burst, 5);
    let err = toml::from_str::<LimitsConfig>("timeout = 3").unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
    let d = ProviderLimits::default();
    assert_eq!(
        (d.timeout, d.concurrency, d.rate),
        (std::time::Duration::from_secs(2), 8, None)
    );
}

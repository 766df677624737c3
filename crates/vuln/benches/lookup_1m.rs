//! Correlation lookup latency with 1 million active findings loaded.
//!
//! `cargo bench -p vowguard-vuln --bench lookup_1m`: builds an index of 1,000,000
//! findings over 100,000 hosts (10 per host: ports 22/80/443/8443 and host-level), then
//! times 200,000 correlations of random targets (80% known hosts, 20% unknown; a third
//! naming a CVE) and prints p50/p99/p99.9/max. Seeded: every run draws the same targets.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use hdrhistogram::Histogram;
use vowguard_core::{Asset, Finding, FindingState, Severity};
use vowguard_vuln::{CorrelationOptions, EventTarget, FindingIndex, correlate};

const HOSTS: u32 = 100_000;
const PER_HOST: u32 = 10;
const LOOKUPS: usize = 200_000;
const PORTS: [u16; 5] = [0, 22, 80, 443, 8443];

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn main() {
    let mut rng = fastrand::Rng::with_seed(15);
    let started = Instant::now();
    let mut index = FindingIndex::new();
    for host in 0..HOSTS {
        for i in 0..PER_HOST {
            let port = PORTS[(i as usize) % PORTS.len()];
            index.apply(
                Finding {
                    scanner: "tio".into(),
                    plugin_id: format!("{}", 100_000 + i),
                    title: Some("Some vulnerability".into()),
                    asset: Asset {
                        ip: Some(ip(host)),
                        fqdn: Some(format!("host{host}.example.com")),
                        hostname: None,
                        scanner_asset_id: Some(format!("asset-{host}")),
                    },
                    port,
                    protocol: if port == 0 {
                        String::new()
                    } else {
                        "tcp".into()
                    },
                    cves: vec![format!("CVE-2024-{:05}", rng.u32(1000..99_999))],
                    cvss: Some(rng.u8(10..=100) as f32 / 10.0),
                    cvss_vector: None,
                    severity: Severity::High,
                    state: FindingState::Open,
                    first_seen: None,
                    last_seen: None,
                    confidence: 1.0,
                    details_missing: false,
                },
                1,
            );
        }
    }
    let load = started.elapsed();
    assert_eq!(index.len(), (HOSTS * PER_HOST) as usize);
    let targets: Vec<EventTarget> = (0..LOOKUPS)
        .map(|_| {
            let known = rng.u8(0..10) < 8;
            let host = if known {
                rng.u32(0..HOSTS)
            } else {
                HOSTS + rng.u32(0..HOSTS)
            };
            let mut cves = BTreeSet::new();
            if rng.u8(0..3) == 0 {
                cves.insert(format!("CVE-2024-{:05}", rng.u32(1000..99_999)));
            }
            EventTarget {
                ip: Some(ip(host)),
                host: rng.bool().then(|| format!("host{host}.example.com")),
                port: Some(PORTS[rng.usize(1..PORTS.len())]),
                cves,
            }
        })
        .collect();
    let options = CorrelationOptions::default();
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    let mut matched = 0usize;
    for target in &targets {
        let t = Instant::now();
        let m = correlate(&index, target, &options);
        histogram.record(t.elapsed().as_nanos() as u64).unwrap();
        matched += m.len();
    }
    println!(
        "lookup_1m: {} findings on {} host keys loaded in {:.2?}; {} correlations, {} matches",
        index.len(),
        index.hosts(),
        load,
        LOOKUPS,
        matched
    );
    println!(
        "lookup_1m: p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us  max {:.2} us",
        histogram.value_at_quantile(0.50) as f64 / 1e3,
        histogram.value_at_quantile(0.99) as f64 / 1e3,
        histogram.value_at_quantile(0.999) as f64 / 1e3,
        histogram.max() as f64 / 1e3
    );
}

//! Enrichment-stage benchmark: a MISP-like provider (HTTP + JSON, one request per lookup)
//! against a wiremock endpoint on loopback that answers at once.
//!
//! Measures, through [`ThreatEnricher`]:
//! 1. uncached latency of one event (cache disabled, every enrichment makes a request);
//! 2. cached latency of one event (the indicator is in the cache);
//! 3. events/s with 64 concurrent events, 100 000 events over 1 000 distinct IPs (about 99 %
//!    cache hits once warm, half of the IPs known to the provider).
//!
//! Run: `cargo run --release -p vowguard-enrich --example enrich_bench`
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use hdrhistogram::Histogram;
use serde_json::json;
use vowguard_core::{Category, Enricher, Error, Event, Severity, ThreatIntel, Verdict};
use vowguard_enrich::{
    CacheOptions, Indicator, IndicatorKind, ProviderLimits, ReputationProvider, ThreatEnricher,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers like MISP: a hit for IPs whose last octet is even, no attributes otherwise.
struct MispLike;

impl Respond for MispLike {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let value = body["value"].as_str().unwrap_or_default();
        let last: u32 = value
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(1);
        let attributes = if last & 1 == 0 {
            json!([{"id": "1", "event_id": "7", "to_ids": true, "timestamp": "1617875568",
                    "category": "Network activity", "value": value,
                    "Tag": [{"name": "tlp:amber"}, {"name": "misp-galaxy:threat-actor=\"APT 28\""}]}])
        } else {
            json!([])
        };
        ResponseTemplate::new(200).set_body_json(json!({"response": {"Attribute": attributes}}))
    }
}

#[derive(Debug)]
struct Provider {
    client: reqwest::Client,
    url: String,
    redactor: vowguard_core::Redactor,
}

#[async_trait]
impl ReputationProvider for Provider {
    fn name(&self) -> &'static str {
        "misp"
    }
    fn supports(&self, kind: &IndicatorKind) -> bool {
        *kind == IndicatorKind::Ip
    }
    fn redactor(&self) -> &vowguard_core::Redactor {
        &self.redactor
    }
    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let body = json!({"returnFormat": "json", "value": indicator.value,
                          "type": ["ip-src", "ip-dst"], "includeEventTags": true, "limit": 50});
        let response = self
            .client
            .post(&self.url)
            .header("Authorization", "bench-key")
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::unavailable(e.to_string()))?;
        let value: serde_json::Value = response
            .json()
            .await
            .map_err(|e| Error::rejected(e.to_string()))?;
        let attributes = value["response"]["Attribute"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok((!attributes.is_empty()).then(|| ThreatIntel {
            verdict: Verdict::Malicious,
            score: 90,
            tlp: Some("tlp:amber".into()),
            actors: vec!["APT 28".into()],
            ..ThreatIntel::default()
        }))
    }
}

fn event(ip: u32) -> Event {
    let mut e = Event::new(Category::Authentication, "login.failed", Severity::Medium);
    let [a, b] = [(ip / 250) % 250, ip % 250 + 1];
    e.source_ip = Some(format!("198.51.{a}.{b}").parse().expect("valid IP"));
    e
}

fn enricher(server: &MockServer, cache: CacheOptions) -> Arc<ThreatEnricher<Provider>> {
    let provider = Provider {
        client: reqwest::Client::new(),
        url: format!("{}/attributes/restSearch", server.uri()),
        redactor: vowguard_core::Redactor::new().text("bench-key"),
    };
    Arc::new(ThreatEnricher::new(
        provider,
        cache,
        ProviderLimits::new(2_000, 64, None),
    ))
}

fn report(name: &str, h: &Histogram<u64>) {
    println!(
        "{name}: n={} p50={:.1} µs p99={:.1} µs max={:.1} µs",
        h.len(),
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

async fn latency(e: &ThreatEnricher<Provider>, event: &Event, n: usize) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for _ in 0..n {
        let start = Instant::now();
        e.enrich(event).await.expect("enrichment");
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        h.record(nanos.max(1)).expect("in range");
    }
    h
}

#[tokio::main]
async fn main() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/attributes/restSearch"))
        .respond_with(MispLike)
        .mount(&server)
        .await;

    // 1. uncached: caching disabled, every enrichment is one HTTP lookup.
    let uncached = enricher(&server, CacheOptions::default().with_max_entries(0));
    latency(&uncached, &event(1), 200).await; // warm up connections
    report(
        "uncached enrichment latency (1 event, 1 lookup)",
        &latency(&uncached, &event(1), 2_000).await,
    );

    // 2. cached: the same indicator again.
    let cached = enricher(&server, CacheOptions::default());
    cached.enrich(&event(1)).await.expect("warm");
    latency(&cached, &event(1), 10_000).await;
    report(
        "cached enrichment latency (1 event, cache hit)",
        &latency(&cached, &event(1), 100_000).await,
    );

    // 3. throughput: 100k events over 1000 distinct IPs, 64 at a time.
    const EVENTS: usize = 100_000;
    const DISTINCT: u32 = 1_000;
    const CONCURRENCY: usize = 64;
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/attributes/restSearch"))
        .respond_with(MispLike)
        .mount(&server)
        .await;
    let stage = enricher(&server, CacheOptions::default());
    let events: Arc<Vec<Event>> = Arc::new(
        (0..EVENTS)
            .map(|i| {
                // a fixed pseudo-random spread over the distinct IPs
                let x = (i as u64).wrapping_mul(2_654_435_761) % u64::from(DISTINCT);
                event(u32::try_from(x).unwrap_or(0))
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (stage, events, next) = (stage.clone(), events.clone(), next.clone());
            tokio::spawn(async move {
                let mut malicious = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(event) = events.get(i) else { break };
                    let r = stage.enrich(event).await.expect("enrichment");
                    if r.threat.is_some_and(|t| t.verdict == Verdict::Malicious) {
                        malicious += 1;
                    }
                }
                malicious
            })
        })
        .collect();
    let mut malicious = 0;
    for w in workers {
        malicious += w.await.expect("worker");
    }
    let elapsed = start.elapsed();
    let stats = stage.cache_stats();
    let requests = server.received_requests().await.map_or(0, |r| r.len());
    println!(
        "throughput: {EVENTS} events, {DISTINCT} distinct IPs, {CONCURRENCY} concurrent: {:.0} events/s ({:.2?} total); {malicious} malicious; HTTP lookups {requests}; cache {stats:?}",
        EVENTS as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        elapsed,
    );
}

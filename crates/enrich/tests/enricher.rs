//! ThreatEnricher: indicator selection, merging, ProviderVerdicts, errors, cache use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use vowguard_core::{
    Category, Enricher, Error, ErrorKind, Event, ProviderVerdict, Redactor, Severity, ThreatIntel,
    Verdict,
};
use vowguard_enrich::{
    CacheOptions, Indicator, IndicatorKind, ProviderLimits, ReputationProvider, ThreatEnricher,
};

/// Answers by indicator value; records every lookup.
#[derive(Debug, Default)]
struct Fake {
    answers: HashMap<String, Result<Option<ThreatIntel>, ErrorKind>>,
    calls: Mutex<Vec<Indicator>>,
    ip_only: bool,
    delay: Option<Duration>,
    redactor: Redactor,
}

#[async_trait]
impl ReputationProvider for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn supports(&self, kind: &IndicatorKind) -> bool {
        !self.ip_only || *kind == IndicatorKind::Ip
    }
    fn redactor(&self) -> &Redactor {
        &self.redactor
    }
    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        self.calls.lock().unwrap().push(indicator.clone());
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        match self.answers.get(&indicator.value) {
            Some(Ok(a)) => Ok(a.clone()),
            Some(Err(k)) => Err(Error::new(
                *k,
                format!("lookup of {} failed (key {FAKE_KEY})", indicator.kind),
            )),
            None => Ok(None),
        }
    }
}

/// The fake's API key, which its errors echo the way AbuseIPDB, VirusTotal and OTX do.
const FAKE_KEY: &str = "fake-key-8c1d2e";

fn event() -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::High);
    e.source_ip = Some("203.0.113.7".parse().unwrap());
    e.domain = Some("evil.example".into());
    e
}

fn intel(verdict: Verdict, score: u8, category: &str, day: u32) -> ThreatIntel {
    ThreatIntel {
        verdict,
        score,
        categories: vec![category.into()],
        actors: vec!["APT 28".into()],
        first_seen: Some(Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0).unwrap()),
        last_seen: Some(Utc.with_ymd_and_hms(2024, 2, day, 0, 0, 0).unwrap()),
        ..ThreatIntel::default()
    }
}

fn enricher(fake: Fake) -> ThreatEnricher<Fake> {
    ThreatEnricher::new(
        fake,
        CacheOptions::default(),
        ProviderLimits::new(1000, 4, None),
    )
}

#[tokio::test]
async fn merges_two_indicators_and_records_provider_verdicts() {
    let mut fake = Fake::default();
    fake.answers.insert(
        "203.0.113.7".into(),
        Ok(Some(intel(Verdict::Suspicious, 50, "brute-force", 5))),
    );
    fake.answers.insert(
        "evil.example".into(),
        Ok(Some(intel(Verdict::Malicious, 90, "phishing", 2))),
    );
    let e = enricher(fake);
    assert_eq!(e.kind(), "fake");
    assert_eq!(e.timeout(), Duration::from_millis(1500));
    let threat = e.enrich(&event()).await.unwrap().threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    assert_eq!(threat.score, 90);
    assert_eq!(
        threat.providers,
        vec![
            ProviderVerdict {
                provider: "fake".into(),
                indicator: "203.0.113.7".into(),
                verdict: Verdict::Suspicious,
                score: Some(50),
            },
            ProviderVerdict {
                provider: "fake".into(),
                indicator: "evil.example".into(),
                verdict: Verdict::Malicious,
                score: Some(90),
            },
        ]
    );
    assert_eq!(threat.categories, vec!["brute-force", "phishing"]);
    assert_eq!(threat.actors, vec!["APT 28"]);
    assert_eq!(
        threat.first_seen,
        Some(Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap())
    );
    assert_eq!(
        threat.last_seen,
        Some(Utc.with_ymd_and_hms(2024, 2, 5, 0, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn unknown_is_visible_and_not_benign() {
    let e = enricher(Fake::default());
    let threat = e.enrich(&event()).await.unwrap().threat.unwrap();
    assert_eq!(threat.verdict, Verdict::Unknown);
    assert_eq!(threat.score, 0);
    assert_eq!(threat.providers.len(), 2);
    assert!(
        threat
            .providers
            .iter()
            .all(|p| p.verdict == Verdict::Unknown && p.score.is_none())
    );
}

#[tokio::test]
async fn only_supported_indicators_are_looked_up() {
    let e = enricher(Fake {
        ip_only: true,
        ..Fake::default()
    });
    e.enrich(&event()).await.unwrap();
    assert_eq!(
        *e.provider().calls.lock().unwrap(),
        vec![Indicator::new(IndicatorKind::Ip, "203.0.113.7")]
    );
}

#[tokio::test]
async fn nothing_to_look_up_gives_empty_enrichment() {
    let e = enricher(Fake::default());
    let mut ev = Event::new(Category::Authentication, "login", Severity::High);
    ev.source_ip = Some("10.0.0.1".parse().unwrap());
    assert!(e.enrich(&ev).await.unwrap().is_empty());
    assert!(e.provider().calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn one_failure_keeps_the_other_answer() {
    let mut fake = Fake::default();
    fake.answers
        .insert("203.0.113.7".into(), Err(ErrorKind::RateLimited));
    fake.answers.insert(
        "evil.example".into(),
        Ok(Some(intel(Verdict::Malicious, 80, "c2", 1))),
    );
    let threat = enricher(fake)
        .enrich(&event())
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.verdict, Verdict::Malicious);
    assert_eq!(threat.providers.len(), 1);
}

#[tokio::test]
async fn every_lookup_failing_is_an_error() {
    let mut fake = Fake::default();
    fake.answers
        .insert("203.0.113.7".into(), Err(ErrorKind::Unauthorized));
    fake.answers
        .insert("evil.example".into(), Err(ErrorKind::Unauthorized));
    let err = enricher(fake).enrich(&event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test(start_paused = true)]
async fn slow_provider_times_out() {
    let e = ThreatEnricher::new(
        Fake {
            delay: Some(Duration::from_secs(30)),
            ..Fake::default()
        },
        CacheOptions::default(),
        ProviderLimits::new(200, 4, None),
    );
    let err = e.enrich(&event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn second_event_is_served_from_cache() {
    let mut fake = Fake::default();
    fake.answers.insert(
        "203.0.113.7".into(),
        Ok(Some(intel(Verdict::Malicious, 99, "botnet", 1))),
    );
    let e = enricher(fake);
    let first = e.enrich(&event()).await.unwrap();
    let second = e.enrich(&event()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        e.provider().calls.lock().unwrap().len(),
        2,
        "ip + domain, once each"
    );
    let stats = e.cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.negative_hits), (2, 1, 1));
}

#[tokio::test]
async fn provider_supplied_verdicts_are_kept() {
    let mut answer = intel(Verdict::Suspicious, 40, "scanner", 1);
    answer.providers.push(ProviderVerdict {
        provider: "fake".into(),
        indicator: "203.0.113.7".into(),
        verdict: Verdict::Suspicious,
        score: Some(33),
    });
    let mut fake = Fake {
        ip_only: true,
        ..Fake::default()
    };
    fake.answers.insert("203.0.113.7".into(), Ok(Some(answer)));
    let threat = enricher(fake)
        .enrich(&event())
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.providers.len(), 1);
    assert_eq!(
        threat.score, 33,
        "recomputed with combine() from the provider verdicts"
    );
}

#[tokio::test]
async fn most_restrictive_tlp_is_kept() {
    let mut fake = Fake::default();
    let mut ip = intel(Verdict::Suspicious, 50, "scanner", 1);
    ip.tlp = Some("tlp:green".into());
    let mut domain = intel(Verdict::Suspicious, 50, "scanner", 1);
    domain.tlp = Some("tlp:amber".into());
    fake.answers.insert("203.0.113.7".into(), Ok(Some(ip)));
    fake.answers.insert("evil.example".into(), Ok(Some(domain)));
    let threat = enricher(fake)
        .enrich(&event())
        .await
        .unwrap()
        .threat
        .unwrap();
    assert_eq!(threat.tlp.as_deref(), Some("tlp:amber"));
}

#[tokio::test]
async fn errors_never_carry_the_providers_key() {
    let mut fake = Fake {
        redactor: Redactor::new().text(FAKE_KEY),
        ..Fake::default()
    };
    fake.answers
        .insert("203.0.113.7".into(), Err(ErrorKind::Unauthorized));
    fake.answers
        .insert("evil.example".into(), Err(ErrorKind::Unauthorized));
    let enricher = enricher(fake);
    let error = enricher.enrich(&event()).await.unwrap_err();
    assert!(!error.to_string().contains(FAKE_KEY), "{error}");
    assert!(error.to_string().contains("[redacted]"), "{error}");
    let again = enricher.enrich(&event()).await.unwrap_err();
    assert!(!again.to_string().contains(FAKE_KEY), "{again}");
}

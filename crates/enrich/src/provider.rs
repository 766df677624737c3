//! [`ReputationProvider`] and [`ThreatEnricher`], which turns any provider into an
//! [`Enricher`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use vowguard_core::{
    Enricher, Enrichment, Error, Event, ProviderVerdict, Redactor, ThreatIntel, Verdict,
};

use crate::cache::{CacheOptions, CacheStats, LookupCache};
use crate::combine::{combine, most_restrictive_tlp};
use crate::gate::{ProviderGate, ProviderLimits};
use crate::indicator::{Indicator, IndicatorKind, indicators};

/// The common shape of a reputation provider (MISP, AbuseIPDB, VirusTotal, OTX, Recorded
/// Future, ThreatConnect).
#[async_trait]
pub trait ReputationProvider: Send + Sync + std::fmt::Debug + 'static {
    /// The provider's kind, e.g. `misp`; also the enricher kind.
    fn name(&self) -> &'static str;

    /// Whether the provider can look up indicators of `kind`.
    fn supports(&self, kind: &IndicatorKind) -> bool;

    /// Removes this provider's secrets (its API key) from vendor text. [`ThreatEnricher`]
    /// passes every error of [`Self::lookup`] through it before the error is cached,
    /// logged or returned (it becomes the event's `not_enriched` reason).
    fn redactor(&self) -> &Redactor;

    /// One lookup. `Ok(None)`: the provider does not know the indicator (unknown, NOT
    /// benign). Makes one attempt; timeouts, concurrency and rate are applied around it.
    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error>;
}

/// Turns a [`ReputationProvider`] into an [`Enricher`]: extracts the event's
/// [`indicators`], looks up each supported one concurrently through a [`LookupCache`]
/// and a [`ProviderGate`], merges the answers and recomputes verdict and score with
/// [`combine`]. Of the answers' TLP markings the most restrictive is kept.
///
/// Result: no supported indicator gives an empty [`Enrichment`]; otherwise `threat` is
/// `Some`, with one [`ProviderVerdict`] per indicator looked up (verdict `Unknown` and
/// score 0 when the provider knew none, so "looked up, nothing known" is visible). When
/// some lookups fail the others still count; when every lookup fails, the first error is
/// returned and the pipeline records the event as not enriched by this enricher.
#[derive(Debug)]
pub struct ThreatEnricher<P: ReputationProvider> {
    provider: Arc<P>,
    cache: LookupCache<ThreatIntel>,
    gate: Arc<ProviderGate>,
}

impl<P: ReputationProvider> ThreatEnricher<P> {
    /// An enricher for `provider` with its own cache and gate.
    pub fn new(provider: P, cache: CacheOptions, limits: ProviderLimits) -> Self {
        Self {
            provider: Arc::new(provider),
            cache: LookupCache::new(cache),
            gate: Arc::new(ProviderGate::new(limits)),
        }
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The limits applied to each lookup.
    pub fn limits(&self) -> ProviderLimits {
        self.gate.limits()
    }

    /// Looks up one indicator through the cache and the gate. Errors (the provider's and
    /// the gate's) come back without the provider's secrets.
    pub async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let provider = &self.provider;
        let gate = &self.gate;
        let redactor = provider.redactor();
        self.cache
            .get_or_fetch(&indicator.cache_key(), || async {
                redactor.result(gate.run(|| provider.lookup(indicator)).await)
            })
            .await
    }

    /// Looks up every supported indicator of `event` and combines the answers (see the
    /// type's docs for the result).
    pub async fn enrich_event(&self, event: &Event) -> Result<Enrichment, Error> {
        let wanted: Vec<Indicator> = indicators(event)
            .into_iter()
            .filter(|i| self.provider.supports(&i.kind))
            .collect();
        if wanted.is_empty() {
            return Ok(Enrichment::default());
        }
        let answers = futures::future::join_all(wanted.iter().map(|i| self.lookup(i))).await;
        let name = self.provider.name();
        let mut threat = ThreatIntel::default();
        let mut first_error = None;
        let mut failed = 0usize;
        for (indicator, answer) in wanted.iter().zip(answers) {
            match answer {
                Ok(Some(mut intel)) => {
                    if !intel
                        .providers
                        .iter()
                        .any(|p| p.indicator == indicator.value)
                    {
                        intel.providers.push(ProviderVerdict {
                            provider: name.to_owned(),
                            indicator: indicator.value.clone(),
                            verdict: intel.verdict,
                            score: Some(intel.score),
                        });
                    }
                    let tlp = most_restrictive_tlp(threat.tlp.take(), intel.tlp.take());
                    threat.merge(intel);
                    threat.tlp = tlp;
                }
                Ok(None) => threat.providers.push(ProviderVerdict {
                    provider: name.to_owned(),
                    indicator: indicator.value.clone(),
                    verdict: Verdict::Unknown,
                    score: None,
                }),
                Err(error) => {
                    failed += 1;
                    tracing::debug!(
                        provider = name,
                        indicator = %indicator.kind,
                        error = %error,
                        "threat-intelligence lookup failed"
                    );
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error.filter(|_| failed == wanted.len()) {
            return Err(error);
        }
        let (verdict, score) = combine(&threat.providers);
        threat.verdict = verdict;
        threat.score = score;
        Ok(Enrichment {
            threat: Some(threat),
            ..Enrichment::default()
        })
    }
}

#[async_trait]
impl<P: ReputationProvider> Enricher for ThreatEnricher<P> {
    fn kind(&self) -> &'static str {
        self.provider.name()
    }

    /// The per-lookup timeout plus 500 ms (lookups of one event run concurrently).
    fn timeout(&self) -> Duration {
        self.gate.limits().timeout() + Duration::from_millis(500)
    }

    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error> {
        self.enrich_event(event).await
    }
}

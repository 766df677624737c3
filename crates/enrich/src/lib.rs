//! Shared threat-intelligence machinery for vowguard enrichers (MISP, AbuseIPDB,
//! VirusTotal, OTX, Recorded Future, ThreatConnect).
//!
//! * [`indicators`] extracts an event's observables: `source_ip` (public addresses only;
//!   documentation ranges are kept), `domain`, `url`, `file_hash`, normalised and
//!   de-duplicated.
//! * [`LookupCache`] is a TTL cache on `moka` with negative caching (unknown answers are
//!   kept for a shorter time), no caching of errors, single-flight (concurrent lookups of
//!   one indicator share one request) and a size bound (least recently used evicted).
//! * [`ProviderGate`] applies a provider's [`ProviderLimits`]: a timeout per lookup, a
//!   concurrency limit and an optional rate limit ([`vowguard_core::TokenBucket`]).
//! * [`combine`] turns provider answers into one verdict and score.
//! * [`ThreatEnricher`] turns any [`ReputationProvider`] into a [`vowguard_core::Enricher`].
//! * [`QuotaPause`] remembers a provider's 429 and makes lookups fail fast (`RateLimited`)
//!   until its `Retry-After` has passed (60 s without one, at most 1 h).
//! * [`category_slug`] cleans vendor tags and families into category names.
//! * [`IntelProvider`] is the one provider plumbing every vendor shares: the reqwest
//!   client, the base URL (the builder's or the vendor's default), the API key as a
//!   sensitive header, answers read through [`vowguard_http::Exchange`] (capped at
//!   [`IntelVendor::MAX_RESPONSE_BYTES`], [`DEFAULT_MAX_RESPONSE_BYTES`] unless the vendor
//!   sets one), non-2xx answers classified once ([`answer_error`]), secrets redacted and a
//!   429 pausing lookups ([`QuotaPause`]). A vendor crate implements [`IntelVendor`] (its
//!   request, its error reason, what "unknown" looks like, its parser) and exposes
//!   [`IntelBuilder`] as `<Vendor>::builder()`.
//!
//! # Combining answers
//!
//! Each [`ProviderVerdict`](vowguard_core::ProviderVerdict) is normalised to a score: the
//! provider's own 0..=100 score clamped into its verdict's band (Malicious 75..=100,
//! Suspicious 25..=74, Benign 0..=24), or 75 / 50 / 10 when it gives only a verdict;
//! Unknown answers count 0.
//!
//! * verdict = the worst verdict of any answer (Malicious > Suspicious > Benign > Unknown);
//!   Unknown only when no provider knows the indicator;
//! * score = the highest normalised score.
//!
//! Worked example: MISP says Malicious with score 95, AbuseIPDB Suspicious 40, OTX Benign
//! without a score, VirusTotal Unknown. Normalised: 95, 40, 10, 0. Result: Malicious, 95.
//! AbuseIPDB alone saying Benign with score 60 gives Benign, 24 (clamped into the band).
//!
//! ```
//! use vowguard_core::{ProviderVerdict, Verdict};
//! let answer = |provider: &str, verdict, score| ProviderVerdict {
//!     provider: provider.into(), indicator: "203.0.113.7".into(), verdict, score,
//! };
//! let (verdict, score) = vowguard_enrich::combine(&[
//!     answer("misp", Verdict::Malicious, Some(95)),
//!     answer("abuseipdb", Verdict::Suspicious, Some(40)),
//!     answer("otx", Verdict::Benign, None),
//!     answer("virustotal", Verdict::Unknown, None),
//! ]);
//! assert_eq!((verdict, score), (Verdict::Malicious, 95));
//! ```
//!
//! # Writing a provider
//!
//! Implement [`IntelVendor`] for a type holding the vendor's own settings (one request
//! per lookup, `Ok(None)` for "not known"), and build the enricher with
//! `IntelBuilder::new(vendor).api_key(key).build()?`; register a build function with
//! `vowguard_core::ConnectorFactory::enricher` that converts the serde config into the
//! builder. Config convention: `cache` is a [`CacheOptions`] table, `limits` a
//! [`LimitsConfig`] table whose keys override [`IntelVendor::DEFAULT_LIMITS`]. A source
//! that is not an HTTP API implements [`ReputationProvider`] directly and wraps it in
//! [`ThreatEnricher::new`].
#![forbid(unsafe_code)]

mod cache;
mod combine;
mod gate;
mod indicator;
mod intel;
mod path;
mod provider;
mod quota;
mod text;

pub use cache::{CacheOptions, CacheStats, LookupCache};
pub use combine::{band, combine, default_score, most_restrictive_tlp, normalised_score, tlp_rank};
pub use gate::{LimitsConfig, ProviderGate, ProviderLimits};
pub use indicator::{Indicator, IndicatorKind, indicators, is_lookup_worthy, normalise_hash};
pub use intel::{
    DEFAULT_MAX_RESPONSE_BYTES, IntelApi, IntelBuilder, IntelProvider, IntelVendor, answer_error,
};
pub use path::{encode_segment, indicator_url};
pub use provider::{ReputationProvider, ThreatEnricher};
pub use quota::QuotaPause;
pub use text::{MAX_CATEGORY_LEN, category_slug};

//! Shared threat-intelligence machinery for vowguard enrichers (MISP, AbuseIPDB,
//! VirusTotal, OTX, Recorded Future, ThreatConnect).
//!
//! * [`indicators`] extracts an event's observables: `source_ip` (public addresses only;
//!   documentation ranges are kept), `domain`, `url`, `file_hash`, normalised and
//!   de-duplicated.
//! * [`LookupCache`] is a TTL cache with negative caching (unknown answers are kept for a
//!   shorter time), no caching of errors, single-flight (concurrent lookups of one
//!   indicator share one request) and a size bound.
//! * [`ProviderGate`] applies a provider's [`ProviderLimits`]: a timeout per lookup, a
//!   concurrency limit and an optional rate limit ([`vowguard_core::TokenBucket`]).
//! * [`combine`] turns provider answers into one verdict and score.
//! * [`ThreatEnricher`] turns any [`ReputationProvider`] into a [`vowguard_core::Enricher`].
//! * [`QuotaPause`] remembers a provider's 429 and makes lookups fail fast (`RateLimited`)
//!   until its `Retry-After` has passed (60 s without one, at most 1 h).
//! * [`category_slug`] cleans vendor tags and families into category names.
//! * [`KeyedApi`] is the HTTP side of an API keyed by a request header: the shared reqwest
//!   client, the base URL (config override or the vendor's default) and the key as a
//!   sensitive header; [`KeyedApi::get`] makes one JSON `GET` (its body capped with
//!   [`KeyedApi::with_max_response_bytes`], [`DEFAULT_MAX_RESPONSE_BYTES`] unless set).
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
//! Implement [`ReputationProvider`] (one HTTP attempt per `lookup`, `Ok(None)` for "not
//! known"), then build `ThreatEnricher::new(provider, config.cache, config.limits.resolve(DEFAULTS))`
//! and register it with `vowguard_core::ConnectorFactory::enricher`. Config convention:
//! `cache` is a [`CacheOptions`] table, `limits` a [`LimitsConfig`] table whose keys
//! override the provider's default [`ProviderLimits`].
#![forbid(unsafe_code)]

mod api;
mod cache;
mod combine;
mod gate;
mod indicator;
mod intel;
mod path;
mod provider;
mod quota;
mod text;

pub use api::{ApiResponse, DEFAULT_MAX_RESPONSE_BYTES, KeyedApi};
pub use cache::{CacheOptions, CacheStats, LookupCache};
pub use combine::{band, combine, default_score, most_restrictive_tlp, normalised_score, tlp_rank};
pub use gate::{LimitsConfig, ProviderGate, ProviderLimits};
pub use indicator::{Indicator, IndicatorKind, indicators, is_lookup_worthy, normalise_hash};
pub use intel::{IntelApi, IntelBuilder, IntelProvider, IntelVendor, answer_error};
pub use path::{encode_segment, indicator_url};
pub use provider::{ReputationProvider, ThreatEnricher};
pub use quota::QuotaPause;
pub use text::{MAX_CATEGORY_LEN, category_slug};

//! VirusTotal v3 reputation enricher for vowguard (connector kind `virustotal`, role
//! enricher).
//!
//! Each of an event's indicators is looked up with one request, `x-apikey: <api key>`:
//!
//! | indicator | request |
//! |---|---|
//! | IP address | `GET {base_url}/api/v3/ip_addresses/{ip}` |
//! | domain | `GET {base_url}/api/v3/domains/{domain}` |
//! | URL | `GET {base_url}/api/v3/urls/{url_id}`, `url_id` = unpadded base64url of the URL (`url_id`) |
//! | file hash | `GET {base_url}/api/v3/files/{md5, sha1 or sha256}` |
//!
//! The answer's `data.attributes` become a [`ThreatIntel`](vowguard_core::ThreatIntel)
//! (`parse_object`, a pure function):
//!
//! * verdict from `last_analysis_stats`: 3 or more engines malicious -> malicious; 1 or 2
//!   malicious, or 2 or more suspicious -> suspicious; otherwise benign;
//! * score `min(100, round(25 × (malicious + suspicious / 2)))`, at most 74 unless malicious
//!   (so it lies in the band of the verdict: benign < 25 <= suspicious < 75 <= malicious);
//! * categories: a file's popular threat categories, plus the object's tags when suspicious
//!   or malicious; `first_seen` = `first_submission_date`, `last_seen` =
//!   `last_submission_date` or `last_analysis_date`.
//!
//! **Unknown is not benign**: a 404 `NotFoundError`, or an object no engine has analysed,
//! is "unknown" (`Ok(None)`), cached for the negative TTL.
//!
//! The enricher is a [`vowguard_enrich::ThreatEnricher`]: answers are cached (1 h, unknown
//! 10 min) and lookups are limited by [`DEFAULT_LIMITS`]: 3 s each, 2 at once, and the
//! public API quota of 4 lookups a minute. Lookups beyond the quota wait for it; the
//! pipeline's per-enricher timeout then marks those events "not enriched by virustotal"
//! rather than holding them, which is intended.
//!
//! Build it in code with [`VirusTotal::builder`] (the resolved key passed directly), or
//! from the `[enrichers.<id>]` table with [`VirusTotalConfig::into_builder`]; the plumbing
//! (client, key, answer cap, cache, limits, 429 pause) is
//! [`vowguard_enrich::IntelProvider`]'s.
//!
//! Answers map onto [`vowguard_core::Error`] in one place ([`vowguard_enrich::answer_error`]): 429
//! `QuotaExceededError` is `RateLimited` (with `Retry-After`, or 60 s since the quota is per
//! minute; the provider makes no request until it has passed), 5xx retryable, 401/403
//! `Unauthorized`, other 4xx `Rejected`, with VirusTotal's `code: message`. The API key never
//! appears in `Debug` output or errors.

mod client;
mod config;
mod encode;

use std::sync::Arc;

use vowguard_core::{BuildContext, Enricher, Error};

pub use client::{VirusTotal, VirusTotalBuilder, VirusTotalEnricher, VirusTotalProvider};
pub use config::{DEFAULT_BASE_URL, DEFAULT_LIMITS, VirusTotalConfig};
pub use encode::{MALICIOUS_ENGINES, MAX_CATEGORIES, PROVIDER, SUSPICIOUS_ENGINES};

/// Internals for this crate's tests (the pure request builders and answer parsers); not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::{
        AnalysisStats, Collection, category, error_code, error_reason, is_file_hash, object_url,
        parse_object, url_id, verdict_for,
    };
}

/// The connector kind, as written in `type = "virustotal"`.
pub const KIND: &str = "virustotal";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        KIND,
        "VirusTotal v3: IP, domain, URL and file reputation from the engines' last analysis",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: VirusTotalConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    let enricher = config
        .into_builder(api_key)
        .id(ctx.id)
        .build()
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(enricher))
}

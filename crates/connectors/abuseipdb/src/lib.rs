//! AbuseIPDB reputation enricher for vowguard (connector kind `abuseipdb`, role enricher).
//!
//! For each event with a public `source_ip` (or a `domain` that is an IP address), the
//! enricher asks AbuseIPDB's APIv2:
//!
//! ```text
//! GET {base_url}/api/v2/check?ipAddress=<ip>&maxAgeInDays=90&verbose
//! Key: <api key>
//! Accept: application/json
//! ```
//!
//! and adds a [`ThreatIntel`](vowguard_core::ThreatIntel) to the event's enrichment
//! (`parse_check`, a pure function):
//!
//! * verdict from `abuseConfidenceScore`: `>= 75` malicious, `>= 25` suspicious, below that
//!   benign; the score is the confidence score. AbuseIPDB answers for every public address,
//!   so an address nobody reported (score 0, no reports) is **benign** with score 0, not
//!   unknown; a whitelisted address is benign. A non-public address (`isPublic: false`) is
//!   **unknown** (AbuseIPDB keeps no reports for it);
//! * categories: the report categories (ids 1..=23, e.g. 18 -> `brute-force`, 22 -> `ssh`,
//!   see [`CATEGORIES`]), the most reported first;
//! * `last_seen` = `lastReportedAt`, `first_seen` = the oldest report in the window.
//!
//! Domains, URLs and file hashes are not looked up. The enricher is a
//! [`vowguard_enrich::ThreatEnricher`]: answers are cached (1 h, unknown 10 min), lookups are
//! limited by [`DEFAULT_LIMITS`] (2 s each, 4 at once, 1/s with bursts of 10), and an
//! error marks the event "not enriched by abuseipdb" without delaying it.
//!
//! Build it in code with [`AbuseIpdb::builder`] (the resolved key passed directly), or
//! from the `[enrichers.<id>]` table with [`AbuseIpdbConfig::into_builder`]; the plumbing
//! (client, key, answer cap, cache, limits, 429 pause) is
//! [`vowguard_enrich::IntelProvider`]'s.
//!
//! Answers map onto [`vowguard_core::Error`] in one place ([`vowguard_enrich::answer_error`]): 429 is
//! `RateLimited` with `Retry-After` (and the provider makes no request until it has passed,
//! at most [`vowguard_enrich::QuotaPause::MAX_PAUSE`]), 5xx retryable, 401/403 `Unauthorized`, 422 and other
//! 4xx `Rejected`, with AbuseIPDB's `errors[].detail`. The API key never appears in `Debug`
//! output or errors.

mod client;
mod config;
mod encode;

use std::sync::Arc;

use vowguard_core::{BuildContext, Enricher, Error};

pub use client::{AbuseIpdb, AbuseIpdbBuilder, AbuseIpdbEnricher, AbuseIpdbProvider};
pub use config::{AbuseIpdbConfig, DEFAULT_BASE_URL, DEFAULT_LIMITS};
pub use encode::{
    CATEGORIES, MALICIOUS_SCORE, MAX_AGE_IN_DAYS, MAX_CATEGORIES, PROVIDER, SUSPICIOUS_SCORE,
};

/// Internals for this crate's tests (the pure request builders and answer parsers); not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::{category_name, check_url, error_reason, parse_check, verdict_for};
}

/// The connector kind, as written in `type = "abuseipdb"`.
pub const KIND: &str = "abuseipdb";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        KIND,
        "AbuseIPDB: IP reputation (abuse confidence score, report categories) via APIv2 /check",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: AbuseIpdbConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    let enricher = config
        .into_builder(api_key)
        .id(ctx.id)
        .build()
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(enricher))
}

//! AlienVault OTX reputation enricher for vowguard (connector kind `otx`, role enricher).
//!
//! Each of an event's indicators is looked up with one request,
//! `X-OTX-API-KEY: <api key>`:
//!
//! ```text
//! GET {base_url}/api/v1/indicators/{type}/{value}/general
//! ```
//!
//! with `type` `IPv4` / `IPv6` for addresses, `domain` for a two-label name
//! (`example.org`) and `hostname` for longer ones (`login.example.org`), `url` for URLs (the
//! URL percent-encoded as one path segment) and `file` for MD5 / SHA-1 / SHA-256 hashes.
//!
//! The answer becomes a [`ThreatIntel`](vowguard_core::ThreatIntel) (`parse_general`, a
//! pure function):
//!
//! * `validation` entries (OTX whitelists) -> **benign**, score 0, whatever pulses mention
//!   the indicator;
//! * otherwise by the number of pulses (`pulse_info.count`): none -> **unknown** (not
//!   benign), 1 or 2 -> suspicious, 3 or more -> malicious; score `min(100, 25 × pulses)`;
//! * actors: the pulses' non-empty `adversary` (plus `related` adversaries) -> threat
//!   attribution such as `APT 28`; categories: pulse tags and malware families, most
//!   frequent first; TLP: the most restrictive pulse `TLP` (`tlp:amber`); `first_seen` /
//!   `last_seen`: earliest pulse `created`, latest `modified`.
//!
//! A 404 is unknown too. The enricher is a [`vowguard_enrich::ThreatEnricher`]: answers are
//! cached (1 h, unknown 10 min) and lookups limited by [`DEFAULT_LIMITS`] (3 s each, 4 at
//! once, 10/s with bursts of 20).
//!
//! Build it in code with [`Otx::builder`] (the resolved API key passed directly), or from
//! the `[enrichers.<id>]` table with [`OtxConfig::into_builder`]; the plumbing (client,
//! key, answer cap, cache, limits, 429 pause) is [`vowguard_enrich::IntelProvider`]'s.
//!
//! Answers map onto [`vowguard_core::Error`] in one place ([`vowguard_enrich::answer_error`]): 429
//! `RateLimited` with `Retry-After` (60 s when absent; the provider makes no request until
//! it has passed), 5xx retryable, 401/403 `Unauthorized`, other 4xx `Rejected`, with OTX's
//! `detail`. The API key never appears in `Debug` output or errors.

mod client;
mod config;
mod encode;

use std::sync::Arc;

use vowguard_core::{BuildContext, Enricher, Error};

pub use client::{Otx, OtxBuilder, OtxEnricher, OtxProvider};
pub use config::{DEFAULT_BASE_URL, DEFAULT_LIMITS, OtxConfig};
pub use encode::{MALICIOUS_PULSES, MAX_ACTORS, MAX_CATEGORIES, PROVIDER};

/// Internals for this crate's tests (the pure request builders and answer parsers); not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::{
        OtxType, category, error_reason, general_url, parse_general, verdict_for,
    };
}

/// The connector kind, as written in `type = "otx"`.
pub const KIND: &str = "otx";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        KIND,
        "AlienVault OTX: indicator reputation from pulses (verdict, actors, categories, TLP)",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: OtxConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    let enricher = config
        .into_builder(api_key)
        .id(ctx.id)
        .build()
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(enricher))
}

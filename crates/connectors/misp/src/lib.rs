//! MISP enricher for vowguard (connector kind `misp`, role enricher).
//!
//! For each event, the IP (public addresses only), domain, URL and file hash
//! ([`vowguard_enrich::indicators`]) are looked up concurrently with
//! `POST {url}/attributes/restSearch` (`search_body`: `returnFormat` json, the value, the
//! MISP attribute types for the indicator kind, `includeEventTags`, `limit` 50, and
//! `to_ids: true` with `to_ids_only`), authenticated with `Authorization: <api key>`.
//!
//! The answer's attributes (`parse_attributes`; MISP's string ids and timestamps are
//! accepted) become [`vowguard_core::ThreatIntel`] (`intel_from_attributes`): no
//! attributes is *unknown* (never benign); an attribute flagged `to_ids` is Malicious
//! (score 90, +1 per further event, at most 100); attributes without `to_ids` are Suspicious
//! (50); attributes all tagged with a `benign_tags` tag are Benign (5). Categories come from
//! attribute categories and `misp-galaxy:*` clusters, actors from
//! `misp-galaxy:threat-actor="..."`, TLP is the most restrictive `tlp:*` tag, first/last
//! seen the earliest `first_seen` / latest `last_seen` (or `timestamp`).
//!
//! Build it in code with [`Misp::builder`] (the resolved key passed directly), or from the
//! `[enrichers.<id>]` table with [`MispConfig::into_builder`]; the plumbing (client, key,
//! answer cap, 429 pause) is [`vowguard_enrich::IntelProvider`]'s.
//!
//! Lookups go through [`vowguard_enrich::ThreatEnricher`]: a shared TTL cache with negative
//! caching and single-flight, a per-lookup timeout (default 2000 ms), a concurrency limit
//! (default 8) and an optional rate limit. Answers map onto [`vowguard_core::Error`] in one
//! place: 401/403 unauthorized, 429 rate-limited with `Retry-After`, 5xx unavailable,
//! malformed JSON rejected. With `report_sightings`, each hit is reported back with
//! `POST {url}/sightings/add` in the background; its failure never fails the enrichment.
//! The API key never appears in `Debug` output, logs or errors.

mod client;
mod config;
mod encode;

use std::sync::Arc;

use vowguard_core::{BuildContext, Enricher, Error};

pub use client::{Misp, MispBuilder, MispEnricher, MispProvider};
pub use config::{DEFAULT_LIMITS, MispConfig};
pub use encode::{
    BENIGN_SCORE, MALICIOUS_SCORE, PROVIDER, SEARCH_LIMIT, SIGHTING_SOURCE, SUSPICIOUS_SCORE,
};

/// Internals for this crate's tests (the pure request builders and answer parsers); not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::{
        Attribute, EventInfo, SearchBody, Tag, epoch, galaxy_cluster, intel_from_attributes,
        misp_types, parse_attributes, parse_time, search_body, sighting_body,
    };
    pub use vowguard_enrich::tlp_rank;
}

/// The connector kind, as written in `type = "misp"`.
pub const KIND: &str = "misp";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        KIND,
        "MISP: attribute restSearch lookups of the event's IP, domain, URL and file hash",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: MispConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    let enricher = config
        .into_builder(api_key)
        .id(ctx.id)
        .build()
        .map_err(|e| {
            if e.kind() == vowguard_core::ErrorKind::Config {
                Error::config(format!(
                    "`{}.{}`: {}",
                    ctx.role.section(),
                    ctx.id,
                    e.message()
                ))
            } else {
                e.with_component(ctx.id)
            }
        })?;
    Ok(Arc::new(enricher))
}

//! Recorded Future Connect API v2 enricher for vowguard (connector kind
//! `recorded_future`, role enricher).
//!
//! Each of an event's indicators is looked up with one request, `X-RFToken: <api token>`:
//!
//! ```text
//! GET {base_url}/v2/{ip|domain|hash|url}/{value}?fields=entity,risk,timestamps
//! ```
//!
//! with the value percent-encoded as one path segment (a URL's `/`, `?` and `#` too).
//!
//! The answer becomes a [`ThreatIntel`](vowguard_core::ThreatIntel) (`parse_lookup`, a
//! pure function):
//!
//! * verdict and score from the risk score's band (`verdict_for`): 0 (no risk evidence)
//!   **unknown**, 1-24 (Unusual) benign, 25-64 (Suspicious) suspicious, 65-89 (Malicious)
//!   and 90-99 (Very Malicious) malicious; each band mapped linearly onto vowguard's score
//!   band for the verdict (25-64 -> 25-74, 65-89 -> 75-89, 90-99 -> 90-100);
//! * categories from the evidence rules (`rule_category`): `Current C&C Server` -> `c2`,
//!   `Historical Brute Force` -> `brute-force`, `Tor Node` -> `tor`, ...; other rules by
//!   name; the most critical evidence first, at most [`MAX_CATEGORIES`];
//! * `first_seen` / `last_seen` from `timestamps`.
//!
//! A 404 is unknown too. The enricher is a [`vowguard_enrich::ThreatEnricher`]: answers are
//! cached (1 h, unknown 10 min) and lookups limited by [`DEFAULT_LIMITS`] (3 s each, 4 at
//! once, 10/s with bursts of 20). Bodies are read up to 1 MiB.
//!
//! Build it in code with [`RecordedFuture::builder`] (the resolved token passed directly),
//! or from the `[enrichers.<id>]` table with [`RecordedFutureConfig::into_builder`]; the
//! plumbing (client, token, answer cap, cache, limits, 429 pause) is
//! [`vowguard_enrich::IntelProvider`]'s.
//!
//! Answers map onto [`vowguard_core::Error`] in one place ([`vowguard_enrich::answer_error`]): 429
//! `RateLimited` with `Retry-After` (60 s when absent; the provider makes no request until
//! it has passed), 5xx retryable, 401/403 `Unauthorized`, other 4xx `Rejected`, with Recorded
//! Future's message. The token never appears in `Debug` output or errors.

mod client;
mod config;
mod encode;

use std::sync::Arc;

use vowguard_core::{BuildContext, Enricher, Error};

pub use client::{
    RecordedFuture, RecordedFutureBuilder, RecordedFutureEnricher, RecordedFutureProvider,
};
pub use config::{DEFAULT_BASE_URL, DEFAULT_LIMITS, RecordedFutureConfig};
pub use encode::{FIELDS, MAX_CATEGORIES, PROVIDER};

/// Internals for this crate's tests (the pure request builders and answer parsers); not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::{
        RfType, RiskBand, error_reason, lookup_url, parse_lookup, rule_category, verdict_for,
    };
}

/// The connector kind, as written in `type = "recorded_future"`.
pub const KIND: &str = "recorded_future";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        KIND,
        "Recorded Future Connect API v2: risk score bands and evidence rules for IPs, domains, URLs and hashes",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: RecordedFutureConfig = ctx.parse(table)?;
    let api_token = ctx.secret("api_token", &config.api_token)?;
    let enricher = config
        .into_builder(api_token)
        .id(ctx.id)
        .build()
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(enricher))
}

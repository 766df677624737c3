//! ThreatConnect v3 enricher for vowguard (connector kind `threatconnect`, role enricher).
//!
//! Each of an event's indicators is looked up as a ThreatConnect indicator with one
//! request:
//!
//! ```text
//! GET {base_url}/v3/indicators/{summary}?fields=threatAssess&fields=tags&fields=securityLabels[&owner=...]
//! ```
//!
//! `base_url` defaults to `https://app.threatconnect.com/api`; the summary (an address, a
//! host name, a URL, or a hash in upper case) is one percent-encoded path segment.
//! Requests are authenticated either with an API token (`Authorization: TC-Token <token>`)
//! or signed with the API user's Access ID and Secret Key ([`sign`]): `Timestamp: <unix
//! s>` and `Authorization: TC <access id>:<base64 HMAC-SHA256 of "<path?query>:GET:<timestamp>">`.
//! The Secret Key never leaves the process.
//!
//! The answer becomes a [`ThreatIntel`](vowguard_core::ThreatIntel) (`parse_indicator`,
//! a pure function): the owner's threat rating (0-5 skulls) and confidence (0-100), or
//! ThreatConnect's ThreatAssess rating and confidence when the owner has not rated it, give
//! the verdict; the ThreatAssess score (0-1000) / 10 gives the score (`verdict_for`).
//! Unrated and inactive indicators are unknown, a false-positive flag is benign. Tags
//! become categories, `TLP:` security labels the TLP.
//!
//! A 404 is unknown too. The enricher is a [`vowguard_enrich::ThreatEnricher`]: answers are
//! cached (1 h, unknown 10 min) and lookups limited by [`DEFAULT_LIMITS`] (3 s each, 4 at
//! once, 10/s with bursts of 20). Bodies are read up to 1 MiB.
//!
//! Build it in code with [`ThreatConnect::new`] (resolved [`Credentials`] passed directly)
//! and [`ThreatConnect::into_builder`], or from the `[enrichers.<id>]` table with
//! [`ThreatConnectConfig::into_builder`]; the plumbing (client, answer cap, cache, limits,
//! 429 pause) is [`vowguard_enrich::IntelProvider`]'s.
//!
//! Answers map onto [`vowguard_core::Error`] in one place ([`vowguard_enrich::answer_error`]): 429
//! `RateLimited` with `Retry-After` (60 s when absent; the provider makes no request until
//! it has passed), 5xx retryable, 401/403 `Unauthorized`, other 4xx `Rejected`, with
//! ThreatConnect's `message`. Neither the token nor the Secret Key appears in `Debug`
//! output or errors.

mod client;
mod config;
mod encode;
pub mod sign;

use std::sync::Arc;

use vowguard_core::{BuildContext, Enricher, Error};

pub use client::{
    ThreatConnect, ThreatConnectBuilder, ThreatConnectEnricher, ThreatConnectProvider,
};
pub use config::{
    AuthConfig, AuthError, Credentials, DEFAULT_BASE_URL, DEFAULT_LIMITS, ThreatConnectConfig,
};
pub use encode::{FIELDS, MALICIOUS_RATING, MAX_CATEGORIES, PROVIDER, TRUSTED_CONFIDENCE};

/// Internals for this crate's tests (the pure request builders and answer parsers); not a
/// stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::encode::{error_reason, indicator_url, parse_indicator, summary, verdict_for};
}

/// The connector kind, as written in `type = "threatconnect"`.
pub const KIND: &str = "threatconnect";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        KIND,
        "ThreatConnect v3: indicator threat rating, confidence and ThreatAssess score (HMAC or token auth)",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: ThreatConnectConfig = ctx.parse(table)?;
    let credentials = match config.auth() {
        Ok(config::AuthConfig::Token(token)) => Credentials::Token(ctx.secret("api_token", token)?),
        Ok(config::AuthConfig::Hmac {
            access_id,
            secret_key,
        }) => Credentials::Hmac {
            access_id: access_id.to_owned(),
            secret_key: ctx.secret("secret_key", secret_key)?,
        },
        Err(e) => return Err(ctx.config_error(e.field, e.message)),
    };
    let enricher = config
        .into_builder(credentials)
        .id(ctx.id)
        .build()
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(enricher))
}

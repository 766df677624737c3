//! Wedding context and attack-pattern correlation for vowguard: two enrichers.
//!
//! * **`wedding_context`** ([`WeddingContextEnricher`]): looks the event's `wedding_id` up
//!   through a [`WeddingContextProvider`] (the host's own, or the built-in
//!   [`JsonFileProvider`], [`HttpProvider`] and [`StaticProvider`]) and adds a
//!   [`WeddingContext`](vowguard_core::WeddingContext): date, phase (`planning`, `week_of`,
//!   `day_of`, `post_wedding`), days until, weekend, season, guest and vendor counts, all in
//!   the wedding's own time zone ([`context_at`], a pure function).
//! * **`attack_patterns`** ([`AttackPatternEnricher`]): stateful, windowed rules over the
//!   event stream ([`RULES`]) for the platform's known attack patterns plus failed-login
//!   brute force; a match is added to the event as a
//!   [`PatternMatch`](vowguard_core::PatternMatch) with its confidence and indicators.
//!
//! Both register in the connector registry (`[enrichers.<id>] type = "wedding_context"` /
//! `"attack_patterns"`); the crate README has the config keys and the rules' defaults.

mod config;
mod context;
mod enricher;
mod http;
mod patterns;
mod provider;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use vowguard_core::{BuildContext, Enricher, Error};
use vowguard_http::HttpOptions;

pub use config::{
    AttackPatternsConfig, MAX_WINDOW_SECS, ProviderKind, RuleOverride, WeddingContextConfig,
};
pub use context::{
    ContextOptions, Hemisphere, MAX_WEEK_OF_DAYS, WeddingRecord, context_at, context_with,
    local_date, parse_timezone, phase_for, season_of,
};
pub use enricher::{DEFAULT_TIMEOUT, WEDDING_CONTEXT_KIND, WeddingContextEnricher};
pub use http::{CACHE_MAX_ENTRIES, HttpProvider, HttpProviderOptions, MAX_WEDDING_ID_LEN};
pub use patterns::{ATTACK_PATTERNS_KIND, AttackPatternEnricher, RuleStats, confidence};
pub use provider::{JsonFileProvider, StaticProvider, WeddingContextProvider, parse_records};
pub use rules::{
    BRIDAL_REGISTRY_FRAUD, FAILED_LOGIN_BRUTE_FORCE, Filter, GUEST_LIST_SCRAPING, KeyField,
    MAX_KEY_LEN, Measure, PHOTOGRAPHER_PORTFOLIO_THEFT, RULES, RuleDef, RuleParams,
    VENDOR_CONTACT_HARVESTING, VENUE_BOOKING_SCAMS, WEDDING_DATE_CORRELATION_ATTACKS,
    WEDDING_PLANNING_SOCIAL_ENGINEERING, glob, rule,
};

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        WEDDING_CONTEXT_KIND,
        "Wedding context (phase, days until, season, guests) from a JSON file or the platform API",
        build_wedding_context,
    )
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::enricher(
        ATTACK_PATTERNS_KIND,
        "Attack-pattern correlation: windowed rules for scraping, harvesting, fraud and brute force",
        build_attack_patterns,
    )
}

fn build_wedding_context(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: WeddingContextConfig = ctx.parse(table)?;
    let options = config
        .check()
        .map_err(|(field, message)| ctx.config_error(field, message))?;
    let timeout = config.timeout;
    let provider: Arc<dyn WeddingContextProvider> = match config.provider {
        ProviderKind::File => {
            let path = config
                .path
                .as_ref()
                .ok_or_else(|| ctx.config_error("path", "missing"))?;
            let path = ctx.config_dir.join(path);
            let provider = JsonFileProvider::new(path, config.check_interval)
                .map_err(|e| ctx.config_error("path", e.message()))?;
            Arc::new(provider)
        }
        ProviderKind::Http => {
            let base_url = config
                .base_url
                .clone()
                .ok_or_else(|| ctx.config_error("base_url", "missing"))?;
            let token = config
                .token
                .as_ref()
                .map(|t| ctx.secret("token", t))
                .transpose()?;
            let options = HttpProviderOptions {
                base_url,
                cache_ttl: config.cache_ttl,
                http: HttpOptions::default()
                    .with_timeout(config.timeout)
                    .with_connect_timeout(
                        config.timeout.min(HttpOptions::default().connect_timeout),
                    ),
            };
            let provider = HttpProvider::new(&options, token).map_err(|e| {
                Error::config(format!(
                    "`{}.{}`: {}",
                    ctx.role.section(),
                    ctx.id,
                    e.message()
                ))
            })?;
            Arc::new(provider)
        }
    };
    // The HTTP request has `timeout`; the enrichment gets a little more so a timed-out
    // request reports its own error rather than the pipeline's deadline.
    let enricher = WeddingContextEnricher::new(provider, options)
        .with_timeout(timeout + Duration::from_millis(250));
    Ok(Arc::new(enricher))
}

fn build_attack_patterns(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Enricher>, Error> {
    let config: AttackPatternsConfig = ctx.parse(table)?;
    let rules = config
        .resolve()
        .map_err(|(field, message)| ctx.config_error(&field, message))?;
    Ok(Arc::new(AttackPatternEnricher::from_resolved(
        rules, &config,
    )))
}

//! PagerDuty Events API v2 notifier for vowguard (`type = "pagerduty"`).
//!
//! * [`config`]: the `[notifiers.<id>]` table ([`PagerDutyConfig`]).
//! * [`encode`]: pure functions turning an [`Alert`](vowguard_core::Alert) into the request
//!   body (stable `dedup_key` per alert group, severity by priority, 512 KB cap).
//! * [`notifier`]: [`PagerDutyNotifier`], which posts to `/v2/enqueue` and maps PagerDuty's
//!   answers onto vowguard errors (400 rejected, 429 and 5xx retryable).
//!
//! The crate registers the `pagerduty` notifier kind with the vowguard registry.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

pub mod config;
pub mod encode;
pub mod notifier;

pub use config::{Link, PagerDutyConfig, Region};
pub use encode::{EventTemplate, encode_event};
pub use notifier::PagerDutyNotifier;

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "pagerduty";

fn build(ctx: &BuildContext<'_>, table: toml::Table) -> Result<Arc<dyn Notifier>, Error> {
    let config: PagerDutyConfig = ctx.parse(table)?;
    let routing_key = ctx.secret("routing_key", &config.routing_key)?;
    Ok(Arc::new(PagerDutyNotifier::with_id(
        ctx.id,
        &config,
        routing_key,
    )?))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        KIND,
        "PagerDuty Events API v2: one incident per alert group",
        build
    )
}

//! PagerDuty Events API v2 notifier for vowguard (`type = "pagerduty"`).
//!
//! * [`PagerDutyNotifier::builder`] makes a notifier in code, taking the resolved routing key
//!   directly; [`PagerDutyConfig`] (the `[notifiers.<id>]` table) turns into the same
//!   builder with [`PagerDutyConfig::into_builder`].
//! * [`encode`]: pure functions turning an [`Alert`](vowguard_core::Alert) into the request
//!   body (stable `dedup_key` per alert group, severity by priority, 512 KB cap).
//! * [`PagerDutyNotifier`] posts to `/v2/enqueue` and maps PagerDuty's
//!   answers onto vowguard errors (400 rejected, 429 and 5xx retryable).
//!
//! The crate registers the `pagerduty` notifier kind with the vowguard registry.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

mod builder;
mod config;
pub mod encode;
mod notifier;

pub use builder::PagerDutyNotifierBuilder;
pub use config::{ENQUEUE_PATH, EU_ENDPOINT, Link, PagerDutyConfig, Region, US_ENDPOINT};
pub use encode::{EventTemplate, encode_event};
pub use notifier::{PagerDutyNotifier, ROUTING_KEY_LEN};
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "pagerduty";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Notifier>, Error> {
    let config: PagerDutyConfig = ctx.parse(table)?;
    let routing_key = ctx.secret("routing_key", &config.routing_key)?;
    // The builder's errors already name the full key (`notifiers.<id>.links[0].href`).
    let notifier = config.into_builder(routing_key).id(ctx.id).build()?;
    Ok(Arc::new(notifier))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        KIND,
        "PagerDuty Events API v2: one incident per alert group",
        build
    )
}

//! Microsoft Teams notifier for vowguard (`type = "teams"`).
//!
//! Office 365 connectors (MessageCard) are retired, so alerts go to a Workflows (Power
//! Automate) webhook as a `message` carrying an Adaptive Card 1.4.
//!
//! * [`TeamsNotifier::builder`] makes a notifier in code, taking the resolved webhook URL
//!   directly; [`TeamsConfig`] (the `[notifiers.<id>]` table) turns into the same builder
//!   with [`TeamsConfig::into_builder`].
//! * [`encode`]: pure functions building the card; every event-derived string is
//!   neutralised ([`encode::neutralize`]) so it cannot create links, markup or mentions.
//! * [`TeamsNotifier`] posts the card and maps the answer (200/202 ok,
//!   429 and 5xx retryable, 400/404 permanent). The webhook URL is a secret: only its
//!   origin ever appears in `Debug` output and errors.
//!
//! The crate registers the `teams` notifier kind with the vowguard registry.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

mod builder;
mod config;
pub mod encode;
mod notifier;

pub use builder::TeamsNotifierBuilder;
pub use config::{CardLink, TeamsConfig};
pub use encode::{encode_message, neutralize};
pub use notifier::TeamsNotifier;
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "teams";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Notifier>, Error> {
    let config: TeamsConfig = ctx.parse(table)?;
    let webhook_url = ctx.secret("webhook_url", &config.webhook_url)?;
    // The builder's errors already name the full key (`notifiers.<id>.links[0].url`).
    let notifier = config.into_builder(webhook_url).id(ctx.id).build()?;
    Ok(Arc::new(notifier))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        KIND,
        "Microsoft Teams: Adaptive Cards to a Workflows webhook",
        build
    )
}

//! SMS notifier for vowguard via the Twilio Messages API (`type = "sms"`).
//!
//! * [`SmsNotifier::builder`] makes a notifier in code, taking the resolved auth token
//!   directly; [`SmsConfig`] (the `[notifiers.<id>]` table) turns into the same builder with
//!   [`SmsConfig::into_builder`]. E.164 and SID checks at build name the key at fault.
//! * [`encode`]: pure functions: [`segments`] (GSM-7 / UCS-2 segment counting) and
//!   [`build_message`], which fits an alert (priority, what, which wedding, a short
//!   reference) into at most two segments as one line without control characters.
//! * [`SmsNotifier`] sends one form-encoded `POST .../Messages.json` per
//!   recipient with HTTP Basic auth. It remembers, per alert, which recipients already got
//!   the text, so a retry after a partial failure texts only the others; an opted-out
//!   recipient (Twilio 21610) is never retried.
//!
//! The crate registers the `sms` notifier kind with the vowguard registry.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

mod builder;
mod config;
pub mod encode;
mod notifier;

pub use builder::SmsNotifierBuilder;
pub use config::{DEFAULT_API_BASE_URL, MAX_LINK_BASE_CHARS, Sender, SmsConfig, validate_e164};
pub use encode::{Encoding, MessageOptions, build_message, segments};
pub use notifier::SmsNotifier;
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "sms";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Notifier>, Error> {
    let config: SmsConfig = ctx.parse(table)?;
    let auth_token = ctx.secret("auth_token", &config.auth_token)?;
    let state =
        vowguard_core::SnapshotFile::in_data_dir(ctx.data_dir, &format!("notifier-{}", ctx.id));
    // The builder's errors already name the full key (`notifiers.<id>.to[0]`).
    let notifier = config
        .into_builder(auth_token)
        .state_file(state)
        .id(ctx.id)
        .build()?;
    Ok(Arc::new(notifier))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        KIND,
        "SMS via Twilio: alerts in at most two segments",
        build
    )
}

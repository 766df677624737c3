//! Slack notifier for vowguard (connector kind `slack`, role notifier).
//!
//! An [`Alert`](vowguard_core::Alert) becomes one Block Kit message ([`build_message`], a
//! pure function): a header (`P0_CRITICAL · guest_list.export`), the configured mentions,
//! a section of fields (priority, severity, who, wedding, impact, risk, threat, patterns,
//! route), what happened, why, indicators, and a context line with the event and alert ids.
//! Every event-derived text is escaped for mrkdwn, so an event cannot ping anyone or
//! inject markup; only mentions from the configuration notify.
//!
//! [`SlackNotifier::builder`] makes a notifier in code, taking the resolved secret directly;
//! [`SlackConfig`] (the `[notifiers.<id>]` table) turns into the same builder with
//! [`SlackConfig::into_builder`] once its secret is resolved. Two modes:
//!
//! * **incoming webhook** (`webhook_url`, a secret): `POST` the message to the URL; success
//!   is `200 ok`;
//! * **bot token** (`bot_token` + `channels`): `POST {api_base_url}/chat.postMessage` for
//!   each channel, `Authorization: Bearer <token>`. A retry of the same alert after a
//!   partial failure posts only to the channels still missing it.
//!
//! Answers map onto [`vowguard_core::Error`] in one function: 429 / `ratelimited` are
//! retryable with `Retry-After`, 5xx and Slack's `internal_error` family retryable,
//! token problems unauthorized, everything else rejected with Slack's reason.
//! The webhook URL and the token never appear in `Debug` output or errors.

mod builder;
mod config;
mod encode;
mod notifier;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

pub use builder::SlackNotifierBuilder;
pub use config::{DEFAULT_API_BASE_URL, Mention, Mode, SlackConfig};
pub use encode::{
    MAX_BLOCKS, MAX_FALLBACK_TEXT, MAX_FIELD_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT,
    build_message, clean, escape_mrkdwn, escape_within, text_len,
};
pub use notifier::{DELIVERY_MEMORY, SlackNotifier};
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

/// The connector kind, as written in `type = "slack"`.
pub const KIND: &str = "slack";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        KIND,
        "Slack: Block Kit alerts via incoming webhook or chat.postMessage (bot token)",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Notifier>, Error> {
    let config: SlackConfig = ctx.parse(table)?;
    // The mode is checked before any secret is looked up.
    config.mode_problem().map_err(|p| p.into_error_in(ctx))?;
    let webhook_url = config
        .webhook_url
        .as_ref()
        .map(|url| ctx.secret("webhook_url", url))
        .transpose()?;
    let bot_token = config
        .bot_token
        .as_ref()
        .map(|token| ctx.secret("bot_token", token))
        .transpose()?;
    // Which channels already got each alert is kept across restarts.
    let state =
        vowguard_core::SnapshotFile::in_data_dir(ctx.data_dir, &format!("notifier-{}", ctx.id));
    let notifier = config
        .into_builder(webhook_url, bot_token)
        .state_file(state)
        .id(ctx.id)
        .build()?;
    Ok(Arc::new(notifier))
}

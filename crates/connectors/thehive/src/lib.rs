//! TheHive 5 ticket connector for vowguard (`type = "thehive"` under `[tickets.<id>]`).
//!
//! * [`config`]: the `[tickets.<id>]` table ([`TheHiveConfig`]).
//! * [`encode`]: pure functions from a ticket draft to the alert body (Markdown-escaped
//!   description, tags, observables deduplicated within the alert, severity by priority).
//! * [`TicketIndex`]: the connector's fingerprint → alert map in
//!   `<data_dir>/state/ticket-<id>.json`, and one open at a time per fingerprint.
//! * [`system`]: [`TheHiveTickets`], the [`vowguard_core::TicketSystem`].
//!
//! Idempotency: the alert's `sourceRef` is the incident fingerprint. TheHive refuses a
//! second alert with the same (`type`, `source`, `sourceRef`) with a 400 "already exists";
//! the connector then finds the first one with `POST /api/v1/query` and returns it.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, TicketSystem};

pub mod config;
pub mod encode;
pub mod system;

pub use config::{Pap, TheHiveConfig, Tlp, UpdateMode};
pub use system::TheHiveTickets;
pub use vowguard_core::TicketIndex;

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "thehive";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn TicketSystem>, Error> {
    let config: TheHiveConfig = ctx.parse(table)?;
    let api_key = ctx.secret("api_key", &config.api_key)?;
    let index = TicketIndex::load(ctx.id, ctx.data_dir)?;
    Ok(Arc::new(TheHiveTickets::new(
        ctx.id, &config, api_key, index,
    )?))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::ticketing(
        KIND,
        "TheHive 5: one alert per incident (sourceRef = fingerprint), observables, comments",
        build
    )
}

//! ServiceNow ticket system for vowguard (`type = "servicenow"` under `[tickets.<id>]`).
//!
//! * [`config`]: the `[tickets.<id>]` table ([`ServiceNowConfig`]), Basic or bearer auth.
//! * [`encode`]: pure functions building the Table API bodies (`correlation_id` as the
//!   dedup key, urgency/impact by priority, plain-text fields with `[code]` defused).
//! * [`client`]: [`ServiceNowTickets`], the [`TicketSystem`]:
//!   look up by `correlation_id` before every create, work notes for updates, resolve with
//!   state, close code and close notes (skipped when already closed), `result == null` on
//!   a 2xx treated as an error (a hibernating instance).
//!
//! The crate registers the `servicenow` ticket-system kind with the vowguard registry.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, TicketSystem};

pub mod client;
pub mod config;
pub mod encode;

pub use client::{Credential, ServiceNowTickets};
pub use config::{PriorityMap, ServiceNowAuth, ServiceNowConfig, UrgencyImpact};

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "servicenow";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn TicketSystem>, Error> {
    let config: ServiceNowConfig = ctx.parse(table)?;
    let credential = match &config.auth {
        ServiceNowAuth::Basic { username, password } => Credential::Basic {
            username: username.clone(),
            password: ctx.secret("auth.password", password)?,
        },
        ServiceNowAuth::Bearer { token } => Credential::Bearer(ctx.secret("auth.token", token)?),
    };
    Ok(Arc::new(ServiceNowTickets::with_id(
        ctx.id,
        &config,
        &credential,
    )?))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::ticketing(
        KIND,
        "ServiceNow incidents (Table API), one per correlation_id",
        build
    )
}

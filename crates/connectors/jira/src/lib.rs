//! Jira Cloud ticket system for vowguard (`type = "jira"` under `[tickets.<id>]`).
//!
//! * [`config`]: the `[tickets.<id>]` table ([`JiraConfig`]).
//! * [`adf`]: Atlassian Document Format as typed values (attacker text only ever lands in
//!   a `text` node).
//! * [`encode`]: pure functions building the REST v3 bodies (summary, labels with the
//!   fingerprint label, ADF description with the tasks, comments, JQL).
//! * [`state`]: vowguard's fingerprint → issue-key map, kept in
//!   `<data_dir>/state/ticket-<id>.json`, because Jira Cloud search is eventually
//!   consistent and search-then-create would open duplicates.
//! * [`client`]: [`JiraTickets`], the [`TicketSystem`].
//!
//! The crate registers the `jira` ticket-system kind with the vowguard registry.
#![forbid(unsafe_code)]

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, SnapshotFile, TicketSystem};

pub mod adf;
pub mod client;
pub mod config;
pub mod encode;
pub mod state;

pub use client::JiraTickets;
pub use config::{JiraConfig, PriorityNames, TaskStyle};

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "jira";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn TicketSystem>, Error> {
    let config: JiraConfig = ctx.parse(table)?;
    let token = ctx.secret("api_token", &config.api_token)?;
    let state = SnapshotFile::in_data_dir(ctx.data_dir, &format!("ticket-{}", ctx.id));
    Ok(Arc::new(
        JiraTickets::with_id(ctx.id, &config, &token)?.with_state_file(state)?,
    ))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::ticketing(
        KIND,
        "Jira Cloud issues (REST v3, ADF), one per incident fingerprint",
        build
    )
}

//! The report store of vowguard: a queryable projection of the audit log, the GDPR breach
//! register, and the compliance reports computed from them.
//!
//! The audit log (`vowguard-audit`) is the source of truth. The store keeps, per kind of
//! [`AuditRecord`], the rows a report needs (alerts with their routing decision, notification
//! results, dead letters and replays, per-sink delivery counts and latency histograms,
//! breaches and every change to them, admin actions, incident timelines) and the index of the
//! last audit record it applied. [`Store::apply`] is idempotent by audit index, so the store
//! can be rebuilt from the log ([`Store::rebuild`]) and can catch up after an outage
//! ([`Store::catch_up`]) while the pipeline keeps forwarding.
//!
//! One code path serves both databases (sqlx `Any`): embedded SQLite by default
//! (`<data_dir>/store.db`, the library is bundled, nothing to install) and PostgreSQL when
//! `[store] url` says so. The schema is versioned ([`schema`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), vowguard_core::Error> {
//! use vowguard_store::{Store, report::{ReportKind, ReportParams, ReportFormat}};
//! let store = Store::open_sqlite(std::path::Path::new("var/vowguard/store.db")).await?;
//! let params = ReportParams::parse(ReportKind::Delivery, "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z")?;
//! let report = store.report(&params, None).await?;
//! let html = report.render(ReportFormat::Html)?;
//! # let _ = html; Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod breach;
mod chart;
pub mod config;
pub mod fixture;
mod latency;
mod projection;
pub mod report;
pub mod schema;
pub mod source;
mod store;

pub use breach::{
    AuditBreachLog, Breach, BreachChange, BreachRegister, BreachStatus, BreachStorage,
    BreachUpdate, JsonlAuditBreachLog, MemoryBreachStore, NOTIFICATION_WINDOW,
};
pub use config::{StoreConfig, StoreUrl};
pub use latency::Objective;
pub use source::{AuditSource, JsonlAudit, MemoryAudit};
pub use store::{Backend, CatchUpProgress, RebuildSummary, Store};

pub use vowguard_core::{AuditRecord, CheckpointRef};

/// For the behaviour suites in `vowguard-testkit`: not part of the stable API.
#[doc(hidden)]
pub mod testing {
    use vowguard_core::Error;

    use crate::Store;

    /// Overwrites breach `id`'s stored state with text that is not JSON, as a damaged
    /// database would hold.
    pub async fn corrupt_breach(store: &Store, id: &str) -> Result<(), Error> {
        sqlx::query("UPDATE breaches SET state = $2 WHERE breach_id = $1")
            .bind(id)
            .bind("{\"id\": \"damaged")
            .execute(store.pool())
            .await
            .map_err(|e| store.err("damage a breach", &e))?;
        Ok(())
    }
}

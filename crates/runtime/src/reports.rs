//! The report store as the runtime uses it: opened from `[store]`, fed from the audit log,
//! with the GDPR breach register on top (the `vowguard breach` and `vowguard report`
//! commands and `GET /api/reports/{kind}`).

use std::path::Path;
use std::sync::Arc;

use vowguard_core::{AuditTrail, Error};
use vowguard_store::config::StoreLocation;
use vowguard_store::report::{Report, ReportParams};
use vowguard_store::{AuditSource, BreachRegister, JsonlAudit, Store};

/// The store, the audit log it is projected from, and the breach register.
#[derive(Debug, Clone)]
pub struct Reports {
    /// The store.
    pub store: Store,
    /// Where the store reads audit records from.
    pub source: Arc<dyn AuditSource>,
    /// The register (appends breach changes to the audit log).
    pub register: BreachRegister,
}

/// The interim audit log file under `data_dir`.
///
/// WIRING: until the Merkle audit log (`vowguard-audit`) is configured here, breach changes
/// are appended to this JSON-lines file ([`JsonlAudit`]: durable, not tamper-evident, no
/// checkpoints). Replace `audit_log` with the Merkle log's trail/source.
pub const INTERIM_AUDIT_FILE: &str = "audit-interim.jsonl";

/// Opens the store at `location` over the audit log under `data_dir`; `dpo_contact` is
/// `[store] dpo_contact`.
pub async fn open(
    location: &StoreLocation,
    data_dir: &Path,
    dpo_contact: Option<String>,
) -> Result<Reports, Error> {
    let store = Store::open(location).await?;
    let log = Arc::new(JsonlAudit::new(data_dir.join(INTERIM_AUDIT_FILE)));
    let trail: Arc<dyn AuditTrail> = log.clone();
    let source: Arc<dyn AuditSource> = log;
    let register = BreachRegister::new(store.clone(), trail, source.clone(), dpo_contact);
    Ok(Reports {
        store,
        source,
        register,
    })
}

impl Reports {
    /// Brings the store up to date with the audit log, then computes the report citing the
    /// log's latest checkpoint.
    pub async fn report(&self, params: &ReportParams) -> Result<Report, Error> {
        self.store.catch_up(self.source.as_ref()).await?;
        let checkpoint = self.source.checkpoint().await?;
        self.store.report(params, checkpoint).await
    }
}

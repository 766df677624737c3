//! Qualys VMDR scanner connector for vowguard (connector kind `qualys`, role scanner).
//!
//! [`QualysScanner::sync`] lists host detections with the VM host detection API
//!
//! ```text
//! GET {url}/api/2.0/fo/asset/host/vm/detection/?action=list&output_format=XML
//!     &status=New,Active,Re-Opened,Fixed&truncation_limit=1000&show_results=0&show_igs=0
//!     [&vm_processed_after=2026-11-30T02:00:00Z]
//! Authorization: Basic …            X-Requested-With: vowguard
//! ```
//!
//! and follows the answer's `WARNING/URL` to the next page (only to the same endpoint on the
//! configured origin: the credentials go with it). Each page is parsed by
//! [`parse_detection_page`] (pure, a host with one `DETECTION` or many alike), its QIDs are
//! mapped to CVEs, CVSS and titles through the KnowledgeBase
//! (`POST /api/2.0/fo/knowledge_base/vuln/` `action=list&details=All&ids=…`, parsed by
//! [`parse_knowledge_base`]; entries cached in memory for `kb_cache_ttl`, unknown
//! QIDs too), and the page is handed on. See [`parse`] for the field mapping: `Potential`
//! detections get confidence 0.5, `STATUS` New / Active / Re-Opened / Fixed become open /
//! open / reopened / fixed, ignored or disabled ones accepted.
//!
//! **Quota.** Every answer's `X-RateLimit-*` and `X-Concurrency-Limit-*` headers are kept
//! ([`Quota`]); before the next call the sync waits as they ask (`ToWait-Sec`, or the window
//! when `Remaining` is 0), up to `max_quota_wait`; a longer wait ends the sync with a
//! rate-limit error carrying it. A 409 (concurrency or rate limit exceeded) is a retryable
//! rate limit with the wait Qualys gives; it, 5xx and timeouts are retried by the shared
//! [`vowguard_core::RetryPolicy`] (`retry`). 401/403 are `Unauthorized`, other answers
//! `Rejected` with Qualys' `SIMPLE_RETURN` code and text. Pages are read up to
//! `max_page_bytes` (64 MiB); a bigger one is refused (lower `truncation_limit`). The
//! password never appears in `Debug` output or errors.
//!
//! **A KnowledgeBase that fails does not fail the sync.** When a KnowledgeBase call still
//! fails after the retries (5xx, timeouts, 409 over quota) or answers something
//! unreadable, the detections are handed on all the same (QID, host, port, severity,
//! state, dates), those whose QID has no cached entry with
//! [`Finding::details_missing`](vowguard_core::Finding::details_missing) set and no
//! title, CVEs or CVSS; an expired cached entry is used as it is. No further
//! KnowledgeBase call is made in that sync. Its [`SyncSummary`](vowguard_core::SyncSummary)
//! counts those findings (`details_missing`) and says why (`details_missing_reason`,
//! without credentials), and it returns no checkpoint, so the next sync lists the same
//! detections again, asks the KnowledgeBase for the QIDs it lacks and fills them in.
//!
//! **Incremental sync.** With a `since`, only hosts whose VM data was processed after it
//! are listed (`vm_processed_after`); the checkpoint is Qualys' own `DATETIME` of the first
//! page.

mod client;
mod config;
pub mod parse;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Scanner};

pub use client::{CONCURRENCY_WAIT, MAX_KB_ENTRIES, MAX_PAGES, QualysScanner, QualysStats, Quota};
pub use config::{DEFAULT_STATUSES, QualysConfig};
pub use parse::{
    DetectionPage, KbEntry, POTENTIAL_CONFIDENCE, SimpleReturn, apply_kb, parse_detection_page,
    parse_knowledge_base, parse_simple_return, severity_from_level, state_from_status,
};

/// The connector kind, as written in `type = "qualys"`.
pub const KIND: &str = "qualys";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::scanner(
        KIND,
        "Qualys VMDR: host detections (paged, quota-aware, incremental) with QID to CVE mapping from the KnowledgeBase",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Scanner>, Error> {
    let config: QualysConfig = ctx.parse(table)?;
    let password = ctx.secret("password", &config.password)?;
    let scanner =
        QualysScanner::new(ctx.id, &config, &password).map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(scanner))
}

//! Vulnerability findings for vowguard: where scanner findings are kept and how events are
//! matched against them.
//!
//! * [`FindingStore`]: the findings on disk (embedded SQLite, `<data_dir>/vulns.db`), keyed
//!   by [`Finding::key`](vowguard_core::Finding::key), with each scanner's last sync
//!   (attempt, success, checkpoint, error) so the age of the findings is always visible.
//!   Fixed and accepted findings are retired (deleted); a full sync retires what the
//!   scanner no longer reports.
//! * [`FindingIndex`]: the active (open / reopened) findings in memory, hashed by host
//!   (IP address, FQDN, short host name): a lookup is one hash probe plus a scan of that
//!   host's findings. [`SharedIndex`] wraps it for concurrent readers and one writer.
//! * [`correlate`]: an event's target (destination IP / host / port) and the CVE ids it
//!   mentions, matched against the index into [`VulnerabilityMatch`]es; the
//!   [`VulnCorrelation`] enricher (`vuln_correlation`) runs it per event.
//! * [`VulnService`]: runs the scanners' syncs (on demand and on a schedule, never on the
//!   event path), persists pages as they arrive and keeps the last good findings when a
//!   scanner is down.
//!
//! [`VulnerabilityMatch`]: vowguard_core::VulnerabilityMatch

mod correlate;
mod index;
mod service;
mod store;

pub use correlate::{
    CONFIDENT, CorrelationOptions, EventTarget, MAX_MATCHES, VulnCorrelation, correlate,
    cves_in_event, cves_in_text,
};
pub use index::{FindingIndex, HostKey, SharedIndex};
pub use service::{ScannerEntry, SyncReport, VulnService};
pub use store::{FindingStore, ScannerStatus};

/// The enricher's kind and component id, `vuln_correlation`.
pub const CORRELATION_KIND: &str = "vuln_correlation";

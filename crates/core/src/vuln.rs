//! Vulnerability-scanner findings and the [`Scanner`] role.
//!
//! Every scanner connector (Tenable, Nessus files, Greenbone/OpenVAS, Qualys) normalises
//! what it reports to one [`Finding`] model; the correlation enricher matches events
//! against the open findings of their target host. A match on an event becomes a
//! [`VulnerabilityMatch`](crate::VulnerabilityMatch) in its enrichment.

use std::fmt::Debug;
use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Severity};

/// Where a finding was seen. At least one of the fields is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Asset {
    /// The host's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Fully qualified domain name, lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// Short host name (NetBIOS or the first DNS label), lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The scanner's own asset id (Tenable asset UUID, Qualys host id, Greenbone host id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanner_asset_id: Option<String>,
}

/// Lifecycle of a finding as the scanner reports it. Only `Open` and `Reopened` findings
/// are ever matched against events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingState {
    /// Seen in the latest scan.
    Open,
    /// Fixed once and seen again.
    Reopened,
    /// No longer seen.
    Fixed,
    /// Risk accepted (or marked a false positive) by a person.
    Accepted,
}

impl FindingState {
    /// True for the states correlation matches on (`open`, `reopened`).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::Reopened)
    }
}

/// One vulnerability on one asset and port, as a scanner reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The scanner connector's component id (`[scanners.<id>]`).
    pub scanner: String,
    /// The scanner's id for the check (Nessus plugin id, Greenbone NVT OID, Qualys QID).
    pub plugin_id: String,
    /// The check's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The affected asset.
    pub asset: Asset,
    /// The port; 0 means the whole host.
    pub port: u16,
    /// `tcp`, `udp`, or empty for host-level findings.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// CVE ids, upper case, e.g. `CVE-2024-3400`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// CVSS base score 0.0..=10.0 (the highest version the scanner gave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<f32>,
    /// The CVSS vector string of that score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_vector: Option<String>,
    /// The scanner's severity, mapped to ours.
    pub severity: Severity,
    /// Lifecycle state.
    pub state: FindingState,
    /// When the scanner first saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    /// When the scanner last saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// How sure the scanner is, 0.0..=1.0 (Greenbone QoD / 100; Qualys "potential" 0.5;
    /// confirmed 1.0).
    pub confidence: f32,
    /// The scanner's details of the check (title, CVEs, CVSS) could not be fetched for this
    /// sync (e.g. the Qualys KnowledgeBase was down or over quota): `title`, `cves` and
    /// `cvss` are empty for that reason, not because the check has none. A later sync
    /// fills them in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub details_missing: bool,
}

impl Finding {
    /// The identity of a finding within its scanner: the same check on the same asset and
    /// port is the same finding (a later report replaces an earlier one).
    pub fn key(&self) -> String {
        let asset = self
            .asset
            .scanner_asset_id
            .clone()
            .or_else(|| self.asset.ip.map(|ip| ip.to_string()))
            .or_else(|| self.asset.fqdn.clone())
            .or_else(|| self.asset.hostname.clone())
            .unwrap_or_default();
        format!(
            "{}|{}|{}|{}/{}",
            self.scanner, self.plugin_id, asset, self.port, self.protocol
        )
    }
}

/// What one [`Scanner::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// Findings handed to the page callback.
    pub findings: u64,
    /// Pages (export chunks, API pages) read.
    pub pages: u64,
    /// The point to resume an incremental sync from next time (the scanner's own clock
    /// when it gives one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<DateTime<Utc>>,
    /// Findings handed on without the scanner's details of their check (see
    /// [`Finding::details_missing`]); the sync then returns no `checkpoint`, so the next
    /// incremental sync lists them again and fills the details in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub details_missing: u64,
    /// Why those details are missing (the first failure, without secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_missing_reason: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Receives findings page by page during a sync, so memory stays bounded by a page.
#[async_trait]
pub trait FindingPages: Send {
    /// Takes one page of findings. An error stops the sync.
    async fn page(&mut self, findings: Vec<Finding>) -> Result<(), Error>;
}

/// A vulnerability scanner that can be asked for its findings (`[scanners.*]`).
#[async_trait]
pub trait Scanner: Send + Sync + Debug {
    /// The connector kind, as written in `type = "..."`.
    fn kind(&self) -> &'static str;

    /// Fetches findings changed since `since` (every finding when `None`), handing them to
    /// `out` page by page. Fixed findings are reported with [`FindingState::Fixed`] so the
    /// store can retire them.
    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error>;
}

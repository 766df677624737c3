//! Typed context that enrichers add to an [`Event`](crate::Event).
//!
//! Enrichers run concurrently; each returns an [`Enrichment`] that is merged into the event
//! with [`Enrichment::merge`]. An enricher that fails or runs out of time is recorded in
//! [`Enrichment::not_enriched`] and the event moves on.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Everything enrichers learned about one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Threat intelligence about the event's observables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<ThreatIntel>,
    /// Context about the wedding the event concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wedding: Option<WeddingContext>,
    /// Where the source IP is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<Geo>,
    /// Known attack patterns this event is part of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<PatternMatch>,
    /// Open scanner findings on the event's target host that match it (same host and
    /// port, or host-level), most relevant first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<VulnerabilityMatch>,
    /// Enrichers that did not contribute, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_enriched: Vec<NotEnriched>,
}

impl Enrichment {
    /// True when no enricher added anything.
    pub fn is_empty(&self) -> bool {
        self.threat.is_none()
            && self.wedding.is_none()
            && self.geo.is_none()
            && self.patterns.is_empty()
            && self.vulnerabilities.is_empty()
            && self.not_enriched.is_empty()
    }

    /// Folds another enricher's result into this one. Threat intelligence from several
    /// providers is combined: the worst verdict and highest score win, lists are unioned.
    pub fn merge(&mut self, other: Enrichment) {
        self.threat = match (self.threat.take(), other.threat) {
            (Some(mut a), Some(b)) => {
                a.merge(b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
        if other.wedding.is_some() {
            self.wedding = other.wedding;
        }
        if other.geo.is_some() {
            self.geo = other.geo;
        }
        self.patterns.extend(other.patterns);
        self.vulnerabilities.extend(other.vulnerabilities);
        self.not_enriched.extend(other.not_enriched);
    }
}

/// A threat-intelligence verdict. `Unknown` (no provider knows the indicator) is distinct
/// from `Benign` (a provider knows it and considers it harmless).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No provider knows the indicator.
    #[default]
    Unknown,
    /// Known and considered harmless.
    Benign,
    /// Some signs of abuse.
    Suspicious,
    /// Known bad.
    Malicious,
}

/// Combined threat intelligence about an event's observables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreatIntel {
    /// The worst verdict any provider gave.
    pub verdict: Verdict,
    /// Combined threat score 0..=100.
    pub score: u8,
    /// Each provider's own answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderVerdict>,
    /// Threat categories (e.g. `brute-force`, `botnet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Named threat actors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
    /// The most restrictive Traffic Light Protocol marking seen, e.g. `tlp:amber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<String>,
    /// Earliest sighting known to any provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest sighting known to any provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}

impl ThreatIntel {
    /// Combines another provider's intelligence into this one.
    pub fn merge(&mut self, other: ThreatIntel) {
        self.verdict = self.verdict.max(other.verdict);
        self.score = self.score.max(other.score);
        self.providers.extend(other.providers);
        for c in other.categories {
            if !self.categories.contains(&c) {
                self.categories.push(c);
            }
        }
        for a in other.actors {
            if !self.actors.contains(&a) {
                self.actors.push(a);
            }
        }
        if tlp_rank(other.tlp.as_deref()) > tlp_rank(self.tlp.as_deref()) {
            self.tlp = other.tlp;
        }
        self.first_seen = match (self.first_seen, other.first_seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_seen = match (self.last_seen, other.last_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// How restrictive a Traffic Light Protocol marking is (higher = more restrictive).
fn tlp_rank(tlp: Option<&str>) -> i8 {
    match tlp.map(str::to_ascii_lowercase).as_deref() {
        None => -1,
        Some("tlp:red") => 5,
        Some("tlp:amber+strict") => 4,
        Some("tlp:amber") => 3,
        Some("tlp:green") => 2,
        Some("tlp:clear" | "tlp:white") => 1,
        Some(_) => 0,
    }
}

/// One provider's answer about one indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderVerdict {
    /// The provider (`misp`, `abuseipdb`, ...).
    pub provider: String,
    /// The indicator looked up.
    pub indicator: String,
    /// The provider's verdict.
    pub verdict: Verdict,
    /// The provider's score normalised to 0..=100, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
}

/// Where a wedding is in its life cycle, in the wedding's own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeddingPhase {
    /// More than a week before the wedding.
    Planning,
    /// Within the seven days before the wedding.
    WeekOf,
    /// The wedding day itself.
    DayOf,
    /// After the wedding.
    PostWedding,
}

/// Meteorological season of the wedding date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Season {
    /// March to May (northern hemisphere).
    Spring,
    /// June to August: peak wedding season.
    Summer,
    /// September to November.
    Autumn,
    /// December to February.
    Winter,
}

/// What vowguard knows about the wedding an event concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeddingContext {
    /// The wedding's id.
    pub wedding_id: String,
    /// The wedding date (in its own time zone).
    pub date: NaiveDate,
    /// IANA time zone of the wedding, e.g. `Europe/London`.
    pub timezone: String,
    /// Phase at the time of the event.
    pub phase: WeddingPhase,
    /// Days from the event to the wedding (negative after it).
    pub days_until: i64,
    /// Whether the wedding falls on a Saturday or Sunday.
    pub weekend: bool,
    /// Season of the wedding date.
    pub season: Season,
    /// Number of guests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_count: Option<u32>,
    /// Number of vendors booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_count: Option<u32>,
}

/// Geolocation of the source IP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// City name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Organisation owning the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// A known attack pattern this event matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternMatch {
    /// Pattern name, e.g. `guest_list_scraping`.
    pub pattern: String,
    /// Confidence 0.0..=1.0.
    pub confidence: f32,
    /// The indicators that matched (user ids, IPs, counts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<String>,
}

/// An open vulnerability-scanner finding on the host an event targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityMatch {
    /// The scanner connector's component id (`[scanners.<id>]`).
    pub scanner: String,
    /// The scanner's id for the check (Nessus plugin id, Greenbone NVT OID, Qualys QID).
    pub plugin_id: String,
    /// The finding's title as the scanner names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// CVE ids of the finding, e.g. `CVE-2024-3400`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// CVSS base score (0.0..=10.0), the highest version the scanner gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<f32>,
    /// The scanner's severity.
    pub severity: crate::Severity,
    /// The asset the finding is on, as matched (IP address or host name).
    pub asset: String,
    /// The port of the finding; 0 means the whole host.
    pub port: u16,
    /// `tcp`, `udp` or empty for host-level findings.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// When the scanner first saw the finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    /// Match confidence 0.0..=1.0 (exact port match, scanner confidence, named CVE).
    pub confidence: f32,
    /// True when the event itself names one of [`Self::cves`].
    #[serde(default)]
    pub cve_named: bool,
}

/// An enricher that did not contribute to this event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEnriched {
    /// The enricher's component id.
    pub enricher: String,
    /// Why (timeout, error kind).
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_worst_verdict_and_the_most_restrictive_tlp() {
        let mut a = ThreatIntel {
            verdict: Verdict::Suspicious,
            score: 40,
            tlp: Some("tlp:green".into()),
            ..ThreatIntel::default()
        };
        a.merge(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 90,
            tlp: Some("tlp:amber".into()),
            ..ThreatIntel::default()
        });
        a.merge(ThreatIntel {
            verdict: Verdict::Benign,
            score: 5,
            tlp: Some("tlp:clear".into()),
            ..ThreatIntel::default()
        });
        assert_eq!(
            (a.verdict, a.score, a.tlp.as_deref()),
            (Verdict::Malicious, 90, Some("tlp:amber"))
        );
    }
}

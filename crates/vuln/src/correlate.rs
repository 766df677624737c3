//! Matching an event against the active findings of its target host.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use vowguard_core::{Enricher, Enrichment, Error, Event, Finding, VulnerabilityMatch};

use crate::index::{FindingIndex, HostKey, SharedIndex};

/// Most matches kept per event (most relevant first).
pub const MAX_MATCHES: usize = 10;
/// The confidence from which a match counts as confident (classification raises the
/// priority for a confident match on a high or critical finding).
pub const CONFIDENT: f32 = 0.8;
/// Most CVE ids taken from one event.
const MAX_EVENT_CVES: usize = 32;
/// Most bytes of event text searched for CVE ids.
const MAX_SCAN_BYTES: usize = 64 * 1024;

/// What an event targets, as far as correlation cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTarget {
    /// `destination_ip`.
    pub ip: Option<IpAddr>,
    /// `destination_host`.
    pub host: Option<String>,
    /// `destination_port`.
    pub port: Option<u16>,
    /// CVE ids the event mentions (upper case).
    pub cves: BTreeSet<String>,
}

impl EventTarget {
    /// The target of `event`; `None` when it names no destination host.
    pub fn of(event: &Event) -> Option<Self> {
        if event.destination_ip.is_none() && event.destination_host.is_none() {
            return None;
        }
        Some(Self {
            ip: event.destination_ip,
            host: event.destination_host.clone(),
            port: event.destination_port,
            cves: cves_in_event(event),
        })
    }
}

/// Match weights.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CorrelationOptions {
    /// Confidence of a finding on exactly the attacked port.
    pub same_port: f32,
    /// Confidence of a host-level finding (port 0) when the event names a port.
    pub host_level: f32,
    /// Confidence of any finding on the host when the event names no port.
    pub no_port: f32,
    /// Added when the event names one of the finding's CVEs (capped at 1.0).
    pub cve_boost: f32,
}

impl Default for CorrelationOptions {
    fn default() -> Self {
        Self {
            same_port: 0.9,
            host_level: 0.6,
            no_port: 0.5,
            cve_boost: 0.4,
        }
    }
}

/// Upper-case CVE ids (`CVE-YYYY-NNNN…`) in `text`, at most `limit`, added to `out`.
pub fn cves_in_text(text: &str, out: &mut BTreeSet<String>, limit: usize) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 13 <= bytes.len() && out.len() < limit {
        if bytes[i..i + 4].eq_ignore_ascii_case(b"CVE-")
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        {
            let year = &bytes[i + 4..i + 8];
            if year.iter().all(u8::is_ascii_digit) && bytes[i + 8] == b'-' {
                let digits = bytes[i + 9..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let end = i + 9 + digits;
                let bounded = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
                if (4..=10).contains(&digits) && bounded {
                    out.insert(text[i..end].to_ascii_uppercase());
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
}

/// CVE ids mentioned in the event's message and string attributes (searched to a bounded
/// depth and size: the event is attacker-controlled).
pub fn cves_in_event(event: &Event) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut budget = MAX_SCAN_BYTES;
    let mut scan = |text: &str, out: &mut BTreeSet<String>| {
        let take = text.len().min(budget);
        let take = (0..=take)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        budget -= take;
        cves_in_text(&text[..take], out, MAX_EVENT_CVES);
    };
    if let Some(message) = &event.message {
        scan(message, &mut out);
    }
    fn walk(value: &Value, depth: usize, f: &mut dyn FnMut(&str)) {
        match value {
            Value::String(s) => f(s),
            Value::Array(items) if depth < 4 => items.iter().for_each(|v| walk(v, depth + 1, f)),
            Value::Object(map) if depth < 4 => map.values().for_each(|v| walk(v, depth + 1, f)),
            _ => {}
        }
    }
    for value in event.attributes.values() {
        walk(value, 0, &mut |s| scan(s, &mut out));
    }
    for value in event.labels.values() {
        scan(value, &mut out);
    }
    out
}

fn to_match(
    finding: &Finding,
    asset: String,
    confidence: f32,
    cve_named: bool,
) -> VulnerabilityMatch {
    VulnerabilityMatch {
        scanner: finding.scanner.clone(),
        plugin_id: finding.plugin_id.clone(),
        title: finding.title.clone(),
        cves: finding.cves.clone(),
        cvss: finding.cvss,
        severity: finding.severity,
        asset,
        port: finding.port,
        protocol: finding.protocol.clone(),
        first_seen: finding.first_seen,
        confidence,
        cve_named,
    }
}

/// The active findings in `index` that match `target`, most relevant first (a named CVE,
/// then confidence, then CVSS), at most [`MAX_MATCHES`]:
///
/// * same host and the attacked port: `same_port`;
/// * same host, host-level finding (port 0): `host_level`;
/// * the event names no port: any finding on the host, `no_port`;
/// * a finding on another port matches only when the event names one of its CVEs;
///
/// each times the scanner's own confidence, plus `cve_boost` when the event names one of
/// the finding's CVEs. Fixed and accepted findings are never in the index.
pub fn correlate(
    index: &FindingIndex,
    target: &EventTarget,
    options: &CorrelationOptions,
) -> Vec<VulnerabilityMatch> {
    let mut hosts: Vec<(HostKey, String)> = Vec::with_capacity(2);
    if let Some(ip) = target.ip {
        hosts.push((HostKey::Ip(ip), ip.to_string()));
    }
    if let Some(key) = target.host.as_deref().and_then(HostKey::name)
        && !hosts.iter().any(|(k, _)| *k == key)
    {
        let label = match &key {
            HostKey::Ip(ip) => ip.to_string(),
            HostKey::Name(name) => name.clone(),
        };
        hosts.push((key, label));
    }
    let mut seen: Vec<*const Finding> = Vec::new();
    let mut out = Vec::new();
    for (key, label) in &hosts {
        for finding in index.on_host(key) {
            let ptr: *const Finding = &**finding;
            if seen.contains(&ptr) {
                continue;
            }
            let cve_named = finding.cves.iter().any(|c| target.cves.contains(c));
            let base = match target.port {
                Some(port) if finding.port == port => options.same_port,
                Some(_) if finding.port == 0 => options.host_level,
                Some(_) if cve_named => options.host_level,
                Some(_) => continue,
                None => options.no_port,
            };
            seen.push(ptr);
            let mut confidence = base * finding.confidence.clamp(0.0, 1.0);
            if cve_named {
                confidence += options.cve_boost;
            }
            out.push(to_match(
                finding,
                label.clone(),
                confidence.clamp(0.0, 1.0),
                cve_named,
            ));
        }
    }
    out.sort_by(|a, b| {
        b.cve_named
            .cmp(&a.cve_named)
            .then(b.confidence.total_cmp(&a.confidence))
            .then(b.cvss.unwrap_or(0.0).total_cmp(&a.cvss.unwrap_or(0.0)))
            .then(a.plugin_id.cmp(&b.plugin_id))
    });
    out.truncate(MAX_MATCHES);
    out
}

/// The `vuln_correlation` enricher: matches each event's target against the shared index.
/// It never waits on a scanner or the disk: a lookup is a read lock and a hash probe.
#[derive(Debug, Clone)]
pub struct VulnCorrelation {
    index: SharedIndex,
    options: CorrelationOptions,
}

impl VulnCorrelation {
    /// An enricher reading `index`.
    pub fn new(index: SharedIndex) -> Self {
        Self {
            index,
            options: CorrelationOptions::default(),
        }
    }

    /// Replaces the match weights.
    pub fn with_options(mut self, options: CorrelationOptions) -> Self {
        self.options = options;
        self
    }
}

#[async_trait]
impl Enricher for VulnCorrelation {
    fn kind(&self) -> &'static str {
        crate::CORRELATION_KIND
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(100)
    }

    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error> {
        let Some(target) = EventTarget::of(event) else {
            return Ok(Enrichment::default());
        };
        let vulnerabilities = correlate(&self.index.read(), &target, &self.options);
        Ok(Enrichment {
            vulnerabilities,
            ..Enrichment::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::{Asset, Category, FindingState, Severity};

    fn finding(
        ip: &str,
        plugin: &str,
        port: u16,
        cves: &[&str],
        state: FindingState,
        confidence: f32,
    ) -> Finding {
        Finding {
            scanner: "tio".into(),
            plugin_id: plugin.into(),
            title: Some(format!("plugin {plugin}")),
            asset: Asset {
                ip: Some(ip.parse().unwrap()),
                fqdn: Some("pay.example.com".into()),
                ..Asset::default()
            },
            port,
            protocol: if port == 0 {
                String::new()
            } else {
                "tcp".into()
            },
            cves: cves.iter().map(|c| c.to_string()).collect(),
            cvss: Some(9.8),
            cvss_vector: None,
            severity: Severity::Critical,
            state,
            first_seen: None,
            last_seen: None,
            confidence,
            details_missing: false,
        }
    }

    fn index() -> FindingIndex {
        let mut index = FindingIndex::new();
        index.apply(
            finding(
                "10.0.0.5",
                "443a",
                443,
                &["CVE-2024-3400"],
                FindingState::Open,
                1.0,
            ),
            1,
        );
        index.apply(
            finding(
                "10.0.0.5",
                "host",
                0,
                &["CVE-2023-0001"],
                FindingState::Open,
                1.0,
            ),
            1,
        );
        index.apply(
            finding(
                "10.0.0.5",
                "ssh",
                22,
                &["CVE-2024-6387"],
                FindingState::Reopened,
                1.0,
            ),
            1,
        );
        index.apply(
            finding("10.0.0.5", "potential", 443, &[], FindingState::Open, 0.5),
            1,
        );
        index.apply(
            finding(
                "10.0.0.5",
                "fixed",
                443,
                &["CVE-2020-1"],
                FindingState::Fixed,
                1.0,
            ),
            1,
        );
        index.apply(
            finding(
                "10.0.0.5",
                "accepted",
                443,
                &[],
                FindingState::Accepted,
                1.0,
            ),
            1,
        );
        index
    }

    fn target(ip: &str, port: Option<u16>, cves: &[&str]) -> EventTarget {
        EventTarget {
            ip: Some(ip.parse().unwrap()),
            host: None,
            port,
            cves: cves.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn same_port_and_host_level_match_fixed_and_accepted_never() {
        let m = correlate(
            &index(),
            &target("10.0.0.5", Some(443), &[]),
            &CorrelationOptions::default(),
        );
        let ids: Vec<(&str, f32)> = m
            .iter()
            .map(|m| (m.plugin_id.as_str(), m.confidence))
            .collect();
        assert_eq!(ids, vec![("443a", 0.9), ("host", 0.6), ("potential", 0.45)]);
        assert_eq!(m[0].asset, "10.0.0.5");
        assert!(
            correlate(
                &index(),
                &target("10.0.0.6", Some(443), &[]),
                &CorrelationOptions::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn a_named_cve_boosts_and_reaches_other_ports() {
        let m = correlate(
            &index(),
            &target("10.0.0.5", Some(8443), &["CVE-2024-6387"]),
            &CorrelationOptions::default(),
        );
        assert_eq!(m[0].plugin_id, "ssh");
        assert!(m[0].cve_named);
        assert!((m[0].confidence - 1.0).abs() < 1e-6);
        assert_eq!(m[1].plugin_id, "host");
        let m = correlate(
            &index(),
            &target("10.0.0.5", None, &[]),
            &CorrelationOptions::default(),
        );
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn host_names_match_and_do_not_duplicate() {
        let t = EventTarget {
            ip: Some("10.0.0.5".parse().unwrap()),
            host: Some("PAY.example.com".into()),
            port: Some(22),
            cves: BTreeSet::new(),
        };
        let m = correlate(&index(), &t, &CorrelationOptions::default());
        assert_eq!(m.len(), 2);
        let t = EventTarget { ip: None, ..t };
        let m = correlate(&index(), &t, &CorrelationOptions::default());
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].asset, "pay.example.com");
    }

    #[test]
    fn cve_extraction_is_bounded_and_strict() {
        let mut out = BTreeSet::new();
        cves_in_text(
            "exploit for cve-2024-3400 and CVE-2021-44228, not XCVE-2020-1234 nor CVE-2020-12 nor CVE-2020-12345678901",
            &mut out,
            32,
        );
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec!["CVE-2021-44228", "CVE-2024-3400"]
        );
        let mut event = Event::new(Category::Detection, "ids.alert", Severity::High);
        event.message = Some("Suricata: CVE-2024-3400 attempt".into());
        event.attributes.insert(
            "rule".into(),
            serde_json::json!({"refs": ["cve-2023-0001", 5]}),
        );
        let cves = cves_in_event(&event);
        assert_eq!(cves.len(), 2);
        let mut many = BTreeSet::new();
        cves_in_text(
            &"CVE-2024-1000 ".repeat(10).replace("1000", "1001"),
            &mut many,
            32,
        );
        assert_eq!(many.len(), 1);
        // multi-byte text never panics the cut.
        let mut event = Event::new(Category::Detection, "x", Severity::High);
        event.message = Some("é".repeat(40_000));
        assert!(cves_in_event(&event).is_empty());
    }

    #[tokio::test]
    async fn the_enricher_reads_the_shared_index() {
        let shared = SharedIndex::new();
        let enricher = VulnCorrelation::new(shared.clone());
        let mut event = Event::new(Category::Network, "ids.alert", Severity::High);
        event.destination_ip = Some("10.0.0.5".parse().unwrap());
        event.destination_port = Some(443);
        assert!(
            enricher
                .enrich(&event)
                .await
                .unwrap()
                .vulnerabilities
                .is_empty()
        );
        *shared.write() = index();
        let e = enricher.enrich(&event).await.unwrap();
        assert_eq!(e.vulnerabilities[0].cves, vec!["CVE-2024-3400"]);
        let no_target = Event::new(Category::Network, "x", Severity::High);
        assert!(enricher.enrich(&no_target).await.unwrap().is_empty());
    }
}

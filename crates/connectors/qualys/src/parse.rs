//! Pure parsers of Qualys VMDR answers: the host detection list, the KnowledgeBase vuln
//! list, and the `SIMPLE_RETURN` error document.
//!
//! Host detection list (`HOST_LIST_VM_DETECTION_OUTPUT/RESPONSE`), one [`Finding`] per
//! `HOST_LIST/HOST/DETECTION_LIST/DETECTION`, whether a host has one detection or many:
//!
//! | finding            | from                                                           |
//! |--------------------|----------------------------------------------------------------|
//! | `plugin_id`        | `QID`                                                          |
//! | `asset.scanner_asset_id` | `HOST/ID`                                                |
//! | `asset.ip`         | `HOST/IP`, else `HOST/IPV6`                                     |
//! | `asset.fqdn`, `hostname` | `DNS_DATA/FQDN`, `DNS`, `DNS_DATA/HOSTNAME`, `NETBIOS`, lower case |
//! | `port`, `protocol` | `PORT` and `PROTOCOL` (lower case); no port → 0, the whole host |
//! | `severity`         | `SEVERITY` 5 critical, 4 high, 3 medium, 2 low, 1 info         |
//! | `state`            | `STATUS` New / Active → open, Re-Opened → reopened, Fixed → fixed; `IS_IGNORED` or `IS_DISABLED` = 1 → accepted (unless fixed) |
//! | `confidence`       | `TYPE` Confirmed 1.0, Potential 0.5 ([`POTENTIAL_CONFIDENCE`]); `Info` detections are left out unless asked for |
//! | `first_seen`, `last_seen` | `FIRST_FOUND_DATETIME`, `LAST_FOUND_DATETIME`           |
//! | `cves`, `cvss`, `cvss_vector`, `title` | from the KnowledgeBase entry of the QID ([`apply_kb`]) |
//!
//! The next page is the `WARNING/URL` of the answer ([`DetectionPage::next_url`]); the
//! answer's `DATETIME` is Qualys' clock ([`DetectionPage::datetime`]).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use vowguard_core::{Asset, Error, Finding, FindingState, Severity};
use vowguard_xml::{Limits, XmlEvent, XmlReader};

/// Confidence of a `Potential` detection.
pub const POTENTIAL_CONFIDENCE: f32 = 0.5;

/// One parsed page of the host detection list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectionPage {
    /// The findings, without KnowledgeBase data yet.
    pub findings: Vec<Finding>,
    /// Hosts on the page.
    pub hosts: u64,
    /// Detections left out (`Info` type unless included).
    pub filtered: u64,
    /// Detections skipped because their QID or host could not be read.
    pub skipped: u64,
    /// `WARNING/URL`: where the next page is, when there is one.
    pub next_url: Option<String>,
    /// `RESPONSE/DATETIME`: Qualys' time of the answer.
    pub datetime: Option<DateTime<Utc>>,
}

/// What the KnowledgeBase says about one QID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KbEntry {
    /// `TITLE`.
    pub title: Option<String>,
    /// `CVE_LIST/CVE/ID`, normalised.
    pub cves: Vec<String>,
    /// `CVSS_V3/BASE`, else `CVSS/BASE`.
    pub cvss: Option<f32>,
    /// The `VECTOR_STRING` of that score, when given.
    pub cvss_vector: Option<String>,
}

/// A Qualys `SIMPLE_RETURN` (the shape of every error answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleReturn {
    /// `RESPONSE/CODE`, e.g. `1965`.
    pub code: String,
    /// `RESPONSE/TEXT`.
    pub text: String,
}

#[derive(Debug, Default)]
struct RawHost {
    id: String,
    ip: String,
    ipv6: String,
    dns: String,
    fqdn: String,
    hostname: String,
    netbios: String,
    detections: Vec<RawDetection>,
}

#[derive(Debug, Default)]
struct RawDetection {
    qid: String,
    kind: String,
    severity: String,
    port: String,
    protocol: String,
    status: String,
    first_found: String,
    last_found: String,
    ignored: String,
    disabled: String,
}

/// Limits for one answer held in memory (the whole page is already capped by the client).
fn limits(max_bytes: usize) -> Limits {
    Limits::default().with_max_bytes(max_bytes as u64)
}

/// Parses one host detection list answer. `source` names it in errors; `include_info`
/// keeps `TYPE=Info` detections (information gathered, not vulnerabilities). An answer
/// that is a `SIMPLE_RETURN` is refused with its code and text.
pub fn parse_detection_page(
    bytes: &[u8],
    source: &str,
    scanner: &str,
    include_info: bool,
) -> Result<DetectionPage, Error> {
    let mut reader = XmlReader::new(bytes, source, limits(bytes.len()));
    let mut page = DetectionPage::default();
    let mut root_seen = false;
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) => {
                if !root_seen {
                    root_seen = true;
                    if e.name == "SIMPLE_RETURN" {
                        let ret = read_simple_return(&mut reader)?;
                        return Err(Error::rejected(format!(
                            "{source}: Qualys answered code {}: {}",
                            printable(&ret.code, 16),
                            printable(&ret.text, 300)
                        )));
                    }
                    if e.name != "HOST_LIST_VM_DETECTION_OUTPUT" {
                        return Err(reader.error_at(
                            0,
                            format!(
                                "expected HOST_LIST_VM_DETECTION_OUTPUT, found <{}>",
                                printable(&e.name, 64)
                            ),
                        ));
                    }
                    continue;
                }
                match e.name.as_str() {
                    "HOST" => {
                        page.hosts += 1;
                        let host = read_host(&mut reader)?;
                        host_findings(host, scanner, include_info, &mut page);
                    }
                    "DATETIME" if reader.depth() == 3 => {
                        page.datetime = parse_time(&reader.read_text()?);
                    }
                    "WARNING" => {
                        let warning = read_children(&mut reader, &["URL"])?;
                        if let Some(url) = warning.get("URL").filter(|u| !u.is_empty()) {
                            page.next_url = Some(url.clone());
                        }
                    }
                    "RESPONSE" | "HOST_LIST" => {}
                    _ => reader.skip()?,
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(reader.error_at(0, "no XML element found (empty answer)"));
    }
    Ok(page)
}

fn read_host<R: BufRead>(reader: &mut XmlReader<R>) -> Result<RawHost, Error> {
    let mut host = RawHost::default();
    let depth = reader.depth();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) => match e.name.as_str() {
                "ID" => host.id = reader.read_text()?,
                "IP" => host.ip = reader.read_text()?,
                "IPV6" => host.ipv6 = reader.read_text()?,
                "DNS" => host.dns = reader.read_text()?,
                "NETBIOS" => host.netbios = reader.read_text()?,
                "DNS_DATA" => {
                    let data = read_children(reader, &["HOSTNAME", "FQDN"])?;
                    host.fqdn = data.get("FQDN").cloned().unwrap_or_default();
                    host.hostname = data.get("HOSTNAME").cloned().unwrap_or_default();
                }
                "DETECTION_LIST" => {
                    let list_depth = reader.depth();
                    loop {
                        match reader.next_event()? {
                            XmlEvent::Start(d) if d.name == "DETECTION" => {
                                host.detections.push(read_detection(reader)?);
                            }
                            XmlEvent::Start(_) => reader.skip()?,
                            XmlEvent::End(_) if reader.depth() < list_depth => break,
                            XmlEvent::Eof => return Err(truncated(reader)),
                            _ => {}
                        }
                    }
                }
                _ => reader.skip()?,
            },
            XmlEvent::End(_) if reader.depth() < depth => return Ok(host),
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
}

fn read_detection<R: BufRead>(reader: &mut XmlReader<R>) -> Result<RawDetection, Error> {
    let mut d = RawDetection::default();
    let depth = reader.depth();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) => {
                let slot = match e.name.as_str() {
                    "QID" => &mut d.qid,
                    "TYPE" => &mut d.kind,
                    "SEVERITY" => &mut d.severity,
                    "PORT" => &mut d.port,
                    "PROTOCOL" => &mut d.protocol,
                    "STATUS" => &mut d.status,
                    "FIRST_FOUND_DATETIME" => &mut d.first_found,
                    "LAST_FOUND_DATETIME" => &mut d.last_found,
                    "IS_IGNORED" => &mut d.ignored,
                    "IS_DISABLED" => &mut d.disabled,
                    // RESULTS (scan output), QDS, TIMES_FOUND, ...
                    _ => {
                        reader.skip()?;
                        continue;
                    }
                };
                *slot = reader.read_text()?;
            }
            XmlEvent::End(_) if reader.depth() < depth => return Ok(d),
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
}

/// Reads the current element's children named in `wanted` (text only), skipping others.
fn read_children<R: BufRead>(
    reader: &mut XmlReader<R>,
    wanted: &[&str],
) -> Result<HashMap<String, String>, Error> {
    let mut out = HashMap::new();
    let depth = reader.depth();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) if wanted.contains(&e.name.as_str()) => {
                let text = reader.read_text()?;
                out.insert(e.name, text);
            }
            XmlEvent::Start(_) => reader.skip()?,
            XmlEvent::End(_) if reader.depth() < depth => return Ok(out),
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
}

fn read_simple_return<R: BufRead>(reader: &mut XmlReader<R>) -> Result<SimpleReturn, Error> {
    let mut ret = SimpleReturn::default();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) if e.name == "CODE" => ret.code = reader.read_text()?,
            XmlEvent::Start(e) if e.name == "TEXT" => ret.text = reader.read_text()?,
            XmlEvent::Start(e) if e.name == "RESPONSE" => {}
            XmlEvent::Start(_) => reader.skip()?,
            XmlEvent::Eof => return Ok(ret),
            _ => {}
        }
    }
}

/// Reads a `SIMPLE_RETURN` error document; `None` when `bytes` is not one (or not XML).
pub fn parse_simple_return(bytes: &[u8]) -> Option<SimpleReturn> {
    let mut reader = XmlReader::new(bytes, "answer", limits(bytes.len()));
    match reader.next_event().ok()? {
        XmlEvent::Start(e) if e.name == "SIMPLE_RETURN" => read_simple_return(&mut reader).ok(),
        _ => None,
    }
}

fn truncated<R: BufRead>(reader: &XmlReader<R>) -> Error {
    reader.error_at(reader.position(), "the input ends inside an element")
}

fn host_findings(host: RawHost, scanner: &str, include_info: bool, page: &mut DetectionPage) {
    let Some(asset) = asset(&host) else {
        page.skipped += host.detections.len() as u64;
        return;
    };
    for d in host.detections {
        let qid = d.qid.trim();
        if qid.is_empty() || qid.len() > 12 || !qid.bytes().all(|b| b.is_ascii_digit()) {
            page.skipped += 1;
            continue;
        }
        let confidence = match d.kind.trim().to_ascii_lowercase().as_str() {
            "potential" => POTENTIAL_CONFIDENCE,
            "info" if !include_info => {
                page.filtered += 1;
                continue;
            }
            _ => 1.0,
        };
        let (port, protocol) = match d.port.trim() {
            "" | "0" => (0, String::new()),
            text => match text.parse::<u16>() {
                Ok(port) => {
                    let proto = d.protocol.trim().to_ascii_lowercase();
                    if proto.is_empty()
                        || proto.len() > 16
                        || !proto.chars().all(|c| c.is_ascii_alphanumeric())
                    {
                        page.skipped += 1;
                        continue;
                    }
                    (port, proto)
                }
                Err(_) => {
                    page.skipped += 1;
                    continue;
                }
            },
        };
        let mut state = state_from_status(&d.status);
        if state != FindingState::Fixed && (d.ignored.trim() == "1" || d.disabled.trim() == "1") {
            state = FindingState::Accepted;
        }
        page.findings.push(Finding {
            scanner: scanner.to_owned(),
            plugin_id: qid.to_owned(),
            title: None,
            asset: asset.clone(),
            port,
            protocol,
            cves: Vec::new(),
            cvss: None,
            cvss_vector: None,
            severity: severity_from_level(&d.severity),
            state,
            first_seen: parse_time(&d.first_found),
            last_seen: parse_time(&d.last_found),
            confidence,
            details_missing: false,
        });
    }
}

/// `STATUS` as a [`FindingState`]: `Fixed` → fixed, `Re-Opened` → reopened, anything else
/// (`New`, `Active`) → open.
pub fn state_from_status(status: &str) -> FindingState {
    match status.trim().to_ascii_lowercase().as_str() {
        "fixed" => FindingState::Fixed,
        "re-opened" | "reopened" => FindingState::Reopened,
        _ => FindingState::Open,
    }
}

/// Qualys `SEVERITY` 1..=5 as ours: 5 critical, 4 high, 3 medium, 2 low, 1 (and anything
/// unreadable) info.
pub fn severity_from_level(level: &str) -> Severity {
    match level.trim() {
        "5" => Severity::Critical,
        "4" => Severity::High,
        "3" => Severity::Medium,
        "2" => Severity::Low,
        _ => Severity::Info,
    }
}

fn asset(host: &RawHost) -> Option<Asset> {
    let mut asset = Asset::default();
    let id = host.id.trim();
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        asset.scanner_asset_id = Some(id.to_owned());
    }
    asset.ip = host
        .ip
        .trim()
        .parse::<IpAddr>()
        .ok()
        .or_else(|| host.ipv6.trim().parse::<IpAddr>().ok());
    for name in [&host.fqdn, &host.dns, &host.hostname, &host.netbios] {
        set_name(&mut asset, name.trim());
    }
    (asset.ip.is_some() || asset.fqdn.is_some() || asset.hostname.is_some()).then_some(asset)
}

fn set_name(asset: &mut Asset, name: &str) {
    if name.is_empty()
        || name.len() > 253
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return;
    }
    // `www.example.org.` is `www.example.org`; an empty label (`.a`, `a..b`) is no name.
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return;
    }
    if name.contains('.') {
        if asset.fqdn.is_none() {
            asset.fqdn = Some(name.clone());
        }
        if asset.hostname.is_none() {
            asset.hostname = name.split('.').next().map(str::to_owned);
        }
    } else if asset.hostname.is_none() {
        asset.hostname = Some(name);
    }
}

/// Parses a KnowledgeBase answer (`KNOWLEDGE_BASE_VULN_LIST_OUTPUT/RESPONSE/VULN_LIST/VULN`)
/// into entries by QID.
pub fn parse_knowledge_base(bytes: &[u8], source: &str) -> Result<HashMap<String, KbEntry>, Error> {
    let mut reader = XmlReader::new(bytes, source, limits(bytes.len()));
    let mut out = HashMap::new();
    let mut root_seen = false;
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) => {
                if !root_seen {
                    root_seen = true;
                    if e.name == "SIMPLE_RETURN" {
                        let ret = read_simple_return(&mut reader)?;
                        return Err(Error::rejected(format!(
                            "{source}: Qualys answered code {}: {}",
                            printable(&ret.code, 16),
                            printable(&ret.text, 300)
                        )));
                    }
                    if e.name != "KNOWLEDGE_BASE_VULN_LIST_OUTPUT" {
                        return Err(reader.error_at(
                            0,
                            format!(
                                "expected KNOWLEDGE_BASE_VULN_LIST_OUTPUT, found <{}>",
                                printable(&e.name, 64)
                            ),
                        ));
                    }
                    continue;
                }
                match e.name.as_str() {
                    "VULN" => {
                        if let Some((qid, entry)) = read_vuln(&mut reader)? {
                            out.insert(qid, entry);
                        }
                    }
                    "RESPONSE" | "VULN_LIST" => {}
                    _ => reader.skip()?,
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(reader.error_at(0, "no XML element found (empty answer)"));
    }
    Ok(out)
}

fn read_vuln<R: BufRead>(reader: &mut XmlReader<R>) -> Result<Option<(String, KbEntry)>, Error> {
    let depth = reader.depth();
    let mut qid = String::new();
    let mut entry = KbEntry::default();
    let mut cves = Vec::new();
    let (mut v2, mut v3): (HashMap<String, String>, HashMap<String, String>) = Default::default();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) => match e.name.as_str() {
                "QID" => qid = reader.read_text()?.trim().to_owned(),
                "TITLE" => {
                    let title = reader.read_text()?;
                    entry.title = (!title.is_empty()).then_some(title);
                }
                "CVE_LIST" => {
                    let list_depth = reader.depth();
                    loop {
                        match reader.next_event()? {
                            XmlEvent::Start(c) if c.name == "CVE" => {
                                let cve = read_children(reader, &["ID"])?;
                                cves.extend(cve.get("ID").cloned());
                            }
                            XmlEvent::Start(_) => reader.skip()?,
                            XmlEvent::End(_) if reader.depth() < list_depth => break,
                            XmlEvent::Eof => return Err(truncated(reader)),
                            _ => {}
                        }
                    }
                }
                "CVSS" => v2 = read_children(reader, &["BASE", "VECTOR_STRING"])?,
                "CVSS_V3" => v3 = read_children(reader, &["BASE", "VECTOR_STRING"])?,
                _ => reader.skip()?,
            },
            XmlEvent::End(_) if reader.depth() < depth => break,
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
    if qid.is_empty() || qid.len() > 12 || !qid.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    entry.cves = normalise_cves(&cves);
    for scores in [&v3, &v2] {
        if let Some(score) = scores.get("BASE").and_then(|s| parse_score(s)) {
            entry.cvss = Some(score);
            entry.cvss_vector = scores
                .get("VECTOR_STRING")
                .map(|v| v.trim().to_owned())
                .filter(|v| valid_vector(v));
            break;
        }
    }
    Ok(Some((qid, entry)))
}

/// Fills a finding's title, CVEs and CVSS from its QID's KnowledgeBase entry.
pub fn apply_kb(finding: &mut Finding, entry: &KbEntry) {
    finding.title.clone_from(&entry.title);
    finding.cves.clone_from(&entry.cves);
    finding.cvss = entry.cvss;
    finding.cvss_vector.clone_from(&entry.cvss_vector);
}

fn parse_score(text: &str) -> Option<f32> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=10.0).contains(s) && *s > 0.0)
}

fn valid_vector(vector: &str) -> bool {
    !vector.is_empty()
        && vector.len() <= 200
        && vector.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '(' | ')' | '_' | '-')
        })
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Upper-cased, validated (`CVE-YYYY-NNNN…`), de-duplicated CVE ids, first-seen order.
fn normalise_cves(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in raw {
        let id = id.trim().to_ascii_uppercase();
        let valid = id
            .strip_prefix("CVE-")
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(year, number)| {
                year.len() == 4
                    && year.bytes().all(|b| b.is_ascii_digit())
                    && (4..=12).contains(&number.len())
                    && number.bytes().all(|b| b.is_ascii_digit())
            });
        if valid && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// At most `max` characters with control characters replaced (vendor text in errors).
pub(crate) fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_severity() {
        assert_eq!(state_from_status("New"), FindingState::Open);
        assert_eq!(state_from_status("Active"), FindingState::Open);
        assert_eq!(state_from_status("Re-Opened"), FindingState::Reopened);
        assert_eq!(state_from_status("Fixed"), FindingState::Fixed);
        assert_eq!(severity_from_level("5"), Severity::Critical);
        assert_eq!(severity_from_level("4"), Severity::High);
        assert_eq!(severity_from_level("3"), Severity::Medium);
        assert_eq!(severity_from_level("2"), Severity::Low);
        assert_eq!(severity_from_level("1"), Severity::Info);
        assert_eq!(severity_from_level("x"), Severity::Info);
    }

    #[test]
    fn simple_return() {
        let body = b"<?xml version=\"1.0\"?><SIMPLE_RETURN><RESPONSE><DATETIME>2026-11-30T10:00:00Z</DATETIME><CODE>1965</CODE><TEXT>This API cannot be run again for another 23 minutes.</TEXT></RESPONSE></SIMPLE_RETURN>";
        assert_eq!(
            parse_simple_return(body),
            Some(SimpleReturn {
                code: "1965".into(),
                text: "This API cannot be run again for another 23 minutes.".into()
            })
        );
        assert_eq!(
            parse_simple_return(b"<HOST_LIST_VM_DETECTION_OUTPUT/>"),
            None
        );
        assert_eq!(parse_simple_return(b"not xml"), None);
    }
}

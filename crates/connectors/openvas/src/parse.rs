//! The Greenbone report XML parser: pure, streaming, bounded.
//!
//! Reads what gvmd answers to GMP `get_reports` (`<get_reports_response><report><report>
//! <results><result>…`), `get_results` (`<get_results_response><result>…`) or a report
//! exported from the web UI in the XML format (`<report><report><results>…`). Every
//! `<result>` not nested in another becomes at most one [`Finding`]:
//!
//! | finding            | from                                                               |
//! |--------------------|--------------------------------------------------------------------|
//! | `plugin_id`        | `nvt/@oid`                                                         |
//! | `title`            | `name` (else `nvt/name`)                                           |
//! | `asset.ip`         | the text of `host`; a name there goes to `fqdn`/`hostname`         |
//! | `asset.fqdn`, `hostname` | `host/hostname`, lower case                                  |
//! | `asset.scanner_asset_id` | `host/asset/@asset_id`                                       |
//! | `port`, `protocol` | `port`: `443/tcp` → 443 `tcp`; `general/tcp`, `general/icmp`, `package` → 0 (host level) |
//! | `cves`             | `nvt/refs/ref[@type="cve"]/@id`, and the older `nvt/cve` list      |
//! | `cvss`             | `severity` (else `nvt/cvss_base`), 0 < score ≤ 10                  |
//! | `cvss_vector`      | `nvt/severities/severity/value` (CVSS v3 first), else `cvss_base_vector=` in `nvt/tags` |
//! | `severity`         | from the score: ≥ 9 critical, ≥ 7 high, ≥ 4 medium, > 0 low, 0 info; `threat` when there is no score |
//! | `state`            | `open`; `fixed` when `delta` is `gone`; `accepted` for severity -1 (a false-positive override; score and severity then come from `original_severity`) |
//! | `confidence`       | `qod/value` / 100 (70 when absent, Greenbone's default threshold)  |
//! | `first_seen`       | `creation_time`; `last_seen` = `modification_time` (else creation) |
//!
//! `Log` results (severity 0) are left out unless `include_log`; results below `min_qod`,
//! and debug/error results (severity -2, -3) are left out. A result whose OID, host or port
//! cannot be read is skipped and counted. Anything structurally wrong with the document is
//! refused by [`vowguard_xml::XmlReader`], naming the file and byte position.

use std::io::BufRead;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use vowguard_core::{Asset, Error, Finding, FindingState, Severity};
use vowguard_xml::{Element, Limits, XmlEvent, XmlReader};

/// Skipped results logged one by one per file (a hostile file cannot flood the log).
const MAX_SKIP_WARNINGS: u64 = 10;

/// QoD assumed for a result that gives none (Greenbone's default `min_qod` filter).
pub const DEFAULT_QOD: u8 = 70;

/// What the parser keeps and drops.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// The scanner component id written into every finding.
    pub scanner: String,
    /// Keep `Log` results (severity 0, e.g. "open port found"). Default false.
    pub include_log: bool,
    /// Drop results whose QoD is below this (0..=100). Default 0 (keep all; the QoD becomes
    /// the finding's confidence).
    pub min_qod: u8,
    /// Input limits.
    pub limits: Limits,
}

impl ParseOptions {
    /// Defaults for scanner `scanner`.
    pub fn new(scanner: impl Into<String>) -> Self {
        Self {
            scanner: scanner.into(),
            include_log: false,
            min_qod: 0,
            limits: Limits::default(),
        }
    }
}

/// What one parse saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseSummary {
    /// `<result>` elements read.
    pub results: u64,
    /// Findings handed on.
    pub findings: u64,
    /// Results left out by the options (log level, QoD, debug/error results).
    pub filtered: u64,
    /// Results skipped because their OID, host or port could not be read.
    pub skipped: u64,
}

/// The fields of one `<result>` as written.
#[derive(Debug, Default)]
struct RawResult {
    name: String,
    host: String,
    asset_id: String,
    hostname: String,
    port: Option<String>,
    oid: String,
    nvt_name: String,
    cvss_base: String,
    vector_v3: String,
    vector_v2: String,
    tags: String,
    cves: Vec<String>,
    threat: String,
    severity: String,
    original_severity: String,
    qod: String,
    creation_time: String,
    modification_time: String,
    delta: String,
    /// Byte position of the `<result>` tag, for warnings.
    position: u64,
}

/// Parses a report from `input` (`source` names it in errors), handing each finding to
/// `on_finding`; an error from `on_finding` stops the parse and is returned.
pub fn parse_report<R: BufRead>(
    input: R,
    source: &str,
    options: &ParseOptions,
    on_finding: &mut dyn FnMut(Finding) -> Result<(), Error>,
) -> Result<ParseSummary, Error> {
    parse_document(input, source, options, None, on_finding)
}

/// Checks the root element of a document before its content is read.
pub(crate) type RootCheck<'a> = &'a dyn Fn(&Element, u64) -> Result<(), Error>;

/// Parses one document. With `root_check` (a GMP answer read from a live connection) the
/// root element is checked by it and the parse ends with the root element's end: the
/// connection stays open, so nothing after it is read.
pub(crate) fn parse_document<R: BufRead>(
    input: R,
    source: &str,
    options: &ParseOptions,
    root_check: Option<RootCheck<'_>>,
    on_finding: &mut dyn FnMut(Finding) -> Result<(), Error>,
) -> Result<ParseSummary, Error> {
    let mut reader = XmlReader::new(input, source, options.limits);
    let mut summary = ParseSummary::default();
    let mut saw_root = false;
    loop {
        let position = reader.position();
        match reader.next_event()? {
            XmlEvent::Start(element) => {
                if !saw_root && let Some(check) = root_check {
                    check(&element, position)?;
                }
                saw_root = true;
                if element.name == "result" {
                    summary.results += 1;
                    let raw = read_result(&mut reader, position)?;
                    match convert(raw, options) {
                        Outcome::Finding(finding) => {
                            summary.findings += 1;
                            on_finding(*finding)?;
                        }
                        Outcome::Filtered => summary.filtered += 1,
                        Outcome::Skipped(why, at) => {
                            summary.skipped += 1;
                            // The first few by position; the count is in the summary.
                            if summary.skipped <= MAX_SKIP_WARNINGS {
                                tracing::warn!(
                                    source,
                                    byte = at,
                                    reason = why,
                                    "skipping a Greenbone result"
                                );
                            }
                        }
                    }
                }
            }
            XmlEvent::Eof => break,
            XmlEvent::End(_) if root_check.is_some() && reader.depth() == 0 => break,
            XmlEvent::End(_) | XmlEvent::Text(_) => {}
        }
    }
    if !saw_root {
        return Err(reader.error_at(reader.position(), "no XML element found (empty input)"));
    }
    Ok(summary)
}

/// Parses a whole report held in memory; see [`parse_report`].
pub fn parse_report_slice(
    bytes: &[u8],
    source: &str,
    options: &ParseOptions,
) -> Result<(Vec<Finding>, ParseSummary), Error> {
    let mut findings = Vec::new();
    let summary = parse_report(bytes, source, options, &mut |f| {
        findings.push(f);
        Ok(())
    })?;
    Ok((findings, summary))
}

fn read_result<R: BufRead>(reader: &mut XmlReader<R>, position: u64) -> Result<RawResult, Error> {
    let mut raw = RawResult {
        position,
        ..RawResult::default()
    };
    let depth = reader.depth();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(element) => match element.name.as_str() {
                "name" => raw.name = reader.read_text()?,
                "host" => read_host(reader, &mut raw)?,
                "port" => raw.port = Some(reader.read_text()?),
                "nvt" => {
                    raw.oid = element.attr("oid").unwrap_or_default().trim().to_owned();
                    read_nvt(reader, &mut raw)?;
                }
                "threat" => raw.threat = reader.read_text()?,
                "severity" => raw.severity = reader.read_text()?,
                "original_severity" => raw.original_severity = reader.read_text()?,
                "qod" => {
                    let qod_depth = reader.depth();
                    loop {
                        match reader.next_event()? {
                            XmlEvent::Start(e) if e.name == "value" => {
                                raw.qod = reader.read_text()?;
                            }
                            XmlEvent::Start(_) => reader.skip()?,
                            XmlEvent::End(_) if reader.depth() < qod_depth => break,
                            XmlEvent::Eof => return Err(truncated(reader)),
                            _ => {}
                        }
                    }
                }
                "creation_time" => raw.creation_time = reader.read_text()?,
                "modification_time" => raw.modification_time = reader.read_text()?,
                "delta" => raw.delta = reader.read_text()?,
                // `detection` holds a nested <result>, `notes`/`overrides` their own texts.
                _ => reader.skip()?,
            },
            XmlEvent::End(_) if reader.depth() < depth => return Ok(raw),
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
}

fn truncated<R: BufRead>(reader: &XmlReader<R>) -> Error {
    reader.error_at(reader.position(), "the input ends inside an element")
}

/// `<host>192.0.2.10<asset asset_id="…"/><hostname>web01</hostname></host>`.
fn read_host<R: BufRead>(reader: &mut XmlReader<R>, raw: &mut RawResult) -> Result<(), Error> {
    let depth = reader.depth();
    let mut text = String::new();
    loop {
        match reader.next_event()? {
            // A host is an address or a name: 1 KiB of it is plenty.
            XmlEvent::Text(t) if reader.depth() == depth && text.len() < 1024 => {
                text.push_str(&t);
            }
            XmlEvent::Start(e) if e.name == "asset" => {
                raw.asset_id = e.attr("asset_id").unwrap_or_default().trim().to_owned();
                reader.skip()?;
            }
            XmlEvent::Start(e) if e.name == "hostname" => raw.hostname = reader.read_text()?,
            XmlEvent::Start(_) => reader.skip()?,
            XmlEvent::End(_) if reader.depth() < depth => break,
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
    raw.host = text.trim().to_owned();
    Ok(())
}

fn read_nvt<R: BufRead>(reader: &mut XmlReader<R>, raw: &mut RawResult) -> Result<(), Error> {
    let depth = reader.depth();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) => match e.name.as_str() {
                "name" => raw.nvt_name = reader.read_text()?,
                "cvss_base" => raw.cvss_base = reader.read_text()?,
                "tags" => raw.tags = reader.read_text()?,
                // GMP 7 and older: a comma-separated list, `NOCVE` when there is none.
                "cve" => {
                    let list = reader.read_text()?;
                    raw.cves.extend(list.split([',', ' ']).map(str::to_owned));
                }
                "refs" => {
                    let refs_depth = reader.depth();
                    loop {
                        match reader.next_event()? {
                            XmlEvent::Start(r) => {
                                if r.name == "ref"
                                    && r.attr("type")
                                        .is_some_and(|t| t.eq_ignore_ascii_case("cve"))
                                {
                                    raw.cves.push(r.attr("id").unwrap_or_default().to_owned());
                                }
                                reader.skip()?;
                            }
                            XmlEvent::End(_) if reader.depth() < refs_depth => break,
                            XmlEvent::Eof => return Err(truncated(reader)),
                            _ => {}
                        }
                    }
                }
                "severities" => read_severities(reader, raw)?,
                _ => reader.skip()?,
            },
            XmlEvent::End(_) if reader.depth() < depth => return Ok(()),
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
}

/// `<severities score="9.8"><severity type="cvss_base_v3"><value>CVSS:3.1/…</value>…`.
fn read_severities<R: BufRead>(
    reader: &mut XmlReader<R>,
    raw: &mut RawResult,
) -> Result<(), Error> {
    let depth = reader.depth();
    loop {
        match reader.next_event()? {
            XmlEvent::Start(e) if e.name == "severity" => {
                let kind = e.attr("type").unwrap_or_default().to_ascii_lowercase();
                let inner = reader.depth();
                loop {
                    match reader.next_event()? {
                        XmlEvent::Start(v) if v.name == "value" => {
                            let value = reader.read_text()?;
                            if kind.contains("v3") || value.starts_with("CVSS:3") {
                                raw.vector_v3 = value;
                            } else if kind.contains("v2") || raw.vector_v2.is_empty() {
                                raw.vector_v2 = value;
                            }
                        }
                        XmlEvent::Start(_) => reader.skip()?,
                        XmlEvent::End(_) if reader.depth() < inner => break,
                        XmlEvent::Eof => return Err(truncated(reader)),
                        _ => {}
                    }
                }
            }
            XmlEvent::Start(_) => reader.skip()?,
            XmlEvent::End(_) if reader.depth() < depth => return Ok(()),
            XmlEvent::Eof => return Err(truncated(reader)),
            _ => {}
        }
    }
}

enum Outcome {
    Finding(Box<Finding>),
    Filtered,
    Skipped(&'static str, u64),
}

fn convert(raw: RawResult, options: &ParseOptions) -> Outcome {
    let at = raw.position;
    if raw.oid.is_empty() || raw.oid.len() > 128 || raw.oid.chars().any(char::is_control) {
        return Outcome::Skipped("no NVT OID", at);
    }
    let Some(asset) = asset(&raw) else {
        return Outcome::Skipped("no host", at);
    };
    let (port, protocol) = match raw.port.as_deref() {
        None => (0, String::new()),
        Some(text) => match parse_port(text) {
            Some(p) => p,
            None => return Outcome::Skipped("unreadable port", at),
        },
    };
    let mut score = parse_score(&raw.severity).or_else(|| parse_score(&raw.cvss_base));
    let mut state = if raw.delta.trim().eq_ignore_ascii_case("gone") {
        FindingState::Fixed
    } else {
        FindingState::Open
    };
    let severity = match score {
        // -1: a false-positive override; -2 / -3: debug and error messages of the scan.
        Some(s) if s < 0.0 => {
            if (s + 1.0).abs() < f32::EPSILON {
                // The scanner's own score stays visible on the accepted finding.
                state = FindingState::Accepted;
                score = parse_score(&raw.original_severity)
                    .or_else(|| parse_score(&raw.cvss_base))
                    .filter(|s| (0.0..=10.0).contains(s));
                match score {
                    Some(s) => severity_from_score(s),
                    None => severity_from_threat(&raw.threat).unwrap_or(Severity::Info),
                }
            } else {
                return Outcome::Filtered;
            }
        }
        Some(s) if s > 10.0 => return Outcome::Skipped("severity above 10", at),
        Some(s) => severity_from_score(s),
        None => match severity_from_threat(&raw.threat) {
            Some(s) => s,
            None => return Outcome::Skipped("no severity", at),
        },
    };
    let is_log = severity == Severity::Info && state != FindingState::Accepted;
    if is_log && !options.include_log {
        return Outcome::Filtered;
    }
    let qod = match raw.qod.trim() {
        "" => DEFAULT_QOD,
        text => match text.parse::<u8>() {
            Ok(q) if q <= 100 => q,
            _ => return Outcome::Skipped("unreadable QoD", at),
        },
    };
    if qod < options.min_qod {
        return Outcome::Filtered;
    }
    let cvss = score.filter(|s| *s > 0.0);
    let vector = [&raw.vector_v3, &raw.vector_v2]
        .into_iter()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty() && !v.eq_ignore_ascii_case("none"))
        .or_else(|| tag(&raw.tags, "cvss_base_vector"))
        .filter(|v| cvss.is_some() && valid_vector(v));
    let created = parse_time(&raw.creation_time);
    let modified = parse_time(&raw.modification_time);
    let title = [raw.name.trim(), raw.nvt_name.trim()]
        .into_iter()
        .find(|t| !t.is_empty())
        .map(str::to_owned);
    Outcome::Finding(Box::new(Finding {
        scanner: options.scanner.clone(),
        plugin_id: raw.oid,
        title,
        asset,
        port,
        protocol,
        cves: normalise_cves(&raw.cves),
        cvss,
        cvss_vector: vector,
        severity,
        state,
        first_seen: created,
        last_seen: modified.or(created),
        confidence: confidence_from_qod(qod),
        details_missing: false,
    }))
}

fn asset(raw: &RawResult) -> Option<Asset> {
    let mut asset = Asset::default();
    let host = raw.host.trim();
    match host.parse::<IpAddr>() {
        Ok(ip) => asset.ip = Some(ip),
        Err(_) => set_name(&mut asset, host),
    }
    set_name(&mut asset, raw.hostname.trim());
    let id = raw.asset_id.trim();
    if !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control) {
        asset.scanner_asset_id = Some(id.to_owned());
    }
    (asset.ip.is_some() || asset.fqdn.is_some() || asset.hostname.is_some()).then_some(asset)
}

/// Fills `fqdn` (a dotted name) and `hostname` (its first label, or the undotted name)
/// unless already set. Names with characters no host name has are ignored.
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

/// Reads a Greenbone port field: `443/tcp` → `(443, "tcp")`; `general/tcp`,
/// `general/icmp`, `general/CPE-T`, `package` and an empty field → `(0, "")` (the whole
/// host); the older `www (80/tcp)` form → `(80, "tcp")`. `None` for a number that is not a
/// port (`99999/tcp`, `-1/udp`) or a protocol that is not a word.
pub fn parse_port(text: &str) -> Option<(u16, String)> {
    let mut text = text.trim();
    if let (Some(open), true) = (text.rfind('('), text.ends_with(')')) {
        text = &text[open + 1..text.len() - 1];
    }
    let (number, protocol) = text.split_once('/').unwrap_or((text, ""));
    let number = number.trim();
    let protocol = protocol.trim();
    if number.is_empty()
        || !number.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
    {
        // `general/...`, `package`, `cpe:/...`: host level.
        return Some((0, String::new()));
    }
    let port: u16 = number.parse().ok()?;
    if port == 0 {
        return Some((0, String::new()));
    }
    if protocol.is_empty()
        || protocol.len() > 16
        || !protocol.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some((port, protocol.to_ascii_lowercase()))
}

fn parse_score(text: &str) -> Option<f32> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    text.parse::<f32>().ok().filter(|s| s.is_finite())
}

/// Greenbone's bands on the CVSS score: ≥ 9.0 critical, ≥ 7.0 high, ≥ 4.0 medium,
/// > 0 low, 0 (a `Log` result) info.
pub fn severity_from_score(score: f32) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

fn severity_from_threat(threat: &str) -> Option<Severity> {
    match threat.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" => Some(Severity::High),
        "medium" => Some(Severity::Medium),
        "low" => Some(Severity::Low),
        "log" => Some(Severity::Info),
        _ => None,
    }
}

/// QoD (0..=100) as a confidence (0.0..=1.0).
pub fn confidence_from_qod(qod: u8) -> f32 {
    f32::from(qod.min(100)) / 100.0
}

/// The value of `key=` in an NVT's `tags` (`a=1|cvss_base_vector=AV:N/…|b=2`).
fn tag(tags: &str, key: &str) -> Option<String> {
    tags.split('|').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
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
pub fn normalise_cves(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in raw {
        let id = id.trim().to_ascii_uppercase();
        if is_cve(&id) && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn is_cve(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=12).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("443/tcp"), Some((443, "tcp".into())));
        assert_eq!(parse_port(" 161/UDP "), Some((161, "udp".into())));
        assert_eq!(parse_port("general/tcp"), Some((0, String::new())));
        assert_eq!(parse_port("general/icmp"), Some((0, String::new())));
        assert_eq!(parse_port("general/CPE-T"), Some((0, String::new())));
        assert_eq!(parse_port("package"), Some((0, String::new())));
        assert_eq!(parse_port(""), Some((0, String::new())));
        assert_eq!(parse_port("www (80/tcp)"), Some((80, "tcp".into())));
        assert_eq!(parse_port("0/tcp"), Some((0, String::new())));
        assert_eq!(parse_port("99999/tcp"), None);
        assert_eq!(parse_port("-1/tcp"), None);
        assert_eq!(parse_port("80/"), None);
        assert_eq!(parse_port("80/t\ncp"), None);
    }

    #[test]
    fn severity_bands() {
        assert_eq!(severity_from_score(10.0), Severity::Critical);
        assert_eq!(severity_from_score(9.0), Severity::Critical);
        assert_eq!(severity_from_score(8.9), Severity::High);
        assert_eq!(severity_from_score(7.0), Severity::High);
        assert_eq!(severity_from_score(6.9), Severity::Medium);
        assert_eq!(severity_from_score(4.0), Severity::Medium);
        assert_eq!(severity_from_score(3.9), Severity::Low);
        assert_eq!(severity_from_score(0.1), Severity::Low);
        assert_eq!(severity_from_score(0.0), Severity::Info);
    }

    #[test]
    fn qod_is_confidence() {
        assert!((confidence_from_qod(70) - 0.7).abs() < 1e-6);
        assert!((confidence_from_qod(100) - 1.0).abs() < 1e-6);
        assert!((confidence_from_qod(0)).abs() < 1e-6);
    }

    #[test]
    fn cves_are_normalised() {
        let raw = [
            "cve-2021-44228",
            "NOCVE",
            "CVE-2021-44228",
            " CVE-2014-0160 ",
            "CVE-21-1",
            "CVE-2024-3400x",
        ]
        .map(String::from);
        assert_eq!(normalise_cves(&raw), ["CVE-2021-44228", "CVE-2014-0160"]);
    }

    #[test]
    fn host_names() {
        let named = |name: &str| {
            let mut a = Asset::default();
            set_name(&mut a, name);
            (a.fqdn, a.hostname)
        };
        assert_eq!(
            named("WWW.Example.org."),
            (Some("www.example.org".into()), Some("www".into()))
        );
        assert_eq!(named("Bastion"), (None, Some("bastion".into())));
        assert_eq!(named(".a"), (None, None));
        assert_eq!(named("a..b"), (None, None));
        assert_eq!(named("."), (None, None));
        assert_eq!(named("a b"), (None, None));
        assert_eq!(named("a\nb"), (None, None));
    }

    #[test]
    fn tags_vector() {
        assert_eq!(
            tag(
                "summary=x|cvss_base_vector=AV:N/AC:L/Au:N/C:P/I:P/A:P|solution_type=VendorFix",
                "cvss_base_vector"
            ),
            Some("AV:N/AC:L/Au:N/C:P/I:P/A:P".into())
        );
        assert_eq!(tag("summary=x", "cvss_base_vector"), None);
    }
}

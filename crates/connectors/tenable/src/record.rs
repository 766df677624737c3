//! One Tenable export record (a vulnerability on an asset) to one [`Finding`].
//!
//! The export format varies between API versions and samples: `asset.ipv4` and
//! `asset.fqdn` are strings or arrays, `cvss3_vector` a string or an object with `raw`,
//! `state` in any case, `severity` a name or only `severity_id`. Everything here is
//! tolerant of those shapes and strict about identity: a record without a plugin id or
//! without any asset identity is refused.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use vowguard_core::{Asset, Finding, FindingState, Severity};

/// Maps Tenable's severity (`info|low|medium|high|critical`, or `severity_id` 0..=4).
pub fn severity_from_tenable(name: Option<&str>, id: Option<u64>) -> Severity {
    match name.map(str::to_ascii_lowercase).as_deref() {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("medium") => Severity::Medium,
        Some("low") => Severity::Low,
        Some("info") => Severity::Info,
        _ => match id {
            Some(4) => Severity::Critical,
            Some(3) => Severity::High,
            Some(2) => Severity::Medium,
            Some(1) => Severity::Low,
            _ => Severity::Info,
        },
    }
}

/// Maps `state` (`OPEN|REOPENED|FIXED`, any case) and `severity_modification_type`
/// (`ACCEPTED` means risk accepted) onto a [`FindingState`]. An unknown state is open.
pub fn state_from_tenable(state: Option<&str>, modification: Option<&str>) -> FindingState {
    let state = match state.map(str::to_ascii_uppercase).as_deref() {
        Some("FIXED") => FindingState::Fixed,
        Some("REOPENED") => FindingState::Reopened,
        _ => FindingState::Open,
    };
    if state != FindingState::Fixed
        && modification.is_some_and(|m| m.eq_ignore_ascii_case("ACCEPTED"))
    {
        return FindingState::Accepted;
    }
    state
}

/// The first string of a field that is a string or an array of strings.
fn first_str(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim()),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .find(|s| !s.is_empty()),
        _ => None,
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn vector(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Object(o) => o.get("raw").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A CVE id upper-cased, or `None` when it is not one (`CVE-<year>-<digits>`).
pub(crate) fn normalise_cve(text: &str) -> Option<String> {
    let cve = text.trim().to_ascii_uppercase();
    let rest = cve.strip_prefix("CVE-")?;
    let (year, number) = rest.split_once('-')?;
    (year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.len() <= 10
        && number.bytes().all(|b| b.is_ascii_digit()))
    .then_some(cve)
}

/// Lower case, trimmed, a trailing dot removed; `None` when empty.
pub(crate) fn host_name(text: &str) -> Option<String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Turns one export record into a [`Finding`] of scanner `scanner`. The error says what
/// is missing (it never quotes the record).
pub fn parse_record(scanner: &str, record: &Value) -> Result<Finding, String> {
    let asset_v = record.get("asset");
    let plugin = record.get("plugin");
    let port_v = record.get("port");
    let ip = first_str(asset_v.and_then(|a| a.get("ipv4")))
        .or_else(|| first_str(asset_v.and_then(|a| a.get("ipv6"))))
        .and_then(|s| s.parse::<IpAddr>().ok());
    let fqdn = first_str(asset_v.and_then(|a| a.get("fqdn"))).and_then(host_name);
    let hostname = first_str(asset_v.and_then(|a| a.get("hostname")))
        .or_else(|| first_str(asset_v.and_then(|a| a.get("netbios_name"))))
        .and_then(host_name);
    let asset = Asset {
        ip,
        fqdn,
        hostname,
        scanner_asset_id: first_str(asset_v.and_then(|a| a.get("uuid"))).map(str::to_owned),
    };
    if asset == Asset::default() {
        return Err("record has no asset identity (uuid, ipv4, ipv6, fqdn, hostname)".into());
    }
    let plugin_id = id_string(plugin.and_then(|p| p.get("id")))
        .ok_or_else(|| "record has no plugin.id".to_owned())?;
    let port = number(port_v.and_then(|p| p.get("port")))
        .filter(|p| (0.0..=65535.0).contains(p))
        .map_or(0, |p| p as u16);
    let protocol = if port == 0 {
        String::new()
    } else {
        port_v
            .and_then(|p| p.get("protocol"))
            .and_then(Value::as_str)
            .map(|p| p.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "tcp".into())
    };
    let mut cves: Vec<String> = plugin
        .and_then(|p| p.get("cve"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(normalise_cve)
        .collect();
    cves.sort();
    cves.dedup();
    let cvss3 = number(plugin.and_then(|p| p.get("cvss3_base_score")));
    let cvss2 = number(plugin.and_then(|p| p.get("cvss_base_score")));
    let (cvss, cvss_vector) = match (cvss3, cvss2) {
        (Some(score), _) => (
            Some(score),
            vector(plugin.and_then(|p| p.get("cvss3_vector"))),
        ),
        (None, Some(score)) => (
            Some(score),
            vector(plugin.and_then(|p| p.get("cvss_vector"))),
        ),
        (None, None) => (None, None),
    };
    let cvss = cvss.filter(|s| (0.0..=10.0).contains(s)).map(|s| s as f32);
    let severity = severity_from_tenable(
        record.get("severity").and_then(Value::as_str),
        record.get("severity_id").and_then(Value::as_u64),
    );
    let state = state_from_tenable(
        record.get("state").and_then(Value::as_str),
        record
            .get("severity_modification_type")
            .and_then(Value::as_str),
    );
    Ok(Finding {
        scanner: scanner.to_owned(),
        plugin_id,
        title: plugin
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        asset,
        port,
        protocol,
        cves,
        cvss,
        cvss_vector,
        severity,
        state,
        first_seen: time(record.get("first_found")),
        last_seen: time(record.get("last_found")),
        confidence: 1.0,
        details_missing: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_record() {
        let r = json!({
            "asset": {"uuid": "a-1", "ipv4": "10.0.0.5", "fqdn": ["WWW.Example.com."],
                      "hostname": "www", "operating_system": ["Linux"]},
            "plugin": {"id": 19506, "name": "OpenSSL RCE", "cve": ["cve-2024-1234", "CVE-2023-0001", "bogus"],
                       "cvss_base_score": 7.5, "cvss3_base_score": 9.8,
                       "cvss3_vector": {"raw": "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
            "port": {"port": 443, "protocol": "TCP", "service": "www"},
            "severity": "critical", "severity_id": 4, "state": "Reopened",
            "severity_modification_type": "NONE",
            "first_found": "2026-01-02T03:04:05Z", "last_found": "2026-02-01T00:00:00.000Z"
        });
        let f = parse_record("tio", &r).unwrap();
        assert_eq!(f.asset.ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(f.asset.fqdn.as_deref(), Some("www.example.com"));
        assert_eq!(f.asset.scanner_asset_id.as_deref(), Some("a-1"));
        assert_eq!(f.plugin_id, "19506");
        assert_eq!((f.port, f.protocol.as_str()), (443, "tcp"));
        assert_eq!(f.cves, vec!["CVE-2023-0001", "CVE-2024-1234"]);
        assert_eq!(f.cvss, Some(9.8));
        assert_eq!(
            f.cvss_vector.as_deref(),
            Some("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
        );
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.state, FindingState::Reopened);
        assert_eq!(f.key(), "tio|19506|a-1|443/tcp");
        assert!(f.first_seen.unwrap() < f.last_seen.unwrap());
    }

    #[test]
    fn host_level_accepted_fixed_and_missing_identity() {
        let r = json!({"asset": {"ipv4": ["10.0.0.9"]}, "plugin": {"id": "1"},
                       "port": {"port": 0, "protocol": "TCP"}, "severity_id": 3,
                       "state": "open", "severity_modification_type": "ACCEPTED"});
        let f = parse_record("t", &r).unwrap();
        assert_eq!((f.port, f.protocol.as_str()), (0, ""));
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.state, FindingState::Accepted);
        assert_eq!(
            state_from_tenable(Some("fixed"), Some("ACCEPTED")),
            FindingState::Fixed
        );
        assert!(parse_record("t", &json!({"plugin": {"id": 1}})).is_err());
        assert!(parse_record("t", &json!({"asset": {"ipv4": "10.0.0.1"}})).is_err());
        assert!(parse_record("t", &json!("nope")).is_err());
    }

    #[test]
    fn cve_normalisation() {
        assert_eq!(
            normalise_cve(" cve-2021-44228 ").as_deref(),
            Some("CVE-2021-44228")
        );
        assert_eq!(normalise_cve("CVE-21-44228"), None);
        assert_eq!(normalise_cve("CVE-2021-12"), None);
        assert_eq!(normalise_cve("CVE-2021-4422a"), None);
    }
}

//! The one sentence every channel shows for a vulnerability match.

use vowguard_core::VulnerabilityMatch;

/// Most CVE ids named in the sentence; the rest are counted.
const MAX_CVES: usize = 3;

/// Scanner text without control characters, at most `max` characters.
fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// `target has CVE-2024-3400 (CVSS 9.8) open on 443/tcp since 2026-01-02`: the CVE ids
/// (the plugin's title when it has none), the CVSS score, the port (`on the host` for a
/// host-level finding) and when the scanner first saw it.
pub fn describe(v: &VulnerabilityMatch) -> String {
    let what = if v.cves.is_empty() {
        format!(
            "\"{}\" ({} plugin {})",
            clean(v.title.as_deref().unwrap_or("unnamed finding"), 80),
            clean(&v.scanner, 40),
            clean(&v.plugin_id, 40)
        )
    } else {
        let mut ids: Vec<String> = v.cves.iter().take(MAX_CVES).map(|c| clean(c, 24)).collect();
        if v.cves.len() > MAX_CVES {
            ids.push(format!("+{} more", v.cves.len() - MAX_CVES));
        }
        ids.join(", ")
    };
    let score = v
        .cvss
        .map(|s| format!(" (CVSS {s:.1})"))
        .unwrap_or_default();
    let place = if v.port == 0 {
        "on the host".to_owned()
    } else if v.protocol.is_empty() {
        format!("on port {}", v.port)
    } else {
        format!("on {}/{}", v.port, clean(&v.protocol, 8))
    };
    let since = v
        .first_seen
        .map(|t| format!(" since {}", t.format("%Y-%m-%d")))
        .unwrap_or_default();
    let named = if v.cve_named {
        ", named by the event"
    } else {
        ""
    };
    format!("target has {what}{score} open {place}{since}{named}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use vowguard_core::Severity;

    fn m() -> VulnerabilityMatch {
        VulnerabilityMatch {
            scanner: "tio".into(),
            plugin_id: "190000".into(),
            title: Some("PAN-OS\nRCE".into()),
            cves: vec!["CVE-2024-3400".into()],
            cvss: Some(9.8),
            severity: Severity::Critical,
            asset: "10.0.0.5".into(),
            port: 443,
            protocol: "tcp".into(),
            first_seen: Some(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
            confidence: 0.9,
            cve_named: false,
        }
    }

    #[test]
    fn sentences() {
        assert_eq!(
            describe(&m()),
            "target has CVE-2024-3400 (CVSS 9.8) open on 443/tcp since 2026-01-02"
        );
        let mut v = m();
        v.cves = (1..=5).map(|i| format!("CVE-2024-000{i}")).collect();
        v.port = 0;
        v.cvss = None;
        v.first_seen = None;
        v.cve_named = true;
        assert_eq!(
            describe(&v),
            "target has CVE-2024-0001, CVE-2024-0002, CVE-2024-0003, +2 more open on the host, named by the event"
        );
        v.cves.clear();
        assert_eq!(
            describe(&v),
            "target has \"PAN-OS RCE\" (tio plugin 190000) open on the host, named by the event"
        );
    }
}

//! The Greenbone report parser on sample files built from the GMP formats, with golden
//! expected findings, hostile input, and properties.

use std::path::PathBuf;

use proptest::prelude::*;
use vowguard_core::{ErrorKind, FindingState, Severity};
use vowguard_openvas::{ParseOptions, ParseSummary, parse_report_slice};
use vowguard_xml::Limits;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Compares with the golden file; `UPDATE_GOLDEN=1` rewrites it (then review the diff).
fn golden(name: &str, got: &serde_json::Value) {
    let path = data(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
    }
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(got, &want, "golden {name} differs");
}

#[test]
fn get_reports_answer_matches_golden_findings() {
    let bytes = std::fs::read(data("report.xml")).unwrap();
    let (findings, summary) =
        parse_report_slice(&bytes, "report.xml", &ParseOptions::new("greenbone")).unwrap();
    assert_eq!(
        summary,
        ParseSummary {
            results: 9,
            findings: 5,
            // the Log result and the error result
            filtered: 2,
            // no host, port 70000
            skipped: 2,
        }
    );
    golden(
        "report.expected.json",
        &serde_json::to_value(&findings).unwrap(),
    );

    // The points the golden file pins, spelled out.
    let apache = &findings[0];
    assert_eq!(apache.plugin_id, "1.3.6.1.4.1.25623.1.0.114684");
    assert_eq!(apache.port, 443);
    assert_eq!(apache.protocol, "tcp");
    assert_eq!(apache.cves, ["CVE-2024-40725", "CVE-2024-40898"]);
    assert_eq!(apache.severity, Severity::Critical);
    assert_eq!(apache.asset.fqdn.as_deref(), Some("www.wedding.example"));
    assert_eq!(apache.asset.hostname.as_deref(), Some("www"));
    assert!((apache.confidence - 0.8).abs() < 1e-6);
    let icmp = &findings[1];
    assert_eq!((icmp.port, icmp.protocol.as_str()), (0, ""));
    let ssh = &findings[2];
    assert_eq!(ssh.cves, ["CVE-2024-6387"]);
    assert_eq!(
        ssh.asset.scanner_asset_id, None,
        "an empty asset id is no id"
    );
    assert!((ssh.confidence - 0.3).abs() < 1e-6);
    assert_eq!(findings[3].state, FindingState::Accepted);
    assert_eq!(
        findings[3].cvss,
        Some(5.0),
        "an accepted result keeps its original score"
    );
    assert_eq!(findings[3].port, 8443);
    assert_eq!(findings[4].state, FindingState::Fixed);
}

#[test]
fn options_keep_log_results_and_drop_low_qod() {
    let bytes = std::fs::read(data("report.xml")).unwrap();
    let mut options = ParseOptions::new("greenbone");
    options.include_log = true;
    options.min_qod = 70;
    let (findings, summary) = parse_report_slice(&bytes, "report.xml", &options).unwrap();
    assert_eq!(summary.findings, 5, "{summary:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.plugin_id == "1.3.6.1.4.1.25623.1.0.105937"
                && f.severity == Severity::Info
                && f.cvss.is_none())
    );
    assert!(
        !findings
            .iter()
            .any(|f| f.plugin_id == "1.3.6.1.4.1.25623.1.0.152517"),
        "QoD 30 is below 70"
    );
}

#[test]
fn get_results_answer_is_read_too() {
    let bytes = std::fs::read(data("results.xml")).unwrap();
    let (findings, _) =
        parse_report_slice(&bytes, "results.xml", &ParseOptions::new("gb")).unwrap();
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.asset.ip, Some("198.51.100.7".parse().unwrap()));
    assert_eq!((f.port, f.protocol.as_str()), (3306, "tcp"));
    assert_eq!(f.cves, ["CVE-2000-0981"]);
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.title.as_deref(), Some("Single result from get_results"));
    assert!((f.confidence - 0.95).abs() < 1e-6);
}

fn refused(bytes: &[u8], options: &ParseOptions) -> String {
    let e = parse_report_slice(bytes, "hostile.xml", options).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let text = e.to_string();
    assert!(text.starts_with("hostile.xml: byte "), "{text}");
    text
}

#[test]
fn hostile_files_are_refused_with_file_and_position() {
    let options = ParseOptions::new("gb");
    let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<get_reports_response><result><name>&c;</name></result></get_reports_response>"#;
    assert_eq!(
        refused(bomb, &options),
        "hostile.xml: byte 22: a DOCTYPE is not accepted (no DTD or entity expansion)"
    );
    let xxe = b"<get_results_response><result><name>&xxe;</name></result></get_results_response>";
    assert!(refused(xxe, &options).contains("entity `&xxe`"));
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><report><result><name>caf\xE9</name></result></report>";
    assert!(refused(latin1, &options).contains("encoding `ISO-8859-1`"));
    let undeclared = b"<report><result><name>caf\xE9</name></result></report>";
    assert!(refused(undeclared, &options).contains("UTF-8"));
    let utf16: Vec<u8> = "\u{FEFF}<report/>"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(refused(&utf16, &options).contains("UTF-16"));
    let truncated = b"<report><results><result><name>x</name>";
    assert!(refused(truncated, &options).contains("ends inside an element"));
    assert!(refused(b"", &options).contains("empty input"));
    assert!(refused(b"not xml at all", &options).contains("text outside the root element"));

    let mut small = ParseOptions::new("gb");
    small.limits = Limits::default().with_max_bytes(1000);
    let big = std::fs::read(data("report.xml")).unwrap();
    assert_eq!(
        refused(&big, &small),
        "hostile.xml: byte 1000: the input is larger than 1000 bytes"
    );
    let deep = format!(
        "<report>{}{}</report>",
        "<x>".repeat(100),
        "</x>".repeat(100)
    );
    assert!(refused(deep.as_bytes(), &options).contains("nested deeper than 64"));
}

/// One generated result, written as Greenbone would.
#[derive(Debug, Clone)]
struct Generated {
    ip: std::net::Ipv4Addr,
    port: u16,
    udp: bool,
    oid: String,
    title: String,
    cves: Vec<(u16, u32)>,
    score_tenths: u8,
    qod: u8,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<bool>(),
        "1\\.3\\.6\\.1\\.4\\.1\\.25623\\.1\\.0\\.[0-9]{1,6}",
        "[^\\p{Cc}\\s][^\\p{Cc}]{0,39}",
        proptest::collection::vec((1999u16..2030, 1000u32..99_999_999), 0..4),
        1u8..=100,
        0u8..=100,
    )
        .prop_map(
            |(ip, port, udp, oid, title, cves, score_tenths, qod)| Generated {
                ip: ip.into(),
                port,
                udp,
                oid,
                title,
                cves,
                score_tenths,
                qod,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(15), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut options = ParseOptions::new("gb");
        options.include_log = true;
        let _ = parse_report_slice(&bytes, "fuzz.xml", &options);
    }

    #[test]
    fn mutated_report_never_panics(cut in 0usize..6000, flip in any::<u8>(), at in 0usize..6000) {
        let mut bytes = std::fs::read(data("report.xml")).unwrap();
        if at < bytes.len() { bytes[at] ^= flip; }
        bytes.truncate(cut.min(bytes.len()));
        let _ = parse_report_slice(&bytes, "fuzz.xml", &ParseOptions::new("gb"));
    }

    /// Whatever the values, a result written in the format reads back as them.
    #[test]
    fn results_round_trip(results in proptest::collection::vec(generated(), 1..6)) {
        let mut xml = String::from("<get_results_response>");
        for r in &results {
            let port = if r.port == 0 { "general/tcp".to_owned() } else { format!("{}/{}", r.port, if r.udp { "udp" } else { "tcp" }) };
            let refs: String = r.cves.iter().map(|(y, n)| format!("<ref type=\"cve\" id=\"CVE-{y}-{n:04}\"/>")).collect();
            xml.push_str(&format!(
                "<result><name>{}</name><host>{}</host><port>{port}</port><nvt oid=\"{}\"><refs>{refs}</refs></nvt><severity>{}.{}</severity><qod><value>{}</value></qod></result>",
                escape(&r.title), r.ip, r.oid, r.score_tenths / 10, r.score_tenths % 10, r.qod
            ));
        }
        xml.push_str("</get_results_response>");
        let (findings, summary) = parse_report_slice(xml.as_bytes(), "gen.xml", &ParseOptions::new("gb")).unwrap();
        prop_assert_eq!(summary.findings as usize, results.len());
        for (f, r) in findings.iter().zip(&results) {
            prop_assert_eq!(f.title.as_deref(), Some(r.title.trim()));
            prop_assert_eq!(f.asset.ip, Some(std::net::IpAddr::V4(r.ip)));
            prop_assert_eq!(f.port, r.port);
            let proto = if r.port == 0 { "" } else if r.udp { "udp" } else { "tcp" };
            prop_assert_eq!(f.protocol.as_str(), proto);
            prop_assert_eq!(&f.plugin_id, &r.oid);
            let mut want: Vec<String> = Vec::new();
            for (y, n) in &r.cves {
                let id = format!("CVE-{y}-{n:04}");
                if !want.contains(&id) { want.push(id); }
            }
            prop_assert_eq!(&f.cves, &want);
            let score = f32::from(r.score_tenths) / 10.0;
            prop_assert_eq!(f.cvss, Some(score));
            prop_assert_eq!(f.severity, vowguard_openvas::severity_from_score(score));
            prop_assert!((f.confidence - f32::from(r.qod) / 100.0).abs() < 1e-6);
        }
    }
}

//! The Qualys parsers on sample answers built from the VMDR formats: golden findings,
//! one detection and many, the KnowledgeBase, hostile input, properties.

use std::path::PathBuf;

use proptest::prelude::*;
use vowguard_core::{ErrorKind, FindingState, Severity};
use vowguard_qualys::{apply_kb, parse_detection_page, parse_knowledge_base};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read_to_string(data(name))
        .unwrap()
        .replace("{BASE}", "https://qualysapi.qualys.example")
        .into_bytes()
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
fn detection_page_with_kb_matches_golden_findings() {
    let page =
        parse_detection_page(&read("detections_page1.xml"), "page 1", "qualys", false).unwrap();
    assert_eq!(page.hosts, 2);
    assert_eq!(page.filtered, 1, "the Info detection");
    assert_eq!(page.skipped, 0);
    assert_eq!(
        page.next_url.as_deref(),
        Some(
            "https://qualysapi.qualys.example/api/2.0/fo/asset/host/vm/detection/?action=list&output_format=XML&status=New,Active,Re-Opened,Fixed&truncation_limit=2&show_results=0&show_igs=0&id_min=114303"
        )
    );
    assert_eq!(
        page.datetime.unwrap().to_rfc3339(),
        "2026-11-30T06:00:00+00:00"
    );

    let kb = parse_knowledge_base(&read("kb.xml"), "kb").unwrap();
    assert_eq!(kb.len(), 3);
    let mut findings = page.findings;
    for f in &mut findings {
        if let Some(entry) = kb.get(&f.plugin_id) {
            apply_kb(f, entry);
        }
    }
    golden(
        "detections_page1.expected.json",
        &serde_json::to_value(&findings).unwrap(),
    );

    let ids: Vec<&str> = findings.iter().map(|f| f.plugin_id.as_str()).collect();
    assert_eq!(ids, ["38909", "105015", "91850", "38170"]);
    let openssl = &findings[0];
    assert_eq!(openssl.cves, ["CVE-2024-5535", "CVE-2024-9143"]);
    assert_eq!(openssl.cvss, Some(9.1), "CVSS v3 wins over v2");
    assert_eq!(
        openssl.cvss_vector.as_deref(),
        Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H")
    );
    assert_eq!(
        openssl.title.as_deref(),
        Some("OpenSSL Remote Code Execution & Memory Corruption")
    );
    assert_eq!((openssl.port, openssl.protocol.as_str()), (443, "tcp"));
    assert_eq!(openssl.severity, Severity::Critical);
    assert_eq!(openssl.asset.scanner_asset_id.as_deref(), Some("114301"));
    assert_eq!(openssl.asset.fqdn.as_deref(), Some("rsvp.wedding.example"));
    assert_eq!(openssl.asset.hostname.as_deref(), Some("rsvp"));
    assert_eq!(findings[1].confidence, 0.5, "Potential");
    assert_eq!(findings[1].state, FindingState::Reopened);
    assert_eq!(findings[2].state, FindingState::Fixed);
    assert_eq!((findings[2].port, findings[2].protocol.as_str()), (0, ""));
    assert_eq!(findings[3].state, FindingState::Accepted, "IS_IGNORED=1");
}

#[test]
fn a_host_with_a_single_detection_and_info_kept_when_asked() {
    let page = parse_detection_page(&read("detections_page2.xml"), "page 2", "q", false).unwrap();
    assert_eq!(page.findings.len(), 1);
    assert_eq!(page.next_url, None);
    let f = &page.findings[0];
    assert_eq!(f.asset.ip, Some("2001:db8::53".parse().unwrap()));
    assert_eq!(f.asset.hostname.as_deref(), Some("gallery"));
    assert_eq!(f.state, FindingState::Open);

    let page = parse_detection_page(&read("detections_page1.xml"), "page 1", "q", true).unwrap();
    assert_eq!(page.findings.len(), 5);
    assert_eq!(page.findings[2].plugin_id, "45038");
    assert_eq!(page.findings[2].severity, Severity::Info);
}

#[test]
fn error_documents_and_hostile_answers_are_refused() {
    let e = parse_detection_page(&read("simple_return_409.xml"), "page 1", "q", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(e.to_string().contains("code 1960"), "{e}");
    let e = parse_knowledge_base(b"<WRONG/>", "kb").unwrap_err();
    assert_eq!(
        e.to_string(),
        "kb: byte 0: expected KNOWLEDGE_BASE_VULN_LIST_OUTPUT, found <WRONG>"
    );
    let bomb =
        b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x \"y\">]><HOST_LIST_VM_DETECTION_OUTPUT/>";
    let e = parse_detection_page(bomb, "page 1", "q", false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "page 1: byte 21: a DOCTYPE is not accepted (no DTD or entity expansion)"
    );
    let latin1 =
        b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><HOST_LIST_VM_DETECTION_OUTPUT/>";
    assert!(
        parse_detection_page(latin1, "p", "q", false)
            .unwrap_err()
            .to_string()
            .contains("only UTF-8")
    );
    assert!(
        parse_detection_page(b"", "p", "q", false)
            .unwrap_err()
            .to_string()
            .contains("empty answer")
    );
}

fn detection_xml(d: &(u32, u8, Option<(u16, bool)>, u8, bool)) -> String {
    let (qid, severity, port, status, potential) = d;
    let port = port
        .map(|(p, udp)| {
            format!(
                "<PORT>{p}</PORT><PROTOCOL>{}</PROTOCOL>",
                if udp { "UDP" } else { "TCP" }
            )
        })
        .unwrap_or_default();
    let status = ["New", "Active", "Re-Opened", "Fixed"][usize::from(*status % 4)];
    let kind = if *potential { "Potential" } else { "Confirmed" };
    format!(
        "<DETECTION><QID>{qid}</QID><TYPE>{kind}</TYPE><SEVERITY>{severity}</SEVERITY>{port}<STATUS>{status}</STATUS></DETECTION>"
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(15), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_detection_page(&bytes, "p", "q", true);
        let _ = parse_knowledge_base(&bytes, "kb");
        let _ = vowguard_qualys::parse_simple_return(&bytes);
    }

    #[test]
    fn mutated_answers_never_panic(cut in 0usize..5000, flip in any::<u8>(), at in 0usize..5000) {
        for name in ["detections_page1.xml", "kb.xml"] {
            let mut bytes = read(name);
            if at < bytes.len() { bytes[at] ^= flip; }
            bytes.truncate(cut.min(bytes.len()));
            let _ = parse_detection_page(&bytes, "p", "q", true);
            let _ = parse_knowledge_base(&bytes, "kb");
        }
    }

    /// Detections written in the format read back as written, one per host or many.
    #[test]
    fn detections_round_trip(
        ip in any::<[u8; 4]>(),
        detections in proptest::collection::vec((1u32..999_999, 1u8..=5, proptest::option::of((1u16..=65535, any::<bool>())), any::<u8>(), any::<bool>()), 1..8),
    ) {
        let ip = std::net::Ipv4Addr::from(ip);
        let list: String = detections.iter().map(detection_xml).collect();
        let xml = format!("<HOST_LIST_VM_DETECTION_OUTPUT><RESPONSE><HOST_LIST><HOST><ID>7</ID><IP>{ip}</IP><DETECTION_LIST>{list}</DETECTION_LIST></HOST></HOST_LIST></RESPONSE></HOST_LIST_VM_DETECTION_OUTPUT>");
        let page = parse_detection_page(xml.as_bytes(), "p", "q", false).unwrap();
        prop_assert_eq!(page.findings.len(), detections.len());
        for (f, (qid, severity, port, status, potential)) in page.findings.iter().zip(&detections) {
            prop_assert_eq!(&f.plugin_id, &qid.to_string());
            prop_assert_eq!(f.asset.ip, Some(std::net::IpAddr::V4(ip)));
            prop_assert_eq!(f.severity, vowguard_qualys::severity_from_level(&severity.to_string()));
            match port {
                Some((p, udp)) => {
                    prop_assert_eq!(f.port, *p);
                    prop_assert_eq!(f.protocol.as_str(), if *udp { "udp" } else { "tcp" });
                }
                None => prop_assert_eq!((f.port, f.protocol.as_str()), (0, "")),
            }
            let want = [FindingState::Open, FindingState::Open, FindingState::Reopened, FindingState::Fixed][usize::from(*status % 4)];
            prop_assert_eq!(f.state, want);
            prop_assert_eq!(f.confidence, if *potential { 0.5 } else { 1.0 });
        }
    }
}

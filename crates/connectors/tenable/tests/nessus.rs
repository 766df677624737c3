//! The `.nessus` v2 reader: a sample file, hostile files, and property tests.

use std::io::Cursor;
use std::path::PathBuf;

use async_trait::async_trait;
use proptest::prelude::*;
use vowguard_core::{Error, ErrorKind, Finding, FindingPages, FindingState, Scanner, Severity};
use vowguard_tenable::{
    NessusFileScanner, NessusOptions, NessusReader, import_file, parse_nessus_time,
};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample.nessus")
}

fn read_all(text: &str, options: NessusOptions) -> Result<Vec<Finding>, Error> {
    let mut reader = NessusReader::new(
        Cursor::new(text.as_bytes().to_vec()),
        "t.nessus",
        "nessus",
        options,
    );
    let mut out = Vec::new();
    while let Some(f) = reader.next_finding()? {
        out.push(f);
    }
    Ok(out)
}

#[test]
fn sample_file_maps_every_field() {
    let mut pages = Vec::new();
    let n = import_file(&sample(), "nessus", NessusOptions::default(), |p| {
        pages.push(p);
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 3, "the informational item is skipped");
    let all: Vec<Finding> = pages.into_iter().flatten().collect();
    let rce = &all[0];
    assert_eq!(rce.asset.ip, Some("10.0.0.5".parse().unwrap()));
    assert_eq!(rce.asset.fqdn.as_deref(), Some("web01.example.com"));
    assert_eq!(rce.asset.hostname.as_deref(), Some("web01"));
    assert_eq!(
        rce.title.as_deref(),
        Some("Palo Alto & \"GlobalProtect\" RCE")
    );
    assert_eq!((rce.port, rce.protocol.as_str()), (443, "tcp"));
    assert_eq!(
        rce.cves,
        vec!["CVE-2024-0001", "CVE-2024-3400"],
        "every <cve> is kept"
    );
    assert_eq!(rce.cvss, Some(10.0));
    assert_eq!(
        rce.cvss_vector.as_deref(),
        Some("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H")
    );
    assert_eq!(rce.severity, Severity::Critical);
    assert_eq!(rce.state, FindingState::Open);
    assert_eq!(rce.last_seen, parse_nessus_time("Thu Aug 15 10:12:34 2024"));
    assert_eq!(rce.key(), "nessus|190000|10.0.0.5|443/tcp");
    let smb = &all[1];
    assert_eq!(
        (smb.port, smb.protocol.as_str(), smb.cvss),
        (0, "", Some(5.0))
    );
    assert_eq!(
        smb.cvss_vector.as_deref(),
        Some("CVSS2#AV:N/AC:L/Au:N/C:N/I:P/A:N")
    );
    let db = &all[2];
    assert_eq!(db.asset.ip, None);
    assert_eq!(db.asset.fqdn.as_deref(), Some("db.example.com"));
    assert_eq!(db.title.as_deref(), Some("PostgreSQL \u{2013} old"));
    assert_eq!(db.last_seen.unwrap().timestamp(), 1_723_716_754);

    let with_info = read_all(
        &std::fs::read_to_string(sample()).unwrap(),
        NessusOptions::default().with_include_info(true),
    )
    .unwrap();
    assert_eq!(with_info.len(), 4);
}

fn refused(text: &str) -> String {
    let err = read_all(text, NessusOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let message = err.to_string();
    assert!(message.contains("t.nessus: byte "), "{message}");
    message
}

#[test]
fn hostile_files_are_refused_with_file_and_position() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<NessusClientData_v2><Report><ReportHost name="x"><ReportItem port="1" severity="4" pluginID="1" pluginName="&lol2;"/></ReportHost></Report></NessusClientData_v2>"#;
    assert!(refused(bomb).contains("DTD"));
    let xxe = "<NessusClientData_v2><Report><ReportHost name=\"x\"><ReportItem port=\"1\" severity=\"4\" pluginID=\"1\"><cve>&xxe;</cve></ReportItem></ReportHost></Report></NessusClientData_v2>";
    let m = refused(xxe);
    assert!(
        m.contains("entity `&xxe` is not one of the five predefined"),
        "{m}"
    );
    let m = refused("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><NessusClientData_v2/>");
    assert!(m.contains("ISO-8859-1"), "{m}");
    assert!(refused("<html><body/></html>").contains("root element is <html>"));
    assert!(refused("").contains("not a .nessus v2 file"));
    let m = refused("<NessusClientData_v2><Report><ReportHost name=\"x\">");
    assert!(m.contains("the input ends inside an element"), "{m}");
    let m = refused("<NessusClientData_v2><Report></ReportHost></NessusClientData_v2>");
    assert!(m.contains("byte 29:") && m.contains("ReportHost"), "{m}");
    let m = refused(
        "<NessusClientData_v2><Report><ReportHost name=\"x\"><ReportItem port=\"99999\" severity=\"4\" pluginID=\"1\"/></ReportHost></Report></NessusClientData_v2>",
    );
    assert!(m.contains("port `99999`"), "{m}");
    let deep = format!("<NessusClientData_v2>{}", "<a>".repeat(100));
    assert!(refused(&deep).contains("nested deeper"));
    let mut bytes = b"<NessusClientData_v2><Report><ReportHost name=\"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x41]);
    bytes.extend_from_slice(b"\"/></Report></NessusClientData_v2>");
    let mut reader = NessusReader::new(
        Cursor::new(bytes),
        "t.nessus",
        "n",
        NessusOptions::default(),
    );
    assert!(reader.next_finding().is_err(), "invalid UTF-8 is refused");
}

#[test]
fn an_entity_bomb_and_an_over_long_attribute_are_refused_at_their_position() {
    // The shared reader (vowguard-xml) refuses the DOCTYPE itself, before any entity is
    // declared, at the byte where it starts.
    let bomb = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]>\n<NessusClientData_v2/>",
        (1..10)
            .map(|i| format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&lol{};", i - 1).repeat(10)
            ))
            .collect::<String>()
    );
    assert_eq!(
        refused(&bomb),
        "t.nessus: byte 22: a DOCTYPE is not accepted (no DTD or entity expansion)"
    );

    // A pluginName of 100 KiB: the tag is larger than max_event_bytes; the refusal names
    // the byte where the reader stopped, within the tag, having buffered no more than the
    // limit.
    let options = NessusOptions::default()
        .with_include_info(false)
        .with_max_event_bytes(4096);
    let head = "<NessusClientData_v2><Report><ReportHost name=\"10.0.0.1\">";
    let text = format!(
        "{head}<ReportItem port=\"1\" severity=\"4\" pluginID=\"1\" pluginName=\"{}\"/></ReportHost></Report></NessusClientData_v2>",
        "A".repeat(100_000)
    );
    let err = read_all(&text, options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let message = err.to_string();
    let at: usize = message
        .strip_prefix("t.nessus: byte ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no position: {message}"));
    assert!(
        (head.len()..=head.len() + 4096 + 1).contains(&at),
        "the position {at} is inside the <ReportItem> tag: {message}"
    );
    assert!(
        message.ends_with("a single tag or text run is larger than 4096 bytes"),
        "{message}"
    );
}

#[test]
fn a_huge_event_is_refused_without_buffering_it() {
    let options = NessusOptions::default()
        .with_include_info(false)
        .with_max_event_bytes(4096);
    let text = format!(
        "<NessusClientData_v2><Report><ReportHost name=\"10.0.0.1\"><ReportItem port=\"1\" severity=\"4\" pluginID=\"1\"><plugin_output>{}</plugin_output></ReportItem></ReportHost></Report></NessusClientData_v2>",
        "A".repeat(100_000)
    );
    let err = read_all(&text, options).unwrap_err();
    assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
    let fine = text.replace(&"A".repeat(100_000), &"A".repeat(1000));
    assert_eq!(read_all(&fine, options).unwrap().len(), 1);
}

#[derive(Default)]
struct Collect(Vec<Finding>);

#[async_trait]
impl FindingPages for Collect {
    async fn page(&mut self, findings: Vec<Finding>) -> Result<(), Error> {
        self.0.extend(findings);
        Ok(())
    }
}

#[tokio::test]
async fn the_file_scanner_streams_pages_and_names_a_bad_file() {
    let scanner = NessusFileScanner::new("nessus", vec![sample()], NessusOptions::default());
    let mut out = Collect::default();
    let summary = scanner.sync(None, &mut out).await.unwrap();
    assert_eq!((summary.findings, summary.pages, out.0.len()), (3, 1, 3));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.nessus");
    std::fs::write(&bad, "<NessusClientData_v2><!DOCTYPE x>").unwrap();
    let scanner = NessusFileScanner::new("nessus", vec![bad.clone()], NessusOptions::default());
    let err = scanner
        .sync(None, &mut Collect::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );
    let missing = NessusFileScanner::new(
        "nessus",
        vec![dir.path().join("none.nessus")],
        NessusOptions::default(),
    );
    assert_eq!(
        missing
            .sync(None, &mut Collect::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Io
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(15), ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the reader: it returns findings or an error.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut doc = b"<NessusClientData_v2><Report><ReportHost name=\"10.0.0.1\">".to_vec();
        doc.extend_from_slice(&bytes);
        let mut reader = NessusReader::new(Cursor::new(doc), "p.nessus", "n", NessusOptions::default());
        for _ in 0..1000 {
            match reader.next_finding() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Whatever a title, port and CVE list are, written escaped they read back the same.
    #[test]
    fn generated_items_round_trip(
        title in "[^\u{0}-\u{1f}]{0,40}",
        port in any::<u16>(),
        severity in 1u8..=4,
        cves in proptest::collection::btree_set((2000u32..2030, 1000u32..99_999_999), 0..4),
    ) {
        let cve_xml: String = cves.iter().map(|(y, n)| format!("<cve>CVE-{y}-{n}</cve>")).collect();
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><NessusClientData_v2><Report name=\"r\"><ReportHost name=\"192.0.2.7\"><HostProperties></HostProperties><ReportItem port=\"{port}\" protocol=\"udp\" severity=\"{severity}\" pluginID=\"42\" pluginName=\"{}\">{cve_xml}</ReportItem></ReportHost></Report></NessusClientData_v2>",
            escape(&title)
        );
        let all = read_all(&doc, NessusOptions::default()).unwrap();
        prop_assert_eq!(all.len(), 1);
        let f = &all[0];
        prop_assert_eq!(f.title.as_deref(), Some(title.as_str()));
        prop_assert_eq!(f.port, port);
        prop_assert_eq!(f.protocol.as_str(), if port == 0 { "" } else { "udp" });
        let mut expected: Vec<String> = cves.iter().map(|(y, n)| format!("CVE-{y}-{n}")).collect();
        expected.sort();
        prop_assert_eq!(&f.cves, &expected);
    }
}

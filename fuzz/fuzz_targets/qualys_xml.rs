//! The Qualys VMDR parsers (`vowguard-qualys`: host detection page, KnowledgeBase,
//! SIMPLE_RETURN) on arbitrary bytes: they never panic; a refusal is invalid input naming
//! the source and byte position, or Qualys' own error document (rejected), on one line; the
//! findings hold the model's invariants and KnowledgeBase entries carry well-formed CVE ids
//! and a CVSS score in (0, 10].
#![no_main]

use libfuzzer_sys::fuzz_target;
use vowguard_core::ErrorKind;
use vowguard_fuzz::{check_finding, is_cve};
use vowguard_qualys::{apply_kb, parse_detection_page, parse_knowledge_base, parse_simple_return};

fn check_error(e: &vowguard_core::Error, source: &str) {
    assert!(
        matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Rejected),
        "{e}"
    );
    assert!(e.message().starts_with(source), "{e}");
    assert!(!e.message().contains(['\n', '\r']), "{e}");
}

fuzz_target!(|data: &[u8]| {
    let include_info = data.first().is_some_and(|b| b & 1 == 1);
    let kb = match parse_knowledge_base(data, "kb") {
        Ok(entries) => {
            for (qid, entry) in &entries {
                assert!(!qid.is_empty() && qid.bytes().all(|b| b.is_ascii_digit()));
                assert!(entry.cves.iter().all(|c| is_cve(c)), "{entry:?}");
                assert!(entry.cvss.is_none_or(|s| s > 0.0 && s <= 10.0));
            }
            entries
        }
        Err(e) => {
            check_error(&e, "kb");
            Default::default()
        }
    };
    match parse_detection_page(data, "page 1", "q", include_info) {
        Ok(page) => {
            for mut finding in page.findings {
                check_finding(&finding);
                if let Some(entry) = kb.get(&finding.plugin_id) {
                    apply_kb(&mut finding, entry);
                    check_finding(&finding);
                }
                assert!(finding.plugin_id.bytes().all(|b| b.is_ascii_digit()));
                assert!(finding.confidence == 1.0 || finding.confidence == 0.5);
            }
        }
        Err(e) => check_error(&e, "page 1"),
    }
    if let Some(ret) = parse_simple_return(data) {
        let _ = (ret.code.len(), ret.text.len());
    }
});

//! The Greenbone report XML parser (`vowguard-openvas`) on arbitrary bytes: it never panics,
//! stays within its limits, and either refuses the input as invalid with the source and byte
//! position named (on one line: input cannot forge log lines), or returns findings that
//! hold the model's invariants (port 0 exactly when host level, a lower-case word as
//! protocol, confidence 0..=1, CVSS in (0, 10], CVE ids well formed, a named asset).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vowguard_core::ErrorKind;
use vowguard_fuzz::check_finding;
use vowguard_openvas::{ParseOptions, parse_report_slice};
use vowguard_xml::Limits;

fuzz_target!(|data: &[u8]| {
    let mut options = ParseOptions::new("gb");
    options.include_log = data.first().is_some_and(|b| b & 1 == 1);
    options.limits = Limits::default().with_max_bytes(1 << 20).with_max_token_bytes(64 * 1024).with_max_depth(64).with_max_text_chars(4096);
    match parse_report_slice(data, "fuzz.xml", &options) {
        Ok((findings, summary)) => {
            assert_eq!(findings.len() as u64, summary.findings);
            assert_eq!(
                summary.findings + summary.filtered + summary.skipped,
                summary.results
            );
            for finding in &findings {
                check_finding(finding);
                assert_eq!(finding.scanner, "gb");
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.message().starts_with("fuzz.xml: byte "), "{e}");
            assert!(!e.message().contains(['\n', '\r']), "{e}");
        }
    }
});

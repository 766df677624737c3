//! The streaming `.nessus` v2 reader (`vowguard-tenable`) on arbitrary bytes: it never
//! panics or loops, and either refuses the input as invalid with the file and byte position
//! named on one line (input cannot forge log lines), or returns findings within the model's
//! ranges (confidence 0..=1, CVSS in 0..=10 as the core model says, a named asset, the configured scanner id).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vowguard_core::ErrorKind;
use vowguard_tenable::{NessusOptions, NessusReader};

fuzz_target!(|data: &[u8]| {
    let options = NessusOptions::default().with_include_info(data.first().is_some_and(|b| b & 1 == 1)).with_max_event_bytes(64 * 1024);
    let mut reader = NessusReader::new(data, "fuzz.nessus", "nessus", options);
    // Each finding consumes input, so a reader that returns more findings than bytes loops.
    for _ in 0..=data.len() {
        match reader.next_finding() {
            Ok(Some(finding)) => {
                assert_eq!(finding.scanner, "nessus");
                assert!((0.0..=1.0).contains(&finding.confidence), "{finding:?}");
                assert!(
                    finding.cvss.is_none_or(|s| (0.0..=10.0).contains(&s)),
                    "{finding:?}"
                );
                let a = &finding.asset;
                assert!(
                    a.ip.is_some() || a.fqdn.is_some() || a.hostname.is_some(),
                    "{finding:?}"
                );
            }
            Ok(None) => return,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                assert!(e.message().starts_with("fuzz.nessus: byte "), "{e}");
                assert!(!e.message().contains(['\n', '\r']), "{e}");
                return;
            }
        }
    }
    panic!("more findings than input bytes: the reader loops");
});

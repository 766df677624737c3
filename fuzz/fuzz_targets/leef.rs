//! LEEF 1.0 / 2.0 over RFC 5424 (the QRadar sink's wire records), checked with the
//! independent RFC 5424 and LEEF parsers: one message per event, no raw CR/LF, a header of
//! exactly the expected fields, the delimiter never inside a value (so event text cannot
//! add or forge attributes), event id and message carried intact.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vowguard_core::Sink;
use vowguard_fuzz::{FuzzEvent, has_cr_lf, leef, prefix_chars, rfc5424};
use vowguard_qradar::{Delimiter, LeefVersion, QRadarConfig};
use vowguard_syslog::{SyslogConfig, SyslogSeverity};

#[derive(Debug, Arbitrary)]
struct Input {
    v1: bool,
    delimiter: Result<u8, char>,
    event: FuzzEvent,
}

const DELIMITERS: &[&str] = &[
    "^", "x09", "0x5E", "¦", "#", "x7E", "x85", "x2028", ";", "\t",
];

fn clean(value: &str, delimiter: char) -> String {
    value
        .chars()
        .map(|c| {
            if c == delimiter || c == '\r' || c == '\n' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let spec = match input.delimiter {
        Ok(i) => DELIMITERS[usize::from(i) % DELIMITERS.len()].to_owned(),
        Err(c) => c.to_string(),
    };
    let Ok(delimiter) = Delimiter::parse(&spec) else {
        return;
    };
    let delimiter_char = delimiter.char();
    let mut config = QRadarConfig::new(SyslogConfig::new("127.0.0.1:514"));
    config.hostname = Some("gw1".into());
    if input.v1 {
        config.leef_version = LeefVersion::V1;
    } else {
        config.delimiter = Some(delimiter);
    }
    let sink = config.into_builder().build().expect("sink builds without network");
    let event = input.event.build();
    let message = sink.encode(&event).expect("LEEF encoding never fails");
    assert!(!has_cr_lf(&message), "raw CR/LF in the message");

    let syslog = rfc5424::parse(&message).unwrap_or_else(|e| panic!("RFC 5424: {e}"));
    assert_eq!(syslog.version, "1");
    assert_eq!(u32::from(syslog.pri) / 8, 20, "facility local4");
    assert_eq!(syslog.pri % 8, SyslogSeverity::from_event(event.severity).0);
    assert_eq!(syslog.hostname, "gw1");
    assert_eq!(syslog.msgid, "LEEF");
    let line = syslog.msg.expect("a LEEF line");

    let record = leef::parse(&line).unwrap_or_else(|e| panic!("LEEF: {e}\n{line}"));
    let h = &record.header;
    let delim = if input.v1 {
        assert_eq!(h.len(), 5);
        assert_eq!(h[0], "LEEF:1.0");
        '\t'
    } else {
        assert_eq!(h.len(), 6);
        assert_eq!(h[0], "LEEF:2.0");
        assert_eq!(h[5], spec, "delimiter field");
        delimiter_char
    };
    assert_eq!(record.delimiter, delim);
    assert_eq!(h[1], "vowguard");
    assert_eq!(h[2], "wedding-security");
    assert!(
        h[4].starts_with(&format!("{}.", event.category)),
        "EventID {:?}",
        h[4]
    );
    assert!(
        h[4].bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b)),
        "EventID {:?}",
        h[4]
    );

    let a = &record.attributes;
    assert_eq!(a.get("eventId"), Some(&clean(&event.id, delim)));
    assert_eq!(
        a.get("action"),
        Some(&clean(prefix_chars(&event.action, 4000), delim))
    );
    assert_eq!(
        a.get("cat").map(String::as_str),
        Some(event.category.as_str())
    );
    match event.message.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => assert_eq!(a.get("msg"), Some(&clean(prefix_chars(m, 1023), delim))),
        None => assert!(!a.contains_key("msg")),
    }
    for value in a.values() {
        assert!(!value.contains(delim), "delimiter inside a value");
    }
});

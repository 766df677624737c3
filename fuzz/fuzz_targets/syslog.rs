//! RFC 5424 formatting and RFC 6587 / 5426 framing (`vowguard-syslog`), checked with the
//! independent RFC 5424 parser: whatever the header values and the message text, a frame
//! holds exactly one message, header fields are valid (printable ASCII, within the RFC's
//! lengths) and equal to the configured values made valid, MSG cannot forge them, and the
//! message comes back intact (octet counting) or with CR/LF as spaces (LF framing).
#![no_main]

use arbitrary::Arbitrary;
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use vowguard_fuzz::{Hostile, rfc5424};
use vowguard_syslog::{
    Facility, Framing, Rfc5424Header, SyslogSeverity, Transport, format_rfc5424, frame,
};

#[derive(Debug, Arbitrary)]
struct Input {
    facility: u8,
    severity: u8,
    timestamp_ms: i64,
    hostname: Hostile,
    app_name: Hostile,
    procid: Hostile,
    msgid: Hostile,
    msg: Hostile,
}

/// What a header field must become: printable US-ASCII (33..=126) or `_`, at most `max`
/// octets, `-` when empty.
fn valid_field(value: &str, max: usize) -> String {
    let out: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

fuzz_target!(|input: Input| {
    let ms = input.timestamp_ms.rem_euclid(253_402_300_799_000);
    let timestamp = Utc.timestamp_millis_opt(ms).single().expect("in range");
    let (hostname, app_name, procid, msgid, msg) = (
        input.hostname.build(),
        input.app_name.build(),
        input.procid.build(),
        input.msgid.build(),
        input.msg.build(),
    );
    let header = Rfc5424Header::new(
        Facility(input.facility % 24),
        SyslogSeverity(input.severity % 8),
        timestamp,
    )
    .hostname(&hostname)
    .app_name(&app_name)
    .procid(&procid)
    .msgid(&msgid);
    let message = format_rfc5424(&header, &msg);
    let check = |bytes: &[u8], expected_msg: &str| {
        let m = rfc5424::parse(bytes).unwrap_or_else(|e| panic!("RFC 5424: {e}"));
        assert_eq!(m.pri, (input.facility % 24) * 8 + input.severity % 8);
        assert_eq!(m.version, "1");
        assert_eq!(
            m.timestamp,
            timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        assert_eq!(m.hostname, valid_field(&hostname, 255));
        assert_eq!(m.app_name, valid_field(&app_name, 48));
        assert_eq!(m.procid, valid_field(&procid, 128));
        assert_eq!(m.msgid, valid_field(&msgid, 32));
        assert_eq!(m.structured_data, "-");
        assert_eq!(m.msg.as_deref().unwrap_or(""), expected_msg);
    };

    // Octet counting: the frame says exactly how long the one message is; MSG is intact.
    let octets = frame(Transport::Tcp, Framing::OctetCounting, &message);
    let inner = rfc5424::unframe_octet_counted(&octets).unwrap_or_else(|e| panic!("{e}"));
    check(inner, &msg);

    // LF framing: one LF, at the end; CR and LF inside MSG became spaces.
    let lf = frame(Transport::Tcp, Framing::Lf, &message);
    assert_eq!(lf.last(), Some(&b'\n'));
    let body = &lf[..lf.len() - 1];
    assert!(
        !body.iter().any(|b| *b == b'\n' || *b == b'\r'),
        "CR/LF inside an LF frame"
    );
    check(body, &msg.replace(['\r', '\n'], " "));

    // UDP: at most 2048 octets, cut on a character boundary, the header intact.
    let datagram = frame(Transport::Udp, Framing::OctetCounting, &message);
    assert!(datagram.len() <= 2048);
    assert!(message.starts_with(&datagram));
    let text = std::str::from_utf8(&datagram).expect("a datagram is cut on a char boundary");
    if message.len() <= 2048 {
        check(text.as_bytes(), &msg);
    }
});

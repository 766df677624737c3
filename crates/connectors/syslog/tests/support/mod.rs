//! Helpers shared by the integration tests: a test PKI, octet-counting frame readers and a
//! real rsyslogd receiver.
#![allow(dead_code, unreachable_pub)]

pub mod frames;
pub mod pki;
pub mod rsyslog;

use chrono::TimeZone;
use vowguard_syslog::{Facility, Rfc5424Header, SyslogSeverity, format_rfc5424};

/// A full RFC 5424 message with CEF/LEEF-like content (`|`, `=`, `\`, non-ASCII) and a
/// unique marker `vg-seq=<i>` so receivers can be checked message by message.
pub fn siem_message(i: usize) -> Vec<u8> {
    let header = Rfc5424Header::new(
        Facility::LOCAL4,
        SyslogSeverity::WARNING,
        chrono::Utc.with_ymd_and_hms(2026, 6, 20, 12, 3, 7).unwrap()
            + chrono::Duration::milliseconds(123),
    )
    .hostname("vowguard-test")
    .app_name("vowguard")
    .msgid("auth.login");
    let body = if i.is_multiple_of(2) {
        format!(
            "CEF:0|Vowguard|Wedding \\| Platform|1.0|auth.login|Login failed for Zoë Ångström|7|vgseq={i:05} src=203.0.113.7 request=https://example.com/a?b\\=c path=C:\\\\Users\\\\zoë cs1Label=Venue cs1=Schloß Hochzeit – ☃ 💍"
        )
    } else {
        format!(
            "LEEF:2.0|Vowguard|Wedding Platform|1.0|auth.login|^|vgseq={i:05}^usrName=zoë^cat=auth|login^url=https://example.com/?a=b\\c^devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ"
        )
    };
    format_rfc5424(&header, &body)
}

/// The sequence number from a message made by [`siem_message`].
pub fn seq_of(message: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(message).ok()?;
    let start = text.find("vgseq=")? + "vgseq=".len();
    text.get(start..start + 5)?.parse().ok()
}

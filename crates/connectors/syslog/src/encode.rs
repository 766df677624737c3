//! Pure RFC 5424 formatting and RFC 6587 / RFC 5426 framing.
//!
//! Nothing here touches the network: [`format_rfc5424`] builds one message, the `frame_*`
//! functions turn it into the bytes that go on a stream or into a datagram.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use vowguard_core::{Event, Severity};

use crate::config::{Facility, Framing, SyslogSeverity, Transport};

/// Maximum length of HOSTNAME (RFC 5424 section 6).
pub const MAX_HOSTNAME: usize = 255;
/// Maximum length of APP-NAME.
pub const MAX_APP_NAME: usize = 48;
/// Maximum length of PROCID.
pub const MAX_PROCID: usize = 128;
/// Maximum length of MSGID.
pub const MAX_MSGID: usize = 32;
/// Largest UDP datagram sent; longer messages are truncated (RFC 5426 recommends 2048).
pub const MAX_UDP_MESSAGE: usize = 2048;

/// The header fields of one RFC 5424 message. Start from [`Rfc5424Header::new`]:
///
/// ```
/// use vowguard_syslog::{Facility, Rfc5424Header, SyslogSeverity};
///
/// let header = Rfc5424Header::new(Facility::LOCAL4, SyslogSeverity::WARNING, chrono::Utc::now())
///     .hostname("web-1")
///     .app_name("vowguard")
///     .msgid("auth.login");
/// assert_eq!(header.procid, "-");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rfc5424Header<'a> {
    /// Facility; PRI = facility * 8 + severity.
    pub facility: Facility,
    /// Severity; PRI = facility * 8 + severity.
    pub severity: SyslogSeverity,
    /// Written as RFC 3339 UTC with milliseconds, e.g. `2026-06-20T12:03:07.123Z`.
    pub timestamp: DateTime<Utc>,
    /// Sanitised: printable ASCII, at most 255 octets, `-` if empty.
    pub hostname: &'a str,
    /// Sanitised: printable ASCII, at most 48 octets, `-` if empty.
    pub app_name: &'a str,
    /// Sanitised: printable ASCII, at most 128 octets, `-` if empty.
    pub procid: &'a str,
    /// Sanitised: printable ASCII, at most 32 octets, `-` if empty.
    pub msgid: &'a str,
}

impl<'a> Rfc5424Header<'a> {
    /// A header with every text field the nil value `-`.
    pub fn new(facility: Facility, severity: SyslogSeverity, timestamp: DateTime<Utc>) -> Self {
        Self {
            facility,
            severity,
            timestamp,
            hostname: "-",
            app_name: "-",
            procid: "-",
            msgid: "-",
        }
    }

    /// The HOSTNAME field (sanitised when written).
    #[must_use]
    pub fn hostname(mut self, hostname: &'a str) -> Self {
        self.hostname = hostname;
        self
    }

    /// The APP-NAME field (sanitised when written).
    #[must_use]
    pub fn app_name(mut self, app_name: &'a str) -> Self {
        self.app_name = app_name;
        self
    }

    /// The PROCID field (sanitised when written).
    #[must_use]
    pub fn procid(mut self, procid: &'a str) -> Self {
        self.procid = procid;
        self
    }

    /// The MSGID field (sanitised when written).
    #[must_use]
    pub fn msgid(mut self, msgid: &'a str) -> Self {
        self.msgid = msgid;
        self
    }
}

/// The PRI value: `facility * 8 + severity` (facility clamped to 23, severity to 7).
pub fn pri(facility: Facility, severity: SyslogSeverity) -> u8 {
    facility.0.min(23) * 8 + severity.0.min(7)
}

/// Makes a header field valid: every char outside printable US-ASCII (33..=126) becomes `_`,
/// the result is cut to `max` octets, and an empty field becomes the nil value `-`.
pub fn sanitize_header_field(value: &str, max: usize) -> String {
    let out: String = value
        .chars()
        .take(max)
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect();
    if out.is_empty() { "-".to_owned() } else { out }
}

/// Pure: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` (no structured data, no BOM).
///
/// Header fields are sanitised and truncated (see [`sanitize_header_field`]); MSG is appended
/// as-is (the caller's encoder makes it one line if LF framing is used; [`frame`] also
/// neutralises CR/LF for LF framing). An empty MSG is left out together with its separator.
pub fn format_rfc5424(header: &Rfc5424Header<'_>, msg: &str) -> Vec<u8> {
    let timestamp = header
        .timestamp
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = format!(
        "<{}>1 {} {} {} {} {} -",
        pri(header.facility, header.severity),
        timestamp,
        sanitize_header_field(header.hostname, MAX_HOSTNAME),
        sanitize_header_field(header.app_name, MAX_APP_NAME),
        sanitize_header_field(header.procid, MAX_PROCID),
        sanitize_header_field(header.msgid, MAX_MSGID),
    )
    .into_bytes();
    if !msg.is_empty() {
        out.reserve(msg.len() + 1);
        out.push(b' ');
        out.extend_from_slice(msg.as_bytes());
    }
    out
}

/// Escapes an RFC 5424 SD-PARAM value: `"`, `\` and `]` get a backslash (section 6.3.3).
///
/// Structured data is not sent today (SD is always `-`); this is here for senders that add it.
pub fn escape_sd_param(value: &str) -> Cow<'_, str> {
    if !value.contains(['"', '\\', ']']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Octet counting (RFC 6587 section 3.4.1): `LEN SP MSG`, LEN the decimal octet count of MSG.
pub fn frame_octet_counting(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 8);
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
    out
}

/// LF framing (RFC 6587 section 3.4.2): `MSG LF`, with every raw CR or LF inside MSG replaced
/// by a space so a message can neither end early nor inject a second record.
pub fn frame_lf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 1);
    out.extend(
        msg.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    out.push(b'\n');
    out
}

/// Cuts `msg` to at most `max` octets without splitting a UTF-8 sequence.
///
/// Used for UDP: messages over [`MAX_UDP_MESSAGE`] octets are truncated, not dropped.
pub fn truncate_utf8(msg: &[u8], max: usize) -> &[u8] {
    if msg.len() <= max {
        return msg;
    }
    let mut end = max;
    // Step back over continuation bytes (10xxxxxx) so the cut lands before a lead byte.
    while end > 0 && (msg[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &msg[..end]
}

/// The longest prefix of `value` with at most `max` characters (never splits a character).
pub fn truncate_chars(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((at, _)) => &value[..at],
        None => value,
    }
}

/// An event's severity on the 1..=10 scale of CEF `Severity` and LEEF `sev`: info 1, low 3,
/// medium 5, high 8, critical 10, raised to at least `round(risk_score / 10)` when the event
/// has a risk score, clamped to 1..=10.
pub fn severity_1_to_10(event: &Event) -> u8 {
    let base = match event.severity {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    };
    let from_risk = event
        .risk_score
        .map_or(0, |r| ((u16::from(r.min(100)) + 5) / 10) as u8);
    base.max(from_risk).clamp(1, 10)
}

/// The bytes sent for one message with the given transport and framing: a datagram payload
/// (truncated to [`MAX_UDP_MESSAGE`]) for UDP, a frame for TCP/TLS.
pub fn frame(transport: Transport, framing: Framing, msg: &[u8]) -> Vec<u8> {
    match (transport, framing) {
        (Transport::Udp, _) => truncate_utf8(msg, MAX_UDP_MESSAGE).to_vec(),
        (_, Framing::OctetCounting) => frame_octet_counting(msg),
        (_, Framing::Lf) => frame_lf(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn ts() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 20, 12, 3, 7).unwrap() + chrono::Duration::milliseconds(123)
    }

    #[test]
    fn truncate_chars_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hé", 5), "hé");
        assert_eq!(truncate_chars("abc", 0), "");
    }

    #[test]
    fn severity_scale_from_severity_and_risk() {
        use vowguard_core::Category;
        for (severity, risk, expected) in [
            (Severity::Info, None, 1),
            (Severity::Low, None, 3),
            (Severity::Medium, None, 5),
            (Severity::High, None, 8),
            (Severity::Critical, None, 10),
            (Severity::Info, Some(0), 1),
            (Severity::Info, Some(44), 4),
            (Severity::Low, Some(95), 10),
            (Severity::High, Some(20), 8),
            (Severity::Info, Some(255), 10),
        ] {
            let mut e = Event::new(Category::Authentication, "login", severity);
            e.risk_score = risk;
            assert_eq!(severity_1_to_10(&e), expected, "{severity:?} {risk:?}");
        }
    }

    fn header<'a>(
        hostname: &'a str,
        app: &'a str,
        procid: &'a str,
        msgid: &'a str,
    ) -> Rfc5424Header<'a> {
        Rfc5424Header {
            facility: Facility::LOCAL4,
            severity: SyslogSeverity::CRITICAL,
            timestamp: ts(),
            hostname,
            app_name: app,
            procid,
            msgid,
        }
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        assert_eq!(pri(Facility(0), SyslogSeverity(0)), 0);
        assert_eq!(pri(Facility::LOCAL4, SyslogSeverity::CRITICAL), 162);
        assert_eq!(pri(Facility::LOCAL4, SyslogSeverity::INFO), 166);
        assert_eq!(pri(Facility::AUTH, SyslogSeverity::ERROR), 35);
        assert_eq!(pri(Facility(23), SyslogSeverity(7)), 191);
    }

    #[test]
    fn golden_rfc5424_message() {
        let msg = format_rfc5424(
            &header("web-01.example.com", "vowguard", "4711", "auth.login"),
            "CEF:0|Acme|Vowguard|1.0|100|login failed|7|src=203.0.113.7",
        );
        assert_eq!(
            String::from_utf8(msg).unwrap(),
            "<162>1 2026-06-20T12:03:07.123Z web-01.example.com vowguard 4711 auth.login - CEF:0|Acme|Vowguard|1.0|100|login failed|7|src=203.0.113.7"
        );
    }

    #[test]
    fn timestamp_always_has_milliseconds() {
        let mut h = header("h", "a", "p", "m");
        h.timestamp = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let msg = String::from_utf8(format_rfc5424(&h, "x")).unwrap();
        assert!(
            msg.starts_with("<162>1 2026-01-02T03:04:05.000Z h a p m - x"),
            "{msg}"
        );
    }

    #[test]
    fn empty_fields_are_nil_and_empty_msg_is_left_out() {
        let msg = format_rfc5424(&header("", "", "", ""), "");
        assert_eq!(msg, b"<162>1 2026-06-20T12:03:07.123Z - - - - -".to_vec());
    }

    #[test]
    fn header_fields_are_sanitised_and_truncated() {
        let host = "a".repeat(300);
        let app = "b".repeat(60);
        let procid = "c".repeat(200);
        let msgid = "d".repeat(40);
        let msg =
            String::from_utf8(format_rfc5424(&header(&host, &app, &procid, &msgid), "m")).unwrap();
        let fields: Vec<&str> = msg.split(' ').collect();
        assert_eq!(fields[2].len(), MAX_HOSTNAME);
        assert_eq!(fields[3].len(), MAX_APP_NAME);
        assert_eq!(fields[4].len(), MAX_PROCID);
        assert_eq!(fields[5].len(), MAX_MSGID);

        assert_eq!(sanitize_header_field("web 01\r\nx", 255), "web_01__x");
        assert_eq!(sanitize_header_field("héllo", 255), "h_llo");
        assert_eq!(sanitize_header_field("ab\u{7f}\0", 255), "ab__");
        assert_eq!(sanitize_header_field("", 48), "-");
        assert_eq!(sanitize_header_field("ééé", 2), "__");
    }

    #[test]
    fn no_bom_before_msg() {
        let msg = format_rfc5424(&header("h", "a", "p", "m"), "LEEF:2.0|x");
        assert!(!msg.windows(3).any(|w| w == [0xEF, 0xBB, 0xBF]));
        assert!(msg.ends_with(b"- LEEF:2.0|x"));
    }

    #[test]
    fn sd_param_escaping() {
        assert_eq!(escape_sd_param("plain"), "plain");
        assert!(matches!(escape_sd_param("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_sd_param(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(escape_sd_param("]"), r"\]");
        assert_eq!(escape_sd_param("[é=ok]"), r"[é=ok\]");
    }

    #[test]
    fn octet_counting_frame_bytes() {
        let msg = format_rfc5424(&header("host", "app", "-", "ID47"), "hello");
        let framed = frame_octet_counting(&msg);
        assert_eq!(
            framed,
            b"55 <162>1 2026-06-20T12:03:07.123Z host app - ID47 - hello".to_vec()
        );
        // LEN counts octets, not chars.
        assert_eq!(frame_octet_counting("é".as_bytes()), b"2 \xc3\xa9".to_vec());
        assert_eq!(frame_octet_counting(b""), b"0 ".to_vec());
        let mut h = header("h", "a", "p", "m");
        h.severity = SyslogSeverity::INFO;
        let framed = frame_octet_counting(&format_rfc5424(&h, "CEF:0|a|b|c|d|e|5|k=v"));
        assert_eq!(
            framed,
            b"63 <166>1 2026-06-20T12:03:07.123Z h a p m - CEF:0|a|b|c|d|e|5|k=v".to_vec()
        );
    }

    #[test]
    fn lf_framing_neutralises_cr_and_lf() {
        assert_eq!(frame_lf(b"a\nb\r\nc"), b"a b  c\n".to_vec());
        assert_eq!(
            frame_lf(b"one\n<13>1 - - - - - - injected"),
            b"one <13>1 - - - - - - injected\n".to_vec()
        );
        assert_eq!(frame_lf(b""), b"\n".to_vec());
    }

    #[test]
    fn frame_picks_transport_rules() {
        assert_eq!(
            frame(Transport::Tcp, Framing::OctetCounting, b"ab"),
            b"2 ab".to_vec()
        );
        assert_eq!(
            frame(Transport::Tls, Framing::OctetCounting, b"ab"),
            b"2 ab".to_vec()
        );
        assert_eq!(
            frame(Transport::Tcp, Framing::Lf, b"a\nb"),
            b"a b\n".to_vec()
        );
        assert_eq!(
            frame(Transport::Udp, Framing::Lf, b"a\nb"),
            b"a\nb".to_vec()
        );
        let long = vec![b'x'; 5000];
        assert_eq!(
            frame(Transport::Udp, Framing::OctetCounting, &long).len(),
            MAX_UDP_MESSAGE
        );
    }

    #[test]
    fn udp_truncation_respects_utf8() {
        let mut msg = "a".repeat(2047).into_bytes();
        msg.extend_from_slice("é".as_bytes()); // bytes 2047..2049 would be split at 2048
        let cut = truncate_utf8(&msg, MAX_UDP_MESSAGE);
        assert_eq!(cut.len(), 2047);
        assert!(std::str::from_utf8(cut).is_ok());
        assert_eq!(truncate_utf8(b"short", 2048), b"short");
        let emoji = "😀".repeat(600); // 2400 octets, 4 per char
        let cut = truncate_utf8(emoji.as_bytes(), MAX_UDP_MESSAGE);
        assert_eq!(cut.len(), 2048);
        assert!(std::str::from_utf8(cut).is_ok());
    }

    /// An independent RFC 6587 octet-counting parser: frames back out of a byte stream.
    fn parse_octet_frames(mut input: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let space = input.iter().position(|&b| b == b' ')?;
            let digits = &input[..space];
            if digits.is_empty()
                || !digits.iter().all(u8::is_ascii_digit)
                || digits[0] == b'0' && digits.len() > 1
            {
                return None;
            }
            let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
            let body = input.get(space + 1..space + 1 + len)?;
            out.push(body.to_vec());
            input = &input[space + 1 + len..];
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn octet_counting_round_trips(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
            let stream: Vec<u8> = msgs.iter().flat_map(|m| frame_octet_counting(m)).collect();
            prop_assert_eq!(parse_octet_frames(&stream), Some(msgs));
        }

        #[test]
        fn lf_frame_has_one_lf_at_the_end(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
            let framed = frame_lf(&msg);
            prop_assert_eq!(framed.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert_eq!(framed.last(), Some(&b'\n'));
            prop_assert!(!framed.contains(&b'\r'));
            prop_assert_eq!(framed.len(), msg.len() + 1);
        }

        #[test]
        fn header_fields_are_always_valid(s in ".{0,300}") {
            for max in [MAX_HOSTNAME, MAX_APP_NAME, MAX_PROCID, MAX_MSGID] {
                let f = sanitize_header_field(&s, max);
                prop_assert!(!f.is_empty() && f.len() <= max);
                prop_assert!(f.bytes().all(|b| (33..=126).contains(&b)));
            }
        }

        #[test]
        fn formatted_header_has_exactly_seven_space_separated_fields(
            host in ".{0,40}", app in ".{0,40}", procid in ".{0,40}", msgid in ".{0,40}", body in ".{0,80}"
        ) {
            let msg = format_rfc5424(&header(&host, &app, &procid, &msgid), &body);
            let text = String::from_utf8(msg).unwrap();
            let parts: Vec<&str> = text.splitn(8, ' ').collect();
            prop_assert!(parts.len() >= 7);
            prop_assert_eq!(parts[6], "-");
            if body.is_empty() { prop_assert_eq!(parts.len(), 7); } else { prop_assert_eq!(parts[7], body.as_str()); }
        }

        #[test]
        fn sd_escape_leaves_no_bare_specials(s in ".{0,100}") {
            let escaped = escape_sd_param(&s);
            // Unescape independently and compare; also every special is preceded by a backslash.
            let mut out = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let next = chars.next();
                        prop_assert!(matches!(next, Some('"' | '\\' | ']')));
                        out.push(next.unwrap());
                    }
                    '"' | ']' => prop_assert!(false, "bare special in {escaped:?}"),
                    c => out.push(c),
                }
            }
            prop_assert_eq!(out, s);
        }

        #[test]
        fn udp_truncation_is_valid_utf8(s in ".{0,1200}") {
            let cut = truncate_utf8(s.as_bytes(), MAX_UDP_MESSAGE);
            prop_assert!(cut.len() <= MAX_UDP_MESSAGE);
            prop_assert!(std::str::from_utf8(cut).is_ok());
            prop_assert!(s.as_bytes().starts_with(cut));
            if s.len() > MAX_UDP_MESSAGE { prop_assert!(cut.len() > MAX_UDP_MESSAGE - 4); }
        }
    }
}

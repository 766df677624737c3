//! Alert emails (text + HTML MIME), checked with the `mail-parser` crate: CRLF lines within
//! 998 octets, only the headers vowguard writes, each once (event text cannot inject a
//! header line), From / To as configured, the Subject as rendered, both parts present and
//! decoding to exactly the rendered UTF-8 text, and no event text forging a labelled line
//! of the text part (each label starts at most one line).
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mail_parser::MessageParser;
use vowguard_email::{build_message, render};
use vowguard_fuzz::FuzzAlert;

const HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "user-agent",
    "x-priority",
    "importance",
    "auto-submitted",
    "x-vowguard-priority",
    "priority",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

const LABELS: &[&str] = &[
    "Priority",
    "Action",
    "Message",
    "User",
    "Source IP",
    "User agent",
    "Resource",
    "Records",
    "Wedding",
    "Wedding impact",
    "Risk score",
    "Threat intel",
    "Patterns",
    "Route",
    "Alert id",
    "Event id",
    "Timestamp",
];

fuzz_target!(|input: FuzzAlert| {
    let alert = input.build();
    let from: lettre::message::Mailbox = "vowguard <alerts@vowguard.example.org>".parse().unwrap();
    let to: lettre::message::Mailbox = "secops@example.org".parse().unwrap();
    let date = UNIX_EPOCH + Duration::from_secs(1_781_956_800);
    let Ok(built) = build_message(&alert, &from, &[to], "[vowguard]", date) else {
        panic!("an alert with default params always builds");
    };
    let raw = built.message.formatted();
    let rendered = render(&alert, "[vowguard]");

    // Lines: CRLF only, at most 998 octets (RFC 5322 2.1.1).
    for (i, line) in raw.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| {
            assert!(i == raw.split(|b| *b == b'\n').count() - 1, "bare LF");
            line
        });
        assert!(!line.contains(&b'\r'), "bare CR");
        assert!(line.len() <= 998, "a {}-octet line", line.len());
    }

    let message = MessageParser::default()
        .parse(&raw)
        .expect("mail-parser parses it");
    let mut seen: Vec<String> = Vec::new();
    for header in message.headers() {
        let name = header.name().to_ascii_lowercase();
        assert!(
            HEADERS.contains(&name.as_str()),
            "unexpected header {name:?}"
        );
        assert!(!seen.contains(&name), "header {name} twice");
        seen.push(name);
    }
    assert_eq!(message.subject(), Some(rendered.subject.as_str()));
    let from_addr = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(from_addr, Some("alerts@vowguard.example.org"));
    let to_all: Vec<&str> = message
        .to()
        .map(|a| a.iter().filter_map(|a| a.address()).collect())
        .unwrap_or_default();
    assert_eq!(to_all, ["secops@example.org"]);
    assert_eq!(
        message
            .header("X-Vowguard-Priority")
            .and_then(|h| h.as_text()),
        Some(alert.priority.as_str())
    );

    let text = message
        .body_text(0)
        .expect("a text part")
        .replace("\r\n", "\n");
    assert_eq!(text, rendered.text, "text part changed in transit");
    let html = message
        .body_html(0)
        .expect("an HTML part")
        .replace("\r\n", "\n");
    assert_eq!(html, rendered.html, "HTML part changed in transit");
    assert_eq!(message.text_body_count(), 1);
    assert_eq!(message.html_body_count(), 1);

    for label in LABELS {
        let prefix = format!("{label}:");
        let count = text.lines().filter(|l| l.starts_with(&prefix)).count();
        assert!(count <= 1, "{count} lines start with {prefix:?}:\n{text}");
    }
});

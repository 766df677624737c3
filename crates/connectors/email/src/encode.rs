//! Pure message building: an [`Alert`] in, a MIME message out. No network, no clock (the
//! `Date` is a parameter), so it is tested with fixed inputs and benchmarked.
//!
//! Every event field is attacker-controlled. The rules:
//!
//! * Headers only ever carry [`one_line`] text: control characters (CR and LF included, so
//!   no header injection), Unicode line separators and bidirectional overrides removed,
//!   whitespace collapsed, length capped. Addresses come from config or route parameters
//!   and are parsed as mailboxes, never from the event.
//! * The HTML part escapes `& < > " '` in every event-derived string ([`escape_html`]) and
//!   never turns event text into links.
//! * The subject is written so the receiver decodes exactly the rendered text: event text
//!   that looks like an RFC 2047 encoded word is itself encoded, never passed through.
//! * Both parts are quoted-printable, so long or non-ASCII event text cannot produce
//!   over-long lines or need 8BITMIME.

use std::fmt::Write as _;
use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use serde_json::Value;
use vowguard_core::{Alert, Error, Event, GroupSummary, Priority, WeddingPhase};

use crate::config::parse_mailbox;

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest event message shown in the body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Longest other event field shown in the body, in characters.
pub const MAX_FIELD_CHARS: usize = 512;
/// Longest `action` in the subject, in characters (so the wedding or summary still shows).
const MAX_SUBJECT_ACTION_CHARS: usize = 80;

/// How urgent the email is marked for mail clients (`X-Priority`, `Importance`, `Priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmailPriority {
    /// `X-Priority: 1 (Highest)`, `Importance: high`, `Priority: urgent`.
    Urgent,
    /// `X-Priority: 2 (High)`, `Importance: high`.
    High,
    /// `X-Priority: 3 (Normal)`, `Importance: normal`.
    Normal,
}

impl EmailPriority {
    /// From the route's `params.email_priority` (`urgent` | `high` | `normal`), else by the
    /// alert priority: P0 → urgent, P1 → high, others normal.
    pub fn for_alert(alert: &Alert) -> Result<Self, Error> {
        match alert.params.get("email_priority") {
            None | Some(Value::Null) => Ok(match alert.priority {
                Priority::P0Critical => Self::Urgent,
                Priority::P1High => Self::High,
                _ => Self::Normal,
            }),
            Some(Value::String(s)) if s == "urgent" => Ok(Self::Urgent),
            Some(Value::String(s)) if s == "high" => Ok(Self::High),
            Some(Value::String(s)) if s == "normal" => Ok(Self::Normal),
            Some(other) => Err(Error::config(format!(
                "route {:?}: `params.email_priority` must be \"urgent\", \"high\" or \"normal\", got {other}",
                one_line(&alert.route, 64)
            ))),
        }
    }

    /// The `X-Priority` value.
    pub fn x_priority(self) -> &'static str {
        match self {
            Self::Urgent => "1 (Highest)",
            Self::High => "2 (High)",
            Self::Normal => "3 (Normal)",
        }
    }

    /// The `Importance` value (RFC 2156).
    pub fn importance(self) -> &'static str {
        match self {
            Self::Urgent | Self::High => "high",
            Self::Normal => "normal",
        }
    }
}

/// The human-readable content of one alert email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// The subject, one sanitised line of at most [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part (a complete document, every event string escaped).
    pub html: String,
}

/// Makes text safe for a header (or a one-line field): removes control characters
/// (CR, LF, TAB, DEL, C1), Unicode line/paragraph separators and bidirectional controls,
/// collapses whitespace runs to one space, trims, and caps at `max_chars` characters
/// (ending with `…` when cut).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_control() || is_line_separator(c) {
                ' '
            } else {
                c
            }
        })
        .filter(|&c| !is_bidi_control(c))
        .collect();
    let mut out = String::with_capacity(cleaned.len().min(max_chars * 4));
    for word in cleaned.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    cap(out, max_chars)
}

fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn cap(text: String, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text;
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The subject: `{prefix} {P0_CRITICAL} {action} – {wedding or summary}`, sanitised.
pub fn subject(alert: &Alert, prefix: &str) -> String {
    let event = &alert.event;
    let action = one_line(&event.action, MAX_SUBJECT_ACTION_CHARS);
    let about = match (&event.enrichment.wedding, &event.wedding_id) {
        (Some(w), _) => format!(
            "wedding {} ({}, {})",
            w.wedding_id,
            phase_name(w.phase),
            w.date
        ),
        (None, Some(id)) => format!("wedding {id}"),
        (None, None) => event.summary(),
    };
    let about = one_line(&about, MAX_SUBJECT_CHARS);
    one_line(
        &format!("{prefix} {} {action} – {about}", alert.priority),
        MAX_SUBJECT_CHARS,
    )
}

fn phase_name(phase: WeddingPhase) -> &'static str {
    match phase {
        WeddingPhase::Planning => "planning",
        WeddingPhase::WeekOf => "week_of",
        WeddingPhase::DayOf => "day_of",
        WeddingPhase::PostWedding => "post_wedding",
    }
}

/// One labelled line of the alert body; the value is already [`one_line`] text.
struct Row {
    label: &'static str,
    value: String,
}

fn field(value: &str) -> String {
    one_line(value, MAX_FIELD_CHARS)
}

fn rows(alert: &Alert) -> Vec<Row> {
    let event: &Event = &alert.event;
    let mut rows = Vec::new();
    let mut push = |label: &'static str, value: String| {
        if !value.is_empty() {
            rows.push(Row { label, value });
        }
    };
    push("Priority", alert.priority.to_string());
    if let Some(group) = GroupSummary::of(alert) {
        push("Events", group.text());
    }
    push("Summary", field(&event.summary()));
    push("Action", field(&event.action));
    push(
        "Event",
        format!(
            "{} / outcome {} / severity {}",
            event.category, event.outcome, event.severity
        ),
    );
    if let Some(message) = &event.message {
        push("Message", one_line(message, MAX_MESSAGE_CHARS));
    }
    let who = match (&event.user_name, &event.user_id) {
        (Some(name), Some(id)) => format!("{} ({})", field(name), field(id)),
        (Some(name), None) => field(name),
        (None, Some(id)) => field(id),
        (None, None) => String::new(),
    };
    push("User", who);
    if let Some(ip) = event.source_ip {
        let mut from = ip.to_string();
        if let Some(geo) = &event.enrichment.geo {
            let place: Vec<String> = [
                geo.city.as_deref().map(field),
                geo.country_code.as_deref().map(field),
                geo.asn.map(|asn| format!("AS{asn}")),
                geo.org.as_deref().map(field),
            ]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
            if !place.is_empty() {
                let _ = write!(from, " ({})", place.join(", "));
            }
        }
        push("Source IP", from);
    }
    if let Some(agent) = &event.user_agent {
        push("User agent", field(agent));
    }
    let resource = [event.resource_type.as_deref(), event.resource_id.as_deref()]
        .into_iter()
        .flatten()
        .map(field)
        .collect::<Vec<_>>()
        .join(" ");
    push("Resource", resource);
    if let Some(n) = event.record_count {
        push("Records", n.to_string());
    }
    for (label, value) in [
        ("Domain", &event.domain),
        ("URL", &event.url),
        ("File hash", &event.file_hash),
    ] {
        if let Some(value) = value {
            push(label, field(value));
        }
    }
    match (&event.enrichment.wedding, &event.wedding_id) {
        (Some(w), _) => {
            let mut text = format!(
                "{} – {} – {} ({} days until)",
                field(&w.wedding_id),
                phase_name(w.phase),
                w.date,
                w.days_until
            );
            if let Some(guests) = w.guest_count {
                let _ = write!(text, ", {guests} guests");
            }
            if let Some(vendors) = w.vendor_count {
                let _ = write!(text, ", {vendors} vendors");
            }
            if w.weekend {
                text.push_str(", weekend");
            }
            push("Wedding", text);
        }
        (None, Some(id)) => push("Wedding", field(id)),
        (None, None) => {}
    }
    let impact = &alert.impact;
    let mut effects = Vec::new();
    if impact.active_weddings_affected > 0 {
        effects.push(format!(
            "{} active weddings affected",
            impact.active_weddings_affected
        ));
    }
    if impact.couples_data_at_risk {
        effects.push("couples' data at risk".to_owned());
    }
    if impact.vendor_accounts_compromised > 0 {
        effects.push(format!(
            "{} vendor accounts compromised",
            impact.vendor_accounts_compromised
        ));
    }
    if impact.payment_data_exposed {
        effects.push("payment data exposed".to_owned());
    }
    if impact.guest_lists_accessed > 0 {
        effects.push(format!(
            "{} guest lists accessed",
            impact.guest_lists_accessed
        ));
    }
    if impact.wedding_photos_at_risk {
        effects.push("wedding photos at risk".to_owned());
    }
    push("Wedding impact", effects.join(", "));
    if let Some(score) = event.risk_score {
        push("Risk score", format!("{score}/100"));
    }
    if let Some(threat) = &event.enrichment.threat {
        let mut text = format!("{:?}, score {}/100", threat.verdict, threat.score).to_lowercase();
        if !threat.categories.is_empty() {
            let _ = write!(
                text,
                "; categories: {}",
                field(&threat.categories.join(", "))
            );
        }
        if !threat.actors.is_empty() {
            let _ = write!(text, "; actors: {}", field(&threat.actors.join(", ")));
        }
        if let Some(tlp) = &threat.tlp {
            let _ = write!(text, "; {}", field(tlp));
        }
        let providers: Vec<String> = threat
            .providers
            .iter()
            .map(|p| {
                format!(
                    "{} {} {:?}",
                    field(&p.provider),
                    field(&p.indicator),
                    p.verdict
                )
                .to_lowercase()
            })
            .collect();
        if !providers.is_empty() {
            let _ = write!(text, "; providers: {}", providers.join(", "));
        }
        push("Threat intel", field(&text));
    }
    let patterns: Vec<String> = event
        .enrichment
        .patterns
        .iter()
        .map(|p| {
            let mut text = format!("{} ({:.0}%)", field(&p.pattern), p.confidence * 100.0);
            if !p.indicators.is_empty() {
                let _ = write!(text, ": {}", field(&p.indicators.join(", ")));
            }
            text
        })
        .collect();
    push("Patterns", patterns.join("; "));
    push("Route", field(&alert.route));
    push("Alert id", field(&alert.id));
    push("Event id", field(&event.id));
    push("Timestamp", event.timestamp_rfc3339());
    rows
}

/// Renders the subject, the text part and the HTML part of an alert email.
pub fn render(alert: &Alert, subject_prefix: &str) -> RenderedEmail {
    let subject = subject(alert, subject_prefix);
    let rows = rows(alert);
    let reasons: Vec<String> = alert.reasons.iter().map(|r| field(r)).collect();
    let headline = format!(
        "{} {}",
        alert.priority,
        one_line(&alert.event.action, MAX_SUBJECT_ACTION_CHARS)
    );

    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0) + 1;
    // Every line after the headline (which starts with the priority) begins with a label
    // or an indent: event text never starts a line, so it cannot forge one.
    let mut text = format!("{headline}\n\n");
    for row in &rows {
        let _ = writeln!(text, "{:<width$} {}", format!("{}:", row.label), row.value);
    }
    if !reasons.is_empty() {
        text.push_str("\nWhy this priority:\n");
        for reason in &reasons {
            let _ = writeln!(text, "  - {reason}");
        }
    }
    text.push_str("\n-- \nSent by vowguard.\n");

    let colour = match alert.priority {
        Priority::P0Critical => "#b00020",
        Priority::P1High => "#d35400",
        Priority::P2Medium => "#b7950b",
        Priority::P3Low => "#2471a3",
        Priority::P4Info => "#566573",
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222\">\n\
         <h2 style=\"color:{colour};margin:0 0 8px 0\">{}</h2>\n\
         <table cellpadding=\"4\" cellspacing=\"0\" style=\"border-collapse:collapse\">\n",
        escape_html(&subject),
        escape_html(&headline),
    );
    for row in &rows {
        let _ = writeln!(
            html,
            "<tr><th align=\"left\" valign=\"top\" style=\"padding-right:12px\">{}</th><td>{}</td></tr>",
            escape_html(row.label),
            escape_html(&row.value)
        );
    }
    html.push_str("</table>\n");
    if !reasons.is_empty() {
        html.push_str("<h3>Why this priority</h3>\n<ul>\n");
        for reason in &reasons {
            let _ = writeln!(html, "<li>{}</li>", escape_html(reason));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<p style=\"color:#777;font-size:12px\">Sent by vowguard.</p>\n</body></html>\n");

    RenderedEmail {
        subject,
        text,
        html,
    }
}

/// The recipients for this alert: the route's `params.recipients` (an array of addresses,
/// or one address) when present, else `default`.
pub fn recipients(alert: &Alert, default: &[Mailbox]) -> Result<Vec<Mailbox>, Error> {
    let route = || one_line(&alert.route, 64);
    let list: Vec<&Value> = match alert.params.get("recipients") {
        None | Some(Value::Null) => return Ok(default.to_vec()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::String(_)) => vec![one],
        Some(other) => {
            return Err(Error::config(format!(
                "route {:?}: `params.recipients` must be an array of email addresses, got {}",
                route(),
                json_kind(other)
            )));
        }
    };
    if list.is_empty() {
        return Err(Error::config(format!(
            "route {:?}: `params.recipients` is empty",
            route()
        )));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let text = item.as_str().ok_or_else(|| {
                Error::config(format!(
                    "route {:?}: `params.recipients[{i}]` must be a string, got {}",
                    route(),
                    json_kind(item)
                ))
            })?;
            parse_mailbox(text).map_err(|reason| {
                Error::config(format!(
                    "route {:?}: `params.recipients[{i}]`: {reason}",
                    route()
                ))
            })
        })
        .collect()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `Message-ID` of an alert's email: `<vowguard.{alert id}@{sender domain}>`. Stable
/// for one alert, so a retried delivery carries the same id and mail clients collapse
/// duplicates.
pub fn message_id(alert: &Alert, from: &Mailbox) -> String {
    let local: String = alert
        .id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let local = if local.is_empty() {
        format!(
            "{}",
            alert.created_at.timestamp_nanos_opt().unwrap_or_default()
        )
    } else {
        local
    };
    let domain = from.email.domain();
    let domain = if !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        domain.to_ascii_lowercase()
    } else {
        "vowguard.invalid".to_owned()
    };
    format!("<vowguard.{local}@{domain}>")
}

/// The alert's email, ready to send, and its `Message-ID`.
#[derive(Debug, Clone)]
pub struct BuiltMessage {
    /// The message (headers, envelope and multipart/alternative body).
    pub message: Message,
    /// Its `Message-ID`, with angle brackets.
    pub message_id: String,
}

/// Longest run of UTF-8 bytes in one encoded word: 39 bytes are 52 base64 characters, so
/// `=?utf-8?b?…?=` is 64 characters and `Subject: ` plus one word stays within 78.
const ENCODED_WORD_BYTES: usize = 39;

/// The `Subject` header, so that a receiver decodes exactly `subject`.
///
/// lettre passes every ASCII word through as it is, so event text shaped like an RFC 2047
/// encoded word (`=?utf-8?q?…?=`) would be decoded by the receiver: the subject it shows
/// differs from the one vowguard rendered, and the whitespace around such words vanishes.
/// A subject that contains `=?` or anything beyond printable ASCII is therefore written
/// entirely as base64 encoded words (each holding whole characters, RFC 2047 section 5),
/// folded one word per line; any other subject goes through lettre's own encoder.
fn subject_header(subject: &str) -> HeaderValue {
    use base64::Engine as _;
    let name = HeaderName::new_from_ascii_str("Subject");
    let plain = subject.bytes().all(|b| (b' '..=b'~').contains(&b));
    if plain && !subject.contains("=?") {
        return HeaderValue::new(name, subject.to_owned());
    }
    let mut encoded = String::with_capacity(subject.len() * 2);
    let mut word_start = 0;
    let emit = |chunk: &str, encoded: &mut String| {
        if !encoded.is_empty() {
            encoded.push_str("\r\n ");
        }
        encoded.push_str("=?utf-8?b?");
        base64::engine::general_purpose::STANDARD.encode_string(chunk, encoded);
        encoded.push_str("?=");
    };
    for (at, c) in subject.char_indices() {
        if at + c.len_utf8() - word_start > ENCODED_WORD_BYTES {
            emit(&subject[word_start..at], &mut encoded);
            word_start = at;
        }
    }
    if word_start < subject.len() {
        emit(&subject[word_start..], &mut encoded);
    }
    HeaderValue::dangerous_new_pre_encoded(name, subject.to_owned(), encoded)
}

/// Builds the alert's message: From, To (the route's recipients or `to`), sanitised
/// Subject, `Date` = `date`, a stable `Message-ID`, priority headers and a
/// multipart/alternative body with a text/plain and a text/html part.
pub fn build_message(
    alert: &Alert,
    from: &Mailbox,
    to: &[Mailbox],
    subject_prefix: &str,
    date: SystemTime,
) -> Result<BuiltMessage, Error> {
    let recipients = recipients(alert, to)?;
    let priority = EmailPriority::for_alert(alert)?;
    let rendered = render(alert, subject_prefix);
    let message_id = message_id(alert, from);

    let mut builder = Message::builder()
        .from(from.clone())
        .raw_header(subject_header(&rendered.subject))
        .date(date)
        .message_id(Some(message_id.clone()))
        .user_agent(concat!("vowguard/", env!("CARGO_PKG_VERSION")).to_owned());
    for mailbox in recipients {
        builder = builder.to(mailbox);
    }
    let header = |name: &'static str, value: &str| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_owned())
    };
    builder = builder
        .raw_header(header("X-Priority", priority.x_priority()))
        .raw_header(header("Importance", priority.importance()))
        .raw_header(header("Auto-Submitted", "auto-generated"))
        .raw_header(header("X-Vowguard-Priority", alert.priority.as_str()));
    if priority == EmailPriority::Urgent {
        builder = builder.raw_header(header("Priority", "urgent"));
    }

    let part = |content_type: ContentType, body: String| -> Result<SinglePart, Error> {
        let body = Body::new_with_encoding(body, ContentTransferEncoding::QuotedPrintable)
            .map_err(|_| Error::encode("cannot quoted-printable encode the alert body"))?;
        Ok(SinglePart::builder().header(content_type).body(body))
    };
    let body = MultiPart::alternative()
        .singlepart(part(ContentType::TEXT_PLAIN, rendered.text)?)
        .singlepart(part(ContentType::TEXT_HTML, rendered.html)?);
    let message = builder
        .multipart(body)
        .map_err(|e| Error::encode(format!("cannot build the alert email: {e}")))?;
    Ok(BuiltMessage {
        message,
        message_id,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use chrono::{NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;
    use serde_json::json;
    use vowguard_core::{
        Category, Enrichment, Geo, PatternMatch, Season, Severity, ThreatIntel, Verdict,
        WeddingContext, WeddingImpact,
    };

    use super::*;

    fn alert(event: Event) -> Alert {
        let mut alert = Alert::new(Arc::new(event), Priority::P0Critical, "critical");
        alert.id = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".into();
        alert
    }

    fn export_event() -> Event {
        let mut e = Event::new(
            Category::DataExport,
            "guest_list.export",
            Severity::Critical,
        );
        e.id = "evt-1".into();
        e.timestamp = Utc.with_ymd_and_hms(2026, 6, 20, 12, 3, 7).unwrap();
        e.message = Some("guest list exported".into());
        e.user_name = Some("mallory".into());
        e.user_id = Some("u-42".into());
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.risk_score = Some(91);
        e.record_count = Some(450);
        e.wedding_id = Some("w-1".into());
        e.enrichment = Enrichment {
            wedding: Some(WeddingContext {
                wedding_id: "w-1".into(),
                date: NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
                timezone: "Europe/London".into(),
                phase: WeddingPhase::DayOf,
                days_until: 0,
                weekend: true,
                season: Season::Summer,
                guest_count: Some(180),
                vendor_count: Some(12),
            }),
            threat: Some(ThreatIntel {
                verdict: Verdict::Malicious,
                score: 95,
                categories: vec!["brute-force".into()],
                ..ThreatIntel::default()
            }),
            geo: Some(Geo {
                country_code: Some("GB".into()),
                city: Some("London".into()),
                ..Geo::default()
            }),
            patterns: vec![PatternMatch {
                pattern: "guest_list_scraping".into(),
                confidence: 0.9,
                indicators: vec!["u-42".into()],
            }],
            vulnerabilities: vec![],
            not_enriched: vec![],
        };
        e
    }

    fn mailbox(s: &str) -> Mailbox {
        s.parse().unwrap()
    }

    #[test]
    fn subject_golden() {
        let a = alert(export_event());
        assert_eq!(
            subject(&a, "[vowguard]"),
            "[vowguard] P0_CRITICAL guest_list.export – wedding w-1 (day_of, 2026-06-20)"
        );
        let mut e = export_event();
        e.enrichment.wedding = None;
        assert_eq!(
            subject(&alert(e.clone()), "[x]"),
            "[x] P0_CRITICAL guest_list.export – wedding w-1"
        );
        e.wedding_id = None;
        assert_eq!(
            subject(&alert(e), ""),
            "P0_CRITICAL guest_list.export – guest list exported"
        );
    }

    #[test]
    fn subject_is_sanitised_and_capped() {
        let mut e = export_event();
        e.enrichment.wedding = None;
        e.wedding_id = None;
        e.action = "login\r\nBcc: victim@example.org".into();
        e.message = Some(format!(
            "a\u{2028}b\u{202e}c\t\x7f\x1b[31m {}",
            "x".repeat(10_000)
        ));
        let s = subject(&alert(e), "[vowguard]");
        assert!(
            s.starts_with("[vowguard] P0_CRITICAL login Bcc: victim@example.org – a bc [31m xxx"),
            "{s}"
        );
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS);
        assert!(s.ends_with('…'));
        assert!(!s.chars().any(|c| c.is_control()));
    }

    /// Decodes a header written by [`subject_header`] (base64 encoded words only).
    fn decode_words(encoded: &str) -> String {
        use base64::Engine as _;
        let mut bytes = Vec::new();
        for word in encoded.split("\r\n ") {
            let b64 = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap_or_else(|| panic!("not an encoded word: {word:?}"));
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            );
        }
        String::from_utf8(bytes).unwrap()
    }

    fn header_line(value: &HeaderValue) -> String {
        let mut headers = lettre::message::header::Headers::new();
        headers.insert_raw(value.clone());
        headers.to_string()
    }

    #[test]
    fn subject_shaped_like_an_encoded_word_is_itself_encoded() {
        let forged = "[vowguard] P0_CRITICAL =?utf-8?q?forged?= \u{2013} x =?utf-8?b?QQ==?=";
        let line = header_line(&subject_header(forged));
        assert_eq!(
            line,
            "Subject: =?utf-8?b?W3Zvd2d1YXJkXSBQMF9DUklUSUNBTCA9P3V0Zi04P3E/Zm9yZ2Vk?=\r\n \
             =?utf-8?b?Pz0g4oCTIHggPT91dGYtOD9iP1FRPT0/PQ==?=\r\n"
        );
        let value = line
            .strip_prefix("Subject: ")
            .and_then(|l| l.strip_suffix("\r\n"))
            .unwrap();
        assert_eq!(decode_words(value), forged);
        // ASCII with no `=?` stays readable.
        assert_eq!(
            header_line(&subject_header("[vowguard] P1_HIGH login.failed")),
            "Subject: [vowguard] P1_HIGH login.failed\r\n"
        );
    }

    proptest! {
        #[test]
        fn subject_header_decodes_to_the_subject(subject in "\\PC{0,200}") {
            let line = header_line(&subject_header(&subject));
            let value = line.strip_prefix("Subject: ").unwrap().strip_suffix("\r\n").unwrap();
            if value.starts_with("=?utf-8?b?") {
                for l in line.split("\r\n") {
                    prop_assert!(l.len() <= 78, "{l:?}");
                }
                prop_assert_eq!(decode_words(value), subject);
            } else {
                prop_assert!(!subject.contains("=?"));
            }
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn render_contains_the_context() {
        let mut a = alert(export_event());
        a.reasons = vec!["severity critical".into(), "day-of wedding".into()];
        a.impact = WeddingImpact {
            active_weddings_affected: 1,
            guest_lists_accessed: 1,
            ..WeddingImpact::default()
        };
        let r = render(&a, "[vowguard]");
        for needle in [
            "P0_CRITICAL guest_list.export",
            "mallory (u-42)",
            "203.0.113.7 (London, GB)",
            "w-1 – day_of – 2026-06-20 (0 days until), 180 guests, 12 vendors, weekend",
            "91/100",
            "malicious, score 95/100; categories: brute-force",
            "guest_list_scraping (90%): u-42",
            "1 active weddings affected, 1 guest lists accessed",
            "severity critical",
            "critical",
            "evt-1",
            "2026-06-20T12:03:07.000Z",
            "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b",
        ] {
            assert!(
                r.text.contains(needle),
                "text lacks {needle:?}:\n{}",
                r.text
            );
            assert!(
                r.html.contains(needle),
                "html lacks {needle:?}:\n{}",
                r.html
            );
        }
        assert!(r.text.contains("Route:"), "{}", r.text);
        assert!(r.html.contains("<li>day-of wedding</li>"), "{}", r.html);
    }

    #[test]
    fn event_text_cannot_forge_a_label_line() {
        let mut e = export_event();
        e.message = Some("Priority: P4_INFO".into());
        e.action = "Priority: P4_INFO\nRoute: ignore".into();
        e.user_name = Some("x\r\nPriority: P4_INFO".into());
        let mut a = alert(e);
        a.reasons = vec!["Priority: P4_INFO\nfake".into()];
        let r = render(&a, "[vowguard]");
        let mut lines = r.text.lines();
        let headline = lines.next().unwrap();
        assert!(headline.starts_with("P0_CRITICAL "), "{headline}");
        let priority_lines: Vec<&str> = r
            .text
            .lines()
            .filter(|l| l.trim_start().starts_with("Priority"))
            .collect();
        assert_eq!(priority_lines.len(), 1, "{}", r.text);
        assert!(priority_lines[0].contains("P0_CRITICAL"), "{}", r.text);
        // Every line is the headline, blank, a labelled row, an indented reason or ours.
        let labels: Vec<&str> = rows(&a).iter().map(|row| row.label).collect();
        for line in lines {
            let ok = line.is_empty()
                || line.starts_with("  - ")
                || ["Why this priority:", "-- ", "Sent by vowguard."].contains(&line)
                || labels.iter().any(|l| line.starts_with(&format!("{l}:")));
            assert!(ok, "unlabelled line {line:?} in:\n{}", r.text);
        }
        assert!(!r.html.contains("<p>Priority: P4_INFO</p>"), "{}", r.html);
    }

    #[test]
    fn a_grouped_alert_says_how_many_events_and_when() {
        let mut a = alert(export_event());
        a.params.insert("group_size".into(), 12.into());
        a.params
            .insert("group_first_seen".into(), "2026-06-20T12:00:00Z".into());
        a.params
            .insert("group_last_seen".into(), "2026-06-20T12:03:07Z".into());
        let r = render(&a, "[vowguard]");
        let expected = "12 events from 2026-06-20 12:00:00 to 12:03:07 UTC";
        assert!(r.text.contains("Events:"), "{}", r.text);
        assert!(r.text.contains(expected), "{}", r.text);
        assert!(r.html.contains(expected), "{}", r.html);
    }

    #[test]
    fn hostile_text_is_escaped_in_html() {
        let mut e = export_event();
        e.message = Some("<script>alert('x')</script> & \"q\"".into());
        e.user_name = Some("<img src=x onerror=alert(1)>".into());
        let mut a = alert(e);
        a.reasons = vec!["<b>bold</b>".into()];
        let r = render(&a, "[vowguard]");
        assert!(!r.html.contains("<script>"));
        assert!(!r.html.contains("<img"));
        assert!(!r.html.contains("<b>"));
        assert!(
            r.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
        assert!(
            r.text.contains("<script>alert('x')</script>"),
            "text is text"
        );
    }

    #[test]
    fn long_message_is_capped_in_body() {
        let mut e = export_event();
        e.message = Some("y".repeat(20_000));
        let r = render(&alert(e), "[vowguard]");
        assert!(r.text.len() < 10_000, "{}", r.text.len());
        assert!(
            r.text
                .contains(&format!("{}…", "y".repeat(MAX_MESSAGE_CHARS - 1)))
        );
    }

    #[test]
    fn priority_headers_from_params_or_priority() {
        let mut a = alert(export_event());
        assert_eq!(EmailPriority::for_alert(&a).unwrap(), EmailPriority::Urgent);
        a.priority = Priority::P1High;
        assert_eq!(EmailPriority::for_alert(&a).unwrap(), EmailPriority::High);
        a.priority = Priority::P3Low;
        assert_eq!(EmailPriority::for_alert(&a).unwrap(), EmailPriority::Normal);
        a.params.insert("email_priority".into(), json!("urgent"));
        assert_eq!(EmailPriority::for_alert(&a).unwrap(), EmailPriority::Urgent);
        a.params.insert("email_priority".into(), json!("asap"));
        let err = EmailPriority::for_alert(&a).unwrap_err();
        assert_eq!(err.kind(), vowguard_core::ErrorKind::Config);
        assert!(err.to_string().contains("params.email_priority"), "{err}");
    }

    #[test]
    fn recipients_from_params() {
        let default = vec![mailbox("secops@example.org")];
        let mut a = alert(export_event());
        assert_eq!(recipients(&a, &default).unwrap(), default);
        a.params.insert(
            "recipients".into(),
            json!(["a@example.org", "B <b@example.org>"]),
        );
        let got = recipients(&a, &default).unwrap();
        assert_eq!(
            got,
            vec![mailbox("a@example.org"), mailbox("B <b@example.org>")]
        );
        a.params.insert("recipients".into(), json!("c@example.org"));
        assert_eq!(
            recipients(&a, &default).unwrap(),
            vec![mailbox("c@example.org")]
        );
        for (bad, expected) in [
            (json!([]), "is empty"),
            (
                json!(["ok@example.org", "x@example.org\r\nBcc: v@example.org"]),
                "`params.recipients[1]`",
            ),
            (json!([1]), "`params.recipients[0]` must be a string"),
            (json!({"a": 1}), "must be an array"),
        ] {
            a.params.insert("recipients".into(), bad);
            let err = recipients(&a, &default).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn message_has_headers_and_parts() {
        let a = alert(export_event());
        let date = UNIX_EPOCH + Duration::from_secs(1_781_956_987);
        let built = build_message(
            &a,
            &mailbox("vowguard <alerts@Example.org>"),
            &[mailbox("secops@example.org")],
            "[vowguard]",
            date,
        )
        .unwrap();
        assert_eq!(
            built.message_id,
            "<vowguard.0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b@example.org>"
        );
        let raw = String::from_utf8(built.message.formatted()).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        for needle in [
            "From: vowguard <alerts@Example.org>\r\n",
            "To: secops@example.org\r\n",
            "Subject: [vowguard] P0_CRITICAL guest_list.export – wedding w-1 (day_of, 2026-06-20)",
            "Message-ID: <vowguard.0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b@example.org>\r\n",
            "X-Priority: 1 (Highest)\r\n",
            "Importance: high\r\n",
            "Priority: urgent\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "Date: ",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/alternative;",
        ] {
            // The subject has a non-ASCII dash, so it is RFC 2047 encoded; check it decoded
            // in the integration tests, and only the ASCII headers here.
            if needle.starts_with("Subject") {
                assert!(head.contains("Subject: "), "{head}");
                continue;
            }
            assert!(head.contains(needle), "missing {needle:?} in\n{head}");
        }
        assert!(
            body.contains("Content-Type: text/plain; charset=utf-8"),
            "{body}"
        );
        assert!(
            body.contains("Content-Type: text/html; charset=utf-8"),
            "{body}"
        );
        assert!(
            body.contains("Content-Transfer-Encoding: quoted-printable"),
            "{body}"
        );
        assert!(raw.is_ascii(), "7-bit clean: no 8BITMIME needed");
        let envelope = built.message.envelope();
        assert_eq!(envelope.to().len(), 1);
        assert_eq!(envelope.from().unwrap().to_string(), "alerts@Example.org");
    }

    proptest! {
        #[test]
        fn one_line_never_has_controls(input in any::<String>(), max in 1usize..300) {
            let out = one_line(&input, max);
            prop_assert!(!out.chars().any(|c| c.is_control() || is_line_separator(c) || is_bidi_control(c)));
            prop_assert!(out.chars().count() <= max);
            prop_assert!(!out.contains("  "));
            prop_assert_eq!(out.trim(), out.as_str());
        }

        #[test]
        fn escape_html_leaves_no_markup(input in any::<String>()) {
            let out = escape_html(&input);
            prop_assert!(!out.contains(['<', '>', '"', '\'']));
            // Every `&` starts one of our entities.
            for (i, _) in out.match_indices('&') {
                let rest = &out[i..];
                prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| rest.starts_with(e)));
            }
        }

        #[test]
        fn hostile_events_never_add_headers(action in any::<String>(), message in any::<String>(), user in any::<String>()) {
            let mut e = Event::new(Category::Authentication, action, Severity::High);
            e.message = Some(message);
            e.user_name = Some(user);
            let a = Alert::new(Arc::new(e), Priority::P1High, "r");
            let built = build_message(&a, &"a@example.org".parse().unwrap(), &["b@example.org".parse().unwrap()], "[v]", UNIX_EPOCH).unwrap();
            let raw = built.message.formatted();
            let raw = String::from_utf8_lossy(&raw);
            let head = raw.split("\r\n\r\n").next().unwrap();
            let names: Vec<&str> = head
                .split("\r\n")
                .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
                .map(|l| l.split(':').next().unwrap())
                .collect();
            prop_assert_eq!(names, vec![
                "From", "Subject", "Date", "Message-ID", "User-Agent", "To", "X-Priority",
                "Importance", "Auto-Submitted", "X-Vowguard-Priority", "MIME-Version", "Content-Type",
            ]);
            prop_assert_eq!(built.message.envelope().to().len(), 1);
        }
    }
}

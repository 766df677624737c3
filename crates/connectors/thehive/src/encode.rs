//! Pure functions from a [`TicketDraft`] / [`TicketUpdate`] to TheHive 5 request bodies.
//!
//! Every text from a draft may come from an event and is attacker-controlled. JSON encoding
//! is serde_json's; text TheHive renders as Markdown (description, comments) is
//! backslash-escaped so it cannot add links, images, HTML or headings; one-line fields
//! (title, tags) lose control characters; everything is capped in length.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vowguard_core::{Event, Priority, TicketDraft, TicketUpdate};

use crate::config::{Pap, Tlp};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 512;
/// Longest description (and description after an append), in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 100_000;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 20_000;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 128;
/// Most tags on one alert.
pub const MAX_TAGS: usize = 50;
/// Most observables on one alert.
pub const MAX_OBSERVABLES: usize = 50;
/// Longest observable value, in characters (longer values are left out, not cut: a cut
/// IOC would be a wrong IOC).
pub const MAX_OBSERVABLE_CHARS: usize = 2_048;

/// The configured parts of every alert.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AlertTemplate {
    /// Alert `type`.
    pub alert_type: String,
    /// Alert `source`.
    pub source: String,
    /// Tags on every alert.
    pub tags: Vec<String>,
    /// TLP.
    pub tlp: Tlp,
    /// PAP.
    pub pap: Pap,
    /// Severity for P0..P4.
    pub severity_by_priority: [u8; 5],
    /// `caseTemplate`, when set.
    pub case_template: Option<String>,
}

/// Backslash-escapes every ASCII punctuation character Markdown gives meaning to, and turns
/// control characters other than newlines into spaces: the text renders as itself.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '<' | '>' | '~' | '&' | '=' | ':' | '"' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("  \n"),
            '\r' => {}
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `text` on one line (control characters become spaces), at most `max` characters (an
/// ellipsis marks a cut).
pub fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out.trim().to_owned()
}

/// At most `max` characters of `text`, an ellipsis marking a cut.
pub fn cap(text: &str, max: usize) -> String {
    if text.chars().nth(max).is_none() {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Longest fingerprint used as `sourceRef` as it is.
pub const MAX_PLAIN_SOURCE_REF_CHARS: usize = 200;

/// The alert's `sourceRef` for a fingerprint: the fingerprint itself when it is 1..=200
/// characters of `A-Z a-z 0-9 . _ : -`, else `sha256-<hex of the fingerprint>`, so
/// text from an event can never reach TheHive's dedup key or its search.
pub fn source_ref(fingerprint: &str) -> String {
    let plain = !fingerprint.is_empty()
        && fingerprint.chars().count() <= MAX_PLAIN_SOURCE_REF_CHARS
        && fingerprint
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    if plain {
        return fingerprint.to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, fingerprint.as_bytes());
    let mut out = String::from("sha256-");
    vowguard_core::hex::encode_into(digest.as_ref(), &mut out);
    out
}

/// The `POST /api/v1/alert` body for `draft`.
pub fn alert_body(draft: &TicketDraft, template: &AlertTemplate) -> Value {
    let mut body = json!({
        "type": template.alert_type,
        "source": template.source,
        "sourceRef": source_ref(&draft.fingerprint),
        "title": title(draft),
        "description": description(draft),
        "severity": severity(template, draft.priority),
        "date": draft.opened_at.timestamp_millis(),
        "tags": tags(draft, template),
        "tlp": template.tlp.number(),
        "pap": template.pap.number(),
        "observables": draft
            .event
            .as_deref()
            .map(|e| observables(e, template))
            .unwrap_or_default(),
    });
    if let Some(case_template) = &template.case_template {
        body["caseTemplate"] = Value::String(case_template.clone());
    }
    body
}

/// The alert title: the draft's, on one line, or the incident id when it is empty.
pub fn title(draft: &TicketDraft) -> String {
    let title = one_line(&draft.title, MAX_TITLE_CHARS);
    if title.is_empty() {
        format!("vowguard incident {}", one_line(&draft.incident_id, 128))
    } else {
        title
    }
}

/// The alert severity for a priority.
pub fn severity(template: &AlertTemplate, priority: Priority) -> u8 {
    template.severity_by_priority[usize::from(priority.level())]
}

/// The Markdown description: the draft's text, the incident facts, the tasks.
pub fn description(draft: &TicketDraft) -> String {
    let mut out = String::new();
    if !draft.description.trim().is_empty() {
        out.push_str(&escape_markdown(&draft.description));
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "**vowguard incident** {}  \n**Priority** {}  \n**Opened** {}  \n",
        escape_markdown(&draft.incident_id),
        draft.priority.as_str(),
        draft.opened_at.to_rfc3339(),
    ));
    if !draft.wedding_ids.is_empty() {
        let weddings: Vec<String> = draft
            .wedding_ids
            .iter()
            .map(|w| escape_markdown(&one_line(w, 128)))
            .collect();
        out.push_str(&format!("**Weddings** {}  \n", weddings.join(", ")));
    }
    if let Some(event) = &draft.event {
        out.push_str(&format!(
            "**Event** {} ({} {}, {})  \n",
            escape_markdown(&one_line(&event.id, 128)),
            event.category.as_str(),
            escape_markdown(&one_line(&event.action, 128)),
            event.severity.as_str(),
        ));
    }
    if !draft.tasks.is_empty() {
        out.push_str("\n**Tasks**\n\n");
        for (i, task) in draft.tasks.iter().enumerate() {
            out.push_str(&format!(
                "{}\\. {}\n",
                i + 1,
                escape_markdown(&one_line(task, 1_000))
            ));
        }
    }
    cap(&out, MAX_DESCRIPTION_CHARS)
}

/// Tags: the configured ones, `vowguard`, the priority, `wedding:<id>` per wedding, then the
/// draft's labels; one line each, deduplicated, at most [`MAX_TAGS`].
pub fn tags(draft: &TicketDraft, template: &AlertTemplate) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let candidates = template
        .tags
        .iter()
        .cloned()
        .chain([
            "vowguard".to_owned(),
            format!("priority:{}", draft.priority.short()),
        ])
        .chain(draft.wedding_ids.iter().map(|w| format!("wedding:{w}")))
        .chain(draft.labels.iter().cloned());
    for tag in candidates {
        let tag = one_line(&tag, MAX_TAG_CHARS);
        if !tag.is_empty() && seen.insert(tag.clone()) {
            out.push(tag);
            if out.len() == MAX_TAGS {
                break;
            }
        }
    }
    out
}

/// Observables from the event: source IP (`ip`), user id (`other`, tagged `user-id`),
/// host names (`hostname`, from the URL and `attributes.hostname` / `attributes.host`),
/// domain (`domain`), URL (`url`), file hash (`hash`), user agent (`user-agent`).
/// Deduplicated by (dataType, data) within the alert: TheHive used to refuse an alert
/// with two equal observables.
pub fn observables(event: &Event, template: &AlertTemplate) -> Vec<Value> {
    let mut candidates: Vec<(&str, String, &str)> = Vec::new();
    if let Some(ip) = event.source_ip {
        candidates.push(("ip", ip.to_string(), "source-ip"));
    }
    if let Some(user) = &event.user_id {
        candidates.push(("other", user.clone(), "user-id"));
    }
    if let Some(domain) = &event.domain {
        candidates.push(("domain", domain.clone(), "domain"));
    }
    if let Some(url) = &event.url {
        candidates.push(("url", url.clone(), "url"));
        if let Ok(parsed) = vowguard_http::reqwest::Url::parse(url)
            && let Some(host) = parsed.host_str()
        {
            let host = host.trim_matches(['[', ']']);
            let kind = if host.parse::<std::net::IpAddr>().is_ok() {
                "ip"
            } else {
                "hostname"
            };
            candidates.push((kind, host.to_owned(), "url-host"));
        }
    }
    for key in ["hostname", "host"] {
        if let Some(Value::String(host)) = event.attributes.get(key) {
            candidates.push(("hostname", host.clone(), "hostname"));
        }
    }
    if let Some(hash) = &event.file_hash {
        candidates.push(("hash", hash.clone(), "file-hash"));
    }
    if let Some(agent) = &event.user_agent {
        candidates.push(("user-agent", agent.clone(), "user-agent"));
    }

    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (data_type, data, tag) in candidates {
        let data = data.trim();
        if data.is_empty()
            || data.chars().any(char::is_control)
            || data.chars().nth(MAX_OBSERVABLE_CHARS).is_some()
        {
            continue;
        }
        if !seen.insert((data_type, data.to_owned())) {
            continue;
        }
        out.push(json!({
            "dataType": data_type,
            "data": data,
            "message": format!("from vowguard event {}", one_line(&event.id, 128)),
            "tlp": template.tlp.number(),
            "pap": template.pap.number(),
            "tags": ["vowguard", tag],
            "ioc": false,
        }));
        if out.len() == MAX_OBSERVABLES {
            break;
        }
    }
    out
}

/// The Markdown text of a timeline entry: `<at> <author>: <text>`.
pub fn entry_text(update: &TicketUpdate) -> String {
    cap(
        &format!(
            "**{}** {}: {}",
            update.at.to_rfc3339(),
            escape_markdown(&one_line(&update.author, 256)),
            escape_markdown(&update.text)
        ),
        MAX_COMMENT_CHARS,
    )
}

/// The Markdown text of the resolving note.
pub fn resolve_text(note: &str) -> String {
    cap(
        &format!("**Resolved by vowguard**: {}", escape_markdown(note)),
        MAX_COMMENT_CHARS,
    )
}

/// `description` with `entry` appended below a rule, capped at [`MAX_DESCRIPTION_CHARS`]
/// (the oldest text is kept; a cut is marked).
pub fn append_to_description(description: &str, entry: &str) -> String {
    cap(
        &format!("{description}\n\n---\n\n{entry}"),
        MAX_DESCRIPTION_CHARS,
    )
}

/// The `POST /api/v1/query` body finding the alert with this (type, source, sourceRef).
pub fn find_alert_query(alert_type: &str, source: &str, source_ref: &str) -> Value {
    json!({
        "query": [
            {"_name": "listAlert"},
            {"_name": "filter", "_and": [
                {"_field": "type", "_value": alert_type},
                {"_field": "source", "_value": source},
                {"_field": "sourceRef", "_value": source_ref},
            ]},
            {"_name": "page", "from": 0, "to": 1},
        ]
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use vowguard_core::{Category, Severity};

    use super::*;

    fn template() -> AlertTemplate {
        AlertTemplate {
            alert_type: "vowguard-incident".into(),
            source: "vowguard".into(),
            tags: vec!["platform:weddings".into()],
            tlp: Tlp::Amber,
            pap: Pap::Green,
            severity_by_priority: [4, 3, 2, 1, 1],
            case_template: None,
        }
    }

    fn event() -> Event {
        let mut e = Event::new(
            Category::DataExport,
            "guest_list.export",
            Severity::Critical,
        );
        e.id = "evt-1".into();
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.user_id = Some("u-42".into());
        e.domain = Some("evil.example".into());
        e.url = Some("https://evil.example/x".into());
        e.file_hash = Some("ab".repeat(32));
        e.attributes
            .insert("hostname".into(), Value::String("web-1".into()));
        e.attributes
            .insert("host".into(), Value::String("web-1".into()));
        e
    }

    #[test]
    fn golden_alert() {
        let mut draft = TicketDraft::new(
            "inc-1",
            "fp-1",
            "Wedding Data Security Incident - evt-1",
            Priority::P0Critical,
        );
        draft.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap();
        draft.wedding_ids = vec!["w-9".into()];
        draft.labels = vec!["gdpr".into(), "vowguard".into()];
        draft.tasks = vec!["Preserve evidence".into()];
        draft.description = "Guest list exported".into();
        draft.event = Some(Arc::new(event()));
        let body = alert_body(&draft, &template());
        assert_eq!(body["type"], "vowguard-incident");
        assert_eq!(body["sourceRef"], "fp-1");
        assert_eq!(body["severity"], 4);
        assert_eq!(body["date"], 1_781_956_800_000_i64);
        assert_eq!(
            body["tags"],
            json!([
                "platform:weddings",
                "vowguard",
                "priority:P0",
                "wedding:w-9",
                "gdpr"
            ])
        );
        assert_eq!(
            (body["tlp"].as_u64(), body["pap"].as_u64()),
            (Some(2), Some(1))
        );
        let kinds: Vec<(&str, &str)> = body["observables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["dataType"].as_str().unwrap(), o["data"].as_str().unwrap()))
            .collect();
        let hash = "ab".repeat(32);
        assert_eq!(
            kinds,
            [
                ("ip", "203.0.113.7"),
                ("other", "u-42"),
                ("domain", "evil.example"),
                ("url", "https://evil.example/x"),
                ("hostname", "evil.example"),
                ("hostname", "web-1"),
                ("hash", hash.as_str()),
            ]
        );
        let description = body["description"].as_str().unwrap();
        assert!(
            description.starts_with("Guest list exported\n\n**vowguard incident** inc\\-1"),
            "{description}"
        );
        assert!(
            description.contains("1\\. Preserve evidence\n"),
            "{description}"
        );
        assert!(body.get("caseTemplate").is_none());
    }

    #[test]
    fn source_refs_are_plain_or_hashed() {
        assert_eq!(source_ref("vg:fp-1"), "vg:fp-1");
        assert_eq!(
            source_ref("abc\n"),
            format!(
                "sha256-{}",
                "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb"
            )
        );
    }

    #[test]
    fn markdown_cannot_add_links_or_html() {
        let text =
            "![x](https://evil.example/p.png) <img src=x onerror=alert(1)> [a](javascript:x)\n# H";
        let escaped = escape_markdown(text);
        assert!(!escaped.contains("!["), "{escaped}");
        assert!(
            escaped.contains("\\<img") && !escaped.contains(" <img"),
            "{escaped}"
        );
        assert!(!escaped.contains("]("), "{escaped}");
        assert!(escaped.contains("\\# H"), "{escaped}");
    }

    #[test]
    fn observables_skip_control_characters_and_cap() {
        let mut e = Event::new(Category::Other, "x", Severity::Low);
        e.user_id = Some("bad\nuser".into());
        e.domain = Some("d".repeat(MAX_OBSERVABLE_CHARS + 1));
        assert!(observables(&e, &template()).is_empty());
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_unescaped_markdown(text in ".{0,200}") {
            let escaped = escape_markdown(&text);
            let mut chars = escaped.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next();
                    prop_assert!(next.is_some_and(|n| n.is_ascii_punctuation()), "{escaped:?}");
                } else {
                    prop_assert!(!"`*_[]()<>!#|~".contains(c), "{escaped:?}");
                    prop_assert!(c == '\n' || !c.is_control());
                }
            }
        }

        #[test]
        fn one_line_is_one_line_and_bounded(text in ".{0,300}", max in 1usize..100) {
            let line = one_line(&text, max);
            prop_assert!(!line.chars().any(char::is_control));
            prop_assert!(line.chars().count() <= max);
        }
    }
}

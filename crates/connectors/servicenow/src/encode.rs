//! Pure encoding of drafts, work notes and closes as ServiceNow Table API bodies.
//!
//! * `correlation_id` (the dedup key) is the fingerprint itself when it is at most 100
//!   characters of `[A-Za-z0-9._:-]`, otherwise `vowguard-` and 32 hex digits of its
//!   SHA-256: either way it cannot change an encoded query (`^`, `=`, `ORDERBY` never
//!   appear in it).
//! * `short_description`: one line, at most 160 characters.
//! * `description`, `work_notes`, `close_notes`: plain text, control characters other than
//!   newline and tab replaced, `[code]` tags (which journal fields render as HTML)
//!   defused, at most 4000 characters.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use vowguard_core::{TicketDraft, TicketUpdate};

use crate::config::UrgencyImpact;

/// Longest `correlation_id` ServiceNow stores (its dictionary length).
pub const MAX_CORRELATION_ID_CHARS: usize = 100;
/// Longest `short_description` (the incident table's default dictionary length).
pub const MAX_SHORT_DESCRIPTION_CHARS: usize = 160;
/// Longest `description`, `work_notes` and `close_notes` vowguard sends.
pub const MAX_TEXT_CHARS: usize = 4_000;
/// Most tasks listed in a description.
pub const MAX_TASKS: usize = 50;
/// `correlation_display` of every incident vowguard opens.
pub const CORRELATION_DISPLAY: &str = "vowguard";

/// The fields of an incident that come from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncidentTemplate {
    /// `caller_id`.
    pub caller_id: Option<String>,
    /// `assignment_group`.
    pub assignment_group: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `subcategory`.
    pub subcategory: Option<String>,
}

/// The `correlation_id` for `fingerprint` (see the module docs).
///
/// ```
/// use vowguard_servicenow::encode::correlation_id;
/// assert_eq!(correlation_id("brute-force:203.0.113.7"), "brute-force:203.0.113.7");
/// assert!(correlation_id("x^NQactive=true").starts_with("vowguard-"));
/// ```
pub fn correlation_id(fingerprint: &str) -> String {
    let safe = !fingerprint.is_empty()
        && fingerprint.chars().count() <= MAX_CORRELATION_ID_CHARS
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if safe {
        return fingerprint.to_owned();
    }
    let digest = Sha256::digest(fingerprint.as_bytes());
    let hex = vowguard_core::hex::encode(&digest[..16]);
    format!("vowguard-{hex}")
}

/// The encoded query finding the incidents of a correlation id, oldest first.
pub fn lookup_query(correlation_id: &str) -> String {
    format!("correlation_id={correlation_id}^ORDERBYsys_created_on")
}

/// At most `max` characters of `s`; a cut string ends with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `title` as a `short_description`: one line, trimmed, at most 160 characters; an empty
/// title becomes `vowguard incident <incident id>`.
pub fn short_description(title: &str, incident_id: &str) -> String {
    let line: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    if line.is_empty() {
        return short_description(&format!("vowguard incident {incident_id}"), "");
    }
    truncate_chars(line, MAX_SHORT_DESCRIPTION_CHARS)
}

/// Plain text for a ServiceNow text or journal field: `\r\n` and `\r` become `\n`, other
/// control characters (tab excepted) spaces, and `[code]` / `[/code]` (any case) lose their
/// bracket to `(`, so journal fields never render attacker HTML.
pub fn plain_text(s: &str) -> String {
    let unified = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: String = unified
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let lower = out.to_ascii_lowercase();
    let mut positions: Vec<usize> = Vec::new();
    for tag in ["[code]", "[/code]"] {
        positions.extend(lower.match_indices(tag).map(|(i, _)| i));
    }
    // `[` is one byte, and `(` too, so positions stay valid while replacing.
    for i in positions {
        out.replace_range(i..i + 1, "(");
    }
    out
}

/// The `description`: the draft's text, the tasks as `[ ]` lines, the incident facts and
/// the correlation id, at most [`MAX_TEXT_CHARS`] (the draft's text is cut first).
pub fn description(draft: &TicketDraft) -> String {
    let mut tail = String::new();
    if !draft.tasks.is_empty() {
        tail.push_str("\n\nTasks:");
        for task in draft.tasks.iter().take(MAX_TASKS) {
            tail.push_str("\n[ ] ");
            tail.push_str(&truncate_chars(&task.replace(['\r', '\n'], " "), 500));
        }
        if draft.tasks.len() > MAX_TASKS {
            tail.push_str(&format!(
                "\n… and {} more tasks on the vowguard incident",
                draft.tasks.len() - MAX_TASKS
            ));
        }
    }
    tail.push_str(&format!(
        "\n\nIncident: {}\nPriority: {}\nOpened: {}",
        truncate_chars(&draft.incident_id, 200),
        draft.priority.as_str(),
        draft.opened_at.to_rfc3339()
    ));
    if !draft.wedding_ids.is_empty() {
        let weddings: Vec<String> = draft
            .wedding_ids
            .iter()
            .take(20)
            .map(|w| truncate_chars(w, 200))
            .collect();
        tail.push_str(&format!("\nWeddings: {}", weddings.join(", ")));
    }
    if !draft.labels.is_empty() {
        let labels: Vec<String> = draft
            .labels
            .iter()
            .take(50)
            .map(|l| truncate_chars(l, 100))
            .collect();
        tail.push_str(&format!("\nLabels: {}", labels.join(", ")));
    }
    if let Some(event) = &draft.event {
        tail.push_str(&format!(
            "\nEvent: {} ({}.{}) at {}",
            truncate_chars(&event.id, 200),
            event.category,
            truncate_chars(&event.action, 200),
            event.timestamp_rfc3339()
        ));
        if let Some(ip) = event.source_ip {
            tail.push_str(&format!("\nSource IP: {ip}"));
        }
        if let Some(user) = event.user_name.as_ref().or(event.user_id.as_ref()) {
            tail.push_str(&format!("\nUser: {}", truncate_chars(user, 200)));
        }
    }
    tail.push_str(&format!(
        "\nvowguard correlation id: {}",
        correlation_id(&draft.fingerprint)
    ));
    let tail = plain_text(&tail);
    let tail_chars = tail.chars().count();
    if tail_chars >= MAX_TEXT_CHARS {
        return truncate_chars(&tail, MAX_TEXT_CHARS);
    }
    let head = truncate_chars(
        &plain_text(draft.description.trim()),
        MAX_TEXT_CHARS - tail_chars,
    );
    truncate_chars(&format!("{head}{tail}"), MAX_TEXT_CHARS)
}

/// The create body for `draft`.
pub fn create_body(
    draft: &TicketDraft,
    template: &IncidentTemplate,
    urgency_impact: UrgencyImpact,
) -> Value {
    let mut body = Map::new();
    body.insert(
        "short_description".into(),
        json!(short_description(&draft.title, &draft.incident_id)),
    );
    body.insert("description".into(), json!(description(draft)));
    body.insert("urgency".into(), json!(urgency_impact.urgency.to_string()));
    body.insert("impact".into(), json!(urgency_impact.impact.to_string()));
    body.insert(
        "correlation_id".into(),
        json!(correlation_id(&draft.fingerprint)),
    );
    body.insert("correlation_display".into(), json!(CORRELATION_DISPLAY));
    for (field, value) in [
        ("caller_id", &template.caller_id),
        ("assignment_group", &template.assignment_group),
        ("category", &template.category),
        ("subcategory", &template.subcategory),
    ] {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    Value::Object(body)
}

/// The `work_notes` text of an update: `[time] author`, a newline, the text.
pub fn work_note(update: &TicketUpdate) -> String {
    let text = format!(
        "[{}] {}\n{}",
        update.at.to_rfc3339(),
        truncate_chars(&update.author.replace(['\r', '\n'], " "), 200),
        update.text
    );
    truncate_chars(&plain_text(&text), MAX_TEXT_CHARS)
}

/// The PATCH body adding a work note.
pub fn work_note_body(update: &TicketUpdate) -> Value {
    json!({"work_notes": work_note(update)})
}

/// The PATCH body resolving an incident.
pub fn resolve_body(state: u8, close_code: &str, note: &str) -> Value {
    let note = if note.trim().is_empty() {
        "Resolved by vowguard".to_owned()
    } else {
        truncate_chars(&plain_text(note), MAX_TEXT_CHARS)
    };
    json!({
        "state": state.to_string(),
        "close_code": close_code,
        "close_notes": note,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use vowguard_core::Priority;

    use super::*;

    fn draft() -> TicketDraft {
        let mut d = TicketDraft::new(
            "inc-1",
            "fp-1",
            "Wedding Data Security Incident - evt-1",
            Priority::P0Critical,
        );
        d.description = "Guest list exported.".into();
        d.tasks = vec!["Lock accounts".into(), "Notify legal".into()];
        d.labels = vec!["wedding-data".into()];
        d.wedding_ids = vec!["w-1".into()];
        d.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap();
        d
    }

    #[test]
    fn golden_create_body() {
        let template = IncidentTemplate {
            assignment_group: Some("Security Operations".into()),
            ..IncidentTemplate::default()
        };
        let body = create_body(
            &draft(),
            &template,
            UrgencyImpact {
                urgency: 1,
                impact: 2,
            },
        );
        assert_eq!(
            body,
            json!({
                "short_description": "Wedding Data Security Incident - evt-1",
                "description": "Guest list exported.\n\nTasks:\n[ ] Lock accounts\n[ ] Notify legal\n\n\
                    Incident: inc-1\nPriority: P0_CRITICAL\nOpened: 2026-06-20T12:00:00+00:00\n\
                    Weddings: w-1\nLabels: wedding-data\nvowguard correlation id: fp-1",
                "urgency": "1",
                "impact": "2",
                "correlation_id": "fp-1",
                "correlation_display": "vowguard",
                "assignment_group": "Security Operations",
            })
        );
    }

    #[test]
    fn correlation_ids_are_safe_in_encoded_queries() {
        assert_eq!(correlation_id("a.b_c:d-1"), "a.b_c:d-1");
        for hostile in [
            "x^NQactive=true",
            "x^ORDERBYDESCnumber",
            "a b",
            "",
            &"a".repeat(101),
        ] {
            let id = correlation_id(hostile);
            assert!(id.starts_with("vowguard-") && id.len() == 41, "{id}");
            assert_eq!(id, correlation_id(hostile), "stable");
        }
        assert_ne!(correlation_id("x^1"), correlation_id("x^2"));
        assert_eq!(
            lookup_query("fp-1"),
            "correlation_id=fp-1^ORDERBYsys_created_on"
        );
    }

    #[test]
    fn plain_text_defuses_code_tags_and_controls() {
        assert_eq!(
            plain_text("[CODE]<script>x</script>[/code]\r\nb\u{1b}[31m"),
            "(CODE]<script>x</script>(/code]\nb [31m"
        );
    }

    #[test]
    fn texts_are_bounded() {
        let mut d = draft();
        d.description = "x".repeat(10_000);
        d.tasks = (0..200).map(|i| format!("task {i}")).collect();
        let text = description(&d);
        assert!(text.chars().count() <= MAX_TEXT_CHARS);
        assert!(text.contains("more tasks on the vowguard incident"));
        assert!(
            text.ends_with("vowguard correlation id: fp-1"),
            "facts kept"
        );
        assert_eq!(
            short_description(&"é".repeat(500), "i").chars().count(),
            MAX_SHORT_DESCRIPTION_CHARS
        );
        assert_eq!(short_description("\n", "inc-2"), "vowguard incident inc-2");
        let note = resolve_body(6, "Solved", &"y".repeat(9_000));
        assert_eq!(
            note["close_notes"].as_str().unwrap().chars().count(),
            MAX_TEXT_CHARS
        );
        assert_eq!(
            resolve_body(7, "Solved", " ")["close_notes"],
            "Resolved by vowguard"
        );
    }
}

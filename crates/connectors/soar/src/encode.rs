//! Pure functions from drafts and updates to request bodies, idempotency keys and the
//! XSOAR advanced-key signature.
//!
//! All text may come from an event: it only ever becomes a JSON string value (serde_json
//! encodes it) or, hashed, part of a header; it never chooses a URL, a header or a field
//! name.

use aws_lc_rs::digest;
use serde_json::{Map, Value, json};
use vowguard_core::{Priority, TicketDraft, TicketUpdate};

/// Largest body sent, in bytes: the event's attributes are dropped first, then the event
/// shrinks to its id, category, action and severity.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 512;
/// Longest idempotency key sent as is; longer ones (or with other characters) are hashed.
pub const MAX_PLAIN_KEY_CHARS: usize = 200;

/// `text` on one line (control characters become spaces), at most `max` characters.
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

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// An `Idempotency-Key` value for `seed`: the seed itself when it is 1..=200 characters of
/// `A-Z a-z 0-9 . _ : -`, else `sha256-<hex of the seed>` (so no text can break the header).
pub fn idempotency_key(seed: &str) -> String {
    let plain = !seed.is_empty()
        && seed.chars().count() <= MAX_PLAIN_KEY_CHARS
        && seed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    if plain {
        seed.to_owned()
    } else {
        format!("sha256-{}", sha256_hex(seed.as_bytes()))
    }
}

/// The idempotency seed of a timeline entry of the ticket `reference`.
pub fn update_seed(reference: &str, update: &TicketUpdate) -> String {
    let digest = sha256_hex(
        format!(
            "{}\u{0}{}\u{0}{}",
            update.at.to_rfc3339(),
            update.author,
            update.text
        )
        .as_bytes(),
    );
    format!("{reference}:update:{}", &digest[..32])
}

/// The XSOAR advanced-key `Authorization` value: hex SHA-256 of key + nonce + timestamp.
pub fn xsoar_advanced_signature(key: &str, nonce: &str, timestamp_ms: i64) -> String {
    sha256_hex(format!("{key}{nonce}{timestamp_ms}").as_bytes())
}

/// The incident as plain JSON (`action = "open"`): what Shuffle, Tines and generic
/// webhooks receive, the StackStorm `payload`, and XSOAR's `rawJSON`. At most
/// [`MAX_BODY_BYTES`] once encoded.
pub fn incident_document(draft: &TicketDraft, source: &str) -> Value {
    let event = draft
        .event
        .as_deref()
        .and_then(|e| serde_json::to_value(e).ok())
        .unwrap_or(Value::Null);
    let mut doc = json!({
        "source": source,
        "action": "open",
        "incident_id": draft.incident_id,
        "fingerprint": draft.fingerprint,
        "title": title(draft),
        "description": draft.description,
        "priority": draft.priority.as_str(),
        "priority_level": draft.priority.level(),
        "wedding_ids": draft.wedding_ids,
        "labels": draft.labels,
        "tasks": draft.tasks,
        "opened_at": draft.opened_at.to_rfc3339(),
        "event": event,
    });
    if encoded_len(&doc) > MAX_BODY_BYTES {
        if let Some(event) = doc.get_mut("event").and_then(Value::as_object_mut) {
            event.remove("attributes");
        }
        doc["truncated"] = Value::Bool(true);
    }
    if encoded_len(&doc) > MAX_BODY_BYTES {
        let summary: Map<String, Value> = doc["event"]
            .as_object()
            .map(|e| {
                ["id", "category", "action", "severity", "timestamp"]
                    .iter()
                    .filter_map(|k| e.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        doc["event"] = Value::Object(summary);
        for field in ["description", "tasks", "labels", "wedding_ids"] {
            if encoded_len(&doc) > MAX_BODY_BYTES {
                doc[field] = match field {
                    "description" => Value::String(one_line(&draft.description, 4_096)),
                    _ => Value::Array(Vec::new()),
                };
            }
        }
    }
    doc
}

fn encoded_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// The title on one line, or `vowguard incident <id>` when empty.
pub fn title(draft: &TicketDraft) -> String {
    let title = one_line(&draft.title, MAX_TITLE_CHARS);
    if title.is_empty() {
        format!("vowguard incident {}", one_line(&draft.incident_id, 128))
    } else {
        title
    }
}

/// Who/what a follow-up call is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The case reference (the vendor's, or the fingerprint).
    pub reference: &'a str,
    /// The fingerprint, when the connector still remembers the ticket.
    pub fingerprint: Option<&'a str>,
    /// The incident id, when remembered.
    pub incident_id: Option<&'a str>,
}

fn follow_up(source: &str, action: &str, subject: Subject<'_>) -> Value {
    let mut doc = json!({
        "source": source,
        "action": action,
        "reference": subject.reference,
    });
    if let Some(fp) = subject.fingerprint {
        doc["fingerprint"] = Value::String(fp.to_owned());
    }
    if let Some(id) = subject.incident_id {
        doc["incident_id"] = Value::String(id.to_owned());
    }
    doc
}

/// `action = "update"`: a timeline entry.
pub fn update_document(source: &str, subject: Subject<'_>, update: &TicketUpdate) -> Value {
    let mut doc = follow_up(source, "update", subject);
    doc["update"] = json!({
        "at": update.at.to_rfc3339(),
        "author": update.author,
        "text": cap(&update.text, MAX_BODY_BYTES / 2),
    });
    doc
}

/// `action = "resolve"` with the closing note.
pub fn resolve_document(source: &str, subject: Subject<'_>, note: &str) -> Value {
    let mut doc = follow_up(source, "resolve", subject);
    doc["note"] = Value::String(cap(note, MAX_BODY_BYTES / 2));
    doc
}

fn cap(text: &str, max_chars: usize) -> String {
    if text.chars().nth(max_chars).is_none() {
        text.to_owned()
    } else {
        text.chars().take(max_chars).collect()
    }
}

/// StackStorm's generic webhook body.
pub fn stackstorm_body(trigger: &str, payload: Value) -> Value {
    let mut body = Map::new();
    body.insert("trigger".to_owned(), Value::String(trigger.to_owned()));
    body.insert("payload".to_owned(), payload);
    Value::Object(body)
}

/// XSOAR's severity: P0 4 critical, P1 3 high, P2 2 medium, P3 1 low, P4 0.5 informational.
pub fn xsoar_severity(priority: Priority) -> f64 {
    match priority {
        Priority::P0Critical => 4.0,
        Priority::P1High => 3.0,
        Priority::P2Medium => 2.0,
        Priority::P3Low => 1.0,
        Priority::P4Info => 0.5,
    }
}

/// The configured parts of an XSOAR incident.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct XsoarTemplate {
    /// Incident `type`.
    pub incident_type: String,
    /// `playbookId`, when set.
    pub playbook_id: Option<String>,
    /// `createInvestigation`.
    pub create_investigation: bool,
    /// `source` of the raw JSON.
    pub source: String,
}

/// `POST /incident`: name, type, severity, labels, details, occurred, rawJSON (the incident
/// document as a string), createInvestigation, playbookId.
pub fn xsoar_incident(draft: &TicketDraft, template: &XsoarTemplate) -> Value {
    let document = incident_document(draft, &template.source);
    let mut labels = vec![
        json!({"type": "vowguard_fingerprint", "value": draft.fingerprint}),
        json!({"type": "vowguard_dedup_key", "value": idempotency_key(&draft.fingerprint)}),
        json!({"type": "vowguard_incident", "value": draft.incident_id}),
        json!({"type": "priority", "value": draft.priority.as_str()}),
    ];
    labels.extend(
        draft
            .wedding_ids
            .iter()
            .map(|w| json!({"type": "wedding", "value": w})),
    );
    labels.extend(
        draft
            .labels
            .iter()
            .map(|l| json!({"type": "label", "value": l})),
    );
    let mut body = json!({
        "name": title(draft),
        "type": template.incident_type,
        "severity": xsoar_severity(draft.priority),
        "labels": labels,
        "details": document["description"],
        "occurred": draft.opened_at.to_rfc3339(),
        "rawJSON": document.to_string(),
        "createInvestigation": template.create_investigation,
    });
    if let Some(playbook) = &template.playbook_id {
        body["playbookId"] = Value::String(playbook.clone());
    }
    body
}

/// `POST /entry`: a war-room entry in the incident's investigation (plain text).
pub fn xsoar_entry(investigation_id: &str, text: &str) -> Value {
    json!({
        "investigationId": investigation_id,
        "data": cap(text, MAX_BODY_BYTES / 2),
        "markdown": false,
    })
}

/// The text of a timeline entry in XSOAR's war room.
pub fn entry_text(update: &TicketUpdate) -> String {
    format!(
        "[{}] {}: {}",
        update.at.to_rfc3339(),
        one_line(&update.author, 256),
        update.text
    )
}

/// `POST /incident/batchClose` for one incident.
pub fn xsoar_close(incident_id: &str, reason: &str, note: &str) -> Value {
    json!({
        "ids": [incident_id],
        "closeReason": reason,
        "closeNotes": cap(note, MAX_BODY_BYTES / 2),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use vowguard_core::{Category, Event, Severity};

    use super::*;

    fn draft() -> TicketDraft {
        let mut d = TicketDraft::new(
            "inc-1",
            "fp-1",
            "Wedding Data Security Incident - evt-1",
            Priority::P0Critical,
        );
        d.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap();
        d.wedding_ids = vec!["w-9".into()];
        d
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn idempotency_keys_are_header_safe() {
        assert_eq!(idempotency_key("vg:fp-1"), "vg:fp-1");
        let hashed = idempotency_key("fp\r\nX-Evil: 1");
        assert!(
            hashed.starts_with("sha256-") && hashed.len() == 71,
            "{hashed}"
        );
        assert_eq!(idempotency_key(""), format!("sha256-{}", sha256_hex(b"")));
    }

    #[test]
    fn xsoar_body_golden() {
        let t = XsoarTemplate {
            incident_type: "Data Breach".into(),
            playbook_id: None,
            create_investigation: true,
            source: "vowguard".into(),
        };
        let body = xsoar_incident(&draft(), &t);
        assert_eq!(body["name"], "Wedding Data Security Incident - evt-1");
        assert_eq!(body["type"], "Data Breach");
        assert_eq!(body["severity"], 4.0);
        assert_eq!(body["createInvestigation"], true);
        assert_eq!(
            body["labels"][0],
            json!({"type": "vowguard_fingerprint", "value": "fp-1"})
        );
        assert_eq!(
            body["labels"][1],
            json!({"type": "vowguard_dedup_key", "value": "fp-1"})
        );
        assert_eq!(
            body["labels"][4],
            json!({"type": "wedding", "value": "w-9"})
        );
        let raw: Value = serde_json::from_str(body["rawJSON"].as_str().unwrap()).unwrap();
        assert_eq!(raw["fingerprint"], "fp-1");
        assert_eq!(raw["action"], "open");
        assert!(body.get("playbookId").is_none());
    }

    #[test]
    fn huge_events_are_cut_to_the_body_limit() {
        let mut d = draft();
        let mut e = Event::new(Category::Other, "x", Severity::Low);
        e.attributes
            .insert("blob".into(), Value::String("a".repeat(MAX_BODY_BYTES)));
        e.message = Some("m".repeat(MAX_BODY_BYTES));
        d.event = Some(Arc::new(e));
        d.description = "d".repeat(MAX_BODY_BYTES);
        let doc = incident_document(&d, "vowguard");
        assert!(encoded_len(&doc) <= MAX_BODY_BYTES, "{}", encoded_len(&doc));
        assert_eq!(doc["truncated"], true);
        assert_eq!(doc["event"]["action"], "x");
    }

    proptest! {
        #[test]
        fn any_seed_gives_a_valid_header_value(seed in ".{0,300}") {
            let key = idempotency_key(&seed);
            prop_assert!(vowguard_http::reqwest::header::HeaderValue::from_str(&key).is_ok());
            prop_assert!(key.len() <= 200 || key.starts_with("sha256-"));
        }
    }
}

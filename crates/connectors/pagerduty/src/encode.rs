//! Pure encoding of an [`Alert`] as a PagerDuty Events API v2 request body.
//!
//! No I/O happens here, so the rules are tested with golden vectors and property tests and
//! the encoder can be benchmarked alone:
//!
//! * `dedup_key` is the alert's group key (never omitted, so a burst of related events is
//!   one incident); keys over 255 characters are cut and suffixed with a hash of the whole
//!   key, so they stay stable and distinct.
//! * `trigger` carries the full `payload`; `acknowledge` / `resolve` carry only
//!   `routing_key`, `event_action` and `dedup_key`.
//! * The body never exceeds [`MAX_PAYLOAD_BYTES`]: the event's free-form attributes are
//!   dropped first, then long strings and lists in `custom_details` are cut, then
//!   `custom_details` is reduced to the essentials.

use serde_json::{Map, Value, json};
use vowguard_core::{Alert, AlertAction, Error, GroupSummary, Priority};

use crate::config::Link;

/// Largest request body PagerDuty accepts (512 KB).
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;
/// Longest `dedup_key`, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Longest `payload.summary`, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest `source`, `component`, `group` and `class`, in characters (vowguard's own cap).
pub const MAX_FIELD_CHARS: usize = 255;
/// Longest string kept in `custom_details` once the body had to be shrunk.
const SHRUNK_STRING_CHARS: usize = 1024;
/// Most list items kept in `custom_details` once the body had to be shrunk.
const SHRUNK_LIST_ITEMS: usize = 50;

/// The parts of a PagerDuty event that come from configuration, not from the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventTemplate {
    /// `payload.source`.
    pub source: String,
    /// `payload.component`.
    pub component: String,
    /// `client`.
    pub client: String,
    /// `client_url`, when set.
    pub client_url: Option<String>,
    /// `links` added to every triggered event.
    pub links: Vec<Link>,
}

impl Default for EventTemplate {
    fn default() -> Self {
        Self {
            source: "vowguard".into(),
            component: "vowguard".into(),
            client: "vowguard".into(),
            client_url: None,
            links: Vec::new(),
        }
    }
}

/// The Events API `event_action` for an alert action.
pub fn event_action(action: AlertAction) -> &'static str {
    match action {
        AlertAction::Trigger => "trigger",
        AlertAction::Acknowledge => "acknowledge",
        AlertAction::Resolve => "resolve",
    }
}

/// PagerDuty's severity for a priority: P0 `critical`, P1 `error`, P2 `warning`, P3/P4 `info`.
pub fn priority_severity(priority: Priority) -> &'static str {
    match priority {
        Priority::P0Critical => "critical",
        Priority::P1High => "error",
        Priority::P2Medium => "warning",
        Priority::P3Low | Priority::P4Info => "info",
    }
}

/// The alert's severity: the route's `severity` parameter when it is one of `critical`,
/// `error`, `warning`, `info` (any case), else [`priority_severity`].
pub fn severity(alert: &Alert) -> &'static str {
    const VALID: [&str; 4] = ["critical", "error", "warning", "info"];
    alert
        .param_str("severity")
        .map(|s| s.trim().to_ascii_lowercase())
        .and_then(|s| VALID.into_iter().find(|v| *v == s))
        .unwrap_or_else(|| priority_severity(alert.priority))
}

/// The `dedup_key`: the alert's group key (the event id when the group key is empty), at
/// most 255 characters. A longer key keeps its first 238 characters followed by `~` and a
/// 64-bit FNV-1a hash of the whole key in hex, so it stays stable per group and distinct
/// from other long keys sharing the prefix.
pub fn dedup_key(alert: &Alert) -> String {
    let key = if alert.dedup_key.is_empty() {
        alert.event.id.as_str()
    } else {
        alert.dedup_key.as_str()
    };
    if key.chars().count() <= MAX_DEDUP_KEY_CHARS {
        return key.to_owned();
    }
    let prefix: String = key.chars().take(MAX_DEDUP_KEY_CHARS - 17).collect();
    format!("{prefix}~{:016x}", fnv1a64(key.as_bytes()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `payload.summary`: `[P0] `, for a group of several events `[12 events from ... to ...
/// UTC] `, and the (latest) event's summary, control characters replaced by
/// spaces, at most 1024 characters.
pub fn summary(alert: &Alert) -> String {
    let grouped = GroupSummary::of(alert)
        .filter(|g| g.size > 1)
        .map(|g| format!("[{}] ", g.text()))
        .unwrap_or_default();
    let text = format!(
        "[{}] {grouped}{}",
        alert.priority.short(),
        alert.event.summary()
    );
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate_chars(&clean, MAX_SUMMARY_CHARS)
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

/// The `payload.custom_details` object: the event (without enrichment), priority, reasons,
/// wedding impact and context, threat intelligence, patterns, route, the group (how many
/// events the alert stands for and their first and last times) and the route's
/// `escalation_policy` parameter when set.
pub fn custom_details(alert: &Alert) -> Value {
    let event = &alert.event;
    let mut event_json = serde_json::to_value(event.as_ref()).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut event_json {
        map.remove("enrichment");
    }
    let mut details = Map::new();
    details.insert("event".into(), event_json);
    details.insert("priority".into(), json!(alert.priority.as_str()));
    details.insert("reasons".into(), json!(alert.reasons));
    details.insert("wedding_impact".into(), json!(alert.impact));
    let enrichment = &event.enrichment;
    if let Some(wedding) = &enrichment.wedding {
        details.insert("wedding".into(), json!(wedding));
    }
    if let Some(threat) = &enrichment.threat {
        details.insert("threat_intel".into(), json!(threat));
    }
    if !enrichment.patterns.is_empty() {
        details.insert("patterns".into(), json!(enrichment.patterns));
    }
    if let Some(geo) = &enrichment.geo {
        details.insert("geo".into(), json!(geo));
    }
    details.insert("route".into(), json!(alert.route));
    if let Some(group) = GroupSummary::of(alert) {
        details.insert(
            "group".into(),
            json!({
                "size": group.size,
                "first_seen": group.first_seen,
                "last_seen": group.last_seen,
                "summary": group.text(),
            }),
        );
    }
    if let Some(policy) = alert.params.get("escalation_policy") {
        details.insert("escalation_policy".into(), policy.clone());
    }
    Value::Object(details)
}

/// `payload.group`: the wedding the alert concerns, else the event category.
pub fn group(alert: &Alert) -> String {
    let event = &alert.event;
    let group = event
        .enrichment
        .wedding
        .as_ref()
        .map(|w| w.wedding_id.clone())
        .or_else(|| event.wedding_id.clone())
        .unwrap_or_else(|| event.category.to_string());
    truncate_chars(&group, MAX_FIELD_CHARS)
}

/// `payload.class`: `category.action`.
pub fn class(alert: &Alert) -> String {
    truncate_chars(
        &format!("{}.{}", alert.event.category, alert.event.action),
        MAX_FIELD_CHARS,
    )
}

/// The request body for `alert` as a JSON value, before the size cap is applied.
pub fn event_json(alert: &Alert, routing_key: &str, template: &EventTemplate) -> Value {
    let mut body = Map::new();
    body.insert("routing_key".into(), json!(routing_key));
    body.insert("event_action".into(), json!(event_action(alert.action)));
    body.insert("dedup_key".into(), json!(dedup_key(alert)));
    if alert.action != AlertAction::Trigger {
        return Value::Object(body);
    }
    body.insert(
        "payload".into(),
        json!({
            "summary": summary(alert),
            "source": truncate_chars(&template.source, MAX_FIELD_CHARS),
            "severity": severity(alert),
            "timestamp": alert.event.timestamp_rfc3339(),
            "component": truncate_chars(&template.component, MAX_FIELD_CHARS),
            "group": group(alert),
            "class": class(alert),
            "custom_details": custom_details(alert),
        }),
    );
    if !template.links.is_empty() {
        body.insert("links".into(), json!(template.links));
    }
    body.insert("client".into(), json!(template.client));
    if let Some(url) = &template.client_url {
        body.insert("client_url".into(), json!(url));
    }
    Value::Object(body)
}

/// The request body for `alert`, at most [`MAX_PAYLOAD_BYTES`] long (see the module docs
/// for how an oversized body is shrunk). Fails only when the configured parts alone
/// (links, names) are too large.
pub fn encode_event(
    alert: &Alert,
    routing_key: &str,
    template: &EventTemplate,
) -> Result<Vec<u8>, Error> {
    encode_capped(event_json(alert, routing_key, template), MAX_PAYLOAD_BYTES)
}

/// Serialises `body`, shrinking `payload.custom_details` until it fits in `limit` bytes.
pub fn encode_capped(mut body: Value, limit: usize) -> Result<Vec<u8>, Error> {
    let bytes = to_vec(&body);
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    let Some(details) = body
        .pointer_mut("/payload/custom_details")
        .and_then(Value::as_object_mut)
    else {
        return Err(too_large(bytes.len(), limit));
    };
    if let Some(Value::Object(event)) = details.get_mut("event") {
        event.remove("attributes");
    }
    details.insert(
        "truncated".into(),
        json!("event attributes dropped: the PagerDuty event was over 512 KB"),
    );
    let bytes = to_vec(&body);
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    if let Some(details) = body.pointer_mut("/payload/custom_details") {
        shrink(details);
        details["truncated"] = json!(
            "event attributes dropped and long fields cut: the PagerDuty event was over 512 KB"
        );
    }
    let bytes = to_vec(&body);
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    if let Some(details) = body.pointer_mut("/payload/custom_details") {
        let keep = |key: &str| details.get(key).cloned().unwrap_or(Value::Null);
        let event_id = details
            .pointer("/event/id")
            .cloned()
            .map(|mut v| {
                shrink(&mut v);
                v
            })
            .unwrap_or(Value::Null);
        let mut minimal = json!({
            "priority": keep("priority"),
            "route": keep("route"),
            "group": keep("group"),
            "event_id": event_id,
            "truncated": "custom details dropped: the PagerDuty event was over 512 KB; see the SIEM",
        });
        shrink(&mut minimal);
        *details = minimal;
    }
    let bytes = to_vec(&body);
    if bytes.len() <= limit {
        Ok(bytes)
    } else {
        Err(too_large(bytes.len(), limit))
    }
}

fn to_vec(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).expect("a serde_json::Value always serialises")
}

fn too_large(len: usize, limit: usize) -> Error {
    Error::encode(format!(
        "PagerDuty event is {len} bytes even without custom details, over the {limit}-byte limit; \
         shorten the configured links or names"
    ))
}

fn shrink(value: &mut Value) {
    match value {
        Value::String(s) if s.chars().count() > SHRUNK_STRING_CHARS => {
            *s = truncate_chars(s, SHRUNK_STRING_CHARS);
        }
        Value::Array(items) => {
            items.truncate(SHRUNK_LIST_ITEMS);
            items.iter_mut().for_each(shrink);
        }
        Value::Object(map) => {
            if map.len() > SHRUNK_LIST_ITEMS {
                let drop: Vec<String> = map.keys().skip(SHRUNK_LIST_ITEMS).cloned().collect();
                for key in drop {
                    map.remove(&key);
                }
            }
            let long_keys: Vec<String> = map
                .keys()
                .filter(|k| k.chars().count() > SHRUNK_STRING_CHARS)
                .cloned()
                .collect();
            for key in long_keys {
                if let Some(v) = map.remove(&key) {
                    map.insert(truncate_chars(&key, SHRUNK_STRING_CHARS), v);
                }
            }
            map.values_mut().for_each(shrink);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;
    use vowguard_core::{
        Category, Event, PatternMatch, Season, Severity, ThreatIntel, Verdict, WeddingContext,
        WeddingPhase,
    };

    use super::*;

    fn alert() -> Alert {
        let mut event = Event::new(
            Category::DataExport,
            "guest_list.export",
            Severity::Critical,
        );
        event.id = "evt-1".into();
        event.timestamp = Utc.with_ymd_and_hms(2026, 6, 20, 12, 3, 7).unwrap();
        event.message = Some("guest list exported".into());
        event.wedding_id = Some("w-1".into());
        event.enrichment.wedding = Some(WeddingContext {
            wedding_id: "w-1".into(),
            date: NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
            timezone: "Europe/London".into(),
            phase: WeddingPhase::DayOf,
            days_until: 0,
            weekend: true,
            season: Season::Summer,
            guest_count: Some(120),
            vendor_count: None,
        });
        event.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 90,
            ..ThreatIntel::default()
        });
        event.enrichment.patterns.push(PatternMatch {
            pattern: "guest_list_scraping".into(),
            confidence: 0.5,
            indicators: vec![],
        });
        let mut a = Alert::new(Arc::new(event), Priority::P0Critical, "critical");
        a.dedup_key = "grp-1".into();
        a.reasons = vec!["wedding today".into()];
        a.impact.guest_lists_accessed = 1;
        a
    }

    #[test]
    fn golden_trigger() {
        let a = alert();
        let template = EventTemplate {
            source: "host-1".into(),
            client_url: Some("https://vowguard.example.org".into()),
            links: vec![Link {
                href: "https://runbook.example.org".into(),
                text: Some("Runbook".into()),
            }],
            ..EventTemplate::default()
        };
        let body: Value =
            serde_json::from_slice(&encode_event(&a, "KEY", &template).unwrap()).unwrap();
        let mut event = serde_json::to_value(a.event.as_ref()).unwrap();
        event.as_object_mut().unwrap().remove("enrichment");
        let expected = json!({
            "routing_key": "KEY",
            "event_action": "trigger",
            "dedup_key": "grp-1",
            "payload": {
                "summary": "[P0] guest list exported",
                "source": "host-1",
                "severity": "critical",
                "timestamp": "2026-06-20T12:03:07.000Z",
                "component": "vowguard",
                "group": "w-1",
                "class": "data_export.guest_list.export",
                "custom_details": {
                    "event": event,
                    "priority": "P0_CRITICAL",
                    "reasons": ["wedding today"],
                    "wedding_impact": {
                        "active_weddings_affected": 0, "couples_data_at_risk": false,
                        "vendor_accounts_compromised": 0, "payment_data_exposed": false,
                        "guest_lists_accessed": 1, "wedding_photos_at_risk": false
                    },
                    "wedding": {
                        "wedding_id": "w-1", "date": "2026-06-20", "timezone": "Europe/London",
                        "phase": "day_of", "days_until": 0, "weekend": true, "season": "summer",
                        "guest_count": 120
                    },
                    "threat_intel": {"verdict": "malicious", "score": 90},
                    "patterns": [{"pattern": "guest_list_scraping", "confidence": 0.5}],
                    "route": "critical"
                }
            },
            "links": [{"href": "https://runbook.example.org", "text": "Runbook"}],
            "client": "vowguard",
            "client_url": "https://vowguard.example.org"
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn severity_mapping_and_override() {
        let mut a = alert();
        for (p, s) in [
            (Priority::P0Critical, "critical"),
            (Priority::P1High, "error"),
            (Priority::P2Medium, "warning"),
            (Priority::P3Low, "info"),
            (Priority::P4Info, "info"),
        ] {
            a.priority = p;
            assert_eq!(severity(&a), s);
        }
        a.params.insert("severity".into(), json!("Warning"));
        assert_eq!(severity(&a), "warning");
        a.params.insert("severity".into(), json!("page-everyone"));
        assert_eq!(severity(&a), "info", "invalid override ignored");
        a.params.insert("severity".into(), json!(3));
        assert_eq!(severity(&a), "info");
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_key() {
        let mut a = alert();
        for (action, name) in [
            (AlertAction::Acknowledge, "acknowledge"),
            (AlertAction::Resolve, "resolve"),
        ] {
            a.action = action;
            let body: Value = serde_json::from_slice(
                &encode_event(&a, "KEY", &EventTemplate::default()).unwrap(),
            )
            .unwrap();
            assert_eq!(
                body,
                json!({"routing_key": "KEY", "event_action": name, "dedup_key": "grp-1"})
            );
        }
    }

    #[test]
    fn dedup_key_is_stable_bounded_and_distinct() {
        let mut a = alert();
        let mut b = alert();
        assert_ne!(a.id, b.id);
        assert_eq!(dedup_key(&a), dedup_key(&b));
        a.dedup_key = "x".repeat(300);
        b.dedup_key = format!("{}y", "x".repeat(299));
        let (ka, kb) = (dedup_key(&a), dedup_key(&b));
        assert_eq!(ka.chars().count(), 255);
        assert_eq!(kb.chars().count(), 255);
        assert_ne!(ka, kb);
        assert_eq!(ka, dedup_key(&a));
        a.dedup_key = "é".repeat(256);
        assert_eq!(dedup_key(&a).chars().count(), 255);
        a.dedup_key = String::new();
        assert_eq!(dedup_key(&a), "evt-1");
    }

    #[test]
    fn summary_is_capped_and_single_line() {
        let mut a = alert();
        Arc::make_mut(&mut a.event).message = Some(format!("a\r\nb{}", "z".repeat(5000)));
        let s = summary(&a);
        assert_eq!(s.chars().count(), 1024);
        assert!(s.starts_with("[P0] a  b"));
        assert!(s.ends_with('…'));
    }

    #[test]
    fn escalation_policy_param_is_passed_on() {
        let mut a = alert();
        a.params
            .insert("escalation_policy".into(), json!("PXYZ123"));
        assert_eq!(custom_details(&a)["escalation_policy"], "PXYZ123");
    }

    #[test]
    fn oversized_event_drops_attributes_first() {
        let mut a = alert();
        Arc::make_mut(&mut a.event)
            .attributes
            .insert("blob".into(), json!("x".repeat(600 * 1024)));
        let bytes = encode_event(&a, "KEY", &EventTemplate::default()).unwrap();
        assert!(bytes.len() <= MAX_PAYLOAD_BYTES);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let details = &body["payload"]["custom_details"];
        assert!(details["event"].get("attributes").is_none());
        assert_eq!(details["event"]["message"], "guest list exported");
        assert!(
            details["truncated"]
                .as_str()
                .unwrap()
                .contains("attributes dropped")
        );
    }

    #[test]
    fn oversized_fields_are_cut_then_details_reduced() {
        let mut a = alert();
        let e = Arc::make_mut(&mut a.event);
        e.message = Some("m".repeat(400 * 1024));
        e.user_agent = Some("u".repeat(400 * 1024));
        let bytes = encode_event(&a, "KEY", &EventTemplate::default()).unwrap();
        assert!(bytes.len() <= MAX_PAYLOAD_BYTES);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body["payload"]["custom_details"]["event"]["message"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            1024
        );
        // Even cut, the details exceed a tiny limit, so they are reduced to the essentials.
        let small = encode_capped(event_json(&a, "KEY", &EventTemplate::default()), 4096).unwrap();
        assert!(small.len() <= 4096);
        let body: Value = serde_json::from_slice(&small).unwrap();
        assert_eq!(body["payload"]["custom_details"]["event_id"], "evt-1");
        assert_eq!(body["payload"]["custom_details"]["priority"], "P0_CRITICAL");
        let err = encode_capped(event_json(&a, "KEY", &EventTemplate::default()), 100).unwrap_err();
        assert_eq!(err.kind(), vowguard_core::ErrorKind::Encode);
    }

    proptest! {
        #[test]
        fn any_text_gives_valid_bounded_json(
            message in ".{0,300}",
            action in "\\PC{1,50}",
            key in ".{0,400}",
            wedding in ".{0,300}",
            blob in proptest::collection::vec(any::<char>(), 0..200),
        ) {
            let mut a = alert();
            let e = Arc::make_mut(&mut a.event);
            e.message = Some(message);
            e.action = action;
            e.wedding_id = Some(wedding);
            e.enrichment.wedding = None;
            e.attributes.insert("blob".into(), json!(blob.into_iter().collect::<String>()));
            a.dedup_key = key;
            let bytes = encode_event(&a, "KEY", &EventTemplate::default()).unwrap();
            prop_assert!(bytes.len() <= MAX_PAYLOAD_BYTES);
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            let dedup = body["dedup_key"].as_str().unwrap();
            prop_assert!(dedup.chars().count() <= MAX_DEDUP_KEY_CHARS);
            let summary = body["payload"]["summary"].as_str().unwrap();
            prop_assert!(summary.chars().count() <= MAX_SUMMARY_CHARS);
            prop_assert!(!summary.chars().any(char::is_control));
            prop_assert!(body["payload"]["group"].as_str().unwrap().chars().count() <= MAX_FIELD_CHARS);
        }
    }
}

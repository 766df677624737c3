//! Pure encoding of an [`Alert`] as a Teams message carrying an Adaptive Card 1.4.
//!
//! Every event-derived string goes through [`neutralize`] before it reaches the card:
//! Adaptive Card `TextBlock` and `FactSet` text is rendered with a Markdown subset, so an
//! attacker-controlled `[click](http://evil)` would otherwise become a disguised link,
//! `**` / `_` would restyle text, and `<at>` could look like a mention.
//!
//! Colours by priority (Adaptive Card named colours): P0 `attention` (red), P1 `warning`
//! (amber), P2 `accent` (blue), P3 `good` (green: low urgency), P4 `default`.

use serde_json::{Map, Value, json};
use vowguard_core::{Alert, GroupSummary, Priority, WeddingImpact, WeddingPhase};
use vowguard_http::reqwest::Url;

use crate::config::CardLink;

/// The Adaptive Card schema version sent (Teams renders up to 1.5 on desktop, 1.4 everywhere).
pub const CARD_VERSION: &str = "1.4";
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 150;
/// Longest summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1000;
/// Longest fact value (and the reasons line), in characters.
pub const MAX_FACT_CHARS: usize = 300;
/// Most `Action.OpenUrl` buttons on one card.
pub const MAX_ACTIONS: usize = 5;

/// The Adaptive Card colour name for a priority (see the module docs).
pub fn color(priority: Priority) -> &'static str {
    match priority {
        Priority::P0Critical => "attention",
        Priority::P1High => "warning",
        Priority::P2Medium => "accent",
        Priority::P3Low => "good",
        Priority::P4Info => "default",
    }
}

/// Makes untrusted text inert in Adaptive Card Markdown, on one line, at most `max_chars`
/// characters (a cut string ends with `…`).
///
/// * Control characters (CR, LF, tab, ...), Unicode bidi overrides and zero-width
///   characters become spaces; runs of whitespace collapse to one space.
/// * Markdown and markup characters are replaced by look-alikes the renderer does not
///   interpret: `[ ]` → `［ ］`, `*` → `∗`, `` ` `` → `｀`, `#` → `＃`, `<` `>` → `＜ ＞`,
///   `&` → `＆`, `\` → `＼`, `~` → `～`. `_` is kept between two letters or digits
///   (`guest_list`, which cannot start emphasis) and replaced by `＿` elsewhere. `(` and `)`
///   are kept: without `[ ]` they cannot form a link, and they keep values readable.
/// * `://` becomes `:∕∕` so no URL in event text is turned into a link (defanged, as
///   security analysts do with indicators).
pub fn neutralize(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len().min(max_chars * 3));
    let mut count = 0;
    let mut last_space = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let replacement: &str = match c {
            ':' if chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') => {
                i += 2;
                ":∕∕"
            }
            '[' => "［",
            ']' => "］",
            '*' => "∗",
            '`' => "｀",
            '#' => "＃",
            '<' => "＜",
            '>' => "＞",
            '&' => "＆",
            '\\' => "＼",
            '~' => "～",
            '_' => {
                let alnum = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c| c.is_alphanumeric())
                };
                if alnum(i.checked_sub(1)) && alnum(Some(i + 1)) {
                    "_"
                } else {
                    "＿"
                }
            }
            c if c.is_whitespace() || is_invisible(c) => " ",
            _ => "",
        };
        i += 1;
        let piece_is_space = replacement == " ";
        if piece_is_space && last_space {
            continue;
        }
        let piece_chars = if replacement.is_empty() {
            1
        } else {
            replacement.chars().count()
        };
        if count + piece_chars > max_chars {
            // Cut: make room for the ellipsis.
            while count + 1 > max_chars && out.pop().is_some() {
                count -= 1;
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('…');
            return out;
        }
        if replacement.is_empty() {
            out.push(c);
        } else {
            out.push_str(replacement);
        }
        count += piece_chars;
        last_space = piece_is_space;
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// Control, bidi-override and zero-width characters, which must not reach the card.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn fact(title: &str, value: &str) -> Value {
    json!({ "title": title, "value": neutralize(value, MAX_FACT_CHARS) })
}

fn phase_name(phase: WeddingPhase) -> &'static str {
    match phase {
        WeddingPhase::Planning => "planning",
        WeddingPhase::WeekOf => "week of the wedding",
        WeddingPhase::DayOf => "TODAY (day of the wedding)",
        WeddingPhase::PostWedding => "after the wedding",
    }
}

/// The non-zero parts of a wedding impact, e.g. `2 active weddings, guest lists read: 1`.
pub fn impact_text(impact: &WeddingImpact) -> Option<String> {
    let mut parts = Vec::new();
    if impact.active_weddings_affected > 0 {
        parts.push(format!(
            "active weddings affected: {}",
            impact.active_weddings_affected
        ));
    }
    if impact.couples_data_at_risk {
        parts.push("couples' data at risk".to_owned());
    }
    if impact.vendor_accounts_compromised > 0 {
        parts.push(format!(
            "vendor accounts compromised: {}",
            impact.vendor_accounts_compromised
        ));
    }
    if impact.payment_data_exposed {
        parts.push("payment data exposed".to_owned());
    }
    if impact.guest_lists_accessed > 0 {
        parts.push(format!(
            "guest lists accessed: {}",
            impact.guest_lists_accessed
        ));
    }
    if impact.wedding_photos_at_risk {
        parts.push("wedding photos at risk".to_owned());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The facts of the card: Priority, Events (for a grouped alert), What, Who, Wedding, Risk, Threat, Impact, Route (the
/// optional ones only when known). Values are neutralised and capped.
pub fn facts(alert: &Alert) -> Vec<Value> {
    let event = &alert.event;
    let mut facts = vec![fact("Priority", alert.priority.as_str())];
    if let Some(group) = GroupSummary::of(alert) {
        facts.push(fact("Events", &group.text()));
    }
    let mut what = format!("{} {} ({})", event.category, event.action, event.outcome);
    if let Some(n) = event.record_count {
        what.push_str(&format!(", {n} records"));
    }
    if let (Some(kind), id) = (&event.resource_type, &event.resource_id) {
        what.push_str(&format!(" on {kind}"));
        if let Some(id) = id {
            what.push_str(&format!(" {id}"));
        }
    }
    facts.push(fact("What", &what));
    let mut who = Vec::new();
    match (&event.user_name, &event.user_id) {
        (Some(name), Some(id)) => who.push(format!("{name} ({id})")),
        (Some(one), None) | (None, Some(one)) => who.push(one.clone()),
        (None, None) => {}
    }
    if let Some(ip) = event.source_ip {
        let mut from = format!("from {ip}");
        if let Some(country) = event
            .enrichment
            .geo
            .as_ref()
            .and_then(|g| g.country_code.as_ref())
        {
            from.push_str(&format!(" ({country})"));
        }
        who.push(from);
    }
    if !who.is_empty() {
        facts.push(fact("Who", &who.join(" ")));
    }
    if let Some(w) = &event.enrichment.wedding {
        facts.push(fact(
            "Wedding",
            &format!("{} on {}, {}", w.wedding_id, w.date, phase_name(w.phase)),
        ));
    } else if let Some(id) = &event.wedding_id {
        facts.push(fact("Wedding", id));
    }
    let risk = match event.risk_score {
        Some(score) => format!("risk score {score}/100, severity {}", event.severity),
        None => format!("severity {}", event.severity),
    };
    facts.push(fact("Risk", &risk));
    if let Some(t) = &event.enrichment.threat {
        let mut threat = format!("{:?} (score {})", t.verdict, t.score).to_lowercase();
        if !t.categories.is_empty() {
            threat.push_str(&format!(": {}", t.categories.join(", ")));
        }
        if !t.actors.is_empty() {
            threat.push_str(&format!("; actors: {}", t.actors.join(", ")));
        }
        facts.push(fact("Threat", &threat));
    }
    if !event.enrichment.patterns.is_empty() {
        let patterns: Vec<String> = event
            .enrichment
            .patterns
            .iter()
            .map(|p| format!("{} ({:.0}%)", p.pattern, p.confidence * 100.0))
            .collect();
        facts.push(fact("Patterns", &patterns.join(", ")));
    }
    if let Some(impact) = impact_text(&alert.impact) {
        facts.push(fact("Impact", &impact));
    }
    facts.push(fact("Route", &alert.route));
    facts
}

/// The buttons: configured links, then the route's `links` parameter (an array of
/// `{title, url}`; entries that are malformed or not http(s) are skipped), at most
/// [`MAX_ACTIONS`].
pub fn actions(alert: &Alert, links: &[CardLink]) -> Vec<Value> {
    let from_params = alert
        .params
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_value::<CardLink>(v.clone()).ok());
    links
        .iter()
        .cloned()
        .chain(from_params)
        .filter(|l| Url::parse(&l.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
        .take(MAX_ACTIONS)
        .map(|l| {
            json!({
                "type": "Action.OpenUrl",
                "title": neutralize(&l.title, 60),
                "url": l.url,
            })
        })
        .collect()
}

/// The Adaptive Card (the attachment's `content`).
pub fn card(alert: &Alert, links: &[CardLink]) -> Value {
    let event = &alert.event;
    let title = format!(
        "{} security alert: {} {}",
        alert.priority.short(),
        event.category,
        event.action
    );
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": neutralize(&title, MAX_TITLE_CHARS),
            "weight": "bolder",
            "size": "medium",
            "color": color(alert.priority),
            "wrap": true,
        }),
        json!({
            "type": "TextBlock",
            "text": neutralize(&event.summary(), MAX_SUMMARY_CHARS),
            "wrap": true,
        }),
    ];
    if !alert.reasons.is_empty() {
        body.push(json!({
            "type": "TextBlock",
            "text": neutralize(&format!("Why: {}", alert.reasons.join("; ")), MAX_FACT_CHARS),
            "wrap": true,
            "isSubtle": true,
        }));
    }
    body.push(json!({ "type": "FactSet", "facts": facts(alert) }));
    let mut content = Map::new();
    content.insert(
        "$schema".into(),
        json!("http://adaptivecards.io/schemas/adaptive-card.json"),
    );
    content.insert("type".into(), json!("AdaptiveCard"));
    content.insert("version".into(), json!(CARD_VERSION));
    content.insert("body".into(), Value::Array(body));
    let actions = actions(alert, links);
    if !actions.is_empty() {
        content.insert("actions".into(), Value::Array(actions));
    }
    Value::Object(content)
}

/// The webhook request body: a `message` with the card as its one attachment.
pub fn message(alert: &Alert, links: &[CardLink]) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card(alert, links),
        }]
    })
}

/// [`message`] serialised.
pub fn encode_message(alert: &Alert, links: &[CardLink]) -> Vec<u8> {
    serde_json::to_vec(&message(alert, links)).expect("a serde_json::Value always serialises")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::NaiveDate;
    use proptest::prelude::*;
    use vowguard_core::{Category, Event, Season, Severity, ThreatIntel, Verdict, WeddingContext};

    use super::*;

    fn alert() -> Alert {
        let mut event = Event::new(
            Category::DataExport,
            "guest_list.export",
            Severity::Critical,
        );
        event.message = Some("guest list exported".into());
        event.user_name = Some("ana".into());
        event.user_id = Some("u-42".into());
        event.source_ip = Some("203.0.113.7".parse().unwrap());
        event.record_count = Some(450);
        event.risk_score = Some(91);
        event.enrichment.wedding = Some(WeddingContext {
            wedding_id: "w-1".into(),
            date: NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
            timezone: "Europe/London".into(),
            phase: WeddingPhase::DayOf,
            days_until: 0,
            weekend: true,
            season: Season::Summer,
            guest_count: None,
            vendor_count: None,
        });
        event.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 90,
            categories: vec!["brute-force".into()],
            ..ThreatIntel::default()
        });
        let mut a = Alert::new(Arc::new(event), Priority::P0Critical, "critical");
        a.reasons = vec!["wedding today".into(), "guest data".into()];
        a.impact.guest_lists_accessed = 1;
        a.impact.active_weddings_affected = 1;
        a
    }

    #[test]
    fn golden_message() {
        let a = alert();
        let links = [CardLink {
            title: "Runbook".into(),
            url: "https://runbook.example.org/x".into(),
        }];
        let expected = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": "P0 security alert: data_export guest_list.export",
                         "weight": "bolder", "size": "medium", "color": "attention", "wrap": true},
                        {"type": "TextBlock", "text": "guest list exported", "wrap": true},
                        {"type": "TextBlock", "text": "Why: wedding today; guest data", "wrap": true, "isSubtle": true},
                        {"type": "FactSet", "facts": [
                            {"title": "Priority", "value": "P0_CRITICAL"},
                            {"title": "What", "value": "data_export guest_list.export (unknown), 450 records"},
                            {"title": "Who", "value": "ana (u-42) from 203.0.113.7"},
                            {"title": "Wedding", "value": "w-1 on 2026-06-20, TODAY (day of the wedding)"},
                            {"title": "Risk", "value": "risk score 91/100, severity critical"},
                            {"title": "Threat", "value": "malicious (score 90): brute-force"},
                            {"title": "Impact", "value": "active weddings affected: 1, guest lists accessed: 1"},
                            {"title": "Route", "value": "critical"}
                        ]}
                    ],
                    "actions": [{"type": "Action.OpenUrl", "title": "Runbook", "url": "https://runbook.example.org/x"}]
                }
            }]
        });
        assert_eq!(message(&a, &links), expected);
    }

    #[test]
    fn colours_by_priority() {
        let mut a = alert();
        for (p, c) in [
            (Priority::P0Critical, "attention"),
            (Priority::P1High, "warning"),
            (Priority::P2Medium, "accent"),
            (Priority::P3Low, "good"),
            (Priority::P4Info, "default"),
        ] {
            a.priority = p;
            assert_eq!(card(&a, &[])["body"][0]["color"], c);
        }
        assert!(card(&a, &[]).get("actions").is_none());
    }

    #[test]
    fn hostile_text_is_neutralised() {
        assert_eq!(
            neutralize("[click](http://evil)", 100),
            "［click］(http:∕∕evil)"
        );
        assert_eq!(
            neutralize("<at>everyone</at>", 100),
            "＜at＞everyone＜/at＞"
        );
        assert_eq!(neutralize("a\r\n\tb\u{202E}c", 100), "a b c");
        assert_eq!(
            neutralize("**bold** _it_ `code` # h &amp; \\ ~~s~~", 100),
            "∗∗bold∗∗ ＿it＿ ｀code｀ ＃ h ＆amp; ＼ ～～s～～"
        );
        assert_eq!(
            neutralize("guest_list snake_case_2 _x", 100),
            "guest_list snake_case_2 ＿x"
        );
        let long = neutralize(&"x".repeat(10_000), 300);
        assert_eq!(long.chars().count(), 300);
        assert!(long.ends_with('…'));
        assert_eq!(neutralize("ab cd", 4), "ab…");
    }

    #[test]
    fn hostile_event_fields_never_reach_the_card_raw() {
        let mut a = alert();
        let e = Arc::make_mut(&mut a.event);
        e.message = Some(format!(
            "[click](http://evil) <at>all</at>\r\n{}",
            "y".repeat(10_000)
        ));
        e.action = "**x**".into();
        e.user_name = Some("[admin](https://evil.example)".into());
        a.params.insert(
            "links".into(),
            json!([{"title": "[t](x)", "url": "https://ok.example"}, {"title": "js", "url": "javascript:alert(1)"}, "junk"]),
        );
        let text = serde_json::to_string(&message(&a, &[])).unwrap();
        for bad in [
            "[click]",
            "](",
            "<at>",
            "\\r",
            "\\n",
            "**",
            "http://evil",
            "javascript:",
        ] {
            assert!(!text.contains(bad), "{bad} in {text}");
        }
        let c = card(&a, &[]);
        assert_eq!(
            c["body"][1]["text"].as_str().unwrap().chars().count(),
            MAX_SUMMARY_CHARS
        );
        assert_eq!(c["actions"].as_array().unwrap().len(), 1);
        assert_eq!(c["actions"][0]["title"], "［t］(x)");
    }

    proptest! {
        #[test]
        fn neutralised_text_is_inert(s in "\\PC*|.*", max in 1usize..400) {
            let out = neutralize(&s, max);
            prop_assert!(out.chars().count() <= max);
            prop_assert!(!out.chars().any(|c| c.is_control() || "[]*`#<>&\\~".contains(c)));
            prop_assert!(!out.contains("://"));
        }

        #[test]
        fn any_event_text_gives_valid_json(message in any::<String>(), action in any::<String>(), route in ".*") {
            let mut a = alert();
            let e = Arc::make_mut(&mut a.event);
            e.message = Some(message);
            e.action = action;
            a.route = route;
            let bytes = encode_message(&a, &[]);
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(&back["attachments"][0]["content"]["version"], "1.4");
        }
    }
}

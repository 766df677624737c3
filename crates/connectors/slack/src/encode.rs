//! Pure message building: an [`Alert`] in, Slack Block Kit JSON out.
//!
//! Every piece of event-derived text is treated as hostile:
//!
//! 1. [`clean`] replaces control and bidirectional-override characters (and, for one-line
//!    values, line breaks) so a field cannot fake extra lines or reverse its display;
//! 2. [`escape_mrkdwn`] turns `&`, `<`, `>` into `&amp;`, `&lt;`, `&gt;`, so `<!channel>`
//!    in an event arrives as the text `&lt;!channel&gt;` and pings nobody;
//! 3. mrkdwn text objects carry `"verbatim": true`, so Slack does not auto-link channel
//!    names, URLs or mentions written without angle brackets;
//! 4. the JSON is built with `serde_json`, so no text can break out of its string.
//!
//! Mentions only come from configuration ([`Mention`]) and are the only unescaped markup.
//! Lengths follow Block Kit's limits (header 150, field 2000, section text 3000, 50 blocks),
//! counted in UTF-16 code units (never fewer than Slack's characters) and cut on an
//! escape boundary with `…`.

use serde_json::{Value, json};
use vowguard_core::{Alert, AlertAction, Event, GroupSummary, Verdict, WeddingPhase};

use crate::config::Mention;

/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest header text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Longest section text (and context element text).
pub const MAX_SECTION_TEXT: usize = 3000;
/// Longest text of one section field.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Longest top-level `text` fallback.
pub const MAX_FALLBACK_TEXT: usize = 3000;
/// Most fields in one section.
const MAX_FIELDS: usize = 10;

/// Escapes text for Slack mrkdwn: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, nothing else.
pub fn escape_mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

fn escaped_units(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        c => c.len_utf16(),
    }
}

/// Length as Slack may count it (UTF-16 code units; at least the number of characters).
pub fn text_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Escapes `raw` and cuts it to at most `max` UTF-16 units, ending with `…` when cut.
/// Never splits an escape sequence or a character.
pub fn escape_within(raw: &str, max: usize) -> String {
    let total: usize = raw.chars().map(escaped_units).sum();
    if total <= max {
        return escape_mrkdwn(raw);
    }
    let budget = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for c in raw.chars() {
        let units = escaped_units(c);
        if used + units > budget {
            break;
        }
        used += units;
        push_escaped(&mut out, c);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Neutralises characters that change how text displays: control characters become
/// U+FFFD (tabs and carriage returns a space), bidi overrides U+FFFD; line breaks are kept
/// when `multi_line`, otherwise become spaces.
pub fn clean(text: &str, multi_line: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' if multi_line => '\n',
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() || is_bidi_control(c) => '\u{FFFD}',
            c => c,
        })
        .collect()
}

fn one_line(text: &str) -> String {
    clean(text, false)
}

/// A mrkdwn text object that Slack does not auto-link or auto-mention.
fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// `*Label*` + newline + the escaped value, within `max`.
fn labelled(label: &str, raw_value: &str, max: usize) -> String {
    let head = format!("*{label}*\n");
    let value = escape_within(raw_value, max.saturating_sub(text_len(&head)));
    head + &value
}

fn phase_name(phase: WeddingPhase) -> &'static str {
    match phase {
        WeddingPhase::Planning => "planning",
        WeddingPhase::WeekOf => "week_of",
        WeddingPhase::DayOf => "day_of",
        WeddingPhase::PostWedding => "post_wedding",
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Unknown => "unknown",
        Verdict::Benign => "benign",
        Verdict::Suspicious => "suspicious",
        Verdict::Malicious => "malicious",
    }
}

fn who(event: &Event) -> String {
    let mut out = String::new();
    match (&event.user_name, &event.user_id) {
        (Some(name), Some(id)) => out = format!("{} ({})", one_line(name), one_line(id)),
        (Some(name), None) => out = one_line(name),
        (None, Some(id)) => out = one_line(id),
        (None, None) => {}
    }
    if let Some(ip) = event.source_ip {
        if out.is_empty() {
            out = format!("from {ip}");
        } else {
            out = format!("{out} from {ip}");
        }
    }
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

fn wedding(event: &Event) -> Option<String> {
    let context = event.enrichment.wedding.as_ref();
    let id = event
        .wedding_id
        .as_deref()
        .or(context.map(|w| w.wedding_id.as_str()))?;
    let mut parts = vec![one_line(id)];
    if let Some(w) = context {
        parts.push(phase_name(w.phase).to_owned());
        parts.push(w.date.to_string());
        if let Some(guests) = w.guest_count {
            parts.push(format!("{guests} guests"));
        }
    }
    Some(parts.join(" · "))
}

fn impact(alert: &Alert) -> Option<String> {
    let i = &alert.impact;
    if !i.any() {
        return None;
    }
    let mut parts = Vec::new();
    if i.active_weddings_affected > 0 {
        parts.push(format!("{} active wedding(s)", i.active_weddings_affected));
    }
    if i.guest_lists_accessed > 0 {
        parts.push(format!("{} guest list(s) accessed", i.guest_lists_accessed));
    }
    if i.vendor_accounts_compromised > 0 {
        parts.push(format!(
            "{} vendor account(s)",
            i.vendor_accounts_compromised
        ));
    }
    if i.couples_data_at_risk {
        parts.push("couples' data at risk".to_owned());
    }
    if i.payment_data_exposed {
        parts.push("payment data exposed".to_owned());
    }
    if i.wedding_photos_at_risk {
        parts.push("photos at risk".to_owned());
    }
    Some(parts.join(" · "))
}

fn threat(event: &Event) -> Option<String> {
    let t = event.enrichment.threat.as_ref()?;
    let mut out = format!("{} (score {})", verdict_name(t.verdict), t.score);
    if !t.actors.is_empty() {
        let actors: Vec<String> = t.actors.iter().map(|a| one_line(a)).collect();
        out.push_str(" · actors: ");
        out.push_str(&actors.join(", "));
    }
    Some(out)
}

fn patterns(event: &Event) -> Option<String> {
    let p = &event.enrichment.patterns;
    if p.is_empty() {
        return None;
    }
    Some(
        p.iter()
            .map(|m| one_line(&m.pattern))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn what(event: &Event) -> String {
    let mut line = format!("{} · {}", one_line(&event.action), event.outcome);
    match (&event.resource_type, &event.resource_id) {
        (Some(t), Some(id)) => line.push_str(&format!(" · {}/{}", one_line(t), one_line(id))),
        (Some(x), None) | (None, Some(x)) => line.push_str(&format!(" · {}", one_line(x))),
        (None, None) => {}
    }
    if let Some(n) = event.record_count {
        line.push_str(&format!(" · {n} records"));
    }
    if let Some(message) = &event.message {
        // Each line of the message is quoted with a bar, so no line of event text can
        // start like a label (`*Priority*`) of the message itself.
        for message_line in clean(message, true).split('\n') {
            line.push_str("\n│ ");
            line.push_str(message_line);
        }
    }
    line
}

fn indicators(event: &Event) -> Option<String> {
    let mut lines = Vec::new();
    for (label, value) in [
        ("Domain", &event.domain),
        ("URL", &event.url),
        ("File hash", &event.file_hash),
        ("User agent", &event.user_agent),
    ] {
        if let Some(v) = value {
            lines.push(format!("{label}: {}", one_line(v)));
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn header_text(alert: &Alert) -> String {
    let prefix = match alert.action {
        AlertAction::Trigger => "",
        AlertAction::Acknowledge => "Acknowledged: ",
        AlertAction::Resolve => "Resolved: ",
    };
    format!(
        "{prefix}{} · {}",
        alert.priority,
        one_line(&alert.event.action)
    )
}

/// The rendered mentions that fit in `max` units, space-separated. Acknowledge and resolve
/// messages notify nobody.
fn mention_text(alert: &Alert, mentions: &[Mention], max: usize) -> String {
    if alert.action != AlertAction::Trigger {
        return String::new();
    }
    let mut out = String::new();
    for m in mentions {
        let r = m.render();
        let extra = if out.is_empty() { 0 } else { 1 };
        if text_len(&out) + extra + text_len(&r) > max {
            break;
        }
        if extra == 1 {
            out.push(' ');
        }
        out.push_str(&r);
    }
    out
}

/// Builds the Slack message for `alert`: `{"text", "blocks", "unfurl_links", "unfurl_media"}`.
///
/// `mentions` (from configuration only) are written as Slack markup in their own section
/// and at the start of the `text` fallback, which is what notifications show; everything
/// else is escaped. Link unfurling is off so Slack never fetches an attacker's URL.
/// The bot-mode caller adds `channel`.
pub fn build_message(alert: &Alert, mentions: &[Mention]) -> Value {
    let event = &alert.event;
    let mut blocks = Vec::new();

    blocks.push(json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": escape_within(&header_text(alert), MAX_HEADER_TEXT),
            "emoji": false,
        }
    }));

    let mentioned = mention_text(alert, mentions, MAX_SECTION_TEXT);
    if !mentioned.is_empty() {
        blocks.push(json!({"type": "section", "text": mrkdwn(&mentioned)}));
    }

    let group = GroupSummary::of(alert);
    let mut fields = vec![("Priority", alert.priority.to_string())];
    if let Some(g) = &group {
        fields.push(("Events", g.text()));
    }
    fields.extend([
        (
            "Severity",
            format!("{} · {}", event.severity, event.category),
        ),
        ("Who", who(event)),
    ]);
    if let Some(w) = wedding(event) {
        fields.push(("Wedding", w));
    }
    if let Some(i) = impact(alert) {
        fields.push(("Impact", i));
    }
    if let Some(r) = event.risk_score {
        fields.push(("Risk", format!("{r}/100")));
    }
    if let Some(t) = threat(event) {
        fields.push(("Threat", t));
    }
    if let Some(p) = patterns(event) {
        fields.push(("Patterns", p));
    }
    fields.push(("Route", one_line(&alert.route)));
    let fields: Vec<Value> = fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(label, value)| mrkdwn(&labelled(label, value, MAX_FIELD_TEXT)))
        .collect();
    blocks.push(json!({"type": "section", "fields": fields}));

    blocks.push(json!({
        "type": "section",
        "text": mrkdwn(&labelled("What", &what(event), MAX_SECTION_TEXT)),
    }));

    if !alert.reasons.is_empty() {
        let reasons: Vec<String> = alert
            .reasons
            .iter()
            .map(|r| format!("• {}", one_line(r)))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(&labelled("Why", &reasons.join("\n"), MAX_SECTION_TEXT)),
        }));
    }

    if let Some(i) = indicators(event) {
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(&labelled("Indicators", &i, MAX_SECTION_TEXT)),
        }));
    }

    let context = format!(
        "Event {} · {} · Alert {}",
        one_line(&event.id),
        event
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        one_line(&alert.id),
    );
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn(&escape_within(&context, MAX_SECTION_TEXT))],
    }));
    blocks.truncate(MAX_BLOCKS);

    let mut summary = header_text(alert);
    if let Some(g) = group.filter(|g| g.size > 1) {
        summary.push_str(&format!(" ({})", g.text()));
    }
    if let Some(message) = &event.message {
        summary.push_str(": ");
        summary.push_str(&one_line(message));
    }
    let text = if mentioned.is_empty() {
        escape_within(&summary, MAX_FALLBACK_TEXT)
    } else {
        let rest = MAX_FALLBACK_TEXT.saturating_sub(text_len(&mentioned) + 1);
        format!("{mentioned} {}", escape_within(&summary, rest))
    };

    json!({
        "text": text,
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;
    use vowguard_core::{
        Category, Outcome, PatternMatch, Priority, Season, Severity, ThreatIntel, WeddingContext,
    };

    use super::*;

    fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The fixed alert of the golden vector.
    pub(crate) fn golden_alert() -> Alert {
        let mut e = Event::new(
            Category::DataExport,
            "guest_list.export",
            Severity::Critical,
        );
        e.id = "01890000-0000-7000-8000-000000000001".into();
        e.timestamp = Utc.with_ymd_and_hms(2024, 6, 1, 14, 30, 0).unwrap();
        e.outcome = Outcome::Success;
        e.risk_score = Some(92);
        e.message = Some("Guest list exported: 412 rows".into());
        e.user_id = Some("u-42".into());
        e.user_name = Some("planner@example.org".into());
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.resource_type = Some("guest_lists".into());
        e.resource_id = Some("gl-9".into());
        e.record_count = Some(412);
        e.wedding_id = Some("wed-123".into());
        e.enrichment.wedding = Some(WeddingContext {
            wedding_id: "wed-123".into(),
            date: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
            timezone: "Europe/London".into(),
            phase: WeddingPhase::DayOf,
            days_until: 0,
            weekend: true,
            season: Season::Summer,
            guest_count: Some(150),
            vendor_count: Some(12),
        });
        e.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 88,
            actors: vec!["FIN7".into()],
            ..ThreatIntel::default()
        });
        e.enrichment.patterns = vec![PatternMatch {
            pattern: "guest_list_scraping".into(),
            confidence: 0.9,
            indicators: vec![],
        }];
        let mut a = Alert::new(Arc::new(e), Priority::P0Critical, "critical");
        a.id = "01890000-0000-7000-8000-0000000000a1".into();
        a.reasons = vec!["severity critical".into(), "wedding day_of".into()];
        a.impact.active_weddings_affected = 1;
        a.impact.guest_lists_accessed = 1;
        a
    }

    #[test]
    fn golden_message() {
        let msg = build_message(
            &golden_alert(),
            &[Mention::Here, Mention::User("U1".into())],
        );
        let expected = json!({
            "text": "<!here> <@U1> P0_CRITICAL · guest_list.export: Guest list exported: 412 rows",
            "unfurl_links": false,
            "unfurl_media": false,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "P0_CRITICAL · guest_list.export", "emoji": false}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "<!here> <@U1>", "verbatim": true}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Priority*\nP0_CRITICAL", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Severity*\ncritical · data_export", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Who*\nplanner@example.org (u-42) from 203.0.113.7", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Wedding*\nwed-123 · day_of · 2024-06-01 · 150 guests", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Impact*\n1 active wedding(s) · 1 guest list(s) accessed", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Risk*\n92/100", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Threat*\nmalicious (score 88) · actors: FIN7", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Patterns*\nguest_list_scraping", "verbatim": true},
                    {"type": "mrkdwn", "text": "*Route*\ncritical", "verbatim": true},
                ]},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*What*\nguest_list.export · success · guest_lists/gl-9 · 412 records\n│ Guest list exported: 412 rows", "verbatim": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Why*\n• severity critical\n• wedding day_of", "verbatim": true}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "Event 01890000-0000-7000-8000-000000000001 · 2024-06-01T14:30:00.000Z · Alert 01890000-0000-7000-8000-0000000000a1", "verbatim": true}]},
            ],
        });
        assert_eq!(
            msg,
            expected,
            "{}",
            serde_json::to_string_pretty(&msg).unwrap()
        );
    }

    #[test]
    fn minimal_alert_has_header_fields_and_fallback() {
        let e = Event::new(Category::Authentication, "login", Severity::Low);
        let mut a = Alert::new(Arc::new(e), Priority::P3Low, "r");
        a.action = AlertAction::Resolve;
        let msg = build_message(&a, &[Mention::Channel]);
        assert_eq!(msg["text"], "Resolved: P3_LOW · login");
        assert_eq!(msg["blocks"][0]["text"]["text"], "Resolved: P3_LOW · login");
        // A resolve notifies nobody, and absent values are left out.
        assert!(!msg.to_string().contains("<!channel>"));
        let fields = msg["blocks"][1]["fields"].as_array().unwrap();
        let labels: Vec<&str> = fields
            .iter()
            .map(|f| f["text"].as_str().unwrap().split('\n').next().unwrap())
            .collect();
        assert_eq!(labels, ["*Priority*", "*Severity*", "*Who*", "*Route*"]);
        assert_eq!(fields[2]["text"], "*Who*\nunknown");
    }

    #[test]
    fn event_text_is_escaped_everywhere() {
        let mut e = Event::new(Category::Other, "<!channel> & <@U9>", Severity::High);
        e.message = Some("<!here> hi <https://evil.example|click>".into());
        e.user_name = Some("<!subteam^S1>".into());
        e.url = Some("<https://evil.example>".into());
        let mut a = Alert::new(Arc::new(e), Priority::P1High, "<!everyone>");
        a.reasons = vec!["<!channel>".into()];
        let body = serde_json::to_string(&build_message(&a, &[])).unwrap();
        for raw in ["<!", "<@", "<https", "& "] {
            assert!(!body.contains(raw), "{raw} in {body}");
        }
        assert!(
            body.contains("&lt;!channel&gt; &amp; &lt;@U9&gt;"),
            "{body}"
        );
        assert!(body.contains("&lt;!here&gt;"), "{body}");
    }

    #[test]
    fn long_text_is_cut_within_limits() {
        let mut e = Event::new(Category::Other, "a".repeat(400), Severity::High);
        e.message = Some("<&>".repeat(4000));
        e.user_name = Some("é".repeat(5000));
        let a = Alert::new(Arc::new(e), Priority::P1High, "r");
        let msg = build_message(&a, &[]);
        let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(text_len(header) <= MAX_HEADER_TEXT && header.ends_with('…'));
        for field in msg["blocks"][1]["fields"].as_array().unwrap() {
            assert!(text_len(field["text"].as_str().unwrap()) <= MAX_FIELD_TEXT);
        }
        let what = msg["blocks"][2]["text"]["text"].as_str().unwrap();
        assert!(text_len(what) <= MAX_SECTION_TEXT, "{}", text_len(what));
        assert!(what.ends_with('…'));
        // Cut between escapes, never inside one.
        let body = what.trim_end_matches('…');
        assert!(body.ends_with("&lt;") || body.ends_with("&amp;") || body.ends_with("&gt;"));
        assert!(text_len(msg["text"].as_str().unwrap()) <= MAX_FALLBACK_TEXT);
    }

    #[test]
    fn cleaning_neutralises_controls_and_bidi() {
        assert_eq!(
            clean("a\nb\rc\td\u{0}e\u{202E}f", false),
            "a b c d\u{FFFD}e\u{FFFD}f"
        );
        assert_eq!(clean("a\nb", true), "a\nb");
        let mut e = Event::new(Category::Other, "x", Severity::High);
        e.user_name = Some("mallory\n*Priority*\nP4_INFO".into());
        let a = Alert::new(Arc::new(e), Priority::P0Critical, "r");
        let msg = build_message(&a, &[]);
        assert_eq!(
            msg["blocks"][1]["fields"][2]["text"],
            "*Who*\nmallory *Priority* P4_INFO"
        );
    }

    #[test]
    fn escape_within_edges() {
        assert_eq!(escape_within("a&b", 7), "a&amp;b");
        assert_eq!(escape_within("a&b", 6), "a…");
        assert_eq!(escape_within("😀😀", 3), "😀…");
        assert_eq!(escape_within("abc", 0), "");
    }

    proptest! {
        #[test]
        fn escaping_round_trips_and_has_no_brackets(s in any::<String>()) {
            let escaped = escape_mrkdwn(&s);
            prop_assert!(!escaped.contains('<') && !escaped.contains('>'));
            prop_assert_eq!(unescape(&escaped), s);
        }

        #[test]
        fn cut_text_stays_within_and_is_a_prefix(s in any::<String>(), max in 0usize..64) {
            let cut = escape_within(&s, max);
            prop_assert!(text_len(&cut) <= max);
            prop_assert!(!cut.contains('<') && !cut.contains('>'));
            let unescaped = unescape(cut.strip_suffix('…').unwrap_or(&cut));
            prop_assert!(s.starts_with(&unescaped));
        }

        #[test]
        fn any_event_text_gives_valid_json_without_markup(
            action in any::<String>(), message in any::<String>(), user in any::<String>()
        ) {
            let mut e = Event::new(Category::Other, action, Severity::High);
            e.message = Some(message);
            e.user_name = Some(user);
            let a = Alert::new(Arc::new(e), Priority::P1High, "r");
            let bytes = serde_json::to_vec(&build_message(&a, &[])).unwrap();
            let text = std::str::from_utf8(&bytes).unwrap();
            prop_assert!(!text.contains('<') && !text.contains('>'));
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert!(back["blocks"].as_array().unwrap().len() <= MAX_BLOCKS);
        }
    }
}

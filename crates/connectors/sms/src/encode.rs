//! Pure SMS text building: segment counting and an alert fitted into two segments.
//!
//! An SMS segment holds 140 bytes. Text made only of GSM-7 characters (the GSM 03.38
//! basic set, plus the extension table `^ { } \ [ ~ ] | €` and form feed, which take two
//! septets each: an escape and the character) fits 160 septets in one segment, or 153 per
//! segment once split (the rest is the concatenation header). Any other character switches
//! the whole message to UCS-2: 70 UTF-16 code units in one segment, 67 per segment when
//! split, where an emoji (a surrogate pair) is two units. An escape pair or a surrogate
//! pair is never split across segments.
//!
//! [`build_message`] writes `P0 vowguard: <action> - <message> | Wedding <id> TODAY | Ref <ref>`
//! and fits it in [`MAX_SEGMENTS`], cutting the least important part first.

use vowguard_core::{Alert, GroupSummary, WeddingPhase};

/// Most segments an alert may take.
pub const MAX_SEGMENTS: usize = 2;
/// Longest action kept, in characters.
const MAX_ACTION_CHARS: usize = 40;
/// Longest wedding id kept, in characters.
const MAX_WEDDING_ID_CHARS: usize = 32;
/// Longest alert id appended to `link_base`, in characters.
const MAX_LINK_ID_CHARS: usize = 64;
/// Message text kept before trying GSM-7 look-alikes for a UCS-2 message.
const MIN_DETAIL_CHARS: usize = 20;

/// How a message is encoded on the air interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// GSM 03.38 7-bit default alphabet (with the extension table).
    Gsm7,
    /// UCS-2 / UTF-16.
    Ucs2,
}

/// Septets `c` takes in GSM-7: 1 for the basic set, 2 for the extension table, `None`
/// when it is not GSM-7 at all.
pub fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' => Some(1),
        ' ' | '!' | '"' | '#' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.'
        | '/' | ':' | ';' | '<' | '=' | '>' | '?' | '@' | '_' | '$' | '\n' | '\r' => Some(1),
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ'
        | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Whether `c` is in the GSM-7 alphabet (basic set or extension table).
pub fn is_gsm7(c: char) -> bool {
    gsm7_septets(c).is_some()
}

/// The encoding `text` needs and how many segments it takes (0 for empty text).
pub fn segments(text: &str) -> (Encoding, usize) {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match gsm {
        Some(costs) => (Encoding::Gsm7, pack(&costs, 160, 153)),
        None => {
            let costs: Vec<usize> = text.chars().map(char::len_utf16).collect();
            (Encoding::Ucs2, pack(&costs, 70, 67))
        }
    }
}

/// Segments for units of `costs`: one if all fit in `single`, else filled `per_part` at a
/// time without splitting a unit.
fn pack(costs: &[usize], single: usize, per_part: usize) -> usize {
    let total: usize = costs.iter().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let (mut parts, mut used) = (1, 0);
    for &c in costs {
        if used + c > per_part {
            parts += 1;
            used = 0;
        }
        used += c;
    }
    parts
}

/// One line of plain text: control characters (CR, LF, tab, ...), bidi overrides and
/// zero-width characters become spaces, runs of whitespace collapse, ends are trimmed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = true;
    for c in text.chars() {
        let invisible = c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
        if invisible {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// `text` with every non-GSM-7 character replaced by a GSM-7 look-alike (typographic
/// quotes and dashes, `…`) or `?`, so the message can use the larger GSM-7 budget.
pub fn to_gsm7(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if is_gsm7(c) => out.push(c),
            '‘' | '’' | '`' | '´' => out.push('\''),
            '“' | '”' | '„' => out.push('"'),
            '–' | '—' | '‐' | '−' => out.push('-'),
            '…' => out.push_str("..."),
            _ => out.push('?'),
        }
    }
    out
}

/// What the message builder needs from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageOptions {
    /// When set, the reference is this URL followed by the alert id.
    pub link_base: Option<String>,
}

/// The parts of an alert message, before fitting.
#[derive(Debug, Clone)]
struct Parts {
    priority: &'static str,
    /// How many events a grouped alert stands for, e.g. `12 events 14:03-14:05Z`.
    group: Option<String>,
    action: String,
    detail: String,
    wedding: Option<(String, String)>,
    reference: String,
}

impl Parts {
    fn render(&self, action_chars: usize, detail_chars: usize, wedding_chars: usize) -> String {
        let mut out = match &self.group {
            Some(group) => format!("{} vowguard ({group}): ", self.priority),
            None => format!("{} vowguard: ", self.priority),
        };
        out.push_str(&cut(&self.action, action_chars, "..."));
        let detail = cut(&self.detail, detail_chars, "...");
        if !detail.is_empty() {
            out.push_str(" - ");
            out.push_str(&detail);
        }
        if let Some((id, when)) = &self.wedding {
            out.push_str(" | Wedding ");
            out.push_str(&cut(id, wedding_chars, ""));
            if !when.is_empty() {
                out.push(' ');
                out.push_str(when);
            }
        }
        out.push_str(" | ");
        out.push_str(&self.reference);
        // "..." costs 3 septets; in a UCS-2 message "…" costs one unit.
        if segments(&out).0 == Encoding::Ucs2 {
            out = out.replace("...", "…");
        }
        out
    }

    fn gsm7(&self) -> Self {
        Self {
            priority: self.priority,
            group: self.group.clone(),
            action: to_gsm7(&self.action),
            detail: to_gsm7(&self.detail),
            wedding: self
                .wedding
                .as_ref()
                .map(|(id, when)| (to_gsm7(id), to_gsm7(when))),
            reference: to_gsm7(&self.reference),
        }
    }

    /// The longest message with `detail` cut to at most `max` characters that fits.
    fn fit_detail(&self, action: usize, wedding: usize) -> Option<(usize, String)> {
        let max = self.detail.chars().count().min(400);
        (0..=max)
            .rev()
            .map(|n| (n, self.render(action, n, wedding)))
            .find(|(_, text)| fits(text))
    }

    fn fit(&self) -> Option<String> {
        let (action, wedding) = (MAX_ACTION_CHARS, MAX_WEDDING_ID_CHARS);
        let detail_len = self.detail.chars().count();
        match self.fit_detail(action, wedding) {
            Some((n, text)) if n >= detail_len.min(MIN_DETAIL_CHARS) => return Some(text),
            _ => {}
        }
        let gsm = self.gsm7();
        if let Some((_, text)) = gsm.fit_detail(action, wedding) {
            return Some(text);
        }
        for a in (0..action).rev() {
            let text = gsm.render(a, 0, wedding);
            if fits(&text) {
                return Some(text);
            }
        }
        (0..wedding)
            .rev()
            .map(|w| gsm.render(0, 0, w))
            .find(|t| fits(t))
    }
}

fn fits(text: &str) -> bool {
    segments(text).1 <= MAX_SEGMENTS
}

/// At most `max` characters of `s`; a cut string ends with `ellipsis` (inside the limit).
fn cut(s: &str, max: usize, ellipsis: &str) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(ellipsis.chars().count());
    if keep == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(keep).collect();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push_str(ellipsis);
    out
}

/// The short reference of an alert: `link_base` + id when configured, else `Ref ` and the
/// last 8 characters of the alert id (a UUIDv7's random tail; its first 8 characters are a
/// timestamp shared by every alert of the same minute).
pub fn reference(alert: &Alert, options: &MessageOptions) -> String {
    let id = sanitize(&alert.id).replace(' ', "");
    match &options.link_base {
        Some(base) => {
            let id: String = id.chars().take(MAX_LINK_ID_CHARS).collect();
            format!("{base}{id}")
        }
        None => {
            let n = id.chars().count();
            let short: String = id.chars().skip(n.saturating_sub(8)).collect();
            format!("Ref {short}")
        }
    }
}

/// The SMS text for `alert`, at most [`MAX_SEGMENTS`] segments, one line without control
/// characters: priority, what happened, which wedding (`TODAY` on the wedding day) and a
/// short reference. When it does not fit, the event message is cut first (with `...`, or
/// `…` in a UCS-2 message), then non-GSM-7 characters are replaced by look-alikes, then
/// the action and the wedding id are cut.
pub fn build_message(alert: &Alert, options: &MessageOptions) -> String {
    let event = &alert.event;
    let detail = match &event.message {
        Some(m) if !m.trim().is_empty() => sanitize(m),
        _ => format!("{} ({})", event.category, event.outcome),
    };
    let wedding = match (&event.enrichment.wedding, &event.wedding_id) {
        (Some(w), _) => {
            let when = if w.phase == WeddingPhase::DayOf {
                "TODAY".to_owned()
            } else {
                w.date.to_string()
            };
            Some((sanitize(&w.wedding_id), when))
        }
        (None, Some(id)) => Some((sanitize(id), String::new())),
        (None, None) => None,
    }
    .filter(|(id, _)| !id.is_empty());
    let parts = Parts {
        priority: alert.priority.short(),
        group: GroupSummary::of(alert)
            .filter(|g| g.size > 1)
            .map(|g| g.short_text()),
        action: sanitize(&event.action),
        detail,
        wedding,
        reference: reference(alert, options),
    };
    parts.fit().unwrap_or_else(|| {
        // Unreachable with the caps above; keep the guarantee anyway.
        let gsm = to_gsm7(&parts.render(0, 0, 0));
        let mut n = gsm.chars().count();
        loop {
            let text = cut(&gsm, n, "...");
            if fits(&text) {
                break text;
            }
            n -= 1;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::NaiveDate;
    use proptest::prelude::*;
    use vowguard_core::{Category, Event, Priority, Season, Severity, WeddingContext};

    use super::*;

    #[test]
    fn segment_goldens() {
        let g = |n: usize| "a".repeat(n);
        assert_eq!(segments(""), (Encoding::Gsm7, 0));
        assert_eq!(segments(&g(1)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&g(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&g(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&g(306)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&g(307)), (Encoding::Gsm7, 3));
        assert_eq!(segments(&g(459)), (Encoding::Gsm7, 3));
        assert_eq!(segments(&g(460)), (Encoding::Gsm7, 4));
        let u = |n: usize| "ж".repeat(n);
        assert_eq!(segments(&u(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&u(71)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&u(134)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&u(135)), (Encoding::Ucs2, 3));
    }

    #[test]
    fn extension_characters_take_two_septets() {
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
        assert_eq!(
            segments(&format!("{}€", "a".repeat(158))),
            (Encoding::Gsm7, 1)
        );
        assert_eq!(
            segments(&format!("{}€", "a".repeat(159))),
            (Encoding::Gsm7, 2)
        );
        for c in "^{}\\[~]|€\u{0C}".chars() {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
        // An escape pair is not split: 152 + [2] does not fit in the first part's 153.
        assert_eq!(
            segments(&format!("{}€{}", "a".repeat(152), "a".repeat(152))),
            (Encoding::Gsm7, 3)
        );
        assert_eq!(
            segments(&format!("{}€{}", "a".repeat(151), "a".repeat(151))),
            (Encoding::Gsm7, 2)
        );
    }

    #[test]
    fn basic_set_and_outsiders() {
        for c in "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r".chars()
        {
            assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
        }
        for c in "`çÁáõ…’😀\t\u{1B}".chars() {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
        }
        assert_eq!(segments("café"), (Encoding::Gsm7, 1));
        assert_eq!(segments("ça"), (Encoding::Ucs2, 1));
    }

    #[test]
    fn emoji_count_two_units() {
        assert_eq!(segments(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"😀".repeat(36)), (Encoding::Ucs2, 2));
        assert_eq!(
            segments(&format!("{}😀", "a".repeat(69))),
            (Encoding::Ucs2, 2)
        );
        // A surrogate pair is not split: 66 + [2] does not fit in 67.
        assert_eq!(
            segments(&format!("{}😀{}", "ж".repeat(66), "ж".repeat(66))),
            (Encoding::Ucs2, 3)
        );
    }

    fn alert(message: &str) -> Alert {
        let mut event = Event::new(
            Category::DataExport,
            "guest_list.export",
            Severity::Critical,
        );
        event.message = Some(message.into());
        let mut a = Alert::new(Arc::new(event), Priority::P0Critical, "critical");
        a.id = "0192f0c4-1a2b-7c3d-8e4f-5a6b7c8d9e0f".into();
        a
    }

    fn with_wedding(mut a: Alert, phase: WeddingPhase) -> Alert {
        Arc::make_mut(&mut a.event).enrichment.wedding = Some(WeddingContext {
            wedding_id: "w-1".into(),
            date: NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
            timezone: "Europe/London".into(),
            phase,
            days_until: 0,
            weekend: true,
            season: Season::Summer,
            guest_count: None,
            vendor_count: None,
        });
        a
    }

    #[test]
    fn golden_messages() {
        let opts = MessageOptions::default();
        let a = with_wedding(alert("450 guests exported"), WeddingPhase::DayOf);
        assert_eq!(
            build_message(&a, &opts),
            "P0 vowguard: guest_list.export - 450 guests exported | Wedding w-1 TODAY | Ref 7c8d9e0f"
        );
        let a = with_wedding(alert("x"), WeddingPhase::WeekOf);
        assert_eq!(
            build_message(&a, &opts),
            "P0 vowguard: guest_list.export - x | Wedding w-1 2026-06-20 | Ref 7c8d9e0f"
        );
        let mut a = alert("");
        Arc::make_mut(&mut a.event).wedding_id = Some("w-9".into());
        let link = MessageOptions {
            link_base: Some("https://sec.example.org/a/".into()),
        };
        assert_eq!(
            build_message(&a, &link),
            "P0 vowguard: guest_list.export - data_export (unknown) | Wedding w-9 | https://sec.example.org/a/0192f0c4-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
        );
    }

    #[test]
    fn long_message_is_cut_to_two_segments() {
        let a = with_wedding(alert(&"z".repeat(1000)), WeddingPhase::DayOf);
        let text = build_message(&a, &MessageOptions::default());
        assert_eq!(segments(&text), (Encoding::Gsm7, 2));
        assert!(
            text.contains("zzz... | Wedding w-1 TODAY | Ref 7c8d9e0f"),
            "{text}"
        );
        assert!(
            text.chars().count() > 290,
            "uses the space: {}",
            text.chars().count()
        );
    }

    #[test]
    fn ucs2_message_is_cut_with_unicode_ellipsis() {
        let a = alert(&"ж".repeat(500));
        let text = build_message(&a, &MessageOptions::default());
        assert_eq!(segments(&text), (Encoding::Ucs2, 2));
        assert!(text.contains("жж… | Ref"), "{text}");
        assert!(!text.contains("..."));
    }

    #[test]
    fn hostile_text_is_one_line() {
        let mut a = alert("line1\r\nline2\u{0}\u{1B}\u{202E}x\ty");
        Arc::make_mut(&mut a.event).action = "a\nb".into();
        let text = build_message(&a, &MessageOptions::default());
        assert!(
            text.starts_with("P0 vowguard: a b - line1 line2 x y | Ref"),
            "{text}"
        );
    }

    #[test]
    fn fixed_parts_too_long_for_ucs2_fall_back_to_gsm7() {
        let mut a = alert("😀 emoji 😀");
        Arc::make_mut(&mut a.event).action = "ж".repeat(40);
        let link = MessageOptions {
            link_base: Some(format!("https://sec.example.org/{}/", "a".repeat(70))),
        };
        let text = build_message(&a, &link);
        assert!(fits(&text), "{text}");
        assert!(
            text.ends_with("/0192f0c4-1a2b-7c3d-8e4f-5a6b7c8d9e0f"),
            "link kept: {text}"
        );
        assert_eq!(segments(&text).0, Encoding::Gsm7);
    }

    proptest! {
        #[test]
        fn any_alert_fits_two_segments_without_controls(
            message in any::<String>(),
            action in any::<String>(),
            wedding in proptest::option::of(any::<String>()),
            id in "[ -~]{0,80}",
            link in proptest::option::of("https://[a-z]{1,20}\\.example/[a-z~^{}|]{0,60}"),
        ) {
            let mut a = alert(&message);
            let e = Arc::make_mut(&mut a.event);
            e.action = action;
            e.wedding_id = wedding;
            a.id = id;
            let text = build_message(&a, &MessageOptions { link_base: link });
            prop_assert!(segments(&text).1 <= MAX_SEGMENTS, "{:?} -> {:?}", text, segments(&text));
            prop_assert!(!text.chars().any(|c| c.is_control()), "{:?}", text);
        }

        #[test]
        fn segments_match_naive_counting_for_plain_text(n in 0usize..600, ucs in any::<bool>()) {
            let text = if ucs { "ж".repeat(n) } else { "a".repeat(n) };
            let (single, part) = if ucs { (70, 67) } else { (160, 153) };
            let expected = if n == 0 { 0 } else if n <= single { 1 } else { n.div_ceil(part) };
            prop_assert_eq!(segments(&text).1, expected);
        }
    }
}

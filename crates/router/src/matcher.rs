//! Alertmanager-style matchers: `label OP "value"` with `=`, `!=`, `=~`, `!~` over event
//! and alert fields. Regexes are fully anchored. A field the event does not have is the
//! empty string (so `wedding_phase!="day_of"` matches events without a wedding).
//!
//! Numeric comparisons `<`, `<=`, `>`, `>=` compare a field holding a number or a duration
//! (`breach_deadline_in < 24h`, `label.records > 1000`). Durations are written `90s`,
//! `30m`, `24h`, `3d` or as plain seconds; a field that is absent or not a number never
//! satisfies a comparison.

use std::fmt;

use regex::Regex;
use vowguard_core::{Event, Priority};

/// The fields a matcher (or `group_by`/`equal`) can name.
pub const MATCHER_FIELDS: &[&str] = &[
    "priority",
    "severity",
    "category",
    "action",
    "outcome",
    "user_id",
    "source_ip",
    "wedding_id",
    "resource_type",
    "wedding_phase",
    "threat_verdict",
    "pattern",
    "protocol",
    "breach_deadline_in",
    "label.<key>",
];

/// What is being matched: the event, its computed priority and the protocols it hit.
#[derive(Debug, Clone, Copy)]
pub struct MatchContext<'a> {
    /// The event.
    pub event: &'a Event,
    /// Its priority.
    pub priority: Priority,
    /// Names of the wedding-day protocols it triggered.
    pub protocols: &'a [String],
}

/// A field of [`MatchContext`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Priority,
    Severity,
    Category,
    Action,
    Outcome,
    UserId,
    SourceIp,
    WeddingId,
    ResourceType,
    WeddingPhase,
    ThreatVerdict,
    Pattern,
    Protocol,
    BreachDeadlineIn,
    Label(String),
}

impl Field {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "priority" => Self::Priority,
            "severity" => Self::Severity,
            "category" => Self::Category,
            "action" => Self::Action,
            "outcome" => Self::Outcome,
            "user_id" => Self::UserId,
            "source_ip" => Self::SourceIp,
            "wedding_id" => Self::WeddingId,
            "resource_type" => Self::ResourceType,
            "wedding_phase" => Self::WeddingPhase,
            "threat_verdict" => Self::ThreatVerdict,
            "pattern" => Self::Pattern,
            "protocol" => Self::Protocol,
            "breach_deadline_in" => Self::BreachDeadlineIn,
            other => match other.strip_prefix("label.") {
                Some(key) if !key.is_empty() => Self::Label(key.to_owned()),
                _ => return None,
            },
        })
    }

    /// The field's values (several for `pattern` and `protocol`; none when absent).
    pub(crate) fn values(&self, ctx: &MatchContext<'_>) -> Vec<String> {
        let e = ctx.event;
        let one = |v: Option<String>| v.into_iter().collect();
        match self {
            Self::Priority => vec![ctx.priority.as_str().to_owned()],
            Self::Severity => vec![e.severity.as_str().to_owned()],
            Self::Category => vec![e.category.as_str().to_owned()],
            Self::Action => vec![e.action.clone()],
            Self::Outcome => vec![e.outcome.as_str().to_owned()],
            Self::UserId => one(e.user_id.clone()),
            Self::SourceIp => one(e.source_ip.map(|ip| ip.to_string())),
            Self::WeddingId => one(e.wedding_id.clone()),
            Self::ResourceType => one(e.resource_type.clone()),
            Self::WeddingPhase => one(e
                .enrichment
                .wedding
                .as_ref()
                .map(|w| phase_str(w.phase).to_owned())),
            Self::ThreatVerdict => one(e.enrichment.threat.as_ref().map(|t| {
                serde_json::to_value(t.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })),
            Self::Pattern => e
                .enrichment
                .patterns
                .iter()
                .map(|p| p.pattern.clone())
                .collect(),
            Self::Protocol => ctx.protocols.to_vec(),
            // Seconds until a confirmed breach's Art. 33 deadline, set on the escalation
            // events the runtime's breach watcher emits (negative once overdue).
            Self::BreachDeadlineIn => one(e.labels.get(BREACH_DEADLINE_LABEL).cloned()),
            Self::Label(key) => one(e.labels.get(key).cloned()),
        }
    }
}

/// The snake_case name of a wedding phase.
pub(crate) fn phase_str(phase: vowguard_core::WeddingPhase) -> &'static str {
    use vowguard_core::WeddingPhase as P;
    match phase {
        P::Planning => "planning",
        P::WeekOf => "week_of",
        P::DayOf => "day_of",
        P::PostWedding => "post_wedding",
    }
}

/// The event label carrying the seconds left until a breach's notification deadline.
pub const BREACH_DEADLINE_LABEL: &str = "breach_deadline_in";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    Re,
    NotRe,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Parses a number of seconds: `90s`, `30m`, `24h`, `3d`, or plain (possibly negative,
/// possibly fractional) seconds.
pub(crate) fn parse_seconds(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let factor = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    value.is_finite().then_some(value * factor)
}

/// One compiled matcher, e.g. `severity=~"high|critical"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    text: String,
    field: Field,
    op: Op,
    value: String,
    regex: Option<Regex>,
    /// The threshold of a comparison, in seconds (or plain units).
    threshold: Option<f64>,
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Matcher {
    /// Parses `label OP "value"` (the value may also be unquoted). The error says what is
    /// wrong, for the caller to prefix with where the matcher is.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s = text.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .ok_or_else(|| {
                "expected `field OP \"value\"` with OP one of =, !=, =~, !~, <, <=, >, >="
                    .to_owned()
            })?;
        let name = &s[..name_end];
        let field = Field::parse(name).ok_or_else(|| {
            format!(
                "unknown field `{name}`; expected one of {}",
                MATCHER_FIELDS.join(", ")
            )
        })?;
        let rest = s[name_end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Op::Gt, r)
        } else if let Some(r) = rest.strip_prefix("=~") {
            (Op::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (Op::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::NotEq, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (Op::Eq, r)
        } else {
            return Err(format!(
                "expected an operator (=, !=, =~, !~, <, <=, >, >=) after `{name}`"
            ));
        };
        let rest = rest.trim();
        let mut value = if let Some(inner) = rest.strip_prefix('"') {
            unquote(inner)?
        } else if rest.contains(['"', ' ']) {
            return Err("the value must be one double-quoted string".to_owned());
        } else {
            rest.to_owned()
        };
        if field == Field::Priority && matches!(op, Op::Eq | Op::NotEq) && !value.is_empty() {
            let p: Priority = value.parse()?;
            value = p.as_str().to_owned();
        }
        let regex = match op {
            Op::Re | Op::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?}: {e}"))?,
            ),
            Op::Eq | Op::NotEq | Op::Lt | Op::Le | Op::Gt | Op::Ge => None,
        };
        let threshold = match op {
            Op::Lt | Op::Le | Op::Gt | Op::Ge => Some(parse_seconds(&value).ok_or_else(|| {
                format!(
                    "`{name}` {}: {value:?} is not a number or a duration (90s, 30m, 24h, 3d)",
                    op_text(op)
                )
            })?),
            _ => None,
        };
        Ok(Self {
            text: s.to_owned(),
            field,
            op,
            value,
            regex,
            threshold,
        })
    }

    /// Whether `ctx` satisfies the matcher. Multi-valued fields (`pattern`, `protocol`):
    /// `=`/`=~` need one value to match, `!=`/`!~` need none to.
    pub fn matches(&self, ctx: &MatchContext<'_>) -> bool {
        let mut values = self.field.values(ctx);
        if let Some(threshold) = self.threshold {
            return values
                .iter()
                .filter_map(|v| parse_seconds(v))
                .any(|v| match self.op {
                    Op::Lt => v < threshold,
                    Op::Le => v <= threshold,
                    Op::Gt => v > threshold,
                    _ => v >= threshold,
                });
        }
        if values.is_empty() {
            values.push(String::new());
        }
        let positive = |v: &String| match &self.regex {
            Some(re) => re.is_match(v),
            None => *v == self.value,
        };
        match self.op {
            Op::NotEq | Op::NotRe => !values.iter().any(positive),
            _ => values.iter().any(positive),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::NotEq => "!=",
        Op::Re => "=~",
        Op::NotRe => "!~",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}

fn unquote(inner: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                if chars.as_str().trim().is_empty() {
                    return Ok(out);
                }
                return Err(format!(
                    "unexpected text after the closing quote: {:?}",
                    chars.as_str()
                ));
            }
            '\\' => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("missing closing quote".to_owned())
}

/// Compiles a list of matchers; the error names `location` and the matcher.
pub(crate) fn compile_all(
    list: &[String],
    location: &str,
) -> Result<Vec<Matcher>, vowguard_core::Error> {
    list.iter()
        .map(|m| {
            Matcher::parse(m).map_err(|e| {
                vowguard_core::Error::config(format!("`{location}`: invalid matcher `{m}`: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::{Category, PatternMatch, Severity};

    fn ctx_matches(m: &str, event: &Event, priority: Priority) -> bool {
        Matcher::parse(m).unwrap().matches(&MatchContext {
            event,
            priority,
            protocols: &["guest_data_breach".to_owned()],
        })
    }

    #[test]
    fn operators_and_anchoring() {
        let mut e = Event::new(Category::DataExport, "guest_list.export", Severity::High);
        e.labels.insert("env".into(), "prod".into());
        e.enrichment.patterns.push(PatternMatch {
            pattern: "guest_list_scraping".into(),
            confidence: 0.9,
            indicators: vec![],
        });
        let p = Priority::P1High;
        assert!(ctx_matches(r#"severity=~"high|critical""#, &e, p));
        assert!(!ctx_matches(r#"severity=~"hig""#, &e, p), "anchored");
        assert!(ctx_matches(r#"action=~"guest_list\\..*""#, &e, p));
        assert!(ctx_matches(r#"action=~"guest_list\..*""#, &e, p));
        assert!(!ctx_matches(r#"action!~"guest_list\..*""#, &e, p));
        assert!(ctx_matches(r#"priority!="P4_INFO""#, &e, p));
        assert!(
            ctx_matches(r#"priority="P1""#, &e, p),
            "short names normalised"
        );
        assert!(
            ctx_matches(r#"wedding_phase!="day_of""#, &e, p),
            "absent is empty"
        );
        assert!(ctx_matches(r#"wedding_phase="""#, &e, p));
        assert!(ctx_matches(r#"label.env="prod""#, &e, p));
        assert!(ctx_matches("label.env=prod", &e, p));
        assert!(ctx_matches(r#"pattern="guest_list_scraping""#, &e, p));
        assert!(!ctx_matches(r#"pattern!="guest_list_scraping""#, &e, p));
        assert!(ctx_matches(r#"protocol="guest_data_breach""#, &e, p));
        assert!(ctx_matches(r#"category = "data_export""#, &e, p));
    }

    #[test]
    fn comparisons_on_numbers_and_durations() {
        let mut e = Event::new(Category::DataExport, "breach.deadline", Severity::High);
        let p = Priority::P1High;
        // Absent: no comparison holds.
        assert!(!ctx_matches("breach_deadline_in < 24h", &e, p));
        assert!(!ctx_matches("breach_deadline_in >= 0", &e, p));
        e.labels
            .insert(BREACH_DEADLINE_LABEL.into(), (23 * 3600).to_string());
        assert!(ctx_matches("breach_deadline_in < 24h", &e, p));
        assert!(ctx_matches(r#"breach_deadline_in <= "1d""#, &e, p));
        assert!(!ctx_matches("breach_deadline_in < 23h", &e, p));
        assert!(ctx_matches("breach_deadline_in <= 23h", &e, p));
        assert!(ctx_matches("breach_deadline_in > 1379m", &e, p));
        assert!(!ctx_matches("breach_deadline_in > 82800", &e, p));
        // Overdue: negative seconds.
        e.labels.insert(BREACH_DEADLINE_LABEL.into(), "-60".into());
        assert!(ctx_matches("breach_deadline_in < 0", &e, p));
        // Any label holding a number.
        e.labels.insert("records".into(), "1500".into());
        assert!(ctx_matches("label.records > 1000", &e, p));
        e.labels.insert("records".into(), "many".into());
        assert!(!ctx_matches("label.records > 1000", &e, p), "not a number");
        assert!(!ctx_matches("label.records <= 1000", &e, p), "not a number");
    }

    #[test]
    fn bad_matchers_say_why() {
        for (m, why) in [
            (r#"colour="red""#, "unknown field `colour`"),
            (r#"severity=~"(""#, "invalid regex"),
            (r#"severity?"x""#, "expected an operator"),
            (
                r#"breach_deadline_in < "soon""#,
                "not a number or a duration",
            ),
            ("breach_deadline_in < 24w", "not a number or a duration"),
            (r#"severity="x"#, "missing closing quote"),
            (r#"priority="P9""#, "unknown priority"),
            (r#"severity="a" b"#, "after the closing quote"),
        ] {
            let err = Matcher::parse(m).unwrap_err();
            assert!(err.contains(why), "{m}: {err}");
        }
    }
}

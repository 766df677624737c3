//! Subjects templated from event fields, e.g. `security.{category}.{severity}`.
//!
//! The template is checked once, at build time: tokens are separated by `.`, none is empty,
//! the literal text holds no wildcard (`*`, `>`) and no whitespace, and every placeholder
//! names a known field. Every rendered value is sanitised to one subject token: characters
//! other than ASCII letters, digits, `-` and `_` become `_`, an absent or empty field is `_`,
//! and a value is cut at [`MAX_VALUE_LEN`] bytes. So event text can neither add a token
//! (`.`), nor a wildcard (`*`, `>`), nor split the protocol line (whitespace): the rendered
//! subject always has the template's token count.

use vowguard_core::{Error, Event};

/// Longest rendered value of one placeholder, in bytes.
pub const MAX_VALUE_LEN: usize = 64;

/// Longest template (and so, with the value cap, a bounded subject).
pub const MAX_TEMPLATE_LEN: usize = 256;

/// The fields a placeholder may name (plus `labels.<name>`).
pub const FIELDS: &[&str] = &[
    "id",
    "category",
    "action",
    "outcome",
    "severity",
    "user_id",
    "user_name",
    "source_ip",
    "domain",
    "resource_type",
    "resource_id",
    "wedding_id",
    "destination_host",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
    Label(String),
}

/// A validated subject template.
///
/// ```
/// use vowguard_nats::SubjectTemplate;
///
/// let template = SubjectTemplate::parse("security.{category}.{wedding_id}", "subject").unwrap();
/// let mut event = vowguard_core::Event::new(
///     vowguard_core::Category::Authentication,
///     "login",
///     vowguard_core::Severity::High,
/// );
/// event.wedding_id = Some("w-1.*> x".into());
/// assert_eq!(template.render(&event), "security.authentication.w-1____x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    parts: Vec<Part>,
    text: String,
}

impl SubjectTemplate {
    /// Checks `template`; errors name `key` (the config key, e.g. `sinks.bus.subject`).
    pub fn parse(template: &str, key: &str) -> Result<Self, Error> {
        let fail = |why: String| Err(Error::config(format!("`{key}`: {why}")));
        if template.is_empty() {
            return fail("must not be empty".into());
        }
        if template.len() > MAX_TEMPLATE_LEN {
            return fail(format!("longer than {MAX_TEMPLATE_LEN} bytes"));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return fail(format!("unclosed `{{` in {template:?}"));
                    };
                    let name = &rest[1..end];
                    let part = if let Some(label) = name.strip_prefix("labels.") {
                        if label.is_empty() {
                            return fail("`{labels.}` needs a label name".into());
                        }
                        Part::Label(label.to_owned())
                    } else if FIELDS.contains(&name) {
                        Part::Field(name.to_owned())
                    } else {
                        return fail(format!(
                            "unknown field `{{{name}}}`; known: {}, labels.<name>",
                            FIELDS.join(", ")
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = &rest[end + 1..];
                }
                '}' => return fail(format!("unmatched `}}` in {template:?}")),
                '*' | '>' => {
                    return fail(format!(
                        "wildcards (`*`, `>`) cannot be published to: {template:?}"
                    ));
                }
                c if c.is_whitespace() || c.is_control() => {
                    return fail("must not contain whitespace or control characters".into());
                }
                c => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        // Every token needs something in it: a literal character or a placeholder (which
        // never renders empty).
        let mut shape = String::new();
        for part in &parts {
            match part {
                Part::Literal(text) => shape.push_str(text),
                Part::Field(_) | Part::Label(_) => shape.push('x'),
            }
        }
        if shape.split('.').any(str::is_empty) {
            return fail(format!(
                "empty token in {template:?} (a leading, trailing or doubled `.`)"
            ));
        }
        Ok(Self {
            parts,
            text: template.to_owned(),
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has no placeholder (every event goes to the same subject).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The subject for `event`, every value sanitised to one token.
    pub fn render(&self, event: &Event) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name) => push_token(&mut out, field(event, name).as_deref()),
                Part::Label(name) => {
                    push_token(&mut out, event.labels.get(name).map(String::as_str));
                }
            }
        }
        out
    }
}

/// The value of a known field, as text.
fn field(event: &Event, name: &str) -> Option<String> {
    match name {
        "id" => Some(event.id.clone()),
        "category" => Some(event.category.as_str().to_owned()),
        "action" => Some(event.action.clone()),
        "outcome" => Some(event.outcome.as_str().to_owned()),
        "severity" => Some(event.severity.as_str().to_owned()),
        "user_id" => event.user_id.clone(),
        "user_name" => event.user_name.clone(),
        "source_ip" => event.source_ip.map(|ip| ip.to_string()),
        "domain" => event.domain.clone(),
        "resource_type" => event.resource_type.clone(),
        "resource_id" => event.resource_id.clone(),
        "wedding_id" => event.wedding_id.clone(),
        "destination_host" => event.destination_host.clone(),
        _ => None,
    }
}

/// Appends `value` as one token: `[A-Za-z0-9_-]` kept, every other character `_`, at most
/// [`MAX_VALUE_LEN`] bytes, `_` when absent or empty.
fn push_token(out: &mut String, value: Option<&str>) {
    let value = value.unwrap_or("");
    if value.is_empty() {
        out.push('_');
        return;
    }
    for c in value.chars().take(MAX_VALUE_LEN) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use vowguard_core::{Category, Severity};

    use super::*;

    fn event() -> Event {
        Event::new(Category::Authentication, "login", Severity::High)
    }

    #[test]
    fn renders_fields_and_labels() {
        let t =
            SubjectTemplate::parse("sec.{category}.{severity}.w-{wedding_id}.{labels.env}", "k")
                .unwrap();
        let mut e = event();
        e.wedding_id = Some("w-2026-06-20-smith".into());
        e.labels.insert("env".into(), "prod".into());
        assert_eq!(
            t.render(&e),
            "sec.authentication.high.w-w-2026-06-20-smith.prod"
        );
        e.wedding_id = None;
        e.labels.clear();
        assert_eq!(t.render(&e), "sec.authentication.high.w-_._");
        assert!(!t.is_literal());
        assert!(SubjectTemplate::parse("a.b", "k").unwrap().is_literal());
    }

    #[test]
    fn bad_templates_name_the_key() {
        for (template, want) in [
            ("", "must not be empty"),
            ("a.*", "wildcards"),
            ("a.>", "wildcards"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            (".a", "empty token"),
            ("a.", "empty token"),
            ("a..b", "empty token"),
            ("a.{nope}", "unknown field `{nope}`"),
            ("a.{category", "unclosed"),
            ("a.category}", "unmatched"),
            ("a.{labels.}", "label name"),
        ] {
            let err = SubjectTemplate::parse(template, "sinks.bus.subject").unwrap_err();
            assert!(
                err.message().contains("`sinks.bus.subject`") && err.message().contains(want),
                "{template:?}: {}",
                err.message()
            );
        }
        let long = "a".repeat(MAX_TEMPLATE_LEN + 1);
        assert!(SubjectTemplate::parse(&long, "k").is_err());
    }

    #[test]
    fn values_are_capped() {
        let t = SubjectTemplate::parse("a.{action}", "k").unwrap();
        let mut e = event();
        e.action = "x".repeat(1000);
        assert_eq!(t.render(&e).len(), 2 + MAX_VALUE_LEN);
    }

    fn tokens_ok(subject: &str) -> bool {
        subject.split('.').all(|t| {
            !t.is_empty()
                && t != "*"
                && t != ">"
                && !t.contains(['*', '>'])
                && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        })
    }

    proptest! {
        /// Whatever the event text, the subject keeps the template's tokens: no injected
        /// `.`, wildcard, whitespace or control character, and a bounded length.
        #[test]
        fn event_text_cannot_inject_tokens(
            action in any::<String>(),
            wedding in proptest::option::of(any::<String>()),
            label in any::<String>(),
            user in proptest::option::of("[ .*>\t\r\n\u{0}a-z\u{2028}\u{3000}]{0,80}"),
        ) {
            let t = SubjectTemplate::parse(
                "platform.{action}.{wedding_id}.x{user_name}y.{labels.team}",
                "k",
            ).unwrap();
            let mut e = event();
            e.action = action;
            e.wedding_id = wedding;
            e.user_name = user;
            e.labels.insert("team".into(), label);
            let subject = t.render(&e);
            prop_assert_eq!(subject.split('.').count(), 5);
            prop_assert!(tokens_ok(&subject), "{:?}", subject);
            prop_assert!(subject.is_ascii());
            prop_assert!(subject.len() <= t.as_str().len() + 4 * MAX_VALUE_LEN);
            prop_assert!(subject.starts_with("platform."));
        }
    }
}

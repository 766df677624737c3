//! Text templates for step bodies, messages and ticket text: `{{ event.user_id }}`,
//! `{{ incident.id }}`, `{{ steps.lock.output.status_code }}`.
//!
//! Placeholders are parsed at load (a bad one is a config error naming the key). Every
//! substituted value is attacker-controlled event text, so rendering escapes it for the
//! target: [`Escape::Json`] renders the value as the *contents* of a JSON string (quotes,
//! backslashes and control characters escaped), so a value can never close the string and
//! add a key; [`Escape::Text`] strips control characters for plain text (the notifier or
//! ticket connector then encodes for its own wire format). URLs and headers are never
//! templated.

use serde_json::Value;

use crate::expr::lookup;

/// Longest rendered substitution, in bytes (longer values are cut at a char boundary).
const MAX_VALUE_LEN: usize = 4096;

/// How substituted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string literal.
    Json,
    /// Plain text (control characters other than newline and tab removed).
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Path(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`. The roots a placeholder may start with are `event`, `incident`,
    /// `steps`, `playbook` and `run`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "a `{{` without its `}}`".to_owned())?;
            let name = after[..close].trim();
            let path: Vec<String> = name.split('.').map(str::to_owned).collect();
            let valid_name = |p: &String| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            };
            if !path.iter().all(valid_name) {
                return Err(format!("bad placeholder `{{{{ {name} }}}}`"));
            }
            if !matches!(
                path[0].as_str(),
                "event" | "incident" | "steps" | "playbook" | "run"
            ) {
                return Err(format!(
                    "placeholder `{name}` must start with event, incident, steps, playbook or run"
                ));
            }
            parts.push(Part::Path(path));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The step ids the template reads (`steps.<id>...`).
    pub fn step_refs(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Path(path) if path[0] == "steps" => path.get(1).cloned(),
                _ => None,
            })
            .collect()
    }

    /// Renders over `context`; a missing value renders as the empty string.
    pub fn render(&self, context: &Value, escape: Escape) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Path(path) => {
                    let value = lookup(context, path).unwrap_or(&Value::Null);
                    let mut text = match value {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if text.len() > MAX_VALUE_LEN {
                        let mut cut = MAX_VALUE_LEN;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                    match escape {
                        Escape::Json => {
                            let quoted = Value::String(text).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                        Escape::Text => out.extend(
                            text.chars()
                                .filter(|c| !c.is_control() || *c == '\n' || *c == '\t'),
                        ),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_escaping_cannot_inject_keys() {
        let t =
            Template::parse(r#"{"user": "{{ event.user_id }}", "n": {{ event.count }}}"#).unwrap();
        let evil = "x\", \"admin\": true, \"y\": \"\u{0}\n\\";
        let body = t.render(
            &json!({"event": {"user_id": evil, "count": 3}}),
            Escape::Json,
        );
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["user"], evil);
        assert!(parsed.get("admin").is_none(), "{body}");
        assert_eq!(parsed["n"], 3);
    }

    #[test]
    fn text_escaping_strips_controls_and_missing_is_empty() {
        let t = Template::parse("Incident {{ incident.id }} for {{ event.user }}{{ event.none }}")
            .unwrap();
        let out = t.render(
            &json!({"incident": {"id": "i-1"}, "event": {"user": "a\r\u{1b}[31mb\nc"}}),
            Escape::Text,
        );
        assert_eq!(out, "Incident i-1 for a[31mb\nc");
    }

    #[test]
    fn refuses_bad_placeholders() {
        assert!(
            Template::parse("{{ event.id")
                .unwrap_err()
                .contains("without")
        );
        assert!(
            Template::parse("{{ env.HOME }}")
                .unwrap_err()
                .contains("must start")
        );
        assert!(
            Template::parse("{{ event..x }}")
                .unwrap_err()
                .contains("bad placeholder")
        );
        let t = Template::parse("{{ steps.lock.output.x }} {{ steps.b.ok }}").unwrap();
        assert_eq!(t.step_refs(), ["lock", "b"]);
    }
}

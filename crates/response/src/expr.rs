//! The condition language of playbook steps (`when = "steps.lock.ok && incident.priority == \"P0_CRITICAL\""`).
//!
//! A small, closed grammar evaluated over a JSON context; nothing is ever evaluated as code:
//!
//! ```text
//! expr    := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := operand ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) operand )?
//! operand := "(" expr ")" | "string" | number | true | false | null | path
//! path    := name ( "." name )*          (names: letters, digits, `_`, `-`)
//! ```
//!
//! A path names a value of the run: `steps.<id>.ok`, `steps.<id>.status`,
//! `steps.<id>.output.<field>`, `incident.<field>`, `event.<field>`. A missing value is
//! `null`; `null`, `false`, `0` and `""` are false. Event text is only ever a *value* here: it
//! cannot add an operator or a path, so it cannot change which step runs except by the
//! comparisons the playbook author wrote.

use std::fmt;

use serde_json::Value;

/// Longest accepted condition, in bytes.
const MAX_CONDITION_LEN: usize = 1024;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 32;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Path(Vec<String>),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Compare(Box<Node>, CompareOp, Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Op(CompareOp),
    Str(String),
    Num(f64),
    Word(String),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Condition {
    /// Parses `text`; the error says what is wrong and where (byte offset).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_CONDITION_LEN {
            return Err(format!("longer than {MAX_CONDITION_LEN} bytes"));
        }
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("empty condition".into());
        }
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            depth: 0,
        };
        let root = parser.or()?;
        if parser.pos != tokens.len() {
            return Err(format!(
                "unexpected {} after a complete condition",
                describe(&tokens[parser.pos])
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            root,
        })
    }

    /// Every path the condition reads, e.g. `["steps", "lock", "ok"]`.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        collect_paths(&self.root, &mut out);
        out
    }

    /// Evaluates the condition over `context` (an object with `steps`, `incident`, `event`).
    pub fn eval(&self, context: &Value) -> bool {
        truthy(&eval(&self.root, context))
    }
}

fn collect_paths(node: &Node, out: &mut Vec<Vec<String>>) {
    match node {
        Node::Literal(_) => {}
        Node::Path(p) => out.push(p.clone()),
        Node::Not(n) => collect_paths(n, out),
        Node::And(a, b) | Node::Or(a, b) | Node::Compare(a, _, b) => {
            collect_paths(a, out);
            collect_paths(b, out);
        }
    }
}

/// Looks up a dotted path in a JSON value (`null` when absent).
pub(crate) fn lookup<'a>(context: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut here = context;
    for part in path {
        here = match here {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(here)
}

fn eval(node: &Node, context: &Value) -> Value {
    match node {
        Node::Literal(v) => v.clone(),
        Node::Path(p) => lookup(context, p).cloned().unwrap_or(Value::Null),
        Node::Not(n) => Value::Bool(!truthy(&eval(n, context))),
        Node::And(a, b) => Value::Bool(truthy(&eval(a, context)) && truthy(&eval(b, context))),
        Node::Or(a, b) => Value::Bool(truthy(&eval(a, context)) || truthy(&eval(b, context))),
        Node::Compare(a, op, b) => {
            let (a, b) = (eval(a, context), eval(b, context));
            Value::Bool(compare(&a, *op, &b))
        }
    }
}

fn compare(a: &Value, op: CompareOp, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return match op {
            CompareOp::Eq => x == y,
            CompareOp::Ne => x != y,
            CompareOp::Lt => x < y,
            CompareOp::Le => x <= y,
            CompareOp::Gt => x > y,
            CompareOp::Ge => x >= y,
        };
    }
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        // Ordering is defined for numbers only (and strings, lexicographically).
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => match op {
                CompareOp::Lt => x < y,
                CompareOp::Le => x <= y,
                CompareOp::Gt => x > y,
                _ => x >= y,
            },
            _ => false,
        },
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::Not => "`!`".into(),
        Token::And => "`&&`".into(),
        Token::Or => "`||`".into(),
        Token::Op(_) => "a comparison".into(),
        Token::Str(_) => "a string".into(),
        Token::Num(_) => "a number".into(),
        Token::Word(w) => format!("`{w}`"),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let two = bytes.get(i..i + 2);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Token::LParen);
                i += 1;
            }
            b')' => {
                out.push(Token::RParen);
                i += 1;
            }
            b'&' if two == Some(b"&&") => {
                out.push(Token::And);
                i += 2;
            }
            b'|' if two == Some(b"||") => {
                out.push(Token::Or);
                i += 2;
            }
            b'=' if two == Some(b"==") => {
                out.push(Token::Op(CompareOp::Eq));
                i += 2;
            }
            b'!' if two == Some(b"!=") => {
                out.push(Token::Op(CompareOp::Ne));
                i += 2;
            }
            b'!' => {
                out.push(Token::Not);
                i += 1;
            }
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                out.push(Token::Op(match (c, eq) {
                    (b'<', false) => CompareOp::Lt,
                    (b'<', true) => CompareOp::Le,
                    (_, false) => CompareOp::Gt,
                    (_, true) => CompareOp::Ge,
                }));
                i += if eq { 2 } else { 1 };
            }
            b'"' | b'\'' => {
                let quote = c;
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != quote {
                    end += 1;
                }
                if end >= bytes.len() {
                    return Err(format!("unterminated string at byte {i}"));
                }
                out.push(Token::Str(text[start..end].to_owned()));
                i = end + 1;
            }
            b'0'..=b'9' | b'-' if c != b'-' || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                let n: f64 = text[start..i]
                    .parse()
                    .map_err(|_| format!("bad number at byte {start}"))?;
                out.push(Token::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
                {
                    i += 1;
                }
                out.push(Token::Word(text[start..i].to_owned()));
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character {ch:?} at byte {i}"));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, String> {
        self.enter()?;
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.unary()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        let left = self.operand()?;
        if let Some(Token::Op(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            let right = self.operand()?;
            return Ok(Node::Compare(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<Node, String> {
        let Some(token) = self.peek().cloned() else {
            return Err("the condition ends where a value was expected".into());
        };
        self.pos += 1;
        match token {
            Token::LParen => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::RParen) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            Token::Str(s) => Ok(Node::Literal(Value::String(s))),
            Token::Num(n) => Ok(Node::Literal(
                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            )),
            Token::Word(w) => Ok(match w.as_str() {
                "true" => Node::Literal(Value::Bool(true)),
                "false" => Node::Literal(Value::Bool(false)),
                "null" => Node::Literal(Value::Null),
                _ => {
                    let parts: Vec<String> = w.split('.').map(str::to_owned).collect();
                    if parts.iter().any(String::is_empty) {
                        return Err(format!("bad path `{w}`"));
                    }
                    Node::Path(parts)
                }
            }),
            other => Err(format!("expected a value, got {}", describe(&other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "steps": {"lock": {"ok": true, "status": "succeeded", "output": {"status_code": 201}},
                      "approve": {"ok": false, "status": "failed", "approved": false}},
            "incident": {"priority": "P0_CRITICAL", "state": "open"},
            "event": {"category": "data_export", "message": "\" || true || \""}
        })
    }

    #[test]
    fn evaluates_paths_comparisons_and_logic() {
        let c = ctx();
        let t = |s: &str| Condition::parse(s).unwrap().eval(&c);
        assert!(t("steps.lock.ok"));
        assert!(!t("steps.approve.ok"));
        assert!(t("steps.lock.ok && !steps.approve.approved"));
        assert!(t("steps.approve.ok || steps.lock.status == \"succeeded\""));
        assert!(t(
            "steps.lock.output.status_code >= 200 && steps.lock.output.status_code < 300"
        ));
        assert!(t("incident.priority == 'P0_CRITICAL'"));
        assert!(!t("incident.priority != 'P0_CRITICAL'"));
        assert!(!t("steps.missing.ok"));
        assert!(t("!(steps.missing.ok || false)"));
        assert!(t("event.category == \"data_export\""));
    }

    #[test]
    fn event_text_is_a_value_never_syntax() {
        let c = ctx();
        // The message holds `" || true || "`: compared as a value, it changes nothing.
        let cond = Condition::parse("event.message == \"x\"").unwrap();
        assert!(!cond.eval(&c));
    }

    #[test]
    fn refuses_bad_syntax_with_a_reason() {
        for (text, want) in [
            ("", "empty"),
            ("steps.a.ok &&", "ends where a value"),
            ("(steps.a.ok", "missing `)`"),
            ("steps.a.ok steps.b.ok", "unexpected"),
            ("steps.a.ok; rm -rf /", "unexpected character"),
            ("\"open", "unterminated"),
            ("steps..ok", "bad path"),
        ] {
            let err = Condition::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        assert!(Condition::parse(&deep).unwrap_err().contains("nested"));
    }

    #[test]
    fn lists_the_paths_it_reads() {
        let c = Condition::parse("steps.a.ok && (event.x == 1 || !steps.b.status)").unwrap();
        let paths: Vec<String> = c.paths().iter().map(|p| p.join(".")).collect();
        assert_eq!(paths, ["steps.a.ok", "event.x", "steps.b.status"]);
    }
}

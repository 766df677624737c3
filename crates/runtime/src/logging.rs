//! Log output on standard error.
//!
//! Every event field is attacker-controlled, and log sites all over the workspace put event
//! text into messages and fields (a rejected line's label key, the users and reason of a
//! protocol action, a vendor's error message). The human format therefore escapes control
//! characters once, here, in every field value and every message of every crate: CR, LF,
//! tab and every other C0/C1 control character (ANSI ESC included), DEL, the Unicode line
//! and paragraph separators and the bidirectional overrides. One event is one line, and no
//! event text can forge another line, a level or a colour. The JSON format escapes them
//! by construction (one JSON object per line).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Whether `c` is written as an escape sequence rather than as itself.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A [`fmt::Write`] that writes `\n`, `\r`, `\t` and `\u{..}` in place of the characters
/// [`needs_escape`] selects, and everything else unchanged.
#[derive(Debug)]
pub struct EscapeControl<W>(pub W);

impl<W: fmt::Write> fmt::Write for EscapeControl<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            self.0.write_str(&rest[..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", u32::from(other))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// `text` with every character [`needs_escape`] selects escaped (for text printed outside
/// the log, e.g. by the CLI).
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = EscapeControl(&mut out).write_str(text);
    out
}

/// Like [`escape_control`], but keeps line feeds: for multi-line text the program itself
/// composed (a list of configuration errors), where each line is still escaped.
pub fn escape_control_keep_lines(text: &str) -> String {
    text.split('\n')
        .map(escape_control)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The human format's field formatter: `message key=value ...`, like tracing-subscriber's
/// default, with every value and the message escaped by [`EscapeControl`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    empty: bool,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = (|| {
            self.writer.write_str(separator)?;
            if name != "message" {
                write!(self.writer, "{}=", name.trim_start_matches("r#"))?;
            }
            write!(EscapeControl(&mut self.writer), "{value:?}")
        })();
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Strings an attacker could put in an event field.
    const HOSTILE: &[&str] = &[
        "x\n2026-01-01T00:00:00.000000Z ERROR vowguard_runtime: forged line",
        "x\r\nlevel=ERROR msg=forged",
        "x\rERROR overwritten",
        "\u{1b}[31mred\u{1b}[0m and \u{1b}]0;title\u{7}",
        "tab\there, nul\0, del\u{7f}, c1\u{85}\u{9b}31m",
        "line\u{2028}separator\u{2029}paragraph",
        "bidi \u{202e}txet desrever\u{2066}isolate\u{2069}",
        "\n",
    ];

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn human_log(emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(EscapedFields)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn assert_clean(log: &str, expected_lines: usize) {
        assert!(log.ends_with('\n'), "{log:?}");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), expected_lines, "one line per event:\n{log}");
        for line in lines {
            assert!(
                !line.chars().any(needs_escape),
                "a control character reached the log: {line:?}"
            );
            assert!(
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|level| ["INFO", "WARN", "ERROR"].contains(&level.trim())),
                "a line that does not start with a timestamp and a level: {line:?}"
            );
        }
    }

    #[test]
    fn escapes_every_control_character_in_messages_and_field_values() {
        let log = human_log(|| {
            for hostile in HOSTILE {
                tracing::warn!("line 3 rejected: label `{hostile}`");
                tracing::info!(users = %hostile, reason = ?hostile, raw = *hostile, "action");
                let error = std::io::Error::other(hostile.to_string());
                tracing::error!(error = &error as &dyn std::error::Error, "failed");
                let span = tracing::info_span!("span", wedding = %hostile);
                span.in_scope(|| tracing::info!("inside"));
            }
        });
        assert_clean(&log, HOSTILE.len() * 4);
        assert!(
            log.contains(
                r"label `x\n2026-01-01T00:00:00.000000Z ERROR vowguard_runtime: forged line`"
            ),
            "the text stays readable, escaped:\n{log}"
        );
        assert!(log.contains(r"users=\u{1b}[31mred\u{1b}[0m"), "{log}");
        assert!(log.contains(r"users=x\r\nlevel=ERROR msg=forged"), "{log}");
        assert!(log.contains(r"wedding=bidi \u{202e}txet"), "{log}");
    }

    #[test]
    fn plain_text_is_unchanged() {
        let text = "Saturday: planner-17 from 203.0.113.7 (über, 婚礼) \\n stays";
        assert_eq!(escape_control(text), text);
        assert_eq!(escape_control("a\nb\u{1b}"), r"a\nb\u{1b}");
        assert_eq!(
            escape_control_keep_lines("1 error:\n  - `x`: \u{1b}[2J"),
            "1 error:\n  - `x`: \\u{1b}[2J"
        );
    }

    #[test]
    fn json_lines_stay_one_valid_object_per_event() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for hostile in HOSTILE {
                tracing::warn!(users = %hostile, "rejected: {hostile}");
            }
        });
        let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), HOSTILE.len(), "{log}");
        for (line, hostile) in lines.iter().zip(HOSTILE) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["users"], *hostile);
            assert!(!line.chars().any(|c| c < ' '), "{line:?}");
        }
    }
}

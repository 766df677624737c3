//! Pure encoders: an [`Event`] in, one Datadog log entry (a JSON object) out, and the
//! JSON-array framing of a request body.
//!
//! Entries are typed structs serialised by `serde_json`, so key order is fixed and every
//! event string is escaped. Tags built from event fields are sanitised to Datadog's tag
//! alphabet, so an event cannot add tags by putting a comma in, say, its wedding id.

use serde::Serialize;
use vowguard_core::{Error, Event, Severity};

/// Largest single log entry Datadog accepts (1 MB), in bytes. A larger event is an encode
/// error (rejected, dead-lettered), never silently truncated.
pub const MAX_ENTRY_BYTES: usize = 1_000_000;

/// Most entries in one request.
pub const MAX_ENTRIES_PER_REQUEST: usize = 1000;

/// Largest uncompressed request body (5 MB), in bytes.
pub const MAX_BODY_BYTES: usize = 5_000_000;

/// Longest tag Datadog keeps, in characters.
pub const MAX_TAG_CHARS: usize = 200;

/// Datadog `status` for a severity.
pub fn status(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Low => "notice",
        Severity::Medium => "warning",
        Severity::High => "error",
        Severity::Critical => "critical",
    }
}

/// A tag in Datadog's alphabet: lowercase letters, digits, `_ - : . /`; anything else
/// becomes `_`; at most [`MAX_TAG_CHARS`] characters. Commas (the tag separator) cannot
/// survive.
pub fn sanitize_tag(tag: &str) -> String {
    tag.trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TAG_CHARS)
        .collect()
}

/// Encodes events as Datadog log entries with fixed `ddsource`, `service`, `hostname` and
/// base tags.
#[derive(Debug, Clone)]
pub struct LogEncoder {
    ddsource: String,
    service: String,
    hostname: String,
    tags: String,
}

impl LogEncoder {
    /// An encoder; `tags` are sanitised with [`sanitize_tag`].
    pub fn new(
        ddsource: impl Into<String>,
        service: impl Into<String>,
        hostname: impl Into<String>,
        tags: &[String],
    ) -> Self {
        let tags: Vec<String> = tags
            .iter()
            .map(|t| sanitize_tag(t))
            .filter(|t| !t.is_empty())
            .collect();
        Self {
            ddsource: ddsource.into(),
            service: service.into(),
            hostname: hostname.into(),
            tags: tags.join(","),
        }
    }

    /// The `ddtags` of one event: the base tags plus `severity:`, `category:` and, when the
    /// event has one, `wedding_id:`.
    pub fn tags_for(&self, event: &Event) -> String {
        let mut tags = self.tags.clone();
        let mut push = |tag: String| {
            if !tags.is_empty() {
                tags.push(',');
            }
            tags.push_str(&tag);
        };
        push(format!("severity:{}", event.severity));
        push(format!("category:{}", event.category));
        let wedding = event
            .enrichment
            .wedding
            .as_ref()
            .map(|w| w.wedding_id.as_str())
            .or(event.wedding_id.as_deref());
        if let Some(id) = wedding {
            push(sanitize_tag(&format!("wedding_id:{id}")));
        }
        tags
    }

    /// One log entry as JSON bytes; an error when it exceeds [`MAX_ENTRY_BYTES`].
    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        let entry = LogEntry {
            ddsource: &self.ddsource,
            ddtags: self.tags_for(event),
            hostname: &self.hostname,
            service: &self.service,
            message: event.summary(),
            status: status(event.severity),
            timestamp: event.timestamp.timestamp_millis(),
            evt: Evt {
                name: &event.action,
                category: event.category.as_str(),
                outcome: event.outcome.as_str(),
            },
            network: event.source_ip.map(|ip| Network {
                client: Client { ip: ip.to_string() },
            }),
            usr: (event.user_id.is_some() || event.user_name.is_some()).then_some(Usr {
                id: event.user_id.as_deref(),
                name: event.user_name.as_deref(),
            }),
            http: event
                .user_agent
                .as_deref()
                .map(|useragent| Http { useragent }),
            vowguard: event,
        };
        let bytes = serde_json::to_vec(&entry)
            .map_err(|e| Error::encode(format!("cannot encode Datadog log entry: {e}")))?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(Error::encode(format!(
                "event {} encodes to {} bytes; Datadog accepts at most {MAX_ENTRY_BYTES} per log",
                event.id,
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// Frames encoded entries as one JSON array: `[e1,e2,...]`.
pub fn array_body<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = vec![b'['];
    for (i, entry) in entries.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(entry);
    }
    body.push(b']');
    body
}

#[derive(Serialize)]
struct LogEntry<'a> {
    ddsource: &'a str,
    ddtags: String,
    hostname: &'a str,
    service: &'a str,
    message: String,
    status: &'static str,
    timestamp: i64,
    evt: Evt<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<Network>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usr: Option<Usr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<Http<'a>>,
    vowguard: &'a Event,
}

#[derive(Serialize)]
struct Evt<'a> {
    name: &'a str,
    category: &'static str,
    outcome: &'static str,
}

#[derive(Serialize)]
struct Network {
    client: Client,
}

#[derive(Serialize)]
struct Client {
    ip: String,
}

#[derive(Serialize)]
struct Usr<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Http<'a> {
    useragent: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn event() -> Event {
        Event::from_json_str(
            r#"{"id":"evt-1","timestamp":"2026-06-20T14:03:07.123Z","category":"data_export",
                "action":"guest_list.export","outcome":"success","severity":"high",
                "message":"guest list exported","user_id":"u-42","user_name":"eve",
                "source_ip":"203.0.113.7","wedding_id":"W-1, evil:tag"}"#,
        )
        .unwrap()
    }

    fn encoder() -> LogEncoder {
        LogEncoder::new(
            "vowguard",
            "vowguard",
            "gw1",
            &["env:prod".into(), "Team:SecOps".into()],
        )
    }

    #[test]
    fn golden_entry() {
        let bytes = encoder().encode(&event()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let expected_prefix = concat!(
            r#"{"ddsource":"vowguard","ddtags":"env:prod,team:secops,severity:high,category:data_export,wedding_id:w-1__evil:tag","#,
            r#""hostname":"gw1","service":"vowguard","message":"guest list exported","status":"error","timestamp":1781964187123,"#,
            r#""evt":{"name":"guest_list.export","category":"data_export","outcome":"success"},"#,
            r#""network":{"client":{"ip":"203.0.113.7"}},"usr":{"id":"u-42","name":"eve"},"vowguard":{"id":"evt-1","#,
        );
        assert!(text.starts_with(expected_prefix), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let back: Event = serde_json::from_value(v["vowguard"].clone()).unwrap();
        assert_eq!(back, event());
    }

    #[test]
    fn status_per_severity() {
        let got: Vec<&str> = Severity::ALL.iter().map(|s| status(*s)).collect();
        assert_eq!(got, ["info", "notice", "warning", "error", "critical"]);
    }

    #[test]
    fn oversized_entry_is_an_encode_error() {
        let mut e = event();
        e.message = Some("x".repeat(MAX_ENTRY_BYTES));
        let err = encoder().encode(&e).unwrap_err();
        assert_eq!(err.kind(), vowguard_core::ErrorKind::Encode);
        assert!(err.to_string().contains("at most 1000000"), "{err}");
    }

    #[test]
    fn array_framing() {
        assert_eq!(array_body(Vec::<&[u8]>::new()), b"[]");
        assert_eq!(
            array_body([&b"{}"[..], &b"{\"a\":1}"[..]]),
            b"[{},{\"a\":1}]"
        );
    }

    proptest! {
        #[test]
        fn entries_are_json_and_tags_stay_tags(
            message in any::<String>(),
            user_name in any::<String>(),
            wedding in any::<String>(),
        ) {
            let mut e = event();
            e.message = Some(message.clone());
            e.user_name = Some(user_name.clone());
            e.wedding_id = Some(wedding);
            let bytes = encoder().encode(&e).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(v["usr"]["name"].as_str(), Some(user_name.as_str()));
            prop_assert_eq!(v["vowguard"]["message"].as_str(), Some(message.as_str()));
            let tags = v["ddtags"].as_str().unwrap();
            prop_assert_eq!(tags.split(',').count(), 5);
            prop_assert!(tags.split(',').all(|t| t.chars().count() <= MAX_TAG_CHARS));
        }
    }
}

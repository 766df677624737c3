//! Pure HEC encoding: one [`Event`] in, one HEC JSON envelope out.
//!
//! ```text
//! {"time":1714564800.123,"host":"gw1","source":"vowguard","sourcetype":"_json","index":"wedding-security","event":{...},"fields":{...}}
//! ```
//!
//! * `time` is the event's timestamp in epoch seconds, a JSON number with exactly three
//!   decimals, formatted from integers (never through `f64`, which would lose milliseconds).
//! * `index` is left out when not configured (the token's default index applies).
//! * `event` is the event's storage JSON, including its enrichment.
//! * `fields` are flat string indexed fields, see [`indexed_fields`].
//!
//! A batch body is the envelopes concatenated with no separator ([`batch_body`]).
//! Every string goes through `serde_json`, so attacker-controlled text cannot break out of
//! its JSON string.

use chrono::{DateTime, Utc};
use vowguard_core::{EncodedEvent, Error, Event};

use crate::config::SplunkHecConfig;

/// The per-sink metadata of every envelope; [`HecEncoder::encode`] turns events into
/// envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecEncoder {
    host: String,
    source: String,
    sourcetype: String,
    index: Option<String>,
}

impl HecEncoder {
    /// An encoder writing these metadata fields into every envelope.
    pub fn new(
        host: impl Into<String>,
        source: impl Into<String>,
        sourcetype: impl Into<String>,
        index: Option<String>,
    ) -> Self {
        Self {
            host: host.into(),
            source: source.into(),
            sourcetype: sourcetype.into(),
            index,
        }
    }

    /// The encoder for a sink's configuration.
    pub fn from_config(config: &SplunkHecConfig) -> Self {
        Self::new(
            config.host.clone(),
            config.source.clone(),
            config.sourcetype.clone(),
            config.index.clone(),
        )
    }

    /// Encodes one event as one HEC envelope.
    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(512);
        self.encode_into(event, &mut out)?;
        Ok(out)
    }

    /// Appends one event's HEC envelope to `out` (for callers reusing a buffer).
    pub fn encode_into(&self, event: &Event, out: &mut Vec<u8>) -> Result<(), Error> {
        self.encode_parts(event, None, out)
    }

    /// Encodes one event whose storage JSON is `stored` (exactly `serde_json::to_vec(event)`,
    /// e.g. the journal record): the same envelope as [`HecEncoder::encode`], with `stored`
    /// copied in as the `event` member instead of serialising the event again.
    pub fn encode_stored(&self, event: &Event, stored: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(stored.len() + 512);
        self.encode_parts(event, Some(stored), &mut out)?;
        Ok(out)
    }

    fn encode_parts(
        &self,
        event: &Event,
        stored: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        out.extend_from_slice(b"{\"time\":");
        write_time(out, &event.timestamp);
        out.extend_from_slice(b",\"host\":");
        write_json(out, &self.host)?;
        out.extend_from_slice(b",\"source\":");
        write_json(out, &self.source)?;
        out.extend_from_slice(b",\"sourcetype\":");
        write_json(out, &self.sourcetype)?;
        if let Some(index) = &self.index {
            out.extend_from_slice(b",\"index\":");
            write_json(out, index)?;
        }
        out.extend_from_slice(b",\"event\":");
        match stored {
            Some(json) => out.extend_from_slice(json),
            None => write_json(out, event)?,
        }
        out.extend_from_slice(b",\"fields\":{");
        write_indexed_fields(out, event)?;
        out.extend_from_slice(b"}}");
        Ok(())
    }
}

/// Writes [`indexed_fields`] as the members of a JSON object, without building them
/// (no allocation per field): the same keys, values and order.
fn write_indexed_fields(out: &mut Vec<u8>, event: &Event) -> Result<(), Error> {
    use std::io::Write as _;
    out.extend_from_slice(b"\"severity\":\"");
    out.extend_from_slice(event.severity.as_str().as_bytes());
    out.extend_from_slice(b"\",\"category\":\"");
    out.extend_from_slice(event.category.as_str().as_bytes());
    out.extend_from_slice(b"\",\"action\":");
    write_json(out, &event.action)?;
    out.extend_from_slice(b",\"outcome\":\"");
    out.extend_from_slice(event.outcome.as_str().as_bytes());
    out.push(b'"');
    if let Some(wedding_id) = &event.wedding_id {
        out.extend_from_slice(b",\"wedding_id\":");
        write_json(out, wedding_id)?;
    }
    if let Some(user_id) = &event.user_id {
        out.extend_from_slice(b",\"user_id\":");
        write_json(out, user_id)?;
    }
    if let Some(ip) = &event.source_ip {
        // An address's text never needs escaping.
        let _ = write!(out, ",\"source_ip\":\"{ip}\"");
    }
    if let Some(score) = event.risk_score {
        let _ = write!(out, ",\"risk_score\":\"{score}\"");
    }
    if let Some(verdict) = event
        .enrichment
        .threat
        .as_ref()
        .and_then(|t| serde_json::to_value(t.verdict).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
    {
        out.extend_from_slice(b",\"threat_verdict\":");
        write_json(out, &verdict)?;
    }
    for (key, value) in &event.labels {
        // `"label.` + the key escaped as a JSON string without its opening quote.
        out.extend_from_slice(b",\"label.");
        let at = out.len();
        write_json(out, key)?;
        out.remove(at);
        out.push(b':');
        write_json(out, value)?;
    }
    Ok(())
}

/// Encodes one event as one HEC envelope (the same as [`HecEncoder::encode`]); the entry
/// point benchmarks and fuzzers time.
pub fn encode_event(encoder: &HecEncoder, event: &Event) -> Result<Vec<u8>, Error> {
    encoder.encode(event)
}

/// The request body of a batch: the envelopes concatenated, no separator.
pub fn batch_body(batch: &[&EncodedEvent]) -> Vec<u8> {
    let len = batch.iter().map(|e| e.bytes.len()).sum();
    let mut body = Vec::with_capacity(len);
    for event in batch {
        body.extend_from_slice(&event.bytes);
    }
    body
}

/// Epoch seconds with exactly three decimals, e.g. `1714564800.123` (`-0.500` before 1970).
pub fn format_time(timestamp: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(24);
    write_time(&mut out, timestamp);
    String::from_utf8(out).expect("digits, a sign and a dot are UTF-8")
}

/// Appends [`format_time`]'s text to `out`.
fn write_time(out: &mut Vec<u8>, timestamp: &DateTime<Utc>) {
    use std::io::Write as _;
    let seconds = timestamp.timestamp();
    // A leap second shows as a nanosecond count of 1e9 or more: keep it in this second.
    let millis = i64::from(timestamp.timestamp_subsec_millis().min(999));
    if seconds < 0 && millis > 0 {
        // -1.5 s is stored as -2 s + 500 ms.
        let _ = write!(out, "-{}.{:03}", -(seconds + 1), 1000 - millis);
    } else {
        let _ = write!(out, "{seconds}.{millis:03}");
    }
}

/// The flat string indexed fields of an event, in this order: `severity`, `category`,
/// `action`, `outcome`, then when present `wedding_id`, `user_id`, `source_ip`,
/// `risk_score`, `threat_verdict`, then every label as `label.<key>` (sorted by key).
pub fn indexed_fields(event: &Event) -> Vec<(String, String)> {
    let mut fields = Vec::with_capacity(8 + event.labels.len());
    fields.push(("severity".to_owned(), event.severity.as_str().to_owned()));
    fields.push(("category".to_owned(), event.category.as_str().to_owned()));
    fields.push(("action".to_owned(), event.action.clone()));
    fields.push(("outcome".to_owned(), event.outcome.as_str().to_owned()));
    if let Some(wedding_id) = &event.wedding_id {
        fields.push(("wedding_id".to_owned(), wedding_id.clone()));
    }
    if let Some(user_id) = &event.user_id {
        fields.push(("user_id".to_owned(), user_id.clone()));
    }
    if let Some(ip) = &event.source_ip {
        fields.push(("source_ip".to_owned(), ip.to_string()));
    }
    if let Some(score) = event.risk_score {
        fields.push(("risk_score".to_owned(), score.to_string()));
    }
    if let Some(verdict) = event
        .enrichment
        .threat
        .as_ref()
        .and_then(|t| serde_json::to_value(t.verdict).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
    {
        fields.push(("threat_verdict".to_owned(), verdict));
    }
    for (key, value) in &event.labels {
        fields.push((format!("label.{key}"), value.clone()));
    }
    fields
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    serde_json::to_writer(out, value)
        .map_err(|e| Error::encode(format!("cannot encode a HEC envelope: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::Value;
    use vowguard_core::{Category, Outcome, Severity, ThreatIntel, Verdict};

    fn at_millis(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    fn event() -> Event {
        let mut e = Event::new(Category::Authentication, "login", Severity::High);
        e.id = "evt-1".into();
        e.timestamp = at_millis(1_714_564_800_123);
        e.outcome = Outcome::Failure;
        e
    }

    #[test]
    fn time_has_exactly_three_decimals() {
        assert_eq!(format_time(&at_millis(1_714_564_800_123)), "1714564800.123");
        assert_eq!(format_time(&at_millis(1_714_564_800_000)), "1714564800.000");
        assert_eq!(format_time(&at_millis(1_714_564_800_005)), "1714564800.005");
        assert_eq!(format_time(&at_millis(1_714_564_800_050)), "1714564800.050");
        assert_eq!(format_time(&at_millis(0)), "0.000");
        assert_eq!(format_time(&at_millis(-500)), "-0.500");
        assert_eq!(format_time(&at_millis(-1_500)), "-1.500");
        assert_eq!(format_time(&at_millis(-2_000)), "-2.000");
        // Sub-millisecond precision is truncated, never rounded up into the next second.
        let t = Utc.timestamp_opt(1_714_564_800, 999_999_999).unwrap();
        assert_eq!(format_time(&t), "1714564800.999");
    }

    #[test]
    fn golden_envelope() {
        let mut e = event();
        e.message = Some("bad \"password\"\n".into());
        let encoder = HecEncoder::new(
            "gw1",
            "wedsync-security-audit",
            "_json",
            Some("wedding-security".into()),
        );
        let got = String::from_utf8(encode_event(&encoder, &e).unwrap()).unwrap();
        assert_eq!(
            got,
            concat!(
                r#"{"time":1714564800.123,"host":"gw1","source":"wedsync-security-audit","sourcetype":"_json","index":"wedding-security","#,
                r#""event":{"id":"evt-1","timestamp":"2024-05-01T12:00:00.123Z","category":"authentication","action":"login","outcome":"failure","severity":"high","message":"bad \"password\"\n"},"#,
                r#""fields":{"severity":"high","category":"authentication","action":"login","outcome":"failure"}}"#
            )
        );
    }

    #[test]
    fn index_is_omitted_when_not_set() {
        let encoder = HecEncoder::new("h", "s", "st", None);
        let v: Value = serde_json::from_slice(&encoder.encode(&event()).unwrap()).unwrap();
        assert!(v.get("index").is_none());
        assert_eq!(v["host"], "h");
    }

    #[test]
    fn encode_stored_is_encode() {
        let mut e = event();
        e.message = Some("a \"quoted\" </script> \u{2028}".into());
        e.labels.insert("k".into(), "v".into());
        e.attributes.insert("n".into(), serde_json::json!(4.5e300));
        let encoder = HecEncoder::new("h", "s", "_json", Some("i".into()));
        let stored = serde_json::to_vec(&e).unwrap();
        assert_eq!(
            encoder.encode_stored(&e, &stored).unwrap(),
            encoder.encode(&e).unwrap()
        );
    }

    /// The envelope's `fields` object is written without building [`indexed_fields`]:
    /// it must be byte for byte what serialising those pairs gives, hostile text included.
    #[test]
    fn streamed_fields_match_the_indexed_fields() {
        let mut bare = event();
        bare.action = "log\"in\u{2028}\n</script>".into();
        let mut full = bare.clone();
        full.wedding_id = Some("w-\"1\\".into());
        full.user_id = Some("u\u{0}42".into());
        full.source_ip = Some("2001:db8::1".parse().unwrap());
        full.risk_score = Some(0);
        full.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Suspicious,
            score: 50,
            ..Default::default()
        });
        full.labels.insert("e\"nv\u{7}".into(), "pr\"od".into());
        full.labels.insert("é".into(), String::new());
        let encoder = HecEncoder::new("h", "s", "_json", None);
        for e in [bare, full] {
            let mut expected = b",\"fields\":{".to_vec();
            for (i, (k, v)) in indexed_fields(&e).iter().enumerate() {
                if i > 0 {
                    expected.push(b',');
                }
                serde_json::to_writer(&mut expected, k).unwrap();
                expected.push(b':');
                serde_json::to_writer(&mut expected, v).unwrap();
            }
            expected.extend_from_slice(b"}}");
            let envelope = encoder.encode(&e).unwrap();
            assert!(
                envelope.ends_with(&expected),
                "{}\nvs\n{}",
                String::from_utf8_lossy(&envelope),
                String::from_utf8_lossy(&expected)
            );
            let v: Value = serde_json::from_slice(&envelope).unwrap();
            assert_eq!(v["event"]["action"], e.action.as_str());
        }
    }

    #[test]
    fn indexed_fields_include_optional_ones_and_labels() {
        let mut e = event();
        e.wedding_id = Some("w-1".into());
        e.user_id = Some("u-42".into());
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.risk_score = Some(91);
        e.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 90,
            ..Default::default()
        });
        e.labels.insert("env".into(), "prod".into());
        e.labels.insert("app".into(), "wedsync".into());
        let fields = indexed_fields(&e);
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("severity", "high"),
                ("category", "authentication"),
                ("action", "login"),
                ("outcome", "failure"),
                ("wedding_id", "w-1"),
                ("user_id", "u-42"),
                ("source_ip", "203.0.113.7"),
                ("risk_score", "91"),
                ("threat_verdict", "malicious"),
                ("label.app", "wedsync"),
                ("label.env", "prod"),
            ]
        );
        // The enrichment also travels inside `event`.
        let encoder = HecEncoder::new("h", "s", "st", None);
        let v: Value = serde_json::from_slice(&encoder.encode(&e).unwrap()).unwrap();
        assert_eq!(v["event"]["enrichment"]["threat"]["verdict"], "malicious");
        assert_eq!(v["fields"]["risk_score"], "91");
    }

    #[test]
    fn batch_is_concatenated() {
        let a = EncodedEvent {
            event_id: "a".into(),
            bytes: b"{\"x\":1}".to_vec(),
        };
        let b = EncodedEvent {
            event_id: "b".into(),
            bytes: b"{\"y\":2}".to_vec(),
        };
        assert_eq!(batch_body(&[&a, &b]), b"{\"x\":1}{\"y\":2}");
        assert!(batch_body(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn envelope_is_json_and_text_round_trips(
            message in any::<String>(),
            labels in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
            host in any::<String>(),
            ms in -10_000_000_000_000i64..10_000_000_000_000i64,
        ) {
            let mut e = event();
            e.message = Some(message.clone());
            e.labels = labels.clone();
            e.timestamp = at_millis(ms);
            let encoder = HecEncoder::new(host.clone(), "s", "st", None);
            let bytes = encoder.encode(&e).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(v["event"]["message"].as_str(), Some(message.as_str()));
            prop_assert_eq!(v["host"].as_str(), Some(host.as_str()));
            for (k, val) in &labels {
                prop_assert_eq!(v["fields"][format!("label.{k}")].as_str(), Some(val.as_str()));
                prop_assert_eq!(v["event"]["labels"][k].as_str(), Some(val.as_str()));
            }
            // Exactly the event's milliseconds, with three decimals.
            let text = format_time(&e.timestamp);
            let (whole, frac) = text.split_once('.').unwrap();
            prop_assert_eq!(frac.len(), 3);
            let negative = whole.starts_with('-');
            let magnitude = whole.trim_start_matches('-').parse::<i64>().unwrap() * 1000
                + frac.parse::<i64>().unwrap();
            prop_assert_eq!(if negative { -magnitude } else { magnitude }, ms);
            // No raw control characters: one envelope never spans lines.
            prop_assert!(!bytes.iter().any(|b| *b == b'\n' || *b == b'\r'));
        }
    }
}

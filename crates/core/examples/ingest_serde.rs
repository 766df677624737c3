//! Issue 17's question: would serde's derive plus `serde_path_to_error` do the ingest
//! parser's job ([`Event::from_json_str`], hand-written field by field in `ingest.rs`) as
//! well, and at least as fast?
//!
//! `cargo run -p vowguard-core --example ingest_serde --profile bench-fast [-- LINES]`
//!
//! The serde version below reads the same contract (known fields typed, `null` as absent,
//! unknown top-level fields kept in `attributes`, an explicit attribute winning over a
//! stray field) and then makes the same checks (id, timestamp, enums, ranges, IPs). It
//! prints, first, the error each version gives for every case of `event.rs`'s
//! `errors_name_the_field` test and a few more, then the parse time of each over the same
//! lines (200 000 by default, half of them with every optional field), five rounds
//! alternating the two, and the median of each.
#![allow(clippy::print_stdout, missing_docs)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use vowguard_core::enrichment::Enrichment;
use vowguard_core::event::MAX_ID_LEN;
use vowguard_core::{Category, Event, EventError, Outcome, Severity};

/// The event as serde's derive reads it: each known field typed (a borrowed string where
/// the text has no escape), every other field collected by `flatten`.
#[derive(Deserialize)]
struct SerdeEvent<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    severity: Option<Cow<'a, str>>,
    #[serde(default)]
    risk_score: Option<u64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default, borrow)]
    source_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    file_hash: Option<String>,
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    resource_id: Option<String>,
    #[serde(default)]
    wedding_id: Option<String>,
    #[serde(default, borrow)]
    destination_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    destination_host: Option<String>,
    #[serde(default)]
    destination_port: Option<u64>,
    #[serde(default)]
    record_count: Option<u64>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
    #[serde(flatten)]
    stray: Map<String, Value>,
}

fn field(name: &str, reason: impl Into<String>) -> EventError {
    EventError {
        field: Some(name.to_owned()),
        reason: reason.into(),
    }
}

fn enumeration<T: std::str::FromStr<Err = String>>(
    name: &str,
    text: Option<Cow<'_, str>>,
) -> Result<Option<T>, EventError> {
    match text {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e: String| field(name, format!("{e}, got {:?}", &*s))),
    }
}

fn ip(name: &str, text: Option<Cow<'_, str>>) -> Result<Option<IpAddr>, EventError> {
    match text {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| field(name, format!("expected an IP address, got {:?}", &*s))),
    }
}

/// `Event::from_json_str` done with serde's derive and `serde_path_to_error`.
fn serde_parse(text: &str) -> Result<Event, EventError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: SerdeEvent<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            EventError {
                field: None,
                reason: inner.to_string(),
            }
        } else {
            field(&path, inner.to_string())
        }
    })?;
    de.end().map_err(|e| EventError {
        field: None,
        reason: e.to_string(),
    })?;
    let id = match raw.id {
        None => uuid_like(),
        Some(id) => {
            if id.is_empty() {
                return Err(field("id", "must not be empty"));
            }
            if id.len() > MAX_ID_LEN {
                return Err(field("id", format!("longer than {MAX_ID_LEN} bytes")));
            }
            if !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(field(
                    "id",
                    "may only contain printable ASCII without spaces",
                ));
            }
            id.into_owned()
        }
    };
    let timestamp = match raw.timestamp {
        None => Utc::now(),
        Some(ts) => DateTime::parse_from_rfc3339(&ts)
            .map_err(|e| {
                field(
                    "timestamp",
                    format!("expected RFC 3339, got {:?} ({e})", &*ts),
                )
            })?
            .with_timezone(&Utc),
    };
    let category = enumeration("category", raw.category)?.unwrap_or(Category::Other);
    let action = raw
        .action
        .ok_or_else(|| field("action", "is required"))?
        .into_owned();
    if action.trim().is_empty() {
        return Err(field("action", "must not be empty"));
    }
    let outcome = enumeration("outcome", raw.outcome)?.unwrap_or(Outcome::Unknown);
    let severity: Severity =
        enumeration("severity", raw.severity)?.ok_or_else(|| field("severity", "is required"))?;
    let risk_score = match raw.risk_score {
        None => None,
        Some(n) if n <= 100 => Some(n as u8),
        Some(n) => {
            return Err(field(
                "risk_score",
                format!("must be between 0 and 100, got {n}"),
            ));
        }
    };
    let source_ip = ip("source_ip", raw.source_ip)?;
    let destination_ip = ip("destination_ip", raw.destination_ip)?;
    let destination_port = match raw.destination_port {
        None => None,
        Some(n) => Some(u16::try_from(n).map_err(|_| {
            field(
                "destination_port",
                format!("must be between 0 and 65535, got {n}"),
            )
        })?),
    };
    let mut attributes = raw.attributes.unwrap_or_default();
    for (key, value) in raw.stray {
        attributes.entry(key).or_insert(value);
    }
    Ok(Event {
        id,
        timestamp,
        category,
        action,
        outcome,
        severity,
        risk_score,
        message: raw.message,
        user_id: raw.user_id,
        user_name: raw.user_name,
        source_ip,
        user_agent: raw.user_agent,
        domain: raw.domain,
        url: raw.url,
        file_hash: raw.file_hash,
        resource_type: raw.resource_type,
        resource_id: raw.resource_id,
        wedding_id: raw.wedding_id,
        destination_ip,
        destination_host: raw.destination_host,
        destination_port,
        record_count: raw.record_count,
        labels: raw.labels.unwrap_or_default(),
        attributes,
        enrichment: Enrichment::default(),
    })
}

/// Stands in for the UUID v7 the real parser makes for an event without id (the sample
/// lines all have one, so neither version pays for it in the timing).
fn uuid_like() -> String {
    "00000000-0000-7000-8000-000000000000".to_owned()
}

/// Sample line `i`: half carry every optional field, half only the usual few.
fn line(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!(
            r#"{{"id":"evt-{i:08}","timestamp":"2026-06-20T14:03:07.{ms:03}Z","category":"authentication","action":"login","outcome":"failure","severity":"high","risk_score":{risk},"message":"failed login {i} for planner account","user_id":"planner-{u}","user_name":"alex.planner","source_ip":"203.0.113.{oct}","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","domain":"example.org","url":"https://example.org/login","resource_type":"account","resource_id":"acct-{u}","wedding_id":"w-2026-06-20-smith","destination_ip":"198.51.100.7","destination_host":"auth.internal","destination_port":443,"record_count":1,"labels":{{"env":"prod","team":"identity"}},"attributes":{{"attempt":{a},"mfa":false}},"tenant":"acme"}}"#,
            ms = i % 1000,
            risk = i % 101,
            u = i % 97,
            oct = i % 250,
            a = i % 5
        )
    } else {
        format!(
            r#"{{"id":"evt-{i:08}","timestamp":"2026-06-20T14:03:07Z","category":"network","action":"page_view","severity":"info","source_ip":"2001:db8::{h:x}","message":"viewed the seating chart \"final\""}}"#,
            h = i % 65_536
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .map_or(200_000, |n| n.parse().expect("LINES is a number"));

    println!("## Error messages (hand-written | serde + serde_path_to_error)");
    let cases = [
        r#"{"severity":"low"}"#,
        r#"{"action":"x"}"#,
        r#"{"action":"x","severity":"severe"}"#,
        r#"{"action":"x","severity":"low","risk_score":101}"#,
        r#"{"action":"x","severity":"low","risk_score":-1}"#,
        r#"{"action":"x","severity":"low","source_ip":"not-an-ip"}"#,
        r#"{"action":"x","severity":"low","labels":{"a":1}}"#,
        r#"{"action":"x","severity":"low","timestamp":"yesterday"}"#,
        r#"{"action":"x","severity":"low","user_id":7}"#,
        r#"[1]"#,
        r#"{"action": "x",, }"#,
        r#"{"user_id":7,"severity":"severe"}"#,
        r#"{"action":"x","severity":"low","destination_port":70000}"#,
    ];
    let mut same = 0;
    for case in cases {
        let hand = Event::from_json_str(case)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        let serde = serde_parse(case).map(|_| ()).unwrap_err().to_string();
        if hand == serde {
            same += 1;
        }
        println!("{case}\n    hand:  {hand}\n    serde: {serde}");
    }
    println!("identical messages: {same} of {}", cases.len());

    let text: Vec<String> = (0..lines).map(line).collect();
    // Both versions agree on every sample line.
    for t in text.iter().take(1000) {
        let a = Event::from_json_str(t).expect("hand-written parses the sample");
        let b = serde_parse(t).expect("serde parses the sample");
        assert_eq!(a, b, "{t}");
    }
    let bytes: usize = text.iter().map(String::len).sum();
    println!(
        "\n## Parse time, {lines} lines ({:.1} MB), 5 rounds",
        bytes as f64 / 1e6
    );
    let mut hand = Vec::new();
    let mut serde = Vec::new();
    for round in 0..5 {
        let start = Instant::now();
        let mut ok = 0usize;
        for t in &text {
            ok += usize::from(Event::from_json_str(t).is_ok());
        }
        hand.push(start.elapsed().as_secs_f64());
        assert_eq!(ok, lines);
        let start = Instant::now();
        let mut ok = 0usize;
        for t in &text {
            ok += usize::from(serde_parse(t).is_ok());
        }
        serde.push(start.elapsed().as_secs_f64());
        assert_eq!(ok, lines);
        println!(
            "round {round}: hand-written {:.3} s, serde {:.3} s",
            hand[round], serde[round]
        );
    }
    let (h, s) = (median(hand), median(serde));
    println!(
        "median: hand-written {:.0} ns/line ({:.0} lines/s), serde {:.0} ns/line ({:.0} lines/s); serde / hand-written = {:.2}",
        h * 1e9 / lines as f64,
        lines as f64 / h,
        s * 1e9 / lines as f64,
        lines as f64 / s,
        s / h
    );
}

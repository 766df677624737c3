//! Shared parts of the vowguard fuzz targets.
//!
//! * [`FuzzEvent`] / [`FuzzAlert`]: `arbitrary` inputs that fill every field of an
//!   [`Event`] (through the real ingest parser, so only events a source can send are
//!   produced) and of an [`Alert`], with strings built from hostile fragments (CR/LF,
//!   delimiters, mentions, markdown links, bidi overrides, forged header lines).
//! * [`rfc5424`], [`cef`], [`leef`]: small parsers written from the specifications,
//!   independent of the encoders' code, used to check what the encoders write.

use std::net::IpAddr;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};
use vowguard_core::{
    Alert, AlertAction, Category, Enrichment, Event, Geo, PatternMatch, Priority, Season, Severity,
    ThreatIntel, Verdict, WeddingContext, WeddingImpact, WeddingPhase,
};

/// Fragments that break or forge records in one format or another.
pub const HOSTILE: &[&str] = &[
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\0",
    "\u{0B}",
    "\u{0C}",
    "\u{7F}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\u{202E}",
    "\u{2066}",
    "\u{200B}",
    "\u{FEFF}",
    "|",
    "\\",
    "\\|",
    "=",
    "\\=",
    "^",
    " ",
    "  ",
    "\"",
    "'",
    "]",
    "[",
    "<",
    ">",
    "&",
    "&lt;",
    "*",
    "_",
    "`",
    "#",
    "~",
    "://",
    "-",
    "CEF:0|evil|evil|1|x|forged|10|",
    " suser=admin",
    " externalId=forged",
    "^eventId=forged",
    "\teventId=forged",
    "LEEF:2.0|evil|evil|1|x|^|",
    "<13>1 2026-06-20T12:00:00.000Z forged app - - - ",
    "123 <13>1 ",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123ABC>",
    "<!subteam^S123>",
    "<https://evil.example|click here>",
    "[click](https://evil.example)",
    "https://evil.example/",
    "<at>admin</at>",
    "Priority: P4_INFO",
    "Subject: forged",
    "\r\nBcc: victim@evil.example",
    "\nX-Priority: 5",
    "=?utf-8?q?forged?=",
    "--boundary--",
    "<script>alert(1)</script>",
    ".",
    "\r\n.\r\n",
    "é",
    "😀",
    "ß",
    "\u{1F}",
    "+14155550123",
    "P0_CRITICAL",
    "%0a",
];

/// One piece of a hostile string.
#[derive(Debug, Arbitrary)]
pub enum Piece {
    /// Any text.
    Text(String),
    /// One of [`HOSTILE`].
    Hostile(u8),
    /// A run of one character (long values, cuts at limits).
    Run(char, u16),
}

/// A string built from pieces.
#[derive(Debug, Arbitrary)]
pub struct Hostile(pub Vec<Piece>);

impl Hostile {
    /// The string.
    pub fn build(&self) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(s) => out.push_str(s),
                Piece::Hostile(i) => out.push_str(HOSTILE[usize::from(*i) % HOSTILE.len()]),
                Piece::Run(c, n) => out.extend(std::iter::repeat_n(*c, usize::from(*n % 5000))),
            }
            if out.len() > 20_000 {
                break;
            }
        }
        out
    }
}

/// The enrichment an event can carry (enrichers copy event text into some of it).
#[derive(Debug, Arbitrary)]
pub struct FuzzEnrichment {
    wedding: Option<(Hostile, u8, u8, bool, Option<u32>)>,
    threat: Option<(u8, u8, Vec<Hostile>)>,
    geo: Option<(Option<Hostile>, Option<Hostile>, Option<u32>)>,
    patterns: Vec<(Hostile, Vec<Hostile>)>,
}

/// Every field of an event; turned into event JSON and parsed by the ingest parser.
#[derive(Debug, Arbitrary)]
pub struct FuzzEvent {
    id: Option<Hostile>,
    timestamp_ms: i64,
    category: u8,
    action: Hostile,
    outcome: u8,
    severity: u8,
    risk_score: Option<u8>,
    message: Option<Hostile>,
    user_id: Option<Hostile>,
    user_name: Option<Hostile>,
    source_ip: Option<IpAddr>,
    user_agent: Option<Hostile>,
    domain: Option<Hostile>,
    url: Option<Hostile>,
    file_hash: Option<Hostile>,
    resource_type: Option<Hostile>,
    resource_id: Option<Hostile>,
    wedding_id: Option<Hostile>,
    record_count: Option<u64>,
    labels: Vec<(Hostile, Hostile)>,
    attributes: Vec<(u8, Hostile)>,
    enrichment: Option<FuzzEnrichment>,
}

const ATTRIBUTE_NAMES: &[&str] = &["target_user", "duser", "policy", "tenant", "enrichment"];

fn pick<T: Copy>(all: &[T], i: u8) -> T {
    all[usize::from(i) % all.len()]
}

fn opt(v: &Option<Hostile>) -> Value {
    v.as_ref().map_or(Value::Null, |h| Value::String(h.build()))
}

impl FuzzEvent {
    /// The event JSON a source would send.
    pub fn to_json(&self) -> Value {
        // Within chrono's range and RFC 3339's four-digit years.
        let ms = self.timestamp_ms.rem_euclid(253_402_300_799_000);
        let timestamp = Utc
            .timestamp_millis_opt(ms)
            .single()
            .unwrap_or_else(|| Utc.timestamp_millis_opt(0).unwrap());
        let id = self.id.as_ref().map(|h| {
            let id: String = h
                .build()
                .chars()
                .filter(char::is_ascii_graphic)
                .take(128)
                .collect();
            if id.is_empty() {
                "evt-1".to_owned()
            } else {
                id
            }
        });
        let mut action = self.action.build();
        if action.trim().is_empty() {
            action.push_str("login");
        }
        let labels: Map<String, Value> = self
            .labels
            .iter()
            .take(8)
            .map(|(k, v)| (k.build(), Value::String(v.build())))
            .collect();
        let attributes: Map<String, Value> = self
            .attributes
            .iter()
            .take(8)
            .map(|(k, v)| {
                (
                    pick(ATTRIBUTE_NAMES, *k).to_owned(),
                    Value::String(v.build()),
                )
            })
            .collect();
        json!({
            "id": id,
            "timestamp": timestamp.to_rfc3339(),
            "category": pick(Category::ALL, self.category).as_str(),
            "action": action,
            "outcome": pick(vowguard_core::Outcome::ALL, self.outcome).as_str(),
            "severity": pick(Severity::ALL, self.severity).as_str(),
            "risk_score": self.risk_score.map(|r| r % 101),
            "message": opt(&self.message),
            "user_id": opt(&self.user_id),
            "user_name": opt(&self.user_name),
            "source_ip": self.source_ip.map(|ip| ip.to_string()),
            "user_agent": opt(&self.user_agent),
            "domain": opt(&self.domain),
            "url": opt(&self.url),
            "file_hash": opt(&self.file_hash),
            "resource_type": opt(&self.resource_type),
            "resource_id": opt(&self.resource_id),
            "wedding_id": opt(&self.wedding_id),
            "record_count": self.record_count,
            "labels": labels,
            "attributes": attributes,
        })
    }

    /// The event as the ingest parser makes it, plus enrichment. Panics when the ingest
    /// parser refuses JSON that follows the contract (that is a bug too).
    pub fn build(&self) -> Event {
        let json = self.to_json();
        let mut event = Event::from_json_value(json.clone())
            .unwrap_or_else(|e| panic!("ingest refused a valid event: {e}\n{json}"));
        if let Some(fe) = &self.enrichment {
            event.enrichment = fe.build();
        }
        event
    }
}

impl FuzzEnrichment {
    fn build(&self) -> Enrichment {
        let mut e = Enrichment::default();
        if let Some((id, phase, season, weekend, guests)) = &self.wedding {
            e.wedding = Some(WeddingContext {
                wedding_id: id.build(),
                date: NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
                timezone: "Europe/London".into(),
                phase: pick(
                    &[
                        WeddingPhase::Planning,
                        WeddingPhase::WeekOf,
                        WeddingPhase::DayOf,
                        WeddingPhase::PostWedding,
                    ],
                    *phase,
                ),
                days_until: 0,
                weekend: *weekend,
                season: pick(
                    &[
                        Season::Spring,
                        Season::Summer,
                        Season::Autumn,
                        Season::Winter,
                    ],
                    *season,
                ),
                guest_count: *guests,
                vendor_count: None,
            });
        }
        if let Some((verdict, score, categories)) = &self.threat {
            e.threat = Some(ThreatIntel {
                verdict: pick(
                    &[
                        Verdict::Unknown,
                        Verdict::Benign,
                        Verdict::Suspicious,
                        Verdict::Malicious,
                    ],
                    *verdict,
                ),
                score: score % 101,
                categories: categories.iter().take(4).map(Hostile::build).collect(),
                ..ThreatIntel::default()
            });
        }
        if let Some((country, city, asn)) = &self.geo {
            e.geo = Some(Geo {
                country_code: country.as_ref().map(Hostile::build),
                city: city.as_ref().map(Hostile::build),
                asn: *asn,
                org: None,
            });
        }
        e.patterns = self
            .patterns
            .iter()
            .take(4)
            .map(|(name, indicators)| PatternMatch {
                pattern: name.build(),
                confidence: 0.9,
                indicators: indicators.iter().take(4).map(Hostile::build).collect(),
            })
            .collect();
        e
    }
}

/// An alert for an event: the router's part (priority, reasons, route, impact).
#[derive(Debug, Arbitrary)]
pub struct FuzzAlert {
    /// The event.
    pub event: FuzzEvent,
    priority: u8,
    action: u8,
    reasons: Vec<Hostile>,
    route: u8,
    impact: (u8, bool, u8, bool, u8, bool),
    created_ms: u32,
}

impl FuzzAlert {
    /// The alert.
    pub fn build(&self) -> Alert {
        let event = Arc::new(self.event.build());
        let priority = pick(&Priority::ALL, self.priority);
        let mut alert = Alert::new(
            event,
            priority,
            pick(&["critical", "wedding-day", "default"], self.route),
        );
        alert.id = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".into();
        alert.action = pick(
            &[
                AlertAction::Trigger,
                AlertAction::Acknowledge,
                AlertAction::Resolve,
            ],
            self.action,
        );
        alert.reasons = self.reasons.iter().take(6).map(Hostile::build).collect();
        let (weddings, couples, vendors, payment, guests, photos) = self.impact;
        alert.impact = WeddingImpact {
            active_weddings_affected: u32::from(weddings),
            couples_data_at_risk: couples,
            vendor_accounts_compromised: u32::from(vendors),
            payment_data_exposed: payment,
            guest_lists_accessed: u32::from(guests),
            wedding_photos_at_risk: photos,
        };
        alert.created_at =
            DateTime::<Utc>::from_timestamp(i64::from(self.created_ms), 0).unwrap_or_default();
        alert
    }
}

/// Builds a `T` from fuzz bytes; `None` when there are not enough bytes.
pub fn arbitrary<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// The first `max` characters of `s` (never splits a character).
pub fn prefix_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Whether `s` has a raw CR or LF.
pub fn has_cr_lf(s: &[u8]) -> bool {
    s.iter().any(|b| *b == b'\r' || *b == b'\n')
}

/// Every string value under a key named `key`, anywhere in `value`.
pub fn strings_under(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key
                    && let Value::String(s) = v
                {
                    out.push(s.clone());
                }
                strings_under(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

/// A strict RFC 5424 parser (section 6), written from the RFC.
/// A CVE id as NVD writes it: `CVE-`, a four-digit year, `-`, four or more digits.
pub fn is_cve(id: &str) -> bool {
    let mut parts = id.split('-');
    let (Some("CVE"), Some(year), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The invariants of a scanner [`vowguard_core::Finding`], whatever the input it came from:
/// port 0 exactly when host level (no protocol), otherwise a lower-case alphanumeric
/// protocol; confidence in 0..=1; CVSS in (0, 10]; CVE ids well formed and unique; a plugin
/// id and an asset name free of control characters; host names lower case.
pub fn check_finding(f: &vowguard_core::Finding) {
    assert_eq!(f.port == 0, f.protocol.is_empty(), "{f:?}");
    assert!(
        f.protocol
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{f:?}"
    );
    assert!((0.0..=1.0).contains(&f.confidence), "{f:?}");
    assert!(f.cvss.is_none_or(|s| s > 0.0 && s <= 10.0), "{f:?}");
    assert!(f.cves.iter().all(|c| is_cve(c)), "{f:?}");
    let mut unique = f.cves.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), f.cves.len(), "{f:?}");
    assert!(
        !f.plugin_id.is_empty() && !f.plugin_id.chars().any(char::is_control),
        "{f:?}"
    );
    let a = &f.asset;
    assert!(
        a.ip.is_some() || a.fqdn.is_some() || a.hostname.is_some(),
        "{f:?}"
    );
    for name in [&a.fqdn, &a.hostname].into_iter().flatten() {
        assert!(!name.is_empty(), "{f:?}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)),
            "{f:?}"
        );
    }
    if let Some(id) = &a.scanner_asset_id {
        assert!(!id.is_empty() && !id.chars().any(char::is_control), "{f:?}");
    }
    if let Some(vector) = &f.cvss_vector {
        assert!(
            !vector.is_empty() && !vector.chars().any(char::is_control),
            "{f:?}"
        );
    }
}

pub mod rfc5424 {
    /// One parsed message.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Message {
        /// PRI value.
        pub pri: u8,
        /// VERSION.
        pub version: String,
        /// TIMESTAMP.
        pub timestamp: String,
        /// HOSTNAME.
        pub hostname: String,
        /// APP-NAME.
        pub app_name: String,
        /// PROCID.
        pub procid: String,
        /// MSGID.
        pub msgid: String,
        /// STRUCTURED-DATA (only the nil value `-` is accepted here).
        pub structured_data: String,
        /// MSG (without the separating space), `None` when absent.
        pub msg: Option<String>,
    }

    fn header_field<'a>(rest: &mut &'a str, name: &str, max: usize) -> Result<&'a str, String> {
        let end = rest
            .find(' ')
            .ok_or_else(|| format!("{name}: no SP after it"))?;
        let field = &rest[..end];
        if field.is_empty() {
            return Err(format!("{name}: empty"));
        }
        if field.len() > max {
            return Err(format!("{name}: {} octets, at most {max}", field.len()));
        }
        if !field.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(format!("{name}: {field:?} is not PRINTUSASCII"));
        }
        *rest = &rest[end + 1..];
        Ok(field)
    }

    /// Parses one unframed message. Structured data must be `-` (vowguard sends none).
    pub fn parse(bytes: &[u8]) -> Result<Message, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let rest = text.strip_prefix('<').ok_or("no `<` before PRI")?;
        let close = rest.find('>').ok_or("no `>` after PRI")?;
        let pri_text = &rest[..close];
        if pri_text.is_empty()
            || pri_text.len() > 3
            || !pri_text.bytes().all(|b| b.is_ascii_digit())
            || (pri_text.len() > 1 && pri_text.starts_with('0'))
        {
            return Err(format!("PRI {pri_text:?}"));
        }
        let pri: u8 = pri_text.parse().map_err(|_| "PRI out of range")?;
        if pri > 191 {
            return Err(format!("PRI {pri} > 191"));
        }
        let mut rest = &rest[close + 1..];
        let version = header_field(&mut rest, "VERSION", 2)?.to_owned();
        let timestamp = header_field(&mut rest, "TIMESTAMP", 64)?.to_owned();
        let hostname = header_field(&mut rest, "HOSTNAME", 255)?.to_owned();
        let app_name = header_field(&mut rest, "APP-NAME", 48)?.to_owned();
        let procid = header_field(&mut rest, "PROCID", 128)?.to_owned();
        let msgid = header_field(&mut rest, "MSGID", 32)?.to_owned();
        let (structured_data, msg) = match rest.find(' ') {
            Some(end) => (rest[..end].to_owned(), Some(rest[end + 1..].to_owned())),
            None => (rest.to_owned(), None),
        };
        if structured_data != "-" {
            return Err(format!("STRUCTURED-DATA {structured_data:?}, expected `-`"));
        }
        if timestamp != "-" {
            chrono::DateTime::parse_from_rfc3339(&timestamp)
                .map_err(|e| format!("TIMESTAMP {timestamp:?}: {e}"))?;
        }
        Ok(Message {
            pri,
            version,
            timestamp,
            hostname,
            app_name,
            procid,
            msgid,
            structured_data,
            msg,
        })
    }

    /// Splits an octet-counted frame (RFC 6587 section 3.4.1) into its message.
    pub fn unframe_octet_counted(frame: &[u8]) -> Result<&[u8], String> {
        let sp = frame
            .iter()
            .position(|b| *b == b' ')
            .ok_or("no SP after MSG-LEN")?;
        let len_text = std::str::from_utf8(&frame[..sp]).map_err(|_| "MSG-LEN not ASCII")?;
        if len_text.is_empty()
            || !len_text.bytes().all(|b| b.is_ascii_digit())
            || len_text.starts_with('0')
        {
            return Err(format!("MSG-LEN {len_text:?}"));
        }
        let len: usize = len_text.parse().map_err(|_| "MSG-LEN too large")?;
        let msg = &frame[sp + 1..];
        if msg.len() != len {
            return Err(format!("MSG-LEN {len} but {} octets follow", msg.len()));
        }
        Ok(msg)
    }
}

/// A CEF parser written from the ArcSight CEF specification (rev. 25).
pub mod cef {
    use std::collections::BTreeMap;

    /// One parsed record: the 7 header fields (unescaped) and the extension pairs.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Record {
        /// `CEF:0`, Device Vendor, Device Product, Device Version, Signature ID, Name, Severity.
        pub header: Vec<String>,
        /// Extension key -> unescaped value.
        pub extensions: BTreeMap<String, String>,
    }

    /// Parses one record. The header is the first seven unescaped `|` (`\|` and `\\` are the
    /// only escapes there); the extension is `key=value` pairs separated by spaces, where a
    /// key is the alphanumeric word before an unescaped `=`.
    pub fn parse(line: &str) -> Result<Record, String> {
        let mut header = Vec::new();
        let mut field = String::new();
        let mut chars = line.char_indices();
        let mut ext_start = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '\\')) => field.push('\\'),
                    Some((_, '|')) => field.push('|'),
                    other => return Err(format!("header: bad escape `\\{other:?}` at {i}")),
                },
                '|' => {
                    header.push(std::mem::take(&mut field));
                    if header.len() == 7 {
                        ext_start = Some(i + 1);
                        break;
                    }
                }
                '\r' | '\n' => return Err("header: raw CR/LF".into()),
                c => field.push(c),
            }
        }
        let ext_start = ext_start.ok_or_else(|| format!("only {} header fields", header.len()))?;
        let ext = &line[ext_start..];
        // Positions of unescaped `=` in the extension.
        let bytes = ext.as_bytes();
        let mut eq = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'=' => {
                    eq.push(i);
                    i += 1;
                }
                b'\r' | b'\n' => return Err("extension: raw CR/LF".into()),
                _ => i += 1,
            }
        }
        let mut extensions = BTreeMap::new();
        let key_start = |at: usize| {
            let mut s = at;
            while s > 0 && bytes[s - 1].is_ascii_alphanumeric() {
                s -= 1;
            }
            s
        };
        for (n, &at) in eq.iter().enumerate() {
            let ks = key_start(at);
            let key = &ext[ks..at];
            if key.is_empty() {
                return Err(format!("extension: `=` without a key at {at}"));
            }
            if ks != 0 && bytes[ks - 1] != b' ' {
                return Err(format!("extension: key {key:?} not after a space"));
            }
            let value_end = match eq.get(n + 1) {
                Some(&next) => {
                    let nks = key_start(next);
                    if nks == 0 || bytes[nks - 1] != b' ' {
                        return Err(format!(
                            "extension: key before offset {next} not after a space"
                        ));
                    }
                    nks - 1
                }
                None => ext.len(),
            };
            let raw = ext
                .get(at + 1..value_end)
                .ok_or_else(|| format!("extension: empty value of {key}"))?;
            let value = unescape_value(raw)?;
            if extensions.insert(key.to_owned(), value).is_some() {
                return Err(format!("extension: key {key} appears twice"));
            }
        }
        if eq.is_empty() && !ext.is_empty() {
            return Err(format!("extension without any key: {ext:?}"));
        }
        Ok(Record { header, extensions })
    }

    fn unescape_value(raw: &str) -> Result<String, String> {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('\\') => out.push('\\'),
                    Some('=') => out.push('='),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    other => return Err(format!("extension: bad escape `\\{other:?}`")),
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }
}

/// A LEEF 1.0 / 2.0 parser written from IBM's LEEF specification.
pub mod leef {
    use std::collections::BTreeMap;

    /// One parsed record.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Record {
        /// `LEEF:1.0` / `LEEF:2.0`, Vendor, Product, Version, EventID (and, for 2.0, the
        /// delimiter as written).
        pub header: Vec<String>,
        /// The attribute delimiter.
        pub delimiter: char,
        /// Attribute key -> value.
        pub attributes: BTreeMap<String, String>,
    }

    fn delimiter_from(written: &str) -> Result<char, String> {
        let mut chars = written.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => {
                let hex = written
                    .strip_prefix("0x")
                    .or_else(|| written.strip_prefix('x'))
                    .ok_or_else(|| format!("delimiter {written:?}"))?;
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("delimiter {written:?}"))
            }
        }
    }

    /// Parses one record (no escaping exists in LEEF: the header ends at the 5th `|` (1.0)
    /// or 6th `|` (2.0), attributes are split on the delimiter, each `key=value` split at
    /// its first `=`).
    pub fn parse(line: &str) -> Result<Record, String> {
        if line.contains(['\r', '\n']) {
            return Err("raw CR/LF".into());
        }
        let fields = if line.starts_with("LEEF:2.0|") {
            6
        } else if line.starts_with("LEEF:1.0|") {
            5
        } else {
            return Err("not LEEF 1.0/2.0".into());
        };
        let mut parts = line.splitn(fields + 1, '|');
        let header: Vec<String> = parts.by_ref().take(fields).map(str::to_owned).collect();
        let body = parts
            .next()
            .ok_or_else(|| format!("fewer than {fields} header fields"))?;
        let delimiter = if fields == 6 {
            delimiter_from(&header[5])?
        } else {
            '\t'
        };
        let mut attributes = BTreeMap::new();
        if !body.is_empty() {
            for pair in body.split(delimiter) {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("attribute {pair:?} without `=`"))?;
                if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("attribute key {key:?}"));
                }
                if attributes
                    .insert(key.to_owned(), value.to_owned())
                    .is_some()
                {
                    return Err(format!("attribute {key} appears twice"));
                }
            }
        }
        Ok(Record {
            header,
            delimiter,
            attributes,
        })
    }
}

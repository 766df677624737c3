//! Pure LEEF encoding: an [`Event`] in, one LEEF line out.
//!
//! * LEEF 2.0: `LEEF:2.0|Vendor|Product|Version|EventID|<delim>|k=v<delim>k=v...`, the
//!   delimiter field written as configured (`^`, `x09`, `0x5E`).
//! * LEEF 1.0: `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v...` (tab only, no
//!   delimiter field).
//!
//! LEEF has no escaping, so the encoder neutralises what would break a record:
//!
//! * in header fields, `|` becomes `/`, and CR and LF become a space;
//! * in values, the delimiter, CR and LF become a space (the delimiter may therefore never
//!   be a space, see [`Delimiter::parse`]);
//! * keys are ASCII alphanumeric; keys derived from event labels are sanitised to that.
//!
//! Values are cut (on character boundaries) to [`VALUE_MAX_CHARS`], `msg` to
//! [`MSG_MAX_CHARS`]; empty values are left out. The result never contains a raw CR or LF.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;
use vowguard_core::{Category, Event};
use vowguard_syslog::severity_1_to_10;
pub use vowguard_syslog::truncate_chars;

/// The `devTimeFormat` sent with every `devTime` (Java `SimpleDateFormat` syntax).
pub const DEV_TIME_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSZ";
/// Longest value of any attribute, in characters.
pub const VALUE_MAX_CHARS: usize = 4000;
/// Longest `msg` value, in characters.
pub const MSG_MAX_CHARS: usize = 1023;
/// Longest header field (vendor, product, version, event id), in characters.
pub const HEADER_MAX_CHARS: usize = 255;
/// What replaces the delimiter, CR and LF in values, and CR and LF in header fields.
pub const VALUE_REPLACEMENT: char = ' ';
/// What replaces `|` in header fields.
pub const HEADER_PIPE_REPLACEMENT: char = '/';

/// The LEEF format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LeefVersion {
    /// LEEF 1.0: tab-delimited attributes, no delimiter field in the header.
    V1,
    /// LEEF 2.0 (the default): the delimiter is named in the header.
    #[default]
    V2,
}

impl LeefVersion {
    /// As written in the header: `1.0` or `2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
        }
    }
}

impl fmt::Display for LeefVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts `"1.0"`, `"2.0"`, `"1"`, `"2"` and the numbers `1.0`, `2.0`, `1`, `2`.
impl<'de> Deserialize<'de> for LeefVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LeefVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a LEEF version, \"1.0\" or \"2.0\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LeefVersion, E> {
                match v {
                    "1.0" | "1" => Ok(LeefVersion::V1),
                    "2.0" | "2" => Ok(LeefVersion::V2),
                    other => Err(E::custom(format!(
                        "unsupported LEEF version {other:?}, expected \"1.0\" or \"2.0\""
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LeefVersion, E> {
                if v == 1.0 {
                    Ok(LeefVersion::V1)
                } else if v == 2.0 {
                    Ok(LeefVersion::V2)
                } else {
                    Err(E::custom(format!(
                        "unsupported LEEF version {v}, expected \"1.0\" or \"2.0\""
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LeefVersion, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LeefVersion, E> {
                self.visit_f64(v as f64)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The attribute delimiter of a LEEF 2.0 record, as configured and as written in the header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delimiter {
    ch: char,
    written: String,
}

impl Default for Delimiter {
    fn default() -> Self {
        Self::caret()
    }
}

impl Delimiter {
    /// `^`, the default for LEEF 2.0.
    pub fn caret() -> Self {
        Self {
            ch: '^',
            written: "^".to_owned(),
        }
    }

    /// The tab, LEEF 1.0's only delimiter (written `x09` in a 2.0 header).
    pub fn tab() -> Self {
        Self {
            ch: '\t',
            written: "x09".to_owned(),
        }
    }

    /// Parses a delimiter: one character (`^`), or its code in hex after `x` or `0x` with 1 to
    /// 4 digits (`x09`, `0x5E`). It may not be a space, CR, LF, `|`, `=` or an ASCII letter or
    /// digit, since those would make records ambiguous.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut chars = spec.chars();
        let ch = match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => {
                let hex = spec
                    .strip_prefix("0x")
                    .or_else(|| spec.strip_prefix("x"))
                    .filter(|h| (1..=4).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        format!("delimiter {spec:?} must be one character or hex like \"x09\" / \"0x5E\"")
                    })?;
                let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                char::from_u32(code)
                    .ok_or_else(|| format!("delimiter {spec:?} is not a character"))?
            }
        };
        if ch.is_ascii_alphanumeric() || matches!(ch, ' ' | '\r' | '\n' | '|' | '=') {
            return Err(format!(
                "delimiter {spec:?} cannot be used: a space, CR, LF, `|`, `=`, letter or digit would make records ambiguous"
            ));
        }
        Ok(Self {
            ch,
            written: spec.to_owned(),
        })
    }

    /// The delimiter character.
    pub fn char(&self) -> char {
        self.ch
    }

    /// How the delimiter is written in a LEEF 2.0 header (as configured).
    pub fn as_written(&self) -> &str {
        &self.written
    }
}

impl<'de> Deserialize<'de> for Delimiter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(deserializer)?;
        Delimiter::parse(&spec).map_err(de::Error::custom)
    }
}

/// The four header fields after the version, unclean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeefHeader<'a> {
    /// Vendor.
    pub vendor: &'a str,
    /// Product name.
    pub product: &'a str,
    /// Product version.
    pub version: &'a str,
    /// Event id (QRadar maps it to a QID).
    pub event_id: &'a str,
}

/// Writes a header field: `|` -> `/`, CR / LF -> space.
pub fn clean_header(value: &str, out: &mut String) {
    out.extend(value.chars().map(|c| match c {
        '|' => HEADER_PIPE_REPLACEMENT,
        '\r' | '\n' => VALUE_REPLACEMENT,
        c => c,
    }));
}

/// Writes a value: the delimiter, CR and LF -> space.
pub fn clean_value(value: &str, delimiter: char, out: &mut String) {
    out.extend(value.chars().map(|c| {
        if c == delimiter || c == '\r' || c == '\n' {
            VALUE_REPLACEMENT
        } else {
            c
        }
    }));
}

/// Writes a LEEF record from raw parts, applying the replacements but no truncation.
/// LEEF 1.0 always uses the tab, whatever `delimiter` says.
///
/// # Panics
///
/// In debug builds, when a key is empty or not ASCII alphanumeric (keys come from the
/// encoder or [`custom_key`], never straight from event data).
pub fn write_record(
    version: LeefVersion,
    delimiter: &Delimiter,
    header: &LeefHeader<'_>,
    attributes: &[(&str, &str)],
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("LEEF:");
    out.push_str(version.as_str());
    out.push('|');
    for field in [
        header.vendor,
        header.product,
        header.version,
        header.event_id,
    ] {
        clean_header(field, &mut out);
        out.push('|');
    }
    let delim = match version {
        LeefVersion::V1 => '\t',
        LeefVersion::V2 => {
            out.push_str(delimiter.as_written());
            out.push('|');
            delimiter.char()
        }
    };
    for (i, (key, value)) in attributes.iter().enumerate() {
        debug_assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric()),
            "LEEF key {key:?} must be alphanumeric"
        );
        if i > 0 {
            out.push(delim);
        }
        out.push_str(key);
        out.push('=');
        clean_value(value, delim, &mut out);
    }
    out
}

/// LEEF `sev` (1..=10): info 1, low 3, medium 5, high 8, critical 10, raised to at least
/// `round(risk_score / 10)` when the event has a risk score; clamped to 1..=10.
pub fn leef_severity(event: &Event) -> u8 {
    severity_1_to_10(event)
}

/// `devTime` in [`DEV_TIME_FORMAT`], e.g. `2026-06-20T12:03:07.123+0000`.
pub fn dev_time(timestamp: DateTime<Utc>) -> String {
    timestamp.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// The EventID: `category.action`, every character other than ASCII alphanumerics, `.`,
/// `_`, `-` and `:` replaced by `_`, at most [`HEADER_MAX_CHARS`] characters.
pub fn event_id(event: &Event) -> String {
    let raw = format!("{}.{}", event.category, event.action);
    truncate_chars(&raw, HEADER_MAX_CHARS)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A custom key from a free-form name: `prefix` followed by each ASCII alphanumeric run of
/// `name` with its first letter upper-cased (`deploy.region` -> `labelDeployRegion`).
/// `None` when `name` has no ASCII letter or digit.
pub fn custom_key(prefix: &str, name: &str) -> Option<String> {
    let mut key = prefix.to_owned();
    let mut any = false;
    for part in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        any = true;
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            key.push(first.to_ascii_uppercase());
            key.extend(chars);
        }
    }
    any.then_some(key)
}

/// Whether an action names a login (`login`, `logon`, `signin`, `sign_in`, `sign-in`).
fn names_login(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    ["login", "logon", "signin", "sign_in", "sign-in", "sign.in"]
        .iter()
        .any(|w| a.contains(w))
}

/// Whether an action names a logout (`logout`, `logoff`, `signout`, `sign_out`, `sign-out`).
fn names_logout(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    [
        "logout", "logoff", "signout", "sign_out", "sign-out", "sign.out",
    ]
    .iter()
    .any(|w| a.contains(w))
}

/// Encodes events as LEEF lines for QRadar.
///
/// Attributes written (absent or empty values are left out):
///
/// | key | from |
/// |---|---|
/// | `devTime`, `devTimeFormat` | timestamp, always both |
/// | `cat` | category |
/// | `sev` | severity 1..10 (see [`leef_severity`]) |
/// | `src`, `identSrc` | source IP (v4 or v6) |
/// | `usrName` | user name, else (when absent or empty) user id |
/// | `url`, `domain` | observables |
/// | `resource` | `resource_type/resource_id` |
/// | `policy` | attribute `policy`, when a string |
/// | `isLoginEvent=true` | category authentication (not a logout), or an action naming a login |
/// | `isLogoutEvent=true` | an action naming a logout |
/// | `eventId`, `action`, `outcome` | event id, action, outcome |
/// | `userId`, `userAgent`, `fileHash` | observables |
/// | `weddingId`, `weddingPhase` | wedding id (event, else enrichment), wedding phase |
/// | `riskScore`, `recordCount` | numbers from the event |
/// | `threatScore`, `threatVerdict` | threat intelligence |
/// | `patterns` | matched attack patterns, comma separated |
/// | `vulnerabilityIds`, `vulnerabilityCvss`, `vulnerabilityPort`, `vulnerabilityScanner` | open findings on the target (CVE ids, else plugin ids; the top match's CVSS, port, scanner) |
/// | `msg` | message (≤ 1023 characters) |
/// | `label<Name>` | each label, key sanitised with [`custom_key`]; clashes are left out |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeefEncoder {
    version: LeefVersion,
    delimiter: Delimiter,
    vendor: String,
    product: String,
    product_version: String,
}

impl Default for LeefEncoder {
    fn default() -> Self {
        Self::new(
            crate::config::DEFAULT_VENDOR,
            crate::config::DEFAULT_PRODUCT,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

impl LeefEncoder {
    /// A LEEF 2.0 encoder with the `^` delimiter and these header fields.
    pub fn new(
        vendor: impl Into<String>,
        product: impl Into<String>,
        product_version: impl Into<String>,
    ) -> Self {
        Self {
            version: LeefVersion::V2,
            delimiter: Delimiter::caret(),
            vendor: vendor.into(),
            product: product.into(),
            product_version: product_version.into(),
        }
    }

    /// Writes LEEF 2.0 records with this delimiter.
    pub fn v2(mut self, delimiter: Delimiter) -> Self {
        self.version = LeefVersion::V2;
        self.delimiter = delimiter;
        self
    }

    /// Writes LEEF 1.0 records (tab-delimited).
    pub fn v1(mut self) -> Self {
        self.version = LeefVersion::V1;
        self.delimiter = Delimiter::tab();
        self
    }

    /// The LEEF version written.
    pub fn version(&self) -> LeefVersion {
        self.version
    }

    /// The delimiter written between attributes.
    pub fn delimiter(&self) -> &Delimiter {
        &self.delimiter
    }

    /// The attributes of an event as key/value pairs, truncated but not yet cleaned.
    pub fn attributes(&self, event: &Event) -> Vec<(String, String)> {
        let mut a = Attributes::default();
        a.push("devTime", dev_time(event.timestamp));
        a.push("devTimeFormat", DEV_TIME_FORMAT);
        a.push("cat", event.category.as_str());
        a.push("sev", leef_severity(event).to_string());
        if let Some(ip) = event.source_ip {
            a.push("src", ip.to_string());
            a.push("identSrc", ip.to_string());
        }
        let user_name = event.user_name.as_deref().filter(|s| !s.is_empty());
        a.opt("usrName", user_name.or(event.user_id.as_deref()));
        a.opt("url", event.url.as_deref());
        a.opt("domain", event.domain.as_deref());
        let resource = match (event.resource_type.as_deref(), event.resource_id.as_deref()) {
            (Some(t), Some(id)) => Some(format!("{t}/{id}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        };
        a.opt("resource", resource.as_deref());
        if let Some(Value::String(policy)) = event.attributes.get("policy") {
            a.push("policy", policy);
        }
        let logout = names_logout(&event.action);
        if !logout && (event.category == Category::Authentication || names_login(&event.action)) {
            a.push("isLoginEvent", "true");
        }
        if logout {
            a.push("isLogoutEvent", "true");
        }
        a.push("eventId", &event.id);
        a.push("action", &event.action);
        a.push("outcome", event.outcome.as_str());
        a.opt("userId", event.user_id.as_deref());
        a.opt("userAgent", event.user_agent.as_deref());
        a.opt("fileHash", event.file_hash.as_deref());
        let wedding_id = event.wedding_id.as_deref().or(event
            .enrichment
            .wedding
            .as_ref()
            .map(|w| w.wedding_id.as_str()));
        a.opt("weddingId", wedding_id);
        if let Some(wedding) = &event.enrichment.wedding {
            a.push("weddingPhase", snake_name(&wedding.phase));
        }
        if let Some(risk) = event.risk_score {
            a.push("riskScore", risk.to_string());
        }
        if let Some(count) = event.record_count {
            a.push("recordCount", count.to_string());
        }
        if let Some(threat) = &event.enrichment.threat {
            a.push("threatScore", threat.score.to_string());
            a.push("threatVerdict", snake_name(&threat.verdict));
        }
        if !event.enrichment.patterns.is_empty() {
            let names: Vec<&str> = event
                .enrichment
                .patterns
                .iter()
                .map(|p| p.pattern.as_str())
                .collect();
            a.push("patterns", names.join(","));
        }
        let vulns = &event.enrichment.vulnerabilities;
        if let Some(top) = vulns.first() {
            let ids: Vec<&str> = vulns
                .iter()
                .flat_map(|v| {
                    if v.cves.is_empty() {
                        vec![v.plugin_id.as_str()]
                    } else {
                        v.cves.iter().map(String::as_str).collect()
                    }
                })
                .collect();
            a.push("vulnerabilityIds", ids.join(","));
            if let Some(cvss) = top.cvss {
                a.push("vulnerabilityCvss", format!("{cvss:.1}"));
            }
            a.push("vulnerabilityPort", top.port.to_string());
            a.push("vulnerabilityScanner", &top.scanner);
        }
        a.opt("msg", event.message.as_deref());
        for (name, value) in &event.labels {
            if let Some(key) = custom_key("label", name) {
                a.push_custom(key, value);
            }
        }
        a.0
    }

    /// Encodes one event as one LEEF line (no trailing newline, no raw CR or LF).
    pub fn encode(&self, event: &Event) -> String {
        let id = event_id(event);
        let header = LeefHeader {
            vendor: truncate_chars(&self.vendor, HEADER_MAX_CHARS),
            product: truncate_chars(&self.product, HEADER_MAX_CHARS),
            version: truncate_chars(&self.product_version, HEADER_MAX_CHARS),
            event_id: &id,
        };
        let attributes = self.attributes(event);
        let pairs: Vec<(&str, &str)> = attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        write_record(self.version, &self.delimiter, &header, &pairs)
    }
}

/// The snake_case serde name of a unit enum variant (verdicts, wedding phases).
fn snake_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Collects attributes, dropping empty values, applying the length limits and keeping
/// every key unique.
#[derive(Default)]
struct Attributes(Vec<(String, String)>);

impl Attributes {
    fn push(&mut self, key: &str, value: impl AsRef<str>) {
        self.push_custom(key.to_owned(), value);
    }

    fn push_custom(&mut self, key: String, value: impl AsRef<str>) {
        let value = value.as_ref();
        if value.is_empty() || self.0.iter().any(|(k, _)| *k == key) {
            return;
        }
        let max = if key == "msg" {
            MSG_MAX_CHARS
        } else {
            VALUE_MAX_CHARS
        };
        let value = truncate_chars(value, max).to_owned();
        self.0.push((key, value));
    }

    fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(key, value);
        }
    }
}

#[cfg(test)]
mod tests;

//! Pure CEF encoding: an [`Event`] in, one CEF line out.
//!
//! The line is `CEF:0|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension`.
//!
//! * Header fields escape `\` as `\\` and `|` as `\|` (in one pass, so `\` is escaped
//!   first); `=` is left as is; CR and LF become a space.
//! * Extension values escape `\` as `\\`, `=` as `\=`, CR as `\r` and LF as `\n`; `|` is
//!   left as is. Keys are alphanumeric.
//! * Values are truncated (on character boundaries, before escaping) to the ArcSight limits:
//!   `msg` 1023 characters, `cs1..cs6` 4000, every other extension value 1023, Name 512,
//!   Device Event Class ID 1023, vendor / product / version 63.
//!
//! The result never contains a raw CR or LF, so it is one line whatever the event holds.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::Value;
use vowguard_core::Event;
use vowguard_syslog::severity_1_to_10;
pub use vowguard_syslog::truncate_chars;

/// Longest `msg` extension value, in characters.
pub const MSG_MAX_CHARS: usize = 1023;
/// Longest custom string (`cs1..cs6`) value, in characters.
pub const CUSTOM_STRING_MAX_CHARS: usize = 4000;
/// Longest value of any other extension, in characters.
pub const EXTENSION_MAX_CHARS: usize = 1023;
/// Longest Name header field, in characters.
pub const NAME_MAX_CHARS: usize = 512;
/// Longest Device Event Class ID header field, in characters.
pub const EVENT_CLASS_ID_MAX_CHARS: usize = 1023;
/// Longest Device Vendor / Device Product / Device Version header field, in characters.
pub const DEVICE_FIELD_MAX_CHARS: usize = 63;

/// The seven header fields after `CEF:0`, unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CefHeader<'a> {
    /// Device Vendor.
    pub device_vendor: &'a str,
    /// Device Product.
    pub device_product: &'a str,
    /// Device Version.
    pub device_version: &'a str,
    /// Device Event Class ID (the signature id).
    pub device_event_class_id: &'a str,
    /// Name: a human summary of the event.
    pub name: &'a str,
    /// Severity 0..=10 (0-3 low, 4-6 medium, 7-8 high, 9-10 very high).
    pub severity: u8,
}

/// Escapes one header field: `\` -> `\\`, `|` -> `\|`, CR / LF -> space.
pub fn escape_header(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Escapes one extension value: `\` -> `\\`, `=` -> `\=`, CR -> `\r`, LF -> `\n`.
pub fn escape_extension_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes a CEF record from unescaped parts. Values are escaped but not truncated.
/// The `|` after Severity is always written, even without extensions.
///
/// # Panics
///
/// In debug builds, when a key is empty or not ASCII alphanumeric (keys are constants of
/// the encoder, never event data).
pub fn write_record(header: &CefHeader<'_>, extensions: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("CEF:0|");
    for field in [
        header.device_vendor,
        header.device_product,
        header.device_version,
        header.device_event_class_id,
        header.name,
    ] {
        escape_header(field, &mut out);
        out.push('|');
    }
    let _ = write!(out, "{}|", header.severity.min(10));
    for (i, (key, value)) in extensions.iter().enumerate() {
        debug_assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric()),
            "CEF extension key {key:?} must be alphanumeric"
        );
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push('=');
        escape_extension_value(value, &mut out);
    }
    out
}

/// The CEF severity (0..=10) of an event: info 1, low 3, medium 5, high 8, critical 10,
/// raised to at least `round(risk_score / 10)` when the event has a risk score, clamped to 10.
pub fn cef_severity(event: &Event) -> u8 {
    severity_1_to_10(event)
}

/// The Device Event Class ID: `category.action`, with every character other than ASCII
/// alphanumerics, `.`, `_`, `-` and `:` replaced by `_`, at most 1023 characters.
pub fn event_class_id(event: &Event) -> String {
    let raw = format!("{}.{}", event.category, event.action);
    truncate_chars(&raw, EVENT_CLASS_ID_MAX_CHARS)
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

/// Encodes events as CEF lines for ArcSight.
///
/// Extensions written (absent or empty values are left out):
///
/// | key | from |
/// |---|---|
/// | `rt` | timestamp, epoch milliseconds |
/// | `cat` | category |
/// | `act` | action |
/// | `outcome` | outcome |
/// | `externalId` | event id |
/// | `src` | source IP when IPv4 |
/// | `c6a2` (`c6a2Label=sourceIpv6Address`) | source IP when IPv6 (`src` is IPv4 only) |
/// | `suser` | user name, else (when absent or empty) user id |
/// | `suid` | user id |
/// | `duser` | attribute `target_user` (or `duser`), when a string |
/// | `request` | url |
/// | `requestClientApplication` | user agent |
/// | `fileHash` | file hash |
/// | `msg` | message (≤ 1023 characters) |
/// | `dvchost` | the configured host name |
/// | `cs1` / `cs1Label=weddingId` | wedding id (event, else wedding enrichment) |
/// | `cs2` / `cs2Label=resource` | `resource_type/resource_id` |
/// | `cs3` / `cs3Label=threatVerdict` | threat-intelligence verdict |
/// | `cs4` / `cs4Label=patterns` | matched attack patterns, comma separated |
/// | `cs5` / `cs5Label=weddingPhase` | wedding phase |
/// | `cs6` / `cs6Label=domain` | domain observable |
/// | `cn1` / `cn1Label=riskScore` | risk score 0..100 (numeric) |
/// | `cn2` / `cn2Label=threatScore` | threat score 0..100 (numeric) |
/// | `cn3` / `cn3Label=recordCount` | records touched |
/// | `flexString1` / `flexString1Label=vulnerabilities` | open findings on the target: `CVE-…@443/tcp` (or `plugin:<id>@…`), comma separated |
/// | `cfp1` / `cfp1Label=cvssScore` | the highest CVSS score among them |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CefEncoder {
    device_vendor: String,
    device_product: String,
    device_version: String,
    dvchost: Option<String>,
}

impl Default for CefEncoder {
    fn default() -> Self {
        Self::new(
            crate::config::DEFAULT_DEVICE_VENDOR,
            crate::config::DEFAULT_DEVICE_PRODUCT,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

impl CefEncoder {
    /// An encoder writing these Device Vendor / Product / Version header fields.
    pub fn new(
        device_vendor: impl Into<String>,
        device_product: impl Into<String>,
        device_version: impl Into<String>,
    ) -> Self {
        Self {
            device_vendor: device_vendor.into(),
            device_product: device_product.into(),
            device_version: device_version.into(),
            dvchost: None,
        }
    }

    /// Also writes `dvchost` (the host running vowguard) in every record.
    pub fn with_dvchost(mut self, host: impl Into<String>) -> Self {
        let host = host.into();
        self.dvchost = (!host.is_empty()).then_some(host);
        self
    }

    /// The extension key/value pairs of an event, unescaped and already truncated.
    pub fn extensions(&self, event: &Event) -> Vec<(&'static str, String)> {
        let mut ext = Extensions::default();
        ext.push("rt", event.timestamp.timestamp_millis().to_string());
        ext.push("cat", event.category.as_str());
        ext.push("act", event.action.as_str());
        ext.push("outcome", event.outcome.as_str());
        ext.push("externalId", event.id.as_str());
        match event.source_ip {
            Some(IpAddr::V4(ip)) => ext.push("src", ip.to_string()),
            Some(IpAddr::V6(ip)) => ext.labelled("c6a2", "sourceIpv6Address", ip.to_string()),
            None => {}
        }
        let user_name = event.user_name.as_deref().filter(|s| !s.is_empty());
        ext.opt("suser", user_name.or(event.user_id.as_deref()));
        ext.opt("suid", event.user_id.as_deref());
        let target = ["target_user", "duser"]
            .iter()
            .find_map(|k| match event.attributes.get(*k) {
                Some(Value::String(s)) => Some(s.as_str()),
                _ => None,
            });
        ext.opt("duser", target);
        ext.opt("request", event.url.as_deref());
        ext.opt("requestClientApplication", event.user_agent.as_deref());
        ext.opt("fileHash", event.file_hash.as_deref());
        ext.opt("msg", event.message.as_deref());
        ext.opt("dvchost", self.dvchost.as_deref());

        let wedding_id = event.wedding_id.as_deref().or(event
            .enrichment
            .wedding
            .as_ref()
            .map(|w| w.wedding_id.as_str()));
        if let Some(id) = wedding_id {
            ext.labelled("cs1", "weddingId", id);
        }
        let resource = match (event.resource_type.as_deref(), event.resource_id.as_deref()) {
            (Some(t), Some(id)) => Some(format!("{t}/{id}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        };
        if let Some(resource) = resource {
            ext.labelled("cs2", "resource", resource);
        }
        if let Some(threat) = &event.enrichment.threat {
            let verdict = serde_json::to_value(threat.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            ext.labelled("cs3", "threatVerdict", verdict);
        }
        if !event.enrichment.patterns.is_empty() {
            let names: Vec<&str> = event
                .enrichment
                .patterns
                .iter()
                .map(|p| p.pattern.as_str())
                .collect();
            ext.labelled("cs4", "patterns", names.join(","));
        }
        if let Some(wedding) = &event.enrichment.wedding {
            let phase = serde_json::to_value(wedding.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            ext.labelled("cs5", "weddingPhase", phase);
        }
        if let Some(domain) = event.domain.as_deref() {
            ext.labelled("cs6", "domain", domain);
        }
        if let Some(risk) = event.risk_score {
            ext.labelled("cn1", "riskScore", risk.to_string());
        }
        if let Some(threat) = &event.enrichment.threat {
            ext.labelled("cn2", "threatScore", threat.score.to_string());
        }
        if let Some(count) = event.record_count {
            ext.labelled("cn3", "recordCount", count.to_string());
        }
        let vulns = &event.enrichment.vulnerabilities;
        if !vulns.is_empty() {
            ext.labelled("flexString1", "vulnerabilities", vulnerability_ids(vulns));
            if let Some(top) = vulns.iter().filter_map(|v| v.cvss).max_by(f32::total_cmp) {
                ext.labelled("cfp1", "cvssScore", format!("{top:.1}"));
            }
        }
        ext.0
    }

    /// Encodes one event as one CEF line (no trailing newline, no raw CR or LF).
    pub fn encode(&self, event: &Event) -> String {
        let class_id = event_class_id(event);
        let name = event.summary();
        let header = CefHeader {
            device_vendor: truncate_chars(&self.device_vendor, DEVICE_FIELD_MAX_CHARS),
            device_product: truncate_chars(&self.device_product, DEVICE_FIELD_MAX_CHARS),
            device_version: truncate_chars(&self.device_version, DEVICE_FIELD_MAX_CHARS),
            device_event_class_id: &class_id,
            name: truncate_chars(&name, NAME_MAX_CHARS),
            severity: cef_severity(event),
        };
        let extensions = self.extensions(event);
        let pairs: Vec<(&str, &str)> = extensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        write_record(&header, &pairs)
    }
}

/// Collects extensions, dropping empty values and applying the length limits.
#[derive(Default)]
struct Extensions(Vec<(&'static str, String)>);

impl Extensions {
    fn push(&mut self, key: &'static str, value: impl AsRef<str>) {
        let value = value.as_ref();
        if value.is_empty() {
            return;
        }
        let max = if key.starts_with("cs") && !key.ends_with("Label") {
            CUSTOM_STRING_MAX_CHARS
        } else if key == "msg" {
            MSG_MAX_CHARS
        } else {
            EXTENSION_MAX_CHARS
        };
        self.0.push((key, truncate_chars(value, max).to_owned()));
    }

    fn opt(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(key, value);
        }
    }

    /// A custom field and its label; both are left out when the value is empty.
    fn labelled(&mut self, key: &'static str, label: &'static str, value: impl AsRef<str>) {
        if value.as_ref().is_empty() {
            return;
        }
        self.push(key, value);
        let label_key = match key {
            "cs1" => "cs1Label",
            "cs2" => "cs2Label",
            "cs3" => "cs3Label",
            "cs4" => "cs4Label",
            "cs5" => "cs5Label",
            "cs6" => "cs6Label",
            "cn1" => "cn1Label",
            "cn2" => "cn2Label",
            "cn3" => "cn3Label",
            "c6a2" => "c6a2Label",
            "flexString1" => "flexString1Label",
            "cfp1" => "cfp1Label",
            _ => unreachable!("no label key for {key}"),
        };
        self.push(label_key, label);
    }
}

/// `CVE-2024-3400@443/tcp,plugin:57608@host`: each match's CVE ids (its plugin id when it
/// has none) and where.
pub(crate) fn vulnerability_ids(vulns: &[vowguard_core::VulnerabilityMatch]) -> String {
    let mut out = Vec::new();
    for v in vulns {
        let place = if v.port == 0 {
            "host".to_owned()
        } else {
            format!("{}/{}", v.port, v.protocol)
        };
        if v.cves.is_empty() {
            out.push(format!("plugin:{}@{place}", v.plugin_id));
        } else {
            out.extend(v.cves.iter().map(|c| format!("{c}@{place}")));
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests;

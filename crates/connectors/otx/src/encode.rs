//! The pure parts of the AlienVault OTX enricher: indicator types and URLs, the `general`
//! section parser and the verdict/score rule. No I/O here, so everything is tested with
//! golden bodies and fuzzed.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use vowguard_core::{Error, ProviderVerdict, ThreatIntel, Verdict};
use vowguard_http::reqwest::Url;
use vowguard_http::snippet;

/// The provider name in [`ProviderVerdict::provider`].
pub const PROVIDER: &str = "otx";

/// Pulses from which an indicator is [`Verdict::Malicious`] (one pulse makes it
/// [`Verdict::Suspicious`]).
pub const MALICIOUS_PULSES: u64 = 3;

/// Most categories kept for one indicator (the most frequent across pulses first).
pub const MAX_CATEGORIES: usize = 10;

/// Most actors kept for one indicator.
pub const MAX_ACTORS: usize = 10;

/// Longest actor name kept, in characters.
const MAX_ACTOR_LEN: usize = 128;

/// OTX's indicator types, as written in `/api/v1/indicators/{type}/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtxType {
    /// `IPv4`.
    IPv4,
    /// `IPv6`.
    IPv6,
    /// `domain`: a registered domain (`example.org`).
    Domain,
    /// `hostname`: a name below a domain (`login.example.org`).
    Hostname,
    /// `url`.
    Url,
    /// `file`: an MD5, SHA-1 or SHA-256.
    File,
}

impl OtxType {
    /// The path segment, e.g. `IPv4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IPv4 => "IPv4",
            Self::IPv6 => "IPv6",
            Self::Domain => "domain",
            Self::Hostname => "hostname",
            Self::Url => "url",
            Self::File => "file",
        }
    }

    /// `IPv4` or `IPv6`.
    pub fn for_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::IPv4,
            IpAddr::V6(_) => Self::IPv6,
        }
    }

    /// `domain` for a name with two labels (`example.org`), `hostname` for more
    /// (`login.example.org`). Without a public-suffix list a name under a two-label suffix
    /// (`shop.example.co.uk`... and `example.co.uk` itself) counts as a hostname; OTX answers
    /// both sections for such names.
    pub fn for_domain(domain: &str) -> Self {
        let labels = domain
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .count();
        if labels <= 2 {
            Self::Domain
        } else {
            Self::Hostname
        }
    }
}

/// `{base}/api/v1/indicators/{type}/{value}/general`; `value` is one percent-encoded path
/// segment (every reserved character of a URL, CR and LF included, is escaped; see
/// [`vowguard_enrich::indicator_url`]).
pub fn general_url(base: &Url, kind: OtxType, value: &str) -> Result<Url, Error> {
    let value = match kind {
        OtxType::Domain | OtxType::Hostname => value.trim_end_matches('.').to_ascii_lowercase(),
        OtxType::File => value.to_ascii_lowercase(),
        _ => value.to_owned(),
    };
    vowguard_enrich::indicator_url(
        base,
        &["api", "v1", "indicators", kind.as_str(), &value, "general"],
    )
}

/// The verdict and 0..=100 score for `pulses` pulses: none unknown (`None`), one or two
/// suspicious, three or more malicious; score `min(100, 25 × pulses)` (1 -> 25, 2 -> 50,
/// 3 -> 75, 4+ -> 100), in the band vowguard uses for the verdict.
pub fn verdict_for(pulses: u64) -> Option<(Verdict, u8)> {
    if pulses == 0 {
        return None;
    }
    let verdict = if pulses >= MALICIOUS_PULSES {
        Verdict::Malicious
    } else {
        Verdict::Suspicious
    };
    let score = pulses.saturating_mul(25).min(100) as u8;
    Some((verdict, score))
}

#[derive(Deserialize)]
struct General {
    #[serde(default)]
    pulse_info: Option<PulseInfo>,
    #[serde(default)]
    validation: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct PulseInfo {
    #[serde(default)]
    count: Option<Value>,
    #[serde(default)]
    pulses: Option<Vec<Value>>,
    #[serde(default)]
    related: Option<Value>,
}

/// TLP markings, least restrictive first.
const TLP_ORDER: [&str; 6] = ["clear", "white", "green", "amber", "amber+strict", "red"];

fn tlp_rank(raw: &str) -> Option<(usize, &'static str)> {
    let raw = raw.trim().to_ascii_lowercase();
    let raw = raw.strip_prefix("tlp:").unwrap_or(&raw);
    TLP_ORDER
        .iter()
        .position(|t| *t == raw)
        .map(|i| (i, TLP_ORDER[i]))
}

/// A category name from free text: trimmed, lowercase, whitespace and `_` as `-`, control
/// characters dropped, at most 64 characters; `None` when nothing is left (the shared
/// [`vowguard_enrich::category_slug`]).
pub fn category(raw: &str) -> Option<String> {
    vowguard_enrich::category_slug(raw)
}

/// An actor name from free text: control characters removed, whitespace collapsed, at most
/// 128 characters; `None` when empty.
fn actor(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_ACTOR_LEN)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// OTX writes pulse times without a zone (`2024-05-01T10:00:00.123000`), meaning UTC;
/// RFC 3339 is accepted too.
fn timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// The name of a malware family entry: a string, or an object's `display_name` (else `id`).
fn family_name(entry: &Value) -> Option<&str> {
    match entry {
        Value::String(s) => Some(s),
        Value::Object(o) => o
            .get("display_name")
            .and_then(Value::as_str)
            .or_else(|| o.get("id").and_then(Value::as_str)),
        _ => None,
    }
}

fn count_of(value: Option<&Value>) -> u64 {
    match value {
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .map(|f| f as u64)
            })
            .unwrap_or(0),
        None => 0,
    }
}

/// Parses an `/api/v1/indicators/{type}/{value}/general` answer about `indicator`.
///
/// * `validation` entries (OTX's whitelists: `whitelist`, `alexa`, `majestic`,
///   `false_positive`, ...) make the indicator [`Verdict::Benign`] with score 0, whatever
///   pulses mention it (popular domains appear in many pulses as references).
/// * Otherwise `Ok(None)` (unknown) without pulses, else verdict and score per
///   [`verdict_for`] on `pulse_info.count` (or the number of pulses listed, when larger).
/// * Actors: each pulse's non-empty `adversary` and the `related` adversaries, at most
///   [`MAX_ACTORS`]. Categories: pulse `tags` and malware family names, the most frequent
///   first, at most [`MAX_CATEGORIES`]. TLP: the most restrictive pulse `TLP`, as
///   `tlp:<colour>`. `first_seen` / `last_seen`: the earliest pulse `created` and the latest
///   `modified`.
/// * A body that is not the documented JSON is an `Unavailable` error quoting it.
pub fn parse_general(body: &str, indicator: &str) -> Result<Option<ThreatIntel>, Error> {
    let general: General = serde_json::from_str(body).map_err(|e| {
        Error::unavailable(format!("unreadable OTX response ({e}): {}", snippet(body)))
    })?;
    let validated = general.validation.as_ref().is_some_and(|v| !v.is_empty());
    let info = general.pulse_info;
    let pulses: Vec<Value> = info
        .as_ref()
        .and_then(|i| i.pulses.clone())
        .unwrap_or_default();
    let count = count_of(info.as_ref().and_then(|i| i.count.as_ref())).max(pulses.len() as u64);

    let provider = |verdict, score| ProviderVerdict {
        provider: PROVIDER.to_owned(),
        indicator: indicator.to_owned(),
        verdict,
        score: Some(score),
    };
    if validated {
        return Ok(Some(ThreatIntel {
            verdict: Verdict::Benign,
            score: 0,
            providers: vec![provider(Verdict::Benign, 0)],
            ..ThreatIntel::default()
        }));
    }
    let Some((verdict, score)) = verdict_for(count) else {
        return Ok(None);
    };

    // category -> (mentions, first mention), to rank by frequency then first appearance.
    let mut frequency: HashMap<String, (usize, usize)> = HashMap::new();
    let mut mentions = 0_usize;
    let mut note = |raw: &str| {
        if let Some(c) = category(raw) {
            frequency.entry(c).or_insert((0, mentions)).0 += 1;
            mentions += 1;
        }
    };
    let mut actors: Vec<String> = Vec::new();
    let add_actor = |raw: &str, actors: &mut Vec<String>| match actor(raw) {
        Some(a)
            if actors.len() < MAX_ACTORS && !actors.iter().any(|x| x.eq_ignore_ascii_case(&a)) =>
        {
            actors.push(a);
        }
        _ => {}
    };
    let mut tlp: Option<(usize, &'static str)> = None;
    let mut first_seen: Option<DateTime<Utc>> = None;
    let mut last_seen: Option<DateTime<Utc>> = None;
    for pulse in &pulses {
        for tag in pulse
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(tag) = tag.as_str() {
                note(tag);
            }
        }
        for family in pulse
            .get("malware_families")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = family_name(family) {
                note(name);
            }
        }
        if let Some(adversary) = pulse.get("adversary").and_then(Value::as_str) {
            add_actor(adversary, &mut actors);
        }
        let marking = pulse
            .get("TLP")
            .or_else(|| pulse.get("tlp"))
            .and_then(Value::as_str)
            .and_then(tlp_rank);
        if marking.is_some_and(|m| tlp.is_none_or(|t| m.0 > t.0)) {
            tlp = marking;
        }
        if let Some(t) = timestamp(pulse.get("created")) {
            first_seen = Some(first_seen.map_or(t, |f| f.min(t)));
        }
        if let Some(t) =
            timestamp(pulse.get("modified")).or_else(|| timestamp(pulse.get("created")))
        {
            last_seen = Some(last_seen.map_or(t, |l| l.max(t)));
        }
    }
    let related = info.as_ref().and_then(|i| i.related.as_ref());
    for source in ["alienvault", "other"] {
        let adversaries = related
            .and_then(|r| r.get(source))
            .and_then(|s| s.get("adversary"))
            .and_then(Value::as_array);
        for adversary in adversaries.into_iter().flatten() {
            if let Some(a) = adversary.as_str() {
                add_actor(a, &mut actors);
            }
        }
    }
    let mut ranked: Vec<(String, (usize, usize))> = frequency.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    let categories = ranked
        .into_iter()
        .take(MAX_CATEGORIES)
        .map(|(c, _)| c)
        .collect();

    Ok(Some(ThreatIntel {
        verdict,
        score,
        providers: vec![provider(verdict, score)],
        categories,
        actors,
        tlp: tlp.map(|(_, t)| format!("tlp:{t}")),
        first_seen,
        last_seen,
    }))
}

/// The vendor's reason from an error body `{"detail": "..."}`; the raw body otherwise.
pub fn error_reason(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use vowguard_core::ErrorKind;

    /// An IPv4 `general` answer with three pulses, shaped like OTX's.
    const THREE_PULSES: &str = r#"{
      "whois": "http://whois.domaintools.com/203.0.113.7",
      "reputation": 0,
      "indicator": "203.0.113.7",
      "type": "IPv4",
      "type_title": "IPv4",
      "base_indicator": {"id": 3954871, "indicator": "203.0.113.7", "type": "IPv4", "access_type": "public"},
      "pulse_info": {
        "count": 3,
        "pulses": [
          {"id": "5f1a", "name": "SSH brute force sources", "description": "", "author_name": "honeypot-bot",
           "created": "2024-03-01T08:00:00.123000", "modified": "2024-05-10T12:30:00.000000",
           "tags": ["SSH", "bruteforce", "honeypot"], "references": [], "public": 1, "adversary": "",
           "targeted_countries": [], "malware_families": [], "attack_ids": [{"id": "T1110", "name": "Brute Force", "display_name": "T1110 - Brute Force"}],
           "industries": [], "TLP": "white", "indicator_count": 5000},
          {"id": "5f1b", "name": "Fancy Bear infrastructure", "description": "C2 servers",
           "created": "2023-11-20T10:00:00", "modified": "2024-01-02T00:00:00",
           "tags": ["apt", "SSH"], "adversary": "APT 28",
           "malware_families": [{"id": "X-Agent", "display_name": "X-Agent", "target": null}],
           "TLP": "amber"},
          {"id": "5f1c", "name": "Botnet", "created": "2024-04-04T04:04:04", "modified": "2024-04-05T04:04:04",
           "tags": ["bruteforce"], "adversary": "apt 28", "malware_families": ["Mirai"], "TLP": "green"}
        ],
        "references": [],
        "related": {
          "alienvault": {"adversary": [], "malware_families": [], "industries": []},
          "other": {"adversary": ["APT 28", "Sandworm Team"], "malware_families": ["Mirai", "X-Agent"], "industries": []}
        }
      },
      "false_positive": [],
      "validation": [],
      "asn": "AS64500 Example Hosting",
      "country_code": "NL"
    }"#;

    #[test]
    fn three_pulses_are_malicious_with_attribution() {
        let intel = parse_general(THREE_PULSES, "203.0.113.7").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Malicious, 75));
        assert_eq!(intel.actors, ["APT 28", "Sandworm Team"]);
        // ssh and bruteforce twice each (first mentioned first), then once each in order.
        assert_eq!(
            intel.categories,
            ["ssh", "bruteforce", "honeypot", "apt", "x-agent", "mirai"]
        );
        assert_eq!(intel.tlp.as_deref(), Some("tlp:amber"));
        assert_eq!(
            intel.first_seen,
            Some(Utc.with_ymd_and_hms(2023, 11, 20, 10, 0, 0).unwrap())
        );
        assert_eq!(
            intel.last_seen,
            Some(Utc.with_ymd_and_hms(2024, 5, 10, 12, 30, 0).unwrap())
        );
        assert_eq!(
            intel.providers,
            [ProviderVerdict {
                provider: "otx".into(),
                indicator: "203.0.113.7".into(),
                verdict: Verdict::Malicious,
                score: Some(75),
            }]
        );
    }

    #[test]
    fn one_pulse_is_suspicious() {
        let body = r#"{"indicator":"evil.example","pulse_info":{"count":1,"pulses":[{"name":"Phishing kit",
            "tags":["phishing"],"adversary":"","TLP":"red","created":"2024-01-01T00:00:00"}]},"validation":[]}"#;
        let intel = parse_general(body, "evil.example").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Suspicious, 25));
        assert!(intel.actors.is_empty());
        assert_eq!(intel.categories, ["phishing"]);
        assert_eq!(intel.tlp.as_deref(), Some("tlp:red"));
        assert_eq!(intel.first_seen, intel.last_seen);
    }

    #[test]
    fn count_beyond_listed_pulses_counts() {
        let body = r#"{"pulse_info":{"count":57,"pulses":[{"name":"a"}]}}"#;
        let intel = parse_general(body, "x").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Malicious, 100));
    }

    #[test]
    fn no_pulses_is_unknown() {
        let body = r#"{"indicator":"8.8.8.8","type":"IPv4","reputation":0,
            "pulse_info":{"count":0,"pulses":[],"references":[],"related":{}},"false_positive":[],"validation":[]}"#;
        assert_eq!(parse_general(body, "8.8.8.8").unwrap(), None);
        assert_eq!(parse_general("{}", "x").unwrap(), None);
    }

    #[test]
    fn validated_is_benign_even_with_pulses() {
        let body = r#"{"indicator":"google.com","pulse_info":{"count":50,"pulses":[{"name":"refs","tags":["x"],"adversary":"Someone"}]},
            "validation":[{"source":"whitelist","message":"Whitelisted domain google.com","name":"Whitelisted domain"},
                          {"source":"alexa","message":"Alexa rank: #1","name":"Listed on Alexa"}]}"#;
        let intel = parse_general(body, "google.com").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Benign, 0));
        assert!(intel.categories.is_empty() && intel.actors.is_empty());
        assert_eq!(intel.providers[0].verdict, Verdict::Benign);
    }

    #[test]
    fn malformed_bodies_are_clear_errors() {
        for body in [
            "",
            "<html>504</html>",
            "[1,2]",
            "{\"pulse_info\":",
            "{\"pulse_info\":{\"pulses\":{}}}",
            "{\"validation\":\"yes\"}",
        ] {
            let e = parse_general(body, "x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{body}");
            assert!(e.to_string().contains("OTX"), "{e}");
        }
    }

    #[test]
    fn types_and_urls() {
        assert_eq!(
            OtxType::for_ip("203.0.113.7".parse().unwrap()),
            OtxType::IPv4
        );
        assert_eq!(
            OtxType::for_ip("2001:db8::1".parse().unwrap()),
            OtxType::IPv6
        );
        assert_eq!(OtxType::for_domain("example.org"), OtxType::Domain);
        assert_eq!(OtxType::for_domain("example.org."), OtxType::Domain);
        assert_eq!(OtxType::for_domain("login.example.org"), OtxType::Hostname);
        let base = Url::parse("https://otx.alienvault.com").unwrap();
        let cases = [
            (
                OtxType::IPv4,
                "203.0.113.7",
                "https://otx.alienvault.com/api/v1/indicators/IPv4/203.0.113.7/general",
            ),
            (
                OtxType::IPv6,
                "2001:db8::1",
                "https://otx.alienvault.com/api/v1/indicators/IPv6/2001:db8::1/general",
            ),
            (
                OtxType::Domain,
                "Evil.Example.",
                "https://otx.alienvault.com/api/v1/indicators/domain/evil.example/general",
            ),
            (
                OtxType::File,
                "ABCDEF",
                "https://otx.alienvault.com/api/v1/indicators/file/abcdef/general",
            ),
            (
                OtxType::Url,
                "http://evil.example/a/b?c=d#e",
                "https://otx.alienvault.com/api/v1/indicators/url/http:%2F%2Fevil.example%2Fa%2Fb%3Fc%3Dd%23e/general",
            ),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(general_url(&base, kind, value).unwrap().as_str(), expected);
        }
        let base = Url::parse("http://127.0.0.1:1/otx/").unwrap();
        assert_eq!(
            general_url(&base, OtxType::IPv4, "203.0.113.7")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/otx/api/v1/indicators/IPv4/203.0.113.7/general"
        );
    }

    #[test]
    fn verdict_table() {
        assert_eq!(verdict_for(0), None);
        assert_eq!(verdict_for(1), Some((Verdict::Suspicious, 25)));
        assert_eq!(verdict_for(2), Some((Verdict::Suspicious, 50)));
        assert_eq!(verdict_for(3), Some((Verdict::Malicious, 75)));
        assert_eq!(verdict_for(u64::MAX), Some((Verdict::Malicious, 100)));
    }

    #[test]
    fn tlp_and_text_cleaning() {
        assert_eq!(tlp_rank("WHITE"), Some((1, "white")));
        assert_eq!(tlp_rank("tlp:amber+strict"), Some((4, "amber+strict")));
        assert_eq!(tlp_rank("purple"), None);
        assert_eq!(actor("  APT\r\n 28\u{0}  "), Some("APT 28".into()));
        assert_eq!(actor(" \t "), None);
        assert_eq!(category("Cobalt Strike"), Some("cobalt-strike".into()));
    }

    #[test]
    fn error_reasons() {
        assert_eq!(
            error_reason(r#"{"detail": "Authentication required"}"#),
            "Authentication required"
        );
        assert_eq!(error_reason("nope"), "nope");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 :.+_-]{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("pulse_info".to_owned()),
                            Just("pulses".to_owned()),
                            Just("count".to_owned()),
                            Just("validation".to_owned()),
                            Just("tags".to_owned()),
                            Just("adversary".to_owned()),
                            Just("malware_families".to_owned()),
                            Just("display_name".to_owned()),
                            Just("TLP".to_owned()),
                            Just("created".to_owned()),
                            Just("modified".to_owned()),
                            Just("related".to_owned()),
                            Just("other".to_owned()),
                            "[a-z_]{1,8}",
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn garbage_never_panics(body in ".{0,200}") {
            let _ = parse_general(&body, "x");
            let _ = error_reason(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value(), pulses in prop::collection::vec(json_value(), 0..4)) {
            let _ = parse_general(&value.to_string(), "x");
            let wrapped = serde_json::json!({"pulse_info": {"count": 1, "pulses": pulses, "related": value}}).to_string();
            if let Ok(Some(intel)) = parse_general(&wrapped, "x") {
                prop_assert!(intel.score <= 100);
                prop_assert!(intel.categories.len() <= MAX_CATEGORIES);
                prop_assert!(intel.actors.len() <= MAX_ACTORS);
                prop_assert!(intel.actors.iter().all(|a| !a.chars().any(char::is_control)));
            }
        }
    }
}

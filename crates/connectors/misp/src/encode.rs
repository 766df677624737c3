//! Pure request building and response interpretation for MISP.
//!
//! * [`search_body`]: the `attributes/restSearch` body for one indicator;
//! * [`sighting_body`]: the `sightings/add` body;
//! * [`parse_attributes`]: the response's attributes (string ids and timestamps accepted);
//! * [`intel_from_attributes`]: verdict, score, categories, actors, TLP and first/last seen.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, ProviderVerdict, ThreatIntel, Verdict};
use vowguard_enrich::{Indicator, IndicatorKind, tlp_rank};

/// The provider name recorded in [`ProviderVerdict::provider`].
pub const PROVIDER: &str = "misp";
/// Most attributes asked for per lookup.
pub const SEARCH_LIMIT: u32 = 50;
/// The `source` of sightings vowguard reports.
pub const SIGHTING_SOURCE: &str = "vowguard";
/// Score of a Malicious answer from one event; each further event adds 1, up to 100.
pub const MALICIOUS_SCORE: u8 = 90;
/// Score of a Suspicious answer (attributes known, none flagged `to_ids`).
pub const SUSPICIOUS_SCORE: u8 = 50;
/// Score of a Benign answer (every attribute tagged as a false positive).
pub const BENIGN_SCORE: u8 = 5;
/// Most categories or actors kept from one answer.
const MAX_LABELS: usize = 20;
/// Longest category or actor name kept, in characters.
const MAX_LABEL_CHARS: usize = 200;

/// The MISP attribute types searched for an indicator.
///
/// IP: `ip-src`, `ip-dst`, `ip-src|port`, `ip-dst|port`; domain: `domain`, `hostname`,
/// `domain|ip`; URL: `url`, `uri`, `link`; file hash: `md5`, `sha1` or `sha256` by length.
pub fn misp_types(indicator: &Indicator) -> &'static [&'static str] {
    match indicator.kind {
        IndicatorKind::Ip => &["ip-src", "ip-dst", "ip-src|port", "ip-dst|port"],
        IndicatorKind::Domain => &["domain", "hostname", "domain|ip"],
        IndicatorKind::Url => &["url", "uri", "link"],
        IndicatorKind::FileHash => match indicator.value.len() {
            32 => &["md5"],
            40 => &["sha1"],
            _ => &["sha256"],
        },
    }
}

/// The body of `POST /attributes/restSearch`, in MISP's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchBody<'a> {
    /// Always `json`.
    #[serde(rename = "returnFormat")]
    pub return_format: &'static str,
    /// The indicator's value.
    pub value: &'a str,
    /// Attribute types searched ([`misp_types`]).
    #[serde(rename = "type")]
    pub types: &'static [&'static str],
    /// `true` with `to_ids_only`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ids: Option<bool>,
    /// Always true: event tags are merged into each attribute's `Tag` list.
    #[serde(rename = "includeEventTags")]
    pub include_event_tags: bool,
    /// [`SEARCH_LIMIT`].
    pub limit: u32,
}

/// The restSearch body for `indicator`.
pub fn search_body(indicator: &Indicator, to_ids_only: bool) -> Vec<u8> {
    let body = SearchBody {
        return_format: "json",
        value: &indicator.value,
        types: misp_types(indicator),
        to_ids: to_ids_only.then_some(true),
        include_event_tags: true,
        limit: SEARCH_LIMIT,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body of `POST /sightings/add` for `indicator`.
pub fn sighting_body(indicator: &Indicator) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "value": indicator.value,
        "source": SIGHTING_SOURCE,
    }))
    .unwrap_or_default()
}

/// A MISP tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    /// The tag name, e.g. `tlp:amber` or `misp-galaxy:threat-actor="APT 28"`.
    pub name: String,
}

/// The parent event summary MISP sometimes includes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct EventInfo {
    /// The event's title.
    #[serde(default)]
    pub info: Option<String>,
}

/// One attribute of a restSearch answer. MISP sends ids and timestamps as strings; numbers
/// are accepted too.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Attribute {
    /// Attribute id.
    #[serde(default, deserialize_with = "flex_string")]
    pub id: Option<String>,
    /// Id of the event the attribute belongs to.
    #[serde(default, deserialize_with = "flex_string")]
    pub event_id: Option<String>,
    /// MISP category, e.g. `Network activity`.
    #[serde(default)]
    pub category: Option<String>,
    /// MISP type, e.g. `ip-dst`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The attribute's value.
    #[serde(default)]
    pub value: Option<String>,
    /// Whether the attribute is meant for detection.
    #[serde(default, deserialize_with = "flex_bool")]
    pub to_ids: bool,
    /// Last change, epoch seconds.
    #[serde(default, deserialize_with = "flex_i64")]
    pub timestamp: Option<i64>,
    /// First seen (ISO 8601) or null.
    #[serde(default)]
    pub first_seen: Option<String>,
    /// Last seen (ISO 8601) or null.
    #[serde(default)]
    pub last_seen: Option<String>,
    /// Attribute tags, with the event's tags merged in.
    #[serde(default, rename = "Tag")]
    pub tags: Vec<Tag>,
    /// The event summary, when included.
    #[serde(default, rename = "Event")]
    pub event: Option<EventInfo>,
}

fn flex_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn flex_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    })
}

fn flex_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Ok(b),
        serde_json::Value::Null => Ok(false),
        serde_json::Value::Number(n) => Ok(n.as_i64().unwrap_or(0) != 0),
        serde_json::Value::String(s) => Ok(matches!(s.trim(), "1" | "true")),
        other => Err(de::Error::custom(format!(
            "to_ids: expected a bool, got {other}"
        ))),
    }
}

#[derive(Deserialize)]
struct Envelope {
    response: serde_json::Value,
}

#[derive(Deserialize)]
struct AttributeList {
    #[serde(default, rename = "Attribute")]
    attributes: Vec<Attribute>,
}

fn malformed(detail: impl std::fmt::Display) -> Error {
    Error::rejected(format!(
        "MISP attribute search answered with malformed JSON: {}",
        vowguard_http::snippet(&detail.to_string())
    ))
}

/// The attributes of a restSearch answer `{"response":{"Attribute":[...]}}` (an empty
/// `"response": []` is accepted as no attributes). Malformed JSON is a
/// [`vowguard_core::ErrorKind::Rejected`] error saying so.
pub fn parse_attributes(body: &[u8]) -> Result<Vec<Attribute>, Error> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(malformed)?;
    match envelope.response {
        serde_json::Value::Array(items) if items.is_empty() => Ok(Vec::new()),
        serde_json::Value::Object(_) => serde_json::from_value::<AttributeList>(envelope.response)
            .map(|l| l.attributes)
            .map_err(malformed),
        other => Err(malformed(format!(
            "`response` is {}, expected an object with `Attribute`",
            kind_of(&other)
        ))),
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a non-empty array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses a MISP ISO 8601 time (`2021-04-08T10:20:30.123456+00:00`; without an offset it is
/// taken as UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ]
    .iter()
    .find_map(|fmt| {
        DateTime::parse_from_str(text, fmt)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(text, fmt)
                    .ok()
                    .map(|t| t.and_utc())
            })
    })
}

/// Epoch seconds as a time.
pub fn epoch(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

/// Splits `misp-galaxy:<galaxy>="<cluster>"` into galaxy and cluster (quotes stripped).
pub fn galaxy_cluster(tag: &str) -> Option<(&str, &str)> {
    let rest = tag.trim().strip_prefix("misp-galaxy:")?;
    let (galaxy, cluster) = rest.split_once('=')?;
    let cluster = cluster.trim();
    let cluster = cluster
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .unwrap_or(cluster)
        .trim();
    (!galaxy.is_empty() && !cluster.is_empty()).then_some((galaxy.trim(), cluster))
}

fn push_label(list: &mut Vec<String>, label: &str) {
    let label: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_LABEL_CHARS)
        .collect();
    let label = label.trim();
    if !label.is_empty() && list.len() < MAX_LABELS && !list.iter().any(|l| l == label) {
        list.push(label.to_owned());
    }
}

/// Interprets a restSearch answer about `indicator`.
///
/// * no attributes: `None` (unknown, not benign);
/// * attributes tagged with one of `benign_tags` (case-insensitive) are known false
///   positives: if every attribute is one, the verdict is Benign (score [`BENIGN_SCORE`]);
/// * otherwise, among the other attributes: any flagged `to_ids` gives Malicious (score
///   [`MALICIOUS_SCORE`] plus one per further distinct event with such an attribute, at most
///   100), else Suspicious ([`SUSPICIOUS_SCORE`]);
/// * categories: each attribute's `category` and the cluster of every `misp-galaxy:*` tag
///   except threat actors; actors: `misp-galaxy:threat-actor="..."` clusters;
/// * TLP: the most restrictive `tlp:*` tag ([`tlp_rank`]);
/// * first/last seen: the earliest `first_seen` and latest `last_seen` (an attribute
///   without them counts with its `timestamp`).
pub fn intel_from_attributes(
    attributes: &[Attribute],
    indicator: &Indicator,
    benign_tags: &[String],
) -> Option<ThreatIntel> {
    if attributes.is_empty() {
        return None;
    }
    let is_benign = |a: &Attribute| {
        a.tags.iter().any(|t| {
            benign_tags
                .iter()
                .any(|b| b.trim().eq_ignore_ascii_case(t.name.trim()))
        })
    };
    let relevant: Vec<&Attribute> = attributes.iter().filter(|a| !is_benign(a)).collect();
    let ids: Vec<&Attribute> = relevant.iter().copied().filter(|a| a.to_ids).collect();
    let (verdict, score) = if relevant.is_empty() {
        (Verdict::Benign, BENIGN_SCORE)
    } else if ids.is_empty() {
        (Verdict::Suspicious, SUSPICIOUS_SCORE)
    } else {
        let mut events: Vec<&str> = ids.iter().filter_map(|a| a.event_id.as_deref()).collect();
        events.sort_unstable();
        events.dedup();
        let extra = u8::try_from(events.len().saturating_sub(1).min(10)).unwrap_or(10);
        (Verdict::Malicious, MALICIOUS_SCORE + extra)
    };

    let mut intel = ThreatIntel {
        verdict,
        score,
        providers: vec![ProviderVerdict {
            provider: PROVIDER.to_owned(),
            indicator: indicator.value.clone(),
            verdict,
            score: Some(score),
        }],
        ..ThreatIntel::default()
    };
    let mut tlp: Option<(u8, String)> = None;
    for attribute in attributes {
        if let Some(category) = &attribute.category {
            push_label(&mut intel.categories, category);
        }
        for tag in &attribute.tags {
            if let Some(rank) = tlp_rank(&tag.name) {
                if tlp.as_ref().is_none_or(|(best, _)| rank > *best) {
                    tlp = Some((rank, tag.name.trim().to_ascii_lowercase()));
                }
            } else if let Some((galaxy, cluster)) = galaxy_cluster(&tag.name) {
                if galaxy == "threat-actor" {
                    push_label(&mut intel.actors, cluster);
                } else {
                    push_label(&mut intel.categories, cluster);
                }
            }
        }
        let stamp = attribute.timestamp.and_then(epoch);
        let first = attribute
            .first_seen
            .as_deref()
            .and_then(parse_time)
            .or(stamp);
        let last = attribute
            .last_seen
            .as_deref()
            .and_then(parse_time)
            .or(stamp);
        if let Some(first) = first {
            intel.first_seen = Some(intel.first_seen.map_or(first, |f| f.min(first)));
        }
        if let Some(last) = last {
            intel.last_seen = Some(intel.last_seen.map_or(last, |l| l.max(last)));
        }
    }
    intel.tlp = tlp.map(|(_, name)| name);
    Some(intel)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip() -> Indicator {
        Indicator::new(IndicatorKind::Ip, "203.0.113.7")
    }

    #[test]
    fn search_body_golden() {
        assert_eq!(
            String::from_utf8(search_body(&ip(), false)).unwrap(),
            r#"{"returnFormat":"json","value":"203.0.113.7","type":["ip-src","ip-dst","ip-src|port","ip-dst|port"],"includeEventTags":true,"limit":50}"#
        );
        assert_eq!(
            String::from_utf8(search_body(&ip(), true)).unwrap(),
            r#"{"returnFormat":"json","value":"203.0.113.7","type":["ip-src","ip-dst","ip-src|port","ip-dst|port"],"to_ids":true,"includeEventTags":true,"limit":50}"#
        );
        assert_eq!(
            String::from_utf8(sighting_body(&ip())).unwrap(),
            r#"{"source":"vowguard","value":"203.0.113.7"}"#
        );
    }

    #[test]
    fn hash_types_by_length() {
        let hash = |n| Indicator::new(IndicatorKind::FileHash, "a".repeat(n));
        assert_eq!(misp_types(&hash(32)), ["md5"]);
        assert_eq!(misp_types(&hash(40)), ["sha1"]);
        assert_eq!(misp_types(&hash(64)), ["sha256"]);
        assert_eq!(
            misp_types(&Indicator::new(IndicatorKind::Domain, "x.example")),
            ["domain", "hostname", "domain|ip"]
        );
        assert_eq!(
            misp_types(&Indicator::new(IndicatorKind::Url, "https://x.example/")),
            ["url", "uri", "link"]
        );
    }

    const HIT: &str = r#"{"response":{"Attribute":[
        {"id":"12345","event_id":"77","object_id":"0","category":"Network activity","type":"ip-dst",
         "value":"203.0.113.7","to_ids":true,"timestamp":"1617875568","first_seen":null,"last_seen":null,
         "deleted":false,"Event":{"id":"77","info":"Phishing wave","org_id":"1"},
         "Tag":[{"id":"3","name":"tlp:green","inherited":1},
                {"id":"9","name":"misp-galaxy:threat-actor=\"APT 28\"","inherited":1},
                {"name":"misp-galaxy:mitre-attack-pattern=\"Brute Force - T1110\""}]},
        {"id":"12346","event_id":"78","category":"Payload delivery","type":"ip-src","value":"203.0.113.7",
         "to_ids":false,"timestamp":"1617000000","first_seen":"2021-01-02T03:04:05.000000+00:00",
         "last_seen":"2021-05-06T07:08:09+02:00",
         "Tag":[{"name":"TLP:AMBER"},{"name":"misp-galaxy:threat-actor=\"Sofacy\""}]}
    ]}}"#;

    #[test]
    fn parses_string_ids_and_timestamps() {
        let attrs = parse_attributes(HIT.as_bytes()).unwrap();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].id.as_deref(), Some("12345"));
        assert_eq!(attrs[0].event_id.as_deref(), Some("77"));
        assert_eq!(attrs[0].timestamp, Some(1_617_875_568));
        assert!(attrs[0].to_ids);
        assert_eq!(
            attrs[0].event.as_ref().unwrap().info.as_deref(),
            Some("Phishing wave")
        );
        let numeric = parse_attributes(
            br#"{"response":{"Attribute":[{"id":5,"event_id":6,"timestamp":7,"to_ids":"1"}]}}"#,
        )
        .unwrap();
        assert_eq!(numeric[0].id.as_deref(), Some("5"));
        assert_eq!(numeric[0].timestamp, Some(7));
        assert!(numeric[0].to_ids);
    }

    #[test]
    fn intel_golden() {
        let attrs = parse_attributes(HIT.as_bytes()).unwrap();
        let intel = intel_from_attributes(&attrs, &ip(), &["false-positive".into()]).unwrap();
        assert_eq!(intel.verdict, Verdict::Malicious);
        assert_eq!(intel.score, 90, "one event with a to_ids attribute");
        assert_eq!(intel.tlp.as_deref(), Some("tlp:amber"));
        assert_eq!(intel.actors, vec!["APT 28", "Sofacy"]);
        assert_eq!(
            intel.categories,
            vec![
                "Network activity",
                "Brute Force - T1110",
                "Payload delivery"
            ]
        );
        assert_eq!(
            intel.first_seen,
            Some(Utc.with_ymd_and_hms(2021, 1, 2, 3, 4, 5).unwrap())
        );
        // max(1617875568 = 2021-04-08T09:52:48Z, 2021-05-06T05:08:09Z)
        assert_eq!(
            intel.last_seen,
            Some(Utc.with_ymd_and_hms(2021, 5, 6, 5, 8, 9).unwrap())
        );
        assert_eq!(
            intel.providers,
            vec![ProviderVerdict {
                provider: "misp".into(),
                indicator: "203.0.113.7".into(),
                verdict: Verdict::Malicious,
                score: Some(90),
            }]
        );
    }

    fn attr(event: &str, to_ids: bool, tags: &[&str]) -> Attribute {
        Attribute {
            event_id: Some(event.into()),
            to_ids,
            tags: tags.iter().map(|t| Tag { name: (*t).into() }).collect(),
            ..Attribute::default()
        }
    }

    #[test]
    fn verdicts() {
        let benign = ["false-positive".to_owned()];
        let v = |attrs: &[Attribute]| {
            intel_from_attributes(attrs, &ip(), &benign).map(|i| (i.verdict, i.score))
        };
        assert_eq!(v(&[]), None);
        assert_eq!(v(&[attr("1", false, &[])]), Some((Verdict::Suspicious, 50)));
        assert_eq!(v(&[attr("1", true, &[])]), Some((Verdict::Malicious, 90)));
        assert_eq!(
            v(&[
                attr("1", true, &[]),
                attr("2", true, &[]),
                attr("2", true, &[])
            ]),
            Some((Verdict::Malicious, 91))
        );
        let many: Vec<_> = (0..30).map(|i| attr(&i.to_string(), true, &[])).collect();
        assert_eq!(v(&many), Some((Verdict::Malicious, 100)));
        assert_eq!(
            v(&[attr("1", true, &["False-Positive"])]),
            Some((Verdict::Benign, 5))
        );
        assert_eq!(
            v(&[attr("1", true, &["false-positive"]), attr("2", false, &[])]),
            Some((Verdict::Suspicious, 50)),
            "false positives are ignored, the rest decides"
        );
    }

    #[test]
    fn tlp_most_restrictive_wins() {
        for (tags, expected) in [
            (vec!["tlp:white", "tlp:green"], "tlp:green"),
            (
                vec!["tlp:amber", "tlp:amber+strict", "tlp:green"],
                "tlp:amber+strict",
            ),
            (vec!["tlp:clear", "tlp:red", "tlp:amber"], "tlp:red"),
            (vec!["tlp:white"], "tlp:white"),
        ] {
            let intel = intel_from_attributes(&[attr("1", true, &tags)], &ip(), &[]).unwrap();
            assert_eq!(intel.tlp.as_deref(), Some(expected), "{tags:?}");
        }
        let none = intel_from_attributes(&[attr("1", true, &["osint"])], &ip(), &[]).unwrap();
        assert_eq!(none.tlp, None);
    }

    #[test]
    fn galaxy_tags() {
        assert_eq!(
            galaxy_cluster("misp-galaxy:threat-actor=\"APT 28\""),
            Some(("threat-actor", "APT 28"))
        );
        assert_eq!(
            galaxy_cluster("misp-galaxy:tool=Mimikatz"),
            Some(("tool", "Mimikatz"))
        );
        assert_eq!(galaxy_cluster("misp-galaxy:threat-actor=\"\""), None);
        assert_eq!(galaxy_cluster("tlp:red"), None);
    }

    #[test]
    fn times() {
        let t = Utc.with_ymd_and_hms(2021, 4, 8, 10, 20, 30).unwrap();
        assert_eq!(parse_time("2021-04-08T10:20:30+00:00"), Some(t));
        assert_eq!(parse_time("2021-04-08T12:20:30+02:00"), Some(t));
        assert_eq!(parse_time("2021-04-08T10:20:30Z"), Some(t));
        assert_eq!(parse_time("2021-04-08T10:20:30"), Some(t));
        assert_eq!(parse_time("2021-04-08 10:20:30"), Some(t));
        assert_eq!(
            parse_time("2021-04-08T10:20:30.5+00:00").map(|x| x.timestamp()),
            Some(t.timestamp())
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            epoch(1_617_875_568).unwrap().to_rfc3339(),
            "2021-04-08T09:52:48+00:00"
        );
    }

    #[test]
    fn malformed_answers_are_errors() {
        for body in [
            "not json",
            "{\"response\":",
            "{}",
            "{\"response\":42}",
            "{\"response\":[1]}",
            "{\"response\":{\"Attribute\":\"x\"}}",
            "{\"response\":{\"Attribute\":[{\"to_ids\":[1]}]}}",
        ] {
            let e = parse_attributes(body.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), vowguard_core::ErrorKind::Rejected, "{body}");
            assert!(e.to_string().contains("malformed JSON"), "{e}");
        }
        assert!(parse_attributes(b"{\"response\":[]}").unwrap().is_empty());
        assert!(parse_attributes(b"{\"response\":{}}").unwrap().is_empty());
    }

    #[test]
    fn labels_are_bounded_and_cleaned() {
        let tags: Vec<String> = (0..50)
            .map(|i| format!("misp-galaxy:threat-actor=\"Actor\r\n{i}\""))
            .collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let intel = intel_from_attributes(&[attr("1", true, &tags)], &ip(), &[]).unwrap();
        assert_eq!(intel.actors.len(), MAX_LABELS);
        assert!(
            intel
                .actors
                .iter()
                .all(|a| !a.contains('\r') && !a.contains('\n'))
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(body in ".{0,200}") {
            let _ = parse_attributes(body.as_bytes());
        }

        #[test]
        fn search_body_is_json_with_the_value(value in ".{0,100}") {
            let indicator = Indicator::new(IndicatorKind::Url, value.clone());
            let body: serde_json::Value = serde_json::from_slice(&search_body(&indicator, false)).unwrap();
            prop_assert_eq!(body["value"].as_str().unwrap(), value.as_str());
        }
    }
}

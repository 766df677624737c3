//! The pure parts of the Recorded Future enricher: lookup URLs, the risk-band mapping, the
//! evidence-rule categories and the answer parser. No I/O here, so everything is tested
//! with golden bodies and fuzzed.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use vowguard_core::{Error, ProviderVerdict, ThreatIntel, Verdict};
use vowguard_http::reqwest::Url;
use vowguard_http::snippet;

/// The provider name in [`ProviderVerdict::provider`].
pub const PROVIDER: &str = "recorded_future";

/// Most categories kept for one indicator (from the most critical evidence down).
pub const MAX_CATEGORIES: usize = 10;

/// The `fields` asked for: only what the verdict needs, so answers stay small.
pub const FIELDS: &str = "entity,risk,timestamps";

/// Recorded Future's entity types, as written in `/v2/{type}/{value}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RfType {
    /// `ip`: IPv4 or IPv6.
    Ip,
    /// `domain`: a domain or host name.
    Domain,
    /// `hash`: MD5, SHA-1 or SHA-256.
    Hash,
    /// `url`.
    Url,
}

impl RfType {
    /// The path segment, e.g. `ip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Domain => "domain",
            Self::Hash => "hash",
            Self::Url => "url",
        }
    }
}

/// `{base}/v2/{type}/{value}?fields=entity,risk,timestamps`; `value` is one
/// percent-encoded path segment (a URL's `/`, `?`, `#`, CR and LF included, see
/// [`vowguard_enrich::indicator_url`]).
pub fn lookup_url(base: &Url, kind: RfType, value: &str) -> Result<Url, Error> {
    let mut url = vowguard_enrich::indicator_url(base, &["v2", kind.as_str(), value])?;
    url.query_pairs_mut().append_pair("fields", FIELDS);
    Ok(url)
}

/// Recorded Future's risk bands (the risk score 0..=99 and the criticality 0..=4 it goes
/// with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RiskBand {
    /// Score 0, criticality 0: no risk evidence.
    None,
    /// Score 1..=24 (Recorded Future labels 5..=24), criticality 1.
    Unusual,
    /// Score 25..=64, criticality 2.
    Suspicious,
    /// Score 65..=89, criticality 3.
    Malicious,
    /// Score 90..=99, criticality 4.
    VeryMalicious,
}

impl RiskBand {
    /// The band of a risk score.
    pub fn of_score(score: u8) -> Self {
        match score {
            0 => Self::None,
            1..=24 => Self::Unusual,
            25..=64 => Self::Suspicious,
            65..=89 => Self::Malicious,
            _ => Self::VeryMalicious,
        }
    }

    /// The band of a criticality (0..=4; higher counts as 4).
    pub fn of_criticality(criticality: u64) -> Self {
        match criticality {
            0 => Self::None,
            1 => Self::Unusual,
            2 => Self::Suspicious,
            3 => Self::Malicious,
            _ => Self::VeryMalicious,
        }
    }

    /// Recorded Future's label, e.g. `Very Malicious`.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Unusual => "Unusual",
            Self::Suspicious => "Suspicious",
            Self::Malicious => "Malicious",
            Self::VeryMalicious => "Very Malicious",
        }
    }

    /// The lowest risk score of the band.
    pub fn floor(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Unusual => 5,
            Self::Suspicious => 25,
            Self::Malicious => 65,
            Self::VeryMalicious => 90,
        }
    }
}

/// `low..=high` mapped linearly onto `to_low..=to_high`, rounded.
fn rescale(score: u8, (low, high): (u8, u8), (to_low, to_high): (u8, u8)) -> u8 {
    let score = u32::from(score.clamp(low, high));
    let (low, high, to_low, to_high) = (
        u32::from(low),
        u32::from(high),
        u32::from(to_low),
        u32::from(to_high),
    );
    let span = high - low;
    let mapped = to_low + ((score - low) * (to_high - to_low) + span / 2) / span;
    mapped as u8
}

/// The vowguard verdict and 0..=100 score for a Recorded Future risk score (0..=99; more
/// counts as 99). Each band maps linearly onto the score band vowguard uses for the
/// verdict, so scores keep their order and land in their verdict's band:
///
/// | risk score | band | verdict | score |
/// |---|---|---|---|
/// | 0 | None | unknown (`None`) | - |
/// | 1..=24 | Unusual | benign | 1..=24 (unchanged) |
/// | 25..=64 | Suspicious | suspicious | 25..=74 |
/// | 65..=89 | Malicious | malicious | 75..=89 |
/// | 90..=99 | Very Malicious | malicious | 90..=100 |
///
/// A score of 0 means Recorded Future has no risk evidence: that is "unknown", not benign.
pub fn verdict_for(score: u8) -> Option<(Verdict, u8)> {
    let score = score.min(99);
    match RiskBand::of_score(score) {
        RiskBand::None => None,
        RiskBand::Unusual => Some((Verdict::Benign, score)),
        RiskBand::Suspicious => Some((Verdict::Suspicious, rescale(score, (25, 64), (25, 74)))),
        RiskBand::Malicious => Some((Verdict::Malicious, rescale(score, (65, 89), (75, 89)))),
        RiskBand::VeryMalicious => Some((Verdict::Malicious, rescale(score, (90, 99), (90, 100)))),
    }
}

/// Evidence-rule keywords and the category they give, first match wins. Matched as whole
/// words in the lower-cased rule name (`Tor Node` is `tor`, `Threat Actor ...` is not).
const RULE_CATEGORIES: &[(&[&str], &str)] = &[
    (&["c&c", "c2", "command and control"], "c2"),
    (&["botnet"], "botnet"),
    (&["ransomware"], "ransomware"),
    (&["phishing"], "phishing"),
    (
        &["malware", "malicious file", "malicious content"],
        "malware",
    ),
    (&["brute force", "bruteforce"], "brute-force"),
    (&["spam"], "spam"),
    (&["tor"], "tor"),
    (&["proxy", "proxies", "vpn", "anonymizer"], "anonymizer"),
    (&["scanner", "scanning"], "scanner"),
    (&["exploit", "exploits", "exploited"], "exploit"),
    (&["ddos", "cyber attack"], "attack"),
    (&["threat actor"], "threat-actor"),
    (&["typosquat", "typosquatting", "typosquatted"], "typosquat"),
    (
        &["cryptomining", "crypto mining", "miner", "coinminer"],
        "cryptomining",
    ),
    (&["honeypot"], "honeypot"),
    (
        &["newly registered", "recently registered"],
        "newly-registered",
    ),
    (
        &["blocklist", "blacklist", "blacklisted", "blocklisted"],
        "blocklist",
    ),
];

/// The category of an evidence rule: a known threat type when the rule names one
/// (`Current C&C Server` -> `c2`, `Historical Brute Force` -> `brute-force`, `Tor Node` ->
/// `tor`, ...), otherwise the rule's own name as a slug (`Recently Linked to Intrusion
/// Method` -> `recently-linked-to-intrusion-method`); `None` for an empty rule.
pub fn rule_category(rule: &str) -> Option<String> {
    let words: String = rule
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '&' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let padded = format!(
        " {} ",
        words.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    for (keywords, category) in RULE_CATEGORIES {
        if keywords.iter().any(|k| padded.contains(&format!(" {k} "))) {
            return Some((*category).to_owned());
        }
    }
    vowguard_enrich::category_slug(rule)
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    risk: Option<Risk>,
    #[serde(default)]
    timestamps: Option<Timestamps>,
}

#[derive(Deserialize)]
struct Risk {
    #[serde(default)]
    score: Option<Value>,
    #[serde(default)]
    criticality: Option<Value>,
    #[serde(default, rename = "evidenceDetails")]
    evidence_details: Option<Vec<Evidence>>,
}

#[derive(Deserialize)]
struct Evidence {
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    criticality: Option<Value>,
}

#[derive(Deserialize)]
struct Timestamps {
    #[serde(default, rename = "firstSeen")]
    first_seen: Option<Value>,
    #[serde(default, rename = "lastSeen")]
    last_seen: Option<Value>,
}

/// A non-negative number (integer or float) as `u64`, saturating; anything else `None`.
fn number(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

fn timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a `/v2/{type}/{value}` answer about `indicator`.
///
/// * The verdict and score come from `data.risk.score` per [`verdict_for`] (or, without a
///   score, from `data.risk.criticality`: the lowest score of its [`RiskBand`]); a score of
///   0, or no `risk` at all, is unknown (`Ok(None)`).
/// * Categories: each `evidenceDetails[].rule` through [`rule_category`], the most
///   critical evidence first, de-duplicated, at most [`MAX_CATEGORIES`].
/// * `first_seen` / `last_seen`: `data.timestamps.firstSeen` / `lastSeen`.
/// * A body that is not the documented JSON is an `Unavailable` error quoting it.
pub fn parse_lookup(body: &str, indicator: &str) -> Result<Option<ThreatIntel>, Error> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| {
        Error::unavailable(format!(
            "unreadable Recorded Future response ({e}): {}",
            snippet(body)
        ))
    })?;
    let Some(data) = envelope.data else {
        return Err(Error::unavailable(format!(
            "unreadable Recorded Future response (no `data`): {}",
            snippet(body)
        )));
    };
    let Some(risk) = data.risk else {
        return Ok(None);
    };
    let score = match number(risk.score.as_ref()) {
        Some(score) => score.min(99) as u8,
        None => {
            number(risk.criticality.as_ref()).map_or(0, |c| RiskBand::of_criticality(c).floor())
        }
    };
    let Some((verdict, score)) = verdict_for(score) else {
        return Ok(None);
    };

    let mut evidence: Vec<(u64, String)> = risk
        .evidence_details
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((number(e.criticality.as_ref()).unwrap_or(0), e.rule?)))
        .collect();
    // Stable: equally critical rules keep Recorded Future's order.
    evidence.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut categories: Vec<String> = Vec::new();
    for (_, rule) in &evidence {
        if categories.len() >= MAX_CATEGORIES {
            break;
        }
        if let Some(c) = rule_category(rule)
            && !categories.contains(&c)
        {
            categories.push(c);
        }
    }
    let (first_seen, last_seen) = data.timestamps.map_or((None, None), |t| {
        (
            timestamp(t.first_seen.as_ref()),
            timestamp(t.last_seen.as_ref()),
        )
    });
    Ok(Some(ThreatIntel {
        verdict,
        score,
        providers: vec![ProviderVerdict {
            provider: PROVIDER.to_owned(),
            indicator: indicator.to_owned(),
            verdict,
            score: Some(score),
        }],
        categories,
        actors: Vec::new(),
        tlp: None,
        first_seen,
        last_seen,
    }))
}

/// The vendor's reason from an error body (`{"error": {"message": ...}}`, `{"message":
/// ...}` or `{"error": "..."}`); the raw body otherwise.
pub fn error_reason(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let error = value.get("error");
    error
        .and_then(|e| e.get("message"))
        .or_else(|| value.get("message"))
        .or(error)
        .and_then(Value::as_str)
        .map_or_else(|| body.to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use vowguard_core::ErrorKind;

    /// An IP answer shaped like the Connect API's, risk 89 with five evidence rules.
    const MALICIOUS_IP: &str = r#"{
      "data": {
        "entity": {"id": "ip:203.0.113.7", "name": "203.0.113.7", "type": "IpAddress"},
        "risk": {
          "criticalityLabel": "Malicious",
          "score": 89,
          "evidenceDetails": [
            {"mitigationString": "", "timestamp": "2026-05-01T10:00:00.000Z", "criticalityLabel": "Unusual",
             "evidenceString": "1 sighting on 1 source: Insikt Group.", "rule": "Historically Reported by Insikt Group", "criticality": 1},
            {"mitigationString": "", "timestamp": "2026-06-18T17:00:00.000Z", "criticalityLabel": "Malicious",
             "evidenceString": "Recorded Future Network Traffic Analysis identified ...", "rule": "Recent C&C Server", "criticality": 3},
            {"mitigationString": "", "timestamp": "2026-06-10T00:00:00.000Z", "criticalityLabel": "Suspicious",
             "evidenceString": "...", "rule": "Historical Brute Force", "criticality": 2},
            {"mitigationString": "", "timestamp": "2026-06-11T00:00:00.000Z", "criticalityLabel": "Malicious",
             "evidenceString": "...", "rule": "Current C&C Server", "criticality": 3},
            {"mitigationString": "", "timestamp": "2026-06-12T00:00:00.000Z", "criticalityLabel": "Suspicious",
             "evidenceString": "...", "rule": "Tor Node", "criticality": 2}
          ],
          "riskString": "5/64",
          "rules": 5,
          "criticality": 3,
          "riskSummary": "5 of 64 Risk Rules currently observed."
        },
        "timestamps": {"firstSeen": "2019-03-04T05:06:07.000Z", "lastSeen": "2026-06-18T17:45:10.512Z"}
      },
      "metadata": {"entries": []}
    }"#;

    #[test]
    fn risk_and_evidence_become_verdict_and_categories() {
        let intel = parse_lookup(MALICIOUS_IP, "203.0.113.7").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Malicious, 89));
        assert_eq!(
            intel.categories,
            [
                "c2",
                "brute-force",
                "tor",
                "historically-reported-by-insikt-group"
            ]
        );
        assert_eq!(
            intel.first_seen,
            Some(Utc.with_ymd_and_hms(2019, 3, 4, 5, 6, 7).unwrap())
        );
        assert_eq!(
            intel.last_seen.unwrap().to_rfc3339(),
            "2026-06-18T17:45:10.512+00:00"
        );
        assert_eq!(
            intel.providers,
            [ProviderVerdict {
                provider: "recorded_future".into(),
                indicator: "203.0.113.7".into(),
                verdict: Verdict::Malicious,
                score: Some(89),
            }]
        );
        assert!(intel.actors.is_empty() && intel.tlp.is_none());
    }

    #[test]
    fn band_table() {
        assert_eq!(verdict_for(0), None);
        let cases = [
            (1, Verdict::Benign, 1),
            (5, Verdict::Benign, 5),
            (24, Verdict::Benign, 24),
            (25, Verdict::Suspicious, 25),
            (45, Verdict::Suspicious, 50),
            (64, Verdict::Suspicious, 74),
            (65, Verdict::Malicious, 75),
            (77, Verdict::Malicious, 82),
            (89, Verdict::Malicious, 89),
            (90, Verdict::Malicious, 90),
            (99, Verdict::Malicious, 100),
            (255, Verdict::Malicious, 100),
        ];
        for (rf, verdict, score) in cases {
            assert_eq!(verdict_for(rf), Some((verdict, score)), "risk score {rf}");
        }
        assert_eq!(RiskBand::of_score(90).label(), "Very Malicious");
        assert_eq!(RiskBand::of_score(64), RiskBand::Suspicious);
    }

    #[test]
    fn scores_keep_their_order_and_band() {
        let mut last = 0;
        for rf in 1..=99u8 {
            let (verdict, score) = verdict_for(rf).unwrap();
            assert!(score >= last, "{rf}");
            last = score;
            let (low, high) = vowguard_enrich::band(verdict);
            assert!((low..=high).contains(&score), "{rf} -> {verdict:?} {score}");
        }
    }

    #[test]
    fn no_risk_is_unknown() {
        for body in [
            r#"{"data": {"entity": {"id": "ip:8.8.8.8"}, "risk": {"score": 0, "criticality": 0, "evidenceDetails": [], "rules": 0}}}"#,
            r#"{"data": {"entity": {"id": "ip:8.8.8.8"}}}"#,
            r#"{"data": {"risk": {}}}"#,
        ] {
            assert_eq!(parse_lookup(body, "8.8.8.8").unwrap(), None, "{body}");
        }
    }

    #[test]
    fn criticality_stands_in_for_a_missing_score() {
        let body = r#"{"data": {"risk": {"criticality": 4, "evidenceDetails": [{"rule": "Recent Phishing Host", "criticality": 4}]}}}"#;
        let intel = parse_lookup(body, "evil.example").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Malicious, 90));
        assert_eq!(intel.categories, ["phishing"]);
        let body = r#"{"data": {"risk": {"score": 12.4, "criticality": 1}}}"#;
        let intel = parse_lookup(body, "x").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Benign, 12));
    }

    #[test]
    fn rule_categories() {
        for (rule, category) in [
            ("Current C&C Server", "c2"),
            ("Recently Communicating With C&C Server", "c2"),
            ("Historical Botnet Traffic", "botnet"),
            ("Recent Phishing Host", "phishing"),
            ("Positive Malware Verdict", "malware"),
            ("Recently Linked to Ransomware", "ransomware"),
            ("Historical Brute Force", "brute-force"),
            ("Historical Spam Source", "spam"),
            ("Tor Node", "tor"),
            ("Threat Actor Used Infrastructure", "threat-actor"),
            ("Historical Open Proxies", "anonymizer"),
            ("Recent Host of Many DDoS Targets", "attack"),
            ("Recent Typosquat Similarity - DNS Sandwich", "typosquat"),
            ("Recently Active Cryptomining Domain", "cryptomining"),
            ("Recent Honeypot Sighting", "honeypot"),
            ("Recent Multicategory Blocklist", "blocklist"),
            (
                "Recently Linked to Intrusion Method",
                "recently-linked-to-intrusion-method",
            ),
        ] {
            assert_eq!(rule_category(rule).as_deref(), Some(category), "{rule}");
        }
        assert_eq!(rule_category(" \r\n"), None);
        assert_eq!(
            rule_category("Storage\u{1b}[31m Actor").as_deref(),
            Some("storage[31m-actor")
        );
    }

    #[test]
    fn categories_are_capped_and_deduplicated() {
        let evidence: Vec<Value> = (0..30)
            .map(|i| serde_json::json!({"rule": format!("Rule {}", i % 15), "criticality": 1}))
            .collect();
        let body =
            serde_json::json!({"data": {"risk": {"score": 30, "evidenceDetails": evidence}}});
        let intel = parse_lookup(&body.to_string(), "x").unwrap().unwrap();
        assert_eq!(intel.categories.len(), MAX_CATEGORIES);
        assert_eq!(intel.categories[0], "rule-0");
        assert_eq!(intel.categories[9], "rule-9");
    }

    #[test]
    fn malformed_bodies_are_clear_errors() {
        for body in [
            "",
            "<html>504</html>",
            "[1,2]",
            "{}",
            "{\"data\":",
            "{\"data\": {\"risk\": {\"evidenceDetails\": {}}}}",
            "{\"data\": {\"risk\": \"high\"}}",
        ] {
            let e = parse_lookup(body, "x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{body}");
            assert!(e.to_string().contains("Recorded Future"), "{e}");
        }
    }

    #[test]
    fn urls_and_types() {
        let base = Url::parse("https://api.recordedfuture.com").unwrap();
        let cases = [
            (
                RfType::Ip,
                "203.0.113.7",
                "https://api.recordedfuture.com/v2/ip/203.0.113.7?fields=entity%2Crisk%2Ctimestamps",
            ),
            (
                RfType::Ip,
                "2001:db8::1",
                "https://api.recordedfuture.com/v2/ip/2001:db8::1?fields=entity%2Crisk%2Ctimestamps",
            ),
            (
                RfType::Domain,
                "evil.example",
                "https://api.recordedfuture.com/v2/domain/evil.example?fields=entity%2Crisk%2Ctimestamps",
            ),
            (
                RfType::Hash,
                "44d88612fea8a8f36de82e1278abb02f",
                "https://api.recordedfuture.com/v2/hash/44d88612fea8a8f36de82e1278abb02f?fields=entity%2Crisk%2Ctimestamps",
            ),
            (
                RfType::Url,
                "http://evil.example/a b?c=d#e\r\n",
                "https://api.recordedfuture.com/v2/url/http:%2F%2Fevil.example%2Fa%20b%3Fc%3Dd%23e%0D%0A?fields=entity%2Crisk%2Ctimestamps",
            ),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(lookup_url(&base, kind, value).unwrap().as_str(), expected);
        }
        let base = Url::parse("http://127.0.0.1:1/rf/?x=1").unwrap();
        assert_eq!(
            lookup_url(&base, RfType::Ip, "203.0.113.7")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/rf/v2/ip/203.0.113.7?fields=entity%2Crisk%2Ctimestamps"
        );
    }

    #[test]
    fn error_reasons() {
        assert_eq!(
            error_reason(r#"{"error": {"status": 401, "message": "Invalid token"}}"#),
            "Invalid token"
        );
        assert_eq!(error_reason(r#"{"message": "Not allowed"}"#), "Not allowed");
        assert_eq!(
            error_reason(r#"{"error": "Quota exceeded"}"#),
            "Quota exceeded"
        );
        assert_eq!(error_reason("nope"), "nope");
        assert_eq!(error_reason(r#"{"x": 1}"#), r#"{"x": 1}"#);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 :.&+_-]{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("data".to_owned()),
                            Just("risk".to_owned()),
                            Just("score".to_owned()),
                            Just("criticality".to_owned()),
                            Just("evidenceDetails".to_owned()),
                            Just("rule".to_owned()),
                            Just("timestamps".to_owned()),
                            Just("firstSeen".to_owned()),
                            Just("lastSeen".to_owned()),
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
            let _ = parse_lookup(&body, "x");
            let _ = error_reason(&body);
            let _ = rule_category(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value(), score in any::<i64>(), rules in prop::collection::vec(json_value(), 0..4)) {
            let _ = parse_lookup(&value.to_string(), "x");
            let wrapped = serde_json::json!({"data": {"risk": {"score": score, "evidenceDetails": rules}, "timestamps": value}}).to_string();
            if let Ok(Some(intel)) = parse_lookup(&wrapped, "x") {
                prop_assert!(intel.score <= 100);
                let (low, high) = vowguard_enrich::band(intel.verdict);
                prop_assert!((low..=high).contains(&intel.score));
                prop_assert!(intel.categories.len() <= MAX_CATEGORIES);
                prop_assert!(intel.categories.iter().all(|c| !c.chars().any(char::is_control)));
            }
        }

        #[test]
        fn every_url_is_one_segment(value in "\\PC{0,40}") {
            let base = Url::parse("https://api.recordedfuture.com").unwrap();
            let url = lookup_url(&base, RfType::Url, &value).unwrap();
            prop_assert_eq!(url.path_segments().unwrap().count(), 3);
            prop_assert_eq!(url.query(), Some("fields=entity%2Crisk%2Ctimestamps"));
        }
    }
}

//! The pure parts of the VirusTotal enricher: object URLs (including the URL identifier),
//! the object parser and the verdict/score rule. No I/O here, so everything is tested with
//! golden bodies and fuzzed.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vowguard_core::{Error, ProviderVerdict, ThreatIntel, Verdict};
use vowguard_http::reqwest::Url;
use vowguard_http::snippet;

/// The provider name in [`ProviderVerdict::provider`].
pub const PROVIDER: &str = "virustotal";

/// Engines flagging an object malicious from which it is [`Verdict::Malicious`].
pub const MALICIOUS_ENGINES: u64 = 3;

/// Engines flagging an object suspicious from which it is [`Verdict::Suspicious`] (one
/// malicious engine is enough too).
pub const SUSPICIOUS_ENGINES: u64 = 2;

/// Most categories kept for one object.
pub const MAX_CATEGORIES: usize = 10;

/// The VirusTotal collection an indicator is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Collection {
    /// `/api/v3/ip_addresses/{ip}`.
    IpAddresses,
    /// `/api/v3/domains/{domain}`.
    Domains,
    /// `/api/v3/urls/{url_id}`, see [`url_id`].
    Urls,
    /// `/api/v3/files/{md5|sha1|sha256}`.
    Files,
}

impl Collection {
    /// The path segment, e.g. `ip_addresses`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IpAddresses => "ip_addresses",
            Self::Domains => "domains",
            Self::Urls => "urls",
            Self::Files => "files",
        }
    }
}

/// VirusTotal's identifier of a URL: the URL in unpadded base64url.
pub fn url_id(url: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes())
}

/// Whether `hash` is an MD5, SHA-1 or SHA-256 in hex (what `/files/{id}` accepts).
pub fn is_file_hash(hash: &str) -> bool {
    matches!(hash.len(), 32 | 40 | 64) && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `{base}/api/v3/{collection}/{id}`; `id` is one percent-encoded path segment (for URLs,
/// pass [`url_id`] of the URL; hashes are lowercased).
pub fn object_url(base: &Url, collection: Collection, id: &str) -> Result<Url, Error> {
    let id = if collection == Collection::Files {
        id.to_ascii_lowercase()
    } else {
        id.to_owned()
    };
    vowguard_enrich::indicator_url(base, &["api", "v3", collection.as_str(), &id])
}

/// `last_analysis_stats`: how many engines said what in the latest analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AnalysisStats {
    /// Engines that consider the object harmless.
    pub harmless: u64,
    /// Engines that flag it malicious.
    pub malicious: u64,
    /// Engines that flag it suspicious.
    pub suspicious: u64,
    /// Engines with no opinion (nothing detected).
    pub undetected: u64,
    /// Engines that timed out (they gave no answer).
    pub timeout: u64,
}

impl AnalysisStats {
    /// Engines that answered (timeouts excluded).
    pub fn answered(&self) -> u64 {
        self.harmless
            .saturating_add(self.malicious)
            .saturating_add(self.suspicious)
            .saturating_add(self.undetected)
    }
}

/// The verdict and 0..=100 score for an analysis, `None` when no engine answered (the
/// object was never analysed: unknown).
///
/// * verdict: `malicious >= 3` malicious; `malicious >= 1` or `suspicious >= 2`
///   suspicious; otherwise benign (engines looked and found nothing);
/// * score: `min(100, round(25 × (malicious + suspicious / 2)))`, at most 74 unless the
///   verdict is malicious, so the score falls in the band vowguard uses for the verdict
///   (benign < 25 <= suspicious < 75 <= malicious): 1 malicious engine scores 25, 3 score 75,
///   4 or more 100. Engine counts rather than ratios, because the number of engines varies
///   by object type and a handful of detections already matters.
pub fn verdict_for(stats: &AnalysisStats) -> Option<(Verdict, u8)> {
    if stats.answered() == 0 {
        return None;
    }
    let verdict = if stats.malicious >= MALICIOUS_ENGINES {
        Verdict::Malicious
    } else if stats.malicious >= 1 || stats.suspicious >= SUSPICIOUS_ENGINES {
        Verdict::Suspicious
    } else {
        Verdict::Benign
    };
    let weighted = stats.malicious as f64 + stats.suspicious as f64 / 2.0;
    // Clamped to 0..=100 first, so the cast cannot truncate.
    let mut score = (25.0 * weighted).round().clamp(0.0, 100.0) as u8;
    if verdict != Verdict::Malicious {
        score = score.min(74);
    }
    Some((verdict, score))
}

#[derive(Deserialize)]
struct ObjectResponse {
    data: Option<ObjectData>,
}

#[derive(Deserialize)]
struct ObjectData {
    #[serde(default)]
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    last_analysis_stats: Option<AnalysisStats>,
    #[serde(default)]
    tags: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    popular_threat_classification: Option<ThreatClassification>,
    #[serde(default)]
    first_submission_date: Option<serde_json::Value>,
    #[serde(default)]
    last_submission_date: Option<serde_json::Value>,
    #[serde(default)]
    last_analysis_date: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ThreatClassification {
    #[serde(default)]
    popular_threat_category: Option<Vec<serde_json::Value>>,
}

fn epoch(value: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    let seconds = value?.as_i64()?;
    if seconds <= 0 {
        return None;
    }
    DateTime::from_timestamp(seconds, 0)
}

/// A category name from free text: trimmed, lowercase, whitespace and `_` as `-`, control
/// characters dropped, at most 64 characters; `None` when nothing is left (the shared
/// [`vowguard_enrich::category_slug`]).
pub fn category(raw: &str) -> Option<String> {
    vowguard_enrich::category_slug(raw)
}

/// Parses a `GET /api/v3/{collection}/{id}` answer about `indicator`.
///
/// * `Ok(None)` (unknown): no engine has analysed the object (`last_analysis_stats` absent
///   or all zero). A 404 is handled by the caller and is unknown too.
/// * Otherwise verdict and score per [`verdict_for`]. Categories: the popular threat
///   categories of a file (`trojan`, `ransomware`, most votes first), then the object's
///   `tags` when the verdict is suspicious or malicious (tags of clean objects describe
///   file types, not threats); at most [`MAX_CATEGORIES`]. `first_seen` is
///   `first_submission_date`, `last_seen` is `last_submission_date` or else
///   `last_analysis_date`. VirusTotal gives no actors or TLP here.
/// * A body that is not the documented JSON is an `Unavailable` error quoting it.
pub fn parse_object(body: &str, indicator: &str) -> Result<Option<ThreatIntel>, Error> {
    let response: ObjectResponse = serde_json::from_str(body).map_err(|e| {
        Error::unavailable(format!(
            "unreadable VirusTotal response ({e}): {}",
            snippet(body)
        ))
    })?;
    let Some(attributes) = response.data.and_then(|d| d.attributes) else {
        return Err(Error::unavailable(format!(
            "unreadable VirusTotal response (no `data.attributes`): {}",
            snippet(body)
        )));
    };
    let stats = attributes.last_analysis_stats.unwrap_or_default();
    let Some((verdict, score)) = verdict_for(&stats) else {
        return Ok(None);
    };

    let mut categories: Vec<String> = Vec::new();
    let push = |raw: &str, categories: &mut Vec<String>| match category(raw) {
        Some(c) if !categories.contains(&c) && categories.len() < MAX_CATEGORIES => {
            categories.push(c);
        }
        _ => {}
    };
    let mut popular: Vec<(String, i64)> = attributes
        .popular_threat_classification
        .and_then(|c| c.popular_threat_category)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let value = entry.get("value")?.as_str()?.to_owned();
            let count = entry.get("count").and_then(|c| c.as_i64()).unwrap_or(0);
            Some((value, count))
        })
        .collect();
    popular.sort_by_key(|p| std::cmp::Reverse(p.1));
    for (value, _) in &popular {
        push(value, &mut categories);
    }
    if verdict >= Verdict::Suspicious {
        for tag in attributes.tags.iter().flatten() {
            if let Some(tag) = tag.as_str() {
                push(tag, &mut categories);
            }
        }
    }

    let first_seen = epoch(attributes.first_submission_date.as_ref());
    let last_seen = epoch(attributes.last_submission_date.as_ref())
        .or_else(|| epoch(attributes.last_analysis_date.as_ref()));
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

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The `code` of an error body `{"error":{"code":"NotFoundError","message":"..."}}`.
pub fn error_code(body: &str) -> Option<String> {
    serde_json::from_str::<ErrorBody>(body).ok()?.error.code
}

/// The vendor's reason from an error body, `Code: message`; the raw body when it has
/// another shape.
pub fn error_reason(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: ErrorDetail { code, message },
        }) => match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            (None, Some(m)) => m,
            (None, None) => body.to_owned(),
        },
        Err(_) => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use vowguard_core::ErrorKind;

    /// An IP address object, shaped like VirusTotal's documentation.
    const IP_MALICIOUS: &str = r#"{
      "data": {
        "id": "203.0.113.7",
        "type": "ip_address",
        "links": {"self": "https://www.virustotal.com/api/v3/ip_addresses/203.0.113.7"},
        "attributes": {
          "as_owner": "Example Hosting",
          "asn": 64500,
          "country": "NL",
          "network": "203.0.113.0/24",
          "regional_internet_registry": "RIPE NCC",
          "reputation": -27,
          "tags": ["Brute Force", "scanner"],
          "total_votes": {"harmless": 0, "malicious": 4},
          "last_analysis_date": 1718000000,
          "last_analysis_stats": {"harmless": 56, "malicious": 5, "suspicious": 1, "undetected": 27, "timeout": 0},
          "last_analysis_results": {
            "Fortinet": {"category": "malicious", "result": "malware", "method": "blacklist", "engine_name": "Fortinet"}
          },
          "whois": "NetRange: 203.0.113.0 - 203.0.113.255"
        }
      }
    }"#;

    /// A file object with a popular threat classification.
    const FILE_MALICIOUS: &str = r#"{
      "data": {
        "id": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
        "type": "file",
        "attributes": {
          "first_submission_date": 1287401839,
          "last_submission_date": 1717400000,
          "last_analysis_date": 1717500000,
          "last_analysis_stats": {"harmless": 0, "type-unsupported": 4, "suspicious": 0, "confirmed-timeout": 0,
            "timeout": 0, "failure": 0, "malicious": 61, "undetected": 9},
          "meaningful_name": "eicar.com",
          "popular_threat_classification": {
            "suggested_threat_label": "virus.eicar/test",
            "popular_threat_category": [{"count": 5, "value": "virus"}, {"count": 19, "value": "trojan"}],
            "popular_threat_name": [{"count": 40, "value": "eicar"}]
          },
          "reputation": 3151,
          "sha256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
          "tags": ["attachment", "via-tor"]
        }
      }
    }"#;

    /// A domain nobody flags.
    const DOMAIN_CLEAN: &str = r#"{
      "data": {
        "id": "example.org",
        "type": "domain",
        "attributes": {
          "categories": {"Forcepoint ThreatSeeker": "information technology"},
          "last_analysis_date": 1717000000,
          "last_analysis_stats": {"harmless": 66, "malicious": 0, "suspicious": 1, "undetected": 23, "timeout": 0},
          "reputation": 0,
          "tags": ["self-signed"]
        }
      }
    }"#;

    #[test]
    fn malicious_ip() {
        let intel = parse_object(IP_MALICIOUS, "203.0.113.7").unwrap().unwrap();
        assert_eq!(intel.verdict, Verdict::Malicious);
        // 25 × (5 + 0.5) = 137.5 -> 100.
        assert_eq!(intel.score, 100);
        assert_eq!(intel.categories, ["brute-force", "scanner"]);
        assert_eq!(intel.first_seen, None);
        assert_eq!(
            intel.last_seen,
            Some(Utc.timestamp_opt(1_718_000_000, 0).unwrap())
        );
        assert_eq!(
            intel.providers,
            [ProviderVerdict {
                provider: "virustotal".into(),
                indicator: "203.0.113.7".into(),
                verdict: Verdict::Malicious,
                score: Some(100),
            }]
        );
    }

    #[test]
    fn malicious_file_categories_and_dates() {
        let intel = parse_object(FILE_MALICIOUS, "275a02").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Malicious, 100));
        assert_eq!(
            intel.categories,
            ["trojan", "virus", "attachment", "via-tor"]
        );
        assert_eq!(
            intel.first_seen,
            Some(Utc.timestamp_opt(1_287_401_839, 0).unwrap())
        );
        assert_eq!(
            intel.last_seen,
            Some(Utc.timestamp_opt(1_717_400_000, 0).unwrap())
        );
    }

    #[test]
    fn clean_domain_is_benign_without_tags() {
        let intel = parse_object(DOMAIN_CLEAN, "example.org").unwrap().unwrap();
        // One suspicious engine alone: benign, 25 × 0.5 = 12.5 -> 13.
        assert_eq!((intel.verdict, intel.score), (Verdict::Benign, 13));
        assert!(intel.categories.is_empty());
    }

    #[test]
    fn never_analysed_is_unknown() {
        let body = r#"{"data":{"id":"x","type":"domain","attributes":{"last_analysis_stats":{"harmless":0,"malicious":0,"suspicious":0,"undetected":0,"timeout":0}}}}"#;
        assert_eq!(parse_object(body, "x").unwrap(), None);
        let body = r#"{"data":{"id":"x","type":"domain","attributes":{"reputation":0}}}"#;
        assert_eq!(parse_object(body, "x").unwrap(), None);
        let body = r#"{"data":{"attributes":{"last_analysis_stats":{"timeout":70}}}}"#;
        assert_eq!(parse_object(body, "x").unwrap(), None);
    }

    #[test]
    fn verdict_rule_table() {
        let s = |malicious, suspicious, undetected| AnalysisStats {
            malicious,
            suspicious,
            undetected,
            ..AnalysisStats::default()
        };
        for (stats, expected) in [
            (s(0, 0, 70), (Verdict::Benign, 0)),
            (s(0, 1, 70), (Verdict::Benign, 13)),
            (s(0, 2, 70), (Verdict::Suspicious, 25)),
            (s(1, 0, 70), (Verdict::Suspicious, 25)),
            (s(2, 0, 70), (Verdict::Suspicious, 50)),
            (s(2, 9, 70), (Verdict::Suspicious, 74)),
            (s(0, 40, 70), (Verdict::Suspicious, 74)),
            (s(3, 0, 70), (Verdict::Malicious, 75)),
            (s(4, 0, 70), (Verdict::Malicious, 100)),
            (s(60, 5, 0), (Verdict::Malicious, 100)),
        ] {
            assert_eq!(verdict_for(&stats), Some(expected), "{stats:?}");
        }
        assert_eq!(verdict_for(&AnalysisStats::default()), None);
    }

    #[test]
    fn malformed_bodies_are_clear_errors() {
        for body in [
            "",
            "<html>oops</html>",
            "{\"data\":",
            "{}",
            "{\"data\":{\"id\":\"x\"}}",
            "{\"data\":{\"attributes\":{\"last_analysis_stats\":{\"malicious\":\"many\"}}}}",
            "{\"data\":{\"attributes\":{\"last_analysis_stats\":{\"malicious\":-1}}}}",
        ] {
            let e = parse_object(body, "x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{body}");
            assert!(e.to_string().contains("VirusTotal"), "{e}");
        }
    }

    #[test]
    fn url_ids_are_unpadded_base64url() {
        // VirusTotal's documented example.
        assert_eq!(
            url_id("http://www.somedomain.com/this/is/my/url"),
            "aHR0cDovL3d3dy5zb21lZG9tYWluLmNvbS90aGlzL2lzL215L3VybA"
        );
        // Characters that base64 (not base64url) would write as + and /.
        assert_eq!(
            url_id("https://x.example/?q=>>>???"),
            "aHR0cHM6Ly94LmV4YW1wbGUvP3E9Pj4-Pz8_"
        );
    }

    #[test]
    fn object_urls() {
        let base = Url::parse("https://www.virustotal.com").unwrap();
        let cases = [
            (
                Collection::IpAddresses,
                "203.0.113.7",
                "https://www.virustotal.com/api/v3/ip_addresses/203.0.113.7",
            ),
            (
                Collection::IpAddresses,
                "2001:db8::1",
                "https://www.virustotal.com/api/v3/ip_addresses/2001:db8::1",
            ),
            (
                Collection::Domains,
                "evil.example",
                "https://www.virustotal.com/api/v3/domains/evil.example",
            ),
            (
                Collection::Files,
                "ABCDEF0123456789ABCDEF0123456789",
                "https://www.virustotal.com/api/v3/files/abcdef0123456789abcdef0123456789",
            ),
            (
                Collection::Domains,
                "a/b?c#d",
                "https://www.virustotal.com/api/v3/domains/a%2Fb%3Fc%23d",
            ),
        ];
        for (collection, id, expected) in cases {
            assert_eq!(
                object_url(&base, collection, id).unwrap().as_str(),
                expected
            );
        }
        let base = Url::parse("http://127.0.0.1:9/vt/").unwrap();
        let id = url_id("http://www.somedomain.com/this/is/my/url");
        assert_eq!(
            object_url(&base, Collection::Urls, &id).unwrap().as_str(),
            format!("http://127.0.0.1:9/vt/api/v3/urls/{id}")
        );
    }

    #[test]
    fn file_hashes() {
        assert!(is_file_hash(&"a".repeat(32)));
        assert!(is_file_hash(&"B".repeat(40)));
        assert!(is_file_hash(&"0".repeat(64)));
        assert!(!is_file_hash(&"0".repeat(63)));
        assert!(!is_file_hash(&"g".repeat(64)));
        assert!(!is_file_hash(""));
    }

    #[test]
    fn categories_are_normalised() {
        assert_eq!(category("  Brute  Force "), Some("brute-force".into()));
        assert_eq!(category("cobalt_strike"), Some("cobalt-strike".into()));
        assert_eq!(category("a\r\nb"), Some("ab".into()));
        assert_eq!(category(" - "), None);
        assert_eq!(category(&"x".repeat(500)).unwrap().len(), 64);
    }

    #[test]
    fn error_bodies() {
        let body = r#"{"error":{"code":"NotFoundError","message":"Resource not found."}}"#;
        assert_eq!(error_code(body).as_deref(), Some("NotFoundError"));
        assert_eq!(error_reason(body), "NotFoundError: Resource not found.");
        assert_eq!(error_code("<html>404</html>"), None);
        assert_eq!(error_reason("<html>404</html>"), "<html>404</html>");
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 _-]{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("data".to_owned()),
                            Just("attributes".to_owned()),
                            Just("last_analysis_stats".to_owned()),
                            Just("malicious".to_owned()),
                            Just("suspicious".to_owned()),
                            Just("harmless".to_owned()),
                            Just("tags".to_owned()),
                            Just("popular_threat_classification".to_owned()),
                            Just("popular_threat_category".to_owned()),
                            Just("value".to_owned()),
                            Just("count".to_owned()),
                            Just("first_submission_date".to_owned()),
                            Just("last_analysis_date".to_owned()),
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
            let _ = parse_object(&body, "x");
            let _ = error_reason(&body);
            let _ = error_code(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let _ = parse_object(&value.to_string(), "x");
            let wrapped = serde_json::json!({"data": {"attributes": value}}).to_string();
            if let Ok(Some(intel)) = parse_object(&wrapped, "x") {
                prop_assert!(intel.score <= 100);
                prop_assert!(intel.categories.len() <= MAX_CATEGORIES);
            }
        }

        #[test]
        fn score_band_matches_verdict(m in any::<u64>(), s in any::<u64>(), h in 0_u64..100, u in 0_u64..100) {
            let stats = AnalysisStats { malicious: m, suspicious: s, harmless: h, undetected: u, timeout: 0 };
            if let Some((verdict, score)) = verdict_for(&stats) {
                let band = match score { 0..=24 => Verdict::Benign, 25..=74 => Verdict::Suspicious, _ => Verdict::Malicious };
                prop_assert_eq!(verdict, band);
            } else {
                prop_assert_eq!(stats.answered(), 0);
            }
        }

        #[test]
        fn url_ids_are_path_safe(url in ".{0,200}") {
            let id = url_id(&url);
            prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }
}

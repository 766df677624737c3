//! The pure parts of the AbuseIPDB enricher: the `/api/v2/check` request URL, the response
//! parser, the verdict rule and the category table. No I/O here, so everything is tested
//! with golden bodies and fuzzed.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use vowguard_core::{Error, ProviderVerdict, ThreatIntel, Verdict};
use vowguard_http::reqwest::Url;
use vowguard_http::snippet;

/// The provider name in [`ProviderVerdict::provider`].
pub const PROVIDER: &str = "abuseipdb";

/// How far back reports are considered (`maxAgeInDays`), in days.
pub const MAX_AGE_IN_DAYS: u32 = 90;

/// `abuseConfidenceScore` at or above which an address is [`Verdict::Malicious`].
pub const MALICIOUS_SCORE: u8 = 75;

/// `abuseConfidenceScore` at or above which an address is [`Verdict::Suspicious`].
pub const SUSPICIOUS_SCORE: u8 = 25;

/// Most categories kept for one address (the most reported first).
pub const MAX_CATEGORIES: usize = 10;

/// AbuseIPDB's report categories (ids 1..=23), as vowguard category names.
pub const CATEGORIES: [(u8, &str); 23] = [
    (1, "dns-compromise"),
    (2, "dns-poisoning"),
    (3, "fraud-orders"),
    (4, "ddos-attack"),
    (5, "ftp-brute-force"),
    (6, "ping-of-death"),
    (7, "phishing"),
    (8, "fraud-voip"),
    (9, "open-proxy"),
    (10, "web-spam"),
    (11, "email-spam"),
    (12, "blog-spam"),
    (13, "vpn-ip"),
    (14, "port-scan"),
    (15, "hacking"),
    (16, "sql-injection"),
    (17, "spoofing"),
    (18, "brute-force"),
    (19, "bad-web-bot"),
    (20, "exploited-host"),
    (21, "web-app-attack"),
    (22, "ssh"),
    (23, "iot-targeted"),
];

/// The vowguard name of AbuseIPDB category `id` (`18` -> `brute-force`), `None` for ids
/// outside the documented table.
pub fn category_name(id: i64) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(n, _)| i64::from(*n) == id)
        .map(|(_, name)| *name)
}

/// The verdict for an `abuseConfidenceScore`: `>= 75` malicious, `>= 25` suspicious,
/// below that benign (AbuseIPDB knows every public address; a score of 0 with no reports
/// means "nobody reported it", which is benign, not unknown).
pub fn verdict_for(score: u8) -> Verdict {
    if score >= MALICIOUS_SCORE {
        Verdict::Malicious
    } else if score >= SUSPICIOUS_SCORE {
        Verdict::Suspicious
    } else {
        Verdict::Benign
    }
}

/// `{base}/api/v2/check?ipAddress=<ip>&maxAgeInDays=<days>&verbose`.
pub fn check_url(base: &Url, ip: IpAddr, max_age_in_days: u32) -> Result<Url, Error> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| Error::config("`base_url` cannot carry a path"))?
        .pop_if_empty()
        .extend(["api", "v2", "check"]);
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("ipAddress", &ip.to_string())
        .append_pair("maxAgeInDays", &max_age_in_days.to_string())
        .append_key_only("verbose");
    Ok(url)
}

#[derive(Deserialize)]
struct CheckResponse {
    data: Option<CheckData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckData {
    #[serde(default)]
    is_public: Option<bool>,
    #[serde(default)]
    is_whitelisted: Option<bool>,
    #[serde(default)]
    abuse_confidence_score: Option<f64>,
    #[serde(default)]
    last_reported_at: Option<String>,
    #[serde(default)]
    reports: Option<Vec<Report>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    #[serde(default)]
    reported_at: Option<String>,
    #[serde(default)]
    categories: Option<Vec<serde_json::Value>>,
}

fn timestamp(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a `/api/v2/check` answer about `ip`.
///
/// * `Ok(None)` (unknown): the address is not public (`isPublic: false`); AbuseIPDB holds no
///   reports for private, reserved or documentation ranges.
/// * Otherwise the verdict follows [`verdict_for`] on `abuseConfidenceScore` (clamped to
///   0..=100), except that a whitelisted address is always benign; the score is the
///   confidence score. Categories are the names of the report categories (verbose mode), the
///   most reported first, at most [`MAX_CATEGORIES`]; `last_seen` is `lastReportedAt`,
///   `first_seen` the oldest report in the `maxAgeInDays` window.
/// * A body that is not the documented JSON is an `Unavailable` error quoting it.
pub fn parse_check(body: &str, ip: &str) -> Result<Option<ThreatIntel>, Error> {
    let response: CheckResponse = serde_json::from_str(body).map_err(|e| unreadable(body, &e))?;
    let Some(data) = response.data else {
        return Err(Error::unavailable(format!(
            "unreadable AbuseIPDB check response (no `data`): {}",
            snippet(body)
        )));
    };
    if data.is_public == Some(false) {
        return Ok(None);
    }
    let Some(raw_score) = data.abuse_confidence_score.filter(|s| s.is_finite()) else {
        return Err(Error::unavailable(format!(
            "unreadable AbuseIPDB check response (no `abuseConfidenceScore`): {}",
            snippet(body)
        )));
    };
    let whitelisted = data.is_whitelisted == Some(true);
    // Clamped to 0..=100 first, so the cast cannot truncate.
    let score = if whitelisted {
        0
    } else {
        raw_score.round().clamp(0.0, 100.0) as u8
    };
    let verdict = if whitelisted {
        Verdict::Benign
    } else {
        verdict_for(score)
    };

    let reports = data.reports.unwrap_or_default();
    let mut counts = [0_usize; CATEGORIES.len() + 1];
    let mut first_seen: Option<DateTime<Utc>> = None;
    for report in &reports {
        let ids = report
            .categories
            .iter()
            .flatten()
            .filter_map(|id| id.as_i64());
        for id in ids.filter(|id| (1..=CATEGORIES.len() as i64).contains(id)) {
            counts[id as usize] += 1;
        }
        if let Some(at) = timestamp(report.reported_at.as_deref()) {
            first_seen = Some(first_seen.map_or(at, |f| f.min(at)));
        }
    }
    let mut ranked: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(id, n)| (id, *n))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let categories = if whitelisted {
        Vec::new()
    } else {
        ranked
            .into_iter()
            .filter_map(|(id, _)| category_name(id as i64))
            .take(MAX_CATEGORIES)
            .map(str::to_owned)
            .collect()
    };
    let last_seen = timestamp(data.last_reported_at.as_deref());
    let first_seen = match (first_seen, last_seen) {
        (Some(f), Some(l)) => Some(f.min(l)),
        (f, l) => f.or(l),
    };
    Ok(Some(ThreatIntel {
        verdict,
        score,
        providers: vec![ProviderVerdict {
            provider: PROVIDER.to_owned(),
            indicator: ip.to_owned(),
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

fn unreadable(body: &str, error: &serde_json::Error) -> Error {
    Error::unavailable(format!(
        "unreadable AbuseIPDB check response ({error}): {}",
        snippet(body)
    ))
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    detail: Option<String>,
}

/// The vendor's reason from an error body `{"errors":[{"detail":"...","status":401}]}`,
/// details joined with `; `; the raw body when it has another shape.
pub fn error_reason(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) => {
            let details: Vec<&str> = parsed
                .errors
                .iter()
                .filter_map(|e| e.detail.as_deref())
                .collect();
            if details.is_empty() {
                body.to_owned()
            } else {
                details.join("; ")
            }
        }
        Err(_) => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use vowguard_core::ErrorKind;

    /// A verbose answer shaped like AbuseIPDB's documentation example.
    const REPORTED: &str = r#"{
      "data": {
        "ipAddress": "118.25.6.39",
        "isPublic": true,
        "ipVersion": 4,
        "isWhitelisted": false,
        "abuseConfidenceScore": 100,
        "countryCode": "CN",
        "countryName": "China",
        "usageType": "Data Center/Web Hosting/Transit",
        "isp": "Tencent Cloud Computing (Beijing) Co. Ltd",
        "domain": "tencent.com",
        "hostnames": [],
        "isTor": false,
        "totalReports": 3,
        "numDistinctUsers": 3,
        "lastReportedAt": "2018-12-20T20:55:14+00:00",
        "reports": [
          {"reportedAt": "2018-12-20T20:55:14+00:00", "comment": "Dec 20 20:55:14 srv206 sshd[13937]: Invalid user admin from 118.25.6.39",
           "categories": [18, 22], "reporterId": 1, "reporterCountryCode": "US", "reporterCountryName": "United States"},
          {"reportedAt": "2018-12-19T03:12:00+00:00", "comment": "port scan", "categories": [14, 18],
           "reporterId": 2, "reporterCountryCode": "DE", "reporterCountryName": "Germany"},
          {"reportedAt": "2018-12-18T10:00:00+00:00", "comment": "", "categories": [18, 99, "x"],
           "reporterId": 3, "reporterCountryCode": "FR", "reporterCountryName": "France"}
        ]
      }
    }"#;

    #[test]
    fn reported_address_is_malicious_with_ranked_categories() {
        let intel = parse_check(REPORTED, "118.25.6.39").unwrap().unwrap();
        assert_eq!(intel.verdict, Verdict::Malicious);
        assert_eq!(intel.score, 100);
        // 18 three times, then 14 and 22 once each (by id); 99 and "x" ignored.
        assert_eq!(intel.categories, ["brute-force", "port-scan", "ssh"]);
        assert!(intel.actors.is_empty());
        assert_eq!(intel.tlp, None);
        assert_eq!(
            intel.last_seen,
            Some(Utc.with_ymd_and_hms(2018, 12, 20, 20, 55, 14).unwrap())
        );
        assert_eq!(
            intel.first_seen,
            Some(Utc.with_ymd_and_hms(2018, 12, 18, 10, 0, 0).unwrap())
        );
        assert_eq!(
            intel.providers,
            [ProviderVerdict {
                provider: "abuseipdb".into(),
                indicator: "118.25.6.39".into(),
                verdict: Verdict::Malicious,
                score: Some(100),
            }]
        );
    }

    #[test]
    fn verdict_bands() {
        for (score, verdict) in [
            (0, Verdict::Benign),
            (24, Verdict::Benign),
            (25, Verdict::Suspicious),
            (74, Verdict::Suspicious),
            (75, Verdict::Malicious),
            (100, Verdict::Malicious),
        ] {
            assert_eq!(verdict_for(score), verdict, "{score}");
            let body = format!(
                r#"{{"data":{{"ipAddress":"198.51.100.1","isPublic":true,"abuseConfidenceScore":{score},"totalReports":1,"lastReportedAt":null}}}}"#
            );
            let intel = parse_check(&body, "198.51.100.1").unwrap().unwrap();
            assert_eq!((intel.verdict, intel.score), (verdict, score));
        }
    }

    #[test]
    fn clean_public_address_is_benign_not_unknown() {
        let body = r#"{"data":{"ipAddress":"8.8.8.8","isPublic":true,"ipVersion":4,"isWhitelisted":null,
            "abuseConfidenceScore":0,"countryCode":"US","usageType":"Content Delivery Network","isp":"Google LLC",
            "domain":"google.com","hostnames":["dns.google"],"isTor":false,"totalReports":0,"numDistinctUsers":0,
            "lastReportedAt":null,"reports":[]}}"#;
        let intel = parse_check(body, "8.8.8.8").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Benign, 0));
        assert!(intel.categories.is_empty());
        assert_eq!((intel.first_seen, intel.last_seen), (None, None));
    }

    #[test]
    fn private_address_is_unknown() {
        let body = r#"{"data":{"ipAddress":"10.0.0.1","isPublic":false,"ipVersion":4,"isWhitelisted":false,
            "abuseConfidenceScore":0,"countryCode":null,"usageType":"Reserved","isp":"Private IP Address LAN",
            "domain":null,"hostnames":[],"totalReports":0,"numDistinctUsers":0,"lastReportedAt":null}}"#;
        assert_eq!(parse_check(body, "10.0.0.1").unwrap(), None);
    }

    #[test]
    fn whitelisted_address_is_benign_without_categories() {
        let body = r#"{"data":{"ipAddress":"1.1.1.1","isPublic":true,"isWhitelisted":true,
            "abuseConfidenceScore":0,"totalReports":12,"lastReportedAt":"2024-01-02T03:04:05+00:00",
            "reports":[{"reportedAt":"2024-01-02T03:04:05+00:00","categories":[14]}]}}"#;
        let intel = parse_check(body, "1.1.1.1").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Benign, 0));
        assert!(intel.categories.is_empty());
    }

    #[test]
    fn out_of_range_scores_are_clamped() {
        let body = r#"{"data":{"isPublic":true,"abuseConfidenceScore":250}}"#;
        assert_eq!(parse_check(body, "x").unwrap().unwrap().score, 100);
        let body = r#"{"data":{"isPublic":true,"abuseConfidenceScore":-3}}"#;
        assert_eq!(parse_check(body, "x").unwrap().unwrap().score, 0);
    }

    #[test]
    fn malformed_bodies_are_clear_errors() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            "{\"data\":",
            "[]",
            "{}",
            "{\"data\":{\"isPublic\":true}}",
            "{\"data\":{\"abuseConfidenceScore\":\"high\"}}",
        ] {
            let e = parse_check(body, "203.0.113.7").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{body}");
            assert!(e.to_string().contains("AbuseIPDB"), "{e}");
        }
    }

    #[test]
    fn category_table_is_complete() {
        for id in 1..=23 {
            assert!(category_name(id).is_some(), "{id}");
        }
        assert_eq!(category_name(0), None);
        assert_eq!(category_name(24), None);
        assert_eq!(category_name(18), Some("brute-force"));
        assert_eq!(category_name(22), Some("ssh"));
        assert_eq!(category_name(14), Some("port-scan"));
    }

    #[test]
    fn check_url_shape() {
        let base = Url::parse("https://api.abuseipdb.com").unwrap();
        let url = check_url(&base, "203.0.113.7".parse().unwrap(), 90).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.abuseipdb.com/api/v2/check?ipAddress=203.0.113.7&maxAgeInDays=90&verbose"
        );
        let base = Url::parse("http://127.0.0.1:8080/proxy/?x=1").unwrap();
        let url = check_url(&base, "2001:db8::1".parse().unwrap(), 30).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/proxy/api/v2/check?ipAddress=2001%3Adb8%3A%3A1&maxAgeInDays=30&verbose"
        );
    }

    #[test]
    fn error_reasons() {
        let body = r#"{"errors":[{"detail":"Authentication failed. Your API key is either missing, incorrect, or revoked.","status":401}]}"#;
        assert_eq!(
            error_reason(body),
            "Authentication failed. Your API key is either missing, incorrect, or revoked."
        );
        let body = r#"{"errors":[{"detail":"The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).","status":422,"source":{"parameter":"ipAddress"}}]}"#;
        assert!(error_reason(body).starts_with("The ip address must be"));
        assert_eq!(error_reason("Bad Gateway"), "Bad Gateway");
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9:+. -]{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("data".to_owned()),
                            Just("isPublic".to_owned()),
                            Just("isWhitelisted".to_owned()),
                            Just("abuseConfidenceScore".to_owned()),
                            Just("reports".to_owned()),
                            Just("categories".to_owned()),
                            Just("reportedAt".to_owned()),
                            Just("lastReportedAt".to_owned()),
                            "[a-z]{1,8}",
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
            let _ = parse_check(&body, "203.0.113.7");
            let _ = error_reason(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let body = value.to_string();
            let _ = parse_check(&body, "203.0.113.7");
            let wrapped = serde_json::json!({ "data": value }).to_string();
            if let Ok(Some(intel)) = parse_check(&wrapped, "203.0.113.7") {
                prop_assert!(intel.score <= 100);
                prop_assert!(intel.categories.len() <= MAX_CATEGORIES);
            }
        }

        #[test]
        fn any_score_gives_a_consistent_verdict(score in any::<f64>(), reports in prop::collection::vec(prop::collection::vec(any::<i64>(), 0..4), 0..8)) {
            let reports: Vec<_> = reports.into_iter().map(|c| serde_json::json!({"categories": c})).collect();
            let body = serde_json::json!({"data": {"isPublic": true, "abuseConfidenceScore": score, "reports": reports}}).to_string();
            match parse_check(&body, "203.0.113.7") {
                Ok(Some(intel)) => {
                    prop_assert_eq!(intel.verdict, verdict_for(intel.score));
                    prop_assert!(intel.score <= 100);
                }
                Ok(None) => prop_assert!(false, "a public address is never unknown"),
                // A non-finite score serialises as null: no score.
                Err(e) => prop_assert!(!score.is_finite(), "{}", e),
            }
        }
    }
}

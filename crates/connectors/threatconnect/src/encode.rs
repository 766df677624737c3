//! The pure parts of the ThreatConnect enricher: indicator summaries and URLs, the
//! verdict/score rule and the answer parser. No I/O here, so everything is tested with
//! golden bodies and fuzzed.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use vowguard_core::{Error, ProviderVerdict, ThreatIntel, Verdict};
use vowguard_enrich::{IndicatorKind, band, category_slug, most_restrictive_tlp, tlp_rank};
use vowguard_http::reqwest::Url;
use vowguard_http::snippet;

/// The provider name in [`ProviderVerdict::provider`].
pub const PROVIDER: &str = "threatconnect";

/// Most categories (tags) kept for one indicator.
pub const MAX_CATEGORIES: usize = 10;

/// The additional `fields` asked for: the ThreatAssess fields, tags and security labels
/// (TLP).
pub const FIELDS: [&str; 3] = ["threatAssess", "tags", "securityLabels"];

/// The rating from which an indicator is [`Verdict::Malicious`] (ThreatConnect's "Moderate
/// Threat", 3 skulls); from above 0 it is [`Verdict::Suspicious`].
pub const MALICIOUS_RATING: f64 = 3.0;

/// Confidence below this (but above 0, "unassessed") lowers the verdict one step:
/// ThreatConnect's "Improbable" (1-25) and "Doubtful" (26-49).
pub const TRUSTED_CONFIDENCE: f64 = 50.0;

/// The indicator's summary as ThreatConnect writes it: hashes in upper case (as its File
/// summaries are), host names in lower case, addresses and URLs as they are.
pub fn summary(kind: &IndicatorKind, value: &str) -> String {
    match kind {
        IndicatorKind::FileHash => value.trim().to_ascii_uppercase(),
        IndicatorKind::Domain => value.trim().trim_end_matches('.').to_ascii_lowercase(),
        IndicatorKind::Ip | IndicatorKind::Url => value.trim().to_owned(),
    }
}

/// `{base}/v3/indicators/{summary}?fields=threatAssess&fields=tags&fields=securityLabels`
/// (`&owner=...` with an owner); the summary is one percent-encoded path segment (a URL's
/// `/`, `?` and `#` too, see [`vowguard_enrich::indicator_url`]).
pub fn indicator_url(base: &Url, summary: &str, owner: Option<&str>) -> Result<Url, Error> {
    let mut url = vowguard_enrich::indicator_url(base, &["v3", "indicators", summary])?;
    {
        let mut query = url.query_pairs_mut();
        for field in FIELDS {
            query.append_pair("fields", field);
        }
        if let Some(owner) = owner {
            query.append_pair("owner", owner);
        }
    }
    Ok(url)
}

/// The verdict and 0..=100 score from a threat `rating` (0..=5 skulls), a `confidence`
/// (0..=100, 0 = unassessed) and, when present, the ThreatAssess score (0..=1000):
///
/// * rating 0 (unrated) -> unknown (`None`);
/// * rating at least [`MALICIOUS_RATING`] (3, "Moderate") -> malicious, above 0 ->
///   suspicious; a confidence from 1 to 49 ("Improbable", "Doubtful") lowers that one step
///   (malicious -> suspicious -> benign);
/// * score: ThreatAssess score / 10 when present, else `rating × 20 × confidence / 100`
///   (confidence 0 counting as 100), rounded and clamped into the verdict's band (Malicious
///   75..=100, Suspicious 25..=74, Benign 0..=24).
pub fn verdict_for(
    rating: f64,
    confidence: f64,
    assess_score: Option<f64>,
) -> Option<(Verdict, u8)> {
    if !rating.is_finite() || rating <= 0.0 {
        return None;
    }
    let rating = rating.min(5.0);
    let confidence = if confidence.is_finite() {
        confidence.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let mut verdict = if rating >= MALICIOUS_RATING {
        Verdict::Malicious
    } else {
        Verdict::Suspicious
    };
    if confidence > 0.0 && confidence < TRUSTED_CONFIDENCE {
        verdict = match verdict {
            Verdict::Malicious => Verdict::Suspicious,
            _ => Verdict::Benign,
        };
    }
    let raw = match assess_score.filter(|s| s.is_finite() && *s > 0.0) {
        Some(score) => score.min(1000.0) / 10.0,
        None => {
            let weight = if confidence > 0.0 { confidence } else { 100.0 };
            rating * 20.0 * weight / 100.0
        }
    };
    let (low, high) = band(verdict);
    Some((verdict, (raw.round() as u8).clamp(low, high)))
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<Indicator>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Indicator {
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    false_positive_flag: Option<bool>,
    #[serde(default)]
    rating: Option<f64>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    threat_assess_score: Option<f64>,
    #[serde(default)]
    threat_assess_rating: Option<f64>,
    #[serde(default)]
    threat_assess_confidence: Option<f64>,
    #[serde(default)]
    tags: Option<Named>,
    #[serde(default)]
    security_labels: Option<Named>,
    #[serde(default)]
    first_seen: Option<Value>,
    #[serde(default)]
    date_added: Option<Value>,
    #[serde(default)]
    last_seen: Option<Value>,
    #[serde(default)]
    last_observed: Option<Value>,
}

/// `{"data": [{"name": ...}, ...]}`, how v3 nests tags and security labels.
#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    data: Option<Vec<Value>>,
}

impl Named {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.data
            .iter()
            .flatten()
            .filter_map(|v| v.get("name").and_then(Value::as_str))
    }
}

fn timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a `/v3/indicators/{summary}` answer about `indicator`.
///
/// * `active: false` (retired by its owner) -> unknown (`Ok(None)`); `falsePositiveFlag`
///   -> [`Verdict::Benign`], score 0.
/// * Otherwise [`verdict_for`] on the owner's `rating` and `confidence`, or, when the
///   owner has not rated it, on `threatAssessRating` and `threatAssessConfidence`; with
///   `threatAssessScore` for the score. Unrated -> unknown.
/// * Categories: tag names, cleaned ([`vowguard_enrich::category_slug`]), at most
///   [`MAX_CATEGORIES`]; TLP: the most restrictive `TLP:` security label, as `tlp:amber`;
///   `first_seen`: `firstSeen` (else `dateAdded`); `last_seen`: `lastSeen` (else
///   `lastObserved`).
/// * `status: Failure`, or a body that is not the documented JSON, is an `Unavailable`
///   error quoting it.
pub fn parse_indicator(body: &str, indicator: &str) -> Result<Option<ThreatIntel>, Error> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| {
        Error::unavailable(format!(
            "unreadable ThreatConnect response ({e}): {}",
            snippet(body)
        ))
    })?;
    if envelope
        .status
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case("success"))
    {
        return Err(Error::unavailable(format!(
            "ThreatConnect answered {}: {}",
            snippet(envelope.status.as_deref().unwrap_or_default()),
            snippet(envelope.message.as_deref().unwrap_or_default())
        )));
    }
    let Some(data) = envelope.data else {
        return Err(Error::unavailable(format!(
            "unreadable ThreatConnect response (no `data`): {}",
            snippet(body)
        )));
    };
    if data.active == Some(false) {
        return Ok(None);
    }
    let verdict = if data.false_positive_flag == Some(true) {
        Some((Verdict::Benign, 0))
    } else {
        let owner_rating = data.rating.filter(|r| r.is_finite() && *r > 0.0);
        let (rating, confidence) = match owner_rating {
            Some(rating) => (rating, data.confidence.unwrap_or(0.0)),
            None => (
                data.threat_assess_rating.unwrap_or(0.0),
                data.threat_assess_confidence.unwrap_or(0.0),
            ),
        };
        verdict_for(rating, confidence, data.threat_assess_score)
    };
    let Some((verdict, score)) = verdict else {
        return Ok(None);
    };

    let mut categories: Vec<String> = Vec::new();
    for name in data.tags.iter().flat_map(Named::names) {
        if categories.len() >= MAX_CATEGORIES {
            break;
        }
        if let Some(c) = category_slug(name)
            && !categories.contains(&c)
        {
            categories.push(c);
        }
    }
    let mut tlp: Option<String> = None;
    for name in data.security_labels.iter().flat_map(Named::names) {
        let label = name.trim().to_ascii_lowercase();
        if tlp_rank(&label).is_some() {
            tlp = most_restrictive_tlp(tlp, Some(label));
        }
    }
    let first_seen =
        timestamp(data.first_seen.as_ref()).or_else(|| timestamp(data.date_added.as_ref()));
    let last_seen =
        timestamp(data.last_seen.as_ref()).or_else(|| timestamp(data.last_observed.as_ref()));
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
        tlp,
        first_seen,
        last_seen,
    }))
}

/// The vendor's reason from an error body `{"status": "Failure", "message": "..."}`; the raw
/// body otherwise.
pub fn error_reason(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use vowguard_core::ErrorKind;

    /// A host answer shaped like v3's with `fields=threatAssess,tags,securityLabels`.
    const MALICIOUS_HOST: &str = r#"{
      "data": {
        "id": 3, "ownerId": 1, "ownerName": "Demo Organization",
        "dateAdded": "2021-10-26T12:40:00Z", "lastModified": "2021-11-02T14:58:55Z",
        "webLink": "https://app.threatconnect.com/#/details/indicators/3/overview",
        "type": "Host", "rating": 4.00, "confidence": 85, "description": "Registry phishing host.",
        "summary": "badguy.example", "privateFlag": false, "active": true, "activeLocked": false,
        "hostName": "badguy.example", "dnsActive": true, "whoisActive": false,
        "threatAssessRating": 3.5, "threatAssessConfidence": 70.0, "threatAssessScore": 812,
        "tags": {"data": [{"id": 1, "name": "Phishing"}, {"id": 2, "name": "Wedding Registry Fraud"}, {"id": 3, "name": "phishing"}]},
        "securityLabels": {"data": [{"name": "TLP:GREEN"}, {"name": "TLP:AMBER"}, {"name": "PII"}]},
        "firstSeen": "2021-10-20T00:00:00Z", "lastSeen": "2026-06-18T17:45:10Z"
      },
      "status": "Success"
    }"#;

    #[test]
    fn rated_indicator_gives_verdict_tags_and_tlp() {
        let intel = parse_indicator(MALICIOUS_HOST, "badguy.example")
            .unwrap()
            .unwrap();
        // rating 4 (>= 3) with confidence 85: malicious; ThreatAssess 812 -> 81.
        assert_eq!((intel.verdict, intel.score), (Verdict::Malicious, 81));
        assert_eq!(intel.categories, ["phishing", "wedding-registry-fraud"]);
        assert_eq!(intel.tlp.as_deref(), Some("tlp:amber"));
        assert_eq!(
            intel.first_seen,
            Some(Utc.with_ymd_and_hms(2021, 10, 20, 0, 0, 0).unwrap())
        );
        assert_eq!(
            intel.last_seen,
            Some(Utc.with_ymd_and_hms(2026, 6, 18, 17, 45, 10).unwrap())
        );
        assert_eq!(
            intel.providers,
            [ProviderVerdict {
                provider: "threatconnect".into(),
                indicator: "badguy.example".into(),
                verdict: Verdict::Malicious,
                score: Some(81),
            }]
        );
    }

    /// rating, confidence, ThreatAssess score, expected verdict and score.
    type Case = (f64, f64, Option<f64>, Option<(Verdict, u8)>);

    #[test]
    fn verdict_table() {
        use Verdict::*;
        let cases: &[Case] = &[
            (0.0, 90.0, Some(900.0), None),
            (f64::NAN, 90.0, None, None),
            (1.0, 0.0, None, Some((Suspicious, 25))),
            (2.0, 60.0, None, Some((Suspicious, 25))),
            (2.5, 100.0, None, Some((Suspicious, 50))),
            (3.0, 0.0, None, Some((Malicious, 75))),
            (5.0, 95.0, None, Some((Malicious, 95))),
            (5.0, 100.0, Some(1000.0), Some((Malicious, 100))),
            (9.0, 100.0, Some(5000.0), Some((Malicious, 100))),
            (4.0, 30.0, None, Some((Suspicious, 25))),
            (4.0, 30.0, Some(600.0), Some((Suspicious, 60))),
            (2.0, 20.0, Some(300.0), Some((Benign, 24))),
            (1.0, 10.0, None, Some((Benign, 2))),
            (4.0, 85.0, Some(0.0), Some((Malicious, 75))),
        ];
        for (rating, confidence, assess, expected) in cases {
            assert_eq!(
                verdict_for(*rating, *confidence, *assess),
                *expected,
                "rating {rating} confidence {confidence} assess {assess:?}"
            );
        }
    }

    #[test]
    fn threat_assess_stands_in_for_an_unrated_owner() {
        let body = r#"{"status": "Success", "data": {"summary": "203.0.113.7", "type": "Address", "active": true,
            "threatAssessRating": 2.0, "threatAssessConfidence": 65, "threatAssessScore": 354}}"#;
        let intel = parse_indicator(body, "203.0.113.7").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Suspicious, 35));
        assert!(intel.categories.is_empty() && intel.tlp.is_none());
    }

    #[test]
    fn unrated_and_inactive_are_unknown_false_positive_benign() {
        for body in [
            r#"{"status": "Success", "data": {"summary": "x", "active": true}}"#,
            r#"{"status": "Success", "data": {"summary": "x", "rating": 0, "threatAssessRating": 0}}"#,
            r#"{"status": "Success", "data": {"summary": "x", "active": false, "rating": 5, "confidence": 100}}"#,
        ] {
            assert_eq!(parse_indicator(body, "x").unwrap(), None, "{body}");
        }
        let body = r#"{"status": "Success", "data": {"summary": "x", "rating": 5, "confidence": 100, "falsePositiveFlag": true}}"#;
        let intel = parse_indicator(body, "x").unwrap().unwrap();
        assert_eq!((intel.verdict, intel.score), (Verdict::Benign, 0));
    }

    #[test]
    fn failures_and_malformed_bodies_are_clear_errors() {
        for body in [
            "",
            "<html>502</html>",
            "{}",
            r#"{"status": "Success"}"#,
            r#"{"data": {"rating": "high"}}"#,
            r#"{"data": {"tags": {"data": 5}}}"#,
        ] {
            let e = parse_indicator(body, "x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{body}");
            assert!(e.to_string().contains("ThreatConnect"), "{e}");
        }
        let e = parse_indicator(
            r#"{"status": "Failure", "message": "Owner not found\r\n"}"#,
            "x",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ThreatConnect answered Failure: Owner not found  "
        );
    }

    #[test]
    fn summaries_and_urls() {
        assert_eq!(
            summary(&IndicatorKind::FileHash, "44d88612fea8a8f36de82e1278abb02f"),
            "44D88612FEA8A8F36DE82E1278ABB02F"
        );
        assert_eq!(
            summary(&IndicatorKind::Domain, "Evil.Example."),
            "evil.example"
        );
        assert_eq!(summary(&IndicatorKind::Url, "http://a/B"), "http://a/B");
        let base = Url::parse("https://app.threatconnect.com/api").unwrap();
        assert_eq!(
            indicator_url(&base, "203.0.113.7", None).unwrap().as_str(),
            "https://app.threatconnect.com/api/v3/indicators/203.0.113.7?fields=threatAssess&fields=tags&fields=securityLabels"
        );
        assert_eq!(
            indicator_url(
                &base,
                "http://evil.example/a b?c=d#e\r\n",
                Some("Acme & Co")
            )
            .unwrap()
            .as_str(),
            "https://app.threatconnect.com/api/v3/indicators/http:%2F%2Fevil.example%2Fa%20b%3Fc%3Dd%23e%0D%0A?fields=threatAssess&fields=tags&fields=securityLabels&owner=Acme+%26+Co"
        );
        let base = Url::parse("http://127.0.0.1:9/tc/api/").unwrap();
        assert_eq!(
            indicator_url(&base, "2001:db8::1", None).unwrap().path(),
            "/tc/api/v3/indicators/2001:db8::1"
        );
    }

    #[test]
    fn error_reasons() {
        assert_eq!(
            error_reason(r#"{"status": "Failure", "message": "Invalid token"}"#),
            "Invalid token"
        );
        assert_eq!(error_reason("nope"), "nope");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(body in ".{0,200}") {
            let _ = parse_indicator(&body, "x");
            let _ = error_reason(&body);
        }

        #[test]
        fn scores_lie_in_their_band(rating in -1.0f64..7.0, confidence in -10.0f64..120.0,
                                    assess in proptest::option::of(-10.0f64..2000.0)) {
            if let Some((verdict, score)) = verdict_for(rating, confidence, assess) {
                let (low, high) = band(verdict);
                prop_assert!((low..=high).contains(&score));
                prop_assert!(verdict != Verdict::Unknown);
            } else {
                prop_assert!(rating <= 0.0);
            }
        }

        #[test]
        fn arbitrary_fields_never_panic(rating in any::<f64>(), confidence in any::<f64>(), score in any::<f64>(),
                                        tags in prop::collection::vec("\\PC{0,30}", 0..20),
                                        labels in prop::collection::vec("[A-Za-z:+ ]{0,12}", 0..5)) {
            let body = serde_json::json!({"status": "Success", "data": {
                "rating": rating, "confidence": confidence, "threatAssessScore": score,
                "tags": {"data": tags.iter().map(|t| serde_json::json!({"name": t})).collect::<Vec<_>>()},
                "securityLabels": {"data": labels.iter().map(|t| serde_json::json!({"name": t})).collect::<Vec<_>>()},
            }}).to_string();
            if let Ok(Some(intel)) = parse_indicator(&body, "x") {
                prop_assert!(intel.categories.len() <= MAX_CATEGORIES);
                prop_assert!(intel.categories.iter().all(|c| !c.chars().any(char::is_control)));
                prop_assert!(intel.tlp.iter().all(|t| tlp_rank(t).is_some()));
            }
        }
    }
}

use super::*;

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::json;
use vowguard_core::{
    Enrichment, Outcome, PatternMatch, Season, Severity, ThreatIntel, Verdict, WeddingContext,
    WeddingPhase,
};

/// An independent LEEF parser: returns the header fields (version first; for 2.0 the raw
/// delimiter field last) and the key/value pairs.
fn parse_leef(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    assert!(!line.contains(['\r', '\n']), "raw CR/LF in {line:?}");
    let (header, rest, delim) = if line.starts_with("LEEF:2.0|") {
        let parts: Vec<&str> = line.splitn(7, '|').collect();
        assert_eq!(parts.len(), 7, "{line:?}");
        let spec = parts[5];
        let delim = if spec.chars().count() == 1 {
            spec.chars().next().unwrap()
        } else {
            let hex = spec.trim_start_matches("0x").trim_start_matches('x');
            char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap()
        };
        (parts[..6].to_vec(), parts[6], delim)
    } else {
        assert!(line.starts_with("LEEF:1.0|"), "{line:?}");
        let parts: Vec<&str> = line.splitn(6, '|').collect();
        assert_eq!(parts.len(), 6, "{line:?}");
        (parts[..5].to_vec(), parts[5], '\t')
    };
    let pairs = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(delim)
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("key=value");
                assert!(
                    k.bytes().all(|b| b.is_ascii_alphanumeric()) && !k.is_empty(),
                    "key {k:?}"
                );
                (k.to_owned(), v.to_owned())
            })
            .collect()
    };
    (header.into_iter().map(str::to_owned).collect(), pairs)
}

fn event_a() -> Event {
    Event::from_json_value(json!({
        "id": "evt-1", "timestamp": "2026-06-20T14:03:07.123+02:00", "category": "data_export",
        "action": "guest_list.export", "outcome": "success", "severity": "critical",
        "risk_score": 91, "message": "guest list exported", "user_id": "u-42",
        "source_ip": "203.0.113.7", "resource_type": "guest_lists", "resource_id": "gl-9",
        "wedding_id": "w-1", "record_count": 450,
        "labels": {"env": "prod", "deploy.region": "eu-west"}
    }))
    .unwrap()
}

fn event_b() -> Event {
    let mut e = Event::new(Category::Authentication, "login\n|x", Severity::Low);
    e.id = "evt-2".into();
    e.timestamp = "2026-06-21T09:30:00.5Z".parse().unwrap();
    e.outcome = Outcome::Failure;
    e.risk_score = Some(47);
    e.message = Some("bad | pass=\"x\" ^ end\r\nnext\tline".into());
    e.user_name = Some("eve|admin^".into());
    e.user_agent = Some("curl/8.0 a=b".into());
    e.url = Some("https://x.test/login?a=1&b=2".into());
    e.source_ip = Some("2001:db8::1".parse().unwrap());
    e.attributes.insert("policy".into(), json!("mfa^required"));
    e.labels.insert("日本".into(), "skipped".into());
    e.labels.insert("a.b".into(), "1".into());
    e.labels.insert("a_b".into(), "clash".into());
    e.enrichment = Enrichment {
        threat: Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 87,
            ..ThreatIntel::default()
        }),
        wedding: Some(WeddingContext {
            wedding_id: "w-2".into(),
            date: NaiveDate::from_ymd_opt(2026, 6, 21).unwrap(),
            timezone: "Europe/London".into(),
            phase: WeddingPhase::DayOf,
            days_until: 0,
            weekend: true,
            season: Season::Summer,
            guest_count: None,
            vendor_count: None,
        }),
        patterns: vec![
            PatternMatch {
                pattern: "credential_stuffing".into(),
                confidence: 0.9,
                indicators: vec![],
            },
            PatternMatch {
                pattern: "guest_list_scraping".into(),
                confidence: 0.5,
                indicators: vec![],
            },
        ],
        ..Enrichment::default()
    };
    e
}

fn encoder() -> LeefEncoder {
    LeefEncoder::new("vowguard", "wedding-security", "1.2.3")
}

const A_PAIRS: &[&str] = &[
    "devTime=2026-06-20T12:03:07.123+0000",
    "devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    "cat=data_export",
    "sev=10",
    "src=203.0.113.7",
    "identSrc=203.0.113.7",
    "usrName=u-42",
    "resource=guest_lists/gl-9",
    "eventId=evt-1",
    "action=guest_list.export",
    "outcome=success",
    "userId=u-42",
    "weddingId=w-1",
    "riskScore=91",
    "recordCount=450",
    "msg=guest list exported",
    "labelDeployRegion=eu-west",
    "labelEnv=prod",
];

#[test]
fn golden_a_v2_caret() {
    assert_eq!(
        encoder().encode(&event_a()),
        format!(
            "LEEF:2.0|vowguard|wedding-security|1.2.3|data_export.guest_list.export|^|{}",
            A_PAIRS.join("^")
        )
    );
}

#[test]
fn golden_a_v2_hex_tab() {
    let line = encoder()
        .v2(Delimiter::parse("x09").unwrap())
        .encode(&event_a());
    assert_eq!(
        line,
        format!(
            "LEEF:2.0|vowguard|wedding-security|1.2.3|data_export.guest_list.export|x09|{}",
            A_PAIRS.join("\t")
        )
    );
}

#[test]
fn golden_a_v1() {
    assert_eq!(
        encoder().v1().encode(&event_a()),
        format!(
            "LEEF:1.0|vowguard|wedding-security|1.2.3|data_export.guest_list.export|{}",
            A_PAIRS.join("\t")
        )
    );
}

#[test]
fn golden_a_v2_0x5e_written_as_given() {
    let line = encoder()
        .v2(Delimiter::parse("0x5E").unwrap())
        .encode(&event_a());
    assert!(line.starts_with(
        "LEEF:2.0|vowguard|wedding-security|1.2.3|data_export.guest_list.export|0x5E|devTime="
    ));
    assert!(line.ends_with("^labelEnv=prod"));
}

#[test]
fn golden_b_hostile_v2_caret() {
    let pairs = [
        "devTime=2026-06-21T09:30:00.500+0000",
        "devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
        "cat=authentication",
        "sev=5",
        "src=2001:db8::1",
        "identSrc=2001:db8::1",
        "usrName=eve|admin ",
        "url=https://x.test/login?a=1&b=2",
        "policy=mfa required",
        "isLoginEvent=true",
        "eventId=evt-2",
        "action=login |x",
        "outcome=failure",
        "userAgent=curl/8.0 a=b",
        "weddingId=w-2",
        "weddingPhase=day_of",
        "riskScore=47",
        "threatScore=87",
        "threatVerdict=malicious",
        "patterns=credential_stuffing,guest_list_scraping",
        "msg=bad | pass=\"x\"   end  next\tline",
        "labelAB=1",
    ];
    let line = LeefEncoder::new("ac|me\r\n", "wedding-security", "1.2.3").encode(&event_b());
    assert_eq!(
        line,
        format!(
            "LEEF:2.0|ac/me  |wedding-security|1.2.3|authentication.login__x|^|{}",
            pairs.join("^")
        )
    );
}

#[test]
fn golden_b_hostile_v1() {
    let line = LeefEncoder::new("ac|me", "wedding-security", "1.2.3")
        .v1()
        .encode(&event_b());
    assert!(
        line.starts_with("LEEF:1.0|ac/me|wedding-security|1.2.3|authentication.login__x|devTime="),
        "{line}"
    );
    let (_, pairs) = parse_leef(&line);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("msg"), Some("bad | pass=\"x\" ^ end  next line"));
    assert_eq!(get("usrName"), Some("eve|admin^"));
    assert_eq!(get("policy"), Some("mfa^required"));
    assert_eq!(pairs.len(), 22);
}

#[test]
fn delimiter_parsing() {
    assert_eq!(Delimiter::parse("^").unwrap().char(), '^');
    assert_eq!(Delimiter::parse("\t").unwrap().char(), '\t');
    assert_eq!(Delimiter::parse("x09").unwrap().char(), '\t');
    assert_eq!(Delimiter::parse("0x5E").unwrap().char(), '^');
    assert_eq!(Delimiter::parse("0x5e").unwrap().as_written(), "0x5e");
    assert_eq!(
        Delimiter::parse("x7C7").unwrap().char(),
        char::from_u32(0x7C7).unwrap()
    );
    for bad in [
        "", "ab", "x", "0x", "xZZ", "x12345", " ", "|", "=", "a", "7", "x20", "0x7C", "x0A", "x3D",
    ] {
        assert!(Delimiter::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn version_deserialises_from_strings_and_numbers() {
    #[derive(Deserialize)]
    struct T {
        v: LeefVersion,
    }
    for (src, want) in [
        ("v = \"1.0\"", LeefVersion::V1),
        ("v = \"2.0\"", LeefVersion::V2),
        ("v = 1.0", LeefVersion::V1),
        ("v = 2", LeefVersion::V2),
    ] {
        assert_eq!(toml::from_str::<T>(src).unwrap().v, want, "{src}");
    }
    assert!(toml::from_str::<T>("v = \"3.0\"").is_err());
}

#[test]
fn severity_mapping_min_one() {
    let cases = [
        (Severity::Info, None, 1),
        (Severity::Low, None, 3),
        (Severity::Medium, None, 5),
        (Severity::High, None, 8),
        (Severity::Critical, None, 10),
        (Severity::Info, Some(0), 1),
        (Severity::Info, Some(4), 1),
        (Severity::Medium, Some(66), 7),
        (Severity::Info, Some(200), 10),
    ];
    for (severity, risk, expected) in cases {
        let mut e = Event::new(Category::Other, "x", severity);
        e.risk_score = risk;
        assert_eq!(leef_severity(&e), expected, "{severity:?} {risk:?}");
    }
}

#[test]
fn login_and_logout_flags() {
    let flags = |category, action: &str| {
        let e = Event::new(category, action, Severity::Info);
        let attrs = encoder().attributes(&e);
        let has = |k: &str| attrs.iter().any(|(key, v)| key == k && v == "true");
        (has("isLoginEvent"), has("isLogoutEvent"))
    };
    assert_eq!(
        flags(Category::Authentication, "mfa.challenge"),
        (true, false)
    );
    assert_eq!(flags(Category::Other, "user.login"), (true, false));
    assert_eq!(flags(Category::Authentication, "logout"), (false, true));
    assert_eq!(
        flags(Category::DataExport, "guest_list.export"),
        (false, false)
    );
}

#[test]
fn custom_keys_are_alphanumeric() {
    assert_eq!(custom_key("label", "env").as_deref(), Some("labelEnv"));
    assert_eq!(
        custom_key("label", "deploy.region-2").as_deref(),
        Some("labelDeployRegion2")
    );
    assert_eq!(
        custom_key("label", "a b=c|d^e").as_deref(),
        Some("labelABCDE")
    );
    assert_eq!(custom_key("label", "日本"), None);
    assert_eq!(custom_key("label", ""), None);
}

#[test]
fn no_attributes_still_a_record() {
    let header = LeefHeader {
        vendor: "v",
        product: "p",
        version: "1",
        event_id: "e",
    };
    assert_eq!(
        write_record(LeefVersion::V2, &Delimiter::caret(), &header, &[]),
        "LEEF:2.0|v|p|1|e|^|"
    );
    assert_eq!(
        write_record(LeefVersion::V1, &Delimiter::caret(), &header, &[]),
        "LEEF:1.0|v|p|1|e|"
    );
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex("[a-z =|^#\t\r\n]{0,24}").unwrap(),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn format_choice() -> impl Strategy<Value = (LeefVersion, Delimiter)> {
    prop_oneof![
        Just((LeefVersion::V2, Delimiter::caret())),
        Just((LeefVersion::V2, Delimiter::parse("x09").unwrap())),
        Just((LeefVersion::V2, Delimiter::parse("#").unwrap())),
        Just((LeefVersion::V1, Delimiter::tab())),
    ]
}

fn replaced(value: &str, delim: char, max: usize) -> String {
    truncate_chars(value, max)
        .chars()
        .map(|c| {
            if c == delim || c == '\r' || c == '\n' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_event_is_one_parseable_record(
        (version, delimiter) in format_choice(),
        action in text(),
        message in opt_text(),
        user_name in opt_text(),
        user_agent in opt_text(),
        url in opt_text(),
        domain in opt_text(),
        wedding_id in opt_text(),
        vendor in text(),
        label_name in text(),
        label_value in text(),
    ) {
        let mut e = Event::new(Category::DataAccess, action.clone(), Severity::High);
        e.message = message;
        e.user_name = user_name;
        e.user_agent = user_agent;
        e.url = url;
        e.domain = domain;
        e.wedding_id = wedding_id;
        e.labels.insert(label_name.clone(), label_value.clone());
        let base = LeefEncoder::new(vendor.clone(), "pro|duct", "1");
        let enc = match version {
            LeefVersion::V1 => base.v1(),
            LeefVersion::V2 => base.v2(delimiter.clone()),
        };
        let line = enc.encode(&e);
        prop_assert!(!line.contains('\r') && !line.contains('\n'));
        let (header, pairs) = parse_leef(&line);
        let delim = if version == LeefVersion::V1 { '\t' } else { delimiter.char() };
        let clean_h = |s: &str| truncate_chars(s, HEADER_MAX_CHARS).replace('|', "/").replace(['\r', '\n'], " ");
        prop_assert_eq!(&header[0], &format!("LEEF:{version}"));
        prop_assert_eq!(&header[1], &clean_h(&vendor));
        prop_assert_eq!(&header[2], "pro/duct");
        prop_assert_eq!(&header[3], "1");
        prop_assert_eq!(&header[4], &event_id(&e));
        if version == LeefVersion::V2 {
            prop_assert_eq!(&header[5], delimiter.as_written());
        }

        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let expect = |v: Option<&str>, max: usize| {
            v.filter(|s| !s.is_empty()).map(|s| replaced(s, delim, max))
        };
        prop_assert_eq!(get("action"), expect(Some(&action), VALUE_MAX_CHARS));
        prop_assert_eq!(get("msg"), expect(e.message.as_deref(), MSG_MAX_CHARS));
        prop_assert_eq!(
            get("usrName"),
            expect(e.user_name.as_deref().filter(|s| !s.is_empty()), VALUE_MAX_CHARS)
        );
        prop_assert_eq!(get("userAgent"), expect(e.user_agent.as_deref(), VALUE_MAX_CHARS));
        prop_assert_eq!(get("url"), expect(e.url.as_deref(), VALUE_MAX_CHARS));
        prop_assert_eq!(get("domain"), expect(e.domain.as_deref(), VALUE_MAX_CHARS));
        prop_assert_eq!(get("weddingId"), expect(e.wedding_id.as_deref(), VALUE_MAX_CHARS));
        prop_assert_eq!(get("devTimeFormat"), Some(DEV_TIME_FORMAT.to_owned()));
        prop_assert_eq!(get("devTime"), Some(dev_time(e.timestamp)));
        prop_assert_eq!(get("sev"), Some("8".to_owned()));
        prop_assert_eq!(get("eventId"), Some(e.id.clone()));
        if let Some(key) = custom_key("label", &label_name) {
            prop_assert_eq!(get(&key), expect(Some(&label_value), VALUE_MAX_CHARS));
        }
        let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        prop_assert_eq!(n, keys.len(), "duplicate keys");
    }

    #[test]
    fn write_record_applies_only_the_documented_replacements(
        (version, delimiter) in format_choice(),
        fields in proptest::collection::vec(text(), 4),
        values in proptest::collection::vec(text(), 0..5),
    ) {
        let header = LeefHeader {
            vendor: &fields[0], product: &fields[1], version: &fields[2], event_id: &fields[3],
        };
        let keys = ["k1", "msg", "usrName", "x", "cat"];
        let attrs: Vec<(&str, &str)> = values.iter().enumerate().map(|(i, v)| (keys[i], v.as_str())).collect();
        let line = write_record(version, &delimiter, &header, &attrs);
        let (parsed_header, pairs) = parse_leef(&line);
        for (got, want) in parsed_header[1..5].iter().zip(&fields) {
            prop_assert_eq!(got, &want.replace('|', "/").replace(['\r', '\n'], " "));
        }
        let delim = if version == LeefVersion::V1 { '\t' } else { delimiter.char() };
        let want: Vec<(String, String)> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), replaced(v, delim, usize::MAX)))
            .collect();
        prop_assert_eq!(pairs, want);
    }
}

#[test]
fn vulnerability_matches_are_custom_attributes_and_escaped() {
    let mut e = event_a();
    e.enrichment.vulnerabilities = vec![vowguard_core::VulnerabilityMatch {
        scanner: "t\tio=x".into(),
        plugin_id: "190000".into(),
        title: None,
        cves: vec!["CVE-2024-3400".into()],
        cvss: Some(9.8),
        severity: Severity::Critical,
        asset: "10.0.0.5".into(),
        port: 443,
        protocol: "tcp".into(),
        first_seen: None,
        confidence: 0.9,
        cve_named: false,
    }];
    let line = encoder().encode(&e);
    let (_, pairs) = parse_leef(&line);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("vulnerabilityIds").as_deref(), Some("CVE-2024-3400"));
    assert_eq!(get("vulnerabilityCvss").as_deref(), Some("9.8"));
    assert_eq!(get("vulnerabilityPort").as_deref(), Some("443"));
    // The delimiter and `=` in a value are escaped on the wire and read back intact.
    assert_eq!(get("vulnerabilityScanner").as_deref(), Some("t\tio=x"));
    assert!(
        parse_leef(&encoder().encode(&event_a()))
            .1
            .iter()
            .all(|(k, _)| k != "vulnerabilityIds")
    );
}

use super::*;

use chrono::{DateTime, NaiveDate, Utc};
use proptest::prelude::*;
use serde_json::json;
use vowguard_core::{
    Category, Enrichment, Outcome, PatternMatch, Season, Severity, ThreatIntel, Verdict,
    WeddingContext, WeddingPhase,
};

/// An independent CEF parser: splits the header on unescaped `|`, then the extension on
/// unescaped `=`, a value ending at the last space before the next key.
fn parse_cef(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let rest = line.strip_prefix("CEF:").expect("starts with CEF:");
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, next) = chars.next().expect("dangling backslash in header");
                assert!(next == '\\' || next == '|', "bad header escape \\{next}");
                field.push(next);
            }
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext = &rest[ext_start.expect("seven header fields")..];

    // Byte offsets of unescaped `=`.
    let mut separators = Vec::new();
    let bytes = ext.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                separators.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    // Each key is the alphanumeric run before its `=`, preceded by the start or a space.
    let key_starts: Vec<usize> = separators
        .iter()
        .map(|&eq| {
            let start = ext[..eq]
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |p| p + 1);
            assert!(start < eq, "empty key before byte {eq} in {ext:?}");
            assert!(
                start == 0 || bytes[start - 1] == b' ',
                "key not after a space"
            );
            start
        })
        .collect();
    let mut pairs = Vec::new();
    for (n, &eq) in separators.iter().enumerate() {
        let key = &ext[key_starts[n]..eq];
        let end = key_starts.get(n + 1).map_or(ext.len(), |&next| next - 1);
        pairs.push((key.to_owned(), unescape_value(&ext[eq + 1..end])));
    }
    (header, pairs)
}

fn unescape_value(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next().expect("dangling backslash in value") {
                '\\' => out.push('\\'),
                '=' => out.push('='),
                'r' => out.push('\r'),
                'n' => out.push('\n'),
                other => panic!("bad value escape \\{other}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn event_a() -> Event {
    Event::from_json_value(json!({
        "id": "evt-1", "timestamp": "2026-06-20T14:03:07.123+02:00", "category": "data_export",
        "action": "guest_list.export", "outcome": "success", "severity": "critical",
        "risk_score": 91, "message": "guest list exported", "user_id": "u-42",
        "source_ip": "203.0.113.7", "resource_type": "guest_lists", "resource_id": "gl-9",
        "wedding_id": "w-1", "record_count": 450
    }))
    .unwrap()
}

fn event_b() -> Event {
    let mut e = Event::new(Category::Authentication, "login\n|x", Severity::Low);
    e.id = "evt-2".into();
    e.timestamp = at("2026-06-21T09:30:00.5Z");
    e.outcome = Outcome::Failure;
    e.risk_score = Some(47);
    e.message = Some("bad | pass=\"x\" \\ end\r\nnext line".into());
    e.user_name = Some("eve|admin".into());
    e.user_agent = Some("curl/8.0 a=b".into());
    e.url = Some("https://x.test/login?a=1&b=2".into());
    e.source_ip = Some("2001:db8::1".parse().unwrap());
    e.attributes.insert("target_user".into(), json!("bob"));
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
            guest_count: Some(120),
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

fn encoder() -> CefEncoder {
    CefEncoder::new("vowguard", "wedding-security", "1.2.3").with_dvchost("gw1")
}

#[test]
fn spec_example_byte_for_byte() {
    let header = CefHeader {
        device_vendor: "security",
        device_product: "threatmanager",
        device_version: "1.0",
        device_event_class_id: "100",
        name: "detected a | in message",
        severity: 10,
    };
    let line = write_record(
        &header,
        &[
            ("src", "10.0.0.1"),
            ("act", "blocked a |"),
            ("dst", "1.1.1.1"),
        ],
    );
    assert_eq!(
        line,
        r"CEF:0|security|threatmanager|1.0|100|detected a \| in message|10|src=10.0.0.1 act=blocked a | dst=1.1.1.1"
    );
}

#[test]
fn pipe_after_severity_without_extensions() {
    let header = CefHeader {
        device_vendor: "v",
        device_product: "p",
        device_version: "1",
        device_event_class_id: "c",
        name: "n",
        severity: 3,
    };
    assert_eq!(write_record(&header, &[]), "CEF:0|v|p|1|c|n|3|");
}

#[test]
fn header_escaping_rules() {
    let mut out = String::new();
    escape_header("a\\|b=c\r\nd", &mut out);
    assert_eq!(
        out, r"a\\\|b=c  d",
        "backslash first, pipe escaped, = kept, CR/LF to spaces"
    );
}

#[test]
fn extension_escaping_rules() {
    let mut out = String::new();
    escape_extension_value("a\\b=c|d\re\nf", &mut out);
    assert_eq!(out, r"a\\b\=c|d\re\nf");
}

#[test]
fn keys_with_digits_are_written() {
    let header = CefHeader {
        device_vendor: "v",
        device_product: "p",
        device_version: "1",
        device_event_class_id: "c",
        name: "n",
        severity: 0,
    };
    let line = write_record(&header, &[("cs1", "x"), ("cs1Label", "y"), ("cn1", "7")]);
    assert_eq!(line, "CEF:0|v|p|1|c|n|0|cs1=x cs1Label=y cn1=7");
}

#[test]
fn golden_event_a() {
    assert_eq!(
        encoder().encode(&event_a()),
        "CEF:0|vowguard|wedding-security|1.2.3|data_export.guest_list.export|guest list exported|10|\
         rt=1781956987123 cat=data_export act=guest_list.export outcome=success externalId=evt-1 \
         src=203.0.113.7 suser=u-42 suid=u-42 msg=guest list exported dvchost=gw1 \
         cs1=w-1 cs1Label=weddingId cs2=guest_lists/gl-9 cs2Label=resource \
         cn1=91 cn1Label=riskScore cn3=450 cn3Label=recordCount"
    );
}

#[test]
fn golden_event_b_hostile_text() {
    assert_eq!(
        encoder().encode(&event_b()),
        r#"CEF:0|vowguard|wedding-security|1.2.3|authentication.login__x|bad \| pass="x" \\ end  next line|5|"#
            .to_owned()
            + r#"rt=1782034200500 cat=authentication act=login\n|x outcome=failure externalId=evt-2 "#
            + r#"c6a2=2001:db8::1 c6a2Label=sourceIpv6Address suser=eve|admin duser=bob "#
            + r#"request=https://x.test/login?a\=1&b\=2 requestClientApplication=curl/8.0 a\=b "#
            + r#"msg=bad | pass\="x" \\ end\r\nnext line dvchost=gw1 cs1=w-2 cs1Label=weddingId "#
            + r#"cs3=malicious cs3Label=threatVerdict cs4=credential_stuffing,guest_list_scraping cs4Label=patterns "#
            + r#"cs5=day_of cs5Label=weddingPhase cn1=47 cn1Label=riskScore cn2=87 cn2Label=threatScore"#
    );
}

#[test]
fn severity_mapping() {
    let cases = [
        (Severity::Info, None, 1),
        (Severity::Low, None, 3),
        (Severity::Medium, None, 5),
        (Severity::High, None, 8),
        (Severity::Critical, None, 10),
        (Severity::Info, Some(0), 1),
        (Severity::Info, Some(44), 4),
        (Severity::Info, Some(45), 5),
        (Severity::Low, Some(100), 10),
        (Severity::High, Some(20), 8),
        (Severity::Info, Some(255), 10),
    ];
    for (severity, risk, expected) in cases {
        let mut e = Event::new(Category::Other, "x", severity);
        e.risk_score = risk;
        assert_eq!(cef_severity(&e), expected, "{severity:?} {risk:?}");
    }
}

#[test]
fn truncates_on_char_boundaries() {
    assert_eq!(truncate_chars("héllo", 2), "hé");
    assert_eq!(truncate_chars("hé", 5), "hé");
    let mut e = event_a();
    e.message = Some("é".repeat(2000));
    e.wedding_id = Some("w".repeat(5000));
    let ext = encoder().extensions(&e);
    let get = |k: &str| ext.iter().find(|(key, _)| *key == k).unwrap().1.clone();
    assert_eq!(get("msg").chars().count(), MSG_MAX_CHARS);
    assert_eq!(get("cs1").chars().count(), CUSTOM_STRING_MAX_CHARS);
}

#[test]
fn empty_values_are_left_out() {
    let mut e = event_a();
    e.message = Some(String::new());
    e.domain = Some(String::new());
    let line = encoder().encode(&e);
    assert!(!line.contains("msg="), "{line}");
    assert!(!line.contains("cs6"), "{line}");
}

/// Text that mixes everything CEF cares about with arbitrary Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(r"[a-z =|\\\r\n]{0,24}").unwrap(),
        proptest::string::string_regex(r"(x=[a-z ]{0,3}|\\|=| |\r\n|\|){0,12}").unwrap(),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn header_expect(value: &str, max: usize) -> String {
    truncate_chars(value, max).replace(['\r', '\n'], " ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_event_is_one_parseable_line(
        action in text(),
        message in opt_text(),
        user_name in opt_text(),
        user_id in opt_text(),
        user_agent in opt_text(),
        url in opt_text(),
        file_hash in opt_text(),
        wedding_id in opt_text(),
        domain in opt_text(),
        vendor in text(),
        host in text(),
        long_message in proptest::bool::ANY,
    ) {
        let mut e = Event::new(Category::DataAccess, action.clone(), Severity::Medium);
        e.message = if long_message { message.map(|m| m.repeat(80)) } else { message };
        e.user_name = user_name;
        e.user_id = user_id;
        e.user_agent = user_agent;
        e.url = url;
        e.file_hash = file_hash;
        e.wedding_id = wedding_id;
        e.domain = domain;
        let encoder = CefEncoder::new(vendor.clone(), "p|r\\od", "1").with_dvchost(host.clone());
        let line = encoder.encode(&e);
        prop_assert!(!line.contains('\r') && !line.contains('\n'), "raw CR/LF in {line:?}");

        let (header, ext) = parse_cef(&line);
        prop_assert_eq!(header.len(), 7);
        prop_assert_eq!(&header[0], "0");
        prop_assert_eq!(&header[1], &header_expect(&vendor, DEVICE_FIELD_MAX_CHARS));
        prop_assert_eq!(&header[2], "p|r\\od");
        prop_assert_eq!(&header[3], "1");
        prop_assert_eq!(&header[4], &event_class_id(&e));
        prop_assert_eq!(&header[5], &header_expect(&e.summary(), NAME_MAX_CHARS));
        prop_assert_eq!(&header[6], "5");

        let get = |k: &str| ext.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let expect = |v: Option<&str>, max: usize| {
            v.filter(|s| !s.is_empty()).map(|s| truncate_chars(s, max).to_owned())
        };
        prop_assert_eq!(get("act"), expect(Some(&action), EXTENSION_MAX_CHARS));
        prop_assert_eq!(get("msg"), expect(e.message.as_deref(), MSG_MAX_CHARS));
        prop_assert_eq!(
            get("suser"),
            expect(
                e.user_name.as_deref().filter(|s| !s.is_empty()).or(e.user_id.as_deref()),
                EXTENSION_MAX_CHARS
            )
        );
        prop_assert_eq!(get("suid"), expect(e.user_id.as_deref(), EXTENSION_MAX_CHARS));
        prop_assert_eq!(
            get("requestClientApplication"),
            expect(e.user_agent.as_deref(), EXTENSION_MAX_CHARS)
        );
        prop_assert_eq!(get("request"), expect(e.url.as_deref(), EXTENSION_MAX_CHARS));
        prop_assert_eq!(get("fileHash"), expect(e.file_hash.as_deref(), EXTENSION_MAX_CHARS));
        prop_assert_eq!(get("cs1"), expect(e.wedding_id.as_deref(), CUSTOM_STRING_MAX_CHARS));
        prop_assert_eq!(get("cs6"), expect(e.domain.as_deref(), CUSTOM_STRING_MAX_CHARS));
        prop_assert_eq!(get("dvchost"), expect(Some(&host), EXTENSION_MAX_CHARS));
        prop_assert_eq!(get("externalId"), Some(e.id.clone()));
        prop_assert_eq!(get("rt"), Some(e.timestamp.timestamp_millis().to_string()));
        // Every key written is alphanumeric and appears once.
        let mut keys: Vec<&str> = ext.iter().map(|(k, _)| k.as_str()).collect();
        prop_assert!(keys.iter().all(|k| k.bytes().all(|b| b.is_ascii_alphanumeric())));
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        prop_assert_eq!(before, keys.len());
    }

    #[test]
    fn write_record_round_trips(
        fields in proptest::collection::vec(text(), 5),
        values in proptest::collection::vec(text(), 0..6),
        severity in 0u8..=10,
    ) {
        let header = CefHeader {
            device_vendor: &fields[0],
            device_product: &fields[1],
            device_version: &fields[2],
            device_event_class_id: &fields[3],
            name: &fields[4],
            severity,
        };
        let keys = ["cs1", "cs1Label", "msg", "cn1", "act", "src"];
        let pairs: Vec<(&str, &str)> =
            values.iter().enumerate().map(|(i, v)| (keys[i], v.as_str())).collect();
        let line = write_record(&header, &pairs);
        prop_assert!(!line.contains('\r') && !line.contains('\n'));
        let (parsed_header, parsed_ext) = parse_cef(&line);
        for (got, want) in parsed_header[1..6].iter().zip(&fields) {
            prop_assert_eq!(got, &want.replace(['\r', '\n'], " "));
        }
        prop_assert_eq!(&parsed_header[6], &severity.to_string());
        let want: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        prop_assert_eq!(parsed_ext, want);
    }
}

#[test]
fn parser_reads_the_spec_example() {
    let (header, ext) = parse_cef(
        r"CEF:0|security|threatmanager|1.0|100|detected a \| in message|10|src=10.0.0.1 act=blocked a | dst=1.1.1.1",
    );
    assert_eq!(header[5], "detected a | in message");
    assert_eq!(ext[1], ("act".to_owned(), "blocked a |".to_owned()));
}

fn hostile_match(plugin_id: &str) -> vowguard_core::VulnerabilityMatch {
    vowguard_core::VulnerabilityMatch {
        scanner: "tio".into(),
        plugin_id: plugin_id.into(),
        title: None,
        cves: vec![],
        cvss: Some(9.8),
        severity: Severity::Critical,
        asset: "10.0.0.5".into(),
        port: 443,
        protocol: "tcp".into(),
        first_seen: None,
        confidence: 0.9,
        cve_named: false,
    }
}

#[test]
fn vulnerability_matches_are_custom_fields_and_escaped() {
    let mut e = event_a();
    let mut cve = hostile_match("190000");
    cve.cves = vec!["CVE-2024-3400".into(), "CVE-2024-0001".into()];
    let mut host = hostile_match("x=1|y\\z\r\nw");
    host.port = 0;
    host.cvss = Some(5.0);
    e.enrichment.vulnerabilities = vec![cve, host];
    let line = encoder().encode(&e);
    assert!(!line.contains(['\r', '\n']), "{line}");
    let (_, ext) = parse_cef(&line);
    let get = |k: &str| ext.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("flexString1").as_deref(),
        Some("CVE-2024-3400@443/tcp,CVE-2024-0001@443/tcp,plugin:x=1|y\\z\r\nw@host"),
        "escaped on the wire (no raw CR/LF), read back intact"
    );
    assert_eq!(get("flexString1Label").as_deref(), Some("vulnerabilities"));
    assert_eq!(get("cfp1").as_deref(), Some("9.8"));
    assert_eq!(get("cfp1Label").as_deref(), Some("cvssScore"));
    assert!(
        get("flexString1").is_some()
            && parse_cef(&encoder().encode(&event_a()))
                .1
                .iter()
                .all(|(k, _)| k != "flexString1")
    );
}

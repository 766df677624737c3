//! CEF over RFC 5424 (the ArcSight sink's wire records), checked with the independent
//! RFC 5424 and CEF parsers: one message per event, no raw CR/LF, exactly seven header
//! fields equal to the configured vendor / product / version and the event's signature,
//! name and severity, and extensions that event text cannot add to or forge.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vowguard_arcsight::{ArcSightConfig, ArcSightSink};
use vowguard_core::Sink;
use vowguard_fuzz::{FuzzEvent, cef, has_cr_lf, prefix_chars, rfc5424};
use vowguard_syslog::{Framing, SyslogConfig, SyslogSeverity, Transport, frame};

#[derive(Debug, Arbitrary)]
struct Input {
    hostile_config: bool,
    event: FuzzEvent,
}

const KEYS: &[&str] = &[
    "rt",
    "cat",
    "act",
    "outcome",
    "externalId",
    "src",
    "c6a2",
    "c6a2Label",
    "suser",
    "suid",
    "duser",
    "request",
    "requestClientApplication",
    "fileHash",
    "msg",
    "dvchost",
    "cs1",
    "cs1Label",
    "cs2",
    "cs2Label",
    "cs3",
    "cs3Label",
    "cs4",
    "cs4Label",
    "cs5",
    "cs5Label",
    "cs6",
    "cs6Label",
    "cn1",
    "cn1Label",
    "cn2",
    "cn2Label",
    "cn3",
    "cn3Label",
];

struct Setup {
    sink: ArcSightSink,
    vendor: &'static str,
    product: &'static str,
    version: &'static str,
}

fn setup(hostile: bool) -> &'static Setup {
    static PLAIN: OnceLock<Setup> = OnceLock::new();
    static HOSTILE: OnceLock<Setup> = OnceLock::new();
    let cell = if hostile { &HOSTILE } else { &PLAIN };
    cell.get_or_init(|| {
        let (vendor, product, version) = if hostile {
            ("ven|dor\\", "pro=duct|x", "1.0\\|")
        } else {
            ("vowguard", "wedding-security", "0.1.0")
        };
        let mut config = ArcSightConfig::new(SyslogConfig::new("127.0.0.1:6514"));
        config.device_vendor = vendor.into();
        config.device_product = product.into();
        config.device_version = version.into();
        config.hostname = Some("gw1".into());
        Setup {
            sink: config.into_builder().build().expect("sink builds without network"),
            vendor,
            product,
            version,
        }
    })
}

fuzz_target!(|input: Input| {
    let setup = setup(input.hostile_config);
    let event = input.event.build();
    let message = setup.sink.encode(&event).expect("CEF encoding never fails");

    // One record per event, whatever the framing.
    assert!(!has_cr_lf(&message), "raw CR/LF in the message");
    let lf = frame(Transport::Tcp, Framing::Lf, &message);
    assert_eq!(lf.iter().filter(|b| **b == b'\n').count(), 1);
    assert_eq!(lf.last(), Some(&b'\n'));
    let octets = frame(Transport::Tcp, Framing::OctetCounting, &message);
    let unframed = rfc5424::unframe_octet_counted(&octets).expect("octet-counted frame");
    assert_eq!(unframed, &message[..]);

    let syslog = rfc5424::parse(&message).unwrap_or_else(|e| panic!("RFC 5424: {e}"));
    assert_eq!(syslog.version, "1");
    assert_eq!(u32::from(syslog.pri) / 8, 20, "facility local4");
    assert_eq!(syslog.pri % 8, SyslogSeverity::from_event(event.severity).0);
    assert_eq!(syslog.timestamp, event.timestamp_rfc3339());
    assert_eq!(syslog.hostname, "gw1");
    assert_eq!(syslog.app_name, "vowguard");
    assert_eq!(syslog.procid, "-");
    assert_eq!(syslog.msgid, "CEF");
    let line = syslog.msg.expect("a CEF line");

    let record = cef::parse(&line).unwrap_or_else(|e| panic!("CEF: {e}\n{line}"));
    let h = &record.header;
    assert_eq!(h[0], "CEF:0");
    let config_field = |v: &str| prefix_chars(v, 63).replace(['\r', '\n'], " ");
    assert_eq!(h[1], config_field(setup.vendor));
    assert_eq!(h[2], config_field(setup.product));
    assert_eq!(h[3], config_field(setup.version));
    let expected_class = format!("{}.", event.category);
    assert!(h[4].starts_with(&expected_class), "signature {:?}", h[4]);
    assert!(
        h[4].bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b)),
        "signature {:?}",
        h[4]
    );
    let expected_name = prefix_chars(&event.summary(), 512).replace(['\r', '\n'], " ");
    assert_eq!(h[5], expected_name);
    let severity: u8 = h[6].parse().expect("numeric severity");
    assert!(severity <= 10);

    let ext = &record.extensions;
    for key in ext.keys() {
        assert!(KEYS.contains(&key.as_str()), "unexpected extension {key}");
    }
    assert_eq!(ext.get("externalId"), Some(&event.id));
    assert_eq!(
        ext.get("act").map(String::as_str),
        Some(prefix_chars(&event.action, 1023))
    );
    assert_eq!(
        ext.get("rt"),
        Some(&event.timestamp.timestamp_millis().to_string())
    );
    match event.message.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => assert_eq!(
            ext.get("msg").map(String::as_str),
            Some(prefix_chars(m, 1023))
        ),
        None => assert!(!ext.contains_key("msg")),
    }
    assert_eq!(ext.get("dvchost").map(String::as_str), Some("gw1"));
});

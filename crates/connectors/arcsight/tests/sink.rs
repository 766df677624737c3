//! Contract tests: the sink against an in-test syslog receiver on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use vowguard_arcsight::{ArcSightConfig, ArcSightSink, KIND};
use vowguard_core::registry::{self, Builder};
use vowguard_core::{BuildContext, EncodedEvent, ErrorKind, Event, Role, SecretMap, Sink};
use vowguard_syslog::SyslogConfig;

const WAIT: Duration = Duration::from_secs(10);

fn events() -> Vec<Event> {
    let mk = |id: &str, v: serde_json::Value| {
        let mut v = v;
        v["id"] = json!(id);
        v["timestamp"] = json!("2026-06-20T12:03:07.123Z");
        Event::from_json_value(v).unwrap()
    };
    vec![
        mk(
            "e1",
            json!({"category":"authentication","action":"login","outcome":"failure",
            "severity":"high","source_ip":"198.51.100.4","user_name":"eve"}),
        ),
        mk(
            "e2",
            json!({"category":"data_export","action":"guest_list.export","severity":"critical",
            "risk_score":91,"wedding_id":"w-1","message":"exported\r\nfake=line | x"}),
        ),
        mk("e3", json!({"action":"noop","severity":"info"})),
    ]
}

fn build(table: toml::Table) -> Result<Arc<dyn Sink>, vowguard_core::Error> {
    let factory = registry::find(Role::Sink, KIND).expect("arcsight is registered");
    let Builder::Sink(build) = factory.builder else {
        panic!("arcsight must be a sink factory");
    };
    let secrets = SecretMap::new();
    let ctx = BuildContext {
        id: "siem",
        role: Role::Sink,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets: &secrets,
    };
    let config = toml::Value::Table(table)
        .try_into()
        .expect("a component table");
    build(&ctx, config)
}

fn table(address: &str, framing: &str) -> toml::Table {
    toml::from_str(&format!(
        r#"
        device_vendor = "acme"
        device_product = "weddings"
        device_version = "9.9"
        hostname = "gw1"
        facility = "local4"
        [syslog]
        address = "{address}"
        transport = "tcp"
        framing = "{framing}"
        connect_timeout = "2s"
        write_timeout = "2s"
        "#
    ))
    .unwrap()
}

/// Independent CEF parser: header split on unescaped `|`, extension on unescaped `=`.
fn parse_cef(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let rest = line.strip_prefix("CEF:").expect("CEF prefix");
    let mut header = Vec::new();
    let mut field = String::new();
    let mut iter = rest.char_indices();
    let mut ext_at = 0;
    while let Some((i, c)) = iter.next() {
        match c {
            '\\' => field.push(iter.next().unwrap().1),
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    ext_at = i + 1;
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext = &rest[ext_at..];
    let b = ext.as_bytes();
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'=' {
            eqs.push(i);
        }
        i += 1;
    }
    let starts: Vec<usize> = eqs
        .iter()
        .map(|&e| ext[..e].rfind(' ').map_or(0, |p| p + 1))
        .collect();
    let mut pairs = Vec::new();
    for (n, &e) in eqs.iter().enumerate() {
        let end = starts.get(n + 1).map_or(ext.len(), |s| s - 1);
        let mut value = String::new();
        let mut cs = ext[e + 1..end].chars();
        while let Some(c) = cs.next() {
            if c == '\\' {
                value.push(match cs.next().unwrap() {
                    'r' => '\r',
                    'n' => '\n',
                    other => other,
                });
            } else {
                value.push(c);
            }
        }
        pairs.push((ext[starts[n]..e].to_owned(), value));
    }
    (header, pairs)
}

/// Splits `<PRI>1 TS HOST APP PROCID MSGID SD MSG` into its parts.
fn parse_5424(msg: &str) -> Vec<String> {
    let parts: Vec<String> = msg.splitn(8, ' ').map(str::to_owned).collect();
    assert_eq!(parts.len(), 8, "{msg:?}");
    parts
}

fn get<'a>(ext: &'a [(String, String)], key: &str) -> Option<&'a str> {
    ext.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Reads octet-counted frames (`LEN SP MSG`) until `n` arrived.
async fn read_octet_frames(listener: TcpListener, n: usize) -> Vec<String> {
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 4096];
    while frames.len() < n {
        let read = sock.read(&mut chunk).await.unwrap();
        assert!(read > 0, "connection closed after {} frames", frames.len());
        buf.extend_from_slice(&chunk[..read]);
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            frames.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    frames
}

async fn send_all(sink: &dyn Sink, events: &[Event]) -> Vec<vowguard_core::EventOutcome> {
    let encoded: Vec<EncodedEvent> = events
        .iter()
        .map(|e| EncodedEvent {
            event_id: e.id.clone(),
            bytes: sink.encode(e).unwrap(),
        })
        .collect();
    let refs: Vec<&EncodedEvent> = encoded.iter().collect();
    sink.send(&refs).await
}

#[tokio::test]
async fn three_events_octet_counted_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let reader = tokio::spawn(read_octet_frames(listener, 3));
    let sink = build(table(&addr, "octet_counting")).unwrap();
    assert_eq!(sink.kind(), "arcsight");
    let limits = sink.batch_limits();
    assert_eq!(
        (limits.max_events, limits.max_bytes, limits.max_wait),
        (200, 256_000, std::time::Duration::from_millis(500))
    );

    let events = events();
    let outcomes = send_all(sink.as_ref(), &events).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| o.is_delivered()), "{outcomes:?}");
    let frames = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();

    // (PRI, CEF severity) per event: local4 = 20 -> 160 + syslog severity.
    let expected = [("<163>1", "8"), ("<162>1", "10"), ("<166>1", "1")];
    for ((frame, event), (pri, cef_sev)) in frames.iter().zip(&events).zip(expected) {
        let parts = parse_5424(frame);
        assert_eq!(parts[0], pri);
        assert_eq!(parts[1], "2026-06-20T12:03:07.123Z");
        assert_eq!(&parts[2..7], ["gw1", "vowguard", "-", "CEF", "-"]);
        let (header, ext) = parse_cef(&parts[7]);
        assert_eq!(header[..4], ["0", "acme", "weddings", "9.9"]);
        assert_eq!(header[4], format!("{}.{}", event.category, event.action));
        assert_eq!(header[5], event.summary().replace(['\r', '\n'], " "));
        assert_eq!(header[6], cef_sev);
        assert_eq!(get(&ext, "externalId"), Some(event.id.as_str()));
        assert_eq!(get(&ext, "act"), Some(event.action.as_str()));
        assert_eq!(get(&ext, "dvchost"), Some("gw1"));
        assert_eq!(get(&ext, "msg"), event.message.as_deref());
        assert_eq!(get(&ext, "rt"), Some("1781956987123"));
    }
    let (_, ext) = parse_cef(&parse_5424(&frames[0])[7]);
    assert_eq!(get(&ext, "src"), Some("198.51.100.4"));
    assert_eq!(get(&ext, "suser"), Some("eve"));
    let (_, ext) = parse_cef(&parse_5424(&frames[1])[7]);
    assert_eq!(get(&ext, "cs1"), Some("w-1"));
    assert_eq!(get(&ext, "cn1"), Some("91"));
}

#[tokio::test]
async fn lf_framing_keeps_one_line_per_event() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let reader = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut lines = BufReader::new(sock).lines();
        let mut out = Vec::new();
        while out.len() < 3 {
            out.push(lines.next_line().await.unwrap().expect("three lines"));
        }
        out
    });
    let sink = build(table(&addr, "lf")).unwrap();
    let events = events();
    let outcomes = send_all(sink.as_ref(), &events).await;
    assert!(outcomes.iter().all(|o| o.is_delivered()), "{outcomes:?}");
    let lines = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    for (line, event) in lines.iter().zip(&events) {
        let parts = parse_5424(line);
        let (_, ext) = parse_cef(&parts[7]);
        assert_eq!(get(&ext, "externalId"), Some(event.id.as_str()), "{line}");
        // CR/LF arrive escaped and parse back exactly.
        assert_eq!(get(&ext, "msg"), event.message.as_deref(), "{line}");
    }
}

#[tokio::test]
async fn unreachable_receiver_is_retryable_per_event() {
    let refused = vowguard_testkit::RefusedPort::new();
    let addr = refused.address().to_string();
    let sink = build(table(&addr, "octet_counting")).unwrap();
    let outcomes = send_all(sink.as_ref(), &events()).await;
    drop(refused);
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        assert!(
            matches!(outcome, vowguard_core::EventOutcome::Retry(_)),
            "{outcome:?}"
        );
    }
    let err = sink.healthcheck().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn healthcheck_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    let sink = ArcSightSink::builder(SyslogConfig::new(addr))
        .build()
        .unwrap();
    sink.healthcheck().await.unwrap();
    tokio::time::timeout(WAIT, accept)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn unknown_config_key_is_named() {
    let mut t = table("127.0.0.1:1", "lf");
    t.insert("devce_vendor".into(), "x".into());
    let err = build(t).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("devce_vendor"), "{err}");

    let mut t = table("127.0.0.1:1", "lf");
    t["syslog"]
        .as_table_mut()
        .unwrap()
        .insert("adress".into(), "x".into());
    let err = build(t).unwrap_err();
    assert!(err.to_string().contains("adress"), "{err}");
}

#[test]
fn missing_syslog_table_is_a_config_error() {
    let err = build(toml::Table::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("syslog"), "{err}");
}

#[test]
fn defaults() {
    let config: ArcSightConfig = toml::from_str("[syslog]\naddress = \"127.0.0.1:514\"").unwrap();
    assert_eq!(config.device_vendor, "vowguard");
    assert_eq!(config.device_product, "wedding-security");
    assert_eq!(config.device_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(config.facility.0, 20);
    assert_eq!(config.app_name, "vowguard");
    assert_eq!(config.hostname, None);
    assert_eq!(
        config,
        ArcSightConfig::new(SyslogConfig::new("127.0.0.1:514"))
    );
}

#[test]
fn default_hostname_is_the_machine_s() {
    let sink = ArcSightSink::builder(SyslogConfig::new("127.0.0.1:514"))
        .build()
        .unwrap();
    let msg = String::from_utf8(sink.encode(&events()[2]).unwrap()).unwrap();
    let host = parse_5424(&msg)[2].clone();
    assert!(!host.is_empty() && host != "gw1");
    let (_, ext) = parse_cef(&parse_5424(&msg)[7]);
    if host != "-" {
        assert_eq!(get(&ext, "dvchost"), Some(host.as_str()));
    }
}

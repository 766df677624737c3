//! Contract tests: the sink against an in-test syslog receiver on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use vowguard_core::registry::{self, Builder};
use vowguard_core::{
    BuildContext, EncodedEvent, ErrorKind, Event, EventOutcome, Role, SecretMap, Sink,
};
use vowguard_qradar::{KIND, QRadarConfig, QRadarSink};
use vowguard_syslog::SyslogConfig;

const WAIT: Duration = Duration::from_secs(10);

fn events() -> Vec<Event> {
    let mk = |id: &str, mut v: serde_json::Value| {
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
            "risk_score":91,"wedding_id":"w-1","message":"exported\r\nfake=line ^ x\ty"}),
        ),
        mk("e3", json!({"action":"noop","severity":"info"})),
    ]
}

fn build(table: toml::Table) -> Result<Arc<dyn Sink>, vowguard_core::Error> {
    let factory = registry::find(Role::Sink, KIND).expect("qradar is registered");
    let Builder::Sink(build) = factory.builder else {
        panic!("qradar must be a sink factory");
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

fn table(address: &str, framing: &str, extra: &str) -> toml::Table {
    toml::from_str(&format!(
        r#"
        vendor = "acme"
        product = "weddings"
        product_version = "9.9"
        hostname = "gw1"
        facility = "local4"
        {extra}
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

/// Independent LEEF parser: header fields (version first) and the key/value pairs.
fn parse_leef(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let (header, rest, delim): (Vec<&str>, &str, char) = if line.starts_with("LEEF:2.0|") {
        let p: Vec<&str> = line.splitn(7, '|').collect();
        let d = match p[5] {
            "x09" => '\t',
            s => s.chars().next().unwrap(),
        };
        (p[..6].to_vec(), p[6], d)
    } else {
        let p: Vec<&str> = line.splitn(6, '|').collect();
        (p[..5].to_vec(), p[5], '\t')
    };
    let pairs = rest
        .split(delim)
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (header.into_iter().map(str::to_owned).collect(), pairs)
}

fn parse_5424(msg: &str) -> Vec<String> {
    let parts: Vec<String> = msg.splitn(8, ' ').map(str::to_owned).collect();
    assert_eq!(parts.len(), 8, "{msg:?}");
    parts
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

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

async fn send_all(sink: &dyn Sink, events: &[Event]) -> Vec<EventOutcome> {
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
    let sink = build(table(&addr, "octet_counting", "")).unwrap();
    assert_eq!(sink.kind(), "qradar");
    let limits = sink.batch_limits();
    assert_eq!(
        (limits.max_events, limits.max_bytes, limits.max_wait),
        (200, 256_000, std::time::Duration::from_millis(500))
    );

    let events = events();
    let outcomes = send_all(sink.as_ref(), &events).await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(EventOutcome::is_delivered),
        "{outcomes:?}"
    );
    let frames = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();

    let expected = [("<163>1", "8"), ("<162>1", "10"), ("<166>1", "1")];
    for ((frame, event), (pri, sev)) in frames.iter().zip(&events).zip(expected) {
        let parts = parse_5424(frame);
        assert_eq!(parts[0], pri);
        assert_eq!(parts[1], "2026-06-20T12:03:07.123Z");
        assert_eq!(&parts[2..7], ["gw1", "vowguard", "-", "LEEF", "-"]);
        let (header, pairs) = parse_leef(&parts[7]);
        assert_eq!(
            header,
            [
                "LEEF:2.0",
                "acme",
                "weddings",
                "9.9",
                &format!("{}.{}", event.category, event.action),
                "^"
            ]
        );
        assert_eq!(get(&pairs, "sev"), Some(sev));
        assert_eq!(get(&pairs, "eventId"), Some(event.id.as_str()));
        assert_eq!(get(&pairs, "devTime"), Some("2026-06-20T12:03:07.123+0000"));
        assert_eq!(
            get(&pairs, "devTimeFormat"),
            Some("yyyy-MM-dd'T'HH:mm:ss.SSSZ")
        );
    }
    let (_, pairs) = parse_leef(&parse_5424(&frames[0])[7]);
    assert_eq!(get(&pairs, "src"), Some("198.51.100.4"));
    assert_eq!(get(&pairs, "usrName"), Some("eve"));
    assert_eq!(get(&pairs, "isLoginEvent"), Some("true"));
    let (_, pairs) = parse_leef(&parse_5424(&frames[1])[7]);
    assert_eq!(get(&pairs, "weddingId"), Some("w-1"));
    assert_eq!(get(&pairs, "riskScore"), Some("91"));
    assert_eq!(get(&pairs, "msg"), Some("exported  fake=line   x\ty"));
}

#[tokio::test]
async fn lf_framing_leef1_keeps_one_line_per_event() {
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
    let sink = build(table(&addr, "lf", "leef_version = \"1.0\"")).unwrap();
    let events = events();
    let outcomes = send_all(sink.as_ref(), &events).await;
    assert!(
        outcomes.iter().all(EventOutcome::is_delivered),
        "{outcomes:?}"
    );
    let lines = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    for (line, event) in lines.iter().zip(&events) {
        let parts = parse_5424(line);
        let (header, pairs) = parse_leef(&parts[7]);
        assert_eq!(header[0], "LEEF:1.0");
        assert_eq!(get(&pairs, "eventId"), Some(event.id.as_str()), "{line}");
    }
    let (_, pairs) = parse_leef(&parse_5424(&lines[1])[7]);
    assert_eq!(get(&pairs, "msg"), Some("exported  fake=line ^ x y"));
}

#[tokio::test]
async fn unreachable_receiver_is_retryable_per_event() {
    let refused = vowguard_testkit::RefusedPort::new();
    let addr = refused.address().to_string();
    let sink = build(table(&addr, "octet_counting", "")).unwrap();
    let outcomes = send_all(sink.as_ref(), &events()).await;
    drop(refused);
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        assert!(matches!(outcome, EventOutcome::Retry(_)), "{outcome:?}");
    }
    assert!(sink.healthcheck().await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn healthcheck_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    let sink = QRadarSink::builder(SyslogConfig::new(addr))
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
    let err = build(table("127.0.0.1:1", "lf", "userName = \"x\"")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("userName"), "{err}");
}

#[test]
fn bad_delimiters_are_config_errors() {
    let err = build(table("127.0.0.1:1", "lf", "delimiter = \"ab\"")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("delimiter"), "{err}");

    let err = build(table("127.0.0.1:1", "lf", "delimiter = \"x7C\"")).unwrap_err();
    assert!(err.to_string().contains("x7C"), "{err}");

    let err = build(table(
        "127.0.0.1:1",
        "lf",
        "leef_version = \"1.0\"\ndelimiter = \"^\"",
    ))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("delimiter"), "{err}");

    // The tab is fine for 1.0, and hex delimiters for 2.0.
    build(table(
        "127.0.0.1:1",
        "lf",
        "leef_version = 1.0\ndelimiter = \"x09\"",
    ))
    .unwrap();
    build(table("127.0.0.1:1", "lf", "delimiter = \"0x5E\"")).unwrap();
}

#[test]
fn defaults() {
    let config: QRadarConfig = toml::from_str("[syslog]\naddress = \"127.0.0.1:514\"").unwrap();
    assert_eq!(
        config,
        QRadarConfig::new(SyslogConfig::new("127.0.0.1:514"))
    );
    assert_eq!(config.vendor, "vowguard");
    assert_eq!(config.product, "wedding-security");
    assert_eq!(config.product_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(config.facility.0, 20);
    assert_eq!(config.app_name, "vowguard");
    let encoder = config.encoder().unwrap();
    assert_eq!(encoder.delimiter().as_written(), "^");
    assert_eq!(encoder.version().as_str(), "2.0");
}

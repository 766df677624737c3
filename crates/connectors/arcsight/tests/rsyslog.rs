//! Against a real receiver: Debian's rsyslogd, started with the syslog crate's test helper
//! (installed on demand when missing and running as root).

#[path = "../../syslog/tests/support/rsyslog.rs"]
#[allow(dead_code, unreachable_pub)]
mod rsyslog;

use std::time::Duration;

use rsyslog::{Listener, Rsyslog};
use serde_json::json;
use vowguard_arcsight::ArcSightConfig;
use vowguard_core::{EncodedEvent, Event, Sink};
use vowguard_syslog::SyslogConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_cef_lines_intact() {
    let rsyslog = Rsyslog::start(Listener::Tcp);
    let mut config = ArcSightConfig::new(SyslogConfig::new(format!("127.0.0.1:{}", rsyslog.port)));
    config.hostname = Some("gw1".into());
    let sink = config.into_builder().build().unwrap();

    let events: Vec<Event> = [
        json!({"id":"r1","action":"login","category":"authentication","severity":"high","source_ip":"198.51.100.4"}),
        json!({"id":"r2","action":"guest_list.export","severity":"critical",
               "message":"exported\r\nfake=line | x \\ y","wedding_id":"w-1"}),
        json!({"id":"r3","action":"noop","severity":"info","user_name":"é|ve="}),
    ]
    .into_iter()
    .map(|v| Event::from_json_value(v).unwrap())
    .collect();
    let encoded: Vec<EncodedEvent> = events
        .iter()
        .map(|e| EncodedEvent {
            event_id: e.id.clone(),
            bytes: sink.encode(e).unwrap(),
        })
        .collect();
    let refs: Vec<&EncodedEvent> = encoded.iter().collect();
    let outcomes = sink.send(&refs).await;
    assert!(outcomes.iter().all(|o| o.is_delivered()), "{outcomes:?}");

    let lines = rsyslog
        .wait_for(Duration::from_secs(10), |l| l.len() >= 3)
        .await;
    let expected: Vec<String> = encoded
        .iter()
        .map(|e| String::from_utf8(e.bytes.clone()).unwrap())
        .collect();
    assert_eq!(
        lines,
        expected,
        "rsyslog must log each CEF message as sent, one line each\n{}",
        rsyslog.diagnostics()
    );
    assert!(
        lines[1].contains(r"msg=exported\r\nfake\=line | x \\ y"),
        "{}",
        lines[1]
    );
}

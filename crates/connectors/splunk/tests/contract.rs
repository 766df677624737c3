//! Contract tests of the `splunk_hec` sink against a wiremock HEC on loopback.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::json;
use vowguard_core::registry::{self, Builder, Role};
use vowguard_core::{
    BuildContext, Category, EncodedEvent, ErrorKind, Event, EventOutcome, Outcome, SecretMap,
    Severity, Sink, ThreatIntel, Verdict,
};
use vowguard_splunk::{
    AckConfig, CHANNEL_HEADER, Compression, HttpOptions, HttpSinkBuilder, SplunkHecSink,
    SplunkHecSinkBuilder,
};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "s3cr3t-hec-TOKEN-1234";

fn config(server: &MockServer) -> SplunkHecSinkBuilder {
    SplunkHecSink::builder(server.uri())
        .token(SecretString::from(TOKEN))
        .host("gw1")
        .source("wedsync-security-audit")
        .index("wedding-security")
}

fn sink_with(c: SplunkHecSinkBuilder) -> SplunkHecSink {
    c.id("splunk").build().unwrap()
}

fn event_one() -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::High);
    e.id = "evt-1".into();
    e.timestamp = Utc.timestamp_millis_opt(1_714_564_800_123).unwrap();
    e.outcome = Outcome::Failure;
    e.risk_score = Some(80);
    e.message = Some("3 failed logins".into());
    e.user_id = Some("u-42".into());
    e.source_ip = Some("203.0.113.7".parse().unwrap());
    e.wedding_id = Some("w-1".into());
    e.labels.insert("env".into(), "prod".into());
    e
}

fn event_two() -> Event {
    let mut e = Event::new(
        Category::DataExport,
        "guest_list.export",
        Severity::Critical,
    );
    e.id = "evt-2".into();
    e.timestamp = Utc.timestamp_millis_opt(1_714_564_801_000).unwrap();
    e.outcome = Outcome::Success;
    e.resource_type = Some("guest_lists".into());
    e.record_count = Some(450);
    e.enrichment.threat = Some(ThreatIntel {
        verdict: Verdict::Malicious,
        score: 90,
        ..Default::default()
    });
    e
}

const GOLDEN_BODY: &str = concat!(
    r#"{"time":1714564800.123,"host":"gw1","source":"wedsync-security-audit","sourcetype":"_json","index":"wedding-security","#,
    r#""event":{"id":"evt-1","timestamp":"2024-05-01T12:00:00.123Z","category":"authentication","action":"login","outcome":"failure","severity":"high","risk_score":80,"message":"3 failed logins","user_id":"u-42","source_ip":"203.0.113.7","wedding_id":"w-1","labels":{"env":"prod"}},"#,
    r#""fields":{"severity":"high","category":"authentication","action":"login","outcome":"failure","wedding_id":"w-1","user_id":"u-42","source_ip":"203.0.113.7","risk_score":"80","label.env":"prod"}}"#,
    r#"{"time":1714564801.000,"host":"gw1","source":"wedsync-security-audit","sourcetype":"_json","index":"wedding-security","#,
    r#""event":{"id":"evt-2","timestamp":"2024-05-01T12:00:01Z","category":"data_export","action":"guest_list.export","outcome":"success","severity":"critical","resource_type":"guest_lists","record_count":450,"enrichment":{"threat":{"verdict":"malicious","score":90}}},"#,
    r#""fields":{"severity":"critical","category":"data_export","action":"guest_list.export","outcome":"success","threat_verdict":"malicious"}}"#,
);

fn encode(sink: &SplunkHecSink, events: &[Event]) -> Vec<EncodedEvent> {
    events
        .iter()
        .map(|e| EncodedEvent {
            event_id: e.id.clone(),
            bytes: sink.encode(e).unwrap(),
        })
        .collect()
}

/// `n` distinct events (ids e0..), for outcome tests.
fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = event_one();
            e.id = format!("e{i}");
            e
        })
        .collect()
}

async fn send(sink: &SplunkHecSink, events: &[Event]) -> Vec<EventOutcome> {
    let encoded = encode(sink, events);
    let refs: Vec<&EncodedEvent> = encoded.iter().collect();
    let outcomes = sink.send(&refs).await;
    assert_eq!(outcomes.len(), events.len(), "one outcome per event");
    outcomes
}

fn describe(outcomes: &[EventOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Delivered => "delivered".to_owned(),
            EventOutcome::Retry(e) => format!("retry:{}", e.kind()),
            EventOutcome::Rejected(e) => format!("rejected:{}", e.kind()),
        })
        .collect()
}

fn errors(outcomes: &[EventOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            EventOutcome::Delivered => None,
            EventOutcome::Retry(e) | EventOutcome::Rejected(e) => Some(format!("{e} {e:?}")),
        })
        .collect()
}

fn hec(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "exactly one request");
    requests.remove(0)
}

#[tokio::test]
async fn sends_exact_body_with_auth_and_content_type() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .and(header("authorization", format!("Splunk {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(hec(200, json!({"text":"Success","code":0})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    let outcomes = send(&sink, &[event_one(), event_two()]).await;
    assert_eq!(describe(&outcomes), ["delivered", "delivered"]);

    let request = only_request(&server).await;
    assert_eq!(String::from_utf8(request.body).unwrap(), GOLDEN_BODY);
    assert!(request.headers.get("content-encoding").is_none());
    assert!(
        request.headers.get(CHANNEL_HEADER).is_none(),
        "no channel without acknowledgement"
    );
}

#[tokio::test]
async fn gzip_body_decompresses_to_the_same_bytes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .and(header("content-encoding", "gzip"))
        .respond_with(hec(200, json!({"text":"Success","code":0})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server).compression(Compression::Gzip));
    let outcomes = send(&sink, &[event_one(), event_two()]).await;
    assert_eq!(describe(&outcomes), ["delivered", "delivered"]);

    let request = only_request(&server).await;
    assert_ne!(
        request.body,
        GOLDEN_BODY.as_bytes(),
        "the body is compressed"
    );
    let mut plain = String::new();
    flate2::read::GzDecoder::new(request.body.as_slice())
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, GOLDEN_BODY);
}

#[tokio::test]
async fn server_busy_503_retries_all() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(hec(503, json!({"text":"Server is busy","code":9})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    let outcomes = send(&sink, &events(3)).await;
    assert_eq!(describe(&outcomes), ["retry:unavailable"; 3]);
    assert!(errors(&outcomes)[0].contains("Server is busy"));
}

#[tokio::test]
async fn plain_503_retries_all() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>maintenance</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    assert_eq!(
        describe(&send(&sink, &events(2)).await),
        ["retry:unavailable"; 2]
    );
}

#[tokio::test]
async fn rate_limited_429_carries_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    let outcomes = send(&sink, &events(2)).await;
    assert_eq!(describe(&outcomes), ["retry:rate_limited"; 2]);
    for o in &outcomes {
        let EventOutcome::Retry(e) = o else {
            panic!("expected retry")
        };
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.component(), Some("splunk"));
    }
}

#[tokio::test]
async fn incorrect_index_rejects_all_with_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(hec(
            400,
            json!({"text":"Incorrect index","code":7,"invalid-event-number":0}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    let outcomes = send(&sink, &events(2)).await;
    assert_eq!(describe(&outcomes), ["rejected:rejected"; 2]);
    assert!(
        errors(&outcomes)
            .iter()
            .all(|e| e.contains("Incorrect index"))
    );
}

#[tokio::test]
async fn invalid_event_splits_the_batch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(hec(
            400,
            json!({"text":"Invalid data format","code":6,"invalid-event-number":1}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    let outcomes = send(&sink, &events(3)).await;
    assert_eq!(
        describe(&outcomes),
        ["delivered", "rejected:rejected", "retry:unavailable"]
    );
    let EventOutcome::Rejected(e) = &outcomes[1] else {
        panic!()
    };
    assert!(e.to_string().contains("Invalid data format"), "{e}");
    assert!(e.to_string().contains("e1"), "names the event: {e}");
}

#[tokio::test]
async fn invalid_token_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(hec(403, json!({"text":"Invalid token","code":4})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(config(&server));
    let outcomes = send(&sink, &events(2)).await;
    assert_eq!(describe(&outcomes), ["rejected:unauthorized"; 2]);
    for o in &outcomes {
        let EventOutcome::Rejected(e) = o else {
            panic!()
        };
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.status(), Some(403));
        assert!(e.to_string().contains("Invalid token"));
    }
    for text in errors(&outcomes) {
        assert!(!text.contains(TOKEN), "{text}");
    }
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            hec(200, json!({"text":"Success","code":0})).set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let sink = sink_with(
        config(&server)
            .http(HttpOptions::default().with_timeout(std::time::Duration::from_millis(200))),
    );
    assert_eq!(describe(&send(&sink, &events(1)).await), ["retry:timeout"]);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let sink = sink_with(
        SplunkHecSink::builder("http://127.0.0.1:9")
            .token(SecretString::from(TOKEN))
            .http(
                HttpOptions::default().with_connect_timeout(std::time::Duration::from_millis(1000)),
            ),
    );
    let outcomes = send(&sink, &events(2)).await;
    assert_eq!(describe(&outcomes), ["retry:unavailable"; 2]);
    for text in errors(&outcomes) {
        assert!(!text.contains(TOKEN), "{text}");
    }
}

fn ack_config(server: &MockServer, timeout_ms: u64) -> SplunkHecSinkBuilder {
    config(server).acknowledgements(AckConfig::enabled_with(
        std::time::Duration::from_millis(10),
        std::time::Duration::from_millis(timeout_ms),
    ))
}

#[tokio::test]
async fn acknowledged_batch_is_delivered() {
    let server = MockServer::start().await;
    let sink = sink_with(ack_config(&server, 5_000));
    let channel = sink
        .channel()
        .expect("a channel when acknowledgement is on")
        .to_owned();
    uuid::Uuid::parse_str(&channel).expect("the channel is a UUID");
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .and(header(CHANNEL_HEADER, channel.as_str()))
        .respond_with(hec(200, json!({"text":"Success","code":0,"ackId":3})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .and(header(CHANNEL_HEADER, channel.as_str()))
        .and(header("authorization", format!("Splunk {TOKEN}").as_str()))
        .and(body_json(json!({"acks":[3]})))
        .respond_with(hec(200, json!({"acks":{"3":true}})))
        .expect(1)
        .mount(&server)
        .await;
    let outcomes = send(&sink, &events(2)).await;
    assert_eq!(describe(&outcomes), ["delivered", "delivered"]);
}

#[tokio::test]
async fn pending_ack_is_polled_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(hec(200, json!({"text":"Success","code":0,"ackId":0})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"0":false}})))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"0":true}})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(ack_config(&server, 10_000));
    assert_eq!(describe(&send(&sink, &events(1)).await), ["delivered"]);
}

/// By default the poll interval follows Splunk: confirmed at the first poll, batch after
/// batch, it shortens (to its 20 ms floor); an id still pending after a whole interval
/// lengthens it. The pipeline keeps more batches in flight with acknowledgement on.
#[tokio::test]
async fn default_poll_interval_follows_how_fast_splunk_confirms() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(hec(200, json!({"text":"Success","code":0,"ackId":4})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"4":true}})))
        .mount(&server)
        .await;
    let sink = sink_with(config(&server).acknowledgements(AckConfig::enabled()));
    assert_eq!(
        sink.default_concurrency(),
        Some(vowguard_splunk::ACK_CONCURRENCY)
    );
    assert_eq!(sink.ack_poll_interval(), Some(Duration::from_millis(100)));
    let mut intervals = Vec::new();
    for _ in 0..8 {
        assert_eq!(describe(&send(&sink, &events(1)).await), ["delivered"]);
        intervals.push(sink.ack_poll_interval().unwrap().as_millis());
    }
    assert_eq!(intervals, [75, 56, 42, 31, 23, 20, 20, 20]);
    assert_eq!(
        sink.ack_polls(),
        8,
        "one poll per batch, each confirming it"
    );

    // Pending at two polls that came a whole interval after the batch: longer each time;
    // then confirmed: a quarter shorter.
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(hec(200, json!({"text":"Success","code":0,"ackId":0})))
        .mount(&slow)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"0":false}})))
        .up_to_n_times(2)
        .mount(&slow)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"0":true}})))
        .mount(&slow)
        .await;
    let sink = sink_with(config(&slow).acknowledgements(AckConfig::enabled()));
    assert_eq!(describe(&send(&sink, &events(1)).await), ["delivered"]);
    assert_eq!(sink.ack_polls(), 3);
    // 100 → 125 → 156 (pending twice) → 117 (confirmed).
    assert_eq!(
        sink.ack_poll_interval(),
        Some(Duration::from_nanos(117_187_500))
    );

    // A configured interval stays as configured; no acknowledgement, no default.
    let fixed = sink_with(config(&server).acknowledgements(AckConfig::enabled_with(
        Duration::from_millis(40),
        Duration::from_secs(5),
    )));
    assert_eq!(describe(&send(&fixed, &events(1)).await), ["delivered"]);
    assert_eq!(fixed.ack_poll_interval(), Some(Duration::from_millis(40)));
    let plain = sink_with(config(&server));
    assert_eq!(plain.default_concurrency(), None);
    assert_eq!(plain.ack_poll_interval(), None);
}

#[tokio::test]
async fn missing_ack_means_resend_not_drop() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(hec(200, json!({"text":"Success","code":0,"ackId":5})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"5":false}})))
        .expect(1..)
        .mount(&server)
        .await;
    let sink = sink_with(ack_config(&server, 150));
    let outcomes = send(&sink, &events(3)).await;
    assert_eq!(describe(&outcomes), ["retry:timeout"; 3]);
    assert!(
        errors(&outcomes)[0].contains("ackId 5"),
        "{}",
        errors(&outcomes)[0]
    );
}

#[tokio::test]
async fn healthcheck_ok_and_failing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .and(header("authorization", format!("Splunk {TOKEN}").as_str()))
        .respond_with(hec(200, json!({"text":"HEC is healthy","code":17})))
        .expect(1)
        .mount(&server)
        .await;
    sink_with(config(&server)).healthcheck().await.unwrap();

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .respond_with(hec(
            503,
            json!({"text":"HEC is unhealthy, queues are full","code":18}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = sink_with(config(&server)).healthcheck().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("HEC is unhealthy, queues are full"), "{text}");
    assert!(!text.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(hec(403, json!({"text":"Invalid token","code":4})))
        .mount(&server)
        .await;
    let err = sink_with(config(&server)).healthcheck().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("Invalid token"), "{err}");
}

#[tokio::test]
async fn registry_builds_from_toml_and_names_unknown_keys() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .and(header("authorization", format!("Splunk {TOKEN}").as_str()))
        .respond_with(hec(200, json!({"text":"Success","code":0})))
        .expect(1)
        .mount(&server)
        .await;

    let factory = registry::find(Role::Sink, "splunk_hec").unwrap();
    assert_eq!(factory.kind, "splunk_hec");
    let Builder::Sink(build) = factory.builder else {
        panic!("not a sink factory")
    };
    let secrets = SecretMap::new().with("SPLUNK_HEC_TOKEN", TOKEN);
    let ctx = BuildContext {
        id: "splunk",
        role: Role::Sink,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets: &secrets,
    };
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "endpoint = \"{}\"\ntoken = {{ env = \"SPLUNK_HEC_TOKEN\" }}\nindex = \"wedding-security\"\ncompression = \"gzip\"",
        server.uri()
    ))
    .unwrap();
    let sink = build(&ctx, table).unwrap();
    assert_eq!(sink.kind(), "splunk_hec");
    assert_eq!(sink.batch_limits().max_events, 500);
    assert_eq!(sink.batch_limits().max_bytes, 800_000);
    assert_eq!(
        sink.batch_limits().max_wait,
        std::time::Duration::from_secs(1)
    );
    assert!(!format!("{sink:?}").contains(TOKEN));
    let bytes = sink.encode(&event_one()).unwrap();
    let encoded = EncodedEvent {
        event_id: "evt-1".into(),
        bytes,
    };
    assert!(sink.send(&[&encoded]).await[0].is_delivered());

    let bad: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "endpoint = \"{}\"\ntoken = {{ env = \"SPLUNK_HEC_TOKEN\" }}\nindx = \"typo\"",
        server.uri()
    ))
    .unwrap();
    let err = build(&ctx, bad).unwrap_err().to_string();
    assert!(err.contains("indx"), "{err}");
    assert!(err.contains("sinks.splunk"), "{err}");

    let missing: vowguard_core::ComponentConfig =
        toml::from_str("endpoint = \"https://x\"\ntoken = { env = \"NOT_SET\" }").unwrap();
    let err = build(&ctx, missing).unwrap_err().to_string();
    assert!(err.contains("sinks.splunk.token"), "{err}");

    let bad_url: vowguard_core::ComponentConfig =
        toml::from_str("endpoint = \"splunk:8088\"\ntoken = { env = \"SPLUNK_HEC_TOKEN\" }")
            .unwrap();
    let err = build(&ctx, bad_url).unwrap_err().to_string();
    assert!(
        err.contains("sinks.splunk") && err.contains("endpoint"),
        "{err}"
    );
}

#[tokio::test]
async fn debug_and_errors_never_show_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(hec(401, json!({"text":"Token is required","code":2})))
        .mount(&server)
        .await;
    let c = ack_config(&server, 100);
    assert!(!format!("{c:?}").contains(TOKEN));
    let sink = sink_with(c);
    let debug = format!("{sink:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("SplunkHecSink"), "{debug}");
    let outcomes = send(&sink, &events(1)).await;
    assert_eq!(describe(&outcomes), ["rejected:unauthorized"]);
    for text in errors(&outcomes) {
        assert!(!text.contains(TOKEN), "{text}");
    }
    // A token that cannot be a header value is refused without echoing it.
    let err = config(&server)
        .token(SecretString::from("bad\ntoken-VALUE"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`sinks.splunk_hec.token`") && !err.contains("token-VALUE"),
        "{err}"
    );
}

#[tokio::test]
async fn failing_ack_polls_end_in_retry_naming_the_problem() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(hec(200, json!({"text":"Success","code":0,"ackId":9})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(500, json!({"text":"Internal server error","code":8})))
        .expect(1..)
        .mount(&server)
        .await;
    let sink = sink_with(ack_config(&server, 100));
    let outcomes = send(&sink, &events(2)).await;
    assert_eq!(describe(&outcomes), ["retry:timeout"; 2]);
    let text = &errors(&outcomes)[0];
    assert!(text.contains("last poll") && text.contains("500"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

/// Answers each event request with the next `ackId` (from 0), or always `fixed` if set.
struct CountingAcks {
    next: std::sync::atomic::AtomicU64,
    fixed: Option<u64>,
}

impl wiremock::Respond for CountingAcks {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let id = self
            .fixed
            .unwrap_or_else(|| self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        hec(200, json!({"text":"Success","code":0,"ackId":id}))
    }
}

/// Confirms the ids in `confirmable`, but only in a poll that lists every one of `all`
/// (so a batch completes only if one poll served all batches in flight); others pending.
struct AckOnlyTogether {
    all: Vec<u64>,
    confirmable: Vec<u64>,
}

impl wiremock::Respond for AckOnlyTogether {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let asked: Vec<u64> = asked["acks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let together = self.all.iter().all(|id| asked.contains(id));
        let acks: serde_json::Map<String, serde_json::Value> = asked
            .iter()
            .map(|id| {
                let confirmed = together && self.confirmable.contains(id);
                (id.to_string(), json!(confirmed))
            })
            .collect();
        hec(200, json!({ "acks": acks }))
    }
}

async fn send_concurrently(sink: &SplunkHecSink, batches: usize) -> Vec<Vec<EventOutcome>> {
    let all: Vec<Vec<Event>> = (0..batches).map(|_| events(2)).collect();
    let sends = all.iter().map(|batch| send(sink, batch));
    futures::future::join_all(sends).await
}

#[tokio::test]
async fn one_poll_serves_every_batch_in_flight() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(CountingAcks {
            next: 0.into(),
            fixed: None,
        })
        .expect(8)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(AckOnlyTogether {
            all: (0..8).collect(),
            confirmable: (0..8).collect(),
        })
        .expect(1..)
        .mount(&server)
        .await;
    let sink = sink_with(ack_config(&server, 10_000));
    let outcomes = send_concurrently(&sink, 8).await;
    for batch in &outcomes {
        assert_eq!(describe(batch), ["delivered", "delivered"]);
    }
    // Every poll is one request, however many batches it covers.
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/services/collector/ack")
        .count();
    assert_eq!(u64::try_from(polls).unwrap(), sink.ack_polls());
}

#[tokio::test]
async fn an_ack_splunk_drops_resends_only_its_batch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(CountingAcks {
            next: 0.into(),
            fixed: None,
        })
        .expect(3)
        .mount(&server)
        .await;
    // Batches 0 and 2 are confirmed (in a poll listing all three); 1 never is.
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(AckOnlyTogether {
            all: vec![0, 1, 2],
            confirmable: vec![0, 2],
        })
        .expect(1..)
        .mount(&server)
        .await;
    let sink = sink_with(ack_config(&server, 400));
    let outcomes = send_concurrently(&sink, 3).await;
    let mut summary: Vec<Vec<String>> = outcomes.iter().map(|o| describe(o)).collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            vec!["delivered", "delivered"],
            vec!["delivered", "delivered"],
            vec!["retry:timeout", "retry:timeout"],
        ]
    );
    let timed_out = outcomes
        .iter()
        .find(|o| !matches!(o[0], EventOutcome::Delivered))
        .unwrap();
    assert!(
        errors(timed_out)[0].contains("ackId 1"),
        "{:?}",
        errors(timed_out)
    );
}

#[tokio::test]
async fn a_reused_ack_id_resends_the_earlier_batch() {
    let server = MockServer::start().await;
    // Splunk (restarted, say) hands out ackId 4 twice on the channel.
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(CountingAcks {
            next: 0.into(),
            fixed: Some(4),
        })
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/collector/ack"))
        .respond_with(hec(200, json!({"acks":{"4":false}})))
        .mount(&server)
        .await;
    let sink = sink_with(ack_config(&server, 300));
    let outcomes = send_concurrently(&sink, 2).await;
    let mut summary: Vec<Vec<String>> = outcomes.iter().map(|o| describe(o)).collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            vec!["retry:timeout", "retry:timeout"],
            vec!["retry:unavailable", "retry:unavailable"],
        ]
    );
    let superseded = outcomes
        .iter()
        .flat_map(|o| errors(o))
        .find(|e| e.contains("same ackId"))
        .expect("the earlier batch names the reuse");
    assert!(superseded.contains("ackId 4"), "{superseded}");
}

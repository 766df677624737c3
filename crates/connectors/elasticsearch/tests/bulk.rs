//! Contract tests of the Elasticsearch sink against a wiremock bulk endpoint on loopback.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Category, EncodedEvent, ErrorKind, Event, EventOutcome, Role, SecretMap,
    Severity, Sink,
};
use vowguard_elasticsearch::{
    BulkAction, Compression, ElasticsearchSink, ElasticsearchSinkBuilder,
};
use vowguard_elasticsearch::{HttpOptions, HttpSinkBuilder};
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const API_KEY: &str = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
const PASSWORD: &str = "correct-horse-battery-staple";

fn event(id: &str, timestamp: &str) -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::Medium);
    e.id = id.to_owned();
    e.timestamp = chrono::DateTime::parse_from_rfc3339(timestamp)
        .unwrap()
        .to_utc();
    e
}

fn http(timeout_ms: u64) -> HttpOptions {
    HttpOptions::default().with_timeout(std::time::Duration::from_millis(timeout_ms))
}

fn sink_with(
    server: &MockServer,
    f: impl FnOnce(ElasticsearchSinkBuilder) -> ElasticsearchSinkBuilder,
) -> ElasticsearchSink {
    f(ElasticsearchSink::builder(server.uri()).http(http(2_000)))
        .build()
        .unwrap()
}

fn sink(server: &MockServer) -> ElasticsearchSink {
    sink_with(server, |b| b)
}

fn encode_all(sink: &ElasticsearchSink, events: &[Event]) -> Vec<EncodedEvent> {
    events
        .iter()
        .map(|e| EncodedEvent {
            event_id: e.id.clone(),
            bytes: sink.encode(e).unwrap(),
        })
        .collect()
}

async fn send(sink: &ElasticsearchSink, encoded: &[EncodedEvent]) -> Vec<EventOutcome> {
    let refs: Vec<&EncodedEvent> = encoded.iter().collect();
    let out = sink.send(&refs).await;
    assert_eq!(out.len(), encoded.len(), "one outcome per event");
    out
}

/// The `_id`s of the action lines in a bulk body.
fn ids_in(body: &[u8]) -> Vec<String> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .step_by(2)
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let meta = v.as_object().unwrap().values().next().unwrap();
            meta["_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

const GOLDEN: &str = concat!(
    r#"{"index":{"_index":"wedding-security-2026-06","_id":"evt-1"}}"#,
    "\n",
    r#"{"@timestamp":"2026-06-30T23:59:59.999Z","ecs":{"version":"8.11.0"},"event":{"kind":"event","category":["authentication"],"type":["info"],"action":"login","outcome":"unknown","severity":3,"id":"evt-1"},"message":"authentication login (unknown)","tags":["vowguard"],"vowguard":{"category":"authentication","severity":"medium"}}"#,
    "\n",
    r#"{"index":{"_index":"wedding-security-2026-07","_id":"evt-2"}}"#,
    "\n",
    r#"{"@timestamp":"2026-07-01T00:00:00.000Z","ecs":{"version":"8.11.0"},"event":{"kind":"event","category":["authentication"],"type":["info"],"action":"login","outcome":"unknown","severity":3,"id":"evt-2"},"message":"authentication login (unknown)","tags":["vowguard"],"vowguard":{"category":"authentication","severity":"medium"}}"#,
    "\n",
);

#[tokio::test]
async fn golden_bulk_request_with_index_per_month() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .and(query_param(
            "filter_path",
            "errors,items.*.status,items.*.error",
        ))
        .and(header("content-type", "application/x-ndjson"))
        .and(body_string(GOLDEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink(&server);
    let encoded = encode_all(
        &sink,
        &[
            event("evt-1", "2026-06-30T23:59:59.999Z"),
            event("evt-2", "2026-07-01T00:00:00Z"),
        ],
    );
    let out = send(&sink, &encoded).await;
    assert!(out.iter().all(EventOutcome::is_delivered), "{out:?}");
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].headers.get("authorization").is_none());
    assert!(requests[0].body.ends_with(b"\n"));
}

#[tokio::test]
async fn api_key_and_basic_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .and(header(
            "authorization",
            format!("ApiKey {API_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    // base64("elastic:correct-horse-battery-staple")
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .and(header(
            "authorization",
            "Basic ZWxhc3RpYzpjb3JyZWN0LWhvcnNlLWJhdHRlcnktc3RhcGxl",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    let api = sink_with(&server, |b| b.api_key(SecretString::from(API_KEY)));
    let basic = sink_with(&server, |b| {
        b.basic_auth("elastic", SecretString::from(PASSWORD))
    });
    for s in [&api, &basic] {
        let encoded = encode_all(s, &[event("evt-1", "2026-06-01T00:00:00Z")]);
        assert!(send(s, &encoded).await[0].is_delivered());
    }
}

/// The mixed answer from the issue: 201, 409 on create, 429, 400, 503.
fn mixed_response() -> Value {
    json!({
        "errors": true,
        "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "[evt-b]: version conflict, document already exists"}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}}},
            {"create": {"status": 400, "error": {"type": "document_parsing_exception", "reason": "[1:120] failed to parse field [event.risk_score] of type [float]"}}},
            {"create": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}}
        ]
    })
}

#[tokio::test]
async fn per_item_outcomes_then_resend_only_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(mixed_response()))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(&server, |b| b.action(BulkAction::Create));
    let ids = ["evt-a", "evt-b", "evt-c", "evt-d", "evt-e"];
    let events: Vec<Event> = ids
        .iter()
        .map(|id| event(id, "2026-06-20T12:00:00Z"))
        .collect();
    let encoded = encode_all(&sink, &events);
    let out = send(&sink, &encoded).await;

    assert!(out[0].is_delivered());
    assert!(out[1].is_delivered(), "409 on create means already there");
    let EventOutcome::Retry(e) = &out[2] else {
        panic!("429 item retries: {:?}", out[2])
    };
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    let EventOutcome::Rejected(e) = &out[3] else {
        panic!("400 item is rejected: {:?}", out[3])
    };
    let text = e.to_string();
    assert!(text.contains("document_parsing_exception"), "{text}");
    assert!(
        text.contains("failed to parse field [event.risk_score]"),
        "{text}"
    );
    assert!(text.contains("evt-d"), "{text}");
    assert!(matches!(&out[4], EventOutcome::Retry(e) if e.kind() == ErrorKind::Unavailable));

    // The pipeline resends only the retried events.
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    let retry: Vec<EncodedEvent> = encoded
        .iter()
        .zip(&out)
        .filter(|(_, o)| matches!(o, EventOutcome::Retry(_)))
        .map(|(e, _)| e.clone())
        .collect();
    let out = send(&sink, &retry).await;
    assert!(out.iter().all(EventOutcome::is_delivered));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(ids_in(&requests[0].body), ids);
    assert_eq!(ids_in(&requests[1].body), ["evt-c", "evt-e"]);
    let expected: Vec<u8> = [&encoded[2].bytes[..], &encoded[4].bytes[..]].concat();
    assert_eq!(
        requests[1].body, expected,
        "exactly the 429 and 503 documents, unchanged"
    );
}

/// Matches bulk bodies carrying more than one document (two lines per document).
struct MoreThanOneDocument;

impl Match for MoreThanOneDocument {
    fn matches(&self, request: &Request) -> bool {
        request.body.iter().filter(|&&b| b == b'\n').count() > 2
    }
}

#[tokio::test]
async fn splits_on_413_down_to_single_events() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(MoreThanOneDocument)
        .respond_with(ResponseTemplate::new(413))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .mount(&server)
        .await;
    let sink = sink(&server);
    let ids = ["e1", "e2", "e3", "e4", "e5"];
    let events: Vec<Event> = ids
        .iter()
        .map(|id| event(id, "2026-06-20T12:00:00Z"))
        .collect();
    let out = send(&sink, &encode_all(&sink, &events)).await;
    assert!(out.iter().all(EventOutcome::is_delivered), "{out:?}");

    let requests = server.received_requests().await.unwrap();
    let sent: Vec<Vec<String>> = requests.iter().map(|r| ids_in(&r.body)).collect();
    // 5 -> [2 | 3]; 2 -> [1 | 1]; 3 -> [1 | 2]; 2 -> [1 | 1]: sent in order, each once.
    assert_eq!(
        sent,
        vec![
            vec!["e1", "e2", "e3", "e4", "e5"],
            vec!["e1", "e2"],
            vec!["e1"],
            vec!["e2"],
            vec!["e3", "e4", "e5"],
            vec!["e3"],
            vec!["e4", "e5"],
            vec!["e4"],
            vec!["e5"],
        ]
    );
}

#[tokio::test]
async fn single_event_still_413_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(413).set_body_string("Request Entity Too Large"))
        .expect(3)
        .mount(&server)
        .await;
    let sink = sink(&server);
    let events = [
        event("a", "2026-06-20T12:00:00Z"),
        event("b", "2026-06-20T12:00:00Z"),
    ];
    let out = send(&sink, &encode_all(&sink, &events)).await;
    for o in &out {
        let EventOutcome::Rejected(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.status(), Some(413));
        assert!(
            e.to_string().contains("larger than the cluster accepts"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn data_stream_mode_uses_create_and_timestamp() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_with(&server, |b| b.data_stream("logs-vowguard-default"));
    let out = send(
        &sink,
        &encode_all(&sink, &[event("evt-9", "2026-06-20T12:00:00Z")]),
    )
    .await;
    assert!(out[0].is_delivered());
    let body = &server.received_requests().await.unwrap()[0].body;
    let text = std::str::from_utf8(body).unwrap();
    let mut lines = text.lines();
    let action: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        action,
        json!({"create": {"_index": "logs-vowguard-default", "_id": "evt-9"}})
    );
    let doc: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(doc["@timestamp"], "2026-06-20T12:00:00.000Z");
}

#[tokio::test]
async fn request_level_statuses() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "17"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"type": "security_exception", "reason": "unable to authenticate with provided credentials"},
            "status": 401
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"type": "illegal_argument_exception", "reason": "pipeline with id [nope] does not exist"},
            "status": 400
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let sink = sink_with(&server, |b| {
        b.api_key(SecretString::from(API_KEY)).id("es-prod")
    });
    let encoded = encode_all(
        &sink,
        &[
            event("a", "2026-06-20T12:00:00Z"),
            event("b", "2026-06-20T12:00:00Z"),
        ],
    );

    let out = send(&sink, &encoded).await;
    for o in &out {
        let EventOutcome::Retry(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
        assert_eq!(e.component(), Some("es-prod"));
    }
    let out = send(&sink, &encoded).await;
    assert!(
        out.iter()
            .all(|o| matches!(o, EventOutcome::Retry(e) if e.kind() == ErrorKind::Unavailable))
    );
    let out = send(&sink, &encoded).await;
    for o in &out {
        let EventOutcome::Rejected(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.to_string().contains("security_exception"), "{e}");
        assert!(!e.to_string().contains(API_KEY));
    }
    let out = send(&sink, &encoded).await;
    for o in &out {
        let EventOutcome::Rejected(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(
            e.to_string()
                .contains("pipeline with id [nope] does not exist"),
            "{e}"
        );
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn timeout_and_refused_connection_are_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let sink = sink_with(&server, |b| b.http(http(200)));
    let encoded = encode_all(&sink, &[event("a", "2026-06-20T12:00:00Z")]);
    let out = send(&sink, &encoded).await;
    assert!(
        matches!(&out[0], EventOutcome::Retry(e) if e.kind() == ErrorKind::Timeout),
        "{out:?}"
    );

    let refused = ElasticsearchSink::builder("http://127.0.0.1:9")
        .build()
        .unwrap();
    let out = send(&refused, &encoded).await;
    assert!(
        matches!(&out[0], EventOutcome::Retry(e) if e.kind() == ErrorKind::Unavailable),
        "{out:?}"
    );
}

#[tokio::test]
async fn pipeline_parameter_and_gzip() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prefix/_bulk"))
        .and(query_param("pipeline", "vowguard-geo"))
        .and(query_param(
            "filter_path",
            "errors,items.*.status,items.*.error",
        ))
        .and(header("content-encoding", "gzip"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = ElasticsearchSink::builder(format!("{}/prefix/", server.uri()))
        .pipeline("vowguard-geo")
        .compression(Compression::Gzip)
        .build()
        .unwrap();
    let encoded = encode_all(&sink, &[event("a", "2026-06-20T12:00:00Z")]);
    assert!(send(&sink, &encoded).await[0].is_delivered());
    let body = &server.received_requests().await.unwrap()[0].body;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, encoded[0].bytes);
}

#[tokio::test]
async fn healthcheck() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(header(
            "authorization",
            format!("ApiKey {API_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"cluster_name": "weddings"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let ok = sink_with(&server, |b| b.api_key(SecretString::from(API_KEY)));
    ok.healthcheck().await.unwrap();
    let bad = sink(&server);
    let err = bad.healthcheck().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

fn build(
    table: &str,
    secrets: &SecretMap,
) -> Result<std::sync::Arc<dyn Sink>, vowguard_core::Error> {
    let factory = vowguard_core::registry::find(Role::Sink, "elasticsearch")?;
    let vowguard_core::Builder::Sink(build) = factory.builder else {
        panic!("not a sink factory")
    };
    let ctx = BuildContext {
        id: "es",
        role: Role::Sink,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    };
    build(&ctx, toml::from_str(table).unwrap())
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/_bulk"))
        .and(header(
            "authorization",
            format!("ApiKey {API_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": false})))
        .expect(1)
        .mount(&server)
        .await;
    let table = format!(
        "endpoint = \"{}\"\napi_key = {{ env = \"ES_KEY\" }}\nindex = \"ws-%Y.%m.%d\"\n",
        server.uri()
    );
    let sink = build(&table, &SecretMap::new().with("ES_KEY", API_KEY)).unwrap();
    assert_eq!(sink.kind(), "elasticsearch");
    assert_eq!(sink.batch_limits().max_events, 1000);
    assert!(!format!("{sink:?}").contains(API_KEY));
    let e = event("a", "2026-06-20T12:00:00Z");
    let bytes = sink.encode(&e).unwrap();
    assert!(bytes.starts_with(br#"{"index":{"_index":"ws-2026.06.20","_id":"a"}}"#));
    let encoded = EncodedEvent {
        event_id: "a".into(),
        bytes,
    };
    assert!(sink.send(&[&encoded]).await[0].is_delivered());
}

#[test]
fn config_errors_name_the_key_and_hide_secrets() {
    let err = build(
        "endpoint = \"http://x\"\nindexx = \"a\"\n",
        &SecretMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("indexx") && err.contains("sinks.es"), "{err}");

    let err = build(
        "endpoint = \"http://x\"\nindex = \"ws-%Q\"\n",
        &SecretMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("%Q"), "{err}");

    let table = "endpoint = \"http://x\"\nusername = \"elastic\"\npassword = { env = \"PW\" }\napi_key = { env = \"K\" }\n";
    let secrets = SecretMap::new().with("PW", PASSWORD).with("K", API_KEY);
    let err = build(table, &secrets).unwrap_err().to_string();
    assert!(err.contains("not both"), "{err}");
    assert!(!err.contains(PASSWORD) && !err.contains(API_KEY));

    let err = build(
        "endpoint = \"http://x\"\nusername = \"elastic\"\n",
        &SecretMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("sinks.es.password"), "{err}");

    let table = "endpoint = \"http://x\"\nusername = \"elastic\"\npassword = { env = \"PW\" }\n";
    let sink = build(table, &SecretMap::new().with("PW", PASSWORD)).unwrap();
    let debug = format!("{sink:?}");
    assert!(
        !debug.contains(PASSWORD) && debug.contains("redacted"),
        "{debug}"
    );
}

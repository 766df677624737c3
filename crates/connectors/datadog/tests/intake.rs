//! Contract tests of the Datadog Logs sink against a wiremock intake on loopback.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use vowguard_core::secrecy::SecretString;
use vowguard_core::{
    BuildContext, Category, EncodedEvent, ErrorKind, Event, EventOutcome, Role, SecretMap,
    Severity, Sink,
};
use vowguard_datadog::{
    Compression, DatadogLogsSink, DatadogLogsSinkBuilder, HttpOptions, HttpSinkBuilder,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const API_KEY: &str = "0123456789abcdef0123456789abcdef";

fn event(id: &str) -> Event {
    let mut e = Event::from_json_str(
        r#"{"timestamp":"2026-06-20T14:03:07.123Z","category":"authentication","action":"login",
            "outcome":"failure","severity":"critical","message":"5 failed logins","user_id":"u-1",
            "user_name":"eve","source_ip":"198.51.100.4","wedding_id":"w-9"}"#,
    )
    .unwrap();
    e.id = id.to_owned();
    e
}

fn config(server: &MockServer) -> DatadogLogsSinkBuilder {
    DatadogLogsSink::builder()
        .api_key(SecretString::from(API_KEY))
        .endpoint(server.uri())
        .api_endpoint(server.uri())
        .hostname("gw1")
        .tags(["env:prod"])
        .http(HttpOptions::default().with_timeout(std::time::Duration::from_millis(2_000)))
}

fn sink_from(c: DatadogLogsSinkBuilder) -> DatadogLogsSink {
    c.build().unwrap()
}

fn encode_all(sink: &DatadogLogsSink, events: &[Event]) -> Vec<EncodedEvent> {
    events
        .iter()
        .map(|e| EncodedEvent {
            event_id: e.id.clone(),
            bytes: sink.encode(e).unwrap(),
        })
        .collect()
}

async fn send(sink: &DatadogLogsSink, encoded: &[EncodedEvent]) -> Vec<EventOutcome> {
    let refs: Vec<&EncodedEvent> = encoded.iter().collect();
    let out = sink.send(&refs).await;
    assert_eq!(out.len(), encoded.len(), "one outcome per event");
    out
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

/// The ids (`vowguard.id`) in a JSON array body, gzip or not.
fn ids_in(request: &Request) -> Vec<String> {
    let plain = if request.headers.get("content-encoding").is_some() {
        gunzip(&request.body)
    } else {
        request.body.clone()
    };
    let entries: Vec<Value> = serde_json::from_slice(&plain).unwrap();
    entries
        .iter()
        .map(|e| e["vowguard"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn posts_gzip_json_array_with_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/logs"))
        .and(header("dd-api-key", API_KEY))
        .and(header("content-type", "application/json"))
        .and(header("content-encoding", "gzip"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_from(config(&server));
    let encoded = encode_all(&sink, &[event("evt-1"), event("evt-2")]);
    let out = send(&sink, &encoded).await;
    assert!(out.iter().all(EventOutcome::is_delivered), "{out:?}");

    let request = &server.received_requests().await.unwrap()[0];
    let plain = gunzip(&request.body);
    let expected: Vec<u8> = [&b"["[..], &encoded[0].bytes, b",", &encoded[1].bytes, b"]"].concat();
    assert_eq!(plain, expected);
    let entries: Vec<Value> = serde_json::from_slice(&plain).unwrap();
    let first = &entries[0];
    assert_eq!(first["ddsource"], "vowguard");
    assert_eq!(first["service"], "vowguard");
    assert_eq!(first["hostname"], "gw1");
    assert_eq!(
        first["ddtags"],
        "env:prod,severity:critical,category:authentication,wedding_id:w-9"
    );
    assert_eq!(first["message"], "5 failed logins");
    assert_eq!(first["status"], "critical");
    assert_eq!(first["timestamp"], 1_781_964_187_123_i64);
    assert_eq!(
        first["evt"],
        json!({"name":"login","category":"authentication","outcome":"failure"})
    );
    assert_eq!(first["network"]["client"]["ip"], "198.51.100.4");
    assert_eq!(first["usr"], json!({"id":"u-1","name":"eve"}));
    assert_eq!(first["vowguard"]["id"], "evt-1");
    assert_eq!(first["vowguard"]["severity"], "critical");
    assert_eq!(entries[1]["vowguard"]["id"], "evt-2");
}

#[tokio::test]
async fn uncompressed_when_configured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/logs"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let sink = sink_from(config(&server).compression(Compression::None));
    let encoded = encode_all(&sink, &[event("evt-1")]);
    assert!(send(&sink, &encoded).await[0].is_delivered());
    let request = &server.received_requests().await.unwrap()[0];
    assert!(request.headers.get("content-encoding").is_none());
    assert_eq!(request.body, [&b"["[..], &encoded[0].bytes, b"]"].concat());
}

#[tokio::test]
async fn rate_limit_server_error_and_rejection() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errors": [{"status": "400", "title": "Bad Request", "detail": "Malformed payload"}]
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"errors": ["Forbidden"]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(408))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let sink = sink_from(config(&server).id("dd"));
    let encoded = encode_all(&sink, &[event("a"), event("b")]);

    let out = send(&sink, &encoded).await;
    for o in &out {
        let EventOutcome::Retry(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(e.component(), Some("dd"));
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
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(e.to_string().contains("Malformed payload"), "{e}");
    }
    let out = send(&sink, &encoded).await;
    for o in &out {
        let EventOutcome::Rejected(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(!e.to_string().contains(API_KEY));
    }
    let out = send(&sink, &encoded).await;
    assert!(
        out.iter()
            .all(|o| matches!(o, EventOutcome::Retry(e) if e.kind() == ErrorKind::Timeout))
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let sink = sink_from(
        config(&server)
            .http(HttpOptions::default().with_timeout(std::time::Duration::from_millis(200))),
    );
    let out = send(&sink, &encode_all(&sink, &[event("a")])).await;
    assert!(
        matches!(&out[0], EventOutcome::Retry(e) if e.kind() == ErrorKind::Timeout),
        "{out:?}"
    );
}

/// Matches request bodies with more than one log entry.
struct MoreThanOneEntry;

impl Match for MoreThanOneEntry {
    fn matches(&self, request: &Request) -> bool {
        ids_in(request).len() > 1
    }
}

#[tokio::test]
async fn splits_on_413() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(MoreThanOneEntry)
        .respond_with(ResponseTemplate::new(413))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let sink = sink_from(config(&server));
    let events: Vec<Event> = ["e1", "e2", "e3"].iter().map(|id| event(id)).collect();
    let out = send(&sink, &encode_all(&sink, &events)).await;
    assert!(out.iter().all(EventOutcome::is_delivered), "{out:?}");
    let sent: Vec<Vec<String>> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(ids_in)
        .collect();
    assert_eq!(
        sent,
        vec![
            vec!["e1", "e2", "e3"],
            vec!["e1"],
            vec!["e2", "e3"],
            vec!["e2"],
            vec!["e3"]
        ]
    );
}

#[tokio::test]
async fn healthcheck_validates_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/validate"))
        .and(header("dd-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"valid": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/validate"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"errors": ["Forbidden"]})))
        .mount(&server)
        .await;
    sink_from(config(&server)).healthcheck().await.unwrap();
    let bad = sink_from(config(&server).api_key(SecretString::from("wrong-key")));
    let err = bad.healthcheck().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.to_string().contains("wrong-key"), "{err}");
}

#[tokio::test]
async fn healthcheck_valid_false_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/validate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"valid": false})))
        .expect(1)
        .mount(&server)
        .await;
    let err = sink_from(config(&server)).healthcheck().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

fn build(
    table: &str,
    secrets: &SecretMap,
) -> Result<std::sync::Arc<dyn Sink>, vowguard_core::Error> {
    let factory = vowguard_core::registry::find(Role::Sink, "datadog_logs")?;
    let vowguard_core::Builder::Sink(build) = factory.builder else {
        panic!("not a sink factory")
    };
    let ctx = BuildContext {
        id: "dd",
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
        .and(path("/api/v2/logs"))
        .and(header("dd-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let table = format!(
        "api_key = {{ env = \"DD_API_KEY\" }}\nendpoint = \"{}\"\nservice = \"wedsync\"\nddtags = \"env:prod,team:secops\"\nhostname = \"gw2\"\n",
        server.uri()
    );
    let sink = build(&table, &SecretMap::new().with("DD_API_KEY", API_KEY)).unwrap();
    assert_eq!(sink.kind(), "datadog_logs");
    assert_eq!(sink.batch_limits().max_bytes, 4_500_000);
    assert_eq!(sink.batch_limits().max_events, 1000);
    assert!(!format!("{sink:?}").contains(API_KEY));
    let mut e = Event::new(Category::Payment, "refund", Severity::Info);
    e.id = "p-1".into();
    let bytes = sink.encode(&e).unwrap();
    let entry: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(entry["service"], "wedsync");
    assert_eq!(entry["hostname"], "gw2");
    assert_eq!(entry["status"], "info");
    assert_eq!(
        entry["ddtags"],
        "env:prod,team:secops,severity:info,category:payment"
    );
    let encoded = EncodedEvent {
        event_id: e.id.clone(),
        bytes,
    };
    assert!(sink.send(&[&encoded]).await[0].is_delivered());
}

#[test]
fn config_errors_name_the_key_and_hide_secrets() {
    let secrets = || SecretMap::new().with("DD_API_KEY", API_KEY);
    let err = build(
        "api_key = { env = \"DD_API_KEY\" }\nsevrice = \"x\"\n",
        &secrets(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("sevrice") && err.contains("sinks.dd"), "{err}");
    let err = build(
        "api_key = { env = \"DD_API_KEY\" }\nsite = \"datadoghq.example\"\n",
        &secrets(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown Datadog site"), "{err}");
    assert!(!err.contains(API_KEY));
    let err = build("site = \"datadoghq.eu\"\n", &secrets())
        .unwrap_err()
        .to_string();
    assert!(err.contains("api_key"), "{err}");
    let err = build("api_key = { env = \"MISSING\" }\n", &secrets())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sinks.dd.api_key") && err.contains("MISSING"),
        "{err}"
    );
    let sink = build(
        "api_key = { env = \"DD_API_KEY\" }\nsite = \"us5.datadoghq.com\"\n",
        &secrets(),
    )
    .unwrap();
    let debug = format!("{sink:?}");
    assert!(
        debug.contains("https://http-intake.logs.us5.datadoghq.com"),
        "{debug}"
    );
    assert!(!debug.contains(API_KEY), "{debug}");
}

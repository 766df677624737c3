//! `[telemetry.otlp]` (cargo feature `otlp`): `vowguard run` exports each event's spans
//! (journal, sink) over OTLP/HTTP to a local collector stand-in, and a wrong endpoint is a
//! config error naming the key.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn vowguard(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .env("OTLP_HEC_TOKEN", "otlp-test-token")
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vowguard starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn config(dir: &std::path::Path, hec: &str, otlp_endpoint: &str) -> String {
    let file = dir.join("vowguard.toml");
    std::fs::write(
        &file,
        format!(
            r#"
data_dir = "data"

[sources.in]
type = "stdin"

[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "OTLP_HEC_TOKEN" }}
batch = {{ max_wait = "20ms" }}

[telemetry.otlp]
endpoint = "{otlp_endpoint}"
"#
        ),
    )
    .unwrap();
    file.display().to_string()
}

const INPUT: &str = concat!(
    r#"{"id":"otlp-evt-1","timestamp":"2026-06-20T10:00:00Z","category":"authentication","action":"login","outcome":"failure","severity":"medium"}"#,
    "\n",
    r#"{"id":"otlp-evt-2","timestamp":"2026-06-20T10:01:00Z","category":"data_export","action":"guest_list.export","severity":"high"}"#,
    "\n",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exports_each_events_spans_to_the_collector() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    // An OTLP/HTTP collector: an empty ExportTraceServiceResponse is an empty body.
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("content-type", "application/x-protobuf"),
        )
        .mount(&collector)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &hec.uri(), &collector.uri());

    let output =
        tokio::task::spawn_blocking(move || vowguard(&["run", "--config", &config], INPUT))
            .await
            .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    // The run ends with the input; the exporter is flushed on the way out, so the spans
    // are at the collector when the process has exited.
    let requests = collector.received_requests().await.unwrap();
    assert!(!requests.is_empty(), "no OTLP export; stderr: {stderr}");
    for request in &requests {
        assert_eq!(
            request
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/x-protobuf")
        );
    }
    // Protobuf carries strings as their bytes: span names, attribute keys and values.
    let bodies: Vec<u8> = requests.iter().flat_map(|r| r.body.clone()).collect();
    let has = |needle: &str| bodies.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in [
        "vowguard",
        "journal",
        "sink.send",
        "sink.event",
        "event_id",
        "otlp-evt-1",
        "otlp-evt-2",
        "splunk",
        "delivered",
    ] {
        assert!(has(needle), "`{needle}` not exported");
    }
    // Only the pipeline's spans: the HEC token never reaches the collector.
    assert!(!has("otlp-test-token"));
    assert!(!hec.received_requests().await.unwrap().is_empty());
}

#[test]
fn a_wrong_endpoint_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://127.0.0.1:9", "ftp://collector:4318");
    let output = vowguard(
        &["validate", "--config", &config, "--skip-healthchecks"],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`telemetry.otlp.endpoint`"), "{stderr}");
}

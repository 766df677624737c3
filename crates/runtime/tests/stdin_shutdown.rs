//! A stop (SIGTERM/SIGINT in the binary) while the stdin source drains bounds the drain by
//! `pipeline.shutdown_timeout`, like the http source: an endpoint that never recovers
//! cannot keep the process alive, and what is left stays in the journal.

use std::time::Duration;

use vowguard_core::SecretMap;
use vowguard_runtime::{Config, Environment, assemble, run_with_input};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn a_stop_during_the_drain_ends_it_and_keeps_the_events() {
    // The SIEM answers 503 forever; retries would go on for minutes.
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("{\"text\":\"busy\",\"code\":9}"))
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
data_dir = "{data}"
[pipeline]
shutdown_timeout = "200ms"
[sources.in]
type = "stdin"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{endpoint}"
token = {{ env = "HEC_TOKEN" }}
retry = {{ max_attempts = 1000, initial_backoff = "50ms", max_backoff = "100ms" }}
breaker = {{ failure_threshold = 0 }}
"#,
        data = dir.path().join("data").display(),
        endpoint = hec.uri(),
    );
    let config = Config::parse(&text).unwrap();
    let secrets = SecretMap::new().with("HEC_TOKEN", "stdin-shutdown-token");
    let assembly = assemble(
        &config,
        &Environment {
            config_dir: dir.path(),
            secrets: &secrets,
        },
    )
    .unwrap();
    let input = r#"{"category":"authentication","action":"login","severity":"low","id":"keep-1"}
{"category":"authentication","action":"login","severity":"low","id":"keep-2"}
"#;
    // The stop comes once the sink has been tried (the drain is under way), not before.
    let server = &hec;
    let stop = async move {
        loop {
            if !server
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // A guard against a hang, not a timing assertion: without the bound the drain never ends.
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        run_with_input(assembly, input.as_bytes(), stop),
    )
    .await
    .expect("a stop during the drain ends the run")
    .unwrap();
    assert_eq!(report.source.accepted, 2);
    let sink = &report.metrics.sinks["splunk"];
    assert_eq!(sink.delivered, 0);
    assert_eq!(sink.dead_lettered, 0, "nothing is given up at a stop");
    assert_eq!(
        report.metrics.journal.records, 2,
        "both events stay in the journal for the next start"
    );
}

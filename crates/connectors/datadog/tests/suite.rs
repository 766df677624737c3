//! The shared sink behaviour suite, run against the Datadog Logs sink.

use std::io::Read as _;
use std::sync::Arc;

use serde_json::{Value, json};
use vowguard_core::Sink;
use vowguard_core::secrecy::SecretString;
use vowguard_datadog::{DatadogLogsSink, HttpOptions, HttpSinkBuilder};
use vowguard_testkit::sink_suite::{self, HttpSinkHarness};
use wiremock::{Request, ResponseTemplate};

struct Harness;

impl HttpSinkHarness for Harness {
    fn name(&self) -> &str {
        "datadog_logs"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Sink> {
        let sink = DatadogLogsSink::builder()
            .api_key(SecretString::from(self.secret()))
            .endpoint(base_url)
            .api_endpoint(base_url)
            .hostname("suite")
            .http(HttpOptions::default().with_timeout(std::time::Duration::from_millis(2_000)))
            .build()
            .unwrap();
        Arc::new(sink)
    }

    fn ingest(&self) -> (&'static str, String) {
        ("POST", "/api/v2/logs".to_owned())
    }

    fn accept(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(202).set_body_json(json!({}))
    }

    fn permanent_failure(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_json(json!({
            "errors": [{"status": "400", "title": "Bad Request", "detail": "Malformed payload"}]
        }))
    }

    fn permanent_reason(&self) -> &str {
        "Malformed payload"
    }

    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(403)
            .set_body_string(format!(r#"{{"errors":["invalid credential {secret}"]}}"#))
    }
    fn count_events(&self, request: &Request) -> usize {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&request.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        serde_json::from_slice::<Vec<Value>>(&plain).unwrap().len()
    }
}

#[tokio::test]
async fn shared_sink_suite() {
    sink_suite::run(Harness).await;
}

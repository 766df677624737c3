//! The shared sink behaviour suite, run against the Elasticsearch sink.

use std::sync::Arc;

use serde_json::json;
use vowguard_core::Sink;
use vowguard_core::secrecy::SecretString;
use vowguard_elasticsearch::ElasticsearchSink;
use vowguard_elasticsearch::{HttpOptions, HttpSinkBuilder};
use vowguard_testkit::sink_suite::{self, HttpSinkHarness};
use wiremock::{Request, ResponseTemplate};

struct Harness;

impl HttpSinkHarness for Harness {
    fn name(&self) -> &str {
        "elasticsearch"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Sink> {
        let sink = ElasticsearchSink::builder(base_url)
            .api_key(SecretString::from(self.secret()))
            .http(HttpOptions::default().with_timeout(std::time::Duration::from_millis(2_000)))
            .build()
            .unwrap();
        Arc::new(sink)
    }

    fn ingest(&self) -> (&'static str, String) {
        ("POST", "/_bulk".to_owned())
    }

    fn accept(&self, request: &Request) -> ResponseTemplate {
        let items: Vec<_> = (0..self.count_events(request))
            .map(|_| json!({"index": {"status": 201}}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"errors": false, "items": items}))
    }

    fn permanent_failure(&self, request: &Request) -> ResponseTemplate {
        let items: Vec<_> = (0..self.count_events(request))
            .map(|_| {
                json!({"index": {"status": 400, "error": {
                    "type": "document_parsing_exception",
                    "reason": "failed to parse field [event.risk_score]"
                }}})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"errors": true, "items": items}))
    }

    fn permanent_reason(&self) -> &str {
        "document_parsing_exception: failed to parse field [event.risk_score]"
    }

    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_string(format!(
            r#"{{"error":{{"type":"security_exception","reason":"invalid credential {secret}"}},"status":401}}"#
        ))
    }
    fn count_events(&self, request: &Request) -> usize {
        request.body.iter().filter(|&&b| b == b'\n').count() / 2
    }
}

#[tokio::test]
async fn shared_sink_suite() {
    sink_suite::run(Harness).await;
}

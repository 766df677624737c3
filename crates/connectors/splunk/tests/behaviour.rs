//! The shared sink behaviour suite, run against the Splunk HEC sink.

use std::sync::Arc;

use secrecy::SecretString;
use vowguard_core::Sink;
use vowguard_splunk::SplunkHecSink;
use vowguard_testkit::sink_suite::{self, HttpSinkHarness};
use wiremock::{Request, ResponseTemplate};

struct Hec;

impl HttpSinkHarness for Hec {
    fn name(&self) -> &str {
        "splunk_hec"
    }
    fn build(&self, base_url: &str) -> Arc<dyn Sink> {
        let sink = SplunkHecSink::builder(base_url)
            .token(SecretString::from(self.secret().to_owned()))
            .build()
            .unwrap();
        Arc::new(sink)
    }
    fn ingest(&self) -> (&'static str, String) {
        ("POST", "/services/collector/event".into())
    }
    fn accept(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#)
    }
    fn permanent_failure(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_string(r#"{"text":"Incorrect index","code":7}"#)
    }
    fn permanent_reason(&self) -> &str {
        "Incorrect index"
    }
    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(403).set_body_string(format!(
            r#"{{"text":"invalid credential {secret}","code":4}}"#
        ))
    }
    fn count_events(&self, request: &Request) -> usize {
        serde_json::Deserializer::from_slice(&request.body)
            .into_iter::<serde_json::Value>()
            .count()
    }
    fn server_error(&self) -> ResponseTemplate {
        ResponseTemplate::new(503).set_body_string(r#"{"text":"Server is busy","code":9}"#)
    }
}

#[tokio::test]
async fn splunk_hec_passes_the_sink_behaviour_suite() {
    sink_suite::run(Hec).await;
}

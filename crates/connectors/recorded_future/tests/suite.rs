//! The shared enricher behaviour suite, run against the Recorded Future enricher.

use std::sync::Arc;

use vowguard_core::Enricher;
use vowguard_core::secrecy::SecretString;
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use wiremock::ResponseTemplate;

struct RecordedFuture;

impl HttpEnricherHarness for RecordedFuture {
    fn name(&self) -> &str {
        "recorded_future"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let enricher = vowguard_recorded_future::RecordedFuture::builder()
            .api_key(SecretString::from(self.secret().to_owned()))
            .base_url(base_url)
            .build()
            .unwrap();
        Arc::new(enricher)
    }

    fn refuse_key(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": {"status": 401, "message": format!("X-RFToken {secret} is not a valid API key")}
        }))
    }
}

#[tokio::test]
async fn recorded_future_passes_the_enricher_suite() {
    enricher_suite::run(RecordedFuture).await;
}

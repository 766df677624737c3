//! The shared enricher behaviour suite, run against the MISP enricher.

use std::sync::Arc;

use secrecy::SecretString;
use vowguard_core::Enricher;
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use wiremock::ResponseTemplate;

struct Misp;

impl HttpEnricherHarness for Misp {
    fn name(&self) -> &str {
        "misp"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let enricher = vowguard_misp::Misp::builder()
            .base_url(base_url)
            .api_key(SecretString::from(self.secret().to_owned()))
            .build()
            .unwrap();
        Arc::new(enricher)
    }

    fn refuse_key(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "name": format!("Authentication failed: {secret} is not a valid API key."),
            "message": "Authentication failed.",
            "url": "/attributes/restSearch"
        }))
    }
}

#[tokio::test]
async fn misp_passes_the_enricher_suite() {
    enricher_suite::run(Misp).await;
}

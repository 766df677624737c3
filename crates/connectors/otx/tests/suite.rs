//! The shared enricher behaviour suite, run against the OTX enricher.

use std::sync::Arc;

use vowguard_core::Enricher;
use vowguard_core::secrecy::SecretString;
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use wiremock::ResponseTemplate;

struct Otx;

impl HttpEnricherHarness for Otx {
    fn name(&self) -> &str {
        "otx"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let enricher = vowguard_otx::Otx::builder()
            .api_key(SecretString::from(self.secret().to_owned()))
            .base_url(base_url)
            .build()
            .unwrap();
        Arc::new(enricher)
    }

    fn refuse_key(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "detail": format!("X-OTX-API-KEY {secret} is not a valid API key")
        }))
    }
}

#[tokio::test]
async fn otx_passes_the_enricher_suite() {
    enricher_suite::run(Otx).await;
}

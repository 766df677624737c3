//! The shared enricher behaviour suite, run against the AbuseIPDB enricher.

use std::sync::Arc;

use vowguard_core::Enricher;
use vowguard_core::secrecy::SecretString;
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use wiremock::ResponseTemplate;

struct AbuseIpdb;

impl HttpEnricherHarness for AbuseIpdb {
    fn name(&self) -> &str {
        "abuseipdb"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let enricher = vowguard_abuseipdb::AbuseIpdb::builder()
            .api_key(SecretString::from(self.secret().to_owned()))
            .base_url(base_url)
            .build()
            .unwrap();
        Arc::new(enricher)
    }

    fn refuse_key(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "errors": [{
                "detail": format!("Authentication failed: {secret} is not a valid API key."),
                "status": 401
            }]
        }))
    }
}

#[tokio::test]
async fn abuseipdb_passes_the_enricher_suite() {
    enricher_suite::run(AbuseIpdb).await;
}

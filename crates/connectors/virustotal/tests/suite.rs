//! The shared enricher behaviour suite, run against the VirusTotal enricher.

use std::sync::Arc;

use vowguard_core::Enricher;
use vowguard_core::secrecy::SecretString;
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use wiremock::ResponseTemplate;

struct VirusTotal;

impl HttpEnricherHarness for VirusTotal {
    fn name(&self) -> &str {
        "virustotal"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let enricher = vowguard_virustotal::VirusTotal::builder()
            .api_key(SecretString::from(self.secret().to_owned()))
            .base_url(base_url)
            .build()
            .unwrap();
        Arc::new(enricher)
    }

    fn refuse_key(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": {
                "code": "WrongCredentialsError",
                "message": format!("Wrong API key {secret}: it is not a valid API key")
            }
        }))
    }
}

#[tokio::test]
async fn virustotal_passes_the_enricher_suite() {
    enricher_suite::run(VirusTotal).await;
}

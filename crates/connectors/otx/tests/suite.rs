//! The shared enricher behaviour suite, run against the OTX enricher.

use std::sync::Arc;

use vowguard_core::secrecy::SecretString;
use vowguard_core::{Enricher, SecretRef};
use vowguard_otx::{OtxConfig, enricher};
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use wiremock::ResponseTemplate;

struct Otx;

impl HttpEnricherHarness for Otx {
    fn name(&self) -> &str {
        "otx"
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let mut config = OtxConfig::new(SecretRef::Env("OTX_API_KEY".into()));
        config.base_url = Some(base_url.to_owned());
        Arc::new(enricher(&config, &SecretString::from(self.secret().to_owned())).unwrap())
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

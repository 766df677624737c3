//! The shared enricher behaviour suite, run against the ThreatConnect enricher with each of
//! its two authentications.

use std::sync::Arc;

use vowguard_core::{Enricher, SecretRef};
use vowguard_testkit::enricher_suite::{self, HttpEnricherHarness};
use vowguard_threatconnect::{Credentials, ThreatConnectConfig};
use wiremock::ResponseTemplate;

struct ThreatConnect {
    hmac: bool,
}

impl HttpEnricherHarness for ThreatConnect {
    fn name(&self) -> &str {
        if self.hmac {
            "threatconnect (hmac)"
        } else {
            "threatconnect (token)"
        }
    }

    fn build(&self, base_url: &str) -> Arc<dyn Enricher> {
        let secret = self.secret().to_owned().into();
        let (mut config, credentials) = if self.hmac {
            (
                ThreatConnectConfig::with_hmac("12345678901234567890", SecretRef::Env("S".into())),
                Credentials::Hmac {
                    access_id: "12345678901234567890".into(),
                    secret_key: secret,
                },
            )
        } else {
            (
                ThreatConnectConfig::with_token(SecretRef::Env("T".into())),
                Credentials::Token(secret),
            )
        };
        config.base_url = Some(base_url.to_owned());
        Arc::new(config.into_builder(credentials).build().unwrap())
    }

    fn refuse_key(&self, secret: &str) -> ResponseTemplate {
        let status = if self.hmac { 403 } else { 401 };
        ResponseTemplate::new(status).set_body_json(serde_json::json!({
            "status": "Failure",
            "message": format!("credential {secret} is not a valid API key")
        }))
    }
}

#[tokio::test]
async fn threatconnect_with_a_token_passes_the_enricher_suite() {
    enricher_suite::run(ThreatConnect { hmac: false }).await;
}

#[tokio::test]
async fn threatconnect_with_hmac_passes_the_enricher_suite() {
    enricher_suite::run(ThreatConnect { hmac: true }).await;
}

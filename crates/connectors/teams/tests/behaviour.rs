//! The shared notifier behaviour suite, run against the Teams notifier (the secret is the
//! workflow URL's `sig`).

use std::sync::Arc;

use secrecy::SecretString;
use vowguard_core::Notifier;
use vowguard_teams::TeamsNotifier;
use vowguard_testkit::notifier_suite::{self, HttpNotifierHarness};
use wiremock::{Request, ResponseTemplate};

struct Teams;

impl HttpNotifierHarness for Teams {
    fn name(&self) -> &str {
        "teams"
    }
    fn build(&self, base_url: &str) -> Arc<dyn Notifier> {
        let url = format!(
            "{base_url}{}?api-version=2016-06-01&sig={}",
            self.endpoint().1,
            self.secret()
        );
        Arc::new(
            TeamsNotifier::builder()
                .webhook_url(SecretString::from(url))
                .build()
                .unwrap(),
        )
    }
    fn endpoint(&self) -> (&'static str, String) {
        (
            "POST",
            "/workflows/0a1b/triggers/manual/paths/invoke".into(),
        )
    }
    fn accept(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(202)
    }
    fn permanent_failure(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_string("InvalidRequestContent: card is malformed")
    }
    fn permanent_reason(&self) -> &str {
        "InvalidRequestContent"
    }
    fn check_hostile(&self, request: &Request) -> Result<(), String> {
        let body: serde_json::Value =
            serde_json::from_slice(&request.body).map_err(|e| format!("invalid JSON: {e}"))?;
        let card = &body["attachments"][0]["content"];
        if card["version"] != "1.4" {
            return Err(format!("card version {}", card["version"]));
        }
        let text = card.to_string();
        for raw in [
            "[click](",
            "<script>",
            "http://evil",
            "<@U0ALL>",
            "<!channel>",
        ] {
            if text.contains(raw) {
                return Err(format!("{raw} reached Teams as markup"));
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn teams_passes_the_notifier_behaviour_suite() {
    notifier_suite::run(Teams).await;
}

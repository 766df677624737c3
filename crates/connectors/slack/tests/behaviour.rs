//! The shared notifier behaviour suite, run against the Slack notifier (webhook mode: the
//! secret is the webhook URL's path).

use std::sync::Arc;

use secrecy::SecretString;
use vowguard_core::Notifier;
use vowguard_slack::SlackNotifier;
use vowguard_testkit::notifier_suite::{self, HttpNotifierHarness};
use wiremock::{Request, ResponseTemplate};

struct Slack;

impl HttpNotifierHarness for Slack {
    fn name(&self) -> &str {
        "slack"
    }
    fn build(&self, base_url: &str) -> Arc<dyn Notifier> {
        let url = format!("{base_url}{}", self.endpoint().1);
        Arc::new(
            SlackNotifier::builder()
                .webhook_url(SecretString::from(url))
                .build()
                .unwrap(),
        )
    }
    fn endpoint(&self) -> (&'static str, String) {
        ("POST", format!("/services/T000/B000/{}", self.secret()))
    }
    fn accept(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_string("ok")
    }
    fn permanent_failure(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_string("invalid_payload")
    }
    fn permanent_reason(&self) -> &str {
        "invalid_payload"
    }
    fn check_hostile(&self, request: &Request) -> Result<(), String> {
        let body = String::from_utf8_lossy(&request.body);
        serde_json::from_slice::<serde_json::Value>(&request.body)
            .map_err(|e| format!("invalid JSON: {e}"))?;
        for raw in ["<!channel>", "<@U0ALL>", "<script>", "<http"] {
            if body.contains(raw) {
                return Err(format!("{raw} reached Slack unescaped"));
            }
        }
        if !body.contains("&lt;!channel&gt;") {
            return Err("the hostile mention is missing instead of escaped".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn slack_passes_the_notifier_behaviour_suite() {
    notifier_suite::run(Slack).await;
}

//! The shared notifier behaviour suite, run against the PagerDuty notifier.

use std::sync::Arc;

use secrecy::SecretString;
use vowguard_core::Notifier;
use vowguard_pagerduty::PagerDutyNotifier;
use vowguard_testkit::notifier_suite::{self, HttpNotifierHarness};
use wiremock::{Request, ResponseTemplate};

struct PagerDuty;

impl HttpNotifierHarness for PagerDuty {
    fn name(&self) -> &str {
        "pagerduty"
    }
    fn secret(&self) -> &str {
        "R0uT1nGKeYvgSuite000000000000042"
    }
    fn build(&self, base_url: &str) -> Arc<dyn Notifier> {
        Arc::new(
            PagerDutyNotifier::builder()
                .routing_key(SecretString::from(self.secret().to_owned()))
                .endpoint(base_url)
                .build()
                .unwrap(),
        )
    }
    fn endpoint(&self) -> (&'static str, String) {
        ("POST", "/v2/enqueue".into())
    }
    fn accept(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(202).set_body_string(
            r#"{"status":"success","message":"Event processed","dedup_key":"vowguard-critical-0123456789abcdef"}"#,
        )
    }
    fn permanent_failure(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_string(
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'summary' is incorrect"]}"#,
        )
    }
    fn permanent_reason(&self) -> &str {
        "Event object is invalid"
    }
    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_string(format!(
            r#"{{"status":"invalid event","message":"Event object is invalid","errors":["invalid credential: routing key {secret} is unknown"]}}"#
        ))
    }
    fn check_hostile(&self, request: &Request) -> Result<(), String> {
        if request.body.len() > 512 * 1024 {
            return Err(format!(
                "payload is {} bytes, over 512 KB",
                request.body.len()
            ));
        }
        let body: serde_json::Value =
            serde_json::from_slice(&request.body).map_err(|e| format!("invalid JSON: {e}"))?;
        let summary = body["payload"]["summary"].as_str().ok_or("no summary")?;
        if summary.chars().count() > 1024 {
            return Err("summary over 1024 characters".into());
        }
        if summary.chars().any(char::is_control) {
            return Err(format!("control characters in the summary: {summary:?}"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn pagerduty_passes_the_notifier_behaviour_suite() {
    notifier_suite::run(PagerDuty).await;
}

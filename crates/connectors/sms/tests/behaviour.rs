//! The shared notifier behaviour suite, run against the Twilio SMS notifier.

use std::sync::Arc;

use secrecy::SecretString;
use vowguard_core::Notifier;
use vowguard_sms::{SmsNotifier, segments};
use vowguard_testkit::notifier_suite::{self, HttpNotifierHarness};
use wiremock::{Request, ResponseTemplate};

const SID: &str = "AC0123456789abcdef0123456789abcdef";

struct Sms;

impl HttpNotifierHarness for Sms {
    fn name(&self) -> &str {
        "sms"
    }
    fn build(&self, base_url: &str) -> Arc<dyn Notifier> {
        let notifier = SmsNotifier::builder(SID)
            .auth_token(SecretString::from(self.secret().to_owned()))
            .from("+15005550006")
            .to(["+447700900123"])
            .api_base_url(base_url)
            .build()
            .unwrap();
        Arc::new(notifier)
    }
    fn endpoint(&self) -> (&'static str, String) {
        ("POST", format!("/2010-04-01/Accounts/{SID}/Messages.json"))
    }
    fn accept(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(201)
            .set_body_string(r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#)
    }
    fn permanent_failure(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_string(
            r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#,
        )
    }
    fn permanent_reason(&self) -> &str {
        "not a valid phone number"
    }
    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_string(format!(
            r#"{{"code":20003,"message":"invalid credential {secret}","status":401}}"#
        ))
    }
    fn check_hostile(&self, request: &Request) -> Result<(), String> {
        let body = form_urlencoded::parse(&request.body)
            .find(|(k, _)| k == "Body")
            .map(|(_, v)| v.into_owned())
            .ok_or("no Body parameter")?;
        if body.chars().any(char::is_control) {
            return Err(format!("control characters in the SMS: {body:?}"));
        }
        let (_, count) = segments(&body);
        if count > 2 {
            return Err(format!("{count} segments: {body:?}"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn sms_passes_the_notifier_behaviour_suite() {
    notifier_suite::run(Sms).await;
}

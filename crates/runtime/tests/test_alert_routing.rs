//! `POST /api/security/test-alert-routing`: shows what the live router would decide and
//! sends only marked TEST notifications, with no other side effect.
#![cfg(all(
    feature = "slack",
    feature = "sms",
    feature = "teams",
    feature = "email",
    feature = "pagerduty"
))]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use vowguard_core::secrecy::SecretString;
use vowguard_core::{Alert, Error, Notifier, Priority, Receipt};
use vowguard_pipeline::{Pipeline, PipelineSpec};
use vowguard_router::{ActionHook, JsonlBreachLog, RequestedAction, Router, default_config};
use vowguard_runtime::server::{self, ServerState, mark_routing_test, routing_test_event};

#[derive(Debug, Default)]
struct RecordingHook(Mutex<Vec<RequestedAction>>);

impl ActionHook for RecordingHook {
    fn request(&self, action: &RequestedAction) {
        self.0.lock().unwrap().push(action.clone());
    }
}

#[derive(Debug, Default)]
struct Recording(Mutex<Vec<Alert>>);

#[async_trait]
impl Notifier for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(Receipt::default())
    }
}

const IDS: &[&str] = &[
    "secops",
    "oncall",
    "emergency_sms",
    "security_mail",
    "legal",
];

#[tokio::test]
async fn a_routing_test_has_no_side_effect_and_says_test_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(RecordingHook::default());
    let breaches = Arc::new(JsonlBreachLog::new(dir.path().join("breaches.jsonl")));
    let router = Arc::new(
        Router::from_config(default_config(), IDS)
            .unwrap()
            .with_action_hook(hook.clone())
            .with_breach_log(breaches.clone()),
    );
    let recording = Arc::new(Recording::default());
    let notifiers: Vec<(String, Arc<dyn Notifier>)> = IDS
        .iter()
        .map(|id| ((*id).to_owned(), recording.clone() as Arc<dyn Notifier>))
        .collect();
    let pipeline = Arc::new(
        Pipeline::start(PipelineSpec {
            data_dir: dir.path().to_owned(),
            ..PipelineSpec::default()
        })
        .await
        .unwrap(),
    );
    let state = Arc::new(ServerState {
        pipeline,
        accepted: Default::default(),
        rejected: Default::default(),
        admin_token: Some(SecretString::from("admin-token")),
        sinks: Vec::new(),
        notifiers,
        router: router.clone(),
        reports: Err("no report store in this test".into()),
        webhooks: None,
        cluster: None,
        source: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::router(state, 1 << 20);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("http://{addr}/api/security/test-alert-routing"))
            .bearer_auth("admin-token")
            .json(&body)
            .send()
    };

    let answer: Value = post(json!({"priority": "P1_HIGH", "wedding_impact": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The decision the live router would take: a wedding happening today makes it a P0
    // with active wedding protection and its actions...
    assert_eq!(answer["test"], true);
    assert_eq!(answer["requested_priority"], "P1_HIGH");
    let decision = &answer["decision"];
    assert_eq!(decision["priority"], "P0_CRITICAL");
    assert_eq!(
        decision["actions"],
        json!([
            "lock_accounts",
            "read_only_mode",
            "notify_wedding_coordinator"
        ])
    );
    assert!(
        decision["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["protocol"] == "active_wedding_protection"),
        "{decision}"
    );
    assert_eq!(answer["routed"], true);
    // The answer names the live routes; the notifications sent are the marked ones.
    assert_eq!(answer["alerts"][0]["route"], "p0-critical", "{answer}");
    // ...but nothing of it happens: no action, no breach record, no inhibition source.
    assert!(hook.0.lock().unwrap().is_empty(), "no action requested");
    assert!(breaches.read_all().unwrap().is_empty(), "no breach record");
    assert_eq!(router.inhibitor().sources(), 0, "no inhibition source");
    // Every test notification is marked, and pages nobody through a route's mention.
    let sent = recording.0.lock().unwrap().clone();
    assert!(!sent.is_empty());
    for a in &sent {
        assert!(a.event.action.contains("TEST"), "{}", a.event.action);
        assert!(a.route.starts_with("TEST "), "{}", a.route);
        assert!(a.reasons[0].starts_with("TEST"), "{:?}", a.reasons);
        assert!(!a.params.contains_key("mention"), "{:?}", a.params);
    }
    // A real P3 for the same wedding is not muted: the test left no inhibition source.
    let mut real = vowguard_core::Event::new(
        vowguard_core::Category::Authentication,
        "login",
        vowguard_core::Severity::Low,
    );
    real.wedding_id = Some("vowguard-test-wedding".into());
    assert!(router.decide(&Arc::new(real)).inhibited.is_none());

    // `severity` is still accepted as the field's old name; an unknown field is refused.
    let response = post(json!({"severity": "P2_MEDIUM"})).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["decision"]["priority"], "P2_MEDIUM");
    let response = post(json!({"priority": "P2_MEDIUM", "colour": "red"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(hook.0.lock().unwrap().is_empty());
}

/// Every channel's encoder shows TEST for a marked routing test alert.
#[test]
fn every_channel_says_test() {
    let event = Arc::new(routing_test_event(Priority::P0Critical, true));
    let mut alert = Alert::new(event, Priority::P0Critical, "p0-critical");
    alert.reasons = vec!["severity critical → P0_CRITICAL".into()];
    mark_routing_test(&mut alert);

    let slack = vowguard_slack::build_message(&alert, &[]);
    assert!(
        slack["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("TEST"),
        "Slack header: {slack}"
    );
    assert!(
        slack["text"].as_str().unwrap().contains("TEST"),
        "Slack fallback"
    );
    let sms = vowguard_sms::build_message(&alert, &vowguard_sms::MessageOptions::default());
    assert!(sms.contains("TEST"), "SMS: {sms}");
    let teams = String::from_utf8(vowguard_teams::encode_message(&alert, &[])).unwrap();
    assert!(teams.contains("TEST"), "Teams");
    let email = vowguard_email::render(&alert, "[vowguard]");
    assert!(
        email.subject.contains("TEST"),
        "email subject: {}",
        email.subject
    );
    assert!(email.text.contains("TEST"), "email text");
    let summary = vowguard_pagerduty::encode::summary(&alert);
    assert!(summary.contains("TEST"), "PagerDuty summary: {summary}");
}

//! The wedding-day protocols end to end, with the platform's default routing table: the
//! scenario in, the expected notifier requests out (wiremock), with the priority and
//! channels the runbook asks for.

use std::path::Path;

use serde_json::Value;
use vowguard_core::SecretMap;
use vowguard_runtime::{Config, Environment, assemble, run_with_input};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

struct Channels {
    pagerduty: MockServer,
    slack: MockServer,
    twilio: MockServer,
    legal: MockServer,
}

impl Channels {
    async fn start() -> Self {
        let pagerduty = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(
                ResponseTemplate::new(202)
                    .set_body_string(r#"{"status":"success","message":"Event processed"}"#),
            )
            .mount(&pagerduty)
            .await;
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"ok":true,"ts":"1.1"}"#))
            .mount(&slack)
            .await;
        let twilio = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex("^/2010-04-01/Accounts/.*/Messages.json$"))
            .respond_with(
                ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1","status":"queued"}"#),
            )
            .mount(&twilio)
            .await;
        let legal = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/services/T/L/legal-hook"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&legal)
            .await;
        Self {
            pagerduty,
            slack,
            twilio,
            legal,
        }
    }

    fn config(&self, data_dir: &Path) -> String {
        format!(
            r##"
data_dir = "{data}"
[sources.in]
type = "stdin"
[enrichers.wedding]
type = "wedding_context"
provider = "file"
path = "weddings.json"
[notifiers.oncall]
type = "pagerduty"
routing_key = {{ env = "PD_KEY" }}
endpoint = "{pd}"
[notifiers.secops]
type = "slack"
bot_token = {{ env = "SLACK_TOKEN" }}
channels = ["#security-alerts"]
api_base_url = "{slack}/api"
[notifiers.emergency_sms]
type = "sms"
account_sid = "AC00000000000000000000000000000042"
auth_token = {{ env = "TWILIO_TOKEN" }}
from = "+15005550006"
to = ["+447700900123"]
api_base_url = "{twilio}"
[notifiers.legal]
type = "slack"
webhook_url = {{ env = "LEGAL_HOOK" }}
"##,
            data = data_dir.display(),
            pd = self.pagerduty.uri(),
            slack = self.slack.uri(),
            twilio = self.twilio.uri(),
        )
    }

    async fn run(&self, events: &[Value]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("weddings.json"),
            r#"[{"wedding_id":"w-today","date":"2026-06-17","timezone":"Europe/London","guest_count":150},
                {"wedding_id":"w-autumn","date":"2026-09-12","timezone":"Europe/London","guest_count":90}]"#,
        )
        .unwrap();
        let secrets = SecretMap::new()
            .with("PD_KEY", "R0uT1nGKeYprotocols00000000000042")
            .with("SLACK_TOKEN", "xoxb-protocols")
            .with("TWILIO_TOKEN", "twilio-protocols")
            .with(
                "LEGAL_HOOK",
                format!("{}/services/T/L/legal-hook", self.legal.uri()),
            );
        let config = Config::parse(&self.config(dir.path())).unwrap();
        let assembly = assemble(
            &config,
            &Environment {
                config_dir: dir.path(),
                secrets: &secrets,
            },
        )
        .unwrap();
        let input: String = events.iter().map(|e| e.to_string() + "\n").collect();
        run_with_input(assembly, input.as_bytes(), std::future::pending())
            .await
            .unwrap();
        dir
    }
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r: &Request| {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()))
        })
        .collect()
}

fn slack_channels(bodies: &[Value]) -> Vec<String> {
    let mut channels: Vec<String> = bodies
        .iter()
        .filter_map(|b| b["channel"].as_str().map(str::to_owned))
        .collect();
    channels.sort();
    channels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturday_escalation_raises_a_medium_event_to_p1_and_pages_on_call() {
    let channels = Channels::start().await;
    // Saturday 20 June 2026, 11:00 in London; no wedding involved.
    channels
        .run(&[serde_json::json!({"id": "sat-1", "timestamp": "2026-06-20T10:00:00Z", "category": "authorization",
            "action": "admin.permission_denied", "outcome": "failure", "severity": "medium", "user_id": "staff-9"})])
        .await;
    let pd = bodies(&channels.pagerduty).await;
    assert_eq!(pd.len(), 1, "{pd:?}");
    assert_eq!(
        pd[0]["payload"]["severity"], "error",
        "P1 → PagerDuty error: {}",
        pd[0]
    );
    assert!(
        pd[0].to_string().contains("security-standard"),
        "escalation policy: {}",
        pd[0]
    );
    assert!(
        pd[0].to_string().contains("Saturday escalation"),
        "the reason is carried: {}",
        pd[0]
    );
    let slack = bodies(&channels.slack).await;
    assert_eq!(slack_channels(&slack), ["#security-alerts", "#wedding-ops"]);
    assert!(bodies(&channels.twilio).await.is_empty(), "no SMS below P0");
    assert!(bodies(&channels.legal).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_wedding_protection_makes_a_low_event_on_the_wedding_day_p0_everywhere() {
    let channels = Channels::start().await;
    // Wednesday 17 June 2026 is w-today's wedding day.
    channels
        .run(&[serde_json::json!({"id": "awp-1", "timestamp": "2026-06-17T13:00:00Z", "category": "account_change",
            "action": "vendor.email.update", "outcome": "success", "severity": "low",
            "user_id": "vendor-photo-3", "wedding_id": "w-today"})])
        .await;
    let pd = bodies(&channels.pagerduty).await;
    assert_eq!(pd.len(), 1, "{pd:?}");
    assert_eq!(pd[0]["payload"]["severity"], "critical", "{}", pd[0]);
    assert!(
        pd[0].to_string().contains("security-emergency"),
        "{}",
        pd[0]
    );
    let slack = bodies(&channels.slack).await;
    assert_eq!(
        slack_channels(&slack),
        ["#security-emergency", "#wedding-ops-urgent"]
    );
    assert!(
        slack
            .iter()
            .all(|b| b["text"].as_str().unwrap_or("").contains("<!channel>")),
        "{slack:?}"
    );
    assert_eq!(bodies(&channels.twilio).await.len(), 1, "emergency SMS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_data_breach_is_p0_notifies_legal_and_opens_a_suspected_breach_in_the_register() {
    let channels = Channels::start().await;
    // Wednesday, and the wedding is months away: only the breach makes this urgent.
    let dir = channels
        .run(&[serde_json::json!({"id": "gdb-1", "timestamp": "2026-06-17T09:30:00Z", "category": "data_export",
            "action": "guest_list.export", "outcome": "success", "severity": "medium", "user_id": "planner-4",
            "resource_type": "guest_lists", "wedding_id": "w-autumn", "record_count": 800})])
        .await;
    let pd = bodies(&channels.pagerduty).await;
    assert_eq!(pd.len(), 1, "{pd:?}");
    assert_eq!(pd[0]["payload"]["severity"], "critical", "{}", pd[0]);
    assert_eq!(
        bodies(&channels.legal).await.len(),
        1,
        "legal counsel is notified"
    );
    // The breach is opened in the audit log (the register's source of truth) as suspected:
    // the GDPR 72-hour clock starts when someone confirms it (`vowguard breach confirm`).
    let reader = vowguard_audit::AuditReader::open(dir.path().join("audit")).unwrap();
    let breaches: Vec<Value> = reader
        .records(0)
        .unwrap()
        .map(|r| serde_json::to_value(r.unwrap().1).unwrap())
        .filter(|r| r["kind"] == "breach")
        .collect();
    assert_eq!(
        breaches.len(),
        1,
        "one breach record in the audit log: {breaches:?}"
    );
    let record = &breaches[0];
    assert_eq!(record["kind"], "breach");
    assert_eq!(record["action"], "opened");
    assert_eq!(record["actor"], "system");
    assert_eq!(record["fields"]["event_id"], "gdb-1");
    assert_eq!(record["fields"]["records_approx"], 800);
    assert_eq!(record["fields"]["status"], "suspected");
    assert_eq!(record["fields"]["detected_at"], "2026-06-17T09:30:00.000Z");
    assert!(record["fields"].get("deadline").is_none(), "{record}");
}

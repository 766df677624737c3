//! At the end of stdin the response engine is stopped before the audit log closes: the run
//! an event started gets its containment steps done and pauses at its approval, and every
//! timeline entry in the response record is also in the audit log.

use vowguard_core::{AuditRecord, SecretMap};
use vowguard_runtime::{Config, Environment, assemble, run_with_input};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_timeline_entry_of_a_stdin_run_is_audited() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = format!(
        r#"
data_dir = "{data}"
[sources.in]
type = "stdin"
[notifiers.oncall]
type = "slack"
webhook_url = {{ env = "SLACK_HOOK" }}
[response]
actions = ["lock_accounts", "preserve_evidence"]
default_playbooks = false
[playbooks.lockdown]
version = 1
trigger = {{ categories = ["data_export"] }}
[[playbooks.lockdown.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
[[playbooks.lockdown.steps]]
id = "evidence"
kind = "action"
action = "preserve_evidence"
[[playbooks.lockdown.steps]]
id = "approve"
kind = "approval"
approvers = ["alice"]
deadline = "1h"
"#,
        data = data.display(),
    );
    let config = Config::parse(&text).unwrap();
    let secrets = SecretMap::new().with("SLACK_HOOK", format!("{}/hook", slack.uri()));
    let assembly = assemble(
        &config,
        &Environment {
            config_dir: dir.path(),
            secrets: &secrets,
        },
    )
    .unwrap();
    let engine = assembly.response.clone().expect("response is enabled");
    let input = r#"{"id": "evt-late-1", "category": "data_export", "action": "guest_list.export", "severity": "critical", "user_id": "u-1", "wedding_id": "w-1", "resource_type": "guest_lists", "record_count": 900}
"#;
    let report = run_with_input(assembly, input.as_bytes(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.source.accepted, 1);

    // The run went as far as it can without a human, and waits (paused) for the approval.
    let runs = engine.runs(None);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(run.state.as_str(), "running");
    assert!(run.steps["lock"].status.is_terminal());
    assert!(run.steps["evidence"].status.is_terminal());
    assert!(!run.steps["approve"].status.is_terminal());

    // Every timeline entry of the record is in the audit log.
    let (incidents, _) = vowguard_response::read_records(&data).unwrap();
    let recorded: Vec<(String, String, String)> = incidents
        .iter()
        .flat_map(|i| {
            i.timeline
                .iter()
                .map(|e| (i.id.clone(), e.action.clone(), e.at.to_rfc3339()))
        })
        .collect();
    assert!(
        recorded.iter().any(|r| r.1 == "step_finished"),
        "{recorded:?}"
    );
    let reader =
        vowguard_audit::AuditReader::open(vowguard_audit::AuditConfig::dir(&data)).unwrap();
    let audited: Vec<(String, String, String)> = reader
        .records(0)
        .unwrap()
        .filter_map(|r| match r.unwrap().1 {
            AuditRecord::Incident {
                at,
                incident_id,
                action,
                ..
            } => Some((incident_id, action, at.to_rfc3339())),
            _ => None,
        })
        .collect();
    assert_eq!(sorted(recorded), sorted(audited));
}

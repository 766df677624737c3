//! Engine tests: validation, conditions, parallel join, retry, timeout, reaper, approvals,
//! crash resume through the record file, idempotency, dry run, templating.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vowguard_core::{
    Alert, AuditRecord, AuditTrail, Category, Error, Event, Notifier, Priority, Receipt,
    RoutedAlert, SecretMap, Severity, TicketDraft, TicketRef, TicketSystem, TicketUpdate,
};
use vowguard_router::{ActionHook, RequestedAction};

use crate::config::{Catalog, ResponseConfig, parse_playbooks};
use crate::engine::ResponseEngine;
use crate::model::{IncidentState, RunState, StepStatus};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct TestHook {
    requested: Mutex<Vec<RequestedAction>>,
}

impl ActionHook for TestHook {
    fn request(&self, action: &RequestedAction) {
        self.requested.lock().unwrap().push(action.clone());
    }
}

impl TestHook {
    fn actions(&self) -> Vec<String> {
        self.requested
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.action.clone())
            .collect()
    }
}

/// A ticket system that fails the first `fail_first` opens, then dedups on fingerprint.
#[derive(Debug, Default)]
struct TestTickets {
    fail_first: AtomicU32,
    opens: AtomicU32,
    by_fingerprint: Mutex<HashMap<String, TicketRef>>,
    drafts: Mutex<Vec<TicketDraft>>,
    updates: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl TicketSystem for TestTickets {
    fn kind(&self) -> &'static str {
        "test"
    }

    async fn open(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::unavailable("ticket system down"));
        }
        self.drafts.lock().unwrap().push(draft.clone());
        let mut map = self.by_fingerprint.lock().unwrap();
        let n = map.len() + 1;
        Ok(map
            .entry(draft.fingerprint.clone())
            .or_insert_with(|| TicketRef {
                system: "jira".into(),
                key: format!("SEC-{n}"),
                url: None,
            })
            .clone())
    }

    async fn update(&self, _ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error> {
        self.updates.lock().unwrap().push(update.text.clone());
        Ok(())
    }

    async fn resolve(&self, _ticket: &TicketRef, note: &str) -> Result<(), Error> {
        self.updates
            .lock()
            .unwrap()
            .push(format!("resolved: {note}"));
        Ok(())
    }
}

#[derive(Debug, Default)]
struct TestNotifier {
    sent: Mutex<Vec<Alert>>,
}

#[async_trait::async_trait]
impl Notifier for TestNotifier {
    fn kind(&self) -> &'static str {
        "test"
    }

    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.sent.lock().unwrap().push(alert.clone());
        Ok(Receipt {
            delivery_id: Some(alert.id.clone()),
        })
    }
}

#[derive(Debug, Default)]
struct TestAudit {
    records: Mutex<Vec<AuditRecord>>,
}

#[async_trait::async_trait]
impl AuditTrail for TestAudit {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error> {
        let mut all = self.records.lock().unwrap();
        let first = all.len() as u64;
        all.extend(records);
        Ok(first)
    }
}

struct Fixture {
    hook: Arc<TestHook>,
    tickets: Arc<TestTickets>,
    notifier: Arc<TestNotifier>,
    audit: Arc<TestAudit>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            hook: Arc::default(),
            tickets: Arc::default(),
            notifier: Arc::default(),
            audit: Arc::default(),
        }
    }

    fn build(&self, dir: &Path, playbooks: &str) -> Result<ResponseEngine, Error> {
        let config = ResponseConfig {
            actions: vec![
                "lock_accounts".into(),
                "enhanced_logging".into(),
                "preserve_evidence".into(),
                "begin_gdpr_assessment".into(),
            ],
            default_playbooks: false,
            ..ResponseConfig::default()
        };
        let mut b = ResponseEngine::builder(config)
            .action_hook(self.hook.clone())
            .ticket_system("jira", self.tickets.clone())
            .notifier("legal", self.notifier.clone())
            .audit(self.audit.clone())
            .secrets(
                Arc::new(SecretMap::new().with("HOOK_TOKEN", "Bearer s3cret-token")),
                dir,
            )
            .reaper_every(Duration::from_millis(50));
        for (name, config) in parse_playbooks(playbooks, "test")? {
            b = b.playbook(name, config);
        }
        b.build(dir)
    }
}

fn breach_alert(message: &str) -> RoutedAlert {
    let mut event = Event::new(Category::DataExport, "guest_list.export", Severity::High);
    event.id = "evt-1".into();
    event.user_id = Some("u-42".into());
    event.wedding_id = Some("w-7".into());
    event.message = Some(message.into());
    let mut alert = Alert::new(
        Arc::new(event),
        Priority::P0Critical,
        "protocol/guest_data_breach",
    );
    alert.dedup_key = "protocol/guest_data_breach|w-7|u-42".into();
    alert.id = Alert::derive_id(&["test", "1"]);
    alert
        .params
        .insert("protocols".into(), serde_json::json!(["guest_data_breach"]));
    RoutedAlert {
        alert,
        notifiers: vec!["legal".into()],
    }
}

const BREACH: &str = r#"
[breach]
version = 2
trigger = { protocols = ["guest_data_breach"] }
[[breach.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
after = []
[[breach.steps]]
id = "evidence"
kind = "action"
action = "preserve_evidence"
after = []
[[breach.steps]]
id = "legal"
kind = "notify"
notifier = "legal"
message = "Breach on {{ incident.id }} by {{ event.user_id }}"
after = []
[[breach.steps]]
id = "ticket"
kind = "ticket"
system = "jira"
title = "Wedding Data Security Incident - {{ event.id }}"
tasks = ["Investigation", "Containment", "Recovery"]
after = ["lock", "evidence", "legal"]
retry = { max_attempts = 4, initial_backoff = "1ms", max_backoff = "5ms" }
[[breach.steps]]
id = "contain"
kind = "set_state"
state = "contained"
when = "steps.lock.ok"
after = ["ticket"]
[[breach.steps]]
id = "approve"
kind = "approval"
approvers = ["alice"]
deadline = "1h"
[[breach.steps]]
id = "recovery_note"
kind = "ticket"
system = "jira"
op = "update"
message = "Recovery approved by {{ steps.approve.output.by }}"
when = "steps.approve.approved"
"#;

fn step_status(engine: &ResponseEngine, run: &str, step: &str) -> Option<StepStatus> {
    engine.run(run)?.steps.get(step).map(|s| s.status)
}

#[tokio::test]
async fn an_alert_opens_an_incident_and_runs_the_playbook_with_join_retry_and_approval() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    f.tickets.fail_first.store(2, Ordering::SeqCst);
    let engine = f.build(dir.path(), BREACH).unwrap();
    engine.start();
    let incident_id = engine
        .handle_alert(&breach_alert("export of 812 guests"))
        .await
        .unwrap()
        .unwrap();
    let run_id = engine.runs(Some(&incident_id))[0].id.clone();
    assert!(
        engine
            .wait_until(WAIT, |e| step_status(e, &run_id, "approve")
                == Some(StepStatus::Running))
            .await
    );
    let run = engine.run(&run_id).unwrap();
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.version, 2);
    assert_eq!(run.snapshot["steps"][0]["id"], "lock");
    // The join: the ticket started only after all three immediate steps finished.
    let inc = engine.incident(&incident_id).unwrap();
    let pos = |action: &str, step: &str| {
        inc.timeline
            .iter()
            .position(|e| e.action == action && e.fields["step_id"] == step)
            .unwrap_or_else(|| panic!("{action} {step} missing: {:#?}", inc.timeline))
    };
    for s in ["lock", "evidence", "legal"] {
        assert!(pos("step_finished", s) < pos("step_started", "ticket"));
    }
    // Retried twice (the ticket system was down), opened once.
    assert_eq!(run.steps["ticket"].attempts, 3);
    assert_eq!(run.steps["ticket"].status, StepStatus::Succeeded);
    assert_eq!(
        f.tickets.drafts.lock().unwrap()[0].title,
        "Wedding Data Security Incident - evt-1"
    );
    assert_eq!(f.tickets.drafts.lock().unwrap()[0].tasks.len(), 3);
    assert_eq!(inc.tickets["jira"].key, "SEC-1");
    assert_eq!(inc.state, IncidentState::Contained);
    assert_eq!(inc.contained.as_ref().unwrap().by, "playbook:breach");
    assert_eq!(inc.wedding_ids, ["w-7"]);
    let mut actions = f.hook.actions();
    actions.sort();
    assert_eq!(actions, ["lock_accounts", "preserve_evidence"]);
    assert_eq!(f.hook.requested.lock().unwrap()[0].user_ids, ["u-42"]);
    assert_eq!(
        f.notifier.sent.lock().unwrap()[0].reasons[0],
        format!("Breach on {incident_id} by u-42")
    );

    // Someone not allowed is refused, and that is on the timeline.
    let err = engine
        .decide(&run_id, "approve", "mallory", true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("may not decide"), "{err}");
    assert!(
        engine
            .incident(&incident_id)
            .unwrap()
            .timeline
            .iter()
            .any(|e| e.action == "approval_refused" && e.actor == "mallory")
    );
    engine
        .decide(&run_id, "approve", "alice", true)
        .await
        .unwrap();
    let run = engine.wait_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    assert_eq!(run.steps["approve"].output["by"], "alice");
    assert!(
        engine
            .wait_until(WAIT, |_| f.tickets.updates.lock().unwrap().len() == 2)
            .await
    );
    let mut updates = f.tickets.updates.lock().unwrap().clone();
    updates.sort();
    assert_eq!(
        updates,
        [
            format!("Incident {incident_id} contained by playbook:breach"),
            "Recovery approved by alice".to_owned()
        ]
    );

    // Every timeline entry is also in the audit trail.
    let inc = engine.incident(&incident_id).unwrap();
    let audited: Vec<(String, String)> = f
        .audit
        .records
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            AuditRecord::Incident {
                incident_id: id,
                action,
                ..
            } if *id == incident_id => Some((id.clone(), action.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(audited.len(), inc.timeline.len());
    assert!(
        inc.timeline
            .iter()
            .any(|e| e.action == "run_finished" && e.fields["state"] == "succeeded")
    );
}

#[tokio::test]
async fn two_identical_triggers_give_one_incident_one_run_and_one_action() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let engine = f.build(dir.path(), BREACH).unwrap();
    engine.start();
    let a = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let mut second = breach_alert("x");
    second.alert.id = Alert::derive_id(&["test", "2"]);
    let b = engine.handle_alert(&second).await.unwrap().unwrap();
    assert_eq!(a, b);
    assert_eq!(engine.incidents().len(), 1);
    assert_eq!(engine.incident(&a).unwrap().alert_count, 2);
    assert_eq!(engine.runs(None).len(), 1);
    let run_id = engine.runs(None)[0].id.clone();
    assert!(
        engine
            .wait_until(WAIT, |e| step_status(e, &run_id, "approve")
                == Some(StepStatus::Running))
            .await
    );
    assert_eq!(
        f.hook
            .actions()
            .iter()
            .filter(|a| *a == "lock_accounts")
            .count(),
        1
    );
    assert_eq!(f.tickets.opens.load(Ordering::SeqCst), 1);
}

#[test]
fn a_killed_run_resumes_at_its_step_without_repeating_completed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let run_id = {
        // First process: runs up to the approval, then dies (the runtime is dropped with
        // the driver mid-wait, like kill -9: nothing is flushed beyond what was fsynced).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let engine = f.build(dir.path(), BREACH).unwrap();
            engine.start();
            let inc = engine
                .handle_alert(&breach_alert("x"))
                .await
                .unwrap()
                .unwrap();
            let run_id = engine.runs(Some(&inc))[0].id.clone();
            assert!(
                engine
                    .wait_until(WAIT, |e| step_status(e, &run_id, "approve")
                        == Some(StepStatus::Running))
                    .await
            );
            run_id
        })
    };
    // A torn write at the end of the file (killed mid-line) is dropped at replay.
    let path = dir.path().join("response").join(crate::RECORD_FILE);
    let good = std::fs::read(&path).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(br#"{"record":"step","run_id":"#);
    std::fs::write(&path, &torn).unwrap();

    let second = Fixture::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = second.build(dir.path(), BREACH).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            torn,
            "nothing written before a change"
        );
        engine.start();
        let run = engine.run(&run_id).unwrap();
        assert_eq!(run.state, RunState::Running);
        assert_eq!(run.steps["lock"].status, StepStatus::Succeeded);
        engine
            .decide(&run_id, "approve", "alice", true)
            .await
            .unwrap();
        let run = engine.wait_run(&run_id, WAIT).await.unwrap();
        assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
        // The torn tail was cut before the first append: every line parses.
        let now = std::fs::read(&path).unwrap();
        assert!(now.starts_with(&good));
        for line in now.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).unwrap();
        }
        // Nothing before the approval ran again in the second process.
        assert!(
            second.hook.actions().is_empty(),
            "{:?}",
            second.hook.actions()
        );
        assert_eq!(second.tickets.opens.load(Ordering::SeqCst), 0);
        assert!(second.notifier.sent.lock().unwrap().is_empty());
        // The step after the approval ran, on the ticket opened by the first process.
        assert_eq!(second.tickets.updates.lock().unwrap().len(), 1);
    });
}

#[test]
fn the_reaper_ends_an_orphaned_run_and_the_deadline_ends_a_waiting_one() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let pb = r#"
[slow]
version = 1
deadline = "1s"
trigger = { min_priority = "P0" }
[[slow.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
[[slow.steps]]
id = "approve"
kind = "approval"
approvers = ["alice"]
"#;
    rt.block_on(async {
        let engine = f.build(dir.path(), pb).unwrap();
        engine.start();
        let inc = engine
            .handle_alert(&breach_alert("x"))
            .await
            .unwrap()
            .unwrap();
        let run_id = engine.runs(Some(&inc))[0].id.clone();
        let run = engine.wait_run(&run_id, WAIT).await.unwrap();
        assert_eq!(run.state, RunState::TimedOut);
        assert_eq!(run.steps["approve"].status, StepStatus::TimedOut);
    });

    // An orphan: a run whose driver is gone (reaped without a driver).
    let dir2 = tempfile::tempdir().unwrap();
    let orphan = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let e = f
                .build(
                    dir2.path(),
                    &pb.replace("deadline = \"1s\"", "deadline = \"1h\""),
                )
                .unwrap();
            e.start();
            let inc = e.handle_alert(&breach_alert("x")).await.unwrap().unwrap();
            let id = e.runs(Some(&inc))[0].id.clone();
            assert!(
                e.wait_until(WAIT, |e| step_status(e, &id, "approve")
                    == Some(StepStatus::Running))
                    .await
            );
            id
        })
    };
    rt.block_on(async {
        let e = f.build(dir2.path(), pb).unwrap();
        // Not started: no driver resumes it; the reaper, looking from the future, ends it.
        let reaped = e.reap(chrono::Utc::now() + chrono::Duration::hours(2));
        assert_eq!(reaped, std::slice::from_ref(&orphan));
        let run = e.wait_run(&orphan, WAIT).await.unwrap();
        assert_eq!(run.state, RunState::TimedOut);
        assert!(
            e.incident(&run.incident_id)
                .unwrap()
                .timeline
                .iter()
                .any(|t| t.action == "run_finished"
                    && t.fields["reason"].as_str().unwrap().contains("reaper"))
        );
    });
}

#[tokio::test]
async fn approval_timeout_follows_on_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let pb = |on_timeout: &str| {
        format!(
            r#"
[p]
version = 1
trigger = {{ min_priority = "P0" }}
[[p.steps]]
id = "approve"
kind = "approval"
approvers = ["alice"]
deadline = "1s"
on_timeout = "{on_timeout}"
[[p.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
when = "steps.approve.approved"
"#
        )
    };
    let engine = f.build(dir.path(), &pb("approve")).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run = engine
        .wait_run(&engine.runs(Some(&inc))[0].id, WAIT)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(run.steps["approve"].output["by"], "timeout");
    assert_eq!(run.steps["lock"].status, StepStatus::Succeeded);

    let dir = tempfile::tempdir().unwrap();
    let engine = f.build(dir.path(), &pb("reject")).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run = engine
        .wait_run(&engine.runs(Some(&inc))[0].id, WAIT)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Rejected);
    assert_eq!(run.steps["lock"].status, StepStatus::Skipped);
    assert_eq!(
        f.hook.actions(),
        ["lock_accounts"],
        "only the approved run locked"
    );
}

#[tokio::test]
async fn a_step_timeout_fails_the_run_and_no_branch_matched_is_terminal() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let pb = format!(
        r#"
[slow]
version = 1
trigger = {{ min_priority = "P0" }}
[[slow.steps]]
id = "call"
kind = "http"
url = "{}/hook"
timeout = "100ms"
[[slow.steps]]
id = "after"
kind = "action"
action = "lock_accounts"
[nothing]
version = 1
trigger = {{ categories = ["data_export"] }}
[[nothing.steps]]
id = "a"
kind = "action"
action = "lock_accounts"
when = "event.severity == 'critical'"
[[nothing.steps]]
id = "b"
kind = "action"
action = "preserve_evidence"
when = "steps.a.ok"
"#,
        server.uri()
    );
    let engine = f.build(dir.path(), &pb).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let runs = engine.runs(Some(&inc));
    assert_eq!(runs.len(), 2);
    for run in runs {
        let run = engine.wait_run(&run.id, WAIT).await.unwrap();
        match run.playbook.as_str() {
            "slow" => {
                assert_eq!(run.state, RunState::Failed);
                assert_eq!(run.steps["call"].status, StepStatus::TimedOut);
                assert_eq!(run.steps["after"].status, StepStatus::Skipped);
            }
            _ => assert_eq!(run.state, RunState::NoBranchMatched),
        }
    }
    assert!(f.hook.actions().is_empty());
}

#[tokio::test]
async fn http_bodies_are_json_escaped_with_fixed_url_secret_header_and_idempotency_key() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/hooks/webhook_1"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer s3cret-token",
        ))
        .respond_with(
            wiremock::ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"execution_id": "x-1"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let pb = format!(
        r#"
[soar]
version = 1
trigger = {{ min_priority = "P0" }}
[[soar.steps]]
id = "shuffle"
kind = "http"
url = "{}/hooks/webhook_1"
headers = {{ "X-Source" = "vowguard" }}
secret_headers = {{ "Authorization" = {{ env = "HOOK_TOKEN" }} }}
body = '{{"incident": "{{{{ incident.id }}}}", "message": "{{{{ event.message }}}}", "user": "{{{{ event.user_id }}}}"}}'
[[soar.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
when = "steps.shuffle.output.status_code == 201 && steps.shuffle.output.body.execution_id == 'x-1'"
"#,
        server.uri()
    );
    let engine = f.build(dir.path(), &pb).unwrap();
    engine.start();
    let evil = "a\", \"admin\": true, \"x\": \"\r\nX-Injected: 1";
    let inc = engine
        .handle_alert(&breach_alert(evil))
        .await
        .unwrap()
        .unwrap();
    let run = engine
        .wait_run(&engine.runs(Some(&inc))[0].id, WAIT)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    assert_eq!(run.steps["lock"].status, StepStatus::Succeeded);
    let requests = server.received_requests().await.unwrap();
    let req = &requests[0];
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["message"], evil);
    assert!(body.get("admin").is_none());
    assert_eq!(body["incident"], inc.as_str());
    assert!(req.headers.get("x-injected").is_none());
    assert_eq!(
        req.headers["idempotency-key"],
        run.steps["shuffle"].idempotency_key.as_str()
    );
    // The secret is nowhere in what the engine keeps.
    let file = std::fs::read_to_string(engine.record_path().unwrap()).unwrap();
    assert!(!file.contains("s3cret-token"));
}

#[tokio::test]
async fn dry_run_records_what_would_run_and_calls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let engine = f.build(dir.path(), BREACH).unwrap();
    engine.start();
    let event = breach_alert("x").alert.event;
    let run_id = engine
        .run_playbook("breach", event, true, "cli:tester")
        .await
        .unwrap();
    let run = engine.wait_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    assert!(run.dry_run);
    assert!(run.steps.values().all(|s| s.dry_run));
    assert_eq!(
        run.steps["lock"].output["would"],
        "request action lock_accounts"
    );
    assert!(f.hook.actions().is_empty());
    assert_eq!(f.tickets.opens.load(Ordering::SeqCst), 0);
    assert!(f.notifier.sent.lock().unwrap().is_empty());
    // set_state in a dry run changes nothing.
    assert_eq!(
        engine.incident(&run.incident_id).unwrap().state,
        IncidentState::Open
    );
}

#[tokio::test]
async fn incidents_are_acknowledged_and_resolved_with_who_and_when() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let engine = f.build(dir.path(), BREACH).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run_id = engine.runs(Some(&inc))[0].id.clone();
    assert!(
        engine
            .wait_until(WAIT, |e| step_status(e, &run_id, "approve")
                == Some(StepStatus::Running))
            .await
    );
    let err = engine.acknowledge(&inc, "cli:bob").await.unwrap_err();
    assert!(err.to_string().contains("is contained"), "{err}");
    let resolved = engine
        .resolve(&inc, "api:ops", "accounts restored")
        .await
        .unwrap();
    assert_eq!(resolved.state, IncidentState::Resolved);
    assert_eq!(resolved.resolved.as_ref().unwrap().by, "api:ops");
    assert!(
        f.tickets
            .updates
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == "resolved: accounts restored")
    );
    assert!(engine.acknowledge("nope", "x").await.is_err());
    // A new alert with the same fingerprint after resolution opens a new incident.
    let mut again = breach_alert("x");
    again.alert.id = Alert::derive_id(&["test", "again"]);
    let inc2 = engine.handle_alert(&again).await.unwrap().unwrap();
    assert_ne!(inc, inc2);
}

#[test]
fn validation_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let base = "[p]\nversion = 1\ntrigger = { min_priority = \"P0\" }\n[[p.steps]]\nid = \"a\"\nkind = \"action\"\naction = \"lock_accounts\"\n[[p.steps]]\n";
    for (step, want) in [
        (
            "id = \"b\"\nkind = \"notify\"\nnotifier = \"nobody\"",
            "`playbooks.p.steps[1].notifier`: unknown notifier `nobody`",
        ),
        (
            "id = \"b\"\nkind = \"ticket\"\nsystem = \"snow\"",
            "`playbooks.p.steps[1].system`: unknown ticket system `snow`",
        ),
        (
            "id = \"b\"\nkind = \"action\"\naction = \"format_disk\"",
            "`playbooks.p.steps[1].action`: unknown action `format_disk`",
        ),
        (
            "id = \"b\"\nkind = \"action\"\naction = \"lock_accounts\"\nafter = [\"zzz\"]",
            "`playbooks.p.steps[1].after[0]`: unknown step `zzz`",
        ),
        (
            "id = \"b\"\nkind = \"action\"\naction = \"lock_accounts\"\nwhen = \"steps.a.ok &&\"",
            "`playbooks.p.steps[1].when`: bad condition",
        ),
        (
            "id = \"b\"\nkind = \"action\"\naction = \"lock_accounts\"\nwhen = \"steps.later.ok\"",
            "`playbooks.p.steps[1].when`: unknown step `later`",
        ),
        (
            "id = \"a\"\nkind = \"action\"\naction = \"lock_accounts\"",
            "`playbooks.p.steps[1].id`: step id `a` is used twice",
        ),
        (
            "id = \"b\"\nkind = \"http\"\nurl = \"https://x.invalid/{{ event.id }}\"",
            "`playbooks.p.steps[1].url`: a URL cannot be templated",
        ),
        (
            "id = \"b\"\nkind = \"http\"\nurl = \"https://x.invalid/\"\nheaders = { X = \"{{ event.id }}\" }",
            "`playbooks.p.steps[1].headers.X`: headers cannot be templated",
        ),
        (
            "id = \"b\"\nkind = \"action\"\naction = \"lock_accounts\"\nnotifier = \"legal\"",
            "`playbooks.p.steps[1].notifier`: not a key of a `action` step",
        ),
        (
            "id = \"b\"\nkind = \"set_state\"\nstate = \"closed\"",
            "`playbooks.p.steps[1].state`: unknown state `closed`",
        ),
        (
            "id = \"b\"\nkind = \"approval\"",
            "`playbooks.p.steps[1].approvers`",
        ),
        (
            "id = \"b\"\nkind = \"notify\"\nnotifier = \"legal\"\nmessage = \"{{ steps.zz.output }}\"",
            "`playbooks.p.steps[1].message`: unknown step `zz`",
        ),
    ] {
        let err = f
            .build(dir.path(), &format!("{base}{step}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "want {want}\n got {err}");
    }
    let err = f
        .build(
            dir.path(),
            "[p]\nversion = 1\ntrigger = {}\nsteps = []\n[p.oops]\n",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("oops"), "{err}");
}

#[test]
fn default_playbooks_apply_only_what_is_configured() {
    let catalog = Catalog {
        notifiers: ["legal".to_owned()].into(),
        tickets: ["jira".to_owned()].into(),
        actions: ["lock_accounts".to_owned(), "preserve_evidence".to_owned()].into(),
    };
    let defaults = crate::defaults::default_playbooks(&catalog, &["security-lead".to_owned()]);
    let names: Vec<&str> = defaults.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, crate::DEFAULT_PLAYBOOKS);
    let breach = &defaults[2].1;
    let ids: Vec<&str> = breach.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "lock_accounts",
            "preserve_evidence",
            "notify_legal",
            "contained",
            "ticket_jira",
            "approve_recovery",
            "ticket_jira_recovery"
        ]
    );
    let ticket = &breach.steps[4];
    assert_eq!(
        ticket.title.as_deref(),
        Some("Wedding Data Security Incident - {{ event.id }}")
    );
    assert_eq!(
        ticket.after.as_ref().unwrap().len(),
        3,
        "{:?}",
        ticket.after
    );
    for (name, config) in defaults {
        crate::Playbook::compile(&name, config, &catalog).unwrap();
    }
    // Nothing configured: no default playbook.
    assert!(crate::defaults::default_playbooks(&Catalog::default(), &[]).is_empty());
}

#[test]
fn a_guest_data_breach_is_left_to_wedding_data_breach_when_it_is_kept() {
    let matchers = |catalog: &Catalog| -> Vec<(String, Vec<String>)> {
        crate::defaults::default_playbooks(catalog, &["security-lead".to_owned()])
            .into_iter()
            .map(|(name, c)| (name, c.trigger.matchers))
            .collect()
    };
    let exclusion = r#"protocol!="guest_data_breach""#.to_owned();
    let with_breach = Catalog {
        notifiers: ["legal".to_owned(), "oncall".to_owned()].into(),
        tickets: ["jira".to_owned()].into(),
        actions: ["lock_accounts".to_owned()].into(),
    };
    let got = matchers(&with_breach);
    assert_eq!(got.len(), 3, "{got:?}");
    for (name, m) in &got {
        if name == "wedding-data-breach" {
            assert!(m.is_empty(), "{name}: {m:?}");
        } else {
            assert_eq!(m, &vec![exclusion.clone()], "{name}");
        }
    }
    // Without any action of its own the breach playbook (if kept at all: a ticket and the
    // approval) contains nothing, and the P0/P1 playbooks answer guest data breaches too.
    let without = Catalog {
        notifiers: ["oncall".to_owned()].into(),
        tickets: ["jira".to_owned()].into(),
        actions: ["revoke_tokens".to_owned()].into(),
    };
    let got = matchers(&without);
    assert!(got.iter().all(|(_, m)| m.is_empty()), "{got:?}");
    assert!(
        got.iter()
            .any(|(name, _)| name == "critical-security-incident"),
        "{got:?}"
    );
}

#[test]
fn the_record_file_is_compacted_keeping_open_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = ResponseConfig {
            default_playbooks: false,
            max_record_bytes: 64 * 1024,
            keep_closed_incidents: 5,
            open_incidents_at: Priority::P4Info,
            ..ResponseConfig::default()
        };
        let engine = ResponseEngine::builder(config.clone())
            .build(dir.path())
            .unwrap();
        let mut open = Vec::new();
        for i in 0..400 {
            let mut routed = breach_alert("x");
            routed.alert.dedup_key = format!("fp-{i}");
            routed.alert.id = Alert::derive_id(&["c", &i.to_string()]);
            let id = engine.handle_alert(&routed).await.unwrap().unwrap();
            if i % 50 == 0 {
                open.push(id);
            } else {
                engine.resolve(&id, "t", "done").await.unwrap();
            }
        }
        let size = std::fs::metadata(engine.record_path().unwrap())
            .unwrap()
            .len();
        assert!(size <= 2 * 64 * 1024, "{size}");
        drop(engine);
        let engine = ResponseEngine::builder(config).build(dir.path()).unwrap();
        for id in &open {
            assert_eq!(engine.incident(id).unwrap().state, IncidentState::Open);
        }
        let closed = engine
            .incidents()
            .iter()
            .filter(|i| i.state == IncidentState::Resolved)
            .count();
        assert!(closed <= 5 + 64, "{closed}");
    });
}

/// Timeline entries in the record file, as (incident, action, at), sorted (parallel steps
/// commit concurrently: the audit trail may receive them in another order).
fn recorded_timeline(dir: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dir.join("response").join(crate::RECORD_FILE)).unwrap();
    let mut v = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["record"] == "timeline")
        .map(|v| {
            (
                v["incident_id"].as_str().unwrap().to_owned(),
                v["entry"]["action"].as_str().unwrap().to_owned(),
                v["entry"]["at"].as_str().unwrap().to_owned(),
            )
        })
        .collect::<Vec<_>>();
    v.sort();
    v
}

/// Incident entries the audit trail received, as (incident, action, at).
fn audited_timeline(audit: &TestAudit) -> Vec<(String, String, String)> {
    let mut v = audit
        .records
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            AuditRecord::Incident {
                at,
                incident_id,
                action,
                ..
            } => Some((
                incident_id.clone(),
                action.clone(),
                serde_json::to_value(at)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )),
            _ => None,
        })
        .collect::<Vec<_>>();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_queued_alerts_and_steps_finish_then_pauses_runs_with_every_entry_audited() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let engine = f.build(dir.path(), BREACH).unwrap();
    engine.start();
    // Queued, not handled yet: the end of stdin comes right after the last alert.
    assert!(engine.on_alert(&breach_alert("export of 812 guests")));
    let report = engine.shutdown(WAIT).await;
    // The queued alert opened its incident and its run went as far as it can without a
    // human: every containment step done, the approval still waiting (paused).
    let incident = engine
        .incidents()
        .pop()
        .expect("the queued alert was handled");
    let run = engine.runs(Some(&incident.id)).pop().unwrap();
    assert_eq!(report.paused_runs, vec![run.id.clone()]);
    assert_eq!(report.aborted_tasks, 0);
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.steps["ticket"].status, StepStatus::Succeeded);
    assert_eq!(run.steps["contain"].status, StepStatus::Succeeded);
    assert_eq!(run.steps["approve"].status, StepStatus::Running);
    // No timeline entry without its audit record.
    let recorded = recorded_timeline(dir.path());
    assert!(recorded.len() > 5, "{recorded:?}");
    assert_eq!(recorded, audited_timeline(&f.audit));
    // Nothing more is written once stopped: a late change is refused, not left unaudited.
    let late = engine
        .resolve(&incident.id, "late", "too late")
        .await
        .unwrap_err();
    assert!(late.to_string().contains("stopped"), "{late}");
    assert!(!engine.on_alert(&breach_alert("later")));
    assert_eq!(recorded_timeline(dir.path()), recorded);
    drop(engine);

    // The next start resumes the paused run at its approval; nothing before it repeats.
    let second = Fixture::new();
    let engine = second.build(dir.path(), BREACH).unwrap();
    engine.start();
    engine
        .decide(&run.id, "approve", "alice", true)
        .await
        .unwrap();
    let run = engine.wait_run(&run.id, WAIT).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    assert!(second.hook.actions().is_empty());
    assert_eq!(second.tickets.opens.load(Ordering::SeqCst), 0);
    assert_eq!(f.hook.actions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_still_going_at_the_end_of_the_grace_is_stopped_between_commits() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let pb = format!(
        r#"
[slow]
version = 1
trigger = {{ min_priority = "P0" }}
[[slow.steps]]
id = "call"
kind = "http"
url = "{}/hook"
timeout = "2m"
"#,
        server.uri()
    );
    let engine = f.build(dir.path(), &pb).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run_id = engine.runs(Some(&inc))[0].id.clone();
    assert!(
        engine
            .wait_until(WAIT, |e| step_status(e, &run_id, "call")
                == Some(StepStatus::Running))
            .await
    );
    let report = engine.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.aborted_tasks, 1);
    assert_eq!(report.paused_runs, vec![run_id.clone()]);
    let recorded = recorded_timeline(dir.path());
    assert_eq!(recorded, audited_timeline(&f.audit));
    assert!(
        recorded.iter().any(|r| r.1 == "step_started")
            && !recorded.iter().any(|r| r.1 == "step_finished"),
        "{recorded:?}"
    );
}

const APPROVAL_WITH_FIELDS: &str = r#"
[gate]
version = 1
trigger = { min_priority = "P0" }
[[gate.steps]]
id = "approve"
kind = "approval"
approvers = ["alice"]
deadline = "1h"
response_fields = { change_ticket = { type = "string", required = true }, scope = { type = "string", one_of = ["wedding", "tenant"] }, guests = { type = "number" } }
[[gate.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
when = "steps.approve.output.fields.scope == 'tenant'"
"#;

#[tokio::test]
async fn approval_decisions_are_checked_against_the_declared_fields_and_refusals_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let engine = f.build(dir.path(), APPROVAL_WITH_FIELDS).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run_id = engine.runs(Some(&inc))[0].id.clone();
    assert!(
        engine
            .wait_until(WAIT, |e| step_status(e, &run_id, "approve")
                == Some(StepStatus::Running))
            .await
    );
    let fields = |v: serde_json::Value| v.as_object().cloned().unwrap();
    // Someone not allowed, and decisions that do not fit: refused, each recorded.
    let cases = [
        (
            "mallory",
            serde_json::json!({"change_ticket": "CHG-1"}),
            "may not decide",
        ),
        (
            "alice",
            serde_json::json!({}),
            "`fields.change_ticket`: required to approve",
        ),
        (
            "alice",
            serde_json::json!({"change_ticket": "CHG-1", "scope": "everything"}),
            "`fields.scope`: must be one of wedding, tenant",
        ),
        (
            "alice",
            serde_json::json!({"change_ticket": "CHG-1", "guests": "many"}),
            "`fields.guests`: must be a number",
        ),
        (
            "alice",
            serde_json::json!({"change_ticket": "CHG-1", "extra": 1}),
            "`fields.extra`: not a field of step `approve`",
        ),
    ];
    for (who, given, expected) in &cases {
        let err = engine
            .decide_with(&run_id, "approve", who, true, None, &fields(given.clone()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let refused: Vec<String> = engine
        .incident(&inc)
        .unwrap()
        .timeline
        .iter()
        .filter(|e| e.action == "approval_refused")
        .map(|e| format!("{} {}", e.actor, e.fields["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(refused.len(), cases.len(), "{refused:?}");
    assert!(refused[0].starts_with("mallory "), "{refused:?}");
    assert_eq!(
        step_status(&engine, &run_id, "approve"),
        Some(StepStatus::Running)
    );
    // A decision that fits is taken with its comment and fields; later steps read them.
    engine
        .decide_with(
            &run_id,
            "approve",
            "alice",
            true,
            Some("lock the tenant"),
            &fields(
                serde_json::json!({"change_ticket": "CHG-9", "scope": "tenant", "guests": 812}),
            ),
        )
        .await
        .unwrap();
    let run = engine.wait_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    let out = &run.steps["approve"].output;
    assert_eq!(out["by"], "alice");
    assert_eq!(out["comment"], "lock the tenant");
    assert_eq!(out["fields"]["change_ticket"], "CHG-9");
    assert_eq!(run.steps["lock"].status, StepStatus::Succeeded);
    assert_eq!(f.hook.actions(), vec!["lock_accounts".to_owned()]);
    // A list of values on a non-string field is refused at load, naming the key.
    let err = Fixture::new()
        .build(
            tempfile::tempdir().unwrap().path(),
            &APPROVAL_WITH_FIELDS.replace(
                r#"guests = { type = "number" }"#,
                r#"guests = { type = "number", one_of = ["1"] }"#,
            ),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`playbooks.gate.steps[0].response_fields.guests.one_of`"),
        "{err}"
    );
}

#[test]
fn resolved_incidents_leave_memory_and_their_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = ResponseConfig {
            default_playbooks: false,
            max_record_bytes: 16 * 1024,
            keep_closed_incidents: 4,
            open_incidents_at: Priority::P4Info,
            ..ResponseConfig::default()
        };
        let mut ids = std::collections::HashSet::new();
        let mut open = Vec::new();
        for round in 0..3 {
            // A restart between rounds: replay, compaction and eviction all take part.
            let engine = ResponseEngine::builder(config.clone())
                .build(dir.path())
                .unwrap();
            for i in 0..30 {
                let mut routed = breach_alert("x");
                // The same fingerprint again and again: each incident is a new generation.
                routed.alert.dedup_key = "fp-same".into();
                routed.alert.id = Alert::derive_id(&["m", &round.to_string(), &i.to_string()]);
                let id = engine.handle_alert(&routed).await.unwrap().unwrap();
                assert!(ids.insert(id.clone()), "incident id {id} given twice");
                if i == 7 {
                    // One open incident per round (of its own fingerprint) stays.
                    let mut other = breach_alert("y");
                    other.alert.dedup_key = format!("fp-open-{round}");
                    other.alert.id = Alert::derive_id(&["o", &round.to_string()]);
                    open.push(engine.handle_alert(&other).await.unwrap().unwrap());
                }
                engine.resolve(&id, "t", "done").await.unwrap();
                let in_memory = engine.incidents();
                let resolved = in_memory
                    .iter()
                    .filter(|i| i.state == IncidentState::Resolved)
                    .count();
                assert!(resolved <= 4 + 1, "{resolved} resolved incidents in memory");
                assert!(engine.runs(None).len() <= in_memory.len());
            }
            for id in &open {
                assert_eq!(engine.incident(id).unwrap().state, IncidentState::Open);
            }
        }
    });
}

#[tokio::test]
async fn action_steps_reach_the_http_action_hook_signed_with_an_idempotency_key() {
    let server = wiremock::MockServer::start().await;
    // The platform is briefly down, then carries the action out.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"locked": 1})),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "action-hook-hmac-key-0123456789";
    let config = ResponseConfig {
        actions: vec!["lock_accounts".into()],
        default_playbooks: false,
        action_hook: Some(crate::config::ActionEndpointConfig {
            url: format!("{}/vowguard/actions", server.uri()),
            secret: vowguard_core::SecretRef::Env("ACTION_HOOK_KEY".into()),
        }),
        ..ResponseConfig::default()
    };
    let pb = r#"
[lock]
version = 1
trigger = { min_priority = "P0" }
[[lock.steps]]
id = "lock"
kind = "action"
action = "lock_accounts"
retry = { max_attempts = 3, initial_backoff = "1ms", max_backoff = "2ms" }
"#;
    let mut b = ResponseEngine::builder(config.clone()).secrets(
        Arc::new(SecretMap::new().with("ACTION_HOOK_KEY", secret)),
        dir.path(),
    );
    for (name, c) in parse_playbooks(pb, "test").unwrap() {
        b = b.playbook(name, c);
    }
    let engine = b.build(dir.path()).unwrap();
    engine.start();
    let inc = engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run = engine.runs(Some(&inc)).pop().unwrap();
    let run = engine.wait_run(&run.id, WAIT).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    let step = &run.steps["lock"];
    assert_eq!(step.attempts, 2);
    assert_eq!(step.output["body"]["locked"], 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let h = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("idempotency-key"), step.idempotency_key);
        let expected =
            crate::action_signature(secret.as_bytes(), &h("x-vowguard-timestamp"), &r.body);
        assert_eq!(h("x-vowguard-signature"), format!("sha256={expected}"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["action"], "lock_accounts");
        assert_eq!(body["user_ids"], serde_json::json!(["u-42"]));
        assert_eq!(body["idempotency_key"], step.idempotency_key.as_str());
    }
    // The signature is HMAC-SHA256 over `<timestamp>.<body>`, checked against a plain
    // implementation of RFC 2104 (checked itself against RFC 4231 test case 2).
    fn hmac(key: &[u8], data: &[u8]) -> String {
        use sha2::Digest;
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
        let inner = sha2::Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(data)
            .finalize();
        let outer = sha2::Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize();
        outer.iter().map(|b| format!("{b:02x}")).collect()
    }
    assert_eq!(
        hmac(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        crate::action_signature(secret.as_bytes(), "1767225600", br#"{"a":1}"#),
        hmac(secret.as_bytes(), br#"1767225600.{"a":1}"#)
    );
    // A plain-http endpoint elsewhere than loopback is refused, naming the key.
    let mut bad = config;
    bad.action_hook.as_mut().unwrap().url = "http://actions.example.com/x".into();
    let err = ResponseEngine::builder(bad)
        .secrets(
            Arc::new(SecretMap::new().with("ACTION_HOOK_KEY", secret)),
            dir.path(),
        )
        .build(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`response.action_hook.url`"), "{err}");
}

const TWO_TICKETS: &str = r#"
[tickets_both]
version = 1
trigger = { protocols = ["guest_data_breach"] }
[[tickets_both.steps]]
id = "jira"
kind = "ticket"
system = "jira"
title = "Incident {{ event.id }}"
[[tickets_both.steps]]
id = "snow"
kind = "ticket"
system = "snow"
title = "Incident {{ event.id }}"
"#;

/// A status change made in one ticket system moves the incident, is on the timeline (and
/// in the audit trail) by the person who made it, reaches the incident's other ticket, and
/// is never pushed back to the ticket it came from.
#[tokio::test]
async fn a_ticket_status_change_syncs_the_incident_without_pushing_back() {
    use crate::engine::{TicketStatusChange, TicketSync};
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let snow = Arc::new(TestTickets::default());
    let config = ResponseConfig {
        default_playbooks: false,
        ..ResponseConfig::default()
    };
    let mut b = ResponseEngine::builder(config)
        .ticket_system("jira", f.tickets.clone())
        .ticket_system("snow", snow.clone())
        .audit(f.audit.clone());
    for (name, config) in parse_playbooks(TWO_TICKETS, "test").unwrap() {
        b = b.playbook(name, config);
    }
    let engine = b.build(dir.path()).unwrap();
    engine.start();
    assert_eq!(engine.ticket_systems_of_kind("test"), ["jira", "snow"]);
    let incident_id = engine
        .handle_alert(&breach_alert("export"))
        .await
        .unwrap()
        .unwrap();
    let run_id = engine.runs(Some(&incident_id))[0].id.clone();
    let run = engine.wait_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.state, RunState::Succeeded, "{run:#?}");
    let systems = vec!["jira".to_owned()];
    let (found, system, key) = engine
        .incident_for_ticket(&systems, &["nope".into(), "SEC-1".into()])
        .unwrap();
    assert_eq!(
        (found.id.as_str(), system.as_str(), key.as_str()),
        (incident_id.as_str(), "jira", "SEC-1")
    );
    assert!(
        engine
            .incident_for_ticket(&systems, &["SEC-9".into()])
            .is_none()
    );

    let change = |status, to| TicketStatusChange {
        system: "jira",
        key: "SEC-1",
        status,
        from: Some("To Do"),
        to,
        actor: "jira:Ana_Ops",
    };
    // An unknown status: on the timeline, no state change; the same status again: nothing.
    let outcome = engine
        .ticket_status_changed(&incident_id, &change("Triage", None))
        .await
        .unwrap();
    assert_eq!(outcome, TicketSync::Recorded);
    let outcome = engine
        .ticket_status_changed(&incident_id, &change("Triage", None))
        .await
        .unwrap();
    assert_eq!(outcome, TicketSync::Unchanged);
    assert_eq!(
        engine.incident(&incident_id).unwrap().state,
        IncidentState::Open
    );
    // In Progress acknowledges; Done resolves.
    let outcome = engine
        .ticket_status_changed(
            &incident_id,
            &change("In Progress", Some(IncidentState::Acknowledged)),
        )
        .await
        .unwrap();
    assert_eq!(outcome, TicketSync::Applied(IncidentState::Acknowledged));
    let outcome = engine
        .ticket_status_changed(&incident_id, &change("Done", Some(IncidentState::Resolved)))
        .await
        .unwrap();
    assert_eq!(outcome, TicketSync::Applied(IncidentState::Resolved));
    // Reopened then closed again in Jira: recorded, the incident stays resolved.
    let outcome = engine
        .ticket_status_changed(
            &incident_id,
            &change("In Progress", Some(IncidentState::Acknowledged)),
        )
        .await
        .unwrap();
    assert_eq!(outcome, TicketSync::AlreadyThere(IncidentState::Resolved));
    engine.shutdown(WAIT).await;

    let inc = engine.incident(&incident_id).unwrap();
    assert_eq!(inc.acknowledged.as_ref().unwrap().by, "jira:Ana_Ops");
    assert_eq!(inc.resolved.as_ref().unwrap().by, "jira:Ana_Ops");
    let resolved = inc
        .timeline
        .iter()
        .find(|e| e.action == "resolved")
        .unwrap();
    assert_eq!(
        resolved.fields["ticket"],
        serde_json::json!({"system": "jira", "key": "SEC-1"})
    );
    let statuses: Vec<&str> = inc
        .timeline
        .iter()
        .filter(|e| e.action == "ticket_status_changed")
        .map(|e| e.fields["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Triage", "In Progress", "Done", "In Progress"]);
    // No loop: Jira got nothing back; ServiceNow got the acknowledgement and the resolution.
    assert!(
        f.tickets.updates.lock().unwrap().is_empty(),
        "{:?}",
        f.tickets.updates
    );
    let pushed = snow.updates.lock().unwrap().clone();
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    assert!(
        pushed[0].contains("acknowledged by jira:Ana_Ops"),
        "{pushed:?}"
    );
    assert!(
        pushed[1].starts_with("resolved: resolved in jira SEC-1"),
        "{pushed:?}"
    );
    // Every entry is in the audit trail, with the person who acted.
    let audited = f
        .audit
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| {
            matches!(r, AuditRecord::Incident { action, actor, .. }
            if action == "ticket_status_changed" && actor == "jira:Ana_Ops")
        })
        .count();
    assert_eq!(audited, 4);
}

/// The decisions of [`crate::coordination`] in memory, shared by "replicas" (engines with
/// their own record files); `expire` plays a dead replica's claim running out.
#[derive(Debug, Default)]
struct MemoryDecisions {
    incident_ids: Mutex<HashMap<String, String>>,
    claims: Mutex<HashMap<String, String>>,
    finished: Mutex<HashMap<String, String>>,
    /// The shared run states, with the replica that wrote each last.
    runs: Mutex<HashMap<String, (String, crate::Run)>>,
    states: Mutex<HashMap<String, crate::SharedIncidentState>>,
}

#[derive(Debug)]
struct Replica {
    name: String,
    shared: Arc<MemoryDecisions>,
}

impl Replica {
    fn new(name: &str, shared: &Arc<MemoryDecisions>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            shared: shared.clone(),
        })
    }
}

#[async_trait::async_trait]
impl crate::ResponseCoordination for Replica {
    async fn incident_id(&self, fingerprint: &str, proposed: &str) -> Result<String, Error> {
        let mut ids = self.shared.incident_ids.lock().unwrap();
        Ok(ids
            .entry(fingerprint.to_owned())
            .or_insert_with(|| proposed.to_owned())
            .clone())
    }

    async fn incident_resolved(&self, fingerprint: &str) -> Result<(), Error> {
        self.shared.incident_ids.lock().unwrap().remove(fingerprint);
        Ok(())
    }

    async fn advance_incident(
        &self,
        incident_id: &str,
        local: &crate::SharedIncidentState,
        to: IncidentState,
        change: &crate::StateChange,
    ) -> Result<crate::IncidentAdvance, Error> {
        let mut states = self.shared.states.lock().unwrap();
        let state = states
            .entry(incident_id.to_owned())
            .or_insert_with(|| local.clone());
        state.merge(local);
        Ok(if state.advance(to, change.clone()) {
            crate::IncidentAdvance::Moved(state.clone())
        } else {
            crate::IncidentAdvance::AlreadyThere(state.clone())
        })
    }

    async fn incident_state(
        &self,
        incident_id: &str,
    ) -> Result<Option<crate::SharedIncidentState>, Error> {
        Ok(self.shared.states.lock().unwrap().get(incident_id).cloned())
    }

    async fn claim_run(&self, run_id: &str) -> Result<crate::RunClaim, Error> {
        if let Some(by) = self.shared.finished.lock().unwrap().get(run_id) {
            return Ok(crate::RunClaim::Elsewhere(format!("{by} (finished)")));
        }
        let mut claims = self.shared.claims.lock().unwrap();
        let holder = claims
            .entry(run_id.to_owned())
            .or_insert_with(|| self.name.clone());
        Ok(if *holder == self.name {
            crate::RunClaim::Claimed
        } else {
            crate::RunClaim::Elsewhere(holder.clone())
        })
    }

    async fn renew_run(&self, run_id: &str) -> Result<bool, Error> {
        Ok(self.shared.claims.lock().unwrap().get(run_id) == Some(&self.name))
    }

    async fn run_finished(&self, run_id: &str) -> Result<(), Error> {
        if self.shared.claims.lock().unwrap().get(run_id) == Some(&self.name) {
            self.shared
                .finished
                .lock()
                .unwrap()
                .insert(run_id.to_owned(), self.name.clone());
        }
        Ok(())
    }

    fn renew_every(&self) -> Duration {
        Duration::from_millis(20)
    }

    async fn shared_run(&self, run_id: &str) -> Result<Option<crate::Run>, Error> {
        Ok(self
            .shared
            .runs
            .lock()
            .unwrap()
            .get(run_id)
            .map(|(_, r)| r.clone()))
    }

    async fn share_run(&self, run: &crate::Run) -> Result<bool, Error> {
        if self.shared.claims.lock().unwrap().get(&run.id) != Some(&self.name) {
            return Ok(false);
        }
        let mut runs = self.shared.runs.lock().unwrap();
        let before = runs.remove(&run.id).map(|(_, r)| r);
        let merged = crate::merge_shared_run(before, run);
        runs.insert(run.id.clone(), (self.name.clone(), merged));
        Ok(true)
    }
}

/// Two replicas (two engines, two record files) get alerts of one fingerprint: one
/// incident id, one run, one ticket and one lock action across both; the other replica
/// records that the run is claimed elsewhere.
#[tokio::test]
async fn two_replicas_give_one_incident_id_one_run_and_one_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let decisions = Arc::new(MemoryDecisions::default());
    let a = f.build(&dir.path().join("a"), BREACH).unwrap();
    let b = f.build(&dir.path().join("b"), BREACH).unwrap();
    a.coordinate_with(Replica::new("replica-a", &decisions));
    b.coordinate_with(Replica::new("replica-b", &decisions));
    a.start();
    b.start();
    let first = breach_alert("x");
    let mut second = breach_alert("x");
    second.alert.id = Alert::derive_id(&["test", "2"]);
    let (ia, ib) = tokio::join!(a.handle_alert(&first), b.handle_alert(&second));
    let (ia, ib) = (ia.unwrap().unwrap(), ib.unwrap().unwrap());
    assert_eq!(ia, ib, "one incident id across the replicas");
    let runs: Vec<_> = a.runs(None).into_iter().chain(b.runs(None)).collect();
    assert_eq!(runs.len(), 1, "one run: {runs:?}");
    let (driver, other) = if a.runs(None).is_empty() {
        (&b, &a)
    } else {
        (&a, &b)
    };
    let run_id = runs[0].id.clone();
    assert!(
        driver
            .wait_until(WAIT, |e| step_status(e, &run_id, "approve")
                == Some(StepStatus::Running))
            .await
    );
    assert_eq!(f.tickets.opens.load(Ordering::SeqCst), 1, "one ticket");
    assert_eq!(
        f.hook
            .actions()
            .iter()
            .filter(|a| *a == "lock_accounts")
            .count(),
        1
    );
    let timeline = other.incident(&ia).unwrap().timeline;
    let skipped = timeline
        .iter()
        .find(|e| e.action == "run_claimed_elsewhere")
        .expect("the other replica says why it ran nothing");
    assert_eq!(skipped.fields["run_id"], run_id.as_str());
    assert!(!timeline.iter().any(|e| e.action == "run_started"));
}

/// An incident acknowledged on one replica and resolved on another reads as resolved,
/// with both changes, on both; changing it again where it is past that is refused, and the
/// next alert of its fingerprint opens a new incident on the replica that had not seen
/// the resolution.
#[tokio::test]
async fn incident_states_are_shared_across_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let decisions = Arc::new(MemoryDecisions::default());
    let a = f.build(&dir.path().join("a"), BREACH).unwrap();
    let b = f.build(&dir.path().join("b"), BREACH).unwrap();
    a.coordinate_with(Replica::new("replica-a", &decisions));
    b.coordinate_with(Replica::new("replica-b", &decisions));
    a.start();
    b.start();
    let first = breach_alert("x");
    let mut second = breach_alert("x");
    second.alert.id = Alert::derive_id(&["test", "2"]);
    let id = a.handle_alert(&first).await.unwrap().unwrap();
    assert_eq!(b.handle_alert(&second).await.unwrap().unwrap(), id);

    b.acknowledge(&id, "bob").await.unwrap();
    let resolved = a.resolve(&id, "alice", "false alarm").await.unwrap();
    assert_eq!(resolved.state, IncidentState::Resolved);
    assert_eq!(resolved.acknowledged.unwrap().by, "bob", "b's change kept");
    // b's copy is still acknowledged until it is read through the shared state.
    assert_eq!(b.incident(&id).unwrap().state, IncidentState::Acknowledged);
    let on_b = b.refresh_incident(&id).await.unwrap();
    assert_eq!(on_b.state, IncidentState::Resolved);
    assert_eq!(on_b.resolved.as_ref().unwrap().by, "alice");
    let taken = on_b
        .timeline
        .iter()
        .find(|e| e.action == "resolved")
        .expect("a timeline entry for the resolution");
    assert_eq!(taken.actor, "alice");
    assert_eq!(taken.fields["on_another_replica"], true);
    let err = b.resolve(&id, "carol", "again").await.unwrap_err();
    assert_eq!(err.kind(), vowguard_core::ErrorKind::Rejected);

    // The next alerts of the fingerprint open one new incident on both.
    let mut third = breach_alert("x");
    third.alert.id = Alert::derive_id(&["test", "3"]);
    let next = a.handle_alert(&third).await.unwrap().unwrap();
    assert_ne!(next, id, "a resolved incident takes no more alerts");
    let mut fourth = breach_alert("x");
    fourth.alert.id = Alert::derive_id(&["test", "4"]);
    assert_eq!(b.handle_alert(&fourth).await.unwrap().unwrap(), next);
}

/// A replica that has not read an incident since another resolved it takes the
/// resolution in before it links an alert: the alert opens a new incident.
#[tokio::test]
async fn an_alert_is_not_linked_to_an_incident_resolved_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let decisions = Arc::new(MemoryDecisions::default());
    let a = f.build(&dir.path().join("a"), BREACH).unwrap();
    let b = f.build(&dir.path().join("b"), BREACH).unwrap();
    a.coordinate_with(Replica::new("replica-a", &decisions));
    b.coordinate_with(Replica::new("replica-b", &decisions));
    a.start();
    b.start();
    let id = a.handle_alert(&breach_alert("x")).await.unwrap().unwrap();
    let mut second = breach_alert("x");
    second.alert.id = Alert::derive_id(&["test", "2"]);
    assert_eq!(b.handle_alert(&second).await.unwrap().unwrap(), id);
    a.resolve(&id, "alice", "done").await.unwrap();
    let mut third = breach_alert("x");
    third.alert.id = Alert::derive_id(&["test", "3"]);
    let next = b.handle_alert(&third).await.unwrap().unwrap();
    assert_ne!(next, id);
    let old = b.incident(&id).unwrap();
    assert_eq!(old.state, IncidentState::Resolved);
    assert!(!old.alert_ids.contains(&third.alert.id));
}

/// A change refused because another replica already moved the incident further names
/// who did, and brings this replica's copy up to it.
#[tokio::test]
async fn a_change_another_replica_went_past_is_refused_and_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let decisions = Arc::new(MemoryDecisions::default());
    let a = f.build(&dir.path().join("a"), BREACH).unwrap();
    let b = f.build(&dir.path().join("b"), BREACH).unwrap();
    a.coordinate_with(Replica::new("replica-a", &decisions));
    b.coordinate_with(Replica::new("replica-b", &decisions));
    a.start();
    b.start();
    let id = a.handle_alert(&breach_alert("x")).await.unwrap().unwrap();
    let mut second = breach_alert("x");
    second.alert.id = Alert::derive_id(&["test", "2"]);
    b.handle_alert(&second).await.unwrap();
    a.resolve(&id, "alice", "done").await.unwrap();
    let err = b.acknowledge(&id, "bob").await.unwrap_err();
    assert_eq!(err.kind(), vowguard_core::ErrorKind::Rejected);
    assert!(err.to_string().contains("by alice"), "{err}");
    assert_eq!(b.incident(&id).unwrap().state, IncidentState::Resolved);
}

/// A replica whose claim ran out (it died) hands the run over: the next alert on another
/// replica resumes it there from the shared run state: the ticket step the first replica
/// finished is not called again, and the approval it was waiting for waits on under its
/// recorded deadline; the replica that lost the claim ends its copy instead of driving it
/// further.
#[tokio::test]
async fn an_expired_run_claim_is_taken_over_and_resumed_by_another_replica() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let decisions = Arc::new(MemoryDecisions::default());
    let a = f.build(&dir.path().join("a"), BREACH).unwrap();
    let b = f.build(&dir.path().join("b"), BREACH).unwrap();
    a.coordinate_with(Replica::new("replica-a", &decisions));
    b.coordinate_with(Replica::new("replica-b", &decisions));
    a.start();
    b.start();
    let inc = a.handle_alert(&breach_alert("x")).await.unwrap().unwrap();
    let run_id = a.runs(None)[0].id.clone();
    assert!(
        a.wait_until(WAIT, |e| step_status(e, &run_id, "approve")
            == Some(StepStatus::Running)
            && step_status(e, &run_id, "ticket") == Some(StepStatus::Succeeded)
            && step_status(e, &run_id, "contain")
                .is_some_and(|s| s.is_terminal()))
            .await
    );
    assert_eq!(f.tickets.opens.load(Ordering::SeqCst), 1);
    let actions_before = f.hook.actions().len();
    // What replica a recorded in the shared state: the finished ticket, the approval
    // waiting.
    let shared = decisions.runs.lock().unwrap()[&run_id].1.clone();
    assert_eq!(shared.steps["ticket"].status, StepStatus::Succeeded);
    assert_eq!(shared.steps["approve"].status, StepStatus::Running);
    // Replica a's claim expires and b takes the run on the next alert.
    decisions.claims.lock().unwrap().clear();
    let mut next = breach_alert("x");
    next.alert.id = Alert::derive_id(&["test", "3"]);
    assert_eq!(b.handle_alert(&next).await.unwrap().unwrap(), inc);
    assert_eq!(b.runs(None).len(), 1, "taken over");
    assert_eq!(b.runs(None)[0].id, run_id);
    assert!(
        b.wait_until(WAIT, |e| step_status(e, &run_id, "approve")
            == Some(StepStatus::Running))
            .await
    );
    assert!(
        a.wait_until(WAIT, |e| e
            .run(&run_id)
            .is_some_and(|r| r.state == RunState::Failed))
            .await,
        "replica a stops driving the run it lost"
    );
    let (run_a, run_b) = (a.run(&run_id).unwrap(), b.run(&run_id).unwrap());
    assert_eq!(run_b.started_at, run_a.started_at, "resumed, not restarted");
    assert_eq!(run_b.deadline, run_a.deadline);
    assert_eq!(
        run_b.steps["ticket"], run_a.steps["ticket"],
        "the ticket step is taken over as replica a finished it"
    );
    assert_eq!(
        run_b.steps["approve"].deadline, run_a.steps["approve"].deadline,
        "the approval waits on under its recorded deadline"
    );
    assert_eq!(
        f.tickets.opens.load(Ordering::SeqCst),
        1,
        "the ticket system was not called again"
    );
    assert_eq!(f.hook.actions().len(), actions_before, "no action repeated");
    // b's incident knows the ticket a opened, and its timeline says what was taken over.
    let incident = b.incident(&inc).unwrap();
    assert!(incident.tickets.contains_key("jira"), "{incident:?}");
    let actions: Vec<&str> = incident
        .timeline
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert!(actions.contains(&"run_taken_over"), "{actions:?}");
    assert!(actions.contains(&"steps_taken_over"), "{actions:?}");
    assert!(!actions.contains(&"run_started"), "{actions:?}");
    // The approval decided on b finishes the run there, with every later step.
    b.decide(&run_id, "approve", "alice", true)
        .await
        .expect("decided");
    let done = b.wait_run(&run_id, WAIT).await.unwrap();
    assert_eq!(done.state, RunState::Succeeded, "{done:?}");
    assert_eq!(f.tickets.opens.load(Ordering::SeqCst), 1);
}

/// An engine told to await coordination starts no step before it has it: a run whose
/// claim another replica holds by then ends here without any step.
#[tokio::test]
async fn runs_wait_for_coordination_and_yield_to_the_claim_holder() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let decisions = Arc::new(MemoryDecisions::default());
    let engine = f.build(dir.path(), BREACH).unwrap();
    engine.await_coordination();
    engine.start();
    engine
        .handle_alert(&breach_alert("x"))
        .await
        .unwrap()
        .unwrap();
    let run_id = engine.runs(None)[0].id.clone();
    decisions
        .claims
        .lock()
        .unwrap()
        .insert(run_id.clone(), "replica-x".into());
    engine.coordinate_with(Replica::new("replica-a", &decisions));
    assert!(
        engine
            .wait_until(WAIT, |e| e
                .run(&run_id)
                .is_some_and(|r| r.state == RunState::Failed))
            .await
    );
    assert!(f.hook.actions().is_empty(), "no step ran");
    assert_eq!(f.tickets.opens.load(Ordering::SeqCst), 0);
    assert!(engine.run(&run_id).unwrap().steps.is_empty());
}

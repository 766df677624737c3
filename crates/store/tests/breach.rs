//! The GDPR breach register: lifecycle, every change audited with who and when, the
//! 72-hour clock in UTC across daylight-saving changes, the Art. 33 notice, the router's
//! breach log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use common::{at, sqlite_store};
use vowguard_core::AuditRecord;
use vowguard_router::{BreachLog, BreachRecord};
use vowguard_store::breach::{Clock, deadline_for, render_notice, show_time};
use vowguard_store::{
    AuditBreachLog, AuditSource, BreachChange, BreachRegister, BreachStatus, BreachUpdate,
    MemoryAudit,
};

async fn register() -> (BreachRegister, Arc<MemoryAudit>, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    let audit = Arc::new(MemoryAudit::new());
    let register = BreachRegister::new(
        Arc::new(store),
        audit.clone(),
        audit.clone(),
        Some("DPO Jane Roe, dpo@example.org".into()),
    );
    (register, audit, dir)
}

fn opening(id: &str, detected: &str) -> BreachChange {
    BreachChange::Open {
        id: id.into(),
        detected_at: at(detected),
        wedding_id: Some("w-42".into()),
        event_id: Some("e-9".into()),
        first_signal: Some("bulk export of the guest list".into()),
        records_approx: Some(300),
        handed_to: vec![],
        team_notification: None,
    }
}

#[tokio::test]
async fn a_breach_goes_through_its_lifecycle_and_every_change_is_an_audit_record() {
    let (register, audit, _dir) = register().await;
    let now = at("2026-06-13T12:00:00Z");
    let b = register
        .change(
            "b-1",
            &opening("b-1", "2026-06-13T09:30:00Z"),
            "system",
            now,
        )
        .await
        .unwrap();
    assert_eq!(b.status, BreachStatus::Suspected);
    assert_eq!(
        b.deadline, None,
        "the clock starts at confirmation, not the first signal"
    );
    assert_eq!(
        b.dpo_contact.as_deref(),
        Some("DPO Jane Roe, dpo@example.org")
    );

    // Notifying before confirmation is refused.
    let err = register
        .change(
            "b-1",
            &BreachChange::NotifyAuthority { at: now },
            "cli:dpo",
            now,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not confirmed"), "{err}");
    // Confirmation in the future is refused, naming the flag.
    let err = register
        .change(
            "b-1",
            &BreachChange::Confirm {
                at: now + Span::hours(2),
            },
            "cli:dpo",
            now,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`--at`") && err.contains("future"), "{err}");

    let b = register
        .change(
            "b-1",
            &BreachChange::Confirm {
                at: at("2026-06-13T11:00:00Z"),
            },
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    assert_eq!(b.status, BreachStatus::Confirmed);
    assert_eq!(b.deadline, Some(at("2026-06-16T11:00:00Z")));
    // The clock does not restart.
    let err = register
        .change("b-1", &BreachChange::Confirm { at: now }, "cli:other", now)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already confirmed"), "{err}");

    // Escalation: due within 24 h only in the last day.
    let store = register.storage();
    assert!(
        store
            .breaches_due_within(at("2026-06-15T10:00:00Z"), Span::hours(24))
            .await
            .unwrap()
            .is_empty()
    );
    let due = store
        .breaches_due_within(at("2026-06-15T11:30:00Z"), Span::hours(24))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].deadline_in(at("2026-06-15T11:30:00Z")),
        Some(Span::minutes(23 * 60 + 30))
    );

    // Late notification needs reasons first.
    let late = at("2026-06-17T08:00:00Z");
    let err = register
        .change(
            "b-1",
            &BreachChange::NotifyAuthority { at: late },
            "cli:dpo",
            late,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("late-reason"), "{err}");
    register
        .change(
            "b-1",
            &BreachChange::Update(BreachUpdate {
                late_reason: Some("the vendor's logs arrived on day 3".into()),
                nature: Some("guest list exported".into()),
                ..BreachUpdate::default()
            }),
            "cli:dpo",
            late,
        )
        .await
        .unwrap();
    let b = register
        .change(
            "b-1",
            &BreachChange::NotifyAuthority { at: late },
            "cli:dpo",
            late,
        )
        .await
        .unwrap();
    assert_eq!(b.status, BreachStatus::NotifiedAuthority);
    assert_eq!(
        b.clock(late),
        Clock::Late {
            minutes_over: 21 * 60,
            reason: Some("the vendor's logs arrived on day 3".into())
        }
    );
    // An empty update is refused; closing works after notification; then no more changes.
    let err = register
        .change(
            "b-1",
            &BreachChange::Update(BreachUpdate::default()),
            "cli:dpo",
            late,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least one field"), "{err}");
    register
        .change("b-1", &BreachChange::Close { at: late }, "cli:dpo", late)
        .await
        .unwrap();
    let err = register
        .change(
            "b-1",
            &BreachChange::NotifySubjects { at: late },
            "cli:dpo",
            late,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("closed"), "{err}");

    // Every accepted change is one audit record naming who and when, and the store's
    // history mirrors it.
    let records = audit.records_from(0, 100).await.unwrap();
    let actions: Vec<(String, String)> = records
        .iter()
        .map(|(_, r)| match r {
            AuditRecord::Breach { action, actor, .. } => (action.clone(), actor.clone()),
            other => panic!("unexpected record {other:?}"),
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("opened", "system"),
            ("confirmed", "cli:dpo"),
            ("updated", "cli:dpo"),
            ("notified_authority", "cli:dpo"),
            ("closed", "cli:dpo"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let history = store.breach_history("b-1").await.unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(history[1].at, now);
    assert_eq!(
        history[1].fields["confirmed_at"],
        "2026-06-13T11:00:00.000Z"
    );
}

#[test]
fn the_72_hours_are_counted_in_utc_across_daylight_saving_changes() {
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let london: chrono_tz::Tz = "Europe/London".parse().unwrap();
    // Spring: clocks go forward on 2026-03-29 at 01:00 UTC.
    let confirmed = at("2026-03-27T10:00:00Z");
    let deadline = deadline_for(confirmed);
    assert_eq!(deadline - confirmed, Span::hours(72));
    assert_eq!(deadline, at("2026-03-30T10:00:00Z"));
    // Local wall clock shows 73 h between them: 11:00 CET -> 12:00 CEST.
    assert_eq!(
        show_time(confirmed, berlin),
        "2026-03-27 10:00 UTC (2026-03-27 11:00 CET, Europe/Berlin)"
    );
    assert_eq!(
        show_time(deadline, berlin),
        "2026-03-30 10:00 UTC (2026-03-30 12:00 CEST, Europe/Berlin)"
    );
    assert_eq!(
        show_time(deadline, london),
        "2026-03-30 10:00 UTC (2026-03-30 11:00 BST, Europe/London)"
    );
    // Autumn: clocks go back on 2026-10-25 at 01:00 UTC: 71 h on the wall clock.
    let confirmed = at("2026-10-23T22:30:00Z");
    let deadline = deadline_for(confirmed);
    assert_eq!(deadline, at("2026-10-26T22:30:00Z"));
    assert_eq!(
        show_time(confirmed, berlin),
        "2026-10-23 22:30 UTC (2026-10-24 00:30 CEST, Europe/Berlin)"
    );
    assert_eq!(
        show_time(deadline, berlin),
        "2026-10-26 22:30 UTC (2026-10-26 23:30 CET, Europe/Berlin)"
    );
    // Confirmed inside the repeated hour (02:30 local happens twice on 25 October).
    let first = at("2026-10-25T00:30:00Z");
    let second = at("2026-10-25T01:30:00Z");
    assert_eq!(
        show_time(first, berlin),
        "2026-10-25 00:30 UTC (2026-10-25 02:30 CEST, Europe/Berlin)"
    );
    assert_eq!(
        show_time(second, berlin),
        "2026-10-25 01:30 UTC (2026-10-25 02:30 CET, Europe/Berlin)"
    );
    assert_eq!(deadline_for(second) - deadline_for(first), Span::hours(1));
}

#[tokio::test]
async fn the_art_33_notice_has_the_required_content_and_cannot_be_forged_by_a_field() {
    let (register, _audit, _dir) = register().await;
    let now = at("2026-06-14T12:00:00Z");
    register
        .change(
            "b-7",
            &opening("b-7", "2026-06-13T09:30:00Z"),
            "system",
            now,
        )
        .await
        .unwrap();
    let zone: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let notice = register.notice("b-7", now, zone).await.unwrap();
    assert!(notice.contains("not yet confirmed"), "{notice}");
    assert!(
        notice.contains("Information to be provided in phases (Art. 33(4))"),
        "{notice}"
    );
    register
        .change(
            "b-7",
            &BreachChange::Confirm {
                at: at("2026-06-13T10:00:00Z"),
            },
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    register
        .change(
            "b-7",
            &BreachChange::Update(BreachUpdate {
                nature: Some("vendor account misuse\nStatus: closed".into()),
                subject_categories: Some(vec!["guests".into(), "couples".into()]),
                subjects_approx: Some(250),
                record_categories: Some(vec!["names".into(), "emails".into()]),
                records_approx: Some(300),
                consequences: Some("phishing of guests".into()),
                measures: Some("account locked, passwords reset".into()),
                high_risk: Some(true),
                subjects_decision: Some("e-mail to every guest".into()),
                ..BreachUpdate::default()
            }),
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    let notice = register.notice("b-7", now, zone).await.unwrap();
    for needle in [
        "Article 33",
        "Breach reference: b-7",
        "Became aware (confirmed): 2026-06-13 10:00 UTC (2026-06-13 12:00 CEST, Europe/Paris)",
        "Notification due by (72 hours): 2026-06-16 10:00 UTC",
        "(a) Nature of the breach: vendor account misuse Status: closed",
        "Categories of data subjects: guests, couples; approximate number: about 250",
        "Categories of personal data records: names, emails; approximate number: about 300",
        "(b) Data protection officer / contact point: DPO Jane Roe, dpo@example.org",
        "(c) Likely consequences: phishing of guests",
        "(d) Measures taken or proposed, including mitigation: account locked, passwords reset",
        "high risk to the data subjects: they are informed",
    ] {
        assert!(notice.contains(needle), "missing {needle:?} in\n{notice}");
    }
    // The line break in a field did not start a forged line.
    assert!(
        !notice.lines().any(|l| l.starts_with("Status: closed")),
        "{notice}"
    );
    assert!(
        !notice.contains("Information to be provided in phases"),
        "{notice}"
    );
    // Overdue notices ask for the reasons of the delay.
    let later = at("2026-06-17T10:00:00Z");
    let breach = register.storage().breach("b-7").await.unwrap().unwrap();
    let text = render_notice(&breach, None, later, zone);
    assert!(text.contains("after the 72-hour period"), "{text}");
}

#[tokio::test]
async fn the_routers_breach_log_opens_suspected_breaches_through_the_audit_log() {
    let (register, audit, _dir) = register().await;
    let store = register.storage().clone();
    let (log, task) = AuditBreachLog::spawn(register);
    let record = BreachRecord {
        id: "0190-b".into(),
        opened_at: at("2026-06-13T09:30:00Z"),
        deadline: at("2026-06-16T09:30:00Z"),
        wedding_id: Some("w-1".into()),
        records_affected: Some(12),
        event_id: "e-77".into(),
        reason: "guest data breach protocol".into(),
        handed_to: vec!["pagerduty".into()],
        notification: "handed to pagerduty".into(),
    };
    log.record(&record).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let breach = loop {
        if let Some(b) = store.breach("0190-b").await.unwrap() {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "breach not recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(breach.status, BreachStatus::Suspected);
    assert_eq!(breach.detected_at, record.opened_at);
    assert_eq!(breach.deadline, None);
    assert_eq!(breach.records_approx, Some(12));
    assert_eq!(breach.handed_to, ["pagerduty"]);
    assert_eq!(audit.len(), 1);
    drop(log);
    task.await.unwrap();
}

//! Reports: parameter validation, escaping of attacker-controlled strings, and the HTML in
//! headless Chromium (a screenshot must show the page and its SVG charts).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{at, sqlite_store};
use vowguard_core::{AuditRecord, DeliveryOutcome, Priority};
use vowguard_store::fixture::Synthetic;
use vowguard_store::report::{ReportFormat, ReportKind, ReportParams};
use vowguard_store::{BreachChange, BreachRegister, BreachUpdate, MemoryAudit, Store};

#[test]
fn report_parameters_are_validated_and_errors_name_the_problem() {
    let err = ReportParams::parse(ReportKind::Gdpr, "2026-07-01", "2026-06-01")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "`--from` (2026-07-01T00:00:00+00:00) is after `--to` (2026-06-01T00:00:00+00:00)"
        ),
        "{err}"
    );
    let err = ReportParams::parse(ReportKind::Gdpr, "2026-06-01", "2026-06-01")
        .unwrap_err()
        .to_string();
    assert!(err.contains("the period is empty"), "{err}");
    let err = ReportParams::parse(ReportKind::Gdpr, "yesterday", "2026-06-01")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`--from`") && err.contains("\"yesterday\""),
        "{err}"
    );
    let err = ReportParams::parse(ReportKind::Gdpr, "2026-06-01", "2026-13-01")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`--to`"), "{err}");
    let err = "pci".parse::<ReportKind>().unwrap_err().to_string();
    assert!(
        err.contains("`kind`") && err.contains("gdpr, soc2, incidents or delivery"),
        "{err}"
    );
    let err = "pdf".parse::<ReportFormat>().unwrap_err().to_string();
    assert!(err.contains("`format`"), "{err}");
    let ok =
        ReportParams::parse(ReportKind::Soc2, "2026-06-01T10:00:00+02:00", "2026-06-02").unwrap();
    assert_eq!(ok.from(), at("2026-06-01T08:00:00Z"));
}

const EVIL: &str =
    "<script>alert(1)</script><img src=x onerror=alert(2)>|**bold**|\n| forged | row |";

async fn store_with_traffic() -> (Store, tempfile::TempDir, std::sync::Arc<MemoryAudit>) {
    let (store, dir) = sqlite_store().await;
    let audit = std::sync::Arc::new(MemoryAudit::new());
    let mut records: Vec<AuditRecord> = Synthetic::new(3, at("2026-06-10T00:00:00Z"), 60_000)
        .take(4_000)
        .collect();
    records.push(AuditRecord::AlertRouted {
        at: at("2026-06-12T10:00:00Z"),
        alert_id: EVIL.into(),
        event_id: EVIL.into(),
        priority: Priority::P0Critical,
        route: EVIL.into(),
        reasons: vec![EVIL.into()],
        channels: vec!["slack".into()],
        suppressed: None,
        wedding_id: Some(EVIL.into()),
    });
    records.push(AuditRecord::Delivered {
        at: at("2026-06-12T10:00:01Z"),
        sink: "splunk".into(),
        events: vec![DeliveryOutcome {
            id: EVIL.into(),
            result: "dead_lettered".into(),
            reason: Some(EVIL.into()),
            latency_ms: 10,
        }],
    });
    use vowguard_core::AuditTrail;
    audit.append(records).await.unwrap();
    let register = BreachRegister::new(
        std::sync::Arc::new(store.clone()),
        audit.clone(),
        audit.clone(),
        None,
    );
    let now = at("2026-06-14T00:00:00Z");
    for (id, detected, confirmed, notified) in [
        (
            "b-on-time",
            "2026-06-10T08:00:00Z",
            "2026-06-10T12:00:00Z",
            Some("2026-06-11T12:00:00Z"),
        ),
        (
            "b-running",
            "2026-06-12T08:00:00Z",
            "2026-06-12T09:00:00Z",
            None,
        ),
    ] {
        register
            .change(
                id,
                &BreachChange::Open {
                    id: id.into(),
                    detected_at: at(detected),
                    wedding_id: Some(EVIL.into()),
                    event_id: None,
                    first_signal: Some(EVIL.into()),
                    records_approx: None,
                    handed_to: vec![],
                    team_notification: None,
                },
                "system",
                now,
            )
            .await
            .unwrap();
        register
            .change(
                id,
                &BreachChange::Confirm { at: at(confirmed) },
                "cli:dpo",
                now,
            )
            .await
            .unwrap();
        register
            .change(
                id,
                &BreachChange::Update(BreachUpdate {
                    nature: Some(EVIL.into()),
                    subject_categories: Some(vec!["guests".into()]),
                    subjects_approx: Some(40),
                    ..BreachUpdate::default()
                }),
                "cli:dpo",
                now,
            )
            .await
            .unwrap();
        if let Some(n) = notified {
            register
                .change(
                    id,
                    &BreachChange::NotifyAuthority { at: at(n) },
                    "cli:dpo",
                    now,
                )
                .await
                .unwrap();
        }
    }
    store.catch_up(audit.as_ref()).await.unwrap();
    (store, dir, audit)
}

async fn render(store: &Store, kind: ReportKind, format: ReportFormat) -> String {
    let params = ReportParams::parse(kind, "2026-06-10", "2026-06-14").unwrap();
    store
        .report_at(&params, None, at("2026-06-13T12:00:00Z"))
        .await
        .unwrap()
        .render(format)
        .unwrap()
}

#[tokio::test]
async fn attacker_controlled_strings_are_escaped_in_html_and_markdown() {
    let (store, _dir, _audit) = store_with_traffic().await;
    for kind in [ReportKind::Soc2, ReportKind::Gdpr] {
        let html = render(&store, kind, ReportFormat::Html).await;
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{kind:?}"
        );
        assert!(!html.contains("<script"), "{kind:?}: raw script tag");
        assert!(!html.contains("<img"), "{kind:?}: raw img tag");
        assert!(html.contains("<svg"), "{kind:?}: no chart");
        let md = render(&store, kind, ReportFormat::Md).await;
        assert!(!md.contains("<script"), "{kind:?}");
        assert!(
            !md.contains("| forged |"),
            "{kind:?}: a line break forged a table row"
        );
        assert!(md.contains("\\*\\*bold\\*\\*"), "{kind:?}");
        // Every table row has as many cells as its header.
        for block in md.split("\n\n") {
            let rows: Vec<&str> = block.lines().filter(|l| l.starts_with("| ")).collect();
            if let Some(header) = rows.first() {
                let cells = |l: &str| l.replace("\\|", "").matches('|').count();
                for row in &rows {
                    assert_eq!(cells(row), cells(header), "{kind:?}: {row}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_report_names_the_audit_records_and_checkpoint_it_was_computed_from() {
    let (store, _dir, audit) = store_with_traffic().await;
    let params = ReportParams::parse(ReportKind::Delivery, "2026-06-10", "2026-06-14").unwrap();
    let checkpoint = vowguard_core::CheckpointRef {
        origin: "vowguard.example/audit".into(),
        size: audit.len(),
        root: "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ".into(),
        note: "vowguard.example/audit\n4010\nq83v...\n\n— vowguard.example/audit sig\n".into(),
    };
    let report = store
        .report(&params, Some(checkpoint.clone()))
        .await
        .unwrap();
    assert_eq!(report.evidence.applied_through, Some(audit.len() - 1));
    for format in [ReportFormat::Html, ReportFormat::Md, ReportFormat::Json] {
        let text = report.render(format).unwrap();
        assert!(text.contains("vowguard.example/audit"), "{format:?}");
        assert!(text.contains(&checkpoint.root), "{format:?}");
    }
    let md = report.render(ReportFormat::Md).unwrap();
    assert!(
        md.contains(&format!("audit records 0 to {}", audit.len() - 1)),
        "{md}"
    );
    let none = store
        .report(&params, None)
        .await
        .unwrap()
        .render(ReportFormat::Md)
        .unwrap();
    assert!(none.contains("No signed audit checkpoint"), "{none}");
}

/// Headless Chromium: `VOWGUARD_CHROMIUM`, else `chromium` on the PATH, else the private
/// copy `cargo xtask prerequisites` installs. Missing: the test fails saying so.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("VOWGUARD_CHROMIUM") {
        return PathBuf::from(path);
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    }) {
        return path;
    }
    let private =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-prereqs/chromium/chromium");
    assert!(
        private.is_file(),
        "headless Chromium is required by the report tests: run `cargo xtask prerequisites` \
         (installs Debian's chromium privately) or set VOWGUARD_CHROMIUM"
    );
    private
}

async fn run_chromium(args: &[String]) {
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .args(args)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let status = tokio::time::timeout(Duration::from_secs(120), command.status())
        .await
        .expect("chromium finished within two minutes")
        .expect("chromium runs");
    assert!(status.success(), "chromium failed: {status}");
}

/// RGBA pixels of a PNG file.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("screenshot written"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

fn count_near(px: &[[u8; 3]], colour: [u8; 3]) -> usize {
    px.iter()
        .filter(|p| p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 6))
        .count()
}

#[tokio::test]
async fn html_reports_render_with_their_charts_in_headless_chromium() {
    let (store, dir, _audit) = store_with_traffic().await;
    // (report, colours its chart must show: filled bars/segments)
    let cases = [
        (
            ReportKind::Soc2,
            vec![[0xd6, 0x27, 0x28], [0xff, 0x7f, 0x0e], [0x1f, 0x77, 0xb4]],
        ),
        (
            ReportKind::Delivery,
            vec![[0x2c, 0xa0, 0x2c], [0x1f, 0x77, 0xb4], [0x94, 0x67, 0xbd]],
        ),
        (
            ReportKind::Gdpr,
            vec![[0xaa, 0xaa, 0xaa], [0x1f, 0x77, 0xb4]],
        ),
    ];
    for (kind, colours) in cases {
        let html = render(&store, kind, ReportFormat::Html).await;
        let page = dir.path().join(format!("{}.html", kind.as_str()));
        std::fs::write(&page, &html).unwrap();
        let shot = dir.path().join(format!("{}.png", kind.as_str()));
        run_chromium(&[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1800".into(),
            format!("file://{}", page.display()),
        ])
        .await;
        if let Some(keep) = std::env::var_os("VOWGUARD_KEEP_REPORTS") {
            // For a human look: copies of the pages and screenshots.
            let keep = PathBuf::from(keep);
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&page, keep.join(page.file_name().unwrap())).unwrap();
            std::fs::copy(&shot, keep.join(shot.file_name().unwrap())).unwrap();
        }
        let (w, h, px) = pixels(&shot);
        assert_eq!((w, h), (1200, 1800), "{kind:?}");
        let white = count_near(&px, [255, 255, 255]);
        let ink = px.len() - white;
        assert!(
            ink > px.len() / 50,
            "{kind:?}: the page is blank ({ink} non-white pixels)"
        );
        for colour in colours {
            let n = count_near(&px, colour);
            assert!(
                n > 200,
                "{kind:?}: chart colour {colour:02x?} not rendered ({n} pixels)"
            );
        }
        // Printable: Chromium prints it to PDF.
        let pdf = dir.path().join(format!("{}.pdf", kind.as_str()));
        run_chromium(&[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
            format!("file://{}", page.display()),
        ])
        .await;
        let bytes = std::fs::read(&pdf).expect("pdf written");
        assert!(bytes.starts_with(b"%PDF"), "{kind:?}: not a PDF");
    }
}

fn incident_record(
    at_: &str,
    id: &str,
    action: &str,
    actor: &str,
    fields: serde_json::Value,
) -> AuditRecord {
    AuditRecord::Incident {
        at: at(at_),
        incident_id: id.into(),
        action: action.into(),
        actor: actor.into(),
        fields: match fields {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        },
    }
}

#[tokio::test]
async fn the_soc2_report_gives_playbook_steps_approvals_response_times_and_alert_dispositions() {
    use serde_json::json;
    let (store, _dir) = sqlite_store().await;
    let audit = std::sync::Arc::new(MemoryAudit::new());
    let run = json!("run-1");
    let records = vec![
        AuditRecord::AlertRouted {
            at: at("2026-06-12T10:00:00Z"),
            alert_id: "al-1".into(),
            event_id: "evt-1".into(),
            priority: Priority::P0Critical,
            route: "protocol/guest_data_breach".into(),
            reasons: vec!["guest list export".into()],
            channels: vec!["slack".into()],
            suppressed: None,
            wedding_id: Some("w-7".into()),
        },
        AuditRecord::AlertRouted {
            at: at("2026-06-12T10:01:00Z"),
            alert_id: "al-2".into(),
            event_id: "evt-2".into(),
            priority: Priority::P2Medium,
            route: "default".into(),
            reasons: vec![],
            channels: vec![],
            suppressed: Some("quiet hours".into()),
            wedding_id: None,
        },
        incident_record(
            "2026-06-12T10:00:01Z",
            "inc-1",
            "opened",
            "alert:al-1",
            json!({"alert_id": "al-1", "event_id": "evt-1", "priority": "P0"}),
        ),
        incident_record(
            "2026-06-12T10:00:02Z",
            "inc-1",
            "run_started",
            "alert:al-1",
            json!({"run_id": run, "playbook": "wedding-data-breach", "version": 2, "dry_run": false}),
        ),
        incident_record(
            "2026-06-12T10:00:03Z",
            "inc-1",
            "step_started",
            "playbook:wedding-data-breach",
            json!({"run_id": run, "step_id": "lock", "kind": "action"}),
        ),
        incident_record(
            "2026-06-12T10:00:04Z",
            "inc-1",
            "step_finished",
            "playbook:wedding-data-breach",
            json!({"run_id": run, "step_id": "lock", "status": "succeeded", "attempts": 1, "output": {"requested": "lock_accounts"}}),
        ),
        incident_record(
            "2026-06-12T10:00:05Z",
            "inc-1",
            "step_started",
            "playbook:wedding-data-breach",
            json!({"run_id": run, "step_id": "approve", "kind": "approval"}),
        ),
        incident_record(
            "2026-06-12T10:04:00Z",
            "inc-1",
            "acknowledged",
            "api:ops",
            json!({"from": "open", "to": "acknowledged"}),
        ),
        incident_record(
            "2026-06-12T10:05:00Z",
            "inc-1",
            "approval_refused",
            "mallory",
            json!({"run_id": run, "step_id": "approve", "reason": "not an approver"}),
        ),
        incident_record(
            "2026-06-12T10:06:00Z",
            "inc-1",
            "step_finished",
            "alice",
            json!({"run_id": run, "step_id": "approve", "status": "succeeded", "attempts": 0, "output": {"approved": true, "by": "alice", "at": "2026-06-12T10:06:00Z", "comment": "go"}}),
        ),
        incident_record(
            "2026-06-12T10:10:00Z",
            "inc-1",
            "contained",
            "playbook:wedding-data-breach",
            json!({"from": "acknowledged", "to": "contained"}),
        ),
        incident_record(
            "2026-06-12T10:10:01Z",
            "inc-1",
            "run_finished",
            "playbook:wedding-data-breach",
            json!({"run_id": run, "playbook": "wedding-data-breach", "state": "succeeded"}),
        ),
    ];
    use vowguard_core::AuditTrail;
    audit.append(records).await.unwrap();
    store.catch_up(audit.as_ref()).await.unwrap();
    let params = ReportParams::parse(ReportKind::Soc2, "2026-06-10", "2026-06-14").unwrap();
    let report = store
        .report_at(&params, None, at("2026-06-13T12:00:00Z"))
        .await
        .unwrap();
    let vowguard_store::report::ReportBody::Soc2(soc2) = &report.body else {
        panic!("a SOC 2 report");
    };
    // Every alert has a disposition; the one that opened an incident names it and its state.
    let a1 = soc2.alerts.iter().find(|a| a.alert_id == "al-1").unwrap();
    assert_eq!(a1.incident_id.as_deref(), Some("inc-1"));
    assert!(
        a1.disposition.ends_with("; incident inc-1 (contained)"),
        "{}",
        a1.disposition
    );
    let a2 = soc2.alerts.iter().find(|a| a.alert_id == "al-2").unwrap();
    assert_eq!(a2.incident_id, None);
    assert!(!a2.disposition.is_empty());
    // The run with each step's result.
    let inc = &soc2.incidents[0];
    assert_eq!(inc.priority.as_deref(), Some("P0"));
    let r = &inc.runs[0];
    assert_eq!(
        (r.playbook.as_str(), r.state.as_str(), r.version),
        ("wedding-data-breach", "succeeded", Some(2))
    );
    let steps: Vec<(&str, &str, Option<&str>)> = r
        .steps
        .iter()
        .map(|s| (s.step_id.as_str(), s.status.as_str(), s.kind.as_deref()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("lock", "succeeded", Some("action")),
            ("approve", "succeeded", Some("approval"))
        ]
    );
    // Approvals with who and when, the refused attempt too.
    let approvals: Vec<(&str, &str, String)> = inc
        .approvals
        .iter()
        .map(|a| (a.decision.as_str(), a.by.as_str(), a.at.to_rfc3339()))
        .collect();
    assert_eq!(
        approvals,
        vec![
            ("refused", "mallory", "2026-06-12T10:05:00+00:00".to_owned()),
            ("approved", "alice", "2026-06-12T10:06:00+00:00".to_owned()),
        ]
    );
    // Time to acknowledge and to contain per priority.
    assert_eq!(soc2.response_times.len(), 1);
    let p0 = &soc2.response_times[0];
    assert_eq!(p0.priority, "P0");
    assert_eq!((p0.incidents, p0.acknowledged, p0.contained), (1, 1, 1));
    assert_eq!(p0.median_minutes_to_acknowledge, Some(3));
    assert_eq!(p0.max_minutes_to_contain, Some(9));
    let md = report.render(ReportFormat::Md).unwrap();
    for needle in [
        "Time to acknowledge and to contain per priority",
        "Playbook runs, each step with its result",
        "Approvals: who decided, and when",
        "mallory",
    ] {
        assert!(md.contains(needle), "{needle}: {md}");
    }
}

//! `vowguard breach ...`, `vowguard report ...` and `GET /api/reports/{kind}` against the
//! embedded SQLite store.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use vowguard_core::secrecy::SecretString;
use vowguard_core::{AuditRecord, AuditTrail};
use vowguard_pipeline::{Pipeline, PipelineSpec};
use vowguard_runtime::reports::Reports;
use vowguard_runtime::server::{self, ServerState};

fn vowguard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .env("USER", "dpo-jane")
        .output()
        .expect("run vowguard");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &Path) -> String {
    let config = dir.join("vowguard.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\n\n[store]\ndpo_contact = \"Jane Roe, dpo@example.org\"\n\n[sources.in]\ntype = \"stdin\"\n",
    )
    .unwrap();
    config.display().to_string()
}

/// What the router's breach log appends to the (Merkle) audit log when the guest data
/// breach protocol fires; the log is closed again (final checkpoint) so the CLI can take it.
async fn open_breach(dir: &Path, id: &str) {
    let log = vowguard_audit::AuditConfig::default()
        .open_with_key(&dir.join("data"), None, dir)
        .unwrap()
        .expect("auditing is on by default");
    let mut fields = serde_json::Map::new();
    fields.insert("status".into(), "suspected".into());
    fields.insert("detected_at".into(), "2026-06-13T09:30:00Z".into());
    fields.insert("wedding_id".into(), "w-<b>42</b>".into());
    log.append(vec![AuditRecord::Breach {
        at: "2026-06-13T09:30:01Z".parse().unwrap(),
        breach_id: id.into(),
        action: "opened".into(),
        actor: "system".into(),
        fields,
    }])
    .await
    .unwrap();
    log.close().await.unwrap();
}

#[tokio::test]
async fn breach_commands_change_the_register_and_reports_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    open_breach(dir.path(), "b-1").await;

    let (ok, out, err) = vowguard(&["breach", "list", "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.contains("b-1") && out.contains("suspected"), "{out}");

    let (ok, out, err) = vowguard(&[
        "breach",
        "confirm",
        "--config",
        &config,
        "b-1",
        "--at",
        "2026-06-13T10:00:00Z",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("notified by 2026-06-16T10:00:00+00:00"),
        "{out}"
    );

    let (ok, out, err) = vowguard(&[
        "breach",
        "update",
        "--config",
        &config,
        "b-1",
        "--nature",
        "guest list exported",
        "--subject-categories",
        "guests,couples",
        "--subjects",
        "250",
        "--measures",
        "vendor account locked",
        "--high-risk",
        "false",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("still missing"), "{out}");

    // A status an update cannot set is named.
    let (ok, _, err) = vowguard(&[
        "breach",
        "update",
        "--config",
        &config,
        "b-1",
        "--status",
        "confirmed",
    ]);
    assert!(!ok);
    assert!(err.contains("`--status`"), "{err}");

    let (ok, out, err) = vowguard(&[
        "breach",
        "notice",
        "--config",
        &config,
        "b-1",
        "--tz",
        "Europe/Berlin",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Article 33"), "{out}");
    assert!(
        out.contains("(2026-06-13 12:00 CEST, Europe/Berlin)"),
        "{out}"
    );
    assert!(out.contains("Jane Roe, dpo@example.org"), "{out}");

    let (ok, out, err) = vowguard(&["breach", "show", "--config", &config, "b-1"]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[1]["actor"], "cli:dpo-jane");

    let report = dir.path().join("gdpr.html");
    let (ok, _, err) = vowguard(&[
        "report",
        "--config",
        &config,
        "--kind",
        "gdpr",
        "--from",
        "2026-06-01",
        "--to",
        "2026-07-01",
        "--format",
        "html",
        "--output",
        &report.display().to_string(),
    ]);
    assert!(ok, "{err}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("w-&lt;b&gt;42&lt;/b&gt;"),
        "escaped wedding id"
    );
    assert!(html.contains("<svg"), "breach timeline chart");
    // The report cites the audit log's signed checkpoint it was computed from.
    assert!(html.contains("vowguard"), "checkpoint origin");
    assert!(!html.contains("No signed audit checkpoint"), "{html}");

    // The store is a projection of the audit log: deleted, it is rebuilt with the same
    // register (every change the CLI made went through the log).
    std::fs::remove_file(dir.path().join("data").join("store.db")).unwrap();
    let (ok, out, err) = vowguard(&["audit", "rebuild-store", "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.contains("record(s) applied"), "{out}");
    let (ok, out, err) = vowguard(&["breach", "list", "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.contains("b-1") && out.contains("confirmed"), "{out}");
    // The whole log, breach changes included, verifies.
    let (ok, out, err) = vowguard(&["audit", "verify", "--config", &config]);
    assert!(ok, "{out}{err}");

    let (ok, _, err) = vowguard(&[
        "report",
        "--config",
        &config,
        "--kind",
        "gdpr",
        "--from",
        "2026-07-01",
        "--to",
        "2026-06-01",
    ]);
    assert!(!ok);
    assert!(
        err.contains("`--from`") && err.contains("is after `--to`"),
        "{err}"
    );
    let (ok, _, err) = vowguard(&[
        "report",
        "--config",
        &config,
        "--kind",
        "pci",
        "--from",
        "2026-06-01",
        "--to",
        "2026-07-01",
    ]);
    assert!(!ok);
    assert!(err.contains("`kind`"), "{err}");
}

#[tokio::test]
async fn the_admin_api_serves_reports_and_validates_the_period() {
    let dir = tempfile::tempdir().unwrap();
    open_breach(dir.path(), "b-api").await;
    let data = dir.path().join("data");
    let location = vowguard_store::config::StoreLocation::Sqlite(data.join("store.db"));
    let reports: Reports = vowguard_runtime::reports::open(
        &location,
        &data,
        None,
        vowguard_runtime::reports::AuditAccess::Merkle { writer: None },
    )
    .await
    .unwrap();
    let pipeline = Arc::new(
        Pipeline::start(PipelineSpec {
            data_dir: dir.path().join("pipeline"),
            ..PipelineSpec::default()
        })
        .await
        .unwrap(),
    );
    let router = Arc::new(
        vowguard_router::Router::from_config(
            vowguard_router::default_config(),
            &[
                "secops",
                "oncall",
                "emergency_sms",
                "security_mail",
                "legal",
            ],
        )
        .unwrap(),
    );
    let state = Arc::new(ServerState {
        pipeline,
        accepted: Default::default(),
        rejected: Default::default(),
        admin_token: Some(SecretString::from("admin-token")),
        sinks: Vec::new(),
        notifiers: Vec::new(),
        router,
        reports: Ok(Arc::new(reports)),
        webhooks: None,
        cluster: None,
        source: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, server::router(state, 1 << 20))
            .await
            .unwrap();
    });
    let client = reqwest::Client::new();
    let get = |path: &str, token: bool| {
        let mut request = client.get(format!("http://{addr}{path}"));
        if token {
            request = request.bearer_auth("admin-token");
        }
        request.send()
    };
    let response = get("/api/reports/gdpr?from=2026-06-01&to=2026-07-01", false)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = get(
        "/api/reports/gdpr?from=2026-06-01&to=2026-07-01&format=json",
        true,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["body"]["gdpr"]["breaches"][0]["breach"]["id"], "b-api");
    assert_eq!(body["evidence"]["applied_through"], 0);
    let response = get(
        "/api/reports/delivery?from=2026-06-01&to=2026-07-01&format=html",
        true,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let response = get("/api/reports/gdpr?from=2026-07-01&to=2026-06-01", true)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("`from`") && text.contains("is after `to`"),
        "{text}"
    );
    let response = get("/api/reports/gdpr?to=2026-06-01", true).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("`from` is required")
    );
}

#[tokio::test]
async fn breach_changes_are_refused_while_another_process_holds_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    open_breach(dir.path(), "b-held").await;
    // This test process plays the running `vowguard run`: it holds the audit log's writer.
    let held = vowguard_audit::AuditConfig::default()
        .open_with_key(&dir.path().join("data"), None, dir.path())
        .unwrap()
        .expect("auditing is on by default");

    let (ok, out, err) = vowguard(&["breach", "confirm", "--config", &config, "b-held"]);
    assert!(!ok, "a change while the log is held: {out}");
    assert!(err.contains("open in another vowguard process"), "{err}");
    assert!(err.contains("POST /api/breaches/b-held/confirm"), "{err}");
    // Reading goes on.
    let (ok, out, err) = vowguard(&["breach", "list", "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.contains("b-held") && out.contains("suspected"), "{out}");

    held.close().await.unwrap();
    drop(held);
    let (ok, _, err) = vowguard(&["breach", "confirm", "--config", &config, "b-held"]);
    assert!(ok, "once the log is free: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_changes_go_through_the_running_process_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    open_breach(dir.path(), "b-run").await;
    let data = dir.path().join("data");
    // This test process plays the running `vowguard run`: it holds the audit log's writer
    // and serves the breach endpoints.
    let held = vowguard_audit::AuditConfig::default()
        .open_with_key(&data, None, dir.path())
        .unwrap()
        .expect("auditing is on by default");
    let location = vowguard_store::config::StoreLocation::Sqlite(data.join("store.db"));
    let reports: Reports = vowguard_runtime::reports::open(
        &location,
        &data,
        Some("Jane Roe, dpo@example.org".into()),
        vowguard_runtime::reports::AuditAccess::Merkle {
            writer: Some(held.clone()),
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = vowguard_runtime::breach_api::router(
        Ok(Arc::new(reports)),
        Some(SecretString::from("breach-admin-token")),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n\n[store]\ndpo_contact = \"Jane Roe, dpo@example.org\"\n\n[sources.in]\ntype = \"stdin\"\n\n[server]\nlisten = \"{addr}\"\nadmin_token = {{ env = \"VG_ADMIN\" }}\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(args)
            .env("USER", "dpo-jane")
            .env("VG_ADMIN", "breach-admin-token")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&[
        "breach",
        "confirm",
        "--config",
        &config,
        "b-run",
        "--at",
        "2026-06-13T10:00:00Z",
    ]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["breach"]["status"], "confirmed", "{answer:#}");
    let (ok, out, err) = cli(&[
        "breach",
        "update",
        "--config",
        &config,
        "b-run",
        "--nature",
        "guest list exported",
        "--status",
        "notified_authority",
        "--at",
        "2026-06-14T09:00:00Z",
    ]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer["breach"]["status"], "notified_authority",
        "{answer:#}"
    );
    // Recorded in the held log with the acting identity.
    held.close().await.unwrap();
    drop(held);
    let reader =
        vowguard_audit::AuditReader::open(vowguard_audit::AuditConfig::dir(&data)).unwrap();
    let actors: Vec<(String, String)> = reader
        .records(0)
        .unwrap()
        .filter_map(|r| match r.unwrap().1 {
            AuditRecord::Breach { action, actor, .. } => Some((action, actor)),
            _ => None,
        })
        .collect();
    assert!(
        actors.iter().any(|(_, a)| a == "api:dpo-jane"),
        "{actors:?}"
    );
    // Without the token: refused.
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/breaches/b-run/confirm"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

//! The projection on both backends: idempotence by audit index, no silent gaps, rebuild,
//! the same reports from SQLite and PostgreSQL, and catching up after PostgreSQL was
//! unreachable.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{at, pg_store, sqlite_store};
use vowguard_core::{AuditRecord, AuditTrail, CheckpointRef};
use vowguard_store::fixture::Synthetic;
use vowguard_store::report::{ReportFormat, ReportKind, ReportParams};
use vowguard_store::{BreachChange, BreachRegister, BreachUpdate, MemoryAudit, Store};

fn records(n: usize) -> Vec<AuditRecord> {
    Synthetic::new(7, at("2026-06-12T00:00:00Z"), 9_000)
        .take(n)
        .collect()
}

async fn idempotent_and_gapless(store: &Store) {
    let recs = records(500);
    assert_eq!(store.applied_through().await.unwrap(), None);
    assert_eq!(store.apply_batch(0, &recs[..300]).await.unwrap(), 300);
    // The same records again: nothing new.
    assert_eq!(store.apply_batch(0, &recs[..300]).await.unwrap(), 0);
    assert!(!store.apply(299, &recs[299]).await.unwrap());
    // Overlapping: only the new part counts.
    assert_eq!(store.apply_batch(250, &recs[250..400]).await.unwrap(), 100);
    // A gap is refused and names the index expected.
    let err = store.apply(450, &recs[450]).await.unwrap_err().to_string();
    assert!(err.contains("expects 400"), "{err}");
    assert_eq!(store.applied_through().await.unwrap(), Some(399));
    assert!(store.apply(400, &recs[400]).await.unwrap());
    assert_eq!(store.next_index().await.unwrap(), 401);
}

#[tokio::test]
async fn apply_is_idempotent_by_index_and_refuses_gaps_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    idempotent_and_gapless(&store).await;
}

#[tokio::test]
async fn apply_is_idempotent_by_index_and_refuses_gaps_on_postgres() {
    let (store, db) = pg_store("idem").await;
    idempotent_and_gapless(&store).await;
    db.drop_database(Some(&store)).await;
}

/// Audit records with breaches made through the register (so every change is an audit
/// record), plus synthetic traffic.
async fn fixture_audit() -> Arc<MemoryAudit> {
    let audit = Arc::new(MemoryAudit::new());
    let (scratch, _dir) = sqlite_store().await;
    let register = BreachRegister::new(
        Arc::new(scratch),
        audit.clone(),
        audit.clone(),
        Some("dpo@example.org".into()),
    );
    audit.append(records(2_000)).await.unwrap();
    let open = |id: &str, detected: &str| BreachChange::Open {
        id: id.into(),
        detected_at: at(detected),
        wedding_id: Some("w-<script>".into()),
        event_id: Some("e-1".into()),
        first_signal: Some("guest list exported".into()),
        records_approx: Some(120),
        handed_to: vec!["pagerduty".into()],
        team_notification: None,
    };
    let now = at("2026-06-20T00:00:00Z");
    register
        .change("b-1", &open("b-1", "2026-06-12T08:00:00Z"), "system", now)
        .await
        .unwrap();
    register
        .change(
            "b-1",
            &BreachChange::Confirm {
                at: at("2026-06-12T10:00:00Z"),
            },
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    register
        .change(
            "b-1",
            &BreachChange::Update(BreachUpdate {
                nature: Some("guest list exported by a vendor account".into()),
                subject_categories: Some(vec!["guests".into()]),
                subjects_approx: Some(120),
                record_categories: Some(vec!["contact details".into()]),
                records_approx: Some(120),
                consequences: Some("phishing".into()),
                measures: Some("vendor account locked".into()),
                high_risk: Some(false),
                ..BreachUpdate::default()
            }),
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    register
        .change(
            "b-1",
            &BreachChange::NotifyAuthority {
                at: at("2026-06-14T09:00:00Z"),
            },
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    register
        .change("b-2", &open("b-2", "2026-06-12T12:00:00Z"), "system", now)
        .await
        .unwrap();
    register
        .change(
            "b-2",
            &BreachChange::Confirm {
                at: at("2026-06-12T13:00:00Z"),
            },
            "cli:dpo",
            now,
        )
        .await
        .unwrap();
    audit.append(records(300)).await.unwrap();
    audit.set_checkpoint(CheckpointRef {
        origin: "vowguard.test/audit".into(),
        size: audit.len(),
        root: "AAAA".into(),
        note: "vowguard.test/audit\n2306\nAAAA\n\n— test sig\n".into(),
    });
    audit
}

async fn all_reports(store: &Store, audit: &MemoryAudit) -> Vec<serde_json::Value> {
    use vowguard_store::AuditSource;
    let mut out = Vec::new();
    for kind in [
        ReportKind::Gdpr,
        ReportKind::Soc2,
        ReportKind::Incidents,
        ReportKind::Delivery,
    ] {
        let params = ReportParams::parse(kind, "2026-06-12", "2026-06-20").unwrap();
        let report = store
            .report_at(
                &params,
                audit.checkpoint().await.unwrap(),
                at("2026-06-19T00:00:00Z"),
            )
            .await
            .unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&report.render(ReportFormat::Json).unwrap()).unwrap();
        json["evidence"]["backend"] = serde_json::Value::Null;
        out.push(json);
    }
    out
}

#[tokio::test]
async fn sqlite_and_postgres_give_the_same_reports_and_rebuild_gives_the_same_again() {
    let audit = fixture_audit().await;
    let (sqlite, _dir) = sqlite_store().await;
    let (pg, db) = pg_store("same").await;
    assert_eq!(sqlite.catch_up(audit.as_ref()).await.unwrap(), audit.len());
    assert_eq!(pg.catch_up(audit.as_ref()).await.unwrap(), audit.len());
    let a = all_reports(&sqlite, &audit).await;
    let b = all_reports(&pg, &audit).await;
    assert_eq!(a, b);
    // The reports hold what the records say.
    let gdpr = &a[0]["body"]["gdpr"];
    assert_eq!(gdpr["totals"]["breaches"], 2);
    assert_eq!(gdpr["totals"]["notified_on_time"], 1);
    assert_eq!(
        gdpr["totals"]["overdue"], 1,
        "b-2 confirmed 06-12 13:00, judged 06-19"
    );
    assert_eq!(gdpr["breaches"][0]["history"].as_array().unwrap().len(), 4);
    let soc2 = &a[1]["body"]["soc2"];
    assert_eq!(soc2["alerts"].as_array().unwrap().len(), 2300 / 20);
    assert_eq!(a[0]["evidence"]["checkpoint"]["size"], audit.len());
    let delivery = &a[3]["body"]["delivery"];
    assert_eq!(delivery["sinks"].as_array().unwrap().len(), 3);
    let received: u64 = delivery["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["total"].as_u64().unwrap())
        .sum();
    assert_eq!(
        received,
        2300 / 20 * 8 * 8,
        "8 delivery records of 8 events per 20"
    );

    // Rebuilding from the log gives the same reports.
    let summary = pg
        .rebuild((0..).zip(audit_records(&audit).await).map(Ok))
        .await
        .unwrap();
    assert_eq!(summary.records, audit.len());
    assert_eq!(all_reports(&pg, &audit).await, a);
    db.drop_database(Some(&pg)).await;
}

async fn audit_records(audit: &MemoryAudit) -> Vec<AuditRecord> {
    use vowguard_store::AuditSource;
    audit
        .records_from(0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// A loopback TCP proxy to PostgreSQL that can be stopped (connections cut, port closed)
/// and started again on the same port: PostgreSQL "stopped" without stopping the server
/// other tests use.
struct Proxy {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        let listener = socket.listen(64).unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy {
            port,
            task: Some(task),
        }
    }

    /// Stops listening and cuts every connection (the JoinSet is dropped with the task).
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test]
async fn the_store_catches_up_from_the_audit_log_after_postgres_was_unreachable() {
    let db = common::PgDatabase::create("outage").await;
    let mut proxy = Proxy::start(0).await;
    let url = db
        .url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(url, db.url, "the test database URL goes through the proxy");
    let store = Store::connect_postgres(&url).await.unwrap();
    let audit = Arc::new(MemoryAudit::new());
    let all = records(900);
    audit.append(all[..300].to_vec()).await.unwrap();
    assert_eq!(store.catch_up(audit.as_ref()).await.unwrap(), 300);

    proxy.stop().await;
    // The pipeline keeps appending to the audit log while the store is down.
    audit.append(all[300..600].to_vec()).await.unwrap();
    let err = store.catch_up(audit.as_ref()).await.unwrap_err();
    assert_eq!(err.kind(), vowguard_core::ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("report store"), "{err}");
    assert!(!err.to_string().contains("password"), "{err}");
    audit.append(all[600..].to_vec()).await.unwrap();

    // The follower retries; once PostgreSQL is reachable again it applies everything.
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let follower = {
        let store = store.clone();
        let audit = audit.clone();
        let wake = wake.clone();
        tokio::spawn(async move {
            store
                .follow(audit, Duration::from_millis(50), wake, async {
                    let _ = stop_rx.await;
                })
                .await;
        })
    };
    let _proxy = Proxy::start(proxy.port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        wake.notify_one();
        if let Ok(Some(899)) = store.applied_through().await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    follower.await.unwrap();

    // Nothing lost or doubled: the same delivery report as a store fed without outage.
    let (reference, _dir) = sqlite_store().await;
    reference.catch_up(audit.as_ref()).await.unwrap();
    let params = ReportParams::parse(ReportKind::Delivery, "2026-06-01", "2026-07-01").unwrap();
    let now = at("2026-07-01T00:00:00Z");
    let mut a = serde_json::to_value(store.report_at(&params, None, now).await.unwrap()).unwrap();
    let mut b =
        serde_json::to_value(reference.report_at(&params, None, now).await.unwrap()).unwrap();
    a["evidence"]["backend"] = serde_json::Value::Null;
    b["evidence"]["backend"] = serde_json::Value::Null;
    assert_eq!(a, b);
    db.drop_database(Some(&store)).await;
}

#[tokio::test]
async fn migrations_are_versioned_and_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    store.apply_batch(0, &records(10)).await.unwrap();
    store.close().await;
    // Reopening migrates nothing again and keeps the data.
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 1);
    assert_eq!(store.applied_through().await.unwrap(), Some(9));
}

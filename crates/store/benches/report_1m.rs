//! Report generation over one million audit records (goal: under 10 s on the reference
//! machine; the platform's limit is 15 minutes).
//!
//! `cargo bench -p vowguard-store --bench report_1m` (SQLite in a temporary directory);
//! `VOWGUARD_BENCH_PG=postgres://postgres@127.0.0.1:5432/DB` runs it against PostgreSQL
//! too (the database must exist and be empty). `VOWGUARD_BENCH_RECORDS` changes the count.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use chrono::{DateTime, Utc};
use vowguard_core::AuditRecord;
use vowguard_store::Store;
use vowguard_store::fixture::Synthetic;
use vowguard_store::report::{ReportFormat, ReportKind, ReportParams};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

async fn run(label: &str, store: &Store, records: u64) {
    const STEP_MS: i64 = 2_000;
    let t = Instant::now();
    let summary = store
        .rebuild(
            (0..)
                .zip(Synthetic::new(42, start(), STEP_MS).take(records as usize))
                .map(Ok::<(u64, AuditRecord), vowguard_core::Error>),
        )
        .await
        .expect("rebuild");
    let rebuild = t.elapsed();
    println!(
        "{label}: rebuild-store from {} audit records: {:.2} s ({:.0} records/s)",
        summary.records,
        rebuild.as_secs_f64(),
        summary.records as f64 / rebuild.as_secs_f64()
    );
    let end = start() + chrono::Duration::milliseconds(STEP_MS * records as i64 + 1);
    let mut total = 0.0;
    for kind in [
        ReportKind::Delivery,
        ReportKind::Soc2,
        ReportKind::Gdpr,
        ReportKind::Incidents,
    ] {
        let params = ReportParams::new(kind, start(), end).expect("params");
        let t = Instant::now();
        let report = store.report(&params, None).await.expect("report");
        let computed = t.elapsed();
        let html = report.render(ReportFormat::Html).expect("html");
        let json = report.render(ReportFormat::Json).expect("json");
        let all = t.elapsed();
        total += all.as_secs_f64();
        println!(
            "{label}: report {:<9} over {records} audit records: computed {:.2} s, + HTML ({} KiB) and JSON ({} KiB) {:.2} s",
            kind.as_str(),
            computed.as_secs_f64(),
            html.len() / 1024,
            json.len() / 1024,
            all.as_secs_f64()
        );
    }
    println!("{label}: all four reports: {total:.2} s (goal: each under 10 s)");
}

#[tokio::main]
async fn main() {
    let records: u64 = std::env::var("VOWGUARD_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(&dir.path().join("store.db"))
        .await
        .expect("open sqlite");
    run("sqlite", &store, records).await;
    if let Ok(url) = std::env::var("VOWGUARD_BENCH_PG") {
        let store = Store::connect_postgres(&url).await.expect("connect pg");
        run("postgres", &store, records).await;
    }
}

//! Audit log figures: append throughput (group commit) and `verify` over a large log.
//!
//! `cargo run --release -p vowguard-audit --example audit_bench [append|verify|all]`
//! (`VOWGUARD_AUDIT_BENCH_ENTRIES`, default 10 000 000, sizes the verify run). Prints
//! measurements; never fails on a number.
#![allow(clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::SigningKey;
use vowguard_audit::{
    AuditLog, AuditOptions, AuditReader, NoteSigner, export_proof, verify_dir, verify_proof,
};
use vowguard_core::{AuditRecord, AuditTrail, DeliveryOutcome, EventDigest};

fn signer() -> NoteSigner {
    NoteSigner::new("bench.vowguard/audit", SigningKey::from_bytes(&[42; 32])).unwrap()
}

fn open(dir: &std::path::Path) -> AuditLog {
    AuditLog::open(
        AuditOptions::new(dir, signer()).with_checkpoint_interval(Duration::from_secs(1)),
    )
    .unwrap()
}

/// The records the pipeline writes for one group of `n` events: one `events_accepted`
/// and one `delivered` (one sink).
fn group(start: u64, n: u64) -> Vec<AuditRecord> {
    let now = Utc::now();
    let accepted = AuditRecord::EventsAccepted {
        at: now,
        source: "http".into(),
        events: (start..start + n)
            .map(|i| EventDigest {
                id: format!("0190f3a2-7c1e-7d4b-9a31-{i:012x}"),
                sha256: format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
                timestamp: now,
            })
            .collect(),
    };
    let delivered = AuditRecord::Delivered {
        at: now,
        sink: "splunk".into(),
        events: (start..start + n)
            .map(|i| DeliveryOutcome {
                id: format!("0190f3a2-7c1e-7d4b-9a31-{i:012x}"),
                result: "delivered".into(),
                reason: None,
                latency_ms: 12,
            })
            .collect(),
    };
    vec![accepted, delivered]
}

async fn append_bench() {
    println!("## Audit append (events_accepted + delivered records, group commit, fdatasync)\n");
    println!(
        "| events per record | concurrent appenders | events/s | records/s | bytes/event |\n|---:|---:|---:|---:|---:|"
    );
    for (per_record, appenders) in [(1u64, 8usize), (64, 4), (256, 4), (1024, 2)] {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path());
        // Fewer events for one-event records: each group still costs two fdatasyncs.
        let events_total: u64 = if per_record == 1 { 20_000 } else { 400_000 };
        let per_task = events_total / appenders as u64;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..appenders {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while i < per_task {
                    let n = per_record.min(per_task - i);
                    log.append(group(t as u64 * per_task + i, n)).await.unwrap();
                    i += n;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let records = log.len();
        log.close().await.unwrap();
        let bytes = std::fs::metadata(tmp.path().join("entries.log"))
            .unwrap()
            .len();
        println!(
            "| {per_record} | {appenders} | {:.0} | {:.0} | {:.0} |",
            events_total as f64 / secs,
            records as f64 / secs,
            bytes as f64 / events_total as f64
        );
    }
    println!();
}

async fn verify_bench() {
    let entries: u64 = std::env::var("VOWGUARD_AUDIT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    println!("## verify over {entries} entries\n");
    let tmp = tempfile::tempdir_in(
        std::env::var("VOWGUARD_AUDIT_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let log = open(tmp.path());
    let started = Instant::now();
    let chunk = 20_000u64;
    let mut i = 0;
    let now = Utc::now();
    while i < entries {
        let n = chunk.min(entries - i);
        let payloads = (i..i + n)
            .map(|k| {
                serde_json::to_vec(&AuditRecord::Admin {
                    at: now,
                    actor: "bench".into(),
                    action: "bench.append".into(),
                    target: format!("entry-{k}"),
                    result: "ok".into(),
                })
                .unwrap()
            })
            .collect();
        log.append_raw(payloads).await.unwrap();
        i += n;
        if i % 2_000_000 == 0 || i == entries {
            log.checkpoint().await.unwrap();
        }
    }
    let build = started.elapsed().as_secs_f64();
    log.close().await.unwrap();
    drop(log);
    let bytes = std::fs::metadata(tmp.path().join("entries.log"))
        .unwrap()
        .len();
    println!(
        "built: {entries} entries, {:.0} MB, in {build:.1} s ({:.0} entries/s, chunks of {chunk})",
        bytes as f64 / 1e6,
        entries as f64 / build
    );
    let started = Instant::now();
    let reopened = open(tmp.path());
    println!(
        "open (recovery check + frontier from tiles): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    reopened.close().await.unwrap();
    drop(reopened);
    let started = Instant::now();
    let report = verify_dir(tmp.path(), signer().verifier()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(report.is_ok(), "{:?}", report.problems);
    println!(
        "verify: {} entries, {} checkpoints, ok, in {secs:.1} s ({:.0} entries/s, {:.0} MB/s)",
        report.entries,
        report.checkpoints,
        report.entries as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    let reader = AuditReader::open(tmp.path()).unwrap();
    let started = Instant::now();
    let bundle = export_proof(&reader, entries / 3).unwrap();
    let export = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    verify_proof(&bundle, signer().verifier(), None).unwrap();
    println!(
        "proof of entry {}: exported in {export:.1} ms ({} hashes), verified offline in {:.2} ms",
        entries / 3,
        bundle.lines().count() - 7,
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let n = reader.records(0).unwrap().count();
    println!(
        "read every record (AuditReader::records): {n} in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if matches!(which.as_str(), "append" | "all") {
        append_bench().await;
    }
    if matches!(which.as_str(), "verify" | "all") {
        verify_bench().await;
    }
}

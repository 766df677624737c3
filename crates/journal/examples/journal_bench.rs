//! Journal append throughput, durable (fsynced) with group commit, for ~600-byte events,
//! compared with redb (the same records inserted in group-committed transactions).
//!
//! ```text
//! cargo run --release -p vowguard-journal --example journal_bench
//! JOURNAL_BENCH_RECORDS=100000 JOURNAL_BENCH_DIR=/var/tmp cargo run --release -p vowguard-journal --example journal_bench
//! ```
//!
//! Each scenario runs `tasks` concurrent tokio tasks, each appending `batch` records per
//! call until `JOURNAL_BENCH_RECORDS` (default 200 000) records are stored. "+reader" runs a
//! reader that drains and commits at the same time (segments are deleted behind it).
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vowguard_journal::{Journal, JournalConfig};

const RECORD_BYTES: usize = 600;

fn event(i: u64) -> Vec<u8> {
    // A JSON-ish event of exactly RECORD_BYTES bytes.
    let mut v = format!(
        r#"{{"id":"0190c2f5-{i:012}","timestamp":"2025-06-14T14:03:11Z","category":"authentication","action":"login","outcome":"failure","severity":"high","user_id":"u-{i}","source_ip":"203.0.113.7","message":""#
    )
    .into_bytes();
    v.resize(RECORD_BYTES - 2, b'x');
    v.extend_from_slice(b"\"}");
    v
}

struct Measurement {
    name: String,
    records: u64,
    elapsed: Duration,
    commits: u64,
}

impl Measurement {
    fn print(&self) {
        let secs = self.elapsed.as_secs_f64();
        let rps = self.records as f64 / secs;
        println!(
            "{:<44} {:>10.0} rec/s {:>8.1} MB/s {:>8.0} fsync/s {:>7.1} rec/fsync",
            self.name,
            rps,
            rps * RECORD_BYTES as f64 / 1e6,
            self.commits as f64 / secs,
            self.records as f64 / self.commits.max(1) as f64,
        );
    }
}

async fn bench_journal(
    dir: &Path,
    total: u64,
    tasks: u64,
    batch: u64,
    with_reader: bool,
) -> Measurement {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let config = JournalConfig::new(sub.path()).with_max_bytes(64 << 30);
    let (journal, _) = Journal::open(config).await.unwrap();
    let reader = with_reader.then(|| {
        let mut r = journal.reader("bench").unwrap();
        tokio::spawn(async move {
            let mut n = 0u64;
            while n < total {
                let b = r.next_batch(1000, 1 << 20).await.unwrap();
                if b.is_empty() {
                    break;
                }
                n += b.len() as u64;
                r.commit(b.last().unwrap().0 + 1).unwrap();
            }
        })
    });
    let fsyncs_before = journal.stats().fsyncs;
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let journal = journal.clone();
        let counter = Arc::clone(&counter);
        handles.push(tokio::spawn(async move {
            loop {
                let base = counter.fetch_add(batch, Ordering::Relaxed);
                if base >= total {
                    break;
                }
                let n = batch.min(total - base);
                let records = (base..base + n).map(event).collect();
                journal.append(records).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = start.elapsed();
    let stats = journal.stats();
    assert_eq!(stats.next_seq, total);
    if let Some(r) = reader {
        r.await.unwrap();
    }
    journal.close().await.unwrap();
    Measurement {
        name: format!(
            "journal  {tasks:>3} tasks x {batch:>3} rec/append{}",
            if with_reader { " +reader" } else { "" }
        ),
        records: total,
        elapsed,
        commits: stats.fsyncs - fsyncs_before,
    }
}

type RedbRequest = (Vec<Vec<u8>>, tokio::sync::oneshot::Sender<()>);

const TABLE: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("events");

/// The same group commit as the journal's writer, with one redb write transaction
/// (durability Immediate, the default) per group.
fn redb_writer(
    db: &redb::Database,
    rx: &std::sync::mpsc::Receiver<RedbRequest>,
    commits: &AtomicU64,
) {
    let mut key = 0u64;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for (records, _) in &group {
                for r in records {
                    table.insert(key, r.as_slice()).unwrap();
                    key += 1;
                }
            }
        }
        txn.commit().unwrap();
        commits.fetch_add(1, Ordering::Relaxed);
        for (_, reply) in group {
            let _ = reply.send(());
        }
    }
}

async fn bench_redb(dir: &Path, total: u64, tasks: u64, batch: u64) -> Measurement {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let db = redb::Database::create(sub.path().join("journal.redb")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<RedbRequest>();
    let commits = Arc::new(AtomicU64::new(0));
    let writer_commits = Arc::clone(&commits);
    let writer = std::thread::spawn(move || redb_writer(&db, &rx, &writer_commits));
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let tx = tx.clone();
        let counter = Arc::clone(&counter);
        handles.push(tokio::spawn(async move {
            loop {
                let base = counter.fetch_add(batch, Ordering::Relaxed);
                if base >= total {
                    break;
                }
                let n = batch.min(total - base);
                let records = (base..base + n).map(event).collect();
                let (reply, done) = tokio::sync::oneshot::channel();
                tx.send((records, reply)).unwrap();
                done.await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = start.elapsed();
    drop(tx);
    writer.join().unwrap();
    Measurement {
        name: format!("redb     {tasks:>3} tasks x {batch:>3} rec/append"),
        records: total,
        elapsed,
        commits: commits.load(Ordering::Relaxed),
    }
}

#[tokio::main]
async fn main() {
    let total: u64 = std::env::var("JOURNAL_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::var_os("JOURNAL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!(
        "{total} records of {RECORD_BYTES} bytes per scenario, every append durable (fdatasync / redb Immediate), in {}",
        dir.display()
    );
    let scenarios = [(8, 64), (32, 16), (256, 1)];
    for (tasks, batch) in scenarios {
        bench_journal(&dir, total, tasks, batch, false)
            .await
            .print();
    }
    bench_journal(&dir, total, 32, 16, true).await.print();
    for (tasks, batch) in scenarios {
        bench_redb(&dir, total, tasks, batch).await.print();
    }
}

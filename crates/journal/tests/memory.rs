//! The in-memory journal: the same readers and bounds as on disk, nothing on disk.

use std::sync::Arc;
use std::time::Duration;

use vowguard_journal::{Journal, JournalConfig, JournalError, WhenFull};

fn config(max_bytes: u64, when_full: WhenFull) -> JournalConfig {
    // The directory is never created: the in-memory journal touches no file.
    JournalConfig::new("/nonexistent/vowguard-memory-journal")
        .with_max_bytes(max_bytes)
        .with_when_full(when_full)
}

fn record(i: u64) -> Vec<u8> {
    format!("event-{i:04}-{}", "x".repeat(90)).into_bytes()
}

#[tokio::test]
async fn readers_read_in_order_at_their_own_positions_and_commits_free_memory() {
    let journal = Journal::in_memory(config(1 << 20, WhenFull::Block));
    assert!(journal.is_in_memory());
    let mut a = journal.reader("a").unwrap();
    let mut b = journal.reader("b").unwrap();
    assert_eq!(
        journal.append((0..10).map(record).collect()).await.unwrap(),
        0..10
    );
    let batch = a.next_batch(4, 1 << 20).await.unwrap();
    assert_eq!(batch, (0..4).map(|i| (i, record(i))).collect::<Vec<_>>());
    let records = b.next_records(100, 1 << 20).await.unwrap();
    assert_eq!(records.len(), 10);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.seq == i as u64 && *r.stored == record(i as u64)[..])
    );
    let full = journal.stats();
    assert_eq!(full.records, 10);
    assert!(full.bytes > 0);
    assert_eq!(full.segments, 0);
    assert_eq!(full.fsyncs, 0);

    // Memory is freed only once every reader has passed a record.
    b.commit(10).unwrap();
    assert_eq!(
        journal.stats().bytes,
        full.bytes,
        "reader a still needs them"
    );
    a.commit(4).unwrap();
    let stats = journal.stats();
    assert_eq!(stats.first_seq, 4);
    assert!(stats.bytes < full.bytes);
    // A rewound reader reads again from its commit.
    a.rewind();
    assert_eq!(a.next_batch(100, 1 << 20).await.unwrap()[0].0, 4);
    a.commit(10).unwrap();
    assert_eq!(journal.stats().bytes, 0);
    assert_eq!(journal.stats().first_seq, 10);

    // A new reader starts at the oldest retained record.
    journal.append(vec![record(10)]).await.unwrap();
    let mut c = journal.reader("c").unwrap();
    assert_eq!(
        c.next_batch(10, 1 << 20).await.unwrap(),
        vec![(10, record(10))]
    );
    journal.close().await.unwrap();
    assert!(matches!(
        journal.append(vec![record(11)]).await,
        Err(JournalError::Closed)
    ));
    assert!(
        c.next_batch(10, 1 << 20).await.unwrap().is_empty(),
        "closed: nothing more"
    );
    assert!(!std::path::Path::new("/nonexistent/vowguard-memory-journal").exists());
}

#[tokio::test]
async fn a_full_journal_refuses_with_drop_newest() {
    let journal = Journal::in_memory(config(1000, WhenFull::DropNewest));
    let mut reader = journal.reader("sink").unwrap();
    let mut stored = 0;
    loop {
        match journal.append(vec![record(stored)]).await {
            Ok(_) => stored += 1,
            Err(JournalError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(stored > 0 && stored < 10, "{stored}");
    let stats = journal.stats();
    assert!(stats.bytes <= 1000, "{stats:?}");
    assert_eq!(stats.dropped_full, 1);
    // Committing makes room again.
    reader.next_batch(100, 1 << 20).await.unwrap();
    reader.commit(stored).unwrap();
    assert_eq!(
        journal.append(vec![record(stored)]).await.unwrap(),
        stored..stored + 1
    );
    // A record larger than the whole bound can never fit.
    assert!(matches!(
        journal.append(vec![vec![0; 2000]]).await,
        Err(JournalError::TooLarge { .. })
    ));
}

/// Appends one record at a time until an append has to wait; returns how many were
/// stored and the waiting append, running.
fn fill(
    journal: &Arc<Journal>,
    mut next: u64,
) -> (
    u64,
    tokio::task::JoinHandle<Result<std::ops::Range<u64>, JournalError>>,
) {
    loop {
        let j = journal.clone();
        let mut append = Box::pin(async move { j.append(vec![record(next)]).await });
        match futures::FutureExt::now_or_never(&mut append) {
            Some(result) => {
                result.unwrap();
                next += 1;
            }
            None => return (next, tokio::spawn(append)),
        }
    }
}

async fn wait_blocked(journal: &Journal) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !journal.stats().appends_blocked {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the append never blocked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_blocks_until_readers_commit_and_close_ends_the_wait() {
    let journal = Arc::new(Journal::in_memory(config(1000, WhenFull::Block)));
    let mut reader = journal.reader("sink").unwrap();
    let (stored, appended) = fill(&journal, 0);
    wait_blocked(&journal).await;
    assert!(!appended.is_finished());
    reader.next_batch(100, 1 << 20).await.unwrap();
    reader.commit(stored).unwrap();
    let range = tokio::time::timeout(Duration::from_secs(30), appended)
        .await
        .expect("the append resumes once memory is freed")
        .unwrap()
        .unwrap();
    assert_eq!(range, stored..stored + 1);
    assert!(!journal.stats().appends_blocked);

    // Fill it again; closing ends the wait with an error.
    let (_, waiting) = fill(&journal, stored + 1);
    wait_blocked(&journal).await;
    journal.close().await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("close ends the wait")
        .unwrap();
    assert!(matches!(result, Err(JournalError::Closed)), "{result:?}");
}

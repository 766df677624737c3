//! Tests that need the crate's internals: disk-full fault injection.

use std::time::Duration;

use super::*;

fn config(dir: &std::path::Path, when_full: WhenFull) -> JournalConfig {
    JournalConfig::new(dir).with_when_full(when_full)
}

fn record(i: u64) -> Vec<u8> {
    format!("event-{i:04}-{}", "x".repeat(40)).into_bytes()
}

async fn read_all(journal: &Journal, name: &str) -> Vec<(u64, Vec<u8>)> {
    let mut reader = journal.reader(name).unwrap();
    let end = journal.stats().next_seq;
    let mut out = Vec::new();
    while reader.position() < end {
        out.extend(reader.next_batch(1000, 1 << 20).await.unwrap());
    }
    out
}

#[tokio::test]
async fn disk_full_with_drop_newest_refuses_counts_and_leaves_the_log_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(config(dir.path(), WhenFull::DropNewest))
        .await
        .unwrap();
    assert_eq!(
        journal.append(vec![record(0), record(1)]).await.unwrap(),
        0..2
    );

    journal.fail_next_writes(1);
    let err = journal
        .append(vec![record(2), record(3), record(4)])
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Full), "{err:?}");
    assert_eq!(journal.stats().dropped_full, 3);

    // The half-written group was cut off: the next append reuses its sequence numbers and
    // the segment holds exactly the acknowledged records.
    assert_eq!(journal.append(vec![record(5)]).await.unwrap(), 2..3);
    let seg = recover::segment_paths(dir.path()).pop().unwrap();
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        journal.stats().bytes,
        "no partial bytes left behind"
    );
    journal.close().await.unwrap();
    drop(journal);

    let (journal, recovery) = Journal::open(config(dir.path(), WhenFull::DropNewest))
        .await
        .unwrap();
    assert_eq!(recovery.torn_records_dropped, 0);
    assert_eq!(recovery.records, 3);
    let all = read_all(&journal, "s").await;
    let payloads: Vec<Vec<u8>> = all.into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, vec![record(0), record(1), record(5)]);
}

#[tokio::test]
async fn disk_full_with_block_retries_until_the_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(config(dir.path(), WhenFull::Block))
        .await
        .unwrap();
    journal.append(vec![record(0)]).await.unwrap();
    journal.fail_next_writes(3);
    let range = tokio::time::timeout(
        Duration::from_secs(60),
        journal.append(vec![record(1), record(2)]),
    )
    .await
    .expect("the blocked append finishes once the disk has space")
    .unwrap();
    assert_eq!(range, 1..3);
    assert_eq!(journal.stats().dropped_full, 0);
    assert_eq!(journal.inner.shared.fail_writes.load(Ordering::Acquire), 0);
    journal.close().await.unwrap();
    drop(journal);

    let (journal, recovery) = Journal::open(config(dir.path(), WhenFull::Block))
        .await
        .unwrap();
    assert_eq!(recovery.torn_records_dropped, 0);
    let payloads: Vec<Vec<u8>> = read_all(&journal, "s")
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(payloads, vec![record(0), record(1), record(2)]);
}

#[tokio::test]
async fn close_ends_a_disk_full_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(config(dir.path(), WhenFull::Block))
        .await
        .unwrap();
    journal.fail_next_writes(u32::MAX);
    let j2 = journal.clone();
    let pending = tokio::spawn(async move { j2.append(vec![record(0)]).await });
    // Wait until the writer has hit the failure at least once.
    tokio::time::timeout(Duration::from_secs(30), async {
        while journal.inner.shared.fail_writes.load(Ordering::Acquire) == u32::MAX {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    journal.close().await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(res.is_err(), "{res:?}");
    assert!(matches!(
        journal.append(vec![record(1)]).await,
        Err(JournalError::Closed)
    ));
}

//! The in-memory decoded tail: readers at the tail get the appended events without a file
//! read; readers behind it, readers after a restart and records appended as bytes get the
//! stored form; the tail is bounded and freed as readers commit.

use std::sync::Arc;

use vowguard_core::{Category, Event, Severity};
use vowguard_journal::{Journal, JournalConfig, JournalReader};

fn event(i: u64) -> Arc<Event> {
    let mut e = Event::new(
        Category::Authentication,
        format!("login-{i}"),
        Severity::Low,
    );
    e.id = format!("evt-{i}");
    Arc::new(e)
}

fn stored(e: &Event) -> Vec<u8> {
    serde_json::to_vec(e).unwrap()
}

async fn append(journal: &Journal, range: std::ops::Range<u64>) {
    let events: Vec<Arc<Event>> = range.map(event).collect();
    let records = events.iter().map(|e| stored(e).into()).collect();
    journal.append_decoded(records, events).await.unwrap();
}

/// Reads up to `end`; returns `(seq, decoded?, event id)` per record.
async fn read_to(reader: &mut JournalReader, end: u64) -> Vec<(u64, bool, String)> {
    let mut out = Vec::new();
    while reader.position() < end {
        let batch = reader.next_records(5, 1 << 20).await.unwrap();
        assert!(!batch.is_empty());
        for record in batch {
            let from_disk: Event = serde_json::from_slice(&record.stored).unwrap();
            if let Some(event) = &record.event {
                assert_eq!(
                    **event, from_disk,
                    "the decoded event is what the bytes say"
                );
            }
            out.push((record.seq, record.event.is_some(), from_disk.id));
        }
    }
    out
}

fn ids(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("evt-{i}")).collect()
}

#[tokio::test]
async fn readers_at_the_tail_get_decoded_events_and_the_rest_comes_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig::new(dir.path());
    let (journal, _) = Journal::open(config.clone()).await.unwrap();
    let mut reader = journal.reader("sink.a").unwrap();
    append(&journal, 0..20).await;
    let got = read_to(&mut reader, 20).await;
    assert!(got.iter().all(|(_, decoded, _)| *decoded), "{got:?}");
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        ids(0..20)
    );
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );

    // Records appended as bytes are read from the file.
    journal.append(vec![stored(&event(20))]).await.unwrap();
    let got = read_to(&mut reader, 21).await;
    assert_eq!(got, [(20, false, "evt-20".to_owned())]);

    // After a rewind, what the tail still holds comes back decoded again.
    reader.commit(10).unwrap();
    reader.rewind();
    append(&journal, 21..25).await;
    let got = read_to(&mut reader, 25).await;
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        ids(10..25)
    );
    assert!(got[..10].iter().all(|g| g.1), "{got:?}");
    assert!(!got[10].1, "seq 20 was appended as bytes");
    // Past it, the decoded tail serves again.
    append(&journal, 25..30).await;
    let got = read_to(&mut reader, 30).await;
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        ids(25..30)
    );
    assert!(got.iter().all(|g| g.1), "{got:?}");
    reader.commit(30).unwrap();
    drop(reader);
    journal.close().await.unwrap();
    drop(journal);

    // After a restart nothing is in memory: everything uncommitted is read from disk.
    let (journal, _) = Journal::open(config).await.unwrap();
    let mut reader = journal.reader("sink.b").unwrap();
    let got = read_to(&mut reader, 25).await;
    assert!(got.iter().all(|g| !g.1));
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        ids(0..25)
    );
    journal.close().await.unwrap();
}

#[tokio::test]
async fn the_tail_is_bounded_and_a_lagging_reader_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // What one decoded record counts against the bound: its bytes, the event's struct and
    // about its bytes again for the event's strings (counting the bytes alone would let
    // the tail hold three times as many).
    let one = 2 * stored(&event(0)).len() as u64 + std::mem::size_of::<Event>() as u64;
    // About ten records.
    let config = JournalConfig::new(dir.path()).with_tail_cache_bytes(one * 10 + one / 2);
    let (journal, _) = Journal::open(config).await.unwrap();
    let mut fast = journal.reader("sink.fast").unwrap();
    let mut slow = journal.reader("sink.slow").unwrap();
    for start in (0..100).step_by(4) {
        append(&journal, start..start + 4).await;
        let got = read_to(&mut fast, start + 4).await;
        assert!(got.iter().all(|g| g.1), "{got:?}");
        fast.commit(start + 4).unwrap();
    }
    // The slow reader is 100 records behind: the first ones are no longer in memory.
    let got = read_to(&mut slow, 100).await;
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        ids(0..100)
    );
    let decoded = got.iter().filter(|g| g.1).count();
    assert!(!got[0].1, "the oldest records come from disk");
    assert!(
        decoded <= 11,
        "the tail holds at most ~10 records, {decoded} came decoded"
    );
    journal.close().await.unwrap();
}

#[tokio::test]
async fn a_zero_bound_keeps_nothing_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig::new(dir.path()).with_tail_cache_bytes(0);
    let (journal, _) = Journal::open(config).await.unwrap();
    let mut reader = journal.reader("sink.a").unwrap();
    append(&journal, 0..8).await;
    let got = read_to(&mut reader, 8).await;
    assert!(got.iter().all(|g| !g.1));
    assert_eq!(
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
        ids(0..8)
    );
    journal.close().await.unwrap();
}

#[tokio::test]
async fn the_byte_limit_applies_to_decoded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(JournalConfig::new(dir.path())).await.unwrap();
    let mut reader = journal.reader("sink.a").unwrap();
    append(&journal, 0..10).await;
    let one = stored(&event(0)).len();
    let batch = reader.next_records(100, one * 3 + 1).await.unwrap();
    assert_eq!(batch.len(), 3);
    assert!(batch[0].event.is_some());
    // Always at least one record.
    let batch = reader.next_records(100, 1).await.unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].seq, 3);
    journal.close().await.unwrap();
}

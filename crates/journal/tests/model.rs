//! Model-based property test: random sequences of append / read / commit / rewind /
//! restart (close + reopen) / crash (drop without close + reopen) against an in-memory
//! model of the journal.
//!
//! Invariants checked after every step:
//! * appends get consecutive sequence numbers, continuing across restarts and crashes;
//! * every reader reads exactly the appended bytes, in order, from its position;
//! * after a clean restart a reader resumes exactly at its last commit; after a crash
//!   somewhere between its last durable commit and its last commit (at-least-once);
//! * the oldest retained record is never past any reader's commit, so nothing a reader
//!   still needs is deleted.

use futures::FutureExt;
use proptest::prelude::*;
use vowguard_journal::{Journal, JournalConfig, JournalReader, WhenFull};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Vec<u8>>),
    Read {
        reader: usize,
        max_records: usize,
        max_bytes: usize,
    },
    /// Commit `percent` of the way from the last commit to the read position.
    Commit {
        reader: usize,
        percent: u64,
    },
    Rewind(usize),
    Restart,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6)
            .prop_map(Op::Append),
        5 => (0..2usize, 1..10usize, 1..800usize).prop_map(|(reader, max_records, max_bytes)| Op::Read {
            reader,
            max_records,
            max_bytes,
        }),
        3 => (0..2usize, 0..=100u64).prop_map(|(reader, percent)| Op::Commit { reader, percent }),
        1 => (0..2usize).prop_map(Op::Rewind),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
    ]
}

#[derive(Debug, Default, Clone, Copy)]
struct ModelReader {
    read_pos: u64,
    committed: u64,
    /// A commit known to be durable (the reader resumed there, or the journal was closed).
    durable: u64,
}

const NAMES: [&str; 2] = ["splunk", "elastic"];

fn config(dir: &std::path::Path) -> JournalConfig {
    // Tiny segments so that rolling and deletion happen often.
    JournalConfig::new(dir)
        .with_segment_bytes(4096)
        .with_max_bytes(64 << 20)
        .with_when_full(WhenFull::Block)
}

async fn open(dir: &std::path::Path) -> (Journal, Vec<JournalReader>) {
    let (journal, recovery) = Journal::open(config(dir)).await.unwrap();
    assert_eq!(recovery.torn_records_dropped, 0);
    let readers = NAMES.iter().map(|n| journal.reader(n).unwrap()).collect();
    (journal, readers)
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut model = [ModelReader::default(); 2];
    let (mut journal, mut readers) = open(dir.path()).await;

    for op in ops {
        match op {
            Op::Append(batch) => {
                let n = batch.len() as u64;
                let range = journal.append(batch.clone()).await.unwrap();
                let next = records.len() as u64;
                assert_eq!(range, next..next + n, "consecutive sequence numbers");
                records.extend(batch);
            }
            Op::Read {
                reader,
                max_records,
                max_bytes,
            } => {
                let m = &mut model[reader];
                let r = &mut readers[reader];
                assert_eq!(r.position(), m.read_pos);
                if m.read_pos == records.len() as u64 {
                    assert!(
                        r.next_batch(max_records, max_bytes)
                            .now_or_never()
                            .is_none(),
                        "nothing to read, so next_batch must wait"
                    );
                    continue;
                }
                let batch = r.next_batch(max_records, max_bytes).await.unwrap();
                assert!(!batch.is_empty() && batch.len() <= max_records);
                if batch.len() > 1 {
                    let bytes: usize = batch.iter().map(|(_, p)| p.len()).sum();
                    assert!(bytes <= max_bytes, "{bytes} > {max_bytes}");
                }
                for (seq, payload) in batch {
                    assert_eq!(seq, m.read_pos, "in order, no gaps");
                    assert_eq!(
                        payload, records[seq as usize],
                        "exact bytes of record {seq}"
                    );
                    m.read_pos += 1;
                }
            }
            Op::Commit { reader, percent } => {
                let m = &mut model[reader];
                let upto = m.committed + (m.read_pos - m.committed) * percent / 100;
                readers[reader].commit(upto).unwrap();
                m.committed = m.committed.max(upto);
                assert_eq!(readers[reader].committed(), m.committed);
            }
            Op::Rewind(reader) => {
                readers[reader].rewind();
                model[reader].read_pos = model[reader].committed;
            }
            Op::Restart => {
                journal.close().await.unwrap();
                drop(readers);
                drop(journal);
                (journal, readers) = open(dir.path()).await;
                for (m, r) in model.iter_mut().zip(&readers) {
                    assert_eq!(
                        r.position(),
                        m.committed,
                        "clean restart resumes at the commit"
                    );
                    m.read_pos = m.committed;
                    m.durable = m.committed;
                }
            }
            Op::Crash => {
                drop(readers);
                drop(journal);
                (journal, readers) = open(dir.path()).await;
                for (m, r) in model.iter_mut().zip(&readers) {
                    let p = r.position();
                    assert!(
                        m.durable <= p && p <= m.committed,
                        "after a crash the reader resumes between its durable commit {} and its last commit {}, got {p}",
                        m.durable,
                        m.committed
                    );
                    *m = ModelReader {
                        read_pos: p,
                        committed: p,
                        durable: p,
                    };
                }
            }
        }
        let stats = journal.stats();
        assert_eq!(stats.next_seq, records.len() as u64);
        let min_committed = model.iter().map(|m| m.committed).min().unwrap();
        assert!(
            stats.first_seq <= min_committed,
            "record {} deleted while a reader still needs it: {stats:?}",
            stats.first_seq
        );
    }

    // Finally every reader reads everything from its commit to the end.
    for (m, r) in model.iter().zip(readers.iter_mut()) {
        r.rewind();
        let mut seq = m.committed;
        while seq < records.len() as u64 {
            for (s, payload) in r.next_batch(16, 4096).await.unwrap() {
                assert_eq!(s, seq);
                assert_eq!(payload, records[s as usize]);
                seq += 1;
            }
        }
    }
    journal.close().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn journal_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}

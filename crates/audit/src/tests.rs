//! End-to-end tests of the log files: appends, recovery, tampering, proofs.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ed25519_dalek::SigningKey;
use vowguard_core::{AuditRecord, AuditTrail};

use crate::format::{FRAME_HEADER, LOG_FILE, LOG_MAGIC};
use crate::*;

fn signer(seed: u8) -> NoteSigner {
    NoteSigner::new("vowguard.test/audit", SigningKey::from_bytes(&[seed; 32])).unwrap()
}

fn options(dir: &Path, seed: u8) -> AuditOptions {
    AuditOptions {
        dir: dir.to_path_buf(),
        signer: signer(seed),
        checkpoint_interval: Duration::from_secs(3600),
        witness: Witness::default(),
    }
}

fn record(i: u64) -> AuditRecord {
    AuditRecord::Admin {
        at: Utc.timestamp_opt(1_780_000_000 + i as i64, 0).unwrap(),
        actor: "cli:test".into(),
        action: "dlq.replay".into(),
        target: format!("target-{i}"),
        result: "ok".into(),
    }
}

/// A log of `n` entries with checkpoints at every `every` entries and at the end.
async fn build(dir: &Path, n: u64, every: u64) -> AuditLog {
    let log = AuditLog::open(options(dir, 1)).unwrap();
    for i in 0..n {
        log.append(vec![record(i)]).await.unwrap();
        if (i + 1) % every == 0 {
            log.checkpoint().await.unwrap();
        }
    }
    log.checkpoint().await.unwrap();
    log
}

/// The frames of the log file.
fn frames(dir: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(dir.join(LOG_FILE)).unwrap();
    let mut pos = LOG_MAGIC.len();
    let mut out = Vec::new();
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(bytes[pos..pos + FRAME_HEADER + len].to_vec());
        pos += FRAME_HEADER + len;
    }
    out
}

fn write_frames(dir: &Path, frames: &[Vec<u8>]) {
    let mut bytes = LOG_MAGIC.to_vec();
    for f in frames {
        bytes.extend_from_slice(f);
    }
    std::fs::write(dir.join(LOG_FILE), bytes).unwrap();
}

fn problems(dir: &Path) -> Vec<Problem> {
    verify_dir(dir, signer(1).verifier()).unwrap().problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_durable_in_order_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(options(tmp.path(), 1)).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut firsts = Vec::new();
            for i in 0..50u64 {
                let batch = vec![record(t * 1000 + i * 2), record(t * 1000 + i * 2 + 1)];
                firsts.push(log.append(batch).await.unwrap());
            }
            firsts
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    // Every batch got its own pair of indices: 0, 2, 4, ...
    assert_eq!(all, (0..800).step_by(2).collect::<Vec<u64>>());
    assert_eq!(log.len(), 800);
    let cp = log.close().await.unwrap().unwrap();
    assert_eq!(cp.size, 800);
    assert!(
        log.append(vec![record(1)]).await.is_err(),
        "closed log refuses appends"
    );

    let reader = AuditReader::open(tmp.path()).unwrap();
    assert_eq!(reader.len().unwrap(), 800);
    let records: Vec<_> = reader
        .records(0)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 800);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, (idx, _))| *idx == i as u64)
    );
    let from_700: Vec<_> = reader.records(700).unwrap().map(|r| r.unwrap().0).collect();
    assert_eq!(from_700, (700..800).collect::<Vec<_>>());
    assert_eq!(reader.latest_checkpoint().unwrap().unwrap(), cp);
    signer(1).verifier().verify(&cp.note).unwrap();

    let report = verify_dir(tmp.path(), signer(1).verifier()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.entries, report.checkpoints), (800, 1));
}

#[tokio::test]
async fn reopening_continues_the_tree_and_checkpoints_stay_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let log = build(tmp.path(), 300, 100).await;
    let first = log.close().await.unwrap().unwrap();
    drop(log);
    let log = AuditLog::open(options(tmp.path(), 1)).unwrap();
    assert_eq!(log.len(), 300);
    assert_eq!(log.latest_checkpoint().unwrap(), first);
    assert_eq!(log.append(vec![record(300)]).await.unwrap(), 300);
    let second = log.close().await.unwrap().unwrap();
    assert_eq!(second.size, 301);
    let report = verify_dir(tmp.path(), signer(1).verifier()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.checkpoints, 4); // 100, 200, 300 (not repeated at reopen), 301
}

#[tokio::test]
async fn a_torn_tail_is_cut_on_open_and_covered_entries_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 10, 5).await);
    // A crash mid-write: half a frame at the end, never indexed nor acknowledged.
    let mut bytes = std::fs::read(tmp.path().join(LOG_FILE)).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
    std::fs::write(tmp.path().join(LOG_FILE), &bytes).unwrap();
    assert!(
        problems(tmp.path())
            .iter()
            .any(|p| matches!(p, Problem::TornTail { index: 10, .. }))
    );
    let log = AuditLog::open(options(tmp.path(), 1)).unwrap();
    assert_eq!(log.len(), 10);
    assert_eq!(
        std::fs::metadata(tmp.path().join(LOG_FILE)).unwrap().len(),
        good as u64
    );
    assert_eq!(log.append(vec![record(10)]).await.unwrap(), 10);
    log.close().await.unwrap();
    assert!(problems(tmp.path()).is_empty());
}

#[tokio::test]
async fn changing_one_byte_is_named_with_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 20, 10).await);
    let mut f = frames(tmp.path());
    let at = FRAME_HEADER + 20;
    f[7][at] ^= 0x01;
    write_frames(tmp.path(), &f);
    let p = problems(tmp.path());
    assert!(p.contains(&Problem::Changed { index: 7 }), "{p:?}");
    assert!(
        p.contains(&Problem::CheckpointRoot {
            number: 1,
            size: 10,
            since: 0
        }),
        "{p:?}"
    );
    assert!(
        !p.iter()
            .any(|x| matches!(x, Problem::Changed { index } if *index != 7))
    );
    // Opening does not rehash every entry (verify does); the tree keeps growing from the
    // hashes as written, so the change stays named after more appends and checkpoints.
    let log = AuditLog::open(options(tmp.path(), 1)).unwrap();
    log.append(vec![record(20)]).await.unwrap();
    log.close().await.unwrap();
    let p = problems(tmp.path());
    assert_eq!(p[0], Problem::Changed { index: 7 }, "{p:?}");
    assert!(
        p.contains(&Problem::CheckpointRoot {
            number: 3,
            size: 21,
            since: 0
        }),
        "{p:?}"
    );
}

#[tokio::test]
async fn deleting_one_entry_is_named_with_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 20, 10).await);
    let mut f = frames(tmp.path());
    f.remove(12);
    write_frames(tmp.path(), &f);
    let p = problems(tmp.path());
    assert_eq!(p[0], Problem::Deleted { index: 12 }, "{p:?}");
    assert!(p.contains(&Problem::CheckpointBeyondLog {
        number: 2,
        size: 20,
        entries: 19
    }));
}

#[tokio::test]
async fn inserting_an_entry_is_named_with_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 20, 10).await);
    let mut f = frames(tmp.path());
    let mut forged = Vec::new();
    crate::format::encode_frame(&mut forged, br#"{"kind":"admin","forged":true}"#);
    f.insert(4, forged);
    write_frames(tmp.path(), &f);
    let p = problems(tmp.path());
    assert_eq!(p[0], Problem::Inserted { index: 4 }, "{p:?}");
    assert_eq!(p.len(), 3, "the entry and both checkpoint roots: {p:?}");
}

#[tokio::test]
async fn swapping_two_entries_is_named_with_both_indices() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 20, 10).await);
    let mut f = frames(tmp.path());
    f.swap(15, 16);
    write_frames(tmp.path(), &f);
    let p = problems(tmp.path());
    assert_eq!(
        p[..2],
        [
            Problem::Reordered {
                index: 15,
                original: 16
            },
            Problem::Reordered {
                index: 16,
                original: 15
            }
        ],
        "{p:?}"
    );
    assert!(p.contains(&Problem::CheckpointRoot {
        number: 2,
        size: 20,
        since: 10
    }));
}

#[tokio::test]
async fn truncating_the_tail_is_named_and_refused_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 20, 10).await);
    let f = frames(tmp.path());
    write_frames(tmp.path(), &f[..17]);
    let p = problems(tmp.path());
    assert_eq!(
        p[..3],
        [
            Problem::Deleted { index: 17 },
            Problem::Deleted { index: 18 },
            Problem::Deleted { index: 19 }
        ],
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.to_string().contains("entries 17..20 deleted")),
        "{p:?}"
    );
    let e = AuditLog::open(options(tmp.path(), 1)).unwrap_err();
    assert!(e.message().contains("entry 19 is missing"), "{e}");
}

#[tokio::test]
async fn replacing_a_checkpoint_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 30, 10).await);
    let path = tmp.path().join("checkpoints");
    let text = std::fs::read_to_string(&path).unwrap();
    let notes = crate::format::split_checkpoints(&text);
    assert_eq!(notes.len(), 3);
    // Replaced by a well-formed note over another root, signed by the attacker's key.
    let forged = signer(9)
        .sign(
            &Checkpoint {
                origin: "vowguard.test/audit".into(),
                size: 20,
                root: [0; 32],
            }
            .to_text(),
        )
        .unwrap();
    std::fs::write(&path, format!("{}\n{forged}\n{}\n", notes[0], notes[2])).unwrap();
    let p = problems(tmp.path());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        matches!(&p[0], Problem::CheckpointSignature { number: 2, reason } if reason.contains("no signature by key"))
    );
    // An older genuine checkpoint put in place of a newer one: sizes go backwards.
    std::fs::write(&path, format!("{}\n{}\n{}\n", notes[0], notes[2], notes[1])).unwrap();
    let p = problems(tmp.path());
    assert!(
        matches!(&p[0], Problem::CheckpointInconsistent { number: 3, reason } if reason.contains("size went down")),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_named_and_refused_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 12, 4).await);
    let report = verify_dir(tmp.path(), signer(2).verifier()).unwrap();
    assert_eq!(report.problems.len(), 3);
    assert!(
        report
            .problems
            .iter()
            .all(|p| matches!(p, Problem::CheckpointSignature { .. }))
    );
    let e = AuditLog::open(options(tmp.path(), 2)).unwrap_err();
    assert!(e.message().contains("audit.key"), "{e}");
}

#[tokio::test]
async fn a_proof_verifies_offline_with_only_the_public_key() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 1000, 1000).await);
    let reader = AuditReader::open(tmp.path()).unwrap();
    let public = signer(1).verifier().to_text();
    for index in [0u64, 1, 255, 256, 511, 777, 999] {
        let bundle = export_proof(&reader, index).unwrap();
        assert!(bundle.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        assert!(bundle.contains(&format!("\nindex {index}\n")));
        let verifier = NoteVerifier::parse(&public).unwrap();
        let proven = verify_proof(&bundle, &verifier, None).unwrap();
        assert_eq!(proven.index, index);
        assert_eq!(proven.checkpoint.size, 1000);
        let rec: AuditRecord = serde_json::from_slice(&proven.entry).unwrap();
        assert_eq!(rec, record(index));
        // Another entry, another index or another key fail.
        let other = serde_json::to_vec(&record(index + 1)).unwrap();
        assert!(verify_proof(&bundle, &verifier, Some(&other)).is_err());
        let moved = bundle.replace(
            &format!("\nindex {index}\n"),
            &format!("\nindex {}\n", index ^ 1),
        );
        assert!(verify_proof(&moved, &verifier, None).is_err());
        assert!(verify_proof(&bundle, signer(3).verifier(), None).is_err());
    }
    assert!(export_proof(&reader, 1000).is_err());
}

#[tokio::test]
async fn proofs_use_tiles_and_agree_with_leaf_only_roots() {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 1300, 1300).await);
    assert_eq!(
        std::fs::metadata(tmp.path().join("tiles.idx"))
            .unwrap()
            .len(),
        5 * 32
    );
    let reader = AuditReader::open(tmp.path()).unwrap();
    let mut src = reader.leaf_hashes().unwrap();
    use crate::merkle::LeafHashes;
    for (a, b) in [(0, 1300), (256, 512), (512, 1300), (1024, 1280), (3, 700)] {
        assert_eq!(
            src.range_root(a, b).unwrap(),
            src.range_root_leaves_only(a, b).unwrap()
        );
    }
}

#[tokio::test]
async fn a_second_writer_is_refused_while_the_first_holds_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let first = AuditLog::open(options(tmp.path(), 1)).unwrap();
    let e = AuditLog::open(options(tmp.path(), 1)).unwrap_err();
    assert!(e.message().contains("another vowguard process"), "{e}");
    first.close().await.unwrap();
    drop(first);
    AuditLog::open(options(tmp.path(), 1)).unwrap();
}

#[tokio::test]
async fn every_checkpoint_is_also_published_to_the_witness_file() {
    let tmp = tempfile::tempdir().unwrap();
    let witness = tmp.path().join("witness").join("checkpoints");
    std::fs::create_dir_all(witness.parent().unwrap()).unwrap();
    let mut opts = options(&tmp.path().join("audit"), 1);
    opts.witness.file = Some(witness.clone());
    let log = AuditLog::open(opts).unwrap();
    for i in 0..3 {
        log.append(vec![record(i)]).await.unwrap();
        log.checkpoint().await.unwrap();
    }
    log.close().await.unwrap();
    let published = crate::format::split_checkpoints(&std::fs::read_to_string(&witness).unwrap());
    let local = AuditReader::open(tmp.path().join("audit"))
        .unwrap()
        .checkpoint_notes()
        .unwrap();
    assert_eq!(published.len(), 3);
    assert_eq!(published, local);
    // Deleting the whole log leaves the witness's signed sizes: the loss is detectable.
    std::fs::remove_dir_all(tmp.path().join("audit")).unwrap();
    let last = signer(1).verifier().verify(&published[2]).unwrap();
    assert_eq!(Checkpoint::parse_text(last).unwrap().size, 3);
}

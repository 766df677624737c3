//! Journal recovery over arbitrary bytes: segment and cursor files built from fuzz input
//! (well-framed records, damaged ones and raw bytes) are written into a fresh directory and
//! the journal is opened. It never panics; it either refuses with an error or opens, and
//! then every record it hands out is one that the input holds with a valid CRC (checked
//! here with our own CRC-32 over the documented framing), in sequence order.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vowguard_journal::{Journal, JournalConfig};

#[derive(Debug, Arbitrary)]
enum Chunk {
    /// Any bytes.
    Raw(Vec<u8>),
    /// A framed record with the next sequence number (plus `skip`), optionally marked as
    /// the first of a group commit (format 2) and with one byte flipped at a position.
    Record {
        skip: u8,
        group_start: bool,
        payload: Vec<u8>,
        flip: Option<(u16, u8)>,
    },
}

#[derive(Debug, Arbitrary)]
struct Segment {
    first_seq: u16,
    /// Format 1 (`VGJRNL01`) rather than format 2 (`VGJRNL02`, group-start marks).
    v1: bool,
    /// `None`: a valid header; `Some`: these bytes instead.
    header: Option<Vec<u8>>,
    /// Write the file under another segment's name.
    name_seq: Option<u16>,
    chunks: Vec<Chunk>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    segments: Vec<Segment>,
    /// Cursor files: reader name index and either a valid cursor at this position or raw bytes.
    cursors: Vec<(u8, Result<u16, Vec<u8>>)>,
    /// Stray files in the directory.
    stray: Vec<(u8, Vec<u8>)>,
}

const READER_NAMES: &[&str] = &["splunk", "siem-2", "x"];
const STRAY_NAMES: &[&str] = &[
    "LOCK",
    "00000000000000000001.tmp",
    "notes.txt",
    "x.cursor.tmp",
    "1.seg",
];

/// The group-start mark in the length field of a format 2 record.
const GROUP_START: u32 = 1 << 31;

fn crc(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// `len crc seq payload` as documented in `crates/journal/src/format.rs`; the CRC covers
/// the length field as stored (with the group-start mark).
fn frame(seq: u64, payload: &[u8], group_start: bool) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small payload")
        | if group_start { GROUP_START } else { 0 };
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc(len, seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn base_dir() -> &'static Path {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm } else { Path::new("/tmp") }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|input: Input| {
    let dir = tempfile::Builder::new()
        .prefix("vowguard-fuzz-journal")
        .tempdir_in(base_dir())
        .expect("temp dir");
    let mut files: Vec<Vec<u8>> = Vec::new();
    for segment in input.segments.iter().take(6) {
        let first = u64::from(segment.first_seq);
        let mut bytes = match &segment.header {
            None => {
                let mut h = if segment.v1 {
                    b"VGJRNL01".to_vec()
                } else {
                    b"VGJRNL02".to_vec()
                };
                h.extend_from_slice(&first.to_le_bytes());
                h
            }
            Some(raw) => raw.clone(),
        };
        let mut seq = first;
        for chunk in segment.chunks.iter().take(64) {
            match chunk {
                Chunk::Raw(raw) => bytes.extend_from_slice(raw),
                Chunk::Record {
                    skip,
                    group_start,
                    payload,
                    flip,
                } => {
                    seq += u64::from(*skip % 4 == 3) * u64::from(*skip);
                    let mut framed = frame(seq, payload, *group_start && !segment.v1);
                    if let Some((at, xor)) = flip {
                        let at = usize::from(*at) % framed.len();
                        framed[at] ^= xor;
                    }
                    bytes.extend_from_slice(&framed);
                    seq += 1;
                }
            }
        }
        let name_seq = segment.name_seq.map_or(first, u64::from);
        std::fs::write(dir.path().join(format!("{name_seq:020}.seg")), &bytes).expect("write");
        files.push(bytes);
    }
    for (name, cursor) in input.cursors.iter().take(3) {
        let name = READER_NAMES[usize::from(*name) % READER_NAMES.len()];
        let bytes = match cursor {
            Ok(next) => {
                let mut b = b"VGCURS01".to_vec();
                b.extend_from_slice(&u64::from(*next).to_le_bytes());
                let c = crc32fast::hash(&b);
                b.extend_from_slice(&c.to_le_bytes());
                b
            }
            Err(raw) => raw.clone(),
        };
        std::fs::write(dir.path().join(format!("{name}.cursor")), bytes).expect("write");
    }
    for (name, bytes) in input.stray.iter().take(2) {
        let name = STRAY_NAMES[usize::from(*name) % STRAY_NAMES.len()];
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }

    runtime().block_on(async {
        let config = JournalConfig::new(dir.path());
        let Ok((journal, recovery)) = Journal::open(config).await else {
            return;
        };
        let stats = journal.stats();
        assert_eq!(recovery.records, stats.next_seq - stats.first_seq);
        let mut reader = journal.reader("fuzz-check").expect("a new reader opens");
        let mut expected = stats.first_seq;
        while reader.position() < stats.next_seq {
            let batch = reader
                .next_batch(64, 1 << 20)
                .await
                .expect("recovered records read");
            assert!(!batch.is_empty(), "reader stopped before the end");
            for (seq, payload) in batch {
                assert_eq!(seq, expected, "records out of order");
                expected += 1;
                let plain = frame(seq, &payload, false);
                let marked = frame(seq, &payload, true);
                assert!(
                    files
                        .iter()
                        .any(|f| contains(f, &plain) || contains(f, &marked)),
                    "record {seq} ({} bytes) is not a CRC-valid record of the input",
                    payload.len()
                );
            }
        }
        for name in READER_NAMES {
            let _ = journal.reader(name);
        }
        journal.close().await.expect("close");
    });
});

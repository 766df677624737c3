//! On-disk formats: segment header, record framing, cursor files, file names.
//!
//! ```text
//! segment  = header record*
//! header   = "VGJRNL02" first_seq:u64le                       (16 bytes)
//! record   = len:u32le crc:u32le seq:u64le payload[len]      (16 + len bytes)
//!            crc = CRC-32 (IEEE, crc32fast) of len:u32le ‖ seq:u64le ‖ payload
//!            the top bit of len (GROUP_START) marks the first record of a group commit
//!            (one write + one fdatasync); the payload length is the other 31 bits
//! cursor   = "VGCURS01" next_seq:u64le crc:u32le              (20 bytes, crc of the first 16)
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::JournalError;

/// Magic at the start of every new segment file (format version 2: group-start marks).
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"VGJRNL02";
/// Magic of format version 1 segments (no group-start marks); still read.
pub(crate) const SEGMENT_MAGIC_V1: [u8; 8] = *b"VGJRNL01";
/// Bit of the length field marking the first record of a group commit.
pub(crate) const GROUP_START: u32 = 1 << 31;
/// Bytes of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
/// Bytes of a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Largest payload of one record (64 MiB); anything larger is refused on append and
/// treated as a damaged length on read.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;
/// One sparse-index entry (seq -> byte offset) is kept every this many records.
pub(crate) const INDEX_EVERY: u64 = 128;
/// Magic at the start of a cursor file.
const CURSOR_MAGIC: [u8; 8] = *b"VGCURS01";
/// Bytes of a cursor file.
pub(crate) const CURSOR_LEN: usize = 20;
/// Name of the lock file in the journal directory (holds the pid of the process that has
/// the journal open).
pub(crate) const LOCK_FILE: &str = "LOCK";
/// Extension of segment files.
pub(crate) const SEGMENT_EXT: &str = "seg";
/// Extension of cursor files.
pub(crate) const CURSOR_EXT: &str = "cursor";
/// Extension of cursor files being written.
pub(crate) const TMP_EXT: &str = "tmp";

/// CRC of one record: covers the length, the sequence number and the payload.
pub(crate) fn record_crc(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one framed record to `buf`. The caller checked `payload.len() <= MAX_RECORD_BYTES`.
pub(crate) fn encode_record(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.reserve(RECORD_HEADER_LEN + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&record_crc(len, seq, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Marks the record that starts at `at` in `buf` (encoded by [`encode_record`]) as the
/// first of its group commit: sets [`GROUP_START`] in its length and recomputes its checksum.
pub(crate) fn mark_group_start(buf: &mut [u8], at: usize) {
    let h = RecordHeader::parse(&buf[at..]);
    let raw = h.len | GROUP_START;
    let body = at + RECORD_HEADER_LEN;
    let crc = record_crc(raw, h.seq, &buf[body..body + h.len as usize]);
    buf[at..at + 4].copy_from_slice(&raw.to_le_bytes());
    buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Payload length.
    pub(crate) len: u32,
    /// The length field as stored (with [`GROUP_START`]); the checksum covers it.
    pub(crate) raw_len: u32,
    pub(crate) crc: u32,
    pub(crate) seq: u64,
}

impl RecordHeader {
    /// Decodes the first 16 bytes of `b` (which must hold at least that many).
    pub(crate) fn parse(b: &[u8]) -> Self {
        let mut len = [0; 4];
        let mut crc = [0; 4];
        let mut seq = [0; 8];
        len.copy_from_slice(&b[0..4]);
        crc.copy_from_slice(&b[4..8]);
        seq.copy_from_slice(&b[8..16]);
        let raw_len = u32::from_le_bytes(len);
        Self {
            len: raw_len & !GROUP_START,
            raw_len,
            crc: u32::from_le_bytes(crc),
            seq: u64::from_le_bytes(seq),
        }
    }

    /// Whether this is the first record of its group commit.
    pub(crate) fn group_start(&self) -> bool {
        self.raw_len & GROUP_START != 0
    }

    /// Whether `payload` is the payload this header describes.
    pub(crate) fn matches(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize
            && record_crc(self.raw_len, self.seq, payload) == self.crc
    }

    /// Bytes of the whole record.
    pub(crate) fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// The 16-byte header of a segment starting at `first_seq`.
pub(crate) fn segment_header(first_seq: u64) -> [u8; 16] {
    let mut h = [0; 16];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Sequence number of the first record.
    pub(crate) first_seq: u64,
    /// Whether its records carry group-start marks (format version 2).
    pub(crate) group_marks: bool,
}

/// Decodes a segment header, or `None` when the magic is wrong.
pub(crate) fn parse_segment_header(h: &[u8]) -> Option<SegmentHeader> {
    if h.len() < 16 {
        return None;
    }
    let group_marks = match &h[..8] {
        m if m == SEGMENT_MAGIC => true,
        m if m == SEGMENT_MAGIC_V1 => false,
        _ => return None,
    };
    let mut seq = [0; 8];
    seq.copy_from_slice(&h[8..16]);
    Some(SegmentHeader {
        first_seq: u64::from_le_bytes(seq),
        group_marks,
    })
}

/// File name of the segment whose first record is `first_seq` (sorts by sequence).
pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXT}")
}

/// The first sequence number encoded in a segment file name.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_EXT)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Checks a reader name: 1 to 200 bytes, no control characters.
pub(crate) fn validate_reader_name(name: &str) -> Result<(), JournalError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > 200 {
        "longer than 200 bytes"
    } else if name.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(JournalError::InvalidReaderName {
        name: name.to_string(),
        reason,
    })
}

/// File name of a reader's cursor: `[A-Za-z0-9_-]` kept, every other byte as `%XX`.
pub(crate) fn cursor_file_name(reader: &str) -> String {
    let mut out = String::with_capacity(reader.len() + 8);
    for b in reader.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('.');
    out.push_str(CURSOR_EXT);
    out
}

/// The reader name encoded in a cursor file name.
pub(crate) fn parse_cursor_file_name(file: &str) -> Option<String> {
    let stem = file.strip_suffix(CURSOR_EXT)?.strip_suffix('.')?;
    let mut bytes = Vec::with_capacity(stem.len());
    let mut it = stem.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hi = char::from(it.next()?).to_digit(16)?;
            let lo = char::from(it.next()?).to_digit(16)?;
            bytes.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

/// The bytes of a cursor file saying "every record below `next_seq` is done".
pub(crate) fn encode_cursor(next_seq: u64) -> [u8; CURSOR_LEN] {
    let mut b = [0; CURSOR_LEN];
    b[..8].copy_from_slice(&CURSOR_MAGIC);
    b[8..16].copy_from_slice(&next_seq.to_le_bytes());
    let crc = crc32fast::hash(&b[..16]);
    b[16..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a cursor file; `None` when it is damaged.
pub(crate) fn decode_cursor(b: &[u8]) -> Option<u64> {
    if b.len() != CURSOR_LEN || b[..8] != CURSOR_MAGIC {
        return None;
    }
    let mut crc = [0; 4];
    crc.copy_from_slice(&b[16..20]);
    if crc32fast::hash(&b[..16]) != u32::from_le_bytes(crc) {
        return None;
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&b[8..16]);
    Some(u64::from_le_bytes(seq))
}

/// Writes a cursor file atomically and durably except for the directory entry: temp file,
/// write, fsync, rename over the old one. The caller fsyncs the directory afterwards
/// (once for all cursors it wrote).
pub(crate) fn write_cursor(dir: &Path, reader: &str, next_seq: u64) -> Result<(), JournalError> {
    let path = dir.join(cursor_file_name(reader));
    let tmp = path.with_extension(format!("{CURSOR_EXT}.{TMP_EXT}"));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&encode_cursor(next_seq))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        JournalError::io(&path, e)
    })
}

/// Path of a reader's cursor file.
pub(crate) fn cursor_path(dir: &Path, reader: &str) -> PathBuf {
    dir.join(cursor_file_name(reader))
}

/// Makes creations, renames and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn record_round_trip() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        assert_eq!(buf.len(), 16 + 5);
        let h = RecordHeader::parse(&buf);
        assert_eq!(h.len, 5);
        assert_eq!(h.seq, 7);
        assert!(h.matches(&buf[16..]));
        let mut bad = buf.clone();
        bad[20] ^= 1;
        assert!(!h.matches(&bad[16..]));
        // The sequence number is covered by the checksum.
        let mut moved = buf.clone();
        moved[8] = 8;
        let h2 = RecordHeader::parse(&moved);
        assert!(!h2.matches(&moved[16..]));
    }

    #[test]
    fn segment_names_and_headers() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042.cursor"), None);
        assert_eq!(
            parse_segment_header(&segment_header(9)),
            Some(SegmentHeader {
                first_seq: 9,
                group_marks: true
            })
        );
        let mut v1 = segment_header(9);
        v1[..8].copy_from_slice(&SEGMENT_MAGIC_V1);
        assert_eq!(
            parse_segment_header(&v1),
            Some(SegmentHeader {
                first_seq: 9,
                group_marks: false
            })
        );
        assert_eq!(parse_segment_header(&[0; 16]), None);
    }

    #[test]
    fn cursor_round_trip_and_damage() {
        let b = encode_cursor(123_456);
        assert_eq!(decode_cursor(&b), Some(123_456));
        let mut bad = b;
        bad[9] ^= 0x40;
        assert_eq!(decode_cursor(&bad), None);
        assert_eq!(decode_cursor(&b[..19]), None);
    }

    #[test]
    fn reader_names() {
        assert_eq!(cursor_file_name("splunk_main-1"), "splunk_main-1.cursor");
        assert_eq!(cursor_file_name("a/b.c"), "a%2Fb%2Ec.cursor");
        assert!(validate_reader_name("").is_err());
        assert!(validate_reader_name("a\nb").is_err());
        assert!(validate_reader_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn group_start_mark_is_covered_by_the_checksum() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 3, b"one");
        encode_record(&mut buf, 4, b"two");
        mark_group_start(&mut buf, 0);
        let first = RecordHeader::parse(&buf);
        assert!(first.group_start());
        assert_eq!(first.len, 3);
        assert!(first.matches(&buf[16..19]));
        let second = RecordHeader::parse(&buf[19..]);
        assert!(!second.group_start() && second.matches(&buf[35..]));
        let mut cleared = buf.clone();
        cleared[3] &= 0x7f;
        assert!(!RecordHeader::parse(&cleared).matches(&cleared[16..19]));
    }

    proptest! {
        #[test]
        fn cursor_names_round_trip(name in "\\PC{1,40}") {
            let file = cursor_file_name(&name);
            prop_assert!(file.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-%.".contains(&b)));
            prop_assert_eq!(parse_cursor_file_name(&file), Some(name));
        }

        #[test]
        fn records_round_trip(seq in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = Vec::new();
            encode_record(&mut buf, seq, &payload);
            let h = RecordHeader::parse(&buf);
            prop_assert_eq!(h.seq, seq);
            prop_assert_eq!(h.record_len() as usize, buf.len());
            prop_assert!(h.matches(&buf[16..]));
        }
    }
}

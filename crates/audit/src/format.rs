//! On-disk layout of `<data_dir>/audit/`.
//!
//! ```text
//! entries.log   = "VGAUDIT1" frame*
//! frame         = len:u32le crc:u32le payload[len]     crc = CRC-32 of len:u32le ‖ payload
//!                 payload = the record's JSON bytes = the Merkle leaf data
//! entries.idx   = (offset:u64le leaf_hash[32])*         entry i at byte 40·i
//! tiles.idx     = tile_root[32]*                         root of entries 256·t .. 256·(t+1)
//! checkpoints   = (signed note "\n")*                    C2SP checkpoints, append-only
//! ```
//!
//! The log is written and made durable before the index, so a torn write can only damage
//! entries the index does not cover yet; a damaged frame the index covers is tampering or
//! media damage, and opening refuses it rather than truncating evidence.

use std::path::Path;

/// Magic at the start of `entries.log`.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"VGAUDIT1";
/// Bytes of a frame header.
pub(crate) const FRAME_HEADER: usize = 8;
/// Bytes of one index row.
pub(crate) const INDEX_ROW: u64 = 40;
/// Largest record (16 MiB); larger payloads are refused on append and treated as a damaged
/// length on read.
pub(crate) const MAX_ENTRY_BYTES: usize = 16 << 20;
/// File names.
pub(crate) const LOG_FILE: &str = "entries.log";
/// Index file name.
pub(crate) const INDEX_FILE: &str = "entries.idx";
/// Tile file name.
pub(crate) const TILES_FILE: &str = "tiles.idx";
/// Checkpoint file name.
pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints";

/// CRC of a frame.
pub(crate) fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one frame to `buf`.
pub(crate) fn encode_frame(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload size checked");
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&frame_crc(len, payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// One frame as found in the file.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A complete frame; `crc_ok` tells whether its checksum matched.
    Whole { payload: &'a [u8], crc_ok: bool },
    /// The bytes left are fewer than a header or than the length the header declares (or
    /// the declared length is impossible): a torn tail.
    Torn,
}

/// Decodes the frame at the start of `bytes` (non-empty).
pub(crate) fn decode_frame(bytes: &[u8]) -> Frame<'_> {
    if bytes.len() < FRAME_HEADER {
        return Frame::Torn;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let n = len as usize;
    if n > MAX_ENTRY_BYTES || bytes.len() - FRAME_HEADER < n {
        return Frame::Torn;
    }
    let payload = &bytes[FRAME_HEADER..FRAME_HEADER + n];
    Frame::Whole {
        payload,
        crc_ok: frame_crc(len, payload) == crc,
    }
}

/// Splits the checkpoints file into notes. Each note is its text lines, a blank line and its
/// signature lines; notes are separated by one more blank line.
pub(crate) fn split_checkpoints(text: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let mut current = String::new();
    let mut in_sigs = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if bare.is_empty() {
            if in_sigs {
                notes.push(std::mem::take(&mut current));
                in_sigs = false;
            } else if !current.is_empty() {
                current.push('\n');
                in_sigs = true;
            }
            continue;
        }
        current.push_str(bare);
        current.push('\n');
    }
    if !current.is_empty() {
        notes.push(current);
    }
    notes
}

/// `path` for messages.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_file_splits_into_notes() {
        let a = "o\n1\nAAA=\n\n\u{2014} o sig1\n";
        let b = "o\n2\nBBB=\n\n\u{2014} o sig2\n\u{2014} w sig3\n";
        let file = format!("{a}\n{b}\n");
        assert_eq!(split_checkpoints(&file), vec![a.to_owned(), b.to_owned()]);
    }

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, b"{\"kind\":\"admin\"}");
        assert!(matches!(
            decode_frame(&buf),
            Frame::Whole { crc_ok: true, .. }
        ));
        assert!(matches!(decode_frame(&buf[..buf.len() - 1]), Frame::Torn));
        buf[10] ^= 1;
        assert!(matches!(
            decode_frame(&buf),
            Frame::Whole { crc_ok: false, .. }
        ));
    }
}

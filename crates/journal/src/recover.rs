//! Opening a journal directory: scan every segment, drop a torn tail, load cursors.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::format::{
    self, MAX_RECORD_BYTES, RECORD_HEADER_LEN, RecordHeader, SEGMENT_HEADER_LEN, TMP_EXT,
};
use crate::state::{ReaderEntry, SegmentMeta, State};
use crate::{JournalConfig, JournalError, Recovery};

/// What opening a directory produced.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) state: State,
    /// The active (last) segment, open for writing, positioned at its end.
    pub(crate) active: File,
    pub(crate) recovery: Recovery,
    /// The directory lock, held as long as this file is open.
    pub(crate) lock: File,
}

/// How a segment scan ended.
#[derive(Debug)]
enum Tail {
    Clean,
    /// The file is shorter than a segment header (a crash while creating it).
    TornHeader {
        bytes: u64,
    },
    /// Bytes from `offset` to the end are a torn write: not a complete valid record, and
    /// no valid record follows them or only records of the same unfinished group do.
    TornRecord {
        offset: u64,
        bytes: u64,
        /// Records dropped (the torn one and the rest of its group).
        records: u64,
        reason: String,
    },
}

pub(crate) fn recover(config: &JournalConfig) -> Result<Recovered, JournalError> {
    let dir = config.dir.as_path();
    fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
    let lock = lock_dir(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = format::sync_dir(parent);
    }

    let mut segment_files = Vec::new();
    let mut cursor_files = Vec::new();
    let mut removed_tmp = false;
    for entry in fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = format::parse_segment_file_name(name) {
            segment_files.push((first, entry.path()));
        } else if let Some(reader) = format::parse_cursor_file_name(name) {
            cursor_files.push((reader, entry.path()));
        } else if name.ends_with(&format!(".{TMP_EXT}")) {
            // A cursor write that did not reach its rename: the old cursor is still valid.
            fs::remove_file(entry.path()).map_err(|e| JournalError::io(&entry.path(), e))?;
            removed_tmp = true;
        }
    }
    if removed_tmp {
        format::sync_dir(dir)?;
    }
    segment_files.sort();

    let mut readers = BTreeMap::new();
    let mut next_reader_id = 0;
    for (name, path) in cursor_files {
        let bytes = fs::read(&path).map_err(|e| JournalError::io(&path, e))?;
        let committed = match format::decode_cursor(&bytes) {
            Some(seq) => seq,
            None => {
                tracing::error!(
                    reader = %name,
                    path = %path.display(),
                    "journal: cursor file is damaged; the reader restarts at the oldest retained record (events may be delivered twice)"
                );
                0
            }
        };
        readers.insert(
            name,
            ReaderEntry {
                id: next_reader_id,
                committed,
                persisted: committed,
                in_use: false,
            },
        );
        next_reader_id += 1;
    }

    let mut recovery = Recovery {
        records: 0,
        torn_records_dropped: 0,
        torn_bytes_dropped: 0,
        segments: 0,
    };
    let mut segments: VecDeque<SegmentMeta> = VecDeque::new();
    let max_cursor = readers.values().map(|r| r.committed).max().unwrap_or(0);
    let mut start_if_empty = max_cursor;
    let count = segment_files.len();
    for (i, (first, path)) in segment_files.into_iter().enumerate() {
        let last = i + 1 == count;
        if let Some(prev) = segments.back()
            && prev.end_seq() != first
        {
            return Err(JournalError::Corrupt {
                segment: path,
                offset: 0,
                reason: format!(
                    "segment starts at sequence {first} but the previous segment ends at {}: a segment is missing or damaged",
                    prev.end_seq()
                ),
            });
        }
        let (meta, tail) = scan_segment(&path, first, last, max_cursor)?;
        match tail {
            Tail::Clean => segments.push_back(meta),
            Tail::TornHeader { bytes } => {
                tracing::warn!(
                    segment = %path.display(),
                    bytes,
                    "journal: removing a segment whose header was never completely written (crash while creating it); it held no records"
                );
                fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
                format::sync_dir(dir)?;
                recovery.torn_bytes_dropped += bytes;
                start_if_empty = start_if_empty.max(first);
            }
            Tail::TornRecord {
                offset,
                bytes,
                records,
                reason,
            } => {
                tracing::warn!(
                    segment = %path.display(),
                    offset,
                    bytes,
                    %reason,
                    records_kept = meta.records,
                    "journal: dropping a torn write at the end of the last segment (the last record was cut short by a crash); earlier records are intact"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| JournalError::io(&path, e))?;
                f.set_len(offset)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| JournalError::io(&path, e))?;
                recovery.torn_records_dropped += records;
                recovery.torn_bytes_dropped += bytes;
                segments.push_back(meta);
            }
        }
    }

    if segments.is_empty() {
        let path = dir.join(format::segment_file_name(start_if_empty));
        create_segment(&path, start_if_empty)?;
        format::sync_dir(dir)?;
        segments.push_back(SegmentMeta::new(start_if_empty, path));
    }

    let (first_seq, next_seq) = match (segments.front(), segments.back()) {
        (Some(f), Some(b)) => (f.first_seq, b.end_seq()),
        _ => unreachable!("at least one segment exists"),
    };
    for (name, r) in &mut readers {
        let clamped = r.committed.clamp(first_seq, next_seq);
        if r.committed > next_seq {
            tracing::warn!(
                reader = %name,
                cursor = r.committed,
                next_seq,
                "journal: reader cursor is past the end of the journal; moving it back to the end"
            );
        } else if r.committed < first_seq && r.committed != 0 {
            tracing::warn!(
                reader = %name,
                cursor = r.committed,
                first_seq,
                "journal: reader cursor points at records that are no longer retained; moving it to the oldest retained record"
            );
        }
        r.committed = clamped;
        r.persisted = clamped;
    }

    let active_meta = segments.back().expect("at least one segment exists");
    let mut active = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&active_meta.path)
        .map_err(|e| JournalError::io(&active_meta.path, e))?;
    active
        .seek(SeekFrom::Start(active_meta.len))
        .map_err(|e| JournalError::io(&active_meta.path, e))?;

    recovery.records = next_seq - first_seq;
    recovery.segments = segments.len();
    let total_bytes = segments.iter().map(|s| s.len).sum();
    Ok(Recovered {
        state: State {
            segments,
            next_seq,
            total_bytes,
            readers,
            next_reader_id,
            tail: crate::state::Tail::new(config.tail_cache_bytes),
        },
        active,
        recovery,
        lock,
    })
}

/// Takes the exclusive lock of the journal directory (`<dir>/LOCK`, holding the pid of
/// the holder), so that two processes never open the same journal. The lock is released
/// when the returned file is closed, also when the process dies.
fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(format::LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(JournalError::Locked {
                dir: dir.to_path_buf(),
                holder: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(JournalError::io(&path, e)),
    }
    let pid = std::process::id().to_string();
    file.set_len(0)
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(|e| JournalError::io(&path, e))?;
    Ok(file)
}

/// Creates a segment file holding only its header and fsyncs it (not the directory).
pub(crate) fn create_segment(path: &Path, first_seq: u64) -> Result<File, JournalError> {
    let create = || -> std::io::Result<File> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        f.write_all(&format::segment_header(first_seq))?;
        f.sync_all()?;
        Ok(f)
    };
    create().map_err(|e| {
        let _ = fs::remove_file(path);
        JournalError::io(path, e)
    })
}

/// Reads a whole segment, checking every record. `last` allows a torn tail.
fn scan_segment(
    path: &Path,
    first_seq: u64,
    last: bool,
    max_cursor: u64,
) -> Result<(SegmentMeta, Tail), JournalError> {
    let io = |e| JournalError::io(path, e);
    let corrupt = |offset, reason: String| JournalError::Corrupt {
        segment: path.to_path_buf(),
        offset,
        reason,
    };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut meta = SegmentMeta::new(first_seq, path.to_path_buf());
    if file_len < SEGMENT_HEADER_LEN {
        if last {
            return Ok((meta, Tail::TornHeader { bytes: file_len }));
        }
        return Err(corrupt(0, "segment header is incomplete".into()));
    }
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut header = [0; SEGMENT_HEADER_LEN as usize];
    r.read_exact(&mut header).map_err(io)?;
    let group_marks = match format::parse_segment_header(&header) {
        Some(h) if h.first_seq == first_seq => h.group_marks,
        Some(h) => {
            return Err(corrupt(
                0,
                format!(
                    "header says first sequence {} but the file name says {first_seq}",
                    h.first_seq
                ),
            ));
        }
        None => {
            return Err(corrupt(
                0,
                "bad magic: not a vowguard journal segment".into(),
            ));
        }
    };

    let mut offset = SEGMENT_HEADER_LEN;
    let mut seq = first_seq;
    let mut payload = Vec::new();
    let mut hb = [0; RECORD_HEADER_LEN];
    let bad = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break None;
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            break Some((
                offset,
                format!("record header cut short ({remaining} of {RECORD_HEADER_LEN} bytes)"),
            ));
        }
        r.read_exact(&mut hb).map_err(io)?;
        let h = RecordHeader::parse(&hb);
        if h.len as usize > MAX_RECORD_BYTES || h.record_len() > remaining {
            break Some((
                offset,
                format!(
                    "record length {} runs past the end of the file ({remaining} bytes left)",
                    h.len
                ),
            ));
        }
        payload.resize(h.len as usize, 0);
        r.read_exact(&mut payload).map_err(io)?;
        if !h.matches(&payload) {
            break Some((offset, "checksum mismatch".to_string()));
        }
        if h.seq != seq {
            break Some((
                offset,
                format!("sequence number {} where {seq} was expected", h.seq),
            ));
        }
        if SegmentMeta::wants_index(first_seq, seq) {
            meta.index.push((seq, offset));
        }
        offset += h.record_len();
        seq += 1;
    };
    meta.len = offset;
    meta.records = seq - first_seq;
    let Some((offset, reason)) = bad else {
        return Ok((meta, Tail::Clean));
    };
    if !last {
        return Err(corrupt(offset, format!("{reason} (in a sealed segment)")));
    }
    let after = valid_records_after(path, offset, seq)?;
    let Some(&(at, found, _)) = after.first() else {
        return Ok((
            meta,
            Tail::TornRecord {
                offset,
                bytes: file_len - offset,
                records: 1,
                reason,
            },
        ));
    };
    // Valid records follow the damage. That is a torn last group when it can be shown:
    // a group is one write and one fdatasync, and the next group is written only after
    // that fdatasync returned, so the bytes of a completed group are never changed by a
    // later crash (disks write sectors atomically). Damage therefore lies in the last
    // group written, so no valid record after it may start a group (one that does means
    // the damaged group was completed before it: damage in durable data). Nothing in the
    // last group was acknowledged, and no reader can have consumed it. Segments of
    // format version 1 carry no group marks: the damage is refused as before.
    let group_follows = after.iter().any(|(_, _, start)| *start);
    let torn_group = group_marks && !group_follows && max_cursor <= seq;
    if !torn_group {
        let why = if !group_marks {
            "the segment predates group marks"
        } else if group_follows {
            "a later group commit starts after it"
        } else {
            "a reader already consumed records past it"
        };
        return Err(corrupt(
            offset,
            format!(
                "{reason}; a valid record (sequence {found}) follows at offset {at}, so this is damage inside the segment, not a torn write at its end ({why})"
            ),
        ));
    }
    Ok((
        meta,
        Tail::TornRecord {
            offset,
            bytes: file_len - offset,
            records: 1 + after.len() as u64,
            reason: format!(
                "{reason}; the {} valid record(s) after it belong to the same unfinished group commit",
                after.len()
            ),
        },
    ))
}

/// Every complete, checksum-valid record with a plausible sequence number (`>= expected`)
/// that starts after `offset`, as `(offset, seq, group start)`: found by scanning byte by
/// byte, then from the end of each record found. Finding one means the bad bytes at
/// `offset` are not simply a torn tail.
fn valid_records_after(
    path: &Path,
    offset: u64,
    expected: u64,
) -> Result<Vec<(u64, u64, bool)>, JournalError> {
    let mut f = File::open(path).map_err(|e| JournalError::io(path, e))?;
    let mut rest = Vec::new();
    f.seek(SeekFrom::Start(offset + 1))
        .and_then(|_| f.read_to_end(&mut rest))
        .map_err(|e| JournalError::io(path, e))?;
    let base = offset + 1;
    let mut out = Vec::new();
    let mut expected = expected;
    let mut i = 0;
    while i + RECORD_HEADER_LEN <= rest.len() {
        let max_seq = expected.saturating_add(rest.len() as u64 / RECORD_HEADER_LEN as u64 + 1);
        let h = RecordHeader::parse(&rest[i..]);
        let body = i + RECORD_HEADER_LEN;
        if (expected..=max_seq).contains(&h.seq)
            && h.len as usize <= rest.len() - body
            && h.matches(&rest[body..body + h.len as usize])
        {
            out.push((base + i as u64, h.seq, h.group_start()));
            expected = h.seq + 1;
            i = body + h.len as usize;
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// Paths of the segment files, for tests.
#[cfg(test)]
pub(crate) fn segment_paths(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(format::parse_segment_file_name)
                .is_some()
        })
        .collect();
    v.sort();
    v
}

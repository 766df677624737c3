//! Named readers: each sink reads the journal at its own position.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use tokio::sync::watch;
use vowguard_core::Event;

use crate::JournalError;
use crate::format::{RECORD_HEADER_LEN, RecordHeader};
use crate::state::{Durable, Shared};

/// Smallest read from a segment file for one batch.
const MIN_CHUNK: usize = 64 << 10;
/// Largest read from a segment file for one batch (a single larger record is read whole).
const MAX_CHUNK: usize = 16 << 20;
/// Largest read buffer kept between batches (a batch of 500 events of 1 KB fits).
const KEEP_BUF_BYTES: usize = 1 << 20;

/// One record as [`JournalReader::next_records`] returns it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// The record's bytes as stored (shared with the journal's in-memory tail).
    pub stored: Arc<[u8]>,
    /// The event the bytes encode, when the record came from the in-memory tail and was
    /// appended with [`Journal::append_decoded`](crate::Journal::append_decoded): no file
    /// read, no decoding. `None` for records read from disk or appended as bytes.
    pub event: Option<Arc<Event>>,
}

/// An open segment file and the position of the next record to read in it.
#[derive(Debug)]
struct Position {
    seg_first: u64,
    file: File,
    offset: u64,
    seq: u64,
}

/// One named reader (one per sink): reads records at its own position and commits how
/// far it got. Obtained from [`Journal::reader`](crate::Journal::reader).
///
/// Only durable records are ever returned. A record is removed from disk only when every
/// reader has committed past it. Dropping the reader keeps its position (and keeps
/// pinning the journal); [`Journal::remove_reader`](crate::Journal::remove_reader)
/// forgets it.
#[derive(Debug)]
pub struct JournalReader {
    shared: Arc<Shared>,
    name: String,
    id: u64,
    read_pos: u64,
    committed: u64,
    durable: watch::Receiver<Durable>,
    pos: Option<Position>,
    buf: Vec<u8>,
    /// Average record length (header included) of the last file read: the next read asks
    /// for about `max_records` of those rather than the whole byte limit, so a batch
    /// limited by count does not read (and then read again) far more than it returns.
    avg_record_len: usize,
}

impl JournalReader {
    pub(crate) fn new(shared: Arc<Shared>, name: String, id: u64, committed: u64) -> Self {
        let durable = shared.durable.subscribe();
        Self {
            shared,
            name,
            id,
            read_pos: committed,
            committed,
            durable,
            pos: None,
            buf: Vec::new(),
            avg_record_len: 0,
        }
    }

    /// The reader's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sequence number of the next record [`next_batch`](Self::next_batch) returns.
    pub fn position(&self) -> u64 {
        self.read_pos
    }

    /// Every record below this sequence number is committed by this reader.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Whether the reader has read every record durable now (its position is at the end
    /// of what [`next_batch`](Self::next_batch) could return without waiting).
    pub fn caught_up(&self) -> bool {
        self.read_pos >= self.durable.borrow().next_seq
    }

    /// Waits until at least one record after the read position is durable (or the journal
    /// is closed, then returns an empty vector), then returns up to `max_records` records
    /// with at most `max_bytes` of payload (always at least one record), as
    /// `(sequence number, payload)` in order.
    ///
    /// Cancel-safe: dropping the future loses nothing. Reads are plain file reads, almost
    /// always served from the page cache.
    pub async fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        let max_records = max_records.max(1);
        loop {
            let pos = self.read_pos;
            let state = match self
                .durable
                .wait_for(|d| d.closed || d.next_seq > pos)
                .await
            {
                Ok(d) => *d,
                Err(_) => return Ok(Vec::new()),
            };
            if state.closed {
                return Ok(Vec::new());
            }
            if self.shared.in_memory {
                let batch = self.read_tail(max_records, max_bytes)?;
                if !batch.is_empty() {
                    return Ok(batch
                        .into_iter()
                        .map(|r| (r.seq, r.stored.to_vec()))
                        .collect());
                }
            }
            let batch = self.read_batch(max_records, max_bytes, |seq, payload| {
                (seq, payload.to_vec())
            })?;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Like [`next_batch`](Self::next_batch), but records still held in the in-memory
    /// tail come from memory (with their decoded event when they were appended with one)
    /// without touching the file; older ones are read from disk as before. A batch comes
    /// all from memory or all from disk. The byte limit counts each record's stored bytes.
    pub async fn next_records(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, JournalError> {
        let max_records = max_records.max(1);
        loop {
            let pos = self.read_pos;
            let state = match self
                .durable
                .wait_for(|d| d.closed || d.next_seq > pos)
                .await
            {
                Ok(d) => *d,
                Err(_) => return Ok(Vec::new()),
            };
            if state.closed {
                return Ok(Vec::new());
            }
            let batch = self.read_tail(max_records, max_bytes)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let batch = self.read_batch(max_records, max_bytes, |seq, payload| Record {
                seq,
                stored: Arc::from(payload),
                event: None,
            })?;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Takes what the in-memory tail holds at the read position; empty when it holds
    /// nothing there (the caller reads the file).
    fn read_tail(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, JournalError> {
        let st = self.shared.lock();
        if st.readers.get(&self.name).is_none_or(|e| e.id != self.id) {
            return Err(JournalError::ReaderRemoved {
                name: self.name.clone(),
            });
        }
        let mut out = Vec::new();
        if self.read_pos < st.first_seq() {
            // Skipping records that are no longer retained is the file path's job.
            return Ok(out);
        }
        let mut bytes = 0usize;
        while out.len() < max_records && self.read_pos < st.next_seq {
            let Some(entry) = st.tail.get(self.read_pos) else {
                break;
            };
            let len = entry.stored.len();
            if !out.is_empty() && bytes.saturating_add(len) > max_bytes {
                break;
            }
            out.push(Record {
                seq: self.read_pos,
                stored: Arc::clone(&entry.stored),
                event: entry.event.clone(),
            });
            bytes = bytes.saturating_add(len);
            self.read_pos += 1;
        }
        drop(st);
        if !out.is_empty() {
            // The open segment position no longer matches; it is reopened when needed
            // (and a sealed segment is not kept open meanwhile).
            self.pos = None;
        }
        Ok(out)
    }

    /// Marks every record with a sequence number below `upto` as done for this reader.
    ///
    /// Takes effect in memory at once and is persisted by a background thread shortly
    /// after (many commits share one fsync), and at the latest by
    /// [`Journal::close`](crate::Journal::close). After a crash the reader resumes at its
    /// last persisted commit, so records may be delivered again (at-least-once), never
    /// lost. Commits never move backwards; `upto` beyond the journal's end is clamped.
    pub fn commit(&mut self, upto: u64) -> Result<(), JournalError> {
        if self.shared.is_closing() {
            return Err(JournalError::Closed);
        }
        let changed = {
            let mut st = self.shared.lock();
            let next_seq = st.next_seq;
            let Some(entry) = st.readers.get_mut(&self.name).filter(|e| e.id == self.id) else {
                return Err(JournalError::ReaderRemoved {
                    name: self.name.clone(),
                });
            };
            let upto = upto.min(next_seq);
            if upto > entry.committed {
                entry.committed = upto;
                self.committed = upto;
                st.trim_tail();
                true
            } else {
                false
            }
        };
        self.read_pos = self.read_pos.max(self.committed);
        if changed {
            self.shared.committed();
        }
        Ok(())
    }

    /// Moves the read position back to the last commit, so the records read since are
    /// returned again (after a failed delivery that did not crash the process).
    pub fn rewind(&mut self) {
        self.read_pos = self.committed;
    }

    /// Reads what is available at the read position; empty when nothing is (yet). Each
    /// record's `(sequence number, payload)` becomes an item through `make` (so the
    /// payload is copied once, into whatever form the caller keeps).
    fn read_batch<T>(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        mut make: impl FnMut(u64, &[u8]) -> T,
    ) -> Result<Vec<T>, JournalError> {
        let (seg_first, path, seg_len, sealed, checkpoint) = {
            let st = self.shared.lock();
            if st.readers.get(&self.name).is_none_or(|e| e.id != self.id) {
                return Err(JournalError::ReaderRemoved {
                    name: self.name.clone(),
                });
            }
            let first = st.first_seq();
            if self.read_pos < first {
                tracing::error!(
                    reader = %self.name,
                    position = self.read_pos,
                    first_retained = first,
                    "journal: records this reader had not committed are no longer retained; skipping to the oldest retained record"
                );
                self.read_pos = first;
                self.committed = self.committed.max(first);
            }
            if self.read_pos >= st.next_seq || self.shared.in_memory {
                // In memory every retained record is in the tail, read by `read_tail`.
                return Ok(Vec::new());
            }
            let i = st
                .segments
                .partition_point(|s| s.first_seq <= self.read_pos)
                .saturating_sub(1);
            let seg = &st.segments[i];
            if self.read_pos >= seg.end_seq() {
                return Err(JournalError::Corrupt {
                    segment: seg.path.clone(),
                    offset: seg.len,
                    reason: format!("sequence {} is in no retained segment", self.read_pos),
                });
            }
            (
                seg.first_seq,
                seg.path.clone(),
                seg.len,
                i + 1 < st.segments.len(),
                seg.checkpoint(self.read_pos),
            )
        };
        let io = |e| JournalError::io(&path, e);

        let reuse =
            matches!(&self.pos, Some(p) if p.seg_first == seg_first && p.seq == self.read_pos);
        if !reuse {
            let file = File::open(&path).map_err(io)?;
            self.pos = Some(Position {
                seg_first,
                file,
                offset: checkpoint.1,
                seq: checkpoint.0,
            });
        }
        let Some(p) = self.pos.as_mut() else {
            unreachable!("position was just set")
        };
        let corrupt = |offset, reason: String| JournalError::Corrupt {
            segment: path.clone(),
            offset,
            reason,
        };

        // Skip from the index checkpoint to the read position.
        let mut hb = [0; RECORD_HEADER_LEN];
        while p.seq < self.read_pos {
            p.file.seek(SeekFrom::Start(p.offset)).map_err(io)?;
            p.file.read_exact(&mut hb).map_err(io)?;
            let h = RecordHeader::parse(&hb);
            if h.seq != p.seq {
                return Err(corrupt(
                    p.offset,
                    format!("sequence number {} where {} was expected", h.seq, p.seq),
                ));
            }
            p.offset += h.record_len();
            p.seq += 1;
        }

        let avail = usize::try_from(seg_len - p.offset).unwrap_or(usize::MAX);
        let by_bytes = max_bytes.saturating_add(max_records.saturating_mul(RECORD_HEADER_LEN));
        let by_count = match self.avg_record_len {
            0 => usize::MAX,
            avg => max_records
                .saturating_mul(avg)
                .saturating_add(avg / 4 * max_records),
        };
        let want = by_bytes
            .min(by_count)
            .clamp(MIN_CHUNK, MAX_CHUNK)
            .min(avail);
        self.buf.resize(want, 0);
        p.file.seek(SeekFrom::Start(p.offset)).map_err(io)?;
        p.file.read_exact(&mut self.buf).map_err(io)?;
        if self.buf.len() >= RECORD_HEADER_LEN {
            // A first record larger than the chunk is read whole.
            let need = RecordHeader::parse(&self.buf).record_len();
            if need > self.buf.len() as u64 && need <= avail as u64 {
                self.buf.resize(need as usize, 0);
                p.file.seek(SeekFrom::Start(p.offset)).map_err(io)?;
                p.file.read_exact(&mut self.buf).map_err(io)?;
            }
        }

        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut at = 0usize;
        while out.len() < max_records && at + RECORD_HEADER_LEN <= self.buf.len() {
            let h = RecordHeader::parse(&self.buf[at..]);
            let body = at + RECORD_HEADER_LEN;
            let end = body + h.len as usize;
            if end > self.buf.len() {
                if out.is_empty() {
                    return Err(corrupt(
                        p.offset,
                        format!("record length {} runs past the durable end", h.len),
                    ));
                }
                break;
            }
            if !out.is_empty() && bytes + h.len as usize > max_bytes {
                break;
            }
            let payload = &self.buf[body..end];
            if h.seq != p.seq || !h.matches(payload) {
                return Err(corrupt(
                    p.offset,
                    format!(
                        "checksum or sequence mismatch (expected sequence {})",
                        p.seq
                    ),
                ));
            }
            out.push(make(p.seq, payload));
            bytes += payload.len();
            p.offset += h.record_len();
            p.seq += 1;
            at = end;
        }
        if out.is_empty() && avail > 0 {
            return Err(corrupt(p.offset, "record header cut short".into()));
        }
        self.avg_record_len = at / out.len().max(1);
        self.read_pos = p.seq;
        if sealed && p.offset == seg_len {
            // Done with this segment: close it so its space is freed once it is deleted.
            self.pos = None;
        }
        if self.buf.capacity() > KEEP_BUF_BYTES {
            // A large first read (before the average record length is known) or one
            // large record: not kept for the reader's lifetime.
            self.buf = Vec::new();
        }
        Ok(out)
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(entry) = st.readers.get_mut(&self.name).filter(|e| e.id == self.id) {
            entry.in_use = false;
        }
    }
}

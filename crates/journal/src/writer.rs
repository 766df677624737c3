//! The writer thread: group commit.
//!
//! Appenders queue their records on a channel. The writer takes one request, then every
//! request that queued up meanwhile (while the previous `fdatasync` ran), encodes them
//! into one buffer, writes it with one `write` and makes it durable with one
//! `fdatasync`, and only then publishes the new records to readers and completes every
//! request in the group. A group never spans two segments: a request that would overflow
//! the active segment starts the next group, which first seals the segment and creates
//! a new one (file fsync + directory fsync).

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use vowguard_core::Event;

use crate::format::{self, MAX_RECORD_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::recover::create_segment;
use crate::state::{SegmentMeta, Shared, TailEntry};
use crate::{JournalError, WhenFull};

/// Reply to one append.
pub(crate) type AppendReply = oneshot::Sender<Result<Range<u64>, JournalError>>;

/// A request to the writer thread.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// Store these records durably.
    Append {
        records: Vec<Arc<[u8]>>,
        /// The decoded form of each record, kept in the in-memory tail once durable.
        decoded: Option<Vec<Arc<Event>>>,
        reply: AppendReply,
    },
    /// Finish the queued appends before this one, then stop.
    Close { reply: oneshot::Sender<()> },
}

/// Largest buffer one group writes (more requests wait for the next group).
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Requests encoded into one write.
#[derive(Debug, Default)]
struct Group {
    /// Seal the active segment and start a new one before writing.
    roll: bool,
    buf: Vec<u8>,
    /// `(seq, offset)` index entries for the records in `buf`.
    index: Vec<(u64, u64)>,
    first_seq: u64,
    next_seq: u64,
    replies: Vec<(Range<u64>, AppendReply)>,
    /// The in-memory tail entries of the records in `buf`.
    tail: Vec<TailEntry>,
}

impl Group {
    fn new(next_seq: u64) -> Self {
        Self {
            first_seq: next_seq,
            next_seq,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    /// Bytes this group adds to the journal.
    fn pending_bytes(&self) -> u64 {
        self.buf.len() as u64 + if self.roll { SEGMENT_HEADER_LEN } else { 0 }
    }

    fn records(&self) -> u64 {
        self.next_seq - self.first_seq
    }
}

/// What [`Writer::admit`] decided.
enum Admit {
    /// Encoded into the group (or answered with an error); keep collecting.
    Continue,
    /// Stored in `carry`; write the group now.
    Flush,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<WriterMsg>,
    carry: Option<WriterMsg>,
    file: File,
    path: PathBuf,
    seg_first: u64,
    /// Durable length of the active segment; the file holds exactly this much unless
    /// `dirty`.
    seg_len: u64,
    seg_records: u64,
    /// One past the last durable record.
    next_seq: u64,
    /// A failed write may have left bytes after `seg_len`.
    dirty: bool,
    drops_unlogged: u64,
    last_drop_log: Option<Instant>,
    /// The previous group's buffer, kept for the next group (cleared, capacity kept up to
    /// [`KEEP_BUF_BYTES`]): a group of 1 024 events is ~650 KB, and growing a fresh buffer
    /// to that by doubling costs a dozen reallocations and copies per group.
    spare_buf: Vec<u8>,
}

/// Largest group buffer kept between groups.
const KEEP_BUF_BYTES: usize = 4 << 20;

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, rx: mpsc::Receiver<WriterMsg>, file: File) -> Self {
        let (path, seg_first, seg_len, seg_records, next_seq) = {
            let st = shared.lock();
            let active = st.segments.back().expect("at least one segment exists");
            (
                active.path.clone(),
                active.first_seq,
                active.len,
                active.records,
                st.next_seq,
            )
        };
        Self {
            shared,
            rx,
            carry: None,
            file,
            path,
            seg_first,
            seg_len,
            seg_records,
            next_seq,
            dirty: false,
            drops_unlogged: 0,
            last_drop_log: None,
            spare_buf: Vec::new(),
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            let msg = match self.carry.take() {
                Some(m) => m,
                None => match self.rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            let mut group = Group::new(self.next_seq);
            group.buf = std::mem::take(&mut self.spare_buf);
            match msg {
                WriterMsg::Close { reply } => {
                    self.log_drops(true);
                    let _ = reply.send(());
                    return;
                }
                WriterMsg::Append {
                    records,
                    decoded,
                    reply,
                } => {
                    // The head of a group is always encoded or answered (it waits for
                    // space itself when blocked), never deferred.
                    let _ = self.admit(&mut group, records, decoded, reply, true);
                }
            }
            while self.carry.is_none() {
                match self.rx.try_recv() {
                    Ok(WriterMsg::Append {
                        records,
                        decoded,
                        reply,
                    }) => {
                        if let Admit::Flush = self.admit(&mut group, records, decoded, reply, false)
                        {
                            break;
                        }
                    }
                    Ok(close @ WriterMsg::Close { .. }) => self.carry = Some(close),
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit(group);
            } else {
                self.keep_buf(group.buf);
            }
        }
    }

    /// Checks one request and encodes it into `group`, or answers it with an error, or
    /// (not `head`) defers it to the next group.
    fn admit(
        &mut self,
        group: &mut Group,
        records: Vec<Arc<[u8]>>,
        decoded: Option<Vec<Arc<Event>>>,
        reply: AppendReply,
        head: bool,
    ) -> Admit {
        let config = &self.shared.config;
        if let Some(big) = records.iter().find(|r| r.len() > MAX_RECORD_BYTES) {
            let _ = reply.send(Err(JournalError::TooLarge {
                bytes: big.len() as u64,
                limit: MAX_RECORD_BYTES as u64,
            }));
            return Admit::Continue;
        }
        let bytes: u64 = records
            .iter()
            .map(|r| (RECORD_HEADER_LEN + r.len()) as u64)
            .sum();
        // What is left once every sealed segment is freed: the active segment (at most
        // one segment) and a new segment header.
        let limit = config
            .max_bytes
            .saturating_sub(self.shared.segment_limit + 2 * SEGMENT_HEADER_LEN);
        if bytes > limit {
            let _ = reply.send(Err(JournalError::TooLarge { bytes, limit }));
            return Admit::Continue;
        }

        if !head && group.buf.len() as u64 + bytes > MAX_GROUP_BYTES as u64 {
            self.carry = Some(WriterMsg::Append {
                records,
                decoded,
                reply,
            });
            return Admit::Flush;
        }
        // Segment boundary: roll before this request if it would overflow a non-empty
        // active segment.
        let (seg_len, seg_has_records) = if group.roll {
            (SEGMENT_HEADER_LEN + group.buf.len() as u64, true)
        } else {
            (
                self.seg_len + group.buf.len() as u64,
                self.seg_records > 0 || !group.buf.is_empty(),
            )
        };
        let mut rolls_here = false;
        if seg_has_records && seg_len + bytes > self.shared.segment_limit {
            if !head {
                self.carry = Some(WriterMsg::Append {
                    records,
                    decoded,
                    reply,
                });
                return Admit::Flush;
            }
            rolls_here = true;
        }

        // Space.
        let need = bytes + if rolls_here { SEGMENT_HEADER_LEN } else { 0 };
        let mut blocked_since: Option<Instant> = None;
        loop {
            let mut st = self.shared.lock();
            if st.total_bytes + group.pending_bytes() + need <= config.max_bytes {
                break;
            }
            match config.when_full {
                WhenFull::DropNewest => {
                    drop(st);
                    self.count_drop(records.len() as u64);
                    let _ = reply.send(Err(JournalError::Full));
                    return Admit::Continue;
                }
                WhenFull::Block => {
                    if !group.is_empty() {
                        drop(st);
                        self.carry = Some(WriterMsg::Append {
                            records,
                            decoded,
                            reply,
                        });
                        return Admit::Flush;
                    }
                    if self.shared.is_closing() {
                        drop(st);
                        self.shared.blocked.store(false, Ordering::Relaxed);
                        let _ = reply.send(Err(JournalError::Closed));
                        return Admit::Continue;
                    }
                    if blocked_since.is_none() {
                        tracing::warn!(
                            bytes = st.total_bytes,
                            max_bytes = config.max_bytes,
                            "journal full (when_full = block): appends wait until every reader commits and a segment is freed"
                        );
                        blocked_since = Some(Instant::now());
                        self.shared.blocked.store(true, Ordering::Relaxed);
                    }
                    st = self
                        .shared
                        .space
                        .wait_timeout(st, Duration::from_millis(500))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                    drop(st);
                }
            }
        }
        if let Some(since) = blocked_since {
            self.shared.blocked.store(false, Ordering::Relaxed);
            tracing::info!(
                waited_ms = since.elapsed().as_millis() as u64,
                "journal has space again; appends resume"
            );
        }

        if rolls_here {
            group.roll = true;
        }
        let (seg_first, base) = if group.roll {
            (group.first_seq, SEGMENT_HEADER_LEN)
        } else {
            (self.seg_first, self.seg_len)
        };
        let start = group.next_seq;
        for r in &records {
            let seq = group.next_seq;
            if SegmentMeta::wants_index(seg_first, seq) {
                group.index.push((seq, base + group.buf.len() as u64));
            }
            format::encode_record(&mut group.buf, seq, r);
            group.next_seq += 1;
        }
        let mut events = decoded
            .filter(|events| events.len() == records.len())
            .map(Vec::into_iter);
        group
            .tail
            .extend(records.into_iter().map(|stored| TailEntry {
                event: events.as_mut().and_then(Iterator::next),
                stored,
            }));
        group.replies.push((start..group.next_seq, reply));
        Admit::Continue
    }

    /// Writes the group durably and answers its requests.
    fn commit(&mut self, mut group: Group) {
        if !group.buf.is_empty() {
            // Recovery tells a torn last group from damage in durable data by it.
            format::mark_group_start(&mut group.buf, 0);
        }
        let mut backoff = Duration::from_millis(10);
        let mut full_logged = false;
        loop {
            let err = match self.write_group(&mut group) {
                Ok(()) => break,
                Err(e) => e,
            };
            let storage_full = matches!(
                &err,
                JournalError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull
                    || source.kind() == io::ErrorKind::QuotaExceeded
            );
            if !storage_full {
                tracing::error!(error = %err, "journal write failed; the appends were not stored");
                for (_, reply) in group.replies.drain(..) {
                    let _ = reply.send(Err(err.duplicate()));
                }
                return;
            }
            match self.shared.config.when_full {
                WhenFull::DropNewest => {
                    tracing::warn!(error = %err, "journal: disk full");
                    self.count_drop(group.records());
                    for (_, reply) in group.replies.drain(..) {
                        let _ = reply.send(Err(JournalError::Full));
                    }
                    return;
                }
                WhenFull::Block => {
                    if self.shared.is_closing() {
                        for (_, reply) in group.replies.drain(..) {
                            let _ = reply.send(Err(err.duplicate()));
                        }
                        return;
                    }
                    if !full_logged {
                        tracing::warn!(
                            error = %err,
                            "journal: disk full (when_full = block); retrying until space is available"
                        );
                        full_logged = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
        self.log_drops(false);
        for (range, reply) in group.replies.drain(..) {
            let _ = reply.send(Ok(range));
        }
        self.keep_buf(group.buf);
    }

    /// Keeps a group's buffer for the next group (unless it grew unusually large).
    fn keep_buf(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= KEEP_BUF_BYTES {
            buf.clear();
            self.spare_buf = buf;
        }
    }

    /// One attempt: (roll), write, fdatasync, publish. On error the file is cut back to
    /// its durable length (or marked dirty so the next attempt does it).
    fn write_group(&mut self, group: &mut Group) -> Result<(), JournalError> {
        if self.dirty {
            self.repair()?;
        }
        if group.roll {
            self.roll()?;
            group.roll = false;
        }
        self.dirty = true;
        let written = self.write_and_sync(&group.buf);
        if let Err(e) = written {
            let err = JournalError::io(&self.path, e);
            // Cut off whatever part of the group reached the file: those records were
            // never acknowledged and their sequence numbers are reused.
            if let Err(repair) = self.repair() {
                tracing::error!(error = %repair, "journal: could not cut back a failed write; retrying before the next write");
            }
            return Err(err);
        }
        self.dirty = false;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);

        let added = group.buf.len() as u64;
        let records = group.records();
        {
            let mut st = self.shared.lock();
            let active = st.segments.back_mut().expect("at least one segment exists");
            active.len += added;
            active.records += records;
            active.index.append(&mut group.index);
            st.next_seq = group.next_seq;
            st.total_bytes += added;
            st.tail.push(group.first_seq, group.tail.drain(..));
        }
        self.seg_len += added;
        self.seg_records += records;
        self.next_seq = group.next_seq;
        let next_seq = self.next_seq;
        self.shared.durable.send_modify(|d| d.next_seq = next_seq);
        Ok(())
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        {
            let fail = &self.shared.fail_writes;
            if fail
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                // Simulate a partial write before the disk fills up.
                let _ = self.file.write_all(&buf[..buf.len() / 2]);
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
        }
        self.file.write_all(buf)?;
        self.file.sync_data()
    }

    /// Cuts the active segment back to its durable length.
    fn repair(&mut self) -> Result<(), JournalError> {
        let seg_len = self.seg_len;
        let res = self
            .file
            .set_len(seg_len)
            .and_then(|()| self.file.seek(SeekFrom::Start(seg_len)).map(drop))
            .and_then(|()| self.file.sync_all());
        res.map_err(|e| JournalError::io(&self.path, e))?;
        self.dirty = false;
        Ok(())
    }

    /// Seals the active segment and starts a new one at `next_seq`.
    fn roll(&mut self) -> Result<(), JournalError> {
        let first = self.next_seq;
        let path = self
            .shared
            .config
            .dir
            .join(format::segment_file_name(first));
        let file = create_segment(&path, first)?;
        if let Err(e) = format::sync_dir(&self.shared.config.dir) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        {
            let mut st = self.shared.lock();
            st.segments.push_back(SegmentMeta::new(first, path.clone()));
            st.total_bytes += SEGMENT_HEADER_LEN;
        }
        tracing::debug!(segment = %path.display(), "journal: new segment");
        self.file = file;
        self.path = path;
        self.seg_first = first;
        self.seg_len = SEGMENT_HEADER_LEN;
        self.seg_records = 0;
        Ok(())
    }

    fn count_drop(&mut self, records: u64) {
        self.shared
            .dropped_full
            .fetch_add(records, Ordering::Relaxed);
        self.drops_unlogged += records;
        self.log_drops(false);
    }

    /// Logs drops at most once a second, and whatever is left when `force`d or when
    /// appends succeed again.
    fn log_drops(&mut self, force: bool) {
        if self.drops_unlogged == 0 {
            return;
        }
        let due = self
            .last_drop_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if force || due {
            tracing::warn!(
                dropped = self.drops_unlogged,
                dropped_total = self.shared.dropped_full.load(Ordering::Relaxed),
                max_bytes = self.shared.config.max_bytes,
                "journal full (when_full = drop_newest): the newest events were refused and not acknowledged"
            );
            self.drops_unlogged = 0;
            self.last_drop_log = Some(Instant::now());
        }
    }
}

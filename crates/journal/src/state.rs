//! State shared by the journal handle, the writer thread, the maintenance thread and
//! the readers.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};

use tokio::sync::watch;
use vowguard_core::Event;

use crate::JournalConfig;
use crate::format::{INDEX_EVERY, SEGMENT_HEADER_LEN};
use crate::maint::MaintMsg;

/// One segment file as the journal knows it.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    /// Sequence number of its first record (also its file name).
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    /// Durable length in bytes, header included. Readers never read past it.
    pub(crate) len: u64,
    /// Number of durable records.
    pub(crate) records: u64,
    /// Sparse index: `(seq, byte offset)` of the first record and of every
    /// [`INDEX_EVERY`]th record after it.
    pub(crate) index: Vec<(u64, u64)>,
}

impl SegmentMeta {
    /// An empty segment (header only).
    pub(crate) fn new(first_seq: u64, path: PathBuf) -> Self {
        Self {
            first_seq,
            path,
            len: SEGMENT_HEADER_LEN,
            records: 0,
            index: vec![(first_seq, SEGMENT_HEADER_LEN)],
        }
    }

    /// One past the last durable sequence number.
    pub(crate) fn end_seq(&self) -> u64 {
        self.first_seq + self.records
    }

    /// Whether record `seq` at `offset` gets an index entry.
    pub(crate) fn wants_index(first_seq: u64, seq: u64) -> bool {
        seq != first_seq && (seq - first_seq).is_multiple_of(INDEX_EVERY)
    }

    /// The indexed position at or before `seq`.
    pub(crate) fn checkpoint(&self, seq: u64) -> (u64, u64) {
        let i = self.index.partition_point(|(s, _)| *s <= seq);
        self.index[i.saturating_sub(1)]
    }
}

/// A reader's positions.
#[derive(Debug, Clone)]
pub(crate) struct ReaderEntry {
    /// Identifies this incarnation of the reader (a removed and re-created reader gets a
    /// new one, so stale handles cannot commit into it).
    pub(crate) id: u64,
    /// Every record below this is done for the reader (in memory).
    pub(crate) committed: u64,
    /// What the cursor file on disk says (what a crash would resume from).
    pub(crate) persisted: u64,
    /// Whether a live [`JournalReader`](crate::JournalReader) holds the name.
    pub(crate) in_use: bool,
}

/// Everything behind the state mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Retained segments, oldest first; the last is the active one.
    pub(crate) segments: VecDeque<SegmentMeta>,
    /// One past the last durable record.
    pub(crate) next_seq: u64,
    /// Bytes of all segment files.
    pub(crate) total_bytes: u64,
    pub(crate) readers: BTreeMap<String, ReaderEntry>,
    pub(crate) next_reader_id: u64,
    /// The recent durable records in decoded form.
    pub(crate) tail: Tail,
}

impl State {
    /// Sequence number of the oldest retained record.
    pub(crate) fn first_seq(&self) -> u64 {
        match self.segments.front() {
            Some(segment) => segment.first_seq,
            // In memory (no segments), the tail holds every retained record.
            None if !self.tail.entries.is_empty() => self.tail.first_seq,
            None => self.next_seq,
        }
    }

    /// Drops the tail entries every reader has committed past.
    pub(crate) fn trim_tail(&mut self) {
        let done = self
            .readers
            .values()
            .map(|r| r.committed)
            .min()
            .unwrap_or(0);
        self.tail.drop_below(done);
    }
}

/// One record of the in-memory tail: its stored bytes and its decoded event (`None` when
/// it was appended as bytes only).
#[derive(Debug)]
pub(crate) struct TailEntry {
    pub(crate) event: Option<Arc<Event>>,
    pub(crate) stored: Arc<[u8]>,
}

impl TailEntry {
    /// What the entry counts against `tail_cache_bytes`: its stored bytes and, when it
    /// holds a decoded event, that event's struct plus about as many heap bytes again as
    /// its stored text (the decoded strings), so the bound is on memory, not on bytes
    /// stored.
    pub(crate) fn weight(&self) -> usize {
        let stored = self.stored.len();
        match self.event {
            Some(_) => 2 * stored + std::mem::size_of::<Event>(),
            None => stored,
        }
    }
}

/// The recent durable records, contiguous in sequence numbers, bounded in memory (the sum
/// of [`TailEntry::weight`]).
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// Sequence number of `entries[0]`.
    pub(crate) first_seq: u64,
    pub(crate) entries: VecDeque<TailEntry>,
    pub(crate) bytes: usize,
    pub(crate) limit: usize,
}

impl Tail {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            ..Self::default()
        }
    }

    /// Adds durable records `seq..`; a gap (records not added) starts the tail afresh.
    pub(crate) fn push(&mut self, seq: u64, entries: impl IntoIterator<Item = TailEntry>) {
        if self.limit == 0 {
            return;
        }
        if self.first_seq + self.entries.len() as u64 != seq {
            self.entries.clear();
            self.bytes = 0;
            self.first_seq = seq;
        }
        for entry in entries {
            self.bytes += entry.weight();
            self.entries.push_back(entry);
        }
        while self.bytes > self.limit {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.weight();
            self.first_seq += 1;
        }
    }

    pub(crate) fn drop_below(&mut self, seq: u64) {
        while self.first_seq < seq && !self.entries.is_empty() {
            self.pop_front();
        }
    }

    /// The entry of `seq`, if it is held.
    pub(crate) fn get(&self, seq: u64) -> Option<&TailEntry> {
        let at = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.entries.get(at)
    }
}

/// What readers wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Durable {
    pub(crate) next_seq: u64,
    pub(crate) closed: bool,
}

/// State shared by every part of one open journal.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: JournalConfig,
    pub(crate) segment_limit: u64,
    pub(crate) state: Mutex<State>,
    /// Signalled when segments are deleted (Block-mode appends wait on it) and on close.
    pub(crate) space: Condvar,
    pub(crate) durable: watch::Sender<Durable>,
    /// Set by `close()` and on drop: new appends and commits are refused, waits end.
    pub(crate) closing: AtomicBool,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    /// Whether an append is waiting for space (`when_full = "block"`).
    pub(crate) blocked: AtomicBool,
    /// Rounds of cursor persists since open.
    pub(crate) cursor_persists: AtomicU64,
    /// Serialises cursor-file I/O (maintenance thread, `reader`, `remove_reader`).
    pub(crate) cursor_io: Mutex<()>,
    pub(crate) maint_tx: mpsc::Sender<MaintMsg>,
    /// Whether the journal lives in memory only (no files, no threads: see
    /// [`Journal::in_memory`](crate::Journal::in_memory)).
    pub(crate) in_memory: bool,
    /// Signalled when readers free memory (in memory only: blocked appends wait on it)
    /// and on close.
    pub(crate) freed: tokio::sync::Notify,
    /// Test hook: the next this-many segment writes fail with "storage full".
    #[cfg(test)]
    pub(crate) fail_writes: std::sync::atomic::AtomicU32,
}

impl Shared {
    /// Locks the state, ignoring poisoning (every update keeps the state consistent
    /// before it can panic).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_cursor_io(&self) -> MutexGuard<'_, ()> {
        self.cursor_io.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Tells the maintenance thread that a cursor changed (or a reader went away).
    pub(crate) fn poke_maintenance(&self) {
        let _ = self.maint_tx.send(MaintMsg::Dirty);
    }

    pub(crate) fn send_maintenance(&self, msg: MaintMsg) -> bool {
        self.maint_tx.send(msg).is_ok()
    }

    /// Marks the journal closing and wakes everything that waits.
    pub(crate) fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
        drop(self.lock());
        self.space.notify_all();
        self.freed.notify_waiters();
    }

    /// After readers committed: in memory, wakes appends waiting for space; on disk,
    /// tells the maintenance thread (which persists cursors and frees segments).
    pub(crate) fn committed(&self) {
        if self.in_memory {
            self.freed.notify_waiters();
        } else {
            self.poke_maintenance();
        }
    }

    pub(crate) fn mark_closed(&self) {
        self.durable.send_modify(|d| d.closed = true);
    }
}

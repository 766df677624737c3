//! The durable embedded journal of vowguard.
//!
//! Every event a source hands to vowguard is appended here before the source is
//! acknowledged; each sink then reads the journal at its own position and commits what it
//! delivered (or dead-lettered). A record is deleted only when every reader has committed
//! past it, so a slow sink never delays the others and nothing is lost when a sink is down,
//! the process is killed, or the disk fills.
//!
//! How the pieces fit:
//!
//! * [`Journal::append`] hands records to a writer thread that does **group commit**: all
//!   appends queued while the previous `fdatasync` ran are written with one `write` and one
//!   `fdatasync`; only then do their futures complete with their sequence numbers.
//! * Records live in **segment files** (`<first seq>.seg`, 64 MiB by default), each record
//!   framed as `[len u32][crc32 u32][seq u64][payload]`. On [`Journal::open`] every segment
//!   is checked; a torn write at the end of the last segment (a crash mid-write) is cut off
//!   and reported in [`Recovery`]; damage anywhere else stops the open with
//!   [`JournalError::Corrupt`] naming the segment and byte offset.
//! * A [`JournalReader`] per sink reads durable records and [`commits`](JournalReader::commit)
//!   its position. A maintenance thread persists cursors (`<name>.cursor`, written
//!   atomically: temp file, fsync, rename, directory fsync) and deletes segments that every
//!   reader's *persisted* cursor has passed.
//! * The journal is bounded by [`JournalConfig::max_bytes`]; when full, appends either wait
//!   ([`WhenFull::Block`]) or fail with [`JournalError::Full`] ([`WhenFull::DropNewest`],
//!   counted in [`JournalStats::dropped_full`] and logged).
//!
//! [`Journal::in_memory`] opens a journal that keeps its records in memory only (no files,
//! no threads), with the same readers and bounds: for tests and for hosts that accept
//! losing what is queued when the process stops (at-most-once).
//!
//! See `crates/journal/README.md` for the format, the durability argument and the
//! measurements behind the choice of a segmented log over an embedded database.

mod config;
mod error;
mod format;
mod maint;
mod memory;
mod reader;
mod recover;
mod state;
mod writer;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};
use vowguard_core::Event;

pub use config::{
    DEFAULT_CURSOR_PERSIST_INTERVAL, DEFAULT_MAX_BYTES, DEFAULT_SEGMENT_BYTES,
    DEFAULT_TAIL_CACHE_BYTES, JournalConfig, WhenFull,
};
pub use error::JournalError;
pub use reader::{JournalReader, Record};

use maint::MaintMsg;
use state::{Durable, ReaderEntry, Shared};
use writer::{Writer, WriterMsg};

/// What [`Journal::open`] found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Records retained in the journal after recovery.
    pub records: u64,
    /// Torn writes cut off the end of the last segment (0 or 1): the record that was being
    /// written when the process died, never acknowledged to its source.
    pub torn_records_dropped: u64,
    /// Bytes removed with the torn write (including a segment file whose header was never
    /// completely written).
    pub torn_bytes_dropped: u64,
    /// Segment files retained.
    pub segments: usize,
}

/// A snapshot of the journal's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalStats {
    /// Bytes of all segment files.
    pub bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// Records retained (`next_seq - first_seq`).
    pub records: u64,
    /// Sequence number of the oldest retained record.
    pub first_seq: u64,
    /// Sequence number the next appended record gets.
    pub next_seq: u64,
    /// Segment files retained.
    pub segments: usize,
    /// Records refused because the journal (or the disk) was full, since open.
    pub dropped_full: u64,
    /// `fdatasync` calls made for appends since open (group commits).
    pub fsyncs: u64,
    /// Rounds of cursor persists (cursor files written and the directory fsynced) since
    /// open.
    pub cursor_persists: u64,
    /// Whether appends are waiting for space right now (`when_full = "block"`, the
    /// journal is full until readers commit).
    pub appends_blocked: bool,
    /// Every reader known to the journal, by name.
    pub readers: Vec<ReaderStats>,
}

/// Position of one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderStats {
    /// The reader's name.
    pub name: String,
    /// Every record below this is committed (in memory).
    pub committed: u64,
    /// Every record below this is committed durably (where a crash resumes).
    pub persisted: u64,
    /// Records appended but not yet committed by this reader.
    pub lag: u64,
}

/// The durable journal. Cheap to clone (all clones share one journal); `Send + Sync`.
///
/// Dropping the last clone without [`close`](Self::close) stops the background threads
/// like a crash would: every acknowledged append is durable, but commits made since the
/// last cursor persist may be lost (those records are delivered again).
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    writer_tx: Mutex<Option<mpsc::Sender<WriterMsg>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The directory lock (released when the last handle is dropped); none in memory.
    _lock: Option<std::fs::File>,
}

impl Journal {
    /// Opens (or creates) the journal in `config.dir`: checks every segment, cuts off a
    /// torn write at the end of the last one, loads the reader cursors and starts the
    /// writer and maintenance threads.
    pub async fn open(config: JournalConfig) -> Result<(Journal, Recovery), JournalError> {
        let cfg = config.clone();
        let recovered = tokio::task::spawn_blocking(move || recover::recover(&cfg))
            .await
            .map_err(|e| JournalError::Io {
                path: config.dir.clone(),
                source: std::io::Error::other(format!("journal recovery task failed: {e}")),
            })??;
        let recovery = recovered.recovery;
        tracing::info!(
            dir = %config.dir.display(),
            records = recovery.records,
            segments = recovery.segments,
            torn_records_dropped = recovery.torn_records_dropped,
            "journal opened"
        );

        let (durable, _) = watch::channel(Durable {
            next_seq: recovered.state.next_seq,
            closed: false,
        });
        let (maint_tx, maint_rx) = mpsc::channel();
        let (writer_tx, writer_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            segment_limit: config.effective_segment_bytes(),
            config,
            state: Mutex::new(recovered.state),
            space: Condvar::new(),
            durable,
            closing: AtomicBool::new(false),
            dropped_full: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            cursor_persists: AtomicU64::new(0),
            cursor_io: Mutex::new(()),
            maint_tx,
            in_memory: false,
            freed: tokio::sync::Notify::new(),
            #[cfg(test)]
            fail_writes: std::sync::atomic::AtomicU32::new(0),
        });

        let writer = Writer::new(Arc::clone(&shared), writer_rx, recovered.active);
        let spawn_err = |e| JournalError::io(&shared.config.dir, e);
        let writer_thread = std::thread::Builder::new()
            .name("vowguard-journal-writer".into())
            .spawn(move || writer.run())
            .map_err(spawn_err)?;
        let maint_shared = Arc::clone(&shared);
        let maint_thread = std::thread::Builder::new()
            .name("vowguard-journal-maint".into())
            .spawn(move || maint::run(&maint_shared, &maint_rx))
            .map_err(spawn_err)?;
        // Segments may already be collectable (e.g. a reader was removed while we were down).
        shared.poke_maintenance();

        let journal = Journal {
            inner: Arc::new(Inner {
                shared,
                writer_tx: Mutex::new(Some(writer_tx)),
                threads: Mutex::new(vec![writer_thread, maint_thread]),
                _lock: Some(recovered.lock),
            }),
        };
        Ok((journal, recovery))
    }

    /// A journal in memory only: no files (`config.dir` is not touched), no background
    /// threads; the same readers, commits and `when_full` behaviour. `max_bytes` bounds the
    /// memory of the records kept (each record's bytes, and for an event appended with
    /// [`append_decoded`](Self::append_decoded) its decoded form, counted as in
    /// [`JournalConfig::tail_cache_bytes`]); a record is freed once every reader has
    /// committed past it. `tail_cache_bytes`, `segment_bytes` and
    /// `cursor_persist_interval_ms` do not apply.
    ///
    /// **At-most-once**: an append returns once the records are in memory; whatever is not
    /// committed when the journal is dropped or the process stops is lost. Use it for tests
    /// and for hosts that accept that; [`open`](Self::open) is the durable journal.
    pub fn in_memory(config: JournalConfig) -> Journal {
        let (durable, _) = watch::channel(Durable {
            next_seq: 0,
            closed: false,
        });
        // No maintenance thread: its channel has no receiver and pokes go nowhere.
        let (maint_tx, _) = mpsc::channel();
        let shared = Arc::new(Shared {
            segment_limit: config.effective_segment_bytes(),
            config,
            state: Mutex::new(state::State {
                segments: Default::default(),
                next_seq: 0,
                total_bytes: 0,
                readers: Default::default(),
                next_reader_id: 0,
                tail: state::Tail::new(u64::MAX),
            }),
            space: Condvar::new(),
            durable,
            closing: AtomicBool::new(false),
            dropped_full: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            cursor_persists: AtomicU64::new(0),
            cursor_io: Mutex::new(()),
            maint_tx,
            in_memory: true,
            freed: tokio::sync::Notify::new(),
            #[cfg(test)]
            fail_writes: std::sync::atomic::AtomicU32::new(0),
        });
        Journal {
            inner: Arc::new(Inner {
                shared,
                writer_tx: Mutex::new(None),
                threads: Mutex::new(Vec::new()),
                _lock: None,
            }),
        }
    }

    /// Whether this journal lives in memory only ([`in_memory`](Self::in_memory)).
    pub fn is_in_memory(&self) -> bool {
        self.inner.shared.in_memory
    }

    /// Appends records durably (written and fsynced) before returning their sequence
    /// numbers; concurrent callers share fsyncs (group commit).
    ///
    /// When the journal is full: with [`WhenFull::Block`] this waits until readers free
    /// space; with [`WhenFull::DropNewest`] it returns [`JournalError::Full`] and the records
    /// are counted in [`JournalStats::dropped_full`]. An empty `records` returns an empty
    /// range at the current end. If the future is dropped after the request was queued, the
    /// records may still be stored (at-least-once).
    pub async fn append(&self, records: Vec<Vec<u8>>) -> Result<Range<u64>, JournalError> {
        self.append_inner(records.into_iter().map(Arc::from).collect(), None)
            .await
    }

    /// Like [`append`](Self::append), for records that are the storage form of events:
    /// once durable, each event is also kept in the in-memory tail (bounded by
    /// [`JournalConfig::tail_cache_bytes`], with the record's bytes), so readers at the
    /// tail get it from [`JournalReader::next_records`] without reading or decoding the
    /// record again.
    /// `records[i]` must be the storage form of `events[i]` (what a reader would decode
    /// from disk); the two vectors must be of the same length, else the events are not
    /// kept (the records are still appended).
    ///
    /// The records are taken as shared slices (`Arc<[u8]>`: one allocation per record, which
    /// the in-memory tail and every reader then share without copying).
    pub async fn append_decoded(
        &self,
        records: Vec<Arc<[u8]>>,
        events: Vec<Arc<Event>>,
    ) -> Result<Range<u64>, JournalError> {
        self.append_inner(records, Some(events)).await
    }

    async fn append_inner(
        &self,
        records: Vec<Arc<[u8]>>,
        decoded: Option<Vec<Arc<Event>>>,
    ) -> Result<Range<u64>, JournalError> {
        let shared = &self.inner.shared;
        if shared.is_closing() {
            return Err(JournalError::Closed);
        }
        if records.is_empty() {
            let next = shared.lock().next_seq;
            return Ok(next..next);
        }
        if shared.in_memory {
            return memory::append(shared, records, decoded).await;
        }
        let (reply, rx) = oneshot::channel();
        {
            let tx = self
                .inner
                .writer_tx
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let tx = tx.as_ref().ok_or(JournalError::Closed)?;
            tx.send(WriterMsg::Append {
                records,
                decoded,
                reply,
            })
            .map_err(|_| JournalError::Closed)?;
        }
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Opens (or creates) the named reader. A new reader starts at the oldest retained
    /// record (its cursor file is written before this returns, so it pins the journal from
    /// now on); an existing one resumes after its last commit. One live handle per name.
    pub fn reader(&self, name: &str) -> Result<JournalReader, JournalError> {
        format::validate_reader_name(name)?;
        let shared = &self.inner.shared;
        let _io = shared.lock_cursor_io();
        let mut st = shared.lock();
        if shared.is_closing() {
            return Err(JournalError::Closed);
        }
        if let Some(entry) = st.readers.get_mut(name) {
            if entry.in_use {
                return Err(JournalError::ReaderInUse {
                    name: name.to_string(),
                });
            }
            entry.in_use = true;
            let (id, committed) = (entry.id, entry.committed);
            drop(st);
            return Ok(JournalReader::new(
                Arc::clone(shared),
                name.to_string(),
                id,
                committed,
            ));
        }
        let start = st.first_seq();
        let id = st.next_reader_id;
        st.next_reader_id += 1;
        // Registered before the cursor is written so that it pins `start` at once.
        st.readers.insert(
            name.to_string(),
            ReaderEntry {
                id,
                committed: start,
                persisted: start,
                in_use: true,
            },
        );
        drop(st);
        let dir = shared.config.dir.as_path();
        if !shared.in_memory
            && let Err(e) =
                format::write_cursor(dir, name, start).and_then(|()| format::sync_dir(dir))
        {
            shared.lock().readers.remove(name);
            return Err(e);
        }
        tracing::info!(reader = name, start, "journal: new reader");
        Ok(JournalReader::new(
            Arc::clone(shared),
            name.to_string(),
            id,
            start,
        ))
    }

    /// Forgets a reader that is no longer configured: deletes its cursor so it no longer
    /// pins segments (they are freed shortly after). A live handle of that reader gets
    /// [`JournalError::ReaderRemoved`]. Removing an unknown name is not an error.
    pub fn remove_reader(&self, name: &str) -> Result<(), JournalError> {
        let shared = &self.inner.shared;
        let _io = shared.lock_cursor_io();
        {
            let mut st = shared.lock();
            if st.readers.remove(name).is_none() {
                return Ok(());
            }
            st.trim_tail();
        }
        if shared.in_memory {
            shared.committed();
            return Ok(());
        }
        let dir = shared.config.dir.as_path();
        let path = format::cursor_path(dir, name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(JournalError::io(&path, e)),
        }
        format::sync_dir(dir)?;
        tracing::info!(reader = name, "journal: reader removed");
        shared.poke_maintenance();
        Ok(())
    }

    /// Sizes, positions and counters.
    pub fn stats(&self) -> JournalStats {
        let shared = &self.inner.shared;
        let st = shared.lock();
        let first_seq = st.first_seq();
        JournalStats {
            bytes: if shared.in_memory {
                st.tail.bytes as u64
            } else {
                st.total_bytes
            },
            max_bytes: shared.config.max_bytes,
            records: st.next_seq - first_seq,
            first_seq,
            next_seq: st.next_seq,
            segments: st.segments.len(),
            dropped_full: shared.dropped_full.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
            appends_blocked: shared.blocked.load(Ordering::Relaxed),
            cursor_persists: shared.cursor_persists.load(Ordering::Relaxed),
            readers: st
                .readers
                .iter()
                .map(|(name, r)| ReaderStats {
                    name: name.clone(),
                    committed: r.committed,
                    persisted: r.persisted,
                    lag: st.next_seq.saturating_sub(r.committed),
                })
                .collect(),
        }
    }

    /// The configuration the journal was opened with.
    pub fn config(&self) -> &JournalConfig {
        &self.inner.shared.config
    }

    /// Finishes the appends already queued, persists every reader cursor and stops the
    /// background threads. Appends waiting for space (`Block`) fail with
    /// [`JournalError::Closed`]; later appends and commits too; waiting readers get an
    /// empty batch. Idempotent.
    pub async fn close(&self) -> Result<(), JournalError> {
        let shared = &self.inner.shared;
        shared.begin_close();
        let writer_tx = self
            .inner
            .writer_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tx) = writer_tx {
            let (reply, rx) = oneshot::channel();
            if tx.send(WriterMsg::Close { reply }).is_ok() {
                let _ = rx.await;
            }
        }
        let (reply, rx) = oneshot::channel();
        let result = if shared.send_maintenance(MaintMsg::Flush { reply, stop: true }) {
            rx.await.unwrap_or(Ok(()))
        } else {
            Ok(())
        };
        shared.mark_closed();
        result
    }

    /// Test hook: make the next `n` segment writes fail as if the disk were full.
    #[cfg(test)]
    pub(crate) fn fail_next_writes(&self, n: u32) {
        self.inner.shared.fail_writes.store(n, Ordering::Release);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.begin_close();
        drop(
            self.writer_tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let _ = self.shared.maint_tx.send(MaintMsg::Shutdown);
        self.shared.mark_closed();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;

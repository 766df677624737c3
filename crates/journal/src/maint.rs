//! The maintenance thread: persists reader cursors and deletes consumed segments.
//!
//! Commits only change memory and poke this thread. It takes every poke that queued up,
//! writes each changed cursor (temp file, fsync, rename), fsyncs the directory once, and
//! then deletes, oldest first, every sealed segment whose records are below the
//! *persisted* cursor of every reader, so that a crash can never resume a reader inside a
//! deleted segment. Deleting frees space and wakes appends blocked on a full journal.
//!
//! Persists are spaced by at least `cursor_persist_interval`: commits that arrive
//! sooner wait and are persisted together (a crash repeats them, never skips them). A
//! flush (`close`) is served at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::JournalError;
use crate::format;
use crate::state::Shared;

/// A request to the maintenance thread.
#[derive(Debug)]
pub(crate) enum MaintMsg {
    /// A cursor changed or a reader was removed.
    Dirty,
    /// Persist every cursor now and answer; with `stop`, exit afterwards.
    Flush {
        reply: oneshot::Sender<Result<(), JournalError>>,
        stop: bool,
    },
    /// Exit without persisting anything more (the journal was dropped without `close`).
    Shutdown,
}

pub(crate) fn run(shared: &Arc<Shared>, rx: &mpsc::Receiver<MaintMsg>) {
    let interval = shared.config.cursor_persist_interval;
    let mut failures = 0u32;
    let mut last_persist: Option<Instant> = None;
    loop {
        let Ok(first) = rx.recv() else { return };
        let mut replies = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                MaintMsg::Dirty => {}
                MaintMsg::Flush { reply, stop: s } => {
                    replies.push(reply);
                    stop |= s;
                }
                MaintMsg::Shutdown => return,
            }
            next = rx.try_recv().ok();
        }
        // Only commits: wait out the interval since the last persist, gathering more.
        if replies.is_empty()
            && let Some(due) = last_persist.map(|t| t + interval)
        {
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                match rx.recv_timeout(due - now) {
                    Ok(MaintMsg::Dirty) => {}
                    Ok(MaintMsg::Flush { reply, stop: s }) => {
                        replies.push(reply);
                        stop |= s;
                        break;
                    }
                    Ok(MaintMsg::Shutdown) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        }
        let persists = shared.cursor_persists.load(Ordering::Relaxed);
        let result = persist_and_collect(shared);
        if shared.cursor_persists.load(Ordering::Relaxed) != persists {
            last_persist = Some(Instant::now());
        }
        match &result {
            Ok(()) => failures = 0,
            Err(e) => {
                tracing::error!(error = %e, "journal: could not persist reader cursors or free segments; retrying");
                failures += 1;
            }
        }
        for reply in replies {
            let _ = reply.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(e.duplicate()),
            });
        }
        if stop {
            return;
        }
        if result.is_err() && failures < 20 {
            // Retry later even if nobody commits again.
            std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(failures)));
            let _ = shared.maint_tx.send(MaintMsg::Dirty);
        }
    }
}

/// Persists changed cursors, then deletes segments every reader has durably passed.
pub(crate) fn persist_and_collect(shared: &Shared) -> Result<(), JournalError> {
    persist_cursors(shared)?;
    collect_segments(shared)
}

fn persist_cursors(shared: &Shared) -> Result<(), JournalError> {
    let dir = shared.config.dir.as_path();
    let _io = shared.lock_cursor_io();
    let dirty: Vec<(String, u64)> = shared
        .lock()
        .readers
        .iter()
        .filter(|(_, r)| r.committed != r.persisted)
        .map(|(name, r)| (name.clone(), r.committed))
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    for (name, seq) in &dirty {
        format::write_cursor(dir, name, *seq)?;
    }
    format::sync_dir(dir)?;
    shared.cursor_persists.fetch_add(1, Ordering::Relaxed);
    let mut st = shared.lock();
    for (name, seq) in dirty {
        if let Some(r) = st.readers.get_mut(&name) {
            r.persisted = r.persisted.max(seq);
        }
    }
    Ok(())
}

fn collect_segments(shared: &Shared) -> Result<(), JournalError> {
    let dir = shared.config.dir.as_path();
    loop {
        // One segment at a time, oldest first, each deletion made durable before the
        // next, so the retained segments always stay contiguous on disk.
        let victim = {
            let mut st = shared.lock();
            let Some(min) = st.readers.values().map(|r| r.persisted).min() else {
                // No reader yet: keep everything for the sinks that will attach.
                return Ok(());
            };
            match st.segments.front() {
                Some(front) if st.segments.len() > 1 && front.end_seq() <= min => {
                    st.segments.pop_front()
                }
                _ => None,
            }
        };
        let Some(seg) = victim else { return Ok(()) };
        match std::fs::remove_file(&seg.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                shared.lock().segments.push_front(seg);
                return Err(JournalError::io(dir, e));
            }
        }
        format::sync_dir(dir)?;
        tracing::debug!(segment = %seg.path.display(), records = seg.records, "journal: segment consumed by every reader; deleted");
        {
            let mut st = shared.lock();
            st.total_bytes -= seg.len;
        }
        shared.space.notify_all();
    }
}

//! The in-memory journal ([`Journal::in_memory`](crate::Journal::in_memory)): records
//! live only in the tail, which never evicts a record a reader has not committed past;
//! `max_bytes` bounds the tail's memory (its [`TailEntry::weight`]s) instead of files.
//! Appends are answered at once, with no writer thread and no fsync: an event is "durable"
//! only for as long as the process lives (at-most-once across a stop or crash).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use vowguard_core::Event;

use crate::format::MAX_RECORD_BYTES;
use crate::state::{Shared, TailEntry};
use crate::{JournalError, WhenFull};

/// Appends `records` (non-empty) to the in-memory tail, waiting for readers to free memory
/// with [`WhenFull::Block`] or refusing with [`WhenFull::DropNewest`].
pub(crate) async fn append(
    shared: &Shared,
    records: Vec<Arc<[u8]>>,
    decoded: Option<Vec<Arc<Event>>>,
) -> Result<Range<u64>, JournalError> {
    if let Some(big) = records.iter().find(|r| r.len() > MAX_RECORD_BYTES) {
        return Err(JournalError::TooLarge {
            bytes: big.len() as u64,
            limit: MAX_RECORD_BYTES as u64,
        });
    }
    let mut events = decoded
        .filter(|events| events.len() == records.len())
        .map(Vec::into_iter);
    let entries: Vec<TailEntry> = records
        .into_iter()
        .map(|stored| TailEntry {
            event: events.as_mut().and_then(Iterator::next),
            stored,
        })
        .collect();
    let weight: u64 = entries.iter().map(|e| e.weight() as u64).sum();
    let limit = shared.config.max_bytes;
    if weight > limit {
        return Err(JournalError::TooLarge {
            bytes: weight,
            limit,
        });
    }
    let mut blocked = false;
    loop {
        // Registered before the check, so a commit between the check and the wait is
        // not missed.
        let freed = shared.freed.notified();
        let mut freed = std::pin::pin!(freed);
        freed.as_mut().enable();
        if shared.is_closing() {
            shared.blocked.store(false, Ordering::Relaxed);
            return Err(JournalError::Closed);
        }
        {
            let mut st = shared.lock();
            if st.tail.bytes as u64 + weight <= limit {
                let first = st.next_seq;
                let count = entries.len() as u64;
                st.tail.push(first, entries);
                st.next_seq = first + count;
                drop(st);
                if blocked {
                    shared.blocked.store(false, Ordering::Relaxed);
                    tracing::info!("in-memory journal has room again; appends resume");
                }
                shared.durable.send_modify(|d| d.next_seq = first + count);
                return Ok(first..first + count);
            }
        }
        match shared.config.when_full {
            WhenFull::DropNewest => {
                shared
                    .dropped_full
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                return Err(JournalError::Full);
            }
            WhenFull::Block => {
                if !blocked {
                    blocked = true;
                    shared.blocked.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        max_bytes = limit,
                        "in-memory journal full (when_full = block): appends wait until every reader commits"
                    );
                }
                freed.await;
            }
        }
    }
}

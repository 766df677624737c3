//! The writer: one thread owns the files and group-commits appends.
//!
//! Appenders serialise their records, queue them on a channel and wait. The writer thread
//! takes one request and every request that queued meanwhile, writes all their frames with
//! one `write` and one `fdatasync` of the log, then appends their index rows (and any
//! completed 256-leaf tile) with one `fdatasync` of the index, updates the in-memory
//! frontier and only then answers every request in the group. Checkpoints are signed by the
//! same thread on a timer and at close, after checking that the new tree is consistent with
//! the previous checkpoint.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use vowguard_core::{AuditRecord, AuditTrail, CheckpointRef, Error};

use crate::format::{
    self, CHECKPOINTS_FILE, FRAME_HEADER, Frame, INDEX_FILE, INDEX_ROW, LOG_FILE, LOG_MAGIC,
    MAX_ENTRY_BYTES, TILES_FILE, show,
};
use crate::merkle::{self, Frontier, LeafHashes, TILE_HEIGHT, TILE_LEAVES};
use crate::note::{Checkpoint, NoteSigner, NoteVerifier};
use crate::reader::{FileLeafHashes, checkpoint_ref, parse_row};
use crate::witness::Witness;

/// One group commit: each request's payloads and its reply.
type Group = Vec<(Vec<Vec<u8>>, oneshot::Sender<Result<u64, Error>>)>;

/// Largest group written at once (more requests wait for the next group).
const MAX_GROUP_BYTES: usize = 8 << 20;

/// How to open an [`AuditLog`].
#[derive(Debug)]
#[non_exhaustive]
pub struct AuditOptions {
    /// The `audit` directory (created if missing).
    pub dir: PathBuf,
    /// The checkpoint signing key; its name is the log's origin.
    pub signer: NoteSigner,
    /// How often a checkpoint is written while entries arrive.
    pub checkpoint_interval: Duration,
    /// Where checkpoints are also published.
    pub witness: Witness,
}

impl AuditOptions {
    /// Options for a log in `dir` signed by `signer`: a checkpoint every minute while
    /// entries arrive, no witness.
    pub fn new(dir: impl Into<PathBuf>, signer: NoteSigner) -> Self {
        Self {
            dir: dir.into(),
            signer,
            checkpoint_interval: Duration::from_secs(60),
            witness: Witness::default(),
        }
    }

    /// These options with a checkpoint every `interval` while entries arrive.
    #[must_use]
    pub fn with_checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// These options publishing checkpoints to `witness` too.
    #[must_use]
    pub fn with_witness(mut self, witness: Witness) -> Self {
        self.witness = witness;
        self
    }
}

enum Msg {
    Append {
        payloads: Vec<Vec<u8>>,
        reply: oneshot::Sender<Result<u64, Error>>,
    },
    Checkpoint {
        reply: oneshot::Sender<Result<Option<CheckpointRef>, Error>>,
    },
    Close {
        reply: oneshot::Sender<Result<Option<CheckpointRef>, Error>>,
    },
}

#[derive(Debug, Default)]
struct Published {
    size: u64,
    checkpoint: Option<CheckpointRef>,
}

/// The tamper-evident audit log (writer side). Cheap to clone; all clones share one writer
/// thread. Implements [`AuditTrail`]: `append` returns once the records are durable.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    published: Arc<Mutex<Published>>,
    verifier: NoteVerifier,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the sender makes the writer write its final checkpoint and stop.
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Append { .. } => "Append",
            Msg::Checkpoint { .. } => "Checkpoint",
            Msg::Close { .. } => "Close",
        })
    }
}

impl AuditLog {
    /// Opens (or creates) the log in `options.dir`, recovers a torn tail, checks the files
    /// against the latest checkpoint (signed by this key, root matching the entries) and
    /// starts the writer thread.
    pub fn open(options: AuditOptions) -> Result<Self, Error> {
        let writer = Writer::open(&options)?;
        let verifier = options.signer.verifier().clone();
        let published = Arc::new(Mutex::new(Published {
            size: writer.frontier.size(),
            checkpoint: writer.last.as_ref().map(|(_, r)| r.clone()),
        }));
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vowguard-audit".into())
            .spawn({
                let published = Arc::clone(&published);
                move || writer.run(&rx, &published)
            })
            .map_err(|e| Error::io("cannot start the audit writer thread", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir: options.dir,
                tx: Mutex::new(Some(tx)),
                published,
                verifier,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The `audit` directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Number of durable entries.
    pub fn len(&self) -> u64 {
        self.inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size
    }

    /// Whether the log has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The latest checkpoint written (or found at open).
    pub fn latest_checkpoint(&self) -> Option<CheckpointRef> {
        self.inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .checkpoint
            .clone()
    }

    /// The public key checkpoints verify with.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.inner.verifier
    }

    /// A reader over the same directory (records with their index, checkpoints).
    pub fn reader(&self) -> Result<crate::AuditReader, Error> {
        crate::AuditReader::open(self.inner.dir.clone())
    }

    fn send(&self, msg: Msg) -> Result<(), Error> {
        let tx = self.inner.tx.lock().unwrap_or_else(PoisonError::into_inner);
        tx.as_ref()
            .ok_or_else(|| Error::internal("the audit log is closed"))?
            .send(msg)
            .map_err(|_| Error::internal("the audit writer stopped"))
    }

    /// Writes a checkpoint now (when entries were added since the last one) and returns the
    /// latest checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<CheckpointRef>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Checkpoint { reply })?;
        rx.await
            .map_err(|_| Error::internal("the audit writer stopped"))?
    }

    /// Finishes queued appends, writes the final checkpoint and stops the writer. Later
    /// appends fail.
    pub async fn close(&self) -> Result<Option<CheckpointRef>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Close { reply })?;
        let result = rx
            .await
            .map_err(|_| Error::internal("the audit writer stopped"))?;
        self.inner
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        result
    }

    /// Appends already-serialised entries (each the leaf bytes); returns the first index.
    pub async fn append_raw(&self, payloads: Vec<Vec<u8>>) -> Result<u64, Error> {
        if let Some(p) = payloads.iter().find(|p| p.len() > MAX_ENTRY_BYTES) {
            return Err(Error::invalid_input(format!(
                "audit record of {} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit",
                p.len()
            )));
        }
        if payloads.is_empty() {
            return Ok(self.len());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Append { payloads, reply })?;
        rx.await
            .map_err(|_| Error::internal("the audit writer stopped"))?
    }
}

#[async_trait::async_trait]
impl AuditTrail for AuditLog {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error> {
        let payloads = records
            .iter()
            .map(|r| {
                serde_json::to_vec(r)
                    .map_err(|e| Error::internal(format!("cannot serialise audit record: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.append_raw(payloads).await
    }
}

struct Writer {
    dir: PathBuf,
    log: File,
    index: File,
    tiles: File,
    checkpoints: File,
    log_len: u64,
    index_len: u64,
    tiles_len: u64,
    frontier: Frontier,
    /// The latest checkpoint: parsed body and reference.
    last: Option<(Checkpoint, CheckpointRef)>,
    signer: NoteSigner,
    interval: Duration,
    witness: Witness,
    /// Set when a failed write could not be rolled back: every later append fails.
    broken: Option<String>,
    /// Holds the exclusive lock on `LOCK` while the writer lives (one writer per log).
    _lock: File,
}

fn open_rw(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", show(path)), e))
}

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let msg = format!("{what} {}", show(path));
    move |e| Error::io(msg, e)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "cannot sync directory"))
}

impl Writer {
    fn open(options: &AuditOptions) -> Result<Self, Error> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io(&dir, "cannot create audit directory"))?;
        let lock_path = dir.join("LOCK");
        let lock = open_rw(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::unavailable(format!(
                    "the audit log in {} is open in another vowguard process (stop it first)",
                    show(&dir)
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", show(&lock_path)), e));
            }
        }
        let log_path = dir.join(LOG_FILE);
        let idx_path = dir.join(INDEX_FILE);
        let tiles_path = dir.join(TILES_FILE);
        let cp_path = dir.join(CHECKPOINTS_FILE);
        let fresh = !log_path.exists();
        let log = open_rw(&log_path)?;
        let index = open_rw(&idx_path)?;
        let tiles = open_rw(&tiles_path)?;
        let checkpoints = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&cp_path)
            .map_err(io(&cp_path, "cannot open"))?;
        if fresh {
            log.write_all_at(&LOG_MAGIC, 0)
                .and_then(|()| log.sync_all())
                .map_err(io(&log_path, "cannot initialise"))?;
            sync_dir(&dir)?;
        }
        let mut magic = [0u8; 8];
        log.read_exact_at(&mut magic, 0)
            .map_err(io(&log_path, "cannot read the header of"))?;
        if magic != LOG_MAGIC {
            return Err(Error::invalid_input(format!(
                "{} is not a vowguard audit log (bad magic)",
                show(&log_path)
            )));
        }
        let mut w = Self {
            dir,
            log,
            index,
            tiles,
            checkpoints,
            log_len: 0,
            index_len: 0,
            tiles_len: 0,
            frontier: Frontier::new(),
            last: None,
            signer: NoteSigner::parse(&options.signer.to_private_text())
                .map_err(|e| Error::config(format!("audit key: {e}")))?,
            interval: options.checkpoint_interval,
            witness: options.witness.clone(),
            broken: None,
            _lock: lock,
        };
        w.recover()?;
        w.load_checkpoints()?;
        Ok(w)
    }

    /// Reconciles the index with the log: index rows must describe durable frames; frames
    /// after the last indexed one are indexed when intact, and the log is truncated at the
    /// first torn or damaged frame after the index (an unacknowledged, torn write).
    fn recover(&mut self) -> Result<(), Error> {
        let log_path = self.dir.join(LOG_FILE);
        let idx_path = self.dir.join(INDEX_FILE);
        let log_len = self
            .log
            .metadata()
            .map_err(io(&log_path, "cannot stat"))?
            .len();
        let idx_bytes = self
            .index
            .metadata()
            .map_err(io(&idx_path, "cannot stat"))?
            .len();
        let mut rows = idx_bytes / INDEX_ROW;
        if idx_bytes % INDEX_ROW != 0 {
            self.index
                .set_len(rows * INDEX_ROW)
                .map_err(io(&idx_path, "cannot truncate"))?;
        }
        let mut scan_from = LOG_MAGIC.len() as u64;
        if rows > 0 {
            let mut row = [0u8; INDEX_ROW as usize];
            self.index
                .read_exact_at(&mut row, (rows - 1) * INDEX_ROW)
                .map_err(io(&idx_path, "cannot read"))?;
            let (offset, hash) = parse_row(&row);
            let payload = read_frame_at(&self.log, offset, log_len).ok_or_else(|| {
                Error::invalid_input(format!(
                    "audit log {} is shorter than its index: entry {} is missing (log \
                     truncated or damaged); run `vowguard audit verify`",
                    show(&log_path),
                    rows - 1
                ))
            })?;
            if merkle::leaf_hash(&payload) != hash {
                return Err(Error::invalid_input(format!(
                    "audit entry {} does not match its index (tampered or damaged); run \
                     `vowguard audit verify`",
                    rows - 1
                )));
            }
            scan_from = offset + (FRAME_HEADER + payload.len()) as u64;
        }
        // Index intact frames after the indexed ones; cut the log at the first torn one.
        let mut tail = vec![0u8; (log_len - scan_from) as usize];
        self.log
            .read_exact_at(&mut tail, scan_from)
            .map_err(io(&log_path, "cannot read"))?;
        let mut pos = 0usize;
        let mut new_rows = Vec::new();
        while pos < tail.len() {
            match format::decode_frame(&tail[pos..]) {
                Frame::Whole {
                    payload,
                    crc_ok: true,
                } => {
                    new_rows.extend_from_slice(&(scan_from + pos as u64).to_le_bytes());
                    new_rows.extend_from_slice(&merkle::leaf_hash(payload));
                    pos += FRAME_HEADER + payload.len();
                }
                _ => break,
            }
        }
        let good_len = scan_from + pos as u64;
        if good_len < log_len {
            tracing::warn!(
                bytes = log_len - good_len,
                "audit log: discarding a torn tail (an append that was never acknowledged)"
            );
            self.log
                .set_len(good_len)
                .and_then(|()| self.log.sync_all())
                .map_err(io(&log_path, "cannot truncate"))?;
        }
        if !new_rows.is_empty() {
            self.index
                .write_all_at(&new_rows, rows * INDEX_ROW)
                .and_then(|()| self.index.sync_data())
                .map_err(io(&idx_path, "cannot write"))?;
            rows += new_rows.len() as u64 / INDEX_ROW;
        }
        self.log_len = good_len;
        self.index_len = rows;
        self.rebuild_frontier()
    }

    /// Builds the frontier from the tiles (recomputing missing ones from the index).
    fn rebuild_frontier(&mut self) -> Result<(), Error> {
        let tiles_path = self.dir.join(TILES_FILE);
        let want = self.index_len / TILE_LEAVES;
        let have = self
            .tiles
            .metadata()
            .map_err(io(&tiles_path, "cannot stat"))?
            .len()
            / 32;
        if have > want || self.tiles.metadata().map(|m| m.len() % 32).unwrap_or(0) != 0 {
            self.tiles
                .set_len(have.min(want) * 32)
                .map_err(io(&tiles_path, "cannot truncate"))?;
        }
        let have = have.min(want);
        let source = FileLeafHashes::open(&self.dir)?;
        let mut missing = Vec::new();
        for t in have..want {
            let root = source
                .range_root_leaves_only(t * TILE_LEAVES, (t + 1) * TILE_LEAVES)
                .map_err(io(&self.dir.join(INDEX_FILE), "cannot read"))?;
            missing.extend_from_slice(&root);
        }
        if !missing.is_empty() {
            self.tiles
                .write_all_at(&missing, have * 32)
                .and_then(|()| self.tiles.sync_data())
                .map_err(io(&tiles_path, "cannot write"))?;
        }
        self.tiles_len = want;
        let mut tiles = vec![0u8; (want * 32) as usize];
        self.tiles
            .read_exact_at(&mut tiles, 0)
            .map_err(io(&tiles_path, "cannot read"))?;
        let mut f = Frontier::new();
        for t in tiles.chunks_exact(32) {
            f.push_subtree(t.try_into().expect("32 bytes"), TILE_HEIGHT);
        }
        for i in want * TILE_LEAVES..self.index_len {
            f.push(
                source
                    .leaf(i)
                    .map_err(io(&self.dir.join(INDEX_FILE), "cannot read"))?,
            );
        }
        self.frontier = f;
        Ok(())
    }

    /// Loads the latest checkpoint and checks it: signed by our key, no larger than the log,
    /// root equal to the log's root at its size. A torn last note (crash while writing it)
    /// is cut off.
    fn load_checkpoints(&mut self) -> Result<(), Error> {
        let path = self.dir.join(CHECKPOINTS_FILE);
        let mut text = String::new();
        (&self.checkpoints)
            .read_to_string(&mut text)
            .map_err(io(&path, "cannot read"))?;
        let mut notes = format::split_checkpoints(&text);
        if !text.is_empty() && !text.ends_with("\n\n") {
            // A torn note at the end: keep the complete ones.
            let torn = notes.pop().unwrap_or_default();
            tracing::warn!(
                bytes = torn.len(),
                "audit checkpoints: discarding a torn last note"
            );
            let keep: String = notes.iter().map(|n| format!("{n}\n")).collect();
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path, "cannot open"))?;
            f.set_len(keep.len() as u64)
                .and_then(|()| f.sync_all())
                .map_err(io(&path, "cannot truncate"))?;
        }
        let Some(note) = notes.pop() else {
            return Ok(());
        };
        let n = notes.len() + 1;
        let text = self.signer.verifier().verify(&note).map_err(|e| {
            Error::config(format!(
                "audit checkpoint {n} in {}: {e}; is `audit.key` the key this log was \
                 signed with?",
                show(&path)
            ))
        })?;
        let cp = Checkpoint::parse_text(text)
            .map_err(|e| Error::invalid_input(format!("audit checkpoint {n}: {e}")))?;
        if cp.size > self.index_len {
            return Err(Error::invalid_input(format!(
                "audit log has {} entries but checkpoint {n} covers {}: entries were deleted \
                 or the log truncated; run `vowguard audit verify`",
                self.index_len, cp.size
            )));
        }
        let root = if cp.size == 0 {
            merkle::empty_root()
        } else {
            FileLeafHashes::open(&self.dir)?
                .range_root(0, cp.size)
                .map_err(io(&self.dir.join(INDEX_FILE), "cannot read"))?
        };
        if root != cp.root {
            return Err(Error::invalid_input(format!(
                "audit log does not match checkpoint {n} (size {}): entries were changed; \
                 run `vowguard audit verify`",
                cp.size
            )));
        }
        let reference = checkpoint_ref(&note)?;
        self.last = Some((cp, reference));
        Ok(())
    }

    fn run(mut self, rx: &mpsc::Receiver<Msg>, published: &Mutex<Published>) {
        let mut next_checkpoint = Instant::now() + self.interval;
        loop {
            let wait = next_checkpoint.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Append { payloads, reply }) => {
                    let mut group = vec![(payloads, reply)];
                    let mut bytes: usize = group[0].0.iter().map(Vec::len).sum();
                    let mut after = None;
                    while bytes < MAX_GROUP_BYTES {
                        match rx.try_recv() {
                            Ok(Msg::Append { payloads, reply }) => {
                                bytes += payloads.iter().map(Vec::len).sum::<usize>();
                                group.push((payloads, reply));
                            }
                            Ok(other) => {
                                after = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(group, published);
                    if let Some(msg) = after
                        && self.control(msg, published)
                    {
                        return;
                    }
                }
                Ok(msg) => {
                    if self.control(msg, published) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.checkpoint(published) {
                        tracing::error!(error = %e, "audit log: final checkpoint failed");
                    }
                    return;
                }
            }
            if Instant::now() >= next_checkpoint {
                if let Err(e) = self.checkpoint(published) {
                    tracing::error!(error = %e, "audit log: checkpoint failed");
                }
                next_checkpoint = Instant::now() + self.interval;
            }
        }
    }

    /// Handles a checkpoint or close request; true when the writer must stop.
    fn control(&mut self, msg: Msg, published: &Mutex<Published>) -> bool {
        match msg {
            Msg::Checkpoint { reply } => {
                let _ = reply.send(self.checkpoint(published));
                false
            }
            Msg::Close { reply } => {
                let _ = reply.send(self.checkpoint(published));
                true
            }
            Msg::Append { reply, .. } => {
                let _ = reply.send(Err(Error::internal("audit writer: unexpected request")));
                false
            }
        }
    }

    fn commit(&mut self, group: Group, published: &Mutex<Published>) {
        if let Some(reason) = &self.broken {
            for (_, reply) in group {
                let _ = reply.send(Err(Error::internal(format!(
                    "the audit log is unusable after an earlier write failure: {reason}"
                ))));
            }
            return;
        }
        let before = self.frontier.clone();
        let mut buf = Vec::new();
        let mut rows = Vec::new();
        let mut tiles = Vec::new();
        let mut firsts = Vec::with_capacity(group.len());
        let mut next = self.index_len;
        for (payloads, _) in &group {
            firsts.push(next);
            for p in payloads {
                let offset = self.log_len + buf.len() as u64;
                format::encode_frame(&mut buf, p);
                let leaf = merkle::leaf_hash(p);
                rows.extend_from_slice(&offset.to_le_bytes());
                rows.extend_from_slice(&leaf);
                if let Some(tile) = self.frontier.push(leaf) {
                    tiles.extend_from_slice(&tile);
                }
                next += 1;
            }
        }
        let result = self.write_group(&buf, &rows, &tiles);
        match result {
            Ok(()) => {
                self.log_len += buf.len() as u64;
                self.index_len = next;
                self.tiles_len += tiles.len() as u64 / 32;
                published
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .size = next;
                for ((_, reply), first) in group.into_iter().zip(firsts) {
                    let _ = reply.send(Ok(first));
                }
            }
            Err(e) => {
                self.frontier = before;
                // Roll the files back to their durable lengths.
                let rollback = self
                    .log
                    .set_len(self.log_len)
                    .and_then(|()| self.index.set_len(self.index_len * INDEX_ROW))
                    .and_then(|()| self.tiles.set_len(self.tiles_len * 32));
                if let Err(r) = rollback {
                    self.broken = Some(format!("{e}; rollback failed: {r}"));
                }
                tracing::error!(error = %e, "audit log: append failed");
                for (_, reply) in group {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn write_group(&mut self, buf: &[u8], rows: &[u8], tiles: &[u8]) -> Result<(), Error> {
        let log_path = self.dir.join(LOG_FILE);
        self.log
            .write_all_at(buf, self.log_len)
            .and_then(|()| self.log.sync_data())
            .map_err(io(&log_path, "cannot append to"))?;
        let idx_path = self.dir.join(INDEX_FILE);
        self.index
            .write_all_at(rows, self.index_len * INDEX_ROW)
            .map_err(io(&idx_path, "cannot append to"))?;
        if !tiles.is_empty() {
            self.tiles
                .write_all_at(tiles, self.tiles_len * 32)
                .and_then(|()| self.tiles.sync_data())
                .map_err(io(&self.dir.join(TILES_FILE), "cannot append to"))?;
        }
        self.index
            .sync_data()
            .map_err(io(&idx_path, "cannot sync"))?;
        Ok(())
    }

    /// Signs and appends a checkpoint when the tree grew since the last one, after checking
    /// consistency with it; publishes it to the witnesses.
    fn checkpoint(&mut self, published: &Mutex<Published>) -> Result<Option<CheckpointRef>, Error> {
        let size = self.frontier.size();
        if let Some((last, reference)) = &self.last
            && last.size == size
        {
            return Ok(Some(reference.clone()));
        }
        if size == 0 {
            return Ok(None);
        }
        let root = self.frontier.root();
        if let Some((last, _)) = &self.last {
            let mut source = FileLeafHashes::open(&self.dir)?;
            source.truncate(size);
            let proof = merkle::consistency_proof(&mut source, last.size, size)
                .map_err(io(&self.dir.join(INDEX_FILE), "cannot read"))?;
            if !merkle::verify_consistency(last.size, size, &last.root, &root, &proof) {
                return Err(Error::internal(format!(
                    "refusing to sign: the tree of {size} entries is not consistent with the \
                     previous checkpoint (size {}); the index was altered",
                    last.size
                )));
            }
        }
        let cp = Checkpoint {
            origin: self.signer.name().to_owned(),
            size,
            root,
        };
        let note = self
            .signer
            .sign(&cp.to_text())
            .map_err(|e| Error::internal(format!("cannot sign checkpoint: {e}")))?;
        let path = self.dir.join(CHECKPOINTS_FILE);
        let record = format!("{note}\n");
        self.checkpoints
            .write_all(record.as_bytes())
            .and_then(|()| self.checkpoints.sync_data())
            .map_err(io(&path, "cannot append to"))?;
        let reference = checkpoint_ref(&note)?;
        self.witness.publish(&note);
        self.last = Some((cp, reference.clone()));
        published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .checkpoint = Some(reference.clone());
        tracing::debug!(size, "audit checkpoint written");
        Ok(Some(reference))
    }
}

/// Reads the payload of a whole, checksummed frame at `offset`.
fn read_frame_at(file: &File, offset: u64, file_len: u64) -> Option<Vec<u8>> {
    let mut header = [0u8; FRAME_HEADER];
    if offset + FRAME_HEADER as u64 > file_len {
        return None;
    }
    file.read_exact_at(&mut header, offset).ok()?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?);
    if len as usize > MAX_ENTRY_BYTES || offset + (FRAME_HEADER as u64) + u64::from(len) > file_len
    {
        return None;
    }
    let mut bytes = header.to_vec();
    bytes.resize(FRAME_HEADER + len as usize, 0);
    file.read_exact_at(&mut bytes[FRAME_HEADER..], offset + FRAME_HEADER as u64)
        .ok()?;
    match format::decode_frame(&bytes) {
        Frame::Whole {
            payload,
            crc_ok: true,
        } => Some(payload.to_vec()),
        _ => None,
    }
}

//! Reading the audit log: records in order with their index, checkpoints, leaf hashes.
//!
//! [`AuditReader`] opens the files read-only and may be used while a writer appends (it sees
//! the entries that were durable and indexed when each call started). The store rebuilds its
//! projection with [`AuditReader::records`]; reports cite [`AuditReader::latest_checkpoint`].

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vowguard_core::{AuditRecord, CheckpointRef, Error};

use crate::format::{
    self, CHECKPOINTS_FILE, FRAME_HEADER, INDEX_FILE, INDEX_ROW, LOG_FILE, LOG_MAGIC,
    MAX_ENTRY_BYTES, TILES_FILE, show,
};
use crate::merkle::{Frontier, Hash, LeafHashes, TILE_HEIGHT, TILE_LEAVES};
use crate::note::Checkpoint;

/// Read-only access to an audit log directory (`<data_dir>/audit`).
#[derive(Debug, Clone)]
pub struct AuditReader {
    dir: PathBuf,
}

impl AuditReader {
    /// Opens the log in `dir` (the `audit` directory itself). Fails when there is no log.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        let log = dir.join(LOG_FILE);
        let mut file = File::open(&log)
            .map_err(|e| Error::io(format!("cannot open audit log {}", show(&log)), e))?;
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic)
            .map_err(|e| Error::io(format!("audit log {} has no header", show(&log)), e))?;
        if magic != LOG_MAGIC {
            return Err(Error::invalid_input(format!(
                "{} is not a vowguard audit log (bad magic)",
                show(&log)
            )));
        }
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of durable, indexed entries.
    pub fn len(&self) -> Result<u64, Error> {
        let idx = self.dir.join(INDEX_FILE);
        match std::fs::metadata(&idx) {
            Ok(m) => Ok(m.len() / INDEX_ROW),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io(format!("cannot stat {}", show(&idx)), e)),
        }
    }

    /// Whether the log has no entries.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// The raw entries (the Merkle leaf bytes) from index `from` on, in order, up to the
    /// number indexed when this is called.
    pub fn entries(&self, from: u64) -> Result<Entries, Error> {
        let end = self.len()?;
        let log_path = self.dir.join(LOG_FILE);
        let file = File::open(&log_path)
            .map_err(|e| Error::io(format!("cannot open {}", show(&log_path)), e))?;
        let offset = if from < end {
            self.index_row(from)?.0
        } else {
            file.metadata()
                .map(|m| m.len())
                .unwrap_or(LOG_MAGIC.len() as u64)
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(format!("cannot seek in {}", show(&log_path)), e))?;
        Ok(Entries {
            reader,
            path: log_path,
            next: from,
            end,
        })
    }

    /// The records from index `from` on, in order, each with its index. A damaged entry
    /// (checksum or JSON) is an error naming its index; run `vowguard audit verify`.
    pub fn records(
        &self,
        from: u64,
    ) -> Result<impl Iterator<Item = Result<(u64, AuditRecord), Error>> + use<>, Error> {
        Ok(self.entries(from)?.map(|entry| {
            let (index, bytes) = entry?;
            let record = serde_json::from_slice::<AuditRecord>(&bytes).map_err(|e| {
                Error::invalid_input(format!("audit entry {index} is not a valid record: {e}"))
            })?;
            Ok((index, record))
        }))
    }

    /// The entry at `index` (its leaf bytes).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, Error> {
        self.entries(index)?
            .next()
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "audit log has no entry {index} (it has {})",
                    self.len().unwrap_or(0)
                ))
            })?
            .map(|(_, b)| b)
    }

    /// `(log offset, leaf hash)` of entry `index` from the index file.
    fn index_row(&self, index: u64) -> Result<(u64, Hash), Error> {
        let path = self.dir.join(INDEX_FILE);
        let file =
            File::open(&path).map_err(|e| Error::io(format!("cannot open {}", show(&path)), e))?;
        let mut row = [0u8; INDEX_ROW as usize];
        file.read_exact_at(&mut row, index * INDEX_ROW)
            .map_err(|e| Error::io(format!("cannot read row {index} of {}", show(&path)), e))?;
        Ok(parse_row(&row))
    }

    /// Every checkpoint note in the order written (signatures not checked here).
    pub fn checkpoint_notes(&self) -> Result<Vec<String>, Error> {
        let path = self.dir.join(CHECKPOINTS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(format::split_checkpoints(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(format!("cannot read {}", show(&path)), e)),
        }
    }

    /// The latest checkpoint, parsed (its signature is checked by `vowguard audit verify`
    /// or [`crate::NoteVerifier::verify`] on [`CheckpointRef::note`]).
    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointRef>, Error> {
        let Some(note) = self.checkpoint_notes()?.pop() else {
            return Ok(None);
        };
        checkpoint_ref(&note).map(Some)
    }

    /// The leaf hashes as recorded in the index (for proofs).
    pub fn leaf_hashes(&self) -> Result<FileLeafHashes, Error> {
        FileLeafHashes::open(&self.dir)
    }
}

/// Parses a note into a [`CheckpointRef`] (signature unchecked).
pub fn checkpoint_ref(note: &str) -> Result<CheckpointRef, Error> {
    let text = note
        .split_once("\n\n")
        .map(|(t, _)| format!("{t}\n"))
        .ok_or_else(|| Error::invalid_input("checkpoint note has no signature block"))?;
    let cp = Checkpoint::parse_text(&text)
        .map_err(|e| Error::invalid_input(format!("checkpoint: {e}")))?;
    Ok(CheckpointRef {
        origin: cp.origin,
        size: cp.size,
        root: base64_root(&cp.root),
        note: note.to_owned(),
    })
}

fn base64_root(root: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(root)
}

pub(crate) fn parse_row(row: &[u8; INDEX_ROW as usize]) -> (u64, Hash) {
    let offset = u64::from_le_bytes(row[..8].try_into().expect("8 bytes"));
    let hash: Hash = row[8..].try_into().expect("32 bytes");
    (offset, hash)
}

/// Iterator over raw entries: `(index, leaf bytes)`.
#[derive(Debug)]
pub struct Entries {
    reader: BufReader<File>,
    path: PathBuf,
    next: u64,
    end: u64,
}

impl Iterator for Entries {
    type Item = Result<(u64, Vec<u8>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let mut header = [0u8; FRAME_HEADER];
        let result = (|| {
            self.reader.read_exact(&mut header)?;
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
            if len as usize > MAX_ENTRY_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "impossible length",
                ));
            }
            let mut payload = vec![0u8; len as usize];
            self.reader.read_exact(&mut payload)?;
            if format::frame_crc(len, &payload) != crc {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "checksum mismatch",
                ));
            }
            Ok(payload)
        })();
        match result {
            Ok(payload) => Some(Ok((index, payload))),
            Err(e) => {
                self.next = self.end;
                Some(Err(Error::io(
                    format!(
                        "audit entry {index} in {} is damaged (run `vowguard audit verify`)",
                        show(&self.path)
                    ),
                    e,
                )))
            }
        }
    }
}

/// Leaf hashes read from `entries.idx`, with the 256-leaf tiles of `tiles.idx` used for
/// aligned subtrees so a proof reads O(256 + n/256) hashes rather than n.
#[derive(Debug)]
pub struct FileLeafHashes {
    index: File,
    tiles: Option<File>,
    len: u64,
    tiles_len: u64,
}

impl FileLeafHashes {
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(INDEX_FILE);
        let index =
            File::open(&path).map_err(|e| Error::io(format!("cannot open {}", show(&path)), e))?;
        let len = index
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", show(&path)), e))?
            .len()
            / INDEX_ROW;
        let tiles_path = dir.join(TILES_FILE);
        let tiles = File::open(&tiles_path).ok();
        let tiles_len = tiles
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len() / 32)
            .min(len / TILE_LEAVES);
        Ok(Self {
            index,
            tiles,
            len,
            tiles_len,
        })
    }

    /// Limits the view to the first `len` leaves (those covered by a checkpoint).
    pub fn truncate(&mut self, len: u64) {
        self.len = self.len.min(len);
        self.tiles_len = self.tiles_len.min(self.len / TILE_LEAVES);
    }

    /// Leaf hash `i`.
    pub fn leaf(&self, i: u64) -> std::io::Result<Hash> {
        let mut row = [0u8; INDEX_ROW as usize];
        self.index.read_exact_at(&mut row, i * INDEX_ROW)?;
        Ok(parse_row(&row).1)
    }

    /// The root of leaves `start..end` from the index alone (no tiles).
    pub(crate) fn range_root_leaves_only(&self, start: u64, end: u64) -> std::io::Result<Hash> {
        let mut f = Frontier::new();
        self.push_leaves(&mut f, start, end)?;
        Ok(f.root())
    }

    /// Reads leaves `start..end` in chunks into `f`.
    fn push_leaves(&self, f: &mut Frontier, start: u64, end: u64) -> std::io::Result<()> {
        const CHUNK: u64 = 4096;
        let mut buf = vec![0u8; (CHUNK * INDEX_ROW) as usize];
        let mut i = start;
        while i < end {
            let n = (end - i).min(CHUNK);
            let bytes = &mut buf[..(n * INDEX_ROW) as usize];
            self.index.read_exact_at(bytes, i * INDEX_ROW)?;
            for row in bytes.chunks_exact(INDEX_ROW as usize) {
                f.push(row[8..].try_into().expect("32 bytes"));
            }
            i += n;
        }
        Ok(())
    }
}

impl LeafHashes for FileLeafHashes {
    fn len(&self) -> u64 {
        self.len
    }

    fn range_root(&mut self, start: u64, end: u64) -> std::io::Result<Hash> {
        let mut f = Frontier::new();
        let mut i = start;
        if start.is_multiple_of(TILE_LEAVES)
            && let Some(tiles) = &self.tiles
        {
            let first = start / TILE_LEAVES;
            let last = (end / TILE_LEAVES).min(self.tiles_len);
            if last > first {
                let mut buf = vec![0u8; ((last - first) * 32) as usize];
                tiles.read_exact_at(&mut buf, first * 32)?;
                for t in buf.chunks_exact(32) {
                    f.push_subtree(t.try_into().expect("32 bytes"), TILE_HEIGHT);
                }
                i = last * TILE_LEAVES;
            }
        }
        self.push_leaves(&mut f, i, end)?;
        Ok(f.root())
    }
}

//! Full verification of an audit log directory.
//!
//! The entries are re-read and re-hashed (the truth), compared with the leaf hashes the
//! writer recorded in the index (to localise which index changed, was deleted, inserted or
//! moved), and every checkpoint is checked: its signature, its root against the entries'
//! tree at its size, and its consistency with the previous checkpoint.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use vowguard_core::Error;

use crate::format::{
    self, CHECKPOINTS_FILE, FRAME_HEADER, INDEX_FILE, INDEX_ROW, LOG_FILE, LOG_MAGIC,
    MAX_ENTRY_BYTES, show,
};
use crate::merkle::{self, Frontier, Hash};
use crate::note::{Checkpoint, NoteVerifier};

/// One thing wrong with the log. Indices are 0-based entry indices.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The entry at `index` is not what was written there.
    Changed {
        /// Entry index.
        index: u64,
    },
    /// The entry written at `index` is gone (later entries moved down).
    Deleted {
        /// Entry index (as written).
        index: u64,
    },
    /// An entry that was never written by vowguard sits at `index`.
    Inserted {
        /// Position in the log file.
        index: u64,
    },
    /// The entry at `index` was written at `original`.
    Reordered {
        /// Where it is now.
        index: u64,
        /// Where it was written.
        original: u64,
    },
    /// The entry at `index` fails its frame checksum.
    Checksum {
        /// Entry index.
        index: u64,
    },
    /// The log ends in a partial frame after `index` whole entries.
    TornTail {
        /// Number of whole entries before it.
        index: u64,
        /// Bytes of the partial frame.
        bytes: u64,
    },
    /// Checkpoint `number` (1-based, in file order) is not validly signed by the key.
    CheckpointSignature {
        /// 1-based position in the checkpoints file.
        number: usize,
        /// Why.
        reason: String,
    },
    /// Checkpoint `number` covers more entries than the log has.
    CheckpointBeyondLog {
        /// 1-based position.
        number: usize,
        /// Its size.
        size: u64,
        /// Entries in the log.
        entries: u64,
    },
    /// Checkpoint `number`'s root differs from the entries' tree: some entry below `size`
    /// (at or after `since`, the last checkpoint that matched) was altered.
    CheckpointRoot {
        /// 1-based position.
        number: usize,
        /// Its size.
        size: u64,
        /// Size of the latest earlier checkpoint that matched (0 if none).
        since: u64,
    },
    /// Checkpoints `number - 1` and `number` are not consistent (smaller size, other origin,
    /// or a consistency proof that does not verify).
    CheckpointInconsistent {
        /// 1-based position of the later one.
        number: usize,
        /// Why.
        reason: String,
    },
    /// The log has entries but no checkpoint at all.
    NoCheckpoint,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Changed { index } => {
                write!(f, "entry {index}: changed (differs from what was written)")
            }
            Self::Deleted { index } => write!(f, "entry {index}: deleted"),
            Self::Inserted { index } => {
                write!(f, "entry {index}: inserted (never written by vowguard)")
            }
            Self::Reordered { index, original } => {
                write!(
                    f,
                    "entry {index}: reordered (it was written at index {original})"
                )
            }
            Self::Checksum { index } => write!(f, "entry {index}: frame checksum mismatch"),
            Self::TornTail { index, bytes } => write!(
                f,
                "log truncated: a partial entry of {bytes} bytes follows entry {}",
                index.saturating_sub(1)
            ),
            Self::CheckpointSignature { number, reason } => {
                write!(f, "checkpoint {number}: bad signature: {reason}")
            }
            Self::CheckpointBeyondLog {
                number,
                size,
                entries,
            } => write!(
                f,
                "checkpoint {number}: covers {size} entries but the log has {entries}: entries \
                 {entries}..{size} deleted (log truncated)"
            ),
            Self::CheckpointRoot {
                number,
                size,
                since,
            } => write!(
                f,
                "checkpoint {number}: root does not match the log at size {size}: an entry in \
                 {since}..{size} was altered"
            ),
            Self::CheckpointInconsistent { number, reason } => {
                write!(
                    f,
                    "checkpoint {number}: inconsistent with checkpoint {}: {reason}",
                    number - 1
                )
            }
            Self::NoCheckpoint => f.write_str("the log has entries but no checkpoint"),
        }
    }
}

/// What [`verify_dir`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Whole entries in the log file.
    pub entries: u64,
    /// Rows in the index.
    pub indexed: u64,
    /// Checkpoints found.
    pub checkpoints: usize,
    /// The latest valid checkpoint.
    pub latest: Option<Checkpoint>,
    /// Everything wrong, in log order; empty when the log is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the log in `dir` (the `audit` directory) against `verifier`.
pub fn verify_dir(dir: &Path, verifier: &NoteVerifier) -> Result<VerifyReport, Error> {
    verify_dir_with_progress(dir, verifier, &|_, _| {})
}

/// Like [`verify_dir`], calling `progress(bytes_read, total_bytes)` as the entry log is
/// read and hashed (the long part: every entry is read once), at most once per MiB read
/// and once at the end.
pub fn verify_dir_with_progress(
    dir: &Path,
    verifier: &NoteVerifier,
    progress: &dyn Fn(u64, u64),
) -> Result<VerifyReport, Error> {
    let mut report = VerifyReport::default();
    let (data, checksum_bad, torn) = read_log(&dir.join(LOG_FILE), progress)?;
    let index = read_index(&dir.join(INDEX_FILE))?;
    report.entries = data.len() as u64;
    report.indexed = index.len() as u64;
    let mut problems = diff(&data, &index);
    for i in checksum_bad {
        if !problems
            .iter()
            .any(|p| matches!(p, Problem::Changed { index } if *index == i))
        {
            problems.push(Problem::Checksum { index: i });
        }
    }
    if let Some(bytes) = torn {
        problems.push(Problem::TornTail {
            index: data.len() as u64,
            bytes,
        });
    }
    problems.extend(check_checkpoints(
        dir,
        verifier,
        &data,
        &index,
        &mut report,
    )?);
    report.problems = problems;
    Ok(report)
}

/// Leaf hashes of every whole frame, indices with a bad checksum, bytes of a torn tail.
/// Leaf hashes of the whole frames, indices failing their checksum, bytes of a torn tail.
type LogScan = (Vec<Hash>, Vec<u64>, Option<u64>);

fn read_log(path: &Path, progress: &dyn Fn(u64, u64)) -> Result<LogScan, Error> {
    let file = File::open(path).map_err(|e| Error::io(format!("cannot open {}", show(path)), e))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|e| Error::io(format!("{} has no header", show(path)), e))?;
    if magic != LOG_MAGIC {
        return Err(Error::invalid_input(format!(
            "{} is not a vowguard audit log",
            show(path)
        )));
    }
    let mut pos = LOG_MAGIC.len() as u64;
    let mut hashes = Vec::new();
    let mut bad = Vec::new();
    let mut payload = Vec::new();
    const PROGRESS_EVERY: u64 = 1 << 20;
    let mut reported = 0u64;
    loop {
        if pos - reported >= PROGRESS_EVERY {
            progress(pos, total);
            reported = pos;
        }
        let remaining = total - pos;
        if remaining == 0 {
            progress(pos, total);
            return Ok((hashes, bad, None));
        }
        let mut header = [0u8; FRAME_HEADER];
        if remaining < FRAME_HEADER as u64 {
            return Ok((hashes, bad, Some(remaining)));
        }
        r.read_exact(&mut header)
            .map_err(|e| Error::io(format!("cannot read {}", show(path)), e))?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len as usize > MAX_ENTRY_BYTES || u64::from(len) > remaining - FRAME_HEADER as u64 {
            return Ok((hashes, bad, Some(remaining)));
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload)
            .map_err(|e| Error::io(format!("cannot read {}", show(path)), e))?;
        if format::frame_crc(len, &payload) != crc {
            bad.push(hashes.len() as u64);
        }
        hashes.push(merkle::leaf_hash(&payload));
        pos += FRAME_HEADER as u64 + u64::from(len);
    }
}

fn read_index(path: &Path) -> Result<Vec<Hash>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot open {}", show(path)), e)),
    };
    let rows = file.metadata().map(|m| m.len()).unwrap_or(0) / INDEX_ROW;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut out = Vec::with_capacity(rows as usize);
    let mut row = [0u8; INDEX_ROW as usize];
    for _ in 0..rows {
        r.read_exact(&mut row)
            .map_err(|e| Error::io(format!("cannot read {}", show(path)), e))?;
        out.push(row[8..].try_into().expect("32 bytes"));
    }
    Ok(out)
}

/// Localises differences between the entries as found and the leaf hashes as written.
fn diff(data: &[Hash], index: &[Hash]) -> Vec<Problem> {
    let prefix = data.iter().zip(index).take_while(|(a, b)| a == b).count();
    let max_suffix = data.len().min(index.len()) - prefix;
    let suffix = data
        .iter()
        .rev()
        .zip(index.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let d = &data[prefix..data.len() - suffix];
    let s = &index[prefix..index.len() - suffix];
    if d.is_empty() && s.is_empty() {
        return Vec::new();
    }
    let in_d: HashSet<&Hash> = d.iter().collect();
    let mut pos_s: HashMap<&Hash, usize> = HashMap::with_capacity(s.len());
    for (j, h) in s.iter().enumerate().rev() {
        pos_s.insert(h, j);
    }
    let base = prefix as u64;
    let (mut k, mut j) = (0usize, 0usize);
    let mut out = Vec::new();
    while k < d.len() && j < s.len() {
        if d[k] == s[j] {
            k += 1;
            j += 1;
            continue;
        }
        match (pos_s.get(&d[k]), in_d.contains(&s[j])) {
            (None, false) => {
                out.push(Problem::Changed {
                    index: base + j as u64,
                });
                k += 1;
                j += 1;
            }
            (None, true) => {
                out.push(Problem::Inserted {
                    index: base + k as u64,
                });
                k += 1;
            }
            (Some(_), false) => {
                out.push(Problem::Deleted {
                    index: base + j as u64,
                });
                j += 1;
            }
            (Some(&orig), true) => {
                out.push(Problem::Reordered {
                    index: base + k as u64,
                    original: base + orig as u64,
                });
                k += 1;
                j += 1;
            }
        }
    }
    out.extend((k..d.len()).map(|k| Problem::Inserted {
        index: base + k as u64,
    }));
    out.extend((j..s.len()).map(|j| Problem::Deleted {
        index: base + j as u64,
    }));
    out
}

fn check_checkpoints(
    dir: &Path,
    verifier: &NoteVerifier,
    data: &[Hash],
    index: &[Hash],
    report: &mut VerifyReport,
) -> Result<Vec<Problem>, Error> {
    let path = dir.join(CHECKPOINTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(format!("cannot read {}", show(&path)), e)),
    };
    let notes = format::split_checkpoints(&text);
    report.checkpoints = notes.len();
    let mut problems = Vec::new();
    let mut valid: Vec<(usize, Checkpoint)> = Vec::new();
    for (i, note) in notes.iter().enumerate() {
        let number = i + 1;
        let cp = verifier
            .verify(note)
            .map_err(|e| e.0)
            .and_then(|t| Checkpoint::parse_text(t).map_err(|e| e.0));
        match cp {
            Ok(cp) if cp.origin != verifier.name() => problems.push(Problem::CheckpointSignature {
                number,
                reason: format!("origin {:?} is not the key's name", cp.origin),
            }),
            Ok(cp) => valid.push((number, cp)),
            Err(reason) => problems.push(Problem::CheckpointSignature { number, reason }),
        }
    }
    if notes.is_empty() && !data.is_empty() {
        problems.push(Problem::NoCheckpoint);
    }
    // Roots of the entries' tree (and of the tree as indexed) at every checkpoint size, in
    // one pass each.
    let mut sizes: Vec<u64> = valid.iter().map(|(_, c)| c.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let roots = roots_at(data, &sizes);
    let indexed_roots = roots_at(index, &sizes);
    let mut last_ok = 0u64;
    let mut previous: Option<&(usize, Checkpoint)> = None;
    for entry in &valid {
        let (number, cp) = entry;
        match roots.get(&cp.size) {
            None => problems.push(Problem::CheckpointBeyondLog {
                number: *number,
                size: cp.size,
                entries: data.len() as u64,
            }),
            Some(root) if *root != cp.root => problems.push(Problem::CheckpointRoot {
                number: *number,
                size: cp.size,
                since: last_ok,
            }),
            Some(_) => last_ok = last_ok.max(cp.size),
        }
        if let Some((_, prev)) = previous
            && !same_tree(prev, cp, &roots)
            && !same_tree(prev, cp, &indexed_roots)
            && let Some(reason) = inconsistency(prev, cp, index, data)
        {
            problems.push(Problem::CheckpointInconsistent {
                number: *number,
                reason,
            });
        }
        previous = Some(entry);
    }
    report.latest = valid.last().map(|(_, c)| c.clone());
    Ok(problems)
}

/// The roots of the tree over `leaves` at each of `sizes` (sorted, deduplicated).
fn roots_at(leaves: &[Hash], sizes: &[u64]) -> HashMap<u64, Hash> {
    let mut roots = HashMap::new();
    let mut f = Frontier::new();
    let mut next = sizes.iter().peekable();
    while next.peek().is_some_and(|&&s| s == 0) {
        roots.insert(0, f.root());
        next.next();
    }
    for h in leaves {
        if next.peek().is_none() {
            break;
        }
        f.push(*h);
        while next.peek().is_some_and(|&&s| s == f.size()) {
            roots.insert(f.size(), f.root());
            next.next();
        }
    }
    roots
}

/// Whether both checkpoints are roots of one append-only tree (then they are consistent
/// without computing a proof).
fn same_tree(old: &Checkpoint, new: &Checkpoint, roots: &HashMap<u64, Hash>) -> bool {
    old.size <= new.size
        && roots.get(&old.size) == Some(&old.root)
        && roots.get(&new.size) == Some(&new.root)
}

/// Why `new` is not consistent with `old`, if it is not. The proof is computed from the
/// leaf hashes as written (the index) or, when it is too short, from the entries.
fn inconsistency(
    old: &Checkpoint,
    new: &Checkpoint,
    index: &[Hash],
    data: &[Hash],
) -> Option<String> {
    if new.size < old.size {
        return Some(format!("size went down from {} to {}", old.size, new.size));
    }
    let source = if index.len() as u64 >= new.size {
        index
    } else if data.len() as u64 >= new.size {
        data
    } else {
        return Some(format!(
            "the log is too short ({}) to prove size {}",
            data.len(),
            new.size
        ));
    };
    let proof =
        merkle::consistency_proof(&mut &source[..new.size as usize], old.size, new.size).ok()?;
    if merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
        None
    } else {
        Some(format!(
            "no consistency proof from size {} to {} (the log was rewritten between them)",
            old.size, new.size
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash {
        [i; 32]
    }

    #[test]
    fn diff_names_each_kind() {
        let written: Vec<Hash> = (0..6).map(h).collect();
        let mut changed = written.clone();
        changed[2] = h(99);
        assert_eq!(
            diff(&changed, &written),
            vec![Problem::Changed { index: 2 }]
        );
        let mut deleted = written.clone();
        deleted.remove(3);
        assert_eq!(
            diff(&deleted, &written),
            vec![Problem::Deleted { index: 3 }]
        );
        let mut inserted = written.clone();
        inserted.insert(1, h(77));
        assert_eq!(
            diff(&inserted, &written),
            vec![Problem::Inserted { index: 1 }]
        );
        let mut swapped = written.clone();
        swapped.swap(1, 2);
        assert_eq!(
            diff(&swapped, &written),
            vec![
                Problem::Reordered {
                    index: 1,
                    original: 2
                },
                Problem::Reordered {
                    index: 2,
                    original: 1
                }
            ]
        );
        let truncated = &written[..4];
        assert_eq!(
            diff(truncated, &written),
            vec![Problem::Deleted { index: 4 }, Problem::Deleted { index: 5 }]
        );
        assert!(diff(&written, &written).is_empty());
    }
}

//! Append-only JSON-lines files bounded by size-based rotation.
//!
//! The dead-letter store, the notification log and the breach log each append one JSON
//! object per line. A [`JsonlLog`] keeps them bounded: the active file is the path it was
//! opened with (e.g. `<data_dir>/dead_letters.jsonl`); when an append would take it past
//! [`Rotation::max_file_bytes`], it is synced and renamed to `<stem>.<n>.jsonl` (n = 1, 2,
//! ... increasing, never reused) and a new active file is started. With
//! [`Rotation::max_files`] = `Some(k)` the oldest rotated files beyond `k` are deleted, so
//! the log holds at most `(k + 1) * max_file_bytes` bytes (plus one batch); with `None`
//! nothing is ever deleted by rotation (the owner removes rotated files it no longer needs
//! with [`JsonlLog::remove_rotated_where`], e.g. dead letters that were all replayed).
//!
//! Appends of several lines are one `write` (and, when asked, one `fdatasync`). A failed
//! write is cut back, so the file never keeps half a line from a failure; a line cut short
//! by a crash (no trailing newline) is cut off when the log is opened.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// Default size at which the active file is rotated: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// When a [`JsonlLog`] rotates and how many rotated files it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Size at which the active file is rotated (at least 4 KiB is used).
    pub max_file_bytes: u64,
    /// Rotated files kept (oldest deleted first); `None` keeps every one.
    pub max_files: Option<usize>,
}

impl Rotation {
    /// Rotation that never deletes a file.
    pub fn keep_all(max_file_bytes: u64) -> Self {
        Self {
            max_file_bytes,
            max_files: None,
        }
    }

    fn file_limit(self) -> u64 {
        self.max_file_bytes.max(4096)
    }
}

impl Default for Rotation {
    fn default() -> Self {
        Self::keep_all(DEFAULT_MAX_FILE_BYTES)
    }
}

/// What a log holds on disk at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonlUsage {
    /// Bytes of every file (active and rotated).
    pub bytes: u64,
    /// Lines (records) in every file.
    pub records: u64,
    /// Files, the active one included.
    pub files: u64,
}

/// One rotated file.
#[derive(Debug)]
struct Rotated {
    number: u64,
    path: PathBuf,
    bytes: u64,
    records: u64,
}

#[derive(Debug)]
struct State {
    /// `None` after a rotation whose new file could not be created yet.
    file: Option<File>,
    /// Durable length of the active file.
    len: u64,
    records: u64,
    rotated: Vec<Rotated>,
    next_number: u64,
}

/// An append-only JSON-lines file with size-based rotation. `Send + Sync`; appends are
/// serialised by an internal mutex and do blocking I/O (call them off async threads when
/// they sync).
#[derive(Debug)]
pub struct JsonlLog {
    path: PathBuf,
    rotation: Rotation,
    torn_bytes_dropped: u64,
    state: Mutex<State>,
}

/// The directory and stem of a log path (`dir/stem.jsonl`).
fn split(path: &Path) -> (PathBuf, String) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".jsonl").unwrap_or(n).to_owned())
        .unwrap_or_default();
    (dir, stem)
}

/// Rotated files of the log at `path`, as `(number, path)` sorted oldest first.
fn rotated_files(path: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let (dir, stem) = split(path);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    let prefix = format!("{stem}.");
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            out.push((number, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Every file of the log at `path`, oldest first: the rotated files, then the active file
/// when it exists.
pub fn jsonl_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files: Vec<PathBuf> = rotated_files(path)?.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    Ok(files)
}

/// One line read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlLine {
    /// The file it is in.
    pub file: PathBuf,
    /// Its line number in that file (1-based).
    pub line: usize,
    /// The text, without the newline.
    pub text: String,
}

/// Reads the non-empty lines of one file of a log. A file deleted meanwhile (a rotated
/// file removed by compaction) reads as empty; a last line without a newline (cut short
/// by a crash, never acknowledged) is left out.
pub fn read_jsonl_file(file: &Path) -> Result<Vec<JsonlLine>, Error> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", file.display()), e)),
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    Ok(complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| JsonlLine {
            file: file.to_path_buf(),
            line: n + 1,
            text: l.to_owned(),
        })
        .collect())
}

/// Reads every line of the log at `path` across its rotated files, oldest first.
pub fn read_jsonl(path: &Path) -> Result<Vec<JsonlLine>, Error> {
    let mut out = Vec::new();
    for file in jsonl_files(path)? {
        out.extend(read_jsonl_file(&file)?);
    }
    Ok(out)
}

/// Counts the lines of a file (newline bytes).
fn count_lines(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let mut buf = vec![0; 1 << 16];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((bytes, lines));
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

/// Makes creations, renames and deletions in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

impl JsonlLog {
    /// Opens (creating the file if needed; the directory must exist) the log whose active
    /// file is `path`.
    /// A last line cut short by a crash is cut off (see [`JsonlLog::torn_bytes_dropped`]).
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self, Error> {
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let mut rotated = Vec::new();
        for (number, file) in rotated_files(path)? {
            let (bytes, records) = count_lines(&file)
                .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
            rotated.push(Rotated {
                number,
                path: file,
                bytes,
                records,
            });
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io("open", e))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(|e| io("read", e))?;
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let torn = (text.len() - complete) as u64;
        if torn > 0 {
            file.set_len(complete as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io("repair", e))?;
        }
        let records = text[..complete].iter().filter(|b| **b == b'\n').count() as u64;
        let next_number = rotated.last().map_or(1, |r| r.number + 1);
        Ok(Self {
            path: path.to_path_buf(),
            rotation,
            torn_bytes_dropped: torn,
            state: Mutex::new(State {
                file: Some(file),
                len: complete as u64,
                records,
                rotated,
                next_number,
            }),
        })
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of an unfinished last line cut off when the log was opened (a crash in the
    /// middle of an append that was never acknowledged).
    pub fn torn_bytes_dropped(&self) -> u64 {
        self.torn_bytes_dropped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the log holds now.
    pub fn usage(&self) -> JsonlUsage {
        let st = self.lock();
        JsonlUsage {
            bytes: st.len + st.rotated.iter().map(|r| r.bytes).sum::<u64>(),
            records: st.records + st.rotated.iter().map(|r| r.records).sum::<u64>(),
            files: 1 + st.rotated.len() as u64,
        }
    }

    /// Appends `lines` (each one JSON document without a newline; a newline is added) with
    /// one write, rotating first when they would take the active file past the limit.
    /// With `sync`, the lines are on disk (`fdatasync`) when this returns `Ok`. On error
    /// none of the lines is kept.
    pub fn append(&self, lines: &[Vec<u8>], sync: bool) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        let mut st = self.lock();
        if st.len > 0 && st.len + buf.len() as u64 > self.rotation.file_limit() {
            self.rotate(&mut st)?;
        }
        if st.file.is_none() {
            st.file = Some(self.open_active()?);
        }
        let len = st.len;
        let Some(file) = st.file.as_mut() else {
            unreachable!("the active file was just opened")
        };
        let written = file
            .write_all(&buf)
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // Cut off whatever part of the lines reached the file.
            let _ = file.set_len(len);
            return Err(Error::io(
                format!("cannot write {}", self.path.display()),
                e,
            ));
        }
        st.len += buf.len() as u64;
        st.records += lines.len() as u64;
        Ok(())
    }

    fn open_active(&self) -> Result<File, Error> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(format!("cannot open {}", self.path.display()), e))
    }

    /// Seals the active file under the next number and starts a new one; then deletes the
    /// oldest rotated files beyond `max_files`.
    fn rotate(&self, st: &mut State) -> Result<(), Error> {
        let (dir, stem) = split(&self.path);
        let sealed = dir.join(format!("{stem}.{}.jsonl", st.next_number));
        let io = |what: &str, p: &Path, e| Error::io(format!("cannot {what} {}", p.display()), e);
        if let Some(file) = &st.file {
            file.sync_all().map_err(|e| io("sync", &self.path, e))?;
        }
        fs::rename(&self.path, &sealed).map_err(|e| io("rotate", &self.path, e))?;
        st.rotated.push(Rotated {
            number: st.next_number,
            path: sealed,
            bytes: st.len,
            records: st.records,
        });
        st.next_number += 1;
        st.file = None;
        st.len = 0;
        st.records = 0;
        // A failure from here on leaves the rotation done; the next append opens the new
        // active file again.
        st.file = Some(self.open_active()?);
        sync_dir(&dir).map_err(|e| io("sync", &dir, e))?;
        if let Some(keep) = self.rotation.max_files {
            let excess = st.rotated.len().saturating_sub(keep);
            if excess > 0 {
                for old in st.rotated.drain(..excess) {
                    match fs::remove_file(&old.path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io("delete", &old.path, e)),
                    }
                }
                sync_dir(&dir).map_err(|e| io("sync", &dir, e))?;
            }
        }
        Ok(())
    }

    /// Deletes every rotated file for which `removable` says yes (it is given the file's
    /// path); returns how many were deleted. The active file is never deleted.
    pub fn remove_rotated_where(
        &self,
        mut removable: impl FnMut(&Path) -> Result<bool, Error>,
    ) -> Result<usize, Error> {
        let mut st = self.lock();
        let mut removed = 0;
        let mut kept = Vec::with_capacity(st.rotated.len());
        let mut result = Ok(());
        for rotated in std::mem::take(&mut st.rotated) {
            if result.is_ok() {
                match removable(&rotated.path) {
                    Ok(true) => match fs::remove_file(&rotated.path) {
                        Ok(()) => {
                            removed += 1;
                            continue;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            removed += 1;
                            continue;
                        }
                        Err(e) => {
                            result = Err(Error::io(
                                format!("cannot delete {}", rotated.path.display()),
                                e,
                            ));
                        }
                    },
                    Ok(false) => {}
                    Err(e) => result = Err(e),
                }
            }
            kept.push(rotated);
        }
        st.rotated = kept;
        if removed > 0 {
            let (dir, _) = split(&self.path);
            sync_dir(&dir).map_err(|e| Error::io(format!("cannot sync {}", dir.display()), e))?;
        }
        result.map(|()| removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Vec<u8> {
        format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(100)).into_bytes()
    }

    #[test]
    fn rotates_by_size_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("letters.jsonl");
        let log = JsonlLog::open(&path, Rotation::keep_all(4096)).unwrap();
        for i in 0..100 {
            log.append(&[line(i)], true).unwrap();
        }
        let usage = log.usage();
        assert_eq!(usage.records, 100);
        assert!(usage.files > 2, "{usage:?}");
        let files = jsonl_files(&path).unwrap();
        assert_eq!(files.len() as u64, usage.files);
        assert_eq!(
            usage.bytes,
            files
                .iter()
                .map(|f| fs::metadata(f).unwrap().len())
                .sum::<u64>()
        );
        for f in &files {
            assert!(fs::metadata(f).unwrap().len() <= 4096, "{}", f.display());
        }
        let back: Vec<String> = read_jsonl(&path)
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect();
        let want: Vec<String> = (0..100)
            .map(|i| String::from_utf8(line(i)).unwrap())
            .collect();
        assert_eq!(back, want);
        // Reopening counts what is there.
        drop(log);
        let log = JsonlLog::open(&path, Rotation::keep_all(4096)).unwrap();
        assert_eq!(log.usage(), usage);
    }

    #[test]
    fn max_files_bounds_the_bytes_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notifications.jsonl");
        let rotation = Rotation {
            max_file_bytes: 4096,
            max_files: Some(2),
        };
        let log = JsonlLog::open(&path, rotation).unwrap();
        for i in 0..1000 {
            log.append(&[line(i)], false).unwrap();
        }
        let usage = log.usage();
        assert_eq!(usage.files, 3);
        assert!(usage.bytes <= 3 * 4096, "{usage:?}");
        let back = read_jsonl(&path).unwrap();
        assert_eq!(back.len() as u64, usage.records);
        assert_eq!(
            back.last().unwrap().text,
            String::from_utf8(line(999)).unwrap()
        );
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        assert_eq!(read_jsonl(&path).unwrap().len(), 2);
        let log = JsonlLog::open(&path, Rotation::default()).unwrap();
        assert_eq!(log.torn_bytes_dropped(), 5);
        assert_eq!(log.usage().records, 2);
        log.append(&[b"{\"a\":3}".to_vec()], true).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
    }

    #[test]
    fn remove_rotated_where_keeps_the_active_file_and_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let log = JsonlLog::open(&path, Rotation::keep_all(4096)).unwrap();
        for i in 0..100 {
            log.append(&[line(i)], false).unwrap();
        }
        let files = jsonl_files(&path).unwrap();
        let first = files[0].clone();
        let removed = log.remove_rotated_where(|p| Ok(p == first)).unwrap();
        assert_eq!(removed, 1);
        assert!(!first.exists());
        assert_eq!(jsonl_files(&path).unwrap(), files[1..].to_vec());
        assert_eq!(log.usage().files, files.len() as u64 - 1);
        // Rotation numbers are never reused.
        for i in 0..100 {
            log.append(&[line(i)], false).unwrap();
        }
        let names: Vec<_> = jsonl_files(&path).unwrap();
        assert!(!names.contains(&first));
    }
}

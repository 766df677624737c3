//! The journal's error type and its mapping onto [`vowguard_core::Error`].

use std::io;
use std::path::{Path, PathBuf};

use vowguard_core::{Error, ErrorKind};

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The journal reached `max_bytes` (or the disk is full) and `when_full = "drop_newest"`:
    /// the records were not stored and the caller must not acknowledge them.
    #[error(
        "journal is full (max_bytes reached or disk full, when_full = drop_newest): the records were not stored; sinks are behind or the journal is too small"
    )]
    Full,
    /// A file operation in the journal directory failed.
    #[error("journal I/O failed on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A segment holds data that is neither a valid record nor a torn write at the tail.
    /// Nothing after `offset` is read; move the segment aside (or truncate it at `offset`
    /// to accept the loss) and restart.
    #[error("journal segment {} is corrupt at byte offset {offset}: {reason}", segment.display())]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the first bad record in that file.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Another process (or another open journal in this process) has the directory open.
    #[error(
        "journal directory {} is in use by another vowguard process{}; stop it, or give this one another data_dir",
        dir.display(),
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The journal directory.
        dir: PathBuf,
        /// The pid written by the holder, when it could be read.
        holder: Option<u32>,
    },
    /// The journal was closed (or dropped); nothing more can be appended or committed.
    #[error("journal is closed")]
    Closed,
    /// One append is larger than the journal can ever hold.
    #[error(
        "append of {bytes} bytes can never fit in the journal (limit {limit} bytes); raise max_bytes or append smaller batches"
    )]
    TooLarge {
        /// Encoded size of the append (or of the one record that is too large).
        bytes: u64,
        /// The largest append that fits.
        limit: u64,
    },
    /// [`Journal::reader`](crate::Journal::reader) was called for a name whose reader is
    /// still alive.
    #[error("journal reader {name:?} is already open")]
    ReaderInUse {
        /// The reader's name.
        name: String,
    },
    /// The reader was removed with [`Journal::remove_reader`](crate::Journal::remove_reader).
    #[error("journal reader {name:?} was removed")]
    ReaderRemoved {
        /// The reader's name.
        name: String,
    },
    /// A reader name that cannot be used.
    #[error("invalid journal reader name {name:?}: {reason}")]
    InvalidReaderName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl JournalError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A copy of this error for a second waiter (I/O errors keep their kind and text).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Full => Self::Full,
            Self::Io { path, source } => Self::Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::Corrupt {
                segment,
                offset,
                reason,
            } => Self::Corrupt {
                segment: segment.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Self::Closed => Self::Closed,
            Self::Locked { dir, holder } => Self::Locked {
                dir: dir.clone(),
                holder: *holder,
            },
            Self::TooLarge { bytes, limit } => Self::TooLarge {
                bytes: *bytes,
                limit: *limit,
            },
            Self::ReaderInUse { name } => Self::ReaderInUse { name: name.clone() },
            Self::ReaderRemoved { name } => Self::ReaderRemoved { name: name.clone() },
            Self::InvalidReaderName { name, reason } => Self::InvalidReaderName {
                name: name.clone(),
                reason,
            },
        }
    }

    /// Maps the error onto the shared vowguard error: `Full` is retryable
    /// ([`ErrorKind::RateLimited`]), `Closed` is [`ErrorKind::Unavailable`], a directory
    /// in use by another process is [`ErrorKind::Config`], I/O and
    /// corruption are [`ErrorKind::Io`], an oversized append is
    /// [`ErrorKind::InvalidInput`], reader misuse is [`ErrorKind::Config`] /
    /// [`ErrorKind::Internal`].
    pub fn into_core(self) -> Error {
        match self {
            Self::Full => Error::new(
                ErrorKind::RateLimited,
                "journal is full: the events were not stored; retry later (sinks are behind or max_journal_bytes is too small)",
            ),
            Self::Io { path, source } => {
                Error::io(format!("journal I/O failed on {}", path.display()), source)
            }
            e @ Self::Corrupt { .. } => Error::new(ErrorKind::Io, e.to_string()),
            Self::Closed => Error::unavailable("journal is closed (vowguard is shutting down)"),
            e @ Self::Locked { .. } => Error::config(e.to_string()),
            e @ Self::TooLarge { .. } => Error::invalid_input(e.to_string()),
            e @ (Self::ReaderInUse { .. } | Self::InvalidReaderName { .. }) => {
                Error::config(e.to_string())
            }
            e @ Self::ReaderRemoved { .. } => Error::internal(e.to_string()),
        }
    }
}

impl From<JournalError> for Error {
    fn from(e: JournalError) -> Self {
        e.into_core()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_onto_core_kinds() {
        let full = JournalError::Full.into_core();
        assert_eq!(full.kind(), ErrorKind::RateLimited);
        assert!(full.is_retryable());
        assert!(full.message().contains("journal is full"));

        let io = JournalError::io(
            Path::new("/x/1.seg"),
            io::Error::new(io::ErrorKind::PermissionDenied, "nope"),
        )
        .into_core();
        assert_eq!(io.kind(), ErrorKind::Io);
        assert!(io.to_string().contains("/x/1.seg"), "{io}");
        assert!(io.to_string().contains("nope"), "{io}");

        let corrupt = JournalError::Corrupt {
            segment: PathBuf::from("/x/00000000000000000007.seg"),
            offset: 42,
            reason: "checksum mismatch".into(),
        }
        .into_core();
        assert_eq!(corrupt.kind(), ErrorKind::Io);
        assert!(corrupt.message().contains("00000000000000000007.seg"));
        assert!(corrupt.message().contains("offset 42"));

        assert_eq!(
            JournalError::Closed.into_core().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            JournalError::TooLarge { bytes: 9, limit: 1 }
                .into_core()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            JournalError::ReaderInUse { name: "s".into() }
                .into_core()
                .kind(),
            ErrorKind::Config
        );
    }
}

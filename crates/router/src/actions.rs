//! Hooks the host implements for the protocols' side effects: automatic actions
//! ([`ActionHook`]) and GDPR breach records ([`BreachLog`]).

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vowguard_core::Error;

/// An automatic action a protocol asks the host to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedAction {
    /// The action, e.g. `lock_accounts`, `read_only_mode`, `notify_wedding_coordinator`.
    pub action: String,
    /// The event that caused it.
    pub event_id: String,
    /// The wedding concerned, when known.
    pub wedding_id: Option<String>,
    /// The accounts concerned (the event's user).
    pub user_ids: Vec<String>,
    /// Why (the protocol's reason).
    pub reason: String,
}

/// Carries out (or queues) protocol actions. Called synchronously from routing: it must
/// not block; hand the work to a task or queue.
pub trait ActionHook: Send + Sync + Debug {
    /// Requests `action`.
    fn request(&self, action: &RequestedAction);
}

/// The default [`ActionHook`]: logs each request with `tracing` at warn level and does
/// nothing else. Every value from the event (ids, users, the reason) is a structured
/// field, never text spliced into the message, so the log formatter quotes and escapes it
/// and an event field with a line break cannot forge a log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingActionHook;

impl ActionHook for LoggingActionHook {
    fn request(&self, action: &RequestedAction) {
        tracing::warn!(
            action = action.action.as_str(),
            event_id = action.event_id.as_str(),
            wedding_id = action.wedding_id.as_deref().unwrap_or(""),
            users = ?action.user_ids,
            reason = action.reason.as_str(),
            "protocol requests an automatic action (no action hook installed)"
        );
    }
}

/// A possible personal-data breach, opened by the guest data breach protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreachRecord {
    /// Unique id (UUIDv7).
    pub id: String,
    /// When the breach record was opened (the event's timestamp, the earliest moment the
    /// platform knew; the deadline counts from here, which is conservative).
    pub opened_at: DateTime<Utc>,
    /// When the supervisory authority must be notified (GDPR Art. 33: 72 hours).
    pub deadline: DateTime<Utc>,
    /// The wedding whose guests are concerned.
    pub wedding_id: Option<String>,
    /// Records touched, when the event says.
    pub records_affected: Option<u64>,
    /// The event that opened it.
    pub event_id: String,
    /// Why.
    pub reason: String,
    /// The notifiers the breach's alert was handed to for delivery (each delivery's result
    /// is in `notifications.jsonl`); empty when none was.
    #[serde(default)]
    pub handed_to: Vec<String>,
    /// What was done about notification, in words: to whom the alert was handed, or why
    /// nobody was notified (inhibited, no notifier configured for the protocol).
    #[serde(default)]
    pub notification: String,
}

/// Stores breach records.
pub trait BreachLog: Send + Sync + Debug {
    /// Stores `record` durably.
    fn record(&self, record: &BreachRecord) -> Result<(), Error>;
}

/// A [`BreachLog`] appending one JSON object per line to a file (created if missing),
/// each record synced to disk. The file is rotated by size into `<stem>.<n>.jsonl` and the
/// oldest rotated files beyond the configured number are deleted (default: 64 MiB files,
/// 10 kept), so the log holds at most `(max_files + 1) * max_file_bytes`.
#[derive(Debug)]
pub struct JsonlBreachLog {
    path: PathBuf,
    rotation: vowguard_core::Rotation,
    /// Opened on the first record.
    log: Mutex<Option<vowguard_core::JsonlLog>>,
}

/// Rotated breach-log files kept by default.
const DEFAULT_BREACH_LOG_FILES: usize = 10;

impl JsonlBreachLog {
    /// A log at `path` (e.g. `data_dir/breaches.jsonl`) with the default rotation.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_rotation(
            path,
            vowguard_core::Rotation {
                max_file_bytes: vowguard_core::jsonl_log::DEFAULT_MAX_FILE_BYTES,
                max_files: Some(DEFAULT_BREACH_LOG_FILES),
            },
        )
    }

    /// A log at `path` rotated as `rotation` says.
    pub fn with_rotation(path: impl Into<PathBuf>, rotation: vowguard_core::Rotation) -> Self {
        Self {
            path: path.into(),
            rotation,
            log: Mutex::new(None),
        }
    }

    /// The file it appends to (the active file; rotated files sit next to it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every record back (rotated files included, oldest first), for tests and the
    /// CLI.
    pub fn read_all(&self) -> Result<Vec<BreachRecord>, Error> {
        let lines = vowguard_core::jsonl_log::read_jsonl(&self.path).map_err(|e| {
            Error::new(
                e.kind(),
                format!("read breach log {}: {e}", self.path.display()),
            )
        })?;
        lines
            .into_iter()
            .map(|l| {
                serde_json::from_str(&l.text).map_err(|e| {
                    Error::internal(format!(
                        "breach log {} line {}: unreadable line: {e}",
                        l.file.display(),
                        l.line
                    ))
                })
            })
            .collect()
    }

    /// What the log files hold now (bytes, records, files).
    pub fn usage(&self) -> Result<vowguard_core::JsonlUsage, Error> {
        if let Some(log) = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(log.usage());
        }
        let files = vowguard_core::jsonl_log::jsonl_files(&self.path)?;
        let mut usage = vowguard_core::JsonlUsage {
            files: files.len() as u64,
            ..vowguard_core::JsonlUsage::default()
        };
        for file in files {
            usage.bytes += std::fs::metadata(&file).map_or(0, |m| m.len());
            usage.records += vowguard_core::jsonl_log::read_jsonl_file(&file)?.len() as u64;
        }
        Ok(usage)
    }
}

impl BreachLog for JsonlBreachLog {
    fn record(&self, record: &BreachRecord) -> Result<(), Error> {
        let line = serde_json::to_vec(record)
            .map_err(|e| Error::internal(format!("encode breach record: {e}")))?;
        let what = |e: Error| {
            Error::new(
                e.kind(),
                format!("append to breach log {}: {e}", self.path.display()),
            )
        };
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.is_none() {
            *log = Some(vowguard_core::JsonlLog::open(&self.path, self.rotation).map_err(what)?);
        }
        let Some(log) = log.as_ref() else {
            unreachable!("the log was just opened")
        };
        log.append(&[line], true).map_err(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_log_appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = JsonlBreachLog::new(dir.path().join("breaches.jsonl"));
        assert!(log.read_all().unwrap().is_empty());
        let opened_at = Utc::now();
        let record = BreachRecord {
            id: "b-1".into(),
            opened_at,
            deadline: opened_at + chrono::Duration::hours(72),
            wedding_id: Some("w-1".into()),
            records_affected: Some(812),
            event_id: "e-1".into(),
            reason: "mass query".into(),
            handed_to: vec!["legal".into()],
            notification: "alert handed to legal for delivery".into(),
        };
        log.record(&record).unwrap();
        log.record(&BreachRecord {
            id: "b-2".into(),
            ..record.clone()
        })
        .unwrap();
        let back = log.read_all().unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], record);
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    /// Event text in the action log (users, reason, ids) cannot start a line of its own
    /// in the human log format.
    #[test]
    fn action_log_cannot_be_forged_by_event_text() {
        let forged = "x\n2026-06-20T10:00:00Z  WARN vowguard: FORGED line\r\u{1b}[31m";
        let text = crate::tests::capture_logs(|| {
            LoggingActionHook.request(&RequestedAction {
                action: "lock_accounts".into(),
                event_id: forged.into(),
                wedding_id: Some(forged.into()),
                user_ids: vec![forged.into(), "u-2".into()],
                reason: forged.into(),
            });
        });
        assert_eq!(text.lines().count(), 1, "one record, one line: {text}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        assert!(
            text.contains("FORGED"),
            "the text is still there, escaped: {text}"
        );
    }

    #[test]
    fn the_log_is_bounded_by_rotation() {
        use vowguard_core::Rotation;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("breaches.jsonl");
        let log = JsonlBreachLog::with_rotation(
            &path,
            Rotation {
                max_file_bytes: 4096,
                max_files: Some(2),
            },
        );
        let opened_at = Utc::now();
        for i in 0..500 {
            log.record(&BreachRecord {
                id: format!("b-{i}"),
                opened_at,
                deadline: opened_at,
                wedding_id: None,
                records_affected: None,
                event_id: format!("e-{i}"),
                reason: "x".repeat(50),
                handed_to: vec!["legal".into()],
                notification: "handed to legal".into(),
            })
            .unwrap();
        }
        let usage = log.usage().unwrap();
        assert_eq!(usage.files, 3);
        assert!(usage.bytes <= 3 * 4096, "{usage:?}");
        let back = log.read_all().unwrap();
        assert_eq!(back.len() as u64, usage.records);
        assert_eq!(back.last().unwrap().id, "b-499");
    }

    #[test]
    fn unwritable_log_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = JsonlBreachLog::new(dir.path().join("missing-dir").join("b.jsonl"));
        let record = BreachRecord {
            id: "b".into(),
            opened_at: Utc::now(),
            deadline: Utc::now(),
            wedding_id: None,
            records_affected: None,
            event_id: "e".into(),
            reason: String::new(),
            handed_to: Vec::new(),
            notification: String::new(),
        };
        let err = log.record(&record).unwrap_err();
        assert_eq!(err.kind(), vowguard_core::ErrorKind::Io);
        assert!(err.to_string().contains("append to breach log"), "{err}");
    }
}

//! Where wedding records come from: the [`WeddingContextProvider`] trait the host implements,
//! and the built-in [`StaticProvider`] (in memory) and [`JsonFileProvider`] (a JSON file,
//! reloaded when it changes). The HTTP provider lives in [`crate::HttpProvider`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::Value;
use vowguard_core::Error;

use crate::context::WeddingRecord;

/// Looks weddings up by id. The host implements it (or uses a built-in provider) and hands
/// it to [`crate::WeddingContextEnricher`].
#[async_trait]
pub trait WeddingContextProvider: Send + Sync + fmt::Debug {
    /// The wedding `wedding_id`; `Ok(None)` when the provider does not know it (not an
    /// error). An `Err` means the lookup itself failed.
    async fn wedding(&self, wedding_id: &str) -> Result<Option<WeddingRecord>, Error>;
}

#[async_trait]
impl<P: WeddingContextProvider + ?Sized> WeddingContextProvider for Arc<P> {
    async fn wedding(&self, wedding_id: &str) -> Result<Option<WeddingRecord>, Error> {
        (**self).wedding(wedding_id).await
    }
}

#[async_trait]
impl<P: WeddingContextProvider + ?Sized> WeddingContextProvider for Box<P> {
    async fn wedding(&self, wedding_id: &str) -> Result<Option<WeddingRecord>, Error> {
        (**self).wedding(wedding_id).await
    }
}

/// A fixed, in-memory set of weddings (for hosts that already hold them, and for tests).
#[derive(Debug, Clone, Default)]
pub struct StaticProvider {
    records: HashMap<String, WeddingRecord>,
}

impl StaticProvider {
    /// A provider knowing `records` (keyed by their `wedding_id`; a later duplicate wins).
    pub fn new(records: impl IntoIterator<Item = WeddingRecord>) -> Self {
        Self {
            records: records
                .into_iter()
                .map(|r| (r.wedding_id.clone(), r))
                .collect(),
        }
    }

    /// Adds or replaces one wedding.
    pub fn insert(&mut self, record: WeddingRecord) {
        self.records.insert(record.wedding_id.clone(), record);
    }

    /// How many weddings it knows.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when it knows no wedding.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[async_trait]
impl WeddingContextProvider for StaticProvider {
    async fn wedding(&self, wedding_id: &str) -> Result<Option<WeddingRecord>, Error> {
        Ok(self.records.get(wedding_id).cloned())
    }
}

/// Parses the JSON-file format: an array of records, or an object keyed by wedding id
/// (where a record may leave `wedding_id` out). Errors name `source` and the JSON path
/// (`[3].timezone`, `["w-1"].date`) or the line and column of a syntax error.
pub fn parse_records(text: &str, source: &str) -> Result<HashMap<String, WeddingRecord>, Error> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Error::config(format!(
            "`{source}`: invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })?;
    let entries: Vec<(String, Option<String>, Value)> = match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("[{i}]"), None, v))
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| (format!("[{}]", Value::String(k.clone())), Some(k), v))
            .collect(),
        _ => {
            return Err(Error::config(format!(
                "`{source}`: expected an array of wedding records or an object keyed by wedding id"
            )));
        }
    };
    let mut records = HashMap::with_capacity(entries.len());
    for (path, key, value) in entries {
        let mut record: WeddingRecord = serde_json::from_value(value)
            .map_err(|e| Error::config(format!("`{source}`: at {path}: {e}")))?;
        match key {
            Some(key) if record.wedding_id.is_empty() => record.wedding_id = key,
            Some(key) if record.wedding_id != key => {
                return Err(Error::config(format!(
                    "`{source}`: at {path}: `wedding_id` {:?} differs from its key",
                    record.wedding_id
                )));
            }
            _ => {}
        }
        if record.wedding_id.is_empty() {
            return Err(Error::config(format!(
                "`{source}`: at {path}: missing `wedding_id`"
            )));
        }
        if records.contains_key(&record.wedding_id) {
            return Err(Error::config(format!(
                "`{source}`: at {path}: duplicate wedding id {:?}",
                record.wedding_id
            )));
        }
        records.insert(record.wedding_id.clone(), record);
    }
    Ok(records)
}

/// serde_json appends " at line L column C"; the caller reports the position itself.
fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

/// Weddings read from a JSON file ([`parse_records`] format).
///
/// The file is read when the provider is built (a missing or malformed file is a config
/// error naming it). Afterwards, at most once per `check_interval`, a lookup compares the
/// file's modification time and size with what was loaded and re-reads it when they
/// changed. A file that became malformed is logged and the last good records are kept, so
/// a half-written edit never drops wedding context.
pub struct JsonFileProvider {
    path: PathBuf,
    check_interval: Duration,
    state: Mutex<FileState>,
}

struct FileState {
    records: Arc<HashMap<String, WeddingRecord>>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

impl fmt::Debug for JsonFileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lock().records.len();
        f.debug_struct("JsonFileProvider")
            .field("path", &self.path)
            .field("check_interval", &self.check_interval)
            .field("weddings", &n)
            .finish()
    }
}

impl JsonFileProvider {
    /// Loads `path` now; re-checks it at most every `check_interval`.
    pub fn new(path: impl Into<PathBuf>, check_interval: Duration) -> Result<Self, Error> {
        let path = path.into();
        let (records, stamp) = load(&path)?;
        Ok(Self {
            path,
            check_interval,
            state: Mutex::new(FileState {
                records: Arc::new(records),
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many weddings are loaded.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// True when no wedding is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file now, whatever its modification time; on error the loaded records
    /// are kept and the error is returned.
    pub fn reload(&self) -> Result<(), Error> {
        let (records, stamp) = load(&self.path)?;
        let mut state = self.lock();
        state.records = Arc::new(records);
        state.stamp = stamp;
        state.checked = Instant::now();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current records, re-reading the file first if it is due and changed.
    fn current(&self) -> Arc<HashMap<String, WeddingRecord>> {
        let loaded_stamp = {
            let mut state = self.lock();
            if state.checked.elapsed() < self.check_interval {
                return Arc::clone(&state.records);
            }
            state.checked = Instant::now();
            state.stamp
        };
        // File I/O happens outside the lock; concurrent checks at worst read it twice.
        let now_stamp = stamp_of(&self.path);
        if now_stamp.is_none() || now_stamp == loaded_stamp {
            if now_stamp.is_none() {
                tracing::warn!(path = %self.path.display(), "wedding file unreadable; keeping the weddings loaded");
            }
            return Arc::clone(&self.lock().records);
        }
        match load(&self.path) {
            Ok((records, stamp)) => {
                tracing::info!(path = %self.path.display(), weddings = records.len(), "wedding file reloaded");
                let mut state = self.lock();
                state.records = Arc::new(records);
                state.stamp = stamp;
                Arc::clone(&state.records)
            }
            Err(e) => {
                tracing::warn!(error = %e, "wedding file not reloaded; keeping the weddings loaded");
                let mut state = self.lock();
                // Do not re-parse the same broken file on every check.
                state.stamp = now_stamp;
                Arc::clone(&state.records)
            }
        }
    }
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp_of(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn load(path: &Path) -> Result<(HashMap<String, WeddingRecord>, Stamp), Error> {
    let stamp = stamp_of(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!(
            "cannot read wedding file `{}`: {e}",
            path.display()
        ))
    })?;
    let records = parse_records(&text, &path.display().to_string())?;
    Ok((records, stamp))
}

#[async_trait]
impl WeddingContextProvider for JsonFileProvider {
    async fn wedding(&self, wedding_id: &str) -> Result<Option<WeddingRecord>, Error> {
        Ok(self.current().get(wedding_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::io::Write as _;

    const ARRAY: &str = r#"[
        {"wedding_id": "w-1", "date": "2026-06-20", "timezone": "Europe/London", "guest_count": 120},
        {"wedding_id": "w-2", "date": "2026-12-19", "timezone": "Australia/Sydney", "vendor_count": 4}
    ]"#;

    fn write(path: &Path, text: &str, mtime: SystemTime) {
        let mut f = std::fs::File::create(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.set_modified(mtime).unwrap();
    }

    #[test]
    fn parses_array_and_object_forms() {
        let r = parse_records(ARRAY, "w.json").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r["w-1"].guest_count, Some(120));
        assert_eq!(
            r["w-2"].date,
            NaiveDate::from_ymd_opt(2026, 12, 19).unwrap()
        );
        let r = parse_records(
            r#"{"w-9": {"date": "2026-06-20", "timezone": "UTC", "venue": "Barn"}}"#,
            "w.json",
        )
        .unwrap();
        assert_eq!(r["w-9"].wedding_id, "w-9");
        assert_eq!(r["w-9"].venue.as_deref(), Some("Barn"));
    }

    #[test]
    fn errors_name_file_and_position() {
        let cases = [
            (
                "[\n {\"wedding_id\": \"w\",,}\n]",
                "`f.json`: invalid JSON at line 2 column",
            ),
            (
                r#"[{"wedding_id":"a","date":"2026-06-20","timezone":"UTC"},{"wedding_id":"b","date":"2026-06-20","timezone":"Nowhere/Land"}]"#,
                "`f.json`: at [1]: unknown IANA time zone `Nowhere/Land`",
            ),
            (
                r#"{"w-1": {"date": "2026-13-01", "timezone": "UTC"}}"#,
                "`f.json`: at [\"w-1\"]: ",
            ),
            (
                r#"{"w-1": {"wedding_id": "w-2", "date": "2026-01-01", "timezone": "UTC"}}"#,
                "differs from its key",
            ),
            (
                r#"[{"date": "2026-01-01", "timezone": "UTC"}]"#,
                "`f.json`: at [0]: missing `wedding_id`",
            ),
            (
                r#"[{"wedding_id":"a","date":"2026-01-01","timezone":"UTC"},{"wedding_id":"a","date":"2026-01-01","timezone":"UTC"}]"#,
                "duplicate wedding id \"a\"",
            ),
            ("42", "`f.json`: expected an array"),
        ];
        for (text, expected) in cases {
            let e = parse_records(text, "f.json").unwrap_err();
            assert_eq!(e.kind(), vowguard_core::ErrorKind::Config);
            assert!(e.to_string().contains(expected), "{text}: {e}");
        }
    }

    #[tokio::test]
    async fn file_provider_loads_and_reloads_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weddings.json");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        write(&path, ARRAY, t0);
        let p = JsonFileProvider::new(&path, Duration::ZERO).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p.wedding("w-1").await.unwrap().unwrap().guest_count,
            Some(120)
        );
        assert_eq!(p.wedding("nope").await.unwrap(), None);

        // Same mtime and size: not re-read (content changed behind its back, same length).
        let same_len = ARRAY.replace("\"guest_count\": 120", "\"guest_count\": 121");
        write(&path, &same_len, t0);
        assert_eq!(
            p.wedding("w-1").await.unwrap().unwrap().guest_count,
            Some(120)
        );

        // A new mtime: re-read.
        let t1 = t0 + Duration::from_secs(10);
        write(
            &path,
            r#"{"w-3": {"date": "2027-01-10", "timezone": "Pacific/Auckland"}}"#,
            t1,
        );
        assert!(p.wedding("w-3").await.unwrap().is_some());
        assert_eq!(p.wedding("w-1").await.unwrap(), None);

        // A broken edit keeps the last good records.
        write(&path, "{ broken", t1 + Duration::from_secs(10));
        assert!(p.wedding("w-3").await.unwrap().is_some());
        let e = p.reload().unwrap_err();
        assert!(e.to_string().contains("weddings.json"), "{e}");
        assert!(p.wedding("w-3").await.unwrap().is_some());
        // Deleted file: keeps the records too.
        std::fs::remove_file(&path).unwrap();
        assert!(p.wedding("w-3").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn check_interval_limits_rereads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weddings.json");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        write(&path, ARRAY, t0);
        let p = JsonFileProvider::new(&path, Duration::from_secs(3600)).unwrap();
        write(
            &path,
            r#"[{"wedding_id":"w-3","date":"2027-01-10","timezone":"UTC"}]"#,
            t0 + Duration::from_secs(5),
        );
        // Not due for an hour: the old records are served.
        assert!(p.wedding("w-1").await.unwrap().is_some());
        assert!(p.wedding("w-3").await.unwrap().is_none());
        p.reload().unwrap();
        assert!(p.wedding("w-3").await.unwrap().is_some());
    }

    #[test]
    fn missing_or_malformed_file_is_a_config_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.json");
        let e = JsonFileProvider::new(&missing, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), vowguard_core::ErrorKind::Config);
        assert!(e.to_string().contains("absent.json"), "{e}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[\n  {\"wedding_id\": 1}\n]").unwrap();
        let e = JsonFileProvider::new(&bad, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        assert!(e.to_string().contains("at [0]"), "{e}");
    }
}

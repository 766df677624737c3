//! The storage suites against every implementation in the pipeline crate: the file
//! defaults and the in-memory ones.

use std::path::PathBuf;
use std::sync::Arc;

use vowguard_pipeline::{
    DeadLetterStorage, DeadLetterStore, MemoryDeadLetters, MemoryNotificationLog, NotificationLog,
    NotificationStorage,
};
use vowguard_testkit::storage_suite::{self, DeadLetterHarness, NotificationHarness};

struct FileDeadLetters(PathBuf);

impl DeadLetterHarness for FileDeadLetters {
    fn name(&self) -> &str {
        "DeadLetterStore (files)"
    }
    fn open(&self) -> Arc<dyn DeadLetterStorage> {
        // A small rotation size: the suite's letters span several files.
        Arc::new(DeadLetterStore::open_with(&self.0, 8 * 1024).expect("open the store"))
    }
}

struct InMemoryDeadLetters(Arc<MemoryDeadLetters>);

impl DeadLetterHarness for InMemoryDeadLetters {
    fn name(&self) -> &str {
        "MemoryDeadLetters"
    }
    fn open(&self) -> Arc<dyn DeadLetterStorage> {
        self.0.clone()
    }
}

#[tokio::test]
async fn file_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    storage_suite::dead_letters(&FileDeadLetters(dir.path().to_path_buf())).await;
}

#[tokio::test]
async fn memory_dead_letters() {
    storage_suite::dead_letters(&InMemoryDeadLetters(Arc::new(MemoryDeadLetters::new(
        1_000,
    ))))
    .await;
}

struct FileNotifications(tempfile::TempDir);

impl NotificationHarness for FileNotifications {
    fn name(&self) -> &str {
        "NotificationLog (files)"
    }
    fn open(&self) -> Arc<dyn NotificationStorage> {
        let dir = tempfile::tempdir_in(self.0.path()).unwrap().keep();
        Arc::new(NotificationLog::open(&dir).expect("open the log"))
    }
    fn recent_capacity(&self) -> usize {
        10_000
    }
}

struct InMemoryNotifications;

impl NotificationHarness for InMemoryNotifications {
    fn name(&self) -> &str {
        "MemoryNotificationLog"
    }
    fn open(&self) -> Arc<dyn NotificationStorage> {
        Arc::new(MemoryNotificationLog::new(50))
    }
    fn recent_capacity(&self) -> usize {
        50
    }
}

#[tokio::test]
async fn file_notifications() {
    storage_suite::notifications(&FileNotifications(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn memory_notifications() {
    storage_suite::notifications(&InMemoryNotifications).await;
}

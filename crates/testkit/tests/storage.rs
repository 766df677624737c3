//! The storage suites against every implementation: the pipeline's dead letters and
//! notification log, the response engine's incidents and the breach register, each with
//! its durable default and its in-memory one.

use std::path::PathBuf;
use std::sync::Arc;

use vowguard_pipeline::{
    DeadLetterStorage, DeadLetterStore, MemoryDeadLetters, MemoryNotificationLog, NotificationLog,
    NotificationStorage,
};
use vowguard_response::{FileIncidentStore, IncidentStorage, MemoryIncidentStore};
use vowguard_store::{BreachStorage, MemoryBreachStore, Store};
use vowguard_testkit::storage_suite::{
    self, BreachHarness, DeadLetterHarness, IncidentHarness, NotificationHarness,
};

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

struct FileIncidents(tempfile::TempDir);

impl IncidentHarness for FileIncidents {
    fn name(&self) -> &str {
        "FileIncidentStore"
    }
    fn open(&self) -> Arc<dyn IncidentStorage> {
        Arc::new(FileIncidentStore::open(&self.0.path().join("response"), 64 << 20).unwrap())
    }
    fn open_small(&self) -> Arc<dyn IncidentStorage> {
        let dir = tempfile::tempdir_in(self.0.path()).unwrap().keep();
        Arc::new(FileIncidentStore::open(&dir, 8 * 1024).unwrap())
    }
    fn corrupt(&self) -> Option<String> {
        let path = self
            .0
            .path()
            .join("response")
            .join(vowguard_response::RECORD_FILE);
        let good = r#"{"record":"generation","fingerprint":"f","count":1}"#;
        std::fs::write(&path, format!("{good}\n{{\"record\": \"incid\n{good}\n")).unwrap();
        Some(format!("{} line 2", path.display()))
    }
}

struct InMemoryIncidents {
    storage: Arc<MemoryIncidentStore>,
}

impl IncidentHarness for InMemoryIncidents {
    fn name(&self) -> &str {
        "MemoryIncidentStore"
    }
    fn open(&self) -> Arc<dyn IncidentStorage> {
        self.storage.clone()
    }
    fn open_small(&self) -> Arc<dyn IncidentStorage> {
        Arc::new(MemoryIncidentStore::new(40))
    }
    fn corrupt(&self) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn file_incidents() {
    storage_suite::incidents(&FileIncidents(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn memory_incidents() {
    storage_suite::incidents(&InMemoryIncidents {
        storage: Arc::new(MemoryIncidentStore::new(100_000)),
    })
    .await;
}

struct SqliteBreaches(tempfile::TempDir);

#[async_trait::async_trait]
impl BreachHarness for SqliteBreaches {
    fn name(&self) -> &str {
        "Store (SQLite)"
    }
    async fn open(&self) -> Arc<dyn BreachStorage> {
        Arc::new(self.store().await)
    }
    async fn open_bounded(&self) -> Option<(Arc<dyn BreachStorage>, usize)> {
        None
    }
    async fn corrupt(&self, id: &str) -> Option<String> {
        let store = self.store().await;
        vowguard_store::testing::corrupt_breach(&store, id)
            .await
            .unwrap();
        store.close().await;
        Some(store.location_display().to_owned())
    }
}

impl SqliteBreaches {
    async fn store(&self) -> Store {
        Store::open_sqlite(&self.0.path().join("store.db"))
            .await
            .unwrap()
    }
}

struct InMemoryBreaches(Arc<MemoryBreachStore>);

#[async_trait::async_trait]
impl BreachHarness for InMemoryBreaches {
    fn name(&self) -> &str {
        "MemoryBreachStore"
    }
    async fn open(&self) -> Arc<dyn BreachStorage> {
        self.0.clone()
    }
    async fn open_bounded(&self) -> Option<(Arc<dyn BreachStorage>, usize)> {
        Some((Arc::new(MemoryBreachStore::new(3)), 3))
    }
    async fn corrupt(&self, _id: &str) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn sqlite_breaches() {
    storage_suite::breaches(&SqliteBreaches(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn memory_breaches() {
    storage_suite::breaches(&InMemoryBreaches(Arc::new(MemoryBreachStore::new(10_000)))).await;
}

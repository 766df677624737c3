//! The findings service: syncs into the store and the index, failures keep the last
//! findings, full syncs retire what is gone, incremental syncs resume from the checkpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use vowguard_core::{
    Asset, Category, Enricher, Error, Event, Finding, FindingPages, FindingState, Scanner,
    Severity, SyncSummary,
};
use vowguard_vuln::{FindingStore, HostKey, ScannerEntry, VulnCorrelation, VulnService};

/// A scanner that answers scripted results and records the `since` it was asked.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<Vec<Result<Vec<Finding>, Error>>>,
    asked: Mutex<Vec<Option<DateTime<Utc>>>>,
}

#[async_trait]
impl Scanner for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        self.asked.lock().unwrap().push(since);
        let answer = self.answers.lock().unwrap().remove(0);
        let findings = answer?;
        let n = findings.len() as u64;
        out.page(findings).await?;
        Ok(SyncSummary {
            findings: n,
            pages: 1,
            checkpoint: Some(Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()),
            ..SyncSummary::default()
        })
    }
}

fn finding(ip: &str, plugin: &str, port: u16, state: FindingState, first: Option<i64>) -> Finding {
    Finding {
        scanner: "tio".into(),
        plugin_id: plugin.into(),
        title: Some("Palo Alto RCE".into()),
        asset: Asset {
            ip: Some(ip.parse().unwrap()),
            ..Asset::default()
        },
        port,
        protocol: "tcp".into(),
        cves: vec!["CVE-2024-3400".into()],
        cvss: Some(9.8),
        cvss_vector: None,
        severity: Severity::Critical,
        state,
        first_seen: first.and_then(|s| DateTime::from_timestamp(s, 0)),
        last_seen: None,
        confidence: 1.0,
        details_missing: false,
    }
}

fn attack(ip: &str, port: u16) -> Event {
    let mut e = Event::new(Category::Network, "ids.alert", Severity::High);
    e.destination_ip = Some(ip.parse().unwrap());
    e.destination_port = Some(port);
    e
}

#[tokio::test]
async fn sync_feeds_correlation_and_a_down_scanner_keeps_the_last_findings() {
    let dir = tempfile::tempdir().unwrap();
    let scanner = Arc::new(Scripted::default());
    *scanner.answers.lock().unwrap() = vec![
        Ok(vec![
            finding("10.0.0.5", "1", 443, FindingState::Open, Some(1_000)),
            finding("10.0.0.6", "2", 443, FindingState::Open, None),
        ]),
        Err(Error::unavailable("tenable: connection refused")),
        Ok(vec![
            finding("10.0.0.5", "1", 443, FindingState::Open, Some(2_000)),
            finding("10.0.0.6", "2", 443, FindingState::Fixed, None),
        ]),
        Ok(vec![finding("10.0.0.7", "3", 22, FindingState::Open, None)]),
    ];
    let entries = vec![ScannerEntry {
        id: "tio".into(),
        scanner: scanner.clone(),
        refresh: Duration::from_secs(3600),
    }];
    let service = VulnService::open(
        FindingStore::open(&dir.path().join("vulns.db"))
            .await
            .unwrap(),
        entries.clone(),
    )
    .await
    .unwrap();
    let enricher = VulnCorrelation::new(service.index());

    let report = service.sync("tio", false).await.unwrap();
    assert!(report.full);
    assert_eq!(report.findings, 2);
    assert_eq!(
        enricher
            .enrich(&attack("10.0.0.5", 443))
            .await
            .unwrap()
            .vulnerabilities
            .len(),
        1
    );

    // The scanner is down: the error is recorded, the findings stay in use.
    let err = service.sync("tio", false).await.unwrap_err();
    assert!(err.to_string().contains("connection refused"));
    assert_eq!(
        enricher
            .enrich(&attack("10.0.0.6", 443))
            .await
            .unwrap()
            .vulnerabilities
            .len(),
        1
    );
    let status = service.store().status("tio").await.unwrap().unwrap();
    assert!(status.last_error.unwrap().contains("connection refused"));
    assert!(
        status.last_success.is_some(),
        "age of the kept findings is visible"
    );

    // Incremental: asked from the checkpoint; fixed retired; the earliest first-seen kept.
    let report = service.sync("tio", false).await.unwrap();
    assert!(!report.full);
    assert_eq!(
        scanner.asked.lock().unwrap()[2],
        Some(Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap())
    );
    assert!(
        enricher
            .enrich(&attack("10.0.0.6", 443))
            .await
            .unwrap()
            .vulnerabilities
            .is_empty()
    );
    let m = enricher
        .enrich(&attack("10.0.0.5", 443))
        .await
        .unwrap()
        .vulnerabilities;
    assert_eq!(m[0].first_seen.unwrap().timestamp(), 1_000);

    // A reopened service reads the same findings back from disk.
    drop(service);
    let service = VulnService::open(
        FindingStore::open(&dir.path().join("vulns.db"))
            .await
            .unwrap(),
        entries,
    )
    .await
    .unwrap();
    assert_eq!(service.index().read().len(), 1);
    // A forced full sync retires what it no longer reports.
    let report = service.sync("tio", true).await.unwrap();
    assert_eq!((report.full, report.retired), (true, 1));
    let index = service.index();
    assert_eq!(index.read().len(), 1);
    assert!(index.read().get("tio|3|10.0.0.7|22/tcp").is_some());
    assert!(
        service
            .sync("nope", false)
            .await
            .unwrap_err()
            .to_string()
            .contains("configured: tio")
    );
}

/// `vowguard vulns sync` in another process writes the same store: a running instance's
/// index picks the new findings up through `reload_if_changed`, and only when something
/// changed.
#[tokio::test]
async fn a_sync_by_another_process_reaches_the_running_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vulns.db");
    let running = VulnService::open(FindingStore::open(&path).await.unwrap(), Vec::new())
        .await
        .unwrap();
    let enricher = VulnCorrelation::new(running.index());
    let mut seen = running.store().statuses().await.unwrap();
    assert!(!running.reload_if_changed(&mut seen).await.unwrap());

    // The CLI process: its own service over the same file, with the scanner configured.
    let scanner = Arc::new(Scripted::default());
    *scanner.answers.lock().unwrap() = vec![Ok(vec![finding(
        "10.0.0.9",
        "9",
        443,
        FindingState::Open,
        None,
    )])];
    let cli = VulnService::open(
        FindingStore::open(&path).await.unwrap(),
        vec![ScannerEntry {
            id: "tio".into(),
            scanner,
            refresh: Duration::from_secs(3600),
        }],
    )
    .await
    .unwrap();
    cli.sync("tio", false).await.unwrap();

    let before = enricher.enrich(&attack("10.0.0.9", 443)).await.unwrap();
    assert!(before.vulnerabilities.is_empty());
    assert!(running.reload_if_changed(&mut seen).await.unwrap());
    let after = enricher.enrich(&attack("10.0.0.9", 443)).await.unwrap();
    assert_eq!(after.vulnerabilities.len(), 1);
    assert_eq!(after.vulnerabilities[0].cves, ["CVE-2024-3400"]);
    // Nothing changed since: no second reload.
    assert!(!running.reload_if_changed(&mut seen).await.unwrap());
}

/// Answers one finding: without its details (no checkpoint, counted, a reason) on the
/// syncs listed in `without`, with them otherwise; records the `since` asked.
#[derive(Debug, Default)]
struct KbFlaky {
    calls: Mutex<Vec<Option<DateTime<Utc>>>>,
}

#[async_trait]
impl Scanner for KbFlaky {
    fn kind(&self) -> &'static str {
        "kb_flaky"
    }

    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(since);
            calls.len()
        };
        let mut f = finding("10.0.0.9", "38909", 443, FindingState::Open, None);
        let missing = call == 2;
        if missing {
            f.cves.clear();
            f.cvss = None;
            f.title = None;
            f.details_missing = true;
        }
        out.page(vec![f]).await?;
        Ok(SyncSummary {
            findings: 1,
            pages: 1,
            checkpoint: (!missing)
                .then(|| Utc.with_ymd_and_hms(2026, 5, call as u32, 0, 0, 0).unwrap()),
            details_missing: u64::from(missing),
            details_missing_reason: missing.then(|| "KnowledgeBase: HTTP 500".to_owned()),
        })
    }
}

#[tokio::test]
async fn findings_without_details_are_stored_reported_and_filled_by_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let scanner = Arc::new(KbFlaky::default());
    let service = VulnService::open(
        FindingStore::open(&dir.path().join("vulns.db"))
            .await
            .unwrap(),
        vec![ScannerEntry {
            id: "qualys".into(),
            scanner: scanner.clone(),
            refresh: Duration::from_secs(3600),
        }],
    )
    .await
    .unwrap();
    let first = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let report = service.sync("qualys", false).await.unwrap();
    assert_eq!(
        (report.details_missing, report.details_missing_reason),
        (0, None)
    );

    let report = service.sync("qualys", false).await.unwrap();
    assert_eq!(report.findings, 1);
    assert_eq!(report.details_missing, 1);
    assert_eq!(
        report.details_missing_reason.as_deref(),
        Some("KnowledgeBase: HTTP 500")
    );
    let status = service.store().status("qualys").await.unwrap().unwrap();
    assert_eq!(
        status.checkpoint,
        Some(first),
        "the checkpoint did not move"
    );
    let key = HostKey::Ip("10.0.0.9".parse().unwrap());
    let stored = service.index().read().on_host(&key)[0].clone();
    assert!(stored.details_missing && stored.cves.is_empty());
    // Still correlated on host and port while the details are missing.
    let enricher = VulnCorrelation::new(service.index());
    assert_eq!(
        enricher
            .enrich(&attack("10.0.0.9", 443))
            .await
            .unwrap()
            .vulnerabilities
            .len(),
        1
    );

    // The next sync starts from the same checkpoint and fills the details in.
    service.sync("qualys", false).await.unwrap();
    assert_eq!(scanner.calls.lock().unwrap()[2], Some(first));
    let stored = service.index().read().on_host(&key)[0].clone();
    assert!(!stored.details_missing);
    assert_eq!(stored.cves, ["CVE-2024-3400"]);
}

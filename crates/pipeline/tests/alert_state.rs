//! What the alert path must not forget across a restart: inhibition sources and alert
//! groups in progress (kept in `<data_dir>/state/alerts.json`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use vowguard_core::{Alert, Category, Error, Event, Notifier, Receipt, Severity};
use vowguard_pipeline::{NotifierSpec, Pipeline, PipelineSpec};
use vowguard_router::{ProtocolsConfig, RouteConfig, Router, RouterConfig};

#[derive(Debug, Default)]
struct CountingNotifier {
    alerts: Mutex<Vec<Alert>>,
}

#[async_trait]
impl Notifier for CountingNotifier {
    fn kind(&self) -> &'static str {
        "counting"
    }
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(Receipt::default())
    }
}

fn router(group_wait: &str, group_interval: &str) -> Arc<Router> {
    let route: RouteConfig = serde_json::from_value(serde_json::json!({
        "name": "all",
        "notify": ["pager"],
        "group_by": ["wedding_id"],
        "group_wait": group_wait,
        "group_interval": group_interval,
    }))
    .unwrap();
    let config = RouterConfig::default()
        .with_routes(vec![route])
        .with_protocols(ProtocolsConfig::disabled());
    Arc::new(Router::from_config(config, &["pager"]).unwrap())
}

fn spec<N: Notifier + 'static>(
    dir: &std::path::Path,
    notifier: &Arc<N>,
    router: Arc<Router>,
) -> PipelineSpec {
    let mut spec = PipelineSpec {
        data_dir: dir.to_owned(),
        ..PipelineSpec::default()
    };
    spec.notifiers
        .push(NotifierSpec::new("pager", notifier.clone()));
    spec.router = Some(router);
    spec
}

fn wedding_event(id: &str, severity: Severity) -> Event {
    let mut e = Event::new(Category::DataAccess, "guest_list.view", severity);
    e.id = id.to_owned();
    e.wedding_id = Some("w-1".into());
    e
}

/// `n` high-severity events `e0..`, each for its own wedding `w-0..` (its own alert group).
fn one_per_wedding(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = wedding_event(&format!("e{i}"), Severity::High);
            e.wedding_id = Some(format!("w-{i}"));
            e
        })
        .collect()
}

async fn submit_all(pipeline: &Pipeline, events: Vec<Event>) {
    for e in events {
        pipeline.submit(e).await.unwrap().durable.await.unwrap();
    }
}

/// A wedding's P0 keeps muting its P2..P4 after a restart.
#[tokio::test]
async fn inhibition_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(CountingNotifier::default());
    let pipeline = Pipeline::start(spec(dir.path(), &notifier, router("0s", "5m")))
        .await
        .unwrap();
    submit_all(&pipeline, vec![wedding_event("p0", Severity::Critical)]).await;
    pipeline.shutdown().await;
    assert_eq!(notifier.alerts.lock().unwrap().len(), 1, "the P0 pages");

    // A new process: a new router, the same data directory.
    let pipeline = Pipeline::start(spec(dir.path(), &notifier, router("0s", "5m")))
        .await
        .unwrap();
    submit_all(&pipeline, vec![wedding_event("p3", Severity::Low)]).await;
    pipeline.shutdown().await;
    let alerts = notifier.alerts.lock().unwrap();
    assert_eq!(
        alerts.len(),
        1,
        "the P3 of the same wedding stays muted: {:?}",
        alerts.iter().map(|a| &a.event.id).collect::<Vec<_>>()
    );
}

/// Waits (with a deadline) until the alert path's snapshot covers `routed` records and
/// every notification of them is finished.
async fn wait_for_snapshot(dir: &std::path::Path, routed: u64) {
    wait_for_state(dir, |v| {
        v["routed_upto"].as_u64().unwrap_or(0) >= routed
            && v["undelivered"].as_array().is_none_or(Vec::is_empty)
    })
    .await;
}

/// Waits (with a deadline) until the alert path's snapshot satisfies `done`.
async fn wait_for_state(dir: &std::path::Path, done: impl Fn(&serde_json::Value) -> bool) {
    let path = dir.join("state").join("alerts.json");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if done(&v) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such snapshot in {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A group notified just before a crash is not notified again right after the restart
/// for its next alert: its group interval carries over.
#[test]
fn a_group_in_progress_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(CountingNotifier::default());
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let pipeline = Pipeline::start(spec(dir.path(), &notifier, router("0s", "1h")))
                .await
                .unwrap();
            submit_all(&pipeline, vec![wedding_event("first", Severity::High)]).await;
            wait_for_snapshot(dir.path(), 1).await;
            // The pipeline is never shut down: it is dropped and the runtime with it, which
            // kills its tasks mid-flight (a crash) and releases the journal's lock as the
            // process's exit would.
            drop(pipeline);
        });
    }
    assert_eq!(notifier.alerts.lock().unwrap().len(), 1);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pipeline = Pipeline::start(spec(dir.path(), &notifier, router("0s", "1h")))
            .await
            .unwrap();
        submit_all(&pipeline, vec![wedding_event("second", Severity::High)]).await;
        wait_for_snapshot(dir.path(), 2).await;
        assert_eq!(
            notifier.alerts.lock().unwrap().len(),
            1,
            "the second alert waits for the group interval (1 h) that began before the crash"
        );
        // The end of the input flushes the group: one notification for the new alert.
        pipeline.shutdown().await;
    });
    let alerts = notifier.alerts.lock().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1].event.id, "second");
    assert_eq!(alerts[1].params["group_size"], 1);
}

/// A notifier that holds every notification until released; records what it was given
/// (`started`) and what it sent (`sent`).
#[derive(Debug)]
struct GatedNotifier {
    open: tokio::sync::Semaphore,
    started: Mutex<Vec<Alert>>,
    sent: Mutex<Vec<Alert>>,
}

impl GatedNotifier {
    fn closed() -> Self {
        Self {
            open: tokio::sync::Semaphore::new(0),
            started: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Notifier for GatedNotifier {
    fn kind(&self) -> &'static str {
        "gated"
    }
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.started.lock().unwrap().push(alert.clone());
        self.open.acquire().await.unwrap().forget();
        self.sent.lock().unwrap().push(alert.clone());
        Ok(Receipt::default())
    }
}

/// How many alerts `alerts` stand for (each notification's `group_size`).
fn alerts_covered(alerts: &[Alert]) -> u64 {
    alerts
        .iter()
        .map(|a| a.params["group_size"].as_u64().unwrap())
        .sum()
}

/// Polls until `done` holds (fails after 30 s).
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A channel that does not answer (a rate limit, an outage being retried) holds back
/// neither the routing of later events nor the other channels: every event is routed and
/// the pager told while Slack sends nothing; Slack's waiting notifications of the group
/// are merged into one, and once Slack answers, what it sent stands for every alert.
#[tokio::test]
async fn a_stalled_channel_holds_back_neither_routing_nor_the_other_channels() {
    let dir = tempfile::tempdir().unwrap();
    let slack = Arc::new(GatedNotifier::closed());
    let pager = Arc::new(CountingNotifier::default());
    let route: RouteConfig = serde_json::from_value(serde_json::json!({
        "name": "all",
        "notify": ["slack", "pager"],
        "group_by": ["wedding_id"],
        "group_wait": "0s",
        "group_interval": "1ms",
    }))
    .unwrap();
    let config = RouterConfig::default()
        .with_routes(vec![route])
        .with_protocols(ProtocolsConfig::disabled());
    let mut spec = PipelineSpec {
        data_dir: dir.path().to_owned(),
        ..PipelineSpec::default()
    };
    spec.notifiers
        .push(NotifierSpec::new("slack", slack.clone()));
    spec.notifiers
        .push(NotifierSpec::new("pager", pager.clone()));
    spec.router = Some(Arc::new(
        Router::from_config(config, &["slack", "pager"]).unwrap(),
    ));
    let pipeline = Pipeline::start(spec).await.unwrap();
    // One notification per event: each is routed, and the group's interval (1 ms) has
    // passed, before the next arrives. Slack takes at most five of the 30 (four sending,
    // one waiting for a slot) before it answers; the rest must merge into one.
    for i in 0..30 {
        submit_all(
            &pipeline,
            vec![wedding_event(&format!("e{i}"), Severity::High)],
        )
        .await;
        wait_for_lag(&pipeline, 0).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Everything routed and the pager told every alert, Slack still silent.
    wait_until("the pager has every alert", || {
        alerts_covered(&pager.alerts.lock().unwrap()) == 30
    })
    .await;
    assert!(slack.sent.lock().unwrap().is_empty());
    let metrics = pipeline.metrics();
    let waiting = &metrics.notifiers["slack"];
    assert_eq!(waiting.queued, 1, "one waiting notification for the group");
    assert!(waiting.coalesced >= 24, "{waiting:?}");
    assert_eq!(waiting.sent, 0);

    slack.open.add_permits(1_000);
    pipeline.shutdown().await;
    let sent = slack.sent.lock().unwrap();
    assert_eq!(
        alerts_covered(&sent),
        30,
        "Slack's messages stand for every alert"
    );
    assert!(sent.len() < 30, "merged: {} messages", sent.len());
    assert_eq!(
        sent.last().unwrap().event.id,
        "e29",
        "the latest alert speaks for the group"
    );
}

/// A notification its channel had not finished when the process died is sent after the
/// restart, with the same id (a channel that remembers ids sees a repeat, not a new alert).
#[test]
fn an_unfinished_notification_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let gated = Arc::new(GatedNotifier::closed());
    let first_id = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let pipeline = Pipeline::start(spec(dir.path(), &gated, router("0s", "1h")))
                .await
                .unwrap();
            submit_all(&pipeline, vec![wedding_event("first", Severity::High)]).await;
            wait_for_state(dir.path(), |v| {
                v["routed_upto"].as_u64().unwrap_or(0) >= 1
                    && v["undelivered"].as_array().is_some_and(|u| u.len() == 1)
            })
            .await;
            let started = gated.started.lock().unwrap().clone();
            assert_eq!(started.len(), 1, "the channel was given the alert");
            // A crash while the channel has not answered.
            drop(pipeline);
            started[0].id.clone()
        })
    };
    assert!(gated.sent.lock().unwrap().is_empty());

    let notifier = Arc::new(CountingNotifier::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pipeline = Pipeline::start(spec(dir.path(), &notifier, router("0s", "1h")))
            .await
            .unwrap();
        pipeline.shutdown().await;
    });
    let alerts = notifier.alerts.lock().unwrap();
    assert_eq!(alerts.len(), 1, "sent after the restart");
    assert_eq!(alerts[0].id, first_id);
    assert_eq!(alerts[0].event.id, "first");
}

/// Polls the pipeline's alert-path lag until it is `want` (fails after 30 s).
async fn wait_for_lag(pipeline: &Pipeline, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lag = pipeline.metrics().alert_path_lag;
        if lag == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alert path lag stayed {lag:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The metrics show how far the alert path is behind the journal: events stay counted
/// until their notifications are handed over, and none are once it has caught up.
#[tokio::test]
async fn the_alert_path_lag_counts_events_not_yet_routed() {
    let dir = tempfile::tempdir().unwrap();
    let gated = Arc::new(GatedNotifier::closed());
    let mut spec = spec(dir.path(), &gated, router("0s", "5m"));
    // Room for one waiting notification: with the channel holding the four it has in
    // flight, a fifth it took and waits to start, and one waiting, routing waits at the
    // seventh event (one group per event, so nothing merges).
    spec.options = spec.options.with_notifier_queue_capacity(1);
    let pipeline = Pipeline::start(spec).await.unwrap();
    assert_eq!(pipeline.metrics().alert_path_lag, Some(0));
    submit_all(&pipeline, one_per_wedding(10)).await;
    wait_until("events 7 to 10 count as not routed", || {
        pipeline
            .metrics()
            .alert_path_lag
            .is_some_and(|lag| lag >= 3)
    })
    .await;
    gated.open.add_permits(1_000);
    wait_for_lag(&pipeline, 0).await;
    pipeline.shutdown().await;

    // Without routing there is no alert path and no lag to report.
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        ..PipelineSpec::default()
    })
    .await
    .unwrap();
    assert_eq!(pipeline.metrics().alert_path_lag, None);
    pipeline.shutdown().await;
}

/// A channel that does not answer holds neither the journal (the alert path's position
/// moves on: the state snapshot lists what the channel has not finished, so a rate-limited
/// Slack cannot fill the journal at full intake) nor a shutdown past its deadline; what it
/// had not sent is sent at the next start, with the same ids.
#[tokio::test]
async fn a_stalled_channel_holds_neither_the_journal_nor_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let gated = Arc::new(GatedNotifier::closed());
    let pipeline = Pipeline::start(spec(dir.path(), &gated, router("0s", "1h")))
        .await
        .unwrap();
    submit_all(&pipeline, one_per_wedding(3)).await;
    wait_for_lag(&pipeline, 0).await;
    wait_for_state(dir.path(), |v| {
        v["routed_upto"].as_u64().unwrap_or(0) >= 3
            && v["undelivered"].as_array().is_some_and(|u| u.len() == 3)
    })
    .await;
    pipeline
        .shutdown_within(Some(Duration::from_millis(300)))
        .await;
    let mut started: Vec<String> = gated
        .started
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.id.clone())
        .collect();
    assert_eq!(started.len(), 3);
    assert!(gated.sent.lock().unwrap().is_empty());

    let (journal, _) = vowguard_journal::Journal::open(vowguard_journal::JournalConfig::new(
        dir.path().join("journal"),
    ))
    .await
    .unwrap();
    let end = journal.stats().next_seq;
    let reader = journal.reader("alerts").unwrap();
    assert_eq!(
        (reader.committed(), end),
        (3, 3),
        "the alert path's position is past the events whose notifications were not sent"
    );
    drop(reader);
    journal.close().await.unwrap();
    drop(journal);

    let notifier = Arc::new(CountingNotifier::default());
    let pipeline = Pipeline::start(spec(dir.path(), &notifier, router("0s", "1h")))
        .await
        .unwrap();
    pipeline.shutdown().await;
    let mut sent: Vec<String> = notifier
        .alerts
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.id.clone())
        .collect();
    sent.sort();
    started.sort();
    assert_eq!(sent, started, "sent after the restart, once each, same ids");
}

//! The response engine: opens incidents from alerts, starts the playbooks whose trigger
//! matches, drives each run step by step, and keeps everything in the record file.
//!
//! * Every state change is appended (fsynced) to the record file before the engine acts on
//!   it further; each timeline entry is then also appended to the [`AuditTrail`] as an
//!   [`AuditRecord::Incident`].
//! * A run's id is derived from the playbook, its version and the incident, so a duplicated
//!   trigger finds the run already there. A step's idempotency key is derived from the
//!   playbook, the incident fingerprint (and generation) and the step id: a step whose key
//!   finished successfully is never executed again; the key is sent to the outside world
//!   (HTTP `Idempotency-Key`, the notification's alert id, the ticket fingerprint) so a step
//!   interrupted mid-call and resumed is recognised there.
//! * Runs never hang: each attempt has a timeout, each approval a deadline, each run a
//!   deadline enforced by its driver and, for runs whose driver is gone, by the reaper.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use vowguard_core::{
    Alert, AuditRecord, AuditTrail, Error, ErrorKind, Event, NoAudit, Notifier, Priority,
    RetryPolicy, RoutedAlert, SecretLookup, TicketDraft, TicketSystem, TicketUpdate,
};
use vowguard_router::{ActionHook, MatchContext, RequestedAction};

use crate::config::{
    Catalog, DEFAULT_APPROVAL_SECONDS, OnTimeout, Playbook, PlaybookConfig, ResponseConfig, Step,
    StepKind, TicketOp,
};
use crate::coordination::{IncidentAdvance, ResponseCoordination, RunClaim, SharedIncidentState};
use crate::model::{
    Incident, IncidentState, MAX_LINKED_ALERTS, Run, RunState, StateChange, StepRecord, StepStatus,
    TimelineEntry,
};
use crate::store::{FileIncidentStore, IncidentStorage, Record, State};
use crate::template::Escape;

/// Alerts waiting for the engine; beyond this `on_alert` drops (and logs) rather than block
/// routing.
const ALERT_QUEUE: usize = 4096;
/// Most bytes of an HTTP response body kept in a step's output.
const MAX_CAPTURED_BODY: usize = 64 * 1024;
/// How often the reaper looks for runs past their deadline.
const REAPER_EVERY: Duration = Duration::from_secs(1);
/// How long shutdown waits for commits under way once every task has ended.
const COMMIT_GRACE: Duration = Duration::from_secs(10);
/// Grace the reaper gives a run's own driver before ending the run itself.
const REAPER_GRACE: chrono::Duration = chrono::Duration::seconds(2);

/// Builds a [`ResponseEngine`].
pub struct EngineBuilder {
    config: ResponseConfig,
    playbooks: Vec<(String, PlaybookConfig)>,
    notifiers: HashMap<String, Arc<dyn Notifier>>,
    tickets: HashMap<String, Arc<dyn TicketSystem>>,
    actions: Option<Arc<dyn ActionHook>>,
    audit: Arc<dyn AuditTrail>,
    secrets: Option<(Arc<dyn SecretLookup>, std::path::PathBuf)>,
    reaper_every: Duration,
    storage: Option<Arc<dyn IncidentStorage>>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("playbooks", &self.playbooks.len())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Adds a configured playbook (`[playbooks.<name>]`).
    pub fn playbook(mut self, name: impl Into<String>, config: PlaybookConfig) -> Self {
        self.playbooks.push((name.into(), config));
        self
    }

    /// Makes a notifier available to `notify` steps.
    pub fn notifier(mut self, id: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.insert(id.into(), notifier);
        self
    }

    /// Makes a ticket system available to `ticket` steps.
    pub fn ticket_system(mut self, id: impl Into<String>, system: Arc<dyn TicketSystem>) -> Self {
        self.tickets.insert(id.into(), system);
        self
    }

    /// The host's action hook (`action` steps); the actions it carries out are listed in
    /// [`ResponseConfig::actions`].
    pub fn action_hook(mut self, hook: Arc<dyn ActionHook>) -> Self {
        self.actions = Some(hook);
        self
    }

    /// Where timeline entries are also appended (default: nowhere).
    pub fn audit(mut self, audit: Arc<dyn AuditTrail>) -> Self {
        self.audit = audit;
        self
    }

    /// Resolves `secret_headers` of `http` steps (relative secret files from `base_dir`).
    pub fn secrets(
        mut self,
        lookup: Arc<dyn SecretLookup>,
        base_dir: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.secrets = Some((lookup, base_dir.into()));
        self
    }

    /// Where incidents, runs and steps are kept (default: a [`FileIncidentStore`] in
    /// `<data_dir>/response/`, compacted past `max_record_bytes`). See [`IncidentStorage`]
    /// for what the engine relies on.
    pub fn incident_storage(mut self, storage: Arc<dyn IncidentStorage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// How often the reaper runs (tests shorten it).
    pub fn reaper_every(mut self, every: Duration) -> Self {
        self.reaper_every = every;
        self
    }

    /// Validates the playbooks, loads the incident storage (by default
    /// `<data_dir>/response/records.jsonl`) and returns the engine (not yet running: call
    /// [`ResponseEngine::start`]).
    pub fn build(self, data_dir: &Path) -> Result<ResponseEngine, Error> {
        let action_endpoint = match &self.config.action_hook {
            None => None,
            Some(c) => {
                let url = reqwest::Url::parse(&c.url).map_err(|e| {
                    Error::config(format!("`response.action_hook.url`: not a URL: {e}"))
                })?;
                let loopback = url.host_str().is_some_and(|h| {
                    h == "localhost"
                        || h.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
                if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                    return Err(Error::config(
                        "`response.action_hook.url`: must be https (http only to a loopback address)",
                    ));
                }
                let Some((lookup, base)) = &self.secrets else {
                    return Err(Error::config(
                        "`response.action_hook.secret`: no secret source configured",
                    ));
                };
                let secret =
                    c.secret
                        .resolve("response.action_hook.secret", lookup.as_ref(), base)?;
                if secret.expose_secret().len() < 16 {
                    return Err(Error::config(
                        "`response.action_hook.secret`: at least 16 bytes",
                    ));
                }
                Some((url, secret))
            }
        };
        let catalog = Catalog {
            notifiers: self.notifiers.keys().cloned().collect(),
            tickets: self.tickets.keys().cloned().collect(),
            actions: if self.actions.is_some() || action_endpoint.is_some() {
                self.config.actions.iter().cloned().collect()
            } else {
                HashSet::new()
            },
        };
        for (i, a) in self.config.actions.iter().enumerate() {
            if !crate::config::KNOWN_ACTIONS.contains(&a.as_str()) {
                return Err(Error::config(format!(
                    "`response.actions[{i}]`: unknown action `{a}` (known: {})",
                    crate::config::KNOWN_ACTIONS.join(", ")
                )));
            }
        }
        let mut playbooks: Vec<Arc<Playbook>> = Vec::new();
        let mut names = HashSet::new();
        for (name, config) in self.playbooks {
            if !names.insert(name.clone()) {
                return Err(Error::config(format!("`playbooks.{name}`: defined twice")));
            }
            playbooks.push(Arc::new(Playbook::compile(&name, config, &catalog)?));
        }
        if self.config.default_playbooks {
            for (name, config) in
                crate::defaults::default_playbooks(&catalog, &self.config.default_approvers)
            {
                if names.insert(name.clone()) {
                    playbooks.push(Arc::new(Playbook::compile(&name, config, &catalog)?));
                }
            }
        }
        let mut headers = HashMap::new();
        for p in &playbooks {
            for (i, s) in p.steps.iter().enumerate() {
                let mut resolved = Vec::new();
                for (name, secret) in &s.config.secret_headers {
                    let key = format!("playbooks.{}.steps[{i}].secret_headers.{name}", p.name);
                    let Some((lookup, base)) = &self.secrets else {
                        return Err(Error::config(format!(
                            "`{key}`: no secret source configured"
                        )));
                    };
                    resolved.push((name.clone(), secret.resolve(&key, lookup.as_ref(), base)?));
                }
                headers.insert((p.name.clone(), s.config.id.clone()), resolved);
            }
        }
        let (storage, record_path): (Arc<dyn IncidentStorage>, _) = match self.storage {
            Some(storage) => (storage, None),
            None => {
                let file = FileIncidentStore::open(
                    &data_dir.join("response"),
                    self.config.max_record_bytes,
                )?;
                let path = file.path().to_path_buf();
                (Arc::new(file), Some(path))
            }
        };
        let mut state = crate::store::state_of(storage.load()?);
        state.evict_closed(self.config.keep_closed_incidents);
        // The connectors' client: rustls, no redirects (secrets never follow one). Each step's
        // deadline is enforced by the engine (an explicit `timed_out` step), so the client's
        // own whole-request timeout is only a backstop far beyond any step's.
        let http = vowguard_http::build_client(
            &vowguard_http::HttpOptions::default()
                .with_timeout(std::time::Duration::from_millis(3_600_000)),
        )?;
        let (changed, _) = watch::channel(0u64);
        let (alerts_tx, alerts_rx) = mpsc::channel(ALERT_QUEUE);
        let (stopping, _) = watch::channel(false);
        Ok(ResponseEngine {
            inner: Arc::new(Inner {
                config: self.config,
                playbooks,
                notifiers: self.notifiers,
                tickets: self.tickets,
                actions: self.actions,
                action_endpoint,
                audit: self.audit,
                secret_headers: headers,
                http,
                state: Mutex::new(state),
                storage,
                record_path,
                writer: tokio::sync::Mutex::new(()),
                incident_writes: tokio::sync::Mutex::new(()),
                changed,
                alerts_tx,
                alerts_rx: Mutex::new(Some(alerts_rx)),
                tasks: Mutex::new(HashMap::new()),
                task_seq: AtomicU64::new(0),
                idle_runs: Mutex::new(HashSet::new()),
                stopping,
                stopped: AtomicBool::new(false),
                commits: AtomicUsize::new(0),
                reaper_every: self.reaper_every,
                coordination: watch::channel(None).0,
                awaits_coordination: AtomicBool::new(false),
            }),
        })
    }
}

/// The automated-response engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ResponseEngine {
    inner: Arc<Inner>,
}

struct Inner {
    config: ResponseConfig,
    playbooks: Vec<Arc<Playbook>>,
    notifiers: HashMap<String, Arc<dyn Notifier>>,
    tickets: HashMap<String, Arc<dyn TicketSystem>>,
    actions: Option<Arc<dyn ActionHook>>,
    /// `[response.action_hook]`: the URL and the HMAC key.
    action_endpoint: Option<(reqwest::Url, SecretString)>,
    audit: Arc<dyn AuditTrail>,
    secret_headers: HashMap<(String, String), Vec<(String, SecretString)>>,
    http: reqwest::Client,
    state: Mutex<State>,
    storage: Arc<dyn IncidentStorage>,
    /// The default storage's file, when that is the storage.
    record_path: Option<std::path::PathBuf>,
    /// Held from appending records to applying them, so the state sees the records in the
    /// order the storage holds them.
    writer: tokio::sync::Mutex<()>,
    /// Held from reading an incident to committing its changed copy (a `Record::Incident`
    /// replaces the whole incident): without it, two steps of one run in parallel (tickets
    /// opened in two systems, a ticket and `set_state`) each write their own stale copy and
    /// the last one drops the other's change.
    incident_writes: tokio::sync::Mutex<()>,
    /// Bumped on every committed change (approval waiters watch it).
    changed: watch::Sender<u64>,
    alerts_tx: mpsc::Sender<Queued>,
    alerts_rx: Mutex<Option<mpsc::Receiver<Queued>>>,
    /// Background tasks that write to the record (run drivers `run:<id>`, ticket updates),
    /// by name: shutdown waits for them and, past its grace, aborts them.
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    task_seq: AtomicU64,
    /// Runs whose driver waits only for approvals (nothing else in flight).
    idle_runs: Mutex<HashSet<String>>,
    /// True once shutdown began: no new alerts are taken, no new step starts, approval
    /// waits let go (the step stays `running` in the record and resumes at the next start).
    stopping: watch::Sender<bool>,
    /// True once shutdown ended: nothing more is written (the audit log may be closed).
    stopped: AtomicBool,
    /// Commits under way. Each runs to its end (record file, then audit trail) in its own
    /// task, so aborting the task that asked for it never leaves a timeline entry without
    /// its audit record.
    commits: AtomicUsize,
    reaper_every: Duration,
    /// Shared decisions in cluster mode ([`ResponseEngine::coordinate_with`]).
    coordination: watch::Sender<Option<Arc<dyn ResponseCoordination>>>,
    /// Set by [`ResponseEngine::await_coordination`]: run drivers wait for it.
    awaits_coordination: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseEngine")
            .field(
                "playbooks",
                &self.playbooks.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What the alert worker takes from its queue.
enum Queued {
    Alert(Box<RoutedAlert>),
    /// Answered once every alert queued before it is handled.
    Flush(oneshot::Sender<()>),
}

/// A status change made in a ticket system, for [`ResponseEngine::ticket_status_changed`].
#[derive(Debug, Clone, Copy)]
pub struct TicketStatusChange<'a> {
    /// The ticket system id (`[tickets.<id>]`) the ticket belongs to.
    pub system: &'a str,
    /// The ticket's key (`SEC-42`, a ServiceNow `sys_id`).
    pub key: &'a str,
    /// The new status, as the ticket system names it.
    pub status: &'a str,
    /// The previous status, when known.
    pub from: Option<&'a str>,
    /// The state the status means for the incident; `None`: a status with no meaning
    /// (recorded only).
    pub to: Option<IncidentState>,
    /// Who changed the ticket (`jira:Ana_Ops`).
    pub actor: &'a str,
}

/// What [`ResponseEngine::ticket_status_changed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketSync {
    /// Recorded, and the incident moved to this state.
    Applied(IncidentState),
    /// Recorded; the incident already was in (or beyond) the state the status means, and is
    /// in this state.
    AlreadyThere(IncidentState),
    /// Recorded; the status means nothing for the incident.
    Recorded,
    /// The ticket's last recorded status is this one already: nothing recorded.
    Unchanged,
}

/// What [`ResponseEngine::shutdown`] left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Runs still `running` in the record (paused at a durable point, or waiting for an
    /// approval): the next start resumes them.
    pub paused_runs: Vec<String>,
    /// Background tasks still going when the grace ran out, aborted between two commits.
    pub aborted_tasks: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`ResponseEngine::explain`] says about one playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerExplanation {
    /// The playbook.
    pub playbook: String,
    /// Whether it would run.
    pub matches: bool,
    /// Why (or why not), one line per criterion.
    pub reasons: Vec<String>,
}

impl ResponseEngine {
    /// A builder with `config`.
    pub fn builder(config: ResponseConfig) -> EngineBuilder {
        EngineBuilder {
            config,
            playbooks: Vec::new(),
            notifiers: HashMap::new(),
            tickets: HashMap::new(),
            actions: None,
            audit: Arc::new(NoAudit),
            secrets: None,
            reaper_every: REAPER_EVERY,
            storage: None,
        }
    }

    /// Starts the alert worker and the reaper, and resumes every run that was going when
    /// the process stopped, at the step it was in. Call once, inside a tokio runtime.
    pub fn start(&self) {
        if let Some(mut rx) = lock(&self.inner.alerts_rx).take() {
            let engine = self.clone();
            tokio::spawn(async move {
                while let Some(queued) = rx.recv().await {
                    match queued {
                        Queued::Alert(alert) => {
                            // Retryable failures (a cluster's shared state unreachable for
                            // a moment) are retried with the shared policy; handling an
                            // alert again links it to its incident once and finds its runs.
                            let (result, _) = RetryPolicy::default()
                                .run(|attempt| {
                                    let (engine, alert) = (&engine, &alert);
                                    async move {
                                        if attempt > 1 && engine.is_stopping() {
                                            return Err(Error::new(
                                                ErrorKind::Internal,
                                                "engine stopping; not retried",
                                            ));
                                        }
                                        engine.handle_alert(alert).await
                                    }
                                })
                                .await;
                            if let Err(e) = result {
                                tracing::error!(error = %e, alert_id = alert.alert.id.as_str(), "response engine could not handle an alert");
                            }
                        }
                        Queued::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        }
        let resumed: Vec<String> = lock(&self.inner.state)
            .runs
            .values()
            .filter(|r| r.state == RunState::Running)
            .map(|r| r.id.clone())
            .collect();
        for id in resumed {
            tracing::info!(run = id.as_str(), "resuming playbook run");
            self.spawn_driver(id);
        }
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.reaper_every;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                if *inner.stopping.borrow() {
                    return;
                }
                ResponseEngine { inner }.reap(Utc::now());
            }
        });
    }

    /// Shares incident ids and run claims with the other replicas of a cluster through
    /// `coordination` (see [`crate::coordination`]) from now on.
    pub fn coordinate_with(&self, coordination: Arc<dyn ResponseCoordination>) {
        self.inner.coordination.send_replace(Some(coordination));
    }

    /// Says that [`coordinate_with`](Self::coordinate_with) will be called (cluster mode):
    /// until it is, run drivers (of new runs and of runs resumed at
    /// [`start`](Self::start)) wait before their first step, so a run another replica took
    /// over while this one was down is not driven twice. Call before `start`.
    pub fn await_coordination(&self) {
        self.inner.awaits_coordination.store(true, Ordering::SeqCst);
    }

    fn coordination(&self) -> Option<Arc<dyn ResponseCoordination>> {
        self.inner.coordination.borrow().clone()
    }

    /// The coordination once set, when the engine awaits it (`None` when it does not, or
    /// when the engine stops first).
    async fn coordination_when_set(&self) -> Option<Arc<dyn ResponseCoordination>> {
        if let Some(c) = self.coordination() {
            return Some(c);
        }
        if !self.inner.awaits_coordination.load(Ordering::SeqCst) {
            return None;
        }
        let mut set = self.inner.coordination.subscribe();
        let mut stopping = self.inner.stopping.subscribe();
        tokio::select! {
            c = set.wait_for(Option::is_some) => c.ok().and_then(|c| c.clone()),
            _ = stopping.wait_for(|s| *s) => None,
        }
    }

    /// Hands `alert` to the engine without waiting (called from routing; never blocks).
    /// Returns false when the queue is full (the alert is logged and not responded to).
    pub fn on_alert(&self, alert: &RoutedAlert) -> bool {
        if *self.inner.stopping.borrow() {
            tracing::error!(
                alert_id = alert.alert.id.as_str(),
                "response engine stopping; alert not responded to"
            );
            return false;
        }
        match self
            .inner
            .alerts_tx
            .try_send(Queued::Alert(Box::new(alert.clone())))
        {
            Ok(()) => true,
            Err(_) => {
                tracing::error!(
                    alert_id = alert.alert.id.as_str(),
                    "response engine queue full; alert not responded to"
                );
                false
            }
        }
    }

    /// The record file the engine keeps its state in, when it uses the default
    /// [`FileIncidentStore`] (`None` with a storage passed to
    /// [`EngineBuilder::incident_storage`]).
    pub fn record_path(&self) -> Option<std::path::PathBuf> {
        self.inner.record_path.clone()
    }

    /// Where the engine keeps incidents, runs and steps.
    pub fn incident_storage(&self) -> &Arc<dyn IncidentStorage> {
        &self.inner.storage
    }

    /// The validated playbooks.
    pub fn playbooks(&self) -> Vec<Arc<Playbook>> {
        self.inner.playbooks.clone()
    }

    /// Every incident, most recently opened first.
    pub fn incidents(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = lock(&self.inner.state)
            .incidents
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|i| std::cmp::Reverse(i.opened.at));
        v
    }

    /// One incident.
    pub fn incident(&self, id: &str) -> Option<Incident> {
        lock(&self.inner.state).incidents.get(id).cloned()
    }

    /// The incident not yet resolved for `fingerprint` (an alert group key), if any.
    pub fn open_incident_for(&self, fingerprint: &str) -> Option<Incident> {
        let state = lock(&self.inner.state);
        let id = state.open_by_fingerprint.get(fingerprint)?;
        state.incidents.get(id).cloned()
    }

    /// Runs, most recent first, optionally of one incident.
    pub fn runs(&self, incident_id: Option<&str>) -> Vec<Run> {
        let mut v: Vec<Run> = lock(&self.inner.state)
            .runs
            .values()
            .filter(|r| incident_id.is_none_or(|i| r.incident_id == i))
            .cloned()
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        v
    }

    /// One run.
    pub fn run(&self, id: &str) -> Option<Run> {
        lock(&self.inner.state).runs.get(id).cloned()
    }

    /// Waits until `run_id` is in a terminal state or `timeout` passes; returns the run.
    pub async fn wait_run(&self, run_id: &str, timeout: Duration) -> Option<Run> {
        let mut rx = self.inner.changed.subscribe();
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.run(run_id);
            if run.as_ref().is_some_and(|r| r.state.is_terminal()) {
                return run;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return self.run(run_id) },
                () = tokio::time::sleep_until(until) => return self.run(run_id),
            }
        }
    }

    /// Waits until `check` holds over the engine or `timeout` passes; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, check: impl Fn(&Self) -> bool) -> bool {
        let mut rx = self.inner.changed.subscribe();
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return check(self) },
                () = tokio::time::sleep_until(until) => return check(self),
            }
        }
    }

    /// Which playbooks `alert` would trigger, and why.
    pub fn explain(&self, alert: &Alert) -> Vec<TriggerExplanation> {
        self.inner
            .playbooks
            .iter()
            .map(|p| {
                let (matches, reasons) = trigger_matches(p, alert);
                TriggerExplanation {
                    playbook: p.name.clone(),
                    matches: matches && p.config.enabled,
                    reasons: if p.config.enabled {
                        reasons
                    } else {
                        vec!["disabled".into()]
                    },
                }
            })
            .collect()
    }

    /// Opens (or links to) the incident for `alert` and starts the playbooks it triggers.
    /// Returns the incident id, or `None` when the alert neither triggers a playbook nor is
    /// urgent enough to open an incident.
    pub async fn handle_alert(&self, routed: &RoutedAlert) -> Result<Option<String>, Error> {
        let alert = &routed.alert;
        let matching: Vec<Arc<Playbook>> = self
            .inner
            .playbooks
            .iter()
            .filter(|p| p.config.enabled && trigger_matches(p, alert).0)
            .cloned()
            .collect();
        if matching.is_empty() && alert.priority > self.inner.config.open_incidents_at {
            return Ok(None);
        }
        let incident_id = self
            .open_or_link(&alert.dedup_key, alert, &format!("alert:{}", alert.id))
            .await?;
        let event = serde_json::to_value(alert.event.as_ref()).unwrap_or_default();
        for p in matching {
            let dry = p.config.dry_run;
            self.start_run(
                &p,
                &incident_id,
                event.clone(),
                dry,
                &format!("alert:{}", alert.id),
            )
            .await?;
        }
        Ok(Some(incident_id))
    }

    /// Opens an incident for `event` by hand (the CLI) and runs `playbook` for it (its
    /// trigger is not checked). Returns the run id.
    pub async fn run_playbook(
        &self,
        playbook: &str,
        event: Arc<Event>,
        dry_run: bool,
        actor: &str,
    ) -> Result<String, Error> {
        let p = self
            .inner
            .playbooks
            .iter()
            .find(|p| p.name == playbook)
            .cloned()
            .ok_or_else(|| Error::invalid_input(format!("unknown playbook `{playbook}`")))?;
        let mut alert = Alert::new(
            event.clone(),
            Priority::from_severity(event.severity),
            format!("playbook/{playbook}"),
        );
        alert.dedup_key = format!("manual|{playbook}|{}", event.id);
        alert.id = Alert::derive_id(&["manual", playbook, &event.id]);
        let incident_id = self.open_or_link(&alert.dedup_key, &alert, actor).await?;
        let value = serde_json::to_value(event.as_ref()).unwrap_or_default();
        self.start_run(&p, &incident_id, value, dry_run || p.config.dry_run, actor)
            .await
    }

    async fn open_or_link(
        &self,
        fingerprint: &str,
        alert: &Alert,
        actor: &str,
    ) -> Result<String, Error> {
        let _incident_write = self.inner.incident_writes.lock().await;
        let now = Utc::now();
        let event = &alert.event;
        // In a cluster, the open incident of this fingerprint may have been resolved on
        // another replica: taken in first, so the alert opens a new incident instead.
        if let Some(coordination) = self.coordination() {
            let open = {
                let state = lock(&self.inner.state);
                state.open_by_fingerprint.get(fingerprint).cloned()
            };
            if let Some(open) = open {
                match coordination.incident_state(&open).await {
                    Ok(Some(shared)) => self.take_shared_state(&open, &shared).await?,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(incident = %open, error = %e, "shared incident state not readable; the alert links to this replica's open copy");
                    }
                }
            }
        }
        // In a cluster, a new incident takes the id the replicas agree on for the
        // fingerprint (this replica's proposal when it is the first).
        let agreed = match self.coordination() {
            Some(coordination) => {
                let proposed = {
                    let state = lock(&self.inner.state);
                    let open = state
                        .open_by_fingerprint
                        .get(fingerprint)
                        .is_some_and(|id| state.incidents.contains_key(id));
                    (!open).then(|| {
                        let generation = state.generations.get(fingerprint).copied().unwrap_or(0);
                        format!(
                            "inc-{}",
                            Alert::derive_id(&["incident", fingerprint, &generation.to_string()])
                        )
                    })
                };
                match proposed {
                    Some(proposed) => Some(coordination.incident_id(fingerprint, &proposed).await?),
                    None => None,
                }
            }
            None => None,
        };
        let (records, id) = {
            let state = lock(&self.inner.state);
            match state
                .open_by_fingerprint
                .get(fingerprint)
                .and_then(|id| state.incidents.get(id))
            {
                Some(existing) => {
                    if existing.alert_ids.contains(&alert.id) {
                        return Ok(existing.id.clone());
                    }
                    let mut inc = existing.clone();
                    inc.timeline = Vec::new();
                    push_bounded(&mut inc.alert_ids, alert.id.clone());
                    if !inc.event_ids.contains(&event.id) {
                        push_bounded(&mut inc.event_ids, event.id.clone());
                    }
                    if let Some(w) = &event.wedding_id
                        && !inc.wedding_ids.contains(w)
                        && inc.wedding_ids.len() < MAX_LINKED_ALERTS
                    {
                        inc.wedding_ids.push(w.clone());
                    }
                    inc.alert_count += 1;
                    inc.priority = inc.priority.min(alert.priority);
                    let entry = entry(
                        now,
                        actor,
                        "alert_linked",
                        json!({"alert_id": alert.id, "event_id": event.id, "priority": alert.priority}),
                    );
                    let id = inc.id.clone();
                    (
                        vec![
                            Record::Incident {
                                incident: Box::new(inc),
                            },
                            Record::Timeline {
                                incident_id: id.clone(),
                                entry,
                            },
                        ],
                        id,
                    )
                }
                None => {
                    let generation = state.generations.get(fingerprint).copied().unwrap_or(0);
                    let id = agreed.clone().unwrap_or_else(|| {
                        format!(
                            "inc-{}",
                            Alert::derive_id(&["incident", fingerprint, &generation.to_string()])
                        )
                    });
                    let title = match &event.wedding_id {
                        Some(w) => format!(
                            "{} {} (wedding {w})",
                            alert.priority.short(),
                            event.summary()
                        ),
                        None => format!("{} {}", alert.priority.short(), event.summary()),
                    };
                    let inc = Incident {
                        id: id.clone(),
                        fingerprint: fingerprint.to_owned(),
                        title: title
                            .chars()
                            .filter(|c| !c.is_control())
                            .take(200)
                            .collect(),
                        priority: alert.priority,
                        state: IncidentState::Open,
                        opened: StateChange {
                            by: actor.to_owned(),
                            at: now,
                        },
                        acknowledged: None,
                        contained: None,
                        resolved: None,
                        route: alert.route.clone(),
                        alert_ids: vec![alert.id.clone()],
                        alert_count: 1,
                        event_ids: vec![event.id.clone()],
                        wedding_ids: event.wedding_id.clone().into_iter().collect(),
                        first_event: serde_json::to_value(event.as_ref()).unwrap_or_default(),
                        tickets: Default::default(),
                        timeline: Vec::new(),
                    };
                    let entry = entry(
                        now,
                        actor,
                        "opened",
                        json!({
                            "fingerprint": fingerprint, "alert_id": alert.id, "event_id": event.id,
                            "priority": alert.priority, "route": alert.route,
                        }),
                    );
                    (
                        vec![
                            Record::Incident {
                                incident: Box::new(inc),
                            },
                            Record::Timeline {
                                incident_id: id.clone(),
                                entry,
                            },
                        ],
                        id,
                    )
                }
            }
        };
        self.commit(records).await?;
        Ok(id)
    }

    /// In a cluster, brings this replica's copy of incident `incident_id` up to the state
    /// the replicas share (acknowledged, contained or resolved on another replica: the
    /// timeline says by whom and that it happened elsewhere), and returns it. Without a
    /// cluster, or when the shared state cannot be read (logged), this replica's copy as
    /// it is. `None`: no such incident here.
    pub async fn refresh_incident(&self, incident_id: &str) -> Option<Incident> {
        if let Some(coordination) = self.coordination()
            && self
                .incident(incident_id)
                .is_some_and(|i| i.state < IncidentState::Resolved)
        {
            match coordination.incident_state(incident_id).await {
                Ok(Some(shared)) => {
                    let _incident_write = self.inner.incident_writes.lock().await;
                    if let Err(e) = self.take_shared_state(incident_id, &shared).await {
                        tracing::warn!(incident = %incident_id, error = %e, "shared incident state not recorded here");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(incident = %incident_id, error = %e, "shared incident state not readable; showing this replica's copy");
                }
            }
        }
        self.incident(incident_id)
    }

    /// Every incident, most recently opened first, each not resolved here brought up to
    /// the state the replicas share (see [`refresh_incident`](Self::refresh_incident)).
    pub async fn refresh_incidents(&self) -> Vec<Incident> {
        if self.coordination().is_some() {
            let unresolved: Vec<String> = self
                .incidents()
                .into_iter()
                .filter(|i| i.state < IncidentState::Resolved)
                .map(|i| i.id)
                .collect();
            for id in unresolved {
                self.refresh_incident(&id).await;
            }
        }
        self.incidents()
    }

    /// Records on this replica's copy of `incident_id` a state `shared` says another
    /// replica moved it to (nothing when the copy is there already). The caller holds
    /// `incident_writes`.
    async fn take_shared_state(
        &self,
        incident_id: &str,
        shared: &SharedIncidentState,
    ) -> Result<(), Error> {
        let records = {
            let state = lock(&self.inner.state);
            let Some(inc) = state.incidents.get(incident_id) else {
                return Ok(());
            };
            if inc.state >= shared.state {
                return Ok(());
            }
            let mut inc = inc.clone();
            inc.timeline = Vec::new();
            let from = inc.state;
            let mut merged = SharedIncidentState::of(&inc);
            merged.merge(shared);
            inc.state = merged.state;
            inc.acknowledged = merged.acknowledged.clone();
            inc.contained = merged.contained.clone();
            inc.resolved = merged.resolved.clone();
            let (at, by) = merged
                .current_change()
                .map_or((Utc::now(), "another replica".to_owned()), |c| {
                    (c.at, c.by.clone())
                });
            let entry = entry(
                at,
                &by,
                merged.state.as_str(),
                json!({"from": from.as_str(), "to": merged.state.as_str(), "on_another_replica": true}),
            );
            vec![
                Record::Incident {
                    incident: Box::new(inc),
                },
                Record::Timeline {
                    incident_id: incident_id.to_owned(),
                    entry,
                },
            ]
        };
        self.commit(records).await
    }

    /// Acknowledges an incident.
    pub async fn acknowledge(&self, incident_id: &str, actor: &str) -> Result<Incident, Error> {
        self.set_state(incident_id, IncidentState::Acknowledged, actor, None)
            .await
    }

    /// Resolves an incident with a note (and resolves its tickets).
    pub async fn resolve(
        &self,
        incident_id: &str,
        actor: &str,
        note: &str,
    ) -> Result<Incident, Error> {
        self.resolve_from(incident_id, actor, note, None).await
    }

    /// [`ResponseEngine::resolve`], except that the ticket of `origin` (the ticket system
    /// id and key the resolution came from) is not resolved again.
    async fn resolve_from(
        &self,
        incident_id: &str,
        actor: &str,
        note: &str,
        origin: Option<(&str, &str)>,
    ) -> Result<Incident, Error> {
        let inc = self
            .set_state_from(
                incident_id,
                IncidentState::Resolved,
                actor,
                Some(note),
                origin,
            )
            .await?;
        if let Some(coordination) = self.coordination()
            && let Err(e) = coordination.incident_resolved(&inc.fingerprint).await
        {
            tracing::warn!(incident = %inc.id, error = %e, "incident resolution not shared with the other replicas: their next alert links to it until its id expires");
        }
        for (system_id, ticket) in &inc.tickets {
            if origin.is_some_and(|(system, _)| system == system_id) {
                continue;
            }
            let Some(system) = self.inner.tickets.get(system_id) else {
                continue;
            };
            let result = RetryPolicy::default()
                .run(|_| system.resolve(ticket, note))
                .await
                .0;
            let (action, fields) = match result {
                Ok(()) => (
                    "ticket_resolved",
                    json!({"system": system_id, "key": ticket.key}),
                ),
                Err(e) => (
                    "ticket_resolve_failed",
                    json!({"system": system_id, "key": ticket.key, "error": e.to_string()}),
                ),
            };
            self.commit(vec![Record::Timeline {
                incident_id: inc.id.clone(),
                entry: entry(Utc::now(), "system", action, fields),
            }])
            .await?;
        }
        Ok(self.incident(incident_id).unwrap_or(inc))
    }

    /// Moves an incident to `to` (recording who and when). Moving backwards (a resolved
    /// incident acknowledged) is refused.
    pub async fn set_state(
        &self,
        incident_id: &str,
        to: IncidentState,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Incident, Error> {
        self.set_state_from(incident_id, to, actor, note, None)
            .await
    }

    /// [`ResponseEngine::set_state`] for a change that came from the ticket `origin`
    /// (system id, key): the timeline entry names the ticket, and the change is not pushed
    /// back to that ticket system.
    async fn set_state_from(
        &self,
        incident_id: &str,
        to: IncidentState,
        actor: &str,
        note: Option<&str>,
        origin: Option<(&str, &str)>,
    ) -> Result<Incident, Error> {
        let incident_write = self.inner.incident_writes.lock().await;
        let now = Utc::now();
        // In a cluster the shared state moves first (compare-and-set): a change another
        // replica made meanwhile is taken in, and one that already went further wins.
        let mut shared = None;
        if let Some(coordination) = self.coordination()
            && let Some(local) = self.incident(incident_id)
            && local.state < to
        {
            let change = StateChange {
                by: actor.to_owned(),
                at: now,
            };
            match coordination
                .advance_incident(incident_id, &SharedIncidentState::of(&local), to, &change)
                .await?
            {
                IncidentAdvance::Moved(state) => shared = Some(state),
                IncidentAdvance::AlreadyThere(state) => {
                    self.take_shared_state(incident_id, &state).await?;
                    let by = state
                        .current_change()
                        .map(|c| format!(" (by {}, on another replica)", c.by))
                        .unwrap_or_default();
                    return Err(Error::rejected(format!(
                        "incident `{incident_id}` is {}{by}; it cannot become {}",
                        state.state.as_str(),
                        to.as_str()
                    )));
                }
            }
        }
        let records = {
            let state = lock(&self.inner.state);
            let inc = state
                .incidents
                .get(incident_id)
                .ok_or_else(|| Error::invalid_input(format!("unknown incident `{incident_id}`")))?;
            if inc.state >= to {
                return Err(Error::rejected(format!(
                    "incident `{incident_id}` is {}; it cannot become {}",
                    inc.state.as_str(),
                    to.as_str()
                )));
            }
            let mut inc = inc.clone();
            inc.timeline = Vec::new();
            let change = Some(StateChange {
                by: actor.to_owned(),
                at: now,
            });
            match to {
                IncidentState::Acknowledged => inc.acknowledged = change,
                IncidentState::Contained => inc.contained = change,
                IncidentState::Resolved => inc.resolved = change,
                IncidentState::Open => {}
            }
            // What other replicas recorded (an acknowledgement before this resolution).
            if let Some(shared) = &shared {
                for (mine, theirs) in [
                    (&mut inc.acknowledged, &shared.acknowledged),
                    (&mut inc.contained, &shared.contained),
                    (&mut inc.resolved, &shared.resolved),
                ] {
                    if mine.is_none() {
                        mine.clone_from(theirs);
                    }
                }
            }
            let mut fields = json!({"from": inc.state.as_str(), "to": to.as_str()});
            if let Some(note) = note {
                fields["note"] = Value::String(
                    note.chars()
                        .filter(|c| !c.is_control() || *c == '\n')
                        .take(4096)
                        .collect(),
                );
            }
            if let Some((system, key)) = origin {
                fields["ticket"] = json!({"system": system, "key": key});
            }
            inc.state = to;
            vec![
                Record::Incident {
                    incident: Box::new(inc),
                },
                Record::Timeline {
                    incident_id: incident_id.to_owned(),
                    entry: entry(now, actor, to.as_str(), fields),
                },
            ]
        };
        self.commit(records).await?;
        drop(incident_write);
        let incident = self
            .incident(incident_id)
            .ok_or_else(|| Error::internal("incident vanished"))?;
        // Acknowledged/contained go to the incident's tickets as timeline entries (resolve
        // closes them instead, in `resolve`). In the background: a ticket system that is
        // down never holds up the state change; the outcome is on the timeline.
        if matches!(to, IncidentState::Acknowledged | IncidentState::Contained) {
            for (system_id, ticket) in incident.tickets.clone() {
                if origin.is_some_and(|(system, _)| system == system_id) {
                    continue;
                }
                let Some(system) = self.inner.tickets.get(&system_id).cloned() else {
                    continue;
                };
                let engine = self.clone();
                let update = TicketUpdate {
                    at: now,
                    author: actor.to_owned(),
                    text: format!("Incident {incident_id} {} by {actor}", to.as_str()),
                };
                let incident_id = incident_id.to_owned();
                self.spawn_tracked(None, async move {
                    let result = RetryPolicy::default()
                        .run(|_| system.update(&ticket, &update))
                        .await
                        .0;
                    let (action, mut fields) = match result {
                        Ok(()) => (
                            "ticket_updated",
                            json!({"system": system_id, "key": ticket.key}),
                        ),
                        Err(e) => (
                            "ticket_update_failed",
                            json!({"system": system_id, "key": ticket.key, "error": e.to_string()}),
                        ),
                    };
                    fields["text"] = Value::String(update.text.clone());
                    let _ = engine
                        .commit(vec![Record::Timeline {
                            incident_id,
                            entry: entry(Utc::now(), "system", action, fields),
                        }])
                        .await;
                });
            }
        }
        Ok(incident)
    }

    /// The ids of the configured ticket systems of connector `kind` (`jira`,
    /// `servicenow`), sorted.
    pub fn ticket_systems_of_kind(&self, kind: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .inner
            .tickets
            .iter()
            .filter(|(_, system)| system.kind() == kind)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The incident a ticket was opened for: the first of `keys` that is the key of a
    /// ticket of one of `systems` (ticket system ids) on an incident. An incident not yet
    /// resolved wins over a resolved one, then the most recently opened. Returns the
    /// incident with the system id and key that matched.
    pub fn incident_for_ticket(
        &self,
        systems: &[String],
        keys: &[String],
    ) -> Option<(Incident, String, String)> {
        let state = lock(&self.inner.state);
        for key in keys {
            let best = state
                .incidents
                .values()
                .filter_map(|inc| {
                    inc.tickets
                        .iter()
                        .find(|(system, ticket)| systems.contains(system) && &ticket.key == key)
                        .map(|(system, _)| (inc, system))
                })
                .max_by_key(|(inc, _)| (inc.state != IncidentState::Resolved, inc.opened.at));
            if let Some((inc, system)) = best {
                return Some((inc.clone(), system.clone(), key.clone()));
            }
        }
        None
    }

    /// Applies a status change made in a ticket system to the incident the ticket was
    /// opened for (two-way sync).
    ///
    /// The change is recorded on the timeline as `ticket_status_changed` by `actor` (the
    /// person who changed the ticket), unless the ticket's last recorded status is already
    /// `status` (a sender that posts every update of the record). Then, when `to` is set
    /// and the incident is not already there, the incident moves to `to` by `actor`, and
    /// the change is pushed to the incident's other tickets but never back to `system`
    /// (no loop). A change the incident cannot take (it is already there or beyond) is
    /// [`TicketSync::AlreadyThere`].
    pub async fn ticket_status_changed(
        &self,
        incident_id: &str,
        change: &TicketStatusChange<'_>,
    ) -> Result<TicketSync, Error> {
        let current = self
            .incident(incident_id)
            .ok_or_else(|| Error::invalid_input(format!("unknown incident `{incident_id}`")))?;
        let last_status = current
            .timeline
            .iter()
            .rev()
            .find(|e| {
                e.action == "ticket_status_changed"
                    && e.fields.get("system").and_then(Value::as_str) == Some(change.system)
                    && e.fields.get("key").and_then(Value::as_str) == Some(change.key)
            })
            .and_then(|e| e.fields.get("status").and_then(Value::as_str));
        if last_status == Some(change.status) {
            return Ok(TicketSync::Unchanged);
        }
        let clean =
            |text: &str| -> String { text.chars().filter(|c| !c.is_control()).take(256).collect() };
        let mut fields = json!({
            "system": change.system,
            "key": change.key,
            "status": clean(change.status),
            "maps_to": change.to.map(IncidentState::as_str),
        });
        if let Some(from) = change.from {
            fields["from_status"] = Value::String(clean(from));
        }
        self.commit(vec![Record::Timeline {
            incident_id: incident_id.to_owned(),
            entry: entry(Utc::now(), change.actor, "ticket_status_changed", fields),
        }])
        .await?;
        let Some(to) = change.to else {
            return Ok(TicketSync::Recorded);
        };
        if current.state >= to {
            return Ok(TicketSync::AlreadyThere(current.state));
        }
        let origin = Some((change.system, change.key));
        let note = format!(
            "{} in {} {} (status {})",
            to.as_str(),
            change.system,
            change.key,
            clean(change.status)
        );
        let result = if to == IncidentState::Resolved {
            self.resolve_from(incident_id, change.actor, &note, origin)
                .await
        } else {
            self.set_state_from(incident_id, to, change.actor, Some(&note), origin)
                .await
        };
        match result {
            Ok(incident) => Ok(TicketSync::Applied(incident.state)),
            // Moved on between the look and the change (another writer): nothing to undo.
            Err(e) if e.kind() == ErrorKind::Rejected => {
                let state = self.incident(incident_id).map_or(to, |i| i.state);
                Ok(TicketSync::AlreadyThere(state))
            }
            Err(e) => Err(e),
        }
    }

    /// Records an approval decision on a waiting approval step. Someone not among the
    /// step's approvers is refused, and the refusal is on the timeline.
    pub async fn decide(
        &self,
        run_id: &str,
        step_id: &str,
        actor: &str,
        approve: bool,
    ) -> Result<(), Error> {
        self.decide_with(run_id, step_id, actor, approve, None, &Map::new())
            .await
    }

    /// [`decide`](Self::decide) with an optional comment and the structured fields the
    /// step declares (`response_fields`). A decision from someone not among the approvers,
    /// or whose fields do not fit, is refused, and the refusal is on the timeline.
    pub async fn decide_with(
        &self,
        run_id: &str,
        step_id: &str,
        actor: &str,
        approve: bool,
        comment: Option<&str>,
        fields: &Map<String, Value>,
    ) -> Result<(), Error> {
        let now = Utc::now();
        let (incident_id, step_cfg, current) = {
            let state = lock(&self.inner.state);
            let run = state
                .runs
                .get(run_id)
                .ok_or_else(|| Error::invalid_input(format!("unknown run `{run_id}`")))?;
            let p = self.playbook_of(run)?;
            let step = p
                .steps
                .iter()
                .find(|s| s.config.id == step_id)
                .ok_or_else(|| {
                    Error::invalid_input(format!("run `{run_id}` has no step `{step_id}`"))
                })?;
            if step.config.kind != StepKind::Approval {
                return Err(Error::invalid_input(format!(
                    "step `{step_id}` is not an approval"
                )));
            }
            (
                run.incident_id.clone(),
                step.config.clone(),
                run.steps.get(step_id).cloned(),
            )
        };
        if !step_cfg.approvers.iter().any(|a| a == actor) {
            self.commit(vec![Record::Timeline {
                incident_id,
                entry: entry(
                    now,
                    actor,
                    "approval_refused",
                    json!({"run_id": run_id, "step_id": step_id, "reason": "not an approver"}),
                ),
            }])
            .await?;
            return Err(Error::rejected(format!(
                "`{actor}` may not decide step `{step_id}`"
            )));
        }
        if let Err(reason) = step_cfg.check_response(approve, comment, fields) {
            self.commit(vec![Record::Timeline {
                incident_id,
                entry: entry(
                    now,
                    actor,
                    "approval_refused",
                    json!({"run_id": run_id, "step_id": step_id, "reason": reason}),
                ),
            }])
            .await?;
            return Err(Error::invalid_input(reason));
        }
        let Some(mut record) = current.filter(|r| r.status == StepStatus::Running) else {
            return Err(Error::rejected(format!(
                "step `{step_id}` of run `{run_id}` is not waiting for a decision"
            )));
        };
        record.status = if approve {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        record.finished_at = Some(now);
        record.output = json!({"approved": approve, "by": actor, "at": now});
        if let Some(c) = comment {
            record.output["comment"] = Value::String(
                c.chars()
                    .filter(|c| !c.is_control() || *c == '\n')
                    .collect(),
            );
        }
        if !fields.is_empty() {
            record.output["fields"] = Value::Object(fields.clone());
        }
        if !approve {
            record.error = Some(format!("rejected by {actor}"));
        }
        if !self
            .finish_step(run_id, &incident_id, record, actor)
            .await?
        {
            return Err(Error::rejected(format!(
                "step `{step_id}` was decided meanwhile"
            )));
        }
        Ok(())
    }

    fn playbook_of(&self, run: &Run) -> Result<Arc<Playbook>, Error> {
        // A run resumes with the playbook it started with (its snapshot), even when the
        // configuration changed since.
        if let Some(p) = self
            .inner
            .playbooks
            .iter()
            .find(|p| p.name == run.playbook && p.config.version == run.version)
        {
            return Ok(p.clone());
        }
        // Snapshots taken before durations were strings carry `timeout_ms`-style integers.
        let mut snapshot = run.snapshot.clone();
        vowguard_core::duration::upgrade_json_durations(&mut snapshot);
        let config: PlaybookConfig = serde_json::from_value(snapshot).map_err(|e| {
            Error::internal(format!(
                "run `{}`: unreadable playbook snapshot: {e}",
                run.id
            ))
        })?;
        let catalog = Catalog {
            notifiers: self.inner.notifiers.keys().cloned().collect(),
            tickets: self.inner.tickets.keys().cloned().collect(),
            actions: self.inner.config.actions.iter().cloned().collect(),
        };
        Ok(Arc::new(Playbook::compile(
            &run.playbook,
            config,
            &catalog,
        )?))
    }

    /// Appends records durably, applies them, and passes timeline entries to the audit
    /// trail: in a task of its own, so that a caller aborted at shutdown never leaves the
    /// record written and its audit entry not. Refused once the engine has stopped.
    async fn commit(&self, records: Vec<Record>) -> Result<(), Error> {
        // Counted before the check: shutdown sets `stopped`, then waits for the count.
        self.inner.commits.fetch_add(1, Ordering::SeqCst);
        if self.inner.stopped.load(Ordering::SeqCst) {
            self.inner.commits.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::unavailable(
                "the response engine has stopped; nothing more is recorded",
            ));
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let result = engine.commit_now(records).await;
            engine.inner.commits.fetch_sub(1, Ordering::SeqCst);
            engine.inner.changed.send_modify(|n| *n += 1);
            result
        })
        .await
        .map_err(|e| Error::internal(format!("response record commit failed: {e}")))?
    }

    async fn commit_now(&self, records: Vec<Record>) -> Result<(), Error> {
        let audit: Vec<AuditRecord> = records
            .iter()
            .filter_map(|r| match r {
                Record::Timeline { incident_id, entry } => Some(AuditRecord::Incident {
                    at: entry.at,
                    incident_id: incident_id.clone(),
                    action: entry.action.clone(),
                    actor: entry.actor.clone(),
                    fields: entry.fields.clone(),
                }),
                _ => None,
            })
            .collect();
        {
            let inner = &self.inner;
            let _writer = inner.writer.lock().await;
            let records: Arc<[Record]> = Arc::from(records);
            inner.storage.append(records.clone()).await?;
            let compacted = {
                let mut state = lock(&inner.state);
                for r in records.iter() {
                    state.apply(r.clone());
                }
                state.evict_closed(inner.config.keep_closed_incidents);
                inner
                    .storage
                    .wants_compaction()
                    .then(|| state.compacted(inner.config.keep_closed_incidents))
            };
            if let Some(compacted) = compacted
                && let Err(e) = inner.storage.replace(compacted).await
            {
                tracing::error!(storage = inner.storage.location(), error = %e, "response records not compacted");
            }
        }
        self.inner.changed.send_modify(|n| *n += 1);
        if !audit.is_empty()
            && let Err(e) = self.inner.audit.append(audit).await
        {
            tracing::error!(error = %e, "incident timeline entry not appended to the audit trail");
        }
        Ok(())
    }

    async fn start_run(
        &self,
        p: &Arc<Playbook>,
        incident_id: &str,
        event: Value,
        dry_run: bool,
        actor: &str,
    ) -> Result<String, Error> {
        let id = format!(
            "run-{}",
            Alert::derive_id(&[
                "run",
                &p.name,
                &p.config.version.to_string(),
                incident_id,
                if dry_run { "dry" } else { "live" }
            ])
        );
        if lock(&self.inner.state).runs.contains_key(&id) {
            return Ok(id);
        }
        // In a cluster: the run as another replica recorded it before it died (its steps
        // are taken in by the driver; see `crate::coordination`).
        let mut taken_over = None;
        if let Some(coordination) = self.coordination() {
            if let RunClaim::Elsewhere(holder) = coordination.claim_run(&id).await? {
                // Another replica drives (or drove) this run: say so, start nothing.
                self.commit(vec![Record::Timeline {
                    incident_id: incident_id.to_owned(),
                    entry: entry(
                        Utc::now(),
                        actor,
                        "run_claimed_elsewhere",
                        json!({"run_id": id, "playbook": p.name, "version": p.config.version, "replica": holder}),
                    ),
                }])
                .await?;
                return Ok(id);
            }
            taken_over = coordination.shared_run(&id).await?.filter(|r| {
                r.incident_id == incident_id
                    && r.playbook == p.name
                    && r.version == p.config.version
            });
        }
        if let Some(shared) = taken_over {
            // Resumed with the header it started with (event, snapshot, deadline).
            let now = Utc::now();
            let recorded: Vec<&String> = shared.steps.keys().collect();
            let fields = json!({
                "run_id": id, "playbook": p.name, "version": p.config.version,
                "started_by": shared.started_by, "started_at": shared.started_at,
                "steps_recorded": recorded,
            });
            let run = Run {
                state: RunState::Running,
                finished_at: None,
                steps: Default::default(),
                ..shared
            };
            self.commit(vec![
                Record::Run { run: Box::new(run) },
                Record::Timeline {
                    incident_id: incident_id.to_owned(),
                    entry: entry(now, actor, "run_taken_over", fields),
                },
            ])
            .await?;
            self.spawn_driver(id.clone());
            return Ok(id);
        }
        let now = Utc::now();
        let run = Run {
            id: id.clone(),
            playbook: p.name.clone(),
            version: p.config.version,
            snapshot: p.snapshot(),
            incident_id: incident_id.to_owned(),
            event,
            dry_run,
            state: RunState::Running,
            started_at: now,
            deadline: now
                + chrono::Duration::seconds(
                    i64::try_from(p.config.deadline.as_secs())
                        .unwrap_or(i64::MAX / 1000)
                        .min(365 * 86_400),
                ),
            finished_at: None,
            started_by: actor.to_owned(),
            steps: Default::default(),
        };
        self.commit(vec![
            Record::Run { run: Box::new(run) },
            Record::Timeline {
                incident_id: incident_id.to_owned(),
                entry: entry(now, actor, "run_started", json!({"run_id": id, "playbook": p.name, "version": p.config.version, "dry_run": dry_run})),
            },
        ])
        .await?;
        self.spawn_driver(id.clone());
        Ok(id)
    }

    fn spawn_driver(&self, run_id: String) {
        let engine = self.clone();
        let name = format!("run:{run_id}");
        self.spawn_tracked(Some(name), async move {
            let coordination = engine.coordination_when_set().await;
            let outcome = match &coordination {
                None => engine.drive(&run_id).await,
                Some(c) => engine.drive_claimed(&run_id, c.as_ref()).await,
            };
            if let Err(e) = outcome {
                tracing::error!(run = run_id.as_str(), error = %e, "playbook run driver failed");
                let _ = engine
                    .end_run(&run_id, RunState::Failed, Some(e.to_string()))
                    .await;
            }
            if let Some(c) = coordination
                && engine.run(&run_id).is_some_and(|r| r.state.is_terminal())
                && let Err(e) = c.run_finished(&run_id).await
            {
                tracing::warn!(run = run_id.as_str(), error = %e, "run end not shared with the other replicas; its claim expires instead");
            }
        });
    }

    /// Spawns a background task that writes to the record, known by `name` (a second task
    /// of the same name is not started: false). Shutdown waits for it.
    fn spawn_tracked(
        &self,
        name: Option<String>,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> bool {
        let name = name.unwrap_or_else(|| {
            format!(
                "task:{}",
                self.inner.task_seq.fetch_add(1, Ordering::Relaxed)
            )
        });
        let mut tasks = lock(&self.inner.tasks);
        if tasks.contains_key(&name) {
            return false;
        }
        let engine = self.clone();
        let key = name.clone();
        let handle = tokio::spawn(async move {
            task.await;
            lock(&engine.inner.tasks).remove(&key);
            engine.inner.changed.send_modify(|n| *n += 1);
        });
        tasks.insert(name, handle.abort_handle());
        true
    }

    fn is_stopping(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// Stops the engine so that nothing it records is left out of the audit trail: call it
    /// before the audit log closes.
    ///
    /// 1. Alerts already queued are handled (their incidents opened, their runs started);
    ///    later alerts are refused (and logged).
    /// 2. No new step starts; steps under way finish (each within its own timeout) and are
    ///    recorded; approval waits let go. A run not finished stays `running` in the record
    ///    at the step it was in, and the next start resumes it there.
    /// 3. Whatever is still going when `grace` runs out is aborted between two commits: a
    ///    commit always completes (record file, then audit trail) in its own task.
    /// 4. Nothing more is written after this returns.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let until = tokio::time::Instant::now() + grace;
        let worker_running = lock(&self.inner.alerts_rx).is_none();
        if worker_running {
            let (tx, rx) = oneshot::channel();
            let flushed = tokio::time::timeout_at(until, async {
                if self.inner.alerts_tx.send(Queued::Flush(tx)).await.is_ok() {
                    let _ = rx.await;
                }
            })
            .await;
            if flushed.is_err() {
                tracing::warn!(
                    "response engine: queued alerts not all handled within the shutdown grace"
                );
            }
        }
        // Runs go on until they only wait for approvals (or the grace runs out): a run
        // started by the last lines of stdin gets its containment steps done.
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        self.wait_until(left, |e| {
            let idle = lock(&e.inner.idle_runs);
            lock(&e.inner.tasks)
                .keys()
                .all(|name| name.strip_prefix("run:").is_some_and(|r| idle.contains(r)))
        })
        .await;
        self.inner.stopping.send_replace(true);
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let idle = self
            .wait_until(left, |e| lock(&e.inner.tasks).is_empty())
            .await;
        let mut aborted = 0;
        if !idle {
            let tasks: Vec<(String, tokio::task::AbortHandle)> =
                lock(&self.inner.tasks).drain().collect();
            aborted = tasks.len();
            for (name, handle) in tasks {
                tracing::warn!(
                    task = name.as_str(),
                    "response engine: still going at the end of the shutdown grace; stopped (a run resumes at the next start)"
                );
                handle.abort();
            }
        }
        self.inner.stopped.store(true, Ordering::SeqCst);
        // Commits under way complete (they are a write, an fsync and an audit append).
        let committed = self
            .wait_until(COMMIT_GRACE, |e| {
                e.inner.commits.load(Ordering::SeqCst) == 0
            })
            .await;
        if !committed {
            tracing::error!("response engine: a commit did not complete within the shutdown grace");
        }
        let mut paused_runs: Vec<String> = lock(&self.inner.state)
            .runs
            .values()
            .filter(|r| r.state == RunState::Running)
            .map(|r| r.id.clone())
            .collect();
        paused_runs.sort();
        if !paused_runs.is_empty() {
            tracing::info!(
                runs = paused_runs.len(),
                "response engine stopped; runs not finished resume at the next start"
            );
        }
        ShutdownReport {
            paused_runs,
            aborted_tasks: aborted,
        }
    }

    /// Ends runs past their deadline whose driver is gone (or stuck past the grace).
    pub fn reap(&self, now: DateTime<Utc>) -> Vec<String> {
        let due: Vec<String> = {
            let state = lock(&self.inner.state);
            state
                .runs
                .values()
                .filter(|r| r.state == RunState::Running && r.deadline + REAPER_GRACE <= now)
                .map(|r| r.id.clone())
                .collect()
        };
        for id in &due {
            let engine = self.clone();
            let id = id.clone();
            self.spawn_tracked(None, async move {
                if let Err(e) = engine
                    .end_run(
                        &id,
                        RunState::TimedOut,
                        Some("ended by the reaper: past the playbook deadline".into()),
                    )
                    .await
                {
                    tracing::error!(run = id.as_str(), error = %e, "reaper could not end a run");
                }
            });
        }
        due
    }

    async fn end_run(
        &self,
        run_id: &str,
        to: RunState,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let now = Utc::now();
        let records = {
            let state = lock(&self.inner.state);
            let Some(run) = state.runs.get(run_id) else {
                return Ok(());
            };
            if run.state.is_terminal() {
                return Ok(());
            }
            let mut records = Vec::new();
            for step in run
                .steps
                .values()
                .filter(|s| s.status == StepStatus::Running)
            {
                let mut s = step.clone();
                s.status = StepStatus::TimedOut;
                s.finished_at = Some(now);
                s.error = Some(reason.clone().unwrap_or_else(|| "the run ended".into()));
                records.push(Record::Step {
                    run_id: run_id.to_owned(),
                    step: s,
                });
            }
            let mut header = run.clone();
            header.steps = Default::default();
            header.state = to;
            header.finished_at = Some(now);
            let mut fields =
                json!({"run_id": run_id, "playbook": run.playbook, "state": to.as_str()});
            if let Some(r) = &reason {
                fields["reason"] = Value::String(r.clone());
            }
            records.push(Record::Run {
                run: Box::new(header),
            });
            records.push(Record::Timeline {
                incident_id: run.incident_id.clone(),
                entry: entry(
                    now,
                    &format!("playbook:{}", run.playbook),
                    "run_finished",
                    fields,
                ),
            });
            records
        };
        self.commit(records).await
    }

    /// Writes a step's final record unless it is already final; true when written.
    async fn finish_step(
        &self,
        run_id: &str,
        incident_id: &str,
        record: StepRecord,
        actor: &str,
    ) -> Result<bool, Error> {
        {
            let state = lock(&self.inner.state);
            let run = state.runs.get(run_id);
            if run.is_none_or(|r| r.state.is_terminal())
                || run
                    .and_then(|r| r.steps.get(&record.step_id))
                    .is_some_and(|s| s.status.is_terminal())
            {
                return Ok(false);
            }
        }
        let mut fields = json!({
            "run_id": run_id, "step_id": record.step_id, "status": record.status,
            "attempts": record.attempts, "idempotency_key": record.idempotency_key,
        });
        if record.dry_run {
            fields["dry_run"] = Value::Bool(true);
        }
        if let Some(e) = &record.error {
            fields["error"] = Value::String(e.clone());
        }
        if !record.output.is_null() {
            fields["output"] = record.output.clone();
        }
        let action = if record.status == StepStatus::Skipped {
            "step_skipped"
        } else {
            "step_finished"
        };
        let at = record.finished_at.unwrap_or_else(Utc::now);
        self.commit(vec![
            Record::Step {
                run_id: run_id.to_owned(),
                step: record,
            },
            Record::Timeline {
                incident_id: incident_id.to_owned(),
                entry: entry(at, actor, action, fields),
            },
        ])
        .await?;
        // The outcome reaches the shared state before the run moves on.
        self.share(run_id).await?;
        Ok(true)
    }

    fn context(&self, run_id: &str) -> Option<Value> {
        let state = lock(&self.inner.state);
        let run = state.runs.get(run_id)?;
        let incident = state.incidents.get(&run.incident_id)?;
        let steps: Map<String, Value> = run
            .steps
            .iter()
            .map(|(k, s)| (k.clone(), s.context()))
            .collect();
        Some(json!({
            "steps": steps,
            "incident": incident.context(),
            "event": run.event,
            "playbook": {"name": run.playbook, "version": run.version},
            "run": {"id": run.id, "dry_run": run.dry_run},
        }))
    }

    /// [`drive`](Self::drive) under a cluster claim: the claim is (re)taken first (a run
    /// resumed at start may have been taken over meanwhile: it ends here, recorded as
    /// such) and renewed while the run is driven.
    async fn drive_claimed(
        &self,
        run_id: &str,
        coordination: &dyn ResponseCoordination,
    ) -> Result<(), Error> {
        if let RunClaim::Elsewhere(holder) = coordination.claim_run(run_id).await? {
            return self
                .end_run(
                    run_id,
                    RunState::Failed,
                    Some(format!("taken over by replica {holder}")),
                )
                .await;
        }
        // What another replica recorded of the run (it drove it before this one): taken
        // in, so no step it finished runs again here. Then this replica's first write
        // takes the shared state over (a replica that lost the run can write no more).
        self.take_in_shared_steps(run_id, coordination).await?;
        if let Err(e) = self.share(run_id).await {
            return self
                .end_run(run_id, RunState::Failed, Some(e.to_string()))
                .await;
        }
        let drive = self.drive(run_id);
        let mut drive = std::pin::pin!(drive);
        let mut renew = tokio::time::interval(coordination.renew_every());
        renew.tick().await;
        loop {
            tokio::select! {
                result = &mut drive => return result,
                _ = renew.tick() => match coordination.renew_run(run_id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Its claim expired here (this replica could not renew in time)
                        // and another replica drives it now: stop, so no step runs twice
                        // from here on.
                        tracing::error!(run = run_id, "another replica took this run over; it ends here");
                        return self
                            .end_run(
                                run_id,
                                RunState::Failed,
                                Some("taken over by another replica (its claim expired here)".into()),
                            )
                            .await;
                    }
                    Err(e) => tracing::warn!(run = run_id, error = %e, "run claim not renewed"),
                },
            }
        }
    }

    /// Records run `run_id` as it is here in the cluster's shared state (cluster mode
    /// only; see [`crate::coordination`]) before the run moves on. A shared state that is
    /// unreachable for a moment is retried with the shared policy; one that stays
    /// unreachable is logged and the run goes on (a replica taking it over may then call
    /// this step again, under its idempotency key). `Err` when this replica no longer
    /// holds the run: another replica took it over.
    async fn share(&self, run_id: &str) -> Result<(), Error> {
        let Some(coordination) = self.coordination() else {
            return Ok(());
        };
        let Some(run) = self.run(run_id).filter(|r| !r.state.is_terminal()) else {
            return Ok(());
        };
        let (result, _) = RetryPolicy::default()
            .run(|_| coordination.share_run(&run))
            .await;
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::new(
                ErrorKind::Rejected,
                "taken over by another replica (it holds the run's claim and recorded the run since)",
            )),
            Err(e) => {
                tracing::error!(run = run_id, error = %e, "run state not shared with the other replicas; a replica taking the run over may call its last step again (same idempotency key)");
                Ok(())
            }
        }
    }

    /// Takes into this replica's record what the cluster's shared state holds of run
    /// `run_id` and this record does not: steps another replica started or finished
    /// (and the tickets its finished `ticket` steps opened). One `steps_taken_over`
    /// timeline entry names them.
    async fn take_in_shared_steps(
        &self,
        run_id: &str,
        coordination: &dyn ResponseCoordination,
    ) -> Result<(), Error> {
        let (shared, _) = RetryPolicy::default()
            .run(|_| coordination.shared_run(run_id))
            .await;
        let Some(shared) = shared? else {
            return Ok(());
        };
        let _incident_write = self.inner.incident_writes.lock().await;
        let records = {
            let state = lock(&self.inner.state);
            let Some(run) = state.runs.get(run_id).filter(|r| !r.state.is_terminal()) else {
                return Ok(());
            };
            let p = self.playbook_of(run)?;
            let mut records = Vec::new();
            let mut taken = Vec::new();
            let mut tickets = Vec::new();
            for (id, step) in &shared.steps {
                let newer = match run.steps.get(id) {
                    None => true,
                    Some(ours) => !ours.status.is_terminal() && step.status.is_terminal(),
                };
                let Some(def) = p.steps.iter().find(|s| &s.config.id == id) else {
                    continue;
                };
                if !newer {
                    continue;
                }
                if step.status == StepStatus::Succeeded
                    && !step.dry_run
                    && def.config.kind == StepKind::Ticket
                    && def.config.op.unwrap_or_default() == TicketOp::Open
                    && let Ok(ticket) =
                        serde_json::from_value::<vowguard_core::TicketRef>(step.output.clone())
                {
                    tickets.push(ticket);
                }
                taken.push(json!({"step_id": id, "status": step.status}));
                records.push(Record::Step {
                    run_id: run_id.to_owned(),
                    step: step.clone(),
                });
            }
            if records.is_empty() {
                return Ok(());
            }
            if let Some(incident) = state.incidents.get(&run.incident_id) {
                let mut inc = incident.clone();
                inc.timeline = Vec::new();
                let before = inc.tickets.len();
                for t in tickets {
                    inc.tickets.entry(t.system.clone()).or_insert(t);
                }
                if inc.tickets.len() != before {
                    records.push(Record::Incident {
                        incident: Box::new(inc),
                    });
                }
            }
            records.push(Record::Timeline {
                incident_id: run.incident_id.clone(),
                entry: entry(
                    Utc::now(),
                    &format!("playbook:{}", run.playbook),
                    "steps_taken_over",
                    json!({"run_id": run_id, "steps": taken}),
                ),
            });
            records
        };
        self.commit(records).await
    }

    async fn drive(&self, run_id: &str) -> Result<(), Error> {
        let (p, deadline, incident_id) = {
            let state = lock(&self.inner.state);
            let run = state
                .runs
                .get(run_id)
                .ok_or_else(|| Error::internal("run vanished"))?;
            (
                self.playbook_of(run)?,
                run.deadline,
                run.incident_id.clone(),
            )
        };
        let left = (deadline - Utc::now()).to_std().unwrap_or_default();
        match tokio::time::timeout(left, self.drive_steps(run_id, &incident_id, &p)).await {
            Ok(result) => {
                let to = result?;
                if to == RunState::Running {
                    // Paused by shutdown at a durable point: the next start resumes it.
                    return Ok(());
                }
                self.end_run(run_id, to, None).await
            }
            Err(_) => {
                self.end_run(
                    run_id,
                    RunState::TimedOut,
                    Some("past the playbook deadline".into()),
                )
                .await
            }
        }
    }

    async fn drive_steps(
        &self,
        run_id: &str,
        incident_id: &str,
        p: &Arc<Playbook>,
    ) -> Result<RunState, Error> {
        let actor = format!("playbook:{}", p.name);
        let mut in_flight = FuturesUnordered::new();
        let mut started: HashSet<String> = HashSet::new();
        let mut stop: Option<RunState> = None;
        // Steps in flight that are not approval waits.
        let mut busy = 0usize;
        loop {
            if stop.is_none() && !self.is_stopping() {
                let mut progressed = true;
                while progressed {
                    progressed = false;
                    let run = self
                        .run(run_id)
                        .ok_or_else(|| Error::internal("run vanished"))?;
                    for step in &p.steps {
                        let id = &step.config.id;
                        if started.contains(id)
                            || run.steps.get(id).is_some_and(|s| s.status.is_terminal())
                        {
                            continue;
                        }
                        let resumed = run
                            .steps
                            .get(id)
                            .is_some_and(|s| s.status == StepStatus::Running);
                        if !resumed {
                            let ready = step
                                .after
                                .iter()
                                .all(|d| run.steps.get(d).is_some_and(|s| s.status.is_terminal()));
                            if !ready {
                                continue;
                            }
                            if let Some(cond) = &step.when {
                                let ctx = self.context(run_id).unwrap_or_default();
                                if !cond.eval(&ctx) {
                                    let record = StepRecord {
                                        step_id: id.clone(),
                                        status: StepStatus::Skipped,
                                        attempts: 0,
                                        idempotency_key: step_key(p, &run, id, self),
                                        started_at: None,
                                        finished_at: Some(Utc::now()),
                                        deadline: None,
                                        output: json!({"condition": cond.to_string()}),
                                        error: None,
                                        dry_run: run.dry_run,
                                    };
                                    self.finish_step(run_id, incident_id, record, &actor)
                                        .await?;
                                    progressed = true;
                                    break;
                                }
                            }
                        }
                        started.insert(id.clone());
                        if step.config.kind != StepKind::Approval {
                            busy += 1;
                        }
                        let engine = self.clone();
                        let step = step.clone();
                        let p = p.clone();
                        let run_id = run_id.to_owned();
                        in_flight.push(async move {
                            let result = engine.execute(&p, &step, &run_id).await;
                            (step, result)
                        });
                    }
                }
            }
            if busy == 0 && !in_flight.is_empty() {
                lock(&self.inner.idle_runs).insert(run_id.to_owned());
                self.inner.changed.send_modify(|n| *n += 1);
            }
            let next = in_flight.next().await;
            lock(&self.inner.idle_runs).remove(run_id);
            let Some((step, result)) = next else {
                break;
            };
            if step.config.kind != StepKind::Approval {
                busy -= 1;
            }
            let record = result?;
            if !record.status.is_terminal() {
                continue;
            }
            let failed =
                record.status != StepStatus::Succeeded && record.status != StepStatus::Skipped;
            if failed && !step.config.continue_on_error && stop.is_none() {
                let rejected = step.config.kind == StepKind::Approval
                    && record.output.get("approved") == Some(&Value::Bool(false));
                stop = Some(if rejected {
                    RunState::Rejected
                } else {
                    RunState::Failed
                });
            }
        }
        let run = self
            .run(run_id)
            .ok_or_else(|| Error::internal("run vanished"))?;
        if stop.is_none()
            && self.is_stopping()
            && p.steps.iter().any(|s| {
                !run.steps
                    .get(&s.config.id)
                    .is_some_and(|r| r.status.is_terminal())
            })
        {
            return Ok(RunState::Running);
        }
        if let Some(to) = stop {
            // Steps never reached are recorded as skipped: the run's record is complete.
            for step in &p.steps {
                if !run.steps.contains_key(&step.config.id) {
                    let record = StepRecord {
                        step_id: step.config.id.clone(),
                        status: StepStatus::Skipped,
                        attempts: 0,
                        idempotency_key: step_key(p, &run, &step.config.id, self),
                        started_at: None,
                        finished_at: Some(Utc::now()),
                        deadline: None,
                        output: Value::Null,
                        error: Some("not run: an earlier step failed".into()),
                        dry_run: run.dry_run,
                    };
                    self.finish_step(run_id, incident_id, record, &actor)
                        .await?;
                }
            }
            return Ok(to);
        }
        if run.steps.values().all(|s| s.status == StepStatus::Skipped) {
            return Ok(RunState::NoBranchMatched);
        }
        Ok(RunState::Succeeded)
    }

    /// Runs one step to its final record (which is committed).
    async fn execute(
        &self,
        p: &Arc<Playbook>,
        step: &Step,
        run_id: &str,
    ) -> Result<StepRecord, Error> {
        let actor = format!("playbook:{}", p.name);
        let run = self
            .run(run_id)
            .ok_or_else(|| Error::internal("run vanished"))?;
        let incident_id = run.incident_id.clone();
        let id = &step.config.id;
        let key = step_key(p, &run, id, self);
        let existing = run.steps.get(id).cloned();
        // Already done under this key (a duplicate trigger, or a run of an older version):
        // the outside world is not called again.
        let done = lock(&self.inner.state).done_keys.get(&key).cloned();
        if let Some(done) = done.filter(|_| !run.dry_run) {
            let mut record = done;
            record.step_id = id.clone();
            record.output = json!({"deduplicated": true, "output": record.output});
            self.finish_step(run_id, &incident_id, record.clone(), &actor)
                .await?;
            return Ok(record);
        }
        let now = Utc::now();
        let mut record = match existing {
            Some(r) => r,
            None => {
                let deadline = (step.config.kind == StepKind::Approval).then(|| {
                    now + chrono::Duration::seconds(
                        i64::try_from(
                            step.config
                                .deadline
                                .map_or(DEFAULT_APPROVAL_SECONDS, |d| d.as_secs()),
                        )
                        .unwrap_or(i64::MAX / 1000)
                        .min(365 * 86_400),
                    )
                });
                let r = StepRecord {
                    step_id: id.clone(),
                    status: StepStatus::Running,
                    attempts: 0,
                    idempotency_key: key.clone(),
                    started_at: Some(now),
                    finished_at: None,
                    deadline,
                    output: Value::Null,
                    error: None,
                    dry_run: run.dry_run,
                };
                let mut fields = json!({"run_id": run_id, "step_id": id, "kind": step.config.kind, "idempotency_key": key});
                if let Some(d) = deadline {
                    fields["deadline"] = json!(d);
                }
                self.commit(vec![
                    Record::Step {
                        run_id: run_id.to_owned(),
                        step: r.clone(),
                    },
                    Record::Timeline {
                        incident_id: incident_id.clone(),
                        entry: entry(now, &actor, "step_started", fields),
                    },
                ])
                .await?;
                // Shared before the call: a replica taking the run over knows the step
                // was started (it calls it again under the same key, or waits on).
                self.share(run_id).await?;
                r
            }
        };
        if step.config.kind == StepKind::Approval {
            return self
                .await_approval(step, run_id, &incident_id, record)
                .await;
        }
        if run.dry_run {
            record.status = StepStatus::Succeeded;
            record.finished_at = Some(Utc::now());
            record.output = json!({"dry_run": true, "would": describe(step)});
            self.finish_step(run_id, &incident_id, record.clone(), &actor)
                .await?;
            return Ok(record);
        }
        let policy = step
            .config
            .retry
            .unwrap_or(RetryPolicy::default().with_max_attempts(1));
        let timeout = step.config.timeout;
        let mut timed_out = false;
        let (result, attempts) = policy
            .run(|_| async {
                match tokio::time::timeout(timeout, self.call(p, step, run_id, &key)).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::unavailable(format!(
                        "step `{id}` timed out after {}",
                        vowguard_core::duration::format(step.config.timeout)
                    ))),
                }
            })
            .await;
        if let Err(e) = &result
            && e.kind() == ErrorKind::Unavailable
            && e.message().contains("timed out after")
        {
            timed_out = true;
        }
        record.attempts = record.attempts.saturating_add(attempts);
        record.finished_at = Some(Utc::now());
        match result {
            Ok(output) => {
                record.status = StepStatus::Succeeded;
                record.output = output;
                record.error = None;
            }
            Err(e) => {
                record.status = if timed_out {
                    StepStatus::TimedOut
                } else {
                    StepStatus::Failed
                };
                record.error = Some(e.to_string());
            }
        }
        self.finish_step(run_id, &incident_id, record.clone(), &actor)
            .await?;
        Ok(record)
    }

    async fn await_approval(
        &self,
        step: &Step,
        run_id: &str,
        incident_id: &str,
        record: StepRecord,
    ) -> Result<StepRecord, Error> {
        let mut rx = self.inner.changed.subscribe();
        let mut stopping = self.inner.stopping.subscribe();
        let deadline = record.deadline.unwrap_or_else(Utc::now);
        let dry_run = record.dry_run;
        if dry_run {
            let mut r = record;
            r.status = StepStatus::Succeeded;
            r.finished_at = Some(Utc::now());
            r.output = json!({"dry_run": true, "approved": true, "would": describe(step)});
            self.finish_step(run_id, incident_id, r.clone(), "system")
                .await?;
            return Ok(r);
        }
        loop {
            if let Some(current) = self
                .run(run_id)
                .and_then(|r| r.steps.get(&step.config.id).cloned())
                && current.status.is_terminal()
            {
                return Ok(current);
            }
            if *stopping.borrow_and_update() {
                // Still waiting, in the record; the next start waits on.
                return Ok(record);
            }
            let left = (deadline - Utc::now()).to_std().unwrap_or_default();
            if left.is_zero() {
                let mut r = record.clone();
                r.finished_at = Some(Utc::now());
                match step.config.on_timeout.unwrap_or_default() {
                    OnTimeout::Approve => {
                        r.status = StepStatus::Succeeded;
                        r.output = json!({"approved": true, "by": "timeout"});
                    }
                    OnTimeout::Reject => {
                        r.status = StepStatus::Failed;
                        r.output = json!({"approved": false, "by": "timeout"});
                        r.error = Some("no decision before the deadline: rejected".into());
                    }
                    OnTimeout::Fail => {
                        r.status = StepStatus::TimedOut;
                        r.error = Some("no decision before the deadline".into());
                    }
                }
                self.finish_step(run_id, incident_id, r, "system").await?;
                continue;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Err(Error::internal("engine stopped")) },
                _ = stopping.changed() => {}
                () = tokio::time::sleep(left) => {}
            }
        }
    }

    /// One attempt of a step's call to the outside world; the output on success.
    async fn call(
        &self,
        p: &Arc<Playbook>,
        step: &Step,
        run_id: &str,
        key: &str,
    ) -> Result<Value, Error> {
        let ctx = self.context(run_id).unwrap_or_default();
        let (incident, run) = {
            let state = lock(&self.inner.state);
            let run = state
                .runs
                .get(run_id)
                .cloned()
                .ok_or_else(|| Error::internal("run vanished"))?;
            let incident = state
                .incidents
                .get(&run.incident_id)
                .cloned()
                .ok_or_else(|| Error::internal("incident vanished"))?;
            (incident, run)
        };
        let c = &step.config;
        let event: Option<Arc<Event>> =
            serde_json::from_value(run.event.clone()).ok().map(Arc::new);
        let text = |t: &Option<crate::template::Template>| {
            t.as_ref().map(|t| t.render(&ctx, Escape::Text))
        };
        match c.kind {
            StepKind::Action => {
                let action = c.action.clone().unwrap_or_default();
                if let Some((url, secret)) = &self.inner.action_endpoint {
                    let body = json!({
                        "action": action,
                        "idempotency_key": key,
                        "incident_id": incident.id,
                        "run_id": run.id,
                        "playbook": p.name,
                        "step_id": c.id,
                        "event_id": event.as_ref().map(|e| e.id.clone()),
                        "wedding_id": event.as_ref().and_then(|e| e.wedding_id.clone()),
                        "user_ids": event.as_ref().and_then(|e| e.user_id.clone()).into_iter().collect::<Vec<_>>(),
                        "source_ip": event.as_ref().and_then(|e| e.source_ip.map(|ip| ip.to_string())),
                    });
                    return self.post_action(url, secret, &c.id, key, &body).await;
                }
                let hook = self
                    .inner
                    .actions
                    .as_ref()
                    .ok_or_else(|| Error::config("no action hook installed"))?;
                let requested = RequestedAction {
                    action: action.clone(),
                    event_id: event.as_ref().map(|e| e.id.clone()).unwrap_or_default(),
                    wedding_id: event.as_ref().and_then(|e| e.wedding_id.clone()),
                    user_ids: event
                        .as_ref()
                        .and_then(|e| e.user_id.clone())
                        .into_iter()
                        .collect(),
                    reason: format!(
                        "playbook {} step {} (incident {}, idempotency key {key})",
                        p.name, c.id, incident.id
                    ),
                };
                hook.request(&requested);
                Ok(
                    json!({"requested": action, "user_ids": requested.user_ids, "wedding_id": requested.wedding_id}),
                )
            }
            StepKind::Notify => {
                let id = c.notifier.clone().unwrap_or_default();
                let notifier = self
                    .inner
                    .notifiers
                    .get(&id)
                    .ok_or_else(|| Error::config(format!("notifier `{id}` is gone")))?;
                let event =
                    event.ok_or_else(|| Error::invalid_input("the run's event is unreadable"))?;
                let mut alert =
                    Alert::new(event, incident.priority, format!("playbook/{}", p.name));
                alert.id = Alert::derive_id(&["notify", key]);
                alert.dedup_key = incident.fingerprint.clone();
                alert.reasons =
                    vec![text(&step.message).unwrap_or_else(|| {
                        format!("Incident {}: {}", incident.id, incident.title)
                    })];
                let receipt = notifier.notify(&alert).await?;
                Ok(json!({"notifier": id, "delivery_id": receipt.delivery_id}))
            }
            StepKind::Ticket => {
                let id = c.system.clone().unwrap_or_default();
                let system = self
                    .inner
                    .tickets
                    .get(&id)
                    .ok_or_else(|| Error::config(format!("ticket system `{id}` is gone")))?;
                match c.op.unwrap_or_default() {
                    TicketOp::Open => {
                        let title = text(&step.title).unwrap_or_else(|| incident.title.clone());
                        let mut draft = TicketDraft::new(
                            incident.id.clone(),
                            incident.fingerprint.clone(),
                            title,
                            incident.priority,
                        );
                        draft.description = text(&step.message).unwrap_or_default();
                        draft.wedding_ids = incident.wedding_ids.clone();
                        draft.labels = vec!["vowguard".into(), format!("playbook-{}", p.name)];
                        draft.tasks = c.tasks.clone();
                        draft.event = event;
                        draft.opened_at = incident.opened.at;
                        let ticket = system.open(&draft).await?;
                        let _incident_write = self.inner.incident_writes.lock().await;
                        let now = Utc::now();
                        // The incident as it is now, not as the step found it: parallel
                        // steps change it too.
                        let mut inc = self
                            .incident(&incident.id)
                            .ok_or_else(|| Error::internal("incident vanished"))?;
                        inc.timeline = Vec::new();
                        inc.tickets.insert(id.clone(), ticket.clone());
                        self.commit(vec![
                            Record::Incident {
                                incident: Box::new(inc),
                            },
                            Record::Timeline {
                                incident_id: incident.id.clone(),
                                entry: entry(
                                    now,
                                    &format!("playbook:{}", p.name),
                                    "ticket_opened",
                                    json!({"system": id, "key": ticket.key, "url": ticket.url}),
                                ),
                            },
                        ])
                        .await?;
                        Ok(json!({"system": id, "key": ticket.key, "url": ticket.url}))
                    }
                    op => {
                        let ticket = incident.tickets.get(&id).cloned().ok_or_else(|| {
                            Error::rejected(format!(
                                "no ticket open in `{id}` for incident {}",
                                incident.id
                            ))
                        })?;
                        let note = text(&step.message).unwrap_or_default();
                        if op == TicketOp::Update {
                            system
                                .update(
                                    &ticket,
                                    &TicketUpdate {
                                        at: Utc::now(),
                                        author: format!("playbook:{}", p.name),
                                        text: note,
                                    },
                                )
                                .await?;
                        } else {
                            system.resolve(&ticket, &note).await?;
                        }
                        Ok(json!({"system": id, "key": ticket.key}))
                    }
                }
            }
            StepKind::Http => self.http(p, step, &ctx, key).await,
            StepKind::SetState => {
                let to = step.state.unwrap_or(IncidentState::Open);
                if incident.state >= to {
                    return Ok(json!({"state": incident.state.as_str(), "changed": false}));
                }
                match self
                    .set_state(&incident.id, to, &format!("playbook:{}", p.name), None)
                    .await
                {
                    Ok(_) => Ok(json!({"state": to.as_str(), "changed": true})),
                    // Another replica moved it there (or past it) first: taken in here.
                    Err(e) if e.kind() == ErrorKind::Rejected => {
                        match self.incident(&incident.id) {
                            Some(now) if now.state >= to => {
                                Ok(json!({"state": now.state.as_str(), "changed": false}))
                            }
                            _ => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            StepKind::Approval => Err(Error::internal("approval steps are not called")),
        }
    }

    /// POSTs an `action` step to `[response.action_hook]`, signed.
    async fn post_action(
        &self,
        url: &reqwest::Url,
        secret: &SecretString,
        step_id: &str,
        key: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::internal(format!("encode the action request: {e}")))?;
        let timestamp = Utc::now().timestamp().to_string();
        let signature = action_signature(secret.expose_secret().as_bytes(), &timestamp, &bytes);
        let response = self
            .inner
            .http
            .post(url.clone())
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .header("X-Vowguard-Timestamp", timestamp)
            .header("X-Vowguard-Signature", format!("sha256={signature}"))
            .body(bytes)
            .send()
            .await
            .map_err(|e| {
                Error::unavailable(format!(
                    "step `{step_id}`: the action hook at {host} failed: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status().as_u16();
        let captured = vowguard_http::read_capped(
            response,
            MAX_CAPTURED_BODY,
            &format!("step `{step_id}`: reading the answer of the action hook at {host}"),
        )
        .await?;
        let captured = serde_json::from_slice::<Value>(&captured)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&captured).into_owned()));
        if (200..300).contains(&status) {
            return Ok(
                json!({"requested": body["action"], "status_code": status, "body": captured}),
            );
        }
        let msg = format!("step `{step_id}`: the action hook at {host} answered {status}");
        Err(if status == 429 || status >= 500 || status == 408 {
            Error::unavailable(msg)
        } else {
            Error::rejected(msg)
        }
        .with_status(status))
    }

    async fn http(
        &self,
        p: &Arc<Playbook>,
        step: &Step,
        ctx: &Value,
        key: &str,
    ) -> Result<Value, Error> {
        let c = &step.config;
        let url = c.url.clone().unwrap_or_default();
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let method = reqwest::Method::from_bytes(c.method.as_deref().unwrap_or("POST").as_bytes())
            .map_err(|_| Error::config("bad method"))?;
        let mut req = self
            .inner
            .http
            .request(method, &url)
            .header("Idempotency-Key", key);
        for (name, value) in &c.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(secrets) = self
            .inner
            .secret_headers
            .get(&(p.name.clone(), c.id.clone()))
        {
            for (name, value) in secrets {
                let mut v = reqwest::header::HeaderValue::from_str(value.expose_secret()).map_err(
                    |_| {
                        Error::config(format!(
                            "step `{}`: secret header `{name}` is not a header value",
                            c.id
                        ))
                    },
                )?;
                v.set_sensitive(true);
                req = req.header(name.as_str(), v);
            }
        }
        if let Some(body) = &step.body {
            let rendered = body.render(ctx, Escape::Json);
            serde_json::from_str::<Value>(&rendered).map_err(|e| {
                Error::rejected(format!(
                    "step `{}`: the rendered body is not JSON: {e}",
                    c.id
                ))
            })?;
            req = req
                .header("Content-Type", "application/json")
                .body(rendered);
        }
        let response = req.send().await.map_err(|e| {
            Error::unavailable(format!(
                "step `{}`: request to {host} failed: {}",
                c.id,
                e.without_url()
            ))
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = vowguard_http::read_capped(
            response,
            MAX_CAPTURED_BODY,
            &format!("step `{}`: reading the answer from {host}", c.id),
        )
        .await?;
        let captured = serde_json::from_slice::<Value>(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        if (200..300).contains(&status) {
            return Ok(json!({"status_code": status, "body": captured}));
        }
        let msg = format!("step `{}`: {host} answered {status}", c.id);
        let mut err = if status == 429 || status >= 500 || status == 408 {
            Error::new(
                if status == 429 {
                    ErrorKind::RateLimited
                } else {
                    ErrorKind::Unavailable
                },
                msg,
            )
        } else {
            Error::rejected(msg)
        }
        .with_status(status);
        if let Some(s) = retry_after {
            err = err.with_retry_after(Duration::from_secs(s));
        }
        Err(err)
    }
}

/// Hex HMAC-SHA256 of `<timestamp>.<body>` under `key`: the `X-Vowguard-Signature` of an
/// action hook request (the receiver recomputes it and checks the timestamp is recent).
pub fn action_signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    vowguard_core::hex::encode(ctx.sign().as_ref())
}

fn step_key(p: &Playbook, run: &Run, step_id: &str, engine: &ResponseEngine) -> String {
    let fingerprint = engine
        .incident(&run.incident_id)
        .map(|i| i.fingerprint)
        .unwrap_or_default();
    format!(
        "vg-{}",
        Alert::derive_id(&["step", &p.name, &fingerprint, &run.incident_id, step_id])
    )
}

fn describe(step: &Step) -> String {
    let c = &step.config;
    match c.kind {
        StepKind::Action => format!("request action {}", c.action.as_deref().unwrap_or("")),
        StepKind::Http => format!(
            "{} {}",
            c.method.as_deref().unwrap_or("POST"),
            reqwest::Url::parse(c.url.as_deref().unwrap_or(""))
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        StepKind::Notify => format!("notify {}", c.notifier.as_deref().unwrap_or("")),
        StepKind::Ticket => format!(
            "{:?} ticket in {}",
            c.op.unwrap_or_default(),
            c.system.as_deref().unwrap_or("")
        )
        .to_lowercase(),
        StepKind::Approval => format!("wait for approval by {}", c.approvers.join(", ")),
        StepKind::SetState => format!("set incident state {}", c.state.as_deref().unwrap_or("")),
    }
}

fn entry(at: DateTime<Utc>, actor: &str, action: &str, fields: Value) -> TimelineEntry {
    TimelineEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        fields: match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    }
}

fn push_bounded(v: &mut Vec<String>, item: String) {
    if v.len() >= MAX_LINKED_ALERTS {
        v.remove(0);
    }
    v.push(item);
}

/// Whether `alert` triggers `p`, with one reason per criterion.
fn trigger_matches(p: &Playbook, alert: &Alert) -> (bool, Vec<String>) {
    let t = &p.trigger.config;
    let mut reasons = Vec::new();
    let mut ok = true;
    let mut any = false;
    let mut check = |name: &str, hit: bool, detail: String| {
        any = true;
        ok &= hit;
        reasons.push(format!(
            "{name}: {} ({detail})",
            if hit { "yes" } else { "no" }
        ));
    };
    if !t.routes.is_empty() {
        let hit = t.routes.iter().any(|r| match r.strip_suffix('*') {
            Some(prefix) => alert.route.starts_with(prefix),
            None => alert.route == *r,
        });
        check("route", hit, format!("route {}", alert.route));
    }
    if !t.priorities.is_empty() {
        check(
            "priority",
            t.priorities.contains(&alert.priority),
            alert.priority.to_string(),
        );
    }
    if let Some(min) = t.min_priority {
        check(
            "min_priority",
            alert.priority <= min,
            alert.priority.to_string(),
        );
    }
    let protocols: Vec<String> = alert
        .params
        .get("protocols")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !t.protocols.is_empty() {
        check(
            "protocol",
            t.protocols.iter().any(|p| protocols.contains(p)),
            format!("hit: {}", protocols.join(", ")),
        );
    }
    if !t.categories.is_empty() {
        check(
            "category",
            t.categories.contains(&alert.event.category),
            alert.event.category.to_string(),
        );
    }
    if !p.trigger.matchers.is_empty() {
        let ctx = MatchContext {
            event: &alert.event,
            priority: alert.priority,
            protocols: &protocols,
        };
        for m in &p.trigger.matchers {
            check("matcher", m.matches(&ctx), m.to_string());
        }
    }
    if !any {
        return (false, vec!["no trigger criteria: runs only by hand".into()]);
    }
    (ok, reasons)
}

impl vowguard_pipeline::ResponseHook for ResponseEngine {
    fn on_alert(&self, alert: &RoutedAlert) {
        ResponseEngine::on_alert(self, alert);
    }
}

/// Reads the incidents and runs kept under `<data_dir>/response/` without opening the file
/// for writing (for the CLI while `vowguard run` may hold it): incidents most recent first,
/// runs most recent first.
pub fn read_records(data_dir: &Path) -> Result<(Vec<Incident>, Vec<Run>), Error> {
    let state = crate::store::replay(&data_dir.join("response").join(crate::store::RECORD_FILE))?;
    let mut incidents: Vec<Incident> = state.incidents.into_values().collect();
    incidents.sort_by_key(|i| std::cmp::Reverse(i.opened.at));
    let mut runs: Vec<Run> = state.runs.into_values().collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    Ok((incidents, runs))
}

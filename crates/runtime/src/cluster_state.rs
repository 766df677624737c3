//! State of the alert and response paths shared by the replicas in JetStream KV (cluster
//! mode), next to the "already sent" marks and leases of [`crate::cluster`]:
//!
//! * [`KvInhibition`]: the router's inhibition sources, the newest per rule and `equal`
//!   values, in the bucket `<stream>_inhibition` (entries kept for the longest rule
//!   duration; each source's own event time and rule duration decide what it mutes).
//! * [`KvResponseCoordination`]: incident ids by fingerprint and incident states
//!   (acknowledged / contained / resolved, compare-and-set) in `<stream>_incidents`, run
//!   claims (leases in `<stream>_leases`, renewed while the run is live), "run finished"
//!   marks (`<stream>_runs`) and each run's shared state, its header and step records
//!   written by compare-and-set (`<stream>_runstate`), for
//!   `vowguard_response::coordination`.
//! * [`KvAlertGroups`]: the alert groups (`<stream>_groups`): pending alerts, timers and
//!   the notification being sent, changed by compare-and-set (see
//!   [`vowguard_router::SharedGroup`]).
//! * [`KvRateLimits`]: each notifier's rate limit counted for the whole cluster in
//!   [`RATE_WINDOW`] windows (`<stream>_ratelimits`), so three replicas do not send three
//!   times the limit.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use vowguard_core::{Alert, Error, ErrorKind, RateLimit};
use vowguard_jetstream::{Lease, SharedState};
use vowguard_response::{
    IncidentAdvance, IncidentState, ResponseCoordination, Run, RunClaim, SharedIncidentState,
    StateChange, merge_shared_run,
};
use vowguard_router::{
    GroupTiming, InhibitionKey, InhibitionSource, SharedGroup, SharedInhibition,
};

/// Longest key text used as is (hex-escaped by the KV layer when needed); longer ones are
/// hashed so an attacker-sized field value cannot make an oversized subject.
const MAX_PLAIN_KEY: usize = 160;

/// The inhibition sources of all replicas in a KV bucket.
#[derive(Debug, Clone)]
pub struct KvInhibition {
    bucket: SharedState,
}

impl KvInhibition {
    /// Sources in `bucket` (opened with a TTL of at least the longest rule duration).
    pub fn new(bucket: SharedState) -> Self {
        Self { bucket }
    }

    /// `inhibit/<rule hash>/<equal values>`: the rule by a hash of its text (rules are
    /// configured, not attacker-controlled, but long), the values as JSON, or by their
    /// SHA-256 when long. The KV layer hex-escapes what is not a plain key.
    pub fn storage_key(key: &InhibitionKey) -> String {
        let rule = Sha256::digest(key.rule.as_bytes());
        let mut out = String::from("inhibit/");
        vowguard_core::hex::encode_into(&rule[..8], &mut out);
        out.push('/');
        let values = serde_json::to_string(&key.equal_values).unwrap_or_default();
        if values.len() <= MAX_PLAIN_KEY {
            out.push_str(&values);
        } else {
            let _ = write!(out, "sha256:");
            vowguard_core::hex::encode_into(&Sha256::digest(values.as_bytes()), &mut out);
        }
        out
    }
}

#[async_trait]
impl SharedInhibition for KvInhibition {
    async fn fetch(&self, keys: &[InhibitionKey]) -> Result<Vec<InhibitionSource>, Error> {
        let mut found = Vec::new();
        for key in keys {
            let Some(value) = self.bucket.get(&Self::storage_key(key)).await? else {
                continue;
            };
            match serde_json::from_slice::<InhibitionSource>(&value) {
                // A hash collision or a foreign writer cannot mute another key.
                Ok(source)
                    if source.rule == key.rule && source.equal_values == key.equal_values =>
                {
                    found.push(source);
                }
                Ok(_) => tracing::warn!("shared inhibition entry does not match its key; ignored"),
                Err(e) => tracing::warn!(error = %e, "shared inhibition entry unreadable; ignored"),
            }
        }
        Ok(found)
    }

    async fn store(&self, sources: &[(InhibitionKey, InhibitionSource)]) -> Result<(), Error> {
        for (key, source) in sources {
            let value = serde_json::to_vec(source)
                .map_err(|e| Error::internal(format!("inhibition source: {e}")))?;
            self.bucket.put(&Self::storage_key(key), value).await?;
        }
        Ok(())
    }
}

/// Incident ids, run claims, "run finished" marks and run states of all replicas in KV.
#[derive(Debug)]
pub struct KvResponseCoordination {
    incidents: SharedState,
    finished: SharedState,
    leases: SharedState,
    states: SharedState,
    renew_every: Duration,
    /// The run claims this replica holds, by run id.
    held: Mutex<HashMap<String, Lease>>,
    /// The run states this replica wrote last (revision and content), by run id, for the
    /// runs it holds: the base of its next compare-and-set. One writer at a time.
    written: tokio::sync::Mutex<HashMap<String, (u64, Run)>>,
}

/// Longest encoded run state written to KV; beyond it the largest step outputs are
/// left out of the shared copy (a NATS message is 1 MiB at most by default).
const MAX_SHARED_RUN_BYTES: usize = 512 * 1024;

/// Step outputs longer than this (encoded) are the first left out of an oversized state.
const MAX_SHARED_OUTPUT_BYTES: usize = 4 * 1024;

/// A run's shared state as stored in KV.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SharedRunState {
    /// The replica that wrote it.
    owner: String,
    /// The run, with every step recorded so far.
    run: Run,
}

impl KvResponseCoordination {
    /// Incident ids in `incidents`, "run finished" marks in `finished`, run claims in
    /// `leases` (whose TTL is the claim's life: renewed every third of `lease_ttl`), run
    /// states in `states`.
    pub fn new(
        incidents: SharedState,
        finished: SharedState,
        leases: SharedState,
        states: SharedState,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            incidents,
            finished,
            leases,
            states,
            renew_every: (lease_ttl / 3).max(Duration::from_millis(100)),
            held: Mutex::new(HashMap::new()),
            written: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored state of a run: its revision, and the run when it is readable.
    async fn read_state(&self, run_id: &str) -> Result<Option<(u64, Option<Run>)>, Error> {
        let Some((bytes, revision)) = self.states.entry(&state_key(run_id)).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<SharedRunState>(&bytes) {
            Ok(state) => Ok(Some((revision, Some(state.run)))),
            Err(e) => {
                tracing::error!(run = run_id, error = %e, "unreadable shared run state; replaced by this replica's copy");
                Ok(Some((revision, None)))
            }
        }
    }

    /// `run` as stored: the largest step outputs left out when it is too large.
    fn encode(&self, run: &Run) -> Result<Vec<u8>, Error> {
        let encode = |run: &Run| {
            serde_json::to_vec(&SharedRunState {
                owner: self.states.owner().to_owned(),
                run: run.clone(),
            })
            .map_err(|e| Error::internal(format!("encode the shared state of {}: {e}", run.id)))
        };
        let bytes = encode(run)?;
        if bytes.len() <= MAX_SHARED_RUN_BYTES {
            return Ok(bytes);
        }
        let mut slim = run.clone();
        for step in slim.steps.values_mut() {
            let size = serde_json::to_vec(&step.output).map_or(0, |b| b.len());
            if size > MAX_SHARED_OUTPUT_BYTES {
                step.output = serde_json::json!({
                    "omitted": format!("an output of {size} bytes (kept in the record file of the replica that ran the step)")
                });
            }
        }
        let bytes = encode(&slim)?;
        if bytes.len() > MAX_SHARED_RUN_BYTES {
            return Err(Error::rejected(format!(
                "the shared state of run {} is {} bytes, over {MAX_SHARED_RUN_BYTES}",
                run.id,
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

fn state_key(run_id: &str) -> String {
    format!("state/{run_id}")
}

/// Where the shared state of an incident is kept (in the incidents bucket).
fn incident_state_key(incident_id: &str) -> String {
    format!("state/{incident_id}")
}

fn run_key(run_id: &str) -> String {
    format!("run/{run_id}")
}

#[async_trait]
impl ResponseCoordination for KvResponseCoordination {
    async fn incident_id(&self, fingerprint: &str, proposed: &str) -> Result<String, Error> {
        let agreed = self
            .incidents
            .agree(&format!("incident/{fingerprint}"), proposed.as_bytes())
            .await?;
        String::from_utf8(agreed).map_err(|_| Error::internal("a shared incident id is not UTF-8"))
    }

    async fn incident_resolved(&self, fingerprint: &str) -> Result<(), Error> {
        self.incidents
            .forget(&format!("incident/{fingerprint}"))
            .await
    }

    async fn advance_incident(
        &self,
        incident_id: &str,
        local: &SharedIncidentState,
        to: IncidentState,
        change: &StateChange,
    ) -> Result<IncidentAdvance, Error> {
        let key = incident_state_key(incident_id);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (mut state, revision) = match self.incidents.entry(&key).await? {
                Some((value, revision)) => {
                    match serde_json::from_slice::<SharedIncidentState>(&value) {
                        Ok(mut shared) => {
                            shared.merge(local);
                            (shared, Some(revision))
                        }
                        Err(e) => {
                            tracing::warn!(incident = %incident_id, error = %e, "shared incident state unreadable; replaced");
                            (local.clone(), Some(revision))
                        }
                    }
                }
                None => (local.clone(), None),
            };
            if !state.advance(to, change.clone()) {
                return Ok(IncidentAdvance::AlreadyThere(state));
            }
            let value = serde_json::to_vec(&state)
                .map_err(|e| Error::internal(format!("incident state: {e}")))?;
            let written = self
                .incidents
                .compare_and_set(&key, value, revision)
                .await?;
            if written.is_some() {
                return Ok(IncidentAdvance::Moved(state));
            }
            // Another replica changed it meanwhile: read it again.
        }
        Err(Error::unavailable(format!(
            "incident {incident_id}: too many replicas changing its state at once"
        ))
        .with_retry_after(Duration::from_millis(200)))
    }

    async fn incident_state(
        &self,
        incident_id: &str,
    ) -> Result<Option<SharedIncidentState>, Error> {
        let Some((value, _)) = self
            .incidents
            .entry(&incident_state_key(incident_id))
            .await?
        else {
            return Ok(None);
        };
        match serde_json::from_slice(&value) {
            Ok(state) => Ok(Some(state)),
            Err(e) => {
                tracing::warn!(incident = %incident_id, error = %e, "shared incident state unreadable; ignored");
                Ok(None)
            }
        }
    }

    async fn claim_run(&self, run_id: &str) -> Result<RunClaim, Error> {
        let key = run_key(run_id);
        if let Some(by) = self.finished.holder(&key).await? {
            return Ok(RunClaim::Elsewhere(format!("{by} (finished)")));
        }
        let Some(lease) = self.leases.acquire(&key).await? else {
            let by = self
                .leases
                .holder(&key)
                .await?
                .unwrap_or_else(|| "(unknown)".into());
            return Ok(RunClaim::Elsewhere(by));
        };
        // It may have finished (and been released) between the check and the claim.
        if let Some(by) = self.finished.holder(&key).await? {
            self.leases.release(lease).await?;
            return Ok(RunClaim::Elsewhere(format!("{by} (finished)")));
        }
        self.held().insert(run_id.to_owned(), lease);
        Ok(RunClaim::Claimed)
    }

    async fn renew_run(&self, run_id: &str) -> Result<bool, Error> {
        let Some(lease) = self.held().get(run_id).cloned() else {
            return Ok(false);
        };
        match self.leases.renew(&lease).await? {
            Some(renewed) => {
                self.held().insert(run_id.to_owned(), renewed);
                Ok(true)
            }
            None => {
                self.held().remove(run_id);
                self.written.lock().await.remove(run_id);
                Ok(false)
            }
        }
    }

    async fn run_finished(&self, run_id: &str) -> Result<(), Error> {
        // Only the replica holding the claim marks the run finished (one that lost it to
        // a takeover leaves the mark to the new holder).
        self.written.lock().await.remove(run_id);
        let Some(lease) = self.held().remove(run_id) else {
            return Ok(());
        };
        self.finished.mark_once(&run_key(run_id)).await?;
        self.leases.release(lease).await
    }

    fn renew_every(&self) -> Duration {
        self.renew_every
    }

    async fn shared_run(&self, run_id: &str) -> Result<Option<Run>, Error> {
        Ok(self.read_state(run_id).await?.and_then(|(_, run)| run))
    }

    async fn share_run(&self, run: &Run) -> Result<bool, Error> {
        let mut written = self.written.lock().await;
        if !self.held().contains_key(&run.id) {
            written.remove(&run.id);
            return Ok(false);
        }
        let key = state_key(&run.id);
        // The first write after the claim takes the state over from whoever wrote it
        // (re-read on a conflict: a dead or lost replica's last write); every later one
        // expects this replica's own last write, and a conflict means the run was taken.
        let taking_over = !written.contains_key(&run.id);
        let mut base = match written.get(&run.id) {
            Some((revision, before)) => (Some(*revision), Some(before.clone())),
            None => self
                .read_state(&run.id)
                .await?
                .map_or((None, None), |(r, b)| (Some(r), b)),
        };
        for _ in 0..8 {
            let merged = merge_shared_run(base.1.take(), run);
            let bytes = self.encode(&merged)?;
            match self.states.compare_and_set(&key, bytes, base.0).await? {
                Some(revision) => {
                    written.insert(run.id.clone(), (revision, merged));
                    return Ok(true);
                }
                None if taking_over => {
                    base = self
                        .read_state(&run.id)
                        .await?
                        .map_or((None, None), |(r, b)| (Some(r), b));
                }
                None => {
                    written.remove(&run.id);
                    return Ok(false);
                }
            }
        }
        Err(Error::unavailable(format!(
            "the shared state of run {} kept changing while this replica took it over",
            run.id
        ))
        .with_retry_after(vowguard_jetstream::RETRY_AFTER))
    }
}

/// Largest alert group kept in KV (its JSON); an alert whose group would grow past it
/// (an event near the intake's size limit) is sent at once, ungrouped, instead.
pub const MAX_GROUP_BYTES: usize = 256 * 1024;

/// What became of an alert offered to [`KvAlertGroups::offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouped {
    /// Stored in its group (or already there: a redelivery).
    Stored,
    /// Too large for a shared group ([`MAX_GROUP_BYTES`]): send it ungrouped.
    TooLarge,
}

/// Wall-clock Unix milliseconds (the replicas' shared notion of time for group timers).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The alert groups of all replicas (`<stream>_groups`): one [`SharedGroup`] per group
/// key, changed only by compare-and-set on the revision read, so alerts taken in by two
/// replicas at once and a flush at the same time never overwrite each other.
#[derive(Debug, Clone)]
pub struct KvAlertGroups {
    bucket: SharedState,
}

/// Most compare-and-set attempts on one group before giving up (the event comes again).
const MAX_CAS_ATTEMPTS: usize = 32;

fn group_storage_key(key: &str) -> String {
    format!("group/{key}")
}

impl KvAlertGroups {
    /// Groups in `bucket` (whose TTL outlives the longest grouping timer).
    pub fn new(bucket: SharedState) -> Self {
        Self { bucket }
    }

    /// The bucket (for watching it).
    pub fn bucket(&self) -> &SharedState {
        &self.bucket
    }

    /// Takes `alert` into group `key` (created with `notifiers` and `timing` when new).
    /// Stored in KV when this returns `Stored`: the event that raised it can be acked.
    pub async fn offer(
        &self,
        key: &str,
        notifiers: &[String],
        timing: GroupTiming,
        alert: &Alert,
    ) -> Result<Grouped, Error> {
        let k = group_storage_key(key);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = now_ms();
            let (current, revision) = match self.bucket.entry(&k).await? {
                Some((value, revision)) => (decode_group(key, &value), Some(revision)),
                None => (None, None),
            };
            // A new group, or one replacing an unreadable entry (at its revision).
            let group = match current {
                Some(mut group) => {
                    if !group.offer(alert.clone(), timing, now) {
                        return Ok(Grouped::Stored);
                    }
                    group
                }
                None => SharedGroup::new(
                    key.to_owned(),
                    notifiers.to_vec(),
                    alert.clone(),
                    timing,
                    now,
                ),
            };
            let value = encode_group(&group)?;
            if value.len() > MAX_GROUP_BYTES {
                return Ok(Grouped::TooLarge);
            }
            let written = self.bucket.compare_and_set(&k, value, revision).await?;
            if written.is_some() {
                return Ok(Grouped::Stored);
            }
            // Another replica changed the group meanwhile: read it again.
        }
        Err(contended(key))
    }

    /// Group `key` with its revision, if it exists. An unreadable entry is reported and
    /// treated as absent.
    pub async fn read(&self, key: &str) -> Result<Option<(SharedGroup, u64)>, Error> {
        let Some((value, revision)) = self.bucket.entry(&group_storage_key(key)).await? else {
            return Ok(None);
        };
        Ok(decode_group(key, &value).map(|group| (group, revision)))
    }

    /// Writes `group` if it is still at `revision`: false when another replica changed it.
    pub async fn update(&self, group: &SharedGroup, revision: u64) -> Result<bool, Error> {
        let k = group_storage_key(&group.key);
        Ok(self
            .bucket
            .compare_and_set(&k, encode_group(group)?, Some(revision))
            .await?
            .is_some())
    }

    /// Deletes group `key` if it is still at `revision`.
    pub async fn delete(&self, key: &str, revision: u64) -> bool {
        self.bucket
            .delete_at(&group_storage_key(key), revision)
            .await
    }

    /// Runs `change` on group `key` by compare-and-set until it sticks: `Ok(None)` when
    /// the group is gone, else what `change` returned. `change` returning `(_, false)`
    /// writes nothing.
    pub async fn change<T>(
        &self,
        key: &str,
        mut change: impl FnMut(&mut SharedGroup) -> (T, bool),
    ) -> Result<Option<T>, Error> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((mut group, revision)) = self.read(key).await? else {
                return Ok(None);
            };
            let (out, write) = change(&mut group);
            if !write || self.update(&group, revision).await? {
                return Ok(Some(out));
            }
        }
        Err(contended(key))
    }
}

/// The group stored under `key`; `None` (reported) for an entry that is not one (a
/// foreign writer, another version, a hash collision of keys): the next alert of the
/// group replaces it.
fn decode_group(key: &str, value: &[u8]) -> Option<SharedGroup> {
    match serde_json::from_slice::<SharedGroup>(value) {
        Ok(group) if group.key == key => Some(group),
        Ok(_) => {
            tracing::warn!("shared alert group does not match its key; replaced");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "shared alert group unreadable; replaced");
            None
        }
    }
}

fn encode_group(group: &SharedGroup) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(group).map_err(|e| Error::internal(format!("alert group: {e}")))
}

fn contended(key: &str) -> Error {
    Error::unavailable(format!(
        "alert group {key:?}: too many replicas changing it at once"
    ))
    .with_retry_after(Duration::from_millis(200))
}

/// The window a notifier's sends are counted in across replicas.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Longest a notification waits for room under its notifier's limit before the event is
/// handed back for a later redelivery (the alert path's batch stays in flight meanwhile).
const MAX_RATE_WAIT: Duration = Duration::from_secs(30);

/// Sends per [`RATE_WINDOW`] a limit allows: its sustained rate over the window, at least
/// its burst and at least one.
pub fn sends_per_window(limit: RateLimit) -> u64 {
    let sustained = limit.per_second.max(0.0) * RATE_WINDOW.as_secs_f64();
    let allowed = sustained.floor().max(f64::from(limit.burst)).max(1.0);
    if allowed >= u64::MAX as f64 {
        u64::MAX
    } else {
        allowed as u64
    }
}

/// Every notifier's sends counted per window for the whole cluster.
#[derive(Debug, Clone)]
pub struct KvRateLimits {
    bucket: SharedState,
}

impl KvRateLimits {
    /// Counters in `bucket` (whose TTL outlives a window).
    pub fn new(bucket: SharedState) -> Self {
        Self { bucket }
    }

    /// Waits until `notifier` may send once more under `limit` across the cluster and
    /// counts the send. Past 30 s (`MAX_RATE_WAIT`): `RateLimited` (retryable; the event comes
    /// again and only its unsent channels are tried).
    pub async fn admit(&self, notifier: &str, limit: RateLimit) -> Result<(), Error> {
        let allowed = sends_per_window(limit);
        let window = RATE_WINDOW.as_secs();
        let give_up = tokio::time::Instant::now() + MAX_RATE_WAIT;
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let current = now.as_secs() / window;
            let key = format!("rate/{notifier}/{current}");
            if self.bucket.count_up_to(&key, allowed).await?.is_some() {
                return Ok(());
            }
            let next = Duration::from_secs((current + 1) * window).saturating_sub(now);
            if tokio::time::Instant::now() + next > give_up {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "notifier {notifier}: {allowed} sends per {window} s reached across the cluster"
                    ),
                )
                .with_retry_after(next));
            }
            tokio::time::sleep(next).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_the_sustained_rate_at_least_the_burst_and_one() {
        let l = |per_second, burst| RateLimit { per_second, burst };
        assert_eq!(sends_per_window(l(1.0, 1)), 10);
        assert_eq!(sends_per_window(l(0.05, 1)), 1);
        assert_eq!(sends_per_window(l(0.5, 20)), 20);
        assert_eq!(sends_per_window(l(0.0, 0)), 1);
        assert_eq!(sends_per_window(l(f64::INFINITY, 0)), u64::MAX);
    }

    #[test]
    fn storage_keys_are_bounded_and_distinct() {
        let key = |rule: &str, values: Vec<Vec<String>>| InhibitionKey {
            rule: rule.into(),
            equal_values: values,
        };
        let a = KvInhibition::storage_key(&key("r", vec![vec!["w-1".into()]]));
        let b = KvInhibition::storage_key(&key("r", vec![vec!["w-2".into()]]));
        let c = KvInhibition::storage_key(&key("s", vec![vec!["w-1".into()]]));
        let split = KvInhibition::storage_key(&key("r", vec![vec!["w".into(), "1".into()]]));
        assert!(
            a.starts_with("inhibit/") && a.ends_with(r#"[["w-1"]]"#),
            "{a}"
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, split);
        let long = KvInhibition::storage_key(&key("r", vec![vec!["x".repeat(100_000)]]));
        assert!(long.len() < 120, "{}", long.len());
        assert!(long.contains("sha256:"));
    }

    async fn replica(
        server: &vowguard_testkit::nats::NatsServer,
        name: &str,
        lease_ttl: Duration,
    ) -> (vowguard_jetstream::JetStream, KvResponseCoordination) {
        let config: vowguard_jetstream::JetStreamConfig = toml::from_str(&format!(
            "servers = [\"{}\"]\nrequest_timeout = \"2s\"\n[stream]\nmax_bytes = 10000000\n",
            server.url()
        ))
        .unwrap();
        let js = vowguard_jetstream::JetStream::connect(
            config,
            "queue",
            &vowguard_core::SecretMap::new(),
            std::path::Path::new("."),
        )
        .await
        .expect("connect");
        let bucket = |b: &'static str, ttl| {
            let js = js.clone();
            async move { js.shared_state(b, ttl, name).await.expect("kv") }
        };
        let coordination = KvResponseCoordination::new(
            bucket("incidents", Duration::from_secs(3600)).await,
            bucket("runs", Duration::from_secs(3600)).await,
            bucket("leases", lease_ttl).await,
            bucket("runstate", Duration::from_secs(3600)).await,
            lease_ttl,
        );
        (js, coordination)
    }

    /// Against a real nats-server: two replicas agree on an incident id, one claims a
    /// run; once finished nobody claims it again; a claim left to expire is taken over and
    /// the old holder's renewal says it lost it.
    #[tokio::test]
    async fn response_decisions_are_shared_through_nats() {
        let server = vowguard_testkit::nats::NatsServer::start(&[]);
        let ttl = Duration::from_secs(1);
        let (_a_conn, a) = replica(&server, "replica-a", ttl).await;
        let (_b_conn, b) = replica(&server, "replica-b", ttl).await;
        let fingerprint = "vowguard-critical-<w 1>";
        let (ia, ib) = tokio::join!(
            a.incident_id(fingerprint, "inc-a"),
            b.incident_id(fingerprint, "inc-b")
        );
        assert_eq!(ia.unwrap(), ib.unwrap());

        assert_eq!(a.claim_run("run-1").await.unwrap(), RunClaim::Claimed);
        assert_eq!(
            b.claim_run("run-1").await.unwrap(),
            RunClaim::Elsewhere("replica-a".into())
        );
        assert!(a.renew_run("run-1").await.unwrap());
        a.run_finished("run-1").await.unwrap();
        assert_eq!(
            b.claim_run("run-1").await.unwrap(),
            RunClaim::Elsewhere("replica-a (finished)".into())
        );

        // replica-a claims run-2 and stops renewing (it died): after the TTL, b takes it.
        assert_eq!(a.claim_run("run-2").await.unwrap(), RunClaim::Claimed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while b.claim_run("run-2").await.unwrap() != RunClaim::Claimed {
            assert!(tokio::time::Instant::now() < deadline, "never taken over");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!a.renew_run("run-2").await.unwrap(), "a lost its claim");
        a.run_finished("run-2").await.unwrap();
        assert_eq!(
            a.claim_run("run-2").await.unwrap(),
            RunClaim::Elsewhere("replica-b".into()),
            "a's end did not mark b's run finished"
        );

        a.incident_resolved(fingerprint).await.unwrap();
        assert_eq!(b.incident_id(fingerprint, "inc-c").await.unwrap(), "inc-c");
    }

    fn step(id: &str, status: vowguard_response::StepStatus) -> vowguard_response::StepRecord {
        vowguard_response::StepRecord {
            step_id: id.into(),
            status,
            attempts: 1,
            idempotency_key: format!("key-{id}"),
            started_at: None,
            finished_at: None,
            deadline: None,
            output: serde_json::json!({"id": id}),
            error: None,
            dry_run: false,
        }
    }

    fn run(id: &str, steps: &[vowguard_response::StepRecord]) -> Run {
        let now = chrono::Utc::now();
        Run {
            id: id.into(),
            playbook: "escalate".into(),
            version: 1,
            snapshot: serde_json::json!({}),
            incident_id: "inc-1".into(),
            event: serde_json::json!({"id": "e-1"}),
            dry_run: false,
            state: vowguard_response::RunState::Running,
            started_at: now,
            deadline: now,
            finished_at: None,
            started_by: "alert:a-1".into(),
            steps: steps
                .iter()
                .map(|s| (s.step_id.clone(), s.clone()))
                .collect(),
        }
    }

    /// Against a real nats-server: the holder of a run records its steps; a replica that
    /// takes the run over reads them and takes the state over, after which the old
    /// holder can record nothing more; a stale copy does not undo a finished step; a
    /// replica without the claim writes nothing.
    #[tokio::test]
    async fn run_states_are_shared_by_compare_and_set_through_nats() {
        use vowguard_response::StepStatus::{Running, Succeeded};
        let server = vowguard_testkit::nats::NatsServer::start(&[]);
        let ttl = Duration::from_secs(1);
        let (_a_conn, a) = replica(&server, "replica-a", ttl).await;
        let (_b_conn, b) = replica(&server, "replica-b", ttl).await;
        assert_eq!(a.shared_run("run-s").await.unwrap(), None);
        assert!(
            !b.share_run(&run("run-s", &[])).await.unwrap(),
            "no claim, no write"
        );
        assert_eq!(a.claim_run("run-s").await.unwrap(), RunClaim::Claimed);
        assert!(
            a.share_run(&run("run-s", &[step("ticket", Running)]))
                .await
                .unwrap()
        );
        assert!(
            a.share_run(&run("run-s", &[step("ticket", Succeeded)]))
                .await
                .unwrap()
        );
        // A stale copy (the step still running) written after: the step stays finished,
        // and a step only in the stale copy is added.
        assert!(
            a.share_run(&run(
                "run-s",
                &[step("ticket", Running), step("approve", Running)]
            ))
            .await
            .unwrap()
        );
        let shared = b.shared_run("run-s").await.unwrap().expect("shared");
        assert_eq!(shared.steps["ticket"].status, Succeeded);
        assert_eq!(shared.steps["approve"].status, Running);
        assert_eq!(shared.started_by, "alert:a-1");

        // a stops renewing (it died): b claims the run, reads it and takes it over.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while b.claim_run("run-s").await.unwrap() != RunClaim::Claimed {
            assert!(tokio::time::Instant::now() < deadline, "never taken over");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut resumed = b.shared_run("run-s").await.unwrap().expect("shared");
        assert!(
            b.share_run(&resumed).await.unwrap(),
            "b takes the state over"
        );
        resumed
            .steps
            .insert("approve".into(), step("approve", Succeeded));
        assert!(b.share_run(&resumed).await.unwrap());
        // a, which does not know yet that it lost the run, records nothing more.
        assert!(
            !a.share_run(&run("run-s", &[step("lock", Succeeded)]))
                .await
                .unwrap(),
            "the old holder's write is refused"
        );
        let shared = a.shared_run("run-s").await.unwrap().expect("shared");
        assert_eq!(shared.steps["approve"].status, Succeeded);
        assert!(!shared.steps.contains_key("lock"));
    }

    fn group_alert(id: &str) -> Alert {
        let event = vowguard_core::Event::new(
            vowguard_core::Category::Authentication,
            "login",
            vowguard_core::Severity::High,
        );
        let mut alert = Alert::new(
            std::sync::Arc::new(event),
            vowguard_core::Priority::P1High,
            "r",
        );
        alert.id = id.into();
        alert.reasons = vec![format!("reason of {id}")];
        alert
    }

    /// Against a real nats-server: two replicas adding alerts to one group at the same
    /// time lose none (compare-and-set), a redelivered alert is not counted twice, and a
    /// sealed notification stays until cleared.
    #[tokio::test]
    async fn alerts_offered_by_two_replicas_at_once_all_land_in_the_group() {
        let server = vowguard_testkit::nats::NatsServer::start(&[]);
        let (a_conn, _) = replica(&server, "replica-a", Duration::from_secs(5)).await;
        let (b_conn, _) = replica(&server, "replica-b", Duration::from_secs(5)).await;
        let ttl = Duration::from_secs(3600);
        let a = KvAlertGroups::new(a_conn.shared_state("groups", ttl, "a").await.unwrap());
        let b = KvAlertGroups::new(b_conn.shared_state("groups", ttl, "b").await.unwrap());
        let timing = GroupTiming {
            group_wait: Duration::ZERO,
            ..GroupTiming::default()
        };
        let key = "vowguard-critical-0123|secops";
        let notifiers = vec!["secops".to_owned()];
        let offer = |groups: KvAlertGroups, prefix: &'static str| {
            let notifiers = notifiers.clone();
            async move {
                for i in 0..20 {
                    let alert = group_alert(&format!("{prefix}-{i}"));
                    let grouped = groups.offer(key, &notifiers, timing, &alert).await.unwrap();
                    assert_eq!(grouped, Grouped::Stored);
                }
            }
        };
        tokio::join!(offer(a.clone(), "a"), offer(b.clone(), "b"));
        // A redelivery of an alert already in the group.
        a.offer(key, &notifiers, timing, &group_alert("b-3"))
            .await
            .unwrap();
        let (group, _) = b.read(key).await.unwrap().expect("the group");
        assert_eq!(group.pending(), 40);
        // Sealed by one replica, seen sealed by the other until cleared.
        let sealed = a
            .change(key, |g| (g.seal(now_ms()), true))
            .await
            .unwrap()
            .flatten()
            .expect("due");
        assert_eq!(sealed.params["group_size"], 40);
        let (seen, _) = b.read(key).await.unwrap().unwrap();
        assert_eq!(seen.sealed(), Some(&sealed));
        assert_eq!(seen.generation(), 1);
        assert_eq!(b.change(key, |g| ((), g.sent(1))).await.unwrap(), Some(()));
        let (done, _) = a.read(key).await.unwrap().unwrap();
        assert_eq!(done.sealed(), None);
        assert_eq!(done.pending(), 0);
    }

    /// Against a real nats-server: an acknowledgement on one replica and a resolution on
    /// another both stick; a change the shared state is past is refused.
    #[tokio::test]
    async fn incident_states_are_changed_by_compare_and_set_through_nats() {
        let server = vowguard_testkit::nats::NatsServer::start(&[]);
        let ttl = Duration::from_secs(1);
        let (_a_conn, a) = replica(&server, "replica-a", ttl).await;
        let (_b_conn, b) = replica(&server, "replica-b", ttl).await;
        let open = SharedIncidentState {
            state: IncidentState::Open,
            acknowledged: None,
            contained: None,
            resolved: None,
        };
        let by = |who: &str| StateChange {
            by: who.into(),
            at: chrono::Utc::now(),
        };
        assert_eq!(a.incident_state("inc-1").await.unwrap(), None);
        let acked = b
            .advance_incident("inc-1", &open, IncidentState::Acknowledged, &by("bob"))
            .await
            .unwrap();
        assert!(matches!(acked, IncidentAdvance::Moved(_)), "{acked:?}");
        let IncidentAdvance::Moved(resolved) = a
            .advance_incident("inc-1", &open, IncidentState::Resolved, &by("alice"))
            .await
            .unwrap()
        else {
            panic!("not moved")
        };
        assert_eq!(resolved.acknowledged.as_ref().unwrap().by, "bob");
        assert_eq!(resolved.resolved.as_ref().unwrap().by, "alice");
        assert_eq!(
            b.incident_state("inc-1").await.unwrap(),
            Some(resolved.clone())
        );
        assert_eq!(
            b.advance_incident("inc-1", &open, IncidentState::Acknowledged, &by("carol"))
                .await
                .unwrap(),
            IncidentAdvance::AlreadyThere(resolved)
        );
    }

    /// Against a real nats-server: a source stored by one replica is fetched by another
    /// under its key only.
    #[tokio::test]
    async fn inhibition_sources_are_shared_through_nats() {
        let server = vowguard_testkit::nats::NatsServer::start(&[]);
        let (a_conn, _) = replica(&server, "replica-a", Duration::from_secs(5)).await;
        let (b_conn, _) = replica(&server, "replica-b", Duration::from_secs(5)).await;
        let bucket = Duration::from_secs(3600);
        let a = KvInhibition::new(a_conn.shared_state("inh", bucket, "a").await.unwrap());
        let b = KvInhibition::new(b_conn.shared_state("inh", bucket, "b").await.unwrap());
        let key = InhibitionKey {
            rule: "priority=\"P0_CRITICAL\" mutes ...".into(),
            equal_values: vec![vec!["w-1 <\"x\">".into()]],
        };
        let other = InhibitionKey {
            equal_values: vec![vec!["w-2".into()]],
            ..key.clone()
        };
        let source = InhibitionSource {
            rule: key.rule.clone(),
            at: "2026-06-17T10:00:00Z".parse().unwrap(),
            from: None,
            equal_values: key.equal_values.clone(),
            description: "P0_CRITICAL event e-1 wedding_id=w-1".into(),
        };
        assert!(
            b.fetch(std::slice::from_ref(&key))
                .await
                .unwrap()
                .is_empty()
        );
        a.store(&[(key.clone(), source.clone())]).await.unwrap();
        assert_eq!(b.fetch(&[key, other]).await.unwrap(), vec![source]);
    }
}

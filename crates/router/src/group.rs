//! Grouping and inhibition: the noise controls between routing and the notifiers.
//!
//! [`AlertGrouper`] is a pure state machine (no tasks, no clock of its own): the caller
//! offers alerts with the current [`Instant`] and asks what is [`due`](AlertGrouper::due),
//! sleeping until [`next_deadline`](AlertGrouper::next_deadline) in between. That keeps
//! it testable with explicit instants or tokio's paused clock.
//!
//! [`Inhibitor`] mutes target alerts while a matching source alert is recent (default: a
//! P0 for a wedding mutes that wedding's P2..P4 for an hour). It measures time on event
//! timestamps, so replays and tests are deterministic.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use vowguard_core::{Alert, Error};

use crate::config::InhibitRule;
use crate::matcher::{Field, MatchContext, Matcher, compile_all};

/// A route's grouping timers (Alertmanager's defaults: 30s, 5m, 4h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupTiming {
    /// How long a new group waits for more alerts before its first notification.
    pub group_wait: Duration,
    /// Least time between notifications of a group that received new alerts.
    pub group_interval: Duration,
    /// After how long an unchanged group is notified again.
    pub repeat_interval: Duration,
    /// A group with no new alert for this long is forgotten (no more repeats; default 24h).
    pub forget_after: Duration,
}

impl Default for GroupTiming {
    fn default() -> Self {
        Self {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            forget_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl GroupTiming {
    /// These timings with `group_wait` and `group_interval` capped at `deadline` (a
    /// protocol's "deliver within").
    pub fn capped(mut self, deadline: Option<Duration>) -> Self {
        if let Some(d) = deadline {
            self.group_wait = self.group_wait.min(d);
            self.group_interval = self.group_interval.min(d);
        }
        self
    }
}

/// Most reasons a group notification carries.
const MAX_REASONS: usize = 20;

/// The reasons of the alerts a group stands for, in first-seen order, each once: a reason
/// that repeats (exactly, or differing only in its numbers: `mass guest data query (812
/// records ≥ 500)` and `(640 records ≥ 500)`) is kept once with how many alerts gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reasons {
    /// `(first text, shape, count)`.
    items: Vec<(String, String, u32)>,
}

impl Reasons {
    pub(crate) fn from_alert(reasons: &[String]) -> Self {
        let mut out = Self::default();
        out.merge(reasons);
        out
    }

    pub(crate) fn merge(&mut self, from: &[String]) {
        for r in from {
            let shape = reason_shape(r);
            if let Some(item) = self.items.iter_mut().find(|(_, s, _)| *s == shape) {
                item.2 = item.2.saturating_add(1);
            } else if self.items.len() < MAX_REASONS {
                self.items.push((r.clone(), shape, 1));
            }
        }
    }

    pub(crate) fn render(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|(text, _, n)| {
                if *n > 1 {
                    format!("{text} (×{n})")
                } else {
                    text.clone()
                }
            })
            .collect()
    }
}

/// A reason with every run of digits replaced by `#`: reasons of one kind that differ
/// only in their figures have the same shape.
fn reason_shape(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut in_digits = false;
    for c in reason.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

#[derive(Debug)]
struct Group {
    latest: Alert,
    timing: GroupTiming,
    reasons: Reasons,
    /// Reasons of the last notification (for repeats).
    last_reasons: Vec<String>,
    /// Alerts folded in since the last notification.
    pending: usize,
    /// Alerts in the last notification (for repeats).
    last_size: usize,
    /// Repeats sent since the last notification with new alerts (each repeat gets its own
    /// stable id, so a notifier's delivery memory does not take it for the one before).
    repeats: u32,
    /// Event times of the first and last alert folded in since the last notification.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The span of the last notification (for repeats).
    last_span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    next_flush: Instant,
    last_sent: Option<Instant>,
    last_alert: Instant,
}

/// Groups alerts by key and decides when each group is notified.
///
/// A notification is ONE alert standing for the group: the latest alert, with
/// `params["group_size"]` (alerts it stands for), `params["group_first_seen"]` and
/// `params["group_last_seen"]` (RFC 3339 event times of the earliest and latest of them),
/// `params["group_key"]`, and the reasons of all those alerts merged (first 20, each once, with `(×N)` when N alerts gave it).
/// A repeat of an unchanged group also carries `params["repeat"] = true` and an id of its
/// own derived from the group's latest alert and the repeat number.
///
/// [`export`](Self::export) and [`import`](Self::import) carry the groups over a restart.
///
/// Taking an alert costs a hash lookup and, when a timer changes, O(log n) in the number of
/// groups: deadlines live in a min-heap (stale entries skipped lazily), and groups without
/// alerts for `forget_after` are swept at most once a second (or when the bound is reached),
/// not scanned for every alert.
#[derive(Debug)]
pub struct AlertGrouper {
    groups: HashMap<String, Group>,
    max_groups: usize,
    overflowed: u64,
    /// Every group's `next_flush`, with stale entries (the group is gone or its timer
    /// moved) left in place until they reach the top; the top is always current.
    deadlines: BinaryHeap<Reverse<(Instant, String)>>,
    /// When groups were last swept for [`forget`](Self::forget).
    last_forget: Option<Instant>,
}

/// Least time between two sweeps for groups to forget (their `forget_after` is long).
const FORGET_EVERY: Duration = Duration::from_secs(1);

/// The state of one group, as [`AlertGrouper::export`] writes it: instants are stored as
/// milliseconds relative to the export time (monotonic instants do not survive a restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The group key.
    pub key: String,
    latest: Alert,
    group_wait_ms: u64,
    group_interval_ms: u64,
    repeat_interval_ms: u64,
    forget_after_ms: u64,
    reasons: Reasons,
    last_reasons: Vec<String>,
    pending: usize,
    last_size: usize,
    #[serde(default)]
    repeats: u32,
    #[serde(default)]
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    #[serde(default)]
    last_span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Milliseconds from the export until the next notification (negative: overdue).
    next_flush_in_ms: i64,
    /// Milliseconds from the last notification to the export.
    last_sent_ago_ms: Option<u64>,
    /// Milliseconds from the last alert to the export.
    last_alert_ago_ms: u64,
}

/// Every group of an [`AlertGrouper`], taken at `exported_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrouperSnapshot {
    /// Wall-clock time of the export: the elapsed time until the import counts against
    /// every timer.
    pub exported_at: DateTime<Utc>,
    /// The groups.
    pub groups: Vec<GroupSnapshot>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl AlertGrouper {
    /// A grouper holding at most `max_groups` groups; alerts for a new group beyond that
    /// are passed through at once (never dropped) and counted in
    /// [`overflowed`](Self::overflowed).
    pub fn new(max_groups: usize) -> Self {
        Self {
            groups: HashMap::new(),
            max_groups: max_groups.max(1),
            overflowed: 0,
            deadlines: BinaryHeap::new(),
            last_forget: None,
        }
    }

    /// Records that the group `key` is next due at `at`.
    fn schedule(&mut self, key: String, at: Instant) {
        self.deadlines.push(Reverse((at, key)));
        if self.deadlines.len() > 2 * self.groups.len() + 64 {
            self.deadlines = self
                .groups
                .iter()
                .map(|(k, g)| Reverse((g.next_flush, k.clone())))
                .collect();
        }
    }

    /// Whether a deadline entry is the group's current timer.
    fn current(&self, at: Instant, key: &str) -> bool {
        self.groups.get(key).is_some_and(|g| g.next_flush == at)
    }

    /// Drops stale entries from the top of the deadline heap, so its top is the earliest
    /// current timer.
    fn clean_deadlines(&mut self) {
        while let Some(Reverse((at, key))) = self.deadlines.peek() {
            if self.current(*at, key) {
                break;
            }
            self.deadlines.pop();
        }
    }

    /// Number of live groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when no group is live.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Alerts passed through ungrouped because the group bound was reached.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Takes `alert` into the group `group_key`; returns notifications due now (for this
    /// or any other group).
    pub fn offer(
        &mut self,
        alert: Alert,
        group_key: String,
        timing: GroupTiming,
        now: Instant,
    ) -> Vec<Alert> {
        let mut reschedule = None;
        match self.groups.get_mut(&group_key) {
            Some(group) => {
                group.timing = timing;
                group.reasons.merge(&alert.reasons);
                group.span = Some(widen(group.span, alert.event.timestamp));
                group.latest = alert;
                group.pending += 1;
                group.last_alert = now;
                if let Some(sent) = group.last_sent {
                    let sooner = sent + timing.group_interval;
                    if sooner < group.next_flush {
                        group.next_flush = sooner;
                        reschedule = Some(sooner);
                    }
                }
            }
            None => {
                self.forget(now, false);
                if self.groups.len() >= self.max_groups {
                    self.forget(now, true);
                }
                if self.groups.len() >= self.max_groups {
                    self.overflowed += 1;
                    let mut alert = alert;
                    alert.params.insert("group_size".into(), Value::from(1));
                    let mut out = self.due(now);
                    out.push(alert);
                    return out;
                }
                let reasons = Reasons::from_alert(&alert.reasons);
                let alert_time = alert.event.timestamp;
                reschedule = Some(now + timing.group_wait);
                self.groups.insert(
                    group_key.clone(),
                    Group {
                        latest: alert,
                        timing,
                        reasons,
                        last_reasons: Vec::new(),
                        pending: 1,
                        last_size: 0,
                        repeats: 0,
                        span: Some(widen(None, alert_time)),
                        last_span: None,
                        next_flush: now + timing.group_wait,
                        last_sent: None,
                        last_alert: now,
                    },
                );
            }
        }
        if let Some(at) = reschedule {
            self.schedule(group_key, at);
        }
        if self.next_deadline().is_some_and(|at| at <= now) {
            self.due(now)
        } else {
            Vec::new()
        }
    }

    /// Notifications due at `now`: groups whose wait or interval has passed with new
    /// alerts, and unchanged groups whose repeat interval has passed.
    pub fn due(&mut self, now: Instant) -> Vec<Alert> {
        self.forget(now, false);
        let mut out = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, key))) = self.deadlines.pop()
                && self.current(at, &key)
            {
                keys.push(key);
            }
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            let mut alert = group.latest.clone();
            let repeat = group.pending == 0;
            let size = if repeat {
                group.last_size
            } else {
                group.pending
            };
            let span = if repeat {
                group.last_span
            } else {
                group.span.take()
            };
            stamp_group(&mut alert, &key, size as u64, span);
            group.last_span = span;
            if repeat {
                group.repeats = group.repeats.saturating_add(1);
                alert.params.insert("repeat".into(), Value::Bool(true));
                alert.id =
                    Alert::derive_id(&[&group.latest.id, "repeat", &group.repeats.to_string()]);
                alert.reasons = group.last_reasons.clone();
            } else {
                group.repeats = 0;
                alert.reasons = std::mem::take(&mut group.reasons).render();
                group.last_reasons = alert.reasons.clone();
            }
            group.last_size = size;
            group.pending = 0;
            group.last_sent = Some(now);
            group.next_flush = now + group.timing.repeat_interval;
            let next = group.next_flush;
            self.schedule(key, next);
            out.push(alert);
        }
        self.clean_deadlines();
        out
    }

    /// Notifications for every group with alerts not yet notified, at once (used when the
    /// input has ended and the run drains). Repeats are not sent.
    pub fn flush_pending(&mut self, now: Instant) -> Vec<Alert> {
        let mut flush = Vec::new();
        for (key, group) in &mut self.groups {
            if group.pending > 0 {
                group.next_flush = now;
                flush.push(key.clone());
            }
        }
        for key in flush {
            self.schedule(key, now);
        }
        let out = self.due(now);
        self.groups.clear();
        self.deadlines.clear();
        out
    }

    /// True when some group holds alerts not yet notified.
    pub fn has_pending(&self) -> bool {
        self.groups.values().any(|g| g.pending > 0)
    }

    /// When the next notification (or repeat) falls due, for the caller to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Every live group, for [`import`](Self::import) after a restart. `now` and
    /// `wall_now` are the same moment on the monotonic and the wall clock.
    pub fn export(&self, now: Instant, wall_now: DateTime<Utc>) -> GrouperSnapshot {
        let mut groups: Vec<GroupSnapshot> = self
            .groups
            .iter()
            .map(|(key, g)| {
                let next_flush_in_ms = if g.next_flush >= now {
                    i64::try_from(millis(g.next_flush - now)).unwrap_or(i64::MAX)
                } else {
                    -i64::try_from(millis(now - g.next_flush)).unwrap_or(i64::MAX)
                };
                GroupSnapshot {
                    key: key.clone(),
                    latest: g.latest.clone(),
                    group_wait_ms: millis(g.timing.group_wait),
                    group_interval_ms: millis(g.timing.group_interval),
                    repeat_interval_ms: millis(g.timing.repeat_interval),
                    forget_after_ms: millis(g.timing.forget_after),
                    reasons: g.reasons.clone(),
                    last_reasons: g.last_reasons.clone(),
                    pending: g.pending,
                    last_size: g.last_size,
                    repeats: g.repeats,
                    span: g.span,
                    last_span: g.last_span,
                    next_flush_in_ms,
                    last_sent_ago_ms: g
                        .last_sent
                        .map(|t| millis(now.saturating_duration_since(t))),
                    last_alert_ago_ms: millis(now.saturating_duration_since(g.last_alert)),
                }
            })
            .collect();
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        GrouperSnapshot {
            exported_at: wall_now,
            groups,
        }
    }

    /// Restores the groups of `snapshot` (replacing groups with the same key). The wall
    /// time elapsed since the export counts against every timer: a group whose wait ran
    /// out while the process was down is due at once.
    pub fn import(&mut self, snapshot: GrouperSnapshot, now: Instant, wall_now: DateTime<Utc>) {
        let elapsed = (wall_now - snapshot.exported_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let elapsed_ms = i64::try_from(millis(elapsed)).unwrap_or(i64::MAX);
        let ago = |ms: u64| {
            now.checked_sub(Duration::from_millis(ms).saturating_add(elapsed))
                .unwrap_or(now)
        };
        for g in snapshot.groups {
            if self.groups.len() >= self.max_groups && !self.groups.contains_key(&g.key) {
                self.overflowed += 1;
                continue;
            }
            let in_ms = g.next_flush_in_ms.saturating_sub(elapsed_ms);
            let next_flush = if in_ms > 0 {
                now + Duration::from_millis(in_ms.unsigned_abs())
            } else {
                now
            };
            let key = g.key.clone();
            self.groups.insert(
                g.key,
                Group {
                    latest: g.latest,
                    timing: GroupTiming {
                        group_wait: Duration::from_millis(g.group_wait_ms),
                        group_interval: Duration::from_millis(g.group_interval_ms),
                        repeat_interval: Duration::from_millis(g.repeat_interval_ms),
                        forget_after: Duration::from_millis(g.forget_after_ms),
                    },
                    reasons: g.reasons,
                    last_reasons: g.last_reasons,
                    pending: g.pending,
                    last_size: g.last_size,
                    repeats: g.repeats,
                    span: g.span,
                    last_span: g.last_span,
                    next_flush,
                    last_sent: g.last_sent_ago_ms.map(ago),
                    last_alert: ago(g.last_alert_ago_ms),
                },
            );
            self.schedule(key, next_flush);
        }
        self.clean_deadlines();
    }

    /// Drops groups with nothing pending and no alert for `forget_after`: a sweep over
    /// every group, so at most once per [`FORGET_EVERY`] unless `now_anyway`.
    fn forget(&mut self, now: Instant, now_anyway: bool) {
        if !now_anyway
            && self
                .last_forget
                .is_some_and(|t| now.saturating_duration_since(t) < FORGET_EVERY)
        {
            return;
        }
        self.last_forget = Some(now);
        let before = self.groups.len();
        self.groups.retain(|_, g| {
            g.pending > 0 || now.duration_since(g.last_alert) < g.timing.forget_after
        });
        if self.groups.len() != before {
            self.clean_deadlines();
        }
    }
}

#[derive(Debug)]
struct CompiledRule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<(String, Field)>,
    duration: chrono::Duration,
    text: String,
}

/// One muting window of a rule and key: the remembered source alerts whose windows
/// (`at ..= at + rule duration`) overlap, merged, named by the newest of them.
#[derive(Debug, Clone)]
struct Source {
    rule: usize,
    /// Where the window starts: the earliest event time of the merged sources.
    from: DateTime<Utc>,
    /// The event time of the source that names the window (the newest remembered).
    at: DateTime<Utc>,
    /// When it stops muting anything: the latest `at + rule duration` of the merged sources.
    expires: DateTime<Utc>,
    key: Vec<Vec<String>>,
    description: String,
}

/// The remembered sources, indexed so a check costs a hash lookup per rule instead of a
/// scan over every source:
///
/// * `sources`: every live muting window by insertion number (a window merged with a
///   newer source is removed and inserted again, so insertion order is the order in which
///   the sources naming them were remembered);
/// * `buckets`: per rule, per `equal` values, the insertion numbers in insertion order
///   (an alert can only be muted by sources with exactly its `equal` values);
/// * `order`: insertion numbers in insertion order, for the capacity bound (oldest first);
/// * `expiry`: a min-heap on expiry time, for forgetting sources that ran out.
///
/// Removed sources stay in `order`, `buckets` and `expiry` until they reach the front
/// (lazy deletion); each source is pushed and popped once, so upkeep is amortised
/// O(log n) per source.
#[derive(Debug, Default)]
struct SourceIndex {
    next: u64,
    sources: HashMap<u64, Source>,
    buckets: Vec<HashMap<Vec<Vec<String>>, VecDeque<u64>>>,
    order: VecDeque<u64>,
    expiry: BinaryHeap<Reverse<(DateTime<Utc>, u64)>>,
}

impl SourceIndex {
    fn with_rules(n: usize) -> Self {
        Self {
            buckets: (0..n).map(|_| HashMap::new()).collect(),
            ..Self::default()
        }
    }

    fn remove(&mut self, id: u64) -> Option<Source> {
        let source = self.sources.remove(&id)?;
        // Trim the bucket's dead ends: its oldest entries usually go first, and a window
        // merged with a newer source is its newest entry.
        if let Some(bucket) = self.buckets[source.rule].get_mut(&source.key) {
            while bucket
                .front()
                .is_some_and(|i| !self.sources.contains_key(i))
            {
                bucket.pop_front();
            }
            while bucket.back().is_some_and(|i| !self.sources.contains_key(i)) {
                bucket.pop_back();
            }
            if bucket.is_empty() {
                self.buckets[source.rule].remove(&source.key);
            }
        }
        Some(source)
    }

    /// Removes the window `id` to be merged into a newer one (pushed next, into the same
    /// bucket, which is kept even when this leaves it empty).
    fn take_for_merge(&mut self, id: u64) -> Option<Source> {
        let source = self.sources.remove(&id)?;
        if let Some(bucket) = self.buckets[source.rule].get_mut(&source.key) {
            while bucket.back().is_some_and(|i| !self.sources.contains_key(i)) {
                bucket.pop_back();
            }
        }
        Some(source)
    }

    /// Forgets sources that ran out before `newest`.
    fn expire(&mut self, newest: DateTime<Utc>) {
        while let Some(Reverse((expires, id))) = self.expiry.peek().copied() {
            if expires >= newest {
                break;
            }
            self.expiry.pop();
            self.remove(id);
        }
    }

    /// Forgets the oldest live source.
    fn pop_oldest(&mut self) {
        while let Some(id) = self.order.pop_front() {
            if self.sources.contains_key(&id) {
                self.remove(id);
                return;
            }
        }
    }

    fn push(&mut self, source: Source) {
        let id = self.next;
        self.next += 1;
        match self.buckets[source.rule].get_mut(&source.key) {
            Some(bucket) => bucket.push_back(id),
            None => {
                self.buckets[source.rule].insert(source.key.clone(), VecDeque::from([id]));
            }
        }
        self.order.push_back(id);
        self.expiry.push(Reverse((source.expires, id)));
        self.sources.insert(id, source);
        // Dead entries pile up in `order` when sources expire by time, and in `expiry`
        // when the capacity bound forgets them: compact (amortised O(1) per push).
        if self.order.len() > 2 * self.sources.len() + 64 {
            let live = &self.sources;
            self.order.retain(|i| live.contains_key(i));
        }
        if self.expiry.len() > 2 * self.sources.len() + 64 {
            self.expiry = self
                .sources
                .iter()
                .map(|(id, s)| Reverse((s.expires, *id)))
                .collect();
        }
    }

    /// The newest window (by insertion) of `rule` with `key` that mutes at `now`.
    fn newest_muting(
        &self,
        rule: usize,
        key: &[Vec<String>],
        now: DateTime<Utc>,
    ) -> Option<(u64, &Source)> {
        let bucket = self.buckets[rule].get(key)?;
        bucket.iter().rev().find_map(|id| {
            let s = self.sources.get(id)?;
            (now >= s.from && now <= s.expires).then_some((*id, s))
        })
    }

    /// The newest live window of `rule` with `key`.
    fn newest(&self, rule: usize, key: &[Vec<String>]) -> Option<(u64, &Source)> {
        let bucket = self.buckets[rule].get(key)?;
        bucket
            .iter()
            .rev()
            .find_map(|id| self.sources.get(id).map(|s| (*id, s)))
    }
}

/// `span` stretched to include `time`.
/// Writes what a group's notification says about the group into its params: how many
/// alerts it stands for (`group_size`), the event-time span they cover
/// (`group_first_seen`, `group_last_seen`) and the group's key (`group_key`). One place
/// for the single-process grouper and the group shared across replicas.
pub(crate) fn stamp_group(
    alert: &mut Alert,
    key: &str,
    size: u64,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
) {
    alert.params.insert("group_size".into(), Value::from(size));
    if let Some((first, last)) = span {
        alert
            .params
            .insert("group_first_seen".into(), Value::from(first.to_rfc3339()));
        alert
            .params
            .insert("group_last_seen".into(), Value::from(last.to_rfc3339()));
    }
    alert.params.insert("group_key".into(), Value::from(key));
}

/// One notification standing for two notifications of the same group that a channel has
/// not sent yet (the channel is slower than the group's timers): what the channel would
/// have said, in one message.
///
/// * a repeat adds nothing to a notification still waiting: the waiting one is kept;
/// * a waiting repeat is replaced by the newer notification;
/// * two updates become the newer one, standing for the alerts of both (`group_size`
///   summed, `group_first_seen` / `group_last_seen` widened to cover both, reasons of both
///   each once, at most 20, the newer's first).
///
/// Both must be notifications of one group (the same `params["group_key"]`).
///
/// ```
/// use std::sync::Arc;
/// use vowguard_core::{Alert, Category, Event, Priority, Severity};
/// use vowguard_router::coalesce_group_notifications;
///
/// let event = Arc::new(Event::new(Category::Authentication, "login_failed", Severity::High));
/// let mut older = Alert::new(event.clone(), Priority::P1High, "brute-force");
/// older.params.insert("group_key".into(), "k".into());
/// older.params.insert("group_size".into(), 3.into());
/// older.reasons = vec!["5 failed logins".into()];
/// let mut newer = Alert::new(event, Priority::P1High, "brute-force");
/// newer.params.insert("group_key".into(), "k".into());
/// newer.params.insert("group_size".into(), 2.into());
/// newer.reasons = vec!["new source country".into()];
/// let newer_id = newer.id.clone();
///
/// let one = coalesce_group_notifications(older, newer);
/// assert_eq!(one.id, newer_id);
/// assert_eq!(one.params["group_size"], 5);
/// assert_eq!(one.reasons, ["new source country", "5 failed logins"]);
/// ```
pub fn coalesce_group_notifications(older: Alert, newer: Alert) -> Alert {
    let is_repeat = |a: &Alert| a.params.get("repeat").and_then(Value::as_bool) == Some(true);
    if is_repeat(&newer) {
        return older;
    }
    if is_repeat(&older) {
        return newer;
    }
    let size = |a: &Alert| {
        a.params
            .get("group_size")
            .and_then(Value::as_u64)
            .unwrap_or(1)
    };
    let time = |a: &Alert, key: &str| {
        a.params
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let mut merged = newer;
    let total = size(&older).saturating_add(size(&merged));
    merged
        .params
        .insert("group_size".into(), Value::from(total));
    // The span covering both: the earlier first sighting, the later last one.
    type Pick = fn(DateTime<Utc>, DateTime<Utc>) -> DateTime<Utc>;
    let ends: [(&str, Pick); 2] = [
        ("group_first_seen", Ord::min),
        ("group_last_seen", Ord::max),
    ];
    for (key, pick) in ends {
        let end = match (time(&older, key), time(&merged, key)) {
            (Some(a), Some(b)) => Some(pick(a, b)),
            (a, b) => a.or(b),
        };
        if let Some(end) = end {
            merged
                .params
                .insert(key.into(), Value::from(end.to_rfc3339()));
        }
    }
    for reason in older.reasons {
        if merged.reasons.len() >= MAX_REASONS {
            break;
        }
        if !merged.reasons.contains(&reason) {
            merged.reasons.push(reason);
        }
    }
    merged
}

pub(crate) fn widen(
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    time: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match span {
        Some((first, last)) => (first.min(time), last.max(time)),
        None => (time, time),
    }
}

/// Most remembered muting windows (the oldest are forgotten first).
const MAX_SOURCES: usize = 10_000;

/// Applies `[[inhibit_rules]]`.
///
/// Checking an alert costs one evaluation of each rule's target matchers and one hash
/// lookup per matching rule (by the alert's `equal` values), independent of how many
/// sources are remembered; remembering a source costs O(log n).
///
/// A source mutes the targets of its rule with its `equal` values whose event time falls
/// in its window, `at ..= at + duration`. Sources of the same rule and values whose windows
/// overlap are kept as one merged window (named by the latest of them), so memory and the
/// state snapshot grow with the number of keys that saw a source, not with the number of
/// source alerts: a burst of P0 alerts on one wedding neither fills the bound (10,000
/// windows) nor pushes other weddings' sources out of it. The windows survive a restart
/// through [`export`](Self::export) / [`import`](Self::import).
#[derive(Debug)]
pub struct Inhibitor {
    rules: Vec<CompiledRule>,
    capacity: usize,
    index: Mutex<SourceIndex>,
    /// The sources remembered by [`observe`](Self::observe) since the last
    /// [`take_observed`](Self::take_observed), when sharing is on (cluster mode).
    outbox: Mutex<Option<Vec<(InhibitionKey, InhibitionSource)>>>,
}

impl Default for Inhibitor {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            capacity: MAX_SOURCES,
            index: Mutex::new(SourceIndex::default()),
            outbox: Mutex::new(None),
        }
    }
}

/// What an inhibition source is found by: its rule and its values of the rule's `equal`
/// fields. A target alert is muted by a source with the same key (and a recent enough
/// event time), so a store shared by replicas keeps one entry per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InhibitionKey {
    /// The rule, as `source mutes target with equal fields` (as in [`InhibitionSource::rule`]).
    pub rule: String,
    /// The values of the rule's `equal` fields.
    pub equal_values: Vec<Vec<String>>,
}

/// Most sources waiting in the sharing outbox; beyond, the oldest are dropped (a caller
/// that stopped taking them must not grow memory).
const MAX_OUTBOX: usize = 10_000;

/// One remembered inhibition source, as [`Inhibitor::export`] writes it. The rule is named
/// by its text, so a restart with changed rules drops the sources of removed rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InhibitionSource {
    /// The rule, as `source mutes target with equal fields`.
    pub rule: String,
    /// The source alert's event time.
    pub at: DateTime<Utc>,
    /// Where its muting window starts when earlier sources of the same rule and key were
    /// merged into it (`None`: at `at`). The window ends `at` plus the rule's duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Its values of the rule's `equal` fields.
    pub equal_values: Vec<Vec<String>>,
    /// How the source is described in "inhibited by ..." reasons.
    pub description: String,
}

/// The matching context of an alert: its event, priority, and the protocols recorded in
/// `params["protocols"]`.
fn alert_protocols(alert: &Alert) -> Vec<String> {
    alert
        .params
        .get("protocols")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Inhibitor {
    /// Compiles the rules; errors name the rule and the bad matcher or field.
    pub fn new(rules: &[InhibitRule]) -> Result<Self, Error> {
        let mut compiled = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("inhibit_rules[{i}]");
            if rule.source_matchers.is_empty() || rule.target_matchers.is_empty() {
                return Err(Error::config(format!(
                    "`{at}`: needs source_matchers and target_matchers"
                )));
            }
            let equal = rule
                .equal
                .iter()
                .map(|f| {
                    Field::parse(f)
                        .map(|field| (f.clone(), field))
                        .ok_or_else(|| Error::config(format!("`{at}.equal`: unknown field `{f}`")))
                })
                .collect::<Result<_, _>>()?;
            compiled.push(CompiledRule {
                source: compile_all(&rule.source_matchers, &format!("{at}.source_matchers"))?,
                target: compile_all(&rule.target_matchers, &format!("{at}.target_matchers"))?,
                equal,
                duration: chrono::Duration::from_std(rule.duration.0)
                    .map_err(|_| Error::config(format!("`{at}.duration`: too long")))?,
                text: format!(
                    "{} mutes {}{}",
                    rule.source_matchers.join(", "),
                    rule.target_matchers.join(", "),
                    if rule.equal.is_empty() {
                        String::new()
                    } else {
                        format!(" with equal {}", rule.equal.join(", "))
                    }
                ),
            });
        }
        let n = compiled.len();
        Ok(Self {
            rules: compiled,
            capacity: MAX_SOURCES,
            index: Mutex::new(SourceIndex::with_rules(n)),
            outbox: Mutex::new(None),
        })
    }

    /// Whether any rule is configured.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The longest `duration` of the rules (zero without rules): how long a shared store
    /// must keep a source.
    pub fn longest_duration(&self) -> Duration {
        self.rules
            .iter()
            .filter_map(|r| r.duration.to_std().ok())
            .max()
            .unwrap_or_default()
    }

    /// Starts collecting every source [`observe`](Self::observe) remembers, for
    /// [`take_observed`](Self::take_observed) (cluster mode shares them with the other
    /// replicas).
    pub fn share_observed(&self) {
        let mut outbox = lock(&self.outbox);
        if outbox.is_none() {
            *outbox = Some(Vec::new());
        }
    }

    /// The sources remembered since the last call (empty unless
    /// [`share_observed`](Self::share_observed) was called).
    pub fn take_observed(&self) -> Vec<(InhibitionKey, InhibitionSource)> {
        lock(&self.outbox)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The keys of the sources that could mute `alert`: one per rule whose target matchers
    /// it satisfies and whose `equal` fields it has. Looking these up in a shared store
    /// (and [`learn`](Self::learn)ing what is found) before the check makes the check see
    /// the sources of other replicas.
    pub fn keys_for(&self, alert: &Alert) -> Vec<InhibitionKey> {
        let protocols = alert_protocols(alert);
        self.keys_in(&MatchContext {
            event: &alert.event,
            priority: alert.priority,
            protocols: &protocols,
        })
    }

    /// [`keys_for`](Self::keys_for) an alert with the event, priority and protocols of `ctx`.
    pub(crate) fn keys_in(&self, ctx: &MatchContext<'_>) -> Vec<InhibitionKey> {
        let mut keys = Vec::new();
        for rule in &self.rules {
            if !rule.target.iter().all(|m| m.matches(ctx)) {
                continue;
            }
            let equal_values: Vec<Vec<String>> =
                rule.equal.iter().map(|(_, f)| f.values(ctx)).collect();
            if equal_values.iter().any(Vec::is_empty) {
                continue;
            }
            keys.push(InhibitionKey {
                rule: rule.text.clone(),
                equal_values,
            });
        }
        keys
    }

    /// Remembers a source another replica observed (from a shared store), unless the
    /// newest source remembered for its key is the same one or its rule is no longer
    /// configured. True when it was taken.
    pub fn learn(&self, source: InhibitionSource) -> bool {
        let Some(rule) = self.rules.iter().position(|r| r.text == source.rule) else {
            return false;
        };
        if source.equal_values.len() != self.rules[rule].equal.len()
            || source.equal_values.iter().any(Vec::is_empty)
        {
            return false;
        }
        let mut index = self.index();
        let known = index.buckets[rule]
            .get(&source.equal_values)
            .and_then(|bucket| bucket.back())
            .and_then(|id| index.sources.get(id))
            .is_some_and(|s| s.at >= source.at);
        if known {
            return false;
        }
        self.remember(
            &mut index,
            Source {
                rule,
                from: source.from.map_or(source.at, |f| f.min(source.at)),
                at: source.at,
                expires: expiry(source.at, self.rules[rule].duration),
                key: source.equal_values,
                description: source.description,
            },
        );
        true
    }

    /// The same inhibitor remembering at most `capacity` sources (default 10,000).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    fn index(&self) -> std::sync::MutexGuard<'_, SourceIndex> {
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of remembered sources.
    pub fn sources(&self) -> usize {
        self.index().sources.len()
    }

    /// Why `alert` is muted at `now` (its event time), or `None`. When several sources
    /// mute it, the most recently remembered one is named.
    pub fn is_inhibited(&self, alert: &Alert, now: DateTime<Utc>) -> Option<String> {
        if self.rules.is_empty() {
            return None;
        }
        let protocols = alert_protocols(alert);
        self.inhibited_in(
            &MatchContext {
                event: &alert.event,
                priority: alert.priority,
                protocols: &protocols,
            },
            now,
        )
    }

    /// [`is_inhibited`](Self::is_inhibited) for an alert with the event, priority and
    /// protocols of `ctx`.
    pub(crate) fn inhibited_in(
        &self,
        ctx: &MatchContext<'_>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        if self.rules.is_empty() {
            return None;
        }
        let index = self.index();
        if index.sources.is_empty() {
            return None;
        }
        let mut best: Option<(u64, &Source)> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if index.buckets[i].is_empty() || !rule.target.iter().all(|m| m.matches(ctx)) {
                continue;
            }
            let key: Vec<Vec<String>> = rule.equal.iter().map(|(_, f)| f.values(ctx)).collect();
            if key.iter().any(Vec::is_empty) {
                continue;
            }
            if let Some(found) = index.newest_muting(i, &key, now)
                && best.is_none_or(|(id, _)| found.0 > id)
            {
                best = Some(found);
            }
        }
        best.map(|(_, source)| {
            format!(
                "inhibited by {} (rule: {})",
                source.description, self.rules[source.rule].text
            )
        })
    }

    /// Remembers `alert` as a source for every rule whose source matchers it satisfies
    /// (and whose `equal` fields it has).
    pub fn observe(&self, alert: &Alert) {
        let protocols = alert_protocols(alert);
        self.observe_in(&MatchContext {
            event: &alert.event,
            priority: alert.priority,
            protocols: &protocols,
        });
    }

    /// [`observe`](Self::observe) an alert with the event, priority and protocols of `ctx`.
    pub(crate) fn observe_in(&self, ctx: &MatchContext<'_>) {
        let mut index = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.source.iter().all(|m| m.matches(ctx)) {
                continue;
            }
            let equal_values: Vec<Vec<String>> =
                rule.equal.iter().map(|(_, f)| f.values(ctx)).collect();
            if equal_values.iter().any(Vec::is_empty) {
                continue;
            }
            let description = format!(
                "{} event {}{}",
                ctx.priority,
                ctx.event.id,
                rule.equal
                    .iter()
                    .zip(&equal_values)
                    .map(|((name, _), v)| format!(" {name}={}", v.join(",")))
                    .collect::<String>()
            );
            let at = ctx.event.timestamp;
            if let Some(outbox) = lock(&self.outbox).as_mut() {
                if outbox.len() >= MAX_OUTBOX {
                    outbox.remove(0);
                }
                outbox.push((
                    InhibitionKey {
                        rule: rule.text.clone(),
                        equal_values: equal_values.clone(),
                    },
                    InhibitionSource {
                        rule: rule.text.clone(),
                        at,
                        from: None,
                        equal_values: equal_values.clone(),
                        description: description.clone(),
                    },
                ));
            }
            let index = index.get_or_insert_with(|| self.index());
            self.remember(
                index,
                Source {
                    rule: i,
                    from: at,
                    at,
                    expires: expiry(at, rule.duration),
                    key: equal_values,
                    description,
                },
            );
        }
    }

    /// Remembers `source`: forgets the windows that ran out by its time, merges it into
    /// the newest window of its rule and key when the two overlap, and keeps within the
    /// bound. A merged window mutes exactly what the two did and is named by the source
    /// with the later event time (the newer one on a tie).
    ///
    /// Merging is why a burst of P0 alerts on one wedding is one remembered window, not
    /// thousands of sources crowding the other weddings' out of the bound.
    fn remember(&self, index: &mut SourceIndex, mut source: Source) {
        index.expire(source.at);
        let overlapping = index
            .newest(source.rule, &source.key)
            .filter(|(_, w)| source.from <= w.expires && w.from <= source.expires)
            .map(|(id, _)| id);
        match overlapping.and_then(|id| index.take_for_merge(id)) {
            Some(window) => {
                source.from = source.from.min(window.from);
                if window.at > source.at {
                    source.at = window.at;
                    source.expires = window.expires;
                    source.description = window.description;
                }
            }
            None => {
                if index.sources.len() >= self.capacity {
                    index.pop_oldest();
                }
            }
        }
        index.push(source);
    }

    /// Every remembered source, oldest first.
    pub fn export(&self) -> Vec<InhibitionSource> {
        let index = self.index();
        index
            .order
            .iter()
            .filter_map(|id| index.sources.get(id))
            .map(|s| InhibitionSource {
                rule: self.rules[s.rule].text.clone(),
                at: s.at,
                from: (s.from < s.at).then_some(s.from),
                equal_values: s.key.clone(),
                description: s.description.clone(),
            })
            .collect()
    }

    /// Remembers `sources` (from [`export`](Self::export), oldest first) as if observed
    /// again; sources of rules no longer configured are dropped. Returns how many were
    /// taken.
    pub fn import(&self, sources: Vec<InhibitionSource>) -> usize {
        let mut index = self.index();
        let mut taken = 0;
        for s in sources {
            let Some(rule) = self.rules.iter().position(|r| r.text == s.rule) else {
                continue;
            };
            if s.equal_values.len() != self.rules[rule].equal.len()
                || s.equal_values.iter().any(Vec::is_empty)
            {
                continue;
            }
            self.remember(
                &mut index,
                Source {
                    rule,
                    from: s.from.map_or(s.at, |f| f.min(s.at)),
                    at: s.at,
                    expires: expiry(s.at, self.rules[rule].duration),
                    key: s.equal_values,
                    description: s.description,
                },
            );
            taken += 1;
        }
        taken
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn expiry(at: DateTime<Utc>, duration: chrono::Duration) -> DateTime<Utc> {
    at.checked_add_signed(duration)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vowguard_core::{Category, Event, Priority, Severity};

    fn alert(priority: Priority, reason: &str) -> Alert {
        let mut a = Alert::new(
            Arc::new(Event::new(Category::Authentication, "login", Severity::Low)),
            priority,
            "r",
        );
        a.reasons = vec![reason.to_owned()];
        a
    }

    fn timing() -> GroupTiming {
        GroupTiming {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
            forget_after: Duration::from_secs(7200),
        }
    }

    const S: Duration = Duration::from_secs(1);

    /// A channel too slow for a group's timers: every notification the grouper sends for
    /// one group, coalesced in order, stands for every alert offered, covers their whole
    /// event-time span, and is the latest notification (its id); a repeat folded in changes
    /// nothing, and one waiting is replaced by the next update.
    #[test]
    fn coalesced_notifications_stand_for_every_alert_of_the_group() {
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(10);
        let mut sent = Vec::new();
        let mut offered = 0u64;
        let base = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 20, 14, 0, 0).unwrap();
        for step in 0..40u32 {
            if step == 20 {
                // A quiet spell: the pending alerts go out, then the group repeats.
                let quiet = t0 + 37 * 19 * S;
                sent.extend(g.due(quiet + 400 * S));
                sent.extend(g.due(quiet + 4100 * S));
            }
            let now = t0 + 37 * step * S + if step >= 20 { 4100 * S } else { Duration::ZERO };
            if step % 7 != 3 {
                let mut a = alert(Priority::P1High, &format!("reason {}", step % 3));
                let mut event = (*a.event).clone();
                // Event times out of order: the span must still cover all of them.
                event.timestamp = base + chrono::Duration::seconds(i64::from((step * 13) % 29));
                a.event = Arc::new(event);
                sent.extend(g.offer(a, "k".into(), timing(), now));
                offered += 1;
            }
            sent.extend(g.due(now));
        }
        sent.extend(g.due(t0 + 20_000 * S));
        assert!(sent.len() > 3, "several notifications to coalesce");
        assert!(sent.iter().any(|a| a.params.get("repeat").is_some()));
        let last_update = sent
            .iter()
            .rev()
            .find(|a| a.params.get("repeat").is_none())
            .unwrap()
            .id
            .clone();
        let one = sent
            .into_iter()
            .reduce(coalesce_group_notifications)
            .unwrap();
        assert_eq!(one.params["group_size"], offered);
        assert_eq!(one.id, last_update);
        assert_eq!(one.params["group_key"], "k");
        assert!(one.params.get("repeat").is_none());
        assert_eq!(
            one.params["group_first_seen"],
            base.to_rfc3339(),
            "earliest event time of the group"
        );
        assert_eq!(
            one.params["group_last_seen"],
            (base + chrono::Duration::seconds(28)).to_rfc3339()
        );
        let mut reasons: Vec<&str> = one.reasons.iter().map(String::as_str).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), one.reasons.len(), "each reason once");
    }

    #[test]
    fn a_waiting_repeat_gives_way_and_a_late_repeat_adds_nothing() {
        let mut repeat = alert(Priority::P1High, "a");
        repeat.params.insert("repeat".into(), Value::Bool(true));
        repeat.params.insert("group_size".into(), Value::from(4));
        let mut update = alert(Priority::P1High, "b");
        update.params.insert("group_size".into(), Value::from(2));
        let kept = coalesce_group_notifications(repeat.clone(), update.clone());
        assert_eq!(kept.id, update.id);
        assert_eq!(kept.params["group_size"], 2);
        let kept = coalesce_group_notifications(update.clone(), repeat);
        assert_eq!(kept.id, update.id);
        assert_eq!(kept.params["group_size"], 2);
        assert_eq!(kept.reasons, ["b"]);
    }

    #[test]
    fn group_wait_collects_then_sends_one_alert() {
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(10);
        assert!(
            g.offer(alert(Priority::P1High, "a"), "k".into(), timing(), t0)
                .is_empty()
        );
        assert!(
            g.offer(
                alert(Priority::P1High, "b"),
                "k".into(),
                timing(),
                t0 + 10 * S
            )
            .is_empty()
        );
        assert_eq!(g.next_deadline(), Some(t0 + 30 * S));
        assert!(g.due(t0 + 29 * S).is_empty());
        let sent = g.due(t0 + 30 * S);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].params["group_size"], 2);
        assert_eq!(sent[0].reasons, ["a", "b"]);
        assert_eq!(sent[0].params["group_key"], "k");
        assert!(g.due(t0 + 31 * S).is_empty(), "sent once");
    }

    #[test]
    fn a_group_notification_carries_the_event_time_span() {
        let at = |minute: u32, reason: &str| {
            let mut a = alert(Priority::P1High, reason);
            let mut event = (*a.event).clone();
            event.timestamp =
                chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 20, 14, minute, 0).unwrap();
            a.event = Arc::new(event);
            a
        };
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(10);
        g.offer(at(5, "a"), "k".into(), timing(), t0);
        g.offer(at(3, "b"), "k".into(), timing(), t0 + S);
        g.offer(at(9, "c"), "k".into(), timing(), t0 + 2 * S);
        let sent = g.due(t0 + 30 * S);
        assert_eq!(sent[0].params["group_size"], 3);
        assert_eq!(
            sent[0].params["group_first_seen"],
            "2026-06-20T14:03:00+00:00"
        );
        assert_eq!(
            sent[0].params["group_last_seen"],
            "2026-06-20T14:09:00+00:00"
        );
        // The next notification covers only what came after.
        g.offer(at(20, "d"), "k".into(), timing(), t0 + 40 * S);
        let sent = g.due(t0 + 400 * S);
        assert_eq!(sent[0].params["group_size"], 1);
        assert_eq!(
            sent[0].params["group_first_seen"],
            "2026-06-20T14:20:00+00:00"
        );
    }

    #[test]
    fn group_interval_limits_follow_ups_and_repeat_resends() {
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(10);
        g.offer(alert(Priority::P1High, "a"), "k".into(), timing(), t0);
        assert_eq!(g.due(t0 + 30 * S).len(), 1);
        // A new alert 10s after the first notification waits for the group interval.
        assert!(
            g.offer(
                alert(Priority::P1High, "c"),
                "k".into(),
                timing(),
                t0 + 40 * S
            )
            .is_empty()
        );
        assert_eq!(g.next_deadline(), Some(t0 + 330 * S));
        assert!(g.due(t0 + 329 * S).is_empty());
        let sent = g.due(t0 + 330 * S);
        assert_eq!(
            (sent.len(), &sent[0].params["group_size"]),
            (1, &Value::from(1))
        );
        assert_eq!(sent[0].reasons, ["c"]);
        // Nothing new: the unchanged group is repeated after the repeat interval.
        assert!(g.due(t0 + 330 * S + 3599 * S).is_empty());
        let repeat = g.due(t0 + 330 * S + 3600 * S);
        assert_eq!(repeat.len(), 1);
        assert_eq!(repeat[0].params["repeat"], true);
        assert_eq!(repeat[0].params["group_size"], 1);
        // A new alert after the repeat waits for the group interval since that repeat.
        let now = t0 + 330 * S + 3700 * S;
        assert!(
            g.offer(alert(Priority::P1High, "d"), "k".into(), timing(), now)
                .is_empty()
        );
        let sent = g.due(t0 + 330 * S + 3900 * S);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].reasons, ["d"]);
        assert!(!sent[0].params.contains_key("repeat"));
    }

    #[test]
    fn groups_are_independent_bounded_and_forgotten() {
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(2);
        g.offer(alert(Priority::P1High, "a"), "a".into(), timing(), t0);
        g.offer(
            alert(Priority::P1High, "b"),
            "b".into(),
            timing(),
            t0 + 5 * S,
        );
        let passed = g.offer(
            alert(Priority::P1High, "c"),
            "c".into(),
            timing(),
            t0 + 6 * S,
        );
        assert_eq!(
            passed.len(),
            1,
            "over the bound: passed through, not dropped"
        );
        assert_eq!(g.overflowed(), 1);
        assert_eq!(g.due(t0 + 30 * S).len(), 1, "only a is due");
        assert_eq!(g.due(t0 + 35 * S).len(), 1, "then b");
        assert_eq!(g.len(), 2);
        assert!(g.due(t0 + 7300 * S).len() <= 2);
        assert!(g.is_empty(), "forgotten after forget_after without alerts");
        let zero = GroupTiming {
            group_wait: Duration::ZERO,
            ..timing()
        };
        assert_eq!(
            g.offer(
                alert(Priority::P0Critical, "z"),
                "z".into(),
                zero,
                t0 + 7400 * S
            )
            .len(),
            1
        );
        let capped = timing().capped(Some(Duration::from_secs(2 * 60)));
        assert_eq!(capped.group_wait, Duration::from_secs(30));
        assert_eq!(capped.group_interval, Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn works_with_the_paused_tokio_clock() {
        let mut g = AlertGrouper::new(10);
        let start = Instant::now();
        g.offer(
            alert(Priority::P2Medium, "a"),
            "k".into(),
            timing(),
            Instant::now(),
        );
        tokio::time::sleep_until(g.next_deadline().unwrap()).await;
        let sent = g.due(Instant::now());
        assert_eq!(sent.len(), 1);
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
    }

    fn wedding_alert(priority: Priority, wedding: Option<&str>, at: &str) -> Alert {
        let mut e = Event::new(Category::DataAccess, "read", Severity::Low);
        e.wedding_id = wedding.map(str::to_owned);
        e.timestamp = DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc);
        let mut a = Alert::new(Arc::new(e), priority, "r");
        a.created_at = a.event.timestamp;
        a
    }

    #[test]
    fn a_p0_mutes_the_same_weddings_lower_alerts_for_an_hour() {
        let inh = Inhibitor::new(&[InhibitRule::default()]).unwrap();
        let p2 = |w: Option<&str>, at: &str| wedding_alert(Priority::P2Medium, w, at);
        assert!(
            inh.is_inhibited(
                &p2(Some("w-1"), "2026-06-17T10:05:00Z"),
                "2026-06-17T10:05:00Z".parse().unwrap()
            )
            .is_none()
        );
        inh.observe(&wedding_alert(
            Priority::P0Critical,
            Some("w-1"),
            "2026-06-17T10:00:00Z",
        ));
        inh.observe(&wedding_alert(
            Priority::P0Critical,
            None,
            "2026-06-17T10:00:00Z",
        ));
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let why = inh
            .is_inhibited(
                &p2(Some("w-1"), "2026-06-17T10:05:00Z"),
                at("2026-06-17T10:05:00Z"),
            )
            .unwrap();
        assert!(why.contains("wedding_id=w-1"), "{why}");
        assert!(
            inh.is_inhibited(
                &wedding_alert(Priority::P4Info, Some("w-1"), "2026-06-17T10:05:00Z"),
                at("2026-06-17T10:05:00Z")
            )
            .is_some()
        );
        assert!(
            inh.is_inhibited(
                &wedding_alert(Priority::P1High, Some("w-1"), "2026-06-17T10:05:00Z"),
                at("2026-06-17T10:05:00Z")
            )
            .is_none(),
            "P1 is not a target"
        );
        assert!(
            inh.is_inhibited(
                &p2(Some("w-2"), "2026-06-17T10:05:00Z"),
                at("2026-06-17T10:05:00Z")
            )
            .is_none(),
            "other wedding"
        );
        assert!(
            inh.is_inhibited(
                &p2(None, "2026-06-17T10:05:00Z"),
                at("2026-06-17T10:05:00Z")
            )
            .is_none(),
            "no wedding: equal needs a value"
        );
        assert!(
            inh.is_inhibited(
                &p2(Some("w-1"), "2026-06-17T11:00:00Z"),
                at("2026-06-17T11:00:00Z")
            )
            .is_some(),
            "at one hour"
        );
        assert!(
            inh.is_inhibited(
                &p2(Some("w-1"), "2026-06-17T11:00:01Z"),
                at("2026-06-17T11:00:01Z")
            )
            .is_none(),
            "after one hour"
        );
        assert!(
            inh.is_inhibited(
                &p2(Some("w-1"), "2026-06-17T09:59:00Z"),
                at("2026-06-17T09:59:00Z")
            )
            .is_none(),
            "before the source"
        );
    }

    /// Five alerts of one group whose reasons repeat (exactly, or with other figures) give
    /// each reason once, with how many alerts gave it, in first-seen order.
    #[test]
    fn grouped_reasons_are_deduplicated_in_order() {
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(10);
        for (i, n) in [812, 640, 812, 700, 999].into_iter().enumerate() {
            let mut a = alert(Priority::P0Critical, "severity high → P1_HIGH");
            a.reasons
                .push(format!("mass guest data query ({n} records ≥ 500)"));
            if i == 3 {
                a.reasons
                    .push("Saturday escalation: already P0_CRITICAL".into());
            }
            g.offer(a, "k".into(), timing(), t0 + S * u32::try_from(i).unwrap());
        }
        let sent = g.due(t0 + 30 * S);
        assert_eq!(
            sent[0].reasons,
            [
                "severity high → P1_HIGH (×5)",
                "mass guest data query (812 records ≥ 500) (×5)",
                "Saturday escalation: already P0_CRITICAL",
            ]
        );
    }

    /// Each repeat of an unchanged group is a notification of its own: it gets an id of
    /// its own (stable, derived from the group's latest alert), so a notifier remembering
    /// what it delivered does not take the repeat for the notification before it.
    #[test]
    fn repeats_get_ids_of_their_own() {
        let t0 = Instant::now();
        let mut g = AlertGrouper::new(10);
        let a = alert(Priority::P1High, "a");
        let first_id = a.id.clone();
        let timing = GroupTiming {
            forget_after: Duration::from_secs(86_400),
            ..timing()
        };
        g.offer(a, "k".into(), timing, t0);
        let first = g.due(t0 + 30 * S);
        assert_eq!(first[0].id, first_id);
        let r1 = g.due(t0 + 30 * S + 3600 * S);
        let r2 = g.due(t0 + 30 * S + 7200 * S);
        assert_eq!((r1.len(), r2.len()), (1, 1));
        let ids = [&first[0].id, &r1[0].id, &r2[0].id];
        assert!(
            ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
            "{ids:?}"
        );
        assert_eq!(r1[0].id, Alert::derive_id(&[&first_id, "repeat", "1"]));
    }

    /// Groups in progress survive a restart: exported, dropped, imported into a new
    /// grouper (a new process), with the time the process was down counted.
    #[test]
    fn groups_survive_a_restart() {
        let t0 = Instant::now();
        let wall0: DateTime<Utc> = "2026-06-20T10:00:00Z".parse().unwrap();
        let mut g = AlertGrouper::new(10);
        g.offer(alert(Priority::P1High, "a"), "k".into(), timing(), t0);
        g.offer(
            alert(Priority::P1High, "b"),
            "k".into(),
            timing(),
            t0 + 5 * S,
        );
        g.offer(
            alert(Priority::P2Medium, "x"),
            "other".into(),
            timing(),
            t0 + 6 * S,
        );
        let json =
            serde_json::to_string(&g.export(t0 + 10 * S, wall0 + chrono::Duration::seconds(10)))
                .unwrap();
        drop(g);

        // The new process starts 5 s of wall time later, with a fresh monotonic clock.
        let t1 = Instant::now() + 1000 * S;
        let mut g = AlertGrouper::new(10);
        g.import(
            serde_json::from_str(&json).unwrap(),
            t1,
            wall0 + chrono::Duration::seconds(15),
        );
        assert_eq!(g.len(), 2);
        assert!(g.has_pending());
        // `k` was due at t0+30 s: 15 s after the restart; `other` at t0+36 s.
        assert_eq!(g.next_deadline(), Some(t1 + 15 * S));
        assert!(g.due(t1 + 14 * S).is_empty());
        let sent = g.due(t1 + 15 * S);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].params["group_size"], 2);
        assert_eq!(sent[0].reasons, ["a", "b"]);
        assert_eq!(g.due(t1 + 21 * S).len(), 1, "then `other`");
        // A group whose wait ran out while the process was down is due at once.
        let mut late = AlertGrouper::new(10);
        late.import(
            serde_json::from_str(&json).unwrap(),
            t1,
            wall0 + chrono::Duration::hours(1),
        );
        assert_eq!(late.due(t1).len(), 2);
    }

    /// A wedding's P0 keeps muting its P2..P4 across a restart.
    #[test]
    fn inhibition_survives_a_restart() {
        let inh = Inhibitor::new(&[InhibitRule::default()]).unwrap();
        inh.observe(&wedding_alert(
            Priority::P0Critical,
            Some("w-1"),
            "2026-06-17T10:00:00Z",
        ));
        let json = serde_json::to_string(&inh.export()).unwrap();
        drop(inh);
        let inh = Inhibitor::new(&[InhibitRule::default()]).unwrap();
        assert_eq!(inh.import(serde_json::from_str(&json).unwrap()), 1);
        let why = inh
            .is_inhibited(
                &wedding_alert(Priority::P3Low, Some("w-1"), "2026-06-17T10:30:00Z"),
                "2026-06-17T10:30:00Z".parse().unwrap(),
            )
            .unwrap();
        assert!(why.contains("wedding_id=w-1"), "{why}");
        // Sources of a rule that is no longer configured are dropped.
        let other = InhibitRule {
            equal: vec!["user_id".into()],
            ..InhibitRule::default()
        };
        let inh = Inhibitor::new(&[other]).unwrap();
        assert_eq!(inh.import(serde_json::from_str(&json).unwrap()), 0);
    }

    /// `(rule, equal values, from, at, until, description)`: one muting window.
    type ScanWindow = (
        usize,
        Vec<Vec<String>>,
        DateTime<Utc>,
        DateTime<Utc>,
        DateTime<Utc>,
        String,
    );

    /// The inhibitor without an index: every window scanned, newest first. Kept as the
    /// oracle the indexed one must agree with. With `merge` off it is the inhibitor before
    /// windows were merged (one window per source alert).
    struct ScanInhibitor {
        inner: Inhibitor,
        capacity: usize,
        merge: bool,
        sources: Vec<ScanWindow>,
    }

    impl ScanInhibitor {
        fn new(capacity: usize, merge: bool) -> Self {
            Self {
                inner: Inhibitor::new(&property_rules()).unwrap(),
                capacity,
                merge,
                sources: Vec::new(),
            }
        }

        fn is_inhibited(&self, alert: &Alert, now: DateTime<Utc>) -> Option<String> {
            let protocols = alert_protocols(alert);
            let ctx = MatchContext {
                event: &alert.event,
                priority: alert.priority,
                protocols: &protocols,
            };
            for (rule, values, from, _, until, description) in self.sources.iter().rev() {
                let rule = &self.inner.rules[*rule];
                if now < *from || now > *until {
                    continue;
                }
                if !rule.target.iter().all(|m| m.matches(&ctx)) {
                    continue;
                }
                let equal = rule.equal.iter().zip(values).all(|((_, f), v)| {
                    let mine = f.values(&ctx);
                    !mine.is_empty() && mine == *v
                });
                if equal {
                    return Some(format!("inhibited by {description} (rule: {})", rule.text));
                }
            }
            None
        }

        fn observe(&mut self, alert: &Alert) {
            let protocols = alert_protocols(alert);
            let ctx = MatchContext {
                event: &alert.event,
                priority: alert.priority,
                protocols: &protocols,
            };
            for (i, rule) in self.inner.rules.iter().enumerate() {
                if !rule.source.iter().all(|m| m.matches(&ctx)) {
                    continue;
                }
                let values: Vec<Vec<String>> =
                    rule.equal.iter().map(|(_, f)| f.values(&ctx)).collect();
                if values.iter().any(Vec::is_empty) {
                    continue;
                }
                let mut description = format!(
                    "{} event {}{}",
                    alert.priority,
                    alert.event.id,
                    rule.equal
                        .iter()
                        .zip(&values)
                        .map(|((name, _), v)| format!(" {name}={}", v.join(",")))
                        .collect::<String>()
                );
                let mut at = alert.event.timestamp;
                let mut from = at;
                let mut until = at + rule.duration;
                self.sources.retain(|s| s.4 >= at);
                let newest = self
                    .sources
                    .iter()
                    .rposition(|s| s.0 == i && s.1 == values)
                    .filter(|&n| {
                        self.merge && from <= self.sources[n].4 && self.sources[n].2 <= until
                    });
                if let Some(n) = newest {
                    let (_, _, w_from, w_at, w_until, w_description) = self.sources.remove(n);
                    from = from.min(w_from);
                    if w_at > at {
                        at = w_at;
                        until = w_until;
                        description = w_description;
                    }
                } else if self.sources.len() >= self.capacity {
                    self.sources.remove(0);
                }
                self.sources.push((i, values, from, at, until, description));
            }
        }
    }

    /// splitmix64: a seeded, reproducible generator for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn property_rules() -> Vec<InhibitRule> {
        vec![
            InhibitRule::default(),
            InhibitRule {
                source_matchers: vec!["priority=~\"P0_CRITICAL|P1_HIGH\"".into()],
                target_matchers: vec!["severity!=\"critical\"".into()],
                equal: vec!["user_id".into(), "wedding_id".into()],
                duration: crate::HumanDuration(Duration::from_secs(600)),
            },
            InhibitRule {
                source_matchers: vec!["action=\"breach\"".into()],
                target_matchers: vec!["action=~\"log.*\"".into()],
                equal: vec![],
                duration: crate::HumanDuration(Duration::from_secs(120)),
            },
        ]
    }

    /// A random alert at step `step`; `clock` set: in event-time order, its value the last
    /// alert's time in seconds after `base`.
    fn random_alert(
        rng: &mut Rng,
        base: DateTime<Utc>,
        step: u64,
        clock: Option<&mut i64>,
    ) -> Alert {
        let priorities = [
            Priority::P0Critical,
            Priority::P1High,
            Priority::P2Medium,
            Priority::P3Low,
            Priority::P4Info,
        ];
        let severities = [Severity::Critical, Severity::High, Severity::Low];
        let actions = ["login", "breach", "log.read", "logout"];
        let mut e = Event::new(
            Category::DataAccess,
            actions[usize::try_from(rng.below(4)).unwrap()],
            severities[usize::try_from(rng.below(3)).unwrap()],
        );
        e.id = format!("e{step}");
        e.wedding_id = match rng.below(4) {
            0 => None,
            n => Some(format!("w-{n}")),
        };
        e.user_id = match rng.below(3) {
            0 => None,
            n => Some(format!("u-{n}")),
        };
        // Mostly in order, sometimes minutes out of order; in order: 0 to 40 s apart,
        // with gaps longer than the shortest rule duration now and then.
        let secs = if let Some(clock) = clock {
            *clock += if rng.below(50) == 0 {
                900
            } else {
                i64::try_from(rng.below(40)).unwrap()
            };
            *clock
        } else {
            let jitter = i64::try_from(rng.below(600)).unwrap() - 300;
            i64::try_from(step * 20).unwrap() + if rng.below(5) == 0 { jitter } else { 0 }
        };
        e.timestamp = base + chrono::Duration::seconds(secs);
        let p = priorities[usize::try_from(rng.below(5)).unwrap()];
        Alert::new(Arc::new(e), p, "r")
    }

    /// Seeds for the property tests (set `VOWGUARD_INHIBIT_SEED` to replay one).
    fn property_seeds() -> Vec<u64> {
        match std::env::var("VOWGUARD_INHIBIT_SEED") {
            Ok(s) => vec![s.parse().expect("VOWGUARD_INHIBIT_SEED is a u64")],
            Err(_) => (1..=20).collect(),
        }
    }

    /// The indexed inhibitor decides exactly like the scan over merged windows, on random
    /// seeded inputs, out of order and with the capacity bound reached.
    #[test]
    fn indexed_inhibitor_decides_like_the_scan() {
        let base: DateTime<Utc> = "2026-06-20T10:00:00Z".parse().unwrap();
        let mut inhibited = 0;
        let mut merged = 0;
        for seed in property_seeds() {
            let mut rng = Rng(seed);
            let capacity = [5, 40, 10_000][usize::try_from(seed % 3).unwrap()];
            let indexed = Inhibitor::new(&property_rules())
                .unwrap()
                .with_capacity(capacity);
            let mut scan = ScanInhibitor::new(capacity, true);
            let mut observed = 0;
            for step in 0..600 {
                let a = random_alert(&mut rng, base, step, None);
                let now = a.event.timestamp;
                let want = scan.is_inhibited(&a, now);
                let got = indexed.is_inhibited(&a, now);
                assert_eq!(
                    got, want,
                    "seed {seed} step {step}: replay with VOWGUARD_INHIBIT_SEED={seed}"
                );
                if want.is_some() {
                    inhibited += 1;
                } else {
                    scan.observe(&a);
                    indexed.observe(&a);
                    observed += 1;
                }
                assert_eq!(
                    indexed.sources(),
                    scan.sources.len(),
                    "seed {seed} step {step}"
                );
            }
            merged += observed - indexed.sources();
        }
        assert!(
            inhibited > 100,
            "the inputs exercise inhibition: {inhibited}"
        );
        assert!(merged > 100, "the inputs exercise merging: {merged}");
    }

    /// Merging windows changes nothing a caller can see when events come in order: the
    /// same alerts are muted, named by the same source, as by the inhibitor that kept
    /// every source alert (seeded random inputs, bound not reached).
    #[test]
    fn merged_windows_decide_like_every_source_kept() {
        let base: DateTime<Utc> = "2026-06-20T10:00:00Z".parse().unwrap();
        let mut inhibited = 0;
        for seed in property_seeds() {
            let mut rng = Rng(seed);
            let indexed = Inhibitor::new(&property_rules()).unwrap();
            let mut every = ScanInhibitor::new(usize::MAX, false);
            let mut clock = 0;
            for step in 0..600 {
                let a = random_alert(&mut rng, base, step, Some(&mut clock));
                let now = a.event.timestamp;
                let want = every.is_inhibited(&a, now);
                assert_eq!(
                    indexed.is_inhibited(&a, now),
                    want,
                    "seed {seed} step {step}: replay with VOWGUARD_INHIBIT_SEED={seed}"
                );
                if want.is_some() {
                    inhibited += 1;
                } else {
                    every.observe(&a);
                    indexed.observe(&a);
                }
                assert!(indexed.sources() <= every.sources.len());
            }
        }
        assert!(
            inhibited > 100,
            "the inputs exercise inhibition: {inhibited}"
        );
    }

    /// A burst of P0 alerts on one wedding is one window: it does not push another
    /// wedding's source out of the bound.
    #[test]
    fn a_burst_on_one_wedding_does_not_forget_another() {
        let inh = Inhibitor::new(&[InhibitRule::default()])
            .unwrap()
            .with_capacity(10);
        inh.observe(&wedding_alert(
            Priority::P0Critical,
            Some("w-quiet"),
            "2026-06-20T10:00:00Z",
        ));
        let base: DateTime<Utc> = "2026-06-20T10:00:01Z".parse().unwrap();
        for i in 0..1_000 {
            let mut a = wedding_alert(Priority::P0Critical, Some("w-busy"), "2026-06-20T10:00:01Z");
            let mut e = (*a.event).clone();
            e.timestamp = base + chrono::Duration::milliseconds(i);
            a.event = Arc::new(e);
            inh.observe(&a);
        }
        assert_eq!(inh.sources(), 2);
        let muted = |w: &str, at: &str| {
            inh.is_inhibited(
                &wedding_alert(Priority::P3Low, Some(w), at),
                at.parse().unwrap(),
            )
        };
        assert!(muted("w-quiet", "2026-06-20T10:30:00Z").is_some());
        assert!(muted("w-busy", "2026-06-20T10:30:00Z").is_some());
        // The window of the burst ends an hour after its last alert.
        assert!(muted("w-busy", "2026-06-20T11:00:01.999Z").is_some());
        assert!(muted("w-busy", "2026-06-20T11:00:02.001Z").is_none());
        // It survives export and import as one window, start included.
        let exported = inh.export();
        assert_eq!(exported.len(), 2);
        let again = Inhibitor::new(&[InhibitRule::default()]).unwrap();
        assert_eq!(again.import(exported), 2);
        let early = "2026-06-20T10:00:01.000Z";
        assert!(
            again
                .is_inhibited(
                    &wedding_alert(Priority::P3Low, Some("w-busy"), early),
                    early.parse().unwrap()
                )
                .is_some()
        );
    }

    /// Micro-benchmark (run with `--ignored --nocapture`): time per alert with 10,000
    /// remembered P0 sources, indexed vs the scan.
    #[test]
    #[ignore = "a benchmark: prints figures, asserts nothing about time"]
    #[allow(clippy::print_stdout)] // a benchmark's figures are its output
    fn bench_inhibition_with_many_sources() {
        let base: DateTime<Utc> = "2026-06-20T10:00:00Z".parse().unwrap();
        let at = |i: i64| base + chrono::Duration::milliseconds(i);
        let mk = |p: Priority, w: usize, i: i64| {
            let mut e = Event::new(Category::DataAccess, "read", Severity::High);
            e.wedding_id = Some(format!("w-{w}"));
            e.timestamp = at(i);
            Alert::new(Arc::new(e), p, "r")
        };
        let indexed = Inhibitor::new(&[InhibitRule::default()]).unwrap();
        let mut scan = ScanInhibitor {
            inner: Inhibitor::new(&[InhibitRule::default()]).unwrap(),
            capacity: MAX_SOURCES,
            merge: true,
            sources: Vec::new(),
        };
        for i in 0..10_000 {
            let a = mk(Priority::P0Critical, i % 5000, i64::try_from(i).unwrap());
            indexed.observe(&a);
            scan.observe(&a);
        }
        let probes: Vec<Alert> = (0..2000)
            .map(|i| mk(Priority::P2Medium, 5000 + i, 20_000))
            .collect();
        let start = std::time::Instant::now();
        let n = probes
            .iter()
            .filter(|a| indexed.is_inhibited(a, at(20_000)).is_some())
            .count();
        let indexed_per = start.elapsed() / 2000;
        let start = std::time::Instant::now();
        let m = probes
            .iter()
            .filter(|a| scan.is_inhibited(a, at(20_000)).is_some())
            .count();
        let scan_per = start.elapsed() / 2000;
        assert_eq!(n, m);
        println!("10,000 sources: indexed {indexed_per:?} per alert, scan {scan_per:?} per alert");
    }

    #[test]
    fn bad_rules_are_config_errors() {
        let rule = InhibitRule {
            target_matchers: vec!["priority=~\"(\"".into()],
            ..InhibitRule::default()
        };
        let err = Inhibitor::new(&[rule]).unwrap_err().to_string();
        assert!(
            err.contains("inhibit_rules[0].target_matchers") && err.contains("invalid regex"),
            "{err}"
        );
        let rule = InhibitRule {
            equal: vec!["colour".into()],
            ..InhibitRule::default()
        };
        let err = Inhibitor::new(&[rule]).unwrap_err().to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}

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

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
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

#[derive(Debug)]
struct Group {
    latest: Alert,
    timing: GroupTiming,
    reasons: Vec<String>,
    /// Reasons of the last notification (for repeats).
    last_reasons: Vec<String>,
    /// Alerts folded in since the last notification.
    pending: usize,
    /// Alerts in the last notification (for repeats).
    last_size: usize,
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
/// `params["group_key"]`, and the reasons
/// of all those alerts merged (first 20, deduplicated). A repeat of an unchanged group
/// also carries `params["repeat"] = true`.
#[derive(Debug)]
pub struct AlertGrouper {
    groups: HashMap<String, Group>,
    max_groups: usize,
    overflowed: u64,
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
        match self.groups.get_mut(&group_key) {
            Some(group) => {
                group.timing = timing;
                merge_reasons(&mut group.reasons, &alert.reasons);
                group.span = Some(widen(group.span, alert.event.timestamp));
                group.latest = alert;
                group.pending += 1;
                group.last_alert = now;
                if let Some(sent) = group.last_sent {
                    group.next_flush = group.next_flush.min(sent + timing.group_interval);
                }
            }
            None => {
                self.forget(now);
                if self.groups.len() >= self.max_groups {
                    self.overflowed += 1;
                    let mut alert = alert;
                    alert.params.insert("group_size".into(), Value::from(1));
                    let mut out = self.due(now);
                    out.push(alert);
                    return out;
                }
                let reasons = alert.reasons.clone();
                let span = Some(widen(None, alert.event.timestamp));
                self.groups.insert(
                    group_key,
                    Group {
                        latest: alert,
                        timing,
                        reasons,
                        last_reasons: Vec::new(),
                        pending: 1,
                        last_size: 0,
                        span,
                        last_span: None,
                        next_flush: now + timing.group_wait,
                        last_sent: None,
                        last_alert: now,
                    },
                );
            }
        }
        self.due(now)
    }

    /// Notifications due at `now`: groups whose wait or interval has passed with new
    /// alerts, and unchanged groups whose repeat interval has passed.
    pub fn due(&mut self, now: Instant) -> Vec<Alert> {
        self.forget(now);
        let mut out = Vec::new();
        let mut keys: Vec<&String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        let keys: Vec<String> = keys.into_iter().cloned().collect();
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
            alert.params.insert("group_size".into(), Value::from(size));
            let span = if repeat {
                group.last_span
            } else {
                group.span.take()
            };
            if let Some((first, last)) = span {
                alert
                    .params
                    .insert("group_first_seen".into(), Value::from(first.to_rfc3339()));
                alert
                    .params
                    .insert("group_last_seen".into(), Value::from(last.to_rfc3339()));
            }
            group.last_span = span;
            alert
                .params
                .insert("group_key".into(), Value::from(key.clone()));
            if repeat {
                alert.params.insert("repeat".into(), Value::Bool(true));
            }
            if repeat {
                alert.reasons = group.last_reasons.clone();
            } else {
                alert.reasons = std::mem::take(&mut group.reasons);
                group.last_reasons = alert.reasons.clone();
            }
            group.last_size = size;
            group.pending = 0;
            group.last_sent = Some(now);
            group.next_flush = now + group.timing.repeat_interval;
            out.push(alert);
        }
        out
    }

    /// Notifications for every group with alerts not yet notified, at once (used when the
    /// input has ended and the run drains). Repeats are not sent.
    pub fn flush_pending(&mut self, now: Instant) -> Vec<Alert> {
        for group in self.groups.values_mut() {
            if group.pending > 0 {
                group.next_flush = now;
            }
        }
        let out = self.due(now);
        self.groups.clear();
        out
    }

    /// True when some group holds alerts not yet notified.
    pub fn has_pending(&self) -> bool {
        self.groups.values().any(|g| g.pending > 0)
    }

    /// When the next notification (or repeat) falls due, for the caller to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Drops groups with nothing pending and no alert for `forget_after`.
    fn forget(&mut self, now: Instant) {
        self.groups.retain(|_, g| {
            g.pending > 0 || now.duration_since(g.last_alert) < g.timing.forget_after
        });
    }
}

fn merge_reasons(into: &mut Vec<String>, from: &[String]) {
    for r in from {
        if into.len() >= MAX_REASONS {
            break;
        }
        if !into.contains(r) {
            into.push(r.clone());
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

#[derive(Debug, Clone)]
struct Source {
    rule: usize,
    at: DateTime<Utc>,
    equal_values: Vec<Vec<String>>,
    description: String,
}

/// `span` stretched to include `time`.
fn widen(
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    time: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match span {
        Some((first, last)) => (first.min(time), last.max(time)),
        None => (time, time),
    }
}

/// Most remembered source alerts (oldest are forgotten first).
const MAX_SOURCES: usize = 10_000;

/// Applies `[[inhibit_rules]]`.
#[derive(Debug, Default)]
pub struct Inhibitor {
    rules: Vec<CompiledRule>,
    sources: Mutex<VecDeque<Source>>,
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
        Ok(Self {
            rules: compiled,
            sources: Mutex::new(VecDeque::new()),
        })
    }

    /// Why `alert` is muted at `now` (its event time), or `None`.
    pub fn is_inhibited(&self, alert: &Alert, now: DateTime<Utc>) -> Option<String> {
        if self.rules.is_empty() {
            return None;
        }
        let protocols = alert_protocols(alert);
        let ctx = MatchContext {
            event: &alert.event,
            priority: alert.priority,
            protocols: &protocols,
        };
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for source in sources.iter().rev() {
            let rule = &self.rules[source.rule];
            if now < source.at || now - source.at > rule.duration {
                continue;
            }
            if !rule.target.iter().all(|m| m.matches(&ctx)) {
                continue;
            }
            let equal = rule
                .equal
                .iter()
                .zip(&source.equal_values)
                .all(|((_, f), v)| {
                    let mine = f.values(&ctx);
                    !mine.is_empty() && mine == *v
                });
            if equal {
                return Some(format!(
                    "inhibited by {} (rule: {})",
                    source.description, rule.text
                ));
            }
        }
        None
    }

    /// Remembers `alert` as a source for every rule whose source matchers it satisfies
    /// (and whose `equal` fields it has).
    pub fn observe(&self, alert: &Alert) {
        let protocols = alert_protocols(alert);
        let ctx = MatchContext {
            event: &alert.event,
            priority: alert.priority,
            protocols: &protocols,
        };
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.source.iter().all(|m| m.matches(&ctx)) {
                continue;
            }
            let equal_values: Vec<Vec<String>> =
                rule.equal.iter().map(|(_, f)| f.values(&ctx)).collect();
            if equal_values.iter().any(Vec::is_empty) {
                continue;
            }
            let description = format!(
                "{} event {}{}",
                alert.priority,
                alert.event.id,
                rule.equal
                    .iter()
                    .zip(&equal_values)
                    .map(|((name, _), v)| format!(" {name}={}", v.join(",")))
                    .collect::<String>()
            );
            // Forget sources that have run out.
            let newest = alert.event.timestamp;
            sources.retain(|s| newest - s.at <= self.rules[s.rule].duration);
            if sources.len() >= MAX_SOURCES {
                sources.pop_front();
            }
            sources.push_back(Source {
                rule: i,
                at: alert.event.timestamp,
                equal_values,
                description,
            });
        }
    }
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

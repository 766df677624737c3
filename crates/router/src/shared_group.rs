//! One alert group as the replicas of a cluster share it (cluster mode keeps it in
//! JetStream KV and updates it by compare-and-set): the same timers and the same
//! notification as [`AlertGrouper`](crate::AlertGrouper), on wall-clock milliseconds
//! instead of monotonic instants (replicas share no monotonic clock).
//!
//! A flush is two steps so a replica that dies in the middle hands the group over
//! without losing or repeating anything:
//!
//! 1. [`SharedGroup::seal`] turns the pending alerts into the group's next notification
//!    and stores it in the group (`sealed`, numbered by [`SharedGroup::generation`]);
//!    alerts arriving afterwards are pending for the notification after it.
//! 2. Once every channel has it, [`SharedGroup::sent`] clears it. Until then a replica
//!    taking the group over sends the same sealed notification (same id, same
//!    generation), and per-channel "already sent" marks named by the generation skip the
//!    channels that already have it.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vowguard_core::Alert;

use crate::group::{GroupTiming, Reasons, stamp_group, widen};

/// Most alert ids a shared group remembers (the newest), so an alert redelivered to
/// another replica is not counted twice. The group's size beyond that is a count.
pub const MAX_REMEMBERED_ALERT_IDS: usize = 256;

/// One alert group shared by the replicas: the same timers and notification as
/// [`AlertGrouper`](crate::AlertGrouper), on wall-clock milliseconds. A flush is two
/// steps, so a replica that dies in the middle hands the group over without losing or
/// repeating anything: [`seal`](Self::seal) stores the next notification in the group
/// (numbered by [`generation`](Self::generation); later alerts wait for the one after),
/// and once every channel has it, [`sent`](Self::sent) clears it. Until then, a replica
/// taking the group over sends the same sealed notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedGroup {
    /// The group key.
    pub key: String,
    /// The notifiers the group's notifications go to.
    pub notifiers: Vec<String>,
    group_wait_ms: u64,
    group_interval_ms: u64,
    repeat_interval_ms: u64,
    forget_after_ms: u64,
    /// The newest alert taken in (the notification stands for the group as this alert).
    latest: Alert,
    reasons: Reasons,
    /// Alerts taken in since the last notification was sealed.
    pending: u64,
    last_reasons: Vec<String>,
    last_size: u64,
    repeats: u32,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    last_span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Ids of the newest alerts taken in, oldest first (at most
    /// [`MAX_REMEMBERED_ALERT_IDS`]).
    recent_ids: VecDeque<String>,
    /// Unix milliseconds when the next notification (or repeat) is due.
    next_flush_ms: i64,
    last_sent_ms: Option<i64>,
    last_alert_ms: i64,
    /// Number of notifications sealed so far.
    generation: u64,
    /// The notification being sent (generation [`Self::generation`]), until every channel
    /// has it.
    sealed: Option<Alert>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn plus(at_ms: i64, d_ms: u64) -> i64 {
    at_ms.saturating_add(i64::try_from(d_ms).unwrap_or(i64::MAX))
}

impl SharedGroup {
    /// A new group `key` holding `alert`, first notified `group_wait` after `now_ms`.
    pub fn new(
        key: String,
        notifiers: Vec<String>,
        alert: Alert,
        timing: GroupTiming,
        now_ms: i64,
    ) -> Self {
        let span = Some(widen(None, alert.event.timestamp));
        let mut group = Self {
            key,
            notifiers,
            group_wait_ms: ms(timing.group_wait),
            group_interval_ms: ms(timing.group_interval),
            repeat_interval_ms: ms(timing.repeat_interval),
            forget_after_ms: ms(timing.forget_after),
            reasons: Reasons::from_alert(&alert.reasons),
            recent_ids: VecDeque::from([alert.id.clone()]),
            latest: alert,
            pending: 1,
            last_reasons: Vec::new(),
            last_size: 0,
            repeats: 0,
            span,
            last_span: None,
            next_flush_ms: now_ms,
            last_sent_ms: None,
            last_alert_ms: now_ms,
            generation: 0,
            sealed: None,
        };
        group.next_flush_ms = plus(now_ms, group.group_wait_ms);
        group
    }

    /// Takes `alert` in at `now_ms`. False when it already was (the same alert id, among
    /// the newest [`MAX_REMEMBERED_ALERT_IDS`]): a redelivery, nothing changed.
    pub fn offer(&mut self, alert: Alert, timing: GroupTiming, now_ms: i64) -> bool {
        if self.recent_ids.contains(&alert.id) {
            return false;
        }
        self.group_wait_ms = ms(timing.group_wait);
        self.group_interval_ms = ms(timing.group_interval);
        self.repeat_interval_ms = ms(timing.repeat_interval);
        self.forget_after_ms = ms(timing.forget_after);
        if self.recent_ids.len() >= MAX_REMEMBERED_ALERT_IDS {
            self.recent_ids.pop_front();
        }
        self.recent_ids.push_back(alert.id.clone());
        self.reasons.merge(&alert.reasons);
        self.span = Some(widen(self.span, alert.event.timestamp));
        self.latest = alert;
        self.pending = self.pending.saturating_add(1);
        self.last_alert_ms = now_ms;
        if let Some(sent) = self.last_sent_ms {
            self.next_flush_ms = self.next_flush_ms.min(plus(sent, self.group_interval_ms));
        }
        true
    }

    /// Alerts taken in since the last notification was sealed.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Number of notifications sealed so far; the sealed one has this number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The notification sealed and not yet sent to every channel.
    pub fn sealed(&self) -> Option<&Alert> {
        self.sealed.as_ref()
    }

    /// Unix milliseconds from which the group has something to send: now (`i64::MIN`)
    /// while a sealed notification waits, else its next notification or repeat.
    pub fn due_at_ms(&self) -> i64 {
        if self.sealed.is_some() {
            i64::MIN
        } else {
            self.next_flush_ms
        }
    }

    /// Seals the group's next notification at `now_ms` when it is due: a notification for
    /// the pending alerts once `group_wait` / `group_interval` passed, or a repeat of the
    /// last one once `repeat_interval` passed (like
    /// [`AlertGrouper::due`](crate::AlertGrouper::due)). A notification already sealed is
    /// returned as it is. `None` when nothing is due.
    pub fn seal(&mut self, now_ms: i64) -> Option<Alert> {
        if let Some(sealed) = &self.sealed {
            return Some(sealed.clone());
        }
        if self.next_flush_ms > now_ms {
            return None;
        }
        let mut alert = self.latest.clone();
        let repeat = self.pending == 0;
        let size = if repeat { self.last_size } else { self.pending };
        let span = if repeat {
            self.last_span
        } else {
            self.span.take()
        };
        stamp_group(&mut alert, &self.key, size, span);
        self.last_span = span;
        if repeat {
            self.repeats = self.repeats.saturating_add(1);
            alert.params.insert("repeat".into(), Value::Bool(true));
            alert.id = Alert::derive_id(&[&self.latest.id, "repeat", &self.repeats.to_string()]);
            alert.reasons = self.last_reasons.clone();
        } else {
            self.repeats = 0;
            alert.reasons = std::mem::take(&mut self.reasons).render();
            self.last_reasons = alert.reasons.clone();
        }
        self.last_size = size;
        self.pending = 0;
        self.last_sent_ms = Some(now_ms);
        self.next_flush_ms = plus(now_ms, self.repeat_interval_ms);
        self.generation = self.generation.saturating_add(1);
        self.sealed = Some(alert.clone());
        Some(alert)
    }

    /// Every channel has notification `generation`: it is no longer sealed. False when
    /// that is not the sealed one (already cleared).
    pub fn sent(&mut self, generation: u64) -> bool {
        if self.generation == generation && self.sealed.is_some() {
            self.sealed = None;
            true
        } else {
            false
        }
    }

    /// True when nothing is pending or sealed and no alert came for `forget_after`: the
    /// group can be deleted (no more repeats).
    pub fn forgotten(&self, now_ms: i64) -> bool {
        self.sealed.is_none()
            && self.pending == 0
            && now_ms.saturating_sub(self.last_alert_ms)
                >= i64::try_from(self.forget_after_ms).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vowguard_core::{Category, Event, Priority, Severity};

    fn alert(id: &str, reason: &str, minute: u32) -> Alert {
        let mut event = Event::new(Category::Authentication, "login", Severity::High);
        event.timestamp =
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 20, 14, minute, 0).unwrap();
        let mut a = Alert::new(Arc::new(event), Priority::P1High, "r");
        a.id = id.into();
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

    const S: i64 = 1000;

    /// The same alerts at the same times give the same notification as the
    /// single-process grouper.
    #[test]
    fn it_notifies_like_the_single_process_grouper() {
        let mut g = SharedGroup::new(
            "k".into(),
            vec!["n".into()],
            alert("a1", "x", 5),
            timing(),
            0,
        );
        assert!(g.offer(alert("a2", "y", 3), timing(), 10 * S));
        assert!(
            !g.offer(alert("a2", "y", 3), timing(), 11 * S),
            "a redelivery"
        );
        assert_eq!(g.due_at_ms(), 30 * S);
        assert_eq!(g.seal(29 * S), None);
        let sent = g.seal(30 * S).expect("due");
        assert_eq!(sent.id, "a2");
        assert_eq!(sent.params["group_size"], 2);
        assert_eq!(sent.params["group_key"], "k");
        assert_eq!(sent.reasons, ["x", "y"]);
        assert_eq!(sent.params["group_first_seen"], "2026-06-20T14:03:00+00:00");
        assert_eq!(sent.params["group_last_seen"], "2026-06-20T14:05:00+00:00");
        assert_eq!(g.generation(), 1);
        // Sealed until sent: the same notification again (a takeover), due at once.
        assert_eq!(g.due_at_ms(), i64::MIN);
        assert_eq!(g.seal(31 * S), Some(sent));
        assert_eq!(g.generation(), 1);
        // An alert arriving meanwhile waits for the next notification.
        assert!(g.offer(alert("a3", "z", 9), timing(), 40 * S));
        assert!(!g.sent(0));
        assert!(g.sent(1));
        assert_eq!(g.due_at_ms(), 330 * S, "group_interval after the last send");
        let next = g.seal(330 * S).expect("due");
        assert_eq!(next.params["group_size"], 1);
        assert_eq!(next.reasons, ["z"]);
        assert_eq!(g.generation(), 2);
        assert!(g.sent(2));
        // Unchanged: a repeat after repeat_interval, with its own id.
        let repeat = g.seal(330 * S + 3600 * S).expect("repeat");
        assert_eq!(repeat.params["repeat"], true);
        assert_eq!(repeat.params["group_size"], 1);
        assert_ne!(repeat.id, "a3");
        assert!(g.sent(3));
        assert!(!g.forgotten(40 * S + 7199 * S));
        assert!(g.forgotten(40 * S + 7200 * S));
    }

    #[test]
    fn remembered_ids_and_reasons_are_bounded() {
        let mut g = SharedGroup::new("k".into(), vec![], alert("id-0", "r 0", 0), timing(), 0);
        for i in 1..2000u32 {
            assert!(g.offer(
                alert(&format!("id-{i}"), &format!("reason {i}"), 0),
                timing(),
                1
            ));
        }
        assert_eq!(g.recent_ids.len(), MAX_REMEMBERED_ALERT_IDS);
        assert_eq!(g.pending(), 2000);
        let sent = g.seal(30 * S).unwrap();
        assert_eq!(sent.params["group_size"], 2000);
        assert!(sent.reasons.len() <= 20, "{:?}", sent.reasons);
        assert!(serde_json::to_vec(&g).unwrap().len() < 64 * 1024);
    }
}

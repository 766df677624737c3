//! Escalation of GDPR notification deadlines.
//!
//! While the server runs, confirmed breaches whose Art. 33 deadline approaches are turned
//! into security events (`gdpr.breach_deadline_approaching`, or `..._missed` once overdue)
//! carrying the label `breach_deadline_in` (seconds left, negative when overdue). They flow
//! like any event (journal, SIEMs, routing), so routes can page on
//! `breach_deadline_in < 24h`. Each breach is escalated once per threshold crossed (48 h,
//! 24 h, 12 h, 6 h, 1 h, overdue); what was escalated is remembered in
//! `<data_dir>/state/breach-escalations.json`, so a restart does not page again.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vowguard_core::{Category, Event, Severity, SnapshotFile};
use vowguard_pipeline::Pipeline;
use vowguard_router::BREACH_DEADLINE_LABEL;
use vowguard_store::{AuditSource, Breach, BreachStorage};

/// Thresholds, in seconds before the deadline, at which a breach is escalated again; the
/// last one (0) is "overdue".
pub const THRESHOLDS: [i64; 6] = [48 * 3600, 24 * 3600, 12 * 3600, 6 * 3600, 3600, 0];

/// How often the register is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Per breach id, the index in [`THRESHOLDS`] of the last threshold escalated.
pub type Escalated = BTreeMap<String, usize>;

/// The escalation due for `breach` at `now`, given what was escalated before: the index of
/// the tightest threshold crossed, if it is tighter than the last one escalated.
pub fn due(breach: &Breach, now: DateTime<Utc>, escalated: &Escalated) -> Option<usize> {
    let left = breach.deadline_in(now)?.num_seconds();
    let crossed = THRESHOLDS
        .iter()
        .rposition(|t| left < *t || (*t == 0 && left <= 0))?;
    match escalated.get(&breach.id) {
        Some(done) if *done >= crossed => None,
        _ => Some(crossed),
    }
}

/// The event that escalates `breach` at threshold `index`.
pub fn escalation_event(breach: &Breach, now: DateTime<Utc>, index: usize) -> Event {
    let left = breach
        .deadline_in(now)
        .map(|d| d.num_seconds())
        .unwrap_or_default();
    let overdue = left <= 0;
    let severity = if overdue || THRESHOLDS[index] <= 6 * 3600 {
        Severity::Critical
    } else if THRESHOLDS[index] <= 24 * 3600 {
        Severity::High
    } else {
        Severity::Medium
    };
    let action = if overdue {
        "gdpr.breach_deadline_missed"
    } else {
        "gdpr.breach_deadline_approaching"
    };
    let mut event = Event::new(Category::DataAccess, action, severity);
    event.timestamp = now;
    event.wedding_id = breach.wedding_id.clone();
    event.resource_type = Some("breach_register".into());
    event
        .labels
        .insert(BREACH_DEADLINE_LABEL.into(), left.to_string());
    event.labels.insert("breach_id".into(), breach.id.clone());
    if let Some(deadline) = breach.deadline {
        event
            .labels
            .insert("breach_deadline".into(), deadline.to_rfc3339());
    }
    event
}

/// Checks the register every [`CHECK_INTERVAL`] until `stop`, submitting escalation events.
/// Each check first brings `storage` up to date from `source` (the audit log), so breaches
/// the router opened are seen whichever storage keeps the register.
pub async fn watch(
    storage: Arc<dyn BreachStorage>,
    source: Arc<dyn AuditSource>,
    pipeline: Arc<Pipeline>,
    data_dir: &Path,
    stop: impl std::future::Future<Output = ()>,
) {
    let memory = SnapshotFile::in_data_dir(data_dir, "breach-escalations");
    let mut escalated: Escalated = match memory.load() {
        Ok(found) => found.unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "breach escalations: cannot read what was escalated; starting afresh");
            Escalated::new()
        }
    };
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = storage.catch_up(source.as_ref()).await {
            tracing::warn!(storage = storage.location(), error = %e, "breach escalations: cannot catch the register up with the audit log; checking what it holds");
        }
        let now = Utc::now();
        let breaches = match storage
            .breaches_due_within(now, chrono::Duration::seconds(THRESHOLDS[0]))
            .await
        {
            Ok(breaches) => breaches,
            Err(e) => {
                tracing::warn!(error = %e, "breach escalations: register unavailable; trying again");
                continue;
            }
        };
        let mut changed = false;
        for breach in &breaches {
            let Some(index) = due(breach, now, &escalated) else {
                continue;
            };
            match pipeline.submit(escalation_event(breach, now, index)).await {
                Ok(_) => {
                    escalated.insert(breach.id.clone(), index);
                    changed = true;
                }
                Err(e) => {
                    tracing::error!(breach_id = breach.id.as_str(), error = %e, "breach escalation not submitted");
                }
            }
        }
        // Forget breaches no longer pending (notified, closed).
        let before = escalated.len();
        escalated.retain(|id, _| breaches.iter().any(|b| &b.id == id));
        changed |= escalated.len() != before;
        if changed && let Err(e) = memory.store(&escalated) {
            tracing::error!(error = %e, "breach escalations: cannot remember what was escalated");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_router::{MatchContext, Matcher};

    fn breach(deadline: &str) -> Breach {
        let mut b: Breach = serde_json::from_value(serde_json::json!({
            "id": "b-1",
            "status": "confirmed",
            "detected_at": "2026-06-13T09:30:00Z",
            "updated_at": "2026-06-13T10:00:00Z",
        }))
        .unwrap_or_else(|e| panic!("a minimal breach deserialises: {e}"));
        b.confirmed_at = Some("2026-06-13T10:00:00Z".parse().unwrap());
        b.deadline = Some(deadline.parse().unwrap());
        b.wedding_id = Some("w-1".into());
        b
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn escalates_once_per_threshold_crossed() {
        let b = breach("2026-06-16T10:00:00Z");
        let mut escalated = Escalated::new();
        // 60 h left: nothing yet.
        assert_eq!(due(&b, at("2026-06-13T22:00:00Z"), &escalated), None);
        // 47 h left: the 48 h threshold.
        assert_eq!(due(&b, at("2026-06-14T11:00:00Z"), &escalated), Some(0));
        escalated.insert("b-1".into(), 0);
        assert_eq!(
            due(&b, at("2026-06-14T12:00:00Z"), &escalated),
            None,
            "once"
        );
        // 23 h left.
        assert_eq!(due(&b, at("2026-06-15T11:00:00Z"), &escalated), Some(1));
        // Straight from 24 h to 30 min left (the server was down): the tightest one.
        escalated.insert("b-1".into(), 1);
        assert_eq!(due(&b, at("2026-06-16T09:30:00Z"), &escalated), Some(4));
        // Overdue.
        escalated.insert("b-1".into(), 4);
        assert_eq!(due(&b, at("2026-06-16T10:00:00Z"), &escalated), Some(5));
        escalated.insert("b-1".into(), 5);
        assert_eq!(due(&b, at("2026-06-18T10:00:00Z"), &escalated), None);
    }

    #[test]
    fn the_event_matches_deadline_routes() {
        let b = breach("2026-06-16T10:00:00Z");
        let now = at("2026-06-15T11:00:00Z");
        let event = escalation_event(&b, now, 1);
        assert_eq!(event.action, "gdpr.breach_deadline_approaching");
        assert_eq!(event.severity, Severity::High);
        assert_eq!(event.labels[BREACH_DEADLINE_LABEL], (23 * 3600).to_string());
        let ctx = MatchContext {
            event: &event,
            priority: vowguard_core::Priority::P1High,
            protocols: &[],
        };
        assert!(
            Matcher::parse("breach_deadline_in < 24h")
                .unwrap()
                .matches(&ctx)
        );
        assert!(
            !Matcher::parse("breach_deadline_in < 12h")
                .unwrap()
                .matches(&ctx)
        );
        let overdue = escalation_event(&b, at("2026-06-16T11:00:00Z"), 5);
        assert_eq!(overdue.action, "gdpr.breach_deadline_missed");
        assert_eq!(overdue.severity, Severity::Critical);
        assert_eq!(overdue.labels[BREACH_DEADLINE_LABEL], "-3600");
    }
}

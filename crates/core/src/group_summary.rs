//! [`GroupSummary`]: how many events a grouped alert stands for and over what time, read
//! from the params the router's grouper sets, so every channel says it the same way.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::alert::Alert;

/// How many events an alert stands for (`params["group_size"]`) and the event times of the
/// earliest and latest of them (`params["group_first_seen"]`, `params["group_last_seen"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSummary {
    /// Events the alert stands for (1 for an alert that was not grouped with others).
    pub size: u64,
    /// The earliest event's time, when known.
    pub first_seen: Option<DateTime<Utc>>,
    /// The latest event's time, when known.
    pub last_seen: Option<DateTime<Utc>>,
}

impl GroupSummary {
    /// The summary of `alert`; `None` when the alert went through no grouping (no
    /// `group_size` param).
    pub fn of(alert: &Alert) -> Option<Self> {
        let size = alert.params.get("group_size").and_then(Value::as_u64)?;
        let time = |name: &str| {
            alert
                .param_str(name)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Some(Self {
            size,
            first_seen: time("group_first_seen"),
            last_seen: time("group_last_seen"),
        })
    }

    /// One line, e.g. `12 events from 2026-06-20 14:03:07 to 14:05:00 UTC`, `1 event at
    /// 2026-06-20 14:03:07 UTC`, or `12 events` when the times are unknown.
    pub fn text(&self) -> String {
        let events = if self.size == 1 { "event" } else { "events" };
        match (self.first_seen, self.last_seen) {
            (Some(first), Some(last)) if first == last => format!(
                "{} {events} at {} UTC",
                self.size,
                first.format("%Y-%m-%d %H:%M:%S")
            ),
            (Some(first), Some(last)) => {
                let last_format = if first.date_naive() == last.date_naive() {
                    "%H:%M:%S"
                } else {
                    "%Y-%m-%d %H:%M:%S"
                };
                format!(
                    "{} {events} from {} to {} UTC",
                    self.size,
                    first.format("%Y-%m-%d %H:%M:%S"),
                    last.format(last_format)
                )
            }
            _ => format!("{} {events}", self.size),
        }
    }

    /// A short form for SMS: `12 events 14:03-14:05Z`, `12 events`.
    pub fn short_text(&self) -> String {
        let events = if self.size == 1 { "event" } else { "events" };
        match (self.first_seen, self.last_seen) {
            (Some(first), Some(last)) if first != last => format!(
                "{} {events} {}-{}Z",
                self.size,
                first.format("%H:%M"),
                last.format("%H:%M")
            ),
            _ => format!("{} {events}", self.size),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Category, Event, Priority, Severity};

    fn alert(params: &[(&str, Value)]) -> Alert {
        let mut a = Alert::new(
            Arc::new(Event::new(
                Category::Authentication,
                "login",
                Severity::High,
            )),
            Priority::P1High,
            "r",
        );
        for (k, v) in params {
            a.params.insert((*k).into(), v.clone());
        }
        a
    }

    #[test]
    fn reads_the_grouper_params() {
        assert_eq!(GroupSummary::of(&alert(&[])), None);
        let s = GroupSummary::of(&alert(&[
            ("group_size", Value::from(12)),
            ("group_first_seen", Value::from("2026-06-20T14:03:07+00:00")),
            ("group_last_seen", Value::from("2026-06-20T14:05:00Z")),
        ]))
        .unwrap();
        assert_eq!(
            s.text(),
            "12 events from 2026-06-20 14:03:07 to 14:05:00 UTC"
        );
        assert_eq!(s.short_text(), "12 events 14:03-14:05Z");
        let s = GroupSummary::of(&alert(&[("group_size", Value::from(1))])).unwrap();
        assert_eq!(s.text(), "1 event");
        let s = GroupSummary::of(&alert(&[
            ("group_size", Value::from(2)),
            ("group_first_seen", Value::from("2026-06-20T23:59:00Z")),
            ("group_last_seen", Value::from("2026-06-21T00:01:00Z")),
        ]))
        .unwrap();
        assert_eq!(
            s.text(),
            "2 events from 2026-06-20 23:59:00 to 2026-06-21 00:01:00 UTC"
        );
    }
}

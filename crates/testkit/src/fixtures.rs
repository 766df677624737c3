//! Events and alerts for tests, including hostile text every channel must neutralise.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use vowguard_core::{Alert, Category, Event, Outcome, Priority, Severity};

/// Text an attacker could put in any event field: chat mentions, markup, a header
/// injection, a link, quotes and backslashes, and an invalid-looking surrogate escape.
pub const HOSTILE: &str = "<!channel> <@U0ALL> &amp; <script>alert(1)</script>\r\nBcc: victim@example.org\n[click](http://evil.example) \"q\" \\ | = ^ \u{1F480} \\ud800";

/// A fixed event (id and timestamp fixed, so encoders can be compared byte for byte).
pub fn event(n: usize) -> Event {
    let mut e = Event::new(Category::Authentication, "login", Severity::High);
    e.id = format!("evt-{n:04}");
    e.timestamp = Utc.with_ymd_and_hms(2026, 6, 20, 14, 3, 7).unwrap()
        + chrono::Duration::milliseconds(123 + n as i64);
    e.outcome = Outcome::Failure;
    e.risk_score = Some(72);
    e.message = Some(format!("failed login {n} for planner account"));
    e.user_id = Some("planner-17".into());
    e.user_name = Some("alex.planner".into());
    e.source_ip = Some("203.0.113.7".parse().unwrap());
    e.wedding_id = Some("w-2026-06-20-smith".into());
    e.labels.insert("env".into(), "test".into());
    e
}

/// An event whose free-text fields all carry [`HOSTILE`] text (and a 10 kB message).
pub fn hostile_event() -> Event {
    let mut e = event(9999);
    e.action = format!("login {HOSTILE}");
    e.message = Some(format!("{HOSTILE} {}", "A".repeat(10_000)));
    e.user_name = Some(HOSTILE.to_owned());
    e.user_agent = Some(HOSTILE.to_owned());
    e.resource_id = Some(HOSTILE.to_owned());
    e.labels.insert("note".into(), HOSTILE.to_owned());
    e
}

/// A P0 alert for [`event`].
pub fn alert(n: usize) -> Alert {
    let mut a = Alert::new(Arc::new(event(n)), Priority::P0Critical, "critical");
    a.id = format!("alert-{n:04}");
    a.dedup_key = "vowguard-critical-0123456789abcdef".into();
    a.reasons = vec!["severity critical → P0_CRITICAL".into()];
    a
}

/// A P0 alert for [`hostile_event`].
pub fn hostile_alert() -> Alert {
    let mut a = alert(0);
    a.event = Arc::new(hostile_event());
    a
}

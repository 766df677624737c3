//! A grouped alert (one notification for many events) says how many events it stands for
//! and over what time.

use vowguard_core::Alert;
use vowguard_testkit::fixtures;

const GROUP_TEXT: &str = "12 events from 2026-06-20 14:00:00 to 14:03:07 UTC";

fn grouped() -> Alert {
    let mut a = fixtures::alert(1);
    a.params.insert("group_size".into(), 12.into());
    a.params
        .insert("group_first_seen".into(), "2026-06-20T14:00:00Z".into());
    a.params
        .insert("group_last_seen".into(), "2026-06-20T14:03:07Z".into());
    a
}

#[test]
fn pagerduty_shows_the_group() {
    let details = vowguard_pagerduty::encode::custom_details(&grouped());
    assert_eq!(details["group"]["size"], 12);
    assert_eq!(details["group"]["first_seen"], "2026-06-20T14:00:00Z");
    assert_eq!(details["group"]["last_seen"], "2026-06-20T14:03:07Z");
    assert_eq!(details["group"]["summary"], GROUP_TEXT);
    let summary = vowguard_pagerduty::encode::summary(&grouped());
    assert!(
        summary.starts_with(&format!("[P0] [{GROUP_TEXT}] ")),
        "{summary}"
    );
}

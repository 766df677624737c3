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
fn sms_shows_the_group() {
    let options = vowguard_sms::MessageOptions::default();
    let text = vowguard_sms::build_message(&grouped(), &options);
    assert!(text.contains("(12 events 14:00-14:03Z)"), "{text}");
    assert!(GROUP_TEXT.starts_with("12 events"));
    let single = vowguard_sms::build_message(&fixtures::alert(1), &options);
    assert!(!single.contains("events"), "{single}");
}

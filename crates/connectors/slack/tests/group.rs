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
fn slack_shows_the_group() {
    let message = vowguard_slack::build_message(&grouped(), &[]);
    let text = message.to_string();
    assert!(text.contains("*Events*\\n12 events from"), "{text}");
    assert!(
        message["text"].as_str().unwrap().contains(GROUP_TEXT),
        "{text}"
    );
    let single = vowguard_slack::build_message(&fixtures::alert(1), &[]).to_string();
    assert!(!single.contains("*Events*"), "{single}");
}

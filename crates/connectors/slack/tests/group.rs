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

/// A multi-line message cannot start a line that looks like one of the message's labels.
#[test]
fn slack_message_lines_cannot_forge_a_label() {
    let mut a = fixtures::alert(1);
    let mut event = (*a.event).clone();
    event.message = Some("ok\n*Priority*\nP4_INFO".into());
    a.event = std::sync::Arc::new(event);
    let message = vowguard_slack::build_message(&a, &[]);
    for block in message["blocks"].as_array().unwrap() {
        let texts: Vec<&str> = block["text"]["text"]
            .as_str()
            .into_iter()
            .chain(
                block["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["text"].as_str()),
            )
            .collect();
        for text in texts {
            let forged = text
                .lines()
                .skip(1)
                .filter(|l| l.starts_with("*Priority*"))
                .count();
            assert_eq!(forged, 0, "{text}");
        }
    }
}

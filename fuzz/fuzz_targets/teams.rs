//! Teams messages with an Adaptive Card, checked with serde_json: valid JSON, one card
//! attachment, and every text the card renders as Markdown (TextBlock text, fact titles and
//! values, button titles) inert: no link, emphasis, heading, code or markup characters, no
//! `://`, no line break or invisible character. The buttons are exactly the configured ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_fuzz::FuzzAlert;
use vowguard_teams::{CardLink, encode_message};

fn inert(text: &str) {
    assert!(
        !text.contains(['[', ']', '<', '>', '*', '`', '#', '&', '\\', '~']),
        "markdown or markup in card text: {text:?}"
    );
    assert!(!text.contains("://"), "a URL in card text: {text:?}");
    assert!(
        !text.chars().any(|c| c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{2028}' | '\u{2029}')),
        "control or invisible character in card text: {text:?}"
    );
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '_' {
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            let after = chars.get(i + 1);
            assert!(
                before.is_some_and(|c| c.is_alphanumeric())
                    && after.is_some_and(|c| c.is_alphanumeric()),
                "`_` that can start emphasis: {text:?}"
            );
        }
    }
}

fuzz_target!(|input: FuzzAlert| {
    let links = [CardLink::new(
        "Runbook",
        "https://runbook.example.org/vowguard",
    )];
    let alert = input.build();
    let bytes = encode_message(&alert, &links);
    let message: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    assert_eq!(message["type"], "message");
    let attachments = message["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    for element in card["body"].as_array().expect("body") {
        match element["type"].as_str() {
            Some("TextBlock") => inert(element["text"].as_str().expect("text")),
            Some("FactSet") => {
                for fact in element["facts"].as_array().expect("facts") {
                    inert(fact["title"].as_str().expect("title"));
                    inert(fact["value"].as_str().expect("value"));
                }
            }
            other => panic!("unexpected element {other:?}"),
        }
    }
    let actions = card["actions"].as_array().expect("the configured button");
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["url"], "https://runbook.example.org/vowguard");
    inert(actions[0]["title"].as_str().expect("title"));
});

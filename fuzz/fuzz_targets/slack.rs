//! Slack Block Kit messages, checked with serde_json: valid JSON, at most 50 blocks, every
//! mrkdwn object `verbatim`, link unfurling off, and no Slack markup (`<!channel>`,
//! `<@U...>`, `<url|text>` links) anywhere but the configured mentions: once those are
//! removed, no text holds a `<` or `>`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_core::AlertAction;
use vowguard_fuzz::{FuzzAlert, strings_under};
use vowguard_slack::{Mention, build_message};

#[derive(Debug, Arbitrary)]
struct Input {
    mentions: u8,
    alert: FuzzAlert,
}

fn mrkdwn_objects<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                out.push(value);
            }
            map.values().for_each(|v| mrkdwn_objects(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| mrkdwn_objects(v, out)),
        _ => {}
    }
}

fuzz_target!(|input: Input| {
    let all = [
        Mention::Channel,
        Mention::Here,
        Mention::User("U123ABC".into()),
        Mention::Group("S0614TZR7".into()),
    ];
    let mentions: Vec<Mention> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| input.mentions & (1 << i) != 0)
        .map(|(_, m)| m.clone())
        .collect();
    let alert = input.alert.build();
    let message = build_message(&alert, &mentions);
    let bytes = serde_json::to_vec(&message).expect("serialises");
    let message: Value = serde_json::from_slice(&bytes).expect("valid JSON");

    assert_eq!(message["unfurl_links"], false);
    assert_eq!(message["unfurl_media"], false);
    let blocks = message["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    let mut objects = Vec::new();
    mrkdwn_objects(&message, &mut objects);
    for object in objects {
        assert_eq!(
            object["verbatim"], true,
            "mrkdwn without verbatim: {object}"
        );
    }

    let rendered: Vec<String> = mentions.iter().map(Mention::render).collect();
    let mut texts = Vec::new();
    strings_under(&message, "text", &mut texts);
    assert!(!texts.is_empty());
    let mut mentioned = false;
    for text in texts {
        let mut rest = text.clone();
        for r in &rendered {
            if rest.contains(r.as_str()) {
                mentioned = true;
                rest = rest.replace(r.as_str(), "");
            }
        }
        assert!(
            !rest.contains(['<', '>']),
            "markup that was not configured: {text:?}"
        );
    }
    if alert.action != AlertAction::Trigger {
        assert!(!mentioned, "an acknowledge/resolve message notifies people");
    }
});

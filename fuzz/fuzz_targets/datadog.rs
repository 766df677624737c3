//! Datadog log entries, checked with serde_json: valid JSON, one entry per event (an array
//! body holds exactly as many), the configured metadata unchanged, `ddtags` holding exactly
//! the expected tags (event text cannot add a tag with a comma), the message carried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_datadog::LogEncoder;
use vowguard_datadog::testing::array_body;
use vowguard_fuzz::FuzzEvent;

fuzz_target!(|input: (FuzzEvent, FuzzEvent)| {
    let encoder = LogEncoder::new(
        "vowguard",
        "wedding-platform",
        "gw1",
        &["env:prod".to_owned(), "team:secops".to_owned()],
    );
    let events = [input.0.build(), input.1.build()];
    let mut entries = Vec::new();
    for event in &events {
        let Ok(bytes) = encoder.encode(event) else {
            // Only refused when over Datadog's size limit.
            assert!(serde_json::to_vec(event).unwrap().len() > 300_000);
            continue;
        };
        let entry: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(entry["ddsource"], "vowguard");
        assert_eq!(entry["service"], "wedding-platform");
        assert_eq!(entry["hostname"], "gw1");
        assert_eq!(entry["message"], event.summary().as_str());
        assert_eq!(entry["vowguard"]["id"], event.id.as_str());
        let tags: Vec<&str> = entry["ddtags"]
            .as_str()
            .expect("ddtags")
            .split(',')
            .collect();
        let wedding = event
            .enrichment
            .wedding
            .as_ref()
            .map(|w| w.wedding_id.as_str())
            .or(event.wedding_id.as_deref());
        assert_eq!(
            tags.len(),
            4 + usize::from(wedding.is_some()),
            "tags {tags:?}"
        );
        assert_eq!(
            tags[..4],
            [
                "env:prod",
                "team:secops",
                &format!("severity:{}", event.severity),
                &format!("category:{}", event.category)
            ]
        );
        if wedding.is_some() {
            assert!(tags[4].starts_with("wedding_id:"), "{tags:?}");
        }
        entries.push(bytes);
    }
    let body = array_body(entries.iter().map(Vec::as_slice));
    let parsed: Value = serde_json::from_slice(&body).expect("array body is JSON");
    assert_eq!(parsed.as_array().expect("array").len(), entries.len());
});

//! PagerDuty Events API v2 bodies, checked with serde_json: valid JSON within the 512 KB
//! limit, routing key and action as configured whatever the event holds, the summary
//! within 1024 characters, the dedup key present.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_core::AlertAction;
use vowguard_fuzz::FuzzAlert;
use vowguard_pagerduty::{EventTemplate, encode_event};

fuzz_target!(|input: FuzzAlert| {
    let alert = input.build();
    let bytes = encode_event(
        &alert,
        "R0UTINGKEY0123456789012345678901",
        &EventTemplate::default(),
    )
    .expect("an alert always fits once shrunk");
    assert!(bytes.len() <= 512 * 1024);
    let body: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    assert_eq!(body["routing_key"], "R0UTINGKEY0123456789012345678901");
    let action = match alert.action {
        AlertAction::Trigger => "trigger",
        AlertAction::Acknowledge => "acknowledge",
        AlertAction::Resolve => "resolve",
    };
    assert_eq!(body["event_action"], action);
    let dedup = body["dedup_key"].as_str().expect("dedup_key");
    assert!(!dedup.is_empty() && dedup.chars().count() <= 255);
    if alert.action == AlertAction::Trigger {
        let summary = body["payload"]["summary"].as_str().expect("summary");
        assert!(!summary.is_empty() && summary.chars().count() <= 1024);
        assert_eq!(body["payload"]["source"], "vowguard");
    }
});

//! Splunk HEC envelopes, checked with serde_json: valid UTF-8 JSON, one envelope per event
//! (a batch body is a stream of exactly as many JSON values), no raw CR/LF, metadata equal
//! to the configured values whatever the event holds, and the event itself round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_core::{EncodedEvent, Event};
use vowguard_fuzz::{FuzzEvent, has_cr_lf};
use vowguard_splunk::HecEncoder;
use vowguard_splunk::testing::batch_body;

fuzz_target!(|input: (FuzzEvent, FuzzEvent)| {
    let encoder = HecEncoder::new("gw1", "vowguard", "vowguard:event", Some("security".into()));
    let events = [input.0.build(), input.1.build()];
    let mut encoded = Vec::new();
    for event in &events {
        let bytes = encoder.encode(event).expect("HEC encoding never fails");
        assert!(!has_cr_lf(&bytes), "raw CR/LF in an envelope");
        let text = std::str::from_utf8(&bytes).expect("UTF-8");
        let envelope: Value = serde_json::from_str(text).expect("one JSON value");
        let obj = envelope.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "event",
                "fields",
                "host",
                "index",
                "source",
                "sourcetype",
                "time"
            ]
        );
        assert_eq!(obj["host"], "gw1");
        assert_eq!(obj["source"], "vowguard");
        assert_eq!(obj["sourcetype"], "vowguard:event");
        assert_eq!(obj["index"], "security");
        assert!(obj["time"].is_number());
        assert!(
            obj["fields"]
                .as_object()
                .expect("fields object")
                .values()
                .all(Value::is_string),
            "indexed fields are strings"
        );
        let back: Event = serde_json::from_value(obj["event"].clone()).expect("the event parses");
        assert_eq!(&back, event, "the event changed on the way");
        encoded.push(EncodedEvent {
            event_id: event.id.clone(),
            bytes,
        });
    }
    let refs: Vec<&EncodedEvent> = encoded.iter().collect();
    let body = batch_body(&refs);
    let values: Vec<Value> = serde_json::Deserializer::from_slice(&body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("the batch body is a stream of JSON values");
    assert_eq!(values.len(), events.len(), "one envelope per event");
    for (value, event) in values.iter().zip(&events) {
        assert_eq!(value["event"]["id"], event.id.as_str());
    }
});

//! The `POST /v1/events` body: the same steps the handler takes (JSON value, one object or
//! an array, each item through the ingest parser) over arbitrary bytes. Never panics; each
//! item is accepted or rejected with an error naming the field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_core::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return,
    };
    let total = items.len();
    let mut accepted = 0usize;
    let mut rejected = 0usize;
    for item in items {
        match Event::from_json_value(item) {
            Ok(event) => {
                accepted += 1;
                assert!(!event.id.is_empty());
            }
            Err(e) => {
                rejected += 1;
                let _ = serde_json::json!({ "error": e.to_string() });
            }
        }
    }
    assert_eq!(accepted + rejected, total);
});

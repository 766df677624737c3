//! Elasticsearch bulk NDJSON (ECS documents), checked with serde_json: exactly two lines per
//! event (action, document), each valid JSON, `_id` = the event id, `_index` = the
//! configured target whatever the event holds, the id and message carried intact.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vowguard_elasticsearch::{BulkAction, BulkEncoder, IndexPattern, Target};
use vowguard_fuzz::FuzzEvent;

#[derive(Debug, Arbitrary)]
struct Input {
    data_stream: bool,
    create: bool,
    event: FuzzEvent,
}

fuzz_target!(|input: Input| {
    let target = if input.data_stream {
        Target::DataStream("logs-vowguard-default".into())
    } else {
        Target::Index {
            pattern: IndexPattern::parse("vowguard-%Y.%m.%d").expect("pattern"),
            action: if input.create {
                BulkAction::Create
            } else {
                BulkAction::Index
            },
        }
    };
    let encoder = BulkEncoder::new(target);
    let event = input.event.build();
    let bytes = encoder
        .encode(&event)
        .expect("ECS encoding of an ingested event");
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    assert!(!text.contains('\r'), "raw CR");
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
    assert_eq!(lines.len(), 2, "exactly an action line and a document line");
    let action: Value = serde_json::from_str(lines[0]).expect("action line is JSON");
    let doc: Value = serde_json::from_str(lines[1]).expect("document line is JSON");
    let action = action.as_object().expect("object");
    assert_eq!(action.len(), 1);
    let (verb, meta) = action.iter().next().unwrap();
    let expected_verb = if input.data_stream || input.create {
        "create"
    } else {
        "index"
    };
    assert_eq!(verb, expected_verb);
    assert_eq!(meta["_id"], event.id.as_str());
    assert_eq!(meta["_index"], encoder.index_for(&event).as_str());
    if input.data_stream {
        assert_eq!(meta["_index"], "logs-vowguard-default");
    } else {
        let index = meta["_index"].as_str().unwrap();
        assert!(index.starts_with("vowguard-") && index.len() == "vowguard-2026.06.20".len());
    }
    assert_eq!(doc["event"]["id"], event.id.as_str());
    assert_eq!(doc["event"]["action"], event.action.as_str());
    let expected_message = event.message.clone().unwrap_or_else(|| event.summary());
    assert_eq!(doc["message"], expected_message.as_str());
    assert!(doc["@timestamp"].is_string());
});

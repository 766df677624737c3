//! The event ingest parser (stdin lines and HTTP items): arbitrary text never panics, an
//! accepted event satisfies the contract and survives the storage form (journal, dead
//! letters) unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vowguard_core::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Event::from_json_str(text);
    // The str and value entry points agree (the HTTP source uses the value one).
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let via_value = Event::from_json_value(value);
        assert_eq!(
            parsed.is_ok(),
            via_value.is_ok(),
            "str and value parsers disagree"
        );
        if let (Err(a), Err(b)) = (&parsed, &via_value) {
            assert_eq!(a, b);
        }
    } else {
        assert!(parsed.is_err());
    }
    match parsed {
        Ok(event) => {
            assert!(!event.id.is_empty() && event.id.len() <= vowguard_core::event::MAX_ID_LEN);
            assert!(
                event.id.chars().all(|c| c.is_ascii_graphic()),
                "id {:?}",
                event.id
            );
            assert!(!event.action.trim().is_empty());
            assert!(event.risk_score.is_none_or(|r| r <= 100));
            assert!(event.enrichment.is_empty(), "ingest accepted an enrichment");
            let stored = event.to_json();
            let back: Event = serde_json::from_str(&stored).expect("storage form parses");
            assert_eq!(back, event, "storage form changed the event");
        }
        Err(e) => {
            // The error is one line (it is logged and returned to HTTP clients).
            let message = e.to_string();
            assert!(!message.is_empty());
        }
    }
});

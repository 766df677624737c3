//! SMS texts: one line without control, bidi or zero-width characters, within three
//! segments, starting with the priority and ending with the alert's reference, whatever the
//! event holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vowguard_fuzz::FuzzAlert;
use vowguard_sms::{Encoding, MessageOptions, build_message, segments};

fuzz_target!(|input: FuzzAlert| {
    let alert = input.build();
    let text = build_message(&alert, &MessageOptions::default());
    assert!(
        !text.chars().any(|c| c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{2028}' | '\u{2029}')),
        "control or invisible character: {text:?}"
    );
    assert!(text.starts_with(alert.priority.short()), "{text:?}");
    assert!(text.ends_with("Ref 4e5f6a7b"), "{text:?}");
    let (encoding, count) = segments(&text);
    assert!((1..=3).contains(&count), "{count} segments: {text:?}");
    // Independent bound: 3 concatenated segments hold 459 GSM-7 septets or 201 UCS-2 units.
    match encoding {
        Encoding::Gsm7 => assert!(text.chars().count() <= 459),
        Encoding::Ucs2 => assert!(text.encode_utf16().count() <= 201),
        other => panic!("an encoding this target has no bound for: {other:?}"),
    }
});

//! Shared pieces of the comparison benchmark's programs (see `cargo xtask bench compare`).
//!
//! * [`count_envelopes`]: how many Splunk HEC envelopes a request body holds;
//!   [`count_values_closing_at`] the same for values nested in an array (Datadog).
//!
//! `benches/throughput.rs` (an example of vowguard-runtime) includes this file as a module
//! for its own counting receivers, so it depends on nothing.

/// Counts the top-level JSON values in a HEC batch body: the envelopes are concatenated,
/// optionally separated by whitespace, so every `}` that brings the nesting depth back to
/// zero ends one envelope. Strings are skipped (with their escapes), so event text that
/// contains braces cannot change the count. Runs in one pass with no allocation.
#[must_use]
pub fn count_envelopes(body: &[u8]) -> u64 {
    count_values_closing_at(body, 0)
}

/// Counts the JSON objects and arrays that close at nesting depth `depth_wanted`: 0 counts
/// concatenated top-level values (HEC), 1 counts the elements of a top-level array that
/// are objects or arrays (Datadog's `[{...},{...}]`). Strings are skipped with their
/// escapes.
#[must_use]
pub fn count_values_closing_at(body: &[u8], depth_wanted: usize) -> u64 {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut count = 0u64;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == depth_wanted {
                    count += 1;
                }
            }
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::count_envelopes;

    #[test]
    fn counts_concatenated_envelopes() {
        let body = br#"{"time":1.000,"event":{"a":{"b":[1,2]}}}{"time":2.000,"event":{}}"#;
        assert_eq!(count_envelopes(body), 2);
    }

    #[test]
    fn braces_and_escaped_quotes_inside_strings_do_not_count() {
        let body = br#"{"event":{"message":"}{ \"}\" {{"}} {"event":"\\"}"#;
        assert_eq!(count_envelopes(body), 2);
    }

    #[test]
    fn array_elements_close_at_depth_one() {
        let body = br#"[{"message":"]}"},{"a":[{}]}]"#;
        assert_eq!(super::count_values_closing_at(body, 1), 2);
    }

    #[test]
    fn empty_body_holds_nothing() {
        assert_eq!(count_envelopes(b""), 0);
        assert_eq!(count_envelopes(b" \n"), 0);
    }
}

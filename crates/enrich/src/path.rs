//! Request URLs that carry an indicator: each indicator is one percent-encoded path segment.

use vowguard_core::Error;
use vowguard_http::reqwest::Url;

/// `base` with `segments` appended to its path, each percent-encoded as ONE segment: every
/// byte outside the unreserved set (`A-Z a-z 0-9 - . _ ~`) and `:` `@` becomes `%XX`,
/// including `/`, `?`, `#`, `%`, spaces, CR and LF. The query and fragment of `base` are
/// dropped.
///
/// The URL parser would silently drop CR, LF and tab from a segment, so a lookup would ask
/// about another indicator than the one recorded; encoding them keeps the two identical.
///
/// ```
/// use vowguard_http::reqwest::Url;
/// let base = Url::parse("https://otx.example/").unwrap();
/// let url = vowguard_enrich::indicator_url(&base, &["api", "http://a/b?c#d\r\n"]).unwrap();
/// assert_eq!(url.as_str(), "https://otx.example/api/http:%2F%2Fa%2Fb%3Fc%23d%0D%0A");
/// ```
pub fn indicator_url(base: &Url, segments: &[&str]) -> Result<Url, Error> {
    if base.cannot_be_a_base() {
        return Err(Error::config("`base_url` cannot carry a path"));
    }
    let mut path = base.path().trim_end_matches('/').to_owned();
    for segment in segments {
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&path);
    Ok(url)
}

/// `segment` percent-encoded as one path segment (see [`indicator_url`]).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(segment: &str) -> Vec<u8> {
        let bytes = segment.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn every_reserved_character_stays_in_one_segment() {
        let base = Url::parse("http://127.0.0.1:8080/prefix/?q=1#f").unwrap();
        let value = "https://x.example/a b/../c?d=1&e=%41#frag\r\n\tend";
        let url = indicator_url(&base, &["api", value, "general"]).unwrap();
        let segments: Vec<&str> = url.path_segments().unwrap().collect();
        assert_eq!(segments.len(), 4, "{url}");
        assert_eq!(segments[0], "prefix");
        assert_eq!(decode(segments[2]), value.as_bytes(), "{url}");
        assert_eq!(url.query(), None);
        assert_eq!(url.fragment(), None);
    }

    #[test]
    fn ips_and_hashes_read_as_themselves() {
        let base = Url::parse("https://api.example").unwrap();
        let url = indicator_url(&base, &["ip", "2001:db8::1"]).unwrap();
        assert_eq!(url.as_str(), "https://api.example/ip/2001:db8::1");
    }
}

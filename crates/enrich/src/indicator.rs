//! Observables of an event that threat intelligence can be asked about.

use std::fmt;
use std::net::IpAddr;

use vowguard_core::Event;

/// The kind of an observable looked up in threat intelligence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndicatorKind {
    /// An IPv4 or IPv6 address (canonical text form).
    Ip,
    /// A domain or host name (lower case, no trailing dot).
    Domain,
    /// A URL, as the event gave it (trimmed).
    Url,
    /// An MD5, SHA-1 or SHA-256 file hash (lower-case hex).
    FileHash,
}

impl IndicatorKind {
    /// A short snake_case name: `ip`, `domain`, `url`, `file_hash`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Domain => "domain",
            Self::Url => "url",
            Self::FileHash => "file_hash",
        }
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An observable looked up in threat intelligence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Indicator {
    /// What it is.
    pub kind: IndicatorKind,
    /// Its normalised text.
    pub value: String,
}

impl Indicator {
    /// An indicator of `kind` with `value` taken as is (no normalisation).
    pub fn new(kind: IndicatorKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    /// An IP indicator in canonical text form.
    pub fn ip(ip: IpAddr) -> Self {
        Self::new(IndicatorKind::Ip, ip.to_canonical().to_string())
    }

    /// The key used in caches: `kind:value`, e.g. `ip:203.0.113.7`.
    pub fn cache_key(&self) -> String {
        format!("{}:{}", self.kind, self.value)
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.value)
    }
}

/// Whether an address is worth asking threat intelligence about.
///
/// Skipped: loopback, unspecified, private (RFC 1918, IPv6 unique local `fc00::/7`),
/// link-local (`169.254/16`, `fe80::/10`), broadcast and multicast. Kept: every public
/// address, including the documentation ranges (TEST-NET-1/2/3, `2001:db8::/32`) so demos
/// and tests work.
pub fn is_lookup_worthy(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00;
            let link_local = (first & 0xffc0) == 0xfe80;
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || unique_local
                || link_local)
        }
    }
}

/// Normalises a file hash: trimmed lower-case hex of 32 (MD5), 40 (SHA-1) or 64 (SHA-256)
/// characters; anything else is not a hash providers can look up.
pub fn normalise_hash(raw: &str) -> Option<String> {
    let hash = raw.trim().to_ascii_lowercase();
    let ok = matches!(hash.len(), 32 | 40 | 64) && hash.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(hash)
}

fn normalise_domain(raw: &str) -> Option<String> {
    let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/');
    ok.then_some(domain)
}

/// The event's observables, in this order: `source_ip`, `domain`, `url`, `file_hash`;
/// de-duplicated.
///
/// * `source_ip`: skipped when not [`is_lookup_worthy`] (private, loopback, ...).
/// * `domain`: trimmed, lower case, trailing dot removed; a "domain" that is an IP address
///   becomes an IP indicator (so it is de-duplicated against `source_ip`).
/// * `url`: trimmed; empty is skipped.
/// * `file_hash`: see [`normalise_hash`]; anything that is not an MD5/SHA-1/SHA-256 hex
///   string is skipped.
pub fn indicators(event: &Event) -> Vec<Indicator> {
    let mut out: Vec<Indicator> = Vec::with_capacity(4);
    let mut push = |indicator: Indicator| {
        if !out.contains(&indicator) {
            out.push(indicator);
        }
    };
    if let Some(ip) = event.source_ip.filter(|ip| is_lookup_worthy(*ip)) {
        push(Indicator::ip(ip));
    }
    if let Some(domain) = event.domain.as_deref().and_then(normalise_domain) {
        match domain.parse::<IpAddr>() {
            Ok(ip) if is_lookup_worthy(ip) => push(Indicator::ip(ip)),
            Ok(_) => {}
            Err(_) => push(Indicator::new(IndicatorKind::Domain, domain)),
        }
    }
    if let Some(url) = event
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        push(Indicator::new(IndicatorKind::Url, url));
    }
    if let Some(hash) = event.file_hash.as_deref().and_then(normalise_hash) {
        push(Indicator::new(IndicatorKind::FileHash, hash));
    }
    out
}

#[cfg(test)]
mod tests {
    use vowguard_core::{Category, Severity};

    use super::*;

    fn event() -> Event {
        Event::new(Category::Authentication, "login", Severity::Low)
    }

    fn ip_of(text: &str) -> Vec<Indicator> {
        let mut e = event();
        e.source_ip = Some(text.parse().unwrap());
        indicators(&e)
    }

    #[test]
    fn skips_private_and_special_addresses() {
        for skipped in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(ip_of(skipped), vec![], "{skipped} must be skipped");
        }
    }

    #[test]
    fn keeps_public_and_documentation_addresses() {
        for (kept, value) in [
            ("192.0.2.1", "192.0.2.1"),
            ("198.51.100.7", "198.51.100.7"),
            ("203.0.113.9", "203.0.113.9"),
            ("8.8.8.8", "8.8.8.8"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            assert_eq!(ip_of(kept), vec![Indicator::new(IndicatorKind::Ip, value)]);
        }
    }

    #[test]
    fn all_kinds_in_order_normalised() {
        let mut e = event();
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.domain = Some(" Evil.Example. ".into());
        e.url = Some("  https://evil.example/Login?x=1 ".into());
        e.file_hash = Some("D41D8CD98F00B204E9800998ECF8427E".into());
        assert_eq!(
            indicators(&e),
            vec![
                Indicator::new(IndicatorKind::Ip, "203.0.113.7"),
                Indicator::new(IndicatorKind::Domain, "evil.example"),
                Indicator::new(IndicatorKind::Url, "https://evil.example/Login?x=1"),
                Indicator::new(IndicatorKind::FileHash, "d41d8cd98f00b204e9800998ecf8427e"),
            ]
        );
    }

    #[test]
    fn domain_that_is_the_source_ip_is_deduplicated() {
        let mut e = event();
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        e.domain = Some("203.0.113.7".into());
        assert_eq!(
            indicators(&e),
            vec![Indicator::new(IndicatorKind::Ip, "203.0.113.7")]
        );
        e.domain = Some("10.0.0.1".into());
        assert_eq!(indicators(&e).len(), 1, "private IP in domain skipped");
    }

    #[test]
    fn junk_is_skipped() {
        let mut e = event();
        e.domain = Some("   ".into());
        e.url = Some(" ".into());
        e.file_hash = Some("not-a-hash".into());
        assert_eq!(indicators(&e), vec![]);
        e.domain = Some("a b\r\nc".into());
        e.file_hash = Some("zz".repeat(16));
        assert_eq!(indicators(&e), vec![]);
    }

    #[test]
    fn hashes_by_length() {
        assert!(normalise_hash(&"a".repeat(32)).is_some());
        assert!(normalise_hash(&"B".repeat(40)).is_some());
        assert!(normalise_hash(&"0".repeat(64)).is_some());
        assert!(normalise_hash(&"0".repeat(63)).is_none());
        assert!(normalise_hash(&"0".repeat(128)).is_none());
    }

    #[test]
    fn cache_key_names_kind() {
        assert_eq!(
            Indicator::new(IndicatorKind::FileHash, "ab").cache_key(),
            "file_hash:ab"
        );
    }
}

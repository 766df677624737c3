//! Cleaning vendor text (attacker-influenced: anyone can tag a pulse or a sample) into
//! values fit for an [`Enrichment`](vowguard_core::Enrichment).

/// The longest category [`category_slug`] returns, in characters.
pub const MAX_CATEGORY_LEN: usize = 64;

/// A category name from free text: trimmed, lowercase, whitespace and `_` as `-` (runs
/// collapsed, none leading or trailing), control characters dropped, at most
/// [`MAX_CATEGORY_LEN`] characters; `None` when nothing is left.
///
/// ```
/// use vowguard_enrich::category_slug;
/// assert_eq!(category_slug("  Cobalt Strike_Beacon "), Some("cobalt-strike-beacon".into()));
/// assert_eq!(category_slug("a\r\nb"), Some("ab".into()));
/// assert_eq!(category_slug(" - "), None);
/// ```
pub fn category_slug(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.trim().chars().filter(|c| !c.is_control()) {
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.extend(c.to_lowercase());
        if out.chars().count() >= MAX_CATEGORY_LEN {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(category_slug("Ransomware"), Some("ransomware".into()));
        assert_eq!(category_slug("cobalt_strike"), Some("cobalt-strike".into()));
        assert_eq!(
            category_slug(" Cobalt   Strike "),
            Some("cobalt-strike".into())
        );
        assert_eq!(category_slug("--a__b--"), Some("a-b".into()));
        assert_eq!(category_slug("a\r\nb\u{0}c"), Some("abc".into()));
        assert_eq!(category_slug("ÉTÉ"), Some("été".into()));
        assert_eq!(category_slug(""), None);
        assert_eq!(category_slug(" - _ "), None);
        assert_eq!(category_slug("\r\n\t"), None);
        assert_eq!(
            category_slug(&"x".repeat(500)).unwrap().len(),
            MAX_CATEGORY_LEN
        );
        assert_eq!(
            category_slug(&"é".repeat(500)).unwrap().chars().count(),
            MAX_CATEGORY_LEN
        );
    }

    #[test]
    fn never_controls_or_edge_dashes() {
        for raw in ["\u{1b}[31mred", "x\u{7f}y", "-\u{85}-z-", "a \u{2028} b"] {
            let slug = category_slug(raw).unwrap();
            assert!(!slug.chars().any(char::is_control), "{slug:?}");
            assert!(!slug.starts_with('-') && !slug.ends_with('-'), "{slug:?}");
            assert!(!slug.contains("--"), "{slug:?}");
        }
    }
}

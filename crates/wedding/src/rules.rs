//! The built-in attack-pattern rules: what each one watches, how it groups events, what it
//! measures and its default window and threshold. [`RULES`] is the single source of the
//! defaults table in the crate README.

use vowguard_core::{Category, Event, Outcome};

/// Failed logins per user or source IP.
pub const FAILED_LOGIN_BRUTE_FORCE: &str = "failed_login_brute_force";
/// Guest-list views/exports spanning many weddings or many records.
pub const GUEST_LIST_SCRAPING: &str = "guest_list_scraping";
/// Vendor contact/profile reads spanning many vendors.
pub const VENDOR_CONTACT_HARVESTING: &str = "vendor_contact_harvesting";
/// Date/venue lookups spanning many weddings.
pub const WEDDING_DATE_CORRELATION_ATTACKS: &str = "wedding_date_correlation_attacks";
/// Gift purchases flowing to a registry whose payout details just changed.
pub const BRIDAL_REGISTRY_FRAUD: &str = "bridal_registry_fraud";
/// Repeated booking/deposit/payment-detail changes on one venue.
pub const VENUE_BOOKING_SCAMS: &str = "venue_booking_scams";
/// Bulk photo/portfolio downloads.
pub const PHOTOGRAPHER_PORTFOLIO_THEFT: &str = "photographer_portfolio_theft";
/// Contact or payout changes on an account shortly after failed logins or a reset.
pub const WEDDING_PLANNING_SOCIAL_ENGINEERING: &str = "wedding_planning_social_engineering";

/// Which event field groups events into one window. Every field a rule lists is tracked
/// separately (a user and an IP each get their own count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyField {
    /// `user_id`.
    UserId,
    /// `source_ip`.
    SourceIp,
    /// `wedding_id`.
    WeddingId,
    /// The venue: `resource_id`, or `wedding_id` when the event has no resource id.
    Venue,
}

/// Longest key value kept (longer values are cut at a character boundary), bounding memory.
pub const MAX_KEY_LEN: usize = 256;

impl KeyField {
    /// The key of `event` as `name=value` (also the indicator reported), if it has one.
    pub fn key_of(self, event: &Event) -> Option<String> {
        let (name, value) = match self {
            Self::UserId => ("user_id", event.user_id.clone()?),
            Self::SourceIp => ("source_ip", event.source_ip?.to_string()),
            Self::WeddingId => ("wedding_id", event.wedding_id.clone()?),
            Self::Venue => match (&event.resource_id, &event.wedding_id) {
                (Some(r), _) if !r.is_empty() => ("venue", r.clone()),
                (_, Some(w)) => ("wedding_id", w.clone()),
                _ => return None,
            },
        };
        if value.is_empty() {
            return None;
        }
        Some(format!("{name}={}", truncate(&value, MAX_KEY_LEN)))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What a rule counts within the window, per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Measure {
    /// Matching events.
    Count,
    /// Distinct `wedding_id`s among matching events.
    DistinctWeddings,
    /// Distinct `resource_id`s among matching events.
    DistinctResources,
    /// Sum of `record_count`, an event without one counting as 1.
    Items,
}

impl Measure {
    /// The name used in indicators, e.g. `distinct_weddings=6 in 3600s`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::DistinctWeddings => "distinct_weddings",
            Self::DistinctResources => "distinct_resources",
            Self::Items => "items",
        }
    }
}

/// Which events a rule looks at: all conditions must hold, and the action must match one
/// of `actions` (globs where `*` is any text, compared ASCII case-insensitively) or the
/// `resource_type` must be one of `resource_types`.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// Accepted categories; empty accepts any.
    pub categories: &'static [Category],
    /// Required outcome, if any.
    pub outcome: Option<Outcome>,
    /// Action globs (lowercase).
    pub actions: &'static [&'static str],
    /// Resource types (lowercase, exact).
    pub resource_types: &'static [&'static str],
}

impl Filter {
    /// Whether `event` passes this filter.
    pub fn matches(&self, event: &Event) -> bool {
        if !self.categories.is_empty() && !self.categories.contains(&event.category) {
            return false;
        }
        if self.outcome.is_some_and(|o| o != event.outcome) {
            return false;
        }
        let action = event.action.to_ascii_lowercase();
        if self.actions.iter().any(|p| glob(p, &action)) {
            return true;
        }
        event.resource_type.as_deref().is_some_and(|rt| {
            self.resource_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(rt))
        })
    }
}

/// `*`-only glob match over bytes (linear backtracking, no recursion).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// A rule's tunable parameters (the `rules.<name>` config table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleParams {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Sliding window length, in seconds: an observation counts while it is less than this
    /// much older than the newest event seen for its key.
    pub window_secs: u64,
    /// The rule matches when its [`Measure`] reaches this value.
    pub threshold: u64,
    /// The rule also matches when the sum of `record_count` in the window reaches this
    /// (`None`: not used).
    pub record_threshold: Option<u64>,
}

/// One built-in correlation rule.
#[derive(Debug)]
pub struct RuleDef {
    /// The pattern name reported in [`vowguard_core::PatternMatch::pattern`].
    pub name: &'static str,
    /// One line on what it detects.
    pub summary: &'static str,
    /// The fields events are grouped by.
    pub keys: &'static [KeyField],
    /// The events counted (any filter may match).
    pub matches: &'static [Filter],
    /// For sequence rules: events that must come first (any filter may match); only
    /// matching events at or after the earliest trigger still in the window count. Empty
    /// for plain windowed rules.
    pub triggers: &'static [Filter],
    /// What is counted.
    pub measure: Measure,
    /// Defaults of the tunable parameters.
    pub defaults: RuleParams,
}

const fn params(window_secs: u64, threshold: u64, record_threshold: Option<u64>) -> RuleParams {
    RuleParams {
        enabled: true,
        window_secs,
        threshold,
        record_threshold,
    }
}

const ACTOR: &[KeyField] = &[KeyField::UserId, KeyField::SourceIp];

const fn actions(actions: &'static [&'static str]) -> Filter {
    Filter {
        categories: &[],
        outcome: None,
        actions,
        resource_types: &[],
    }
}

const FAILED_AUTH: Filter = Filter {
    categories: &[Category::Authentication],
    outcome: Some(Outcome::Failure),
    actions: &["*"],
    resource_types: &[],
};

/// Every built-in rule, in the order they are evaluated and reported.
pub static RULES: &[RuleDef] = &[
    RuleDef {
        name: FAILED_LOGIN_BRUTE_FORCE,
        summary: "failed authentications (category authentication, outcome failure) per user_id and per source_ip",
        keys: ACTOR,
        matches: &[FAILED_AUTH],
        triggers: &[],
        measure: Measure::Count,
        defaults: params(600, 10, None),
    },
    RuleDef {
        name: GUEST_LIST_SCRAPING,
        summary: "guest-list views/exports/downloads (or resource_type guest_lists) per user_id and per source_ip, across distinct weddings or by records",
        keys: ACTOR,
        matches: &[Filter {
            categories: &[],
            outcome: None,
            actions: &[
                "guest_list*.view*",
                "guest_list*.export*",
                "guest_list*.download*",
                "guest_list*.list*",
                "guest_list*.search*",
            ],
            resource_types: &["guest_list", "guest_lists"],
        }],
        triggers: &[],
        measure: Measure::DistinctWeddings,
        defaults: params(3_600, 5, Some(500)),
    },
    RuleDef {
        name: VENDOR_CONTACT_HARVESTING,
        summary: "vendor contact/profile reads and exports per user_id and per source_ip, across distinct vendors (resource_id)",
        keys: ACTOR,
        matches: &[Filter {
            categories: &[],
            outcome: None,
            actions: &[
                "vendor*contact*",
                "vendor*profile*.view*",
                "vendor*profile*.export*",
                "vendor*.export*",
            ],
            resource_types: &[
                "vendor_contact",
                "vendor_contacts",
                "vendor_profile",
                "vendor_profiles",
            ],
        }],
        triggers: &[],
        measure: Measure::DistinctResources,
        defaults: params(3_600, 50, None),
    },
    RuleDef {
        name: WEDDING_DATE_CORRELATION_ATTACKS,
        summary: "wedding, date and venue lookups per user_id and per source_ip, across distinct weddings",
        keys: ACTOR,
        matches: &[Filter {
            categories: &[],
            outcome: None,
            actions: &[
                "wedding.*",
                "weddings.*",
                "*.date.*",
                "*.dates.*",
                "*venue*.view*",
                "*venue*.search*",
                "*venue*.lookup*",
                "*availability*",
            ],
            resource_types: &["wedding", "weddings"],
        }],
        triggers: &[],
        measure: Measure::DistinctWeddings,
        defaults: params(3_600, 20, None),
    },
    RuleDef {
        name: BRIDAL_REGISTRY_FRAUD,
        summary: "gift purchases on a wedding's registry after its payout details changed (sequence, per wedding_id)",
        keys: &[KeyField::WeddingId],
        matches: &[actions(&[
            "registry*purchase*",
            "registry*gift*",
            "registry*contribution*",
            "registry*checkout*",
        ])],
        triggers: &[actions(&[
            "registry*payout*",
            "registry*bank*",
            "registry*payment_details*",
        ])],
        measure: Measure::Count,
        defaults: params(86_400, 5, None),
    },
    RuleDef {
        name: VENUE_BOOKING_SCAMS,
        summary: "venue booking, deposit and payment-detail changes per venue (resource_id, else wedding_id)",
        keys: &[KeyField::Venue],
        matches: &[actions(&[
            "venue*.update*",
            "venue*.change*",
            "venue*.cancel*",
            "venue*deposit*",
            "venue*payment*",
            "venue*payout*",
            "venue*bank*",
            "booking*payment_details*",
            "booking*deposit*",
            "booking*bank*",
            "booking*payout*",
        ])],
        triggers: &[],
        measure: Measure::Count,
        defaults: params(86_400, 3, None),
    },
    RuleDef {
        name: PHOTOGRAPHER_PORTFOLIO_THEFT,
        summary: "photo/portfolio/gallery downloads and exports per user_id and per source_ip, counting record_count (else 1) per event",
        keys: ACTOR,
        matches: &[actions(&[
            "*portfolio*download*",
            "*photo*download*",
            "*gallery*download*",
            "*image*download*",
            "*portfolio*export*",
            "*photo*export*",
            "*gallery*export*",
            "*image*export*",
        ])],
        triggers: &[],
        measure: Measure::Items,
        defaults: params(3_600, 200, None),
    },
    RuleDef {
        name: WEDDING_PLANNING_SOCIAL_ENGINEERING,
        summary: "email/phone/payout changes on an account (category account_change) after failed logins or a password/MFA reset on it (sequence, per user_id)",
        keys: &[KeyField::UserId],
        matches: &[Filter {
            categories: &[Category::AccountChange],
            outcome: None,
            actions: &[
                "*email*update*",
                "*email*change*",
                "*phone*update*",
                "*phone*change*",
                "*payout*",
            ],
            resource_types: &[],
        }],
        triggers: &[
            FAILED_AUTH,
            actions(&["*password*reset*", "*mfa*reset*", "*account*recovery*"]),
        ],
        measure: Measure::Count,
        defaults: params(1_800, 1, None),
    },
];

/// The built-in rule called `name`.
pub fn rule(name: &str) -> Option<&'static RuleDef> {
    RULES.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::Severity;

    #[test]
    fn glob_matches() {
        assert!(glob("*", ""));
        assert!(glob("guest_list*.export*", "guest_list.export"));
        assert!(glob("guest_list*.export*", "guest_lists.export_csv"));
        assert!(!glob("guest_list*.export*", "guest_list.update"));
        assert!(glob("*photo*download*", "vendor.photos.bulk_download"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(!glob("*.date.*", "account.email.update"));
    }

    #[test]
    fn table_is_consistent() {
        let mut names: Vec<_> = RULES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
        for r in RULES {
            assert!(!r.keys.is_empty() && !r.matches.is_empty(), "{}", r.name);
            assert!(r.defaults.threshold >= 1 && r.defaults.window_secs >= 1);
            if !r.triggers.is_empty() {
                assert_eq!(r.measure, Measure::Count, "{}", r.name);
            }
        }
    }

    #[test]
    fn filters_are_case_insensitive_and_keys_truncated() {
        let mut e = Event::new(Category::DataExport, "Guest_List.EXPORT", Severity::High);
        assert!(rule(GUEST_LIST_SCRAPING).unwrap().matches[0].matches(&e));
        e.action = "guest_list.update".into();
        assert!(!rule(GUEST_LIST_SCRAPING).unwrap().matches[0].matches(&e));
        e.resource_type = Some("Guest_Lists".into());
        assert!(rule(GUEST_LIST_SCRAPING).unwrap().matches[0].matches(&e));
        e.user_id = Some("é".repeat(200));
        let key = KeyField::UserId.key_of(&e).unwrap();
        assert!(key.len() <= "user_id=".len() + MAX_KEY_LEN);
        e.user_id = Some(String::new());
        assert_eq!(KeyField::UserId.key_of(&e), None);
        e.resource_id = None;
        e.wedding_id = Some("w-1".into());
        assert_eq!(
            KeyField::Venue.key_of(&e).as_deref(),
            Some("wedding_id=w-1")
        );
        e.resource_id = Some("venue-9".into());
        assert_eq!(KeyField::Venue.key_of(&e).as_deref(), Some("venue=venue-9"));
    }
}

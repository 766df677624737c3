//! The config tables of `type = "wedding_context"` and `type = "attack_patterns"`
//! enrichers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vowguard_core::SecretRef;

use crate::context::{ContextOptions, Hemisphere, MAX_WEEK_OF_DAYS};
use crate::rules::{Measure, RULES, RuleDef, RuleParams};

/// Where wedding records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderKind {
    /// A JSON file ([`crate::JsonFileProvider`]), key `path`.
    File,
    /// The platform's API ([`crate::HttpProvider`]), keys `base_url` and `token`.
    Http,
}

/// Configuration of the wedding-context enricher.
///
/// ```toml
/// [enrichers.wedding]
/// type = "wedding_context"
/// provider = "file"
/// path = "weddings.json"          # relative to the config file
///
/// [enrichers.wedding_api]
/// type = "wedding_context"
/// provider = "http"
/// base_url = "https://platform.internal/api"
/// token = { env = "WEDDING_API_TOKEN" }
/// cache_ttl = "5m"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WeddingContextConfig {
    /// `file` or `http`.
    pub provider: ProviderKind,
    /// The JSON file (provider `file`), relative to the config file's directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// How often, at most, the file's modification time is checked (provider `file`).
    /// Default `"5s"`.
    #[serde(default = "default_check_interval", with = "vowguard_core::duration")]
    pub check_interval: Duration,
    /// The API base URL (provider `http`); records are at `{base_url}/weddings/{id}`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Bearer token for the API (provider `http`, optional).
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// How long API answers (records and 404s) are reused (provider `http`). Default
    /// `"5m"`; `"0s"` disables caching.
    #[serde(default = "default_cache_ttl", with = "vowguard_core::duration")]
    pub cache_ttl: Duration,
    /// Time one enrichment (and one API request) may take. Default `"1500ms"`.
    #[serde(default = "default_timeout", with = "vowguard_core::duration")]
    pub timeout: Duration,
    /// Days before the wedding that count as `week_of`. Default 7.
    #[serde(default = "default_week_of_days")]
    pub week_of_days: u32,
    /// `northern` (default) or `southern`: whose seasons apply.
    #[serde(default)]
    pub hemisphere: Hemisphere,
}

fn default_check_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_timeout() -> Duration {
    Duration::from_millis(1_500)
}
fn default_week_of_days() -> u32 {
    7
}

impl WeddingContextConfig {
    /// Checks the keys belong to the chosen provider and values are in range; the error is
    /// `(field, message)`.
    pub(crate) fn check(&self) -> Result<ContextOptions, (&'static str, String)> {
        let misplaced = |field: &'static str, provider: &str| {
            (
                field,
                format!("only used with provider = \"{provider}\"; remove it"),
            )
        };
        match self.provider {
            ProviderKind::File => {
                if self.path.is_none() {
                    return Err((
                        "path",
                        "provider = \"file\" needs `path`, the JSON file of weddings".into(),
                    ));
                }
                if self.base_url.is_some() {
                    return Err(misplaced("base_url", "http"));
                }
                if self.token.is_some() {
                    return Err(misplaced("token", "http"));
                }
            }
            ProviderKind::Http => {
                if self.base_url.is_none() {
                    return Err((
                        "base_url",
                        "provider = \"http\" needs `base_url`, the platform API".into(),
                    ));
                }
                if self.path.is_some() {
                    return Err(misplaced("path", "file"));
                }
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return Err((
                "timeout",
                format!(
                    "must be between \"1ms\" and \"1m\", got \"{}\"",
                    vowguard_core::duration::format(self.timeout)
                ),
            ));
        }
        if self.week_of_days > MAX_WEEK_OF_DAYS {
            return Err((
                "week_of_days",
                format!(
                    "must be at most {MAX_WEEK_OF_DAYS}, got {}",
                    self.week_of_days
                ),
            ));
        }
        Ok(ContextOptions {
            week_of_days: self.week_of_days,
            hemisphere: self.hemisphere,
        })
    }
}

/// Overrides of one rule's parameters (`rules.<name>`); absent keys keep the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleOverride {
    /// Whether the rule runs.
    pub enabled: Option<bool>,
    /// Sliding window (`"1s"` to `"30d"`; whole seconds count).
    #[serde(default, with = "vowguard_core::duration::option")]
    pub window: Option<Duration>,
    /// Threshold of the rule's measure (≥ 1).
    pub threshold: Option<u64>,
    /// Threshold of the sum of `record_count` in the window; 0 turns it off.
    pub record_threshold: Option<u64>,
}

impl RuleOverride {
    /// These settings with [`enabled`](Self::enabled) set to `enabled`.
    #[must_use]
    pub fn with_enabled(mut self, enabled: Option<bool>) -> Self {
        self.enabled = enabled;
        self
    }

    /// These settings with [`window`](Self::window) set to `window`.
    #[must_use]
    pub fn with_window(mut self, window: Option<Duration>) -> Self {
        self.window = window;
        self
    }

    /// These settings with [`threshold`](Self::threshold) set to `threshold`.
    #[must_use]
    pub fn with_threshold(mut self, threshold: Option<u64>) -> Self {
        self.threshold = threshold;
        self
    }

    /// These settings with [`record_threshold`](Self::record_threshold) set to `record_threshold`.
    #[must_use]
    pub fn with_record_threshold(mut self, record_threshold: Option<u64>) -> Self {
        self.record_threshold = record_threshold;
        self
    }
}

/// Longest window accepted, in seconds (30 days).
pub const MAX_WINDOW_SECS: u64 = 30 * 86_400;

/// Configuration of the attack-pattern enricher.
///
/// ```toml
/// [enrichers.patterns]
/// type = "attack_patterns"
/// max_keys = 100000
///
/// [enrichers.patterns.rules.failed_login_brute_force]
/// threshold = 20
/// window = "5m"
///
/// [enrichers.patterns.rules.venue_booking_scams]
/// enabled = false
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AttackPatternsConfig {
    /// Per-rule overrides by rule name; unknown names are rejected.
    pub rules: BTreeMap<String, RuleOverride>,
    /// Most keys (users, IPs, weddings, venues) each rule tracks; beyond it the oldest
    /// key is forgotten. Default 100 000.
    pub max_keys: usize,
    /// Most observations each rule keeps in all; beyond it the oldest keys are forgotten.
    /// Default 1 000 000.
    pub max_entries: usize,
    /// Most observations kept per key; beyond it the oldest are dropped (counts then are
    /// lower bounds). Default 10 000; thresholds of count and distinct rules must not
    /// exceed it.
    pub max_entries_per_key: usize,
}

impl AttackPatternsConfig {
    /// These settings with [`rules`](Self::rules) set to `rules`.
    #[must_use]
    pub fn with_rules(mut self, rules: BTreeMap<String, RuleOverride>) -> Self {
        self.rules = rules;
        self
    }

    /// These settings with [`max_keys`](Self::max_keys) set to `max_keys`.
    #[must_use]
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// These settings with [`max_entries`](Self::max_entries) set to `max_entries`.
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// These settings with [`max_entries_per_key`](Self::max_entries_per_key) set to `max_entries_per_key`.
    #[must_use]
    pub fn with_max_entries_per_key(mut self, max_entries_per_key: usize) -> Self {
        self.max_entries_per_key = max_entries_per_key;
        self
    }
}

impl Default for AttackPatternsConfig {
    fn default() -> Self {
        Self {
            rules: BTreeMap::new(),
            max_keys: 100_000,
            max_entries: 1_000_000,
            max_entries_per_key: 10_000,
        }
    }
}

impl AttackPatternsConfig {
    /// The enabled rules with their effective parameters; the error is `(field, message)`.
    pub(crate) fn resolve(&self) -> Result<Vec<(&'static RuleDef, RuleParams)>, (String, String)> {
        let unknown: Vec<&str> = self
            .rules
            .keys()
            .filter(|name| !RULES.iter().any(|r| r.name == name.as_str()))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = RULES.iter().map(|r| r.name).collect();
            return Err((
                "rules".into(),
                format!(
                    "unknown rule{} `{}`; known rules: {}",
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.join("`, `"),
                    known.join(", ")
                ),
            ));
        }
        if self.max_keys == 0 {
            return Err(("max_keys".into(), "must be at least 1".into()));
        }
        if self.max_entries_per_key == 0 {
            return Err(("max_entries_per_key".into(), "must be at least 1".into()));
        }
        if self.max_entries < self.max_entries_per_key {
            return Err((
                "max_entries".into(),
                format!(
                    "must be at least max_entries_per_key ({}), got {}",
                    self.max_entries_per_key, self.max_entries
                ),
            ));
        }
        let mut out = Vec::new();
        for def in RULES {
            let o = self.rules.get(def.name).copied().unwrap_or_default();
            let field = |key: &str| format!("rules.{}.{key}", def.name);
            let p = RuleParams {
                enabled: o.enabled.unwrap_or(def.defaults.enabled),
                window_secs: o.window.map_or(def.defaults.window_secs, |w| w.as_secs()),
                threshold: o.threshold.unwrap_or(def.defaults.threshold),
                record_threshold: match o.record_threshold {
                    Some(0) => None,
                    Some(n) => Some(n),
                    None => def.defaults.record_threshold,
                },
            };
            if p.window_secs == 0 || p.window_secs > MAX_WINDOW_SECS {
                return Err((
                    field("window"),
                    format!(
                        "must be between \"1s\" and \"30d\", got \"{}\"",
                        vowguard_core::duration::format(Duration::from_secs(p.window_secs))
                    ),
                ));
            }
            if p.threshold == 0 {
                return Err((field("threshold"), "must be at least 1".into()));
            }
            if def.measure != Measure::Items && p.threshold > self.max_entries_per_key as u64 {
                return Err((
                    field("threshold"),
                    format!(
                        "must be at most max_entries_per_key ({}), got {}",
                        self.max_entries_per_key, p.threshold
                    ),
                ));
            }
            if p.enabled {
                out.push((def, p));
            }
        }
        Ok(out)
    }
}

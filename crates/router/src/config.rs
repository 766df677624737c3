//! Router configuration: the `[[routes]]`, `[[time_intervals]]`, `[[inhibit_rules]]`,
//! `[classification]` and `[protocols]` keys, with their documented defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vowguard_core::{Category, Outcome, Priority, Severity, WeddingPhase};

use crate::params::{ParamValue, Params};

/// Everything the router is configured with. Every field has a default; the runtime
/// flattens these as top-level config keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RouterConfig {
    /// The route tree's top-level routes, in order (`[[routes]]`).
    pub routes: Vec<RouteConfig>,
    /// Named time intervals that routes reference (`[[time_intervals]]`).
    pub time_intervals: Vec<TimeIntervalConfig>,
    /// Inhibition rules (`[[inhibit_rules]]`); default: a P0 for a wedding mutes the
    /// wedding's P2/P3/P4 alerts for an hour.
    pub inhibit_rules: Vec<InhibitRule>,
    /// How priorities are computed (`[classification]`).
    pub classification: ClassificationConfig,
    /// The wedding-day protocols (`[protocols]`).
    pub protocols: ProtocolsConfig,
}

impl RouterConfig {
    /// These settings with [`routes`](Self::routes) set to `routes`.
    #[must_use]
    pub fn with_routes(mut self, routes: Vec<RouteConfig>) -> Self {
        self.routes = routes;
        self
    }

    /// These settings with [`time_intervals`](Self::time_intervals) set to `time_intervals`.
    #[must_use]
    pub fn with_time_intervals(mut self, time_intervals: Vec<TimeIntervalConfig>) -> Self {
        self.time_intervals = time_intervals;
        self
    }

    /// These settings with [`inhibit_rules`](Self::inhibit_rules) set to `inhibit_rules`.
    #[must_use]
    pub fn with_inhibit_rules(mut self, inhibit_rules: Vec<InhibitRule>) -> Self {
        self.inhibit_rules = inhibit_rules;
        self
    }

    /// These settings with [`classification`](Self::classification) set to `classification`.
    #[must_use]
    pub fn with_classification(mut self, classification: ClassificationConfig) -> Self {
        self.classification = classification;
        self
    }

    /// These settings with [`protocols`](Self::protocols) set to `protocols`.
    #[must_use]
    pub fn with_protocols(mut self, protocols: ProtocolsConfig) -> Self {
        self.protocols = protocols;
        self
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            time_intervals: Vec::new(),
            inhibit_rules: vec![InhibitRule::default()],
            classification: ClassificationConfig::default(),
            protocols: ProtocolsConfig::default(),
        }
    }
}

impl RouterConfig {
    /// The first-cut behaviour that [`Router::new`](crate::Router::new) keeps: priority by
    /// severity only, no protocols, no inhibition, no time intervals.
    pub fn severity_only(routes: Vec<RouteConfig>) -> Self {
        Self {
            routes,
            time_intervals: Vec::new(),
            inhibit_rules: Vec::new(),
            classification: ClassificationConfig::severity_only(),
            protocols: ProtocolsConfig::disabled(),
        }
    }

    /// Removes notifier ids that are not in `known` from every route, receiver parameter
    /// and protocol, and drops routes left without receivers (and without children).
    /// Returns one line per change, for warnings. Useful with
    /// [`default_config`](crate::default_config) when not every default notifier exists.
    pub fn retain_notifiers(&mut self, known: &[&str]) -> Vec<String> {
        fn prune(
            routes: &mut Vec<RouteConfig>,
            known: &[&str],
            prefix: &str,
            out: &mut Vec<String>,
        ) {
            routes.retain_mut(|route| {
                let path = format!("{prefix}{}", route.name);
                route.notify.retain(|id| {
                    let keep = known.contains(&id.as_str());
                    if !keep {
                        out.push(format!(
                            "route `{path}`: notifier `{id}` is not configured; left out"
                        ));
                    }
                    keep
                });
                route
                    .receiver_params
                    .retain(|id, _| known.contains(&id.as_str()));
                prune(&mut route.routes, known, &format!("{path}/"), out);
                let keep = !route.notify.is_empty() || !route.routes.is_empty();
                if !keep {
                    out.push(format!(
                        "route `{path}`: no configured notifier left; route dropped"
                    ));
                }
                keep
            });
        }
        let mut out = Vec::new();
        prune(&mut self.routes, known, "", &mut out);
        out.extend(self.retain_protocol_notifiers(known));
        out
    }

    /// Removes notifier ids that are not in `known` from the protocols' extra receivers
    /// (e.g. `legal`, which a deployment may not have), leaving routes alone: a route naming
    /// an unknown notifier stays a configuration error. Returns one line per change.
    pub fn retain_protocol_notifiers(&mut self, known: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let p = &mut self.protocols;
        for (name, list) in [
            ("saturday_escalation", &mut p.saturday_escalation.notify),
            (
                "active_wedding_protection",
                &mut p.active_wedding_protection.notify,
            ),
            ("guest_data_breach", &mut p.guest_data_breach.notify),
        ] {
            list.retain(|id| {
                let keep = known.contains(&id.as_str());
                if !keep {
                    out.push(format!(
                        "protocol `{name}`: notifier `{id}` is not configured; left out"
                    ));
                }
                keep
            });
        }
        out
    }
}

/// Which events a route takes, as lists of accepted values ("one of"). Every listed
/// condition must hold; an empty list matches all. Kept from the first cut; see
/// [`RouteConfig::matchers`] for the Alertmanager-style matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Alert priorities, e.g. `["P0"]` or `["P0_CRITICAL", "P1_HIGH"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<Priority>,
    /// Event categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<Category>,
    /// Event actions (exact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action: Vec<String>,
    /// Event severities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// Event outcomes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcome: Vec<Outcome>,
    /// Resource types (exact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_type: Vec<String>,
    /// Wedding phases (from the wedding enrichment; events without one never match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wedding_phase: Vec<WeddingPhase>,
}

/// One route (`[[routes]]` entry, or an entry of a route's `routes`).
///
/// From a config file it is deserialized; in code it starts at [`RouteConfig::new`] and
/// the chained setters below (or by setting the public fields):
///
/// ```
/// use std::time::Duration;
/// use vowguard_router::{RouteConfig, Router, RouterConfig};
///
/// let route = RouteConfig::new("security")
///     .matchers([r#"severity=~"high|critical""#])
///     .notify(["secops", "oncall"])
///     .param("channel", "#security")
///     .receiver_param("oncall", "severity", "critical")
///     .group_wait(Duration::ZERO);
/// let mut config = RouterConfig::default();
/// config.routes.push(route);
/// let router = Router::from_config(config, &["secops", "oncall"])?;
/// # let _ = router;
/// # Ok::<(), vowguard_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// Route name, shown in alerts (nested routes as `parent/child`).
    pub name: String,
    /// Which alerts this route takes (lists of accepted values).
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    /// Alertmanager-style matchers, all of which must hold, e.g.
    /// `severity=~"high|critical"`, `wedding_phase="day_of"`, `priority!="P4_INFO"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// Notifier ids (`[notifiers.<id>]`) that receive the alert; empty inherits the parent's.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Keep evaluating later sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Event fields that identify an alert group (dedup key and grouping); inherited, and
    /// `["category", "action", "wedding_id", "user_id"]` at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// Receiver parameters handed to every notifier of the route (e.g. `channel`,
    /// `mention`, `severity`, `recipients`); merged over the parent's.
    #[serde(default)]
    pub params: Params,
    /// Parameters for one notifier only, keyed by notifier id; merged over `params`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub receiver_params: BTreeMap<String, Params>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<HumanDuration>,
    /// Least time between notifications of a group that got new alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<HumanDuration>,
    /// After how long an unchanged group is notified again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<HumanDuration>,
    /// The route only notifies inside one of these named time intervals (inherited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_time_intervals: Option<Vec<String>>,
    /// The route does not notify inside any of these named time intervals (inherited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_time_intervals: Option<Vec<String>>,
    /// Child routes: the first that matches takes the alert (unless it sets `continue`);
    /// when none matches, this route handles it itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

impl RouteConfig {
    /// A route named `name` that matches every event, notifies nobody of its own (it
    /// inherits its parent's notifiers) and inherits every other setting.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            matcher: RouteMatch::default(),
            matchers: Vec::new(),
            notify: Vec::new(),
            continue_matching: false,
            group_by: None,
            params: Params::new(),
            receiver_params: BTreeMap::new(),
            group_wait: None,
            group_interval: None,
            repeat_interval: None,
            active_time_intervals: None,
            mute_time_intervals: None,
            routes: Vec::new(),
        }
    }

    /// Adds Alertmanager-style matchers (e.g. `severity=~"high|critical"`); all must hold.
    /// They are checked when the router is built.
    pub fn matchers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, matchers: I) -> Self {
        self.matchers.extend(matchers.into_iter().map(Into::into));
        self
    }

    /// Sets the lists of accepted values (the `match` table).
    pub fn matching(mut self, matcher: RouteMatch) -> Self {
        self.matcher = matcher;
        self
    }

    /// Adds notifier ids that receive the route's alerts.
    pub fn notify<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.notify.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Keep evaluating later sibling routes after this one matched (`continue = true`).
    pub fn continue_matching(mut self, keep_going: bool) -> Self {
        self.continue_matching = keep_going;
        self
    }

    /// The event fields that identify an alert group (see [`GROUP_FIELDS`](crate::GROUP_FIELDS)).
    pub fn group_by<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.group_by = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Sets a receiver parameter every notifier of the route gets, e.g.
    /// `.param("channel", "#security")` or `.param("channels", ["#a", "#b"])`.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Sets a parameter for the notifier `notifier` only (merged over [`param`](Self::param)s).
    pub fn receiver_param(
        mut self,
        notifier: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<ParamValue>,
    ) -> Self {
        self.receiver_params
            .entry(notifier.into())
            .or_default()
            .insert(key.into(), value.into());
        self
    }

    /// How long a new group waits for more alerts before its first notification.
    pub fn group_wait(mut self, wait: Duration) -> Self {
        self.group_wait = Some(HumanDuration(wait));
        self
    }

    /// Least time between notifications of a group that got new alerts.
    pub fn group_interval(mut self, interval: Duration) -> Self {
        self.group_interval = Some(HumanDuration(interval));
        self
    }

    /// After how long an unchanged group is notified again.
    pub fn repeat_interval(mut self, interval: Duration) -> Self {
        self.repeat_interval = Some(HumanDuration(interval));
        self
    }

    /// The route only notifies inside one of these named time intervals.
    pub fn active_time_intervals<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        names: I,
    ) -> Self {
        self.active_time_intervals = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The route does not notify inside any of these named time intervals.
    pub fn mute_time_intervals<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        names: I,
    ) -> Self {
        self.mute_time_intervals = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a child route (tried in order after the ones added before).
    pub fn route(mut self, child: RouteConfig) -> Self {
        self.routes.push(child);
        self
    }
}

/// A named set of times (`[[time_intervals]]`), evaluated at the event's timestamp in
/// `time_zone`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeIntervalConfig {
    /// The name routes refer to.
    pub name: String,
    /// IANA time zone, e.g. `Europe/London` (default `UTC`).
    #[serde(default = "default_utc")]
    pub time_zone: String,
    /// Days, e.g. `["saturday"]` or `["monday:friday"]`; empty means every day.
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// Times of day (start inclusive, end exclusive, `HH:MM`, end may be `24:00`);
    /// empty means all day.
    #[serde(default)]
    pub times: Vec<TimeRangeConfig>,
}

fn default_utc() -> String {
    "UTC".to_owned()
}

/// A time-of-day range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeRangeConfig {
    /// Start, `HH:MM` (inclusive).
    pub start: String,
    /// End, `HH:MM` (exclusive; `24:00` for midnight).
    pub end: String,
}

/// Mutes target alerts while a matching source alert is recent
/// (`[[inhibit_rules]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// Matchers a source alert must satisfy.
    pub source_matchers: Vec<String>,
    /// Matchers a target alert must satisfy to be muted.
    pub target_matchers: Vec<String>,
    /// Fields that must be equal (and present) on source and target, e.g. `["wedding_id"]`.
    #[serde(default)]
    pub equal: Vec<String>,
    /// How long after the source event targets stay muted (default `1h`).
    #[serde(default = "one_hour")]
    pub duration: HumanDuration,
}

fn one_hour() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}

impl Default for InhibitRule {
    /// A P0 for a wedding mutes that wedding's P2, P3 and P4 alerts for an hour.
    fn default() -> Self {
        Self {
            source_matchers: vec![r#"priority="P0_CRITICAL""#.to_owned()],
            target_matchers: vec![r#"priority=~"P2_MEDIUM|P3_LOW|P4_INFO""#.to_owned()],
            equal: vec!["wedding_id".to_owned()],
            duration: one_hour(),
        }
    }
}

/// How the base priority is computed (`[classification]`). See the crate README for the
/// full rules.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ClassificationConfig {
    /// Base priority per event severity.
    pub severity: SeverityMap,
    /// Raise when the event's `risk_score` is at least this (default 90).
    pub risk_raise_at: u8,
    /// Raise when the threat-intelligence score is at least this (default 80).
    pub threat_raise_at: u8,
    /// Raise when threat intelligence says `malicious` (default true).
    pub raise_on_malicious: bool,
    /// Raise when an attack pattern matched with at least this confidence (default 0.8).
    pub pattern_confidence_at: f32,
    /// Raise when the event's target has an open scanner finding matched with at least
    /// this confidence (default 0.8: the attacked port itself, or a CVE the event names).
    pub vulnerability_confidence_at: f32,
    /// ... and that finding is at least this severe (default `high`); a finding whose CVE
    /// the event names counts whatever its severity.
    pub vulnerability_min_severity: vowguard_core::Severity,
    /// Levels to raise by when any of the signals above holds (default 1; 0 disables).
    pub raise_levels: u8,
    /// The least priority an event with a given wedding impact gets.
    pub impact_floors: ImpactFloors,
    /// The "a wedding is happening today" floor applies only to events at least this severe
    /// (default `low`), so ordinary activity on a wedding day (an `info` RSVP view) stays
    /// informational. Floors for data exposure (payment, guest lists, ...) always apply.
    pub impact_min_severity: vowguard_core::Severity,
    /// Users whose id starts with one of these are vendor accounts (default `["vendor-"]`).
    pub vendor_user_prefixes: Vec<String>,
    /// Resource types holding guest lists / guest contacts.
    pub guest_resource_types: Vec<String>,
    /// Resource types holding couples' personal data.
    pub couple_resource_types: Vec<String>,
    /// Resource types holding wedding photos.
    pub photo_resource_types: Vec<String>,
}

impl Default for ClassificationConfig {
    fn default() -> Self {
        Self {
            severity: SeverityMap::default(),
            risk_raise_at: 90,
            threat_raise_at: 80,
            raise_on_malicious: true,
            pattern_confidence_at: 0.8,
            vulnerability_confidence_at: 0.8,
            vulnerability_min_severity: vowguard_core::Severity::High,
            raise_levels: 1,
            impact_floors: ImpactFloors::default(),
            impact_min_severity: vowguard_core::Severity::Low,
            vendor_user_prefixes: vec!["vendor-".to_owned()],
            guest_resource_types: strings(&[
                "guest_lists",
                "guest_list",
                "guests",
                "guest_contacts",
            ]),
            couple_resource_types: strings(&[
                "couples",
                "couple_profiles",
                "couple_profile",
                "contracts",
            ]),
            photo_resource_types: strings(&[
                "photos",
                "wedding_photos",
                "portfolio",
                "portfolios",
                "galleries",
                "gallery",
            ]),
        }
    }
}

impl ClassificationConfig {
    /// Severity mapping only: no raises and no impact floors (the first cut).
    pub fn severity_only() -> Self {
        Self {
            raise_levels: 0,
            impact_floors: ImpactFloors::none(),
            ..Self::default()
        }
    }
}

pub(crate) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Base priority per severity (default critical→P0 … info→P4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SeverityMap {
    /// For `critical`.
    pub critical: Priority,
    /// For `high`.
    pub high: Priority,
    /// For `medium`.
    pub medium: Priority,
    /// For `low`.
    pub low: Priority,
    /// For `info`.
    pub info: Priority,
}

impl Default for SeverityMap {
    fn default() -> Self {
        Self {
            critical: Priority::P0Critical,
            high: Priority::P1High,
            medium: Priority::P2Medium,
            low: Priority::P3Low,
            info: Priority::P4Info,
        }
    }
}

impl SeverityMap {
    /// The base priority of `severity`.
    pub fn get(&self, severity: Severity) -> Priority {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
}

/// The least priority an event gets for each kind of wedding impact (`P4_INFO` disables
/// a floor).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImpactFloors {
    /// A wedding happening today is affected (default P1).
    pub active_wedding: Priority,
    /// Payment data may be exposed (default P1).
    pub payment_data: Priority,
    /// A vendor account may be compromised (default P1).
    pub vendor_compromise: Priority,
    /// Guest lists were read or exported (default P2).
    pub guest_lists: Priority,
    /// Couples' personal data is at risk (default P2).
    pub couples_data: Priority,
    /// Wedding photos are at risk (default P3).
    pub wedding_photos: Priority,
}

impl Default for ImpactFloors {
    fn default() -> Self {
        Self {
            active_wedding: Priority::P1High,
            payment_data: Priority::P1High,
            vendor_compromise: Priority::P1High,
            guest_lists: Priority::P2Medium,
            couples_data: Priority::P2Medium,
            wedding_photos: Priority::P3Low,
        }
    }
}

impl ImpactFloors {
    /// Every floor disabled.
    pub fn none() -> Self {
        Self {
            active_wedding: Priority::P4Info,
            payment_data: Priority::P4Info,
            vendor_compromise: Priority::P4Info,
            guest_lists: Priority::P4Info,
            couples_data: Priority::P4Info,
            wedding_photos: Priority::P4Info,
        }
    }
}

/// The wedding-day protocols (`[protocols]`); all on by default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ProtocolsConfig {
    /// Peak-day escalation.
    pub saturday_escalation: SaturdayEscalation,
    /// Protection of weddings happening now.
    pub active_wedding_protection: ActiveWeddingProtection,
    /// Guest data breach handling (GDPR).
    pub guest_data_breach: GuestDataBreach,
}

impl ProtocolsConfig {
    /// All three protocols switched off.
    pub fn disabled() -> Self {
        let mut p = Self::default();
        p.saturday_escalation.enabled = false;
        p.active_wedding_protection.enabled = false;
        p.guest_data_breach.enabled = false;
        p
    }
}

/// Saturday escalation: on peak wedding days every security event is raised and reaches
/// on-call quickly.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaturdayEscalation {
    /// On by default.
    pub enabled: bool,
    /// Peak days (default `["saturday"]`), in `timezone`, at the event's timestamp.
    pub days: Vec<String>,
    /// The platform's IANA time zone (default `Europe/London`).
    pub timezone: String,
    /// Levels to raise by (default 1).
    pub raise_levels: u8,
    /// On-call notifier ids added to the alert (default `["oncall"]`; ids that are not
    /// configured are ignored).
    pub notify: Vec<String>,
    /// Only events at or above this priority (after the raise) go to `notify`
    /// (default `P2_MEDIUM`: everything above informational).
    pub notify_min_priority: Priority,
    /// Delivery deadline: caps the grouping wait of escalated alerts (default `2m`).
    pub deliver_within: HumanDuration,
}

impl Default for SaturdayEscalation {
    fn default() -> Self {
        Self {
            enabled: true,
            days: vec!["saturday".to_owned()],
            timezone: "Europe/London".to_owned(),
            raise_levels: 1,
            notify: vec!["oncall".to_owned()],
            notify_min_priority: Priority::P2Medium,
            deliver_within: HumanDuration(Duration::from_secs(120)),
        }
    }
}

/// Active wedding protection: events touching a wedding happening today (or a vendor
/// account compromise close to a wedding) become P0 and request automatic actions.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveWeddingProtection {
    /// On by default.
    pub enabled: bool,
    /// Wedding phases in which any event (of at least `min_severity`) is P0 (default `["day_of"]`).
    pub phases: Vec<WeddingPhase>,
    /// Wedding phases in which a vendor account compromise is P0 (default `["week_of", "day_of"]`).
    pub vendor_compromise_phases: Vec<WeddingPhase>,
    /// Events below this severity are left alone (default `low`: informational events
    /// such as a successful login by the couple do not page).
    pub min_severity: Severity,
    /// Actions requested through the host's [`ActionHook`](crate::ActionHook).
    pub actions: Vec<String>,
    /// Extra notifier ids (default none).
    pub notify: Vec<String>,
    /// Delivery deadline (default `30s`).
    pub deliver_within: HumanDuration,
}

impl Default for ActiveWeddingProtection {
    fn default() -> Self {
        Self {
            enabled: true,
            phases: vec![WeddingPhase::DayOf],
            vendor_compromise_phases: vec![WeddingPhase::WeekOf, WeddingPhase::DayOf],
            min_severity: Severity::Low,
            actions: strings(&[
                "lock_accounts",
                "read_only_mode",
                "notify_wedding_coordinator",
            ]),
            notify: Vec::new(),
            deliver_within: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// Guest data breach: unauthorised guest-list access, guest contact export or mass guest
/// data queries become P0, notify legal counsel and open a breach record.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestDataBreach {
    /// On by default.
    pub enabled: bool,
    /// A query touching at least this many guest records is a mass query (default 500).
    pub mass_query_records: u64,
    /// Actions that export guest contacts.
    pub export_actions: Vec<String>,
    /// Extra notifier ids (default `["legal"]`; ids that are not configured are ignored).
    pub notify: Vec<String>,
    /// Notification deadline from the event (default `72h`, GDPR Art. 33).
    pub deadline: HumanDuration,
    /// Delivery deadline for the alert (default `30s`).
    pub deliver_within: HumanDuration,
}

impl Default for GuestDataBreach {
    fn default() -> Self {
        Self {
            enabled: true,
            mass_query_records: 500,
            export_actions: strings(&[
                "guest_list.export",
                "guest_list.export_contacts",
                "guest_contacts.export",
            ]),
            notify: vec!["legal".to_owned()],
            deadline: HumanDuration(Duration::from_secs(72 * 3600)),
            deliver_within: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// A duration written as `500ms`, `30s`, `5m`, `4h`, `1d` or combinations like `1h30m`: the
/// configuration's one duration type, [`vowguard_core::duration::HumanDuration`].
pub use vowguard_core::duration::HumanDuration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let c: RouterConfig = toml::from_str("").unwrap();
        assert_eq!(c, RouterConfig::default());
        assert_eq!(c.inhibit_rules.len(), 1);
        assert!(c.protocols.saturday_escalation.enabled);
        assert_eq!(c.classification.risk_raise_at, 90);
        let err = toml::from_str::<RouterConfig>("colour = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let err = toml::from_str::<RouterConfig>("[protocols.guest_data_breach]\nmass = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `mass`"), "{err}");
    }

    #[test]
    fn retain_protocol_notifiers_leaves_routes_alone() {
        let mut config = crate::default_config();
        let routes_before = config.routes.clone();
        let changes = config.retain_protocol_notifiers(&["secops"]);
        assert_eq!(
            config.routes, routes_before,
            "routes are the user's: unknown ids stay errors"
        );
        assert!(config.protocols.guest_data_breach.notify.is_empty());
        assert!(config.protocols.saturday_escalation.notify.is_empty());
        assert!(changes.iter().any(|c| c.contains("`legal`")), "{changes:?}");
    }

    #[test]
    fn retain_notifiers_prunes_missing_ids() {
        let mut c = crate::default_config();
        let notes = c.retain_notifiers(&["secops"]);
        assert!(notes.iter().any(|n| n.contains("`oncall`")), "{notes:?}");
        assert!(c.protocols.guest_data_breach.notify.is_empty());
        assert!(
            c.routes
                .iter()
                .all(|r| r.notify.iter().all(|n| n == "secops"))
        );
        crate::Router::from_config(c, &["secops"]).unwrap();
    }
}

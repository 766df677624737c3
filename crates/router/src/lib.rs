//! Alert routing for vowguard.
//!
//! The alert path for one event:
//!
//! 1. [`Classifier`] computes the priority (P0..P4) from severity, risk score, threat
//!    intelligence, attack patterns and [`WeddingImpact`], then applies the wedding-day
//!    protocols (Saturday escalation, active wedding protection, guest data breach), each
//!    with a human reason.
//! 2. The route tree ([`RouteConfig`], Alertmanager's model) picks the routes: ordered,
//!    nested, `continue`, inherited settings, matchers, active/mute time intervals.
//! 3. The [`Inhibitor`] mutes alerts a recent, more urgent alert covers (a P0 for a
//!    wedding mutes its P2..P4).
//! 4. [`Router::route`] returns one [`RoutedAlert`] per route (and per distinct receiver
//!    parameters), adds the protocols' extra receivers, requests protocol actions through
//!    the host's [`ActionHook`] and opens [`BreachRecord`]s in a [`BreachLog`].
//!
//! [`AlertGrouper`] (group_wait / group_interval / repeat_interval) is a pure state
//! machine the host drives with [`Router::grouping`]'s key and timing.
//!
//! Each alert carries a stable `dedup_key` built from the route's `group_by` fields, so a
//! burst of related events is one incident on channels that deduplicate.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use vowguard_core::{Alert, AlertRouting, Error, Event, Priority, RoutedAlert, WeddingImpact};

mod actions;
mod cases;
mod classify;
mod config;
mod defaults;
mod group;
mod interval;
mod matcher;
mod params;
mod shared;
mod shared_group;
mod tree;
mod vuln_text;

pub use actions::{
    ActionHook, BreachLog, BreachRecord, JsonlBreachLog, LoggingActionHook, RequestedAction,
};
pub use cases::{CaseExpectation, CaseResult, CasesFile, RouteCase, run_cases};
pub use classify::{
    ACTIVE_WEDDING_PROTECTION, Classification, Classifier, GUEST_DATA_BREACH, ProtocolHit,
    SATURDAY_ESCALATION, default_severity,
};
pub use config::{
    ActiveWeddingProtection, ClassificationConfig, GuestDataBreach, HumanDuration, ImpactFloors,
    InhibitRule, ProtocolsConfig, RouteConfig, RouteMatch, RouterConfig, SaturdayEscalation,
    SeverityMap, TimeIntervalConfig, TimeRangeConfig,
};
pub use defaults::{DEFAULT_ROUTES_TOML, default_config};
pub use group::{
    AlertGrouper, GroupSnapshot, GroupTiming, GrouperSnapshot, InhibitionKey, InhibitionSource,
    Inhibitor, coalesce_group_notifications,
};
pub use interval::TimeInterval;
pub use matcher::{BREACH_DEADLINE_LABEL, MATCHER_FIELDS, MatchContext, Matcher};
pub use params::{ParamValue, Params};
pub use shared::SharedInhibition;
pub use shared_group::{MAX_REMEMBERED_ALERT_IDS, SharedGroup};
pub use vuln_text::describe as describe_vulnerability;

use tree::{Compiler, RouteNode, walk};

/// Event fields a route can group by.
pub const GROUP_FIELDS: &[&str] = &[
    "category",
    "action",
    "wedding_id",
    "user_id",
    "source_ip",
    "resource_type",
];

/// The route name of alerts that only a protocol sends (no route took the event):
/// `protocol/<protocol name>`.
pub const PROTOCOL_ROUTE_PREFIX: &str = "protocol/";

/// The router: classification, route tree, inhibition and protocol side effects.
/// Implements [`AlertRouting`] for the pipeline. Clones share inhibition state.
#[derive(Debug, Clone)]
pub struct Router {
    classifier: Classifier,
    routes: Vec<RouteNode>,
    intervals: Vec<TimeInterval>,
    inhibitor: Arc<Inhibitor>,
    known_notifiers: Vec<String>,
    action_hook: Arc<dyn ActionHook>,
    breach_log: Option<Arc<dyn BreachLog>>,
}

impl Default for Router {
    /// No routes, severity-only classification.
    fn default() -> Self {
        Self::new(Vec::new(), &[]).expect("an empty route list is valid")
    }
}

/// One receiver of a route, with the parameters it gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receiver {
    /// The notifier id.
    pub notifier: String,
    /// The receiver parameters (route `params` merged with `receiver_params.<id>`).
    pub params: Map<String, Value>,
}

/// One route that took the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteStep {
    /// The route path, e.g. `p0-critical` or `root/p0-wedding-emergency`.
    pub route: String,
    /// Its receivers.
    pub receivers: Vec<Receiver>,
    /// Why it does not notify now (a time interval), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<String>,
}

/// Why an event was routed the way it was (for `route explain`, tests and the admin API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteDecision {
    /// The priority.
    pub priority: Priority,
    /// Why that priority.
    pub reasons: Vec<String>,
    /// The wedding impact.
    pub impact: WeddingImpact,
    /// The protocols the event triggered.
    pub protocols: Vec<ProtocolHit>,
    /// The routes that notify (not muted, not inhibited), in order, with their notifiers
    /// (protocol receivers included on the first; a protocol-only alert appears as
    /// `protocol/<name>`).
    pub matched: Vec<(String, Vec<String>)>,
    /// Every route that took the event, muted ones included, with receivers and params.
    pub routes: Vec<RouteStep>,
    /// Why the event's alerts are inhibited, if they are.
    pub inhibited: Option<String>,
    /// Receivers the protocols add (configured ones only).
    pub protocol_notifiers: Vec<String>,
    /// Automatic actions the protocols request.
    pub actions: Vec<String>,
    /// When a breach record would be due, if the event opens one.
    pub breach_deadline: Option<DateTime<Utc>>,
}

impl RouteDecision {
    /// Every notifier that would be notified, sorted and deduplicated.
    pub fn notifiers(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .matched
            .iter()
            .flat_map(|(_, n)| n.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// A human-readable rendering for the CLI (`vowguard route explain`).
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "priority: {}", self.priority);
        let _ = writeln!(out, "why:");
        for r in &self.reasons {
            let _ = writeln!(out, "  - {r}");
        }
        let i = &self.impact;
        if i.any() {
            let mut parts = Vec::new();
            if i.active_weddings_affected > 0 {
                parts.push(format!(
                    "active weddings affected: {}",
                    i.active_weddings_affected
                ));
            }
            if i.guest_lists_accessed > 0 {
                parts.push(format!("guest lists accessed: {}", i.guest_lists_accessed));
            }
            if i.vendor_accounts_compromised > 0 {
                parts.push(format!(
                    "vendor accounts compromised: {}",
                    i.vendor_accounts_compromised
                ));
            }
            for (flag, text) in [
                (i.couples_data_at_risk, "couples' data at risk"),
                (i.payment_data_exposed, "payment data exposed"),
                (i.wedding_photos_at_risk, "wedding photos at risk"),
            ] {
                if flag {
                    parts.push(text.to_owned());
                }
            }
            let _ = writeln!(out, "wedding impact: {}", parts.join("; "));
        } else {
            let _ = writeln!(out, "wedding impact: none");
        }
        if !self.protocols.is_empty() {
            let _ = writeln!(out, "protocols:");
            for p in &self.protocols {
                let _ = writeln!(out, "  - {}: {}", p.protocol, p.reason);
            }
        }
        if !self.actions.is_empty() {
            let _ = writeln!(out, "actions requested: {}", self.actions.join(", "));
        }
        if let Some(deadline) = self.breach_deadline {
            let _ = writeln!(
                out,
                "breach record: notification due by {}",
                deadline.to_rfc3339()
            );
        }
        if self.routes.is_empty() {
            let _ = writeln!(out, "routes: none matched");
        } else {
            let _ = writeln!(out, "routes:");
            for step in &self.routes {
                let state = match &step.muted {
                    Some(why) => format!(" [muted: {why}]"),
                    None => String::new(),
                };
                let _ = writeln!(out, "  - {}{state}", step.route);
                for r in &step.receivers {
                    if r.params.is_empty() {
                        let _ = writeln!(out, "      → {}", r.notifier);
                    } else {
                        let _ = writeln!(
                            out,
                            "      → {} {}",
                            r.notifier,
                            Value::Object(r.params.clone())
                        );
                    }
                }
            }
        }
        if !self.protocol_notifiers.is_empty() {
            let _ = writeln!(
                out,
                "protocol receivers: {}",
                self.protocol_notifiers.join(", ")
            );
        }
        if let Some(why) = &self.inhibited {
            let _ = writeln!(out, "inhibited: {why}");
        }
        let notifiers = self.notifiers();
        let _ = writeln!(
            out,
            "notifies: {}",
            if notifiers.is_empty() {
                "nobody".to_owned()
            } else {
                notifiers.join(", ")
            }
        );
        out
    }
}

/// Everything routing one event produces, before side effects.
struct Plan {
    classification: Classification,
    steps: Vec<RouteStep>,
    alerts: Vec<RoutedAlert>,
    /// The names of the protocols the event triggered (what inhibit matchers on
    /// `protocol` see).
    protocol_names: Vec<String>,
    inhibited: Option<String>,
    protocol_notifiers: Vec<String>,
}

impl Router {
    /// Compiles `routes` with the first-cut behaviour: priority by severity only, no
    /// protocols, no inhibition. `known_notifiers` are the configured notifier ids: a route
    /// naming another id is a config error naming the route.
    pub fn new(routes: Vec<RouteConfig>, known_notifiers: &[&str]) -> Result<Self, Error> {
        Self::from_config(RouterConfig::severity_only(routes), known_notifiers)
    }

    /// Compiles the full configuration. Errors name the key at fault (route, matcher,
    /// time interval, inhibit rule, protocol).
    pub fn from_config(config: RouterConfig, known_notifiers: &[&str]) -> Result<Self, Error> {
        let mut intervals: Vec<TimeInterval> = Vec::new();
        for ti in &config.time_intervals {
            if intervals.iter().any(|i| i.name() == ti.name) {
                return Err(Error::config(format!(
                    "`time_intervals`: `{}` is defined twice",
                    ti.name
                )));
            }
            intervals.push(TimeInterval::compile(ti)?);
        }
        let routes = Compiler {
            known_notifiers,
            intervals: &intervals,
        }
        .compile(config.routes)?;
        let inhibitor = Inhibitor::new(&config.inhibit_rules)?;
        let classifier = Classifier::from_config(config.classification, config.protocols)?;
        Ok(Self {
            classifier,
            routes,
            intervals,
            inhibitor: Arc::new(inhibitor),
            known_notifiers: known_notifiers.iter().map(|s| (*s).to_owned()).collect(),
            action_hook: Arc::new(LoggingActionHook),
            breach_log: None,
        })
    }

    /// Uses `hook` for protocol actions (default: [`LoggingActionHook`]).
    pub fn with_action_hook(mut self, hook: Arc<dyn ActionHook>) -> Self {
        self.action_hook = hook;
        self
    }

    /// Stores breach records in `log` (default: none; records are only logged).
    pub fn with_breach_log(mut self, log: Arc<dyn BreachLog>) -> Self {
        self.breach_log = Some(log);
        self
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The inhibitor (shared with clones of this router).
    pub fn inhibitor(&self) -> &Inhibitor {
        &self.inhibitor
    }

    /// The keys of the inhibition sources that could mute what [`AlertRouting::route`]
    /// raises for `event` (classified and matched against the routes, nothing routed); none
    /// when the event raises no alert (nothing to mute).
    fn inhibition_keys_of(&self, event: &Arc<Event>) -> Vec<InhibitionKey> {
        let plan = self.plan(event, self.classifier.classify(event));
        if plan.alerts.is_empty() {
            return Vec::new();
        }
        self.inhibitor.keys_in(&MatchContext {
            event,
            priority: plan.classification.priority,
            protocols: &plan.protocol_names,
        })
    }

    /// Decides how `event` is routed now, without any side effect: no action requested,
    /// no breach record, inhibition state read but not changed. [`AlertRouting::route`] is
    /// this decision plus its effects, so the two cannot drift apart.
    pub fn decide(&self, event: &Arc<Event>) -> RouteDecision {
        self.describe(event, self.plan(event, self.classifier.classify(event)))
    }

    /// [`Router::decide`] for an event that is not shared yet.
    pub fn explain(&self, event: &Event) -> RouteDecision {
        self.decide(&Arc::new(event.clone()))
    }

    fn describe(&self, event: &Event, plan: Plan) -> RouteDecision {
        let breach_deadline = plan
            .classification
            .protocols
            .iter()
            .filter_map(|p| p.breach_deadline)
            .min()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| event.timestamp + d);
        let matched = if plan.inhibited.is_some() {
            Vec::new()
        } else {
            plan.alerts
                .iter()
                .map(|r| (r.alert.route.clone(), r.notifiers.clone()))
                .collect()
        };
        let actions = plan
            .classification
            .protocols
            .iter()
            .flat_map(|p| p.actions.iter().cloned())
            .collect();
        RouteDecision {
            priority: plan.classification.priority,
            reasons: plan.classification.reasons,
            impact: plan.classification.impact,
            protocols: plan.classification.protocols,
            matched,
            routes: plan.steps,
            inhibited: plan.inhibited,
            protocol_notifiers: plan.protocol_notifiers,
            actions,
            breach_deadline,
        }
    }

    /// The longest grouping timer of any route (`group_wait`, `group_interval`,
    /// `repeat_interval`, `forget_after`): how long a store shared by replicas must keep a
    /// group.
    pub fn longest_group_timer(&self) -> std::time::Duration {
        fn longest(nodes: &[RouteNode]) -> std::time::Duration {
            nodes
                .iter()
                .map(|n| {
                    let t = n.timing;
                    t.group_wait
                        .max(t.group_interval)
                        .max(t.repeat_interval)
                        .max(t.forget_after)
                        .max(longest(&n.children))
                })
                .max()
                .unwrap_or_default()
        }
        let d = GroupTiming::default();
        longest(&self.routes).max(
            d.group_wait
                .max(d.group_interval)
                .max(d.repeat_interval)
                .max(d.forget_after),
        )
    }

    /// The grouping key and timers for a routed alert, for an [`AlertGrouper`]: the key is
    /// the dedup key plus the notifiers; the timers are the route's, capped by a protocol's
    /// delivery deadline (`params["deliver_within_seconds"]`).
    pub fn grouping(&self, routed: &RoutedAlert) -> (String, GroupTiming) {
        fn find<'a>(nodes: &'a [RouteNode], path: &str) -> Option<&'a RouteNode> {
            nodes.iter().find_map(|n| {
                if n.path == path {
                    Some(n)
                } else {
                    find(&n.children, path)
                }
            })
        }
        let timing =
            find(&self.routes, &routed.alert.route).map_or_else(GroupTiming::default, |n| n.timing);
        let cap = routed
            .alert
            .params
            .get("deliver_within_seconds")
            .and_then(Value::as_u64)
            .map(std::time::Duration::from_secs);
        (
            format!("{}|{}", routed.alert.dedup_key, routed.notifiers.join(",")),
            timing.capped(cap),
        )
    }

    /// The pure part of routing: classification, route tree, receivers, inhibition check.
    fn plan(&self, event: &Arc<Event>, classification: Classification) -> Plan {
        let protocol_names = classification.protocol_names();
        let ctx = MatchContext {
            event,
            priority: classification.priority,
            protocols: &protocol_names,
        };
        let mut nodes = Vec::new();
        walk(&self.routes, &ctx, &mut nodes);

        let mut extra_params = Map::new();
        if !protocol_names.is_empty() {
            extra_params.insert("protocols".into(), Value::from(protocol_names.clone()));
            if let Some(d) = classification.deliver_within() {
                extra_params.insert("deliver_within_seconds".into(), Value::from(d.as_secs()));
            }
        }
        let mut steps = Vec::new();
        let mut alerts: Vec<RoutedAlert> = Vec::new();
        for node in nodes {
            let muted = node.muted(event.timestamp, &self.intervals);
            let mut receivers: Vec<Receiver> = Vec::new();
            for id in &node.notify {
                let mut params = node.params.clone();
                if let Some(own) = node.receiver_params.get(id) {
                    params.extend(own.clone());
                }
                receivers.push(Receiver {
                    notifier: id.clone(),
                    params,
                });
            }
            if muted.is_none() {
                // Receivers with identical params share one alert.
                let mut groups: Vec<(Map<String, Value>, Vec<String>)> = Vec::new();
                for r in &receivers {
                    match groups.iter_mut().find(|(p, _)| *p == r.params) {
                        Some((_, ids)) => ids.push(r.notifier.clone()),
                        None => groups.push((r.params.clone(), vec![r.notifier.clone()])),
                    }
                }
                for (mut params, notifiers) in groups {
                    params.extend(extra_params.clone());
                    let mut alert = self.alert(event, &classification, &node.path, &node.group_by);
                    alert.params = params;
                    alerts.push(RoutedAlert { alert, notifiers });
                }
            }
            steps.push(RouteStep {
                route: node.path.clone(),
                receivers,
                muted,
            });
        }

        // Receivers the protocols add, once, to the first alert.
        let mut protocol_notifiers: Vec<String> = Vec::new();
        for hit in &classification.protocols {
            for id in &hit.notify {
                if self.known_notifiers.contains(id) && !protocol_notifiers.contains(id) {
                    protocol_notifiers.push(id.clone());
                }
            }
        }
        let missing: Vec<String> = protocol_notifiers
            .iter()
            .filter(|id| !alerts.iter().any(|a| a.notifiers.contains(id)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            match alerts.first_mut() {
                Some(first) => first.notifiers.extend(missing),
                None => {
                    let hit = classification
                        .protocols
                        .iter()
                        .find(|h| h.notify.iter().any(|id| missing.contains(id)))
                        .map_or("protocol", |h| h.protocol);
                    let route = format!("{PROTOCOL_ROUTE_PREFIX}{hit}");
                    let group_by: Vec<String> = ["category", "action", "wedding_id", "user_id"]
                        .map(String::from)
                        .to_vec();
                    let mut alert = self.alert(event, &classification, &route, &group_by);
                    alert.params = extra_params;
                    alerts.push(RoutedAlert {
                        alert,
                        notifiers: missing,
                    });
                }
            }
        }

        // Every alert of one event shares event, priority and protocols: one check covers
        // them all (and an event no route took, which can still be a source).
        let inhibited = self.inhibitor.inhibited_in(&ctx, event.timestamp);
        Plan {
            classification,
            steps,
            alerts,
            protocol_names,
            inhibited,
            protocol_notifiers,
        }
    }

    fn alert(
        &self,
        event: &Arc<Event>,
        c: &Classification,
        route: &str,
        group_by: &[String],
    ) -> Alert {
        let mut alert = Alert::new(event.clone(), c.priority, route.to_owned());
        alert.reasons = c.reasons.clone();
        alert.impact = c.impact.clone();
        alert.dedup_key = dedup_key(route, group_by, event);
        alert.created_at = Utc::now();
        alert
    }

    /// Opens a breach record when the event triggered a protocol with a breach deadline.
    /// The record states what was done about notification, not what the protocol meant
    /// to do: which notifiers the alert was handed to, or why none.
    fn open_breach(&self, event: &Event, plan: &Plan) -> Option<BreachRecord> {
        let classification = &plan.classification;
        let hit = classification
            .protocols
            .iter()
            .find(|p| p.breach_deadline.is_some())?;
        let deadline = chrono::Duration::from_std(hit.breach_deadline?).ok()?;
        let mut handed_to: Vec<String> = Vec::new();
        if plan.inhibited.is_none() {
            for routed in &plan.alerts {
                for id in &routed.notifiers {
                    if !handed_to.contains(id) {
                        handed_to.push(id.clone());
                    }
                }
            }
        }
        let protocol_configured: Vec<&String> = hit
            .notify
            .iter()
            .filter(|id| self.known_notifiers.contains(id))
            .collect();
        let protocol_missing: Vec<&String> = hit
            .notify
            .iter()
            .filter(|id| !self.known_notifiers.contains(id))
            .collect();
        let mut notification = match &plan.inhibited {
            Some(why) => format!("not notified: the alert was {why}"),
            None if handed_to.is_empty() => {
                "not notified: no route or protocol notifier took the alert".to_owned()
            }
            None => format!(
                "alert handed to {} for delivery (results in notifications.jsonl)",
                handed_to.join(", ")
            ),
        };
        if protocol_configured.is_empty() {
            notification.push_str(&format!(
                "; no notifier configured for protocol `{}` (`protocols.{}.notify`)",
                hit.protocol, hit.protocol
            ));
        }
        if !protocol_missing.is_empty() {
            let names: Vec<&str> = protocol_missing.iter().map(|s| s.as_str()).collect();
            notification.push_str(&format!(
                "; protocol notifier {} not configured",
                names.join(", ")
            ));
        }
        let record = BreachRecord {
            id: uuid::Uuid::now_v7().to_string(),
            opened_at: event.timestamp,
            deadline: event.timestamp + deadline,
            wedding_id: wedding_id(event),
            records_affected: event.record_count,
            event_id: event.id.clone(),
            reason: hit.reason.clone(),
            handed_to,
            notification,
        };
        match &self.breach_log {
            Some(log) => {
                if let Err(e) = log.record(&record) {
                    tracing::error!(
                        error = e.to_string().as_str(),
                        breach_id = record.id.as_str(),
                        event_id = record.event_id.as_str(),
                        "could not store the breach record"
                    );
                }
            }
            None => tracing::warn!(
                breach_id = record.id.as_str(),
                event_id = record.event_id.as_str(),
                deadline = record.deadline.to_rfc3339().as_str(),
                notification = record.notification.as_str(),
                "guest data breach opened (no breach log installed)"
            ),
        }
        Some(record)
    }
}

fn wedding_id(event: &Event) -> Option<String> {
    event.wedding_id.clone().or_else(|| {
        event
            .enrichment
            .wedding
            .as_ref()
            .map(|w| w.wedding_id.clone())
    })
}

impl AlertRouting for Router {
    /// [`Router::decide`] plus its effects: the protocols' actions are requested, a breach
    /// record is opened, and a notifying alert is remembered for inhibition.
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        let mut plan = self.plan(event, self.classifier.classify(event));
        for hit in &plan.classification.protocols {
            for action in &hit.actions {
                self.action_hook.request(&RequestedAction {
                    action: action.clone(),
                    event_id: event.id.clone(),
                    wedding_id: wedding_id(event),
                    user_ids: event.user_id.iter().cloned().collect(),
                    reason: hit.reason.clone(),
                });
            }
        }
        let breach = self.open_breach(event, &plan);
        if let Some(why) = &plan.inhibited {
            tracing::info!(
                event_id = event.id.as_str(),
                priority = plan.classification.priority.as_str(),
                reason = why.as_str(),
                "alert inhibited"
            );
            return Vec::new();
        }
        self.inhibitor.observe_in(&MatchContext {
            event,
            priority: plan.classification.priority,
            protocols: &plan.protocol_names,
        });
        if let Some(b) = breach {
            for routed in &mut plan.alerts {
                let params = &mut routed.alert.params;
                params.insert("breach_id".into(), Value::from(b.id.clone()));
                params.insert(
                    "breach_deadline".into(),
                    Value::from(b.deadline.to_rfc3339()),
                );
            }
        }
        plan.alerts
    }

    fn dry_run(&self, event: &Arc<Event>) -> Option<vowguard_core::RoutingDryRun> {
        let plan = self.plan(event, self.classifier.classify(event));
        let alerts = if plan.inhibited.is_some() {
            Vec::new()
        } else {
            plan.alerts.clone()
        };
        let decision = self.describe(event, plan);
        Some(vowguard_core::RoutingDryRun {
            alerts,
            decision: serde_json::to_value(&decision).unwrap_or(Value::Null),
        })
    }

    fn export_state(&self) -> Option<Value> {
        serde_json::to_value(RouterState {
            inhibition: self.inhibitor.export(),
        })
        .ok()
    }

    fn import_state(&self, state: Value) -> Result<(), Error> {
        let state: RouterState = serde_json::from_value(state)
            .map_err(|e| Error::internal(format!("router state is unreadable: {e}")))?;
        let offered = state.inhibition.len();
        let taken = self.inhibitor.import(state.inhibition);
        tracing::info!(
            sources = taken,
            dropped = offered - taken,
            "inhibition sources restored"
        );
        Ok(())
    }

    fn grouping(&self, alert: &RoutedAlert) -> Option<vowguard_core::AlertGrouping> {
        let (key, timing) = Router::grouping(self, alert);
        Some(vowguard_core::AlertGrouping {
            key,
            group_wait: timing.group_wait,
            group_interval: timing.group_interval,
            repeat_interval: timing.repeat_interval,
            forget_after: timing.forget_after,
        })
    }
}

/// What the router keeps across a restart ([`AlertRouting::export_state`]).
#[derive(Debug, Default, Serialize, serde::Deserialize)]
struct RouterState {
    /// The inhibitor's sources, oldest first.
    #[serde(default)]
    inhibition: Vec<group::InhibitionSource>,
}

/// `vowguard-<route>-<16 hex digits>`: a stable FNV-1a hash of the route and the group-by
/// field values, so the same group always gets the same key across restarts and hosts.
pub fn dedup_key(route: &str, group_by: &[String], event: &Event) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(route.as_bytes());
    for field in group_by {
        let value = match field.as_str() {
            "category" => Some(event.category.as_str().to_owned()),
            "action" => Some(event.action.clone()),
            "wedding_id" => event.wedding_id.clone(),
            "user_id" => event.user_id.clone(),
            "source_ip" => event.source_ip.map(|ip| ip.to_string()),
            "resource_type" => event.resource_type.clone(),
            _ => None,
        };
        feed(field.as_bytes());
        feed(value.unwrap_or_default().as_bytes());
    }
    let slug: String = route
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let mut key = format!("vowguard-{slug}-");
    let _ = write!(key, "{hash:016x}");
    key
}

#[cfg(test)]
mod tests;

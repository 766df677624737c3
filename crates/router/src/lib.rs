//! Alert routing for vowguard.
//!
//! [`Classifier`] turns an enriched event into a [`Priority`] with the reasons for it;
//! [`Router`] walks the configured `[[routes]]` in order and raises one [`Alert`] per matching
//! route, addressed to the route's notifiers. The first matching route wins unless it sets
//! `continue = true` (Alertmanager's convention). Each alert carries a stable `dedup_key`
//! built from the route's `group_by` fields, so a burst of related events (a brute-force
//! run) is one incident on channels that deduplicate.
//!
//! This is the first cut: classification is by severity; the full route tree (nested
//! routes, time intervals, grouping timers, inhibition) builds on the same types.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use vowguard_core::{Alert, AlertRouting, Category, Error, Event, Priority, RoutedAlert, Severity};

/// Event fields a route can group by (the default is all of them but `source_ip`).
pub const GROUP_FIELDS: &[&str] = &[
    "category",
    "action",
    "wedding_id",
    "user_id",
    "source_ip",
    "resource_type",
];

/// Which events a route takes. Every listed condition must hold; an empty list matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Alert priorities, e.g. `["P0"]` or `["P0_CRITICAL", "P1_HIGH"]`.
    #[serde(default)]
    pub priority: Vec<Priority>,
    /// Event categories.
    #[serde(default)]
    pub category: Vec<Category>,
    /// Event actions (exact).
    #[serde(default)]
    pub action: Vec<String>,
}

impl RouteMatch {
    fn matches(&self, event: &Event, priority: Priority) -> bool {
        (self.priority.is_empty() || self.priority.contains(&priority))
            && (self.category.is_empty() || self.category.contains(&event.category))
            && (self.action.is_empty() || self.action.contains(&event.action))
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Route name, shown in alerts and the notification log.
    pub name: String,
    /// Which alerts this route takes.
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    /// Notifier ids (`[notifiers.<id>]`) that receive the alert.
    pub notify: Vec<String>,
    /// Keep evaluating later routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Event fields that identify an alert group (for the dedup key).
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// Receiver parameters handed to the notifiers (e.g. `channel`, `mention`, `severity`,
    /// `recipients`).
    #[serde(default)]
    pub params: toml::Table,
}

fn default_group_by() -> Vec<String> {
    ["category", "action", "wedding_id", "user_id"]
        .map(String::from)
        .to_vec()
}

/// Decides an event's priority.
#[derive(Debug, Clone, Default)]
pub struct Classifier;

impl Classifier {
    /// The priority of `event` and why: severity critical→P0, high→P1, medium→P2, low→P3,
    /// info→P4.
    pub fn classify(&self, event: &Event) -> (Priority, Vec<String>) {
        let priority = Priority::from_severity(event.severity);
        let reason = format!("severity {} → {priority}", event.severity);
        (priority, vec![reason])
    }
}

/// A compiled route.
#[derive(Debug, Clone)]
struct Route {
    config: RouteConfig,
    params: Map<String, Value>,
}

/// The ordered route list; implements [`AlertRouting`] for the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Router {
    classifier: Classifier,
    routes: Vec<Route>,
}

/// Why an event was routed the way it was (for `route explain` and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    /// The priority.
    pub priority: Priority,
    /// Why that priority.
    pub reasons: Vec<String>,
    /// The routes that matched, in order, with their notifiers.
    pub matched: Vec<(String, Vec<String>)>,
}

impl Router {
    /// Compiles the routes. `known_notifiers` are the configured notifier ids: a route naming
    /// another id is a config error naming the route.
    pub fn new(routes: Vec<RouteConfig>, known_notifiers: &[&str]) -> Result<Self, Error> {
        let mut compiled = Vec::with_capacity(routes.len());
        for (index, route) in routes.into_iter().enumerate() {
            let key = format!("routes[{index}] ({})", route.name);
            if route.name.trim().is_empty() {
                return Err(Error::config(format!(
                    "`routes[{index}].name`: must not be empty"
                )));
            }
            if route.notify.is_empty() {
                return Err(Error::config(format!("`{key}.notify`: names no notifier")));
            }
            for id in &route.notify {
                if !known_notifiers.contains(&id.as_str()) {
                    let mut known: Vec<_> = known_notifiers.to_vec();
                    known.sort_unstable();
                    return Err(Error::config(format!(
                        "`{key}.notify`: unknown notifier `{id}`; configured notifiers: {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
            for field in &route.group_by {
                if !GROUP_FIELDS.contains(&field.as_str()) {
                    return Err(Error::config(format!(
                        "`{key}.group_by`: unknown field `{field}`; expected one of {}",
                        GROUP_FIELDS.join(", ")
                    )));
                }
            }
            let Ok(Value::Object(params)) = serde_json::to_value(&route.params) else {
                return Err(Error::config(format!("`{key}.params`: must be a table")));
            };
            compiled.push(Route {
                config: route,
                params,
            });
        }
        Ok(Self {
            classifier: Classifier,
            routes: compiled,
        })
    }

    /// The priority of `event` and the routes it takes.
    pub fn explain(&self, event: &Event) -> RouteDecision {
        let (priority, reasons) = self.classifier.classify(event);
        let matched = self
            .matching(event, priority)
            .map(|r| (r.config.name.clone(), r.config.notify.clone()))
            .collect();
        RouteDecision {
            priority,
            reasons,
            matched,
        }
    }

    fn matching<'a>(
        &'a self,
        event: &'a Event,
        priority: Priority,
    ) -> impl Iterator<Item = &'a Route> + 'a {
        let mut stop = false;
        self.routes.iter().filter(move |route| {
            if stop || !route.config.matcher.matches(event, priority) {
                return false;
            }
            stop = !route.config.continue_matching;
            true
        })
    }
}

impl AlertRouting for Router {
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        let (priority, reasons) = self.classifier.classify(event);
        self.matching(event, priority)
            .map(|route| {
                let mut alert = Alert::new(event.clone(), priority, route.config.name.clone());
                alert.reasons = reasons.clone();
                alert.dedup_key = dedup_key(&route.config.name, &route.config.group_by, event);
                alert.params = route.params.clone();
                RoutedAlert {
                    alert,
                    notifiers: route.config.notify.clone(),
                }
            })
            .collect()
    }
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

/// The severity a priority corresponds to by default (the inverse of the classifier's map).
pub fn default_severity(priority: Priority) -> Severity {
    match priority {
        Priority::P0Critical => Severity::Critical,
        Priority::P1High => Severity::High,
        Priority::P2Medium => Severity::Medium,
        Priority::P3Low => Severity::Low,
        Priority::P4Info => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(text: &str) -> Vec<RouteConfig> {
        #[derive(Deserialize)]
        struct File {
            routes: Vec<RouteConfig>,
        }
        toml::from_str::<File>(text).unwrap().routes
    }

    fn event(severity: Severity, user: &str) -> Arc<Event> {
        let mut e = Event::new(Category::Authentication, "login", severity);
        e.user_id = Some(user.to_owned());
        Arc::new(e)
    }

    const ROUTES: &str = r##"
        [[routes]]
        name = "critical"
        match = { priority = ["P0"] }
        notify = ["oncall", "secops"]
        continue = true
        params = { channel = "#security-emergency", mention = "channel" }

        [[routes]]
        name = "high-or-critical"
        match = { priority = ["P0_CRITICAL", "P1_HIGH"] }
        notify = ["secops"]

        [[routes]]
        name = "everything-else"
        notify = ["secops"]
    "##;

    #[test]
    fn first_match_wins_unless_continue() {
        let router = Router::new(routes(ROUTES), &["oncall", "secops"]).unwrap();
        let p0 = router.route(&event(Severity::Critical, "u1"));
        let names: Vec<_> = p0.iter().map(|r| r.alert.route.as_str()).collect();
        assert_eq!(names, ["critical", "high-or-critical"]);
        assert_eq!(p0[0].notifiers, ["oncall", "secops"]);
        assert_eq!(p0[0].alert.priority, Priority::P0Critical);
        assert_eq!(
            p0[0].alert.param_str("channel"),
            Some("#security-emergency")
        );
        let p1 = router.route(&event(Severity::High, "u1"));
        assert_eq!(p1.len(), 1);
        assert_eq!(p1[0].alert.route, "high-or-critical");
        let p4 = router.route(&event(Severity::Info, "u1"));
        assert_eq!(p4[0].alert.route, "everything-else");
        assert_eq!(p4[0].alert.reasons, ["severity info → P4_INFO"]);
    }

    #[test]
    fn dedup_key_is_stable_per_group() {
        let router = Router::new(routes(ROUTES), &["oncall", "secops"]).unwrap();
        let a = &router.route(&event(Severity::Critical, "u1"))[0].alert;
        let b = &router.route(&event(Severity::Critical, "u1"))[0].alert;
        let c = &router.route(&event(Severity::Critical, "u2"))[0].alert;
        assert_ne!(a.id, b.id);
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
        assert!(a.dedup_key.starts_with("vowguard-critical-"));
    }

    #[test]
    fn config_errors_name_the_route() {
        let err = Router::new(routes(ROUTES), &["secops"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "`routes[0] (critical).notify`: unknown notifier `oncall`; configured notifiers: secops"
        );
        let bad = r#"
            [[routes]]
            name = "x"
            notify = ["secops"]
            group_by = ["colour"]
        "#;
        let err = Router::new(routes(bad), &["secops"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}

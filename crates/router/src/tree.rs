//! The route tree (Alertmanager's model): ordered routes with matchers, nested routes,
//! `continue`, inherited settings, and active/mute time intervals.
//!
//! Walking the tree: at each level the routes are tried in order; the first that matches
//! takes the alert and stops the level unless it sets `continue = true`. A matching route
//! with children hands the alert to them; when none of its children matches, the route
//! handles the alert itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vowguard_core::Error;

use crate::GROUP_FIELDS;
use crate::config::{HumanDuration, RouteConfig, RouteMatch};
use crate::group::GroupTiming;
use crate::interval::TimeInterval;
use crate::matcher::{MatchContext, Matcher, compile_all};
use crate::params::params_to_json;

/// Settings a child route inherits unless it overrides them.
#[derive(Debug, Clone)]
struct Inherited {
    notify: Vec<String>,
    params: Map<String, Value>,
    receiver_params: BTreeMap<String, Map<String, Value>>,
    group_by: Vec<String>,
    timing: GroupTiming,
    active: Vec<usize>,
    mute: Vec<usize>,
}

/// One compiled route.
#[derive(Debug, Clone)]
pub(crate) struct RouteNode {
    /// `parent/child` path, used as the alert's route name.
    pub(crate) path: String,
    legacy: RouteMatch,
    matchers: Vec<Matcher>,
    pub(crate) continue_matching: bool,
    pub(crate) notify: Vec<String>,
    pub(crate) params: Map<String, Value>,
    pub(crate) receiver_params: BTreeMap<String, Map<String, Value>>,
    pub(crate) group_by: Vec<String>,
    pub(crate) timing: GroupTiming,
    active: Vec<usize>,
    mute: Vec<usize>,
    pub(crate) children: Vec<RouteNode>,
}

/// Compilation inputs shared by every route.
pub(crate) struct Compiler<'a> {
    pub(crate) known_notifiers: &'a [&'a str],
    pub(crate) intervals: &'a [TimeInterval],
}

fn unknown_notifier(key: &str, id: &str, known: &[&str]) -> Error {
    let mut known = known.to_vec();
    known.sort_unstable();
    Error::config(format!(
        "`{key}`: unknown notifier `{id}`; configured notifiers: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

impl Compiler<'_> {
    /// Compiles the top-level routes.
    pub(crate) fn compile(&self, routes: Vec<RouteConfig>) -> Result<Vec<RouteNode>, Error> {
        let root = Inherited {
            notify: Vec::new(),
            params: Map::new(),
            receiver_params: BTreeMap::new(),
            group_by: ["category", "action", "wedding_id", "user_id"]
                .map(String::from)
                .to_vec(),
            timing: GroupTiming::default(),
            active: Vec::new(),
            mute: Vec::new(),
        };
        routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.node(r, &format!("routes[{i}]"), "", &root))
            .collect()
    }

    fn intervals(&self, names: &[String], key: &str) -> Result<Vec<usize>, Error> {
        names
            .iter()
            .map(|n| {
                self.intervals
                    .iter()
                    .position(|i| i.name() == n)
                    .ok_or_else(|| {
                        let known: Vec<&str> =
                            self.intervals.iter().map(TimeInterval::name).collect();
                        Error::config(format!(
                            "`{key}`: unknown time interval `{n}`; defined intervals: {}",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ))
                    })
            })
            .collect()
    }

    fn node(
        &self,
        route: RouteConfig,
        index: &str,
        parent_path: &str,
        parent: &Inherited,
    ) -> Result<RouteNode, Error> {
        if route.name.trim().is_empty() {
            return Err(Error::config(format!("`{index}.name`: must not be empty")));
        }
        let key = format!("{index} ({})", route.name);
        let path = format!("{parent_path}{}", route.name);
        for id in &route.notify {
            if !self.known_notifiers.contains(&id.as_str()) {
                return Err(unknown_notifier(
                    &format!("{key}.notify"),
                    id,
                    self.known_notifiers,
                ));
            }
        }
        let mut matchers = compile_all(&route.matchers, &format!("{key}.matchers"))?;
        matchers.shrink_to_fit();
        let group_by = match route.group_by {
            Some(list) => {
                for field in &list {
                    if !GROUP_FIELDS.contains(&field.as_str()) {
                        return Err(Error::config(format!(
                            "`{key}.group_by`: unknown field `{field}`; expected one of {}",
                            GROUP_FIELDS.join(", ")
                        )));
                    }
                }
                list
            }
            None => parent.group_by.clone(),
        };
        let mut params = parent.params.clone();
        params.extend(params_to_json(&route.params));
        let mut receiver_params = parent.receiver_params.clone();
        for (id, table) in &route.receiver_params {
            if !self.known_notifiers.contains(&id.as_str()) {
                return Err(unknown_notifier(
                    &format!("{key}.receiver_params"),
                    id,
                    self.known_notifiers,
                ));
            }
            let entry = receiver_params.entry(id.clone()).or_default();
            entry.extend(params_to_json(table));
        }
        let pick = |own: Option<HumanDuration>, inherited| own.map_or(inherited, |d| d.0);
        let timing = GroupTiming {
            group_wait: pick(route.group_wait, parent.timing.group_wait),
            group_interval: pick(route.group_interval, parent.timing.group_interval),
            repeat_interval: pick(route.repeat_interval, parent.timing.repeat_interval),
            forget_after: parent.timing.forget_after,
        };
        if timing.group_interval.is_zero() || timing.repeat_interval.is_zero() {
            return Err(Error::config(format!(
                "`{key}`: group_interval and repeat_interval must be longer than 0"
            )));
        }
        let active = match &route.active_time_intervals {
            Some(names) => self.intervals(names, &format!("{key}.active_time_intervals"))?,
            None => parent.active.clone(),
        };
        let mute = match &route.mute_time_intervals {
            Some(names) => self.intervals(names, &format!("{key}.mute_time_intervals"))?,
            None => parent.mute.clone(),
        };
        let notify = if route.notify.is_empty() {
            parent.notify.clone()
        } else {
            route.notify
        };
        if notify.is_empty() && route.routes.is_empty() {
            return Err(Error::config(format!("`{key}.notify`: names no notifier")));
        }
        let inherited = Inherited {
            notify: notify.clone(),
            params: params.clone(),
            receiver_params: receiver_params.clone(),
            group_by: group_by.clone(),
            timing,
            active: active.clone(),
            mute: mute.clone(),
        };
        let child_prefix = format!("{path}/");
        let children = route
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                self.node(
                    r,
                    &format!("{index}.routes[{i}]"),
                    &child_prefix,
                    &inherited,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(RouteNode {
            path,
            legacy: route.matcher,
            matchers,
            continue_matching: route.continue_matching,
            notify,
            params,
            receiver_params,
            group_by,
            timing,
            active,
            mute,
            children,
        })
    }
}

impl RouteNode {
    fn matches(&self, ctx: &MatchContext<'_>) -> bool {
        let m = &self.legacy;
        let e = ctx.event;
        let phase = e.enrichment.wedding.as_ref().map(|w| w.phase);
        (m.priority.is_empty() || m.priority.contains(&ctx.priority))
            && (m.category.is_empty() || m.category.contains(&e.category))
            && (m.action.is_empty() || m.action.contains(&e.action))
            && (m.severity.is_empty() || m.severity.contains(&e.severity))
            && (m.outcome.is_empty() || m.outcome.contains(&e.outcome))
            && (m.resource_type.is_empty()
                || e.resource_type
                    .as_ref()
                    .is_some_and(|r| m.resource_type.contains(r)))
            && (m.wedding_phase.is_empty() || phase.is_some_and(|p| m.wedding_phase.contains(&p)))
            && self.matchers.iter().all(|x| x.matches(ctx))
    }

    /// Why the route does not notify at `at`, if it is muted.
    pub(crate) fn muted(&self, at: DateTime<Utc>, intervals: &[TimeInterval]) -> Option<String> {
        if let Some(i) = self
            .mute
            .iter()
            .map(|&i| &intervals[i])
            .find(|i| i.contains(at))
        {
            return Some(format!("inside mute time interval `{}`", i.name()));
        }
        if !self.active.is_empty() && !self.active.iter().any(|&i| intervals[i].contains(at)) {
            let names: Vec<&str> = self.active.iter().map(|&i| intervals[i].name()).collect();
            return Some(format!(
                "outside active time intervals {}",
                names.join(", ")
            ));
        }
        None
    }
}

/// Collects the routes that handle `ctx` (leaf-most matching routes, in order). Returns
/// whether anything at this level matched.
pub(crate) fn walk<'a>(
    nodes: &'a [RouteNode],
    ctx: &MatchContext<'_>,
    out: &mut Vec<&'a RouteNode>,
) -> bool {
    let mut matched = false;
    for node in nodes {
        if !node.matches(ctx) {
            continue;
        }
        matched = true;
        if !walk(&node.children, ctx, out) {
            out.push(node);
        }
        if !node.continue_matching {
            break;
        }
    }
    matched
}

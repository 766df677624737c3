//! Routing test cases (`vowguard route test CASES.toml`): events with the priority, routes
//! and notifiers they must get.
//!
//! ```toml
//! [[cases]]
//! name = "guest list export on a Saturday"
//! event = { timestamp = "2026-06-20T10:05:00Z", category = "data_export", action = "guest_list.export", severity = "medium", wedding_id = "w-1" }
//! enrichment = { wedding = { wedding_id = "w-1", date = "2026-06-20", timezone = "Europe/London", phase = "day_of", days_until = 0, weekend = true, season = "summer" } }
//! expect = { priority = "P0", routes = ["p0-critical"], notifiers = ["oncall", "secops", "legal"] }
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vowguard_core::{Enrichment, Error, Event, Priority};

use crate::params::{Params, params_to_json};
use crate::{RouteDecision, Router};

/// A file of routing test cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// The cases, run in order.
    pub cases: Vec<RouteCase>,
}

impl CasesFile {
    /// Parses a cases file.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::config(format!("cases file: {e}")))
    }
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCase {
    /// Shown in the results.
    pub name: String,
    /// The event, as in the Event JSON ingest contract (a TOML table; datetimes become
    /// RFC 3339 text). Checked when the case runs: an invalid event fails that case only.
    pub event: Params,
    /// Enrichment to attach (threat, wedding, geo, patterns), as in the storage form.
    #[serde(default)]
    pub enrichment: Option<Params>,
    /// What must come out; absent keys are not checked.
    #[serde(default)]
    pub expect: CaseExpectation,
}

/// What a case expects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseExpectation {
    /// The priority (`P0` or `P0_CRITICAL`).
    pub priority: Option<Priority>,
    /// The routes that notify, in order (paths such as `root/child`).
    pub routes: Option<Vec<String>>,
    /// Every notifier reached (any order).
    pub notifiers: Option<Vec<String>>,
    /// The protocols triggered (any order).
    pub protocols: Option<Vec<String>>,
    /// Whether the alerts are inhibited.
    pub inhibited: Option<bool>,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// True when every expectation held.
    pub passed: bool,
    /// One message per expectation that did not hold (or why the case could not run).
    pub failures: Vec<String>,
    /// The decision, when the event was valid.
    pub decision: Option<RouteDecision>,
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut v = list.to_vec();
    v.sort();
    v.dedup();
    v
}

fn run_one(router: &Router, case: &RouteCase) -> Result<(Vec<String>, RouteDecision), String> {
    let json = Value::Object(params_to_json(&case.event));
    let mut event = Event::from_json_value(json).map_err(|e| format!("event: {e}"))?;
    if let Some(table) = &case.enrichment {
        event.enrichment =
            serde_json::from_value::<Enrichment>(Value::Object(params_to_json(table)))
                .map_err(|e| format!("enrichment: {e}"))?;
    }
    let d = router.explain(&event);
    let mut failures = Vec::new();
    let e = &case.expect;
    if let Some(p) = e.priority.filter(|p| *p != d.priority) {
        failures.push(format!(
            "priority: expected {p}, got {} (because: {})",
            d.priority,
            d.reasons.join("; ")
        ));
    }
    if let Some(routes) = &e.routes {
        let got: Vec<String> = d.matched.iter().map(|(r, _)| r.clone()).collect();
        let mut dedup = got;
        dedup.dedup();
        if *routes != dedup {
            let muted: Vec<String> = d
                .routes
                .iter()
                .filter_map(|s| s.muted.as_ref().map(|m| format!("{} ({m})", s.route)))
                .collect();
            failures.push(format!(
                "routes: expected [{}], got [{}]{}{}",
                routes.join(", "),
                dedup.join(", "),
                if muted.is_empty() {
                    String::new()
                } else {
                    format!("; muted: {}", muted.join(", "))
                },
                d.inhibited
                    .as_ref()
                    .map_or(String::new(), |w| format!("; {w}"))
            ));
        }
    }
    if let Some(notifiers) = &e.notifiers {
        let (want, got) = (sorted(notifiers), d.notifiers());
        if want != got {
            let missing: Vec<&String> = want.iter().filter(|n| !got.contains(n)).collect();
            let extra: Vec<&String> = got.iter().filter(|n| !want.contains(n)).collect();
            failures.push(format!(
                "notifiers: expected [{}], got [{}] (missing: {:?}, unexpected: {:?})",
                want.join(", "),
                got.join(", "),
                missing,
                extra
            ));
        }
    }
    if let Some(protocols) = &e.protocols {
        let got: Vec<String> = d.protocols.iter().map(|p| p.protocol.to_owned()).collect();
        if sorted(protocols) != sorted(&got) {
            failures.push(format!(
                "protocols: expected [{}], got [{}]",
                protocols.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(inhibited) = e.inhibited.filter(|i| *i != d.inhibited.is_some()) {
        failures.push(format!(
            "inhibited: expected {inhibited}, got {}",
            d.inhibited.as_deref().unwrap_or("not inhibited")
        ));
    }
    Ok((failures, d))
}

/// Runs every case against `router` (with [`Router::explain`]: no side effects).
pub fn run_cases(router: &Router, cases: &CasesFile) -> Vec<CaseResult> {
    cases
        .cases
        .iter()
        .map(|case| match run_one(router, case) {
            Ok((failures, decision)) => CaseResult {
                name: case.name.clone(),
                passed: failures.is_empty(),
                failures,
                decision: Some(decision),
            },
            Err(why) => CaseResult {
                name: case.name.clone(),
                passed: false,
                failures: vec![why],
                decision: None,
            },
        })
        .collect()
}

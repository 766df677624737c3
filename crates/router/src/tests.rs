use std::sync::Mutex;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;
use vowguard_core::{Category, Outcome, Season, Severity, WeddingContext, WeddingPhase};

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

fn at(category: Category, action: &str, severity: Severity, ts: &str) -> Event {
    let mut e = Event::new(category, action, severity);
    e.timestamp = ts.parse().unwrap();
    e
}

fn day_of(wedding: &str) -> WeddingContext {
    WeddingContext {
        wedding_id: wedding.into(),
        date: NaiveDate::from_ymd_opt(2026, 6, 17).unwrap(),
        timezone: "Europe/London".into(),
        phase: WeddingPhase::DayOf,
        days_until: 0,
        weekend: false,
        season: Season::Summer,
        guest_count: Some(100),
        vendor_count: Some(5),
    }
}

const WEDNESDAY: &str = "2026-06-17T12:00:00Z";
const SATURDAY: &str = "2026-06-20T12:00:00Z";
const ALL: &[&str] = &[
    "oncall",
    "secops",
    "emergency_sms",
    "security_mail",
    "legal",
];

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
    let err = Router::new(routes("[[routes]]\nname = \"x\"\n"), &["secops"])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "`routes[0] (x).notify`: names no notifier");
}

const TREE: &str = r##"
    [[routes]]
    name = "root"
    notify = ["secops"]
    params = { channel = "#security-alerts" }
    group_by = ["wedding_id"]
    group_wait = "1m"
    repeat_interval = "6h"

      [[routes.routes]]
      name = "p0-wedding-emergency"
      matchers = ['priority="P0"', 'wedding_phase="day_of"']
      notify = ["oncall"]
      params = { severity = "critical" }
      group_wait = "5s"

      [[routes.routes]]
      name = "guest-data"
      matchers = ['action=~"guest_list\\..*"']
      continue = true

        [[routes.routes.routes]]
        name = "exports"
        match = { category = ["data_export"] }
        params = { channel = "#privacy" }

      [[routes.routes]]
      name = "high"
      matchers = ['severity=~"high|critical"']
"##;

#[test]
fn nested_routes_inherit_and_the_first_child_wins() {
    let router = Router::new(routes(TREE), &["oncall", "secops"]).unwrap();
    // A P0 on a wedding day: first child; notify overridden, params merged, timing mixed.
    let mut e = at(
        Category::Authentication,
        "login",
        Severity::Critical,
        WEDNESDAY,
    );
    e.wedding_id = Some("w-1".into());
    e.enrichment.wedding = Some(day_of("w-1"));
    let d = router.explain(&e);
    assert_eq!(
        d.matched,
        [(
            "root/p0-wedding-emergency".to_owned(),
            vec!["oncall".to_owned()]
        )]
    );
    let r = &router.route(&Arc::new(e))[0];
    assert_eq!(
        r.alert.param_str("channel"),
        Some("#security-alerts"),
        "inherited"
    );
    assert_eq!(r.alert.param_str("severity"), Some("critical"));
    let (_, timing) = router.grouping(r);
    assert_eq!(timing.group_wait, Duration::from_secs(5));
    assert_eq!(
        timing.repeat_interval,
        Duration::from_secs(6 * 3600),
        "inherited"
    );
    assert_eq!(timing.group_interval, Duration::from_secs(300), "default");

    // A guest-list export: guest-data/exports (grandchild), continue into `high`.
    let e = at(
        Category::DataExport,
        "guest_list.export",
        Severity::High,
        WEDNESDAY,
    );
    let d = router.explain(&e);
    let names: Vec<&str> = d.matched.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["root/guest-data/exports", "root/high"]);
    assert_eq!(
        d.matched[0].1,
        ["secops"],
        "notify inherited through two levels"
    );
    assert_eq!(d.routes[0].receivers[0].params["channel"], "#privacy");
    // guest-data matches but none of its children: it handles the event itself.
    let e = at(
        Category::DataAccess,
        "guest_list.view",
        Severity::Low,
        WEDNESDAY,
    );
    let names: Vec<String> = router
        .explain(&e)
        .matched
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["root/guest-data"]);
    // Nothing below root matches: root handles it.
    let e = at(Category::Network, "scan", Severity::Low, WEDNESDAY);
    assert_eq!(router.explain(&e).matched[0].0, "root");
    // group_by inherited: the same wedding groups across users.
    let mut a = at(Category::Network, "scan", Severity::Low, WEDNESDAY);
    a.wedding_id = Some("w-9".into());
    a.user_id = Some("u1".into());
    let mut b = a.clone();
    b.user_id = Some("u2".into());
    let ka = router.route(&Arc::new(a))[0].alert.dedup_key.clone();
    assert_eq!(ka, router.route(&Arc::new(b))[0].alert.dedup_key);
    assert!(ka.starts_with("vowguard-root-"));
}

#[test]
fn invalid_matchers_and_intervals_are_config_errors() {
    let bad = r#"
        [[routes]]
        name = "outer"
        notify = ["secops"]
          [[routes.routes]]
          name = "inner"
          matchers = ['severity=~"(high"']
    "#;
    let err = Router::new(routes(bad), &["secops"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].routes[0] (inner).matchers"),
        "{err}"
    );
    assert!(
        err.contains(r#"severity=~"(high""#) && err.contains("invalid regex"),
        "{err}"
    );
    let mut config = RouterConfig::severity_only(routes(
        "[[routes]]\nname = \"x\"\nnotify = [\"secops\"]\nmute_time_intervals = [\"nights\"]\n",
    ));
    let err = Router::from_config(config.clone(), &["secops"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown time interval `nights`"), "{err}");
    config.time_intervals = toml::from_str::<RouterConfig>(
        "[[time_intervals]]\nname = \"nights\"\ntimes = [{ start = \"22:00\", end = \"24:00\" }]",
    )
    .unwrap()
    .time_intervals;
    Router::from_config(config, &["secops"]).unwrap();
}

const INTERVALS: &str = r##"
    [[time_intervals]]
    name = "office-hours"
    time_zone = "Europe/London"
    weekdays = ["monday:friday"]
    times = [{ start = "09:00", end = "17:00" }]

    [[time_intervals]]
    name = "maintenance"
    time_zone = "America/New_York"
    weekdays = ["sunday"]
    times = [{ start = "01:00", end = "05:00" }]

    [[routes]]
    name = "business"
    match = { category = ["admin_action"] }
    notify = ["secops"]
    active_time_intervals = ["office-hours"]

    [[routes]]
    name = "all"
    notify = ["secops"]
    mute_time_intervals = ["maintenance"]
"##;

#[test]
fn time_intervals_mute_routes_across_time_zones_and_dst() {
    let mut config: RouterConfig = toml::from_str(INTERVALS).unwrap();
    config.protocols = ProtocolsConfig::disabled();
    let router = Router::from_config(config, &["secops"]).unwrap();
    let admin = |ts: &str| at(Category::AdminAction, "role.grant", Severity::Medium, ts);
    // 08:30Z is 09:30 in London in July (BST) but 08:30 in January (GMT).
    assert_eq!(
        router.route(&Arc::new(admin("2026-07-01T08:30:00Z"))).len(),
        1
    );
    let d = router.explain(&admin("2026-01-07T08:30:00Z"));
    assert!(d.matched.is_empty());
    assert_eq!(d.routes[0].route, "business");
    assert_eq!(
        d.routes[0].muted.as_deref(),
        Some("outside active time intervals office-hours")
    );
    assert!(
        router
            .route(&Arc::new(admin("2026-01-07T08:30:00Z")))
            .is_empty(),
        "muted, and it still took the event"
    );
    // Sunday 01:00-05:00 in New York: 05:30Z is 01:30 EDT in summer; in winter 05:30Z is 00:30 EST.
    let scan = |ts: &str| at(Category::Network, "scan", Severity::Medium, ts);
    let d = router.explain(&scan("2026-06-21T05:30:00Z"));
    assert_eq!(
        d.routes[0].muted.as_deref(),
        Some("inside mute time interval `maintenance`")
    );
    assert!(
        router.explain(&scan("2026-12-06T05:30:00Z")).routes[0]
            .muted
            .is_none()
    );
    assert!(
        router.explain(&scan("2026-12-06T06:30:00Z")).routes[0]
            .muted
            .is_some(),
        "01:30 EST"
    );
    assert!(
        router
            .explain(&scan("2026-12-06T06:30:00Z"))
            .render_text()
            .contains("[muted: inside mute time interval `maintenance`]")
    );
}

#[derive(Debug, Default)]
struct RecordingHook(Mutex<Vec<RequestedAction>>);

impl ActionHook for RecordingHook {
    fn request(&self, action: &RequestedAction) {
        self.0.lock().unwrap().push(action.clone());
    }
}

fn default_router(dir: &std::path::Path) -> (Router, Arc<RecordingHook>, Arc<JsonlBreachLog>) {
    let hook = Arc::new(RecordingHook::default());
    let log = Arc::new(JsonlBreachLog::new(dir.join("breaches.jsonl")));
    let router = Router::from_config(default_config(), ALL)
        .unwrap()
        .with_action_hook(hook.clone())
        .with_breach_log(log.clone());
    (router, hook, log)
}

#[test]
fn default_table_sends_per_receiver_params() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, _) = default_router(dir.path());
    let out = router.route(&Arc::new(at(
        Category::Malware,
        "detected",
        Severity::Critical,
        WEDNESDAY,
    )));
    let by: Vec<(Vec<String>, Map<String, Value>)> = out
        .iter()
        .map(|r| (r.notifiers.clone(), r.alert.params.clone()))
        .collect();
    assert_eq!(out.len(), 4, "{by:?}");
    assert!(out.iter().all(|r| r.alert.route == "p0-critical"));
    let find = |id: &str| {
        &out.iter()
            .find(|r| r.notifiers.contains(&id.to_owned()))
            .unwrap()
            .alert
    };
    assert_eq!(find("oncall").param_str("severity"), Some("critical"));
    assert_eq!(
        find("oncall").param_str("escalation_policy"),
        Some("security-emergency")
    );
    assert_eq!(
        find("secops").params["channels"],
        serde_json::json!(["#security-emergency", "#wedding-ops-urgent"])
    );
    assert_eq!(find("secops").param_str("mention"), Some("channel"));
    assert_eq!(
        find("security_mail").param_str("email_priority"),
        Some("urgent")
    );
    assert!(find("emergency_sms").params.is_empty());
    let p1 = router.route(&Arc::new(at(
        Category::Malware,
        "detected",
        Severity::High,
        WEDNESDAY,
    )));
    assert_eq!(p1.len(), 3);
    let p3 = router.route(&Arc::new(at(
        Category::Network,
        "scan",
        Severity::Low,
        WEDNESDAY,
    )));
    assert_eq!(p3.len(), 1);
    assert_eq!(p3[0].notifiers, ["secops"]);
    assert_eq!(
        p3[0].alert.params["channels"],
        serde_json::json!(["#security-alerts"])
    );
}

#[test]
fn saturday_escalation_reaches_oncall_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, _) = default_router(dir.path());
    // Low severity on a Saturday: P3 → P2, secops plus on-call within 2 minutes.
    let out = router.route(&Arc::new(at(
        Category::Network,
        "scan",
        Severity::Low,
        SATURDAY,
    )));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].alert.priority, Priority::P2Medium);
    assert_eq!(out[0].notifiers, ["secops", "oncall"]);
    assert_eq!(
        out[0].alert.params["protocols"],
        serde_json::json!(["saturday_escalation"])
    );
    assert_eq!(out[0].alert.params["deliver_within_seconds"], 120);
    assert!(out[0].alert.reasons.contains(
        &"Saturday escalation: raised P3_LOW → P2_MEDIUM (Saturday in Europe/London)".to_owned()
    ));
    let (_, timing) = router.grouping(&out[0]);
    assert_eq!(
        timing.group_wait,
        Duration::from_secs(120),
        "p2-p4 waits 2m: capped at 2m"
    );
    assert_eq!(timing.group_interval, Duration::from_secs(120));
}

#[test]
fn active_wedding_protection_requests_actions() {
    let dir = tempfile::tempdir().unwrap();
    let (router, hook, _) = default_router(dir.path());
    let mut e = at(
        Category::Authentication,
        "login",
        Severity::Medium,
        WEDNESDAY,
    );
    e.outcome = Outcome::Failure;
    e.user_id = Some("planner-1".into());
    e.enrichment.wedding = Some(day_of("w-7"));
    let e = Arc::new(e);
    let d = router.explain(&e);
    assert_eq!(d.priority, Priority::P0Critical);
    assert_eq!(
        d.actions,
        [
            "lock_accounts",
            "read_only_mode",
            "notify_wedding_coordinator"
        ]
    );
    assert!(
        hook.0.lock().unwrap().is_empty(),
        "explain has no side effects"
    );
    let out = router.route(&e);
    assert_eq!(out[0].alert.route, "p0-critical");
    assert_eq!(out[0].alert.impact.active_weddings_affected, 1);
    assert_eq!(out[0].alert.params["deliver_within_seconds"], 30);
    let requested = hook.0.lock().unwrap().clone();
    assert_eq!(requested.len(), 3);
    assert_eq!(requested[0].action, "lock_accounts");
    assert_eq!(requested[0].wedding_id.as_deref(), Some("w-7"));
    assert_eq!(requested[0].user_ids, ["planner-1"]);
    assert_eq!(requested[0].event_id, e.id);
    assert!(requested[0].reason.starts_with("Active wedding protection"));
}

#[test]
fn guest_data_breach_notifies_legal_and_opens_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, log) = default_router(dir.path());
    let mut e = at(
        Category::DataAccess,
        "guests.search",
        Severity::Medium,
        WEDNESDAY,
    );
    e.wedding_id = Some("w-3".into());
    e.record_count = Some(812);
    let e = Arc::new(e);
    let d = router.explain(&e);
    assert_eq!(
        d.breach_deadline,
        Some("2026-06-20T12:00:00Z".parse().unwrap())
    );
    assert!(
        d.render_text()
            .contains("breach record: notification due by 2026-06-20T12:00:00+00:00")
    );
    assert!(log.read_all().unwrap().is_empty());
    let out = router.route(&e);
    let notified: Vec<&String> = out.iter().flat_map(|r| &r.notifiers).collect();
    assert_eq!(
        notified.iter().filter(|n| n.as_str() == "legal").count(),
        1,
        "legal once: {notified:?}"
    );
    let records = log.read_all().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (
            r.wedding_id.as_deref(),
            r.records_affected,
            r.event_id.as_str()
        ),
        (Some("w-3"), Some(812), e.id.as_str())
    );
    assert_eq!(r.deadline - r.opened_at, chrono::Duration::hours(72));
    assert_eq!(out[0].alert.params["breach_id"], r.id.as_str());
    assert!(r.handed_to.contains(&"legal".to_owned()), "{r:?}");
    assert!(r.notification.starts_with("alert handed to "), "{r:?}");

    // Without a `legal` notifier configured, the protocol still raises to P0 but adds nobody.
    let router = Router::from_config(
        default_config(),
        &["oncall", "secops", "emergency_sms", "security_mail"],
    )
    .unwrap();
    let d = router.explain(&e);
    assert_eq!(d.priority, Priority::P0Critical);
    assert!(d.protocol_notifiers.is_empty());
}

/// The breach record says what happened: with no `legal` notifier configured it does not
/// claim legal was notified, names who the alert was handed to, and says the protocol's
/// notifier is missing; an inhibited breach alert is recorded as not notified.
#[test]
fn breach_record_states_what_happened_not_what_was_meant() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(JsonlBreachLog::new(dir.path().join("breaches.jsonl")));
    let router = Router::from_config(
        default_config(),
        &["oncall", "secops", "emergency_sms", "security_mail"],
    )
    .unwrap()
    .with_breach_log(log.clone());
    let mut e = at(
        Category::DataAccess,
        "guests.search",
        Severity::Medium,
        WEDNESDAY,
    );
    e.wedding_id = Some("w-3".into());
    e.record_count = Some(812);
    router.route(&Arc::new(e));
    let records = log.read_all().unwrap();
    let r = &records[0];
    let line = std::fs::read_to_string(log.path()).unwrap();
    assert!(!line.contains("legal notified"), "{line}");
    assert!(!r.handed_to.contains(&"legal".to_owned()), "{r:?}");
    assert!(!r.handed_to.is_empty(), "{r:?}");
    assert!(
        r.notification
            .contains("protocol notifier legal not configured"),
        "{r:?}"
    );

    // Pruned at assembly (as the runtime does): no notifier for the protocol at all.
    let mut config = default_config();
    config.retain_notifiers(&["secops"]);
    let router = Router::from_config(config, &["secops"])
        .unwrap()
        .with_breach_log(log.clone());
    let mut e = at(
        Category::DataAccess,
        "guests.search",
        Severity::Medium,
        WEDNESDAY,
    );
    e.record_count = Some(900);
    router.route(&Arc::new(e));
    let r = log.read_all().unwrap().pop().unwrap();
    assert!(
        r.notification
            .contains("no notifier configured for protocol `guest_data_breach`"),
        "{r:?}"
    );
}

fn strip_volatile(mut alerts: Vec<RoutedAlert>) -> Vec<RoutedAlert> {
    for a in &mut alerts {
        a.alert.id = String::new();
        a.alert.created_at = chrono::DateTime::<chrono::Utc>::MIN_UTC;
        a.alert.params.remove("breach_id");
        a.alert.params.remove("breach_deadline");
    }
    alerts
}

/// A dry run has no side effect (no action, no breach record, no inhibition source) and
/// shows what the live router then does: `route` is the decision plus its effects.
#[test]
fn dry_run_is_pure_and_agrees_with_route() {
    let dir = tempfile::tempdir().unwrap();
    let (router, hook, log) = default_router(dir.path());
    let mut events = Vec::new();
    let mut e = at(
        Category::DataAccess,
        "guests.search",
        Severity::High,
        SATURDAY,
    );
    e.enrichment.wedding = Some(day_of("w-9"));
    e.wedding_id = Some("w-9".into());
    e.user_id = Some("planner-1".into());
    e.record_count = Some(900);
    events.push(e);
    let mut low = at(Category::Authentication, "login", Severity::Low, WEDNESDAY);
    low.wedding_id = Some("w-9".into());
    events.push(low);
    events.push(at(Category::Network, "scan", Severity::Medium, WEDNESDAY));
    for e in events {
        let e = Arc::new(e);
        let dry = router.dry_run(&e).unwrap();
        assert!(hook.0.lock().unwrap().is_empty(), "no action requested");
        assert!(log.read_all().unwrap().is_empty(), "no breach record");
        assert_eq!(router.inhibitor().sources(), 0, "no inhibition source");
        let decision: serde_json::Value = dry.decision.clone();
        assert_eq!(
            decision["priority"],
            serde_json::to_value(router.decide(&e).priority).unwrap()
        );
        // The same router, live: the same alerts.
        let dir2 = tempfile::tempdir().unwrap();
        let (live, live_hook, _) = default_router(dir2.path());
        let routed = live.route(&e);
        assert_eq!(strip_volatile(routed), strip_volatile(dry.alerts));
        let actions: Vec<String> = live_hook
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.action.clone())
            .collect();
        let would: Vec<String> = serde_json::from_value(decision["actions"].clone()).unwrap();
        assert_eq!(
            actions, would,
            "the dry run names the actions route requests"
        );
    }
}

#[test]
fn protocol_receivers_get_an_alert_when_no_route_takes_the_event() {
    let config = RouterConfig::default().with_routes(routes(
        "[[routes]]\nname = \"p1\"\nmatch = { priority = [\"P1\"] }\nnotify = [\"secops\"]\n",
    ));
    let router = Router::from_config(config, &["secops", "legal"]).unwrap();
    let mut e = at(
        Category::DataExport,
        "guest_list.export",
        Severity::Low,
        WEDNESDAY,
    );
    e.wedding_id = Some("w-1".into());
    let out = router.route(&Arc::new(e));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].alert.route, "protocol/guest_data_breach");
    assert_eq!(out[0].notifiers, ["legal"]);
    assert_eq!(out[0].alert.priority, Priority::P0Critical);
}

#[test]
fn a_p0_for_a_wedding_inhibits_its_lower_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, _) = default_router(dir.path());
    let mut p0 = at(
        Category::Malware,
        "detected",
        Severity::Critical,
        "2026-06-17T10:00:00Z",
    );
    p0.wedding_id = Some("w-1".into());
    let mut p2 = at(
        Category::Network,
        "scan",
        Severity::Medium,
        "2026-06-17T10:20:00Z",
    );
    p2.wedding_id = Some("w-1".into());
    let mut other = p2.clone();
    other.wedding_id = Some("w-2".into());
    assert_eq!(
        router.route(&Arc::new(p2.clone())).len(),
        1,
        "before the P0"
    );
    assert!(!router.route(&Arc::new(p0)).is_empty());
    let d = router.explain(&p2);
    assert!(
        d.inhibited.as_deref().unwrap().contains("wedding_id=w-1"),
        "{d:?}"
    );
    assert!(d.matched.is_empty());
    assert_eq!(d.routes[0].route, "p2-p4");
    assert!(
        d.render_text()
            .contains("inhibited: inhibited by P0_CRITICAL event")
    );
    assert!(router.route(&Arc::new(p2.clone())).is_empty());
    assert_eq!(router.route(&Arc::new(other)).len(), 1, "another wedding");
    let mut later = p2;
    later.timestamp = "2026-06-17T11:00:01Z".parse().unwrap();
    assert_eq!(router.route(&Arc::new(later)).len(), 1, "after the hour");
}

#[test]
fn explain_renders_the_whole_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, _) = default_router(dir.path());
    let mut e = at(
        Category::DataExport,
        "guest_list.export",
        Severity::Medium,
        SATURDAY,
    );
    e.wedding_id = Some("w-1".into());
    e.resource_type = Some("guest_lists".into());
    let d = router.explain(&e);
    assert_eq!(d.priority, Priority::P0Critical);
    let names: Vec<&str> = d.protocols.iter().map(|p| p.protocol).collect();
    assert_eq!(names, ["saturday_escalation", "guest_data_breach"]);
    assert_eq!(
        d.notifiers(),
        [
            "emergency_sms",
            "legal",
            "oncall",
            "secops",
            "security_mail"
        ]
    );
    let text = d.render_text();
    for needle in [
        "priority: P0_CRITICAL",
        "  - severity medium → P2_MEDIUM",
        "Saturday escalation: raised P2_MEDIUM → P1_HIGH (Saturday in Europe/London)",
        "guest_data_breach: Guest data breach: guest contact export (guest_list.export)",
        "wedding impact: guest lists accessed: 1",
        "  - p0-critical",
        r#"      → oncall {"escalation_policy":"security-emergency","severity":"critical"}"#,
        "protocol receivers: oncall, legal",
        "notifies: emergency_sms, legal, oncall, secops, security_mail",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["priority"], "P0_CRITICAL");
}

const CASES: &str = r#"
[[cases]]
name = "saturday export"
event = { timestamp = 2026-06-20T10:05:00Z, category = "data_export", action = "guest_list.export", severity = "medium", wedding_id = "w-1" }
expect = { priority = "P0", routes = ["p0-critical"], notifiers = ["oncall", "secops", "emergency_sms", "security_mail", "legal"], protocols = ["saturday_escalation", "guest_data_breach"] }

[[cases]]
name = "day-of login"
event = { timestamp = "2026-06-17T10:05:00Z", action = "login", severity = "low", category = "authentication" }
enrichment = { wedding = { wedding_id = "w-1", date = "2026-06-17", timezone = "Europe/London", phase = "day_of", days_until = 0, weekend = false, season = "summer" } }
expect = { priority = "P0_CRITICAL", protocols = ["active_wedding_protection"] }

[[cases]]
name = "wrong expectations"
event = { timestamp = "2026-06-17T10:05:00Z", action = "scan", severity = "low", category = "network" }
expect = { priority = "P1", routes = ["p1-high"], notifiers = ["oncall"], inhibited = true }

[[cases]]
name = "bad event"
event = { action = "scan", severity = "severe" }
"#;

#[test]
fn route_test_cases_report_clear_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, _) = default_router(dir.path());
    let results = run_cases(&router, &CasesFile::from_toml(CASES).unwrap());
    assert!(results[0].passed, "{:?}", results[0].failures);
    assert!(results[1].passed, "{:?}", results[1].failures);
    let wrong = &results[2];
    assert!(!wrong.passed);
    assert_eq!(wrong.failures.len(), 4, "{:?}", wrong.failures);
    assert_eq!(
        wrong.failures[0],
        "priority: expected P1_HIGH, got P3_LOW (because: severity low → P3_LOW)"
    );
    assert_eq!(wrong.failures[1], "routes: expected [p1-high], got [p2-p4]");
    assert_eq!(
        wrong.failures[2],
        r#"notifiers: expected [oncall], got [secops] (missing: ["oncall"], unexpected: ["secops"])"#
    );
    assert_eq!(
        wrong.failures[3],
        "inhibited: expected true, got not inhibited"
    );
    assert!(!results[3].passed);
    assert!(
        results[3].failures[0].starts_with("event: field `severity`"),
        "{:?}",
        results[3].failures
    );
    assert!(CasesFile::from_toml("[[cases]]\nname = 1").is_err());
}

#[test]
fn legacy_router_ignores_protocols_and_signals() {
    let router = Router::new(routes(ROUTES), &["oncall", "secops"]).unwrap();
    let mut e = at(
        Category::DataExport,
        "guest_list.export",
        Severity::Low,
        SATURDAY,
    );
    e.risk_score = Some(99);
    e.enrichment.wedding = Some(day_of("w-1"));
    let d = router.explain(&e);
    assert_eq!(d.priority, Priority::P3Low);
    assert_eq!(d.reasons, ["severity low → P3_LOW"]);
    assert!(d.protocols.is_empty());
    assert!(Router::default().route(&Arc::new(e)).is_empty());
}

#[test]
fn ordinary_activity_on_the_wedding_day_is_not_raised_by_impact_floors() {
    use vowguard_core::{Category, Event, Severity, WeddingContext, WeddingPhase};
    let classifier =
        Classifier::from_config(ClassificationConfig::default(), ProtocolsConfig::default())
            .unwrap();
    let mut event = Event::new(Category::DataAccess, "rsvp.view", Severity::Info);
    event.timestamp = chrono::DateTime::parse_from_rfc3339("2026-06-17T10:00:00Z")
        .unwrap()
        .into(); // a Wednesday
    event.wedding_id = Some("w-1".into());
    event.enrichment.wedding = Some(WeddingContext {
        wedding_id: "w-1".into(),
        date: chrono::NaiveDate::from_ymd_opt(2026, 6, 17).unwrap(),
        timezone: "Europe/London".into(),
        phase: WeddingPhase::DayOf,
        days_until: 0,
        weekend: false,
        season: vowguard_core::Season::Summer,
        guest_count: Some(100),
        vendor_count: None,
    });
    let info = classifier.classify(&event);
    assert_eq!(
        info.priority,
        vowguard_core::Priority::P4Info,
        "{:?}",
        info.reasons
    );
    event.severity = Severity::Low;
    let low = classifier.classify(&event);
    assert!(
        low.priority <= vowguard_core::Priority::P1High,
        "{:?}",
        low.reasons
    );
}

/// A writer collecting what the log formatter writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `f` logs in tracing-subscriber's human format (no ANSI), for log-injection tests.
pub(crate) fn capture_logs(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

/// Every router log line that carries event text (inhibited alerts, breach records, the
/// action log) stays one line whatever the event's ids and fields contain.
#[test]
fn router_log_lines_cannot_be_forged_by_event_text() {
    let forged = "x\n2026-06-20T10:00:00Z  WARN vowguard: FORGED\r";
    let router = Router::from_config(default_config(), ALL).unwrap();
    let text = capture_logs(|| {
        // A P0 for a wedding whose id forges a line, then a P3 for it (inhibited), then a
        // guest data breach with no breach log, on a wedding day (actions logged).
        let mut p0 = at(Category::Network, "scan", Severity::Critical, WEDNESDAY);
        p0.id = forged.into();
        p0.wedding_id = Some(forged.into());
        router.route(&Arc::new(p0));
        let mut p3 = at(Category::Network, "scan", Severity::Low, WEDNESDAY);
        p3.id = forged.into();
        p3.wedding_id = Some(forged.into());
        assert!(router.route(&Arc::new(p3)).is_empty(), "inhibited");
        let mut breach = at(
            Category::DataAccess,
            "guests.search",
            Severity::High,
            WEDNESDAY,
        );
        breach.id = forged.into();
        breach.user_id = Some(forged.into());
        breach.record_count = Some(900);
        breach.enrichment.wedding = Some(day_of(forged));
        router.route(&Arc::new(breach));
    });
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "{text}");
    for line in &lines {
        assert!(
            line.starts_with("20") && (line.contains(" INFO ") || line.contains(" WARN ")),
            "a line that is not a log record: {line:?}\n{text}"
        );
    }
    assert!(!text.contains('\r'), "{text:?}");
}

/// A [`SharedInhibition`] in memory: the newest source per key, counting lookups.
#[derive(Debug, Default)]
struct MemoryInhibition {
    sources: Mutex<std::collections::HashMap<InhibitionKey, InhibitionSource>>,
    fetches: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl SharedInhibition for MemoryInhibition {
    async fn fetch(&self, keys: &[InhibitionKey]) -> Result<Vec<InhibitionSource>, Error> {
        self.fetches
            .fetch_add(keys.len(), std::sync::atomic::Ordering::Relaxed);
        let sources = self.sources.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| sources.get(k).cloned())
            .collect())
    }

    async fn store(&self, sources: &[(InhibitionKey, InhibitionSource)]) -> Result<(), Error> {
        let mut stored = self.sources.lock().unwrap();
        for (k, s) in sources {
            stored.insert(k.clone(), s.clone());
        }
        Ok(())
    }
}

/// Two replicas' routers sharing one store: a P0 routed by one mutes the same wedding's
/// P2 on the other (and not another wedding's), with one lookup per matching rule; a
/// source learned twice is remembered once.
#[tokio::test]
async fn a_p0_on_one_replica_inhibits_on_another_through_the_shared_store() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _, _) = default_router(&dir.path().join("a"));
    let (b, _, _) = default_router(&dir.path().join("b"));
    a.share_inhibition();
    b.share_inhibition();
    let shared = MemoryInhibition::default();
    let mut p0 = at(
        Category::Malware,
        "detected",
        Severity::Critical,
        "2026-06-17T10:00:00Z",
    );
    p0.wedding_id = Some("w-1".into());
    let p0 = Arc::new(p0);
    let mut p2 = at(
        Category::Network,
        "scan",
        Severity::Medium,
        "2026-06-17T10:20:00Z",
    );
    p2.wedding_id = Some("w-1".into());
    let p2 = Arc::new(p2);
    let mut other = (*p2).clone();
    other.wedding_id = Some("w-2".into());
    let other = Arc::new(other);

    // A P0 is no target of the default rule: nothing to look up.
    assert!(a.inhibition_keys(&p0).is_empty());
    assert_eq!(a.load_shared_inhibition(&p0, &shared).await.unwrap(), 0);
    assert!(!a.route(&p0).is_empty());
    assert_eq!(a.store_shared_inhibition(&shared).await.unwrap(), 1);
    assert_eq!(
        a.store_shared_inhibition(&shared).await.unwrap(),
        0,
        "taken once"
    );

    assert_eq!(b.inhibition_keys(&p2).len(), 1);
    assert_eq!(b.load_shared_inhibition(&p2, &shared).await.unwrap(), 1);
    assert!(b.route(&p2).is_empty(), "muted by replica a's P0");
    assert_eq!(
        b.load_shared_inhibition(&p2, &shared).await.unwrap(),
        0,
        "already known"
    );
    assert_eq!(b.inhibitor().sources(), 1);
    assert_eq!(b.load_shared_inhibition(&other, &shared).await.unwrap(), 0);
    assert_eq!(b.route(&other).len(), 1, "another wedding");
    assert_eq!(
        b.store_shared_inhibition(&shared).await.unwrap(),
        0,
        "b remembered no source of its own"
    );
    assert_eq!(
        shared.fetches.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "one lookup per routed target alert, none for the P0"
    );
}

/// Without sharing switched on, routing collects nothing (the local backend keeps only
/// its index).
#[test]
fn the_local_backend_collects_no_sources_to_share() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, _) = default_router(dir.path());
    let mut p0 = at(Category::Malware, "detected", Severity::Critical, WEDNESDAY);
    p0.wedding_id = Some("w-1".into());
    assert!(!router.route(&Arc::new(p0)).is_empty());
    assert_eq!(router.inhibitor().sources(), 1);
    assert!(router.inhibitor().take_observed().is_empty());
}

/// A host builds routes and their parameters in code (no TOML, no JSON): the same tree as
/// the TOML form gives the same alerts.
#[test]
fn routes_and_params_built_in_code_match_the_toml_form() {
    let in_code = RouteConfig::new("root")
        .notify(["secops"])
        .param("channel", "#security")
        .param("channels", ["#a", "#b"])
        .param("urgent", true)
        .route(
            RouteConfig::new("critical")
                .matchers([r#"severity="critical""#])
                .notify(["oncall", "secops"])
                .receiver_param("oncall", "severity", "critical")
                .receiver_param("oncall", "retries", 2)
                .group_wait(Duration::from_secs(10)),
        );
    let from_toml = routes(
        r##"
        [[routes]]
        name = "root"
        notify = ["secops"]
        params = { channel = "#security", channels = ["#a", "#b"], urgent = true }

        [[routes.routes]]
        name = "critical"
        matchers = ['severity="critical"']
        notify = ["oncall", "secops"]
        group_wait = "10s"
        receiver_params.oncall = { severity = "critical", retries = 2 }
        "##,
    );
    assert_eq!(vec![in_code.clone()], from_toml);

    let router = Router::from_config(
        RouterConfig::severity_only(vec![in_code]),
        &["oncall", "secops"],
    )
    .unwrap();
    let out = router.route(&event(Severity::Critical, "u-1"));
    assert!(
        out.iter().all(|r| r.alert.route == "root/critical"),
        "{out:?}"
    );
    let oncall = out
        .iter()
        .find(|r| r.notifiers == ["oncall"])
        .expect("oncall has its own params, so its own alert");
    assert_eq!(oncall.alert.param_str("severity"), Some("critical"));
    assert_eq!(oncall.alert.params["retries"], 2);
    assert_eq!(oncall.alert.param_str("channel"), Some("#security"));
    let secops = out.iter().find(|r| r.notifiers == ["secops"]).unwrap();
    assert!(!secops.alert.params.contains_key("severity"));
    assert_eq!(
        secops.alert.params["channels"],
        serde_json::json!(["#a", "#b"])
    );
    assert_eq!(secops.alert.params["urgent"], true);
    // A lower severity falls to the root route, which keeps its own params.
    let out = router.route(&event(Severity::Low, "u-2"));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].alert.route, "root");
    assert_eq!(out[0].notifiers, ["secops"]);
}

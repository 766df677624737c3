//! Correlation rules on synthetic streams: every rule fires exactly at its threshold and
//! not below it, windows expire, keys are independent, state stays bounded.

use chrono::{DateTime, TimeDelta, Utc};
use vowguard_core::{Category, Enricher, Event, Outcome, PatternMatch, Severity};
use vowguard_wedding::{
    AttackPatternEnricher, AttackPatternsConfig, BRIDAL_REGISTRY_FRAUD, FAILED_LOGIN_BRUTE_FORCE,
    GUEST_LIST_SCRAPING, PHOTOGRAPHER_PORTFOLIO_THEFT, RULES, RuleOverride,
    VENDOR_CONTACT_HARVESTING, VENUE_BOOKING_SCAMS, WEDDING_DATE_CORRELATION_ATTACKS,
    WEDDING_PLANNING_SOCIAL_ENGINEERING, rule,
};

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-20T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn event(category: Category, action: &str, at: DateTime<Utc>) -> Event {
    let mut e = Event::new(category, action, Severity::Medium);
    e.timestamp = at;
    e
}

/// The events that prepare a sequence rule (none for plain rules), for actor `key`.
fn triggers(pattern: &str, key: &str, at: DateTime<Utc>) -> Vec<Event> {
    match pattern {
        BRIDAL_REGISTRY_FRAUD => {
            let mut e = event(Category::AccountChange, "registry.payout.update", at);
            e.wedding_id = Some(format!("w-{key}"));
            vec![e]
        }
        WEDDING_PLANNING_SOCIAL_ENGINEERING => {
            let mut e = event(Category::Authentication, "login", at);
            e.outcome = Outcome::Failure;
            e.user_id = Some(format!("u-{key}"));
            vec![e]
        }
        _ => Vec::new(),
    }
}

/// The `i`-th event of a stream that raises `pattern`'s measure by one for `key`.
fn step(pattern: &str, key: &str, i: usize, at: DateTime<Utc>) -> Event {
    let user = Some(format!("u-{key}"));
    match pattern {
        FAILED_LOGIN_BRUTE_FORCE => {
            let mut e = event(Category::Authentication, "login", at);
            e.outcome = Outcome::Failure;
            e.user_id = user;
            e
        }
        GUEST_LIST_SCRAPING => {
            let mut e = event(Category::DataExport, "guest_list.export", at);
            e.user_id = user;
            e.wedding_id = Some(format!("w-{i}"));
            e.record_count = Some(10);
            e
        }
        VENDOR_CONTACT_HARVESTING => {
            let mut e = event(Category::DataAccess, "vendor.contact.view", at);
            e.user_id = user;
            e.resource_id = Some(format!("vendor-{i}"));
            e
        }
        WEDDING_DATE_CORRELATION_ATTACKS => {
            let mut e = event(Category::DataAccess, "wedding.date.view", at);
            e.user_id = user;
            e.wedding_id = Some(format!("w-{i}"));
            e
        }
        BRIDAL_REGISTRY_FRAUD => {
            let mut e = event(Category::Payment, "registry.gift.purchase", at);
            e.wedding_id = Some(format!("w-{key}"));
            e.user_id = Some(format!("guest-{i}"));
            e
        }
        VENUE_BOOKING_SCAMS => {
            let mut e = event(Category::AccountChange, "venue.deposit.update", at);
            e.resource_id = Some(format!("venue-{key}"));
            e
        }
        PHOTOGRAPHER_PORTFOLIO_THEFT => {
            let mut e = event(Category::DataExport, "portfolio.photo.download", at);
            e.user_id = user;
            e
        }
        WEDDING_PLANNING_SOCIAL_ENGINEERING => {
            let mut e = event(Category::AccountChange, "account.email.update", at);
            e.user_id = user;
            e
        }
        other => panic!("no stream for {other}"),
    }
}

fn key_indicator(pattern: &str, key: &str) -> String {
    match pattern {
        BRIDAL_REGISTRY_FRAUD => format!("wedding_id=w-{key}"),
        VENUE_BOOKING_SCAMS => format!("venue=venue-{key}"),
        _ => format!("user_id=u-{key}"),
    }
}

fn found<'a>(matches: &'a [PatternMatch], pattern: &str) -> Option<&'a PatternMatch> {
    matches.iter().find(|m| m.pattern == pattern)
}

fn feed(enricher: &AttackPatternEnricher, events: &[Event], pattern: &str) -> Vec<bool> {
    events
        .iter()
        .map(|e| found(&enricher.observe(e), pattern).is_some())
        .collect()
}

#[test]
fn every_rule_fires_exactly_at_its_threshold() {
    assert_eq!(RULES.len(), 8);
    for def in RULES {
        let p = def.name;
        let t = def.defaults.threshold as usize;
        let w = def.defaults.window_secs;
        let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
        let start = base();
        for e in triggers(p, "a", start) {
            assert!(enricher.observe(&e).is_empty(), "{p}: trigger alone");
        }
        for i in 0..t - 1 {
            let e = step(p, "a", i, start + TimeDelta::seconds(1 + i as i64));
            let m = enricher.observe(&e);
            assert!(found(&m, p).is_none(), "{p}: matched at {} < {t}", i + 1);
        }
        let e = step(p, "a", t - 1, start + TimeDelta::seconds(t as i64));
        let m = enricher.observe(&e);
        let hit = found(&m, p).unwrap_or_else(|| panic!("{p}: no match at threshold {t}"));
        assert_eq!(hit.confidence, 0.5, "{p}");
        assert_eq!(hit.indicators[0], key_indicator(p, "a"), "{p}: {hit:?}");
        let measure = format!("{}={t} in {w}s", def.measure.label());
        assert!(hit.indicators.contains(&measure), "{p}: {hit:?}");
        // Later events of the same key stay matched while above the threshold, with
        // rising confidence.
        let e = step(p, "a", t, start + TimeDelta::seconds(t as i64 + 1));
        let m = enricher.observe(&e);
        let hit = found(&m, p).unwrap_or_else(|| panic!("{p}: not matched above threshold"));
        assert!(
            hit.confidence > 0.5 && hit.confidence <= 1.0,
            "{p}: {hit:?}"
        );
        // And the match shows on the enrichment.
        let e = step(p, "a", t + 1, start + TimeDelta::seconds(t as i64 + 2));
        let out = block_on(enricher.enrich(&e)).unwrap();
        assert!(found(&out.patterns, p).is_some(), "{p}");
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn events_spaced_wider_than_the_window_never_match() {
    for def in RULES {
        let p = def.name;
        let t = def.defaults.threshold as usize;
        let gap = TimeDelta::seconds(def.defaults.window_secs as i64);
        let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
        let mut at = base();
        for e in triggers(p, "a", at) {
            enricher.observe(&e);
        }
        // Exactly one window apart is already outside it.
        let mut matched = Vec::new();
        for i in 0..t * 2 {
            at += gap;
            matched.extend(feed(&enricher, &[step(p, "a", i, at)], p));
        }
        assert!(matched.iter().all(|m| !m), "{p}: {matched:?}");
    }
}

#[test]
fn keys_are_independent() {
    for def in RULES {
        let p = def.name;
        let t = def.defaults.threshold as usize;
        let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
        let mut at = base();
        for key in ["a", "b"] {
            for e in triggers(p, key, at) {
                enricher.observe(&e);
            }
        }
        // t-1 events for each of two keys, interleaved: no key reaches t.
        let mut matched = Vec::new();
        for i in 0..t - 1 {
            for key in ["a", "b"] {
                at += TimeDelta::seconds(1);
                matched.extend(feed(&enricher, &[step(p, key, i, at)], p));
            }
        }
        assert!(matched.iter().all(|m| !m), "{p}");
        // One more for `a` crosses; `b` is still below.
        at += TimeDelta::seconds(1);
        let m = enricher.observe(&step(p, "a", t - 1, at));
        let hit = found(&m, p).unwrap_or_else(|| panic!("{p}"));
        assert!(
            !hit.indicators.iter().any(|i| i.ends_with("-b")),
            "{p}: {hit:?}"
        );
    }
}

#[test]
fn sequence_rules_need_their_trigger_first() {
    for p in [BRIDAL_REGISTRY_FRAUD, WEDDING_PLANNING_SOCIAL_ENGINEERING] {
        let t = rule(p).unwrap().defaults.threshold as usize;
        let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
        let start = base();
        // Targets without a trigger: nothing, however many.
        let events: Vec<_> = (0..t * 3)
            .map(|i| step(p, "a", i, start + TimeDelta::seconds(i as i64)))
            .collect();
        assert!(feed(&enricher, &events, p).iter().all(|m| !m), "{p}");
        // A trigger now: only targets after it count.
        let later = start + TimeDelta::seconds(100);
        for e in triggers(p, "a", later) {
            assert!(found(&enricher.observe(&e), p).is_none());
        }
        let events: Vec<_> = (0..t)
            .map(|i| step(p, "a", i, later + TimeDelta::seconds(1 + i as i64)))
            .collect();
        let got = feed(&enricher, &events, p);
        assert_eq!(got.iter().filter(|m| **m).count(), 1, "{p}: {got:?}");
        assert!(got[t - 1], "{p}: {got:?}");
    }
}

#[test]
fn social_engineering_reports_the_triggers() {
    let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
    let at = base();
    let mut reset = event(Category::AccountChange, "account.password.reset", at);
    reset.user_id = Some("planner-17".into());
    let mut fail = event(
        Category::Authentication,
        "login",
        at + TimeDelta::seconds(5),
    );
    fail.outcome = Outcome::Failure;
    fail.user_id = Some("planner-17".into());
    let mut change = event(
        Category::AccountChange,
        "account.payout.update",
        at + TimeDelta::minutes(29),
    );
    change.user_id = Some("planner-17".into());
    assert!(enricher.observe(&reset).is_empty());
    enricher.observe(&fail);
    let m = enricher.observe(&change);
    let hit = found(&m, WEDDING_PLANNING_SOCIAL_ENGINEERING).unwrap();
    assert_eq!(
        hit.indicators,
        ["user_id=planner-17", "count=1 in 1800s", "triggers=2"]
    );
    // 30 minutes after the last trigger, a change no longer counts.
    let mut late = change;
    late.timestamp = at + TimeDelta::seconds(5) + TimeDelta::minutes(30);
    assert!(
        found(
            &enricher.observe(&late),
            WEDDING_PLANNING_SOCIAL_ENGINEERING
        )
        .is_none()
    );
}

#[test]
fn guest_list_scraping_by_records() {
    let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
    let mut e = step(GUEST_LIST_SCRAPING, "a", 0, base());
    e.record_count = Some(499);
    assert!(found(&enricher.observe(&e), GUEST_LIST_SCRAPING).is_none());
    // Same wedding (one distinct), one more record: 500 reaches the record threshold.
    e.record_count = Some(1);
    e.timestamp += TimeDelta::seconds(1);
    let m = enricher.observe(&e);
    let hit = found(&m, GUEST_LIST_SCRAPING).unwrap();
    assert_eq!(
        hit.indicators,
        ["user_id=u-a", "records=500 in 3600s"],
        "{hit:?}"
    );
    assert_eq!(hit.confidence, 0.5);
}

#[test]
fn user_and_ip_are_tracked_separately_and_reported_together() {
    let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
    let mut hits = Vec::new();
    for i in 0..10 {
        let mut e = step(
            FAILED_LOGIN_BRUTE_FORCE,
            "a",
            i,
            base() + TimeDelta::seconds(i as i64),
        );
        e.source_ip = Some("203.0.113.7".parse().unwrap());
        // The user changes half-way: the IP reaches 10, neither user does.
        e.user_id = Some(if i < 5 { "u-1" } else { "u-2" }.into());
        hits.push(enricher.observe(&e));
    }
    assert!(hits[..9].iter().all(Vec::is_empty));
    let hit = found(&hits[9], FAILED_LOGIN_BRUTE_FORCE).unwrap();
    assert_eq!(
        hit.indicators,
        ["source_ip=203.0.113.7", "count=10 in 600s"]
    );
}

#[test]
fn out_of_order_events_within_the_window_count() {
    let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
    let mut got = Vec::new();
    for i in (0..10).rev() {
        let e = step(
            FAILED_LOGIN_BRUTE_FORCE,
            "a",
            i,
            base() + TimeDelta::seconds(i as i64),
        );
        got.push(found(&enricher.observe(&e), FAILED_LOGIN_BRUTE_FORCE).is_some());
    }
    assert_eq!(got.iter().filter(|m| **m).count(), 1);
    assert!(got[9]);
    // An event older than the key's window is ignored.
    let old = step(
        FAILED_LOGIN_BRUTE_FORCE,
        "a",
        0,
        base() - TimeDelta::seconds(600),
    );
    assert!(enricher.observe(&old).is_empty());
}

#[test]
fn overrides_change_thresholds_and_windows() {
    let mut config = AttackPatternsConfig::default();
    config.rules.insert(
        FAILED_LOGIN_BRUTE_FORCE.into(),
        RuleOverride::default()
            .with_threshold(Some(3))
            .with_window(Some(std::time::Duration::from_secs(60))),
    );
    config.rules.insert(
        VENUE_BOOKING_SCAMS.into(),
        RuleOverride::default().with_enabled(Some(false)),
    );
    let enricher = AttackPatternEnricher::new(&config).unwrap();
    let names: Vec<_> = enricher.rules().iter().map(|(n, _)| *n).collect();
    assert!(!names.contains(&VENUE_BOOKING_SCAMS));
    let stream: Vec<_> = (0..3)
        .map(|i| {
            step(
                FAILED_LOGIN_BRUTE_FORCE,
                "a",
                i,
                base() + TimeDelta::seconds(i as i64),
            )
        })
        .collect();
    assert_eq!(
        feed(&enricher, &stream, FAILED_LOGIN_BRUTE_FORCE),
        [false, false, true]
    );
    let m = enricher.observe(&step(
        FAILED_LOGIN_BRUTE_FORCE,
        "a",
        3,
        base() + TimeDelta::seconds(3),
    ));
    assert_eq!(
        found(&m, FAILED_LOGIN_BRUTE_FORCE).unwrap().indicators[1],
        "count=4 in 60s"
    );
    let venue: Vec<_> = (0..5)
        .map(|i| {
            step(
                VENUE_BOOKING_SCAMS,
                "a",
                i,
                base() + TimeDelta::seconds(i as i64),
            )
        })
        .collect();
    assert!(
        feed(&enricher, &venue, VENUE_BOOKING_SCAMS)
            .iter()
            .all(|m| !m)
    );
}

#[test]
fn bad_config_is_rejected_by_name() {
    let mut config = AttackPatternsConfig::default();
    config
        .rules
        .insert("guest_list_scrapping".into(), RuleOverride::default());
    config.rules.insert("zzz".into(), RuleOverride::default());
    let e = AttackPatternEnricher::new(&config).unwrap_err().to_string();
    assert!(
        e.contains(
            "unknown rules `guest_list_scrapping`, `zzz`; known rules: failed_login_brute_force"
        ),
        "{e}"
    );
    let cases = [
        (
            RuleOverride::default().with_threshold(Some(0)),
            "`rules.venue_booking_scams.threshold`: must be at least 1",
        ),
        (
            RuleOverride::default().with_window(Some(std::time::Duration::from_secs(0))),
            "`rules.venue_booking_scams.window`: must be between \"1s\" and \"30d\"",
        ),
        (
            RuleOverride::default().with_threshold(Some(10_001)),
            "`rules.venue_booking_scams.threshold`: must be at most max_entries_per_key (10000)",
        ),
    ];
    for (o, expected) in cases {
        let mut config = AttackPatternsConfig::default();
        config.rules.insert(VENUE_BOOKING_SCAMS.into(), o);
        let e = AttackPatternEnricher::new(&config).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn state_is_bounded_by_max_keys() {
    let config = AttackPatternsConfig::default().with_max_keys(100);
    let enricher = AttackPatternEnricher::new(&config).unwrap();
    for i in 0..1_000 {
        let mut e = step(FAILED_LOGIN_BRUTE_FORCE, &i.to_string(), 0, base());
        e.source_ip = Some(std::net::IpAddr::from([198, 51, 100, (i % 250) as u8]));
        enricher.observe(&e);
        for s in enricher.stats() {
            assert!(s.keys <= 100, "{s:?}");
        }
    }
    let s = enricher.stats();
    let brute = s
        .iter()
        .find(|s| s.pattern == FAILED_LOGIN_BRUTE_FORCE)
        .unwrap();
    assert_eq!(brute.keys, 100);
    assert!(brute.entries <= 100, "{brute:?}");
    // The newest key is still tracked: nine more of its events cross the threshold.
    let mut last = Vec::new();
    for i in 1..10 {
        let e = step(
            FAILED_LOGIN_BRUTE_FORCE,
            "999",
            i,
            base() + TimeDelta::seconds(i as i64),
        );
        last = enricher.observe(&e);
    }
    assert!(found(&last, FAILED_LOGIN_BRUTE_FORCE).is_some());
}

#[test]
fn state_is_bounded_by_entries() {
    let config = AttackPatternsConfig::default()
        .with_max_entries(150)
        .with_max_entries_per_key(60);
    let enricher = AttackPatternEnricher::new(&config).unwrap();
    for i in 0..2_000 {
        let key = (i % 37).to_string();
        let e = step(
            PHOTOGRAPHER_PORTFOLIO_THEFT,
            &key,
            i,
            base() + TimeDelta::milliseconds(i as i64),
        );
        enricher.observe(&e);
        for s in enricher.stats() {
            assert!(s.entries <= 150, "{s:?}");
        }
    }
    // One hot key: capped at max_entries_per_key, still matching (items are a lower bound
    // once capped, so Items thresholds above the cap never fire: that is why config rejects
    // count/distinct thresholds above it).
    let enricher = AttackPatternEnricher::new(&config).unwrap();
    for i in 0..500 {
        let e = step(
            FAILED_LOGIN_BRUTE_FORCE,
            "hot",
            i,
            base() + TimeDelta::milliseconds(i as i64),
        );
        let m = enricher.observe(&e);
        assert_eq!(found(&m, FAILED_LOGIN_BRUTE_FORCE).is_some(), i >= 9, "{i}");
    }
    let brute = enricher
        .stats()
        .into_iter()
        .find(|s| s.pattern == FAILED_LOGIN_BRUTE_FORCE)
        .unwrap();
    assert_eq!((brute.keys, brute.entries), (1, 60));
}

#[test]
fn idle_keys_are_swept_by_event_time() {
    let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
    for i in 0..50 {
        enricher.observe(&step(FAILED_LOGIN_BRUTE_FORCE, &i.to_string(), 0, base()));
    }
    // Two windows later another key's event sweeps the idle ones away.
    enricher.observe(&step(
        FAILED_LOGIN_BRUTE_FORCE,
        "new",
        0,
        base() + TimeDelta::seconds(1_200),
    ));
    let brute = enricher
        .stats()
        .into_iter()
        .find(|s| s.pattern == FAILED_LOGIN_BRUTE_FORCE)
        .unwrap();
    assert_eq!((brute.keys, brute.entries), (1, 1));
}

#[test]
fn concurrent_enrichment_counts_every_event() {
    let enricher =
        std::sync::Arc::new(AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let enricher = std::sync::Arc::clone(&enricher);
            std::thread::spawn(move || {
                let mut matches = 0;
                for i in 0..50 {
                    let e = step(
                        VENDOR_CONTACT_HARVESTING,
                        "shared",
                        n * 50 + i,
                        base() + TimeDelta::seconds(i as i64),
                    );
                    if found(&enricher.observe(&e), VENDOR_CONTACT_HARVESTING).is_some() {
                        matches += 1;
                    }
                }
                matches
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // 200 distinct vendors, threshold 50: exactly the 50th onwards match.
    assert_eq!(total, 151);
}

#[test]
fn readme_table_matches_the_defaults() {
    let readme = include_str!("../README.md");
    for def in RULES {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", def.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", def.name));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let n = cells.len();
        assert_eq!(
            cells[n - 3],
            format!("{} s", def.defaults.window_secs),
            "{}",
            def.name
        );
        let threshold = cells[n - 2];
        assert!(
            threshold == def.defaults.threshold.to_string()
                || threshold.starts_with(&format!("{} (", def.defaults.threshold)),
            "{}: {threshold}",
            def.name
        );
        match def.defaults.record_threshold {
            Some(r) => assert!(
                threshold.contains(&format!("≥ {r} records")),
                "{}",
                def.name
            ),
            None => assert!(!threshold.contains("records"), "{}", def.name),
        }
    }
}

#[test]
fn window_boundary_is_exclusive() {
    let mut config = AttackPatternsConfig::default();
    config.rules.insert(
        FAILED_LOGIN_BRUTE_FORCE.into(),
        RuleOverride::default()
            .with_threshold(Some(2))
            .with_window(Some(std::time::Duration::from_secs(60))),
    );
    let enricher = AttackPatternEnricher::new(&config).unwrap();
    let e = |key: &str, secs: i64| {
        step(
            FAILED_LOGIN_BRUTE_FORCE,
            key,
            0,
            base() + TimeDelta::seconds(secs),
        )
    };
    // Exactly one window apart: the first has left the window.
    assert!(enricher.observe(&e("a", 0)).is_empty());
    assert!(enricher.observe(&e("a", 60)).is_empty());
    // 59 seconds apart: both in it.
    assert!(enricher.observe(&e("b", 0)).is_empty());
    assert!(found(&enricher.observe(&e("b", 59)), FAILED_LOGIN_BRUTE_FORCE).is_some());
    // Sequence rules: a change exactly one window after its trigger does not count,
    // one second less does.
    for (gap, expected) in [(1_800, false), (1_799, true)] {
        let enricher = AttackPatternEnricher::new(&AttackPatternsConfig::default()).unwrap();
        let key = format!("s{gap}");
        for t in triggers(WEDDING_PLANNING_SOCIAL_ENGINEERING, &key, base()) {
            enricher.observe(&t);
        }
        let change = step(
            WEDDING_PLANNING_SOCIAL_ENGINEERING,
            &key,
            0,
            base() + TimeDelta::seconds(gap),
        );
        let got = found(
            &enricher.observe(&change),
            WEDDING_PLANNING_SOCIAL_ENGINEERING,
        )
        .is_some();
        assert_eq!(got, expected, "{gap}");
    }
}

//! The embedding example (`examples/embed.rs`) run as a test: a host builds the pipeline in
//! code with Splunk, Slack, the router and its own action hook, and its own `metrics`
//! recorder receives vowguard's metrics. Its own test binary: the recorder is global.

#[allow(dead_code)]
#[path = "../examples/embed.rs"]
mod embed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_embeds_the_pipeline_with_its_own_hook_and_recorder() {
    let snapshotter = embed::install_host_recorder();
    let report = embed::run_host(&snapshotter).await.unwrap();

    // Every event reached Splunk, with the index the host set.
    for id in ["evt-rsvp-view", "evt-brute-force", "evt-guest-export"] {
        assert_eq!(report.delivered.get(id), Some(&1), "{id}: {report:?}");
    }
    let mut indexed: Vec<&str> = report
        .splunk_events
        .iter()
        .map(|e| {
            assert_eq!(e["index"], "wedding-security");
            e["event"]["id"].as_str().unwrap()
        })
        .collect();
    indexed.sort_unstable();
    assert_eq!(
        indexed,
        ["evt-brute-force", "evt-guest-export", "evt-rsvp-view"]
    );

    // The high and critical events were routed to #secops and delivered; the
    // informational view raised nothing.
    let mut alerted: Vec<(&str, &str, &str)> = report
        .notifications
        .iter()
        .map(|n| {
            assert!(n.delivered, "{n:?}");
            (n.event_id.as_str(), n.route.as_str(), n.notifier.as_str())
        })
        .collect();
    alerted.sort_unstable();
    assert_eq!(alerted.len(), 2, "{alerted:?}");
    assert_eq!(alerted[0].0, "evt-brute-force");
    assert_eq!(alerted[1].0, "evt-guest-export");
    assert!(alerted.iter().all(|(_, _, notifier)| *notifier == "secops"));
    assert_eq!(report.slack_messages.len(), 2);
    // The attacker's `<!channel>` reached Slack escaped, not as a mention.
    let slack_text = serde_json::to_string(&report.slack_messages).unwrap();
    assert!(!slack_text.contains("<!channel>"), "{slack_text}");
    assert!(slack_text.contains("&lt;!channel&gt;"), "{slack_text}");

    // Active wedding protection asked the host's hook to act on the export, and the
    // host's account service locked the planner's account.
    let actions: Vec<&str> = report.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "lock_accounts",
            "read_only_mode",
            "notify_wedding_coordinator"
        ]
    );
    assert!(
        report
            .actions
            .iter()
            .all(|a| a.event_id == "evt-guest-export")
    );
    assert_eq!(report.locked_accounts, ["planner-17"]);

    // The host's own recorder saw vowguard's counters.
    let metric = |name: &str| {
        report
            .host_metrics
            .iter()
            .find(|(key, _)| key.as_str() == name || key.starts_with(&format!("{name}{{")))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name} missing from {:?}", report.host_metrics))
    };
    assert_eq!(metric("vowguard_events_received_total"), 3.0);
    assert_eq!(metric("vowguard_sink_delivered_total"), 3.0);
    assert_eq!(metric("vowguard_notifier_sent_total"), 2.0);
}

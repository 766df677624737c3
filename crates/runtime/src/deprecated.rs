//! The integer duration keys of earlier releases (`timeout_ms = 10000`, `ack_wait_secs = 30`),
//! still accepted for one release: [`Config::parse`](crate::config::Config::parse) rewrites
//! each into its replacement (`timeout = "10s"`) with a warning naming both keys (see
//! [`vowguard_core::duration::migrate_deprecated_keys`]). `*` stands for any component id,
//! playbook or rule name; arrays of tables (`steps`) are looked through.
//!
//! Every duration key of the configuration is a humantime string; this list is every key
//! that had an integer spelling, and the tests check each entry against the real config
//! (the old spelling loads with a warning and gives what the new one gives).

use vowguard_core::duration::DeprecatedKey;

macro_rules! keys {
    ($($path:literal),* $(,)?) => {
        &[$(DeprecatedKey { path: $path }),*]
    };
}

/// The deprecated integer duration keys, by path.
pub const DURATION_KEYS: &[DeprecatedKey] = keys![
    // [pipeline], [telemetry]
    "pipeline.enrichment_budget_ms",
    "pipeline.shutdown_timeout_ms",
    "pipeline.enricher_breaker.cooldown_ms",
    "telemetry.otlp.timeout_ms",
    // keys the runtime takes out of every component table
    "sinks.*.batch.max_wait_ms",
    "sinks.*.breaker.initial_cooldown_ms",
    "sinks.*.breaker.max_cooldown_ms",
    "sinks.*.retry.initial_backoff_ms",
    "sinks.*.retry.max_backoff_ms",
    "sinks.*.retry.max_retry_after_ms",
    "notifiers.*.retry.initial_backoff_ms",
    "notifiers.*.retry.max_backoff_ms",
    "notifiers.*.retry.max_retry_after_ms",
    "tickets.*.retry.initial_backoff_ms",
    "tickets.*.retry.max_backoff_ms",
    "tickets.*.retry.max_retry_after_ms",
    "scanners.*.retry.initial_backoff_ms",
    "scanners.*.retry.max_backoff_ms",
    "scanners.*.retry.max_retry_after_ms",
    "scanners.*.refresh_secs",
    // [queue] (JetStream)
    "queue.request_timeout_ms",
    "queue.stream.max_age_secs",
    "queue.stream.duplicate_window_secs",
    "queue.consumers.ack_wait_secs",
    // NATS sources and sinks
    "sources.*.ack_wait_secs",
    "sources.*.request_timeout_ms",
    "sinks.*.request_timeout_ms",
    // [audit]
    "audit.checkpoint_interval_ms",
    // [playbooks.<name>]
    "playbooks.*.deadline_seconds",
    "playbooks.*.steps.timeout_ms",
    "playbooks.*.steps.deadline_seconds",
    "playbooks.*.steps.retry.initial_backoff_ms",
    "playbooks.*.steps.retry.max_backoff_ms",
    "playbooks.*.steps.retry.max_retry_after_ms",
    // [webhooks.<id>]
    "webhooks.*.tolerance_secs",
    "webhooks.*.body_timeout_ms",
    "webhooks.*.replay_window_secs",
    // enrichers: intel providers' cache and limits, wedding context, attack patterns
    "enrichers.*.cache.ttl_secs",
    "enrichers.*.cache.negative_ttl_secs",
    "enrichers.*.limits.timeout_ms",
    "enrichers.*.check_interval_secs",
    "enrichers.*.cache_ttl_secs",
    "enrichers.*.timeout_ms",
    "enrichers.*.rules.*.window_secs",
    // the `http` table of every HTTP connector
    "sinks.*.http.timeout_ms",
    "sinks.*.http.connect_timeout_ms",
    "notifiers.*.http.timeout_ms",
    "notifiers.*.http.connect_timeout_ms",
    "tickets.*.http.timeout_ms",
    "tickets.*.http.connect_timeout_ms",
    "enrichers.*.http.timeout_ms",
    "enrichers.*.http.connect_timeout_ms",
    "scanners.*.http.timeout_ms",
    "scanners.*.http.connect_timeout_ms",
    // connectors' own keys
    "sinks.*.acknowledgements.poll_interval_ms",
    "sinks.*.acknowledgements.timeout_ms",
    "sinks.*.syslog.connect_timeout_ms",
    "sinks.*.syslog.write_timeout_ms",
    "notifiers.*.timeout_ms",
    "tickets.*.search_settle_ms",
    "scanners.*.max_quota_wait_secs",
    "scanners.*.kb_cache_ttl_secs",
    "scanners.*.poll.initial_ms",
    "scanners.*.poll.max_ms",
    "scanners.*.poll.max_wait_secs",
];

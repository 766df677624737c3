//! The versioned schema. Each migration runs once, in order, inside a transaction, and is
//! recorded in `store_migrations`; the DDL is written once for SQLite and PostgreSQL
//! (BIGINT epoch milliseconds for times, TEXT for strings and JSON lists).

/// One schema version.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version (1, 2, ...); applied in order.
    pub version: i64,
    /// What it does.
    pub name: &'static str,
    /// Statements, run in order.
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first. Append new versions; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "projection of the audit log, breach register",
    statements: &[
        // key/value state: `applied_through` = index of the last applied audit record.
        "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        // Counters and latency sums per (kind, component, UTC hour):
        // kind = accepted (component: source), delivery (sink), notification (channel),
        // enrichment (component `enrichment`).
        "CREATE TABLE flow_counts (
            kind TEXT NOT NULL, component TEXT NOT NULL, hour_ms BIGINT NOT NULL,
            total BIGINT NOT NULL, ok BIGINT NOT NULL, failed BIGINT NOT NULL,
            within_objective BIGINT NOT NULL, latency_sum_ms BIGINT NOT NULL,
            latency_max_ms BIGINT NOT NULL,
            PRIMARY KEY (kind, component, hour_ms))",
        // Latency histograms (log-linear buckets, see latency.rs) per (kind, component, hour).
        "CREATE TABLE latency_buckets (
            kind TEXT NOT NULL, component TEXT NOT NULL, hour_ms BIGINT NOT NULL,
            bucket BIGINT NOT NULL, n BIGINT NOT NULL,
            PRIMARY KEY (kind, component, hour_ms, bucket))",
        "CREATE TABLE dead_letters (
            audit_index BIGINT NOT NULL, seq BIGINT NOT NULL, at_ms BIGINT NOT NULL,
            sink TEXT NOT NULL, event_id TEXT NOT NULL, reason TEXT,
            PRIMARY KEY (audit_index, seq))",
        "CREATE INDEX dead_letters_at ON dead_letters (at_ms)",
        "CREATE TABLE replays (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, sink TEXT NOT NULL,
            actor TEXT NOT NULL, event_count BIGINT NOT NULL, event_ids TEXT NOT NULL)",
        "CREATE INDEX replays_at ON replays (at_ms)",
        "CREATE TABLE alerts (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, alert_id TEXT NOT NULL,
            event_id TEXT NOT NULL, priority TEXT NOT NULL, route TEXT NOT NULL,
            reasons TEXT NOT NULL, channels TEXT NOT NULL, suppressed TEXT, wedding_id TEXT)",
        "CREATE INDEX alerts_at ON alerts (at_ms)",
        "CREATE INDEX alerts_alert_id ON alerts (alert_id)",
        "CREATE TABLE notifications (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, alert_id TEXT NOT NULL,
            channel TEXT NOT NULL, result TEXT NOT NULL, detail TEXT,
            latency_ms BIGINT NOT NULL)",
        "CREATE INDEX notifications_alert ON notifications (alert_id)",
        "CREATE INDEX notifications_at ON notifications (at_ms)",
        "CREATE TABLE enrichment_failures (
            audit_index BIGINT NOT NULL, seq BIGINT NOT NULL, at_ms BIGINT NOT NULL,
            enricher TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (audit_index, seq))",
        // The breach register: the current state of each breach ...
        "CREATE TABLE breaches (
            breach_id TEXT PRIMARY KEY, state TEXT NOT NULL, detected_at_ms BIGINT NOT NULL,
            confirmed_at_ms BIGINT, deadline_ms BIGINT, status TEXT NOT NULL,
            updated_at_ms BIGINT NOT NULL)",
        "CREATE INDEX breaches_deadline ON breaches (deadline_ms)",
        // ... and every change, with who and when.
        "CREATE TABLE breach_history (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, breach_id TEXT NOT NULL,
            action TEXT NOT NULL, actor TEXT NOT NULL, fields TEXT NOT NULL)",
        "CREATE INDEX breach_history_breach ON breach_history (breach_id)",
        "CREATE TABLE admin_actions (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL)",
        "CREATE INDEX admin_actions_at ON admin_actions (at_ms)",
        // Incident and playbook timelines (the automated-response issue fills them).
        "CREATE TABLE incident_events (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, incident_id TEXT NOT NULL,
            action TEXT NOT NULL, actor TEXT NOT NULL, fields TEXT NOT NULL)",
        "CREATE INDEX incident_events_incident ON incident_events (incident_id)",
        "CREATE TABLE config_loads (
            audit_index BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, digest TEXT NOT NULL,
            path TEXT NOT NULL)",
    ],
}];

/// The tables a rebuild empties (everything but the migration record).
pub(crate) const PROJECTION_TABLES: &[&str] = &[
    "store_meta",
    "flow_counts",
    "latency_buckets",
    "dead_letters",
    "replays",
    "alerts",
    "notifications",
    "enrichment_failures",
    "breaches",
    "breach_history",
    "admin_actions",
    "incident_events",
    "config_loads",
];

//! The audit contract: what vowguard records as evidence, and the trait the pipeline
//! appends it through.
//!
//! Every security-relevant fact (an event accepted, a delivery outcome, an alert and its
//! routing decision, a notification attempt, a breach-register change, an admin action,
//! a config load) is one [`AuditRecord`]. Records state what *happened*, never what was
//! meant to happen: a delivery record is written after the sink answered, a notification
//! record after the channel answered.
//!
//! The tamper-evident log (`vowguard-audit`) stores records as leaves of an RFC 6962
//! Merkle tree; the store (`vowguard-store`) is a queryable projection of the same records
//! and can be rebuilt from them. Records are batched where the pipeline works in batches
//! (one record per accepted batch, one per delivered batch) so the audit cost stays a small
//! fraction of forwarding cost, while still naming every event.

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Priority};

/// One audited fact. Serialised as JSON with a `kind` tag; the JSON bytes are the Merkle
/// leaf, so field order and names are part of the evidence format (add fields, never rename).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditRecord {
    /// Events accepted durably at intake (one record per accepted batch).
    EventsAccepted {
        /// When they were accepted.
        at: DateTime<Utc>,
        /// The intake: `http`, `stdin`, `webhook:<id>`, `replay`, ...
        source: String,
        /// Each event's id and the hex SHA-256 of its journaled bytes.
        events: Vec<EventDigest>,
    },
    /// Outcomes of one batch sent to one sink, written after the sink answered.
    Delivered {
        /// When the outcome was known.
        at: DateTime<Utc>,
        /// The sink's component id.
        sink: String,
        /// Per-event outcome.
        events: Vec<DeliveryOutcome>,
    },
    /// Dead letters re-queued by an operator (`vowguard dlq replay`).
    Replayed {
        /// When.
        at: DateTime<Utc>,
        /// The sink whose dead letters were replayed.
        sink: String,
        /// The event ids replayed.
        event_ids: Vec<String>,
        /// Who asked (CLI user, API token name).
        actor: String,
    },
    /// An alert and the routing decision that produced it.
    AlertRouted {
        /// When routing decided.
        at: DateTime<Utc>,
        /// The alert id.
        alert_id: String,
        /// The event that caused it.
        event_id: String,
        /// The priority decided.
        priority: Priority,
        /// The route that matched.
        route: String,
        /// Why this priority and route.
        reasons: Vec<String>,
        /// The channels (notifier ids) it was handed to; empty when suppressed.
        channels: Vec<String>,
        /// Why it was not sent anywhere (`inhibited by ...`, `grouped into ...`), if so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suppressed: Option<String>,
        /// The wedding concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wedding_id: Option<String>,
    },
    /// One notification attempt on one channel and its result.
    Notification {
        /// When the channel answered (or the attempt failed).
        at: DateTime<Utc>,
        /// The alert id.
        alert_id: String,
        /// The notifier's component id.
        channel: String,
        /// `sent`, `failed`, `dead_lettered` or `coalesced` (not sent on its own: merged
        /// into a waiting notification of the same alert group, named in `detail`).
        result: String,
        /// The vendor's receipt id or the failure reason (redacted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// Milliseconds from alert creation to the answer.
        latency_ms: u64,
    },
    /// Enrichment of a batch of events finished.
    Enriched {
        /// When.
        at: DateTime<Utc>,
        /// Per event: id and milliseconds spent enriching.
        events: Vec<(String, u64)>,
        /// Enrichers that failed or were skipped (breaker open), with the reason.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failures: Vec<(String, String)>,
    },
    /// A change to the GDPR breach register (opened, confirmed, updated, notified, closed).
    Breach {
        /// When.
        at: DateTime<Utc>,
        /// The breach id.
        breach_id: String,
        /// What changed: `opened`, `confirmed`, `updated`, `notified_authority`, ...
        action: String,
        /// Who (`system`, a CLI user, an API token name, a playbook).
        actor: String,
        /// The changed fields with their new values.
        fields: Map<String, Value>,
    },
    /// An incident or playbook step (automated response).
    Incident {
        /// When.
        at: DateTime<Utc>,
        /// The incident id.
        incident_id: String,
        /// What happened: `opened`, `acknowledged`, `step_finished`, ...
        action: String,
        /// Who.
        actor: String,
        /// Details.
        fields: Map<String, Value>,
    },
    /// A state-changing admin API call or CLI action.
    Admin {
        /// When.
        at: DateTime<Utc>,
        /// Who (API token name, `cli:<user>`).
        actor: String,
        /// What, e.g. `dlq.replay`, `breach.confirm`.
        action: String,
        /// The object acted on.
        target: String,
        /// The result: `ok` or the error.
        result: String,
    },
    /// A configuration was loaded.
    ConfigLoaded {
        /// When.
        at: DateTime<Utc>,
        /// Hex SHA-256 of the config file bytes.
        digest: String,
        /// The file path as given.
        path: String,
    },
}

impl AuditRecord {
    /// When the fact happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::EventsAccepted { at, .. }
            | Self::Delivered { at, .. }
            | Self::Replayed { at, .. }
            | Self::AlertRouted { at, .. }
            | Self::Notification { at, .. }
            | Self::Enriched { at, .. }
            | Self::Breach { at, .. }
            | Self::Incident { at, .. }
            | Self::Admin { at, .. }
            | Self::ConfigLoaded { at, .. } => *at,
        }
    }

    /// The record's kind tag, as serialised (`events_accepted`, `delivered`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EventsAccepted { .. } => "events_accepted",
            Self::Delivered { .. } => "delivered",
            Self::Replayed { .. } => "replayed",
            Self::AlertRouted { .. } => "alert_routed",
            Self::Notification { .. } => "notification",
            Self::Enriched { .. } => "enriched",
            Self::Breach { .. } => "breach",
            Self::Incident { .. } => "incident",
            Self::Admin { .. } => "admin",
            Self::ConfigLoaded { .. } => "config_loaded",
        }
    }
}

/// An accepted event's id and content digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDigest {
    /// The event id.
    pub id: String,
    /// Hex SHA-256 of the event as journaled.
    pub sha256: String,
    /// The event's own timestamp (for forwarding-latency reports).
    pub timestamp: DateTime<Utc>,
}

/// One event's outcome at one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    /// The event id.
    pub id: String,
    /// `delivered` or `dead_lettered`.
    pub result: String,
    /// Why it was dead-lettered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds from the event's acceptance to the outcome.
    pub latency_ms: u64,
}

/// A signed tree head of the audit log, as a report cites it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The log's origin line (its name).
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Base64 of the RFC 6962 root hash.
    pub root: String,
    /// The full signed note (C2SP checkpoint), for a reader to verify.
    pub note: String,
}

/// Where the pipeline appends audit records.
///
/// `append` returns once the records are durable (the implementation may group-commit
/// concurrent callers); the pipeline acknowledges what a record describes only after that.
/// Implementations: the Merkle log in `vowguard-audit`; [`NoAudit`] when auditing is off.
#[async_trait::async_trait]
pub trait AuditTrail: Send + Sync + Debug {
    /// Appends `records` in order and returns the index of the first one.
    async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error>;
}

/// An [`AuditTrail`] that keeps nothing (auditing disabled).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAudit;

#[async_trait::async_trait]
impl AuditTrail for NoAudit {
    async fn append(&self, _records: Vec<AuditRecord>) -> Result<u64, Error> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_with_a_kind_tag_and_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-06-13T14:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let record = AuditRecord::Admin {
            at,
            actor: "cli:root".into(),
            action: "breach.confirm".into(),
            target: "b-1".into(),
            result: "ok".into(),
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.starts_with(r#"{"kind":"admin","#), "{json}");
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.kind(), "admin");
        assert_eq!(back.at(), at);
    }
}

//! Alerts: what the router hands to notifiers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Event;
use crate::priority::Priority;

/// What a notifier is asked to do with the incident an alert belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    /// Open (or add to) the incident.
    #[default]
    Trigger,
    /// Someone is on it.
    Acknowledge,
    /// The incident is over.
    Resolve,
}

/// What an event means for weddings on the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeddingImpact {
    /// Weddings happening now (phase `day_of`) that the event touches.
    pub active_weddings_affected: u32,
    /// Couples' personal data may be exposed.
    pub couples_data_at_risk: bool,
    /// Vendor accounts that may be compromised.
    pub vendor_accounts_compromised: u32,
    /// Payment data may be exposed.
    pub payment_data_exposed: bool,
    /// Guest lists read or exported.
    pub guest_lists_accessed: u32,
    /// Wedding photos may be exposed.
    pub wedding_photos_at_risk: bool,
}

impl WeddingImpact {
    /// True when the event has any wedding impact at all.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// One alert for one route: the event, how urgent it is, why, and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id of this alert (UUIDv7).
    pub id: String,
    /// Stable key of the alert group: notifiers that deduplicate (PagerDuty) use it so a
    /// burst of related events is one incident.
    pub dedup_key: String,
    /// Trigger, acknowledge or resolve.
    pub action: AlertAction,
    /// How urgent.
    pub priority: Priority,
    /// Why this priority (human-readable, for the alert body and `route explain`).
    pub reasons: Vec<String>,
    /// The route that sent it.
    pub route: String,
    /// The event that caused it.
    pub event: Arc<Event>,
    /// Wedding impact assessment.
    pub impact: WeddingImpact,
    /// Per-route receiver parameters (e.g. `channel`, `mention`, `recipients`,
    /// `severity`), read by the notifiers that understand them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
    /// When the alert was created.
    pub created_at: DateTime<Utc>,
}

impl Alert {
    /// A trigger alert for `event` with a fresh id; the dedup key defaults to the event id.
    pub fn new(event: Arc<Event>, priority: Priority, route: impl Into<String>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            dedup_key: event.id.clone(),
            action: AlertAction::Trigger,
            priority,
            reasons: Vec::new(),
            route: route.into(),
            event,
            impact: WeddingImpact::default(),
            params: Map::new(),
            created_at: Utc::now(),
        }
    }

    /// A stable alert id (UUID-shaped) derived from `parts`: the same parts give the same id
    /// on every run and host, so a notification re-created after a restart (the same
    /// journal record routed again, the same repeat of a group) keeps its identity and a
    /// notifier's "already delivered" memory recognises it.
    pub fn derive_id(parts: &[&str]) -> String {
        // Two FNV-1a 64-bit hashes with different offsets make 128 bits; not cryptographic
        // (an id, not a secret), but collisions among remembered alerts are negligible.
        let mut hashes = [0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64];
        for h in &mut hashes {
            for part in parts {
                for b in part.bytes().chain(std::iter::once(0xff)) {
                    *h ^= u64::from(b);
                    *h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        let bytes = (u128::from(hashes[0]) << 64 | u128::from(hashes[1])).to_be_bytes();
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// A string receiver parameter, e.g. `param_str("channel")`.
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }
}

//! The ticketing role: incident tickets (Jira, ServiceNow) and external SOAR cases
//! (TheHive, Shuffle, Tines, StackStorm, XSOAR) that playbooks open, update and resolve.
//!
//! Every implementation must be idempotent on [`TicketDraft::fingerprint`]: opening the same
//! incident twice (a retried request, a resumed playbook run, a duplicated trigger) returns
//! the ticket opened the first time, never a second one. Each vendor has its own way (Jira:
//! a fingerprint → issue-key map kept by the connector plus a fingerprint label; ServiceNow:
//! `correlation_id`; TheHive: `type`/`source`/`sourceRef`; generic webhooks: an idempotency
//! key and the connector's own map).
//!
//! All text in a draft or update may come from an event and is attacker-controlled: a
//! connector encodes it for its wire format (JSON, ADF, HTML) and never lets it choose a
//! URL, a header or a field name.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Event, Priority};

/// What an incident looks like to a ticket or SOAR system when it is opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TicketDraft {
    /// vowguard's incident id.
    pub incident_id: String,
    /// The stable dedup key of the incident (the same incident always has the same one).
    pub fingerprint: String,
    /// One-line title, e.g. `Wedding Data Security Incident - <event id>`.
    pub title: String,
    /// Plain-text description (the connector converts it to its markup).
    pub description: String,
    /// How urgent.
    pub priority: Priority,
    /// Weddings affected.
    pub wedding_ids: Vec<String>,
    /// Labels / tags (the connector may add its own fingerprint label).
    pub labels: Vec<String>,
    /// Tasks to track on the ticket (investigation, containment, recovery), in order.
    pub tasks: Vec<String>,
    /// The event that opened the incident, for observables (IPs, users, hosts).
    pub event: Option<Arc<Event>>,
    /// When the incident was opened.
    pub opened_at: DateTime<Utc>,
}

impl TicketDraft {
    /// A draft with the required fields; the rest empty.
    pub fn new(
        incident_id: impl Into<String>,
        fingerprint: impl Into<String>,
        title: impl Into<String>,
        priority: Priority,
    ) -> Self {
        Self {
            incident_id: incident_id.into(),
            fingerprint: fingerprint.into(),
            title: title.into(),
            description: String::new(),
            priority,
            wedding_ids: Vec::new(),
            labels: Vec::new(),
            tasks: Vec::new(),
            event: None,
            opened_at: Utc::now(),
        }
    }
}

/// A ticket opened in an external system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// The ticket system's component id (`[tickets.<id>]`).
    pub system: String,
    /// The vendor's key or id (`SEC-42`, a ServiceNow `sys_id`, a TheHive `~123`).
    pub key: String,
    /// A human link to the ticket, when the vendor gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A timeline entry added to an open ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUpdate {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it (`system`, a user, a playbook step).
    pub author: String,
    /// What happened, plain text.
    pub text: String,
}

/// An incident-ticket or SOAR-case system.
#[async_trait::async_trait]
pub trait TicketSystem: Send + Sync + Debug {
    /// The connector kind (`jira`, `servicenow`, `thehive`, `soar_webhook`).
    fn kind(&self) -> &'static str;

    /// Opens a ticket for `draft`, or returns the one already opened for its fingerprint.
    async fn open(&self, draft: &TicketDraft) -> Result<TicketRef, Error>;

    /// Adds a timeline entry (a comment, a work note, a case log).
    async fn update(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error>;

    /// Resolves/closes the ticket with a closing note.
    async fn resolve(&self, ticket: &TicketRef, note: &str) -> Result<(), Error>;

    /// Checks credentials and reachability at start (`vowguard validate`).
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

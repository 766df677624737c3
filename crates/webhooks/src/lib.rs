//! Inbound security webhooks: verified, replay-proof intake from external tools.
//!
//! * [`verify`]: the signature schemes (Standard Webhooks `v1`/`v1a`, GitHub, Stripe,
//!   Slack, PagerDuty v3, Twilio, generic HMAC, Jira, ServiceNow HMAC or bearer token), on
//!   the raw bytes, in constant time, every
//!   signature against every key, timestamps within a tolerance; and [`verify::sign`], the
//!   sender's side (for `vowguard webhook sign` and tests).
//! * [`map`]: vendor payloads to [`vowguard_core::Event`]s (and incident updates: PagerDuty
//!   and Slack as [`IncidentSync`]s, Jira and ServiceNow ticket status changes as
//!   [`TicketStatus`]es mapped through the source's [`StatusMap`]).
//! * [`replay`]: the persisted, time-bounded set of processed delivery ids.
//! * [`config`]: `[webhooks.<id>]` to a ready [`Source`].
//!
//! [`Source::accept`] ties them together for a host: verify, then map, then name the
//! delivery (its replay key) and its events. The host claims the replay key, submits the
//! events, and commits the key once they are durable.

pub mod config;
pub mod map;
pub mod replay;
pub mod verify;

pub use config::{ServiceNowAuthKind, Source, WebhookConfig, WebhookKind};
pub use map::{
    IncidentChange, IncidentSync, Mapped, Mapping, PayloadError, StatusMap, StatusTarget,
    TicketStatus, TicketVendor, Vendor,
};
pub use replay::{Claim, ReplayGuard};
pub use verify::{Key, Rejection, Request, Scheme, ServiceNowAuth, Verified};

/// Why [`Source::accept`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The signature check failed (`401`, no detail to the sender).
    Unverified(Rejection),
    /// Verified, but the body is not the vendor's format (`400`).
    Payload(PayloadError),
}

impl Refusal {
    /// The metric reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unverified(r) => r.as_str(),
            Refusal::Payload(_) => "bad_payload",
        }
    }
}

/// A verified, mapped delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The replay key: the sender's delivery id, or the digest of what was signed.
    pub replay_key: String,
    /// What the payload became (events with their ids assigned).
    pub mapped: Mapped,
}

impl Source {
    /// Verifies `request` at unix time `now`, then maps it.
    pub fn accept(&self, request: &Request<'_>, now: i64) -> Result<Delivery, Refusal> {
        let verified = verify::verify(&self.scheme, &self.keys, request, now, self.tolerance_secs)
            .map_err(Refusal::Unverified)?;
        let mut mapped =
            map::map(self.vendor, request, self.mapping.as_ref()).map_err(Refusal::Payload)?;
        if let Some(statuses) = &self.statuses {
            for ticket in &mut mapped.tickets {
                ticket.change = statuses.change(ticket);
            }
        }
        // ServiceNow's replay key is the record's `sys_id` and `sys_mod_count` (each update
        // of a record once); the others prefer the delivery id of the headers.
        let delivery_id = if self.vendor == Vendor::ServiceNow {
            mapped.delivery_id.clone().or(verified.delivery_id)
        } else {
            verified.delivery_id.or_else(|| mapped.delivery_id.clone())
        };
        let replay_key = match delivery_id {
            Some(id) => format!("id:{id}"),
            None => format!("sha256:{}", verify::hex_encode(&verified.digest)),
        };
        map::assign_ids(&mut mapped.events, &self.id, &replay_key);
        Ok(Delivery { replay_key, mapped })
    }
}

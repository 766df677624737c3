//! Vendor payloads to vowguard events, run only on verified requests.
//!
//! Each type picks the category, action (`<vendor>.<event type>`), severity and the ids a
//! payload carries (wedding, user, vendor, resource); the whole payload is kept under
//! `attributes.webhook` so nothing the vendor said is lost. A `mapping` table maps a
//! generic source's fields without code. Incident updates (PagerDuty acknowledged /
//! resolved, Slack's "Acknowledge" button) come out as [`IncidentSync`]s for the host.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use vowguard_core::{Category, Event, Outcome, Severity};

use crate::verify::Request;

/// Longest string copied from a payload into an event's named fields, in characters.
const MAX_FIELD_CHARS: usize = 512;

/// Most events one delivery turns into.
pub const MAX_EVENTS_PER_DELIVERY: usize = 100;

/// The Slack interactive action id that acknowledges a vowguard incident; the button's
/// `value` is the incident id.
pub const SLACK_ACK_ACTION: &str = "vowguard_ack";

/// Which payload mapper a source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Vendor {
    /// Standard Webhooks (`{"type", "timestamp", "data"}`), or any sender using the scheme.
    StandardWebhooks,
    /// GitHub (security alerts, membership and repository changes).
    GitHub,
    /// Stripe (early fraud warnings, disputes, Radar reviews).
    Stripe,
    /// Slack (Events API and interactive actions).
    Slack,
    /// PagerDuty v3 webhooks.
    PagerDuty,
    /// Twilio (form or JSON callbacks).
    Twilio,
    /// A generic JSON sender (mapped by the `mapping` table).
    Generic,
    /// Jira issue webhooks (`jira:issue_updated` status changes sync incidents).
    Jira,
    /// ServiceNow records posted by a business rule (state changes sync incidents).
    ServiceNow,
}

/// A `mapping` table: event field name to a JSON pointer into the payload (`/alert/level`)
/// or a literal (anything not starting with `/`). `events` (a pointer to an array) makes
/// one event per element, with the other pointers relative to the element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    fields: BTreeMap<String, String>,
}

/// The event fields a mapping can set.
pub const MAPPABLE_FIELDS: &[&str] = &[
    "events",
    "category",
    "action",
    "severity",
    "outcome",
    "message",
    "user_id",
    "user_name",
    "source_ip",
    "wedding_id",
    "vendor_id",
    "resource_type",
    "resource_id",
    "domain",
    "url",
    "risk_score",
];

impl Mapping {
    /// A mapping from `field = "pointer or literal"` pairs. Errors name the field.
    pub fn new(fields: BTreeMap<String, String>) -> Result<Self, String> {
        for (field, value) in &fields {
            if !MAPPABLE_FIELDS.contains(&field.as_str()) {
                return Err(format!(
                    "`{field}`: unknown field; expected one of {}",
                    MAPPABLE_FIELDS.join(", ")
                ));
            }
            if field == "events" && !value.starts_with('/') {
                return Err("`events`: must be a JSON pointer such as `/alerts`".into());
            }
            if !value.starts_with('/') {
                let bad = match field.as_str() {
                    "category" => value.parse::<Category>().err(),
                    "severity" => parse_severity(value)
                        .is_none()
                        .then(|| "expected a severity (info, low, medium, high, critical)".into()),
                    "outcome" => value.parse::<Outcome>().err(),
                    _ => None,
                };
                if let Some(why) = bad {
                    return Err(format!("`{field}`: {why}"));
                }
            }
        }
        Ok(Self { fields })
    }

    fn get<'a>(&'a self, field: &str, item: &'a Value) -> Option<&'a Value> {
        let spec = self.fields.get(field)?;
        if spec.starts_with('/') {
            item.pointer(spec).filter(|v| !v.is_null())
        } else {
            None
        }
    }

    fn text(&self, field: &str, item: &Value) -> Option<String> {
        let spec = self.fields.get(field)?;
        if spec.starts_with('/') {
            self.get(field, item).and_then(scalar_text)
        } else {
            Some(spec.clone())
        }
    }
}

/// An incident change asked for by the other side of a two-way integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSync {
    /// Acknowledge or resolve.
    pub change: IncidentChange,
    /// What names the vowguard incident: its id, or the alert group key (PagerDuty's
    /// `incident_key` is the dedup key vowguard sent).
    pub reference: String,
    /// Who acted, as `<vendor>:<name>` (letters, digits, `-_.@:` only).
    pub actor: String,
}

/// The state change of an [`IncidentSync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentChange {
    /// Acknowledged.
    Acknowledge,
    /// Resolved.
    Resolve,
}

/// The ticket system a [`TicketStatus`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TicketVendor {
    /// Jira (the key is the issue key, `SEC-42`).
    Jira,
    /// ServiceNow (the key is the record's `sys_id`, or its `number`).
    ServiceNow,
}

impl TicketVendor {
    /// The connector kind (`jira`, `servicenow`): the `type` of the `[tickets.<id>]` whose
    /// tickets this vendor's webhooks update.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketVendor::Jira => "jira",
            TicketVendor::ServiceNow => "servicenow",
        }
    }
}

/// A ticket's status changed in the ticket system (two-way sync of the incident the
/// ticket was opened for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketStatus {
    /// Where the change happened.
    pub vendor: TicketVendor,
    /// What may name the ticket vowguard opened, most specific first: the Jira issue key;
    /// the ServiceNow `sys_id`, then its `number`.
    pub keys: Vec<String>,
    /// The new status as the ticket system names it (a Jira status name; a ServiceNow
    /// state value such as `6`, or its display value).
    pub status: String,
    /// The status's display name, when the payload gives it apart from the status (a
    /// ServiceNow state's display value, `Resolved` for `6`).
    pub display: Option<String>,
    /// The previous status, when the payload says.
    pub from: Option<String>,
    /// Jira's status category key (`new`, `indeterminate`, `done`), when the payload says.
    pub category: Option<String>,
    /// What the change does to the incident, from the source's status map; `None`: a
    /// status the map does not know (recorded on the timeline, the state is left alone).
    pub change: Option<IncidentChange>,
    /// Who changed it, as `<vendor>:<name>` (letters, digits, `-_.@:` only).
    pub actor: String,
}

/// What a ticket status does to the incident (`statuses` of a `jira` / `servicenow`
/// source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusTarget {
    /// Acknowledge the incident.
    Acknowledged,
    /// Resolve the incident.
    Resolved,
    /// Record the change on the timeline only.
    Ignore,
}

/// A source's status map: a status (compared without case) or, for Jira, a status
/// category written `category:<key>`, to what it does. A status is looked up first, then
/// its category.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusMap {
    targets: BTreeMap<String, StatusTarget>,
}

impl StatusMap {
    /// The defaults of `vendor`: Jira category `done` resolves and `In Progress`
    /// acknowledges; ServiceNow states 6 (Resolved) and 7 (Closed) resolve and 2 (In
    /// Progress) acknowledges (by value or display value).
    pub fn defaults(vendor: TicketVendor) -> Self {
        let pairs: &[(&str, StatusTarget)] = match vendor {
            TicketVendor::Jira => &[
                ("category:done", StatusTarget::Resolved),
                ("in progress", StatusTarget::Acknowledged),
            ],
            TicketVendor::ServiceNow => &[
                ("2", StatusTarget::Acknowledged),
                ("in progress", StatusTarget::Acknowledged),
                ("6", StatusTarget::Resolved),
                ("resolved", StatusTarget::Resolved),
                ("7", StatusTarget::Resolved),
                ("closed", StatusTarget::Resolved),
            ],
        };
        Self {
            targets: pairs.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect(),
        }
    }

    /// The defaults of `vendor` with `overrides` (status to `acknowledged`, `resolved` or
    /// `ignore`) on top. Errors name the status.
    pub fn with_overrides(
        vendor: TicketVendor,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut map = Self::defaults(vendor);
        for (status, target) in overrides {
            let key = status.trim().to_lowercase();
            if key.is_empty() {
                return Err("an empty status".into());
            }
            if vendor == TicketVendor::ServiceNow && key.starts_with("category:") {
                return Err(format!(
                    "`{status}`: status categories are Jira's; ServiceNow states are values (`6`) or display values (`Resolved`)"
                ));
            }
            let target = match target.as_str() {
                "acknowledged" => StatusTarget::Acknowledged,
                "resolved" => StatusTarget::Resolved,
                "ignore" => StatusTarget::Ignore,
                other => {
                    return Err(format!(
                        "`{status}`: `{other}` is not `acknowledged`, `resolved` or `ignore`"
                    ));
                }
            };
            map.targets.insert(key, target);
        }
        Ok(map)
    }

    /// What `status` does: looked up by itself, then by its `display` name, then by its
    /// Jira `category`.
    pub fn target(
        &self,
        status: &str,
        display: Option<&str>,
        category: Option<&str>,
    ) -> Option<StatusTarget> {
        self.targets
            .get(&status.trim().to_lowercase())
            .or_else(|| display.and_then(|d| self.targets.get(&d.trim().to_lowercase())))
            .or_else(|| {
                category.and_then(|c| {
                    self.targets
                        .get(&format!("category:{}", c.trim().to_lowercase()))
                })
            })
            .copied()
    }

    /// The incident change for `ticket`'s status, `None` when unknown or ignored.
    pub fn change(&self, ticket: &TicketStatus) -> Option<IncidentChange> {
        match self.target(
            &ticket.status,
            ticket.display.as_deref(),
            ticket.category.as_deref(),
        )? {
            StatusTarget::Acknowledged => Some(IncidentChange::Acknowledge),
            StatusTarget::Resolved => Some(IncidentChange::Resolve),
            StatusTarget::Ignore => None,
        }
    }
}

/// What a verified delivery becomes.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// The events to submit.
    pub events: Vec<Event>,
    /// The delivery id the payload carries (Stripe and PagerDuty event ids), for the replay
    /// guard when the headers have none.
    pub delivery_id: Option<String>,
    /// Incident updates to apply.
    pub sync: Vec<IncidentSync>,
    /// A body the sender expects back (Slack's `url_verification` challenge).
    pub reply: Option<String>,
    /// Ticket status changes (Jira, ServiceNow) for the host to apply to the incidents the
    /// tickets were opened for.
    pub tickets: Vec<TicketStatus>,
}

/// Why a verified body is refused (`400`; counted as `bad_payload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError(pub String);

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps a verified request of `vendor`. The events get their ids from
/// [`assign_ids`] once the delivery's replay key is known.
pub fn map(
    vendor: Vendor,
    request: &Request<'_>,
    mapping: Option<&Mapping>,
) -> Result<Mapped, PayloadError> {
    let mut mapped = match vendor {
        Vendor::Slack => slack(request)?,
        Vendor::Twilio => twilio(request)?,
        _ => {
            let payload = json(request.body)?;
            match (vendor, mapping) {
                (_, Some(mapping)) => Mapped {
                    events: generic(&payload, mapping)?,
                    ..Mapped::default()
                },
                (Vendor::GitHub, None) => github(request, payload),
                (Vendor::Stripe, None) => stripe(payload)?,
                (Vendor::PagerDuty, None) => pagerduty(payload)?,
                (Vendor::Jira, None) => jira(payload)?,
                (Vendor::ServiceNow, None) => servicenow(payload)?,
                (_, None) => standard(payload)?,
            }
        }
    };
    mapped.events.truncate(MAX_EVENTS_PER_DELIVERY);
    Ok(mapped)
}

/// Gives each event of a delivery a deterministic id from the source and the delivery's
/// replay key (a redelivery after a crash yields the same ids) and labels its source.
pub fn assign_ids(events: &mut [Event], source_id: &str, replay_key: &str) {
    for (index, event) in events.iter_mut().enumerate() {
        event.id = event_id(source_id, replay_key, index);
        event.labels.insert("webhook_source".into(), cap(source_id));
    }
}

/// A deterministic event id for the `index`th event of a delivery.
fn event_id(source_id: &str, replay_key: &str, index: usize) -> String {
    let mut hash = Sha256::new();
    hash.update(source_id.as_bytes());
    hash.update([0]);
    hash.update(replay_key.as_bytes());
    hash.update(index.to_le_bytes());
    let digest = hash.finalize();
    format!("wh-{}", crate::verify::hex_encode(&digest[..16]))
}

fn json(body: &[u8]) -> Result<Value, PayloadError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(PayloadError("expected a JSON object".into())),
        Err(e) => Err(PayloadError(format!(
            "invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ))),
    }
}

fn cap(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(cap(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(scalar_text)
}

/// An action segment: letters, digits, `_`, `.` and `-` only (anything else becomes `_`).
fn action_part(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Reads a vendor's severity word.
fn parse_severity(text: &str) -> Option<Severity> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "info" | "informational" | "notice" | "debug" | "none" | "note" => Severity::Info,
        "low" | "minor" => Severity::Low,
        "medium" | "moderate" | "warning" | "warn" => Severity::Medium,
        "high" | "major" | "error" | "important" => Severity::High,
        "critical" | "fatal" | "emergency" | "severe" => Severity::Critical,
        _ => return None,
    })
}

/// Sets the ids a payload commonly carries in `metadata`-like objects.
fn take_ids(event: &mut Event, object: Option<&Value>) {
    let Some(object) = object else { return };
    if event.wedding_id.is_none() {
        event.wedding_id = text_at(object, "/wedding_id");
    }
    if event.user_id.is_none() {
        event.user_id = text_at(object, "/user_id");
    }
    if let Some(vendor) = text_at(object, "/vendor_id") {
        event.labels.insert("vendor_id".into(), vendor);
    }
}

fn with_payload(mut event: Event, vendor: &str, payload: Value) -> Event {
    event
        .attributes
        .insert("webhook_vendor".into(), vendor.into());
    event.attributes.insert("webhook".into(), payload);
    event
}

fn standard(payload: Value) -> Result<Mapped, PayloadError> {
    let kind = text_at(&payload, "/type")
        .ok_or_else(|| PayloadError("missing `type` (a Standard Webhooks payload)".into()))?;
    let data = payload.get("data");
    let severity = data
        .and_then(|d| text_at(d, "/severity"))
        .and_then(|s| parse_severity(&s))
        .unwrap_or(Severity::Medium);
    let mut event = Event::new(
        Category::Detection,
        format!("webhook.{}", action_part(&kind)),
        severity,
    );
    event.message = data.and_then(|d| text_at(d, "/message").or_else(|| text_at(d, "/title")));
    take_ids(&mut event, data);
    Ok(Mapped {
        events: vec![with_payload(event, "standard_webhooks", payload)],
        ..Mapped::default()
    })
}

fn generic(payload: &Value, mapping: &Mapping) -> Result<Vec<Event>, PayloadError> {
    let items: Vec<&Value> = match mapping.fields.get("events") {
        Some(pointer) => match payload.pointer(pointer) {
            Some(Value::Array(items)) => items.iter().take(MAX_EVENTS_PER_DELIVERY).collect(),
            _ => return Err(PayloadError(format!("`{pointer}` is not an array"))),
        },
        None => vec![payload],
    };
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let category = mapping
            .text("category", item)
            .and_then(|c| c.parse().ok())
            .unwrap_or(Category::Detection);
        let action = mapping
            .text("action", item)
            .map_or_else(|| "webhook.alert".to_owned(), |a| action_part(&a));
        let severity = mapping
            .text("severity", item)
            .and_then(|s| parse_severity(&s))
            .unwrap_or(Severity::Medium);
        let mut event = Event::new(category, action, severity);
        if let Some(outcome) = mapping.text("outcome", item).and_then(|o| o.parse().ok()) {
            event.outcome = outcome;
        }
        event.message = mapping.text("message", item);
        event.user_id = mapping.text("user_id", item);
        event.user_name = mapping.text("user_name", item);
        event.source_ip = mapping
            .text("source_ip", item)
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        event.wedding_id = mapping.text("wedding_id", item);
        event.resource_type = mapping.text("resource_type", item);
        event.resource_id = mapping.text("resource_id", item);
        event.domain = mapping.text("domain", item);
        event.url = mapping.text("url", item);
        event.risk_score = mapping
            .text("risk_score", item)
            .and_then(|r| r.parse::<u8>().ok())
            .filter(|r| *r <= 100);
        if let Some(vendor) = mapping.text("vendor_id", item) {
            event.labels.insert("vendor_id".into(), vendor);
        }
        events.push(with_payload(event, "generic", item.clone()));
    }
    Ok(events)
}

fn github(request: &Request<'_>, payload: Value) -> Mapped {
    let kind = request
        .header("x-github-event")
        .unwrap_or("unknown")
        .to_owned();
    if kind == "ping" {
        return Mapped::default();
    }
    let action = text_at(&payload, "/action");
    let (category, severity) = match kind.as_str() {
        "secret_scanning_alert" | "secret_scanning_alert_location" => {
            (Category::Detection, Severity::High)
        }
        "code_scanning_alert" => (
            Category::Vulnerability,
            text_at(&payload, "/alert/rule/security_severity_level")
                .or_else(|| text_at(&payload, "/alert/rule/severity"))
                .and_then(|s| parse_severity(&s))
                .unwrap_or(Severity::Medium),
        ),
        "dependabot_alert" | "repository_vulnerability_alert" | "security_advisory" => (
            Category::Vulnerability,
            text_at(&payload, "/alert/security_advisory/severity")
                .or_else(|| text_at(&payload, "/alert/severity"))
                .or_else(|| text_at(&payload, "/security_advisory/severity"))
                .and_then(|s| parse_severity(&s))
                .unwrap_or(Severity::Medium),
        ),
        "member"
        | "membership"
        | "organization"
        | "team"
        | "deploy_key"
        | "branch_protection_rule"
        | "repository_ruleset"
        | "personal_access_token_request" => (Category::AdminAction, Severity::Low),
        "repository" if action.as_deref() == Some("publicized") => {
            (Category::AdminAction, Severity::High)
        }
        "repository" => (Category::AdminAction, Severity::Low),
        _ => (Category::Other, Severity::Info),
    };
    let mut name = format!("github.{}", action_part(&kind));
    if let Some(action) = &action {
        name.push('.');
        name.push_str(&action_part(action));
    }
    let mut event = Event::new(category, name, severity);
    event.user_name = text_at(&payload, "/sender/login");
    event.user_id = text_at(&payload, "/sender/id");
    if let Some(repo) = text_at(&payload, "/repository/full_name") {
        event.resource_type = Some("repository".into());
        event.resource_id = Some(repo);
    }
    event.url = text_at(&payload, "/alert/html_url");
    Mapped {
        events: vec![with_payload(event, "github", payload)],
        ..Mapped::default()
    }
}

fn stripe(payload: Value) -> Result<Mapped, PayloadError> {
    let kind = text_at(&payload, "/type")
        .ok_or_else(|| PayloadError("missing `type` (a Stripe event)".into()))?;
    let id = text_at(&payload, "/id")
        .ok_or_else(|| PayloadError("missing `id` (a Stripe event)".into()))?;
    let object = payload.pointer("/data/object");
    let (category, severity) = match kind.as_str() {
        "radar.early_fraud_warning.created" => (Category::Payment, Severity::High),
        "radar.early_fraud_warning.updated" => (Category::Payment, Severity::Medium),
        "charge.dispute.created" | "charge.dispute.funds_withdrawn" => {
            (Category::Payment, Severity::High)
        }
        k if k.starts_with("charge.dispute.") => (Category::Payment, Severity::Medium),
        "review.opened" => (Category::Payment, Severity::Medium),
        "review.closed" => (Category::Payment, Severity::Low),
        k if k.starts_with("payment_intent.payment_failed") || k == "charge.failed" => {
            (Category::Payment, Severity::Low)
        }
        _ => (Category::Payment, Severity::Info),
    };
    let mut event = Event::new(category, format!("stripe.{}", action_part(&kind)), severity);
    if let Some(object) = object {
        event.resource_type = text_at(object, "/object");
        event.resource_id = text_at(object, "/id");
        event.message = text_at(object, "/fraud_type")
            .map(|t| format!("Stripe early fraud warning: {t}"))
            .or_else(|| text_at(object, "/reason").map(|r| format!("Stripe {kind}: {r}")));
        take_ids(&mut event, object.get("metadata"));
    }
    event.labels.insert("stripe_event_id".into(), id.clone());
    Ok(Mapped {
        events: vec![with_payload(event, "stripe", payload)],
        delivery_id: Some(id),
        ..Mapped::default()
    })
}

/// `<vendor>:<name>` with only the characters an incident actor may hold.
fn actor(vendor: &str, name: Option<String>) -> String {
    let name: String = name
        .unwrap_or_else(|| "unknown".into())
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@') {
                Some(c)
            } else if c == ' ' {
                Some('_')
            } else {
                None
            }
        })
        .take(96)
        .collect();
    if name.is_empty() {
        format!("{vendor}:unknown")
    } else {
        format!("{vendor}:{name}")
    }
}

fn pagerduty(payload: Value) -> Result<Mapped, PayloadError> {
    let event_type = text_at(&payload, "/event/event_type").ok_or_else(|| {
        PayloadError("missing `event.event_type` (a PagerDuty v3 webhook)".into())
    })?;
    let id = text_at(&payload, "/event/id")
        .ok_or_else(|| PayloadError("missing `event.id` (a PagerDuty v3 webhook)".into()))?;
    let data = payload.pointer("/event/data");
    let urgency = data.and_then(|d| text_at(d, "/urgency"));
    let severity = match event_type.as_str() {
        "incident.triggered" | "incident.escalated" | "incident.reopened" => {
            if urgency.as_deref() == Some("high") {
                Severity::High
            } else {
                Severity::Medium
            }
        }
        _ => Severity::Info,
    };
    let mut event = Event::new(
        Category::Detection,
        format!("pagerduty.{}", action_part(&event_type)),
        severity,
    );
    let agent = payload
        .pointer("/event/agent/summary")
        .and_then(scalar_text);
    event.user_name.clone_from(&agent);
    event.user_id = text_at(&payload, "/event/agent/id");
    if let Some(data) = data {
        event.resource_type = text_at(data, "/type");
        event.resource_id = text_at(data, "/id");
        event.message = text_at(data, "/title");
        event.url = text_at(data, "/html_url");
    }
    let change = match event_type.as_str() {
        "incident.acknowledged" => Some(IncidentChange::Acknowledge),
        "incident.resolved" => Some(IncidentChange::Resolve),
        _ => None,
    };
    let sync = change
        .and_then(|change| {
            let reference = data.and_then(|d| text_at(d, "/incident_key"))?;
            Some(IncidentSync {
                change,
                reference,
                actor: actor("pagerduty", agent),
            })
        })
        .into_iter()
        .collect();
    Ok(Mapped {
        events: vec![with_payload(event, "pagerduty", payload)],
        delivery_id: Some(id),
        sync,
        ..Mapped::default()
    })
}

fn form(body: &[u8]) -> Map<String, Value> {
    form_urlencoded::parse(body)
        .take(256)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

fn slack(request: &Request<'_>) -> Result<Mapped, PayloadError> {
    let body = request.body;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let payload = if first == Some(&b'{') {
        json(body)?
    } else {
        // Interactive actions: a form with one `payload` field holding JSON.
        let fields = form(body);
        let inner = fields
            .get("payload")
            .and_then(Value::as_str)
            .ok_or_else(|| PayloadError("expected JSON or a form with `payload`".into()))?;
        json(inner.as_bytes())?
    };
    let kind = text_at(&payload, "/type")
        .ok_or_else(|| PayloadError("missing `type` (a Slack payload)".into()))?;
    if kind == "url_verification" {
        let challenge = text_at(&payload, "/challenge")
            .ok_or_else(|| PayloadError("missing `challenge`".into()))?;
        return Ok(Mapped {
            reply: Some(challenge),
            ..Mapped::default()
        });
    }
    let mut sync = Vec::new();
    let name = if kind == "event_callback" {
        let inner = text_at(&payload, "/event/type").unwrap_or_else(|| "unknown".into());
        format!("slack.{}", action_part(&inner))
    } else {
        format!("slack.{}", action_part(&kind))
    };
    let mut event = Event::new(Category::Other, name, Severity::Info);
    event.user_id = text_at(&payload, "/user/id").or_else(|| text_at(&payload, "/event/user"));
    event.user_name =
        text_at(&payload, "/user/username").or_else(|| text_at(&payload, "/user/name"));
    if kind == "block_actions"
        && let Some(Value::Array(actions)) = payload.get("actions")
    {
        for action in actions.iter().take(8) {
            if text_at(action, "/action_id").as_deref() == Some(SLACK_ACK_ACTION)
                && let Some(incident) = text_at(action, "/value")
            {
                event.action = "slack.incident.acknowledge".into();
                event.category = Category::AdminAction;
                event.resource_type = Some("incident".into());
                event.resource_id = Some(incident.clone());
                sync.push(IncidentSync {
                    change: IncidentChange::Acknowledge,
                    reference: incident,
                    actor: actor("slack", event.user_name.clone().or(event.user_id.clone())),
                });
            }
        }
    }
    let delivery_id = text_at(&payload, "/event_id");
    Ok(Mapped {
        events: vec![with_payload(event, "slack", payload)],
        delivery_id,
        sync,
        ..Mapped::default()
    })
}

fn twilio(request: &Request<'_>) -> Result<Mapped, PayloadError> {
    let first = request.body.iter().find(|b| !b.is_ascii_whitespace());
    let payload = if first == Some(&b'{') {
        json(request.body)?
    } else {
        Value::Object(form(request.body))
    };
    // Debugger / alert webhooks carry `Level`; status callbacks carry a status.
    let level = text_at(&payload, "/Level").or_else(|| text_at(&payload, "/level"));
    let severity = level
        .as_deref()
        .and_then(parse_severity)
        .unwrap_or(Severity::Info);
    let kind = text_at(&payload, "/MessageStatus")
        .or_else(|| text_at(&payload, "/CallStatus"))
        .or_else(|| text_at(&payload, "/Status"))
        .map_or_else(
            || "callback".to_owned(),
            |s| action_part(&s.to_ascii_lowercase()),
        );
    let mut event = Event::new(Category::Other, format!("twilio.{kind}"), severity);
    event.resource_id = text_at(&payload, "/MessageSid")
        .or_else(|| text_at(&payload, "/CallSid"))
        .or_else(|| text_at(&payload, "/Sid"));
    event.message = text_at(&payload, "/ErrorMessage");
    Ok(Mapped {
        events: vec![with_payload(event, "twilio", payload)],
        ..Mapped::default()
    })
}

/// The acting person of a Jira payload: display name, else user name, else account id.
fn jira_user(user: Option<&Value>) -> (Option<String>, Option<String>) {
    let Some(user) = user else {
        return (None, None);
    };
    let name = text_at(user, "/displayName")
        .or_else(|| text_at(user, "/name"))
        .or_else(|| text_at(user, "/emailAddress"));
    let id = text_at(user, "/accountId")
        .or_else(|| text_at(user, "/key"))
        .or_else(|| text_at(user, "/name"));
    (name, id)
}

/// Jira issue webhooks. `jira:issue_updated` with a `status` item in its changelog is a
/// status change of the issue; every event becomes an audit-style event.
fn jira(payload: Value) -> Result<Mapped, PayloadError> {
    let kind = text_at(&payload, "/webhookEvent")
        .ok_or_else(|| PayloadError("missing `webhookEvent` (a Jira webhook)".into()))?;
    let key = text_at(&payload, "/issue/key");
    let (user_name, user_id) = jira_user(payload.get("user"));
    let name = kind.strip_prefix("jira:").unwrap_or(&kind);
    let mut event = Event::new(
        Category::AdminAction,
        format!("jira.{}", action_part(name)),
        Severity::Info,
    );
    event.user_name.clone_from(&user_name);
    event.user_id = user_id.clone();
    event.resource_type = Some("jira_issue".into());
    event.resource_id.clone_from(&key);
    let mut tickets = Vec::new();
    let status_item = payload
        .pointer("/changelog/items")
        .and_then(Value::as_array)
        .and_then(|items| {
            items.iter().take(256).find(|item| {
                text_at(item, "/fieldId").as_deref() == Some("status")
                    || text_at(item, "/field").is_some_and(|f| f.eq_ignore_ascii_case("status"))
            })
        });
    if kind == "jira:issue_updated"
        && let Some(item) = status_item
    {
        let key = key
            .clone()
            .ok_or_else(|| PayloadError("a status change without `issue.key`".into()))?;
        let status = text_at(item, "/toString")
            .or_else(|| text_at(&payload, "/issue/fields/status/name"))
            .ok_or_else(|| PayloadError("a status change without `toString`".into()))?;
        let from = text_at(item, "/fromString");
        let category = text_at(&payload, "/issue/fields/status/statusCategory/key");
        event.action = "jira.issue_status_changed".into();
        event.message = Some(match &from {
            Some(from) => format!("Jira {key}: status {from} -> {status}"),
            None => format!("Jira {key}: status -> {status}"),
        });
        tickets.push(TicketStatus {
            vendor: TicketVendor::Jira,
            keys: vec![key],
            status,
            display: None,
            from,
            category,
            change: None,
            actor: actor("jira", user_name.or(user_id)),
        });
    }
    let delivery_id = match (&key, text_at(&payload, "/changelog/id")) {
        (Some(key), Some(changelog)) => Some(format!("jira:{key}:{changelog}")),
        _ => None,
    };
    Ok(Mapped {
        events: vec![with_payload(event, "jira", payload)],
        delivery_id,
        tickets,
        ..Mapped::default()
    })
}

/// A ServiceNow field: a plain value, or `{"value", "display_value"}` (a record read with
/// `sysparm_display_value=all`). Returns the value and the display value.
fn servicenow_field(payload: &Value, name: &str) -> (Option<String>, Option<String>) {
    match payload.get(name) {
        Some(Value::Object(field)) => (
            field.get("value").and_then(scalar_text),
            field.get("display_value").and_then(scalar_text),
        ),
        Some(other) => (scalar_text(other), None),
        None => (None, None),
    }
}

/// A ServiceNow record posted by a business rule: `sys_id`, `number`, `state` (or
/// `incident_state`), `sys_updated_by`, `sys_mod_count`.
fn servicenow(payload: Value) -> Result<Mapped, PayloadError> {
    let sys_id = servicenow_field(&payload, "sys_id")
        .0
        .ok_or_else(|| PayloadError("missing `sys_id` (a ServiceNow record)".into()))?;
    let number = servicenow_field(&payload, "number").0;
    let (mut state, mut state_display) = servicenow_field(&payload, "state");
    if state.is_none() {
        (state, state_display) = servicenow_field(&payload, "incident_state");
    }
    let updated_by = servicenow_field(&payload, "sys_updated_by").0;
    let mod_count = servicenow_field(&payload, "sys_mod_count").0;
    let table = servicenow_field(&payload, "sys_class_name")
        .0
        .unwrap_or_else(|| "incident".into());
    let mut event = Event::new(
        Category::AdminAction,
        "servicenow.record_updated",
        Severity::Info,
    );
    event.user_name.clone_from(&updated_by);
    event.resource_type = Some(format!("servicenow_{}", action_part(&table)));
    event.resource_id = Some(number.clone().unwrap_or_else(|| sys_id.clone()));
    let mut tickets = Vec::new();
    if let Some(state) = state {
        let shown = state_display.clone().unwrap_or_else(|| state.clone());
        event.message = Some(format!(
            "ServiceNow {}: state {shown}",
            number.as_deref().unwrap_or(&sys_id)
        ));
        let mut keys = vec![sys_id.clone()];
        keys.extend(number);
        tickets.push(TicketStatus {
            vendor: TicketVendor::ServiceNow,
            keys,
            status: state,
            display: state_display,
            from: None,
            category: None,
            change: None,
            actor: actor("servicenow", updated_by),
        });
    }
    let delivery_id = mod_count.map(|n| format!("servicenow:{sys_id}:{n}"));
    Ok(Mapped {
        events: vec![with_payload(event, "servicenow", payload)],
        delivery_id,
        tickets,
        ..Mapped::default()
    })
}

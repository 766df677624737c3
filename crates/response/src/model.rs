//! What the engine keeps: incidents with their timeline, playbook runs with their steps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vowguard_core::{Priority, TicketRef};

/// Most alert ids remembered per incident (the count keeps growing).
pub const MAX_LINKED_ALERTS: usize = 256;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IncidentState {
    /// Opened, nobody on it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// The threat is contained (containment actions done).
    Contained,
    /// Over.
    Resolved,
}

impl IncidentState {
    /// The state as written in config and output (`open`, `acknowledged`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Contained => "contained",
            Self::Resolved => "resolved",
        }
    }

    /// Parses `open`, `acknowledged`, `contained` or `resolved`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "contained" => Self::Contained,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// Who moved an incident into a state, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The actor (`system`, `playbook:<name>`, `cli:<user>`, an API token name).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One thing that happened to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor: String,
    /// What: `opened`, `alert_linked`, `acknowledged`, `run_started`, `step_started`,
    /// `step_finished`, `approval_refused`, `run_finished`, `resolved`, ...
    pub action: String,
    /// Details (step id, result, error, ticket key, note).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// The unit people respond to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id (derived from the fingerprint and how many incidents had it before).
    pub id: String,
    /// The dedup key: the alert group key that opened it.
    pub fingerprint: String,
    /// One-line title.
    pub title: String,
    /// The most urgent priority seen.
    pub priority: Priority,
    /// Current state.
    pub state: IncidentState,
    /// When opened, and by whom.
    pub opened: StateChange,
    /// When acknowledged, by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<StateChange>,
    /// When contained, by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contained: Option<StateChange>,
    /// When resolved, by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<StateChange>,
    /// The route of the first alert.
    pub route: String,
    /// Ids of the linked alerts (the latest [`MAX_LINKED_ALERTS`]).
    pub alert_ids: Vec<String>,
    /// How many alerts were linked in all.
    pub alert_count: u64,
    /// Ids of the events behind the linked alerts (the latest [`MAX_LINKED_ALERTS`]).
    pub event_ids: Vec<String>,
    /// Weddings affected.
    pub wedding_ids: Vec<String>,
    /// The event that opened it (JSON), for templates and tickets.
    pub first_event: Value,
    /// Tickets opened for it, by ticket system id.
    #[serde(default)]
    pub tickets: BTreeMap<String, TicketRef>,
    /// Everything that happened to it.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
}

impl Incident {
    /// The incident as templates and conditions see it (`incident.<field>`).
    pub fn context(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "fingerprint": self.fingerprint,
            "title": self.title,
            "priority": self.priority.as_str(),
            "state": self.state.as_str(),
            "route": self.route,
            "alert_count": self.alert_count,
            "wedding_ids": self.wedding_ids,
            "tickets": self.tickets,
        })
    }
}

/// Where a playbook run stands. Every run ends in one of the terminal states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunState {
    /// Steps are running or waiting (an approval).
    Running,
    /// Every step that ran succeeded (or failed with `continue_on_error`).
    Succeeded,
    /// A step failed.
    Failed,
    /// The reaper ended it: it outlived the playbook's deadline.
    TimedOut,
    /// Every step's condition was false: nothing ran.
    NoBranchMatched,
    /// An approval was rejected (or timed out with `on_timeout = "reject"`).
    Rejected,
}

impl RunState {
    /// True once the run is over.
    pub fn is_terminal(self) -> bool {
        self != Self::Running
    }

    /// The state's name (`running`, `succeeded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::NoBranchMatched => "no_branch_matched",
            Self::Rejected => "rejected",
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// Called (or waiting for approval); not finished.
    Running,
    /// Done, successfully.
    Succeeded,
    /// Done, failed (after its retries).
    Failed,
    /// Its deadline passed.
    TimedOut,
    /// Its condition was false, or an earlier failure stopped the run before it.
    Skipped,
}

impl StepStatus {
    /// True once the step is over.
    pub fn is_terminal(self) -> bool {
        self != Self::Running
    }
}

/// One step of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step id.
    pub step_id: String,
    /// Where it stands.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The key the outside world sees for this step (HTTP `Idempotency-Key`, the notifier's
    /// alert id): the same for a resumed or duplicated run.
    pub idempotency_key: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// An approval step's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// What it produced (HTTP status and body, ticket key, approver).
    #[serde(default)]
    pub output: Value,
    /// Why it failed (redacted of secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not executed: the run is a dry run.
    #[serde(default)]
    pub dry_run: bool,
}

impl StepRecord {
    /// The step as conditions and templates see it (`steps.<id>.ok`, `.status`, `.output`).
    pub fn context(&self) -> Value {
        let mut v = serde_json::json!({
            "ok": self.status == StepStatus::Succeeded,
            "status": self.status,
            "attempts": self.attempts,
            "output": self.output,
            "error": self.error,
        });
        if let Some(approved) = self.output.get("approved")
            && let Some(map) = v.as_object_mut()
        {
            map.insert("approved".into(), approved.clone());
        }
        v
    }
}

/// One run of one playbook for one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Stable id: derived from the playbook, its version and the incident, so two
    /// identical triggers give one run.
    pub id: String,
    /// The playbook's name.
    pub playbook: String,
    /// The playbook's version.
    pub version: u32,
    /// The playbook as it was when the run started (TOML-equivalent JSON).
    pub snapshot: Value,
    /// The incident it responds to.
    pub incident_id: String,
    /// The triggering event (JSON).
    pub event: Value,
    /// Not executing anything, only recording what would run.
    pub dry_run: bool,
    /// Where it stands.
    pub state: RunState,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When the reaper ends it if it is still running.
    pub deadline: DateTime<Utc>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Who started it (`alert:<id>`, `cli:<user>`).
    pub started_by: String,
    /// Its steps, by id (only those started or skipped so far).
    #[serde(default)]
    pub steps: BTreeMap<String, StepRecord>,
}

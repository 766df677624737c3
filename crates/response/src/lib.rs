//! Automated response for vowguard: incidents and playbooks.
//!
//! * An [`Incident`] is opened from an alert group (the alert's group key is its
//!   fingerprint), by a playbook run started by hand, or by the CLI. It has a state
//!   (open, acknowledged, contained, resolved, each with who and when), the alerts, events
//!   and weddings linked to it, the tickets opened for it, and a timeline.
//! * A [`Playbook`] is declarative and versioned (`[playbooks.<name>]`): a trigger
//!   (routes, priorities, protocols, categories, router matchers) and steps (`action`,
//!   `http`, `notify`, `ticket`, `approval`, `set_state`) with conditions on earlier
//!   results ([`expr`]), parallel branches that join (`after`), per-step timeout and retry
//!   (the shared [`RetryPolicy`](vowguard_core::RetryPolicy)), `continue_on_error` and
//!   `dry_run`. It is validated at load against what is configured, with errors naming
//!   the key.
//! * The [`ResponseEngine`] drives runs and keeps everything in an [`IncidentStorage`]: by
//!   default an append-only, fsynced record file under `<data_dir>/response/`
//!   ([`FileIncidentStore`]) replayed at start, or [`MemoryIncidentStore`], or a host's own: a run interrupted by
//!   kill -9 resumes at the step it was in; a step that finished under its idempotency key
//!   is never executed again. In a cluster each step is also recorded in the replicas'
//!   shared state before the run moves on, and a replica taking a run over resumes it
//!   from there (see [`coordination`]). Every timeline entry also goes to the
//!   [`AuditTrail`](vowguard_core::AuditTrail).
//!
//! The pipeline hands each routed alert to the engine through
//! [`vowguard_pipeline::ResponseHook`], which never blocks routing.
#![forbid(unsafe_code)]

pub mod config;
pub mod coordination;
pub mod defaults;
pub mod engine;
pub mod expr;
pub mod model;
mod store;
pub mod template;

#[cfg(test)]
mod tests;

pub use config::{
    ActionEndpointConfig, Catalog, OnTimeout, Playbook, PlaybookConfig, ResponseConfig, StepConfig,
    StepKind, TicketOp, TriggerConfig, parse_playbooks,
};
pub use coordination::{
    IncidentAdvance, ResponseCoordination, RunClaim, SharedIncidentState, merge_shared_run,
};
pub use defaults::DEFAULT_PLAYBOOKS;
pub use engine::{
    EngineBuilder, ResponseEngine, ShutdownReport, TicketStatusChange, TicketSync,
    TriggerExplanation, action_signature, read_records,
};
pub use model::{
    Incident, IncidentState, Run, RunState, StateChange, StepRecord, StepStatus, TimelineEntry,
};
pub use store::{
    FileIncidentStore, IncidentRecord, IncidentStorage, MemoryIncidentStore, RECORD_FILE,
};

//! What the replicas of a cluster decide together so automated response happens once
//! (cluster mode; the runtime implements [`ResponseCoordination`] on JetStream KV).
//!
//! * **Incident ids.** The replica that opens the first incident for a fingerprint
//!   proposes its id; every other replica gets the same id for that fingerprint until the
//!   incident is resolved ([`ResponseCoordination::incident_id`]). Each replica's record
//!   file holds its own copy of the incident, with the alerts that replica handled.
//! * **Incident states.** Acknowledging, containing or resolving an incident (admin API,
//!   CLI, a ticket) on one replica moves the state the replicas share first
//!   ([`ResponseCoordination::advance_incident`], compare-and-set, so two replicas
//!   changing it at once never lose either change), then that replica's copy. Every other
//!   replica brings its copy up to the shared state before it shows the incident
//!   ([`ResponseEngine::refresh_incident`](crate::ResponseEngine::refresh_incident)) and
//!   before it links an alert to it (a resolved incident takes no more alerts: the next
//!   alert opens a new one).
//! * **Run claims.** Before a run starts, it is claimed ([`ResponseCoordination::claim_run`]):
//!   one replica drives it, renewing the claim while the run is live, and marks it
//!   finished at its end. Any other replica that would start the same run (same playbook,
//!   version and incident) records `run_claimed_elsewhere` in its incident's timeline and
//!   starts nothing: no second ticket, no second destructive action.
//! * **Takeover.** A replica that dies mid-run stops renewing; once its claim expired, the
//!   next alert for the incident on another replica claims the run and starts it there
//!   from its first step (that replica's record file has no steps of it). Each step is
//!   sent with the same idempotency key as before (HTTP `Idempotency-Key`, the ticket
//!   fingerprint, the notification's alert id), so a step the dead replica had already
//!   done is recognised where the receiving system deduplicates; elsewhere it is
//!   at-least-once. A replica that finds its claim lost (it could not renew in time) ends
//!   its copy of the run (`failed`, "taken over"); one restarting after a kill resumes its
//!   own copy only if it can claim the run again.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vowguard_core::Error;

use crate::model::{Incident, IncidentState, StateChange};

/// An incident's state as the replicas of a cluster share it: where it stands and who
/// moved it there, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedIncidentState {
    /// Where it stands.
    pub state: IncidentState,
    /// Who acknowledged it, when.
    #[serde(default)]
    pub acknowledged: Option<StateChange>,
    /// Who contained it, when.
    #[serde(default)]
    pub contained: Option<StateChange>,
    /// Who resolved it, when.
    #[serde(default)]
    pub resolved: Option<StateChange>,
}

impl SharedIncidentState {
    /// The state of this replica's copy.
    pub fn of(incident: &Incident) -> Self {
        Self {
            state: incident.state,
            acknowledged: incident.acknowledged.clone(),
            contained: incident.contained.clone(),
            resolved: incident.resolved.clone(),
        }
    }

    /// Moves to `to` by `change`: false (nothing changed) when already at or past it.
    pub fn advance(&mut self, to: IncidentState, change: StateChange) -> bool {
        if self.state >= to {
            return false;
        }
        self.state = to;
        let slot = match to {
            IncidentState::Acknowledged => &mut self.acknowledged,
            IncidentState::Contained => &mut self.contained,
            IncidentState::Resolved => &mut self.resolved,
            IncidentState::Open => return true,
        };
        slot.get_or_insert(change);
        true
    }

    /// Takes in what `other` knows: the later state, and each change as first recorded.
    pub fn merge(&mut self, other: &Self) {
        self.state = self.state.max(other.state);
        for (mine, theirs) in [
            (&mut self.acknowledged, &other.acknowledged),
            (&mut self.contained, &other.contained),
            (&mut self.resolved, &other.resolved),
        ] {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
    }

    /// Who moved it into its current state, and when (`None` for `open`).
    pub fn current_change(&self) -> Option<&StateChange> {
        match self.state {
            IncidentState::Open => None,
            IncidentState::Acknowledged => self.acknowledged.as_ref(),
            IncidentState::Contained => self.contained.as_ref(),
            IncidentState::Resolved => self.resolved.as_ref(),
        }
    }
}

/// The answer to [`ResponseCoordination::advance_incident`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentAdvance {
    /// The shared state moved; this is it now (with what other replicas recorded).
    Moved(SharedIncidentState),
    /// The shared state was already at or past the target (another replica moved it):
    /// nothing written; this is it.
    AlreadyThere(SharedIncidentState),
}

/// The answer to [`ResponseCoordination::claim_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunClaim {
    /// This replica drives the run (renew it with [`ResponseCoordination::renew_run`]).
    Claimed,
    /// Another replica drives it now, or it finished: named for the timeline.
    Elsewhere(String),
}

/// Decisions shared by the replicas; see the [module docs](self).
#[async_trait]
pub trait ResponseCoordination: Send + Sync + std::fmt::Debug {
    /// The incident id of `fingerprint` every replica uses: `proposed` when this replica
    /// is the first, else the id another replica proposed.
    async fn incident_id(&self, fingerprint: &str, proposed: &str) -> Result<String, Error>;

    /// The incident of `fingerprint` was resolved: the next alert opens a new one.
    async fn incident_resolved(&self, fingerprint: &str) -> Result<(), Error>;

    /// Moves the shared state of incident `incident_id` to `to` by `change`, by
    /// compare-and-set. `local` (this replica's copy) seeds the shared state when none is
    /// stored yet. The default (no shared state) moves `local`.
    async fn advance_incident(
        &self,
        incident_id: &str,
        local: &SharedIncidentState,
        to: IncidentState,
        change: &StateChange,
    ) -> Result<IncidentAdvance, Error> {
        let _ = incident_id;
        let mut state = local.clone();
        Ok(if state.advance(to, change.clone()) {
            IncidentAdvance::Moved(state)
        } else {
            IncidentAdvance::AlreadyThere(state)
        })
    }

    /// The shared state of incident `incident_id`, if any replica changed it. The
    /// default: none.
    async fn incident_state(
        &self,
        incident_id: &str,
    ) -> Result<Option<SharedIncidentState>, Error> {
        let _ = incident_id;
        Ok(None)
    }

    /// Claims run `run_id` for this replica.
    async fn claim_run(&self, run_id: &str) -> Result<RunClaim, Error>;

    /// Renews this replica's claim on `run_id`; false when it was lost (taken over).
    async fn renew_run(&self, run_id: &str) -> Result<bool, Error>;

    /// Run `run_id` ended here: no replica starts it again.
    async fn run_finished(&self, run_id: &str) -> Result<(), Error>;

    /// How often a live run's claim is renewed.
    fn renew_every(&self) -> std::time::Duration;
}

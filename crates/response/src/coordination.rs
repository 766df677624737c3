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
//! * **Shared run state.** The replica driving a run records it in the shared state
//!   ([`ResponseCoordination::share_run`]): the run's header when it starts, each step
//!   when it starts and again, with its outcome, when it finishes, before the run moves
//!   on. The write is a compare-and-set on the revision this replica last wrote, so a
//!   replica that lost the run (its claim expired and another replica took it over) can
//!   no longer record anything in it: its write fails, and it ends its copy (`failed`,
//!   "taken over").
//! * **Takeover resumes.** A replica that dies mid-run stops renewing; once its claim
//!   expired, the next alert for the incident on another replica claims the run and
//!   resumes it from the shared state ([`ResponseCoordination::shared_run`]): with the
//!   header the run started with (its event, playbook snapshot and deadline), and every
//!   step recorded there taken into its own record file (`steps_taken_over` in the
//!   timeline), so a step recorded as finished is never executed again. A step recorded as
//!   started and not finished is resumed as the single-process resume after a kill -9
//!   resumes it: called again under the same idempotency key (HTTP `Idempotency-Key`, the
//!   ticket fingerprint, the notification's alert id), so the receiving system recognises
//!   it where it deduplicates; an approval waits on for a decision, under its recorded
//!   deadline. Only a step the dead replica started and had not yet recorded (the kill
//!   fell between the call and the record) can reach the outside world twice, under the
//!   same key. A replica restarting after a kill resumes its own copy only if it can claim
//!   the run again, and first takes in what another replica recorded meanwhile.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vowguard_core::Error;

use crate::model::{Incident, IncidentState, Run, StateChange};

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

    /// Run `run_id` as the replicas that drove it recorded it (header and steps), if any
    /// did: what a replica taking the run over resumes from.
    async fn shared_run(&self, run_id: &str) -> Result<Option<Run>, Error>;

    /// Records `run` (its header and its steps so far) in the shared state while this
    /// replica holds the run's claim, merged with what is there ([`merge_shared_run`]:
    /// a step recorded as finished stays finished). The first write after a claim takes
    /// the run over; every later one is a compare-and-set on the revision this replica
    /// wrote last. `Ok(false)`: this replica no longer holds the run (another replica
    /// took it over, or wrote it since): drive it no further here.
    async fn share_run(&self, run: &Run) -> Result<bool, Error>;
}

/// `run` merged into `shared` (what the shared state holds): the header is `run`'s, every
/// step of either is kept, and a step finished in one stays finished (a later record of
/// it as started, from a stale copy, does not undo that).
pub fn merge_shared_run(shared: Option<Run>, run: &Run) -> Run {
    let mut merged = run.clone();
    let Some(shared) = shared else {
        return merged;
    };
    for (id, step) in shared.steps {
        match merged.steps.get(&id) {
            Some(ours) if ours.status.is_terminal() || !step.status.is_terminal() => {}
            _ => {
                merged.steps.insert(id, step);
            }
        }
    }
    merged
}

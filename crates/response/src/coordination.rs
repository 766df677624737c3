//! What the replicas of a cluster decide together so automated response happens once
//! (cluster mode; the runtime implements [`ResponseCoordination`] on JetStream KV).
//!
//! * **Incident ids.** The replica that opens the first incident for a fingerprint
//!   proposes its id; every other replica gets the same id for that fingerprint until the
//!   incident is resolved ([`ResponseCoordination::incident_id`]). Each replica's record
//!   file holds its own copy of the incident, with the alerts that replica handled.
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
use vowguard_core::Error;

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

    /// Claims run `run_id` for this replica.
    async fn claim_run(&self, run_id: &str) -> Result<RunClaim, Error>;

    /// Renews this replica's claim on `run_id`; false when it was lost (taken over).
    async fn renew_run(&self, run_id: &str) -> Result<bool, Error>;

    /// Run `run_id` ended here: no replica starts it again.
    async fn run_finished(&self, run_id: &str) -> Result<(), Error>;

    /// How often a live run's claim is renewed.
    fn renew_every(&self) -> std::time::Duration;
}

//! Inhibition shared by several replicas (cluster mode).
//!
//! The [`Inhibitor`](crate::Inhibitor) keeps its in-memory index on every backend; on the
//! local backend that is all there is. In cluster mode a [`SharedInhibition`] store (the
//! runtime's JetStream KV bucket) holds the newest source of each [`InhibitionKey`]:
//!
//! 1. before an event is routed, [`Router::load_shared_inhibition`] looks up the keys the
//!    event's alert could be muted by (one lookup per rule whose target matchers it
//!    satisfies, never a scan) and teaches the local index what other replicas stored;
//! 2. the router routes as always (the check is the local index lookup);
//! 3. after routing, [`Router::store_shared_inhibition`] stores the sources this replica
//!    remembered, before any notification of the event is sent.
//!
//! Two replicas routing the source and the target alert at the same instant can still both
//! notify: the store orders what it has seen, not what is in flight.

use std::sync::Arc;

use async_trait::async_trait;
use vowguard_core::{Error, Event};

use crate::{InhibitionKey, InhibitionSource, Router};

/// A store of inhibition sources shared by the replicas: the newest source per key.
#[async_trait]
pub trait SharedInhibition: Send + Sync + std::fmt::Debug {
    /// The stored sources of `keys` (absent keys are left out).
    async fn fetch(&self, keys: &[InhibitionKey]) -> Result<Vec<InhibitionSource>, Error>;

    /// Stores `sources`, each under its key (replacing what was stored there).
    async fn store(&self, sources: &[(InhibitionKey, InhibitionSource)]) -> Result<(), Error>;
}

impl Router {
    /// Starts collecting the sources this router remembers for
    /// [`store_shared_inhibition`](Self::store_shared_inhibition). Call once before routing
    /// in cluster mode.
    pub fn share_inhibition(&self) {
        self.inhibitor().share_observed();
    }

    /// Before routing `event`: fetches from `shared` the sources that could mute its alert
    /// and remembers them locally. Returns how many were new here.
    pub async fn load_shared_inhibition(
        &self,
        event: &Arc<Event>,
        shared: &dyn SharedInhibition,
    ) -> Result<usize, Error> {
        let keys = self.inhibition_keys(event);
        if keys.is_empty() {
            return Ok(0);
        }
        let found = shared.fetch(&keys).await?;
        Ok(found
            .into_iter()
            .filter(|source| self.inhibitor().learn(source.clone()))
            .count())
    }

    /// After routing: stores in `shared` the sources remembered since the last call. On
    /// failure the sources are kept locally only (and returned to no one): the error says
    /// so, and the caller decides whether the event is retried.
    pub async fn store_shared_inhibition(
        &self,
        shared: &dyn SharedInhibition,
    ) -> Result<usize, Error> {
        let observed = self.inhibitor().take_observed();
        if observed.is_empty() {
            return Ok(0);
        }
        shared.store(&observed).await?;
        Ok(observed.len())
    }

    /// The keys of the sources that could mute the alert `event` raises (see
    /// [`Inhibitor::keys_for`](crate::Inhibitor::keys_for)); none when it raises no alert
    /// or no rule is configured. Costs one classification of the event.
    pub fn inhibition_keys(&self, event: &Arc<Event>) -> Vec<InhibitionKey> {
        if !self.inhibitor().has_rules() {
            return Vec::new();
        }
        self.inhibition_keys_of(event)
    }
}

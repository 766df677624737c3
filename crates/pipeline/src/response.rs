//! The hook automated response plugs into: every routed alert, with its stable id, handed
//! over without blocking routing.

use std::fmt::Debug;
use std::sync::Arc;

use vowguard_core::{AlertGrouping, AlertRouting, Error, Event, RoutedAlert, RoutingDryRun};

/// Receives each routed alert (automated response: incidents and playbooks). Called on the
/// alert path: it must return at once (queue the work).
pub trait ResponseHook: Send + Sync + Debug {
    /// Takes `alert`.
    fn on_alert(&self, alert: &RoutedAlert);
}

/// A router that also hands every alert it routes to a [`ResponseHook`]; everything else is
/// the inner router's.
#[derive(Debug)]
pub struct RoutingWithResponse {
    inner: Arc<dyn AlertRouting>,
    hook: Arc<dyn ResponseHook>,
}

impl RoutingWithResponse {
    /// Wraps `inner` so `hook` sees each routed alert.
    pub fn new(inner: Arc<dyn AlertRouting>, hook: Arc<dyn ResponseHook>) -> Self {
        Self { inner, hook }
    }
}

impl AlertRouting for RoutingWithResponse {
    fn route(&self, event: &Arc<Event>) -> Vec<RoutedAlert> {
        self.inner.route(event)
    }

    fn dry_run(&self, event: &Arc<Event>) -> Option<RoutingDryRun> {
        self.inner.dry_run(event)
    }

    fn export_state(&self) -> Option<serde_json::Value> {
        self.inner.export_state()
    }

    fn import_state(&self, state: serde_json::Value) -> Result<(), Error> {
        self.inner.import_state(state)
    }

    fn grouping(&self, alert: &RoutedAlert) -> Option<AlertGrouping> {
        self.inner.grouping(alert)
    }

    fn on_routed(&self, alert: &RoutedAlert) {
        self.inner.on_routed(alert);
        self.hook.on_alert(alert);
    }
}

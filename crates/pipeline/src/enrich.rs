//! The enrichment stage: every enricher concurrently, each within its own timeout and the
//! overall budget; failures are recorded on the event, never block it.

use std::time::Duration;

use futures::future::join_all;
use vowguard_core::{Event, NotEnriched};

use crate::pipeline::EnricherSpec;

/// Runs every enricher on `event` and merges what they return.
pub(crate) async fn enrich(
    mut event: Event,
    enrichers: &[EnricherSpec],
    budget: Duration,
) -> Event {
    if enrichers.is_empty() {
        return event;
    }
    let results = join_all(enrichers.iter().map(|spec| {
        let deadline = spec.enricher.timeout().min(budget);
        let event = &event;
        async move {
            let outcome = tokio::time::timeout(deadline, spec.enricher.enrich(event)).await;
            (spec.id.as_str(), deadline, outcome)
        }
    }))
    .await;
    for (id, deadline, outcome) in results {
        match outcome {
            Ok(Ok(enrichment)) => event.enrichment.merge(enrichment),
            Ok(Err(e)) => {
                tracing::debug!(enricher = id, event_id = %event.id, error = %e, "enricher failed");
                event.enrichment.not_enriched.push(NotEnriched {
                    enricher: id.to_owned(),
                    reason: format!("{}: {}", e.kind(), e.message()),
                });
            }
            Err(_) => {
                tracing::debug!(enricher = id, event_id = %event.id, "enricher timed out");
                event.enrichment.not_enriched.push(NotEnriched {
                    enricher: id.to_owned(),
                    reason: format!("timeout after {} ms", deadline.as_millis()),
                });
            }
        }
    }
    event
}

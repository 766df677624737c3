//! The pipeline's audit hooks: which facts are appended to the audit trail, and when.
//!
//! - events accepted: after the intake journal's group commit, before the source is told
//!   the events are durable (so no acknowledged event is missing from the audit log);
//! - delivery outcomes: one record per answered sink request (delivered events), and one per
//!   batch of dead letters once they are written;
//! - alerts routed: one record per routed alert, with its route, reasons and channels;
//! - notifications: one record per channel answer.
//!
//! Every hook is one call into [`PipelineAudit`]; a pipeline started without an audit trail
//! builds no record at all.

use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};
use vowguard_core::{Alert, AuditRecord, AuditTrail, DeliveryOutcome, Error, Event, EventDigest};

/// The audit trail the pipeline appends to, and how it names its intake.
#[derive(Debug, Clone)]
pub struct PipelineAudit {
    /// Where records go.
    pub trail: Arc<dyn AuditTrail>,
    /// The intake named in `events_accepted` records (`http`, `stdin`, `replay`, ...).
    pub source: String,
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    vowguard_core::hex::encode(&Sha256::digest(bytes))
}

/// Milliseconds from `since` to now (0 when `since` is in the future).
fn millis_since(since: chrono::DateTime<Utc>) -> u64 {
    u64::try_from((Utc::now() - since).num_milliseconds()).unwrap_or(0)
}

impl PipelineAudit {
    /// The digest of an event as journaled.
    pub(crate) fn digest(event: &Event, journaled: &[u8]) -> EventDigest {
        EventDigest {
            id: event.id.clone(),
            sha256: sha256_hex(journaled),
            timestamp: event.timestamp,
        }
    }

    /// Records events accepted durably; returns once the record is durable.
    pub(crate) async fn accepted(&self, events: Vec<EventDigest>) -> Result<u64, Error> {
        self.trail
            .append(vec![AuditRecord::EventsAccepted {
                at: Utc::now(),
                source: self.source.clone(),
                events,
            }])
            .await
    }

    /// A delivered outcome (latency from the event's own timestamp).
    pub(crate) fn delivered(event: &Event) -> DeliveryOutcome {
        DeliveryOutcome {
            id: event.id.clone(),
            result: "delivered".into(),
            reason: None,
            latency_ms: millis_since(event.timestamp),
        }
    }

    /// A dead-lettered outcome.
    pub(crate) fn dead_lettered(event: &Event, reason: &str) -> DeliveryOutcome {
        DeliveryOutcome {
            id: event.id.clone(),
            result: "dead_lettered".into(),
            reason: Some(reason.to_owned()),
            latency_ms: millis_since(event.timestamp),
        }
    }

    /// Records the outcomes a sink answered. A failure is logged: the delivery happened and
    /// cannot be undone; the audit log names the gap by its absence.
    pub(crate) async fn outcomes(&self, sink: &str, events: Vec<DeliveryOutcome>) {
        if events.is_empty() {
            return;
        }
        let n = events.len();
        let record = AuditRecord::Delivered {
            at: Utc::now(),
            sink: sink.to_owned(),
            events,
        };
        if let Err(e) = self.trail.append(vec![record]).await {
            tracing::error!(sink, events = n, error = %e, "audit: delivery outcomes not recorded");
        }
    }

    /// A routing decision.
    pub(crate) fn routed(
        alert: &Alert,
        channels: &[String],
        suppressed: Option<String>,
    ) -> AuditRecord {
        AuditRecord::AlertRouted {
            at: Utc::now(),
            alert_id: alert.id.clone(),
            event_id: alert.event.id.clone(),
            priority: alert.priority,
            route: alert.route.clone(),
            reasons: alert.reasons.clone(),
            channels: channels.to_vec(),
            suppressed,
            wedding_id: alert.event.wedding_id.clone(),
        }
    }

    /// Appends records, logging a failure (used after the fact they describe).
    pub(crate) async fn record(&self, records: Vec<AuditRecord>) {
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.trail.append(records).await {
            tracing::error!(error = %e, "audit: records not written");
        }
    }

    /// One notification result.
    pub(crate) fn notification(
        alert: &Alert,
        channel: &str,
        sent: bool,
        detail: Option<String>,
    ) -> AuditRecord {
        AuditRecord::Notification {
            at: Utc::now(),
            alert_id: alert.id.clone(),
            channel: channel.to_owned(),
            result: if sent { "sent" } else { "failed" }.into(),
            detail,
            latency_ms: millis_since(alert.created_at),
        }
    }

    /// A notification not sent on its own: merged into `into`, a notification of the same
    /// alert group still waiting for `channel`.
    pub(crate) fn coalesced(alert: &Alert, channel: &str, into: &str) -> AuditRecord {
        AuditRecord::Notification {
            at: Utc::now(),
            alert_id: alert.id.clone(),
            channel: channel.to_owned(),
            result: "coalesced".into(),
            detail: Some(format!(
                "merged into notification {into} of the same alert group, still waiting for the channel"
            )),
            latency_ms: millis_since(alert.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use vowguard_core::{BatchLimits, EncodedEvent, EventOutcome, RetryPolicy, Severity, Sink};

    #[test]
    fn sha256_hex_is_the_lowercase_hex_digest() {
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    use super::*;
    use crate::{Pipeline, PipelineSpec, SinkSpec};

    /// Keeps appended records in memory; can be made to fail.
    #[derive(Debug, Default)]
    struct MemoryTrail {
        records: Mutex<Vec<AuditRecord>>,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl AuditTrail for MemoryTrail {
        async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::internal("audit disk full"));
            }
            let mut all = self.records.lock().unwrap();
            let first = all.len() as u64;
            all.extend(records);
            Ok(first)
        }
    }

    /// Delivers events whose id does not start with `bad`; rejects the others for good.
    #[derive(Debug)]
    struct PickySink;

    #[async_trait]
    impl Sink for PickySink {
        fn kind(&self) -> &'static str {
            "picky"
        }
        fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
            Ok(event.id.clone().into_bytes())
        }
        async fn healthcheck(&self) -> Result<(), Error> {
            Ok(())
        }
        async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
            batch
                .iter()
                .map(|e| {
                    if e.event_id.starts_with("bad") {
                        EventOutcome::Rejected(Error::rejected("HTTP 400: bad event"))
                    } else {
                        EventOutcome::Delivered
                    }
                })
                .collect()
        }
    }

    fn event(id: &str) -> Event {
        let mut e = Event::new(
            vowguard_core::Category::Authentication,
            "login",
            Severity::High,
        );
        e.id = id.to_owned();
        e
    }

    fn spec(dir: &std::path::Path) -> PipelineSpec {
        let mut sink = SinkSpec::new("siem", Arc::new(PickySink));
        sink.batch = BatchLimits::new(10, 1_000_000, std::time::Duration::from_millis(5));
        sink.retry = RetryPolicy::default().with_max_attempts(1);
        PipelineSpec {
            data_dir: dir.to_owned(),
            sinks: vec![sink],
            ..PipelineSpec::default()
        }
    }

    #[tokio::test]
    async fn accepted_delivered_and_dead_lettered_events_are_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let trail = Arc::new(MemoryTrail::default());
        let audit = PipelineAudit {
            trail: trail.clone(),
            source: "http".into(),
        };
        let pipeline = Pipeline::start_with_audit(spec(tmp.path()), Some(audit))
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for id in ["ok-1", "bad-1", "ok-2"] {
            let submitted = pipeline.submit(event(id)).await.unwrap();
            submitted.durable.await.unwrap();
            // Durable means the accepted record is already in the trail.
            let records = trail.records.lock().unwrap().clone();
            assert!(records.iter().any(|r| matches!(r,
                AuditRecord::EventsAccepted { source, events, .. }
                    if source == "http" && events.iter().any(|e| e.id == id && e.sha256.len() == 64))));
            deliveries.push(submitted.delivery);
        }
        for d in deliveries {
            tokio::time::timeout(Duration::from_secs(30), d)
                .await
                .unwrap();
        }
        pipeline.shutdown().await;
        let records = trail.records.lock().unwrap().clone();
        let outcomes: Vec<(String, String)> = records
            .iter()
            .filter_map(|r| match r {
                AuditRecord::Delivered { sink, events, .. } if sink == "siem" => Some(events),
                _ => None,
            })
            .flatten()
            .map(|o| (o.id.clone(), o.result.clone()))
            .collect();
        for (id, result) in [
            ("ok-1", "delivered"),
            ("ok-2", "delivered"),
            ("bad-1", "dead_lettered"),
        ] {
            assert!(
                outcomes.contains(&(id.to_owned(), result.to_owned())),
                "{id} {result} missing from {outcomes:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_audit_failure_means_the_event_is_not_acknowledged() {
        let tmp = tempfile::tempdir().unwrap();
        let trail = Arc::new(MemoryTrail::default());
        trail.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let audit = PipelineAudit {
            trail: trail.clone(),
            source: "stdin".into(),
        };
        let pipeline = Pipeline::start_with_audit(spec(tmp.path()), Some(audit))
            .await
            .unwrap();
        let submitted = pipeline.submit(event("ok-1")).await.unwrap();
        let e = submitted.durable.await.unwrap_err();
        assert!(e.message().contains("audit disk full"), "{e}");
        pipeline.shutdown().await;
    }
}

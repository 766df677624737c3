//! Synthetic audit records (deterministic, seeded) for benchmarks and tests: a mix of
//! accepted batches, deliveries to three SIEMs (some dead letters), alerts with
//! notifications, enrichment, replays, admin actions and an incident.

use chrono::{DateTime, Duration, Utc};
use serde_json::Map;
use vowguard_core::{AuditRecord, DeliveryOutcome, EventDigest, Priority};

/// A deterministic generator of audit records starting at `start`, one record per
/// `step_ms` milliseconds.
#[derive(Debug, Clone)]
pub struct Synthetic {
    state: u64,
    n: u64,
    start: DateTime<Utc>,
    step_ms: i64,
    /// The channel of the last alert (its notification answers on it).
    last_channel: usize,
}

const SINKS: [&str; 3] = ["splunk", "elastic", "qradar"];
const CHANNELS: [&str; 3] = ["slack", "pagerduty", "sms"];

impl Synthetic {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64, start: DateTime<Utc>, step_ms: i64) -> Self {
        Self {
            state: seed | 1,
            n: 0,
            start,
            step_ms,
            last_channel: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The next record.
    pub fn record(&mut self) -> AuditRecord {
        let n = self.n;
        self.n += 1;
        let at = self.start + Duration::milliseconds(self.step_ms * n as i64);
        let r = self.next_u64();
        let batch = 8;
        match n % 20 {
            0..=7 => AuditRecord::EventsAccepted {
                at,
                source: if r.is_multiple_of(4) { "stdin" } else { "http" }.into(),
                events: (0..batch)
                    .map(|i| EventDigest {
                        id: format!("e{n}-{i}"),
                        sha256: format!("{:064x}", u128::from(r) * (i + 1)),
                        timestamp: at,
                    })
                    .collect(),
            },
            8..=15 => AuditRecord::Delivered {
                at,
                sink: SINKS[(n % 3) as usize].into(),
                events: (0..batch)
                    .map(|i| {
                        let x = self.next_u64();
                        let dead = x.is_multiple_of(500);
                        DeliveryOutcome {
                            id: format!("e{n}-{i}"),
                            result: if dead { "dead_lettered" } else { "delivered" }.into(),
                            reason: dead.then(|| "HTTP 400 from the sink".to_owned()),
                            // mostly fast, a tail beyond 5 s
                            latency_ms: if x.is_multiple_of(100) {
                                5_000 + x % 4_000
                            } else {
                                20 + x % 900
                            },
                        }
                    })
                    .collect(),
            },
            16 => {
                self.last_channel = (r % 3) as usize;
                AuditRecord::AlertRouted {
                    at,
                    alert_id: format!("a{n}"),
                    event_id: format!("e{n}"),
                    priority: Priority::ALL[(r % 5) as usize],
                    route: "default".into(),
                    reasons: vec![format!("severity {}", r % 10), "wedding day".into()],
                    channels: vec![CHANNELS[(r % 3) as usize].into()],
                    suppressed: None,
                    wedding_id: Some(format!("w{}", r % 50)),
                }
            }
            17 => AuditRecord::Notification {
                at,
                alert_id: format!("a{}", n - 1),
                channel: CHANNELS[self.last_channel].into(),
                result: if r.is_multiple_of(50) {
                    "failed"
                } else {
                    "sent"
                }
                .into(),
                detail: None,
                latency_ms: 200 + r % 40_000,
            },
            18 => AuditRecord::Enriched {
                at,
                events: (0..batch)
                    .map(|i| (format!("e{n}-{i}"), r % 12_000))
                    .collect(),
                failures: if r.is_multiple_of(30) {
                    vec![("virustotal".into(), "breaker open".into())]
                } else {
                    Vec::new()
                },
            },
            _ => match r % 40 {
                0 => AuditRecord::Replayed {
                    at,
                    sink: "splunk".into(),
                    event_ids: vec![format!("e{n}")],
                    actor: "cli:ops".into(),
                },
                1 => AuditRecord::Incident {
                    at,
                    incident_id: format!("i{}", n / 2000),
                    action: "opened".into(),
                    actor: "system".into(),
                    fields: Map::new(),
                },
                _ => AuditRecord::Admin {
                    at,
                    actor: "token:ops".into(),
                    action: "dlq.list".into(),
                    target: "splunk".into(),
                    result: "ok".into(),
                },
            },
        }
    }
}

impl Iterator for Synthetic {
    type Item = AuditRecord;
    fn next(&mut self) -> Option<AuditRecord> {
        Some(self.record())
    }
}

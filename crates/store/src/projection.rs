//! How each audit record becomes rows: buffered per batch, counters and histograms summed
//! in memory first, rows written with multi-row inserts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use vowguard_core::{AuditRecord, Error};

use crate::breach::Breach;
use crate::latency::{Objective, bucket_of};
use crate::store::Store;

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    I(i64),
    S(String),
    N(Option<String>),
}

pub(crate) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

const HOUR_MS: i64 = 3_600_000;

fn hour_of(at: DateTime<Utc>) -> i64 {
    ms(at).div_euclid(HOUR_MS) * HOUR_MS
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    total: i64,
    ok: i64,
    failed: i64,
    within: i64,
    sum: i64,
    max: i64,
}

/// Rows for one table, inserted `ROWS_PER_INSERT` at a time.
#[derive(Debug)]
struct Rows {
    head: &'static str,
    columns: usize,
    values: Vec<Val>,
}

const ROWS_PER_INSERT: usize = 200;

impl Rows {
    fn new(head: &'static str, columns: usize) -> Self {
        Self {
            head,
            columns,
            values: Vec::new(),
        }
    }

    fn push(&mut self, row: impl IntoIterator<Item = Val>) {
        self.values.extend(row);
    }

    async fn write(self, store: &Store, tx: &mut Transaction<'static, Any>) -> Result<(), Error> {
        // SQLite takes `$N` as a *named* parameter and finds each name by a linear scan,
        // so binding N of them costs O(N²) (18 % of the whole process's CPU at 200 rows of
        // 10 columns); its anonymous `?` binds by position. PostgreSQL needs `$N`.
        let positional = store.backend() == crate::Backend::Sqlite;
        for chunk in self.values.chunks(self.columns * ROWS_PER_INSERT) {
            let rows = chunk.len() / self.columns;
            let mut sql = String::with_capacity(self.head.len() + rows * self.columns * 5);
            sql.push_str(self.head);
            sql.push_str(" VALUES ");
            let mut n = 0;
            for r in 0..rows {
                if r > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..self.columns {
                    if c > 0 {
                        sql.push(',');
                    }
                    n += 1;
                    if positional {
                        sql.push('?');
                    } else {
                        sql.push('$');
                        sql.push_str(&n.to_string());
                    }
                }
                sql.push(')');
            }
            let mut query = sqlx::query(&sql);
            for v in chunk {
                query = match v {
                    Val::I(i) => query.bind(*i),
                    Val::S(s) => query.bind(s.clone()),
                    Val::N(s) => query.bind(s.clone()),
                };
            }
            query
                .execute(&mut **tx)
                .await
                .map_err(|e| store.err(&format!("write rows ({})", self.head), &e))?;
        }
        Ok(())
    }
}

/// Everything a run of consecutive audit records adds.
#[derive(Debug)]
pub(crate) struct Batch {
    flows: HashMap<(&'static str, String, i64), Flow>,
    buckets: HashMap<(&'static str, String, i64, i64), i64>,
    dead_letters: Rows,
    replays: Rows,
    alerts: Rows,
    notifications: Rows,
    enrichment_failures: Rows,
    breach_history: Rows,
    admin: Rows,
    incidents: Rows,
    config_loads: Rows,
    /// Breach changes in order: (at, breach id, fields).
    breach_changes: Vec<(DateTime<Utc>, String, Map<String, Value>)>,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            flows: HashMap::new(),
            buckets: HashMap::new(),
            dead_letters: Rows::new(
                "INSERT INTO dead_letters (audit_index, seq, at_ms, sink, event_id, reason)",
                6,
            ),
            replays: Rows::new(
                "INSERT INTO replays (audit_index, at_ms, sink, actor, event_count, event_ids)",
                6,
            ),
            alerts: Rows::new(
                "INSERT INTO alerts (audit_index, at_ms, alert_id, event_id, priority, route, reasons, channels, suppressed, wedding_id)",
                10,
            ),
            notifications: Rows::new(
                "INSERT INTO notifications (audit_index, at_ms, alert_id, channel, result, detail, latency_ms)",
                7,
            ),
            enrichment_failures: Rows::new(
                "INSERT INTO enrichment_failures (audit_index, seq, at_ms, enricher, reason)",
                5,
            ),
            breach_history: Rows::new(
                "INSERT INTO breach_history (audit_index, at_ms, breach_id, action, actor, fields)",
                6,
            ),
            admin: Rows::new(
                "INSERT INTO admin_actions (audit_index, at_ms, actor, action, target, result)",
                6,
            ),
            incidents: Rows::new(
                "INSERT INTO incident_events (audit_index, at_ms, incident_id, action, actor, fields)",
                6,
            ),
            config_loads: Rows::new(
                "INSERT INTO config_loads (audit_index, at_ms, digest, path)",
                4,
            ),
            breach_changes: Vec::new(),
        }
    }
}

/// The reason of an outcome that is not `delivered` (an unknown result is named too).
fn dead_letter_reason(outcome: &vowguard_core::DeliveryOutcome) -> Option<String> {
    match (outcome.result.as_str(), &outcome.reason) {
        ("dead_lettered", reason) => reason.clone(),
        (other, Some(reason)) => Some(format!("{other}: {reason}")),
        (other, None) => Some(other.to_owned()),
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl Batch {
    fn latency(&mut self, kind: &'static str, component: &str, hour: i64, latency_ms: u64) {
        *self
            .buckets
            .entry((kind, component.to_owned(), hour, bucket_of(latency_ms)))
            .or_default() += 1;
    }

    fn flow(&mut self, kind: &'static str, component: &str, hour: i64) -> &mut Flow {
        self.flows
            .entry((kind, component.to_owned(), hour))
            .or_default()
    }

    /// Adds the rows of the record at `index`.
    pub(crate) fn add(&mut self, index: u64, record: &AuditRecord) {
        let idx = clamp(index);
        let at = record.at();
        let at_ms = ms(at);
        let hour = hour_of(at);
        match record {
            AuditRecord::EventsAccepted { source, events, .. } => {
                let flow = self.flow("accepted", source, hour);
                flow.total += events.len() as i64;
                flow.ok += events.len() as i64;
            }
            AuditRecord::Delivered { sink, events, .. } => {
                for (seq, outcome) in events.iter().enumerate() {
                    let latency = clamp(outcome.latency_ms);
                    let delivered = outcome.result == "delivered";
                    {
                        let flow = self.flow("delivery", sink, hour);
                        flow.total += 1;
                        if delivered {
                            flow.ok += 1;
                            flow.sum = flow.sum.saturating_add(latency);
                            flow.max = flow.max.max(latency);
                            if outcome.latency_ms <= Objective::DELIVERY.within_ms {
                                flow.within += 1;
                            }
                        } else {
                            flow.failed += 1;
                        }
                    }
                    if delivered {
                        self.latency("delivery", sink, hour, outcome.latency_ms);
                    } else {
                        self.dead_letters.push([
                            Val::I(idx),
                            Val::I(seq as i64),
                            Val::I(at_ms),
                            Val::S(sink.clone()),
                            Val::S(outcome.id.clone()),
                            Val::N(dead_letter_reason(outcome)),
                        ]);
                    }
                }
            }
            AuditRecord::Replayed {
                sink,
                event_ids,
                actor,
                ..
            } => self.replays.push([
                Val::I(idx),
                Val::I(at_ms),
                Val::S(sink.clone()),
                Val::S(actor.clone()),
                Val::I(event_ids.len() as i64),
                Val::S(json_list(event_ids)),
            ]),
            AuditRecord::AlertRouted {
                alert_id,
                event_id,
                priority,
                route,
                reasons,
                channels,
                suppressed,
                wedding_id,
                ..
            } => self.alerts.push([
                Val::I(idx),
                Val::I(at_ms),
                Val::S(alert_id.clone()),
                Val::S(event_id.clone()),
                Val::S(priority.as_str().to_owned()),
                Val::S(route.clone()),
                Val::S(json_list(reasons)),
                Val::S(json_list(channels)),
                Val::N(suppressed.clone()),
                Val::N(wedding_id.clone()),
            ]),
            AuditRecord::Notification {
                alert_id,
                channel,
                result,
                detail,
                latency_ms,
                ..
            } => {
                let latency = clamp(*latency_ms);
                let sent = result == "sent";
                // A coalesced notification is neither sent nor failed: the notification
                // it was merged into answers for it.
                if result != "coalesced" {
                    let flow = self.flow("notification", channel, hour);
                    flow.total += 1;
                    if sent {
                        flow.ok += 1;
                        flow.sum = flow.sum.saturating_add(latency);
                        flow.max = flow.max.max(latency);
                        if *latency_ms <= Objective::NOTIFICATION.within_ms {
                            flow.within += 1;
                        }
                    } else {
                        flow.failed += 1;
                    }
                }
                if sent {
                    self.latency("notification", channel, hour, *latency_ms);
                }
                self.notifications.push([
                    Val::I(idx),
                    Val::I(at_ms),
                    Val::S(alert_id.clone()),
                    Val::S(channel.clone()),
                    Val::S(result.clone()),
                    Val::N(detail.clone()),
                    Val::I(latency),
                ]);
            }
            AuditRecord::Enriched {
                events, failures, ..
            } => {
                for (_, spent) in events {
                    let latency = clamp(*spent);
                    let flow = self.flow("enrichment", "enrichment", hour);
                    flow.total += 1;
                    flow.ok += 1;
                    flow.sum = flow.sum.saturating_add(latency);
                    flow.max = flow.max.max(latency);
                    if *spent <= Objective::ENRICHMENT.within_ms {
                        flow.within += 1;
                    }
                    self.latency("enrichment", "enrichment", hour, *spent);
                }
                self.flow("enrichment", "enrichment", hour).failed += failures.len() as i64;
                for (seq, (enricher, reason)) in failures.iter().enumerate() {
                    self.enrichment_failures.push([
                        Val::I(idx),
                        Val::I(seq as i64),
                        Val::I(at_ms),
                        Val::S(enricher.clone()),
                        Val::S(reason.clone()),
                    ]);
                }
            }
            AuditRecord::Breach {
                breach_id,
                action,
                actor,
                fields,
                ..
            } => {
                self.breach_history.push([
                    Val::I(idx),
                    Val::I(at_ms),
                    Val::S(breach_id.clone()),
                    Val::S(action.clone()),
                    Val::S(actor.clone()),
                    Val::S(Value::Object(fields.clone()).to_string()),
                ]);
                self.breach_changes
                    .push((at, breach_id.clone(), fields.clone()));
            }
            AuditRecord::Incident {
                incident_id,
                action,
                actor,
                fields,
                ..
            } => self.incidents.push([
                Val::I(idx),
                Val::I(at_ms),
                Val::S(incident_id.clone()),
                Val::S(action.clone()),
                Val::S(actor.clone()),
                Val::S(Value::Object(fields.clone()).to_string()),
            ]),
            AuditRecord::Admin {
                actor,
                action,
                target,
                result,
                ..
            } => self.admin.push([
                Val::I(idx),
                Val::I(at_ms),
                Val::S(actor.clone()),
                Val::S(action.clone()),
                Val::S(target.clone()),
                Val::S(result.clone()),
            ]),
            AuditRecord::ConfigLoaded { digest, path, .. } => self.config_loads.push([
                Val::I(idx),
                Val::I(at_ms),
                Val::S(digest.clone()),
                Val::S(path.clone()),
            ]),
            // A record kind this version does not project: it stays in the audit log.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Writes everything inside `tx`.
    pub(crate) async fn write(
        self,
        store: &Store,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<(), Error> {
        for ((kind, component, hour), f) in self.flows {
            sqlx::query(
                "INSERT INTO flow_counts (kind, component, hour_ms, total, ok, failed, within_objective, latency_sum_ms, latency_max_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (kind, component, hour_ms) DO UPDATE SET
                   total = flow_counts.total + excluded.total,
                   ok = flow_counts.ok + excluded.ok,
                   failed = flow_counts.failed + excluded.failed,
                   within_objective = flow_counts.within_objective + excluded.within_objective,
                   latency_sum_ms = flow_counts.latency_sum_ms + excluded.latency_sum_ms,
                   latency_max_ms = CASE WHEN excluded.latency_max_ms > flow_counts.latency_max_ms
                                    THEN excluded.latency_max_ms ELSE flow_counts.latency_max_ms END",
            )
            .bind(kind)
            .bind(component)
            .bind(hour)
            .bind(f.total)
            .bind(f.ok)
            .bind(f.failed)
            .bind(f.within)
            .bind(f.sum)
            .bind(f.max)
            .execute(&mut **tx)
            .await
            .map_err(|e| store.err("update flow counts", &e))?;
        }
        for ((kind, component, hour, bucket), n) in self.buckets {
            sqlx::query(
                "INSERT INTO latency_buckets (kind, component, hour_ms, bucket, n)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kind, component, hour_ms, bucket) DO UPDATE SET
                   n = latency_buckets.n + excluded.n",
            )
            .bind(kind)
            .bind(component)
            .bind(hour)
            .bind(bucket)
            .bind(n)
            .execute(&mut **tx)
            .await
            .map_err(|e| store.err("update latency histograms", &e))?;
        }
        for rows in [
            self.dead_letters,
            self.replays,
            self.alerts,
            self.notifications,
            self.enrichment_failures,
            self.breach_history,
            self.admin,
            self.incidents,
            self.config_loads,
        ] {
            rows.write(store, tx).await?;
        }
        for (at, breach_id, fields) in self.breach_changes {
            apply_breach_change(store, tx, at, &breach_id, fields).await?;
        }
        Ok(())
    }
}

/// Merges a breach change into the breach's current state.
async fn apply_breach_change(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    at: DateTime<Utc>,
    breach_id: &str,
    fields: Map<String, Value>,
) -> Result<(), Error> {
    let row: Option<AnyRow> = sqlx::query("SELECT state FROM breaches WHERE breach_id = $1")
        .bind(breach_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| store.err("read a breach", &e))?;
    let exists = row.is_some();
    let current = match row {
        Some(row) => {
            let text: String = row.try_get(0).map_err(|e| store.err("read a breach", &e))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => Some(map),
                _ => {
                    return Err(Error::internal(format!(
                        "report store {}: breach {breach_id}: the stored state is not a JSON object; rebuild the store from the audit log (`vowguard audit rebuild-store`)",
                        store.location_display()
                    )));
                }
            }
        }
        None => None,
    };
    let (state, breach) = merge_breach_change(current, at, breach_id, fields)?;
    let text = Value::Object(state).to_string();
    let sql = if exists {
        "UPDATE breaches SET state = $2, detected_at_ms = $3, confirmed_at_ms = $4, deadline_ms = $5, status = $6, updated_at_ms = $7 WHERE breach_id = $1"
    } else {
        "INSERT INTO breaches (breach_id, state, detected_at_ms, confirmed_at_ms, deadline_ms, status, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
    sqlx::query(sql)
        .bind(breach_id)
        .bind(text)
        .bind(ms(breach.detected_at))
        .bind(breach.confirmed_at.map(ms))
        .bind(breach.deadline.map(ms))
        .bind(breach.status.as_str())
        .bind(ms(at))
        .execute(&mut **tx)
        .await
        .map_err(|e| store.err("write a breach", &e))?;
    Ok(())
}

/// A breach's state after a change: the change's fields merged over the current state
/// (`None` for a new breach), with its id, `updated_at` and (when new) `detected_at` set;
/// an error when the result is not a valid breach. Every [`BreachStorage`](crate::breach::BreachStorage)
/// in this crate merges through it.
pub(crate) fn merge_breach_change(
    current: Option<Map<String, Value>>,
    at: DateTime<Utc>,
    breach_id: &str,
    fields: Map<String, Value>,
) -> Result<(Map<String, Value>, Breach), Error> {
    let mut state = current.unwrap_or_default();
    state.insert("id".into(), Value::from(breach_id));
    for (key, value) in fields {
        state.insert(key, value);
    }
    state.insert("updated_at".into(), Value::from(at.to_rfc3339()));
    state
        .entry("detected_at")
        .or_insert_with(|| Value::from(at.to_rfc3339()));
    let breach: Breach = serde_json::from_value(Value::Object(state.clone())).map_err(|e| {
        Error::invalid_input(format!(
            "breach {breach_id}: the audit log's change does not give a valid breach: {e}"
        ))
    })?;
    Ok((state, breach))
}

#[cfg(test)]
mod tests {
    use vowguard_core::AuditRecord;

    use super::Batch;

    fn notification(alert: &str, result: &str) -> AuditRecord {
        AuditRecord::Notification {
            at: chrono::Utc::now(),
            alert_id: alert.into(),
            channel: "secops".into(),
            result: result.into(),
            detail: None,
            latency_ms: 12,
        }
    }

    /// A notification merged into a waiting one of its group is neither sent nor failed
    /// in the channel's flow (the one it was merged into answers for it), but is listed.
    #[test]
    fn a_coalesced_notification_is_not_a_failure() {
        let mut batch = Batch::default();
        batch.add(0, &notification("a", "sent"));
        batch.add(1, &notification("b", "coalesced"));
        batch.add(2, &notification("c", "failed"));
        let flows: Vec<_> = batch.flows.values().collect();
        assert_eq!(flows.len(), 1);
        assert_eq!(
            (flows[0].total, flows[0].ok, flows[0].failed),
            (2, 1, 1),
            "{flows:?}"
        );
        let notifications = &batch.notifications;
        assert_eq!(notifications.values.len() / notifications.columns, 3);
    }
}

//! The GDPR breach register: each breach's facts and clock (Art. 33: notify the supervisory
//! authority within 72 hours of becoming aware, i.e. of confirmation), its Art. 33(3)
//! content, the Art. 34 decision, and every change with who and when. Each change is an
//! [`AuditRecord::Breach`] appended to the audit log first; the store is its projection.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;
use vowguard_core::{AuditRecord, AuditTrail, Error};
use vowguard_router::{BreachLog, BreachRecord};

use crate::source::AuditSource;
use crate::store::Store;

/// Hours between confirmed awareness and the Art. 33 deadline.
pub const NOTIFICATION_WINDOW: i64 = 72;

/// The Art. 33 deadline for a breach confirmed at `confirmed_at`: exactly 72 hours later,
/// counted in UTC (a daylight-saving change in the display zone does not move it).
pub fn deadline_for(confirmed_at: DateTime<Utc>) -> DateTime<Utc> {
    confirmed_at + Duration::hours(NOTIFICATION_WINDOW)
}

/// Where a breach is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreachStatus {
    /// Opened from a signal; not yet confirmed (the 72-hour clock is not running).
    Suspected,
    /// Confirmed: the controller is aware; the clock runs.
    Confirmed,
    /// The supervisory authority was notified (Art. 33).
    NotifiedAuthority,
    /// The data subjects were told (Art. 34).
    NotifiedSubjects,
    /// Not notifiable (no risk to the subjects), with the documented reason (Art. 33(5)).
    NotNotifiable,
    /// Closed.
    Closed,
}

impl BreachStatus {
    /// The name (`suspected`, `confirmed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspected => "suspected",
            Self::Confirmed => "confirmed",
            Self::NotifiedAuthority => "notified_authority",
            Self::NotifiedSubjects => "notified_subjects",
            Self::NotNotifiable => "not_notifiable",
            Self::Closed => "closed",
        }
    }
}

impl FromStr for BreachStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "suspected" => Self::Suspected,
            "confirmed" => Self::Confirmed,
            "notified_authority" => Self::NotifiedAuthority,
            "notified_subjects" => Self::NotifiedSubjects,
            "not_notifiable" => Self::NotNotifiable,
            "closed" => Self::Closed,
            other => {
                return Err(Error::invalid_input(format!(
                    "unknown breach status {other:?}: expected suspected, confirmed, notified_authority, notified_subjects, not_notifiable or closed"
                )));
            }
        })
    }
}

/// One breach in the register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// The id (UUIDv7).
    pub id: String,
    /// Where it is.
    pub status: BreachStatus,
    /// The first signal (when the event that opened it happened).
    pub detected_at: DateTime<Utc>,
    /// Confirmed awareness: the Art. 33 clock starts here.
    #[serde(default)]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// `confirmed_at` + 72 h.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// The wedding whose couple or guests are concerned.
    #[serde(default)]
    pub wedding_id: Option<String>,
    /// The event that opened it.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Why it was opened (the protocol's reason).
    #[serde(default)]
    pub first_signal: Option<String>,
    /// Art. 33(3)(a): the nature of the breach.
    #[serde(default)]
    pub nature: Option<String>,
    /// Art. 33(3)(a): categories of data subjects (couples, guests, vendors, ...).
    #[serde(default)]
    pub subject_categories: Vec<String>,
    /// Art. 33(3)(a): approximate number of data subjects.
    #[serde(default)]
    pub subjects_approx: Option<u64>,
    /// Art. 33(3)(a): categories of personal data records.
    #[serde(default)]
    pub record_categories: Vec<String>,
    /// Art. 33(3)(a): approximate number of records.
    #[serde(default)]
    pub records_approx: Option<u64>,
    /// Art. 33(3)(b): the DPO or other contact point.
    #[serde(default)]
    pub dpo_contact: Option<String>,
    /// Art. 33(3)(c): likely consequences.
    #[serde(default)]
    pub consequences: Option<String>,
    /// Art. 33(3)(d): measures taken or proposed, including mitigation.
    #[serde(default)]
    pub measures: Option<String>,
    /// Art. 34: is the risk to the subjects high (so they must be told)?
    #[serde(default)]
    pub high_risk: Option<bool>,
    /// Art. 34: the decision in words (who is told and how, or why not: 34(3)(a)-(c)).
    #[serde(default)]
    pub subjects_decision: Option<String>,
    /// Why it is not notifiable (Art. 33(1): unlikely to result in a risk).
    #[serde(default)]
    pub not_notifiable_reason: Option<String>,
    /// Why the authority was (or will be) notified after the deadline (Art. 33(1)).
    #[serde(default)]
    pub late_reason: Option<String>,
    /// When the authority was notified.
    #[serde(default)]
    pub notified_authority_at: Option<DateTime<Utc>>,
    /// When the subjects were told.
    #[serde(default)]
    pub notified_subjects_at: Option<DateTime<Utc>>,
    /// When it was closed.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// The notifiers the opening alert was handed to.
    #[serde(default)]
    pub handed_to: Vec<String>,
    /// What was done about notifying the team when it opened.
    #[serde(default)]
    pub team_notification: Option<String>,
    /// The last change.
    pub updated_at: DateTime<Utc>,
}

/// Where a breach stands against the 72-hour clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "clock", rename_all = "snake_case")]
pub enum Clock {
    /// Not confirmed: the clock has not started.
    NotStarted,
    /// Documented as not notifiable.
    NotNotifiable {
        /// Why.
        reason: String,
    },
    /// Running: this many minutes left.
    Running {
        /// Minutes to the deadline.
        minutes_left: i64,
    },
    /// Past the deadline without notifying the authority.
    Overdue {
        /// Minutes past the deadline.
        minutes_over: i64,
    },
    /// Notified within 72 hours.
    OnTime {
        /// Minutes from confirmation to notification.
        minutes_taken: i64,
    },
    /// Notified after the deadline.
    Late {
        /// Minutes past the deadline.
        minutes_over: i64,
        /// The reasons given for the delay.
        reason: Option<String>,
    },
}

impl Breach {
    /// Where it stands against the clock at `now`.
    pub fn clock(&self, now: DateTime<Utc>) -> Clock {
        if let (Some(reason), None) = (&self.not_notifiable_reason, self.notified_authority_at) {
            return Clock::NotNotifiable {
                reason: reason.clone(),
            };
        }
        let (Some(confirmed), Some(deadline)) = (self.confirmed_at, self.deadline) else {
            return Clock::NotStarted;
        };
        match self.notified_authority_at {
            Some(at) if at <= deadline => Clock::OnTime {
                minutes_taken: (at - confirmed).num_minutes(),
            },
            Some(at) => Clock::Late {
                minutes_over: (at - deadline).num_minutes(),
                reason: self.late_reason.clone(),
            },
            None if now < deadline => Clock::Running {
                minutes_left: (deadline - now).num_minutes(),
            },
            None => Clock::Overdue {
                minutes_over: (now - deadline).num_minutes(),
            },
        }
    }

    /// Time left before the deadline (negative when past), while the authority is not yet
    /// notified and the breach is confirmed; what routes match as `breach_deadline_in`.
    pub fn deadline_in(&self, now: DateTime<Utc>) -> Option<Duration> {
        if self.notified_authority_at.is_some()
            || matches!(
                self.status,
                BreachStatus::NotNotifiable | BreachStatus::Closed
            )
        {
            return None;
        }
        self.deadline.map(|d| d - now)
    }

    /// The Art. 33(3) items still missing (to be provided in phases, Art. 33(4)).
    pub fn missing_content(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.nature.is_none() {
            missing.push("nature of the breach (33(3)(a))");
        }
        if self.subject_categories.is_empty() || self.subjects_approx.is_none() {
            missing.push("categories and approximate number of data subjects (33(3)(a))");
        }
        if self.record_categories.is_empty() || self.records_approx.is_none() {
            missing.push("categories and approximate number of records (33(3)(a))");
        }
        if self.dpo_contact.is_none() {
            missing.push("DPO or contact point (33(3)(b))");
        }
        if self.consequences.is_none() {
            missing.push("likely consequences (33(3)(c))");
        }
        if self.measures.is_none() {
            missing.push("measures taken or proposed (33(3)(d))");
        }
        if self.high_risk.is_none() {
            missing.push("Art. 34 decision (high risk to the data subjects?)");
        }
        missing
    }
}

/// Fields an update may set (`vowguard breach update ID --nature ...`). `None` leaves a
/// field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreachUpdate {
    /// Art. 33(3)(a) nature.
    #[serde(default)]
    pub nature: Option<String>,
    /// Categories of data subjects.
    #[serde(default)]
    pub subject_categories: Option<Vec<String>>,
    /// Approximate number of data subjects.
    #[serde(default)]
    pub subjects_approx: Option<u64>,
    /// Categories of records.
    #[serde(default)]
    pub record_categories: Option<Vec<String>>,
    /// Approximate number of records.
    #[serde(default)]
    pub records_approx: Option<u64>,
    /// The DPO or contact point (overrides the configured one for this breach).
    #[serde(default)]
    pub dpo_contact: Option<String>,
    /// Likely consequences.
    #[serde(default)]
    pub consequences: Option<String>,
    /// Measures taken or proposed.
    #[serde(default)]
    pub measures: Option<String>,
    /// Art. 34: high risk to the subjects?
    #[serde(default)]
    pub high_risk: Option<bool>,
    /// Art. 34 decision in words.
    #[serde(default)]
    pub subjects_decision: Option<String>,
    /// Reasons for a late notification.
    #[serde(default)]
    pub late_reason: Option<String>,
}

/// A change to the register.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BreachChange {
    /// A new breach from a signal.
    Open {
        /// The id (UUIDv7).
        id: String,
        /// The first signal.
        detected_at: DateTime<Utc>,
        /// The wedding concerned.
        wedding_id: Option<String>,
        /// The event that opened it.
        event_id: Option<String>,
        /// Why.
        first_signal: Option<String>,
        /// Records touched, when the event says.
        records_approx: Option<u64>,
        /// Notifiers the alert was handed to.
        handed_to: Vec<String>,
        /// What was done about notifying the team.
        team_notification: Option<String>,
    },
    /// Confirmed awareness at `at`: the 72-hour clock starts.
    Confirm {
        /// When awareness was confirmed.
        at: DateTime<Utc>,
    },
    /// Art. 33(3) content and the Art. 34 decision.
    Update(BreachUpdate),
    /// The authority was notified at `at`.
    NotifyAuthority {
        /// When.
        at: DateTime<Utc>,
    },
    /// The subjects were told at `at`.
    NotifySubjects {
        /// When.
        at: DateTime<Utc>,
    },
    /// Not notifiable, with the documented reason.
    NotNotifiable {
        /// Why (required).
        reason: String,
    },
    /// Closed at `at`.
    Close {
        /// When.
        at: DateTime<Utc>,
    },
}

fn ts(at: DateTime<Utc>) -> Value {
    Value::from(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn put<T: Serialize>(fields: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        fields.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!("`{field}` must not be empty")));
    }
    Ok(())
}

impl BreachChange {
    /// The audit action name and changed fields, after checking the change is allowed for
    /// `current` at `now` (times in the future beyond a minute of clock skew are refused).
    pub fn validate(
        &self,
        current: Option<&Breach>,
        now: DateTime<Utc>,
        dpo_contact: Option<&str>,
    ) -> Result<(&'static str, Map<String, Value>), Error> {
        let mut fields = Map::new();
        let not_future = |field: &str, at: DateTime<Utc>| {
            if at > now + Duration::minutes(1) {
                return Err(Error::invalid_input(format!(
                    "`{field}` ({}) is in the future",
                    at.to_rfc3339()
                )));
            }
            Ok(())
        };
        let Some(breach) = current else {
            let BreachChange::Open {
                id,
                detected_at,
                wedding_id,
                event_id,
                first_signal,
                records_approx,
                handed_to,
                team_notification,
            } = self
            else {
                return Err(Error::invalid_input("no such breach in the register"));
            };
            non_empty("id", id)?;
            fields.insert("status".into(), Value::from("suspected"));
            fields.insert("detected_at".into(), ts(*detected_at));
            put(&mut fields, "wedding_id", wedding_id.clone());
            put(&mut fields, "event_id", event_id.clone());
            put(&mut fields, "first_signal", first_signal.clone());
            put(&mut fields, "records_approx", *records_approx);
            put(&mut fields, "dpo_contact", dpo_contact);
            fields.insert("handed_to".into(), Value::from(handed_to.clone()));
            put(&mut fields, "team_notification", team_notification.clone());
            return Ok(("opened", fields));
        };
        if breach.status == BreachStatus::Closed {
            return Err(Error::invalid_input(format!(
                "breach {} is closed; it cannot change",
                breach.id
            )));
        }
        let action = match self {
            BreachChange::Open { id, .. } => {
                return Err(Error::invalid_input(format!(
                    "breach {id} is already in the register"
                )));
            }
            BreachChange::Confirm { at } => {
                if let Some(confirmed) = breach.confirmed_at {
                    return Err(Error::invalid_input(format!(
                        "breach {} was already confirmed at {}; the 72-hour clock does not restart",
                        breach.id,
                        confirmed.to_rfc3339()
                    )));
                }
                not_future("--at", *at)?;
                if *at < breach.detected_at {
                    return Err(Error::invalid_input(format!(
                        "`--at` ({}) is before the breach was detected ({})",
                        at.to_rfc3339(),
                        breach.detected_at.to_rfc3339()
                    )));
                }
                fields.insert("confirmed_at".into(), ts(*at));
                fields.insert("deadline".into(), ts(deadline_for(*at)));
                if breach.status == BreachStatus::Suspected {
                    fields.insert("status".into(), Value::from("confirmed"));
                }
                "confirmed"
            }
            BreachChange::Update(update) => {
                let value = serde_json::to_value(update)
                    .map_err(|e| Error::internal(format!("encode a breach update: {e}")))?;
                if let Value::Object(map) = value {
                    for (key, value) in map {
                        if let Value::String(s) = &value {
                            non_empty(&format!("--{}", key.replace('_', "-")), s)?;
                        }
                        if !value.is_null() {
                            fields.insert(key, value);
                        }
                    }
                }
                if fields.is_empty() {
                    return Err(Error::invalid_input(
                        "an update needs at least one field (e.g. --nature, --measures)",
                    ));
                }
                "updated"
            }
            BreachChange::NotifyAuthority { at } => {
                let (Some(confirmed), Some(deadline)) = (breach.confirmed_at, breach.deadline)
                else {
                    return Err(Error::invalid_input(format!(
                        "breach {} is not confirmed: confirm it before notifying the authority",
                        breach.id
                    )));
                };
                if breach.notified_authority_at.is_some() {
                    return Err(Error::invalid_input(format!(
                        "breach {}: the authority was already notified",
                        breach.id
                    )));
                }
                not_future("--at", *at)?;
                if *at < confirmed {
                    return Err(Error::invalid_input(format!(
                        "`--at` ({}) is before the confirmation ({})",
                        at.to_rfc3339(),
                        confirmed.to_rfc3339()
                    )));
                }
                if *at > deadline && breach.late_reason.is_none() {
                    return Err(Error::invalid_input(format!(
                        "breach {}: notified after the 72-hour deadline ({}); record the reasons for the delay first (update --late-reason, Art. 33(1))",
                        breach.id,
                        deadline.to_rfc3339()
                    )));
                }
                fields.insert("notified_authority_at".into(), ts(*at));
                if breach.status != BreachStatus::NotifiedSubjects {
                    fields.insert("status".into(), Value::from("notified_authority"));
                }
                "notified_authority"
            }
            BreachChange::NotifySubjects { at } => {
                if breach.confirmed_at.is_none() {
                    return Err(Error::invalid_input(format!(
                        "breach {} is not confirmed: confirm it before telling the data subjects",
                        breach.id
                    )));
                }
                not_future("--at", *at)?;
                fields.insert("notified_subjects_at".into(), ts(*at));
                fields.insert("status".into(), Value::from("notified_subjects"));
                "notified_subjects"
            }
            BreachChange::NotNotifiable { reason } => {
                non_empty("--reason", reason)?;
                if breach.notified_authority_at.is_some() {
                    return Err(Error::invalid_input(format!(
                        "breach {}: the authority was already notified",
                        breach.id
                    )));
                }
                fields.insert("not_notifiable_reason".into(), Value::from(reason.clone()));
                fields.insert("status".into(), Value::from("not_notifiable"));
                "not_notifiable"
            }
            BreachChange::Close { at } => {
                if !matches!(
                    breach.status,
                    BreachStatus::NotifiedAuthority
                        | BreachStatus::NotifiedSubjects
                        | BreachStatus::NotNotifiable
                ) {
                    return Err(Error::invalid_input(format!(
                        "breach {} is {}: notify the authority or document why it is not notifiable before closing",
                        breach.id,
                        breach.status.as_str()
                    )));
                }
                not_future("--at", *at)?;
                fields.insert("closed_at".into(), ts(*at));
                fields.insert("status".into(), Value::from("closed"));
                "closed"
            }
        };
        Ok((action, fields))
    }
}

/// One change in a breach's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreachHistoryEntry {
    /// The audit log index of the change.
    pub audit_index: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// What (`opened`, `confirmed`, ...).
    pub action: String,
    /// Who.
    pub actor: String,
    /// The fields set.
    pub fields: Value,
}

/// Milliseconds since the epoch to a time.
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Store {
    /// One breach, if the register has it.
    pub async fn breach(&self, id: &str) -> Result<Option<Breach>, Error> {
        let row: Option<AnyRow> =
            sqlx::query("SELECT state, breach_id FROM breaches WHERE breach_id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.err("read a breach", &e))?;
        row.map(|r| parse_breach(self, &r)).transpose()
    }

    /// Every breach, oldest first.
    pub async fn breaches(&self) -> Result<Vec<Breach>, Error> {
        let rows =
            sqlx::query("SELECT state, breach_id FROM breaches ORDER BY detected_at_ms, breach_id")
                .fetch_all(self.pool())
                .await
                .map_err(|e| self.err("list breaches", &e))?;
        rows.iter().map(|r| parse_breach(self, r)).collect()
    }

    /// Breaches detected before `to` and not closed before `from`.
    pub async fn breaches_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Breach>, Error> {
        Ok(self
            .breaches()
            .await?
            .into_iter()
            .filter(|b| b.detected_at < to && b.closed_at.is_none_or(|c| c >= from))
            .collect())
    }

    /// Confirmed breaches not yet notified whose deadline is less than `within` from `now`
    /// (or past): what escalation matches as `breach_deadline_in < 24h`.
    pub async fn breaches_due_within(
        &self,
        now: DateTime<Utc>,
        within: Duration,
    ) -> Result<Vec<Breach>, Error> {
        let limit = (now + within).timestamp_millis();
        let rows = sqlx::query(
            "SELECT state, breach_id FROM breaches WHERE deadline_ms IS NOT NULL AND deadline_ms < $1
             AND status = 'confirmed' ORDER BY deadline_ms",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("list breaches due", &e))?;
        rows.iter().map(|r| parse_breach(self, r)).collect()
    }

    /// Every change to breach `id`, oldest first.
    pub async fn breach_history(&self, id: &str) -> Result<Vec<BreachHistoryEntry>, Error> {
        let rows = sqlx::query(
            "SELECT audit_index, at_ms, action, actor, fields FROM breach_history
             WHERE breach_id = $1 ORDER BY audit_index",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read a breach's history", &e))?;
        rows.iter()
            .map(|r| {
                let read = |e: sqlx::Error| self.err("read a breach's history", &e);
                let audit_index: i64 = r.try_get(0).map_err(read)?;
                let text: String = r.try_get(4).map_err(read)?;
                let fields = serde_json::from_str(&text).map_err(|e| {
                    Error::internal(format!(
                        "report store {}: breach {id}: the change at audit index {audit_index} is unreadable ({e}); rebuild the store from the audit log (`vowguard audit rebuild-store`)",
                        self.location_display()
                    ))
                })?;
                Ok(BreachHistoryEntry {
                    audit_index: u64::try_from(audit_index).unwrap_or_default(),
                    at: from_ms(r.try_get::<i64, _>(1).map_err(read)?),
                    action: r.try_get(2).map_err(read)?,
                    actor: r.try_get(3).map_err(read)?,
                    fields,
                })
            })
            .collect()
    }
}

fn parse_breach(store: &Store, row: &AnyRow) -> Result<Breach, Error> {
    let text: String = row.try_get(0).map_err(|e| store.err("read a breach", &e))?;
    let id: String = row.try_get(1).map_err(|e| store.err("read a breach", &e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::internal(format!(
            "report store {}: breach {id}: the stored state is unreadable ({e}); rebuild the store from the audit log (`vowguard audit rebuild-store`)",
            store.location_display()
        ))
    })
}

/// Audit records read per [`BreachStorage::catch_up`] step.
const CATCH_UP_CHUNK: usize = 1_000;

/// Where the breach register's current state is kept: each breach and every change to it,
/// projected from the audit log's [`AuditRecord::Breach`] records. The report [`Store`]
/// (SQLite or PostgreSQL) is the default; [`MemoryBreachStore`] keeps it in memory; a host
/// can keep it in its own database. The audit log stays the record of what happened: any
/// storage can be rebuilt from it.
///
/// # Contract
///
/// * [`apply`](Self::apply) takes consecutive audit records, the first at `first_index`,
///   and applies the breach changes among them in that order, in one unit (all or none);
///   other records only move the applied index. It is idempotent: records at or below
///   [`applied_through`](Self::applied_through) are skipped (it returns how many were
///   new), and a record beyond the next expected index is refused, so the storage never
///   has a gap. A change that does not give a valid breach is an error and nothing of the
///   batch is applied.
/// * Reads reflect every change applied before them. [`breaches`](Self::breaches) lists
///   oldest first (detection time, then id); [`breaches_due_within`](Self::breaches_due_within)
///   lists the confirmed breaches (status `confirmed`) whose deadline is before
///   `now + within`, soonest first; [`breach_history`](Self::breach_history) lists a
///   breach's changes in audit-log order.
/// * Stored data that cannot be read is an error naming where (the store, the breach, the
///   audit index), never skipped.
///
/// # Example
///
/// A register over the in-memory storage, changes recorded in an in-memory audit log:
///
/// ```
/// use std::sync::Arc;
/// use chrono::Utc;
/// use vowguard_store::breach::{BreachChange, BreachStorage, MemoryBreachStore};
/// use vowguard_store::{BreachRegister, BreachStatus, MemoryAudit};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vowguard_core::Error> {
/// let audit = Arc::new(MemoryAudit::new());
/// let storage = Arc::new(MemoryBreachStore::new(10_000));
/// let register = BreachRegister::new(storage.clone(), audit.clone(), audit, None);
/// let now = Utc::now();
/// let open = BreachChange::Open {
///     id: "b-1".into(),
///     detected_at: now,
///     wedding_id: Some("w-1".into()),
///     event_id: None,
///     first_signal: Some("guest list exported".into()),
///     records_approx: Some(180),
///     handed_to: vec![],
///     team_notification: None,
/// };
/// register.change("b-1", &open, "system", now).await?;
/// let confirmed = register
///     .change("b-1", &BreachChange::Confirm { at: now }, "dpo", now)
///     .await?;
/// assert_eq!(confirmed.status, BreachStatus::Confirmed);
/// assert_eq!(storage.breach_history("b-1").await?.len(), 2);
/// # Ok(())
/// # }
/// ```
#[async_trait::async_trait]
pub trait BreachStorage: Send + Sync + std::fmt::Debug {
    /// The index of the last audit record applied, if any.
    async fn applied_through(&self) -> Result<Option<u64>, Error>;

    /// Applies consecutive audit records, the first at `first_index`; returns how many
    /// were new.
    async fn apply(&self, first_index: u64, records: &[AuditRecord]) -> Result<u64, Error>;

    /// Applies every record `source` holds beyond the applied index; returns how many.
    async fn catch_up(&self, source: &dyn AuditSource) -> Result<u64, Error> {
        let mut applied = 0;
        loop {
            let next = self.applied_through().await?.map_or(0, |i| i + 1);
            let records = source.records_from(next, CATCH_UP_CHUNK).await?;
            let Some((first, _)) = records.first() else {
                return Ok(applied);
            };
            let first = *first;
            let records: Vec<AuditRecord> = records.into_iter().map(|(_, r)| r).collect();
            let n = self.apply(first, &records).await?;
            if n == 0 {
                return Ok(applied);
            }
            applied += n;
        }
    }

    /// One breach, if the storage has it.
    async fn breach(&self, id: &str) -> Result<Option<Breach>, Error>;

    /// Every breach, oldest first.
    async fn breaches(&self) -> Result<Vec<Breach>, Error>;

    /// Confirmed breaches whose deadline is before `now + within` (or past), soonest first.
    async fn breaches_due_within(
        &self,
        now: DateTime<Utc>,
        within: Duration,
    ) -> Result<Vec<Breach>, Error>;

    /// Every change to breach `id`, oldest first.
    async fn breach_history(&self, id: &str) -> Result<Vec<BreachHistoryEntry>, Error>;

    /// Where the state is, for messages.
    fn location(&self) -> String;
}

/// The report store keeps the register in its `breaches` and `breach_history` tables; it
/// projects every audit record (reports too), so [`apply`](BreachStorage::apply) and
/// [`catch_up`](BreachStorage::catch_up) are the store's own.
#[async_trait::async_trait]
impl BreachStorage for Store {
    async fn applied_through(&self) -> Result<Option<u64>, Error> {
        Store::applied_through(self).await
    }

    async fn apply(&self, first_index: u64, records: &[AuditRecord]) -> Result<u64, Error> {
        self.apply_batch(first_index, records).await
    }

    async fn catch_up(&self, source: &dyn AuditSource) -> Result<u64, Error> {
        Store::catch_up(self, source).await
    }

    async fn breach(&self, id: &str) -> Result<Option<Breach>, Error> {
        Store::breach(self, id).await
    }

    async fn breaches(&self) -> Result<Vec<Breach>, Error> {
        Store::breaches(self).await
    }

    async fn breaches_due_within(
        &self,
        now: DateTime<Utc>,
        within: Duration,
    ) -> Result<Vec<Breach>, Error> {
        Store::breaches_due_within(self, now, within).await
    }

    async fn breach_history(&self, id: &str) -> Result<Vec<BreachHistoryEntry>, Error> {
        Store::breach_history(self, id).await
    }

    fn location(&self) -> String {
        format!("report store {}", self.location_display())
    }
}

/// One breach in a [`MemoryBreachStore`]: its merged state, the breach it gives, its
/// changes.
#[derive(Debug, Clone)]
struct HeldBreach {
    state: Map<String, Value>,
    breach: Breach,
    history: Vec<BreachHistoryEntry>,
}

#[derive(Debug, Default)]
struct MemoryBreaches {
    applied_through: Option<u64>,
    breaches: std::collections::HashMap<String, HeldBreach>,
}

/// The breach register in memory, for tests and hosts that keep the audit log elsewhere:
/// nothing survives the process (rebuild it from the audit log with
/// [`BreachStorage::catch_up`]). Bounded: it holds at most `max_breaches` breaches; past
/// that, closed breaches are dropped (longest closed first), and when none is closed the
/// batch that would pass the bound is refused with an error naming the bound.
#[derive(Debug)]
pub struct MemoryBreachStore {
    state: std::sync::Mutex<MemoryBreaches>,
    max_breaches: usize,
}

impl MemoryBreachStore {
    /// An empty register holding at most `max_breaches` (at least one).
    pub fn new(max_breaches: usize) -> Self {
        Self {
            state: std::sync::Mutex::new(MemoryBreaches::default()),
            max_breaches: max_breaches.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryBreaches> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl BreachStorage for MemoryBreachStore {
    async fn applied_through(&self) -> Result<Option<u64>, Error> {
        Ok(self.state().applied_through)
    }

    async fn apply(&self, first_index: u64, records: &[AuditRecord]) -> Result<u64, Error> {
        let mut state = self.state();
        let expected = state.applied_through.map_or(0, |i| i + 1);
        let skip = expected.saturating_sub(first_index);
        if skip >= records.len() as u64 {
            return Ok(0);
        }
        if first_index > expected {
            return Err(Error::invalid_input(format!(
                "memory breach store: audit record {first_index} arrived but the store expects {expected} next: feed the missing records first (catch up from the audit log)"
            )));
        }
        let start = first_index + skip;
        let fresh = &records[skip as usize..];
        // Changed breaches, applied to `state` only once the whole batch is valid.
        let mut changed: std::collections::HashMap<String, HeldBreach> =
            std::collections::HashMap::new();
        for (offset, record) in fresh.iter().enumerate() {
            let AuditRecord::Breach {
                at,
                breach_id,
                action,
                actor,
                fields,
            } = record
            else {
                continue;
            };
            let held = changed
                .remove(breach_id)
                .or_else(|| state.breaches.get(breach_id).cloned());
            let (current, mut history) = match held {
                Some(h) => (Some(h.state), h.history),
                None => (None, Vec::new()),
            };
            let (merged, breach) =
                crate::projection::merge_breach_change(current, *at, breach_id, fields.clone())?;
            history.push(BreachHistoryEntry {
                audit_index: start + offset as u64,
                at: *at,
                action: action.clone(),
                actor: actor.clone(),
                fields: Value::Object(fields.clone()),
            });
            changed.insert(
                breach_id.clone(),
                HeldBreach {
                    state: merged,
                    breach,
                    history,
                },
            );
        }
        let new = changed
            .keys()
            .filter(|id| !state.breaches.contains_key(*id))
            .count();
        let excess = (state.breaches.len() + new).saturating_sub(self.max_breaches);
        let mut dropped = Vec::new();
        if excess > 0 {
            let mut closed: Vec<(DateTime<Utc>, &String)> = state
                .breaches
                .iter()
                .filter(|(id, _)| !changed.contains_key(*id))
                .chain(changed.iter())
                .filter_map(|(id, h)| h.breach.closed_at.map(|at| (at, id)))
                .collect();
            if closed.len() < excess {
                return Err(Error::unavailable(format!(
                    "memory breach store: holding {} breaches would pass its bound of {} and only {} of them are closed; nothing of audit records {start}.. applied",
                    state.breaches.len() + new,
                    self.max_breaches,
                    closed.len()
                )));
            }
            closed.sort();
            dropped = closed
                .into_iter()
                .take(excess)
                .map(|(_, id)| id.clone())
                .collect();
        }
        state.breaches.extend(changed);
        for id in dropped {
            state.breaches.remove(&id);
        }
        state.applied_through = Some(start + fresh.len() as u64 - 1);
        Ok(fresh.len() as u64)
    }

    async fn breach(&self, id: &str) -> Result<Option<Breach>, Error> {
        Ok(self.state().breaches.get(id).map(|h| h.breach.clone()))
    }

    async fn breaches(&self) -> Result<Vec<Breach>, Error> {
        let mut all: Vec<Breach> = self
            .state()
            .breaches
            .values()
            .map(|h| h.breach.clone())
            .collect();
        all.sort_by(|a, b| (a.detected_at, &a.id).cmp(&(b.detected_at, &b.id)));
        Ok(all)
    }

    async fn breaches_due_within(
        &self,
        now: DateTime<Utc>,
        within: Duration,
    ) -> Result<Vec<Breach>, Error> {
        let limit = now + within;
        let mut due: Vec<Breach> = self
            .state()
            .breaches
            .values()
            .filter(|h| {
                h.breach.status == BreachStatus::Confirmed
                    && h.breach.deadline.is_some_and(|d| d < limit)
            })
            .map(|h| h.breach.clone())
            .collect();
        due.sort_by_key(|b| b.deadline);
        Ok(due)
    }

    async fn breach_history(&self, id: &str) -> Result<Vec<BreachHistoryEntry>, Error> {
        Ok(self
            .state()
            .breaches
            .get(id)
            .map(|h| h.history.clone())
            .unwrap_or_default())
    }

    fn location(&self) -> String {
        "memory breach store".into()
    }
}

/// The register: validates each change, appends it to the audit log, then brings its
/// [`BreachStorage`] up to date from the log. Changes made through one register (and its
/// clones) are serialised: each is validated against the state the one before it left, so
/// two concurrent confirmations of a breach record one and refuse the other.
#[derive(Debug, Clone)]
pub struct BreachRegister {
    store: Arc<dyn BreachStorage>,
    trail: Arc<dyn AuditTrail>,
    source: Arc<dyn AuditSource>,
    dpo_contact: Option<String>,
    /// Held from reading a breach to storing its change.
    changes: Arc<tokio::sync::Mutex<()>>,
}

impl BreachRegister {
    /// A register over `store` (the report [`Store`], [`MemoryBreachStore`] or a host's
    /// own), recording changes in `trail` and reading them back from `source` (the same
    /// log); `dpo_contact` is `[store] dpo_contact`.
    pub fn new(
        store: Arc<dyn BreachStorage>,
        trail: Arc<dyn AuditTrail>,
        source: Arc<dyn AuditSource>,
        dpo_contact: Option<String>,
    ) -> Self {
        Self {
            store,
            trail,
            source,
            dpo_contact,
            changes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Where the register's state is kept.
    pub fn storage(&self) -> &Arc<dyn BreachStorage> {
        &self.store
    }

    /// Applies `change` to breach `id` on behalf of `actor`; returns the breach after it.
    /// Opening needs only the audit log: when the store is down the change is recorded and
    /// the store catches up later (the returned breach is then built from the change alone).
    pub async fn change(
        &self,
        id: &str,
        change: &BreachChange,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Breach, Error> {
        non_empty("actor", actor)?;
        let _change = self.changes.lock().await;
        let opening = matches!(change, BreachChange::Open { .. });
        let current = match self.store.catch_up(self.source.as_ref()).await {
            Ok(_) => self.store.breach(id).await?,
            Err(e) if opening => {
                tracing::warn!(error = %e, "report store unavailable; the breach is recorded in the audit log and the store catches up later");
                None
            }
            Err(e) => return Err(e),
        };
        let (action, fields) = change
            .validate(current.as_ref(), now, self.dpo_contact.as_deref())
            .map_err(|e| Error::new(e.kind(), format!("breach {id}: {e}")))?;
        let record = AuditRecord::Breach {
            at: now,
            breach_id: id.to_owned(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            fields: fields.clone(),
        };
        self.trail.append(vec![record]).await?;
        match self.store.catch_up(self.source.as_ref()).await {
            Ok(_) => {}
            Err(e) if opening => {
                tracing::warn!(error = %e, "report store unavailable; it catches up from the audit log later");
                let mut state = fields;
                state.insert("id".into(), Value::from(id));
                state.insert("updated_at".into(), ts(now));
                return serde_json::from_value(Value::Object(state))
                    .map_err(|e| Error::internal(format!("breach {id}: {e}")));
            }
            Err(e) => return Err(e),
        }
        self.store
            .breach(id)
            .await?
            .ok_or_else(|| Error::internal(format!("breach {id} missing after the change")))
    }

    /// Opens a breach from the router's record.
    pub async fn open_from(&self, record: &BreachRecord) -> Result<Breach, Error> {
        let change = BreachChange::Open {
            id: record.id.clone(),
            detected_at: record.opened_at,
            wedding_id: record.wedding_id.clone(),
            event_id: Some(record.event_id.clone()),
            first_signal: Some(record.reason.clone()),
            records_approx: record.records_affected,
            handed_to: record.handed_to.clone(),
            team_notification: Some(record.notification.clone()).filter(|n| !n.is_empty()),
        };
        self.change(&record.id, &change, "system", Utc::now()).await
    }

    /// The Art. 33 notification text for breach `id`, ready to send.
    pub async fn notice(&self, id: &str, now: DateTime<Utc>, zone: Tz) -> Result<String, Error> {
        let _ = self.store.catch_up(self.source.as_ref()).await;
        let breach = self
            .store
            .breach(id)
            .await?
            .ok_or_else(|| Error::invalid_input(format!("breach {id}: no such breach")))?;
        Ok(render_notice(
            &breach,
            self.dpo_contact.as_deref(),
            now,
            zone,
        ))
    }
}

/// `at` in UTC and in `zone`, e.g. `2026-03-30 10:00 UTC (12:00 CEST, Europe/Berlin)`.
pub fn show_time(at: DateTime<Utc>, zone: Tz) -> String {
    let local = at.with_timezone(&zone);
    format!(
        "{} UTC ({} {}, {})",
        at.format("%Y-%m-%d %H:%M"),
        local.format("%Y-%m-%d %H:%M"),
        local.format("%Z"),
        zone.name()
    )
}

/// Renders the Art. 33 notice (plain text; every field as given, one line each, control
/// characters replaced so a field cannot forge a line of the notice).
pub fn render_notice(breach: &Breach, dpo: Option<&str>, now: DateTime<Utc>, zone: Tz) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let or_missing =
        |v: Option<&str>| v.map_or_else(|| "[not yet known: to follow, Art. 33(4)]".into(), clean);
    let list = |items: &[String]| {
        if items.is_empty() {
            "[not yet known]".to_owned()
        } else {
            clean(&items.join(", "))
        }
    };
    let count =
        |n: Option<u64>| n.map_or_else(|| "[not yet known]".into(), |n| format!("about {n}"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NOTIFICATION OF A PERSONAL DATA BREACH TO THE SUPERVISORY AUTHORITY\n(Regulation (EU) 2016/679, Article 33)\n"
    );
    let _ = writeln!(out, "Breach reference: {}", clean(&breach.id));
    let _ = writeln!(out, "Status: {}", breach.status.as_str());
    let _ = writeln!(out, "First signal: {}", show_time(breach.detected_at, zone));
    match (breach.confirmed_at, breach.deadline) {
        (Some(c), Some(d)) => {
            let _ = writeln!(out, "Became aware (confirmed): {}", show_time(c, zone));
            let _ = writeln!(
                out,
                "Notification due by (72 hours): {}",
                show_time(d, zone)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "Became aware (confirmed): not yet confirmed (the 72-hour period has not started)"
            );
        }
    }
    if let Some(w) = &breach.wedding_id {
        let _ = writeln!(out, "Wedding concerned: {}", clean(w));
    }
    let _ = writeln!(
        out,
        "\n(a) Nature of the breach: {}",
        or_missing(breach.nature.as_deref())
    );
    let _ = writeln!(
        out,
        "    Categories of data subjects: {}; approximate number: {}",
        list(&breach.subject_categories),
        count(breach.subjects_approx)
    );
    let _ = writeln!(
        out,
        "    Categories of personal data records: {}; approximate number: {}",
        list(&breach.record_categories),
        count(breach.records_approx)
    );
    let _ = writeln!(
        out,
        "(b) Data protection officer / contact point: {}",
        or_missing(breach.dpo_contact.as_deref().or(dpo))
    );
    let _ = writeln!(
        out,
        "(c) Likely consequences: {}",
        or_missing(breach.consequences.as_deref())
    );
    let _ = writeln!(
        out,
        "(d) Measures taken or proposed, including mitigation: {}",
        or_missing(breach.measures.as_deref())
    );
    let art34 = match breach.high_risk {
        Some(true) => format!(
            "high risk to the data subjects: they are informed without undue delay (Art. 34(1)){}",
            breach
                .subjects_decision
                .as_deref()
                .map(|d| format!("; {}", clean(d)))
                .unwrap_or_default()
        ),
        Some(false) => format!(
            "no high risk: the data subjects are not individually informed{}",
            breach
                .subjects_decision
                .as_deref()
                .map(|d| format!(" ({})", clean(d)))
                .unwrap_or_default()
        ),
        None => "not yet decided".into(),
    };
    let _ = writeln!(
        out,
        "\nCommunication to the data subjects (Art. 34): {art34}"
    );
    match breach.clock(now) {
        Clock::Late { reason, .. } => {
            let _ = writeln!(
                out,
                "Reasons for the delay (Art. 33(1)): {}",
                or_missing(reason.as_deref())
            );
        }
        Clock::Overdue { minutes_over } => {
            let _ = writeln!(
                out,
                "This notification is {} h {} min after the 72-hour period. Reasons for the delay (Art. 33(1)): {}",
                minutes_over / 60,
                minutes_over % 60,
                or_missing(breach.late_reason.as_deref())
            );
        }
        _ => {}
    }
    let missing = breach.missing_content();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\nInformation to be provided in phases (Art. 33(4)): {}",
            missing.join("; ")
        );
    }
    let _ = writeln!(out, "\nPrepared {}", show_time(now, zone));
    out
}

/// The router's [`BreachLog`], writing to the register: each opened breach is queued
/// (bounded) and recorded by a task, so routing never waits for the audit log or the store.
#[derive(Debug, Clone)]
pub struct AuditBreachLog {
    queue: tokio::sync::mpsc::Sender<BreachRecord>,
}

/// Breaches waiting to be recorded before [`AuditBreachLog`] refuses more.
const BREACH_QUEUE: usize = 1024;

impl AuditBreachLog {
    /// Starts the recording task on the current Tokio runtime.
    pub fn spawn(register: BreachRegister) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<BreachRecord>(BREACH_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                if let Err(e) = register.open_from(&record).await {
                    tracing::error!(breach_id = record.id.as_str(), error = %e, "could not record the breach in the audit log");
                }
            }
        });
        (Self { queue }, task)
    }
}

impl BreachLog for AuditBreachLog {
    fn record(&self, record: &BreachRecord) -> Result<(), Error> {
        self.queue.try_send(record.clone()).map_err(|e| {
            Error::unavailable(format!(
                "breach register: cannot queue breach {}: {e}",
                record.id
            ))
        })
    }
}

/// The router's [`BreachLog`] writing each opened breach straight to the interim audit log
/// ([`crate::JsonlAudit`]), synced before `record` returns; the store applies it when it
/// next catches up (`vowguard breach list`, reports, the follower).
#[derive(Debug, Clone)]
pub struct JsonlAuditBreachLog {
    log: Arc<crate::JsonlAudit>,
    dpo_contact: Option<String>,
}

impl JsonlAuditBreachLog {
    /// Records into `log`; `dpo_contact` is `[store] dpo_contact`.
    pub fn new(log: Arc<crate::JsonlAudit>, dpo_contact: Option<String>) -> Self {
        Self { log, dpo_contact }
    }
}

/// The audit record that opens a breach from the router's record.
pub fn opening_record(
    record: &BreachRecord,
    now: DateTime<Utc>,
    dpo_contact: Option<&str>,
) -> Result<AuditRecord, Error> {
    let change = BreachChange::Open {
        id: record.id.clone(),
        detected_at: record.opened_at,
        wedding_id: record.wedding_id.clone(),
        event_id: Some(record.event_id.clone()),
        first_signal: Some(record.reason.clone()),
        records_approx: record.records_affected,
        handed_to: record.handed_to.clone(),
        team_notification: Some(record.notification.clone()).filter(|n| !n.is_empty()),
    };
    let (action, fields) = change.validate(None, now, dpo_contact)?;
    Ok(AuditRecord::Breach {
        at: now,
        breach_id: record.id.clone(),
        action: action.to_owned(),
        actor: "system".into(),
        fields,
    })
}

impl BreachLog for JsonlAuditBreachLog {
    fn record(&self, record: &BreachRecord) -> Result<(), Error> {
        let audit = opening_record(record, Utc::now(), self.dpo_contact.as_deref())?;
        self.log.append_sync(&[audit]).map(|_| ())
    }
}

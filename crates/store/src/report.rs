//! Compliance reports: GDPR breach register, SOC 2 CC7.3-7.5 evidence, incidents, and
//! delivery against the objectives; as JSON, Markdown or one self-contained HTML file with
//! SVG charts. Every report names the audit records it was computed from.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;
use vowguard_core::{CheckpointRef, Error, Priority};

use crate::breach::{Breach, BreachHistoryEntry, Clock, from_ms};
use crate::chart;
use crate::latency::{Objective, percentile};
use crate::store::{Backend, Store};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReportKind {
    /// The GDPR breach register for the period, with clock adherence.
    Gdpr,
    /// SOC 2 CC7.3-7.5 evidence: alerts, decisions, notifications, dead letters, replays.
    Soc2,
    /// Incident timelines, dispositions, times to acknowledge and contain.
    Incidents,
    /// Delivery per SIEM, channel and enrichment against the objectives.
    Delivery,
}

impl ReportKind {
    /// The name (`gdpr`, `soc2`, `incidents`, `delivery`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gdpr => "gdpr",
            Self::Soc2 => "soc2",
            Self::Incidents => "incidents",
            Self::Delivery => "delivery",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Gdpr => "GDPR breach register",
            Self::Soc2 => "SOC 2 CC7.3-CC7.5 incident response evidence",
            Self::Incidents => "Incidents",
            Self::Delivery => "Delivery against the objectives",
        }
    }
}

impl FromStr for ReportKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "gdpr" => Self::Gdpr,
            "soc2" => Self::Soc2,
            "incidents" => Self::Incidents,
            "delivery" => Self::Delivery,
            other => {
                return Err(Error::invalid_input(format!(
                    "`kind`: unknown report {other:?}: expected gdpr, soc2, incidents or delivery"
                )));
            }
        })
    }
}

/// How a report is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportFormat {
    /// One self-contained HTML file with SVG charts, printable.
    Html,
    /// Markdown.
    Md,
    /// JSON (the report's data).
    Json,
}

impl ReportFormat {
    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Html => "text/html; charset=utf-8",
            Self::Md => "text/markdown; charset=utf-8",
            Self::Json => "application/json",
        }
    }
}

impl FromStr for ReportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "html" => Self::Html,
            "md" | "markdown" => Self::Md,
            "json" => Self::Json,
            other => {
                return Err(Error::invalid_input(format!(
                    "`format`: unknown format {other:?}: expected html, md or json"
                )));
            }
        })
    }
}

/// A validated report request: `from` is before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportParams {
    kind: ReportKind,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// Reads `2026-06-01` (midnight UTC) or an RFC 3339 time; errors name `field`.
pub fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, Error> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    Err(Error::invalid_input(format!(
        "`{field}`: cannot read {value:?} as a time (expected 2026-06-01 or 2026-06-01T00:00:00Z)"
    )))
}

impl ReportParams {
    /// A request for `kind` over `[from, to)`; refused when `from` is not before `to`.
    pub fn new(kind: ReportKind, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, Error> {
        if from > to {
            return Err(Error::invalid_input(format!(
                "`--from` ({}) is after `--to` ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        if from == to {
            return Err(Error::invalid_input(format!(
                "`--from` and `--to` are the same time ({}): the period is empty",
                from.to_rfc3339()
            )));
        }
        Ok(Self { kind, from, to })
    }

    /// Like [`ReportParams::new`], reading the times (`--from`, `--to` named in errors).
    pub fn parse(kind: ReportKind, from: &str, to: &str) -> Result<Self, Error> {
        Self::new(kind, parse_time("--from", from)?, parse_time("--to", to)?)
    }

    /// The report kind.
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// The period start (inclusive).
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// The period end (exclusive).
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }
}

/// What a report was computed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The database.
    pub backend: Backend,
    /// Audit records 0..=this were applied to the store when the report was computed.
    pub applied_through: Option<u64>,
    /// The latest signed checkpoint of the audit log, when one exists.
    pub checkpoint: Option<CheckpointRef>,
}

/// A computed report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which.
    pub kind: ReportKind,
    /// Period start.
    pub from: DateTime<Utc>,
    /// Period end (exclusive).
    pub to: DateTime<Utc>,
    /// When it was computed.
    pub generated_at: DateTime<Utc>,
    /// What it was computed from.
    pub evidence: Evidence,
    /// The content.
    pub body: ReportBody,
}

/// A report's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReportBody {
    /// GDPR.
    Gdpr(GdprReport),
    /// SOC 2.
    Soc2(Soc2Report),
    /// Incidents.
    Incidents(IncidentsReport),
    /// Delivery.
    Delivery(DeliveryReport),
}

/// One breach in the GDPR report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GdprBreach {
    /// The register's entry.
    pub breach: Breach,
    /// Clock adherence at the report's end (or generation time, when earlier).
    pub clock: Clock,
    /// Every change, with who and when.
    pub history: Vec<BreachHistoryEntry>,
}

/// Totals of the GDPR report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GdprTotals {
    /// Breaches in the period.
    pub breaches: u64,
    /// Not yet confirmed.
    pub not_confirmed: u64,
    /// Authority notified within 72 h.
    pub notified_on_time: u64,
    /// Authority notified late (with reasons).
    pub notified_late: u64,
    /// Clock running.
    pub running: u64,
    /// Past the deadline, authority not notified.
    pub overdue: u64,
    /// Documented as not notifiable.
    pub not_notifiable: u64,
    /// High risk (Art. 34: subjects told).
    pub high_risk: u64,
    /// Approximate data subjects concerned, summed.
    pub subjects_approx: u64,
    /// Approximate records concerned, summed.
    pub records_approx: u64,
}

/// The GDPR breach register for the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GdprReport {
    /// Breaches detected before the end and not closed before the start.
    pub breaches: Vec<GdprBreach>,
    /// Totals.
    pub totals: GdprTotals,
    /// Affected weddings and how many breaches each.
    pub weddings: BTreeMap<String, u64>,
    /// Categories of data subjects and how many breaches each.
    pub subject_categories: BTreeMap<String, u64>,
    /// Categories of records and how many breaches each.
    pub record_categories: BTreeMap<String, u64>,
}

/// One notification attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationEntry {
    /// When the channel answered.
    pub at: DateTime<Utc>,
    /// The channel.
    pub channel: String,
    /// `sent`, `failed`, `dead_lettered`.
    pub result: String,
    /// Receipt or failure reason.
    pub detail: Option<String>,
    /// Alert creation to answer.
    pub latency_ms: u64,
}

/// One alert with its decision and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertEntry {
    /// Audit index of the routing record.
    pub audit_index: u64,
    /// When routed.
    pub at: DateTime<Utc>,
    /// Alert id.
    pub alert_id: String,
    /// The event.
    pub event_id: String,
    /// Severity applied (priority).
    pub priority: String,
    /// The route.
    pub route: String,
    /// Why.
    pub reasons: Vec<String>,
    /// Channels it was handed to (escalation executed).
    pub channels: Vec<String>,
    /// Why it was not sent, if so.
    pub suppressed: Option<String>,
    /// The wedding.
    pub wedding_id: Option<String>,
    /// Notification attempts and results.
    pub notifications: Vec<NotificationEntry>,
    /// The incident the alert opened or was linked to (automated response), if any.
    pub incident_id: Option<String>,
    /// The disposition, in words (with the incident's state when it has one).
    pub disposition: String,
}

/// A dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The sink.
    pub sink: String,
    /// The event.
    pub event_id: String,
    /// Why.
    pub reason: Option<String>,
}

/// A replay of dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The sink.
    pub sink: String,
    /// Who.
    pub actor: String,
    /// How many events.
    pub events: u64,
}

/// An admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Result.
    pub result: String,
}

/// Dead letters listed in full at most (the totals always count all).
pub const DEAD_LETTERS_LISTED: usize = 10_000;

/// SOC 2 CC7.3-7.5 evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Soc2Report {
    /// Every alert in the period, oldest first.
    pub alerts: Vec<AlertEntry>,
    /// Alerts per UTC day and priority.
    pub alerts_per_day: BTreeMap<String, BTreeMap<String, u64>>,
    /// Alerts per priority.
    pub alerts_by_priority: BTreeMap<String, u64>,
    /// Notification results per channel (`sent`, `failed`, ...).
    pub notification_results: BTreeMap<String, BTreeMap<String, u64>>,
    /// Dead letters (the first [`DEAD_LETTERS_LISTED`]).
    pub dead_letters: Vec<DeadLetterEntry>,
    /// Dead letters per sink, all of them.
    pub dead_letters_by_sink: BTreeMap<String, u64>,
    /// Replays.
    pub replays: Vec<ReplayEntry>,
    /// State-changing admin actions.
    pub admin_actions: Vec<AdminEntry>,
    /// Incident timelines (CC7.4/7.5), with their playbook runs and approvals.
    pub incidents: Vec<IncidentTimeline>,
    /// Time to acknowledge and to contain per priority, over the incidents listed.
    pub response_times: Vec<ResponseTimes>,
}

/// Time to acknowledge and to contain for the incidents of one priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseTimes {
    /// The priority (`P0` ... `P3`, or `-` when the timeline does not say).
    pub priority: String,
    /// Incidents of this priority.
    pub incidents: u64,
    /// Of which acknowledged.
    pub acknowledged: u64,
    /// Median minutes from opened to acknowledged.
    pub median_minutes_to_acknowledge: Option<i64>,
    /// Longest minutes from opened to acknowledged.
    pub max_minutes_to_acknowledge: Option<i64>,
    /// Of which contained.
    pub contained: u64,
    /// Median minutes from opened to contained.
    pub median_minutes_to_contain: Option<i64>,
    /// Longest minutes from opened to contained.
    pub max_minutes_to_contain: Option<i64>,
}

/// One step of a playbook run, as its timeline recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepEvidence {
    /// The step id.
    pub step_id: String,
    /// The step kind (`action`, `http`, `ticket`, `approval`, ...), when it started.
    pub kind: Option<String>,
    /// `succeeded`, `failed`, `timed_out`, `skipped`, or `running` (not finished).
    pub status: String,
    /// Attempts made.
    pub attempts: u64,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// What it produced.
    pub output: Value,
    /// Why it failed.
    pub error: Option<String>,
}

/// One playbook run of an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvidence {
    /// The run id.
    pub run_id: String,
    /// The playbook.
    pub playbook: String,
    /// Its version.
    pub version: Option<u64>,
    /// A dry run (nothing executed).
    pub dry_run: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its terminal state (`succeeded`, `failed`, `timed_out`, `rejected`,
    /// `no_branch_matched`), or `running`.
    pub state: String,
    /// Its steps, in the order they started or were skipped.
    pub steps: Vec<StepEvidence>,
}

/// One approval decision (or refused attempt at one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalEvidence {
    /// The run.
    pub run_id: String,
    /// The approval step.
    pub step_id: String,
    /// `approved`, `rejected`, or `refused` (someone not allowed tried).
    pub decision: String,
    /// Who (`timeout` when the deadline decided).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The comment or the reason for a refusal.
    pub note: Option<String>,
}

/// One entry of an incident timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Audit index.
    pub audit_index: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// What (`opened`, `acknowledged`, `contained`, `step_finished`, `resolved`, ...).
    pub action: String,
    /// Who.
    pub actor: String,
    /// Details.
    pub fields: Value,
}

/// An incident's timeline and times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentTimeline {
    /// The incident.
    pub incident_id: String,
    /// First `opened`.
    pub opened_at: Option<DateTime<Utc>>,
    /// First `acknowledged`.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// First `contained`.
    pub contained_at: Option<DateTime<Utc>>,
    /// Last `resolved` or `closed`.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Minutes from opened to acknowledged.
    pub minutes_to_acknowledge: Option<i64>,
    /// Minutes from opened to contained.
    pub minutes_to_contain: Option<i64>,
    /// The last `disposition` field given.
    pub disposition: Option<String>,
    /// The most urgent priority of the alerts it was opened from or linked to.
    pub priority: Option<String>,
    /// Its state at the end of the timeline (`open`, `acknowledged`, `contained`,
    /// `resolved`).
    pub state: String,
    /// The alerts it was opened from or linked to.
    pub alert_ids: Vec<String>,
    /// Its playbook runs, each step with its result.
    pub runs: Vec<RunEvidence>,
    /// Approval decisions, with who and when; refused attempts too.
    pub approvals: Vec<ApprovalEvidence>,
    /// Every entry, oldest first.
    pub entries: Vec<TimelineEntry>,
}

/// Incident timelines for the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentsReport {
    /// Incidents with an entry in the period.
    pub incidents: Vec<IncidentTimeline>,
}

/// Counts and latency of one component against its objective.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSummary {
    /// Sink, channel or `enrichment`.
    pub component: String,
    /// Outcomes (events received by the sink, attempts on the channel, events enriched).
    pub total: u64,
    /// Delivered / sent / enriched.
    pub ok: u64,
    /// Dead-lettered / failed / enricher failures.
    pub failed: u64,
    /// The objective.
    pub objective_ms: u64,
    /// Successes within the objective (exact).
    pub within_objective: u64,
    /// Share of successes within the objective, percent.
    pub within_objective_pct: Option<f64>,
    /// Median, at most (12.5 % histogram buckets).
    pub p50_ms: Option<u64>,
    /// 95th percentile, at most.
    pub p95_ms: Option<u64>,
    /// 99th percentile, at most.
    pub p99_ms: Option<u64>,
    /// Maximum (exact).
    pub max_ms: Option<u64>,
    /// Mean (exact).
    pub mean_ms: Option<f64>,
}

/// Delivery against the objectives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    /// Events accepted per source.
    pub accepted: BTreeMap<String, u64>,
    /// Per SIEM: received, delivered, dead-lettered, forwarding latency vs 5 s.
    pub sinks: Vec<FlowSummary>,
    /// Per channel: alert latency vs 30 s.
    pub channels: Vec<FlowSummary>,
    /// Enrichment vs 10 s.
    pub enrichment: Option<FlowSummary>,
    /// Counters are kept per UTC hour: the period is widened to whole hours.
    pub resolution: &'static str,
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn get_i(row: &AnyRow, i: usize) -> i64 {
    row.try_get::<i64, _>(i).unwrap_or_default()
}

fn get_s(row: &AnyRow, i: usize) -> String {
    row.try_get::<String, _>(i).unwrap_or_default()
}

fn get_o(row: &AnyRow, i: usize) -> Option<String> {
    row.try_get::<Option<String>, _>(i).ok().flatten()
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Store {
    /// Computes the report for `params` at the current time.
    pub async fn report(
        &self,
        params: &ReportParams,
        checkpoint: Option<CheckpointRef>,
    ) -> Result<Report, Error> {
        self.report_at(params, checkpoint, Utc::now()).await
    }

    /// Computes the report as of `now` (clocks of open breaches are judged at
    /// `min(now, to)`).
    pub async fn report_at(
        &self,
        params: &ReportParams,
        checkpoint: Option<CheckpointRef>,
        now: DateTime<Utc>,
    ) -> Result<Report, Error> {
        let applied_through = self.applied_through().await?;
        let (from, to) = (params.from, params.to);
        let body = match params.kind {
            ReportKind::Gdpr => ReportBody::Gdpr(self.gdpr(from, to, now.min(to)).await?),
            ReportKind::Soc2 => ReportBody::Soc2(self.soc2(from, to).await?),
            ReportKind::Incidents => ReportBody::Incidents(IncidentsReport {
                incidents: self.incidents(from, to).await?,
            }),
            ReportKind::Delivery => ReportBody::Delivery(self.delivery(from, to).await?),
        };
        Ok(Report {
            kind: params.kind,
            from,
            to,
            generated_at: now,
            evidence: Evidence {
                backend: self.backend(),
                applied_through,
                checkpoint,
            },
            body,
        })
    }

    async fn gdpr(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        judged_at: DateTime<Utc>,
    ) -> Result<GdprReport, Error> {
        let mut report = GdprReport {
            breaches: Vec::new(),
            totals: GdprTotals::default(),
            weddings: BTreeMap::new(),
            subject_categories: BTreeMap::new(),
            record_categories: BTreeMap::new(),
        };
        for breach in self.breaches_between(from, to).await? {
            let clock = breach.clock(judged_at);
            let t = &mut report.totals;
            t.breaches += 1;
            match &clock {
                Clock::NotStarted => t.not_confirmed += 1,
                Clock::NotNotifiable { .. } => t.not_notifiable += 1,
                Clock::Running { .. } => t.running += 1,
                Clock::Overdue { .. } => t.overdue += 1,
                Clock::OnTime { .. } => t.notified_on_time += 1,
                Clock::Late { .. } => t.notified_late += 1,
            }
            if breach.high_risk == Some(true) {
                t.high_risk += 1;
            }
            t.subjects_approx += breach.subjects_approx.unwrap_or(0);
            t.records_approx += breach.records_approx.unwrap_or(0);
            if let Some(w) = &breach.wedding_id {
                *report.weddings.entry(w.clone()).or_default() += 1;
            }
            for c in &breach.subject_categories {
                *report.subject_categories.entry(c.clone()).or_default() += 1;
            }
            for c in &breach.record_categories {
                *report.record_categories.entry(c.clone()).or_default() += 1;
            }
            let history = self.breach_history(&breach.id).await?;
            report.breaches.push(GdprBreach {
                breach,
                clock,
                history,
            });
        }
        Ok(report)
    }

    async fn soc2(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Soc2Report, Error> {
        let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
        // Notifications answer after routing: look a day past the period's end.
        let rows = sqlx::query(
            "SELECT alert_id, at_ms, channel, result, detail, latency_ms FROM notifications
             WHERE at_ms >= $1 AND at_ms < $2 ORDER BY audit_index",
        )
        .bind(f)
        .bind(t + 86_400_000)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read notifications", &e))?;
        let mut notifications: HashMap<String, Vec<NotificationEntry>> = HashMap::new();
        let mut notification_results: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for r in &rows {
            let entry = NotificationEntry {
                at: from_ms(get_i(r, 1)),
                channel: get_s(r, 2),
                result: get_s(r, 3),
                detail: get_o(r, 4),
                latency_ms: u(get_i(r, 5)),
            };
            if entry.at < to {
                *notification_results
                    .entry(entry.channel.clone())
                    .or_default()
                    .entry(entry.result.clone())
                    .or_default() += 1;
            }
            notifications.entry(get_s(r, 0)).or_default().push(entry);
        }
        drop(rows);
        let rows = sqlx::query(
            "SELECT audit_index, at_ms, alert_id, event_id, priority, route, reasons, channels, suppressed, wedding_id
             FROM alerts WHERE at_ms >= $1 AND at_ms < $2 ORDER BY audit_index",
        )
        .bind(f)
        .bind(t)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read alerts", &e))?;
        let mut alerts = Vec::with_capacity(rows.len());
        let mut alerts_per_day: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut alerts_by_priority: BTreeMap<String, u64> = BTreeMap::new();
        for r in &rows {
            let at = from_ms(get_i(r, 1));
            let alert_id = get_s(r, 2);
            let priority = get_s(r, 4);
            let channels = list(&get_s(r, 7));
            let suppressed = get_o(r, 8);
            let sent = notifications.remove(&alert_id).unwrap_or_default();
            let disposition = disposition(&channels, suppressed.as_deref(), &sent);
            *alerts_per_day
                .entry(at.format("%Y-%m-%d").to_string())
                .or_default()
                .entry(priority.clone())
                .or_default() += 1;
            *alerts_by_priority.entry(priority.clone()).or_default() += 1;
            alerts.push(AlertEntry {
                audit_index: u(get_i(r, 0)),
                at,
                alert_id,
                event_id: get_s(r, 3),
                priority,
                route: get_s(r, 5),
                reasons: list(&get_s(r, 6)),
                channels,
                suppressed,
                wedding_id: get_o(r, 9),
                notifications: sent,
                incident_id: None,
                disposition,
            });
        }
        drop(rows);
        let rows = sqlx::query(
            "SELECT sink, CAST(COUNT(*) AS BIGINT) FROM dead_letters WHERE at_ms >= $1 AND at_ms < $2 GROUP BY sink",
        )
        .bind(f)
        .bind(t)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("count dead letters", &e))?;
        let dead_letters_by_sink = rows.iter().map(|r| (get_s(r, 0), u(get_i(r, 1)))).collect();
        let rows = sqlx::query(
            "SELECT at_ms, sink, event_id, reason FROM dead_letters WHERE at_ms >= $1 AND at_ms < $2
             ORDER BY audit_index, seq LIMIT $3",
        )
        .bind(f)
        .bind(t)
        .bind(DEAD_LETTERS_LISTED as i64)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read dead letters", &e))?;
        let dead_letters = rows
            .iter()
            .map(|r| DeadLetterEntry {
                at: from_ms(get_i(r, 0)),
                sink: get_s(r, 1),
                event_id: get_s(r, 2),
                reason: get_o(r, 3),
            })
            .collect();
        let rows = sqlx::query(
            "SELECT at_ms, sink, actor, event_count FROM replays WHERE at_ms >= $1 AND at_ms < $2 ORDER BY audit_index",
        )
        .bind(f)
        .bind(t)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read replays", &e))?;
        let replays = rows
            .iter()
            .map(|r| ReplayEntry {
                at: from_ms(get_i(r, 0)),
                sink: get_s(r, 1),
                actor: get_s(r, 2),
                events: u(get_i(r, 3)),
            })
            .collect();
        let rows = sqlx::query(
            "SELECT at_ms, actor, action, target, result FROM admin_actions WHERE at_ms >= $1 AND at_ms < $2 ORDER BY audit_index",
        )
        .bind(f)
        .bind(t)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read admin actions", &e))?;
        let admin_actions = rows
            .iter()
            .map(|r| AdminEntry {
                at: from_ms(get_i(r, 0)),
                actor: get_s(r, 1),
                action: get_s(r, 2),
                target: get_s(r, 3),
                result: get_s(r, 4),
            })
            .collect();
        let incidents = self.incidents(from, to).await?;
        let mut by_alert: HashMap<&str, &IncidentTimeline> = HashMap::new();
        for i in &incidents {
            for a in &i.alert_ids {
                by_alert.insert(a.as_str(), i);
            }
        }
        for a in &mut alerts {
            if let Some(i) = by_alert.get(a.alert_id.as_str()) {
                a.incident_id = Some(i.incident_id.clone());
                a.disposition = format!(
                    "{}; incident {} ({})",
                    a.disposition, i.incident_id, i.state
                );
            }
        }
        let response_times = response_times(&incidents);
        Ok(Soc2Report {
            alerts,
            alerts_per_day,
            alerts_by_priority,
            notification_results,
            dead_letters,
            dead_letters_by_sink,
            replays,
            admin_actions,
            incidents,
            response_times,
        })
    }

    /// Incident timelines with an entry in `[from, to)`.
    pub async fn incidents(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<IncidentTimeline>, Error> {
        let rows = sqlx::query(
            "SELECT audit_index, at_ms, incident_id, action, actor, fields FROM incident_events
             WHERE incident_id IN (SELECT incident_id FROM incident_events WHERE at_ms >= $1 AND at_ms < $2)
             ORDER BY audit_index",
        )
        .bind(from.timestamp_millis())
        .bind(to.timestamp_millis())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read incidents", &e))?;
        let mut by_id: BTreeMap<String, Vec<TimelineEntry>> = BTreeMap::new();
        for r in &rows {
            by_id.entry(get_s(r, 2)).or_default().push(TimelineEntry {
                audit_index: u(get_i(r, 0)),
                at: from_ms(get_i(r, 1)),
                action: get_s(r, 3),
                actor: get_s(r, 4),
                fields: serde_json::from_str(&get_s(r, 5)).unwrap_or(Value::Null),
            });
        }
        let mut out: Vec<IncidentTimeline> = by_id
            .into_iter()
            .map(|(incident_id, entries)| {
                let first =
                    |action: &str| entries.iter().find(|e| e.action == action).map(|e| e.at);
                let opened_at = first("opened");
                let acknowledged_at = first("acknowledged");
                let contained_at = first("contained");
                let resolved_at = entries
                    .iter()
                    .rev()
                    .find(|e| e.action == "resolved" || e.action == "closed")
                    .map(|e| e.at);
                let disposition = entries.iter().rev().find_map(|e| {
                    e.fields
                        .get("disposition")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                let minutes = |end: Option<DateTime<Utc>>| Some((end? - opened_at?).num_minutes());
                let evidence = response_evidence(&entries);
                IncidentTimeline {
                    priority: evidence.priority,
                    state: evidence.state,
                    alert_ids: evidence.alert_ids,
                    runs: evidence.runs,
                    approvals: evidence.approvals,
                    minutes_to_acknowledge: minutes(acknowledged_at),
                    minutes_to_contain: minutes(contained_at),
                    incident_id,
                    opened_at,
                    acknowledged_at,
                    contained_at,
                    resolved_at,
                    disposition,
                    entries,
                }
            })
            .collect();
        out.sort_by_key(|i| {
            (
                i.entries.first().map(|e| e.audit_index),
                i.incident_id.clone(),
            )
        });
        Ok(out)
    }

    async fn delivery(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<DeliveryReport, Error> {
        let hour = 3_600_000;
        let f = from.timestamp_millis().div_euclid(hour) * hour;
        let t = to.timestamp_millis();
        let rows = sqlx::query(
            "SELECT kind, component, CAST(SUM(total) AS BIGINT), CAST(SUM(ok) AS BIGINT),
                    CAST(SUM(failed) AS BIGINT), CAST(SUM(within_objective) AS BIGINT),
                    CAST(SUM(latency_sum_ms) AS BIGINT), CAST(MAX(latency_max_ms) AS BIGINT)
             FROM flow_counts WHERE hour_ms >= $1 AND hour_ms < $2
             GROUP BY kind, component ORDER BY kind, component",
        )
        .bind(f)
        .bind(t)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read flow counts", &e))?;
        let buckets = sqlx::query(
            "SELECT kind, component, bucket, CAST(SUM(n) AS BIGINT) FROM latency_buckets
             WHERE hour_ms >= $1 AND hour_ms < $2
             GROUP BY kind, component, bucket ORDER BY kind, component, bucket",
        )
        .bind(f)
        .bind(t)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err("read latency histograms", &e))?;
        let mut histograms: HashMap<(String, String), Vec<(i64, u64)>> = HashMap::new();
        for r in &buckets {
            histograms
                .entry((get_s(r, 0), get_s(r, 1)))
                .or_default()
                .push((get_i(r, 2), u(get_i(r, 3))));
        }
        let mut report = DeliveryReport {
            accepted: BTreeMap::new(),
            sinks: Vec::new(),
            channels: Vec::new(),
            enrichment: None,
            resolution: "counters are kept per UTC hour: the period starts at the whole hour",
        };
        for r in &rows {
            let kind = get_s(r, 0);
            let component = get_s(r, 1);
            let (total, ok, failed, within, sum, max) = (
                u(get_i(r, 2)),
                u(get_i(r, 3)),
                u(get_i(r, 4)),
                u(get_i(r, 5)),
                u(get_i(r, 6)),
                u(get_i(r, 7)),
            );
            let objective = match kind.as_str() {
                "accepted" => {
                    report.accepted.insert(component, total);
                    continue;
                }
                "delivery" => Objective::DELIVERY,
                "notification" => Objective::NOTIFICATION,
                "enrichment" => Objective::ENRICHMENT,
                _ => continue,
            };
            let hist = histograms
                .remove(&(kind.clone(), component.clone()))
                .unwrap_or_default();
            let summary = FlowSummary {
                component,
                total,
                ok,
                failed,
                objective_ms: objective.within_ms,
                within_objective: within,
                within_objective_pct: (ok > 0).then(|| within as f64 * 100.0 / ok as f64),
                p50_ms: percentile(&hist, 0.50),
                p95_ms: percentile(&hist, 0.95),
                p99_ms: percentile(&hist, 0.99),
                max_ms: (ok > 0).then_some(max),
                mean_ms: (ok > 0).then(|| sum as f64 / ok as f64),
            };
            match objective.kind {
                "delivery" => report.sinks.push(summary),
                "notification" => report.channels.push(summary),
                _ => report.enrichment = Some(summary),
            }
        }
        Ok(report)
    }
}

fn disposition(
    channels: &[String],
    suppressed: Option<&str>,
    sent: &[NotificationEntry],
) -> String {
    if let Some(why) = suppressed {
        return format!("suppressed: {why}");
    }
    if channels.is_empty() {
        return "recorded, no channel".into();
    }
    let delivered: Vec<&str> = channels
        .iter()
        .filter(|c| sent.iter().any(|n| &n.channel == *c && n.result == "sent"))
        .map(String::as_str)
        .collect();
    let failed: Vec<&str> = channels
        .iter()
        .filter(|c| !delivered.contains(&c.as_str()) && sent.iter().any(|n| &n.channel == *c))
        .map(String::as_str)
        .collect();
    let pending: Vec<&str> = channels
        .iter()
        .filter(|c| !sent.iter().any(|n| &n.channel == *c))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    if !delivered.is_empty() {
        parts.push(format!("notified via {}", delivered.join(", ")));
    }
    if !failed.is_empty() {
        parts.push(format!("failed on {}", failed.join(", ")));
    }
    if !pending.is_empty() {
        parts.push(format!("no result from {}", pending.join(", ")));
    }
    parts.join("; ")
}

// ----- rendering -----

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a Markdown table cell: no line breaks, no table or inline syntax, no
/// raw HTML.
pub fn escape_md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '!' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// What an incident's timeline says about its priority, state, alerts, runs and approvals.
struct IncidentFacts {
    priority: Option<String>,
    state: String,
    alert_ids: Vec<String>,
    runs: Vec<RunEvidence>,
    approvals: Vec<ApprovalEvidence>,
}

fn response_evidence(entries: &[TimelineEntry]) -> IncidentFacts {
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut priority: Option<String> = None;
    let mut state = "open".to_owned();
    let mut alert_ids: Vec<String> = Vec::new();
    let mut runs: Vec<RunEvidence> = Vec::new();
    let mut approvals = Vec::new();
    for e in entries {
        let f = &e.fields;
        match e.action.as_str() {
            "opened" | "alert_linked" => {
                if let Some(p) = str_of(f, "priority")
                    && priority.as_ref().is_none_or(|q| p < *q)
                {
                    priority = Some(p);
                }
                if let Some(a) = str_of(f, "alert_id")
                    && !alert_ids.contains(&a)
                {
                    alert_ids.push(a);
                }
            }
            "acknowledged" | "contained" | "resolved" => state = e.action.clone(),
            "run_started" => {
                if let Some(run_id) = str_of(f, "run_id")
                    && !runs.iter().any(|r| r.run_id == run_id)
                {
                    runs.push(RunEvidence {
                        run_id,
                        playbook: str_of(f, "playbook").unwrap_or_default(),
                        version: f.get("version").and_then(Value::as_u64),
                        dry_run: f.get("dry_run").and_then(Value::as_bool).unwrap_or(false),
                        started_at: e.at,
                        finished_at: None,
                        state: "running".into(),
                        steps: Vec::new(),
                    });
                }
            }
            "run_finished" => {
                if let Some(run) = runs.iter_mut().find(|r| {
                    Some(&r.run_id)
                        == f.get("run_id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .as_ref()
                }) {
                    run.finished_at = Some(e.at);
                    run.state = str_of(f, "state").unwrap_or_default();
                }
            }
            "step_started" | "step_finished" | "step_skipped" => {
                let (Some(run_id), Some(step_id)) = (str_of(f, "run_id"), str_of(f, "step_id"))
                else {
                    continue;
                };
                let Some(run) = runs.iter_mut().find(|r| r.run_id == run_id) else {
                    continue;
                };
                let idx = match run.steps.iter().position(|s| s.step_id == step_id) {
                    Some(i) => i,
                    None => {
                        run.steps.push(StepEvidence {
                            step_id: step_id.clone(),
                            kind: None,
                            status: "running".into(),
                            attempts: 0,
                            started_at: None,
                            finished_at: None,
                            output: Value::Null,
                            error: None,
                        });
                        run.steps.len() - 1
                    }
                };
                let step = &mut run.steps[idx];
                if e.action == "step_started" {
                    step.kind = str_of(f, "kind");
                    step.started_at = Some(e.at);
                    continue;
                }
                step.status = str_of(f, "status").unwrap_or_else(|| "skipped".into());
                step.attempts = f.get("attempts").and_then(Value::as_u64).unwrap_or(0);
                step.finished_at = Some(e.at);
                step.output = f.get("output").cloned().unwrap_or(Value::Null);
                step.error = str_of(f, "error");
                if let Some(approved) = step.output.get("approved").and_then(Value::as_bool) {
                    approvals.push(ApprovalEvidence {
                        run_id,
                        step_id,
                        decision: if approved { "approved" } else { "rejected" }.into(),
                        by: str_of(&step.output, "by").unwrap_or_else(|| e.actor.clone()),
                        at: step
                            .output
                            .get("at")
                            .and_then(|v| serde_json::from_value(v.clone()).ok())
                            .unwrap_or(e.at),
                        note: str_of(&step.output, "comment"),
                    });
                }
            }
            "approval_refused" => approvals.push(ApprovalEvidence {
                run_id: str_of(f, "run_id").unwrap_or_default(),
                step_id: str_of(f, "step_id").unwrap_or_default(),
                decision: "refused".into(),
                by: e.actor.clone(),
                at: e.at,
                note: str_of(f, "reason"),
            }),
            _ => {}
        }
    }
    IncidentFacts {
        priority,
        state,
        alert_ids,
        runs,
        approvals,
    }
}

fn response_times(incidents: &[IncidentTimeline]) -> Vec<ResponseTimes> {
    let mut by: BTreeMap<String, (u64, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for i in incidents {
        let slot = by
            .entry(i.priority.clone().unwrap_or_else(|| "-".into()))
            .or_default();
        slot.0 += 1;
        slot.1.extend(i.minutes_to_acknowledge);
        slot.2.extend(i.minutes_to_contain);
    }
    let median = |v: &mut Vec<i64>| {
        v.sort_unstable();
        v.get(v.len().checked_sub(1)? / 2).copied()
    };
    by.into_iter()
        .map(|(priority, (n, mut ack, mut contain))| ResponseTimes {
            priority,
            incidents: n,
            acknowledged: ack.len() as u64,
            median_minutes_to_acknowledge: median(&mut ack),
            max_minutes_to_acknowledge: ack.last().copied(),
            contained: contain.len() as u64,
            median_minutes_to_contain: median(&mut contain),
            max_minutes_to_contain: contain.last().copied(),
        })
        .collect()
}

fn t(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ot(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".into(), t)
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v} ms"))
}

fn clock_text(clock: &Clock) -> String {
    match clock {
        Clock::NotStarted => "not confirmed: clock not started".into(),
        Clock::NotNotifiable { reason } => format!("not notifiable: {reason}"),
        Clock::Running { minutes_left } => {
            format!(
                "running: {} h {} min left",
                minutes_left / 60,
                minutes_left % 60
            )
        }
        Clock::Overdue { minutes_over } => format!(
            "OVERDUE by {} h {} min, authority not notified",
            minutes_over / 60,
            minutes_over % 60
        ),
        Clock::OnTime { minutes_taken } => format!(
            "on time: notified after {} h {} min",
            minutes_taken / 60,
            minutes_taken % 60
        ),
        Clock::Late {
            minutes_over,
            reason,
        } => format!(
            "LATE by {} h {} min; reasons: {}",
            minutes_over / 60,
            minutes_over % 60,
            reason.as_deref().unwrap_or("none given")
        ),
    }
}

/// A table: header and rows of already-plain cells; escaped by the renderer.
struct Table {
    caption: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// A section: heading, paragraphs, tables, and (HTML only) chart SVG.
struct Section {
    heading: String,
    paragraphs: Vec<String>,
    charts: Vec<String>,
    tables: Vec<Table>,
}

impl Section {
    fn new(heading: impl Into<String>) -> Self {
        Self {
            heading: heading.into(),
            paragraphs: Vec::new(),
            charts: Vec::new(),
            tables: Vec::new(),
        }
    }
}

impl Report {
    /// Renders the report.
    pub fn render(&self, format: ReportFormat) -> Result<String, Error> {
        match format {
            ReportFormat::Json => serde_json::to_string_pretty(self)
                .map_err(|e| Error::encode(format!("encode the report: {e}"))),
            ReportFormat::Md => Ok(self.render_md()),
            ReportFormat::Html => Ok(self.render_html()),
        }
    }

    fn evidence_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "Computed from the {} report store, audit records 0 to {}.",
            match self.evidence.backend {
                Backend::Sqlite => "SQLite",
                Backend::Postgres => "PostgreSQL",
            },
            self.evidence
                .applied_through
                .map_or_else(|| "none".into(), |i| i.to_string())
        )];
        match &self.evidence.checkpoint {
            Some(c) => lines.push(format!(
                "Audit log checkpoint: origin {}, size {}, root {} (the signed note follows; verify it with the log's public key).",
                c.origin, c.size, c.root
            )),
            None => lines.push(
                "No signed audit checkpoint was available: these records are not yet covered by a checkpoint."
                    .into(),
            ),
        }
        lines
    }

    fn sections(&self, html: bool) -> Vec<Section> {
        match &self.body {
            ReportBody::Gdpr(r) => {
                gdpr_sections(r, self.from, self.generated_at.min(self.to), html)
            }
            ReportBody::Soc2(r) => soc2_sections(r, html),
            ReportBody::Incidents(r) => vec![incident_section(&r.incidents)],
            ReportBody::Delivery(r) => delivery_sections(r, html),
        }
    }

    fn render_md(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {}\n", self.kind.title());
        let _ = writeln!(
            out,
            "Period: {} to {} (end excluded). Generated {}.\n",
            t(self.from),
            t(self.to),
            t(self.generated_at)
        );
        let _ = writeln!(out, "## Evidence\n");
        for line in self.evidence_lines() {
            let _ = writeln!(out, "{}\n", escape_md(&line));
        }
        if let Some(c) = &self.evidence.checkpoint {
            let _ = writeln!(out, "```\n{}\n```\n", c.note.replace("```", "'''"));
        }
        for section in self.sections(false) {
            let _ = writeln!(out, "## {}\n", escape_md(&section.heading));
            for p in &section.paragraphs {
                let _ = writeln!(out, "{}\n", escape_md(p));
            }
            for table in &section.tables {
                if !table.caption.is_empty() {
                    let _ = writeln!(out, "### {}\n", escape_md(&table.caption));
                }
                if table.rows.is_empty() {
                    let _ = writeln!(out, "None.\n");
                    continue;
                }
                let _ = writeln!(out, "| {} |", table.header.join(" | "));
                let _ = writeln!(out, "|{}", " --- |".repeat(table.header.len()));
                for row in &table.rows {
                    let cells: Vec<String> = row.iter().map(|c| escape_md(c)).collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
        }
        out
    }

    fn render_html(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = format!("vowguard: {}", self.kind.title());
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<title>{}</title><style>{}</style></head><body>\n",
            escape_html(&title),
            CSS
        );
        let _ = writeln!(out, "<h1>{}</h1>", escape_html(&title));
        let _ = writeln!(
            out,
            "<p class=\"period\">Period: {} to {} (end excluded). Generated {}.</p>",
            escape_html(&t(self.from)),
            escape_html(&t(self.to)),
            escape_html(&t(self.generated_at))
        );
        let _ = writeln!(out, "<section class=\"evidence\"><h2>Evidence</h2>");
        for line in self.evidence_lines() {
            let _ = writeln!(out, "<p>{}</p>", escape_html(&line));
        }
        if let Some(c) = &self.evidence.checkpoint {
            let _ = writeln!(out, "<pre class=\"note\">{}</pre>", escape_html(&c.note));
        }
        let _ = writeln!(out, "</section>");
        for section in self.sections(true) {
            let _ = writeln!(out, "<section><h2>{}</h2>", escape_html(&section.heading));
            for p in &section.paragraphs {
                let _ = writeln!(out, "<p>{}</p>", escape_html(p));
            }
            for svg in &section.charts {
                // SVG from plotters: its text is XML-escaped by the backend.
                let _ = writeln!(out, "<figure class=\"chart\">{svg}</figure>");
            }
            for table in &section.tables {
                let _ = write!(out, "<table>");
                if !table.caption.is_empty() {
                    let _ = write!(out, "<caption>{}</caption>", escape_html(&table.caption));
                }
                let _ = write!(out, "<thead><tr>");
                for h in &table.header {
                    let _ = write!(out, "<th>{}</th>", escape_html(h));
                }
                let _ = writeln!(out, "</tr></thead><tbody>");
                if table.rows.is_empty() {
                    let _ = writeln!(
                        out,
                        "<tr><td colspan=\"{}\">None.</td></tr>",
                        table.header.len()
                    );
                }
                for row in &table.rows {
                    let _ = write!(out, "<tr>");
                    for cell in row {
                        let _ = write!(out, "<td>{}</td>", escape_html(cell));
                    }
                    let _ = writeln!(out, "</tr>");
                }
                let _ = writeln!(out, "</tbody></table>");
            }
            let _ = writeln!(out, "</section>");
        }
        let _ = writeln!(out, "</body></html>");
        out
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.6em;border-bottom:2px solid #1f77b4}h2{font-size:1.25em;margin-top:1.6em}\
table{border-collapse:collapse;width:100%;margin:1em 0;font-size:.85em}\
caption{text-align:left;font-weight:600;padding:.3em 0}\
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left;word-break:break-word}\
th{background:#f0f4f8}tr:nth-child(even) td{background:#fafafa}\
.evidence{background:#f6f8fa;border:1px solid #d0d7de;padding:.5em 1em}\
pre.note{white-space:pre-wrap;word-break:break-all;font-size:.8em}\
figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}\
@media print{body{max-width:none;margin:0;font-size:10pt}h2{page-break-after:avoid}\
tr,figure.chart{page-break-inside:avoid}th{background:#eee !important}\
a{color:inherit;text-decoration:none}}";

fn gdpr_sections(
    r: &GdprReport,
    from: DateTime<Utc>,
    judged_at: DateTime<Utc>,
    html: bool,
) -> Vec<Section> {
    let mut summary = Section::new("Summary");
    let tt = &r.totals;
    summary.paragraphs.push(format!(
        "{} breaches: {} notified within 72 hours, {} notified late, {} clock running, {} overdue, {} not notifiable, {} not yet confirmed. {} high risk (Art. 34). About {} data subjects and {} records concerned.",
        tt.breaches, tt.notified_on_time, tt.notified_late, tt.running, tt.overdue,
        tt.not_notifiable, tt.not_confirmed, tt.high_risk, tt.subjects_approx, tt.records_approx
    ));
    let counts = |caption: &str, header: &'static str, map: &BTreeMap<String, u64>| Table {
        caption: caption.into(),
        header: vec![header, "breaches"],
        rows: map
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect(),
    };
    summary
        .tables
        .push(counts("Affected weddings", "wedding", &r.weddings));
    summary.tables.push(counts(
        "Categories of data subjects",
        "category",
        &r.subject_categories,
    ));
    summary.tables.push(counts(
        "Categories of records",
        "category",
        &r.record_categories,
    ));
    if html && !r.breaches.is_empty() {
        let hours = |at: DateTime<Utc>| (at - from).num_seconds() as f64 / 3600.0;
        let bars: Vec<chart::TimelineBar> = r
            .breaches
            .iter()
            .map(|b| {
                let end = b
                    .breach
                    .notified_authority_at
                    .unwrap_or(judged_at)
                    .max(b.breach.detected_at);
                chart::TimelineBar {
                    label: b.breach.id.chars().take(13).collect(),
                    detected: hours(b.breach.detected_at).max(0.0),
                    confirmed: b.breach.confirmed_at.map(|c| hours(c).max(0.0)),
                    deadline: b.breach.deadline.map(|d| hours(d).max(0.0)),
                    end: hours(end).max(0.0),
                    late: matches!(b.clock, Clock::Late { .. } | Clock::Overdue { .. }),
                }
            })
            .collect();
        summary
            .charts
            .push(chart::breach_timelines(&bars, hours(judged_at)));
    }
    let mut register = Section::new("Register");
    register.tables.push(Table {
        caption: String::new(),
        header: vec![
            "breach",
            "status",
            "first signal",
            "confirmed",
            "deadline (72 h)",
            "authority notified",
            "clock",
            "wedding",
            "subjects",
            "records",
            "Art. 34",
        ],
        rows: r
            .breaches
            .iter()
            .map(|b| {
                let x = &b.breach;
                vec![
                    x.id.clone(),
                    x.status.as_str().into(),
                    t(x.detected_at),
                    ot(x.confirmed_at),
                    ot(x.deadline),
                    ot(x.notified_authority_at),
                    clock_text(&b.clock),
                    x.wedding_id.clone().unwrap_or_default(),
                    format!(
                        "{} ({})",
                        x.subjects_approx
                            .map_or_else(|| "?".into(), |n| n.to_string()),
                        x.subject_categories.join(", ")
                    ),
                    format!(
                        "{} ({})",
                        x.records_approx
                            .map_or_else(|| "?".into(), |n| n.to_string()),
                        x.record_categories.join(", ")
                    ),
                    match x.high_risk {
                        Some(true) => {
                            format!("high risk; subjects told {}", ot(x.notified_subjects_at))
                        }
                        Some(false) => "no high risk".into(),
                        None => "undecided".into(),
                    },
                ]
            })
            .collect(),
    });
    let mut sections = vec![summary, register];
    for b in &r.breaches {
        let x = &b.breach;
        let mut s = Section::new(format!("Breach {}", x.id));
        s.paragraphs.push(format!(
            "Nature: {}. Likely consequences: {}. Measures: {}. DPO/contact: {}.",
            x.nature.as_deref().unwrap_or("not yet known"),
            x.consequences.as_deref().unwrap_or("not yet known"),
            x.measures.as_deref().unwrap_or("not yet known"),
            x.dpo_contact.as_deref().unwrap_or("not given"),
        ));
        if let Some(sig) = &x.first_signal {
            s.paragraphs.push(format!("First signal: {sig}"));
        }
        s.tables.push(Table {
            caption: "Changes".into(),
            header: vec!["audit index", "when", "change", "who", "fields"],
            rows: b
                .history
                .iter()
                .map(|h| {
                    vec![
                        h.audit_index.to_string(),
                        t(h.at),
                        h.action.clone(),
                        h.actor.clone(),
                        h.fields.to_string(),
                    ]
                })
                .collect(),
        });
        sections.push(s);
    }
    sections
}

fn soc2_sections(r: &Soc2Report, html: bool) -> Vec<Section> {
    let mut overview = Section::new("CC7.3: events evaluated (alerts by priority)");
    overview.paragraphs.push(format!(
        "{} alerts; every alert below carries the severity applied, the routing decision with its reasons, the escalation executed and the notification results per channel.",
        r.alerts.len()
    ));
    if html {
        let days: Vec<(String, [u64; 5])> = r
            .alerts_per_day
            .iter()
            .map(|(day, counts)| {
                let mut c = [0u64; 5];
                for (i, p) in Priority::ALL.iter().enumerate() {
                    c[i] = counts.get(p.as_str()).copied().unwrap_or(0);
                }
                (day.clone(), c)
            })
            .collect();
        overview.charts.push(chart::alerts_per_day(&days));
        let legend: Vec<String> = Priority::ALL
            .iter()
            .zip(chart::PRIORITY_COLOURS)
            .map(|(p, c)| format!("{} = #{:02x}{:02x}{:02x}", p.as_str(), c.0, c.1, c.2))
            .collect();
        overview
            .paragraphs
            .push(format!("Colours: {}.", legend.join(", ")));
    }
    overview.tables.push(Table {
        caption: "Alerts per priority".into(),
        header: vec!["priority", "alerts"],
        rows: r
            .alerts_by_priority
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect(),
    });
    let mut alerts = Section::new("CC7.4: response to each alert");
    alerts.tables.push(Table {
        caption: String::new(),
        header: vec![
            "routed at",
            "alert",
            "event",
            "priority",
            "route",
            "reasons",
            "escalated to",
            "notifications",
            "disposition",
        ],
        rows: r
            .alerts
            .iter()
            .map(|a| {
                vec![
                    t(a.at),
                    a.alert_id.clone(),
                    a.event_id.clone(),
                    a.priority.clone(),
                    a.route.clone(),
                    a.reasons.join("; "),
                    a.channels.join(", "),
                    a.notifications
                        .iter()
                        .map(|n| format!("{} {} ({} ms)", n.channel, n.result, n.latency_ms))
                        .collect::<Vec<_>>()
                        .join("; "),
                    a.disposition.clone(),
                ]
            })
            .collect(),
    });
    alerts.tables.push(Table {
        caption: "Notification results per channel".into(),
        header: vec!["channel", "results"],
        rows: r
            .notification_results
            .iter()
            .map(|(c, m)| {
                vec![
                    c.clone(),
                    m.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect(),
    });
    let mut dl = Section::new("Dead letters and replays");
    dl.tables.push(Table {
        caption: "Dead letters per sink".into(),
        header: vec!["sink", "dead letters"],
        rows: r
            .dead_letters_by_sink
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect(),
    });
    let total: u64 = r.dead_letters_by_sink.values().sum();
    dl.tables.push(Table {
        caption: if total as usize > r.dead_letters.len() {
            format!("Dead letters (first {} of {total})", r.dead_letters.len())
        } else {
            "Dead letters".into()
        },
        header: vec!["when", "sink", "event", "reason"],
        rows: r
            .dead_letters
            .iter()
            .map(|d| {
                vec![
                    t(d.at),
                    d.sink.clone(),
                    d.event_id.clone(),
                    d.reason.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    });
    dl.tables.push(Table {
        caption: "Replays".into(),
        header: vec!["when", "sink", "who", "events"],
        rows: r
            .replays
            .iter()
            .map(|x| {
                vec![
                    t(x.at),
                    x.sink.clone(),
                    x.actor.clone(),
                    x.events.to_string(),
                ]
            })
            .collect(),
    });
    let mut admin = Section::new("Administrative actions");
    admin.tables.push(Table {
        caption: String::new(),
        header: vec!["when", "who", "action", "target", "result"],
        rows: r
            .admin_actions
            .iter()
            .map(|a| {
                vec![
                    t(a.at),
                    a.actor.clone(),
                    a.action.clone(),
                    a.target.clone(),
                    a.result.clone(),
                ]
            })
            .collect(),
    });
    let mut incidents = incident_section(&r.incidents);
    incidents.heading = "CC7.4-CC7.5: incidents, containment and recovery".into();
    incidents
        .tables
        .insert(1, response_times_table(&r.response_times));
    vec![overview, alerts, dl, incidents, admin]
}

fn incident_section(incidents: &[IncidentTimeline]) -> Section {
    let mut s = Section::new("Incidents");
    if incidents.is_empty() {
        s.paragraphs.push(
            "No incident was recorded in the period (incidents and playbooks are recorded once automated response is configured)."
                .into(),
        );
    }
    let mins = |m: Option<i64>| m.map_or_else(|| "-".into(), |m| format!("{m} min"));
    s.tables.push(Table {
        caption: String::new(),
        header: vec![
            "incident",
            "opened",
            "acknowledged",
            "time to acknowledge",
            "contained",
            "time to contain",
            "resolved",
            "disposition",
        ],
        rows: incidents
            .iter()
            .map(|i| {
                vec![
                    i.incident_id.clone(),
                    ot(i.opened_at),
                    ot(i.acknowledged_at),
                    mins(i.minutes_to_acknowledge),
                    ot(i.contained_at),
                    mins(i.minutes_to_contain),
                    ot(i.resolved_at),
                    i.disposition.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    });
    s.tables.push(Table {
        caption: "Timelines".into(),
        header: vec!["incident", "audit index", "when", "step", "who", "details"],
        rows: incidents
            .iter()
            .flat_map(|i| {
                i.entries.iter().map(|e| {
                    vec![
                        i.incident_id.clone(),
                        e.audit_index.to_string(),
                        t(e.at),
                        e.action.clone(),
                        e.actor.clone(),
                        e.fields.to_string(),
                    ]
                })
            })
            .collect(),
    });
    s.tables.push(Table {
        caption: "Playbook runs, each step with its result".into(),
        header: vec![
            "incident",
            "run",
            "playbook",
            "run state",
            "step",
            "kind",
            "status",
            "attempts",
            "started",
            "finished",
            "error",
        ],
        rows: incidents
            .iter()
            .flat_map(|i| {
                i.runs.iter().flat_map(move |r| {
                    r.steps.iter().map(move |st| {
                        vec![
                            i.incident_id.clone(),
                            r.run_id.clone(),
                            format!(
                                "{} v{}{}",
                                r.playbook,
                                r.version.unwrap_or_default(),
                                if r.dry_run { " (dry run)" } else { "" }
                            ),
                            r.state.clone(),
                            st.step_id.clone(),
                            st.kind.clone().unwrap_or_default(),
                            st.status.clone(),
                            st.attempts.to_string(),
                            ot(st.started_at),
                            ot(st.finished_at),
                            st.error.clone().unwrap_or_default(),
                        ]
                    })
                })
            })
            .collect(),
    });
    s.tables.push(Table {
        caption: "Approvals: who decided, and when".into(),
        header: vec!["incident", "run", "step", "decision", "who", "when", "note"],
        rows: incidents
            .iter()
            .flat_map(|i| {
                i.approvals.iter().map(move |a| {
                    vec![
                        i.incident_id.clone(),
                        a.run_id.clone(),
                        a.step_id.clone(),
                        a.decision.clone(),
                        a.by.clone(),
                        t(a.at),
                        a.note.clone().unwrap_or_default(),
                    ]
                })
            })
            .collect(),
    });
    s
}

fn response_times_table(rows: &[ResponseTimes]) -> Table {
    let mins = |m: Option<i64>| m.map_or_else(|| "-".into(), |m| format!("{m} min"));
    Table {
        caption: "Time to acknowledge and to contain per priority".into(),
        header: vec![
            "priority",
            "incidents",
            "acknowledged",
            "median to acknowledge",
            "longest to acknowledge",
            "contained",
            "median to contain",
            "longest to contain",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.priority.clone(),
                    r.incidents.to_string(),
                    r.acknowledged.to_string(),
                    mins(r.median_minutes_to_acknowledge),
                    mins(r.max_minutes_to_acknowledge),
                    r.contained.to_string(),
                    mins(r.median_minutes_to_contain),
                    mins(r.max_minutes_to_contain),
                ]
            })
            .collect(),
    }
}

fn flow_table(caption: &str, header0: &'static str, rows: &[FlowSummary]) -> Table {
    Table {
        caption: caption.into(),
        header: vec![
            header0,
            "received",
            "succeeded",
            "failed",
            "objective",
            "within objective",
            "p50",
            "p95",
            "p99",
            "max",
        ],
        rows: rows
            .iter()
            .map(|s| {
                vec![
                    s.component.clone(),
                    s.total.to_string(),
                    s.ok.to_string(),
                    s.failed.to_string(),
                    format!("{} ms", s.objective_ms),
                    s.within_objective_pct.map_or_else(
                        || "-".into(),
                        |p| format!("{} ({p:.2} %)", s.within_objective),
                    ),
                    opt_ms(s.p50_ms),
                    opt_ms(s.p95_ms),
                    opt_ms(s.p99_ms),
                    opt_ms(s.max_ms),
                ]
            })
            .collect(),
    }
}

fn delivery_sections(r: &DeliveryReport, html: bool) -> Vec<Section> {
    let mut intake = Section::new("Events accepted");
    intake.paragraphs.push(r.resolution.to_owned());
    intake.tables.push(Table {
        caption: String::new(),
        header: vec!["source", "events"],
        rows: r
            .accepted
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect(),
    });
    let chart_of = |title: &str, rows: &[FlowSummary], objective: u64| {
        let items: Vec<(String, u64, u64, u64)> = rows
            .iter()
            .map(|s| {
                (
                    s.component.clone(),
                    s.p50_ms.unwrap_or(0),
                    s.p95_ms.unwrap_or(0),
                    s.p99_ms.unwrap_or(0),
                )
            })
            .collect();
        chart::latency_percentiles(title, &items, objective)
    };
    let mut sinks = Section::new("SIEM forwarding (objective: 5 s)");
    sinks.paragraphs.push(
        "Percentiles are upper bounds of 12.5 % histogram buckets; counts within the objective, the mean and the maximum are exact.".into(),
    );
    if html {
        sinks.charts.push(chart_of(
            "Forwarding latency per SIEM",
            &r.sinks,
            Objective::DELIVERY.within_ms,
        ));
    }
    sinks.tables.push(flow_table("", "sink", &r.sinks));
    let mut channels = Section::new("Alert notification (objective: 30 s)");
    if html {
        channels.charts.push(chart_of(
            "Alert latency per channel",
            &r.channels,
            Objective::NOTIFICATION.within_ms,
        ));
    }
    channels.tables.push(flow_table("", "channel", &r.channels));
    let mut enrichment = Section::new("Enrichment (objective: 10 s)");
    let rows: Vec<FlowSummary> = r.enrichment.iter().cloned().collect();
    if html && !rows.is_empty() {
        enrichment.charts.push(chart_of(
            "Enrichment time",
            &rows,
            Objective::ENRICHMENT.within_ms,
        ));
    }
    enrichment.tables.push(flow_table("", "stage", &rows));
    vec![intake, sinks, channels, enrichment]
}

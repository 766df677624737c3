//! Priority classification and the wedding-day protocols.
//!
//! [`Classifier::classify`] computes, in this order (every step adds a human reason):
//!
//! 1. the base priority from the event severity (`[classification.severity]`);
//! 2. one raise (by `raise_levels`) when any signal holds: `risk_score ≥ risk_raise_at`,
//!    threat score `≥ threat_raise_at` or verdict `malicious`, an attack pattern with
//!    confidence `≥ pattern_confidence_at`, or an open vulnerability on the target matched
//!    with confidence `≥ vulnerability_confidence_at` (at least `vulnerability_min_severity`,
//!    or a CVE the event names);
//! 3. the [`WeddingImpact`] and the impact floors (e.g. payment data exposed → at least P1);
//! 4. the protocols: Saturday escalation (raise), active wedding protection (P0 + actions),
//!    guest data breach (P0 + legal + breach record).

use std::time::Duration;

use chrono::Datelike;
use chrono_tz::Tz;
use serde::Serialize;
use vowguard_core::{
    Category, Error, Event, Outcome, Priority, Severity, Verdict, VulnerabilityMatch,
    WeddingImpact, WeddingPhase,
};

use crate::config::{ClassificationConfig, ProtocolsConfig};
use crate::interval::{parse_tz, parse_weekdays};
use crate::matcher::phase_str;

/// Name of the Saturday escalation protocol.
pub const SATURDAY_ESCALATION: &str = "saturday_escalation";
/// Name of the active wedding protection protocol.
pub const ACTIVE_WEDDING_PROTECTION: &str = "active_wedding_protection";
/// Name of the guest data breach protocol.
pub const GUEST_DATA_BREACH: &str = "guest_data_breach";

/// The outcome of classifying one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The final priority.
    pub priority: Priority,
    /// Why, one human sentence per step.
    pub reasons: Vec<String>,
    /// What the event means for weddings.
    pub impact: WeddingImpact,
    /// The protocols the event triggered.
    pub protocols: Vec<ProtocolHit>,
}

impl Classification {
    /// The names of the protocols hit.
    pub fn protocol_names(&self) -> Vec<String> {
        self.protocols
            .iter()
            .map(|p| p.protocol.to_owned())
            .collect()
    }

    /// The tightest delivery deadline any protocol asked for.
    pub fn deliver_within(&self) -> Option<Duration> {
        self.protocols.iter().filter_map(|p| p.deliver_within).min()
    }
}

/// One wedding-day protocol that an event triggered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtocolHit {
    /// The protocol ([`SATURDAY_ESCALATION`], [`ACTIVE_WEDDING_PROTECTION`],
    /// [`GUEST_DATA_BREACH`]).
    pub protocol: &'static str,
    /// Why it applied.
    pub reason: String,
    /// Extra notifier ids the alert must reach (before filtering to configured ones).
    pub notify: Vec<String>,
    /// Automatic actions to request from the host.
    pub actions: Vec<String>,
    /// The alert must be delivered within this (caps grouping waits).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub deliver_within: Option<Duration>,
    /// A breach record must be opened with this notification deadline.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub breach_deadline: Option<Duration>,
}

mod opt_secs {
    use std::time::Duration;

    use serde::Serializer;

    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

/// Computes priorities, wedding impact and protocol hits.
#[derive(Debug, Clone)]
pub struct Classifier {
    config: ClassificationConfig,
    protocols: ProtocolsConfig,
    saturday_tz: Tz,
    saturday_days: [bool; 7],
}

impl Default for Classifier {
    /// Severity only, no protocols (the first cut).
    fn default() -> Self {
        Self::from_config(
            ClassificationConfig::severity_only(),
            ProtocolsConfig::disabled(),
        )
        .expect("the built-in configuration is valid")
    }
}

impl Classifier {
    /// Validates and compiles the configuration (time zone, days, thresholds).
    pub fn from_config(
        config: ClassificationConfig,
        protocols: ProtocolsConfig,
    ) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&config.pattern_confidence_at) {
            return Err(Error::config(
                "`classification.pattern_confidence_at`: must be between 0.0 and 1.0",
            ));
        }
        let s = &protocols.saturday_escalation;
        let saturday_tz = parse_tz(&s.timezone)
            .map_err(|e| Error::config(format!("`protocols.saturday_escalation.timezone`: {e}")))?;
        let saturday_days = parse_weekdays(&s.days)
            .map_err(|e| Error::config(format!("`protocols.saturday_escalation.days`: {e}")))?;
        if s.enabled && s.days.is_empty() {
            return Err(Error::config(
                "`protocols.saturday_escalation.days`: names no day (set enabled = false to switch it off)",
            ));
        }
        Ok(Self {
            config,
            protocols,
            saturday_tz,
            saturday_days,
        })
    }

    /// Classifies `event`.
    pub fn classify(&self, event: &Event) -> Classification {
        let c = &self.config;
        let mut reasons = Vec::new();
        let base = c.severity.get(event.severity);
        reasons.push(format!("severity {} → {base}", event.severity));
        let mut priority = base;

        if c.raise_levels > 0 {
            let signals = self.signals(event);
            if !signals.is_empty() {
                let raised = priority.raised(c.raise_levels);
                if raised == priority {
                    reasons.push(format!("{}; already {priority}", signals.join("; ")));
                } else {
                    reasons.push(format!(
                        "{}: raised {priority} → {raised}",
                        signals.join("; ")
                    ));
                }
                priority = raised;
            }
        }
        // A match too weak to raise is still worth a line in the alert.
        if let Some(top) = event.enrichment.vulnerabilities.first()
            && (c.raise_levels == 0 || self.vulnerability_signal(event).is_none())
        {
            reasons.push(format!(
                "{} (match confidence {:.2}, not raised)",
                crate::vuln_text::describe(top),
                top.confidence
            ));
        }

        let impact = self.impact(event);
        let f = &c.impact_floors;
        let floors = [
            (
                // Context, not an incident: only for events at least `impact_min_severity`.
                impact.active_weddings_affected > 0 && event.severity >= c.impact_min_severity,
                f.active_wedding,
                "a wedding is happening today",
            ),
            (
                impact.payment_data_exposed,
                f.payment_data,
                "payment data may be exposed",
            ),
            (
                impact.vendor_accounts_compromised > 0,
                f.vendor_compromise,
                "a vendor account may be compromised",
            ),
            (
                impact.guest_lists_accessed > 0,
                f.guest_lists,
                "guest lists were accessed",
            ),
            (
                impact.couples_data_at_risk,
                f.couples_data,
                "couples' data is at risk",
            ),
            (
                impact.wedding_photos_at_risk,
                f.wedding_photos,
                "wedding photos are at risk",
            ),
        ];
        for (holds, floor, why) in floors {
            if holds && floor < priority {
                reasons.push(format!(
                    "Wedding impact: {why}, so at least {floor} (was {priority})"
                ));
                priority = floor;
            }
        }

        let mut protocols = Vec::new();
        self.saturday(event, &mut priority, &mut reasons, &mut protocols);
        self.active_wedding(event, &impact, &mut priority, &mut reasons, &mut protocols);
        self.guest_breach(event, &mut priority, &mut reasons, &mut protocols);

        Classification {
            priority,
            reasons,
            impact,
            protocols,
        }
    }

    /// The first vulnerability match confident enough to raise the priority.
    fn vulnerability_signal<'e>(&self, event: &'e Event) -> Option<&'e VulnerabilityMatch> {
        let c = &self.config;
        event.enrichment.vulnerabilities.iter().find(|v| {
            v.confidence >= c.vulnerability_confidence_at
                && (v.cve_named || v.severity >= c.vulnerability_min_severity)
        })
    }

    fn signals(&self, event: &Event) -> Vec<String> {
        let c = &self.config;
        let mut out = Vec::new();
        if let Some(risk) = event.risk_score.filter(|r| *r >= c.risk_raise_at) {
            out.push(format!("risk score {risk} ≥ {}", c.risk_raise_at));
        }
        if let Some(t) = &event.enrichment.threat {
            if t.score >= c.threat_raise_at {
                out.push(format!("threat score {} ≥ {}", t.score, c.threat_raise_at));
            } else if c.raise_on_malicious && t.verdict == Verdict::Malicious {
                out.push("threat intelligence verdict malicious".to_owned());
            }
        }
        if let Some(p) = event
            .enrichment
            .patterns
            .iter()
            .filter(|p| p.confidence >= c.pattern_confidence_at)
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        {
            out.push(format!(
                "attack pattern {} (confidence {:.2})",
                p.pattern, p.confidence
            ));
        }
        if let Some(v) = self.vulnerability_signal(event) {
            out.push(format!(
                "{} (match confidence {:.2})",
                crate::vuln_text::describe(v),
                v.confidence
            ));
        }
        out
    }

    fn is_guest_resource(&self, event: &Event) -> bool {
        let c = &self.config;
        event
            .resource_type
            .as_deref()
            .is_some_and(|r| c.guest_resource_types.iter().any(|g| g == r))
            || event.action.starts_with("guest_list.")
            || event.action.starts_with("guest_contacts.")
            || event.action.starts_with("guests.")
    }

    fn is_vendor_user(&self, event: &Event) -> bool {
        event.user_id.as_deref().is_some_and(|u| {
            self.config
                .vendor_user_prefixes
                .iter()
                .any(|p| u.starts_with(p.as_str()))
        }) || event
            .labels
            .get("account_type")
            .is_some_and(|t| t == "vendor")
    }

    /// The wedding impact of `event` (rules in the crate README).
    pub fn impact(&self, event: &Event) -> WeddingImpact {
        let c = &self.config;
        let succeeded = event.outcome != Outcome::Failure;
        let resource = event.resource_type.as_deref().unwrap_or("");
        let mut impact = WeddingImpact::default();

        if event
            .enrichment
            .wedding
            .as_ref()
            .is_some_and(|w| w.phase == WeddingPhase::DayOf)
        {
            impact.active_weddings_affected = 1;
        }
        if succeeded && self.is_guest_resource(event) {
            impact.guest_lists_accessed = event
                .attributes
                .get("guest_list_count")
                .and_then(serde_json::Value::as_u64)
                .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
        }
        if event.category == Category::AccountChange && self.is_vendor_user(event) {
            let suspicious = event.outcome == Outcome::Failure
                || event.risk_score.is_some_and(|r| r >= c.risk_raise_at)
                || event
                    .enrichment
                    .threat
                    .as_ref()
                    .is_some_and(|t| t.verdict >= Verdict::Suspicious)
                || !event.enrichment.patterns.is_empty()
                || event.labels.get("suspicious").is_some_and(|v| v == "true");
            if suspicious {
                impact.vendor_accounts_compromised = 1;
            }
        }
        let reads = ["export", "access", "read", "view", "download", "query"];
        let action_reads = reads.iter().any(|r| event.action.contains(r));
        let data_move = matches!(event.category, Category::DataExport | Category::DataAccess);
        if succeeded
            && (event.category == Category::Payment && (action_reads || data_move)
                || data_move && resource.starts_with("payment"))
        {
            impact.payment_data_exposed = true;
        }
        let couple = c.couple_resource_types.iter().any(|r| r == resource)
            || event.action.starts_with("couple.");
        if succeeded && couple && (data_move || event.category == Category::AccountChange) {
            impact.couples_data_at_risk = true;
        }
        let photo = c.photo_resource_types.iter().any(|r| r == resource)
            || ["photo.", "photos.", "portfolio.", "gallery."]
                .iter()
                .any(|p| event.action.starts_with(p));
        if succeeded && photo && event.category != Category::Authentication {
            impact.wedding_photos_at_risk = true;
        }
        impact
    }

    fn saturday(
        &self,
        event: &Event,
        priority: &mut Priority,
        reasons: &mut Vec<String>,
        hits: &mut Vec<ProtocolHit>,
    ) {
        let s = &self.protocols.saturday_escalation;
        if !s.enabled {
            return;
        }
        let local = event.timestamp.with_timezone(&self.saturday_tz);
        let day = local.weekday();
        if !self.saturday_days[day.num_days_from_monday() as usize] {
            return;
        }
        let day_name = weekday_name(day);
        let raised = priority.raised(s.raise_levels);
        let reason = if raised == *priority {
            format!(
                "Saturday escalation: already {priority} ({day_name} in {})",
                s.timezone
            )
        } else {
            format!(
                "Saturday escalation: raised {priority} → {raised} ({day_name} in {})",
                s.timezone
            )
        };
        *priority = raised;
        reasons.push(reason.clone());
        let notify = if raised <= s.notify_min_priority {
            s.notify.clone()
        } else {
            Vec::new()
        };
        hits.push(ProtocolHit {
            protocol: SATURDAY_ESCALATION,
            reason,
            notify,
            actions: Vec::new(),
            deliver_within: Some(s.deliver_within.0),
            breach_deadline: None,
        });
    }

    fn active_wedding(
        &self,
        event: &Event,
        impact: &WeddingImpact,
        priority: &mut Priority,
        reasons: &mut Vec<String>,
        hits: &mut Vec<ProtocolHit>,
    ) {
        let p = &self.protocols.active_wedding_protection;
        if !p.enabled {
            return;
        }
        let Some(wedding) = &event.enrichment.wedding else {
            return;
        };
        let why = if p.phases.contains(&wedding.phase) && event.severity >= p.min_severity {
            format!(
                "wedding {} is in phase {}",
                wedding.wedding_id,
                phase_str(wedding.phase)
            )
        } else if impact.vendor_accounts_compromised > 0
            && p.vendor_compromise_phases.contains(&wedding.phase)
        {
            format!(
                "vendor account {} may be compromised while wedding {} is in phase {}",
                event.user_id.as_deref().unwrap_or("?"),
                wedding.wedding_id,
                phase_str(wedding.phase)
            )
        } else {
            return;
        };
        let reason = format!(
            "Active wedding protection: {why}, so {}",
            raise_to_p0(*priority)
        );
        *priority = Priority::P0Critical;
        reasons.push(reason.clone());
        hits.push(ProtocolHit {
            protocol: ACTIVE_WEDDING_PROTECTION,
            reason,
            notify: p.notify.clone(),
            actions: p.actions.clone(),
            deliver_within: Some(p.deliver_within.0),
            breach_deadline: None,
        });
    }

    fn guest_breach(
        &self,
        event: &Event,
        priority: &mut Priority,
        reasons: &mut Vec<String>,
        hits: &mut Vec<ProtocolHit>,
    ) {
        let p = &self.protocols.guest_data_breach;
        if !p.enabled || !self.is_guest_resource(event) {
            return;
        }
        let flag = |key: &str, value: &str| {
            event.labels.get(key).is_some_and(|v| v == value)
                || event.attributes.get(key).is_some_and(|v| {
                    v.as_str() == Some(value)
                        || v.as_bool().map(|b| b.to_string()).as_deref() == Some(value)
                })
        };
        let unauthorised = (event.category == Category::Authorization
            && event.outcome == Outcome::Failure)
            || flag("unauthorized", "true")
            || flag("unauthorised", "true")
            || flag("authorized", "false")
            || flag("authorised", "false");
        let why = if unauthorised {
            "unauthorised guest-list access".to_owned()
        } else if event.outcome != Outcome::Failure && p.export_actions.contains(&event.action) {
            format!("guest contact export ({})", event.action)
        } else if let Some(n) = event.record_count.filter(|n| *n >= p.mass_query_records) {
            format!(
                "mass guest data query ({n} records ≥ {})",
                p.mass_query_records
            )
        } else {
            return;
        };
        // What the notification will be is the router's to say (it knows which notifiers
        // exist and whether the alert is inhibited): the reason states only the facts.
        let reason = format!(
            "Guest data breach: {why}, so {}; GDPR {}h notification deadline",
            raise_to_p0(*priority),
            p.deadline.0.as_secs() / 3600
        );
        *priority = Priority::P0Critical;
        reasons.push(reason.clone());
        hits.push(ProtocolHit {
            protocol: GUEST_DATA_BREACH,
            reason,
            notify: p.notify.clone(),
            actions: Vec::new(),
            deliver_within: Some(p.deliver_within.0),
            breach_deadline: Some(p.deadline.0),
        });
    }
}

/// The step to P0: `raised P1_HIGH → P0_CRITICAL`, or `already P0_CRITICAL` when it
/// changes nothing (a no-op step is never reported as a change).
fn raise_to_p0(priority: Priority) -> String {
    if priority == Priority::P0Critical {
        format!("already {priority}")
    } else {
        format!("raised {priority} → {}", Priority::P0Critical)
    }
}

fn weekday_name(day: chrono::Weekday) -> &'static str {
    use chrono::Weekday as W;
    match day {
        W::Mon => "Monday",
        W::Tue => "Tuesday",
        W::Wed => "Wednesday",
        W::Thu => "Thursday",
        W::Fri => "Friday",
        W::Sat => "Saturday",
        W::Sun => "Sunday",
    }
}

/// The severity a priority corresponds to by default (the inverse of the default map).
pub fn default_severity(priority: Priority) -> Severity {
    match priority {
        Priority::P0Critical => Severity::Critical,
        Priority::P1High => Severity::High,
        Priority::P2Medium => Severity::Medium,
        Priority::P3Low => Severity::Low,
        Priority::P4Info => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, Utc};
    use vowguard_core::{PatternMatch, Season, ThreatIntel, WeddingContext};

    fn classifier() -> Classifier {
        Classifier::from_config(ClassificationConfig::default(), ProtocolsConfig::default())
            .unwrap()
    }

    /// A Wednesday, so Saturday escalation stays out of the way.
    const WEDNESDAY: &str = "2026-06-17T12:00:00Z";
    const SATURDAY: &str = "2026-06-20T12:00:00Z";

    fn event(category: Category, action: &str, severity: Severity, at: &str) -> Event {
        let mut e = Event::new(category, action, severity);
        e.timestamp = DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc);
        e
    }

    fn wedding(phase: WeddingPhase) -> WeddingContext {
        WeddingContext {
            wedding_id: "w-1".into(),
            date: NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
            timezone: "Europe/London".into(),
            phase,
            days_until: 0,
            weekend: true,
            season: Season::Summer,
            guest_count: Some(120),
            vendor_count: Some(8),
        }
    }

    #[test]
    fn base_priority_follows_severity_and_is_configurable() {
        let c = classifier();
        for (sev, p) in [
            (Severity::Critical, Priority::P0Critical),
            (Severity::High, Priority::P1High),
            (Severity::Medium, Priority::P2Medium),
            (Severity::Low, Priority::P3Low),
            (Severity::Info, Priority::P4Info),
        ] {
            let got = c.classify(&event(Category::Network, "scan", sev, WEDNESDAY));
            assert_eq!(got.priority, p);
            assert_eq!(got.reasons, [format!("severity {sev} → {p}")]);
        }
        let mut cfg = ClassificationConfig::default();
        cfg.severity.low = Priority::P4Info;
        let c = Classifier::from_config(cfg, ProtocolsConfig::disabled()).unwrap();
        assert_eq!(
            c.classify(&event(Category::Network, "scan", Severity::Low, WEDNESDAY))
                .priority,
            Priority::P4Info
        );
    }

    #[test]
    fn a_confident_vulnerability_match_raises_one_level_a_weak_one_is_only_mentioned() {
        let c = classifier();
        let mut e = event(Category::Network, "ids.alert", Severity::Medium, WEDNESDAY);
        let m = VulnerabilityMatch {
            scanner: "tio".into(),
            plugin_id: "190000".into(),
            title: None,
            cves: vec!["CVE-2024-3400".into()],
            cvss: Some(9.8),
            severity: Severity::Critical,
            asset: "10.0.0.5".into(),
            port: 443,
            protocol: "tcp".into(),
            first_seen: None,
            confidence: 0.9,
            cve_named: false,
        };
        e.enrichment.vulnerabilities.push(m.clone());
        let got = c.classify(&e);
        assert_eq!(got.priority, Priority::P1High);
        assert_eq!(
            got.reasons[1],
            "target has CVE-2024-3400 (CVSS 9.8) open on 443/tcp (match confidence 0.90): raised P2_MEDIUM → P1_HIGH"
        );
        // Host-level (0.6): mentioned, not raised.
        e.enrichment.vulnerabilities[0].confidence = 0.6;
        let got = c.classify(&e);
        assert_eq!(got.priority, Priority::P2Medium);
        assert!(
            got.reasons[1].ends_with("(match confidence 0.60, not raised)"),
            "{:?}",
            got.reasons
        );
        // A medium finding on the port does not raise; the same one named by the event does.
        e.enrichment.vulnerabilities[0] = VulnerabilityMatch {
            severity: Severity::Medium,
            ..m.clone()
        };
        assert_eq!(c.classify(&e).priority, Priority::P2Medium);
        e.enrichment.vulnerabilities[0] = VulnerabilityMatch {
            severity: Severity::Medium,
            cve_named: true,
            ..m
        };
        assert_eq!(c.classify(&e).priority, Priority::P1High);
    }

    #[test]
    fn signals_raise_one_level_together() {
        let c = classifier();
        let mut e = event(
            Category::Authentication,
            "login",
            Severity::Medium,
            WEDNESDAY,
        );
        e.risk_score = Some(89);
        assert_eq!(
            c.classify(&e).priority,
            Priority::P2Medium,
            "below threshold"
        );
        e.risk_score = Some(90);
        let got = c.classify(&e);
        assert_eq!(got.priority, Priority::P1High);
        assert_eq!(
            got.reasons[1],
            "risk score 90 ≥ 90: raised P2_MEDIUM → P1_HIGH"
        );
        e.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 95,
            ..ThreatIntel::default()
        });
        e.enrichment.patterns.push(PatternMatch {
            pattern: "credential_stuffing".into(),
            confidence: 0.85,
            indicators: vec![],
        });
        let got = c.classify(&e);
        assert_eq!(
            got.priority,
            Priority::P1High,
            "several signals are still one raise"
        );
        assert!(
            got.reasons[1].contains("threat score 95 ≥ 80"),
            "{:?}",
            got.reasons
        );
        assert!(got.reasons[1].contains("attack pattern credential_stuffing (confidence 0.85)"));

        let mut e = event(Category::Network, "scan", Severity::Low, WEDNESDAY);
        e.enrichment.threat = Some(ThreatIntel {
            verdict: Verdict::Malicious,
            score: 10,
            ..ThreatIntel::default()
        });
        assert_eq!(c.classify(&e).priority, Priority::P2Medium);
        e.enrichment.threat = None;
        e.enrichment.patterns.push(PatternMatch {
            pattern: "p".into(),
            confidence: 0.79,
            indicators: vec![],
        });
        assert_eq!(
            c.classify(&e).priority,
            Priority::P3Low,
            "low-confidence pattern"
        );
    }

    #[test]
    fn impact_rules() {
        let c = classifier();
        let mut e = event(
            Category::DataExport,
            "guest_list.export",
            Severity::Low,
            WEDNESDAY,
        );
        e.resource_type = Some("guest_lists".into());
        e.record_count = Some(40);
        let got = c.classify(&e);
        assert_eq!(got.impact.guest_lists_accessed, 1);
        assert!(
            got.reasons
                .iter()
                .any(|r| r.contains("guest lists were accessed"))
        );

        let mut e = event(
            Category::AccountChange,
            "payout.update",
            Severity::Low,
            WEDNESDAY,
        );
        e.user_id = Some("vendor-77".into());
        assert_eq!(
            c.impact(&e).vendor_accounts_compromised,
            0,
            "no suspicious signal"
        );
        e.outcome = Outcome::Failure;
        let got = c.classify(&e);
        assert_eq!(got.impact.vendor_accounts_compromised, 1);
        assert_eq!(got.priority, Priority::P1High, "vendor compromise floor");

        let mut e = event(Category::Payment, "card.export", Severity::Info, WEDNESDAY);
        e.outcome = Outcome::Success;
        let got = c.classify(&e);
        assert!(got.impact.payment_data_exposed);
        assert_eq!(got.priority, Priority::P1High);
        e.outcome = Outcome::Failure;
        assert!(!c.impact(&e).payment_data_exposed);

        let mut e = event(Category::DataAccess, "read", Severity::Info, WEDNESDAY);
        e.resource_type = Some("couple_profiles".into());
        assert!(c.impact(&e).couples_data_at_risk);
        e.resource_type = Some("portfolio".into());
        let i = c.impact(&e);
        assert!(i.wedding_photos_at_risk && !i.couples_data_at_risk);

        let mut e = event(Category::Authentication, "login", Severity::Info, WEDNESDAY);
        e.enrichment.wedding = Some(wedding(WeddingPhase::DayOf));
        assert_eq!(c.impact(&e).active_weddings_affected, 1);
        e.enrichment.wedding = Some(wedding(WeddingPhase::WeekOf));
        assert!(!c.impact(&e).any());
    }

    #[test]
    fn saturday_escalation_uses_the_event_time_in_the_platform_zone() {
        let c = classifier();
        let got = c.classify(&event(
            Category::Network,
            "scan",
            Severity::Medium,
            SATURDAY,
        ));
        assert_eq!(got.priority, Priority::P1High);
        assert_eq!(
            got.reasons[1],
            "Saturday escalation: raised P2_MEDIUM → P1_HIGH (Saturday in Europe/London)"
        );
        assert_eq!(got.protocols[0].protocol, SATURDAY_ESCALATION);
        assert_eq!(got.protocols[0].notify, ["oncall"]);
        assert_eq!(got.deliver_within(), Some(Duration::from_secs(120)));
        // Friday 23:30 UTC in June is Saturday 00:30 in London (BST).
        let late_friday = c.classify(&event(
            Category::Network,
            "scan",
            Severity::Medium,
            "2026-06-19T23:30:00Z",
        ));
        assert_eq!(late_friday.priority, Priority::P1High);
        // Saturday 23:30 UTC is already Sunday in London.
        let sunday = c.classify(&event(
            Category::Network,
            "scan",
            Severity::Medium,
            "2026-06-20T23:30:00Z",
        ));
        assert_eq!(sunday.priority, Priority::P2Medium);
        assert!(sunday.protocols.is_empty());
        // In winter (GMT) Friday 23:30 UTC is still Friday.
        let winter = c.classify(&event(
            Category::Network,
            "scan",
            Severity::Medium,
            "2026-01-09T23:30:00Z",
        ));
        assert_eq!(winter.priority, Priority::P2Medium);
        // Informational events are raised but do not page on-call.
        let info = c.classify(&event(Category::Network, "scan", Severity::Info, SATURDAY));
        assert_eq!(info.priority, Priority::P3Low);
        assert!(info.protocols[0].notify.is_empty());
    }

    #[test]
    fn active_wedding_protection() {
        let c = classifier();
        let mut e = event(Category::Authentication, "login", Severity::Low, WEDNESDAY);
        e.enrichment.wedding = Some(wedding(WeddingPhase::DayOf));
        let got = c.classify(&e);
        assert_eq!(got.priority, Priority::P0Critical);
        let hit = &got.protocols[0];
        assert_eq!(hit.protocol, ACTIVE_WEDDING_PROTECTION);
        assert_eq!(
            hit.actions,
            [
                "lock_accounts",
                "read_only_mode",
                "notify_wedding_coordinator"
            ]
        );
        assert_eq!(hit.deliver_within, Some(Duration::from_secs(30)));
        assert!(
            got.reasons
                .last()
                .unwrap()
                .starts_with("Active wedding protection: wedding w-1 is in phase day_of")
        );
        // Informational events on the day are left alone.
        e.severity = Severity::Info;
        assert!(c.classify(&e).protocols.is_empty());
        // A vendor compromise during the week of the wedding.
        let mut v = event(
            Category::AccountChange,
            "email.change",
            Severity::Low,
            WEDNESDAY,
        );
        v.user_id = Some("vendor-9".into());
        v.labels.insert("suspicious".into(), "true".into());
        v.enrichment.wedding = Some(wedding(WeddingPhase::WeekOf));
        let got = c.classify(&v);
        assert_eq!(got.priority, Priority::P0Critical);
        assert!(
            got.reasons
                .last()
                .unwrap()
                .contains("vendor account vendor-9 may be compromised")
        );
        v.enrichment.wedding = Some(wedding(WeddingPhase::Planning));
        assert_eq!(
            c.classify(&v).priority,
            Priority::P1High,
            "planning: floor only"
        );
    }

    #[test]
    fn guest_data_breach_triggers() {
        let c = classifier();
        let mut denied = event(
            Category::Authorization,
            "guest_list.view",
            Severity::Low,
            WEDNESDAY,
        );
        denied.outcome = Outcome::Failure;
        let got = c.classify(&denied);
        assert_eq!(got.priority, Priority::P0Critical);
        assert_eq!(got.protocols[0].protocol, GUEST_DATA_BREACH);
        assert_eq!(got.protocols[0].notify, ["legal"]);
        assert_eq!(
            got.protocols[0].breach_deadline,
            Some(Duration::from_secs(72 * 3600))
        );
        assert!(
            got.reasons
                .last()
                .unwrap()
                .contains("unauthorised guest-list access")
        );

        let mut flagged = event(Category::DataAccess, "read", Severity::Info, WEDNESDAY);
        flagged.resource_type = Some("guest_lists".into());
        flagged
            .attributes
            .insert("authorized".into(), serde_json::json!(false));
        assert_eq!(c.classify(&flagged).priority, Priority::P0Critical);

        let export = event(
            Category::DataExport,
            "guest_list.export",
            Severity::Medium,
            WEDNESDAY,
        );
        assert!(
            c.classify(&export)
                .reasons
                .last()
                .unwrap()
                .contains("guest contact export")
        );

        let mut query = event(
            Category::DataAccess,
            "guests.search",
            Severity::Low,
            WEDNESDAY,
        );
        query.record_count = Some(499);
        assert_ne!(c.classify(&query).priority, Priority::P0Critical);
        query.record_count = Some(500);
        assert!(
            c.classify(&query)
                .reasons
                .last()
                .unwrap()
                .contains("mass guest data query (500 records ≥ 500)")
        );

        let unrelated = event(
            Category::DataExport,
            "vendor_contacts.export",
            Severity::Medium,
            WEDNESDAY,
        );
        assert!(c.classify(&unrelated).protocols.is_empty());
    }

    /// A step that changes nothing is never reported as a change: no reason reads
    /// `P0_CRITICAL → P0_CRITICAL`, whatever combination of rules fires.
    #[test]
    fn no_reason_reports_a_no_op_raise() {
        let c = classifier();
        let priorities = [
            Priority::P0Critical,
            Priority::P1High,
            Priority::P2Medium,
            Priority::P3Low,
            Priority::P4Info,
        ];
        let mut checked = 0;
        for severity in [Severity::Critical, Severity::High, Severity::Low] {
            for at in [WEDNESDAY, SATURDAY] {
                for risky in [false, true] {
                    // A guest-list breach on the day of a wedding: every protocol at once.
                    let mut e = event(Category::Authorization, "guest_list.view", severity, at);
                    e.outcome = Outcome::Failure;
                    e.enrichment.wedding = Some(wedding(WeddingPhase::DayOf));
                    if risky {
                        e.risk_score = Some(99);
                    }
                    let got = c.classify(&e);
                    assert_eq!(got.priority, Priority::P0Critical);
                    for reason in &got.reasons {
                        for p in priorities {
                            assert!(
                                !reason.contains(&format!("{p} → {p}")),
                                "no-op step reported as a change: {reason}"
                            );
                        }
                        assert!(
                            !reason.contains("notified"),
                            "claims a notification: {reason}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 12);
        let mut e = event(
            Category::Authorization,
            "guest_list.view",
            Severity::Critical,
            WEDNESDAY,
        );
        e.outcome = Outcome::Failure;
        e.enrichment.wedding = Some(wedding(WeddingPhase::DayOf));
        let got = c.classify(&e);
        assert!(
            got.reasons
                .iter()
                .any(|r| r.ends_with("so already P0_CRITICAL")),
            "{:?}",
            got.reasons
        );
        let mut low = event(
            Category::Authorization,
            "guest_list.view",
            Severity::Low,
            WEDNESDAY,
        );
        low.outcome = Outcome::Failure;
        assert!(
            c.classify(&low)
                .reasons
                .last()
                .unwrap()
                .contains("so raised P3_LOW → P0_CRITICAL"),
            "{:?}",
            c.classify(&low).reasons
        );
    }

    #[test]
    fn protocols_can_be_switched_off_and_misconfiguration_is_reported() {
        let c =
            Classifier::from_config(ClassificationConfig::default(), ProtocolsConfig::disabled())
                .unwrap();
        let mut e = event(Category::Authentication, "login", Severity::Low, SATURDAY);
        e.enrichment.wedding = Some(wedding(WeddingPhase::DayOf));
        let got = c.classify(&e);
        assert!(got.protocols.is_empty());
        assert_eq!(
            got.priority,
            Priority::P1High,
            "the active-wedding impact floor still applies"
        );
        let mut p = ProtocolsConfig::default();
        p.saturday_escalation.timezone = "Europe/Atlantis".into();
        let err = Classifier::from_config(ClassificationConfig::default(), p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("protocols.saturday_escalation.timezone"),
            "{err}"
        );
    }
}

//! Pure encoders: an [`Event`] in, the two bulk lines (action + ECS document) out.
//!
//! Documents are built from typed structs, so key order is fixed by this file (not by
//! `serde_json` features) and every string is JSON-escaped by `serde_json`: event text
//! cannot break out of its field or add a line to the NDJSON body.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use vowguard_core::{
    Category, Error, Event, Geo, PatternMatch, ProviderVerdict, Severity, ThreatIntel,
    VulnerabilityMatch, WeddingContext,
};

use crate::config::{BulkAction, Target};

/// The ECS version the documents follow.
pub(crate) const ECS_VERSION: &str = "8.11.0";

/// Longest `_id` Elasticsearch accepts, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 512;

/// Encodes events into bulk lines for one [`Target`].
#[derive(Debug, Clone)]
pub struct BulkEncoder {
    target: Target,
}

impl BulkEncoder {
    /// An encoder writing to `target`.
    pub fn new(target: Target) -> Self {
        Self { target }
    }

    /// The target documents are written to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The bulk action of every action line.
    pub fn action(&self) -> BulkAction {
        self.target.action()
    }

    /// The index (or data stream) the event goes to.
    pub fn index_for(&self, event: &Event) -> String {
        match &self.target {
            Target::Index { pattern, .. } => pattern.expand(&event.timestamp),
            Target::DataStream(name) => name.clone(),
        }
    }

    /// The action line and the document line, each ending with `\n`. The event id is the
    /// `_id`, so a resent event overwrites (`index`) or answers 409 (`create`) instead of
    /// being stored twice.
    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        if event.id.is_empty() || event.id.len() > MAX_ID_BYTES {
            return Err(Error::encode(format!(
                "event id must be 1..={MAX_ID_BYTES} bytes to be used as the Elasticsearch _id"
            )));
        }
        let index = self.index_for(event);
        let mut out = Vec::with_capacity(1024);
        let meta = ActionMeta {
            index: &index,
            id: &event.id,
        };
        let line = match self.action() {
            BulkAction::Index => serde_json::to_writer(&mut out, &IndexAction { index: meta }),
            BulkAction::Create => serde_json::to_writer(&mut out, &CreateAction { create: meta }),
        };
        line.map_err(|e| Error::encode(format!("cannot encode bulk action line: {e}")))?;
        out.push(b'\n');
        serde_json::to_writer(&mut out, &EcsDocument::from_event(event))
            .map_err(|e| Error::encode(format!("cannot encode ECS document: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }
}

#[derive(Serialize)]
struct ActionMeta<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_id")]
    id: &'a str,
}

#[derive(Serialize)]
struct IndexAction<'a> {
    index: ActionMeta<'a>,
}

#[derive(Serialize)]
struct CreateAction<'a> {
    create: ActionMeta<'a>,
}

/// The ECS document for `event` as a JSON value (the second bulk line).
pub fn ecs_document(event: &Event) -> Value {
    serde_json::to_value(EcsDocument::from_event(event)).expect("an ECS document always serialises")
}

/// ECS `event.category` and `event.type` for a vowguard category (allowed ECS values only).
pub(crate) fn ecs_category(
    category: Category,
) -> (&'static [&'static str], &'static [&'static str]) {
    match category {
        Category::Authentication => (&["authentication"], &["info"]),
        Category::Authorization => (&["iam"], &["info"]),
        Category::DataAccess | Category::DataExport => (&["database"], &["access"]),
        Category::AccountChange => (&["iam"], &["user", "change"]),
        Category::AdminAction => (&["iam"], &["admin", "change"]),
        Category::Payment => (&["web"], &["info"]),
        Category::Network => (&["network"], &["connection"]),
        Category::Malware => (&["malware"], &["info"]),
        Category::Vulnerability => (&["vulnerability"], &["info"]),
        Category::Detection => (&["intrusion_detection"], &["info"]),
        Category::Other => (&[], &["info"]),
    }
}

fn is_empty<T: Serialize + Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Serialize)]
struct EcsDocument<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: EcsVersion,
    event: EcsEvent<'a>,
    message: String,
    #[serde(skip_serializing_if = "is_empty")]
    source: Source<'a>,
    #[serde(skip_serializing_if = "is_empty")]
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<Original<'a>>,
    #[serde(skip_serializing_if = "is_empty")]
    url: Url<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<File<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat: Option<Threat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vulnerability: Option<EcsVulnerability<'a>>,
    #[serde(skip_serializing_if = "is_empty")]
    related: Related,
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wedding: Option<Wedding<'a>>,
    vowguard: Vowguard<'a>,
}

#[derive(Serialize)]
struct EcsVersion {
    version: &'static str,
}

#[derive(Serialize)]
struct EcsEvent<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    category: &'static [&'static str],
    #[serde(rename = "type")]
    kind_type: &'static [&'static str],
    action: &'a str,
    outcome: &'static str,
    severity: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_score: Option<u8>,
    id: &'a str,
}

#[derive(Serialize, Default, PartialEq)]
struct Source<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "is_empty")]
    geo: SourceGeo<'a>,
    #[serde(rename = "as", skip_serializing_if = "is_empty")]
    autonomous_system: AutonomousSystem<'a>,
}

#[derive(Serialize, Default, PartialEq)]
struct SourceGeo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    country_iso_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city_name: Option<&'a str>,
}

#[derive(Serialize, Default, PartialEq)]
struct AutonomousSystem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<Name<'a>>,
}

#[derive(Serialize, PartialEq)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize, Default, PartialEq)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Original<'a> {
    original: &'a str,
}

#[derive(Serialize, Default, PartialEq)]
struct Url<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct File<'a> {
    hash: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct Threat<'a> {
    indicator: ThreatIndicator<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<ThreatGroup<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    enrichments: Vec<ThreatEnrichment<'a>>,
}

#[derive(Serialize)]
struct ThreatIndicator<'a> {
    confidence: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    marking: Option<Marking>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provider: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

#[derive(Serialize)]
struct Marking {
    tlp: String,
}

#[derive(Serialize)]
struct ThreatGroup<'a> {
    name: &'a [String],
}

#[derive(Serialize)]
struct ThreatEnrichment<'a> {
    indicator: EnrichmentIndicator<'a>,
    matched: Matched<'a>,
}

#[derive(Serialize)]
struct EnrichmentIndicator<'a> {
    provider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<&'static str>,
}

#[derive(Serialize)]
struct Matched<'a> {
    atomic: &'a str,
}

#[derive(Serialize, Default, PartialEq)]
struct Related {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ip: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user: Vec<String>,
}

#[derive(Serialize)]
struct Wedding<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    days_until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weekend: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    season: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
}

#[derive(Serialize)]
struct Vowguard<'a> {
    category: &'static str,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Resource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    patterns: &'a [PatternMatch],
    #[serde(skip_serializing_if = "Option::is_none")]
    threat: Option<VowguardThreat<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    vulnerabilities: &'a [VulnerabilityMatch],
    #[serde(skip_serializing_if = "Map::is_empty")]
    attributes: &'a Map<String, Value>,
}

/// ECS `vulnerability.*`: the most relevant match (all of them are in
/// `vowguard.vulnerabilities`).
#[derive(Serialize)]
struct EcsVulnerability<'a> {
    /// The CVE ids, or the scanner's plugin id when there is none.
    id: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enumeration: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<VulnerabilityScore>,
    scanner: VulnerabilityScanner<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classification: Option<&'static str>,
}

#[derive(Serialize)]
struct VulnerabilityScore {
    base: f32,
}

#[derive(Serialize)]
struct VulnerabilityScanner<'a> {
    vendor: &'a str,
}

fn vulnerability(m: &VulnerabilityMatch) -> EcsVulnerability<'_> {
    let id = if m.cves.is_empty() {
        vec![m.plugin_id.as_str()]
    } else {
        m.cves.iter().map(String::as_str).collect()
    };
    EcsVulnerability {
        id,
        enumeration: (!m.cves.is_empty()).then_some("CVE"),
        description: m.title.as_deref(),
        severity: m.severity.as_str(),
        score: m.cvss.map(|base| VulnerabilityScore { base }),
        scanner: VulnerabilityScanner { vendor: &m.scanner },
        classification: m.cvss.map(|_| "CVSS"),
    }
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

#[derive(Serialize)]
struct VowguardThreat<'a> {
    verdict: vowguard_core::Verdict,
    score: u8,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    categories: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    providers: &'a [ProviderVerdict],
}

/// ECS `threat.indicator.confidence` from a 0..=100 score.
fn confidence(score: u8) -> &'static str {
    match score {
        0 => "None",
        1..=39 => "Low",
        40..=69 => "Medium",
        _ => "High",
    }
}

/// `tlp:amber` / `amber+strict` -> `AMBER` / `AMBER+STRICT` (the ECS spelling).
fn tlp(marking: &str) -> String {
    let bare = marking
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("tlp:"))
        .map_or(marking, |_| &marking[4..]);
    bare.trim().to_ascii_uppercase()
}

/// The hash field for a hex digest, by length; `None` when it is not a known digest.
fn hash_field(hash: &str) -> Option<&'static str> {
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hash.len() {
        32 => Some("md5"),
        40 => Some("sha1"),
        64 => Some("sha256"),
        128 => Some("sha512"),
        _ => None,
    }
}

fn rfc3339(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn threat(intel: &ThreatIntel) -> Threat<'_> {
    Threat {
        indicator: ThreatIndicator {
            confidence: confidence(intel.score),
            marking: intel.tlp.as_deref().map(|t| Marking { tlp: tlp(t) }),
            provider: {
                let mut names: Vec<&str> = Vec::new();
                for p in &intel.providers {
                    if !names.contains(&p.provider.as_str()) {
                        names.push(&p.provider);
                    }
                }
                names
            },
            first_seen: intel.first_seen.as_ref().map(rfc3339),
            last_seen: intel.last_seen.as_ref().map(rfc3339),
        },
        group: (!intel.actors.is_empty()).then_some(ThreatGroup {
            name: &intel.actors,
        }),
        enrichments: intel
            .providers
            .iter()
            .map(|p| ThreatEnrichment {
                indicator: EnrichmentIndicator {
                    provider: &p.provider,
                    confidence: p.score.map(confidence),
                },
                matched: Matched {
                    atomic: &p.indicator,
                },
            })
            .collect(),
    }
}

fn wedding<'a>(event: &'a Event, ctx: Option<&'a WeddingContext>) -> Option<Wedding<'a>> {
    let id = ctx
        .map(|w| w.wedding_id.as_str())
        .or(event.wedding_id.as_deref())?;
    Some(Wedding {
        id,
        phase: ctx.map(|w| serde_json::to_value(w.phase).expect("enum serialises")),
        date: ctx.map(|w| w.date.to_string()),
        days_until: ctx.map(|w| w.days_until),
        guest_count: ctx.and_then(|w| w.guest_count),
        vendor_count: ctx.and_then(|w| w.vendor_count),
        weekend: ctx.map(|w| w.weekend),
        season: ctx.map(|w| serde_json::to_value(w.season).expect("enum serialises")),
        timezone: ctx.map(|w| w.timezone.as_str()),
    })
}

fn source<'a>(event: &Event, geo: Option<&'a Geo>) -> Source<'a> {
    let ip = event.source_ip.map(|ip| ip.to_string());
    let Some(geo) = geo else {
        return Source {
            ip,
            ..Source::default()
        };
    };
    Source {
        ip,
        geo: SourceGeo {
            country_iso_code: geo.country_code.as_deref(),
            city_name: geo.city.as_deref(),
        },
        autonomous_system: AutonomousSystem {
            number: geo.asn,
            organization: geo.org.as_deref().map(|name| Name { name }),
        },
    }
}

impl<'a> EcsDocument<'a> {
    fn from_event(event: &'a Event) -> Self {
        let enrichment = &event.enrichment;
        let (category, kind_type) = ecs_category(event.category);
        let hash_kind = event.file_hash.as_deref().and_then(hash_field);
        let mut tags = vec!["vowguard"];
        if let Some(intel) = &enrichment.threat {
            tags.extend(intel.categories.iter().map(String::as_str));
        }
        tags.extend(enrichment.patterns.iter().map(|p| p.pattern.as_str()));
        let mut related = Related::default();
        if let Some(ip) = event.source_ip {
            related.ip.push(ip.to_string());
        }
        related
            .user
            .extend(event.user_id.iter().chain(&event.user_name).cloned());
        EcsDocument {
            timestamp: event.timestamp_rfc3339(),
            ecs: EcsVersion {
                version: ECS_VERSION,
            },
            event: EcsEvent {
                kind: if event.severity >= Severity::High {
                    "alert"
                } else {
                    "event"
                },
                category,
                kind_type,
                action: &event.action,
                outcome: event.outcome.as_str(),
                severity: event.severity.ocsf_id(),
                risk_score: event.risk_score,
                id: &event.id,
            },
            message: event.message.clone().unwrap_or_else(|| event.summary()),
            source: source(event, enrichment.geo.as_ref()),
            user: User {
                id: event.user_id.as_deref(),
                name: event.user_name.as_deref(),
            },
            user_agent: event
                .user_agent
                .as_deref()
                .map(|original| Original { original }),
            url: Url {
                original: event.url.as_deref(),
                domain: event.domain.as_deref(),
            },
            file: match (hash_kind, event.file_hash.as_deref()) {
                (Some(kind), Some(hash)) => Some(File {
                    hash: BTreeMap::from([(kind, hash)]),
                }),
                _ => None,
            },
            threat: enrichment.threat.as_ref().map(threat),
            vulnerability: enrichment.vulnerabilities.first().map(vulnerability),
            related,
            tags,
            labels: &event.labels,
            wedding: wedding(event, enrichment.wedding.as_ref()),
            vowguard: Vowguard {
                category: event.category.as_str(),
                severity: event.severity.as_str(),
                resource: (event.resource_type.is_some() || event.resource_id.is_some()).then_some(
                    Resource {
                        kind: event.resource_type.as_deref(),
                        id: event.resource_id.as_deref(),
                    },
                ),
                record_count: event.record_count,
                file_hash: event.file_hash.as_deref().filter(|_| hash_kind.is_none()),
                patterns: &enrichment.patterns,
                threat: enrichment.threat.as_ref().map(|t| VowguardThreat {
                    verdict: t.verdict,
                    score: t.score,
                    categories: &t.categories,
                    providers: &t.providers,
                }),
                vulnerabilities: &enrichment.vulnerabilities,
                attributes: &event.attributes,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IndexPattern;
    use proptest::prelude::*;
    use vowguard_core::{Enrichment, Outcome, Season, Verdict, WeddingPhase};

    /// The two events of the golden vectors.
    fn fixed_events() -> (Event, Event) {
        let mut a = Event::from_json_str(
            r#"{"id":"evt-0001","timestamp":"2026-06-20T14:03:07.123Z","category":"data_export",
                "action":"guest_list.export","outcome":"success","severity":"critical","risk_score":91,
                "message":"guest list \"Smith\"\nexported","user_id":"u-42","user_name":"eve",
                "source_ip":"203.0.113.7","user_agent":"curl/8.0","url":"https://app.example/export?x=1",
                "domain":"app.example","file_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "resource_type":"guest_lists","resource_id":"gl-9","wedding_id":"w-1",
                "record_count":450,"labels":{"env":"prod"},"attributes":{"export_format":"csv"}}"#,
        )
        .unwrap();
        a.enrichment = Enrichment {
            threat: Some(ThreatIntel {
                verdict: Verdict::Malicious,
                score: 87,
                providers: vec![ProviderVerdict {
                    provider: "misp".into(),
                    indicator: "203.0.113.7".into(),
                    verdict: Verdict::Malicious,
                    score: Some(90),
                }],
                categories: vec!["scraping".into()],
                actors: vec!["FIN-Bouquet".into()],
                tlp: Some("tlp:amber".into()),
                first_seen: None,
                last_seen: None,
            }),
            wedding: Some(WeddingContext {
                wedding_id: "w-1".into(),
                date: chrono::NaiveDate::from_ymd_opt(2026, 6, 27).unwrap(),
                timezone: "Europe/London".into(),
                phase: WeddingPhase::WeekOf,
                days_until: 7,
                weekend: true,
                season: Season::Summer,
                guest_count: Some(120),
                vendor_count: Some(9),
            }),
            geo: Some(Geo {
                country_code: Some("NL".into()),
                city: Some("Amsterdam".into()),
                asn: Some(64500),
                org: Some("Example Hosting".into()),
            }),
            patterns: vec![PatternMatch {
                pattern: "guest_list_scraping".into(),
                confidence: 0.5,
                indicators: vec!["u-42".into()],
            }],
            vulnerabilities: vec![],
            not_enriched: vec![],
        };
        let b = Event::from_json_str(
            r#"{"id":"evt-0002","timestamp":"2026-07-01T00:00:00Z","category":"authentication",
                "action":"login","outcome":"failure","severity":"low"}"#,
        )
        .unwrap();
        (a, b)
    }

    fn encoder(pattern: &str, action: BulkAction) -> BulkEncoder {
        BulkEncoder::new(Target::Index {
            pattern: IndexPattern::parse(pattern).unwrap(),
            action,
        })
    }

    const GOLDEN_A: &str = concat!(
        r#"{"index":{"_index":"wedding-security-2026-06","_id":"evt-0001"}}"#,
        "\n",
        r#"{"@timestamp":"2026-06-20T14:03:07.123Z","ecs":{"version":"8.11.0"},"#,
        r#""event":{"kind":"alert","category":["database"],"type":["access"],"action":"guest_list.export","outcome":"success","severity":5,"risk_score":91,"id":"evt-0001"},"#,
        r#""message":"guest list \"Smith\"\nexported","#,
        r#""source":{"ip":"203.0.113.7","geo":{"country_iso_code":"NL","city_name":"Amsterdam"},"as":{"number":64500,"organization":{"name":"Example Hosting"}}},"#,
        r#""user":{"id":"u-42","name":"eve"},"user_agent":{"original":"curl/8.0"},"#,
        r#""url":{"original":"https://app.example/export?x=1","domain":"app.example"},"#,
        r#""file":{"hash":{"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},"#,
        r#""threat":{"indicator":{"confidence":"High","marking":{"tlp":"AMBER"},"provider":["misp"]},"group":{"name":["FIN-Bouquet"]},"enrichments":[{"indicator":{"provider":"misp","confidence":"High"},"matched":{"atomic":"203.0.113.7"}}]},"#,
        r#""related":{"ip":["203.0.113.7"],"user":["u-42","eve"]},"#,
        r#""tags":["vowguard","scraping","guest_list_scraping"],"labels":{"env":"prod"},"#,
        r#""wedding":{"id":"w-1","phase":"week_of","date":"2026-06-27","days_until":7,"guest_count":120,"vendor_count":9,"weekend":true,"season":"summer","timezone":"Europe/London"},"#,
        r#""vowguard":{"category":"data_export","severity":"critical","resource":{"type":"guest_lists","id":"gl-9"},"record_count":450,"#,
        r#""patterns":[{"pattern":"guest_list_scraping","confidence":0.5,"indicators":["u-42"]}],"#,
        r#""threat":{"verdict":"malicious","score":87,"categories":["scraping"],"providers":[{"provider":"misp","indicator":"203.0.113.7","verdict":"malicious","score":90}]},"#,
        r#""attributes":{"export_format":"csv"}}}"#,
        "\n",
    );

    const GOLDEN_B: &str = concat!(
        r#"{"index":{"_index":"wedding-security-2026-07","_id":"evt-0002"}}"#,
        "\n",
        r#"{"@timestamp":"2026-07-01T00:00:00.000Z","ecs":{"version":"8.11.0"},"#,
        r#""event":{"kind":"event","category":["authentication"],"type":["info"],"action":"login","outcome":"failure","severity":2,"id":"evt-0002"},"#,
        r#""message":"authentication login (failure)","tags":["vowguard"],"#,
        r#""vowguard":{"category":"authentication","severity":"low"}}"#,
        "\n",
    );

    #[test]
    fn golden_vectors() {
        let (a, b) = fixed_events();
        let enc = encoder(crate::DEFAULT_INDEX, BulkAction::Index);
        assert_eq!(
            String::from_utf8(enc.encode(&a).unwrap()).unwrap(),
            GOLDEN_A
        );
        assert_eq!(
            String::from_utf8(enc.encode(&b).unwrap()).unwrap(),
            GOLDEN_B
        );
    }

    #[test]
    fn data_stream_uses_create() {
        let (_, b) = fixed_events();
        let enc = BulkEncoder::new(Target::DataStream("logs-vowguard-default".into()));
        let text = String::from_utf8(enc.encode(&b).unwrap()).unwrap();
        let (action, doc) = text.split_once('\n').unwrap();
        assert_eq!(
            action,
            r#"{"create":{"_index":"logs-vowguard-default","_id":"evt-0002"}}"#
        );
        let doc: Value = serde_json::from_str(doc.trim_end()).unwrap();
        assert_eq!(doc["@timestamp"], "2026-07-01T00:00:00.000Z");
    }

    #[test]
    fn kind_severity_and_hash_rules() {
        let (_, mut b) = fixed_events();
        for (sev, kind) in [(Severity::Medium, "event"), (Severity::High, "alert")] {
            b.severity = sev;
            assert_eq!(ecs_document(&b)["event"]["kind"], kind);
            assert_eq!(ecs_document(&b)["event"]["severity"], sev.ocsf_id());
        }
        b.file_hash = Some("d41d8cd98f00b204e9800998ecf8427e".into());
        assert_eq!(
            ecs_document(&b)["file"]["hash"]["md5"],
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        b.file_hash = Some("not a hash".into());
        let doc = ecs_document(&b);
        assert!(doc.get("file").is_none());
        assert_eq!(doc["vowguard"]["file_hash"], "not a hash");
        b.wedding_id = Some("w-7".into());
        b.outcome = Outcome::Success;
        assert_eq!(ecs_document(&b)["wedding"], serde_json::json!({"id":"w-7"}));
        assert_eq!(tlp("TLP:AMBER+STRICT"), "AMBER+STRICT");
        assert_eq!(tlp("red"), "RED");
    }

    #[test]
    fn vulnerability_matches_become_ecs_vulnerability_fields() {
        let (_, mut b) = fixed_events();
        assert!(ecs_document(&b).get("vulnerability").is_none());
        b.enrichment.vulnerabilities = vec![VulnerabilityMatch {
            scanner: "tio".into(),
            plugin_id: "190000".into(),
            title: Some("PAN-OS \"RCE\"\n</script>".into()),
            cves: vec!["CVE-2024-3400".into()],
            cvss: Some(9.8),
            severity: Severity::Critical,
            asset: "10.0.0.5".into(),
            port: 443,
            protocol: "tcp".into(),
            first_seen: None,
            confidence: 0.9,
            cve_named: false,
        }];
        let doc = ecs_document(&b);
        assert_eq!(
            doc["vulnerability"],
            serde_json::json!({"id": ["CVE-2024-3400"], "enumeration": "CVE",
                "description": "PAN-OS \"RCE\"\n</script>", "severity": "critical",
                "score": {"base": 9.8f32}, "scanner": {"vendor": "tio"}, "classification": "CVSS"})
        );
        assert_eq!(doc["vowguard"]["vulnerabilities"][0]["port"], 443);
        b.enrichment.vulnerabilities[0].cves.clear();
        b.enrichment.vulnerabilities[0].cvss = None;
        let doc = ecs_document(&b);
        assert_eq!(doc["vulnerability"]["id"], serde_json::json!(["190000"]));
        assert!(doc["vulnerability"].get("enumeration").is_none());
    }

    #[test]
    fn refuses_oversized_id() {
        let (_, mut b) = fixed_events();
        b.id = "x".repeat(MAX_ID_BYTES + 1);
        let err = encoder("x", BulkAction::Index).encode(&b).unwrap_err();
        assert_eq!(err.kind(), vowguard_core::ErrorKind::Encode);
    }

    proptest! {
        #[test]
        fn document_line_is_json_and_round_trips(
            message in any::<String>(),
            user_name in any::<String>(),
            id in "[!-~]{1,64}",
            label in any::<String>(),
        ) {
            let (_, mut b) = fixed_events();
            b.message = Some(message.clone());
            b.user_name = Some(user_name.clone());
            b.id = id.clone();
            b.labels.insert("k".into(), label.clone());
            let bytes = encoder(crate::DEFAULT_INDEX, BulkAction::Create).encode(&b).unwrap();
            let text = std::str::from_utf8(&bytes).unwrap();
            // Exactly two lines, each terminated: no raw newline escapes a field.
            prop_assert!(text.ends_with('\n'));
            let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
            prop_assert_eq!(lines.len(), 2);
            let action: Value = serde_json::from_str(lines[0]).unwrap();
            prop_assert_eq!(action["create"]["_id"].as_str(), Some(id.as_str()));
            let doc: Value = serde_json::from_str(lines[1]).unwrap();
            prop_assert_eq!(doc["message"].as_str(), Some(message.as_str()));
            prop_assert_eq!(doc["user"]["name"].as_str(), Some(user_name.as_str()));
            prop_assert_eq!(doc["labels"]["k"].as_str(), Some(label.as_str()));
        }
    }
}

//! [`AttackPatternEnricher`]: stateful, windowed correlation of the event stream against
//! the built-in [`RULES`](crate::RULES) (kind `attack_patterns`).
//!
//! Per rule and key (a user, an IP, a wedding, a venue) the enricher keeps the matching
//! events of the last `window` (by **event timestamp**, so replays behave like the
//! original stream) and computes the rule's measure over them. An event that passes the
//! rule's filter and leaves its key at or above the threshold gets a
//! [`PatternMatch`]: the event that crosses the threshold and every later matching event of
//! that key while it stays above. Memory is bounded per rule by `max_keys`,
//! `max_entries` and `max_entries_per_key`.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use vowguard_core::{Enricher, Enrichment, Error, Event, PatternMatch};

use crate::config::AttackPatternsConfig;
use crate::rules::{Measure, RuleDef, RuleParams};

/// The connector kind of the attack-pattern enricher.
pub const ATTACK_PATTERNS_KIND: &str = "attack_patterns";

/// Confidence of a match whose measure is `value` against `threshold`: 0.5 at the
/// threshold, rising linearly to 1.0 at twice the threshold, capped at 1.0.
pub fn confidence(value: u64, threshold: u64) -> f32 {
    if threshold == 0 {
        return 1.0;
    }
    let ratio = value as f64 / threshold as f64;
    (0.5 + 0.5 * (ratio - 1.0)).clamp(0.0, 1.0) as f32
}

/// The instant at or before which observations are out of a window ending at `now`.
fn cutoff(now: DateTime<Utc>, window: TimeDelta) -> DateTime<Utc> {
    now.checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[derive(Debug, Clone, Copy)]
struct Obs {
    at: DateTime<Utc>,
    item: Option<u64>,
    records: u64,
    items: u64,
}

#[derive(Debug)]
struct KeyState {
    generation: u64,
    high_water: DateTime<Utc>,
    obs: VecDeque<Obs>,
    triggers: VecDeque<DateTime<Utc>>,
    distinct: HashMap<u64, u32>,
    records: u64,
    items: u64,
}

impl KeyState {
    fn entries(&self) -> usize {
        self.obs.len() + self.triggers.len()
    }

    fn pop_obs(&mut self) -> bool {
        let Some(o) = self.obs.pop_front() else {
            return false;
        };
        self.records -= o.records;
        self.items -= o.items;
        if let Some(item) = o.item {
            let gone = self.distinct.get_mut(&item).is_some_and(|n| {
                *n -= 1;
                *n == 0
            });
            if gone {
                self.distinct.remove(&item);
            }
        }
        true
    }

    /// Drops observations at or before `cutoff`; returns how many entries went.
    fn expire(&mut self, cutoff: DateTime<Utc>) -> usize {
        let before = self.entries();
        while self.obs.front().is_some_and(|o| o.at <= cutoff) {
            self.pop_obs();
        }
        while self.triggers.front().is_some_and(|t| *t <= cutoff) {
            self.triggers.pop_front();
        }
        before - self.entries()
    }
}

#[derive(Debug, Default)]
struct RuleState {
    keys: HashMap<Arc<str>, KeyState>,
    /// Keys in creation order, for oldest-key eviction (entries of removed keys are
    /// skipped by generation).
    order: VecDeque<(u64, Arc<str>)>,
    next_generation: u64,
    entries: usize,
    high_water: Option<DateTime<Utc>>,
    last_sweep: Option<DateTime<Utc>>,
}

impl RuleState {
    fn evict_oldest(&mut self) -> bool {
        while let Some((generation, key)) = self.order.pop_front() {
            let current = self
                .keys
                .get(&key)
                .is_some_and(|k| k.generation == generation);
            if !current {
                continue; // removed by a sweep (and maybe re-created since)
            }
            if let Some(state) = self.keys.remove(&key) {
                self.entries -= state.entries();
                return true;
            }
        }
        false
    }

    /// Expires every key against `now`, drops empty keys and compacts the order queue.
    fn sweep(&mut self, cutoff: DateTime<Utc>) {
        let mut removed = 0;
        self.keys.retain(|_, k| {
            removed += k.expire(cutoff);
            k.entries() > 0
        });
        self.entries -= removed;
        let keys = &self.keys;
        self.order
            .retain(|(g, key)| keys.get(key).is_some_and(|k| k.generation == *g));
    }
}

/// What one key of one rule looked like after an event.
#[derive(Debug, Clone)]
struct Hit {
    confidence: f32,
    indicators: Vec<String>,
}

/// Size of one rule's state (for tests, metrics and capacity planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleStats {
    /// The pattern name.
    pub pattern: &'static str,
    /// Keys tracked.
    pub keys: usize,
    /// Observations kept (matching events and triggers).
    pub entries: usize,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_keys: usize,
    max_entries: usize,
    max_entries_per_key: usize,
}

struct Rule {
    def: &'static RuleDef,
    params: RuleParams,
    window: TimeDelta,
    state: Mutex<RuleState>,
}

impl Rule {
    fn lock(&self) -> std::sync::MutexGuard<'_, RuleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `event` under each of its keys; returns the match, if any key is at or above
    /// the threshold after it (targets only).
    fn observe(&self, event: &Event, hasher: &RandomState, limits: Limits) -> Option<PatternMatch> {
        let is_trigger = self.def.triggers.iter().any(|f| f.matches(event));
        let is_target = !is_trigger && self.def.matches.iter().any(|f| f.matches(event));
        if !is_trigger && !is_target {
            return None;
        }
        let keys: Vec<String> = self
            .def
            .keys
            .iter()
            .filter_map(|k| k.key_of(event))
            .collect();
        if keys.is_empty() {
            return None;
        }
        let item = match self.def.measure {
            Measure::DistinctWeddings => event.wedding_id.as_deref(),
            Measure::DistinctResources => event.resource_id.as_deref(),
            Measure::Count | Measure::Items => None,
        }
        .filter(|s| !s.is_empty())
        .map(|s| hasher.hash_one(s));
        let obs = Obs {
            at: event.timestamp,
            item,
            records: event.record_count.unwrap_or(0),
            items: event.record_count.unwrap_or(1),
        };

        let mut best: Option<Hit> = None;
        let mut state = self.lock();
        for key in keys {
            let hit = self.observe_key(&mut state, key, obs, is_trigger, limits);
            if let Some(hit) = hit {
                best = Some(match best {
                    None => hit,
                    Some(mut b) => {
                        b.confidence = b.confidence.max(hit.confidence);
                        b.indicators.extend(hit.indicators);
                        b
                    }
                });
            }
        }
        drop(state);
        best.map(|h| PatternMatch {
            pattern: self.def.name.to_owned(),
            confidence: h.confidence,
            indicators: h.indicators,
        })
    }

    fn observe_key(
        &self,
        st: &mut RuleState,
        key: String,
        obs: Obs,
        is_trigger: bool,
        limits: Limits,
    ) -> Option<Hit> {
        // Periodic sweep of keys nobody touches any more, by event time.
        let now = st.high_water.map_or(obs.at, |h| h.max(obs.at));
        st.high_water = Some(now);
        if st.last_sweep.is_none_or(|s| now - s >= self.window) {
            st.sweep(cutoff(now, self.window));
            st.last_sweep = Some(now);
        }

        let key: Arc<str> = Arc::from(key);
        if let Some(k) = st.keys.get(&key) {
            if obs.at <= cutoff(k.high_water, self.window) {
                return None; // older than this key's window: ignored
            }
        } else {
            while st.keys.len() >= limits.max_keys && st.evict_oldest() {}
            let generation = st.next_generation;
            st.next_generation += 1;
            st.order.push_back((generation, Arc::clone(&key)));
            st.keys.insert(
                Arc::clone(&key),
                KeyState {
                    generation,
                    high_water: obs.at,
                    obs: VecDeque::new(),
                    triggers: VecDeque::new(),
                    distinct: HashMap::new(),
                    records: 0,
                    items: 0,
                },
            );
        }
        let k = st.keys.get_mut(&key)?;
        k.high_water = k.high_water.max(obs.at);
        let mut removed = k.expire(cutoff(k.high_water, self.window));
        if is_trigger {
            let pos = k.triggers.partition_point(|t| *t <= obs.at);
            k.triggers.insert(pos, obs.at);
            if k.triggers.len() > limits.max_entries_per_key {
                k.triggers.pop_front();
                removed += 1;
            }
        } else {
            let pos = k.obs.partition_point(|o| o.at <= obs.at);
            k.obs.insert(pos, obs);
            k.records += obs.records;
            k.items += obs.items;
            if let Some(item) = obs.item {
                *k.distinct.entry(item).or_insert(0) += 1;
            }
            if k.obs.len() > limits.max_entries_per_key {
                k.pop_obs();
                removed += 1;
            }
        }
        let hit = if is_trigger {
            None
        } else {
            self.evaluate(&key, k)
        };
        st.entries = st.entries + 1 - removed;
        while st.entries > limits.max_entries && st.evict_oldest() {}
        hit
    }

    fn evaluate(&self, key: &str, k: &KeyState) -> Option<Hit> {
        let window = self.params.window_secs;
        let sequence = !self.def.triggers.is_empty();
        let value = if sequence {
            let first = *k.triggers.front()?;
            (k.obs.len() - k.obs.partition_point(|o| o.at < first)) as u64
        } else {
            match self.def.measure {
                Measure::Count => k.obs.len() as u64,
                Measure::DistinctWeddings | Measure::DistinctResources => k.distinct.len() as u64,
                Measure::Items => k.items,
            }
        };
        let mut confidence: Option<f32> = None;
        let mut indicators = vec![key.to_owned()];
        if value >= self.params.threshold {
            confidence = Some(crate::patterns::confidence(value, self.params.threshold));
            indicators.push(format!("{}={value} in {window}s", self.def.measure.label()));
            if sequence {
                indicators.push(format!("triggers={}", k.triggers.len()));
            }
        }
        if let Some(limit) = self.params.record_threshold.filter(|l| k.records >= *l) {
            let c = crate::patterns::confidence(k.records, limit);
            confidence = Some(confidence.map_or(c, |x| x.max(c)));
            indicators.push(format!("records={} in {window}s", k.records));
        }
        confidence.map(|confidence| Hit {
            confidence,
            indicators,
        })
    }
}

/// Correlates events against the enabled rules; see the module docs.
///
/// `enrich` is called concurrently: each rule has its own mutex, held only while one
/// event updates that rule's state.
pub struct AttackPatternEnricher {
    rules: Vec<Rule>,
    limits: Limits,
    hasher: RandomState,
}

impl fmt::Debug for AttackPatternEnricher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<_> = self.rules.iter().map(|r| (r.def.name, r.params)).collect();
        f.debug_struct("AttackPatternEnricher")
            .field("rules", &rules)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl AttackPatternEnricher {
    /// An enricher running the rules `config` enables, with its overrides. Errors name the
    /// key at fault, e.g. ``"`rules.venue_booking_scams.threshold`: must be at least 1"``.
    pub fn new(config: &AttackPatternsConfig) -> Result<Self, Error> {
        let rules = config
            .resolve()
            .map_err(|(field, message)| Error::config(format!("`{field}`: {message}")))?;
        Ok(Self::from_resolved(rules, config))
    }

    pub(crate) fn from_resolved(
        rules: Vec<(&'static RuleDef, RuleParams)>,
        config: &AttackPatternsConfig,
    ) -> Self {
        Self {
            rules: rules
                .into_iter()
                .map(|(def, params)| Rule {
                    def,
                    params,
                    window: TimeDelta::seconds(params.window_secs as i64),
                    state: Mutex::new(RuleState::default()),
                })
                .collect(),
            limits: Limits {
                max_keys: config.max_keys,
                max_entries: config.max_entries,
                max_entries_per_key: config.max_entries_per_key,
            },
            hasher: RandomState::new(),
        }
    }

    /// The enabled rules and their effective parameters.
    pub fn rules(&self) -> Vec<(&'static str, RuleParams)> {
        self.rules.iter().map(|r| (r.def.name, r.params)).collect()
    }

    /// Records `event` and returns the patterns it matches (at most one per rule).
    pub fn observe(&self, event: &Event) -> Vec<PatternMatch> {
        self.rules
            .iter()
            .filter_map(|r| r.observe(event, &self.hasher, self.limits))
            .collect()
    }

    /// The size of each rule's state.
    pub fn stats(&self) -> Vec<RuleStats> {
        self.rules
            .iter()
            .map(|r| {
                let st = r.lock();
                RuleStats {
                    pattern: r.def.name,
                    keys: st.keys.len(),
                    entries: st.entries,
                }
            })
            .collect()
    }
}

#[async_trait]
impl Enricher for AttackPatternEnricher {
    fn kind(&self) -> &'static str {
        ATTACK_PATTERNS_KIND
    }

    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error> {
        Ok(Enrichment {
            patterns: self.observe(event),
            ..Enrichment::default()
        })
    }
}

//! The rule engine: evaluates every rule on its interval and moves each
//! alert instance through pending → firing → resolved, Prometheus's way
//! (`for` must hold at every evaluation; `keep_firing_for` holds a firing
//! alert after its condition stops), plus flap damping: an alert that
//! flipped between firing and resolved too often within a window stays
//! firing until its condition has been clear for the hold time, so a
//! flapping condition produces one firing and one resolved notice instead
//! of a storm.
//!
//! The engine is synchronous and owns no I/O: the service runs it on a
//! blocking thread and persists what it reports.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertState};
use crate::labels::{ALERTNAME, LabelSet};
use crate::rule::{EvalContext, Instance, RuleError, RuleMemory, RuleSpec};
use crate::source::Source;
use crate::template::{self, TemplateData};

/// Flap damping (`[server.alerting.flap]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlapConfig {
    /// The window flips are counted in.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Flips (firing ↔ resolved) within the window that make an alert
    /// flapping; 0 turns damping off.
    pub max_flips: usize,
    /// How long a flapping alert's condition must stay clear before it
    /// resolves.
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
}

impl Default for FlapConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_flips: 4,
            hold: Duration::from_secs(300),
        }
    }
}

/// What the engine needs besides the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Interval of rules that set none.
    pub default_interval: Duration,
    /// How long resolved alerts are kept (and offered to notifiers).
    pub resolved_retention: Duration,
    /// Flap damping.
    pub flap: FlapConfig,
    /// The server's URL, for `generatorURL`.
    pub external_url: String,
    /// `$externalLabels` in templates.
    pub external_labels: LabelSet,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(60),
            resolved_retention: Duration::from_secs(900),
            flap: FlapConfig::default(),
            external_url: String::new(),
            external_labels: LabelSet::new(),
        }
    }
}

/// A rule and what the engine knows about it.
#[derive(Debug, Clone)]
pub struct RuleRuntime {
    /// The rule.
    pub spec: Arc<RuleSpec>,
    /// Its alerts by instance labels.
    pub alerts: BTreeMap<LabelSet, Alert>,
    /// Last evaluation time, ms.
    pub last_eval_ms: Option<i64>,
    /// How long the last evaluation took.
    pub last_duration: Duration,
    /// The last evaluation's error.
    pub last_error: Option<String>,
    /// When it is due next, ms.
    pub next_eval_ms: i64,
    /// What the rule learned (baseline detectors); out of the runtime
    /// while the rule is being evaluated.
    pub memory: RuleMemory,
}

/// One change of an alert's state (the history records these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When, ms.
    pub at_ms: i64,
    /// The rule.
    pub rule_id: String,
    /// The alert's labels.
    pub labels: LabelSet,
    /// Previous state (`None`: new).
    pub from: Option<AlertState>,
    /// New state (`None`: forgotten — a pending alert whose condition
    /// stopped, or a resolved one past retention).
    pub to: Option<AlertState>,
    /// The value then.
    pub value: f64,
}

/// Rules, their alerts, and the state machine.
#[derive(Debug, Default)]
pub struct Engine {
    config: EngineConfig,
    rules: BTreeMap<String, RuleRuntime>,
}

/// A rule due for evaluation, cloned out so it can be evaluated without
/// holding the engine.
pub struct DueRule {
    /// The rule.
    pub spec: Arc<RuleSpec>,
    /// Instance labels of its pending and firing alerts.
    pub active: HashSet<LabelSet>,
    /// Its memory, to be handed back with [`Engine::apply`].
    pub memory: RuleMemory,
}

impl Engine {
    /// An engine without rules.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            rules: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Adds or replaces a rule; a replaced rule keeps its alerts (whose
    /// labels and annotations follow at the next evaluation) and is due
    /// now.
    pub fn set_rule(&mut self, spec: RuleSpec, now_ms: i64) {
        let spec = Arc::new(spec);
        match self.rules.get_mut(&spec.id) {
            Some(rt) => {
                rt.spec = spec;
                rt.next_eval_ms = now_ms;
            }
            None => {
                self.rules.insert(
                    spec.id.clone(),
                    RuleRuntime {
                        spec,
                        alerts: BTreeMap::new(),
                        last_eval_ms: None,
                        last_duration: Duration::ZERO,
                        last_error: None,
                        next_eval_ms: now_ms,
                        memory: RuleMemory::default(),
                    },
                );
            }
        }
    }

    /// Removes a rule; its firing alerts come back resolved at `now_ms`
    /// (so notifiers can close them).
    pub fn remove_rule(&mut self, id: &str, now_ms: i64) -> Option<Vec<Alert>> {
        let rt = self.rules.remove(id)?;
        Some(
            rt.alerts
                .into_values()
                .filter(|a| a.state == AlertState::Firing)
                .map(|mut a| {
                    a.state = AlertState::Resolved;
                    a.resolved_at = Some(now_ms);
                    a
                })
                .collect(),
        )
    }

    /// A rule and its state.
    pub fn rule(&self, id: &str) -> Option<&RuleRuntime> {
        self.rules.get(id)
    }

    /// Every rule, by id.
    pub fn rules(&self) -> impl Iterator<Item = &RuleRuntime> {
        self.rules.values()
    }

    /// Every alert (pending, firing and recently resolved).
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.rules.values().flat_map(|r| r.alerts.values())
    }

    /// The persisted form of the alerts: `(instance labels, alert)`.
    pub fn snapshot(&self) -> Vec<(LabelSet, Alert)> {
        self.rules
            .values()
            .flat_map(|r| r.alerts.iter().map(|(k, a)| (k.clone(), a.clone())))
            .collect()
    }

    /// Restores alerts saved by [`Engine::snapshot`] (for rules that still
    /// exist): pending timers, firing alerts, `keep_firing_for` and flap
    /// state all survive a restart.
    pub fn restore(&mut self, alerts: Vec<(LabelSet, Alert)>) {
        for (instance, alert) in alerts {
            if let Some(rt) = self.rules.get_mut(&alert.rule_id) {
                rt.alerts.insert(instance, alert);
            }
        }
    }

    /// The rules' memories, for persisting.
    pub fn memories(&self) -> Vec<(String, RuleMemory)> {
        self.rules
            .values()
            .filter(|r| !r.memory.is_empty())
            .map(|r| (r.spec.id.clone(), r.memory.clone()))
            .collect()
    }

    /// Restores memories saved by [`Engine::memories`].
    pub fn restore_memories(&mut self, memories: Vec<(String, RuleMemory)>) {
        for (id, m) in memories {
            if let Some(rt) = self.rules.get_mut(&id) {
                rt.memory = m;
            }
        }
    }

    /// When the next rule is due, ms.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.rules
            .values()
            .filter(|r| r.spec.enabled)
            .map(|r| r.next_eval_ms)
            .min()
    }

    /// The rules due at `now_ms` (their memory moves into the result).
    pub fn due(&mut self, now_ms: i64) -> Vec<DueRule> {
        self.rules
            .values_mut()
            .filter(|r| r.spec.enabled && r.next_eval_ms <= now_ms)
            .map(|r| DueRule {
                memory: std::mem::take(&mut r.memory),
                spec: r.spec.clone(),
                active: r
                    .alerts
                    .iter()
                    .filter(|(_, a)| a.state != AlertState::Resolved)
                    .map(|(k, _)| k.clone())
                    .collect(),
            })
            .collect()
    }

    /// Evaluates every due rule through `source` and applies the results.
    pub fn evaluate_due(&mut self, source: &dyn Source, now_ms: i64) -> Vec<Transition> {
        let due = self.due(now_ms);
        let mut out = Vec::new();
        for mut d in due {
            let started = Instant::now();
            let result = d.spec.evaluate(
                &EvalContext {
                    source,
                    now_ms,
                    active: &d.active,
                },
                &mut d.memory,
            );
            out.extend(self.apply(&d.spec.id, now_ms, result, started.elapsed(), d.memory));
        }
        out
    }

    /// Applies one evaluation's result to a rule's alerts.
    pub fn apply(
        &mut self,
        rule_id: &str,
        now_ms: i64,
        result: Result<Vec<Instance>, RuleError>,
        took: Duration,
        memory: RuleMemory,
    ) -> Vec<Transition> {
        let config = &self.config;
        let Some(rt) = self.rules.get_mut(rule_id) else {
            return Vec::new();
        };
        rt.memory = memory;
        let interval = rt.spec.interval.unwrap_or(config.default_interval);
        rt.last_eval_ms = Some(now_ms);
        rt.last_duration = took;
        // Keep the schedule on the grid so a slow tick does not drift it.
        let step = interval.as_millis().max(1) as i64;
        rt.next_eval_ms = rt.next_eval_ms.max(now_ms - step) + step;
        if rt.next_eval_ms <= now_ms {
            rt.next_eval_ms = now_ms + step;
        }
        let instances = match result {
            Ok(i) => {
                rt.last_error = None;
                i
            }
            Err(e) => {
                // Alerts keep their state while the rule cannot be read.
                rt.last_error = Some(e.to_string());
                return Vec::new();
            }
        };
        step_alerts(config, rt, instances, now_ms)
    }
}

fn step_alerts(
    config: &EngineConfig,
    rt: &mut RuleRuntime,
    instances: Vec<Instance>,
    now: i64,
) -> Vec<Transition> {
    let spec = rt.spec.clone();
    let for_ms = spec.for_.as_millis() as i64;
    let window_ms = config.flap.window.as_millis() as i64;
    let mut out = Vec::new();
    let mut seen: HashSet<LabelSet> = HashSet::with_capacity(instances.len());
    let mut record = |a: &Alert, from: Option<AlertState>, to: Option<AlertState>| {
        out.push(Transition {
            at_ms: now,
            rule_id: spec.id.clone(),
            labels: a.labels.clone(),
            from,
            to,
            value: a.value,
        })
    };
    for inst in instances {
        let (labels, annotations) = render_labels(config, &spec, &inst);
        seen.insert(inst.labels.clone());
        match rt.alerts.get_mut(&inst.labels) {
            Some(a) if a.state != AlertState::Resolved => {
                a.value = inst.value;
                a.labels = labels;
                a.annotations = annotations;
                a.keep_firing_since = None;
                if a.state == AlertState::Pending && now - a.active_at >= for_ms {
                    a.state = AlertState::Firing;
                    a.fired_at = Some(now);
                    if !a.flips.is_empty() {
                        a.flips.push(now);
                    }
                    record(a, Some(AlertState::Pending), Some(AlertState::Firing));
                }
            }
            existing => {
                let was = existing.as_ref().map(|a| a.state);
                let flips = existing.map(|a| a.flips.clone()).unwrap_or_default();
                let mut a = Alert {
                    labels,
                    annotations,
                    rule_id: spec.id.clone(),
                    state: AlertState::Pending,
                    value: inst.value,
                    active_at: now,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                    flips,
                    flapping: false,
                    generator_url: generator_url(
                        &config.external_url,
                        spec.condition.chart_query(),
                    ),
                    chart_query: spec.condition.chart_query().to_string(),
                    chart_threshold: spec.condition.chart_threshold(),
                    channels: spec.channels.clone(),
                };
                if for_ms == 0 {
                    a.state = AlertState::Firing;
                    a.fired_at = Some(now);
                    if was == Some(AlertState::Resolved) {
                        a.flips.push(now);
                    }
                }
                record(&a, was, Some(a.state));
                rt.alerts.insert(inst.labels, a);
            }
        }
    }
    let keep_ms = spec.keep_firing_for.as_millis() as i64;
    let hold_ms = config.flap.hold.as_millis() as i64;
    let retention_ms = config.resolved_retention.as_millis() as i64;
    let mut forget = Vec::new();
    for (key, a) in rt.alerts.iter_mut() {
        a.flips.retain(|t| now - t < window_ms);
        // Once flapping, a firing alert stays flapping until it resolves:
        // the hold itself stops the flips that made it flapping.
        a.flapping = config.flap.max_flips > 0
            && (a.flips.len() >= config.flap.max_flips
                || (a.flapping && a.state == AlertState::Firing));
        if seen.contains(key) {
            continue;
        }
        match a.state {
            AlertState::Pending => {
                record(a, Some(AlertState::Pending), None);
                forget.push(key.clone());
            }
            AlertState::Firing => {
                let since = *a.keep_firing_since.get_or_insert(now);
                let hold = if a.flapping {
                    keep_ms.max(hold_ms)
                } else {
                    keep_ms
                };
                if now - since >= hold {
                    a.state = AlertState::Resolved;
                    a.resolved_at = Some(now);
                    a.keep_firing_since = None;
                    a.flips.push(now);
                    a.flapping =
                        config.flap.max_flips > 0 && a.flips.len() >= config.flap.max_flips;
                    record(a, Some(AlertState::Firing), Some(AlertState::Resolved));
                }
            }
            AlertState::Resolved => {
                if now - a.resolved_at.unwrap_or(now) >= retention_ms {
                    record(a, Some(AlertState::Resolved), None);
                    forget.push(key.clone());
                }
            }
        }
    }
    for k in forget {
        rt.alerts.remove(&k);
    }
    out
}

fn render_labels(config: &EngineConfig, spec: &RuleSpec, inst: &Instance) -> (LabelSet, LabelSet) {
    let data = TemplateData {
        labels: &inst.labels,
        value: inst.value,
        external_labels: &config.external_labels,
    };
    let render = |t: &String| template::render(t, &data).unwrap_or_else(|e| e.to_string());
    let mut labels = inst.labels.clone();
    for (k, v) in &spec.labels {
        labels.insert(k.clone(), render(v));
    }
    labels.insert(ALERTNAME.to_string(), spec.name.clone());
    let annotations = spec
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), render(v)))
        .collect();
    (labels, annotations)
}

/// `<external_url>/graph?g0.expr=<expr>&g0.tab=1`, as Prometheus links.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.trim_end_matches('/'),
        percent_encode(expr)
    )
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

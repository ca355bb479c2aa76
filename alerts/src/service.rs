//! The running alerting service the server embeds: the engine, the
//! dispatcher, persisted definitions and state, the history, and the
//! operations behind the HTTP API.
//!
//! One loop ([`Alerting::run`]) evaluates due rules on the blocking pool,
//! feeds the dispatcher, sends due notifications (each in its own task,
//! with retries) and persists after every change.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

use crate::alert::{Alert, AlertState};
use crate::chart::{ChartRenderer, chart_request};
use crate::config::AlertingConfig;
use crate::engine::{Engine, EngineConfig, Transition};
use crate::labels::LabelSet;
use crate::notify::dispatch::Dispatcher;
use crate::notify::{
    ChannelKind, ChannelSpec, Delivery, Notification, SendContext, send_with_retries,
};
use crate::rule::{EvalContext, RuleSpec, file::load_rule_file};
use crate::silence::{Silence, SilenceState};
use crate::source::Source;
use crate::state::{
    Definitions, HistoryEntry, HistoryEvent, HistoryLog, RuntimeState, StateDir, StateError,
};

const DEFINITIONS: &str = "definitions.json";
const STATE: &str = "state.json";
const MEMORY: &str = "memory.json";
/// Learned rule state is larger and changes slowly: saved this often.
const MEMORY_SAVE_INTERVAL: Duration = Duration::from_secs(300);

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// It exists already (409).
    #[error("{0}")]
    Conflict(String),
    /// Defined in the config file or a rule file (403-ish; answered 400).
    #[error("{0}")]
    ReadOnly(String),
    /// Persisting failed (500).
    #[error("{0}")]
    Storage(String),
}

impl From<StateError> for ServiceError {
    fn from(e: StateError) -> Self {
        ServiceError::Storage(e.to_string())
    }
}

struct Core {
    engine: Engine,
    dispatcher: Dispatcher,
    defs: Definitions,
    file_rules: Vec<RuleSpec>,
    config_channels: Vec<ChannelSpec>,
    /// Resolved alerts of deleted rules, offered to notifiers for the
    /// resolved retention so their resolved notices go out.
    retired: Vec<Alert>,
    dirty: bool,
}

impl Core {
    fn channel(&self, id: &str) -> Option<&ChannelSpec> {
        self.config_channels
            .iter()
            .chain(self.defs.channels.iter())
            .find(|c| c.id == id)
    }

    fn active_silences(&self) -> Vec<Silence> {
        let now = Utc::now();
        self.defs
            .silences
            .iter()
            .filter(|s| s.state(now) == SilenceState::Active)
            .cloned()
            .collect()
    }
}

/// The alerting service.
pub struct Alerting {
    config: AlertingConfig,
    core: Mutex<Core>,
    source: Arc<dyn Source>,
    renderer: Option<Arc<dyn ChartRenderer>>,
    http: reqwest::Client,
    store: StateDir,
    history: Mutex<HistoryLog>,
    wake: tokio::sync::Notify,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A rule with its runtime state, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    /// The rule.
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// `inactive`, `pending` or `firing` (the worst of its alerts).
    pub state: &'static str,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: &'static str,
    /// The last evaluation's error.
    pub last_error: Option<String>,
    /// Last evaluation, RFC 3339.
    pub last_evaluation: Option<String>,
    /// Seconds the last evaluation took.
    pub evaluation_time: f64,
    /// Its alerts.
    pub alerts: Vec<Alert>,
}

impl Alerting {
    /// Opens the state in `dir`, loads rule files, restores alerts and the
    /// notification log.
    pub fn open(
        config: AlertingConfig,
        dir: &std::path::Path,
        source: Arc<dyn Source>,
        renderer: Option<Arc<dyn ChartRenderer>>,
    ) -> Result<Arc<Self>, ServiceError> {
        let store = StateDir::open(dir)?;
        let defs: Definitions = store.load(DEFINITIONS)?.unwrap_or_default();
        let runtime: RuntimeState = store.load(STATE)?.unwrap_or_default();
        let mut file_rules = Vec::new();
        for f in &config.rule_files {
            file_rules.extend(load_rule_file(f).map_err(|e| ServiceError::Invalid(e.to_string()))?);
        }
        for r in &config.rules {
            file_rules.push(config_rule(r, source.as_ref())?);
        }
        let mut ids = HashSet::new();
        for r in file_rules.iter().chain(defs.rules.iter()) {
            if !ids.insert(r.id.clone()) {
                return Err(ServiceError::Conflict(format!(
                    "rule id {:?} is defined twice",
                    r.id
                )));
            }
        }
        let mut config_channels = config.channels.clone();
        for (i, c) in config_channels.iter_mut().enumerate() {
            if c.id.is_empty() {
                c.id = format!("config-{i}");
            }
            c.origin = "config".into();
            c.validate()
                .map_err(|e| ServiceError::Invalid(format!("channel {:?}: {e}", c.id)))?;
        }
        for r in file_rules.iter().filter(|r| r.origin == CONFIG_ORIGIN) {
            if let Some(ch) = r.channels.iter().find(|ch| {
                !config_channels
                    .iter()
                    .chain(defs.channels.iter())
                    .any(|c| &c.id == *ch)
            }) {
                return Err(ServiceError::Invalid(format!(
                    "rule {:?} of the configuration: `channels`: there is no channel {ch:?}",
                    r.id
                )));
            }
        }
        config
            .route
            .validate()
            .map_err(|e| ServiceError::Invalid(format!("route: {e}")))?;
        let mut engine = Engine::new(EngineConfig {
            default_interval: config.evaluation_interval,
            resolved_retention: config.resolved_retention,
            flap: config.flap.clone(),
            external_url: config.external_url.clone(),
            external_labels: config.external_labels.clone(),
        });
        let now = now_ms();
        for r in file_rules.iter().chain(defs.rules.iter()) {
            engine.set_rule(r.clone(), now);
        }
        engine.restore(runtime.alerts);
        let memories: Vec<(String, crate::rule::RuleMemory)> = match store.load(MEMORY) {
            Ok(m) => m.unwrap_or_default(),
            Err(e) => {
                // Learned bands can be relearned; alerts and the log cannot.
                tracing::warn!(error = %e, "learned rule state unreadable; relearning");
                Vec::new()
            }
        };
        engine.restore_memories(memories);
        let mut dispatcher = Dispatcher::new(
            config.route.clone(),
            runtime.nflog,
            config.external_url.clone(),
        );
        let retired = runtime.retired;
        dispatcher.update(engine.alerts().chain(retired.iter()), now);
        let history = HistoryLog::open(dir, config.history_max_bytes)?;
        let http = reqwest::Client::builder()
            .timeout(config.retry.timeout)
            .build()
            .map_err(|e| ServiceError::Storage(format!("HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            config,
            core: Mutex::new(Core {
                engine,
                dispatcher,
                defs,
                file_rules,
                config_channels,
                retired,
                dirty: false,
            }),
            source,
            renderer,
            http,
            store,
            history: Mutex::new(history),
            wake: tokio::sync::Notify::new(),
        }))
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, entries: Vec<HistoryEntry>) {
        if let Err(e) = self
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&entries)
        {
            tracing::error!(error = %e, "cannot append to the alert history");
        }
    }

    fn persist_state(&self, core: &Core) {
        let state = RuntimeState {
            alerts: core.engine.snapshot(),
            nflog: core.dispatcher.nflog(),
            retired: core.retired.clone(),
        };
        if let Err(e) = self.store.save(STATE, &state) {
            tracing::error!(error = %e, "cannot persist the alert state");
        }
    }

    fn persist_memory(&self) {
        let memories = self.core().engine.memories();
        if let Err(e) = self.store.save(MEMORY, &memories) {
            tracing::error!(error = %e, "cannot persist learned rule state");
        }
    }

    fn persist_definitions(&self, core: &Core) -> Result<(), ServiceError> {
        self.store.save(DEFINITIONS, &core.defs)?;
        Ok(())
    }

    /// Runs until `shutdown` resolves; deliveries in flight then get a few
    /// seconds to finish (so their outcome is logged).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut sends = tokio::task::JoinSet::new();
        let mut memory_saved = Instant::now();
        loop {
            self.clone().tick(&mut sends).await;
            if memory_saved.elapsed() >= MEMORY_SAVE_INTERVAL {
                memory_saved = Instant::now();
                let this = self.clone();
                let _ = tokio::task::spawn_blocking(move || this.persist_memory()).await;
            }
            while sends.try_join_next().is_some() {}
            let next = {
                let core = self.core();
                [core.engine.next_due_ms(), core.dispatcher.next_due_ms()]
                    .into_iter()
                    .flatten()
                    .min()
            };
            let wait = next
                .map(|t| (t - now_ms()).clamp(10, 1000) as u64)
                .unwrap_or(1000);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = sends.join_next() => if r.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!("alerting stopped with deliveries in flight; they are retried after the restart");
                    break;
                }
            }
        }
        {
            let core = self.core();
            self.persist_state(&core);
        }
        self.persist_memory();
    }

    /// One round: evaluate due rules, dispatch, persist.
    async fn tick(self: Arc<Self>, sends: &mut tokio::task::JoinSet<()>) {
        let now = now_ms();
        let due = self.core().engine.due(now);
        if !due.is_empty() {
            let source = self.source.clone();
            let results = tokio::task::spawn_blocking(move || {
                due.into_iter()
                    .map(|mut d| {
                        let started = Instant::now();
                        let r = d.spec.evaluate(
                            &EvalContext {
                                source: source.as_ref(),
                                now_ms: now,
                                active: &d.active,
                            },
                            &mut d.memory,
                        );
                        (d.spec.id.clone(), r, started.elapsed(), d.memory)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let mut core = self.core();
            let mut transitions: Vec<Transition> = Vec::new();
            for (id, r, took, memory) in results {
                if let Err(e) = &r {
                    tracing::warn!(rule = %id, error = %e, "rule evaluation failed");
                }
                transitions.extend(core.engine.apply(&id, now, r, took, memory));
            }
            if !transitions.is_empty() {
                core.dirty = true;
                self.record(transitions.into_iter().map(history_of).collect());
            }
        }
        let (notifications, channels) = {
            let mut core = self.core();
            let core = &mut *core;
            let retention = self.config.resolved_retention.as_millis() as i64;
            core.retired
                .retain(|a| now - a.resolved_at.unwrap_or(now) < retention);
            core.dispatcher
                .update(core.engine.alerts().chain(core.retired.iter()), now);
            let silences = core.active_silences();
            let send_resolved: BTreeMap<String, bool> = core
                .config_channels
                .iter()
                .chain(core.defs.channels.iter())
                .map(|c| (c.id.clone(), c.send_resolved))
                .collect();
            let ns = core.dispatcher.flush_due(now, &silences, |r| {
                send_resolved.get(r).copied().unwrap_or(true)
            });
            if core.dirty || !ns.is_empty() {
                self.persist_state(core);
                core.dirty = false;
            }
            let channels: Vec<Option<ChannelSpec>> = ns
                .iter()
                .map(|n| core.channel(&n.receiver).cloned())
                .collect();
            (ns, channels)
        };
        for (n, channel) in notifications.into_iter().zip(channels) {
            let this = self.clone();
            sends.spawn(async move { this.deliver(n, channel).await });
        }
    }

    async fn deliver(self: Arc<Self>, n: Notification, channel: Option<ChannelSpec>) {
        let delivery = match &channel {
            None => Delivery {
                attempts: 0,
                error: Some(format!("channel {:?} does not exist", n.receiver)),
                attempt_errors: Vec::new(),
            },
            Some(ch) => {
                let chart = match ch.kind {
                    ChannelKind::Email(_) => self.chart(&n).await,
                    _ => None,
                };
                self.send(ch, &n, chart.as_deref()).await
            }
        };
        let now = now_ms();
        let entry = match &delivery.error {
            None => HistoryEvent::Notified {
                receiver: n.receiver.clone(),
                group_key: n.group_key.clone(),
                reason: n.reason.clone(),
                status: n.status.clone(),
                alerts: n.alerts.iter().map(Alert::fingerprint).collect(),
                attempts: delivery.attempts,
            },
            Some(error) => HistoryEvent::NotificationFailed {
                receiver: n.receiver.clone(),
                group_key: n.group_key.clone(),
                reason: n.reason.clone(),
                attempts: delivery.attempts,
                error: error.clone(),
                attempt_errors: delivery.attempt_errors.clone(),
            },
        };
        {
            let mut core = self.core();
            if delivery.error.is_none() {
                core.dispatcher.delivered(&n, now);
            } else {
                tracing::error!(channel = %n.receiver, group = %n.group_key, error = ?delivery.error, "notification failed; retried at the next group interval");
                core.dispatcher.failed(&n);
            }
            // The log is on disk before the history says "delivered".
            self.persist_state(&core);
        }
        self.record(vec![HistoryEntry {
            at_ms: now,
            event: entry,
        }]);
        self.wake.notify_one();
    }

    async fn send(&self, ch: &ChannelSpec, n: &Notification, chart: Option<&[u8]>) -> Delivery {
        let dashboard = if self.config.dashboard_url.is_empty() {
            &self.config.external_url
        } else {
            &self.config.dashboard_url
        };
        let ctx = SendContext {
            http: &self.http,
            chart,
            dashboard_url: dashboard,
            timeout: self.config.retry.timeout,
        };
        send_with_retries(ch, n, &ctx, &self.config.retry).await
    }

    /// The PNG chart of a notification, if a renderer is configured and
    /// there is data.
    async fn chart(&self, n: &Notification) -> Option<Vec<u8>> {
        let renderer = self.renderer.clone()?;
        let source = self.source.clone();
        let n = n.clone();
        let range = self.config.chart_range.as_millis() as i64;
        let r = tokio::task::spawn_blocking(move || {
            let req = chart_request(&n, source.as_ref(), now_ms(), range, 800, 320)?;
            req.map(|r| renderer.render_png(&r)).transpose()
        })
        .await;
        match r {
            Ok(Ok(png)) => png,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot draw the alert chart; sending without it");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "the chart task failed");
                None
            }
        }
    }

    // ---- API operations ----

    /// Every rule with its state.
    pub fn rules(&self) -> Vec<RuleStatus> {
        let core = self.core();
        core.engine.rules().map(status_of).collect()
    }

    /// One rule.
    pub fn rule(&self, id: &str) -> Result<RuleStatus, ServiceError> {
        let core = self.core();
        core.engine
            .rule(id)
            .map(status_of)
            .ok_or_else(|| ServiceError::NotFound(format!("no rule {id:?}")))
    }

    /// Replays `spec` over `[start_ms, end_ms]` (see [`crate::preview`]),
    /// every `step_ms` or the rule's interval; nothing is stored. The rule
    /// is checked as [`Alerting::create_rule`] checks it. Blocks on
    /// queries: call it from a blocking thread.
    pub fn preview(
        &self,
        spec: &RuleSpec,
        start_ms: i64,
        end_ms: i64,
        step_ms: Option<i64>,
    ) -> Result<crate::preview::Simulation, ServiceError> {
        self.preview_with(spec, self.source.as_ref(), start_ms, end_ms, step_ms)
    }

    /// [`Alerting::preview`] reading through `source` instead of the
    /// service's own (e.g. one limited to what the caller may see).
    pub fn preview_with(
        &self,
        spec: &RuleSpec,
        source: &dyn Source,
        start_ms: i64,
        end_ms: i64,
        step_ms: Option<i64>,
    ) -> Result<crate::preview::Simulation, ServiceError> {
        self.check_rule(spec, &self.core())?;
        let config = EngineConfig {
            default_interval: self.config.evaluation_interval,
            resolved_retention: self.config.resolved_retention,
            flap: self.config.flap.clone(),
            external_url: self.config.external_url.clone(),
            external_labels: self.config.external_labels.clone(),
        };
        let step = step_ms
            .unwrap_or_else(|| crate::preview::preview_step(spec, &config, start_ms, end_ms));
        crate::preview::simulate(spec, source, config, start_ms, end_ms, step)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    fn check_rule(&self, spec: &RuleSpec, core: &Core) -> Result<(), ServiceError> {
        spec.validate(Some(self.source.as_ref()))
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        for ch in &spec.channels {
            if core.channel(ch).is_none() {
                return Err(ServiceError::Invalid(format!(
                    "`channels`: there is no channel {ch:?}"
                )));
            }
        }
        Ok(())
    }

    /// Creates a rule (id assigned from the name when empty).
    pub fn create_rule(&self, mut spec: RuleSpec) -> Result<RuleSpec, ServiceError> {
        let mut core = self.core();
        spec.origin = "api".into();
        if spec.id.is_empty() {
            spec.id = unique_id(&slug(&spec.name), |id| core.engine.rule(id).is_some());
        } else if core.engine.rule(&spec.id).is_some() {
            return Err(ServiceError::Conflict(format!(
                "a rule with id {:?} exists",
                spec.id
            )));
        }
        self.check_rule(&spec, &core)?;
        core.defs.rules.push(spec.clone());
        self.persist_definitions(&core)?;
        core.engine.set_rule(spec.clone(), now_ms());
        drop(core);
        self.wake.notify_one();
        Ok(spec)
    }

    /// Replaces a rule made through the API.
    pub fn update_rule(&self, id: &str, mut spec: RuleSpec) -> Result<RuleSpec, ServiceError> {
        let mut core = self.core();
        if let Some(r) = core.file_rules.iter().find(|r| r.id == id) {
            return Err(ServiceError::ReadOnly(format!(
                "rule {id:?} comes from {}; edit it there",
                read_only_origin(r)
            )));
        }
        let Some(pos) = core.defs.rules.iter().position(|r| r.id == id) else {
            return Err(ServiceError::NotFound(format!("no rule {id:?}")));
        };
        spec.id = body_id_matching_path(&spec.id, id)?;
        spec.origin = "api".into();
        self.check_rule(&spec, &core)?;
        core.defs.rules[pos] = spec.clone();
        self.persist_definitions(&core)?;
        core.engine.set_rule(spec.clone(), now_ms());
        drop(core);
        self.wake.notify_one();
        Ok(spec)
    }

    /// Deletes a rule made through the API; its firing alerts resolve.
    pub fn delete_rule(&self, id: &str) -> Result<(), ServiceError> {
        let mut core = self.core();
        if let Some(r) = core.file_rules.iter().find(|r| r.id == id) {
            return Err(ServiceError::ReadOnly(format!(
                "rule {id:?} comes from {}; edit it there",
                read_only_origin(r)
            )));
        }
        let Some(pos) = core.defs.rules.iter().position(|r| r.id == id) else {
            return Err(ServiceError::NotFound(format!("no rule {id:?}")));
        };
        core.defs.rules.remove(pos);
        self.persist_definitions(&core)?;
        let now = now_ms();
        let resolved = core.engine.remove_rule(id, now).unwrap_or_default();
        // Resolved notices for what was firing.
        core.retired.extend(resolved);
        core.dirty = true;
        drop(core);
        self.wake.notify_one();
        Ok(())
    }

    /// Every channel.
    pub fn channels(&self) -> Vec<ChannelSpec> {
        let core = self.core();
        core.config_channels
            .iter()
            .chain(core.defs.channels.iter())
            .map(redact)
            .collect()
    }

    /// One channel.
    pub fn channel(&self, id: &str) -> Result<ChannelSpec, ServiceError> {
        self.core()
            .channel(id)
            .map(redact)
            .ok_or_else(|| ServiceError::NotFound(format!("no channel {id:?}")))
    }

    /// Creates a channel.
    pub fn create_channel(&self, mut c: ChannelSpec) -> Result<ChannelSpec, ServiceError> {
        let mut core = self.core();
        c.origin = "api".into();
        if c.id.is_empty() {
            let base = slug(if c.name.is_empty() {
                c.kind_name()
            } else {
                &c.name
            });
            c.id = unique_id(&base, |id| core.channel(id).is_some());
        } else if core.channel(&c.id).is_some() {
            return Err(ServiceError::Conflict(format!(
                "a channel with id {:?} exists",
                c.id
            )));
        }
        c.validate().map_err(ServiceError::Invalid)?;
        core.defs.channels.push(c.clone());
        self.persist_definitions(&core)?;
        Ok(redact(&c))
    }

    /// Replaces a channel made through the API.
    pub fn update_channel(
        &self,
        id: &str,
        mut c: ChannelSpec,
    ) -> Result<ChannelSpec, ServiceError> {
        let mut core = self.core();
        if core.config_channels.iter().any(|x| x.id == id) {
            return Err(ServiceError::ReadOnly(format!(
                "channel {id:?} is defined in the config file"
            )));
        }
        let Some(pos) = core.defs.channels.iter().position(|x| x.id == id) else {
            return Err(ServiceError::NotFound(format!("no channel {id:?}")));
        };
        c.id = body_id_matching_path(&c.id, id)?;
        c.origin = "api".into();
        c.validate().map_err(ServiceError::Invalid)?;
        core.defs.channels[pos] = c.clone();
        self.persist_definitions(&core)?;
        Ok(redact(&c))
    }

    /// Deletes a channel no rule names.
    pub fn delete_channel(&self, id: &str) -> Result<(), ServiceError> {
        let mut core = self.core();
        if core.config_channels.iter().any(|x| x.id == id) {
            return Err(ServiceError::ReadOnly(format!(
                "channel {id:?} is defined in the config file"
            )));
        }
        let Some(pos) = core.defs.channels.iter().position(|x| x.id == id) else {
            return Err(ServiceError::NotFound(format!("no channel {id:?}")));
        };
        if let Some(r) = core
            .engine
            .rules()
            .find(|r| r.spec.channels.iter().any(|c| c == id))
        {
            return Err(ServiceError::Conflict(format!(
                "rule {:?} still notifies channel {id:?}",
                r.spec.id
            )));
        }
        core.defs.channels.remove(pos);
        self.persist_definitions(&core)
    }

    /// Sends a test notification through a channel now (no retries) and
    /// reports the outcome.
    pub async fn test_channel(&self, id: &str) -> Result<Delivery, ServiceError> {
        let ch = self
            .core()
            .channel(id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no channel {id:?}")))?;
        let now = now_ms();
        let labels: LabelSet = [
            (
                "alertname".to_string(),
                "OspreyTestNotification".to_string(),
            ),
            ("severity".to_string(), "none".to_string()),
        ]
        .into();
        let alert = Alert {
            labels: labels.clone(),
            annotations: [(
                "summary".to_string(),
                "A test notification from Osprey; no action needed.".to_string(),
            )]
            .into(),
            rule_id: String::new(),
            state: AlertState::Firing,
            value: 1.0,
            active_at: now,
            fired_at: Some(now),
            resolved_at: None,
            keep_firing_since: None,
            flips: Vec::new(),
            flapping: false,
            generator_url: self.config.external_url.clone(),
            chart_query: String::new(),
            chart_threshold: None,
            channels: Vec::new(),
        };
        let n = Notification {
            receiver: ch.id.clone(),
            group_key: "{}/test:{alertname=\"OspreyTestNotification\"}".into(),
            group_labels: [(
                "alertname".to_string(),
                "OspreyTestNotification".to_string(),
            )]
            .into(),
            status: "firing".into(),
            reason: "test notification".into(),
            alerts: vec![alert],
            external_url: self.config.external_url.clone(),
            at_ms: now,
        };
        let one = crate::notify::RetryConfig {
            max_attempts: 1,
            ..self.config.retry.clone()
        };
        let dashboard = if self.config.dashboard_url.is_empty() {
            &self.config.external_url
        } else {
            &self.config.dashboard_url
        };
        let ctx = SendContext {
            http: &self.http,
            chart: None,
            dashboard_url: dashboard,
            timeout: self.config.retry.timeout,
        };
        Ok(send_with_retries(&ch, &n, &ctx, &one).await)
    }

    /// Every silence with its state.
    pub fn silences(&self) -> Vec<(Silence, SilenceState)> {
        let now = Utc::now();
        self.core()
            .defs
            .silences
            .iter()
            .map(|s| (s.clone(), s.state(now)))
            .collect()
    }

    /// One silence.
    pub fn silence(&self, id: &str) -> Result<(Silence, SilenceState), ServiceError> {
        let now = Utc::now();
        self.core()
            .defs
            .silences
            .iter()
            .find(|s| s.id == id)
            .map(|s| (s.clone(), s.state(now)))
            .ok_or_else(|| ServiceError::NotFound(format!("no silence {id:?}")))
    }

    /// Creates a silence; expired silences older than 5 days are dropped.
    pub fn create_silence(&self, mut s: Silence) -> Result<Silence, ServiceError> {
        s.validate().map_err(ServiceError::Invalid)?;
        let mut core = self.core();
        s.id = unique_id("silence", |id| {
            core.defs.silences.iter().any(|x| x.id == id)
        });
        let cutoff = Utc::now() - chrono::Duration::days(5);
        core.defs.silences.retain(|x| x.ends_at > cutoff);
        core.defs.silences.push(s.clone());
        self.persist_definitions(&core)?;
        drop(core);
        self.wake.notify_one();
        Ok(s)
    }

    /// Changes a silence's window, matchers or comment.
    pub fn update_silence(&self, id: &str, mut s: Silence) -> Result<Silence, ServiceError> {
        s.validate().map_err(ServiceError::Invalid)?;
        let mut core = self.core();
        let Some(pos) = core.defs.silences.iter().position(|x| x.id == id) else {
            return Err(ServiceError::NotFound(format!("no silence {id:?}")));
        };
        s.id = id.to_string();
        core.defs.silences[pos] = s.clone();
        self.persist_definitions(&core)?;
        Ok(s)
    }

    /// Expires a silence now (it stays listed as expired).
    pub fn expire_silence(&self, id: &str) -> Result<(), ServiceError> {
        let mut core = self.core();
        let Some(s) = core.defs.silences.iter_mut().find(|x| x.id == id) else {
            return Err(ServiceError::NotFound(format!("no silence {id:?}")));
        };
        let now = Utc::now();
        if s.ends_at > now {
            s.ends_at = now;
            if s.starts_at > now {
                s.starts_at = now;
            }
        }
        self.persist_definitions(&core)
    }

    /// History, newest first, optionally for one rule, since `since_ms`.
    pub fn history(
        &self,
        rule_id: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, ServiceError> {
        self.history_where(rule_id, since_ms, limit, |_| true)
    }

    /// [`Alerting::history`] of the entries `keep` accepts only (the limit
    /// counts kept entries).
    pub fn history_where(
        &self,
        rule_id: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
        keep: impl Fn(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>, ServiceError> {
        let limit = limit.min(self.config.history_limit);
        let log = self.history.lock().unwrap_or_else(|p| p.into_inner());
        Ok(log.read(limit, |e| {
            keep(e)
                && since_ms.is_none_or(|s| e.at_ms >= s)
                && rule_id.is_none_or(|r| match &e.event {
                    HistoryEvent::Transition { rule_id, .. } => rule_id == r,
                    _ => false,
                })
        })?)
    }

    /// `GET /api/v1/rules` data, Prometheus's shape.
    pub fn prometheus_rules(&self) -> Value {
        let core = self.core();
        let mut groups: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for rt in core.engine.rules() {
            let st = status_of(rt);
            let alerts: Vec<Value> = st
                .alerts
                .iter()
                .filter(|a| a.state != AlertState::Resolved)
                .map(prometheus_alert)
                .collect();
            groups
                .entry((rt.spec.group.clone(), rt.spec.origin.clone()))
                .or_default()
                .push(json!({
                    "state": st.state,
                    "name": rt.spec.name,
                    "query": rt.spec.condition.describe(),
                    "duration": rt.spec.for_.as_secs_f64(),
                    "keepFiringFor": rt.spec.keep_firing_for.as_secs_f64(),
                    "labels": rt.spec.labels,
                    "annotations": rt.spec.annotations,
                    "alerts": alerts,
                    "health": st.health,
                    "lastError": st.last_error.unwrap_or_default(),
                    "evaluationTime": st.evaluation_time,
                    "lastEvaluation": st.last_evaluation.unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                    "type": "alerting",
                    "id": rt.spec.id,
                    "kind": rt.spec.condition.kind(),
                }));
        }
        let interval = self.config.evaluation_interval.as_secs_f64();
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|((name, file), rules)| {
                json!({"name": name, "file": file, "rules": rules, "interval": interval})
            })
            .collect();
        json!({ "groups": groups })
    }

    /// `GET /api/v1/alerts` data, Prometheus's shape.
    pub fn prometheus_alerts(&self) -> Value {
        let core = self.core();
        let alerts: Vec<Value> = core
            .engine
            .alerts()
            .filter(|a| a.state != AlertState::Resolved)
            .map(prometheus_alert)
            .collect();
        json!({ "alerts": alerts })
    }
}

fn prometheus_alert(a: &Alert) -> Value {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.prometheus_name(),
        "activeAt": crate::notify::webhook::rfc3339(a.active_at),
        "value": crate::template::format_value(a.value),
    })
}

fn status_of(rt: &crate::engine::RuleRuntime) -> RuleStatus {
    let alerts: Vec<Alert> = rt.alerts.values().cloned().collect();
    let state = if alerts.iter().any(|a| a.state == AlertState::Firing) {
        "firing"
    } else if alerts.iter().any(|a| a.state == AlertState::Pending) {
        "pending"
    } else {
        "inactive"
    };
    RuleStatus {
        spec: (*rt.spec).clone(),
        state,
        health: match (&rt.last_eval_ms, &rt.last_error) {
            (None, _) => "unknown",
            (_, Some(_)) => "err",
            _ => "ok",
        },
        last_error: rt.last_error.clone(),
        last_evaluation: rt.last_eval_ms.map(crate::notify::webhook::rfc3339),
        evaluation_time: rt.last_duration.as_secs_f64(),
        alerts,
    }
}

fn history_of(t: Transition) -> HistoryEntry {
    HistoryEntry {
        at_ms: t.at_ms,
        event: HistoryEvent::Transition {
            rule_id: t.rule_id,
            labels: t.labels,
            from: t.from,
            to: t.to,
            value: t.value,
        },
    }
}

/// Secrets are never answered.
fn redact(c: &ChannelSpec) -> ChannelSpec {
    let mut c = c.clone();
    match &mut c.kind {
        ChannelKind::Email(e) => {
            if e.password.is_some() {
                e.password = Some("<secret>".into());
            }
        }
        ChannelKind::Webhook(w) => {
            if w.hmac_secret.is_some() {
                w.hmac_secret = Some("<secret>".into());
            }
        }
        ChannelKind::Alertmanager(_) => {}
    }
    c
}

/// `origin` of the rules defined in `[[server.alerting.rules]]`.
const CONFIG_ORIGIN: &str = "config";

/// A rule of `[[server.alerting.rules]]`, checked as the API checks one,
/// with its id derived from the name when empty.
fn config_rule(spec: &RuleSpec, source: &dyn Source) -> Result<RuleSpec, ServiceError> {
    let mut r = spec.clone();
    r.origin = CONFIG_ORIGIN.into();
    if r.id.is_empty() {
        r.id = slug(&r.name);
    }
    r.validate(Some(source)).map_err(|e| {
        ServiceError::Invalid(format!("rule {:?} of the configuration: {e}", r.name))
    })?;
    Ok(r)
}

/// Where a read-only rule is defined, for messages.
fn read_only_origin(r: &RuleSpec) -> String {
    if r.origin == CONFIG_ORIGIN {
        "the configuration ([[server.alerting.rules]])".into()
    } else {
        format!("the rule file {}", r.origin)
    }
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "item".into() } else { s }
}

fn unique_id(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .expect("some id is free")
}

/// The id of an object replaced through `PUT .../{id}`: the path's, which a
/// body may repeat but not contradict.
fn body_id_matching_path(body_id: &str, path_id: &str) -> Result<String, ServiceError> {
    if !body_id.is_empty() && body_id != path_id {
        return Err(ServiceError::Invalid(format!(
            "the body's id {body_id:?} differs from the path's {path_id:?}"
        )));
    }
    Ok(path_id.to_string())
}

//! Aggregation groups and the notification log.
//!
//! Alerts are routed to `(receiver, group key)` groups. A new group waits
//! `group_wait` (an alert that resolves within it is never notified),
//! then is looked at every `group_interval`. What is sent is decided
//! against the notification log, which records per group the firing and
//! resolved alerts last delivered: Alertmanager's dedup stage, so a
//! restarted server (which reloads the log) sends nothing twice. The log
//! changes only after a delivery succeeded; a failed delivery is retried
//! at the next `group_interval`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::Notification;
use super::route::{Route, RouteOpts};
use crate::alert::{Alert, AlertState};
use crate::labels::to_selector_string;
use crate::silence::Silence;

/// What the log keeps for one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NflogEntry {
    /// The channel.
    pub receiver: String,
    /// The group key.
    pub group_key: String,
    /// Fingerprints of the firing alerts last delivered.
    pub firing: BTreeSet<String>,
    /// Fingerprints of the resolved alerts last delivered.
    pub resolved: BTreeSet<String>,
    /// When, ms.
    pub sent_at_ms: i64,
}

#[derive(Debug, Clone)]
struct Group {
    opts: RouteOpts,
    group_key: String,
    group_labels: crate::labels::LabelSet,
    alerts: BTreeMap<String, Alert>,
    next_flush_ms: i64,
    in_flight: bool,
}

/// The groups and the log.
#[derive(Debug, Default)]
pub struct Dispatcher {
    route: Route,
    groups: BTreeMap<String, Group>,
    nflog: BTreeMap<String, NflogEntry>,
    external_url: String,
}

fn log_key(receiver: &str, group_key: &str) -> String {
    format!("{receiver}\u{0}{group_key}")
}

impl Dispatcher {
    /// A dispatcher with the routing tree and a restored log.
    pub fn new(route: Route, nflog: Vec<NflogEntry>, external_url: String) -> Self {
        Self {
            route,
            groups: BTreeMap::new(),
            nflog: nflog
                .into_iter()
                .map(|e| (log_key(&e.receiver, &e.group_key), e))
                .collect(),
            external_url,
        }
    }

    /// Replaces the routing tree (groups are rebuilt at the next update).
    pub fn set_route(&mut self, route: Route) {
        self.route = route;
        self.groups.clear();
    }

    /// The routing tree.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The log, for persisting.
    pub fn nflog(&self) -> Vec<NflogEntry> {
        self.nflog.values().cloned().collect()
    }

    /// Takes the current firing and resolved alerts (pending ones are
    /// ignored) and sorts them into groups.
    pub fn update<'a>(&mut self, alerts: impl IntoIterator<Item = &'a Alert>, now_ms: i64) {
        let mut present: BTreeMap<String, BTreeMap<String, Alert>> = BTreeMap::new();
        let mut opts_of: BTreeMap<String, (RouteOpts, String, crate::labels::LabelSet)> =
            BTreeMap::new();
        for a in alerts {
            if a.state == AlertState::Pending {
                continue;
            }
            let mut routes = self.route.resolve(&a.labels);
            for ch in &a.channels {
                if !routes.iter().any(|r| &r.receiver == ch) {
                    routes.push(
                        self.route
                            .root_opts(format!("{{}}/rule:{}", a.rule_id), ch.clone()),
                    );
                }
            }
            for opts in routes {
                let group_labels = opts.group_labels(&a.labels);
                let group_key = format!("{}:{}", opts.key, to_selector_string(&group_labels));
                let key = log_key(&opts.receiver, &group_key);
                present
                    .entry(key.clone())
                    .or_default()
                    .insert(a.fingerprint(), a.clone());
                opts_of
                    .entry(key)
                    .or_insert((opts, group_key, group_labels));
            }
        }
        self.groups.retain(|k, _| present.contains_key(k));
        for (key, alerts) in present {
            let (opts, group_key, group_labels) = opts_of.remove(&key).expect("same keys");
            match self.groups.get_mut(&key) {
                Some(g) => {
                    g.alerts = alerts;
                    g.opts = opts;
                }
                None => {
                    // A group the log knows was notified before (e.g.
                    // before a restart): no new group_wait, the next look
                    // is one group_interval after the last delivery.
                    let next = match self.nflog.get(&key) {
                        Some(e) => {
                            (e.sent_at_ms + opts.group_interval.as_millis() as i64).max(now_ms)
                        }
                        None => now_ms + opts.group_wait.as_millis() as i64,
                    };
                    self.groups.insert(
                        key,
                        Group {
                            opts,
                            group_key,
                            group_labels,
                            alerts,
                            next_flush_ms: next,
                            in_flight: false,
                        },
                    );
                }
            }
        }
        // Forget log entries of groups that are gone and had nothing firing.
        let groups = &self.groups;
        self.nflog
            .retain(|k, e| groups.contains_key(k) || !e.firing.is_empty());
    }

    /// When the next group is due, ms.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .filter(|g| !g.in_flight)
            .map(|g| g.next_flush_ms)
            .min()
    }

    /// The notifications due at `now_ms`. `send_resolved(receiver)` says
    /// whether a channel wants resolved alerts. Each returned notification
    /// must be answered with [`Dispatcher::delivered`] or
    /// [`Dispatcher::failed`].
    pub fn flush_due(
        &mut self,
        now_ms: i64,
        silences: &[Silence],
        send_resolved: impl Fn(&str) -> bool,
    ) -> Vec<Notification> {
        let now = Utc
            .timestamp_millis_opt(now_ms)
            .single()
            .unwrap_or_else(Utc::now);
        let mut out = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            if g.in_flight || g.next_flush_ms > now_ms {
                continue;
            }
            g.next_flush_ms = now_ms + g.opts.group_interval.as_millis() as i64;
            let visible: Vec<&Alert> = g
                .alerts
                .values()
                .filter(|a| !silences.iter().any(|s| s.mutes(&a.labels, now)))
                .collect();
            let firing: BTreeSet<String> = visible
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| a.fingerprint())
                .collect();
            let resolved: BTreeSet<String> = visible
                .iter()
                .filter(|a| a.state == AlertState::Resolved)
                .map(|a| a.fingerprint())
                .collect();
            let wants_resolved = send_resolved(&g.opts.receiver);
            let entry = self.nflog.get(key);
            let reason = match entry {
                None if firing.is_empty() => None,
                None => Some("first notification"),
                Some(e) if !firing.is_subset(&e.firing) => Some(if e.firing.is_empty() {
                    "first notification"
                } else {
                    "new alerts added"
                }),
                Some(e) if firing.is_empty() && !e.firing.is_empty() => {
                    // Sent even without send_resolved, to close the group
                    // on the receiver's side (Alertmanager does the same).
                    Some("all alerts resolved")
                }
                Some(e) if firing.is_empty() => {
                    let _ = e;
                    None
                }
                Some(e) if wants_resolved && !resolved.is_subset(&e.resolved) => {
                    Some("some alerts resolved")
                }
                Some(e) if now_ms - e.sent_at_ms >= g.opts.repeat_interval.as_millis() as i64 => {
                    Some("repeat interval elapsed")
                }
                Some(_) => None,
            };
            let Some(reason) = reason else { continue };
            let mut alerts: Vec<Alert> = visible
                .iter()
                .filter(|a| a.state == AlertState::Firing || wants_resolved)
                .map(|a| (*a).clone())
                .collect();
            alerts.sort_by_key(|a| (a.state != AlertState::Firing, a.labels.clone()));
            if alerts.is_empty() {
                // "All resolved" to a channel without send_resolved: the
                // log is closed without a message.
                self.nflog.insert(
                    key.clone(),
                    NflogEntry {
                        receiver: g.opts.receiver.clone(),
                        group_key: g.group_key.clone(),
                        firing,
                        resolved,
                        sent_at_ms: now_ms,
                    },
                );
                continue;
            }
            g.in_flight = true;
            out.push(Notification {
                receiver: g.opts.receiver.clone(),
                group_key: g.group_key.clone(),
                group_labels: g.group_labels.clone(),
                status: if firing.is_empty() {
                    "resolved"
                } else {
                    "firing"
                }
                .into(),
                reason: reason.into(),
                alerts,
                external_url: self.external_url.clone(),
                at_ms: now_ms,
            });
        }
        out
    }

    /// Records a delivered notification in the log.
    pub fn delivered(&mut self, n: &Notification, now_ms: i64) {
        let key = log_key(&n.receiver, &n.group_key);
        if let Some(g) = self.groups.get_mut(&key) {
            g.in_flight = false;
        }
        let firing = n.firing().map(Alert::fingerprint).collect();
        // Everything resolved in the group at decision time counts as
        // delivered, including alerts left out for lack of send_resolved.
        let resolved = n
            .alerts
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
            .map(Alert::fingerprint)
            .collect();
        self.nflog.insert(
            key,
            NflogEntry {
                receiver: n.receiver.clone(),
                group_key: n.group_key.clone(),
                firing,
                resolved,
                sent_at_ms: now_ms,
            },
        );
    }

    /// A notification that could not be delivered: the log is unchanged,
    /// so the group is tried again at its next interval.
    pub fn failed(&mut self, n: &Notification) {
        if let Some(g) = self.groups.get_mut(&log_key(&n.receiver, &n.group_key)) {
            g.in_flight = false;
        }
    }
}

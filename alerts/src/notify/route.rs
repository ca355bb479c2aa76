//! The routing tree: every alert enters at the root; children are tried
//! in order, the first match wins unless it sets `continue`; unset options
//! are inherited from the parent (Alertmanager's `route`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::labels::LabelSet;
use crate::matcher::{Matcher, matches_all};

/// A node of the tree (`[server.alerting.route]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// The channel id notified; none: alerts stopping here go only to
    /// the channels their rule names.
    pub receiver: Option<String>,
    /// Every matcher must match for the route to apply.
    pub matchers: Vec<Matcher>,
    /// Labels alerts are grouped by; `["..."]` groups by all labels.
    pub group_by: Option<Vec<String>>,
    /// Wait before a new group's first notification.
    #[serde(with = "humantime_serde::option")]
    pub group_wait: Option<Duration>,
    /// Wait between notifications of a group that changed.
    #[serde(with = "humantime_serde::option")]
    pub group_interval: Option<Duration>,
    /// Wait before repeating an unchanged group's notification.
    #[serde(with = "humantime_serde::option")]
    pub repeat_interval: Option<Duration>,
    /// Go on to the next sibling after matching.
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// Children.
    pub routes: Vec<Route>,
}

/// A matched route's effective options.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    /// The route's key (its path in the tree).
    pub key: String,
    /// The channel.
    pub receiver: String,
    /// Group labels (`None`: all labels).
    pub group_by: Option<Vec<String>>,
    /// See [`Route::group_wait`].
    pub group_wait: Duration,
    /// See [`Route::group_interval`].
    pub group_interval: Duration,
    /// See [`Route::repeat_interval`].
    pub repeat_interval: Duration,
}

impl RouteOpts {
    /// The group labels of `labels` under these options.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match &self.group_by {
            None => labels.clone(),
            Some(by) => by
                .iter()
                .filter_map(|b| labels.get(b).map(|v| (b.clone(), v.clone())))
                .collect(),
        }
    }
}

struct Inherited {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
}

impl Route {
    /// Checks the tree.
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(g), Some(r)) = (self.group_interval, self.repeat_interval)
            && r < g
        {
            return Err("`repeat_interval` shorter than `group_interval` has no effect".into());
        }
        if matches!(self.group_interval, Some(d) if d.is_zero()) {
            return Err("`group_interval` must be positive".into());
        }
        self.routes.iter().try_for_each(Route::validate)
    }

    /// The routes `labels` take, with their options.
    pub fn resolve(&self, labels: &LabelSet) -> Vec<RouteOpts> {
        let root = Inherited {
            receiver: None,
            group_by: Some(vec![crate::labels::ALERTNAME.to_string()]),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
        };
        let mut out = Vec::new();
        self.walk(labels, &root, "{}", &mut out);
        out
    }

    /// The root's options for a rule's own channels.
    pub fn root_opts(&self, key: String, receiver: String) -> RouteOpts {
        let inh = self.inherit(&Inherited {
            receiver: None,
            group_by: Some(vec![crate::labels::ALERTNAME.to_string()]),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
        });
        RouteOpts {
            key,
            receiver,
            group_by: inh.group_by,
            group_wait: inh.group_wait,
            group_interval: inh.group_interval,
            repeat_interval: inh.repeat_interval,
        }
    }

    fn inherit(&self, parent: &Inherited) -> Inherited {
        let group_by = match &self.group_by {
            Some(g) if g.iter().any(|l| l == "...") => None,
            Some(g) => Some(g.clone()),
            None => parent.group_by.clone(),
        };
        Inherited {
            receiver: self.receiver.clone().or_else(|| parent.receiver.clone()),
            group_by,
            group_wait: self.group_wait.unwrap_or(parent.group_wait),
            group_interval: self.group_interval.unwrap_or(parent.group_interval),
            repeat_interval: self.repeat_interval.unwrap_or(parent.repeat_interval),
        }
    }

    /// Returns whether this node matched.
    fn walk(
        &self,
        labels: &LabelSet,
        parent: &Inherited,
        key: &str,
        out: &mut Vec<RouteOpts>,
    ) -> bool {
        if !matches_all(&self.matchers, labels) {
            return false;
        }
        let inh = self.inherit(parent);
        let key = if self.matchers.is_empty() {
            key.to_string()
        } else {
            let m: Vec<String> = self.matchers.iter().map(ToString::to_string).collect();
            format!("{key}/{{{}}}", m.join(","))
        };
        let mut matched_child = false;
        for (i, child) in self.routes.iter().enumerate() {
            if child.walk(labels, &inh, &format!("{key}/{i}"), out) {
                matched_child = true;
                if !child.continue_ {
                    break;
                }
            }
        }
        if !matched_child && let Some(receiver) = &inh.receiver {
            out.push(RouteOpts {
                key,
                receiver: receiver.clone(),
                group_by: inh.group_by,
                group_wait: inh.group_wait,
                group_interval: inh.group_interval,
                repeat_interval: inh.repeat_interval,
            });
        }
        true
    }
}

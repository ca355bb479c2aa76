//! Osprey's alerting: rules, the evaluation engine, persisted state and
//! notifications.
//!
//! | module | concept |
//! |---|---|
//! | [`rule`] | what a rule says; each kind of condition |
//! | [`engine`] | evaluation on intervals; pending → firing → resolved; flap damping |
//! | [`alert`] | an alert instance and its state |
//! | [`notify`] | routing, grouping, dedup, retries; e-mail, webhook, Alertmanager |
//! | [`preview`] | a rule replayed over history (the rule form's preview) |
//! | [`silence`] | silences |
//! | [`state`] | what is persisted in the data directory, and how |
//! | [`service`] | the running whole the server embeds |
//! | [`source`] | the query trait the server implements |
//! | [`chart`] | charts for e-mails (a renderer trait the server implements) |
//! | [`config`] | `[server.alerting]` |
//! | [`detect`] | anomaly detectors behind the baseline and host comparison kinds |

pub mod alert;
pub mod chart;
pub mod config;
pub mod detect;
pub mod engine;
pub mod labels;
pub mod matcher;
pub mod notify;
pub mod preview;
pub mod rule;
pub mod service;
pub mod silence;
pub mod source;
pub mod state;
pub mod template;

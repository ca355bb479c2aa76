//! When a rule over many members fires: any, all, at least N, or N % of
//! the members violating (Cloud Monitoring's `trigger`, Sysdig's
//! `segmentCondition`).

use serde::{Deserialize, Serialize};

use super::RuleError;

/// JSON: `"any"`, `"all"`, `{"at_least": 3}` or `{"percent": 50}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// One violating member is enough (each is its own alert).
    #[default]
    Any,
    /// Every member (at least one) must violate.
    All,
    /// At least this many members.
    AtLeast(usize),
    /// At least this percentage of the members (0 < p ≤ 100).
    Percent(f64),
}

impl Trigger {
    /// Whether `violating` of `members` satisfies the trigger.
    pub fn met(self, violating: usize, members: usize) -> bool {
        if violating == 0 {
            return false;
        }
        match self {
            Trigger::Any => true,
            Trigger::All => violating == members,
            Trigger::AtLeast(n) => violating >= n,
            Trigger::Percent(p) => violating as f64 * 100.0 >= p * members as f64,
        }
    }

    /// Checks the numbers.
    pub fn validate(self) -> Result<(), RuleError> {
        match self {
            Trigger::AtLeast(0) => Err(RuleError::Invalid(
                "trigger `at_least` must be 1 or more".into(),
            )),
            Trigger::Percent(p) if !(p > 0.0 && p <= 100.0) => Err(RuleError::Invalid(format!(
                "trigger `percent` must be in (0, 100], not {p}"
            ))),
            _ => Ok(()),
        }
    }
}

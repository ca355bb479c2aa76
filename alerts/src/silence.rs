//! Silences: matchers and a time window; alerts they match are not
//! notified while the silence is active.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::labels::LabelSet;
use crate::matcher::{Matcher, matches_all};

/// A silence. JSON: `{"matchers":["alertname=\"HighCPU\""],"starts_at":…,"ends_at":…,"created_by":"…","comment":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Assigned when created.
    #[serde(default)]
    pub id: String,
    /// Every matcher must match (at least one).
    pub matchers: Vec<Matcher>,
    /// Start [default: now].
    #[serde(default = "Utc::now")]
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Who made it.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// Where a silence is in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started.
    Pending,
    /// Muting.
    Active,
    /// Over.
    Expired,
}

impl Silence {
    /// Checks the silence.
    pub fn validate(&self) -> Result<(), String> {
        if self.matchers.is_empty() {
            return Err("a silence needs at least one matcher".into());
        }
        if self.ends_at <= self.starts_at {
            return Err("`ends_at` must be after `starts_at`".into());
        }
        Ok(())
    }

    /// Its state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether it mutes `labels` at `now`.
    pub fn mutes(&self, labels: &LabelSet, now: DateTime<Utc>) -> bool {
        self.state(now) == SilenceState::Active && matches_all(&self.matchers, labels)
    }
}

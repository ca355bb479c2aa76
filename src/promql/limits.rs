//! What a query may cost: a timeout and limits on the series and samples it
//! reads, and the errors a query answers with.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bounds every query runs under: the `[server.query]` table of the
/// configuration. A request's `timeout` parameter may shorten the timeout,
/// never lengthen it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimits {
    /// Longest a query may run (Prometheus's default: 2 minutes).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Most series one query may read from storage, over all its selectors.
    pub max_series: usize,
    /// Most samples one query may read from storage (Prometheus's default
    /// `--query.max-samples` is 50 million).
    pub max_samples: usize,
    /// Staleness lookback of instant selectors (default 5 minutes).
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            max_series: 500_000,
            max_samples: 50_000_000,
            lookback: Duration::from_secs(300),
        }
    }
}

/// Why a query failed, in the Prometheus API's error classes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query or a parameter is malformed or unsupported (`bad_data`, 400).
    #[error("{0}")]
    BadData(String),
    /// The query is valid but cannot be evaluated (`execution`, 422).
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than its timeout (`timeout`, 503).
    #[error("query timed out in {0}")]
    Timeout(String),
    /// The client went away before the answer was ready (`canceled`).
    #[error("query was canceled in {0}")]
    Canceled(String),
    /// Reading the storage failed (`internal`, 500).
    #[error("storage: {0}")]
    Storage(String),
}

impl From<crate::storage::StorageError> for QueryError {
    fn from(e: crate::storage::StorageError) -> Self {
        QueryError::Storage(e.to_string())
    }
}

/// The running account of one query against its [`QueryLimits`].
#[derive(Debug)]
pub struct Budget {
    limits: QueryLimits,
    deadline: Instant,
    series: Cell<usize>,
    samples: Cell<usize>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Budget {
    /// Starts the clock.
    pub fn start(limits: QueryLimits) -> Self {
        Self {
            limits,
            deadline: Instant::now() + limits.timeout,
            series: Cell::new(0),
            samples: Cell::new(0),
            cancel: None,
        }
    }

    /// Also stops the query once `cancel` is set (by the request handler
    /// when the client goes away).
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Fails once the deadline has passed or the query was canceled;
    /// `stage` names what was running.
    pub fn check_time(&self, stage: &str) -> Result<(), QueryError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(QueryError::Canceled(stage.to_string()));
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout(format!(
                "{stage} (limit {:?})",
                self.limits.timeout
            )));
        }
        Ok(())
    }

    /// Accounts for one series with `samples` samples read from storage.
    pub fn take_series(&self, samples: usize) -> Result<(), QueryError> {
        let series = self.series.get() + 1;
        let total = self.samples.get() + samples;
        self.series.set(series);
        self.samples.set(total);
        if series > self.limits.max_series {
            return Err(QueryError::Execution(format!(
                "query touches more than {} series (the server's limit); narrow the selectors",
                self.limits.max_series
            )));
        }
        if total > self.limits.max_samples {
            return Err(QueryError::Execution(format!(
                "query processing would load too many samples into memory (more than {}); \
                 shorten the range or narrow the selectors",
                self.limits.max_samples
            )));
        }
        Ok(())
    }

    /// Series read so far.
    pub fn series(&self) -> usize {
        self.series.get()
    }

    /// Samples read so far.
    pub fn samples(&self) -> usize {
        self.samples.get()
    }

    /// The limits in force.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_with_clear_errors() {
        let b = Budget::start(QueryLimits {
            max_series: 2,
            max_samples: 10,
            ..QueryLimits::default()
        });
        b.take_series(4).unwrap();
        let e = b.take_series(7).unwrap_err();
        assert!(e.to_string().contains("too many samples"), "{e}");
        let b = Budget::start(QueryLimits {
            max_series: 1,
            ..QueryLimits::default()
        });
        b.take_series(0).unwrap();
        assert!(b.take_series(0).unwrap_err().to_string().contains("series"));
        let b = Budget::start(QueryLimits {
            timeout: Duration::ZERO,
            ..QueryLimits::default()
        });
        assert!(matches!(b.check_time("x"), Err(QueryError::Timeout(_))));
        let cancel = Arc::new(AtomicBool::new(false));
        let b = Budget::start(QueryLimits::default()).with_cancel(cancel.clone());
        b.check_time("x").unwrap();
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(b.check_time("x"), Err(QueryError::Canceled(_))));
    }
}

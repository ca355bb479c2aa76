//! `[server.forward]`: where the server forwards what it receives.
//!
//! ```toml
//! [[server.forward.remote_write]]
//! name = "mimir"                                   # [A-Za-z0-9_-], unique
//! url = "http://mimir:9009/api/v1/push"
//! matchers = ['{namespace="prod"}', 'container_cpu_usage_seconds_total']
//! bearer_token_file = "/run/secrets/mimir-token"
//! max_queue_bytes = 1073741824
//!
//! [[server.forward.loki]]
//! name = "loki"
//! url = "http://loki:3100/loki/api/v1/push"
//! selectors = ['{namespace="prod"}']
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use osprey_collector::ship::RemoteWriteConfig;
use serde::{Deserialize, Serialize};

/// The `[server.forward]` table: every forwarding target. Empty (the
/// default) forwards nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// Prometheus remote-write 1.0 receivers (`[[server.forward.remote_write]]`):
    /// Prometheus, Mimir, Thanos Receive, VictoriaMetrics, Cortex, …
    pub remote_write: Vec<RemoteWriteTarget>,
    /// Loki push endpoints (`[[server.forward.loki]]`) for log streams.
    pub loki: Vec<LokiTarget>,
}

/// One remote-write receiver and which series go to it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteTarget {
    /// Names the target in logs, metrics (`target` label) and the default
    /// queue directory; letters, digits, `_` and `-`, unique among targets.
    pub name: String,
    /// The receiver's endpoint, e.g. `http://prometheus:9090/api/v1/write`
    /// (plain HTTP: put a TLS-terminating proxy in front for HTTPS).
    pub url: String,
    /// PromQL series selectors (`{namespace="prod"}`,
    /// `container_cpu_usage_seconds_total`, `up{job=~"node.*"}`); a series
    /// is forwarded when it matches any of them. Empty forwards every
    /// series.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// File holding the bearer token (read at start, trimmed); wins over
    /// `bearer_token`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// The persistent queue's directory; default `<data_dir>/forward/<name>`.
    /// One directory per target: never share it.
    #[serde(default)]
    pub queue_dir: Option<PathBuf>,
    /// Bytes the queue may hold on disk; past it the *oldest* batches are
    /// dropped and counted (`outcome="dropped"`). Default 1 GiB.
    #[serde(default = "default_max_queue_bytes")]
    pub max_queue_bytes: u64,
    /// Most samples in one request when several batches wait (a single
    /// larger ingest batch is still sent whole). Default 10 000.
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: u64,
    /// How long to let batches gather before sending when the queue was
    /// empty (the batch deadline), e.g. `"1s"`. Default `0s`: each ingest
    /// request is sent at once.
    #[serde(default, with = "humantime_serde")]
    pub batch_wait: Duration,
    /// Time allowed for one request. Default `10s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay after a 5xx, 429 or connection error. Default `100ms`.
    #[serde(default = "default_min_backoff", with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest retry delay (doubling from `min_backoff`, with jitter).
    /// Default `5s`.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

/// One Loki push endpoint and which log streams go to it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiTarget {
    /// As for [`RemoteWriteTarget::name`].
    pub name: String,
    /// The push endpoint, e.g. `http://loki:3100/loki/api/v1/push`.
    pub url: String,
    /// LogQL stream selectors (`{namespace="prod", container=~"api|web"}`);
    /// a stream is forwarded when it matches any. Empty forwards every
    /// stream.
    #[serde(default)]
    pub selectors: Vec<String>,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// File holding the bearer token; wins over `bearer_token`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// The persistent queue's directory; default `<data_dir>/forward/<name>`.
    #[serde(default)]
    pub queue_dir: Option<PathBuf>,
    /// Bytes the queue may hold on disk. Default 1 GiB.
    #[serde(default = "default_max_queue_bytes")]
    pub max_queue_bytes: u64,
    /// Most log lines in one push when several batches wait. Default 10 000.
    #[serde(default = "default_max_samples_per_send")]
    pub max_lines_per_send: u64,
    /// As for [`RemoteWriteTarget::batch_wait`].
    #[serde(default, with = "humantime_serde")]
    pub batch_wait: Duration,
    /// Time allowed for one request. Default `10s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay. Default `100ms`.
    #[serde(default = "default_min_backoff", with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest retry delay. Default `5s`.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

fn default_max_queue_bytes() -> u64 {
    1 << 30
}
fn default_max_samples_per_send() -> u64 {
    10_000
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_min_backoff() -> Duration {
    Duration::from_millis(100)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(5)
}

/// What both kinds of target share, to build the shipper's settings.
pub(super) struct Common<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub bearer_token: &'a Option<String>,
    pub bearer_token_file: &'a Option<PathBuf>,
    pub queue_dir: &'a Option<PathBuf>,
    pub max_queue_bytes: u64,
    pub max_per_send: u64,
    pub batch_wait: Duration,
    pub timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl RemoteWriteTarget {
    pub(super) fn common(&self) -> Common<'_> {
        Common {
            name: &self.name,
            url: &self.url,
            bearer_token: &self.bearer_token,
            bearer_token_file: &self.bearer_token_file,
            queue_dir: &self.queue_dir,
            max_queue_bytes: self.max_queue_bytes,
            max_per_send: self.max_samples_per_send,
            batch_wait: self.batch_wait,
            timeout: self.timeout,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
        }
    }
}

impl LokiTarget {
    pub(super) fn common(&self) -> Common<'_> {
        Common {
            name: &self.name,
            url: &self.url,
            bearer_token: &self.bearer_token,
            bearer_token_file: &self.bearer_token_file,
            queue_dir: &self.queue_dir,
            max_queue_bytes: self.max_queue_bytes,
            max_per_send: self.max_lines_per_send,
            batch_wait: self.batch_wait,
            timeout: self.timeout,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
        }
    }
}

impl Common<'_> {
    /// The queue directory this target uses.
    pub fn queue_dir(&self, data_dir: &Path) -> PathBuf {
        self.queue_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("forward").join(self.name))
    }

    /// The shipper's settings: every batch goes to disk (fsynced) when it
    /// is queued, so `memory_bytes` is 0.
    pub fn shipper_config(&self, data_dir: &Path) -> RemoteWriteConfig {
        RemoteWriteConfig {
            url: self.url.to_string(),
            bearer_token: self.bearer_token.clone(),
            bearer_token_file: self.bearer_token_file.clone(),
            timeout: self.timeout,
            memory_bytes: 0,
            disk_bytes: self.max_queue_bytes,
            spill_dir: Some(self.queue_dir(data_dir)),
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
            catch_up_max_samples: self.max_per_send,
            shutdown_flush_timeout: Duration::from_secs(2),
            batch_wait: self.batch_wait,
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "forward target name {:?} must be non-empty letters, digits, '_' or '-'",
                self.name
            ));
        }
        if self.max_queue_bytes == 0 {
            return Err(format!(
                "forward target {}: max_queue_bytes must be greater than zero",
                self.name
            ));
        }
        if self.timeout.is_zero() {
            return Err(format!(
                "forward target {}: timeout must be greater than zero",
                self.name
            ));
        }
        if self.min_backoff > self.max_backoff {
            return Err(format!(
                "forward target {}: min_backoff is larger than max_backoff",
                self.name
            ));
        }
        Ok(())
    }
}

/// Hides bearer tokens.
macro_rules! debug_hiding_token {
    ($ty:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("name", &self.name)
                    .field("url", &self.url)
                    .field(
                        "bearer_token",
                        &self.bearer_token.as_ref().map(|_| "<hidden>"),
                    )
                    .field("bearer_token_file", &self.bearer_token_file)
                    .field("queue_dir", &self.queue_dir)
                    .field("max_queue_bytes", &self.max_queue_bytes)
                    .finish_non_exhaustive()
            }
        }
    };
}
debug_hiding_token!(RemoteWriteTarget);
debug_hiding_token!(LokiTarget);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_defaults_and_refuse_unknown_keys() {
        let config: ForwardConfig = toml::from_str(
            r#"
            [[remote_write]]
            name = "mimir"
            url = "http://mimir:9009/api/v1/push"
            matchers = ['{namespace="prod"}']
            bearer_token = "a-very-secret-token"
            batch_wait = "1s"

            [[loki]]
            name = "loki"
            url = "http://loki:3100/loki/api/v1/push"
            "#,
        )
        .unwrap();
        let rw = &config.remote_write[0];
        assert_eq!(rw.max_queue_bytes, 1 << 30);
        assert_eq!(rw.batch_wait, Duration::from_secs(1));
        assert_eq!(
            rw.common().queue_dir(Path::new("/data")),
            Path::new("/data/forward/mimir")
        );
        assert!(!format!("{rw:?}").contains("a-very-secret-token"));
        let shipper = rw.common().shipper_config(Path::new("/data"));
        assert_eq!(shipper.memory_bytes, 0);
        assert_eq!(shipper.disk_bytes, 1 << 30);
        assert_eq!(config.loki[0].selectors, Vec::<String>::new());
        assert!(
            toml::from_str::<ForwardConfig>("[[remote_write]]\nname=\"a\"\nurl=\"x\"\nmatcher=[]")
                .is_err()
        );
    }

    #[test]
    fn names_must_be_path_and_label_safe() {
        let mut target: RemoteWriteTarget =
            toml::from_str("name = \"ok_name-1\"\nurl = \"http://x/\"").unwrap();
        assert!(target.common().validate().is_ok());
        for bad in ["", "../etc", "a b", "a/b"] {
            target.name = bad.into();
            assert!(target.common().validate().is_err(), "{bad:?}");
        }
    }
}

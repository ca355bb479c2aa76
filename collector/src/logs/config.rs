//! Settings of log collection and shipping (`[agent.logs]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::multiline::MultilineConfig;
use super::push::PushFormat;

/// `[agent.logs]`: which files are tailed and where their lines go. Its
/// presence turns log shipping on. Container logs are found under the
/// agent's `pod_log_root`, `container_log_root` and
/// `<docker_root>/containers`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// The receiver's push endpoint, e.g.
    /// `http://osprey:9090/loki/api/v1/push` (a Loki works too). `osprey
    /// up` fills it in with its own server; `osprey agent` requires it.
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// File holding the bearer token (read once at start, trimmed); wins
    /// over `bearer_token`.
    pub bearer_token_file: Option<PathBuf>,
    /// Body format: `protobuf` (snappy-compressed, the default) or `json`.
    pub format: PushFormat,
    /// Tail container logs (kubelet and Docker json-file logs).
    pub containers: bool,
    /// Plain files to tail besides container logs (`[[agent.logs.files]]`).
    pub files: Vec<FileSource>,
    /// Multiline joining for container logs (`[agent.logs.multiline]`);
    /// unset: one entry per line.
    pub multiline: Option<MultilineConfig>,
    /// Longest entry in bytes; longer ones are cut and end with
    /// [`super::TRUNCATION_MARKER`].
    pub max_line_bytes: usize,
    /// Where to start in files found at the agent's first start (no
    /// checkpoint yet): `beginning` or `end`. Files appearing later are
    /// always read from their beginning.
    pub read_from: ReadFrom,
    /// How often open files are checked for new bytes (e.g. `"250ms"`).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often the roots and globs are listed for new files.
    #[serde(with = "humantime_serde")]
    pub discover_interval: Duration,
    /// How long a rotated or deleted file stays open after its last byte
    /// was read, for late writes.
    #[serde(with = "humantime_serde")]
    pub rotate_wait: Duration,
    /// A batch is sent when it holds this many bytes…
    pub batch_max_bytes: usize,
    /// …or when its first entry is this old.
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
    /// Bytes of sealed batches waiting for the receiver (kept in the spool
    /// under `<data_dir>/logs`) beyond which reading pauses until batches
    /// are acknowledged: back-pressure instead of unbounded growth.
    pub max_inflight_bytes: u64,
    /// Time allowed for one push.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay after a failed push.
    #[serde(with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// On a graceful stop, how long to keep pushing before leaving the rest
    /// in the spool for the next start.
    #[serde(with = "humantime_serde")]
    pub shutdown_flush_timeout: Duration,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            bearer_token: None,
            bearer_token_file: None,
            format: PushFormat::Protobuf,
            containers: true,
            files: Vec::new(),
            multiline: None,
            max_line_bytes: 256 << 10,
            read_from: ReadFrom::Beginning,
            poll_interval: Duration::from_millis(250),
            discover_interval: Duration::from_secs(5),
            rotate_wait: Duration::from_secs(5),
            batch_max_bytes: 1 << 20,
            batch_wait: Duration::from_secs(1),
            max_inflight_bytes: 64 << 20,
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            shutdown_flush_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for LogsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsConfig")
            .field("url", &self.url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<hidden>"),
            )
            .field("bearer_token_file", &self.bearer_token_file)
            .field("format", &self.format)
            .field("containers", &self.containers)
            .field("files", &self.files)
            .field("multiline", &self.multiline)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("read_from", &self.read_from)
            .field("poll_interval", &self.poll_interval)
            .field("discover_interval", &self.discover_interval)
            .field("rotate_wait", &self.rotate_wait)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("batch_wait", &self.batch_wait)
            .field("max_inflight_bytes", &self.max_inflight_bytes)
            .field("timeout", &self.timeout)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("shutdown_flush_timeout", &self.shutdown_flush_timeout)
            .finish()
    }
}

/// Where to start reading a file met for the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From its first byte.
    #[default]
    Beginning,
    /// From its current end.
    End,
}

/// A set of plain text files (`[[agent.logs.files]]`), e.g. node and system
/// logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The `job` label of its lines (e.g. `syslog`).
    pub name: String,
    /// Paths or globs (`*`, `?` and `[…]` within one path component), e.g.
    /// `/var/log/syslog`, `/var/log/nginx/*.log`.
    pub paths: Vec<String>,
    /// Multiline joining for these files.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
url = "http://osprey-server:9090/loki/api/v1/push"
bearer_token_file = "/etc/osprey/token"
format = "json"
max_line_bytes = 262144
max_inflight_bytes = 67108864
read_from = "end"

[multiline]
start_pattern = '^\S'
timeout = "1s"

[[files]]
name = "syslog"
paths = ["/var/log/syslog", "/var/log/nginx/*.log"]
"#;
        let c: LogsConfig = toml::from_str(text).unwrap();
        assert_eq!(c.format, PushFormat::Json);
        assert_eq!(c.read_from, ReadFrom::End);
        assert_eq!(c.multiline.unwrap().start_pattern, r"^\S");
        assert_eq!(c.files[0].paths.len(), 2);
        assert_eq!(
            c.poll_interval,
            Duration::from_millis(250),
            "defaults fill the rest"
        );
        assert!(
            !format!(
                "{:?}",
                LogsConfig {
                    bearer_token: Some("hunter2".into()),
                    ..LogsConfig::default()
                }
            )
            .contains("hunter2")
        );
        assert!(toml::from_str::<LogsConfig>("unknown_key = 1").is_err());
    }
}

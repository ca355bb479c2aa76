//! What alerting keeps in its data directory, and how:
//!
//! - `definitions.json`: rules, channels and silences created through the
//!   API;
//! - `state.json`: alert states and the notification log (so a restart
//!   neither re-sends nor forgets);
//! - `history.log`: an append-only log of state changes and deliveries.
//!
//! Snapshots are written to a temporary file, fsynced and renamed over
//! the old one (then the directory is fsynced), and carry a CRC-32 of
//! their body, so a crash leaves either the old or the new file and a
//! damaged one is detected rather than half-read. Each history line
//! carries its own CRC-32; a torn last line is skipped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertState};
use crate::labels::LabelSet;
use crate::notify::ChannelSpec;
use crate::notify::dispatch::NflogEntry;
use crate::rule::RuleSpec;
use crate::silence::Silence;

const MAGIC: &str = "osprey-alerting-v1";

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is damaged.
    #[error("{path} is damaged: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Rules, channels and silences made through the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    /// Rules.
    pub rules: Vec<RuleSpec>,
    /// Channels.
    pub channels: Vec<ChannelSpec>,
    /// Silences (expired ones are dropped after a while).
    pub silences: Vec<Silence>,
}

/// Alert states and the notification log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeState {
    /// `(instance labels, alert)` of every rule.
    pub alerts: Vec<(LabelSet, Alert)>,
    /// The notification log.
    pub nflog: Vec<NflogEntry>,
    /// Resolved alerts of deleted rules whose resolved notice may still
    /// be due.
    #[serde(default)]
    pub retired: Vec<Alert>,
}

/// The alerting data directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating) `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `value` to `name` atomically.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let body = serde_json::to_vec(value).expect("serializable state");
        let crc = crc32fast::hash(&body);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(format!("{MAGIC} {crc:08x}\n").as_bytes())
            .and_then(|_| f.write_all(&body))
            .and_then(|_| f.sync_all())
            .map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Reads `name`; `None` when it does not exist.
    pub fn load<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StateError> {
        let path = self.dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let corrupt = |why: String| StateError::Corrupt {
            path: path.clone(),
            why,
        };
        let nl = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no header line".into()))?;
        let header = std::str::from_utf8(&bytes[..nl]).map_err(|e| corrupt(e.to_string()))?;
        let want = header
            .strip_prefix(MAGIC)
            .and_then(|h| u32::from_str_radix(h.trim(), 16).ok())
            .ok_or_else(|| corrupt(format!("unexpected header {header:?}")))?;
        let body = &bytes[nl + 1..];
        let got = crc32fast::hash(body);
        if got != want {
            return Err(corrupt(format!("checksum {got:08x}, expected {want:08x}")));
        }
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }
}

/// What the history records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryEvent {
    /// An alert changed state.
    Transition {
        /// Rule.
        rule_id: String,
        /// Alert labels.
        labels: LabelSet,
        /// Previous state (none: new).
        from: Option<AlertState>,
        /// New state (none: forgotten).
        to: Option<AlertState>,
        /// Value then.
        value: f64,
    },
    /// A notification was delivered.
    Notified {
        /// Channel.
        receiver: String,
        /// Group key.
        group_key: String,
        /// Why it was sent.
        reason: String,
        /// `firing` or `resolved`.
        status: String,
        /// Fingerprints of the alerts.
        alerts: Vec<String>,
        /// Attempts it took.
        attempts: u32,
    },
    /// A notification failed after its retries; it will be tried again
    /// at the group's next interval.
    NotificationFailed {
        /// Channel.
        receiver: String,
        /// Group key.
        group_key: String,
        /// Why it was due.
        reason: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
        /// Every attempt's error.
        attempt_errors: Vec<String>,
    },
}

/// One history line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When, ms.
    pub at_ms: i64,
    /// What.
    #[serde(flatten)]
    pub event: HistoryEvent,
}

/// The append-only history.
#[derive(Debug)]
pub struct HistoryLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

impl HistoryLog {
    /// Opens `<dir>/history.log` for appending.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, StateError> {
        let path = dir.join("history.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| StateError::Io {
                path: path.clone(),
                source,
            })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path,
            file,
            size,
            max_bytes,
        })
    }

    /// Appends entries and syncs them.
    pub fn append(&mut self, entries: &[HistoryEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        if self.size > self.max_bytes {
            let old = self.path.with_extension("log.1");
            std::fs::rename(&self.path, &old).map_err(io)?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
            self.size = 0;
        }
        let mut buf = Vec::new();
        for e in entries {
            let json = serde_json::to_string(e).expect("serializable");
            buf.extend_from_slice(
                format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())).as_bytes(),
            );
        }
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// The newest `limit` entries accepted by `keep`, newest first (the
    /// rotated file is read too).
    pub fn read(
        &self,
        limit: usize,
        keep: impl Fn(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>, StateError> {
        let mut out = Vec::new();
        for path in [self.path.with_extension("log.1"), self.path.clone()] {
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(StateError::Io { path, source }),
            };
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                let Some((crc, json)) = line.split_once(' ') else {
                    continue;
                };
                if u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(json.as_bytes())) {
                    continue;
                }
                if let Ok(e) = serde_json::from_str::<HistoryEntry>(json)
                    && keep(&e)
                {
                    out.push(e);
                }
            }
        }
        out.reverse();
        out.truncate(limit);
        Ok(out)
    }
}

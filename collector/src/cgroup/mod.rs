//! Reading statistics and limits from cgroup interface files, v1 and v2.
//!
//! - [`parse`]: total parsers for the kernel's file formats;
//! - [`v1`] and [`v2`]: cAdvisor's rules mapping file contents onto
//!   [`ContainerStats`](crate::stats::ContainerStats) and
//!   [`ContainerSpec`](crate::stats::ContainerSpec);
//! - [`reader`]: [`CgroupReader`], the per-cgroup hot path that keeps the
//!   statistics files open and re-reads them every tick.

pub mod parse;
pub mod reader;
pub mod v1;
pub mod v2;

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use parse::ParseError;
pub use reader::{CgroupReader, kernel_memory_stat_lag, raise_open_file_limit};

/// Values above this are "unlimited" in cAdvisor's limit rules (the kernel
/// prints its "no limit" as a page-rounded `i64::MAX` on v1).
pub const UNLIMITED_ABOVE: u64 = 1 << 62;

/// Why statistics or limits of a cgroup could not be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The cgroup was removed (the kernel answers ENODEV/ENOENT). The
    /// caller should stop tracking it.
    #[error("cgroup `{cgroup}` no longer exists; stop tracking it")]
    Vanished {
        /// The cgroup path, e.g. `/docker/<id>`.
        cgroup: String,
    },
    /// The layout has no hierarchy to read this cgroup from.
    #[error(
        "no cgroup hierarchy is mounted for {what}; check /proc/self/mountinfo and the configured cgroup root"
    )]
    NotMounted {
        /// The missing controller or hierarchy, e.g. `"the unified hierarchy"`.
        what: &'static str,
    },
    /// An I/O error other than the cgroup vanishing.
    #[error(
        "cannot read `{path}`: {source}; check that the agent runs as root and the cgroup filesystem is mounted read-write or read-only, not masked"
    )]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file was read but its contents are not in the kernel's format.
    #[error(
        "unexpected contents in `{path}`: {source}; the kernel may be newer than this agent understands, please report it"
    )]
    Parse {
        /// The file whose contents are malformed.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: ParseError,
    },
}

impl ReadError {
    /// Whether this error means the cgroup is gone.
    pub fn is_vanished(&self) -> bool {
        matches!(self, ReadError::Vanished { .. })
    }

    pub(crate) fn parse(path: &Path, source: ParseError) -> Self {
        ReadError::Parse {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Whether an I/O error means the file (or its cgroup) is gone: ENOENT
/// when opening, ENODEV when reading a file whose cgroup was removed.
pub(crate) fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ENODEV)
}

/// Reads a whole limit file that may be absent. `None` when it does not
/// exist; [`ReadError::Vanished`] when `cgroup_dir` itself is gone.
pub(crate) fn read_optional(
    cgroup: &str,
    cgroup_dir: &Path,
    name: &str,
) -> Result<Option<(PathBuf, String)>, ReadError> {
    let path = cgroup_dir.join(name);
    // At every limit refresh this runs for each of thousands of cgroups'
    // ~7 limit files: `read_small` takes three system calls to
    // `fs::read`'s five.
    match crate::readfile::read_small(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Some((path, text))),
            Err(_) => Err(ReadError::parse(&path, ParseError::NotText)),
        },
        Err(err) if is_gone(&err) => {
            if cgroup_dir.is_dir() {
                Ok(None)
            } else {
                Err(ReadError::Vanished {
                    cgroup: cgroup.to_owned(),
                })
            }
        }
        Err(source) => Err(ReadError::Io { path, source }),
    }
}

/// A limit in bytes, or `None` when the kernel reports "no limit" (any value
/// above 2^62, as cAdvisor).
pub fn limit_or_unlimited(value: u64) -> Option<u64> {
    (value <= UNLIMITED_ABOVE).then_some(value)
}

//! Per-container network counters from `/proc/<pid>/net/dev`.
//!
//! Reading `/proc/<pid>/net/dev` shows the network namespace of that task, so
//! no `setns` is needed. Only cgroups whose tasks live in a namespace of
//! their own get counters: a cgroup sharing the host's namespace (systemd
//! services, pod-level cgroups) would otherwise report the host's
//! interfaces over and over, and the containers of one pod share the
//! sandbox's namespace, so the pod's traffic is reported once, on the
//! cgroup that owns the namespace first (see [`NetnsRegistry`]).
//!
//! The parser is a dozen lines on purpose: the file is re-read with `pread`
//! on a handle kept open between ticks, which general-purpose `/proc`
//! libraries (that open and allocate per call) do not allow.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::stats::InterfaceStats;

/// Interface name prefixes that never carry a container's own traffic
/// (loopback, host-side veth ends, bridges), ignored as cAdvisor does.
const IGNORED_PREFIXES: &[&str] = &["lo", "veth", "docker", "nerdctl"];

/// Parses the text of `/proc/<pid>/net/dev`.
///
/// Lines with the wrong number of fields are skipped (cAdvisor rejects the
/// whole file; one odd line should not hide every interface).
pub fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let lower = name.to_ascii_lowercase();
        if IGNORED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            continue;
        }
        let mut fields = [0u64; 16];
        let mut n = 0;
        for (slot, word) in fields.iter_mut().zip(counters.split_ascii_whitespace()) {
            match word.parse() {
                Ok(v) => *slot = v,
                Err(_) => break,
            }
            n += 1;
        }
        if n != 16 || counters.split_ascii_whitespace().count() != 16 {
            continue;
        }
        out.push(InterfaceStats {
            name: name.to_string(),
            rx_bytes: fields[0],
            rx_packets: fields[1],
            rx_errors: fields[2],
            rx_dropped: fields[3],
            tx_bytes: fields[8],
            tx_packets: fields[9],
            tx_errors: fields[10],
            tx_dropped: fields[11],
        });
    }
    out
}

/// The identity of a network namespace: the inode of `/proc/<pid>/ns/net`.
pub type NetnsId = u64;

/// Reads the network namespace a task lives in.
pub fn netns_of(proc_root: &Path, pid: u32) -> io::Result<NetnsId> {
    Ok(std::fs::metadata(proc_root.join(pid.to_string()).join("ns/net"))?.ino())
}

/// A held-open `/proc/<pid>/net/dev` of one task.
#[derive(Debug)]
pub struct NetDevReader {
    pid: u32,
    netns: NetnsId,
    file: File,
    buf: Vec<u8>,
}

impl NetDevReader {
    /// Opens the counters of `pid`'s network namespace.
    pub fn open(proc_root: &Path, pid: u32) -> io::Result<Self> {
        let netns = netns_of(proc_root, pid)?;
        let file = File::open(net_dev_path(proc_root, pid))?;
        Ok(Self {
            pid,
            netns,
            file,
            buf: Vec::with_capacity(4096),
        })
    }

    /// The task whose namespace is read.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file read, under `proc_root`.
    pub fn path(&self, proc_root: &Path) -> PathBuf {
        net_dev_path(proc_root, self.pid)
    }

    /// The namespace read.
    pub fn netns(&self) -> NetnsId {
        self.netns
    }

    /// Re-reads the counters. Fails (ESRCH/ENOENT) once the task has exited,
    /// which tells the caller to pick another task of the cgroup.
    pub fn read(&mut self) -> io::Result<Vec<InterfaceStats>> {
        let len = crate::readfile::pread_whole(&self.file, &mut self.buf, false)?;
        Ok(parse_net_dev(&String::from_utf8_lossy(&self.buf[..len])))
    }
}

fn net_dev_path(proc_root: &Path, pid: u32) -> PathBuf {
    proc_root.join(pid.to_string()).join("net/dev")
}

/// Decides which cgroup reports each network namespace, so that a pod's
/// traffic (one namespace shared by all its containers) is counted once and
/// the host's namespace is never attributed to a container.
#[derive(Debug, Default)]
pub struct NetnsRegistry {
    host: Option<NetnsId>,
    owners: HashMap<NetnsId, String>,
}

impl NetnsRegistry {
    /// Creates a registry that knows the host namespace: that of pid 1
    /// under `proc_root`, or where pid 1's is not readable (a VM's init
    /// that even root may not inspect), that of pid 2, `kthreadd`, whose
    /// kernel threads always live in the initial namespaces. Without
    /// either, a container sharing the host's network would report the
    /// host's counters as its own.
    pub fn new(proc_root: &Path) -> Self {
        let host = netns_of(proc_root, 1).or_else(|_| netns_of(proc_root, 2));
        if let Err(e) = &host {
            tracing::warn!(proc_root = %proc_root.display(), error = %e, "cannot tell the host's network namespace; containers sharing it may report the host's network counters");
        }
        Self {
            host: host.ok(),
            owners: HashMap::new(),
        }
    }

    /// Claims `netns` for `cgroup`. Returns true when this cgroup should
    /// report the namespace's counters: the namespace is not the host's and
    /// no other live cgroup reports it already. `prefer` marks the pod
    /// sandbox, which takes over from an ordinary container.
    pub fn claim(&mut self, netns: NetnsId, cgroup: &str, prefer: bool) -> bool {
        if Some(netns) == self.host {
            return false;
        }
        match self.owners.get(&netns) {
            Some(owner) if owner == cgroup => true,
            Some(_) if !prefer => false,
            _ => {
                self.owners.insert(netns, cgroup.to_string());
                true
            }
        }
    }

    /// Releases every namespace `cgroup` reported (it was removed).
    pub fn release(&mut self, cgroup: &str) {
        self.owners.retain(|_, owner| owner != cgroup);
    }

    /// The cgroup reporting `netns`, if any.
    pub fn owner(&self, netns: NetnsId) -> Option<&str> {
        self.owners.get(&netns).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1296      16    0    0    0     0          0         0     1296      16    0    0    0     0       0          0
  eth0: 14523443   10516    1    2    0     0          0         0   928375    8521    3    4    0     0       0          0
veth12ab:  100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0
  bad0: 1 2 3
";

    #[test]
    fn the_host_namespace_is_kthreadds_when_pid_1_is_unreadable() {
        let proc = tempfile::tempdir().unwrap();
        let ns = |pid: u32| proc.path().join(pid.to_string()).join("ns");
        std::fs::create_dir_all(ns(2)).unwrap();
        std::fs::write(ns(2).join("net"), "").unwrap();
        std::fs::create_dir_all(ns(1)).unwrap(); // pid 1 without a readable link
        let kthreadd = netns_of(proc.path(), 2).unwrap();
        let mut registry = NetnsRegistry::new(proc.path());
        assert!(
            !registry.claim(kthreadd, "/hostnetwork-pod", false),
            "the host namespace is never a container's"
        );
        assert!(registry.claim(kthreadd + 1, "/pod", false));

        // Pid 1's namespace wins where it is readable.
        std::fs::write(ns(1).join("net"), "").unwrap();
        let init = netns_of(proc.path(), 1).unwrap();
        let mut registry = NetnsRegistry::new(proc.path());
        assert!(!registry.claim(init, "/hostnetwork-pod", false));
        assert!(registry.claim(kthreadd, "/pod", false));
    }

    #[test]
    fn parses_interfaces_and_skips_ignored_and_malformed() {
        let ifaces = parse_net_dev(SAMPLE);
        assert_eq!(ifaces.len(), 1, "{ifaces:?}");
        let eth0 = &ifaces[0];
        assert_eq!(eth0.name, "eth0");
        assert_eq!(eth0.rx_bytes, 14523443);
        assert_eq!(eth0.rx_packets, 10516);
        assert_eq!(eth0.rx_errors, 1);
        assert_eq!(eth0.rx_dropped, 2);
        assert_eq!(eth0.tx_bytes, 928375);
        assert_eq!(eth0.tx_packets, 8521);
        assert_eq!(eth0.tx_errors, 3);
        assert_eq!(eth0.tx_dropped, 4);
    }

    #[test]
    fn truncated_file_yields_nothing_not_a_panic() {
        assert!(parse_net_dev("Inter-|").is_empty());
        assert!(parse_net_dev("").is_empty());
        assert!(parse_net_dev("a\nb\neth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n").is_empty());
    }

    #[test]
    fn registry_counts_a_namespace_once_and_never_the_host() {
        let mut reg = NetnsRegistry {
            host: Some(1),
            owners: HashMap::new(),
        };
        assert!(!reg.claim(1, "/system.slice/ssh.service", false));
        assert!(reg.claim(7, "/pod/app", false));
        assert!(!reg.claim(7, "/pod/sidecar", false));
        assert!(reg.claim(7, "/pod/app", false));
        assert!(reg.claim(7, "/pod/sandbox", true), "sandbox takes over");
        assert!(!reg.claim(7, "/pod/app", false));
        reg.release("/pod/sandbox");
        assert!(reg.claim(7, "/pod/app", false));
    }
}

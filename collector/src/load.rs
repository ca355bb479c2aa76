//! CPU load per cgroup (cAdvisor's opt-in `--enable_load_reader`):
//! `container_cpu_load_average_10s`, the number of the cgroup's tasks
//! that are runnable (`R`) or in uninterruptible sleep (`D`), the two
//! states the kernel's load average counts, smoothed exponentially over
//! 10 s and shipped in thousandths ("milliloads"), as cAdvisor does.
//!
//! cAdvisor asks the kernel for the counts over netlink (taskstats
//! `CGROUPSTATS_CMD_GET`, which needs `CAP_NET_ADMIN` and does not work on
//! cgroup v2). Here they are sampled from each task's `/proc/<tid>/stat`
//! state, for the tasks listed directly in the cgroup (`tasks` on v1,
//! `cgroup.threads` on v2; a parent cgroup such as a pod's slice holds no
//! task of its own and reads 0, like cAdvisor's). The root cgroup is the
//! whole machine: `procs_running + procs_blocked` from `/proc/stat`.
//!
//! Cost: per tick, one task-list read per cgroup and one `stat` read per
//! thread on the node (about 10 µs of CPU each, `examples/cpu_load_cost.rs`),
//! which is why it is off unless [`crate::config::AgentConfig::cpu_load`]
//! is set.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The averaging window of `container_cpu_load_average_10s`.
const WINDOW_SECONDS: f64 = 10.0;

/// Runnable and uninterruptible task counts of one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Tasks in state `R`.
    pub running: u64,
    /// Tasks in state `D`.
    pub uninterruptible: u64,
}

impl TaskCounts {
    /// The tasks the load average counts.
    pub fn load(&self) -> u64 {
        self.running + self.uninterruptible
    }
}

/// The state letter of a `/proc/<pid>/stat` line: the field after the
/// command name, which is in parentheses and may itself hold `)` and
/// spaces, hence the search from the end.
pub fn task_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// `procs_running` and `procs_blocked` of `/proc/stat` text.
pub fn machine_counts(proc_stat: &str) -> TaskCounts {
    let mut counts = TaskCounts::default();
    for line in proc_stat.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(key), Some(v)) = (f.next(), f.next().and_then(|v| v.parse().ok())) else {
            continue;
        };
        match key {
            "procs_running" => counts.running = v,
            "procs_blocked" => counts.uninterruptible = v,
            _ => {}
        }
    }
    counts
}

/// An exponentially decaying load average.
#[derive(Debug, Clone, Copy)]
struct Average {
    value: f64,
    at_ms: i64,
}

/// Samples task states and keeps one 10 s load average per cgroup.
#[derive(Debug)]
pub struct LoadReader {
    proc_root: PathBuf,
    averages: HashMap<String, Average>,
    buf: Vec<u8>,
    path: PathBuf,
}

impl LoadReader {
    /// A reader of the tasks under `proc_root` (the host's `/proc`).
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            averages: HashMap::new(),
            buf: Vec::with_capacity(4096),
            path: PathBuf::new(),
        }
    }

    /// Counts the runnable and uninterruptible tasks listed in
    /// `task_list` (a cgroup's `tasks` or `cgroup.threads`). Tasks that
    /// exit in between are skipped.
    pub fn count_tasks(&mut self, task_list: &Path) -> io::Result<TaskCounts> {
        let list = std::fs::read_to_string(task_list)?;
        let mut counts = TaskCounts::default();
        for tid in list.lines() {
            let tid = tid.trim();
            if tid.is_empty() {
                continue;
            }
            self.path.clear();
            self.path.push(&self.proc_root);
            self.path.push(tid);
            self.path.push("stat");
            self.buf.clear();
            let Ok(mut f) = File::open(&self.path) else {
                continue;
            };
            if f.read_to_end(&mut self.buf).is_err() {
                continue;
            }
            match task_state(&self.buf) {
                Some(b'R') => counts.running += 1,
                Some(b'D') => counts.uninterruptible += 1,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// The machine's counts, from `/proc/stat`.
    pub fn count_machine(&self) -> io::Result<TaskCounts> {
        Ok(machine_counts(&std::fs::read_to_string(
            self.proc_root.join("stat"),
        )?))
    }

    /// Folds a sample taken at `now_ms` into `cgroup`'s average and returns
    /// it in milliloads. The first sample starts the average at its own
    /// value (as cAdvisor does); later ones decay by the time elapsed, so
    /// irregular ticks weigh correctly.
    pub fn update(&mut self, cgroup: &str, counts: TaskCounts, now_ms: i64) -> f64 {
        let n = counts.load() as f64;
        let avg = self
            .averages
            .entry(cgroup.to_string())
            .and_modify(|a| {
                let dt = ((now_ms - a.at_ms).max(0) as f64) / 1000.0;
                let decay = (-dt / WINDOW_SECONDS).exp();
                a.value = a.value * decay + n * (1.0 - decay);
                a.at_ms = now_ms;
            })
            .or_insert(Average {
                value: n,
                at_ms: now_ms,
            });
        (avg.value * 1000.0).round()
    }

    /// Drops a cgroup's average (it went away).
    pub fn forget(&mut self, cgroup: &str) {
        self.averages.remove(cgroup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_last_parenthesis() {
        assert_eq!(task_state(b"1 (systemd) S 0 1 1 0"), Some(b'S'));
        assert_eq!(task_state(b"42 (a) b) (c) R 1 42"), Some(b'R'));
        assert_eq!(task_state(b"garbage"), None);
    }

    #[test]
    fn machine_counts_read_proc_stat() {
        let text = "cpu  1 2 3\nprocs_running 3\nprocs_blocked 2\nctxt 9\n";
        let c = machine_counts(text);
        assert_eq!((c.running, c.uninterruptible, c.load()), (3, 2, 5));
    }

    #[test]
    fn the_average_decays_over_ten_seconds() {
        let mut r = LoadReader::new(Path::new("/proc"));
        let two = TaskCounts {
            running: 2,
            uninterruptible: 0,
        };
        assert_eq!(r.update("/a", two, 0), 2000.0, "starts at the first sample");
        let idle = TaskCounts::default();
        // After 10 s of nothing the average is 2 × e^-1.
        let v = r.update("/a", idle, 10_000);
        assert_eq!(v, (2000.0 * (-1.0f64).exp()).round());
        // Two 5 s steps decay as much as one 10 s step.
        r.update("/b", two, 0);
        r.update("/b", idle, 5_000);
        assert_eq!(r.update("/b", idle, 10_000), v);
        r.forget("/a");
        assert_eq!(r.update("/a", idle, 20_000), 0.0);
    }

    #[test]
    fn counts_tasks_of_this_process_from_a_task_list() {
        // This test's own threads: the test thread is running.
        let tmp = tempfile::tempdir().unwrap();
        let list = tmp.path().join("tasks");
        // `/proc/thread-self` links to `<pid>/task/<tid>`.
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid = link.file_name().unwrap().to_str().unwrap().to_owned();
        std::fs::write(&list, format!("{tid}\n999999999\n")).unwrap();
        let mut r = LoadReader::new(Path::new("/proc"));
        let c = r.count_tasks(&list).unwrap();
        assert_eq!(
            c.running, 1,
            "the reading thread is running; a gone task is skipped"
        );
        assert!(r.count_tasks(&tmp.path().join("missing")).is_err());
    }
}

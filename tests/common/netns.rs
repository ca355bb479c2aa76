//! A private network of "hosts" on this machine for multi-node tests:
//! each host is a network namespace (`ip netns`) with one veth link to a
//! bridge that lives in a namespace of its own, and an address in
//! [`SUBNET`]. Nothing is added to the root namespace, so parallel runs and
//! the machine's own network never see each other.
//!
//! - [`Lab::new`] makes the bridge; [`Lab::add_host`] a host with its link
//!   up and its address; [`Lab::link_down`]/[`Lab::link_up`] cut and
//!   restore a host's cable (the bridge side of its veth, as a pulled
//!   cable: the host keeps its address and routes but nothing passes).
//! - [`Netns::command`] runs a program inside a host (`setns` before
//!   `exec`, so only the network is the host's: the process sees the
//!   machine's `/proc`, `/sys` and cgroup mounts, unlike `ip netns exec`
//!   which remounts `/sys`). [`Netns::run`] runs a closure on a thread
//!   inside it (sockets it opens belong to the host).
//! - [`Forward`] relays TCP from one namespace to an address in another,
//!   so the test (in the root namespace) can talk to a server in a host.
//!
//! Names are `osp-<pid>-<random>-<host>`: unique per run. Dropping the
//! [`Lab`] kills every process left in its namespaces and deletes them
//! (the veths go with them). A run that was killed before its drop leaves
//! namespaces whose `<pid>` is dead: the next [`Lab::new`] removes them.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The hosts' subnet (`/24`): private, and only ever routed inside the
/// lab's own namespaces, so it cannot clash with the machine's networks.
pub const SUBNET: [u8; 3] = [10, 77, 0];

/// Prefix of every namespace the harness makes.
const PREFIX: &str = "osp-";

/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";

/// Runs `ip args…`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2 is needed): {e}"));
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip args…`, ignoring failure (cleanup).
fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

/// One network namespace made by `ip netns add`.
#[derive(Debug, Clone)]
pub struct Netns {
    /// Its name in `ip netns list`.
    pub name: String,
}

impl Netns {
    fn create(name: String) -> Self {
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    fn handle(&self) -> File {
        File::open(self.path())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.path().display()))
    }

    /// A command that runs `program` inside this namespace: the child
    /// enters it between fork and exec.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let ns = self.handle();
        // SAFETY: setns is async-signal-safe; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs `f` on a new thread inside this namespace and returns its
    /// result: sockets it creates (listeners included) live in the
    /// namespace and keep doing so when handed to other threads.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = self.handle();
        let name = self.name.clone();
        std::thread::spawn(move || {
            // SAFETY: plain syscall on an open descriptor; only this
            // thread changes namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {name}: {}",
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// The pids of processes inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }
}

fn pids_in(name: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills what runs in namespace `name` and deletes it.
fn destroy(name: &str) {
    for pid in pids_in(name) {
        // SAFETY: plain syscall.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    ip_quiet(&["netns", "del", name]);
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Deletes the namespaces of runs whose process is gone (killed before
/// their [`Lab`] was dropped).
pub fn clean_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !alive(pid) {
            destroy(&name);
        }
    }
}

/// A host of the lab: its namespace, address and link.
#[derive(Debug, Clone)]
pub struct Host {
    /// The host's short name (e.g. `node1`).
    pub name: String,
    /// Its namespace.
    pub ns: Netns,
    /// Its address on the lab's subnet (on its `eth0`).
    pub addr: Ipv4Addr,
    /// The bridge side of its veth (in the bridge's namespace).
    port: String,
}

/// A bridge in its own namespace and the hosts linked to it; everything is
/// removed on drop.
pub struct Lab {
    /// `osp-<pid>-<random>`: the prefix of every namespace of this lab.
    pub id: String,
    bridge: Netns,
    hosts: Vec<Host>,
}

impl Lab {
    /// Removes stale labs of killed runs, then makes a new bridge.
    /// Needs root and iproute2.
    pub fn new() -> Self {
        clean_stale();
        let id = format!("{PREFIX}{}-{:08x}", std::process::id(), fastrand::u32(..));
        let bridge = Netns::create(format!("{id}-bridge"));
        ip(&["-n", &bridge.name, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge.name, "link", "set", "br0", "up"]);
        Self {
            id,
            bridge,
            hosts: Vec::new(),
        }
    }

    /// Adds host `name` (letters and digits, at most 12 characters) with
    /// the next address of [`SUBNET`] (`.1`, `.2`, …), its link up.
    pub fn add_host(&mut self, name: &str) -> Host {
        assert!(
            !name.is_empty() && name.len() <= 12 && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "host name {name:?}: 1 to 12 letters or digits"
        );
        assert!(self.hosts.len() < 250, "a /24 holds 250 hosts here");
        let ns = Netns::create(format!("{}-{name}", self.id));
        let port = format!("v-{name}");
        // Both ends are made directly in their namespaces: nothing appears
        // in the root namespace, even for a moment.
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            &ns.name,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.bridge.name,
        ]);
        ip(&[
            "-n",
            &self.bridge.name,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ]);
        let addr = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], self.hosts.len() as u8 + 1);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
        let host = Host {
            name: name.to_string(),
            ns,
            addr,
            port,
        };
        self.hosts.push(host.clone());
        host
    }

    /// The hosts, in the order they were added.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Cuts `host`'s cable: its bridge port goes down, so its packets go
    /// nowhere (its own interface keeps its address, as a node whose
    /// switch port died).
    pub fn link_down(&self, host: &Host) {
        ip(&["-n", &self.bridge.name, "link", "set", &host.port, "down"]);
    }

    /// Restores `host`'s cable.
    pub fn link_up(&self, host: &Host) {
        ip(&["-n", &self.bridge.name, "link", "set", &host.port, "up"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            destroy(&h.ns.name);
        }
        destroy(&self.bridge.name);
    }
}

/// Relays TCP connections accepted on `local` (in one namespace) to a
/// target address in another, until dropped.
pub struct Forward {
    /// Where to connect: `127.0.0.1:<port>` in the listening namespace.
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Forward {
    /// Listens on loopback in `listen_in` (`None`: the test's own
    /// namespace) and relays each connection to `target` as reached from
    /// `connect_in`.
    pub fn start(
        listen_in: Option<&Netns>,
        connect_in: Option<&Netns>,
        target: SocketAddr,
    ) -> Self {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("binding a relay port");
        let listener = match listen_in {
            Some(ns) => ns.run(bind),
            None => bind(),
        };
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let local = listener.local_addr().expect("relay address");
        let stop = Arc::new(AtomicBool::new(false));
        let connect_in = connect_in.cloned();
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let connect_in = connect_in.clone();
                        std::thread::spawn(move || relay(client, connect_in, target));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            }
        });
        Self { local, stop }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn relay(client: TcpStream, connect_in: Option<Netns>, target: SocketAddr) {
    let connect =
        move || TcpStream::connect_timeout(&target, Duration::from_secs(5)).map_err(|e| e.kind());
    let upstream = match &connect_in {
        Some(ns) => ns.run(connect),
        None => connect(),
    };
    let Ok(upstream) = upstream else {
        return; // the client sees the connection close
    };
    let _ = client.set_nonblocking(false);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pump(client, upstream));
    pump(u2, c2);
    let _ = up.join();
}

/// Copies `from` to `to` until EOF or an error, then half-closes `to`.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

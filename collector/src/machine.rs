//! Facts about the node itself: cores, memory, identity, kernel and OS.
//!
//! Read at start and refreshed on a slow cadence (minutes): none of it
//! changes between ticks.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the agent knows about the machine it runs on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// The node's name (hostname unless configured).
    pub hostname: String,
    /// Logical CPUs.
    pub num_cores: u64,
    /// Physical cores.
    pub num_physical_cores: u64,
    /// CPU sockets (distinct `physical id`s in `/proc/cpuinfo`).
    pub num_sockets: u64,
    /// Total memory, bytes (`MemTotal`).
    pub memory_bytes: u64,
    /// Total swap, bytes (`SwapTotal`).
    pub swap_bytes: u64,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// DMI product UUID, when readable.
    pub system_uuid: String,
    /// Kernel release (`uname -r`).
    pub kernel_version: String,
    /// OS name and version from `/etc/os-release`.
    pub os_version: String,
    /// Boot time, seconds since the epoch.
    pub boot_time_seconds: u64,
    /// The node's address: the agent's `node_address` when configured,
    /// else the IPv4 address of the interface holding the default route
    /// (else the first non-loopback address); empty when none is found.
    #[serde(default)]
    pub address: String,
}

impl MachineInfo {
    /// Reads the machine's facts. `rootfs` prefixes files of the host's
    /// root (`/` normally, `/rootfs` when the agent runs in a container
    /// with the host mounted there); `proc_root` is the host's `/proc`.
    pub fn read(rootfs: &Path, proc_root: &Path) -> Self {
        let read = |p: &Path| {
            fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let meminfo = read(&proc_root.join("meminfo"));
        let cpuinfo = read(&proc_root.join("cpuinfo"));
        let (logical, physical, sockets) = count_cpus(&cpuinfo);
        let machine_id = {
            let id = read(&rootfs.join("etc/machine-id"));
            if id.is_empty() {
                read(&rootfs.join("var/lib/dbus/machine-id"))
            } else {
                id
            }
        };
        Self {
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            num_cores: logical,
            num_physical_cores: physical,
            num_sockets: sockets,
            memory_bytes: meminfo_kib(&meminfo, "MemTotal") * 1024,
            swap_bytes: meminfo_kib(&meminfo, "SwapTotal") * 1024,
            machine_id,
            boot_id: read(&proc_root.join("sys/kernel/random/boot_id")),
            system_uuid: read(&rootfs.join("sys/class/dmi/id/product_uuid")),
            kernel_version: read(&proc_root.join("sys/kernel/osrelease")),
            os_version: os_release(&read(&rootfs.join("etc/os-release"))),
            boot_time_seconds: boot_time(&read(&proc_root.join("stat"))),
            address: primary_address(&read(&proc_root.join("net/route")), &interface_addresses()),
        }
    }
}

/// The interface of the default route in `/proc/net/route` (the first
/// line whose destination and mask are 0).
pub fn default_route_interface(route: &str) -> Option<&str> {
    route.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000").then_some(f[0])
    })
}

/// The node's address among `(interface, address)` pairs: an IPv4 address
/// of the default route's interface, else the first non-loopback,
/// non-link-local IPv4, else such an IPv6; empty when there is none.
pub fn primary_address(route: &str, addrs: &[(String, std::net::IpAddr)]) -> String {
    use std::net::IpAddr;
    let usable = |a: &IpAddr| match a {
        IpAddr::V4(v) => !v.is_loopback() && !v.is_link_local() && !v.is_unspecified(),
        IpAddr::V6(v) => {
            !v.is_loopback() && !v.is_unspecified() && (v.segments()[0] & 0xffc0) != 0xfe80
        }
    };
    let default = default_route_interface(route);
    addrs
        .iter()
        .filter(|(_, a)| usable(a))
        .min_by_key(|(i, a)| (Some(i.as_str()) != default, !a.is_ipv4()))
        .map(|(_, a)| a.to_string())
        .unwrap_or_default()
}

/// Every interface address of this network namespace (`getifaddrs`).
pub fn interface_addresses() -> Vec<(String, std::net::IpAddr)> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; each
    // entry's name is a C string and its address, when not null, a
    // sockaddr of the family it names.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_flags & libc::IFF_UP as u32 == 0 {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let addr = match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            out.push((name, addr));
        }
        libc::freeifaddrs(head);
    }
    out
}

/// A `Key:   N kB` value of `/proc/meminfo`, in KiB (0 when absent).
pub fn meminfo_kib(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Counts logical CPUs, physical cores and sockets in `/proc/cpuinfo`.
fn count_cpus(cpuinfo: &str) -> (u64, u64, u64) {
    let mut logical = 0;
    let mut cores = std::collections::HashSet::new();
    let mut sockets = std::collections::HashSet::new();
    let mut socket = String::new();
    for line in cpuinfo.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "processor" => logical += 1,
            "physical id" => {
                socket = v.trim().to_string();
                sockets.insert(socket.clone());
            }
            "core id" => {
                cores.insert((socket.clone(), v.trim().to_string()));
            }
            _ => {}
        }
    }
    let physical = if cores.is_empty() {
        logical
    } else {
        cores.len() as u64
    };
    (logical, physical, sockets.len().max(1) as u64)
}

fn os_release(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

fn boot_time(stat: &str) -> u64 {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let m = MachineInfo::read(Path::new("/"), Path::new("/proc"));
        assert_eq!(
            m.num_cores,
            std::thread::available_parallelism().unwrap().get() as u64
        );
        assert!(m.memory_bytes > 100 << 20);
        assert_eq!(m.boot_id.len(), 36, "boot id is a UUID: {}", m.boot_id);
        assert!(m.boot_time_seconds > 1_500_000_000);
        assert!(!m.kernel_version.is_empty());
    }

    #[test]
    fn finds_the_default_route_interface_address() {
        let route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                     docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(route), Some("eth0"));
        let addrs: Vec<(String, std::net::IpAddr)> = [
            ("lo", "127.0.0.1"),
            ("docker0", "172.17.0.1"),
            ("eth0", "fe80::1"),
            ("eth0", "192.168.2.7"),
        ]
        .iter()
        .map(|(i, a)| (i.to_string(), a.parse().unwrap()))
        .collect();
        assert_eq!(primary_address(route, &addrs), "192.168.2.7");
        // No default route: the first usable address.
        assert_eq!(primary_address("", &addrs), "172.17.0.1");
        assert_eq!(primary_address(route, &addrs[..1]), "", "loopback only");
    }

    #[test]
    fn parses_meminfo_and_cpuinfo() {
        let mi = "MemTotal:       24684096 kB\nMemFree: 1 kB\nSwapTotal:             0 kB\n";
        assert_eq!(meminfo_kib(mi, "MemTotal"), 24684096);
        assert_eq!(meminfo_kib(mi, "SwapTotal"), 0);
        assert_eq!(meminfo_kib(mi, "Nope"), 0);
        let ci = "processor\t: 0\nphysical id\t: 0\ncore id\t: 0\n\nprocessor\t: 1\nphysical id\t: 0\ncore id\t: 0\n\nprocessor\t: 2\nphysical id\t: 1\ncore id\t: 0\n";
        assert_eq!(count_cpus(ci), (3, 2, 2));
    }
}

//! Loopback TCP ports for test servers that must be told their port before
//! they start (a child `osprey` given `--listen`, a receiver restarted on
//! the port it had).
//!
//! Asking the kernel for port 0 and closing the socket is racy: the kernel
//! hands the same ephemeral ports to the next `bind(0)` and to outgoing
//! connections, so a second test in the same binary can take the port
//! before the child binds it (CI once saw exactly that). Ports here come
//! from below the ephemeral range instead, and each one handed out is
//! claimed for the life of the process by a UDP socket on the same number:
//! UDP and TCP ports are separate, so the child can still bind TCP, while
//! every other caller (another copy of this module, another test process)
//! finds the UDP port taken and moves on.

use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// A TCP port on 127.0.0.1 that is free now and that no other caller of
/// this function (in any process) will be given.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static CLAIMS: Mutex<Vec<UdpSocket>> = Mutex::new(Vec::new());

    let (lo, hi) = candidate_range();
    let span = u32::from(hi - lo);
    // Processes start at different places so they rarely probe the same
    // ports; the UDP claim settles it when they do.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = lo + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        if let Ok(claim) = UdpSocket::bind(("127.0.0.1", port)) {
            CLAIMS.lock().unwrap().push(claim);
            return port;
        }
    }
    panic!("no free loopback port in {lo}..{hi}");
}

/// Up to 12 000 ports just below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768–60999 by default).
fn candidate_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let hi = ephemeral_low.max(2048);
    let lo = hi.saturating_sub(12_000).max(1024);
    (lo, hi)
}

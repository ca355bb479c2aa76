//! `/proc/self/mountinfo` (and the host's, mounted into the agent's
//! container): the cgroup-mount discovery and the filesystem list both
//! parse it, and mount points carry octal escapes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_collector::discovery::mountinfo;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mounts = mountinfo::parse_mountinfo(&text);
    let _ = mountinfo::layout_from_mounts(&mounts);
    let _ = osprey_collector::filesystem::parse_mountinfo(&text);
    let _ = mountinfo::unescape_octal(&text);
});

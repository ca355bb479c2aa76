//! Container log lines as the runtimes write them: CRI
//! (`<time> <stream> <P|F> <message>`) and Docker's json-file
//! (`{"log":…,"stream":…,"time":…}`), format detection and the RFC 3339
//! timestamp parser. A line is whatever the container printed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_collector::logs::format::{self, LogFormat, cri, docker_json};

fuzz_target!(|line: &[u8]| {
    let _ = cri::parse(line);
    let _ = docker_json::parse(line);
    let detected = format::detect(line);
    for f in [
        detected,
        LogFormat::Cri,
        LogFormat::DockerJson,
        LogFormat::Plain,
    ] {
        let (parsed, _) = format::parse(f, line);
        // Decoding never makes a line longer than JSON unescaping can.
        assert!(parsed.text.len() <= line.len() * 3 + 4);
    }
    let _ = format::parse_rfc3339_ns(line);
});

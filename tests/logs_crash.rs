//! kill -9 of the server while an agent-like client pushes batches with
//! `X-Osprey-Batch`: after each restart the client retries the batch that
//! was in flight (as the agent does), and every acknowledged line must be
//! there exactly once — and the retried batch exactly once too.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const LINES_PER_BATCH: usize = 25;

fn batch_body(src: u64, seq: u64, ts: i64) -> Value {
    let values: Vec<Value> = (0..LINES_PER_BATCH)
        .map(|k| {
            json!([
                (ts + k as i64).to_string(),
                format!("crashline s{src}b{seq}x{k} payload {}", "x".repeat(k * 7))
            ])
        })
        .collect();
    json!({"streams": [{"stream": {"namespace": "crash", "pod": format!("p{}", seq % 3)}, "values": values}]})
}

/// Posts one batch; `Some(true)` when acknowledged, `Some(false)` on any
/// other status, `None` when the connection failed.
fn post(base: &str, src: u64, seq: u64, body: &Value) -> Option<bool> {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .post(format!("{base}/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .header("X-Osprey-Batch", format!("crash-agent-{src}/{seq}"))
        .body(body.to_string())
        .send()
        .ok()?;
    Some(resp.status().as_u16() == 204)
}

/// Every line of the `crash` namespace, counted by batch and line number, through the
/// search API's cursor paging.
fn stored(base: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let v = get_json(&format!(
            "{base}/api/v1/logs/search?query=namespace:crash&limit=5000&start=0&cursor={cursor}"
        ));
        for l in v["data"]["lines"].as_array().unwrap() {
            // "crashline s<src>b<seq>x<k> payload …" → "s<src>b<seq>x<k>"
            let key = l["message"].as_str().unwrap().split(' ').nth(1).unwrap();
            *counts.entry(key.to_string()).or_insert(0) += 1;
        }
        match v["data"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return counts,
        }
    }
}

/// Agents pushing at once (their batches share group commits).
const SOURCES: u64 = 2;

#[test]
fn kill_9_during_pushes_loses_and_duplicates_nothing_acknowledged() {
    let dir = artifact_dir("logs-crash");
    let config = dir.join("osprey.toml");
    std::fs::write(&config, "[server.logs]\ncommit_interval = \"20ms\"\n").unwrap();
    let data = dir.join("data");
    let mut server = ServerProcess::start(&data, Some(&config), &dir);
    let port = server.port;
    let base = server.base.clone();
    // (source, sequence) → (timestamp, acknowledged).
    type Sent = BTreeMap<(u64, u64), (i64, bool)>;
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let mut next_seq = vec![1u64; SOURCES as usize];
    // Pseudo-random kill points from the clock (differ run to run).
    let mut seed = (now_ms() as u64) | 1;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let acked = |sent: &Arc<Mutex<Sent>>| sent.lock().unwrap().values().filter(|v| v.1).count();
    for round in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let pushers: Vec<_> = (0..SOURCES)
            .map(|src| {
                let (sent, stop, base) = (sent.clone(), stop.clone(), base.clone());
                let mut seq = next_seq[src as usize];
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let ts = now_ms() * 1_000_000;
                        sent.lock().unwrap().insert((src, seq), (ts, false));
                        match post(&base, src, seq, &batch_body(src, seq, ts)) {
                            Some(true) => {
                                sent.lock().unwrap().get_mut(&(src, seq)).unwrap().1 = true
                            }
                            Some(false) => panic!("batch {src}/{seq} refused"),
                            // The server died with this batch in flight.
                            None => return seq,
                        }
                        seq += 1;
                    }
                    seq
                })
            })
            .collect();
        // Let some batches through, then kill at a random point.
        let acked_before = acked(&sent);
        wait_for(
            Duration::from_secs(30),
            "a few acknowledged batches",
            || (acked(&sent) >= acked_before + 4).then_some(()),
        );
        std::thread::sleep(Duration::from_millis(rand(400)));
        server.guard.child.kill().unwrap();
        server.guard.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let in_flight: Vec<u64> = pushers.into_iter().map(|p| p.join().unwrap()).collect();
        server = ServerProcess::start_on(port, &data, Some(&config), &dir);
        // Each agent retries its unacknowledged batch with the same sequence.
        for (src, &seq) in in_flight.iter().enumerate() {
            let src = src as u64;
            let retry = sent.lock().unwrap().get(&(src, seq)).copied();
            if let Some((ts, false)) = retry {
                let before = stored(&base).values().sum::<usize>();
                let ok = post(&base, src, seq, &batch_body(src, seq, ts));
                assert_eq!(ok, Some(true));
                let added = stored(&base).values().sum::<usize>() - before;
                eprintln!(
                    "round {round}: batch {src}/{seq} was in flight; {} of its lines had been committed before the kill",
                    LINES_PER_BATCH - added
                );
                sent.lock().unwrap().get_mut(&(src, seq)).unwrap().1 = true;
            }
            next_seq[src as usize] = seq + 1;
        }
        let counts = stored(&base);
        let sent = sent.lock().unwrap();
        let mut expected = 0;
        for ((src, seq), (_, acked)) in sent.iter() {
            assert!(acked, "round {round}: batch {src}/{seq} never acknowledged");
            for k in 0..LINES_PER_BATCH {
                let n = counts
                    .get(&format!("s{src}b{seq}x{k}"))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    n, 1,
                    "round {round}: line {k} of batch {src}/{seq} is there {n} times"
                );
                expected += 1;
            }
        }
        let total: usize = counts.values().sum();
        assert_eq!(total, expected, "round {round}: no stray lines");
    }
    assert!(sent.lock().unwrap().len() >= 16);
}

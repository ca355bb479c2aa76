//! The shipper against a receiver that fails on purpose: 5xx and 429 are
//! retried (honouring `Retry-After`), other 4xx drop only the bad batch,
//! and a queue persisted at shutdown is delivered by the next shipper.
//!
//! The receiver here is a small axum server that decodes each request with
//! the crate's own decoder and answers from a script; it is the fault
//! injector, not the part under test.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use osprey_collector::ship::remote_write::decode_snappy;
use osprey_collector::ship::{
    RemoteWriteConfig, Sample, Shipper, ShipperHandle, ShipperStats, TimeSeries,
};

/// One answer the receiver gives: status and optional `Retry-After`.
type Answer = (StatusCode, Option<&'static str>);

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    status: StatusCode,
    /// (value of label `batch`, sample timestamp) for every sample, in order.
    samples: Vec<(String, i64)>,
    headers_ok: bool,
}

#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<Seen>>,
}

async fn write(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let headers_ok = header("content-encoding") == "snappy"
        && header("content-type") == "application/x-protobuf"
        && header("x-prometheus-remote-write-version") == "0.1.0"
        && header("user-agent").starts_with("osprey-agent/")
        && header("authorization") == "Bearer s3cret";
    let request = match decode_snappy(&body, 1 << 24) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut samples = Vec::new();
    let mut bad = false;
    for series in &request.timeseries {
        series.validate().expect("the shipper sends valid series");
        let label = |name: &str| {
            series
                .labels
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.value.clone())
        };
        bad |= label("bad").is_some();
        for sample in &series.samples {
            samples.push((label("batch").unwrap_or_default(), sample.timestamp));
        }
    }
    let (status, retry_after) = if bad {
        (StatusCode::BAD_REQUEST, None)
    } else {
        receiver
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((StatusCode::NO_CONTENT, None))
    };
    receiver.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        status,
        samples,
        headers_ok,
    });
    let mut response = if bad {
        (status, "out of bounds: sample too old").into_response()
    } else {
        status.into_response()
    };
    if let Some(value) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    response
}

/// Starts the receiver on a free port; it stops with the test's runtime.
async fn start_receiver(script: Vec<Answer>) -> (Arc<Receiver>, SocketAddr) {
    let receiver = Arc::new(Receiver {
        script: Mutex::new(script.into()),
        seen: Mutex::default(),
    });
    let app = Router::new()
        .route("/api/v1/write", post(write))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, addr)
}

fn config(addr: SocketAddr, spill_dir: &std::path::Path) -> RemoteWriteConfig {
    RemoteWriteConfig {
        url: format!("http://{addr}/api/v1/write"),
        bearer_token: Some("s3cret".into()),
        timeout: Duration::from_secs(2),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        spill_dir: Some(spill_dir.to_path_buf()),
        ..RemoteWriteConfig::default()
    }
}

/// One batch: a single series labelled `batch=<name>` with one sample at
/// timestamp `ts`.
fn batch(name: &str, ts: i64, extra: &[(&str, &str)]) -> Vec<TimeSeries> {
    let mut labels = vec![("batch", name)];
    labels.extend_from_slice(extra);
    vec![TimeSeries::new(
        "osprey_test_samples",
        labels,
        vec![Sample::new(ts, ts as f64)],
    )]
}

/// Polls `stats` until `done` holds, failing after `timeout`.
async fn wait_until(
    shipper: &ShipperHandle,
    timeout: Duration,
    what: &str,
    done: impl Fn(&ShipperStats) -> bool,
) -> ShipperStats {
    let start = Instant::now();
    loop {
        let stats = shipper.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn accepted_samples(receiver: &Receiver) -> Vec<(String, i64)> {
    let seen = receiver.seen.lock().unwrap().clone();
    seen.iter()
        .filter(|s| s.status.is_success())
        .flat_map(|s| s.samples.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_429_then_delivers_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let script = vec![
        (StatusCode::INTERNAL_SERVER_ERROR, None),
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::TOO_MANY_REQUESTS, Some("1")),
    ];
    let (receiver, addr) = start_receiver(script).await;
    let shipper = Shipper::spawn(config(addr, dir.path())).unwrap();
    for ts in 1..=5 {
        shipper.enqueue(batch(&format!("b{ts}"), ts, &[]));
    }
    let stats = wait_until(
        &shipper,
        Duration::from_secs(20),
        "all batches delivered",
        |s| s.batches_sent == 5 && s.queue_batches == 0,
    )
    .await;
    let expected: Vec<(String, i64)> = (1..=5).map(|ts| (format!("b{ts}"), ts)).collect();
    assert_eq!(accepted_samples(&receiver), expected);
    assert_eq!(stats.samples_sent, 5);
    assert_eq!(stats.failed_attempts, 3);
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.rejected_batches + stats.dropped_batches, 0);
    assert!(stats.last_success.is_some());
    assert_eq!(stats.last_error, None, "a success clears the last error");

    let seen = receiver.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|s| s.headers_ok),
        "every request carries the spec's headers"
    );
    // The first three attempts all carried the oldest batch.
    for attempt in &seen[..3] {
        assert_eq!(attempt.samples[0], ("b1".to_string(), 1));
    }
    let after_429 = seen[3].at.duration_since(seen[2].at);
    assert!(
        after_429 >= Duration::from_millis(950),
        "Retry-After: 1 must be honoured, retried after {after_429:?}"
    );
    shipper.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_4xx_drops_only_the_bad_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Hold the first request with 503s so the three batches queue up and
    // get merged: the merged request is refused, then resent one by one.
    let script = vec![(StatusCode::SERVICE_UNAVAILABLE, None)];
    let (receiver, addr) = start_receiver(script).await;
    let shipper = Shipper::spawn(config(addr, dir.path())).unwrap();
    shipper.enqueue(batch("good1", 1, &[]));
    shipper.enqueue(batch("bad", 2, &[("bad", "yes")]));
    shipper.enqueue(batch("good2", 3, &[]));
    let stats = wait_until(&shipper, Duration::from_secs(20), "queue drained", |s| {
        s.queue_batches == 0 && s.batches_sent == 2
    })
    .await;
    assert_eq!(
        accepted_samples(&receiver),
        [("good1".to_string(), 1), ("good2".to_string(), 3)]
    );
    assert_eq!(stats.rejected_batches, 1);
    assert_eq!(stats.rejected_samples, 1);
    assert_eq!(stats.samples_sent, 2);
    let seen = receiver.seen.lock().unwrap().clone();
    let bad_alone = seen
        .iter()
        .filter(|s| s.samples.iter().all(|(batch, _)| batch == "bad"))
        .count();
    assert_eq!(bad_alone, 1, "a refused batch is never retried: {seen:?}");
    assert!(
        seen.iter()
            .any(|s| s.status == StatusCode::BAD_REQUEST && s.samples.len() > 1),
        "catching up merged the bad batch with the next one before splitting: {seen:?}"
    );
    shipper.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_persisted_at_shutdown_is_delivered_by_the_next_shipper() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: every attempt is a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut down = config(closed, dir.path());
    down.shutdown_flush_timeout = Duration::from_millis(300);
    let shipper = Shipper::spawn(down).unwrap();
    for ts in 1..=4 {
        shipper.enqueue(batch(&format!("b{ts}"), ts, &[]));
    }
    wait_until(&shipper, Duration::from_secs(10), "a failed attempt", |s| {
        s.failed_attempts > 0
    })
    .await;
    let stopped_at = Instant::now();
    let stats = shipper.shutdown().await;
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "shutdown is bounded by shutdown_flush_timeout"
    );
    assert!(stats.last_error.is_some());
    assert_eq!(stats.queue_batches, 4);
    assert_eq!(stats.queue_memory_bytes, 0, "memory part persisted");
    assert!(stats.queue_disk_bytes > 0);

    let (receiver, addr) = start_receiver(Vec::new()).await;
    let shipper = Shipper::spawn(config(addr, dir.path())).unwrap();
    shipper.enqueue(batch("b5", 5, &[]));
    wait_until(&shipper, Duration::from_secs(20), "resumed delivery", |s| {
        s.queue_batches == 0 && s.batches_sent == 5
    })
    .await;
    let expected: Vec<(String, i64)> = (1..=5).map(|ts| (format!("b{ts}"), ts)).collect();
    assert_eq!(accepted_samples(&receiver), expected);
    shipper.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_does_not_wait_for_a_hanging_receiver() {
    let dir = tempfile::tempdir().unwrap();
    // A receiver that accepts connections and never answers.
    let app = Router::new().route("/api/v1/write", post(std::future::pending::<()>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut hanging = config(addr, dir.path());
    hanging.timeout = Duration::from_secs(30);
    hanging.memory_bytes = 4096;
    hanging.shutdown_flush_timeout = Duration::from_millis(200);
    let shipper = Shipper::spawn(hanging).unwrap();
    shipper.enqueue(batch("b0", 0, &[]));
    wait_until(
        &shipper,
        Duration::from_secs(10),
        "the first request in flight",
        |s| s.queue_batches == 1,
    )
    .await;

    let start = Instant::now();
    for ts in 1..=200 {
        shipper.enqueue(batch(&format!("b{ts}"), ts, &[]));
    }
    let enqueue_time = start.elapsed();
    assert!(
        enqueue_time < Duration::from_secs(2),
        "200 enqueues took {enqueue_time:?} while a request hung"
    );
    let stats = shipper.stats();
    assert_eq!(stats.queue_batches, 201);
    assert!(stats.queue_disk_bytes > 0, "spilled past the memory bound");
    assert_eq!(stats.batches_sent, 0);
    let stats = shipper.shutdown().await;
    assert_eq!(
        stats.queue_batches, 201,
        "everything persisted for the next start"
    );
}

//! The shipper: a tokio task that delivers the queue to a remote-write
//! receiver, oldest batch first, retrying what the spec says to retry.
//!
//! The collector hands each collection to [`ShipperHandle::enqueue`], which
//! encodes it and pushes it into the [`Queue`] without waiting on the
//! network. The task takes the oldest batch, POSTs it, and removes it only
//! once the receiver answered 2xx, so a batch is never skipped and batches
//! are never reordered:
//! - 5xx, 429 and connection errors or timeouts are retried with capped
//!   exponential backoff and jitter (a 429's `Retry-After` is honoured);
//!   meanwhile new batches queue up behind it;
//! - any other 4xx means the receiver will never take this batch: it is
//!   dropped, counted as rejected, and the receiver's answer is logged.
//!
//! When catching up (more than one batch waiting) consecutive batches are
//! merged into one request of at most `catch_up_max_samples` samples. A
//! merged request keeps each series' samples in order (it is the
//! concatenation of the batches). If a merged request is rejected with a
//! 4xx, its batches are resent one by one so only the bad one is dropped.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use super::queue::{Batch, Queue, QueueConfig, lock};
use super::remote_write::{self, TimeSeries, WriteRequest};
use crate::tls::ClientTls;

/// The `User-Agent` of every request.
pub(crate) const AGENT: &str = concat!("osprey-agent/", env!("CARGO_PKG_VERSION"));
/// Longest wait a receiver's `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How much of a receiver's error answer is logged.
const MAX_LOGGED_BODY: usize = 1024;
/// Largest uncompressed size accepted when merging queued batches.
const MAX_MERGE_BYTES: usize = 256 << 20;

/// Settings of the remote-write shipper, as found in the agent's TOML
/// config (`[remote_write]`). Every field has a default. Its `Debug` output
/// hides the bearer token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's endpoint, e.g. `http://prometheus:9090/api/v1/write`
    /// (Prometheus needs `--web.enable-remote-write-receiver`).
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer <token>`, if set.
    pub bearer_token: Option<String>,
    /// File holding the bearer token (read once at start, whitespace
    /// trimmed); keeps the secret out of the config. Wins over
    /// `bearer_token`.
    pub bearer_token_file: Option<PathBuf>,
    /// Time allowed for one request, connection included (e.g. `"10s"`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Bytes of encoded batches kept in memory before spilling to disk.
    pub memory_bytes: u64,
    /// Bytes of spill files kept in `spill_dir` before the oldest batches
    /// are dropped.
    pub disk_bytes: u64,
    /// Where batches spill past `memory_bytes` and where the queue is
    /// persisted on shutdown; the agent uses `<data-dir>/remote-write-queue`.
    /// Without it the queue is memory only: a restart loses it and batches
    /// past `memory_bytes` are dropped.
    pub spill_dir: Option<PathBuf>,
    /// First retry delay after a failed request (e.g. `"100ms"`).
    #[serde(with = "humantime_serde")]
    pub min_backoff: Duration,
    /// Longest retry delay; the delay doubles from `min_backoff` up to this.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// When several batches wait, merge consecutive ones into one request
    /// of at most this many samples (a single larger batch is still sent
    /// whole). `0` or `1` disables merging.
    pub catch_up_max_samples: u64,
    /// On shutdown, how long to keep delivering before persisting what is
    /// left (e.g. `"5s"`).
    #[serde(with = "humantime_serde")]
    pub shutdown_flush_timeout: Duration,
    /// How long to wait after a batch arrives in an empty queue before
    /// sending, so batches arriving meanwhile go in the same request
    /// (merged up to `catch_up_max_samples`). `0s` (the default) sends at
    /// once.
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9090/api/v1/write".into(),
            bearer_token: None,
            bearer_token_file: None,
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            disk_bytes: 1 << 30,
            spill_dir: None,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            catch_up_max_samples: 100_000,
            shutdown_flush_timeout: Duration::from_secs(5),
            batch_wait: Duration::ZERO,
        }
    }
}

impl fmt::Debug for RemoteWriteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWriteConfig")
            .field("url", &self.url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<hidden>"),
            )
            .field("bearer_token_file", &self.bearer_token_file)
            .field("timeout", &self.timeout)
            .field("memory_bytes", &self.memory_bytes)
            .field("disk_bytes", &self.disk_bytes)
            .field("spill_dir", &self.spill_dir)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("catch_up_max_samples", &self.catch_up_max_samples)
            .field("shutdown_flush_timeout", &self.shutdown_flush_timeout)
            .field("batch_wait", &self.batch_wait)
            .finish()
    }
}

/// The shipper could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The URL does not parse.
    #[error("remote_write url {url:?} is not a valid URL: {reason}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The token file cannot be read.
    #[error("cannot read remote_write bearer_token_file {path}: {source}")]
    TokenFile {
        /// The configured file.
        path: PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The token cannot go in an HTTP header.
    #[error("the remote_write bearer token contains characters not allowed in an HTTP header")]
    InvalidToken,
    /// The `User-Agent` cannot go in an HTTP header.
    #[error("the User-Agent {0:?} contains characters not allowed in an HTTP header")]
    InvalidUserAgent(String),
    /// The HTTP client cannot be built.
    #[error("cannot build the remote_write HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The queue directory is unusable.
    #[error(transparent)]
    Queue(#[from] super::queue::QueueError),
    /// The TLS settings cannot be used.
    #[error("remote_write TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Counters of a shipper, for the agent's own `/metrics` (suggested names:
/// `osprey_remote_write_samples_sent_total`, `..._failed_requests_total`,
/// `..._retries_total`, `..._dropped_samples_total`, `..._queue_bytes{where="memory"|"disk"}`,
/// `..._last_success_timestamp_seconds`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShipperStats {
    /// Samples the receiver accepted.
    pub samples_sent: u64,
    /// Batches (collections) the receiver accepted.
    pub batches_sent: u64,
    /// HTTP requests answered 2xx (merged batches count once).
    pub requests_sent: u64,
    /// Requests that failed: errors, timeouts, non-2xx answers.
    pub failed_attempts: u64,
    /// Requests that were retries of a failed one.
    pub retries: u64,
    /// Batches dropped by the queue (bounds hit, spill write failed).
    pub dropped_batches: u64,
    /// Samples in those batches.
    pub dropped_samples: u64,
    /// Batches the receiver refused with a non-retryable 4xx, or that could
    /// not be encoded.
    pub rejected_batches: u64,
    /// Samples in those batches.
    pub rejected_samples: u64,
    /// Spill files found corrupt and skipped.
    pub corrupt_spill_files: u64,
    /// Batches waiting.
    pub queue_batches: u64,
    /// Bytes of batches waiting in memory.
    pub queue_memory_bytes: u64,
    /// Bytes of batches waiting on disk.
    pub queue_disk_bytes: u64,
    /// When the receiver last accepted a request.
    pub last_success: Option<SystemTime>,
    /// When the oldest waiting batch was queued (`None` when the queue is
    /// empty): `now - oldest_queued` is how far delivery lags behind.
    pub oldest_queued: Option<SystemTime>,
    /// The last failure, if any since the last success.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    samples_sent: AtomicU64,
    batches_sent: AtomicU64,
    requests_sent: AtomicU64,
    failed_attempts: AtomicU64,
    retries: AtomicU64,
    rejected_batches: AtomicU64,
    rejected_samples: AtomicU64,
    last: Mutex<(Option<SystemTime>, Option<String>)>,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn failure(&self, error: String) {
        Self::add(&self.failed_attempts, 1);
        lock(&self.last).1 = Some(error);
    }
}

/// State shared by the handle and the task.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    counters: Counters,
}

/// Entry point: starts the shipper task.
#[derive(Debug)]
pub struct Shipper;

/// What the queued bodies are, which decides the request headers and how
/// consecutive batches are merged into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// Prometheus remote-write 1.0: snappy-compressed protobuf
    /// `WriteRequest`s, sent with the spec's headers.
    #[default]
    RemoteWrite,
    /// Loki push API JSON bodies `{"streams":[…]}`, sent as
    /// `application/json`. Merging concatenates the `streams` arrays.
    LokiJson,
}

/// Why a batch could not be queued durably; it was not queued and must not
/// be acknowledged to whoever sent it.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The batch cannot be encoded.
    #[error("cannot encode the batch: {0}")]
    Encode(String),
    /// The queue file cannot be written or synced.
    #[error("cannot write the batch to the queue directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The collector's side of a running shipper.
#[derive(Debug)]
pub struct ShipperHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Shipper {
    /// Opens the queue (reloading batches a previous run left) and starts
    /// the delivery task on the current tokio runtime.
    ///
    /// Must be called from within a tokio runtime. Dropping the handle
    /// without [`ShipperHandle::shutdown`] stops the task without a flush;
    /// it still persists the in-memory queue if the runtime lets it finish.
    pub fn spawn(config: RemoteWriteConfig) -> Result<ShipperHandle, ShipError> {
        Self::spawn_with(config, Payload::RemoteWrite, AGENT)
    }

    /// Like [`Shipper::spawn`], for bodies of kind `payload`, sent with
    /// `User-Agent: user_agent`.
    pub fn spawn_with(
        config: RemoteWriteConfig,
        payload: Payload,
        user_agent: &str,
    ) -> Result<ShipperHandle, ShipError> {
        Self::spawn_with_tls(config, payload, user_agent, &ClientTls::default())
    }

    /// Like [`Shipper::spawn_with`], verifying an `https://` receiver (and
    /// presenting a client certificate) as `tls` says. The files are read
    /// here, so a bad setting fails the start with an error naming the
    /// file.
    pub fn spawn_with_tls(
        config: RemoteWriteConfig,
        payload: Payload,
        user_agent: &str,
        tls: &ClientTls,
    ) -> Result<ShipperHandle, ShipError> {
        let user_agent = HeaderValue::from_str(user_agent)
            .map_err(|_| ShipError::InvalidUserAgent(user_agent.to_string()))?;
        let url = reqwest::Url::parse(&config.url).map_err(|e| ShipError::InvalidUrl {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ShipError::InvalidUrl {
                url: config.url.clone(),
                reason: "only http:// and https:// receivers are supported".into(),
            });
        }
        let tls = tls.rustls_config()?;
        let token = match &config.bearer_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| ShipError::TokenFile {
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => config.bearer_token.clone(),
        };
        let authorization = token
            .map(|t| {
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| ShipError::InvalidToken)
            })
            .transpose()?
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        let client = crate::tls::client::async_client(tls, |b| {
            b.timeout(config.timeout).connect_timeout(config.timeout)
        })
        .map_err(ShipError::Client)?;
        let queue = Queue::open(QueueConfig {
            memory_bytes: config.memory_bytes,
            disk_bytes: config.disk_bytes,
            spill_dir: config.spill_dir.clone(),
        })?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            wake: Notify::new(),
            counters: Counters::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let delivery = Delivery {
            shared: shared.clone(),
            client,
            url,
            authorization,
            config,
            stop: stop_rx,
            deadline: None,
            unmerged_through: None,
            payload,
            user_agent,
        };
        let task = tokio::spawn(delivery.run());
        Ok(ShipperHandle { shared, stop, task })
    }
}

impl ShipperHandle {
    /// Encodes one collection and queues it for delivery. Never waits on
    /// the network; may write one spill file when memory is full. Empty
    /// input is ignored. Labels are normalised here as the spec requires:
    /// sorted by name, empty-valued ones removed.
    pub fn enqueue(&self, series: Vec<TimeSeries>) {
        enqueue_on(&self.shared, series);
    }

    /// A snapshot of the counters and queue sizes.
    pub fn stats(&self) -> ShipperStats {
        self.shared.stats()
    }

    /// Stops the shipper: keeps delivering for at most
    /// `shutdown_flush_timeout`, then persists what is left to the spill
    /// directory. Returns the final counters.
    pub async fn shutdown(self) -> ShipperStats {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            error!(error = %e, "the remote-write shipper task failed");
            // The task died before persisting: do it here.
            let shared = self.shared.clone();
            let _ = tokio::task::spawn_blocking(move || lock(&shared.queue).persist()).await;
        }
        self.shared.stats()
    }
}

impl Shared {
    fn stats(&self) -> ShipperStats {
        let queue = lock(&self.queue).stats();
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (last_success, last_error) = lock(&c.last).clone();
        ShipperStats {
            samples_sent: get(&c.samples_sent),
            batches_sent: get(&c.batches_sent),
            requests_sent: get(&c.requests_sent),
            failed_attempts: get(&c.failed_attempts),
            retries: get(&c.retries),
            dropped_batches: queue.dropped_batches,
            dropped_samples: queue.dropped_samples,
            rejected_batches: get(&c.rejected_batches),
            rejected_samples: get(&c.rejected_samples),
            corrupt_spill_files: queue.corrupt_files,
            queue_batches: queue.batches,
            queue_memory_bytes: queue.memory_bytes,
            queue_disk_bytes: queue.disk_bytes,
            last_success,
            oldest_queued: queue.oldest_enqueued,
            last_error,
        }
    }
}

/// How one request went.
enum Outcome {
    /// 2xx.
    Accepted,
    /// Worth retrying: 5xx, 429, connection error, timeout.
    Retry {
        error: String,
        retry_after: Option<Duration>,
        /// What to do, when the request failed in the TLS handshake.
        tls_hint: Option<&'static str>,
    },
    /// A 4xx other than 429: the receiver will never take this body.
    Rejected { status: StatusCode, body: String },
}

/// The delivery task's state.
struct Delivery {
    shared: Arc<Shared>,
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: Option<HeaderValue>,
    config: RemoteWriteConfig,
    stop: watch::Receiver<bool>,
    /// Set once shutdown is asked: deliver until then, then persist.
    deadline: Option<Instant>,
    /// After a merged request was rejected, send batches up to this `seq`
    /// one by one to find the bad one.
    unmerged_through: Option<u64>,
    /// What the bodies are.
    payload: Payload,
    /// `User-Agent` of every request.
    user_agent: HeaderValue,
}

impl Delivery {
    async fn run(mut self) {
        loop {
            self.observe_stop();
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let batches = self.peek().await;
            if batches.is_empty() {
                if self.deadline.is_some() {
                    break;
                }
                let mut stop = self.stop.clone();
                let woken = tokio::select! {
                    () = self.shared.wake.notified() => true,
                    _ = stop.wait_for(|stop| *stop) => false,
                };
                if woken && !self.config.batch_wait.is_zero() {
                    // Let more batches arrive so they share one request.
                    let _ = self.sleep(self.config.batch_wait).await;
                }
                continue;
            }
            self.deliver(batches).await;
        }
        let remaining = self.shared.clone();
        let persisted = tokio::task::spawn_blocking(move || lock(&remaining.queue).persist()).await;
        if let Err(e) = persisted {
            error!(error = %e, "cannot persist the remote-write queue");
        }
    }

    /// Notices a shutdown request (or a dropped handle) and sets the
    /// deadline.
    fn observe_stop(&mut self) {
        if self.deadline.is_some() {
            return;
        }
        match self.stop.has_changed() {
            // The handle was dropped without shutdown: stop now.
            Err(_) => self.deadline = Some(Instant::now()),
            Ok(_) if *self.stop.borrow() => {
                self.deadline = Some(Instant::now() + self.config.shutdown_flush_timeout);
            }
            Ok(_) => {}
        }
    }

    async fn peek(&mut self) -> Vec<Batch> {
        let shared = self.shared.clone();
        let merge = match self.unmerged_through {
            Some(through)
                if lock(&shared.queue)
                    .front_seq()
                    .is_some_and(|s| s <= through) =>
            {
                false
            }
            _ => {
                self.unmerged_through = None;
                true
            }
        };
        let max_samples = if merge {
            self.config.catch_up_max_samples
        } else {
            0
        };
        tokio::task::spawn_blocking(move || Queue::peek(&shared.queue, max_samples))
            .await
            .unwrap_or_else(|e| {
                error!(error = %e, "reading the remote-write queue failed");
                Vec::new()
            })
    }

    /// Sends `batches` as one request until accepted, rejected, given up
    /// because the queue dropped them meanwhile, or stopped by shutdown.
    async fn deliver(&mut self, batches: Vec<Batch>) {
        let first = batches[0].seq;
        let last = batches[batches.len() - 1].seq;
        let samples: u64 = batches.iter().map(|b| b.samples).sum();
        let body = match merge(&batches, self.payload) {
            Some(body) => body,
            None => {
                // Cannot happen for bodies we encoded; send them singly.
                self.unmerged_through = Some(last);
                return;
            }
        };
        let shared = self.shared.clone();
        let counters = &shared.counters;
        for attempt in 0u32.. {
            if attempt > 0 {
                if lock(&self.shared.queue).front_seq() != Some(first) {
                    // The queue dropped the head while we retried.
                    return;
                }
                Counters::add(&counters.retries, 1);
            }
            // Shutdown must not wait for a hanging request: past the
            // deadline, abandon it; the batch stays queued and is persisted.
            let deadline = stop_deadline(
                self.stop.clone(),
                self.deadline,
                self.config.shutdown_flush_timeout,
            );
            let outcome = tokio::select! {
                outcome = self.post(body.clone()) => outcome,
                deadline = deadline => {
                    self.deadline = Some(deadline);
                    return;
                }
            };
            match outcome {
                Outcome::Accepted => {
                    Counters::add(&counters.requests_sent, 1);
                    Counters::add(&counters.batches_sent, batches.len() as u64);
                    Counters::add(&counters.samples_sent, samples);
                    *lock(&counters.last) = (Some(SystemTime::now()), None);
                    lock(&self.shared.queue).ack(last);
                    return;
                }
                Outcome::Rejected { status, body } if batches.len() > 1 => {
                    debug!(%status, body, batches = batches.len(), "merged remote-write request rejected; resending its batches one by one");
                    counters.failure(format!("receiver answered {status}: {body}"));
                    self.unmerged_through = Some(last);
                    return;
                }
                Outcome::Rejected { status, body } => {
                    error!(%status, receiver_said = body, samples, url = %self.url, "remote-write receiver refused a batch; dropping it (not retryable)");
                    counters.failure(format!("receiver answered {status}: {body}"));
                    Counters::add(&counters.rejected_batches, 1);
                    Counters::add(&counters.rejected_samples, samples);
                    lock(&self.shared.queue).ack(last);
                    return;
                }
                Outcome::Retry {
                    error,
                    retry_after,
                    tls_hint,
                } => {
                    if let (0, Some(hint)) = (attempt, tls_hint) {
                        // Not a passing outage: nothing arrives until the
                        // TLS settings change, so say so loudly.
                        error!(error, hint, url = %self.url, "remote-write TLS handshake failed; batches stay queued and are retried with backoff");
                    } else if attempt == 0 {
                        warn!(error, url = %self.url, "remote-write request failed; retrying with backoff, batches queue meanwhile");
                    } else {
                        debug!(error, attempt, "remote-write retry failed");
                    }
                    counters.failure(error);
                    let delay = retry_after.unwrap_or_else(|| {
                        backoff(attempt, self.config.min_backoff, self.config.max_backoff)
                    });
                    if !self.sleep(delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sleeps `delay`, cut short by the shutdown deadline. False when the
    /// deadline has passed.
    async fn sleep(&mut self, delay: Duration) -> bool {
        let mut wake = Instant::now() + delay;
        if self.deadline.is_none() {
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => return true,
                _ = stop.wait_for(|stop| *stop) => self.observe_stop(),
            }
        }
        if let Some(deadline) = self.deadline {
            wake = wake.min(deadline);
        }
        tokio::time::sleep_until(wake.into()).await;
        self.deadline.is_none_or(|d| Instant::now() < d)
    }

    async fn post(&self, body: Vec<u8>) -> Outcome {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(USER_AGENT, self.user_agent.clone())
            .body(body);
        request = match self.payload {
            Payload::RemoteWrite => request
                .header(CONTENT_ENCODING, remote_write::CONTENT_ENCODING)
                .header(CONTENT_TYPE, remote_write::CONTENT_TYPE)
                .header(
                    "X-Prometheus-Remote-Write-Version",
                    remote_write::PROTOCOL_VERSION,
                ),
            Payload::LokiJson => request.header(CONTENT_TYPE, "application/json"),
        };
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            request = request.timeout(left.min(self.config.timeout));
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Outcome::Retry {
                    error: error_chain(&e),
                    retry_after: None,
                    tls_hint: crate::tls::client::failure_hint(&e),
                };
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        // Read the answer to the end so the connection can be reused.
        let answer = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return Outcome::Accepted;
        }
        let mut text =
            String::from_utf8_lossy(&answer[..answer.len().min(MAX_LOGGED_BODY)]).into_owned();
        text.truncate(text.trim_end().len());
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Outcome::Retry {
                error: format!("receiver answered {status}: {text}"),
                retry_after: if status == StatusCode::TOO_MANY_REQUESTS {
                    retry_after
                } else {
                    None
                },
                tls_hint: None,
            }
        } else {
            Outcome::Rejected { status, body: text }
        }
    }
}

/// Resolves at the shutdown deadline: `deadline` if already known, else
/// `flush` after shutdown is asked (or at once if the handle is dropped).
async fn stop_deadline(
    mut stop: watch::Receiver<bool>,
    deadline: Option<Instant>,
    flush: Duration,
) -> Instant {
    let deadline = match deadline {
        Some(deadline) => deadline,
        None => match stop.wait_for(|stop| *stop).await {
            Ok(_) => Instant::now() + flush,
            Err(_) => Instant::now(),
        },
    };
    tokio::time::sleep_until(deadline.into()).await;
    deadline
}

/// One request body for consecutive batches: protobuf concatenates repeated
/// fields, so the decompressed bodies joined are one `WriteRequest` holding
/// every series in order.
///
/// Loki JSON bodies are merged by concatenating their `streams` arrays.
fn merge(batches: &[Batch], payload: Payload) -> Option<Vec<u8>> {
    if let [single] = batches {
        return Some(single.body.clone());
    }
    if payload == Payload::LokiJson {
        let mut streams = Vec::new();
        for batch in batches {
            let mut push: serde_json::Value = serde_json::from_slice(&batch.body).ok()?;
            match push.get_mut("streams")?.take() {
                serde_json::Value::Array(more) => streams.extend(more),
                _ => return None,
            }
        }
        return serde_json::to_vec(&serde_json::json!({ "streams": streams })).ok();
    }
    let mut protobuf = Vec::new();
    for batch in batches {
        protobuf.extend(remote_write::decompress(&batch.body, MAX_MERGE_BYTES).ok()?);
    }
    remote_write::compress(&protobuf).ok()
}

/// Capped exponential backoff with jitter: the `attempt`-th retry (0 for
/// the first) waits between half and all of `min * 2^attempt`, capped at
/// `max`, so agents restarted together spread out. Shared by every
/// pushing client.
pub(crate) fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let full = min
        .saturating_mul(2u32.saturating_pow(attempt.min(30)))
        .min(max);
    let half = full / 2;
    let jitter_nanos = fastrand::u64(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
    half + Duration::from_nanos(jitter_nanos)
}

/// A receiver's `Retry-After` in seconds, capped (a misbehaving receiver
/// cannot park the sender for hours). Shared by every pushing client.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// `error: cause: cause`, since reqwest's top-level message hides the cause
/// (connection refused, timeout). Shared by every pushing client.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let config = RemoteWriteConfig {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RemoteWriteConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(0, config.min_backoff, config.max_backoff);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(2, config.min_backoff, config.max_backoff);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = backoff(40, config.min_backoff, config.max_backoff);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }

    #[test]
    fn config_parses_from_toml_with_defaults() {
        let config: RemoteWriteConfig = toml::from_str(
            r#"
            url = "http://receiver:9090/api/v1/write"
            timeout = "3s"
            spill_dir = "/var/lib/osprey/remote-write-queue"
            min_backoff = "50ms"
            "#,
        )
        .unwrap();
        assert_eq!(config.url, "http://receiver:9090/api/v1/write");
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.min_backoff, Duration::from_millis(50));
        assert_eq!(config.max_backoff, RemoteWriteConfig::default().max_backoff);
        assert!(toml::from_str::<RemoteWriteConfig>("urll = \"x\"").is_err());
        let secret = RemoteWriteConfig {
            bearer_token: Some("s3cret".into()),
            ..config
        };
        assert!(!format!("{secret:?}").contains("s3cret"));
    }

    #[test]
    fn spawn_refuses_urls_it_cannot_serve() {
        for url in ["not a url", "ftp://receiver/api/v1/write"] {
            let config = RemoteWriteConfig {
                url: url.into(),
                ..RemoteWriteConfig::default()
            };
            let err = Shipper::spawn(config).unwrap_err();
            assert!(matches!(err, ShipError::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn merged_body_is_the_batches_in_order() {
        let one = |name: &str, ts: i64| {
            let request = WriteRequest {
                timeseries: vec![TimeSeries::new(
                    name,
                    [("a", "b")],
                    vec![remote_write::Sample::new(ts, 1.0)],
                )],
                metadata: vec![],
            };
            Batch {
                seq: ts as u64,
                samples: 1,
                body: remote_write::encode_snappy(&request).unwrap(),
                enqueued: SystemTime::now(),
            }
        };
        let merged = merge(
            &[one("x", 1), one("y", 2), one("x", 3)],
            Payload::RemoteWrite,
        )
        .unwrap();
        let request = remote_write::decode_snappy(&merged, 1 << 20).unwrap();
        let got: Vec<(&str, i64)> = request
            .timeseries
            .iter()
            .map(|s| (s.metric_name().unwrap(), s.samples[0].timestamp))
            .collect();
        assert_eq!(got, [("x", 1), ("y", 2), ("x", 3)]);
    }
}

/// A cheap, cloneable view of a running shipper for the code that feeds it
/// (the collection thread) and reports on it (`/metrics`); stopping stays
/// with the one [`ShipperHandle`].
#[derive(Debug, Clone)]
pub struct ShipperFeed {
    shared: Arc<Shared>,
}

impl ShipperHandle {
    /// A feed onto this shipper.
    pub fn feed(&self) -> ShipperFeed {
        ShipperFeed {
            shared: self.shared.clone(),
        }
    }
}

impl ShipperFeed {
    /// Like [`ShipperHandle::enqueue`].
    pub fn enqueue(&self, series: Vec<TimeSeries>) {
        enqueue_on(&self.shared, series);
    }

    /// Like [`ShipperHandle::stats`].
    pub fn stats(&self) -> ShipperStats {
        self.shared.stats()
    }

    /// Like [`ShipperHandle::enqueue_durable`].
    pub fn enqueue_durable(&self, series: Vec<TimeSeries>) -> Result<u64, EnqueueError> {
        let (body, samples) = encode(series)?;
        push_durable(&self.shared, body, samples)
    }

    /// Like [`ShipperHandle::enqueue_body_durable`].
    pub fn enqueue_body_durable(&self, body: Vec<u8>, items: u64) -> Result<u64, EnqueueError> {
        push_durable(&self.shared, body, items)
    }
}

impl ShipperHandle {
    /// Encodes `series` and writes it to the queue directory, fsynced,
    /// before returning the number of samples queued (0 for empty input):
    /// once it returns `Ok`, the batch is delivered even across a crash of
    /// the process or the machine (at least once). Blocking file I/O: call
    /// it from a blocking context. Needs `spill_dir`.
    pub fn enqueue_durable(&self, series: Vec<TimeSeries>) -> Result<u64, EnqueueError> {
        self.feed().enqueue_durable(series)
    }

    /// Like [`ShipperHandle::enqueue_durable`] for a body already encoded
    /// as the shipper's [`Payload`] says, holding `items` samples or log
    /// lines.
    pub fn enqueue_body_durable(&self, body: Vec<u8>, items: u64) -> Result<u64, EnqueueError> {
        self.feed().enqueue_body_durable(body, items)
    }
}

/// Encodes `series` as one remote-write body (labels normalised as
/// [`ShipperHandle::enqueue`] does); returns it with its sample count, for
/// [`ShipperHandle::enqueue_body_durable`]. Lets a caller encode outside
/// whatever lock orders its enqueues.
pub fn encode_batch(series: Vec<TimeSeries>) -> Result<(Vec<u8>, u64), EnqueueError> {
    encode(series)
}

fn encode(mut series: Vec<TimeSeries>) -> Result<(Vec<u8>, u64), EnqueueError> {
    let mut samples = 0u64;
    for one in &mut series {
        one.normalize_labels();
        samples += one.samples.len() as u64;
    }
    let request = WriteRequest {
        timeseries: series,
        metadata: Vec::new(),
    };
    let body =
        remote_write::encode_snappy(&request).map_err(|e| EnqueueError::Encode(e.to_string()))?;
    Ok((body, samples))
}

fn push_durable(shared: &Shared, body: Vec<u8>, items: u64) -> Result<u64, EnqueueError> {
    if items == 0 {
        return Ok(0);
    }
    lock(&shared.queue).push_durable(body, items)?;
    shared.wake.notify_one();
    Ok(items)
}

fn enqueue_on(shared: &Shared, mut series: Vec<TimeSeries>) {
    if series.is_empty() {
        return;
    }
    let mut samples = 0u64;
    for one in &mut series {
        one.normalize_labels();
        samples += one.samples.len() as u64;
    }
    let request = WriteRequest {
        timeseries: series,
        metadata: Vec::new(),
    };
    match remote_write::encode_snappy(&request) {
        Ok(body) => {
            lock(&shared.queue).push(body, samples);
            shared.wake.notify_one();
        }
        Err(e) => {
            error!(error = %e, samples, "cannot encode a remote-write batch; dropping it");
            let counters = &shared.counters;
            Counters::add(&counters.rejected_batches, 1);
            Counters::add(&counters.rejected_samples, samples);
        }
    }
}

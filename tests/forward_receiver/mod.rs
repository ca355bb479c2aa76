//! A real HTTP receiver for the forwarding tests: an axum server on a
//! loopback port, in its own thread and runtime, that records every
//! request and answers with a status the test sets (e.g. 400 or 503).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Shared {
    status: AtomicU16,
    retry_after: Mutex<Option<String>>,
    received: Mutex<Vec<Received>>,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts answering every POST with `status`.
    pub fn start(status: u16) -> Self {
        Self::start_on(0, status)
    }

    /// The same on a chosen port (0: any), to bring a target back where it
    /// was after an outage.
    pub fn start_on(port: u16, status: u16) -> Self {
        let shared = Arc::new(Shared {
            status: AtomicU16::new(status),
            retry_after: Mutex::new(None),
            received: Mutex::new(Vec::new()),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .fallback(axum::routing::post(record))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().expect("receiver started");
        Self {
            base: format!("http://{addr}"),
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Answers later requests with `status`.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Sends `Retry-After: <value>` with later answers (`None`: not).
    pub fn set_retry_after(&self, value: Option<&str>) {
        *self.shared.retry_after.lock().unwrap() = value.map(str::to_string);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = shared.status.load(Ordering::SeqCst);
    shared.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        status,
        at: std::time::Instant::now(),
    });
    let status = StatusCode::from_u16(status).unwrap();
    match shared.retry_after.lock().unwrap().clone() {
        Some(after) => (status, [(axum::http::header::RETRY_AFTER, after)]).into_response(),
        None => status.into_response(),
    }
}

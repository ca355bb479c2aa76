//! Serving an axum router on a TCP listener over HTTP/1.1, plain or TLS,
//! with a header-read timeout and graceful shutdown. Used by the agent's
//! API and by the server (in place of `axum::serve`, which has neither
//! TLS nor a header timeout).
//!
//! Slow clients: a new connection must complete its TLS handshake, and
//! then its first request head, each within
//! [`ServeOptions::header_read_timeout`]; later request heads must arrive
//! within that time of their first byte. Otherwise the connection is
//! closed without an answer. A kept-alive connection may wait
//! [`ServeOptions::idle_timeout`] for its next request: longer than HTTP
//! clients keep idle connections (reqwest: 90 s), so a client never
//! reuses a connection the server is closing at that very moment.
//! Handshakes run on the connection's own task, so a client that stalls
//! mid-handshake never holds up `accept`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, error};

/// The default of [`ServeOptions::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of [`ServeOptions::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How [`serve`] runs.
#[derive(Clone)]
pub struct ServeOptions {
    /// Time a client has for the TLS handshake, for the first request
    /// head, and for each later head from its first byte.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Speak HTTPS with this configuration; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls: None,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets every connection finish the request it is serving
/// (idle ones close at once), and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if options.header_read_timeout.is_zero() || options.idle_timeout.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "header_read_timeout and idle_timeout must be more than 0",
        ));
    }
    let acceptor = options.tls.map(tokio_rustls::TlsAcceptor::from);
    let timeouts = HeadTimeouts {
        header: options.header_read_timeout,
        idle: options.idle_timeout,
    };
    // `stop` tells connections to finish; every connection task holds a
    // clone of `open`, so `open_tx.closed()` resolves when the last ends.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            router: router.clone(),
            timeouts,
            stop: stop_rx.clone(),
            peer,
        };
        let acceptor = acceptor.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => connection.serve_tls(acceptor, stream).await,
                None => connection.serve(stream).await,
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    let _ = stop_tx.send(true);
    open_tx.closed().await;
    Ok(())
}

/// `accept` failed: per-connection errors (the peer gave up) are
/// ignored; others (out of file descriptors) are logged and retried after
/// a pause rather than spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection.
struct Connection {
    router: Router,
    timeouts: HeadTimeouts,
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
}

impl Connection {
    async fn serve_tls(self, acceptor: tokio_rustls::TlsAcceptor, stream: tokio::net::TcpStream) {
        let mut stop = self.stop.clone();
        let handshake = tokio::time::timeout(self.timeouts.header, acceptor.accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    // Port scans and plain-HTTP clients land here: not worth
                    // more than debug.
                    debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(peer = %self.peer, timeout = ?self.timeouts.header, "TLS handshake timed out; connection closed");
                    return;
                }
            },
            () = stopped(&mut stop) => return,
        };
        self.serve(stream).await;
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // hyper's header-read timer, given our timer, which knows from the
        // bytes read whether a kept-alive connection is idle or mid-head.
        let bytes_read = Arc::new(AtomicU64::new(0));
        let io = CountingIo {
            inner: io,
            bytes_read: bytes_read.clone(),
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(HeadTimer {
                timeouts: self.timeouts,
                bytes_read,
                armed: AtomicU64::new(0),
            })
            .header_read_timeout(self.timeouts.header);
        let service = TowerToHyperService::new(self.router);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        let mut stop = self.stop;
        let served = tokio::select! {
            served = connection.as_mut() => served,
            () = stopped(&mut stop) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = served {
            debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }
}

/// Resolves once shutdown has been asked for.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrow `wait_for` returns is dropped here, not held while the
    // connection drains.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The two limits on waiting for a request head.
#[derive(Debug, Clone, Copy)]
struct HeadTimeouts {
    header: Duration,
    idle: Duration,
}

/// The timer hyper uses for its header-read timeout, one per connection.
/// hyper arms it each time it starts reading a request head. The first
/// head must arrive within `header` of that; for later ones the
/// connection may stay idle up to `idle`, and `header` counts from the
/// first byte of the head.
struct HeadTimer {
    timeouts: HeadTimeouts,
    bytes_read: Arc<AtomicU64>,
    /// How many times hyper has armed it (0: the first request).
    armed: AtomicU64,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let first = self.armed.fetch_add(1, Ordering::Relaxed) == 0;
        let armed_at = deadline
            .checked_sub(self.timeouts.header)
            .unwrap_or_else(Instant::now);
        Box::pin(HeadSleep {
            timeouts: self.timeouts,
            bytes_read: self.bytes_read.clone(),
            read_at_arm: self.bytes_read.load(Ordering::Relaxed),
            armed_at,
            head_started: first.then_some(armed_at),
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
        })
    }
}

/// See [`HeadTimer`].
struct HeadSleep {
    timeouts: HeadTimeouts,
    bytes_read: Arc<AtomicU64>,
    read_at_arm: u64,
    armed_at: Instant,
    /// When the head began: at arming for a new connection, else when
    /// the first byte after arming was seen.
    head_started: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this right after each read that left the head
        // incomplete, so a first byte is noticed when it arrives.
        if self.head_started.is_none()
            && self.bytes_read.load(Ordering::Relaxed) != self.read_at_arm
        {
            self.head_started = Some(Instant::now());
        }
        let deadline = match self.head_started {
            Some(started) => started + self.timeouts.header,
            None => self.armed_at + self.timeouts.idle,
        };
        if self.sleep.deadline() != deadline.into() {
            self.sleep.as_mut().reset(deadline.into());
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// A connection's stream, counting the bytes read for [`HeadTimer`].
struct CountingIo<I> {
    inner: I,
    bytes_read: Arc<AtomicU64>,
}

impl<I: AsyncRead + Unpin> AsyncRead for CountingIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            self.bytes_read.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for CountingIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

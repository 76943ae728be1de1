//! The connections clients open to Herald's ports (gRPC, and the admin HTTP port): how
//! many may be open at once, how long a new one has to make its first request, and
//! accepting without spinning when descriptors run out. It also owns the process's
//! open-file limit and its budget (`budget`). It does not own what is spoken over a
//! connection (tonic, axum), TLS (`tls`), nor keepalive pings (the HTTP/2 server).
//!
//! Each port has a [`Gate`] with a number of slots. An accepted connection takes a
//! slot, and waits until its first request's headers are complete (`first_request`
//! follows its bytes; over TLS, the decrypted ones); from then on it is served and
//! kept while it lives. A connection still waiting is closed when the deadline passes,
//! or when the gate is full and a new connection arrives: the oldest waiting connection
//! gives its slot to the newcomer, so clients that connect and say nothing can never
//! lock others out. Only when every slot holds a served connection is a newcomer
//! refused (closed at once). When accepting fails (out of descriptors), accepting
//! pauses briefly instead of retrying in a tight loop.
//!
//! A connection is two layers: a [`Slot`] around the socket, which holds the slot and
//! fails reads and writes once the connection is closed for waiting too long or
//! evicted (this bounds a TLS handshake too), and a [`FirstRequest`] above the
//! protocol's plaintext, which tells when the first request is complete.

mod budget;
mod first_request;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

pub use self::budget::{
    ADMIN_MAX_CONNECTIONS, Budget, BudgetError, OpenFileLimit, Reserve, open_file_limit,
    raise_open_file_limit,
};
pub use self::first_request::Protocol;
use self::first_request::Scanner;
use crate::metrics::Metrics;

/// How long accepting pauses after the listener itself fails (typically: out of file
/// descriptors), so that the failure is not retried in a tight loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Settings of the connections to the gRPC port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionsConfig {
    /// How long a new connection has to complete its first request.
    pub first_request_timeout: Duration,
    /// Connections open at once; `None`: what the open-file budget leaves.
    pub max_connections: Option<u32>,
    /// Concurrent HTTP/2 streams (calls) per connection.
    pub max_streams_per_connection: u32,
    /// Age at which a connection is asked to go (GOAWAY), so clients rebalance.
    pub max_age: Duration,
    /// How long its calls may go on after that before it is closed.
    pub max_age_grace: Duration,
}

/// Which port a gate guards, as metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Grpc,
    Admin,
}

impl Port {
    fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Admin => "admin",
        }
    }
}

/// The slots of one port.
pub struct Gate {
    port: Port,
    max: usize,
    first_request_timeout: Duration,
    protocol: Protocol,
    metrics: Arc<Metrics>,
    slots: Mutex<Slots>,
    /// Whether accepting is failing now, so that an episode is logged once.
    failing: AtomicBool,
}

struct Slots {
    /// Slots taken, by connections open or (once evicted) about to close.
    taken: usize,
    next_id: u64,
    /// Connections waiting for their first request, oldest first, each with the means
    /// to evict it.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
    /// Whether newcomers are being refused now, so that an episode is logged once.
    refusing: bool,
}

/// Where a connection is in its life, as its [`Claim`] records it.
const WAITING: u8 = 0;
const SERVED: u8 = 1;
const TIMED_OUT: u8 = 2;

impl Gate {
    /// `max` slots for connections speaking `protocol`, each given
    /// `first_request_timeout` to complete its first request.
    pub fn new(
        port: Port,
        max: usize,
        first_request_timeout: Duration,
        protocol: Protocol,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            port,
            max,
            first_request_timeout,
            protocol,
            metrics,
            slots: Mutex::new(Slots {
                taken: 0,
                next_id: 0,
                waiting: BTreeMap::new(),
                refusing: false,
            }),
            failing: AtomicBool::new(false),
        })
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a connection just accepted: a free one, else the one of the oldest
    /// connection still waiting for its first request (which is closed); `None` when
    /// every slot holds a served connection.
    fn admit(self: &Arc<Self>) -> Option<(Arc<Claim>, oneshot::Receiver<()>)> {
        let mut slots = self.slots();
        if slots.taken < self.max {
            slots.taken += 1;
            self.metrics.connection_opened(self.port.label());
        } else if let Some((_, evict)) = slots.waiting.pop_first() {
            // The evicted connection's slot passes to this one; it closes at its next
            // read or write (see `Slot::check`).
            let _ = evict.send(());
            self.metrics.connection_evicted(self.port.label());
        } else {
            self.metrics.connection_refused(self.port.label());
            if !slots.refusing {
                slots.refusing = true;
                tracing::warn!(
                    port = self.port.label(),
                    max = self.max,
                    "every connection slot holds a client being served: refusing new connections"
                );
            }
            return None;
        }
        slots.refusing = false;
        let id = slots.next_id;
        slots.next_id += 1;
        let (evict, evicted) = oneshot::channel();
        slots.waiting.insert(id, evict);
        let claim = Claim {
            gate: self.clone(),
            id,
            state: AtomicU8::new(WAITING),
        };
        Some((Arc::new(claim), evicted))
    }

    /// The next connection let in through `listener`: refused ones are closed at once;
    /// a failing listener is retried after a pause.
    async fn accept(self: &Arc<Self>, listener: &TcpListener) -> (Slot<TcpStream>, SocketAddr) {
        loop {
            match listener.accept().await {
                Ok((tcp, peer)) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(port = self.port.label(), "accepting connections again");
                    }
                    let Some((claim, evicted)) = self.admit() else {
                        tracing::debug!(%peer, port = self.port.label(), "connection refused");
                        continue;
                    };
                    // Nagle's algorithm would hold back small frames until the peer's
                    // delayed ACK (~40 ms).
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    let deadline = Instant::now() + self.first_request_timeout;
                    return (Slot::new(tcp, claim, evicted, deadline), peer);
                }
                // The client gave up before it was accepted: its business only.
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(error = %e, "connection lost before it was accepted");
                }
                Err(e) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            port = self.port.label(),
                            error = %e,
                            pause = ?ACCEPT_ERROR_PAUSE,
                            "accepting connections failed; pausing between tries until it works again"
                        );
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }
}

/// Errors from `accept` that concern one connection, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A port's listener behind its gate.
pub struct Listener {
    tcp: TcpListener,
    gate: Arc<Gate>,
}

impl Listener {
    pub fn new(tcp: TcpListener, gate: Arc<Gate>) -> Self {
        Self { tcp, gate }
    }

    /// The connections let in, for a server that reads its own protocol's plaintext
    /// only after more layers (TLS): wrap what it reads in [`FirstRequest`]. Endless:
    /// the server stops accepting by dropping it, which closes the listening socket.
    pub fn incoming(self) -> impl Stream<Item = Slot<TcpStream>> + Send + 'static {
        async_stream::stream! {
            loop {
                let (slot, _) = self.gate.accept(&self.tcp).await;
                yield slot;
            }
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = FirstRequest<Slot<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (slot, peer) = self.gate.accept(&self.tcp).await;
        (FirstRequest::new(slot), peer)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A connection's hold on its slot; released when the connection closes, unless it was
/// evicted (its slot then passed to the connection that evicted it).
pub struct Claim {
    gate: Arc<Gate>,
    id: u64,
    /// [`WAITING`], [`SERVED`] or [`TIMED_OUT`]; changed only with the gate's lock held,
    /// together with leaving the waiting list.
    state: AtomicU8,
}

impl Claim {
    /// Leaves the waiting list as `state`; false when the connection had been evicted.
    fn settle(&self, state: u8) -> bool {
        let mut slots = self.gate.slots();
        let Some(evict) = slots.waiting.remove(&self.id) else {
            return false;
        };
        // Set before the sender is dropped: the slot layer, woken by the drop, reads it.
        self.state.store(state, Ordering::Release);
        drop(evict);
        true
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut slots = self.gate.slots();
        let waiting = slots.waiting.remove(&self.id).is_some();
        if waiting || self.state() != WAITING {
            slots.taken -= 1;
            self.gate.metrics.connection_closed(self.gate.port.label());
        }
    }
}

/// The socket of a connection, holding its slot. Until the first request is complete,
/// reads and writes fail once the deadline passes or the connection is evicted, which
/// makes the server close it.
pub struct Slot<IO> {
    io: IO,
    claim: Arc<Claim>,
    /// What may close the connection while it waits; `None` once served.
    watch: Option<Watch>,
    /// Why the connection was closed, once it was.
    closed: Option<io::ErrorKind>,
}

struct Watch {
    deadline: Pin<Box<Sleep>>,
    evicted: oneshot::Receiver<()>,
}

impl<IO> Slot<IO> {
    fn new(io: IO, claim: Arc<Claim>, evicted: oneshot::Receiver<()>, deadline: Instant) -> Self {
        Self {
            io,
            claim,
            watch: Some(Watch {
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                evicted,
            }),
            closed: None,
        }
    }

    /// `Err` once the connection is closed for waiting too long or for being evicted;
    /// registers `cx` to be woken when that happens.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(kind) = self.closed {
            return Err(kind.into());
        }
        let Some(watch) = &mut self.watch else {
            return Ok(());
        };
        if self.claim.state() == SERVED {
            self.watch = None;
            return Ok(());
        }
        let closed = if Pin::new(&mut watch.evicted).poll(cx).is_ready() {
            // Woken by eviction, or by leaving the waiting list as served just now.
            if self.claim.state() == SERVED {
                self.watch = None;
                return Ok(());
            }
            tracing::debug!(
                port = self.claim.gate.port.label(),
                "connection evicted before its first request, for a newer one"
            );
            io::ErrorKind::ConnectionAborted
        } else if watch.deadline.as_mut().poll(cx).is_ready() {
            let gate = &self.claim.gate;
            if self.claim.settle(TIMED_OUT) {
                gate.metrics.connection_timed_out(gate.port.label());
                tracing::debug!(
                    port = gate.port.label(),
                    timeout = ?gate.first_request_timeout,
                    "connection closed: no complete request in time"
                );
                io::ErrorKind::TimedOut
            } else if self.claim.state() == SERVED {
                self.watch = None;
                return Ok(());
            } else {
                io::ErrorKind::ConnectionAborted
            }
        } else {
            return Ok(());
        };
        self.watch = None;
        self.closed = Some(closed);
        Err(closed.into())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Slot<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Slot<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for Slot<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Something that holds a slot, directly or under other layers (TLS).
pub trait Claimed {
    fn claim(&self) -> &Arc<Claim>;
}

impl<IO> Claimed for Slot<IO> {
    fn claim(&self) -> &Arc<Claim> {
        &self.claim
    }
}

impl<IO: Claimed> Claimed for tokio_rustls::server::TlsStream<IO> {
    fn claim(&self) -> &Arc<Claim> {
        self.get_ref().0.claim()
    }
}

/// A connection's plaintext, followed until its first request is complete; then the
/// connection is served and its slot kept.
pub struct FirstRequest<IO> {
    io: IO,
    /// `None` once the first request is complete.
    pending: Option<(Scanner, Arc<Claim>)>,
}

impl<IO: Claimed> FirstRequest<IO> {
    pub fn new(io: IO) -> Self {
        let claim = io.claim().clone();
        let scanner = Scanner::new(claim.gate.protocol);
        Self {
            io,
            pending: Some((scanner, claim)),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstRequest<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if let Some((scanner, claim)) = &mut this.pending
            && scanner.feed(&buf.filled()[before..])
        {
            let served = claim.settle(SERVED);
            this.pending = None;
            if !served {
                // Evicted or timed out meanwhile: the slot layer fails from now on.
                return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FirstRequest<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for FirstRequest<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

//! The collector's own accept loop in front of tonic: every connection from whatever reaches
//! the port is bounded before it costs more than a file descriptor and a little memory.
//!
//! - at most `max_connections` open connections, and `max_connections_per_ip` from one
//!   address, counted from the TCP accept (a refused one is accepted and closed at once, so
//!   the listen backlog never fills and an operator's connection still reaches the loop);
//! - at most `max_handshakes` TLS handshakes at once, each within `handshake_timeout`; when
//!   every handshake slot is taken, the oldest handshake is dropped for the new one, so
//!   connections that never speak TLS cannot keep out one that does;
//! - at most `max_anonymous` connections without a client certificate (they can only enroll),
//!   so certified agents, admins and auditors always find a slot that enrolling peers cannot
//!   take;
//! - a connection's first request within `first_request_timeout` of its accept.
//!
//! Every refusal is counted in `veu_collector_connections_refused_total{reason}`. Peer
//! certificates reach the services as with tonic's own TLS: the IO handed to tonic is a
//! `tokio_rustls` server stream over a TCP stream, so `Request::peer_certs` and
//! `Request::remote_addr` read them as before.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

use collector_app::metrics::Metrics;

/// Every reason a connection is refused or closed early, the `reason` label of
/// `veu_collector_connections_refused_total`.
pub const REFUSALS: [&str; 7] = [
    "max_connections",
    "max_connections_per_ip",
    "max_anonymous",
    "handshake_evicted",
    "handshake_timeout",
    "handshake_failed",
    "first_request_timeout",
];

/// The bounds on connections (`[connections]` in the collector's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at once, handshaking or not.
    pub max_connections: usize,
    /// Open connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// TLS handshakes in progress at once; the oldest makes way for a new one.
    pub max_handshakes: usize,
    /// Connections at once without a client certificate (enrollment only).
    pub max_anonymous: usize,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long after its accept a connection may go without a first request.
    pub first_request_timeout: Duration,
    /// HTTP/2 streams (requests) at once on one connection.
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            max_connections_per_ip: 256,
            max_handshakes: 512,
            max_anonymous: 1024,
            handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(30),
            max_concurrent_streams: 64,
        }
    }
}

/// A connection as tonic receives it: TLS over a TCP stream that holds its slots.
pub type Connection = TlsStream<Guarded>;

/// The connections' books: what is open, from where, and what is still handshaking.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    metrics: Arc<Metrics>,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
    anonymous: usize,
    handshakes: VecDeque<(u64, CancellationToken)>,
    next_handshake: u64,
    /// Connections that have not made their first request yet, by peer address.
    unserved: HashMap<SocketAddr, Arc<AtomicBool>>,
}

impl Gate {
    /// Books for `limits`, counting refusals in `metrics`.
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Arc<Self> {
        for reason in REFUSALS {
            metrics.connection_refused_series(reason);
        }
        Arc::new(Self {
            limits,
            metrics,
            state: Mutex::new(GateState::default()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Marks the connection from `peer` as having made a request: its first-request deadline
    /// no longer applies. Called for every request (tonic's interceptor at the server).
    pub fn served(&self, peer: SocketAddr) {
        if let Some(flag) = self.lock().unserved.remove(&peer) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Every update keeps the counts consistent between statements; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, reason: &'static str, peer: SocketAddr) {
        self.metrics.connection_refused(reason);
        tracing::debug!(%peer, reason, "connection refused");
    }

    /// A slot for a connection from `peer`, or the reason there is none.
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Slot, &'static str> {
        let ip = peer.ip().to_canonical();
        let mut state = self.lock();
        if state.open >= self.limits.max_connections {
            return Err("max_connections");
        }
        let from_ip = state.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.limits.max_connections_per_ip {
            return Err("max_connections_per_ip");
        }
        *from_ip += 1;
        state.open += 1;
        self.metrics.connections_open.set(state.open as i64);
        let served = Arc::new(AtomicBool::new(false));
        state.unserved.insert(peer, Arc::clone(&served));
        Ok(Slot {
            gate: Arc::clone(self),
            peer,
            ip,
            served,
            anonymous: false,
        })
    }

    /// Registers a handshake; when every handshake slot is taken, the oldest is told to stop.
    fn begin_handshake(&self) -> (u64, CancellationToken) {
        let mut state = self.lock();
        while state.handshakes.len() >= self.limits.max_handshakes.max(1) {
            if let Some((_, oldest)) = state.handshakes.pop_front() {
                oldest.cancel();
            }
        }
        let id = state.next_handshake;
        state.next_handshake += 1;
        let token = CancellationToken::new();
        state.handshakes.push_back((id, token.clone()));
        (id, token)
    }

    fn end_handshake(&self, id: u64) {
        let mut state = self.lock();
        if let Some(position) = state.handshakes.iter().position(|(i, _)| *i == id) {
            state.handshakes.remove(position);
        }
    }

    /// Counts a handshaken connection without a client certificate, if there is room.
    fn admit_anonymous(&self, slot: &mut Slot) -> bool {
        let mut state = self.lock();
        if state.anonymous >= self.limits.max_anonymous {
            return false;
        }
        state.anonymous += 1;
        slot.anonymous = true;
        true
    }
}

/// A connection's place in the gate's books, given back when it closes.
#[derive(Debug)]
struct Slot {
    gate: Arc<Gate>,
    peer: SocketAddr,
    ip: IpAddr,
    served: Arc<AtomicBool>,
    anonymous: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.open = state.open.saturating_sub(1);
        if let Some(count) = state.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
        if self.anonymous {
            state.anonymous = state.anonymous.saturating_sub(1);
        }
        // The same address may already be a newer connection's.
        if state
            .unserved
            .get(&self.peer)
            .is_some_and(|flag| Arc::ptr_eq(flag, &self.served))
        {
            state.unserved.remove(&self.peer);
        }
        self.gate.metrics.connections_open.set(state.open as i64);
    }
}

/// A TCP stream holding its connection's slot, closed with an error when its first request
/// does not come in time.
#[derive(Debug)]
pub struct Guarded {
    tcp: TcpStream,
    slot: Slot,
    first_request: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp.connect_info()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        if let Some(deadline) = this.first_request.as_mut() {
            if this.slot.served.load(Ordering::Relaxed) {
                this.first_request = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                this.first_request = None;
                // Every later read fails too: the connection is over.
                this.timed_out = true;
                this.slot
                    .gate
                    .refuse("first_request_timeout", this.slot.peer);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request before the first-request deadline",
                )));
            }
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Accepts connections on `listener` until `shutdown`, and hands tonic those that got a
/// slot and finished their TLS handshake in time.
pub fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Connection> {
    // Handshaken connections wait here only until tonic takes them (it takes each at once).
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or the peer left before the accept: the
                    // connections already open keep being served; try again shortly.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let slot = match gate.admit(peer) {
                Ok(slot) => slot,
                Err(reason) => {
                    gate.refuse(reason, peer);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let guarded = Guarded {
                tcp,
                slot,
                first_request: Some(Box::pin(tokio::time::sleep(
                    gate.limits.first_request_timeout,
                ))),
                timed_out: false,
            };
            tokio::spawn(handshake(
                guarded,
                acceptor.clone(),
                Arc::clone(&gate),
                sender.clone(),
                peer,
            ));
        }
    });
    receiver
}

/// One TLS handshake, within the deadline and unless a newer handshake needs its slot.
async fn handshake(
    guarded: Guarded,
    acceptor: TlsAcceptor,
    gate: Arc<Gate>,
    sender: mpsc::Sender<Connection>,
    peer: SocketAddr,
) {
    let (id, evicted) = gate.begin_handshake();
    let outcome = tokio::select! {
        () = evicted.cancelled() => Err("handshake_evicted"),
        outcome = tokio::time::timeout(gate.limits.handshake_timeout, acceptor.accept(guarded)) => {
            match outcome {
                Err(_) => Err("handshake_timeout"),
                Ok(Err(_)) => Err("handshake_failed"),
                Ok(Ok(tls)) => Ok(tls),
            }
        }
    };
    gate.end_handshake(id);
    let mut tls = match outcome {
        Ok(tls) => tls,
        Err(reason) => {
            gate.refuse(reason, peer);
            return;
        }
    };
    let (io, session) = tls.get_mut();
    if session.peer_certificates().is_none() && !gate.admit_anonymous(&mut io.slot) {
        gate.refuse("max_anonymous", peer);
        return;
    }
    // Tonic gone (shutting down): the connection closes with this task.
    let _ = sender.send(tls).await;
}

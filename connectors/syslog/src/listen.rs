//! The listeners (UDP, TCP, TLS) and the bounded queue they feed.
//!
//! One task receives UDP datagrams; one task per listening socket accepts connections, and each
//! connection gets its own reader task. Readers parse what they read and put the messages on one
//! bounded queue (a tokio `mpsc` channel of [`SyslogMessage`]s) that the hub drains.
//!
//! # Back-pressure
//! When the queue is full:
//! - a **TCP or TLS** reader waits for room before taking the next frame, so it stops reading its
//!   socket; the kernel's receive window fills and the sender slows down. Nothing accepted on a
//!   connection is dropped for lack of room.
//! - the **UDP** task cannot slow a sender down: the datagram is dropped and counted
//!   (`vigie_syslog_dropped_total{transport="udp",reason="queue_full"}`), before it is parsed,
//!   so that an overload costs as little as possible.
//!
//! Memory stays bounded: the queue holds at most `queue_capacity` messages of at most
//! `max_message_bytes`, and each connection buffers at most about one message.
//!
//! # Shutdown
//! [`SyslogServer::shutdown`] stops accepting and receiving at once. Each open connection then
//! reads what its peer already sent (until nothing arrives for [`DRAIN_QUIET`], at most
//! [`DRAIN_MAX`]), queues every complete frame, and closes. When every task is done the queue's
//! senders are gone: the consumer receives what is left, then `None`. The consumer must keep
//! draining until then, or readers waiting for room would wait forever.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigProblem, Settings, SyslogConfig};
use crate::frame::{Frame, FrameError, Framer};
use crate::parse::{Origin, ParseOptions, Protocol, SyslogMessage, Transport, parse};
use crate::stats::{ConnectionError, DropReason, Meter, Stats, Tally, describe};

/// After a shutdown, a connection stops reading once nothing arrived for this long.
pub const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// After a shutdown, a connection stops reading after this long whatever still arrives (a sender
/// flooding the receiver cannot hold the hub's stop).
pub const DRAIN_MAX: Duration = Duration::from_secs(2);
/// How much is read from a connection at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The largest UDP payload (65 535 − 8 bytes of UDP header − 20 of IPv4 header).
const MAX_DATAGRAM: usize = 65_507;

/// The receiving end of the queue.
pub type SyslogReceiver = mpsc::Receiver<SyslogMessage>;

/// Why the receiver did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<ConfigProblem>),
    #[error("{key}: cannot listen on {addr}: {source}{}", privileged_hint(*.addr, .source))]
    Bind {
        /// The configuration key of the address (`syslog.tcp`).
        key: String,
        addr: SocketAddr,
        source: io::Error,
    },
}

fn privileged_hint(addr: SocketAddr, e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 {
        " (ports below 1024 need the CAP_NET_BIND_SERVICE capability: \
         `setcap cap_net_bind_service=+ep` on the binary, or systemd's AmbientCapabilities)"
    } else {
        ""
    }
}

/// The running receiver.
pub struct SyslogServer {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    stats: Arc<Stats>,
}

/// What every task shares.
struct Shared {
    tx: mpsc::Sender<SyslogMessage>,
    options: ParseOptions,
    max_message: usize,
    idle_timeout: Duration,
    stats: Arc<Stats>,
    /// Connection slots, TCP and TLS together.
    slots: Arc<Semaphore>,
}

impl SyslogServer {
    /// Checks the configuration, binds every listener and starts receiving. The receiver is the
    /// queue's consuming end; [`crate::Batcher`] reads it in batches.
    pub async fn start(
        config: &SyslogConfig,
    ) -> Result<(SyslogServer, SyslogReceiver), StartError> {
        let settings = config.validate("syslog").map_err(StartError::Config)?;
        SyslogServer::start_with(settings).await
    }

    /// Starts with an already checked configuration.
    pub async fn start_with(
        settings: Settings,
    ) -> Result<(SyslogServer, SyslogReceiver), StartError> {
        describe();
        let bind_error = |key: &str, addr: SocketAddr| {
            let key = key.to_owned();
            move |source| StartError::Bind { key, addr, source }
        };
        // Bind everything before spawning anything: a start either fully works or leaves
        // nothing behind.
        let udp = match settings.udp {
            Some(addr) => Some(bind_udp(addr).map_err(bind_error("syslog.udp", addr))?),
            None => None,
        };
        let tcp = match settings.tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(bind_error("syslog.tcp", addr))?,
            ),
            None => None,
        };
        let tls = match &settings.tls {
            Some(t) => Some((
                TcpListener::bind(t.listen)
                    .await
                    .map_err(bind_error("syslog.tls.listen", t.listen))?,
                TlsAcceptor::from(t.server.clone()),
            )),
            None => None,
        };
        let local = |r: io::Result<SocketAddr>, key: &str, addr: SocketAddr| {
            r.map_err(bind_error(key, addr))
        };

        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            tx,
            options: ParseOptions {
                timezone: settings.timezone,
            },
            max_message: settings.max_message_bytes,
            idle_timeout: settings.idle_timeout,
            stats: stats.clone(),
            slots: Arc::new(Semaphore::new(settings.max_connections)),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut server = SyslogServer {
            stop,
            tasks: Vec::new(),
            udp: None,
            tcp: None,
            tls: None,
            stats,
        };
        if let (Some(socket), Some(addr)) = (udp, settings.udp) {
            server.udp = Some(local(socket.local_addr(), "syslog.udp", addr)?);
            server.tasks.push(tokio::spawn(run_udp(
                socket,
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        if let (Some(listener), Some(addr)) = (tcp, settings.tcp) {
            server.tcp = Some(local(listener.local_addr(), "syslog.tcp", addr)?);
            server.tasks.push(tokio::spawn(run_accept(
                listener,
                None,
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        if let (Some((listener, acceptor)), Some(t)) = (tls, &settings.tls) {
            server.tls = Some(local(listener.local_addr(), "syslog.tls.listen", t.listen)?);
            server.tasks.push(tokio::spawn(run_accept(
                listener,
                Some(acceptor),
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        tracing::info!(
            udp = ?server.udp,
            tcp = ?server.tcp,
            tls = ?server.tls,
            "syslog receiver listening"
        );
        Ok((server, rx))
    }

    /// The UDP listener's address (with the port chosen when `0` was asked).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// The counters since the start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A handle on the counters that outlives the server.
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops accepting, lets each connection queue what its peer already sent, and returns once
    /// every listener and connection task has ended. See the module's documentation: the queue
    /// must keep being drained meanwhile.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a syslog listener task failed");
            }
        }
        tracing::info!("syslog receiver stopped");
    }
}

/// The receive buffer asked of the kernel for the UDP socket. Datagrams that arrive while the
/// reader is busy wait there; the default (208 KiB on Linux) holds about 0.1 s at 20 000
/// messages/s. Linux grants at most twice `net.core.rmem_max` (docs/syslog.md).
const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// Binds the UDP listener with a larger receive buffer (best effort: a refusal is logged).
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::warn!(error = %e, "Cannot enlarge the syslog UDP receive buffer; bursts may be dropped sooner.");
    }
    socket.bind(&addr.into())?;
    if let Ok(size) = socket.recv_buffer_size() {
        tracing::debug!(bytes = size, "Syslog UDP receive buffer.");
    }
    UdpSocket::from_std(socket.into())
}

/// Resolves when the server is told to stop (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

// ---------------------------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------------------------

async fn run_udp(socket: UdpSocket, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let meter = Meter::new(Transport::Udp);
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let received = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, peer)) => {
                if !datagram(&buf[..n], peer, &shared, &meter) {
                    return;
                }
            }
            Err(e) => {
                // ICMP errors reported on the socket, and the like: not fatal.
                if let Some(suppressed) = IO_ERRORS.allow() {
                    tracing::warn!(error = %e, suppressed, "syslog UDP receive error");
                }
            }
        }
    }
    // What the kernel already holds was received before the stop: take it.
    while let Ok((n, peer)) = socket.try_recv_from(&mut buf) {
        if !datagram(&buf[..n], peer, &shared, &meter) {
            return;
        }
    }
}

/// Queues one datagram, or drops it when the queue is full. `false` when the consumer is gone.
fn datagram(bytes: &[u8], peer: SocketAddr, shared: &Shared, meter: &Meter) -> bool {
    if bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        return true;
    }
    let mut tally = Tally {
        received: 1,
        ..Tally::default()
    };
    let alive = match shared.tx.try_reserve() {
        Ok(permit) => {
            let truncated = bytes.len() > shared.max_message;
            let bytes = &bytes[..bytes.len().min(shared.max_message)];
            let msg = parse(
                bytes,
                truncated,
                Origin {
                    sender: peer,
                    transport: Transport::Udp,
                    received_at: Utc::now(),
                },
                &shared.options,
            );
            tally.truncated = u64::from(truncated);
            tally.unparsed = u64::from(msg.protocol == Protocol::Unparsed);
            permit.send(msg);
            true
        }
        Err(mpsc::error::TrySendError::Full(())) => {
            meter.dropped(&shared.stats, DropReason::QueueFull, 1);
            if let Some(suppressed) = QUEUE_FULL.allow() {
                tracing::warn!(
                    suppressed,
                    "syslog queue full: UDP messages are being dropped"
                );
            }
            true
        }
        Err(mpsc::error::TrySendError::Closed(())) => {
            meter.dropped(&shared.stats, DropReason::QueueClosed, 1);
            tracing::error!("the syslog queue's consumer is gone: UDP receiving stops");
            false
        }
    };
    meter.add(&shared.stats, &mut tally);
    alive
}

// ---------------------------------------------------------------------------------------------
// TCP and TLS
// ---------------------------------------------------------------------------------------------

async fn run_accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let meter = Meter::new(transport);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, mostly: wait a little rather than spin.
                if let Some(suppressed) = IO_ERRORS.allow() {
                    tracing::warn!(error = %e, %transport, suppressed, "syslog accept error");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        admit(stream, peer, &tls, &shared, &meter, &stop, &mut connections);
    }
    // Connections the kernel completed before the stop belong to senders whose messages are
    // already on their way: take them too, without waiting for new ones, and read what they hold.
    loop {
        let pending = tokio::select! {
            biased;
            r = listener.accept() => r,
            () = std::future::ready(()) => break,
        };
        match pending {
            Ok((stream, peer)) => {
                admit(stream, peer, &tls, &shared, &meter, &stop, &mut connections)
            }
            Err(_) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Starts reading a connection, or refuses it when `max_connections` are open.
fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    tls: &Option<TlsAcceptor>,
    shared: &Arc<Shared>,
    meter: &Meter,
    stop: &watch::Receiver<bool>,
    connections: &mut JoinSet<()>,
) {
    let Ok(slot) = shared.slots.clone().try_acquire_owned() else {
        meter.dropped(&shared.stats, DropReason::ConnectionLimit, 1);
        if let Some(suppressed) = CONNECTION_LIMIT.allow() {
            tracing::warn!(%peer, transport = %meter.transport(), suppressed, "syslog connection refused: too many open");
        }
        drop(stream);
        return;
    };
    connections.spawn(connection(
        stream,
        peer,
        tls.clone(),
        shared.clone(),
        meter.clone(),
        stop.clone(),
        slot,
    ));
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    meter: Meter,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    meter.opened(&shared.stats);
    match tls {
        None => {
            read_frames(stream, peer, Transport::Tcp, &shared, &meter, stop).await;
        }
        Some(acceptor) => {
            let handshake = tokio::select! {
                () = stopped(&mut stop) => None,
                r = timeout(shared.idle_timeout, acceptor.accept(stream)) => Some(r),
            };
            match handshake {
                None => {}
                Some(Ok(Ok(mut tls_stream))) => {
                    read_frames(&mut tls_stream, peer, Transport::Tls, &shared, &meter, stop).await;
                    // A polite close_notify; the peer may already be gone.
                    let _ = timeout(DRAIN_QUIET, tls_stream.shutdown()).await;
                }
                Some(Ok(Err(e))) => {
                    meter.connection_error(&shared.stats, ConnectionError::TlsHandshake);
                    if let Some(suppressed) = TLS_ERRORS.allow() {
                        tracing::warn!(%peer, error = %e, suppressed, "syslog TLS handshake failed");
                    }
                }
                Some(Err(_elapsed)) => {
                    meter.connection_error(&shared.stats, ConnectionError::TlsHandshake);
                    if let Some(suppressed) = TLS_ERRORS.allow() {
                        tracing::warn!(%peer, suppressed, "syslog TLS handshake timed out");
                    }
                }
            }
        }
    }
    meter.closed(&shared.stats);
}

/// How a connection's reading ended.
enum End {
    /// The peer closed: what is buffered is the last message.
    Eof,
    /// The receiver closed it (idle, error, shutdown): a partial message is lost.
    Cut,
    /// The queue's consumer is gone.
    QueueClosed,
}

/// Reads frames off one connection until it ends, queuing each message.
async fn read_frames<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    shared: &Shared,
    meter: &Meter,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut framer = Framer::new(shared.max_message);
    let mut tally = Tally::default();
    // Set once the server stops: from then on, read only what is already on its way.
    let mut drain_until: Option<Instant> = None;

    let end = 'conn: loop {
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if !queue(frame, peer, transport, shared, &mut tally).await {
                        break 'conn End::QueueClosed;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    meter.add(&shared.stats, &mut tally);
                    bad_frame(&e, peer, transport, shared, meter);
                    break 'conn End::Cut;
                }
            }
        }
        meter.add(&shared.stats, &mut tally);
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = match drain_until {
            // The stop first: a sender that never pauses must not keep the reader from seeing it.
            None => tokio::select! {
                biased;
                () = stopped(&mut stop) => {
                    drain_until = Some(Instant::now() + DRAIN_MAX);
                    continue;
                }
                r = timeout(shared.idle_timeout, stream.read_buf(&mut buf)) => r,
            },
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break End::Cut;
                }
                match timeout(left.min(DRAIN_QUIET), stream.read_buf(&mut buf)).await {
                    Err(_quiet) => break End::Cut,
                    other => other,
                }
            }
        };
        match read {
            Ok(Ok(0)) => break End::Eof,
            Ok(Ok(_)) => {}
            // Peers that close a TLS connection without close_notify: an end like any other.
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break End::Eof,
            Ok(Err(e)) => {
                meter.connection_error(&shared.stats, ConnectionError::Io);
                if let Some(suppressed) = IO_ERRORS.allow() {
                    tracing::debug!(%peer, %transport, error = %e, suppressed, "syslog connection read error");
                }
                break End::Cut;
            }
            Err(_idle) => {
                meter.connection_error(&shared.stats, ConnectionError::IdleTimeout);
                tracing::debug!(%peer, %transport, "syslog connection idle: closed");
                break End::Cut;
            }
        }
    };
    match end {
        End::Eof => loop {
            match framer.decode_eof(&mut buf) {
                Ok(Some(frame)) => {
                    if !queue(frame, peer, transport, shared, &mut tally).await {
                        break;
                    }
                }
                Ok(None) => break,
                Err(FrameError::Incomplete { .. }) => {
                    meter.dropped(&shared.stats, DropReason::Incomplete, 1);
                    break;
                }
                Err(e) => {
                    bad_frame(&e, peer, transport, shared, meter);
                    break;
                }
            }
        },
        End::Cut => {
            if !framer.is_idle() || !buf.is_empty() {
                meter.dropped(&shared.stats, DropReason::Incomplete, 1);
            }
        }
        End::QueueClosed => {
            meter.dropped(&shared.stats, DropReason::QueueClosed, 1);
        }
    }
    meter.add(&shared.stats, &mut tally);
}

fn bad_frame(
    e: &FrameError,
    peer: SocketAddr,
    transport: Transport,
    shared: &Shared,
    meter: &Meter,
) {
    meter.dropped(&shared.stats, DropReason::BadFrame, 1);
    meter.connection_error(&shared.stats, ConnectionError::BadFrame);
    if let Some(suppressed) = FRAME_ERRORS.allow() {
        tracing::warn!(%peer, %transport, error = %e, suppressed, "syslog framing error: connection closed");
    }
}

/// Waits for room in the queue, then parses and queues the frame. `false` when the consumer is
/// gone.
async fn queue(
    frame: Frame,
    peer: SocketAddr,
    transport: Transport,
    shared: &Shared,
    tally: &mut Tally,
) -> bool {
    let Ok(permit) = shared.tx.reserve().await else {
        return false;
    };
    let msg = parse(
        &frame.data,
        frame.truncated,
        Origin {
            sender: peer,
            transport,
            received_at: Utc::now(),
        },
        &shared.options,
    );
    tally.received += 1;
    tally.truncated += u64::from(frame.truncated);
    tally.unparsed += u64::from(msg.protocol == Protocol::Unparsed);
    permit.send(msg);
    true
}

// ---------------------------------------------------------------------------------------------
// Rate-limited logging
// ---------------------------------------------------------------------------------------------

/// Lets one log line through per [`LogLimit::PERIOD`]; counts the ones it holds back, so a flood
/// of bad input cannot flood the log.
pub(crate) struct LogLimit {
    /// Milliseconds since the Unix epoch before which nothing is logged.
    next: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimit {
    const PERIOD_MS: u64 = 10_000;

    const fn new() -> LogLimit {
        LogLimit {
            next: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(number held back since the last line)` when a line may be logged now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let next = self.next.load(Ordering::Relaxed);
        if now >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now + Self::PERIOD_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

static QUEUE_FULL: LogLimit = LogLimit::new();
static CONNECTION_LIMIT: LogLimit = LogLimit::new();
static TLS_ERRORS: LogLimit = LogLimit::new();
static FRAME_ERRORS: LogLimit = LogLimit::new();
static IO_ERRORS: LogLimit = LogLimit::new();

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn log_limit_lets_one_line_through_per_period() {
        let limit = LogLimit::new();
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        limit.next.store(0, Ordering::Relaxed);
        assert_eq!(limit.allow(), Some(2), "the held-back lines are reported");
    }

    #[test]
    fn bind_errors_name_the_key_and_the_capability() {
        let e = StartError::Bind {
            key: "syslog.udp".into(),
            addr: "0.0.0.0:514".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("syslog.udp: cannot listen on 0.0.0.0:514"),
            "{text}"
        );
        assert!(text.contains("CAP_NET_BIND_SERVICE"), "{text}");
    }
}

//! What the receiver counts: exported with the `metrics` crate (the hub renders them on
//! `/metrics`) and kept in [`Stats`] too, so the hub and the tests can read them without a
//! metrics recorder.
//!
//! | metric | labels | counts |
//! | --- | --- | --- |
//! | `vigie_syslog_received_total` | `transport` | messages received (datagrams, frames), kept or not |
//! | `vigie_syslog_dropped_total` | `transport`, `reason` | messages or connections lost, see [`DropReason`] |
//! | `vigie_syslog_truncated_total` | `transport` | messages cut to `max_message_bytes` (kept, flagged) |
//! | `vigie_syslog_unparsed_total` | | messages kept raw, not readable as RFC 3164 nor 5424 |
//! | `vigie_syslog_connection_errors_total` | `transport`, `reason` | connections closed on an error, see [`ConnectionError`] |
//! | `vigie_syslog_connections` (gauge) | `transport` | open TCP and TLS connections |

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};

use crate::parse::Transport;

pub const RECEIVED: &str = "vigie_syslog_received_total";
pub const DROPPED: &str = "vigie_syslog_dropped_total";
pub const TRUNCATED: &str = "vigie_syslog_truncated_total";
pub const UNPARSED: &str = "vigie_syslog_unparsed_total";
pub const CONNECTION_ERRORS: &str = "vigie_syslog_connection_errors_total";
pub const CONNECTIONS: &str = "vigie_syslog_connections";

/// Why something received was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// UDP: the queue was full (TCP and TLS wait instead).
    QueueFull,
    /// A connection refused because `max_connections` were open (counts connections).
    ConnectionLimit,
    /// The bytes of a message not yet complete when its connection ended (peer closed
    /// mid-frame, idle timeout, shutdown, error).
    Incomplete,
    /// What was buffered after an invalid octet count, when the connection is closed.
    BadFrame,
    /// The consumer of the queue is gone (the hub is stopping abnormally).
    QueueClosed,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::ConnectionLimit,
        DropReason::Incomplete,
        DropReason::BadFrame,
        DropReason::QueueClosed,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::ConnectionLimit => "connection_limit",
            DropReason::Incomplete => "incomplete",
            DropReason::BadFrame => "bad_frame",
            DropReason::QueueClosed => "queue_closed",
        }
    }
}

/// Why a connection was closed by the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionError {
    /// The TLS handshake failed or did not finish in time (plain text or garbage on the TLS
    /// port, an unknown client certificate, none when one is required).
    TlsHandshake,
    /// Nothing received for `idle_timeout`.
    IdleTimeout,
    /// An invalid octet count: the stream cannot be framed any further.
    BadFrame,
    /// A read error (reset by the peer, TLS alert).
    Io,
}

impl ConnectionError {
    pub const ALL: [ConnectionError; 4] = [
        ConnectionError::TlsHandshake,
        ConnectionError::IdleTimeout,
        ConnectionError::BadFrame,
        ConnectionError::Io,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionError::TlsHandshake => "tls_handshake",
            ConnectionError::IdleTimeout => "idle_timeout",
            ConnectionError::BadFrame => "bad_frame",
            ConnectionError::Io => "io",
        }
    }
}

fn t(transport: Transport) -> usize {
    match transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

fn d(reason: DropReason) -> usize {
    match reason {
        DropReason::QueueFull => 0,
        DropReason::ConnectionLimit => 1,
        DropReason::Incomplete => 2,
        DropReason::BadFrame => 3,
        DropReason::QueueClosed => 4,
    }
}

fn c(reason: ConnectionError) -> usize {
    match reason {
        ConnectionError::TlsHandshake => 0,
        ConnectionError::IdleTimeout => 1,
        ConnectionError::BadFrame => 2,
        ConnectionError::Io => 3,
    }
}

/// The receiver's counters since it started.
#[derive(Debug, Default)]
pub struct Stats {
    received: [AtomicU64; 3],
    truncated: [AtomicU64; 3],
    dropped: [[AtomicU64; 5]; 3],
    connection_errors: [[AtomicU64; 4]; 3],
    connections: [AtomicI64; 3],
    unparsed: AtomicU64,
}

impl Stats {
    pub fn received(&self, transport: Transport) -> u64 {
        self.received[t(transport)].load(Ordering::Relaxed)
    }

    pub fn truncated(&self, transport: Transport) -> u64 {
        self.truncated[t(transport)].load(Ordering::Relaxed)
    }

    pub fn dropped(&self, transport: Transport, reason: DropReason) -> u64 {
        self.dropped[t(transport)][d(reason)].load(Ordering::Relaxed)
    }

    pub fn connection_errors(&self, transport: Transport, reason: ConnectionError) -> u64 {
        self.connection_errors[t(transport)][c(reason)].load(Ordering::Relaxed)
    }

    /// Open connections now.
    pub fn connections(&self, transport: Transport) -> i64 {
        self.connections[t(transport)].load(Ordering::Relaxed)
    }

    pub fn unparsed(&self) -> u64 {
        self.unparsed.load(Ordering::Relaxed)
    }
}

/// Registers the metrics' descriptions with the installed recorder.
pub(crate) fn describe() {
    describe_counter!(RECEIVED, "Syslog messages received, by transport");
    describe_counter!(
        DROPPED,
        "Syslog messages (or, for connection_limit, connections) lost, by transport and reason"
    );
    describe_counter!(TRUNCATED, "Syslog messages cut to the maximum length");
    describe_counter!(
        UNPARSED,
        "Syslog messages kept raw (neither RFC 3164 nor RFC 5424)"
    );
    describe_counter!(
        CONNECTION_ERRORS,
        "Syslog connections closed on an error, by transport and reason"
    );
    describe_gauge!(CONNECTIONS, "Open syslog TCP and TLS connections");
}

/// The metric handles of one transport, made once so that counting costs no registry lookup.
#[derive(Clone)]
pub(crate) struct Meter {
    transport: Transport,
    received: Counter,
    truncated: Counter,
    unparsed: Counter,
    dropped: [Counter; 5],
    connection_errors: [Counter; 4],
    connections: Gauge,
}

impl Meter {
    pub(crate) fn transport(&self) -> Transport {
        self.transport
    }

    pub(crate) fn new(transport: Transport) -> Meter {
        let label = transport.name();
        Meter {
            transport,
            received: counter!(RECEIVED, "transport" => label),
            truncated: counter!(TRUNCATED, "transport" => label),
            unparsed: counter!(UNPARSED),
            dropped: DropReason::ALL
                .map(|r| counter!(DROPPED, "transport" => label, "reason" => r.name())),
            connection_errors: ConnectionError::ALL
                .map(|r| counter!(CONNECTION_ERRORS, "transport" => label, "reason" => r.name())),
            connections: gauge!(CONNECTIONS, "transport" => label),
        }
    }

    /// Adds a tally of messages to the counters.
    pub(crate) fn add(&self, stats: &Stats, tally: &mut Tally) {
        let i = t(self.transport);
        if tally.received > 0 {
            self.received.increment(tally.received);
            stats.received[i].fetch_add(tally.received, Ordering::Relaxed);
        }
        if tally.truncated > 0 {
            self.truncated.increment(tally.truncated);
            stats.truncated[i].fetch_add(tally.truncated, Ordering::Relaxed);
        }
        if tally.unparsed > 0 {
            self.unparsed.increment(tally.unparsed);
            stats.unparsed.fetch_add(tally.unparsed, Ordering::Relaxed);
        }
        *tally = Tally::default();
    }

    pub(crate) fn dropped(&self, stats: &Stats, reason: DropReason, n: u64) {
        self.dropped[d(reason)].increment(n);
        stats.dropped[t(self.transport)][d(reason)].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn connection_error(&self, stats: &Stats, reason: ConnectionError) {
        self.connection_errors[c(reason)].increment(1);
        stats.connection_errors[t(self.transport)][c(reason)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn opened(&self, stats: &Stats) {
        self.connections.increment(1.0);
        stats.connections[t(self.transport)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, stats: &Stats) {
        self.connections.decrement(1.0);
        stats.connections[t(self.transport)].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Messages counted locally by a reader and added to the shared counters in bulk.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) received: u64,
    pub(crate) truncated: u64,
    pub(crate) unparsed: u64,
}

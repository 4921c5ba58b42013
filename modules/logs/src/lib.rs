//! The syslog messages on the hub's side: every message the built-in receiver
//! (`vigie-syslog`) takes is stored (one block per batch, see [`repo`]), kept as long as the retention allows,
//! qualified through the ingestion pipeline like any other source, and shown to operators.
//!
//! - [`start`]: starts the receiver, its consumer ([`consumer`]: store in batches, then submit to
//!   the pipeline) and the background purge ([`retention`]); [`LogsHandle::shutdown`] stops them
//!   without losing what TCP accepted.
//! - [`configure`]: the routes: `GET /api/v1/syslog` ([`api`]) and the log viewer (`/logs`,
//!   `/logs/tail`, `/logs/export.csv`, `/logs/around`).
//! - [`repo`]: every statement on the module's table; [`filter`]: the list's filters.
//! - [`MessagesStore`]: where the table lives (on SQLite, a file of its own next to the hub's).
//!
//! Owns the tables `syslog_blocks` (one row per stored batch: its messages as a JSON array and a
//! summary of them that takes the place of indexes) and `syslog_last_purged`, and the view
//! `syslog_messages` (one row per message, for queries by hand): `migrations/sqlite-syslog`, in
//! its own SQLite file; migrations 0003, 0015 and 0016 in the hub's PostgreSQL database.

pub mod api;
pub mod consumer;
mod error;
pub mod filter;
mod messages;
mod pages;
pub mod repo;
pub mod retention;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vigie_core::store::Store;
use vigie_source::Ingest;
use vigie_syslog::{Batcher, SyslogConfig, SyslogServer};

pub use consumer::ConsumerStats;
pub use error::LogsError;
pub use messages::MessagesStore;
pub use pages::{EXPORT_MAX, cell as csv_cell};
pub use retention::{Purged, Retention};
/// The receiver crate, for the hub's configuration (`SyslogConfig`, `TlsConfig`, their checks).
pub use vigie_syslog as syslog;
pub use vigie_syslog::StartError;

/// Everything the module runs with.
#[derive(Clone, Debug)]
pub struct LogsSettings {
    /// The receiver (listeners, queue, parsing).
    pub syslog: SyslogConfig,
    pub retention: Retention,
    /// Messages stored per transaction at most.
    pub batch_size: usize,
    /// How long a batch waits to fill after its first message.
    pub batch_wait: Duration,
    /// How long a stop waits for the store to take what is queued before giving up.
    pub stop_timeout: Duration,
}

impl Default for LogsSettings {
    fn default() -> LogsSettings {
        LogsSettings {
            syslog: SyslogConfig::default(),
            retention: Retention::default(),
            batch_size: 8000,
            batch_wait: Batcher::DEFAULT_WAIT,
            stop_timeout: Duration::from_secs(30),
        }
    }
}

/// The running receiver, consumer and purge.
pub struct LogsHandle {
    server: SyslogServer,
    storer: JoinHandle<()>,
    qualifier: JoinHandle<()>,
    purger: JoinHandle<()>,
    stop_purge: watch::Sender<bool>,
    give_up: watch::Sender<bool>,
    stats: Arc<ConsumerStats>,
    stop_timeout: Duration,
}

/// Starts receiving: binds the listeners (or fails with the key at fault), then the consumer
/// and the purge.
///
/// `store` is the store the messages are written to: the [`MessagesStore`]'s, or on SQLite its
/// [`Store::dedicated_writer`] (one connection that keeps the table's indexes in its larger
/// cache). `ingest` is the pipeline.
pub async fn start(
    store: Store,
    ingest: Arc<dyn Ingest>,
    settings: &LogsSettings,
) -> Result<LogsHandle, StartError> {
    let (server, rx) = SyslogServer::start(&settings.syslog).await?;
    let source_name = settings
        .syslog
        .validate("syslog")
        .map(|s| s.source_name)
        .unwrap_or_else(|_| settings.syslog.source_name.clone());
    let batches = Batcher::new(rx, settings.batch_size, settings.batch_wait);
    let (give_up, give_up_rx) = watch::channel(false);
    let stats = Arc::new(ConsumerStats::default());
    let shared = Arc::new(consumer::Shared {
        store: store.clone(),
        ingest,
        source_name,
        stats: stats.clone(),
        give_up: give_up_rx,
    });
    // A few batches between the storer and the qualifier: enough to overlap them, little memory.
    let (tx, qrx) = mpsc::channel(4);
    let storer = tokio::spawn(consumer::run_storer(batches, shared.clone(), tx));
    let qualifier = consumer::spawn_qualifier(qrx, shared);
    let (stop_purge, stop_rx) = watch::channel(false);
    let purger = tokio::spawn(retention::run(store, settings.retention.clone(), stop_rx));
    Ok(LogsHandle {
        server,
        storer,
        qualifier,
        purger,
        stop_purge,
        give_up,
        stats,
        stop_timeout: settings.stop_timeout,
    })
}

impl LogsHandle {
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.server.udp_addr()
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.server.tcp_addr()
    }

    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.server.tls_addr()
    }

    /// The receiver's counts (received, dropped, connections).
    pub fn receiver_stats(&self) -> &vigie_syslog::Stats {
        self.server.stats()
    }

    /// The consumer's counts (stored, submitted, retries, lost).
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Stops: no new connection or datagram, each connection queues what its peer already sent,
    /// the consumer stores and qualifies everything queued, then this returns. If the store
    /// stays unavailable past the stop timeout, what is left is counted as lost (see
    /// [`consumer`]) so that the stop ends anyway.
    pub async fn shutdown(self) {
        let _ = self.stop_purge.send(true);
        let server = tokio::spawn(self.server.shutdown());
        let (mut storer, mut qualifier) = (self.storer, self.qualifier);
        let drained = tokio::time::timeout(self.stop_timeout, async {
            let _ = (&mut storer).await;
            let _ = (&mut qualifier).await;
        })
        .await;
        if drained.is_err() {
            tracing::error!(
                timeout_s = self.stop_timeout.as_secs(),
                "The syslog queue did not drain in time (store unavailable?); giving up on the rest."
            );
            let _ = self.give_up.send(true);
            let _ = storer.await;
            let _ = qualifier.await;
        }
        let _ = server.await;
        let _ = self.purger.await;
        tracing::info!(
            stored = self.stats.stored(),
            lost = self.stats.lost(),
            "Syslog consumer stopped."
        );
    }
}

/// The module's routes: the API and the log viewer.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/syslog", web::get().to(api::list))
        .route("/logs", web::get().to(pages::list))
        .route("/logs/tail", web::get().to(pages::tail))
        .route("/logs/export.csv", web::get().to(pages::export))
        .route("/logs/around", web::get().to(pages::around));
}

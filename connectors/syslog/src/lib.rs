//! The hub's built-in syslog receiver: network devices send their syslog straight to the hub.
//!
//! - [`config`]: the `[syslog]` section and its checks (port 514 and `CAP_NET_BIND_SERVICE`).
//! - [`listen`]: UDP, TCP and TLS listeners feeding one bounded queue, with the back-pressure
//!   policy (TCP waits, UDP drops and counts) and a shutdown that loses nothing accepted on TCP.
//! - [`frame`]: RFC 6587 framing of TCP streams (octet counting and newline, per frame).
//! - [`mod@parse`]: RFC 3164 / RFC 5424 parsing, the year and time zone rules of RFC 3164.
//! - [`record`]: the [`vigie_source::RawRecord`] each message becomes for the qualification rules.
//! - [`batch`]: draining the queue in batches for the store.
//! - [`stats`]: the metrics.
//!
//! This crate knows nothing of the store or the pipeline: the hub consumes the queue, stores every
//! message and submits the records.
//!
//! ```no_run
//! # async fn run() -> Result<(), vigie_syslog::StartError> {
//! use vigie_syslog::{Batcher, SyslogConfig, SyslogServer, to_record};
//!
//! let config = SyslogConfig::default();
//! let (server, rx) = SyslogServer::start(&config).await?;
//! let mut batches = Batcher::new(rx, Batcher::DEFAULT_SIZE, Batcher::DEFAULT_WAIT);
//! let consumer = tokio::spawn(async move {
//!     while let Some(batch) = batches.next_batch().await {
//!         let records: Vec<_> = batch.iter().map(|m| to_record(m, "syslog")).collect();
//!         // store `batch`, submit `records`
//! #       drop(records);
//!     }
//! });
//! // … on stop:
//! server.shutdown().await;
//! let _ = consumer.await; // the consumer ends once everything queued was taken
//! # Ok(())
//! # }
//! ```

pub mod batch;
pub mod config;
pub mod frame;
pub mod listen;
pub mod parse;
pub mod record;
pub mod stats;

pub use batch::Batcher;
pub use config::{ConfigProblem, Settings, SyslogConfig, TlsConfig};
pub use listen::{StartError, SyslogReceiver, SyslogServer};
pub use parse::{Origin, ParseOptions, Protocol, SyslogMessage, Transport, parse};
pub use record::to_record;
pub use stats::{ConnectionError, DropReason, Stats};

//! Vigie's host agent.
//!
//! [`report`] is the wire model the hub reads; it is all there is without the default `agent`
//! feature. With it: [`collect`] reads the host's figures straight from `/proc` and `/sys` (no
//! sysinfo: a smaller build and a smaller resident set), [`spool`] keeps the reports the hub did
//! not acknowledge, [`transport`] posts them over HTTP(S) with a hand-written HTTP/1.1 client on
//! rustls, and [`agent`] runs the loop. Everything is synchronous on one thread: the agent has
//! one thing to do at a time, and threads would cost memory for nothing.

pub mod report;

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "agent")]
pub mod collect;
#[cfg(feature = "agent")]
pub mod config;
#[cfg(feature = "agent")]
pub mod log;
#[cfg(feature = "agent")]
pub mod shutdown;
#[cfg(feature = "agent")]
pub mod spool;
#[cfg(feature = "agent")]
pub mod transport;

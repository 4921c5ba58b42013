//! The qualified alert: qualification rules, the ingestion pipeline every source feeds, the
//! alert store and its HTTP API.

pub mod candidate;
pub mod fingerprint;

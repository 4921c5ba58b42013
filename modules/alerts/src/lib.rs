//! The qualified alert: qualification rules, the ingestion pipeline every source feeds, the
//! alert store and its HTTP API.

pub mod api;
pub mod candidate;
mod error;
pub mod fingerprint;
pub mod model;
pub mod normalize;
pub mod pipeline;
pub mod repo;
pub mod rules;

pub use error::AlertsError;

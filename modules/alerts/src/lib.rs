//! The qualified alert: qualification rules, the ingestion pipeline every source feeds, the
//! alert store and its HTTP API.

pub mod act_api;
pub mod actions;
pub mod api;
pub mod board;
pub mod candidate;
mod error;
pub mod fingerprint;
pub mod live;
pub mod maintenance;
pub mod model;
pub mod normalize;
pub mod pages;
pub mod pipeline;
pub mod repo;
pub mod rules;

pub use error::AlertsError;

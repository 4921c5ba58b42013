//! The hub's shared kernel: the store (SQLite or PostgreSQL), roles and permissions, the
//! configurable list of domains, secrets (password and token hashing) and the JSON error shape
//! every API answer uses.
//!
//! It knows nothing of alerts, incidents or any other module; modules depend on it.

pub mod audit;
pub mod domain;
pub mod http;
pub mod role;
pub mod secret;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;

pub use vigie_source::Level;

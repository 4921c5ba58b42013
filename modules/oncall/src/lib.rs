//! On-call duty (astreinte): the planning of who is on duty for each domain, the one question
//! every other module asks ([`planning::on_duty`]), the automatic routing of alerts to the people
//! on duty and the escalation when nobody acknowledges.
//!
//! Owns the planning tables (see `migrations/*/0008_oncall.sql`) and the routing and escalation
//! tables (`0009_escalation.sql`). Sends nothing itself: messages go through `vigie-notify`'s
//! outbox, in the transaction that decides them.

pub mod ack;
pub mod api;
mod error;
pub mod escalation;
pub mod pages;
pub mod planning;
pub mod planning_edit;
pub mod prefs;
pub mod routing;
pub mod routing_pages;

pub use error::OncallError;
pub use planning::{OnDuty, on_duty};

//! On-call duty (astreinte): the planning of who is on duty for each domain, the one question
//! every other module asks ([`planning::on_duty`]), the automatic routing of alerts to the people
//! on duty and the escalation when nobody acknowledges.
//!
//! Owns the planning tables (see `migrations/*/0008_oncall.sql`) and the routing and escalation
//! tables (`0009_escalation.sql`). Sends nothing itself: messages go through `vigie-notify`'s
//! outbox, in the transaction that decides them.

mod error;
pub mod escalation;
pub mod planning;
pub mod routing;

pub use error::OncallError;
pub use planning::{OnDuty, on_duty};

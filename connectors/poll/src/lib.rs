//! The periodic face of database sources, independent of the tool read.
//!
//! - [`source`]: the [`Source`] trait every connector implements (poll since a watermark, answer
//!   an operator's question, ping), what a poll returns ([`Batch`]), equipment, errors.
//! - [`runner`]: the scheduler of one source ([`Poller`]): interval, jittered exponential
//!   back-off, commit of the records with the new watermark in one transaction through the
//!   [`Hub`], health, and the "source unreachable" alert raised after a delay and cleared when
//!   the source is back.
//! - [`watermark`]: ids and (time, id) marks with a tie-breaker, per stream.
//! - [`health`]: a source's health line.
//! - [`stats`]: statistics from unavailability periods; [`text`]: fitting text to the pipeline.
//!
//! This crate depends only on the source contract (`vigie-source`): the hub implements [`Hub`]
//! over its pipeline and store.

pub mod health;
pub mod runner;
pub mod source;
pub mod stats;
pub mod text;
pub mod watermark;

pub use health::{Health, HealthCell, State};
pub use runner::{Hub, Outcome, PollSettings, Poller, UNREACHABLE_EVENT, backoff};
pub use source::{
    Answer, Batch, BoxFuture, Equipment, EquipmentBatch, LoadSample, MaintenanceSpan, NodeReport,
    Period, Question, Source, SourceError, Statistics,
};
pub use watermark::{Key, Mark, Positions};

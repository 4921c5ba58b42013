//! The hub's side of database sources.
//!
//! - [`sources`]: the configured sources running ([`Sources`]): one poller per enabled source
//!   (`vigie-poll`), built by its connector (`vigie-sql`) from the `[[sources]]` configuration and
//!   the settings stored in `source_settings`; their health lines; on-demand questions; the dry
//!   run of `vigie source test`.
//! - [`hub`]: [`StoreHub`], the poll runtime's hub: records and watermarks through the pipeline
//!   (one transaction), equipment and health lines into this module's tables.
//! - [`backups`]: the hub's own backup table, its watcher (reports → alerts, exactly once) and the
//!   expected jobs ("backup missing").
//! - [`api`]: the HTTP routes ([`configure`]); [`repo`]: every statement on the module's tables.
//! - [`admin`]: the console's source administration; [`supervision`]: the console pages that ask
//!   a source now (unavailability periods, statistics and Orion's node report).
//!
//! Owns the tables `source_health`, `source_settings`, `equipment`, `backups` and `backup_jobs`
//! (migration `0004_sources`). The watermarks are in `source_checkpoints`, which the pipeline
//! writes with the alerts.

pub mod admin;
pub mod api;
pub mod backups;
pub mod defs;
mod error;
pub mod hub;
pub mod repo;
pub mod secrets;
pub mod sources;
pub mod supervision;

pub use api::configure;
pub use backups::{BackupNotifier, BackupWatcher, WatcherSettings};
pub use error::SourcesError;
pub use hub::StoreHub;
pub use sources::{DryRun, SourceDef, Sources, dry_run};

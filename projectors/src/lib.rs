//! The eventshop read-model engine: the projection runner over the commit-safe global log,
//! checkpoints committed with each batch, read-model writers with history rows, blue/green
//! rebuilds and leases.
//!
//! * [`model`] and [`read_models`]: re-exported from the `read-models` crate, which owns each
//!   read model (tables, rows, the fold into row versions, typed reads).
//! * [`sql`]: the backend half — transactions, set-based writes of a batch's
//!   [`model::Plan`], and the checkpoint calls (the rows are owned by
//!   `eventstore_config::followers`).
//! * [`runner`]: workers, wake-up (LISTEN/NOTIFY + polling), retries and dead letters;
//!   [`run_all`] starts every projection.
//! * [`share`]: segments (see `eventstore_config::segments`) shared fairly among the live
//!   worker processes (heartbeats, targets, giving a segment up between two batches).
//! * [`lease`] (the one lease helper), [`progress`] (the `projection_dead_letters` rows, and
//!   the status calls of `eventstore_config::followers`), [`rebuild`], [`status`].
//! * [`versions`]: a projection stored at another version than its code's is rebuilt
//!   blue/green when a runner starts; [`dead_letters`]: list, retry and skip parked events
//!   (projections and the saga).
#![forbid(unsafe_code)]

mod bulk;
pub mod dead_letters;
pub mod lease;
pub mod progress;
pub mod rebuild;
pub mod runner;
pub mod saga;
pub mod share;
pub mod sql;
pub mod status;
pub mod versions;

pub use indicatif;
pub use model::{Projection, TableDef, Val};
pub use read_models::{self, model};
pub use rebuild::{rebuild, RebuildReport};
pub use runner::{catch_up, run_all, run_segmented, run_with, RunnerOptions};
pub use status::{statuses, ProjectionStatus};

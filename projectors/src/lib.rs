//! The eventshop read-model engine: the projection runner over the commit-safe global log,
//! checkpoints committed with each batch, read-model writers with history rows, blue/green
//! rebuilds and leases.
//!
//! * [`model`]: a read model is written once ([`model::Model`]) for both stores; a batch folds
//!   into a [`model::Plan`] of row versions.
//! * [`sql`]: the backend half — transactions, set-based writes, checkpoint rows.
//! * [`read_models`]: accounts, products, orders, wallets, policies and the audit index.
//! * [`runner`]: workers, wake-up (LISTEN/NOTIFY + polling), retries and dead letters;
//!   [`run_all`] starts every projection.
//! * [`lease`] (the one lease helper), [`progress`] (the `projection_status` and
//!   `projection_dead_letters` rows), [`rebuild`], [`status`].
#![forbid(unsafe_code)]

mod bulk;
pub mod lease;
pub mod model;
pub mod progress;
pub mod read_models;
pub mod rebuild;
pub mod runner;
pub mod saga;
pub mod sql;
pub mod status;

pub use indicatif;
pub use model::{Projection, TableDef, Val};
pub use rebuild::{rebuild, RebuildReport};
pub use runner::{catch_up, run_all, run_with, RunnerOptions};
pub use status::{statuses, ProjectionStatus};

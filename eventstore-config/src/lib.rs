//! eventstore-config: everything between the pure `domain` and the processes — settings (file +
//! environment), store selection (PostgreSQL via postgres-es, SQLite via sqlite-es), migrations,
//! the command bus, the commit-safe global log reader, temporal loads and snapshots, the one
//! LISTEN/NOTIFY listener ([`notify`]), the segments of log followers ([`segments`]), the order saga's tables ([`saga_tables`]), the log
//! followers' checkpoint and status rows ([`followers`]) and the export and import of the log
//! as JSON lines ([`transfer`]).
//! May depend on `domain` only (never on command-api, projectors or query-api).
//!
//! Modules depend one way: [`settings`] ← [`store`] ← [`sql`] ← everything that runs SQL
//! ([`log`], [`temporal`], [`saga_tables`], …).
//!
//! Every statement is written once for both stores through [`sql::Sql`] (`$N` placeholders,
//! typed arguments, times in each store's stored form) and decoded into one row type. Code
//! matches on [`Store`] only where the databases really behave differently:
//! - the commit-safe log reader: PostgreSQL's `xid8` snapshot horizon and transaction ids
//!   ([`log`]'s `read_after`, `checkpoint_at`, `commit_safe_head`, `has_read_through`, the
//!   "after a checkpoint" condition and the column list; [`followers`]' `applied_through`, and
//!   the checkpoint row's `xid8` column and `FOR UPDATE` lock); SQLite has one writer, so its
//!   position alone is commit-safe; the export's reader of stored rows
//!   (`log::transfer::stored_after`) is the same query;
//! - leases (`projectors::lease`: PostgreSQL advisory locks; a lease row on SQLite);
//! - LISTEN/NOTIFY ([`notify`]: PostgreSQL only; SQLite polls) — and so the followers' default
//!   batch sizes and poll intervals (`projectors::RunnerOptions::for_store`,
//!   `relay::RelayOptions::from_settings`);
//! - bulk loads and rebuilds (`projectors::bulk`: PostgreSQL `COPY`, index drops, `SET LOCAL`;
//!   `projectors::rebuild`: copying and renaming tables, whose DDL differs, and replaying
//!   concurrently on PostgreSQL but in turn on SQLite's single writer);
//! - JSON field look-ups ([`Store::json_text`]): written as each store's expression index is
//!   (`->>` on PostgreSQL, `json_extract` on SQLite), so that the index is used;
//! - the events `INSERT`'s `RETURNING` ([`command_bus`]: PostgreSQL's `global_position`
//!   column, SQLite's `rowid`, since its trigger fills the column only after `RETURNING`);
//! - the projectors' set-based batch writes (`projectors::sql`'s `Tx`: PostgreSQL `UNNEST`
//!   arrays in one statement per table, SQLite prepared per-row statements);
//! - connecting, migrating, pool sizes and beginning a transaction ([`store`],
//!   [`Store::begin`]), and running a statement on either store's pool, transaction or
//!   connection ([`sql`]).
//!
//! Each table is named by exactly one production module, its owner; everyone else calls the
//! owner's functions: `events` — [`log`] (the command bus appends through its
//! `INSERT_EVENTS`); `projection_checkpoints`, `projection_status`, `follower_workers` — [`followers`];
//! `order_sagas`, `order_saga_steps`, `saga_deadlines` — [`saga_tables`];
//! `aggregate_snapshots` — [`snapshots`]; `email_claims` — [`email_registry`]; `secrets` —
//! [`secrets`]; `personal_data_keys` — [`personal`]. Elsewhere: `projection_dead_letters` —
//! `projectors::progress`; `idempotency_keys` — `command_api::idempotency`; each `rm_*` table —
//! its `read_models` module. `tests/tests/house_plan.rs` checks both rules.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod command_bus;
pub mod email_registry;
pub mod erasure;
pub mod followers;
pub mod log;
pub mod metadata;
pub mod notify;
pub mod personal;
pub mod read_error;
pub mod saga_tables;
pub mod secrets;
pub mod segments;
pub mod settings;
pub mod snapshots;
pub mod sql;
mod states;
pub mod store;
pub mod temporal;
pub mod transfer;
pub mod unit_of_work;

pub use command_bus::{CommandBus, CommandError, Committed};
pub use email_registry::SqlEmailRegistry;
pub use log::{Checkpoint, LogFilter, ReadError, StoredEvent};
pub use metadata::{EventMetadata, SYSTEM_ACTOR};
pub use settings::{Settings, DEFAULT_DATABASE_URL};
pub use sql::{Arg, Executor, Sql, Tx};
pub use store::{Store, StoreError, StoreKind};
pub use temporal::Versioned;
pub use unit_of_work::{Commit, CommitError, Contended, Decided, UnitOfWork};

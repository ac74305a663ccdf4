//! eventstore-config: everything between the pure `domain` and the processes — settings (file +
//! environment), store selection (PostgreSQL via postgres-es, SQLite via sqlite-es), migrations,
//! the command bus, the commit-safe global log reader, temporal loads and snapshots.
//! May depend on `domain` only (never on command-api, projectors or query-api).
//!
//! Every statement is written once for both stores through [`sql::Sql`] (`$N` placeholders,
//! typed arguments, times in each store's stored form). Code matches on [`Store`] only where
//! the databases really behave differently:
//! - the commit-safe log reader (PostgreSQL's `xid8` snapshot horizon; SQLite has one writer);
//! - leases (PostgreSQL advisory locks; a lease row on SQLite);
//! - LISTEN/NOTIFY (PostgreSQL only; SQLite polls);
//! - bulk loads (PostgreSQL `COPY`);
//! - the events `INSERT`'s `RETURNING` ([`command_bus`]: PostgreSQL's `global_position`
//!   column, SQLite's `rowid`, since its trigger fills the column only after `RETURNING`);
//! - connecting, migrating and beginning a transaction ([`store`], [`Store::begin`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod command_bus;
pub mod email_registry;
pub mod log;
pub mod metadata;
pub mod settings;
pub mod sql;
mod states;
pub mod store;
pub mod temporal;
pub mod unit_of_work;

pub use command_bus::{CommandBus, CommandError, Committed};
pub use email_registry::SqlEmailRegistry;
pub use log::{Checkpoint, ReadError, StoredEvent};
pub use metadata::{EventMetadata, SYSTEM_ACTOR};
pub use settings::{Settings, StoreKind, DEFAULT_DATABASE_URL};
pub use sql::{Arg, Executor, Sql, Tx};
pub use store::{Store, StoreError};
pub use temporal::Versioned;
pub use unit_of_work::{Commit, CommitError, Contended, Decided, UnitOfWork};

//! eventstore-config: everything between the pure `domain` and the processes — settings (file +
//! environment), store selection (PostgreSQL via postgres-es, SQLite via sqlite-es), migrations,
//! the command bus, the commit-safe global log reader, temporal loads and snapshots.
//! May depend on `domain` only (never on command-api, projectors or query-api).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod command_bus;
pub mod email_registry;
pub mod log;
pub mod metadata;
pub mod settings;
mod states;
pub mod store;
pub mod temporal;

pub use command_bus::{CommandBus, CommandError, Committed};
pub use email_registry::SqlEmailRegistry;
pub use log::{Checkpoint, ReadError, StoredEvent};
pub use metadata::{EventMetadata, SYSTEM_ACTOR};
pub use settings::{Settings, StoreKind, DEFAULT_DATABASE_URL};
pub use store::{Store, StoreError};
pub use temporal::Versioned;

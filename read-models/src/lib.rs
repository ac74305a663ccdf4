//! The read models, each owned once. One module per read model holds its table names, its row
//! types, its writes (the [`model::Model`] the projectors fold events with, and that rebuilds
//! and bulk loads reuse) and its typed reads ([`select::Select`]s, run by query-api, the CLI
//! and the console). Every statement is written once for both stores with
//! [`eventstore_config::Sql`].
//!
//! May depend on `domain` and `eventstore-config` only: the projectors (which write these
//! tables) and query-api (which reads them) both depend on this crate, never on each other.
//!
//! * [`model`]: column kinds and values, table definitions, the [`model::Model`] trait and the
//!   fold of a batch into row versions with history.
//! * [`select`]: a typed read ([`select::Select`]), the `asOf` row filter and [`ReadModelError`].
//! * [`accounts`], [`products`], [`orders`], [`wallets`], [`policies`], [`audit`]: the read models.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod audit;
pub mod model;
pub mod orders;
pub mod policies;
pub mod products;
pub mod select;
pub mod wallets;

use std::sync::Arc;

use crate::model::{Projection, Projector};

pub use select::{ReadModelError, Record, Select};

/// Every projection, in a stable order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(Projector::<accounts::Accounts>::default()),
        Arc::new(Projector::<products::Products>::default()),
        Arc::new(Projector::<orders::Orders>::default()),
        Arc::new(Projector::<wallets::Wallets>::default()),
        Arc::new(Projector::<policies::Policies>::default()),
        Arc::new(Projector::<audit::Audit>::default()),
    ]
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// Every projection's name.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

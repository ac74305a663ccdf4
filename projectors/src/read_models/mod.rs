//! The read models: one [`Model`](crate::model::Model) each, shared by both stores.

pub mod accounts;
pub mod audit;
pub mod orders;
pub mod policies;
pub mod products;
pub mod wallets;

use std::sync::Arc;

use crate::model::{Projection, Projector};

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

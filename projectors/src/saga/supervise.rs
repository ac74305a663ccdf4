//! The processes' read side in one call: every projection worker and, beside them, the order
//! saga and its deadline worker, all woken by ONE LISTEN/NOTIFY listener
//! ([`eventstore_config::notify::Wake`]; see [`crate::runner`]).

use std::future::Future;
use std::sync::Arc;

use eventstore_config::{Settings, Store};

use crate::model::Projection;
use crate::runner::{run_workers, RunnerOptions};

/// Runs the projection workers and, beside them, the order saga and its deadline worker, until
/// `shutdown` completes (`eventshop projectors run`, `eventshop serve`).
pub async fn run_with_projections(
    store: Store,
    settings: &Settings,
    options: RunnerOptions,
    projections: Vec<Arc<dyn Projection>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_workers(
        store,
        options,
        projections,
        Some(settings.clone()),
        true,
        shutdown,
    )
    .await
}

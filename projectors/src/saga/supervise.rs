//! The processes' read side in one call: every projection worker and, beside them, the order
//! saga and its deadline worker, all woken by ONE LISTEN/NOTIFY listener
//! ([`eventstore_config::notify::Wake`]).

use std::future::Future;
use std::sync::Arc;

use eventstore_config::notify::Wake;
use eventstore_config::{Settings, Store};
use tokio::sync::watch;

use super::run::run;
use crate::model::Projection;
use crate::runner::{join_workers, spawn_workers, RunnerOptions};

/// Runs the projection workers and, beside them, the order saga and its deadline worker, until
/// `shutdown` completes (`eventshop projectors run`, `eventshop serve`).
pub async fn run_with_projections(
    store: Store,
    settings: &Settings,
    options: RunnerOptions,
    projections: Vec<Arc<dyn Projection>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let wake = Wake::start(&store, stop_rx.clone());
    let saga = tokio::spawn(run(
        store.clone(),
        settings.clone(),
        wake.receiver(),
        stop_rx.clone(),
    ));
    let workers = spawn_workers(&store, &options, projections, &wake, &stop_rx);
    shutdown.await;
    stop_tx.send_replace(true);
    join_workers(workers).await;
    match saga.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(error = %format!("{error:#}"), "the saga ended with an error")
        }
        Err(error) => tracing::error!(%error, "the saga panicked"),
    }
    wake.stopped().await;
    Ok(())
}

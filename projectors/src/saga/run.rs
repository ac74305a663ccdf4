//! Running the order saga: its lease loop (batches while it owns [`NAME`], waiting on the
//! process's LISTEN/NOTIFY wake-up or its poll), and resetting it.

use std::time::Duration;

use eventstore_config::{saga_tables, Checkpoint, CommandBus, Settings, Store};
use tokio::sync::watch;

use super::batch::handle_batch;
use super::deadlines::run_deadlines;
use super::options::{SagaOptions, NAME};
use crate::lease::Lease;
use crate::sql::Tx;

/// Runs the saga (under its lease) and the deadline worker (under its own) until shutdown;
/// `wake` ticks on every append (see [`eventstore_config::notify`]).
pub async fn run(
    store: Store,
    settings: Settings,
    mut wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let options = SagaOptions::from_settings(&settings);
    let bus = CommandBus::new(store.clone(), &settings);
    let deadlines = tokio::spawn(run_deadlines(
        store.clone(),
        bus.clone(),
        options.owner.clone(),
        shutdown.clone(),
    ));
    let mut shutdown = shutdown;
    while let Some(mut held) = Lease::wait(&store, NAME, &options.owner, &mut shutdown).await {
        let mut failures = 0u32;
        while !*shutdown.borrow() && held.keep(&store).await {
            match handle_batch(&store, &bus, &options).await {
                Ok(n) if n > 0 => failures = 0,
                Ok(_) => {
                    failures = 0;
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(options.poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(error = %format!("{error:#}"), failures, "saga batch failed; retrying");
                    let delay = Duration::from_millis(100 << failures.min(6));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        held.release(&store).await;
    }
    deadlines.await.ok();
    Ok(())
}

/// Forgets every saga state and moves the saga's checkpoint back to the start (for a replay;
/// payment deadlines are kept). Running it while the saga runs is safe: the next batch sees
/// the moved checkpoint.
pub async fn reset(store: &Store) -> anyhow::Result<()> {
    let mut tx = Tx::begin(store).await?;
    tx.lock_checkpoint(NAME).await?;
    saga_tables::forget_all(&mut tx).await?;
    tx.write_checkpoint(NAME, Checkpoint::START).await?;
    tx.commit().await?;
    Ok(())
}

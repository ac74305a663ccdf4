//! Running the order saga: its lease loop (one per segment, see `eventstore_config::segments`) (batches while it owns [`NAME`], waiting on the
//! process's LISTEN/NOTIFY wake-up or its poll), and resetting it.

use std::sync::Arc;
use std::time::Duration;

use eventstore_config::segments::Segment;
use eventstore_config::{followers, saga_tables, Checkpoint, CommandBus, Settings, Store};
use tokio::sync::watch;

use super::batch::handle_segment_batch;
use super::deadlines::run_deadlines;
use super::options::{SagaOptions, NAME};
use crate::lease::{Lease, RENEW_EVERY};
use crate::share::claim;
use crate::share::Share;
use crate::sql::Tx;

/// Runs the saga (under its lease) and the deadline worker (under its own) until shutdown;
/// `wake` ticks on every append (see [`eventstore_config::notify`]).
pub async fn run(
    store: Store,
    settings: Settings,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_shared(store, settings, None, wake, shutdown).await
}

/// As [`run`], with the saga split into the segments the settings give
/// ([`Settings::segments_for`] of [`NAME`]): one task per segment, each claiming its segment
/// through `share` (without one: waiting for its lease).
pub async fn run_shared(
    store: Store,
    settings: Settings,
    share: Option<Arc<Share>>,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut options = SagaOptions::from_settings(&settings);
    if let Some(share) = &share {
        options.owner = share.owner().to_string();
    }
    let bus = CommandBus::new(store.clone(), &settings);
    let deadlines = tokio::spawn(run_deadlines(
        store.clone(),
        bus.clone(),
        options.owner.clone(),
        shutdown.clone(),
    ));
    let segments = settings.segments_for(NAME);
    let tasks: Vec<_> = Segment::all(segments)
        .into_iter()
        .map(|segment| {
            tokio::spawn(run_segment(
                store.clone(),
                bus.clone(),
                options.clone(),
                segment,
                share.clone(),
                wake.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    for task in tasks {
        task.await.ok();
    }
    deadlines.await.ok();
    Ok(())
}

/// One segment of the saga: claims it, handles batches while holding it, gives it up to a
/// worker below its share between two batches.
async fn run_segment(
    store: Store,
    bus: CommandBus,
    options: SagaOptions,
    segment: Segment,
    share: Option<Arc<Share>>,
    mut wake: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let job = segment.checkpoint_name(NAME);
    loop {
        let held = match &share {
            None => Lease::wait(&store, &job, &options.owner, &mut shutdown).await,
            Some(share) => claim(&store, share, NAME, &job, segment.of, &mut shutdown).await,
        };
        let Some(mut held) = held else {
            return;
        };
        let mut failures = 0u32;
        let mut given_up = false;
        while !*shutdown.borrow() && held.keep(&store).await {
            if let Some(share) = &share {
                if share.give_up(NAME, segment.of) {
                    tracing::info!(job = %job, "saga segment given up to a worker below its share");
                    given_up = true;
                    break;
                }
            }
            match handle_segment_batch(&store, &bus, &options, segment).await {
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
        if let Some(share) = &share {
            if given_up {
                tokio::select! {
                    _ = tokio::time::sleep(RENEW_EVERY * 2) => {}
                    _ = shutdown.changed() => {}
                }
            } else {
                share.release(NAME);
            }
        }
    }
}

/// Forgets every saga state and moves the saga's checkpoint back to the start (for a replay;
/// payment deadlines are kept). Running it while the saga runs is safe: the next batch sees
/// the moved checkpoint.
pub async fn reset(store: &Store) -> anyhow::Result<()> {
    let mut tx = Tx::begin(store).await?;
    followers::lock_follower(&mut tx, NAME).await?;
    saga_tables::forget_all(&mut tx).await?;
    followers::write_segment_checkpoints(&mut tx, NAME, Checkpoint::START).await?;
    tx.commit().await?;
    Ok(())
}

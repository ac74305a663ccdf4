//! The projection runner: reads the global log in commit-safe order in batches and applies each
//! batch in ONE transaction together with the projection's checkpoint (compare-and-set under a
//! row lock). Workers own their projection through a [`lease`](crate::lease), wake on PostgreSQL
//! `NOTIFY eventshop_events` with a polling fallback, retry failures with backoff and park an
//! event that keeps failing in `projection_dead_letters`, stopping the projection before it
//! (state `stuck`) rather than skipping it; the worker goes on once the parked event is retried
//! or skipped ([`crate::dead_letters`]). On start, a projection whose stored version differs
//! from its code's is rebuilt blue/green in the background ([`crate::versions`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore_config::notify::Wake;
use eventstore_config::{Checkpoint, Settings, Store, StoredEvent};
use tokio::sync::watch;

use crate::lease::{self, Lease, RENEW_EVERY};
use crate::model::{FoldError, Projection};
use crate::progress;
use crate::read_models;
use crate::sql::{self, BatchError, Tx};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events per batch (and per transaction).
    pub batch: u32,
    /// How often an idle worker polls even without a notification.
    pub poll: Duration,
    /// Attempts at a failing event before it is parked.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt, at most 5 s).
    pub backoff: Duration,
    /// This process's owner id.
    pub owner: String,
}

impl RunnerOptions {
    /// Defaults for `store`: batches of 1000 (PostgreSQL) or 500 (SQLite); 500 ms (PostgreSQL,
    /// which also listens) or 200 ms (SQLite) polling; 5 attempts.
    pub fn for_store(store: &Store) -> Self {
        let pg = matches!(store, Store::Postgres(_));
        Self {
            batch: if pg { 1000 } else { 500 },
            poll: Duration::from_millis(if pg { 500 } else { 200 }),
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            owner: lease::owner_id(),
        }
    }
}

/// What applying one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Applied this many events and advanced the checkpoint to the given one.
    Applied(usize, Checkpoint),
    /// Nothing new to read.
    Idle,
    /// Another writer moved the checkpoint (a takeover or a rebuild swap): re-read it.
    Moved(Checkpoint),
}

/// Reads the next batch after `cp` and applies it with the checkpoint in one transaction.
pub async fn apply_next_batch(
    store: &Store,
    projection: &dyn Projection,
    cp: Checkpoint,
    batch: u32,
) -> Result<Batch, BatchError> {
    let events = store.read_after(cp, batch).await.map_err(|e| match e {
        eventstore_config::ReadError::Database(e) => BatchError::Database(e),
        other => BatchError::Database(sqlx::Error::Protocol(other.to_string())),
    })?;
    if events.is_empty() {
        return Ok(Batch::Idle);
    }
    apply_events(store, projection, cp, &events).await
}

/// Applies `events` (read after `cp`) in one transaction with the checkpoint.
pub async fn apply_events(
    store: &Store,
    projection: &dyn Projection,
    cp: Checkpoint,
    events: &[StoredEvent],
) -> Result<Batch, BatchError> {
    let Some(last) = events.last() else {
        return Ok(Batch::Idle);
    };
    let mut tx = Tx::begin(store).await?;
    let locked = tx.lock_checkpoint(projection.name()).await?;
    if locked != cp {
        tx.rollback().await.ok();
        return Ok(Batch::Moved(locked));
    }
    if let Err(error) = tx.apply(projection, events, "").await {
        tx.rollback().await.ok();
        return Err(error);
    }
    tx.write_checkpoint(projection.name(), last.checkpoint())
        .await?;
    tx.commit().await?;
    Ok(Batch::Applied(events.len(), last.checkpoint()))
}

/// Applies everything readable now to `projection`, without a lease (tests, tools). Returns the
/// number of events applied.
pub async fn catch_up(
    store: &Store,
    projection: &dyn Projection,
    batch: u32,
) -> anyhow::Result<u64> {
    let mut cp = sql::read_checkpoint(store, projection.name()).await?;
    let mut applied = 0u64;
    loop {
        match apply_next_batch(store, projection, cp, batch).await? {
            Batch::Applied(n, next) => {
                applied += n as u64;
                cp = next;
            }
            Batch::Moved(next) => cp = next,
            Batch::Idle => return Ok(applied),
        }
    }
}

/// Whether `projection`'s checkpoint has passed every event at or below `position`.
pub async fn has_applied_through(
    store: &Store,
    name: &str,
    position: i64,
) -> Result<bool, sqlx::Error> {
    let cp = sql::read_checkpoint(store, name).await?;
    // Commit-safe: a lower position may have committed after the checkpoint's.
    store.has_read_through(cp, position).await
}

async fn park(
    store: &Store,
    projection: &dyn Projection,
    event: &StoredEvent,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    progress::park(store, projection.name(), event, error, attempts, None).await?;
    progress::set_state(
        store,
        projection.name(),
        projection.version(),
        "stuck",
        Some(&format!("event at position {}: {error}", event.position)),
    )
    .await
}

/// Removes the parked events of `name` its checkpoint has passed (applied by the current code
/// after a restart). Whether any are left.
async fn forget_applied(store: &Store, name: &str) -> Result<bool, sqlx::Error> {
    let mut left = false;
    for row in progress::list_dead_letters(store, Some(name)).await? {
        if has_applied_through(store, name, row.global_position).await? {
            progress::remove_dead_letter(store, name, row.global_position).await?;
            tracing::info!(
                projection = name,
                position = row.global_position,
                "parked event applied"
            );
        } else {
            left = true;
        }
    }
    Ok(left)
}

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Shutdown was requested.
    Stopped,
    /// An event was parked; the projection waits before it.
    Stuck {
        /// The parked event's position.
        position: i64,
    },
}

/// Applies batches to `projection` until shutdown or a parked event, assuming the lease is
/// held. Database failures are retried with backoff forever; an event that fails
/// `max_attempts` times is parked after the events before it are applied.
async fn work(
    store: &Store,
    projection: &dyn Projection,
    options: &RunnerOptions,
    lease: &mut Lease,
    wake: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Outcome>> {
    let name = projection.name();
    let mut cp = sql::read_checkpoint(store, name).await?;
    // Events parked before this start that the current code may now apply: their rows go once
    // the checkpoint passes them.
    let mut parked = progress::dead_letters(store, name).await? > 0;
    let mut attempts = 0u32;
    let mut state = "";
    let mut eager_until = Instant::now();
    loop {
        if *shutdown.borrow() {
            return Ok(Some(Outcome::Stopped));
        }
        if !lease.keep(store).await {
            return Ok(None);
        }
        match apply_next_batch(store, projection, cp, options.batch).await {
            Ok(Batch::Applied(n, next)) => {
                attempts = 0;
                cp = next;
                if parked {
                    parked = forget_applied(store, name).await.unwrap_or(true);
                }
                if state != "running" {
                    state = "running";
                    progress::set_state(store, name, projection.version(), state, None)
                        .await
                        .ok();
                }
                tracing::debug!(
                    projection = name,
                    applied = n,
                    position = cp.position,
                    "batch"
                );
                if n < options.batch as usize {
                    wake.borrow_and_update();
                }
            }
            Ok(Batch::Moved(next)) => cp = next,
            Ok(Batch::Idle) => {
                attempts = 0;
                if state != "idle" {
                    state = "idle";
                    progress::set_state(store, name, projection.version(), state, None)
                        .await
                        .ok();
                }
                // After a notification the new event may not be readable yet (an older
                // transaction somewhere in the cluster is still running): re-read every 10 ms
                // for a second before falling back to waiting for the next wake-up or poll.
                let wait = if Instant::now() < eager_until {
                    Duration::from_millis(10)
                } else {
                    options.poll
                };
                tokio::select! {
                    _ = wake.changed() => eager_until = Instant::now() + Duration::from_secs(1),
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(BatchError::Fold(FoldError {
                index,
                position,
                error,
            })) => {
                attempts += 1;
                tracing::warn!(projection = name, position, attempts, %error, "event failed");
                if attempts >= options.max_attempts {
                    let events = store.read_after(cp, options.batch).await?;
                    // Apply what comes before the failing event, then park it and stop.
                    if index > 0 {
                        match apply_events(store, projection, cp, &events[..index]).await? {
                            Batch::Applied(..) => {}
                            // Someone else moved the checkpoint: start over from there.
                            Batch::Moved(next) => {
                                cp = next;
                                attempts = 0;
                                continue;
                            }
                            Batch::Idle => {}
                        }
                    }
                    let failing = events
                        .iter()
                        .find(|e| e.position == position)
                        .cloned()
                        .ok_or_else(|| anyhow::anyhow!("failing event {position} vanished"))?;
                    park(store, projection, &failing, &error.to_string(), attempts).await?;
                    tracing::error!(projection = name, position, %error, "event parked; projection stuck");
                    return Ok(Some(Outcome::Stuck { position }));
                }
                backoff(options, attempts, shutdown).await;
            }
            Err(BatchError::Database(error)) => {
                attempts = attempts.saturating_add(1);
                tracing::warn!(projection = name, attempts, %error, "batch failed; retrying");
                progress::set_state(
                    store,
                    name,
                    projection.version(),
                    "retrying",
                    Some(&error.to_string()),
                )
                .await
                .ok();
                state = "retrying";
                backoff(options, attempts, shutdown).await;
            }
        }
    }
}

async fn backoff(options: &RunnerOptions, attempts: u32, shutdown: &mut watch::Receiver<bool>) {
    let delay = options
        .backoff
        .saturating_mul(1 << attempts.min(6))
        .min(Duration::from_secs(5));
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = shutdown.changed() => {}
    }
}

/// Runs one projection's worker: waits for its lease (retrying every second), applies batches
/// while holding it, and goes back to waiting if the lease is lost.
pub async fn run_projection(
    store: Store,
    projection: Arc<dyn Projection>,
    options: RunnerOptions,
    mut wake: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    let name = projection.name();
    loop {
        let Some(mut lease) = Lease::wait(&store, name, &options.owner, &mut shutdown).await else {
            return Ok(Outcome::Stopped);
        };
        let result = loop {
            let result = work(
                &store,
                &*projection,
                &options,
                &mut lease,
                &mut wake,
                &mut shutdown,
            )
            .await;
            if let Ok(Some(Outcome::Stuck { position })) = result {
                // Keep the lease (another worker would fail on the same event) until the
                // parked event is retried or skipped (`projections retry|skip`), then go on.
                if wait_while_parked(&store, name, &options, &mut lease, &mut shutdown).await {
                    tracing::info!(
                        projection = name,
                        position,
                        "parked event resolved; resuming"
                    );
                    continue;
                }
            }
            break result;
        };
        lease.release(&store).await;
        match result {
            Ok(None) => continue,
            Ok(Some(outcome)) => return Ok(outcome),
            Err(error) => {
                tracing::warn!(projection = name, error = %format!("{error:#}"), "worker failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RENEW_EVERY) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Waits, holding the lease, while `name` has parked events. True when none is left (retried or
/// skipped); false on shutdown or a lost lease.
async fn wait_while_parked(
    store: &Store,
    name: &str,
    options: &RunnerOptions,
    lease: &mut Lease,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if *shutdown.borrow() || !lease.keep(store).await {
            return false;
        }
        if matches!(progress::dead_letters(store, name).await, Ok(0)) {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(options.poll.max(Duration::from_millis(200))) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs a worker for every projection (each under its lease) until `shutdown` completes. The
/// one line `eventshop serve` needs.
pub async fn run_all(
    store: Store,
    _settings: &Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let options = RunnerOptions::for_store(&store);
    run_with(store, options, read_models::all(), shutdown).await
}

/// As [`run_all`], with explicit options and projections.
pub async fn run_with(
    store: Store,
    options: RunnerOptions,
    projections: Vec<Arc<dyn Projection>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_workers(store, options, projections, None, shutdown).await
}

/// Runs a worker for every projection and, given the settings, the order saga and its deadline
/// worker beside them — all woken by ONE LISTEN/NOTIFY listener — until `shutdown` completes.
pub(crate) async fn run_workers(
    store: Store,
    options: RunnerOptions,
    projections: Vec<Arc<dyn Projection>>,
    saga: Option<Settings>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let wake = Wake::start(&store, stop_rx.clone());
    let saga = saga.map(|settings| {
        tokio::spawn(crate::saga::run(
            store.clone(),
            settings,
            wake.receiver(),
            stop_rx.clone(),
        ))
    });
    // A projection stored at another version is rebuilt blue/green beside its live worker.
    let rebuilds: Vec<_> = projections
        .iter()
        .map(|projection| {
            tokio::spawn(crate::versions::rebuild_if_stale(
                store.clone(),
                projection.clone(),
                options.owner.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let workers: Vec<_> = projections
        .into_iter()
        .map(|projection| {
            tokio::spawn(run_projection(
                store.clone(),
                projection,
                options.clone(),
                wake.receiver(),
                stop_rx.clone(),
            ))
        })
        .collect();
    shutdown.await;
    stop_tx.send_replace(true);
    for rebuild in rebuilds {
        match rebuild.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "version check failed")
            }
            Err(error) => tracing::error!(%error, "version rebuild panicked"),
        }
    }
    for worker in workers {
        match worker.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "worker ended with an error")
            }
            Err(error) => tracing::error!(%error, "worker panicked"),
        }
    }
    if let Some(saga) = saga {
        match saga.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "the saga ended with an error")
            }
            Err(error) => tracing::error!(%error, "the saga panicked"),
        }
    }
    wake.stopped().await;
    Ok(())
}

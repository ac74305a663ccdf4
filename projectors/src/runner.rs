//! The projection runner: reads the global log in commit-safe order in batches and applies each
//! batch in ONE transaction together with the projection's checkpoint (compare-and-set under a
//! row lock). Workers own their projection through a [`lease`](crate::lease), wake on PostgreSQL
//! `NOTIFY eventshop_events` with a polling fallback, retry failures with backoff and park an
//! event that keeps failing in `projection_dead_letters`, stopping the projection before it
//! (state `stuck`) rather than skipping it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use eventstore_config::{Checkpoint, Settings, Store, StoredEvent};
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::lease::{self, RENEW_EVERY};
use crate::model::{FoldError, Projection};
use crate::read_models;
use crate::sql::{self, sqlite_time, BatchError, Tx};

/// The PostgreSQL notification channel the `events` trigger signals.
pub const CHANNEL: &str = "eventshop_events";

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

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied this many events and advanced the checkpoint to the given one.
    Applied(usize, Checkpoint),
    /// Nothing new to read.
    Idle,
    /// Another writer moved the checkpoint (a takeover or a rebuild swap): re-read it.
    Moved(Checkpoint),
}

/// Reads the next batch after `cp` and applies it with the checkpoint in one transaction.
pub async fn step(
    store: &Store,
    projection: &dyn Projection,
    cp: Checkpoint,
    batch: u32,
) -> Result<Step, BatchError> {
    let events = store.read_after(cp, batch).await.map_err(|e| match e {
        eventstore_config::ReadError::Database(e) => BatchError::Database(e),
        other => BatchError::Database(sqlx::Error::Protocol(other.to_string())),
    })?;
    if events.is_empty() {
        return Ok(Step::Idle);
    }
    apply_events(store, projection, cp, &events).await
}

/// Applies `events` (read after `cp`) in one transaction with the checkpoint.
pub async fn apply_events(
    store: &Store,
    projection: &dyn Projection,
    cp: Checkpoint,
    events: &[StoredEvent],
) -> Result<Step, BatchError> {
    let Some(last) = events.last() else {
        return Ok(Step::Idle);
    };
    let mut tx = Tx::begin(store).await?;
    let locked = tx.lock_checkpoint(projection.name()).await?;
    if locked != cp {
        tx.rollback().await.ok();
        return Ok(Step::Moved(locked));
    }
    if let Err(error) = tx.apply(projection, events, "").await {
        tx.rollback().await.ok();
        return Err(error);
    }
    tx.write_checkpoint(projection.name(), last.checkpoint())
        .await?;
    tx.commit().await?;
    Ok(Step::Applied(events.len(), last.checkpoint()))
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
        match step(store, projection, cp, batch).await? {
            Step::Applied(n, next) => {
                applied += n as u64;
                cp = next;
            }
            Step::Moved(next) => cp = next,
            Step::Idle => return Ok(applied),
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
    match store {
        Store::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM events WHERE global_position <= $3 \
                   AND (transaction_id, global_position) > ($1::text::xid8, $2))",
            )
            .bind(cp.transaction_id.to_string())
            .bind(cp.position)
            .bind(position)
            .fetch_one(pool)
            .await
        }
        Store::Sqlite(_) => Ok(cp.position >= position),
    }
}

/// Sets a projection's state (and error) in `projection_status`.
pub async fn set_state(
    store: &Store,
    name: &str,
    version: i32,
    state: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    match store {
        Store::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO projection_status (name, version, state, last_error, updated_at) \
                 VALUES ($1, $2, $3, $4, now()) ON CONFLICT (name) DO UPDATE \
                 SET version = excluded.version, state = excluded.state, \
                     last_error = excluded.last_error, updated_at = now()",
            )
            .bind(name)
            .bind(version)
            .bind(state)
            .bind(error)
            .execute(pool)
            .await?;
        }
        Store::Sqlite(pool) => {
            sqlx::query(
                "INSERT INTO projection_status (name, version, state, last_error, updated_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE \
                 SET version = excluded.version, state = excluded.state, \
                     last_error = excluded.last_error, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(version)
            .bind(state)
            .bind(error)
            .bind(sqlite_time(Utc::now()))
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

async fn park(
    store: &Store,
    projection: &dyn Projection,
    event: &StoredEvent,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    let sql = match store {
        Store::Postgres(_) => {
            "INSERT INTO projection_dead_letters (projection, global_position, transaction_id, \
               event_type, aggregate_type, aggregate_id, error, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (projection, global_position) \
             DO UPDATE SET error = excluded.error, attempts = projection_dead_letters.attempts + excluded.attempts"
        }
        Store::Sqlite(_) => {
            "INSERT INTO projection_dead_letters (projection, global_position, transaction_id, \
               event_type, aggregate_type, aggregate_id, error, attempts) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (projection, global_position) \
             DO UPDATE SET error = excluded.error, attempts = projection_dead_letters.attempts + excluded.attempts"
        }
    };
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(sql)
                .bind(projection.name())
                .bind(event.position)
                .bind(event.transaction_id.to_string())
                .bind(&event.event_type)
                .bind(&event.aggregate_type)
                .bind(&event.aggregate_id)
                .bind(error)
                .bind(attempts as i32)
                .execute($pool)
                .await
                .map(drop)?
        };
    }
    match store {
        Store::Postgres(pool) => run!(pool),
        Store::Sqlite(pool) => run!(pool),
    };
    set_state(
        store,
        projection.name(),
        projection.version(),
        "stuck",
        Some(&format!("event at position {}: {error}", event.position)),
    )
    .await
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
    lease: &mut lease::Lease,
    wake: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Outcome>> {
    let name = projection.name();
    let mut cp = sql::read_checkpoint(store, name).await?;
    let mut renewed = Instant::now();
    let mut attempts = 0u32;
    let mut state = "";
    let mut eager_until = Instant::now();
    loop {
        if *shutdown.borrow() {
            return Ok(Some(Outcome::Stopped));
        }
        if renewed.elapsed() >= RENEW_EVERY {
            if !lease.renew(store).await.unwrap_or(false) {
                tracing::warn!(projection = name, "lease lost");
                return Ok(None);
            }
            renewed = Instant::now();
        }
        match step(store, projection, cp, options.batch).await {
            Ok(Step::Applied(n, next)) => {
                attempts = 0;
                cp = next;
                if state != "running" {
                    state = "running";
                    set_state(store, name, projection.version(), state, None)
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
            Ok(Step::Moved(next)) => cp = next,
            Ok(Step::Idle) => {
                attempts = 0;
                if state != "idle" {
                    state = "idle";
                    set_state(store, name, projection.version(), state, None)
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
                            Step::Applied(..) => {}
                            // Someone else moved the checkpoint: start over from there.
                            Step::Moved(next) => {
                                cp = next;
                                attempts = 0;
                                continue;
                            }
                            Step::Idle => {}
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
                set_state(
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
        if *shutdown.borrow() {
            return Ok(Outcome::Stopped);
        }
        let acquired = match lease::try_acquire(&store, name, &options.owner).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(projection = name, %error, "lease attempt failed");
                None
            }
        };
        let Some(mut lease) = acquired else {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        tracing::info!(projection = name, owner = %options.owner, "lease acquired");
        let result = work(
            &store,
            &*projection,
            &options,
            &mut lease,
            &mut wake,
            &mut shutdown,
        )
        .await;
        match result {
            Ok(None) => {
                lease.release(&store).await;
                continue;
            }
            Ok(Some(Outcome::Stuck { position })) => {
                // Keep the lease: another worker would fail on the same event.
                let _ = shutdown.changed().await;
                lease.release(&store).await;
                return Ok(Outcome::Stuck { position });
            }
            Ok(Some(Outcome::Stopped)) => {
                lease.release(&store).await;
                return Ok(Outcome::Stopped);
            }
            Err(error) => {
                tracing::warn!(projection = name, error = %format!("{error:#}"), "worker failed; retrying");
                lease.release(&store).await;
                tokio::select! {
                    _ = tokio::time::sleep(RENEW_EVERY) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Forwards PostgreSQL notifications on [`CHANNEL`] to `wake` until `shutdown` (SQLite: returns at
/// once; its readers poll). Shared by the projection runner, the saga and the relay.
pub async fn listen(store: Store, wake: watch::Sender<u64>, mut shutdown: watch::Receiver<bool>) {
    let Store::Postgres(pool) = store else { return };
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            loop {
                listener.recv().await?;
                wake.send_modify(|n| *n = n.wrapping_add(1));
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listener => {
                if let Err(error) = result {
                    tracing::warn!(%error, "LISTEN failed; polling until it reconnects");
                }
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
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
    let (wake_tx, wake_rx) = watch::channel(0u64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let listener = tokio::spawn(listen(store.clone(), wake_tx, stop_rx.clone()));
    let mut workers = Vec::new();
    for projection in projections {
        workers.push(tokio::spawn(run_projection(
            store.clone(),
            projection,
            options.clone(),
            wake_rx.clone(),
            stop_rx.clone(),
        )));
    }
    shutdown.await;
    stop_tx.send_replace(true);
    for worker in workers {
        match worker.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "worker ended with an error")
            }
            Err(error) => tracing::error!(%error, "worker panicked"),
        }
    }
    listener.await.ok();
    Ok(())
}

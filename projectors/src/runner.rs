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
use eventstore_config::segments::{checkpoint_names, Segment};
use eventstore_config::{followers, Checkpoint, Settings, Store, StoredEvent};
use tokio::sync::watch;

use crate::lease::{self, Lease, RENEW_EVERY};
use crate::model::{FoldError, Projection};
use crate::progress;
use crate::read_models;
use crate::share::{claim, Share};
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
    apply_next_segment_batch(store, projection, Segment::WHOLE, cp, batch).await
}

/// Reads the next batch after `cp` and keeps the events of `segment` (see
/// [`eventstore_config::segments`]; `None`: nothing was read), with the checkpoint of the last
/// event read.
pub async fn read_segment(
    store: &Store,
    segment: Segment,
    cp: Checkpoint,
    batch: u32,
) -> Result<Option<(Vec<StoredEvent>, Checkpoint)>, BatchError> {
    let mut events = store.read_after(cp, batch).await.map_err(|e| match e {
        eventstore_config::ReadError::Database(e) => BatchError::Database(e),
        other => BatchError::Database(sqlx::Error::Protocol(other.to_string())),
    })?;
    let Some(last) = events.last().map(StoredEvent::checkpoint) else {
        return Ok(None);
    };
    if segment.of > 1 {
        events.retain(|e| segment.owns(&e.aggregate_id));
    }
    Ok(Some((events, last)))
}

/// As [`apply_next_batch`], for one segment: applies the batch's events of `segment` and moves
/// the segment's checkpoint past every event read.
pub async fn apply_next_segment_batch(
    store: &Store,
    projection: &dyn Projection,
    segment: Segment,
    cp: Checkpoint,
    batch: u32,
) -> Result<Batch, BatchError> {
    let Some((events, through)) = read_segment(store, segment, cp, batch).await? else {
        return Ok(Batch::Idle);
    };
    let name = segment.checkpoint_name(projection.name());
    apply_segment_events(store, projection, &name, cp, &events, through).await
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
    apply_segment_events(
        store,
        projection,
        projection.name(),
        cp,
        events,
        last.checkpoint(),
    )
    .await
}

/// Applies `events` (read after `cp`) and moves the checkpoint row `checkpoint` to `through`
/// in one transaction (compare-and-set: [`Batch::Moved`] if the row is not at `cp`).
pub async fn apply_segment_events(
    store: &Store,
    projection: &dyn Projection,
    checkpoint: &str,
    cp: Checkpoint,
    events: &[StoredEvent],
    through: Checkpoint,
) -> Result<Batch, BatchError> {
    let mut tx = Tx::begin(store).await?;
    let locked = tx.lock_checkpoint(checkpoint).await?;
    if locked != cp {
        tx.rollback().await.ok();
        return Ok(Batch::Moved(locked));
    }
    if !events.is_empty() {
        if let Err(error) = tx.apply(projection, events, "").await {
            tx.rollback().await.ok();
            return Err(error);
        }
    }
    tx.write_checkpoint(checkpoint, through).await?;
    tx.commit().await?;
    Ok(Batch::Applied(events.len(), through))
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

/// Whether `projection`'s checkpoint — each of its segments' — has passed every event at or
/// below `position` (`name` may also be one segment's checkpoint name).
pub async fn has_applied_through(
    store: &Store,
    name: &str,
    position: i64,
) -> Result<bool, sqlx::Error> {
    // Every segment's row (or the one row), commit-safe: a lower position may have committed
    // after a checkpoint's.
    followers::applied_through(store, &[name], position).await
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

/// Removes the parked events of `name` (of `segment`) that the segment's checkpoint has
/// passed (applied by the current code after a restart). Whether any are left.
async fn forget_applied(store: &Store, name: &str, segment: Segment) -> Result<bool, sqlx::Error> {
    let checkpoint = segment.checkpoint_name(name);
    let mut left = false;
    for row in progress::list_dead_letters(store, Some(name)).await? {
        if !segment.owns(&row.aggregate_id) {
            continue;
        }
        if has_applied_through(store, &checkpoint, row.global_position).await? {
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

/// How many of `name`'s parked events belong to `segment`.
async fn parked_in(store: &Store, name: &str, segment: Segment) -> Result<usize, sqlx::Error> {
    if segment.of <= 1 {
        return Ok(progress::dead_letters(store, name).await? as usize);
    }
    Ok(progress::list_dead_letters(store, Some(name))
        .await?
        .iter()
        .filter(|row| segment.owns(&row.aggregate_id))
        .count())
}

/// The segment a worker applies, and the share it is counted in (none: an unshared worker).
struct Part<'a> {
    segment: Segment,
    share: Option<&'a Share>,
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
    /// The segment was given up to a worker below its share.
    GivenUp,
}

/// Applies batches of `segment` to `projection` until shutdown or a parked event, assuming the
/// lease is held. Database failures are retried with backoff forever; an event that fails
/// `max_attempts` times is parked after the events before it are applied. `Ok(None)`: the
/// lease was lost, or given up to a worker below its share.
async fn work(
    store: &Store,
    projection: &dyn Projection,
    Part { segment, share }: Part<'_>,
    options: &RunnerOptions,
    lease: &mut Lease,
    wake: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Outcome>> {
    let name = projection.name();
    let checkpoint = segment.checkpoint_name(name);
    let mut cp = sql::read_checkpoint(store, &checkpoint).await?;
    // Events parked before this start that the current code may now apply: their rows go once
    // the checkpoint passes them.
    let mut parked = parked_in(store, name, segment).await? > 0;
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
        // Between two batches: a worker above its share gives this segment up.
        if let Some(share) = share {
            if share.give_up(name, segment.of) {
                tracing::info!(job = %checkpoint, "segment given up to a worker below its share");
                return Ok(Some(Outcome::GivenUp));
            }
        }
        match apply_next_segment_batch(store, projection, segment, cp, options.batch).await {
            Ok(Batch::Applied(n, next)) => {
                attempts = 0;
                cp = next;
                if parked {
                    parked = forget_applied(store, name, segment).await.unwrap_or(true);
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
                    let events = match read_segment(store, segment, cp, options.batch).await? {
                        Some((events, _)) => events,
                        None => Vec::new(),
                    };
                    // Apply what comes before the failing event, then park it and stop.
                    if index > 0 && index <= events.len() {
                        let through = events[index - 1].checkpoint();
                        match apply_segment_events(
                            store,
                            projection,
                            &checkpoint,
                            cp,
                            &events[..index],
                            through,
                        )
                        .await?
                        {
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
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    run_segment(
        store,
        projection,
        Segment::WHOLE,
        options,
        None,
        wake,
        shutdown,
    )
    .await
}

/// Runs the worker of one segment of a projection: waits until this process is below its
/// share of the projection's segments ([`Share`]; always, without one) and the segment's
/// lease is free, applies batches while holding it, and goes back to waiting if the lease is
/// lost or the segment given up.
pub async fn run_segment(
    store: Store,
    projection: Arc<dyn Projection>,
    segment: Segment,
    options: RunnerOptions,
    share: Option<Arc<Share>>,
    mut wake: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    let name = projection.name();
    let job = segment.checkpoint_name(name);
    loop {
        let lease = match &share {
            None => Lease::wait(&store, &job, &options.owner, &mut shutdown).await,
            Some(share) => claim(&store, share, name, &job, segment.of, &mut shutdown).await,
        };
        let Some(mut lease) = lease else {
            return Ok(Outcome::Stopped);
        };
        let result = loop {
            let part = Part {
                segment,
                share: share.as_deref(),
            };
            let result = work(
                &store,
                &*projection,
                part,
                &options,
                &mut lease,
                &mut wake,
                &mut shutdown,
            )
            .await;
            if let Ok(Some(Outcome::Stuck { position })) = result {
                // Keep the lease (another worker would fail on the same event) until the
                // parked event is retried or skipped (`projections retry|skip`), then go on.
                if wait_while_parked(&store, name, segment, &options, &mut lease, &mut shutdown)
                    .await
                {
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
        if let Some(share) = &share {
            if !matches!(result, Ok(Some(Outcome::GivenUp))) {
                share.release(name);
            }
        }
        match result {
            Ok(None) => continue,
            Ok(Some(Outcome::GivenUp)) => {
                // Leave the segment to the worker below its share for a moment.
                tokio::select! {
                    _ = tokio::time::sleep(RENEW_EVERY * 2) => {}
                    _ = shutdown.changed() => {}
                }
            }
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

/// Waits, holding the lease, while `name` has parked events in `segment`. True when none is
/// left (retried or skipped); false on shutdown or a lost lease.
async fn wait_while_parked(
    store: &Store,
    name: &str,
    segment: Segment,
    options: &RunnerOptions,
    lease: &mut Lease,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if *shutdown.borrow() || !lease.keep(store).await {
            return false;
        }
        if matches!(parked_in(store, name, segment).await, Ok(0)) {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(options.poll.max(Duration::from_millis(200))) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs a worker for every projection (each under its lease; split into the segments the
/// settings give, shared with the other live workers) until `shutdown` completes. The one line
/// `eventshop serve` needs.
pub async fn run_all(
    store: Store,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let options = RunnerOptions::for_store(&store);
    run_workers(
        store,
        options,
        read_models::all(),
        Some(settings.clone()),
        false,
        shutdown,
    )
    .await
}

/// As [`run_all`], with explicit options and projections, each ONE segment under its own
/// lease (no sharing: any worker takes any free projection).
pub async fn run_with(
    store: Store,
    options: RunnerOptions,
    projections: Vec<Arc<dyn Projection>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_workers(store, options, projections, None, false, shutdown).await
}

/// As [`run_with`], with each projection split into the segments `settings` give
/// ([`Settings::segments_for`]) and the segments shared fairly with the other live workers
/// ([`Share`]).
pub async fn run_segmented(
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
        false,
        shutdown,
    )
    .await
}

/// Brings every checkpoint row layout of `names` to its segment count in `settings`
/// ([`followers::ensure_segments`]).
pub async fn ensure_layouts(
    store: &Store,
    settings: &Settings,
    names: &[&str],
) -> Result<(), sqlx::Error> {
    for name in names {
        let segments = settings.segments_for(name);
        if followers::ensure_segments(store, name, &checkpoint_names(name, segments)).await? {
            tracing::info!(follower = name, segments, "segment layout changed");
        }
    }
    Ok(())
}

/// Runs a worker for every projection and, given `saga`, the order saga and its deadline
/// worker beside them — all woken by ONE LISTEN/NOTIFY listener — until `shutdown` completes.
/// Given `settings`, every follower is split into its segments and they are shared with the
/// other live workers; without, each projection is one segment any worker may take.
pub(crate) async fn run_workers(
    store: Store,
    options: RunnerOptions,
    projections: Vec<Arc<dyn Projection>>,
    settings: Option<Settings>,
    saga: bool,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let wake = Wake::start(&store, stop_rx.clone());
    let share = match &settings {
        Some(settings) => {
            let mut names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
            if saga {
                names.push(crate::saga::NAME);
            }
            ensure_layouts(&store, settings, &names).await?;
            Some(Share::start(&store, &options.owner, stop_rx.clone()))
        }
        None => None,
    };
    let saga = match (&settings, saga) {
        (Some(settings), true) => Some(tokio::spawn(crate::saga::run::run_shared(
            store.clone(),
            settings.clone(),
            share.clone(),
            wake.receiver(),
            stop_rx.clone(),
        ))),
        _ => None,
    };
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
    let mut workers = Vec::new();
    for projection in projections {
        let segments = match &settings {
            Some(settings) => settings.segments_for(projection.name()),
            None => 1,
        };
        for segment in Segment::all(segments) {
            workers.push(tokio::spawn(run_segment(
                store.clone(),
                projection.clone(),
                segment,
                options.clone(),
                share.clone(),
                wake.receiver(),
                stop_rx.clone(),
            )));
        }
    }
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
    if let Some(share) = share {
        share.close().await;
    }
    wake.stopped().await;
    Ok(())
}

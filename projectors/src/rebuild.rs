//! Blue/green rebuilds: replay the whole log into fresh copies of a read model's tables
//! (`<table>__rebuild`, checkpoint `<name>__rebuild`) while the live tables keep serving, then in
//! ONE transaction — holding the live checkpoint's row lock, so the live worker waits — catch
//! the copies up to the log's readable end, swap them in by renaming, and set the live
//! checkpoint — every segment's, see `eventstore_config::segments` — to where the rebuild
//! finished. Events appended meanwhile are applied by the live
//! worker from that checkpoint on: none is lost or applied twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventstore_config::{Checkpoint, Sql, Store, StoredEvent};
use indicatif::ProgressBar;
use sqlx::Row;
use tokio::sync::mpsc;

use crate::bulk;
use crate::model::{Projection, TableDef};
use crate::progress::{record_built_version, set_state};
use crate::sql::{BatchError, Tx};

/// The table-name suffix of rebuild copies.
pub const SUFFIX: &str = "__rebuild";

/// The checkpoint name of `name`'s rebuild.
pub fn rebuild_checkpoint(name: &str) -> String {
    format!("{name}{SUFFIX}")
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// Events replayed before the swap.
    pub events: u64,
    /// Time spent replaying (without the swap), index builds included.
    pub replay: Duration,
    /// Of `replay`, the time spent building the copies' indexes after the load.
    pub indexes: Duration,
    /// Time spent in the swap transactions (catch-up included).
    pub swap: Duration,
    /// Each projection's checkpoint after the swap.
    pub checkpoints: Vec<(&'static str, Checkpoint)>,
}

/// Rebuilds `projections` together (one read of the log, pipelined), then swaps each in.
/// `progress` gets the head position as length and each batch's size.
///
/// The replay writes through [`bulk`]: each projection folds every batch in memory (keeping its
/// entities' open row versions there) and writes each row version once — on PostgreSQL in its
/// own task, concurrently, into copies without indexes (built when the replay ends); on SQLite
/// all projections' rows of a batch in one transaction. Then the swap catches the copies up
/// through the live write path.
pub async fn rebuild(
    store: &Store,
    projections: &[Arc<dyn Projection>],
    batch: u32,
    progress: &ProgressBar,
) -> anyhow::Result<RebuildReport> {
    let mut indexes = Vec::new();
    for projection in projections {
        for table in projection.tables() {
            create_copy(store, table).await?;
            let copy = format!("{}{SUFFIX}", table.name);
            let saved = bulk::drop_indexes(store, &copy)
                .await
                .with_context(|| format!("dropping the indexes of {copy} for the load"))?;
            indexes.push(saved);
        }
        let mut tx = Tx::begin(store).await?;
        tx.write_checkpoint(&rebuild_checkpoint(projection.name()), Checkpoint::START)
            .await?;
        tx.commit().await?;
    }
    progress.set_length(store.head_position().await?.max(0) as u64);
    let started = Instant::now();
    let events_done = match store {
        Store::Postgres(_) => replay_concurrently(store, projections, batch, progress).await?,
        Store::Sqlite(_) => replay_in_turn(store, projections, batch, progress).await?,
    };
    let indexing = Instant::now();
    bulk::build_indexes(store, indexes)
        .await
        .context("building the rebuilt tables' indexes")?;
    let indexes = indexing.elapsed();
    let replay = started.elapsed();
    let started = Instant::now();
    let mut checkpoints = Vec::new();
    for projection in projections {
        checkpoints.push((projection.name(), swap(store, &**projection, batch).await?));
    }
    progress.finish();
    Ok(RebuildReport {
        events: events_done,
        replay,
        indexes,
        swap: started.elapsed(),
        checkpoints,
    })
}

/// PostgreSQL: one task per projection folds and writes (`COPY`) each batch in its own
/// transaction, concurrently, while the next batch is read. Returns the events replayed.
async fn replay_concurrently(
    store: &Store,
    projections: &[Arc<dyn Projection>],
    batch: u32,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut feeds = Vec::new();
    let mut writers = Vec::new();
    for projection in projections {
        let (feed, batches) = mpsc::channel(2);
        feeds.push(feed);
        writers.push(tokio::spawn(replay_one(
            store.clone(),
            projection.clone(),
            batches,
        )));
    }
    let mut events_done = 0u64;
    // Pipelined: the next batch is read while the writers fold and write the current one.
    let mut reading = Some(spawn_read(store, Checkpoint::START, batch));
    'read: while let Some(handle) = reading.take() {
        let events = Arc::new(handle.await??);
        let Some(last) = events.last() else { break };
        if events.len() == batch as usize {
            reading = Some(spawn_read(store, last.checkpoint(), batch));
        }
        for feed in &feeds {
            if feed.send(events.clone()).await.is_err() {
                break 'read; // that writer failed: its error is reported below
            }
        }
        events_done += events.len() as u64;
        progress.inc(events.len() as u64);
    }
    drop(feeds);
    for writer in writers {
        writer.await??;
    }
    Ok(events_done)
}

/// SQLite (one writer at a time): every projection folds the batch, then ONE transaction writes
/// all their rows and rebuild checkpoints — one write lock per batch, so commands appended
/// meanwhile are not starved of it. Returns the events replayed.
async fn replay_in_turn(
    store: &Store,
    projections: &[Arc<dyn Projection>],
    batch: u32,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut states: Vec<bulk::Replay> = projections
        .iter()
        .map(|p| bulk::Replay::new(&**p))
        .collect();
    let mut events_done = 0u64;
    let mut reading = Some(spawn_read(store, Checkpoint::START, batch));
    while let Some(handle) = reading.take() {
        let events = handle.await??;
        let Some(last) = events.last() else { break };
        if events.len() == batch as usize {
            reading = Some(spawn_read(store, last.checkpoint(), batch));
        }
        let mut finished = Vec::new();
        for (projection, state) in projections.iter().zip(&mut states) {
            let rows = state
                .step(&**projection, &events)
                .map_err(|e| describe(projection.name(), e.into()))?;
            finished.push(rows);
        }
        let mut tx = bulk::begin(store).await?;
        for (projection, rows) in projections.iter().zip(&finished) {
            bulk::write(&mut tx, rows, SUFFIX)
                .await
                .with_context(|| format!("writing the rebuild of {}", projection.name()))?;
            tx.write_checkpoint(&rebuild_checkpoint(projection.name()), last.checkpoint())
                .await?;
        }
        tx.commit().await?;
        events_done += events.len() as u64;
        progress.inc(events.len() as u64);
    }
    let mut tx = bulk::begin(store).await?;
    for (projection, state) in projections.iter().zip(states) {
        bulk::write(&mut tx, &state.finish(&**projection), SUFFIX)
            .await
            .with_context(|| format!("writing the current rows of {}", projection.name()))?;
    }
    tx.commit().await?;
    Ok(events_done)
}

/// One projection's replay: folds each batch, writes the finished rows and the rebuild
/// checkpoint in one transaction; at the end writes the rows still open.
async fn replay_one(
    store: Store,
    projection: Arc<dyn Projection>,
    mut batches: mpsc::Receiver<Arc<Vec<StoredEvent>>>,
) -> anyhow::Result<()> {
    let name = projection.name();
    let mut state = bulk::Replay::new(&*projection);
    while let Some(events) = batches.recv().await {
        let Some(last) = events.last() else { continue };
        let finished = state
            .step(&*projection, &events)
            .map_err(|e| describe(name, e.into()))?;
        let mut tx = bulk::begin(&store).await?;
        bulk::write(&mut tx, &finished, SUFFIX)
            .await
            .with_context(|| format!("writing the rebuild of {name}"))?;
        tx.write_checkpoint(&rebuild_checkpoint(name), last.checkpoint())
            .await?;
        tx.commit().await?;
    }
    let finished = state.finish(&*projection);
    let mut tx = bulk::begin(&store).await?;
    bulk::write(&mut tx, &finished, SUFFIX)
        .await
        .with_context(|| format!("writing the current rows of {name}"))?;
    tx.commit().await?;
    Ok(())
}

fn spawn_read(
    store: &Store,
    cp: Checkpoint,
    batch: u32,
) -> tokio::task::JoinHandle<
    Result<Vec<eventstore_config::StoredEvent>, eventstore_config::ReadError>,
> {
    let store = store.clone();
    tokio::spawn(async move { store.read_after(cp, batch).await })
}

fn describe(name: &str, error: BatchError) -> anyhow::Error {
    anyhow::Error::new(error).context(format!("rebuilding projection {name}"))
}

/// Catches the copies up and swaps them in, in one transaction. Returns the new checkpoint.
async fn swap(
    store: &Store,
    projection: &dyn Projection,
    batch: u32,
) -> anyhow::Result<Checkpoint> {
    let name = projection.name();
    let rebuild_name = rebuild_checkpoint(name);
    let mut tx = Tx::begin(store).await?;
    // Every segment's checkpoint row: their workers wait for the swap.
    eventstore_config::followers::lock_follower(&mut tx, name).await?;
    let mut cp = tx.lock_checkpoint(&rebuild_name).await?;
    loop {
        let events = match store {
            Store::Postgres(_) => store.read_after(cp, batch).await?,
            // Holding SQLite's write lock: read through the same connection.
            Store::Sqlite(_) => {
                eventstore_config::log::read_after_sqlite(&mut tx, cp, batch).await?
            }
        };
        let Some(last) = events.last() else { break };
        tx.apply(projection, &events, SUFFIX)
            .await
            .map_err(|e| describe(name, e))?;
        cp = last.checkpoint();
    }
    tx.rescrub(projection, SUFFIX).await?;
    for table in projection.tables() {
        swap_table(&mut tx, table).await?;
    }
    eventstore_config::followers::write_segment_checkpoints(&mut tx, name, cp).await?;
    eventstore_config::followers::delete_checkpoint(&mut tx, &rebuild_name).await?;
    // The rows are now this code's.
    record_built_version(&mut tx, name, projection.version()).await?;
    tx.commit().await?;
    set_state(store, name, projection.version(), "idle", None).await?;
    tracing::info!(
        projection = name,
        position = cp.position,
        "rebuild swapped in"
    );
    Ok(cp)
}

/// Creates an empty copy `<table>__rebuild` with the live table's columns and indexes.
async fn create_copy(store: &Store, table: &TableDef) -> anyhow::Result<()> {
    let live = table.name;
    let copy = format!("{live}{SUFFIX}");
    match store {
        Store::Postgres(pool) => {
            sqlx::raw_sql(&format!(
                "DROP TABLE IF EXISTS {copy}; CREATE TABLE {copy} (LIKE {live} INCLUDING ALL);"
            ))
            .execute(pool)
            .await?;
        }
        Store::Sqlite(pool) => {
            sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {copy}"))
                .execute(pool)
                .await?;
            let ddl = sqlite_ddl(pool, live).await?;
            let mut sql = String::new();
            for statement in ddl {
                sql.push_str(&statement.replace(live, &copy));
                sql.push_str(";\n");
            }
            sqlx::raw_sql(&sql).execute(pool).await?;
        }
    }
    Ok(())
}

/// The `CREATE TABLE` and `CREATE INDEX` statements of a SQLite table, table first.
async fn sqlite_ddl(pool: &sqlx::SqlitePool, table: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL \
          ORDER BY type = 'table' DESC, name",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

async fn swap_table(tx: &mut Tx, table: &TableDef) -> anyhow::Result<()> {
    // One statement at a time through `Sql` (not `raw_sql`/`query_scalar` on the connection,
    // whose futures are not provably `Send`: a version rebuild runs this in a spawned task).
    let live = table.name;
    let copy = format!("{live}{SUFFIX}");
    match tx {
        Tx::Pg(t) => {
            for statement in [
                format!("ALTER TABLE {live} RENAME TO {live}__old"),
                format!("ALTER TABLE {copy} RENAME TO {live}"),
                format!("DROP TABLE {live}__old"),
            ] {
                Sql::new(statement).execute(&mut *t).await?;
            }
        }
        Tx::Sqlite(t) => {
            let indexes: Vec<(String,)> = Sql::new(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
                   AND sql IS NOT NULL ORDER BY name",
            )
            .arg(live)
            .fetch_all(&mut *t)
            .await?;
            for statement in [
                format!("DROP TABLE {live}"),
                format!("ALTER TABLE {copy} RENAME TO {live}"),
            ] {
                Sql::new(statement).execute(&mut *t).await?;
            }
            let renamed: Vec<(String,)> = Sql::new(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
                   AND sql IS NOT NULL",
            )
            .arg(live)
            .fetch_all(&mut *t)
            .await?;
            for (index,) in renamed {
                Sql::new(format!("DROP INDEX {index}"))
                    .execute(&mut *t)
                    .await?;
            }
            for (index,) in indexes {
                Sql::new(index).execute(&mut *t).await?;
            }
        }
    }
    Ok(())
}

/// Abandons `name`'s rebuild (cut short): forgets its checkpoint, so that the projection no
/// longer shows as rebuilding; the copies are dropped by the next rebuild.
pub async fn abandon(store: &Store, name: &str) -> anyhow::Result<()> {
    eventstore_config::followers::delete_checkpoint(store, &rebuild_checkpoint(name)).await?;
    Ok(())
}

/// The position a running rebuild of `name` has reached (`None`: no rebuild under way).
pub async fn rebuild_position(store: &Store, name: &str) -> anyhow::Result<Option<i64>> {
    Ok(eventstore_config::followers::position_of(store, &rebuild_checkpoint(name)).await?)
}

/// Resets `name`'s live checkpoint to the start (its rows stay: replayed events are no-ops).
pub async fn reset_checkpoint(store: &Store, name: &str) -> anyhow::Result<()> {
    let mut tx = Tx::begin(store).await?;
    eventstore_config::followers::lock_follower(&mut tx, name).await?;
    eventstore_config::followers::write_segment_checkpoints(&mut tx, name, Checkpoint::START)
        .await?;
    tx.commit().await?;
    Ok(())
}

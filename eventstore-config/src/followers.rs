//! The bookkeeping rows of every log follower (the projections, the saga, the relay), owned
//! here and nowhere else: `projection_checkpoints` (where each follower — or each of its
//! segments, see [`crate::segments`] — stands in the log, written in the same transaction as
//! what it applied), `follower_workers` (one heartbeat row per worker process: the live
//! workers that share the segments) and `projection_status` (state, last
//! error, owner, SQLite lease expiry, the version whose code built the rows). Their writes (by the projectors' runner, rebuilds,
//! the lease helper, the saga and the relay) and typed reads (by `projections status`, the
//! query API's read-your-writes wait, subscriptions and `projections` query).
//!
//! Here in the store crate, not in projectors, because the query API reads them too and never
//! depends on projectors. The store-specific parts are the commit-safe reader's: the checkpoint
//! keeps an `xid8` on PostgreSQL (text on SQLite) and is locked with `FOR UPDATE` there (a
//! SQLite write transaction holds the database's one write lock already).

use chrono::{DateTime, Utc};

use crate::log::{self, Checkpoint};
use crate::sql::{Executor, Sql};
use crate::store::{Store, StoreKind};

fn parse_xid(text: &str) -> Result<u64, sqlx::Error> {
    text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn checkpoint_of(row: Option<(String, i64)>) -> Result<Checkpoint, sqlx::Error> {
    match row {
        Some((xid, position)) => Ok(Checkpoint {
            transaction_id: parse_xid(&xid)?,
            position,
        }),
        None => Ok(Checkpoint::START),
    }
}

/// The checkpoint row `name` (the start if there is none).
pub async fn checkpoint(store: &Store, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let row = Sql::new(
        "SELECT CAST(transaction_id AS TEXT), global_position FROM projection_checkpoints \
          WHERE name = $1",
    )
    .arg(name)
    .fetch_optional(store)
    .await?;
    checkpoint_of(row)
}

/// Locks the checkpoint row `name` inside the transaction `on` (creating it at the start if
/// missing) and returns it. Every writer of a follower's tables takes this lock first, so
/// batches, takeovers and rebuild swaps serialize on it.
pub async fn lock_checkpoint<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
) -> Result<Checkpoint, sqlx::Error> {
    let mut on = on.into();
    let lock = match on.kind() {
        StoreKind::Postgres => " FOR UPDATE",
        StoreKind::Sqlite => "",
    };
    Sql::new("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .arg(name)
        .execute(on.reborrow())
        .await?;
    let row = Sql::new(format!(
        "SELECT CAST(transaction_id AS TEXT), global_position FROM projection_checkpoints \
          WHERE name = $1{lock}"
    ))
    .arg(name)
    .fetch_optional(on)
    .await?;
    checkpoint_of(Some(row.ok_or(sqlx::Error::RowNotFound)?))
}

/// Sets the checkpoint row `name` to `cp` inside `on`.
pub async fn write_checkpoint<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
    cp: Checkpoint,
) -> Result<(), sqlx::Error> {
    let on = on.into();
    let xid = match on.kind() {
        StoreKind::Postgres => "$2::text::xid8",
        StoreKind::Sqlite => "$2",
    };
    Sql::new(format!(
        "INSERT INTO projection_checkpoints (name, transaction_id, global_position, updated_at) \
         VALUES ($1, {xid}, $3, $4) ON CONFLICT (name) DO UPDATE \
         SET transaction_id = excluded.transaction_id, \
             global_position = excluded.global_position, updated_at = excluded.updated_at"
    ))
    .arg(name)
    .arg(cp.transaction_id.to_string())
    .arg(cp.position)
    .arg(Utc::now())
    .execute(on)
    .await?;
    Ok(())
}

/// Deletes the checkpoint row `name` inside `on`.
pub async fn delete_checkpoint<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
) -> Result<(), sqlx::Error> {
    Sql::new("DELETE FROM projection_checkpoints WHERE name = $1")
        .arg(name)
        .execute(on)
        .await?;
    Ok(())
}

/// Whether a checkpoint row `name` exists.
pub async fn has_checkpoint(store: &Store, name: &str) -> Result<bool, sqlx::Error> {
    let (exists,): (bool,) =
        Sql::new("SELECT EXISTS (SELECT 1 FROM projection_checkpoints WHERE name = $1)")
            .arg(name)
            .fetch_one(store)
            .await?;
    Ok(exists)
}

/// Every checkpoint row's (name, global position), in name order.
pub async fn positions(store: &Store) -> Result<Vec<(String, i64)>, sqlx::Error> {
    Sql::new("SELECT name, global_position FROM projection_checkpoints ORDER BY name")
        .fetch_all(store)
        .await
}

/// Whether every follower in `names` has applied every event at or below `position`, in one
/// statement.
pub async fn applied_through(
    store: &Store,
    names: &[&str],
    position: i64,
) -> Result<bool, sqlx::Error> {
    match store {
        // Commit-safe: a checkpoint past `position` may still lack a lower position whose
        // transaction committed later; ask whether any event at or below it lies beyond.
        Store::Postgres(_) => {
            let mut sql = Sql::new("SELECT NOT EXISTS (SELECT 1 FROM (VALUES ");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(").bind(*name).push(")");
            }
            sql.push(") AS n(name) LEFT JOIN projection_checkpoints c ON ")
                .push(&row_of("c.name", "n.name"))
                .push(" WHERE ")
                .append(&log::unread_through(position, "c"))
                .push(")");
            let (applied,): (bool,) = sql.fetch_one(store).await?;
            Ok(applied)
        }
        // One writer: a checkpoint's position alone says what it has applied. Every follower
        // needs a row, and every row of it (each segment's) must have reached `position`.
        Store::Sqlite(_) => {
            let mut sql = Sql::new("WITH n(name) AS (VALUES ");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(").bind(*name).push(")");
            }
            let of = row_of("c.name", "n.name");
            sql.push(&format!(
                ") SELECT COUNT(*) FROM n WHERE NOT EXISTS \
                   (SELECT 1 FROM projection_checkpoints c WHERE {of}) \
                 OR EXISTS (SELECT 1 FROM projection_checkpoints c WHERE {of} \
                   AND c.global_position < "
            ))
            .bind(position)
            .push(")");
            let (behind,): (i64,) = sql.fetch_one(store).await?;
            Ok(behind == 0)
        }
    }
}

/// A follower with a checkpoint, as the query API lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FollowerRow {
    /// The follower's name.
    pub name: String,
    /// Global position of its checkpoint.
    pub global_position: i64,
    /// Its recorded state (none before it recorded one).
    pub state: Option<String>,
}

/// Every follower with a checkpoint (rebuild checkpoints excluded), in name order, with its
/// recorded state.
pub async fn followers(store: &Store) -> Result<Vec<FollowerRow>, sqlx::Error> {
    Sql::new(
        "SELECT c.name AS name, c.global_position AS global_position, s.state AS state \
         FROM projection_checkpoints c LEFT JOIN projection_status s ON s.name = c.name \
         WHERE c.name NOT LIKE '%\\_\\_rebuild' ESCAPE '\\' ORDER BY c.name",
    )
    .fetch_all(store)
    .await
}

/// A follower's stored status row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StatusRow {
    /// `running`, `idle`, `retrying`, `stuck`, …
    pub state: String,
    /// The owner recorded with the lease (may be stale: check the lease).
    pub owner: Option<String>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Sets a follower's state (and error).
pub async fn set_state(
    store: &Store,
    name: &str,
    version: i32,
    state: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "INSERT INTO projection_status (name, version, state, last_error, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE \
         SET version = excluded.version, state = excluded.state, \
             last_error = excluded.last_error, updated_at = excluded.updated_at",
    )
    .arg(name)
    .arg(version)
    .arg(state)
    .arg(error)
    .arg(Utc::now())
    .execute(store)
    .await?;
    Ok(())
}

/// The status row of `name`, if any.
pub async fn status_row(store: &Store, name: &str) -> Result<Option<StatusRow>, sqlx::Error> {
    Sql::new("SELECT state, owner, last_error FROM projection_status WHERE name = $1")
        .arg(name)
        .fetch_optional(store)
        .await
}

/// Records `owner` as the owner of `name` (PostgreSQL, where the advisory lock is the lease).
pub async fn record_owner(
    store: &Store,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "INSERT INTO projection_status (name, owner, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
             updated_at = excluded.updated_at",
    )
    .arg(name)
    .arg(owner)
    .arg(now)
    .execute(store)
    .await?;
    Ok(())
}

/// Takes the lease row of `name` for `owner` until `expires`, if it is free, expired or
/// already `owner`'s (SQLite). Whether it was taken.
pub async fn take_lease(
    store: &Store,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = Sql::new(
        "INSERT INTO projection_status (name, owner, lease_expires_at, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE \
         SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at, \
             updated_at = excluded.updated_at \
         WHERE projection_status.owner IS NULL OR projection_status.owner = $2 \
            OR projection_status.lease_expires_at IS NULL \
            OR projection_status.lease_expires_at < $4",
    )
    .arg(name)
    .arg(owner)
    .arg(expires)
    .arg(now)
    .execute(store)
    .await?;
    Ok(done == 1)
}

/// Moves `owner`'s lease of `name` on to `expires` (SQLite). Whether `owner` still held it.
pub async fn extend_lease(
    store: &Store,
    name: &str,
    owner: &str,
    expires: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = Sql::new(
        "UPDATE projection_status SET lease_expires_at = $1 WHERE name = $2 AND owner = $3",
    )
    .arg(expires)
    .arg(name)
    .arg(owner)
    .execute(store)
    .await?;
    Ok(done == 1)
}

/// Clears `owner` (and the lease expiry) from `name`'s row, if `owner` is still recorded.
pub async fn clear_owner(store: &Store, name: &str, owner: &str) -> Result<(), sqlx::Error> {
    Sql::new(
        "UPDATE projection_status SET owner = NULL, lease_expires_at = NULL \
          WHERE name = $1 AND owner = $2",
    )
    .arg(name)
    .arg(owner)
    .execute(store)
    .await?;
    Ok(())
}

/// Whether the lease row of `name` has an owner whose lease runs at `now` (SQLite).
pub async fn lease_alive(
    store: &Store,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (alive,): (bool,) = Sql::new(
        "SELECT EXISTS (SELECT 1 FROM projection_status WHERE name = $1 \
           AND owner IS NOT NULL AND lease_expires_at >= $2)",
    )
    .arg(name)
    .arg(now)
    .fetch_one(store)
    .await?;
    Ok(alive)
}

/// The position of the checkpoint row `name`, if there is one.
pub async fn position_of(store: &Store, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> =
        Sql::new("SELECT global_position FROM projection_checkpoints WHERE name = $1")
            .arg(name)
            .fetch_optional(store)
            .await?;
    Ok(row.map(|(p,)| p))
}

/// The version whose code built `name`'s rows (`None`: not recorded yet).
pub async fn built_version(store: &Store, name: &str) -> Result<Option<i32>, sqlx::Error> {
    let row: Option<(Option<i32>,)> =
        Sql::new("SELECT built_version FROM projection_status WHERE name = $1")
            .arg(name)
            .fetch_optional(store)
            .await?;
    Ok(row.and_then(|(v,)| v))
}

/// Records that `name`'s rows were built by the code of `version` (a rebuild's swap, or a
/// fresh or adopted projection).
pub async fn record_built_version<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
    version: i32,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "INSERT INTO projection_status (name, built_version, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET built_version = excluded.built_version",
    )
    .arg(name)
    .arg(version)
    .arg(Utc::now())
    .execute(on)
    .await?;
    Ok(())
}

/// The condition "row `alias`.name is one of follower `$n`'s checkpoint rows" (its own name,
/// or a segment's `name@i/N`); `$n` is bound to the follower's name by the caller.
fn of_follower(alias: &str, n: usize) -> String {
    row_of(&format!("{alias}name"), &format!("${n}"))
}

/// The condition "checkpoint name `row` is follower `name`'s" (both SQL expressions).
fn row_of(row: &str, name: &str) -> String {
    format!("({row} = {name} OR substr({row}, 1, length({name}) + 1) = {name} || '@')")
}

/// Every checkpoint row of follower `name` (its own, or its segments'), by name.
pub async fn segment_checkpoints(
    store: &Store,
    name: &str,
) -> Result<Vec<(String, Checkpoint)>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = Sql::new(format!(
        "SELECT name, CAST(transaction_id AS TEXT), global_position FROM projection_checkpoints \
          WHERE {} ORDER BY name",
        of_follower("", 1)
    ))
    .arg(name)
    .fetch_all(store)
    .await?;
    rows.into_iter()
        .map(|(row, xid, position)| Ok((row, checkpoint_of(Some((xid, position)))?)))
        .collect()
}

/// Locks every checkpoint row of follower `name` inside `on` (its own or its segments'),
/// returning them by name; none are created.
pub async fn lock_segment_checkpoints<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
) -> Result<Vec<(String, Checkpoint)>, sqlx::Error> {
    let on = on.into();
    let lock = match on.kind() {
        StoreKind::Postgres => " FOR UPDATE",
        StoreKind::Sqlite => "",
    };
    let rows: Vec<(String, String, i64)> = Sql::new(format!(
        "SELECT name, CAST(transaction_id AS TEXT), global_position FROM projection_checkpoints \
          WHERE {} ORDER BY name{lock}",
        of_follower("", 1)
    ))
    .arg(name)
    .fetch_all(on)
    .await?;
    rows.into_iter()
        .map(|(row, xid, position)| Ok((row, checkpoint_of(Some((xid, position)))?)))
        .collect()
}

/// Brings follower `name`'s checkpoint rows to the layout `names` (its segments' checkpoint
/// names, see [`crate::segments::checkpoint_names`]) in one transaction: when every row there
/// is one of those (missing ones are created at the start by their workers), nothing changes;
/// when a row of another layout is there, the missing rows start at the LOWEST checkpoint
/// of the rows there were (in commit-safe order; the start if there were none) and the rows
/// of another layout are deleted. Whatever a new segment replays was applied before by an old
/// one: read-model rows remember their last applied position (a replay is a no-op) and the
/// saga's commands are refused a second time. Returns whether the layout changed.
pub async fn ensure_segments(
    store: &Store,
    name: &str,
    names: &[String],
) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin().await?;
    let rows = lock_segment_checkpoints(&mut tx, name).await?;
    let mut have: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    have.sort_unstable();
    let mut wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    // Rows of this layout only (some may not exist yet: their workers create them at the
    // start, where they have never been): nothing to change. A row of another layout (its
    // name carries another count) means the count changed.
    if have.iter().all(|row| wanted.contains(row)) {
        tx.rollback().await?;
        return Ok(false);
    }
    let lowest = rows
        .iter()
        .map(|(_, cp)| *cp)
        .min_by_key(|cp| (cp.transaction_id, cp.position))
        .unwrap_or(Checkpoint::START);
    for (row, _) in &rows {
        if !wanted.contains(&row.as_str()) {
            delete_checkpoint(&mut tx, row).await?;
            Sql::new("DELETE FROM projection_status WHERE name = $1")
                .arg(row.as_str())
                .execute(&mut tx)
                .await?;
        }
    }
    for new in &wanted {
        if !have.contains(new) {
            write_checkpoint(&mut tx, new, lowest).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Sets EVERY checkpoint row of follower `name` (its own or its segments'; its own if it has
/// none) to `cp` inside `on`, which must hold their locks ([`lock_segment_checkpoints`]).
pub async fn write_segment_checkpoints<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
    cp: Checkpoint,
) -> Result<(), sqlx::Error> {
    let mut on = on.into();
    let rows = lock_segment_checkpoints(on.reborrow(), name).await?;
    if rows.is_empty() {
        return write_checkpoint(on, name, cp).await;
    }
    for (row, _) in rows {
        write_checkpoint(on.reborrow(), &row, cp).await?;
    }
    Ok(())
}

/// A worker process's heartbeat row (`follower_workers`), the registry of live workers that
/// share the segments.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkerRow {
    /// The worker's owner id.
    pub owner: String,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

/// Records a heartbeat of worker `owner` at `now`.
pub async fn heartbeat(store: &Store, owner: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    Sql::new(
        "INSERT INTO follower_workers (owner, heartbeat_at) VALUES ($1, $2) \
         ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .arg(owner)
    .arg(now)
    .execute(store)
    .await?;
    Ok(())
}

/// The workers whose last heartbeat is at or after `since`, by owner id; rows older than
/// `forget_before` are deleted on the way.
pub async fn live_workers(
    store: &Store,
    since: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    Sql::new("DELETE FROM follower_workers WHERE heartbeat_at < $1")
        .arg(forget_before)
        .execute(store)
        .await?;
    let rows: Vec<(String,)> =
        Sql::new("SELECT owner FROM follower_workers WHERE heartbeat_at >= $1 ORDER BY owner")
            .arg(since)
            .fetch_all(store)
            .await?;
    Ok(rows.into_iter().map(|(owner,)| owner).collect())
}

/// Removes worker `owner`'s heartbeat row (a clean stop).
pub async fn forget_worker(store: &Store, owner: &str) -> Result<(), sqlx::Error> {
    Sql::new("DELETE FROM follower_workers WHERE owner = $1")
        .arg(owner)
        .execute(store)
        .await?;
    Ok(())
}

/// Locks every checkpoint row of follower `name` inside `on` — its segments' if it is split,
/// else its own (created at the start if missing) — so that nothing applies to it meanwhile.
pub async fn lock_follower<'a>(
    on: impl Into<Executor<'a>>,
    name: &str,
) -> Result<Vec<(String, Checkpoint)>, sqlx::Error> {
    let mut on = on.into();
    let rows = lock_segment_checkpoints(on.reborrow(), name).await?;
    if rows.is_empty() {
        let cp = lock_checkpoint(on, name).await?;
        return Ok(vec![(name.to_string(), cp)]);
    }
    Ok(rows)
}

//! The bookkeeping rows of every log follower (projections, the saga, the relay), owned here:
//! `projection_status` (state, last error, owner and SQLite lease expiry) and
//! `projection_dead_letters` (events a projection parked). Their writes (by the runner, the
//! lease helper and rebuilds) and typed reads (by `projections status`).

use chrono::{DateTime, Utc};
use eventstore_config::{Sql, Store, StoredEvent};

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
pub(crate) async fn record_owner(
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
pub(crate) async fn take_lease(
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
pub(crate) async fn extend_lease(
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
pub(crate) async fn clear_owner(store: &Store, name: &str, owner: &str) -> Result<(), sqlx::Error> {
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
pub(crate) async fn lease_alive(
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

/// Parks `event` for `projection` with its error (`attempts` are added to earlier ones).
pub async fn park(
    store: &Store,
    projection: &str,
    event: &StoredEvent,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "INSERT INTO projection_dead_letters (projection, global_position, transaction_id, \
           event_type, aggregate_type, aggregate_id, error, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (projection, global_position) \
         DO UPDATE SET error = excluded.error, \
             attempts = projection_dead_letters.attempts + excluded.attempts",
    )
    .arg(projection)
    .arg(event.position)
    .arg(event.transaction_id.to_string())
    .arg(&event.event_type)
    .arg(&event.aggregate_type)
    .arg(&event.aggregate_id)
    .arg(error)
    .arg(attempts as i32)
    .execute(store)
    .await?;
    Ok(())
}

/// How many events `projection` has parked.
pub async fn dead_letters(store: &Store, projection: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) =
        Sql::new("SELECT count(*) FROM projection_dead_letters WHERE projection = $1")
            .arg(projection)
            .fetch_one(store)
            .await?;
    Ok(count)
}

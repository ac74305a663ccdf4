//! The bookkeeping rows of every log follower (projections, the saga, the relay), owned here:
//! `projection_status` (state, last error, owner and SQLite lease expiry, the version whose
//! code built the rows) and `projection_dead_letters` (events a projection or the saga parked).
//! Their writes (by the runner, the lease helper, rebuilds and the dead-letter use cases) and
//! typed reads (by `projections status` and `projections dead-letters`).

use chrono::{DateTime, Utc};
use eventstore_config::{Executor, Sql, Store, StoredEvent};

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

/// Parks `event` for `projection` with its error (`attempts` are added to earlier ones);
/// `subject` says what stopped with it (the saga: the order id).
pub async fn park<'a>(
    on: impl Into<Executor<'a>>,
    projection: &str,
    event: &StoredEvent,
    error: &str,
    attempts: u32,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "INSERT INTO projection_dead_letters (projection, global_position, transaction_id, \
           event_type, aggregate_type, aggregate_id, error, attempts, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (projection, global_position) \
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
    .arg(subject)
    .execute(on)
    .await?;
    Ok(())
}

/// One parked event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeadLetter {
    /// The follower that parked it (a projection's name, or the saga's).
    pub projection: String,
    /// The event's global position.
    pub global_position: i64,
    /// Its type.
    pub event_type: String,
    /// Its aggregate's type.
    pub aggregate_type: String,
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// The last failure.
    pub error: String,
    /// Attempts so far.
    pub attempts: i32,
    /// What stopped with it (the saga: the order id).
    pub subject: Option<String>,
    /// When it was first parked.
    pub parked_at: DateTime<Utc>,
}

const DEAD_LETTER_COLUMNS: &str = "projection, global_position, event_type, aggregate_type, \
     aggregate_id, error, attempts, subject, parked_at";

/// The parked events of `projection` (of every follower when `None`), by follower and
/// position.
pub async fn list_dead_letters(
    store: &Store,
    projection: Option<&str>,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    Sql::new(format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM projection_dead_letters \
          WHERE $1 IS NULL OR projection = $1 ORDER BY projection, global_position"
    ))
    .arg(projection)
    .fetch_all(store)
    .await
}

/// The parked event of `projection` at `position`, if any.
pub async fn dead_letter<'a>(
    on: impl Into<Executor<'a>>,
    projection: &str,
    position: i64,
) -> Result<Option<DeadLetter>, sqlx::Error> {
    Sql::new(format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM projection_dead_letters \
          WHERE projection = $1 AND global_position = $2"
    ))
    .arg(projection)
    .arg(position)
    .fetch_optional(on)
    .await
}

/// The distinct subjects (the saga: order ids) with parked events of `projection`.
pub async fn parked_subjects<'a>(
    on: impl Into<Executor<'a>>,
    projection: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = Sql::new(
        "SELECT DISTINCT subject FROM projection_dead_letters \
          WHERE projection = $1 AND subject IS NOT NULL",
    )
    .arg(projection)
    .fetch_all(on)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

/// Removes the parked event of `projection` at `position` (retried or skipped). Whether it
/// was there.
pub async fn remove_dead_letter<'a>(
    on: impl Into<Executor<'a>>,
    projection: &str,
    position: i64,
) -> Result<bool, sqlx::Error> {
    let done = Sql::new(
        "DELETE FROM projection_dead_letters WHERE projection = $1 AND global_position = $2",
    )
    .arg(projection)
    .arg(position)
    .execute(on)
    .await?;
    Ok(done == 1)
}

/// Records another failed attempt at the parked event of `projection` at `position`.
pub async fn failed_again(
    store: &Store,
    projection: &str,
    position: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "UPDATE projection_dead_letters SET attempts = attempts + 1, error = $3 \
          WHERE projection = $1 AND global_position = $2",
    )
    .arg(projection)
    .arg(position)
    .arg(error)
    .execute(store)
    .await?;
    Ok(())
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

/// How many events `projection` has parked.
pub async fn dead_letters(store: &Store, projection: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) =
        Sql::new("SELECT count(*) FROM projection_dead_letters WHERE projection = $1")
            .arg(projection)
            .fetch_one(store)
            .await?;
    Ok(count)
}

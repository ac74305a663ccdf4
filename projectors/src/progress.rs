//! The bookkeeping rows of every log follower (projections, the saga, the relay):
//! `projection_dead_letters` (events a projection or the saga parked), owned here — its writes
//! (by the runner, the saga and the dead-letter use cases) and typed reads (by `projections
//! status` and `projections dead-letters`); and, re-exported from their owner
//! `eventstore_config::followers`, the `projection_status` functions (state, last error, owner,
//! SQLite lease expiry, the version whose code built the rows) that the runner, the lease
//! helper, rebuilds and version checks call.

use chrono::{DateTime, Utc};
use eventstore_config::{Executor, Sql, Store, StoredEvent};

pub use eventstore_config::followers::{
    built_version, record_built_version, set_state, status_row, StatusRow,
};
pub(crate) use eventstore_config::followers::{
    clear_owner, extend_lease, lease_alive, record_owner, take_lease,
};

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

/// How many events `projection` has parked.
pub async fn dead_letters(store: &Store, projection: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) =
        Sql::new("SELECT count(*) FROM projection_dead_letters WHERE projection = $1")
            .arg(projection)
            .fetch_one(store)
            .await?;
    Ok(count)
}

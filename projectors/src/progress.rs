//! The bookkeeping rows of every log follower (projections, the saga, the relay):
//! `projection_dead_letters` (events a projection parked), owned here — its writes (by the
//! runner) and typed reads (by `projections status`); and, re-exported from their owner
//! `eventstore_config::followers`, the `projection_status` functions (state, last error, owner
//! and SQLite lease expiry) that the runner, the lease helper and rebuilds call.

use eventstore_config::{Sql, Store, StoredEvent};

pub(crate) use eventstore_config::followers::{
    clear_owner, extend_lease, lease_alive, record_owner, take_lease,
};
pub use eventstore_config::followers::{set_state, status_row, StatusRow};

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

//! The `aggregate_snapshots` table: the statements that read, write and forget an aggregate's
//! snapshots (folded states that bound temporal loads). The only module that names the table;
//! [`crate::temporal`] decides when to use them, [`crate::personal`] forgets an erased
//! account's.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::sql::Sql;

/// The newest snapshots of one aggregate first: `version, payload, last_recorded_at`; the
/// caller appends its bound (` AND version <= …` or ` AND last_recorded_at <= …`) and order.
pub fn select(aggregate_type: &str, id: &str) -> Sql {
    Sql::new(
        "SELECT version, payload, last_recorded_at FROM aggregate_snapshots \
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .arg(aggregate_type)
    .arg(id)
}

/// Stores a snapshot (a second one of the same version is ignored).
pub fn insert(
    aggregate_type: &str,
    id: &str,
    version: u64,
    payload: Value,
    last_recorded_at: DateTime<Utc>,
) -> Sql {
    Sql::new(
        "INSERT INTO aggregate_snapshots \
           (aggregate_type, aggregate_id, version, payload, last_recorded_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .arg(aggregate_type)
    .arg(id)
    .arg(version as i64)
    .arg(payload)
    .log_time(last_recorded_at)
}

/// Deletes every snapshot of one aggregate.
pub fn forget(aggregate_type: &str, id: &str) -> Sql {
    Sql::new("DELETE FROM aggregate_snapshots WHERE aggregate_type = $1 AND aggregate_id = $2")
        .arg(aggregate_type)
        .arg(id)
}

/// Deletes every snapshot older than its aggregate's newest (housekeeping): a command loads
/// from the newest; an older version's temporal load folds from the start instead.
pub fn prune_superseded() -> Sql {
    Sql::new(
        "DELETE FROM aggregate_snapshots \
          WHERE version < (SELECT MAX(newer.version) FROM aggregate_snapshots newer \
                            WHERE newer.aggregate_type = aggregate_snapshots.aggregate_type \
                              AND newer.aggregate_id = aggregate_snapshots.aggregate_id)",
    )
}

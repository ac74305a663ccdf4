//! The log's statements for export and import ([`crate::transfer`]): stored rows read in
//! commit-safe order exactly as stored (personal fields still sealed, metadata as written),
//! the emptiness check, and the batched multi-row `INSERT` that restores rows into an empty
//! store. Part of [`crate::log`], the owner of the `events` table.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Checkpoint, PG_COLUMNS, SQLITE_COLUMNS};
use crate::sql::{Arg, Executor, Sql};
use crate::store::Store;

/// One `events` row as stored: nothing opened, nothing decoded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredRow {
    /// Global position in this store.
    pub global_position: i64,
    /// The appending transaction's id as text (`'0'` on SQLite).
    pub transaction_id_text: String,
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The aggregate's version after this event.
    pub sequence: i64,
    /// Event type.
    pub event_type: String,
    /// Event schema version.
    pub event_version: String,
    /// The payload as stored (sealed personal fields stay sealed).
    pub payload: Value,
    /// The metadata as stored.
    pub metadata: Value,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
}

impl StoredRow {
    /// The checkpoint just after this row.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id_text.parse().unwrap_or(0),
            position: self.global_position,
        }
    }
}

/// A row to restore: everything but the global position (the target numbers rows in insert
/// order) and the transaction id (the importing transaction's).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredRow {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The aggregate's version after this event.
    pub sequence: i64,
    /// Event type.
    pub event_type: String,
    /// Event schema version.
    pub event_version: String,
    /// The payload as it was stored.
    pub payload: Value,
    /// The metadata as it was stored.
    pub metadata: Value,
    /// When it was first appended (kept to the target store's precision: milliseconds on
    /// SQLite).
    pub recorded_at: DateTime<Utc>,
}

/// Up to `limit` stored rows after `checkpoint`, in the commit-safe order of
/// [`Store::read_after`] (the same query), as stored.
pub async fn stored_after(
    store: &Store,
    checkpoint: Checkpoint,
    limit: u32,
) -> Result<Vec<StoredRow>, sqlx::Error> {
    let sql = match store {
        // The commit-safe reader: only transactions older than every running one.
        Store::Postgres(_) => Sql::new(format!(
            "SELECT {PG_COLUMNS} FROM events \
              WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
              ORDER BY events.transaction_id, global_position LIMIT $3"
        ))
        .arg(checkpoint.transaction_id.to_string())
        .arg(checkpoint.position)
        .arg(i64::from(limit.max(1))),
        Store::Sqlite(_) => Sql::new(format!(
            "SELECT {SQLITE_COLUMNS} FROM events WHERE global_position > $1 \
              ORDER BY global_position LIMIT $2"
        ))
        .arg(checkpoint.position)
        .arg(i64::from(limit.max(1))),
    };
    sql.fetch_all(store).await
}

/// How many events the store holds.
pub async fn count<'a>(on: impl Into<Executor<'a>>) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = Sql::new("SELECT COUNT(*) FROM events")
        .fetch_one(on)
        .await?;
    Ok(n)
}

/// Rows per restoring `INSERT` (9 arguments each: far below both stores' limits).
pub const RESTORE_BATCH: usize = 500;

/// One multi-row `INSERT` restoring `rows` in order (at most [`RESTORE_BATCH`]); the store
/// gives them the next global positions in that order.
pub fn restore(rows: &[RestoredRow]) -> Sql {
    let mut insert = Sql::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata, recorded_at) VALUES ",
    );
    for (i, row) in rows.iter().enumerate() {
        insert.push(if i == 0 { "(" } else { ", (" });
        insert
            .bind(&row.aggregate_type)
            .push(", ")
            .bind(&row.aggregate_id)
            .push(", ")
            .bind(row.sequence)
            .push(", ")
            .bind(&row.event_type)
            .push(", ")
            .bind(&row.event_version)
            .push(", ")
            .bind(row.payload.clone())
            .push(", ")
            .bind(row.metadata.clone())
            .push(", ")
            .bind(Arg::LogTime(Some(row.recorded_at)))
            .push(")");
    }
    insert
}

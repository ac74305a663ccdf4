//! The global event log: every event of every aggregate in commit-safe order, and one
//! aggregate's history.
//!
//! On PostgreSQL a reader that polls `global_position > last` skips an event whose transaction
//! took a lower position but committed later; this reader follows DESIGN.md's commit-safe query
//! over `(transaction_id, global_position)`, reading only transactions older than every
//! transaction still running. SQLite has one writer at a time, so positions commit in order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::metadata::EventMetadata;
use crate::store::Store;

/// A failure reading the log.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("reading the event store failed: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode into its aggregate's event type.
    #[error(
        "stored event {aggregate_type}/{aggregate_id} version {version} does not decode: {reason}"
    )]
    Corrupt {
        /// Aggregate type of the event.
        aggregate_type: String,
        /// Aggregate id of the event.
        aggregate_id: String,
        /// Its version (sequence).
        version: u64,
        /// The decoder's message.
        reason: String,
    },
}

/// One event as stored in the log, with its global position and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global position (gap-free only on SQLite; on PostgreSQL an identity, in commit-safe
    /// order together with `transaction_id`).
    pub position: i64,
    /// The appending transaction's id (`xid8`); 0 on SQLite.
    pub transaction_id: u64,
    /// Stable aggregate type name (`account`, `wallet`, …).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The aggregate's version after this event (its sequence, from 1).
    pub version: u64,
    /// Stable event type name.
    pub event_type: String,
    /// Event schema version.
    pub event_version: String,
    /// The event as stored.
    pub payload: Value,
    /// Who, why and in which request.
    pub metadata: EventMetadata,
    /// When it was appended (UTC).
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The checkpoint just after this event.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// Decodes the payload into the aggregate's event type.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, ReadError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| ReadError::Corrupt {
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            version: self.version,
            reason: e.to_string(),
        })
    }
}

/// Where a reader of the global log stands: the commit-safe pair of the last event it read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    /// `xid8` of the last event's transaction (0 on SQLite and before the first event).
    pub transaction_id: u64,
    /// Global position of the last event (0 before the first event).
    pub position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const START: Checkpoint = Checkpoint {
        transaction_id: 0,
        position: 0,
    };
}

pub(crate) const COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata, recorded_at";
/// On PostgreSQL the `xid8` is read as text (sqlx has no xid8 type) under another name: an
/// `ORDER BY transaction_id` must sort the xid8 column, not its text (where "100000" < "99999").
pub(crate) const PG_COLUMNS: &str = "global_position, transaction_id::text AS transaction_id_text, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";

/// Decodes one `events` row selected with [`COLUMNS`] (plus `transaction_id_text` on
/// PostgreSQL).
pub(crate) fn decode_row<'r, R>(row: &'r R) -> Result<StoredEvent, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Value: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    let transaction_id = match row.try_get::<Option<String>, _>("transaction_id_text") {
        Ok(Some(text)) => text.parse().map_err(|e| sqlx::Error::ColumnDecode {
            index: "transaction_id_text".into(),
            source: Box::new(e),
        })?,
        Ok(None) | Err(sqlx::Error::ColumnNotFound(_)) => 0,
        Err(e) => return Err(e),
    };
    let metadata: Value = row.try_get("metadata")?;
    Ok(StoredEvent {
        position: row.try_get("global_position")?,
        transaction_id,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        version: row.try_get::<i64, _>("sequence")? as u64,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: EventMetadata::from_json(&metadata),
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// [`Store::read_after`] on SQLite through `conn` — also a connection inside a transaction:
/// a writer holding SQLite's (database-wide) write lock must read through its own connection,
/// since every other pooled connection may be waiting for that lock. Personal fields are opened
/// through the same connection ([`crate::personal::open_events`]).
pub async fn read_after_sqlite(
    conn: &mut sqlx::SqliteConnection,
    checkpoint: Checkpoint,
    limit: u32,
) -> Result<Vec<StoredEvent>, ReadError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?"
    );
    let rows = sqlx::query(&sql)
        .bind(checkpoint.position)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&mut *conn)
        .await?;
    let mut events = rows.iter().map(decode_row).collect::<Result<Vec<_>, _>>()?;
    crate::personal::open_events(conn, &mut events).await?;
    Ok(events)
}

impl Store {
    /// Up to `limit` events after `checkpoint`, in commit-safe order: every committed event is
    /// returned exactly once over successive calls that pass the last event's checkpoint.
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let mut events = self.read_after_sealed(checkpoint, limit).await?;
        crate::personal::open_events(self, &mut events).await?;
        Ok(events)
    }

    /// [`read_after`](Self::read_after) before personal fields are opened (SQLite opens them
    /// already, through the reading connection).
    async fn read_after_sealed(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let limit = i64::from(limit.max(1));
        match self {
            Store::Postgres(pool) => {
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM events \
                      WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                      ORDER BY events.transaction_id, global_position LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(checkpoint.transaction_id.to_string())
                    .bind(checkpoint.position)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(decode_row).collect::<Result<_, _>>()?)
            }
            Store::Sqlite(pool) => {
                read_after_sqlite(&mut *pool.acquire().await?, checkpoint, limit as u32).await
            }
        }
    }

    /// Every event of one aggregate, in version order, with metadata.
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        self.aggregate_events(aggregate_type, aggregate_id, 0, Bound::Latest)
            .await
    }

    /// The checkpoint just after the event at `position` (the start for 0 or an unknown
    /// position below the head), for readers that start from a position a user gave.
    pub async fn checkpoint_at(&self, position: i64) -> Result<Checkpoint, ReadError> {
        if position <= 0 {
            return Ok(Checkpoint::START);
        }
        match self {
            Store::Postgres(pool) => {
                let xid: Option<String> = sqlx::query_scalar(
                    "SELECT transaction_id::text FROM events WHERE global_position = $1",
                )
                .bind(position)
                .fetch_optional(pool)
                .await?;
                Ok(match xid.and_then(|x| x.parse().ok()) {
                    Some(transaction_id) => Checkpoint {
                        transaction_id,
                        position,
                    },
                    None => Checkpoint::START,
                })
            }
            Store::Sqlite(_) => Ok(Checkpoint {
                transaction_id: 0,
                position,
            }),
        }
    }

    /// Every event of one business flow — those carrying `correlation_id`, plus every event of
    /// the aggregate `also` (type, id) names — in log order (which is also causal order: a
    /// caused event is appended after its cause committed).
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn correlated(
        &self,
        correlation_id: &str,
        also: Option<(&str, &str)>,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let mut events = self.correlated_sealed(correlation_id, also).await?;
        crate::personal::open_events(self, &mut events).await?;
        Ok(events)
    }

    async fn correlated_sealed(
        &self,
        correlation_id: &str,
        also: Option<(&str, &str)>,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let (also_type, also_id) = also.unwrap_or(("", ""));
        match self {
            Store::Postgres(pool) => {
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM events \
                      WHERE metadata ->> 'correlation_id' = $1 \
                         OR (aggregate_type = $2 AND aggregate_id = $3) \
                      ORDER BY global_position"
                );
                let rows = sqlx::query(&sql)
                    .bind(correlation_id)
                    .bind(also_type)
                    .bind(also_id)
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(decode_row).collect::<Result<_, _>>()?)
            }
            Store::Sqlite(pool) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM events \
                      WHERE json_extract(metadata, '$.correlation_id') = ? \
                         OR (aggregate_type = ? AND aggregate_id = ?) \
                      ORDER BY global_position"
                );
                let rows = sqlx::query(&sql)
                    .bind(correlation_id)
                    .bind(also_type)
                    .bind(also_id)
                    .fetch_all(pool)
                    .await?;
                Ok(rows.iter().map(decode_row).collect::<Result<_, _>>()?)
            }
        }
    }

    /// The newest global position (0 for an empty log).
    pub async fn head_position(&self) -> Result<i64, ReadError> {
        let sql = "SELECT COALESCE(MAX(global_position), 0) FROM events";
        Ok(match self {
            Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
            Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        })
    }

    /// The events of one aggregate after version `after`, up to `bound`, in version order.
    pub(crate) async fn aggregate_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        bound: Bound,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let mut events = self
            .aggregate_events_sealed(aggregate_type, aggregate_id, after, bound)
            .await?;
        crate::personal::open_events(self, &mut events).await?;
        Ok(events)
    }

    async fn aggregate_events_sealed(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        bound: Bound,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let after = after as i64;
        match self {
            Store::Postgres(pool) => {
                let (filter, value) = match bound {
                    Bound::Latest => ("", None),
                    Bound::Version(v) => (" AND sequence <= $4", Some(BoundValue::Int(v as i64))),
                    Bound::Time(t) => (" AND recorded_at <= $4", Some(BoundValue::Time(t))),
                };
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM events \
                      WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3{filter} \
                      ORDER BY sequence"
                );
                let query = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(after);
                let query = match value {
                    None => query,
                    Some(BoundValue::Int(v)) => query.bind(v),
                    Some(BoundValue::Time(t)) => query.bind(t),
                };
                let rows = query.fetch_all(pool).await?;
                Ok(rows.iter().map(decode_row).collect::<Result<_, _>>()?)
            }
            Store::Sqlite(pool) => {
                let (filter, value) = match bound {
                    Bound::Latest => ("", None),
                    Bound::Version(v) => (" AND sequence <= ?", Some(BoundValue::Int(v as i64))),
                    Bound::Time(t) => (" AND recorded_at <= ?", Some(BoundValue::Time(t))),
                };
                let sql = format!(
                    "SELECT {COLUMNS} FROM events \
                      WHERE aggregate_type = ? AND aggregate_id = ? AND sequence > ?{filter} \
                      ORDER BY sequence"
                );
                let query = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(after);
                let query = match value {
                    None => query,
                    Some(BoundValue::Int(v)) => query.bind(v),
                    Some(BoundValue::Time(t)) => query.bind(sqlite_time(t)),
                };
                let rows = query.fetch_all(pool).await?;
                Ok(rows.iter().map(decode_row).collect::<Result<_, _>>()?)
            }
        }
    }
}

/// How far to read an aggregate's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Every event.
    Latest,
    /// Events up to and including this version.
    Version(u64),
    /// Events recorded at or before this time.
    Time(DateTime<Utc>),
}

enum BoundValue {
    Int(i64),
    Time(DateTime<Utc>),
}

/// A time in the exact text form SQLite stores `recorded_at` in (millisecond precision, `Z`),
/// so that text comparison is time comparison.
pub(crate) fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A time in the fixed-width text form the SQLite read-model tables use (microseconds, `Z`), so
/// that text comparison is time comparison. Written by the projectors and bound by the query API:
/// one definition keeps writer and readers in step.
pub fn sqlite_read_model_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

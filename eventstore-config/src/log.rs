//! The global event log: every event of every aggregate in commit-safe order, and one
//! aggregate's history.
//!
//! On PostgreSQL a reader that polls `global_position > last` skips an event whose transaction
//! took a lower position but committed later; this reader follows DESIGN.md's commit-safe query
//! over `(transaction_id, global_position)`, reading only transactions older than every
//! transaction still running. SQLite has one writer at a time, so positions commit in order.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::metadata::EventMetadata;
use crate::sql::{Arg, Executor, Sql};
use crate::store::Store;

pub use crate::read_error::ReadError;

pub mod transfer;

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
    /// The schema version of `payload`: the event type's current version once the reader
    /// upcast it ([`domain::upcast`]); the stored one only if that failed (then
    /// [`decode`](Self::decode) and [`upcast`](Self::upcast) report why).
    pub event_version: String,
    /// The event in its type's current schema (upcast from the stored one when older).
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

    /// The payload in its event type's current schema: the one call of [`domain::upcast::upcast`]
    /// for events read from the store (borrowed as it is once the reader upcast it). An event
    /// of a schema version newer than this binary knows is [`ReadError::Upcast`].
    pub fn upcast(&self) -> Result<std::borrow::Cow<'_, Value>, ReadError> {
        domain::upcast::upcast(&self.event_type, &self.event_version, &self.payload).map_err(
            |source| ReadError::Upcast {
                position: self.position,
                aggregate_type: self.aggregate_type.clone(),
                aggregate_id: self.aggregate_id.clone(),
                version: self.version,
                source,
            },
        )
    }

    /// The event's public JSON view ([`domain::public::public_view`]): upcast, without secrets.
    /// An event of a schema version this binary does not know has none (an error naming both
    /// versions), so it is never shown by guesswork.
    pub fn public_view(&self) -> Result<Value, domain::public::PublicViewError> {
        domain::public::public_view(
            &self.aggregate_type,
            &self.event_type,
            &self.event_version,
            &self.payload,
        )
    }

    /// Decodes the payload (upcast, see [`upcast`](Self::upcast)) into the aggregate's event type.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, ReadError> {
        E::deserialize(&*self.upcast()?).map_err(|e| ReadError::Corrupt {
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

/// One `events` row, selected with [`Store::log_columns`]: decoded the same way on both stores.
#[derive(sqlx::FromRow)]
struct EventRow {
    global_position: i64,
    transaction_id_text: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
}

impl EventRow {
    /// The stored event this row holds (as stored: [`fetch_events`] opens and upcasts it).
    fn into_event(self) -> Result<StoredEvent, sqlx::Error> {
        let transaction_id =
            self.transaction_id_text
                .parse()
                .map_err(|e| sqlx::Error::ColumnDecode {
                    index: "transaction_id_text".into(),
                    source: Box::new(e),
                })?;
        Ok(StoredEvent {
            position: self.global_position,
            transaction_id,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            version: self.sequence as u64,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: self.payload,
            metadata: EventMetadata::from_json(&self.metadata),
            recorded_at: self.recorded_at,
        })
    }
}

/// Runs `sql` (selecting [`Store::log_columns`] from `events`), decodes its rows and opens
/// their personal fields ([`open_events`]) through the same executor: a writer
/// holding SQLite's write lock reads keys through its own connection too.
async fn fetch_events<'a>(
    sql: &Sql,
    on: impl Into<Executor<'a>>,
) -> Result<Vec<StoredEvent>, ReadError> {
    let mut on = on.into();
    let rows: Vec<EventRow> = sql.fetch_all(on.reborrow()).await?;
    let mut events = rows
        .into_iter()
        .map(EventRow::into_event)
        .collect::<Result<Vec<_>, _>>()?;
    open_events(on, &mut events).await?;
    events.iter_mut().for_each(upcast_in_place);
    Ok(events)
}

/// Brings an opened stored event to its type's current schema ([`domain::upcast`]): the one
/// place where a stored payload becomes an event of this binary's shape. An event this binary
/// cannot upcast keeps its stored version and payload, so that the reader that decodes it (a
/// projector, a fold) fails on it alone with [`ReadError::Upcast`] while the events around it
/// still read.
fn upcast_in_place(event: &mut StoredEvent) {
    if let Ok(std::borrow::Cow::Owned(upcast)) =
        domain::upcast::upcast(&event.event_type, &event.event_version, &event.payload)
    {
        event.payload = upcast;
        event.event_version = domain::upcast::current_version_text(&event.event_type);
    }
}

/// [`Store::read_after`] on SQLite through `on` — also a connection inside a transaction: a
/// writer holding SQLite's (database-wide) write lock must read through its own connection,
/// since every other pooled connection may be waiting for that lock. SQLite has one writer at a
/// time, so the position alone is commit-safe there.
pub async fn read_after_sqlite<'a>(
    on: impl Into<Executor<'a>>,
    checkpoint: Checkpoint,
    limit: u32,
) -> Result<Vec<StoredEvent>, ReadError> {
    let sql = Sql::new(format!(
        "SELECT {SQLITE_COLUMNS} FROM events WHERE global_position > $1 \
          ORDER BY global_position LIMIT $2"
    ))
    .arg(checkpoint.position)
    .arg(i64::from(limit.max(1)));
    fetch_events(&sql, on).await
}

/// The columns of [`EventRow`] on SQLite (which has no transaction ids).
const SQLITE_COLUMNS: &str = "global_position, '0' AS transaction_id_text, aggregate_type, \
     aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";
/// The columns of [`EventRow`] on PostgreSQL. The `xid8` is read as text (sqlx has no xid8
/// type) under another name: an `ORDER BY transaction_id` must sort the xid8 column, not its
/// text (where "100000" < "99999").
const PG_COLUMNS: &str = "global_position, transaction_id::text AS transaction_id_text, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, \
     recorded_at";

impl Store {
    /// The column list every `SELECT … FROM events` of this module reads into [`EventRow`]: the
    /// transaction id exists only on PostgreSQL (part of the commit-safe reader).
    fn log_columns(&self) -> &'static str {
        match self {
            Store::Postgres(_) => PG_COLUMNS,
            Store::Sqlite(_) => SQLITE_COLUMNS,
        }
    }

    /// An `events` row's transaction id as text (`'0'` on SQLite, which has none).
    fn transaction_id_text(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "transaction_id::text",
            Store::Sqlite(_) => "'0'",
        }
    }

    /// Up to `limit` events after `checkpoint`, in commit-safe order: every committed event is
    /// returned exactly once over successive calls that pass the last event's checkpoint.
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        match self {
            // The commit-safe reader: only transactions older than every running one.
            Store::Postgres(_) => {
                let sql = Sql::new(format!(
                    "SELECT {PG_COLUMNS} FROM events \
                      WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                      ORDER BY events.transaction_id, global_position LIMIT $3"
                ))
                .arg(checkpoint.transaction_id.to_string())
                .arg(checkpoint.position)
                .arg(i64::from(limit.max(1)));
                fetch_events(&sql, self).await
            }
            Store::Sqlite(_) => read_after_sqlite(self, checkpoint, limit).await,
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
        let xid: Option<(String,)> = Sql::new(format!(
            "SELECT {} FROM events WHERE global_position = $1",
            self.transaction_id_text()
        ))
        .arg(position)
        .fetch_optional(self)
        .await?;
        Ok(match (self, xid.and_then(|(x,)| x.parse().ok())) {
            (_, Some(transaction_id)) => Checkpoint {
                transaction_id,
                position,
            },
            // SQLite: a position alone is a checkpoint (there are no transaction ids).
            (Store::Sqlite(_), None) => Checkpoint {
                transaction_id: 0,
                position,
            },
            (Store::Postgres(_), None) => Checkpoint::START,
        })
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
        let (also_type, also_id) = also.unwrap_or(("", ""));
        let sql = Sql::new(format!(
            "SELECT {} FROM events \
              WHERE {} = $1 OR (aggregate_type = $2 AND aggregate_id = $3) \
              ORDER BY global_position",
            self.log_columns(),
            self.json_text("metadata", "correlation_id"),
        ))
        .arg(correlation_id)
        .arg(also_type)
        .arg(also_id);
        fetch_events(&sql, self).await
    }

    /// The newest global position (0 for an empty log).
    pub async fn head_position(&self) -> Result<i64, ReadError> {
        let (head,): (i64,) = Sql::new("SELECT COALESCE(MAX(global_position), 0) FROM events")
            .fetch_one(self)
            .await?;
        Ok(head)
    }

    /// The events of one aggregate after version `after`, up to `bound`, in version order.
    pub(crate) async fn aggregate_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        bound: Bound,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let mut sql = Sql::new(format!(
            "SELECT {} FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3",
            self.log_columns()
        ))
        .arg(aggregate_type)
        .arg(aggregate_id)
        .arg(after as i64);
        match bound {
            Bound::Latest => {}
            Bound::Version(v) => {
                sql.push(" AND sequence <= ").bind(v as i64);
            }
            Bound::Time(t) => {
                sql.push(" AND recorded_at <= ").bind(Arg::LogTime(Some(t)));
            }
        }
        sql.push(" ORDER BY sequence");
        fetch_events(&sql, self).await
    }

    /// Hands one aggregate's events after version `after` (up to `bound`) to `each` in order,
    /// as the rows arrive, with the payload as its stored JSON text: a fold decodes it straight
    /// into the aggregate's event type. The payloads are neither opened nor upcast: only for
    /// aggregate types without sealed fields (see `crate::personal`); the caller upcasts a row
    /// whose stored schema version is older ([`FoldRow`]).
    pub(crate) async fn for_each_aggregate_row(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        bound: Bound,
        each: impl FnMut(FoldRow) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let mut sql = Sql::new(
            "SELECT global_position, sequence, event_type, event_version, \
                    CAST(payload AS text) AS payload, recorded_at FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3",
        )
        .arg(aggregate_type)
        .arg(aggregate_id)
        .arg(after as i64);
        match bound {
            Bound::Latest => {}
            Bound::Version(v) => {
                sql.push(" AND sequence <= ").bind(v as i64);
            }
            Bound::Time(t) => {
                sql.push(" AND recorded_at <= ").bind(Arg::LogTime(Some(t)));
            }
        }
        sql.push(" ORDER BY sequence");
        sql.for_each(self, each).await
    }
}

/// One event of an aggregate as a fold reads it ([`Store::for_each_aggregate_row`]): no
/// metadata, the payload as stored text.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct FoldRow {
    /// Global position (for errors).
    pub(crate) global_position: i64,
    /// The aggregate's version after this event.
    pub(crate) sequence: i64,
    /// Stable event type name.
    pub(crate) event_type: String,
    /// The payload's stored schema version.
    pub(crate) event_version: String,
    /// The payload as stored (JSON text).
    pub(crate) payload: String,
    /// When it was appended.
    pub(crate) recorded_at: DateTime<Utc>,
}

impl Store {
    /// Whether aggregate `aggregate_id` has events after version `after` (one indexed probe).
    pub(crate) async fn has_events_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
    ) -> Result<bool, ReadError> {
        let found: Option<(i64,)> = Sql::new(
            "SELECT sequence FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 LIMIT 1",
        )
        .arg(aggregate_type)
        .arg(aggregate_id)
        .arg(after as i64)
        .fetch_optional(self)
        .await?;
        Ok(found.is_some())
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

/// A time in the fixed-width text form the SQLite read-model tables use (microseconds, `Z`):
/// [`crate::sql::sqlite_time`] under the name its older callers use.
pub use crate::sql::sqlite_time as sqlite_read_model_time;

/// Opens the sealed values of stored events ([`crate::personal::open_payloads`]).
async fn open_events<'a>(
    on: impl Into<Executor<'a>>,
    events: &mut [StoredEvent],
) -> Result<(), ReadError> {
    let payloads = events
        .iter_mut()
        .map(|e| {
            (
                e.aggregate_type.as_str(),
                e.aggregate_id.as_str(),
                &mut e.payload,
            )
        })
        .collect();
    crate::personal::open_payloads(on, payloads).await
}

// The other statements on the `events` table: this module owns it, so every reader and writer
// outside the command bus's append goes through the functions below.

/// The head of the events `INSERT` of an append ([`crate::command_bus`] adds a row per event
/// and the store's `RETURNING`): the columns `postgres-es`/`sqlite-es` write.
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO events (aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload, metadata) VALUES ";

impl Store {
    /// Appends to `sql` the condition "after checkpoint `cp` in commit-safe order" on the
    /// events table (aliased `e`, if `alias` says so): the `(transaction_id, global_position)`
    /// pair on PostgreSQL, the position alone on SQLite (one writer).
    fn push_after(&self, sql: &mut Sql, alias: &str, cp: Checkpoint) {
        match self {
            Store::Postgres(_) => {
                sql.push(&format!(
                    "({alias}transaction_id, {alias}global_position) > ("
                ))
                .bind(cp.transaction_id.to_string())
                .push("::text::xid8, ")
                .bind(cp.position)
                .push(")");
            }
            Store::Sqlite(_) => {
                sql.push(&format!("{alias}global_position > "))
                    .bind(cp.position);
            }
        }
    }

    /// How many events lie after `cp` in commit-safe order, and when the oldest of them was
    /// recorded (a follower's lag).
    pub async fn count_after(
        &self,
        cp: Checkpoint,
    ) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
        let mut sql = Sql::new("SELECT count(*), min(recorded_at) FROM events WHERE ");
        self.push_after(&mut sql, "", cp);
        sql.fetch_one(self).await
    }

    /// Whether a reader standing at `cp` has read every event at or below `position`. On
    /// PostgreSQL a lower position may have committed after the checkpoint's, so it asks the
    /// log; on SQLite the position alone says so.
    pub async fn has_read_through(
        &self,
        cp: Checkpoint,
        position: i64,
    ) -> Result<bool, sqlx::Error> {
        match self {
            Store::Postgres(_) => {
                let mut sql =
                    Sql::new("SELECT NOT EXISTS (SELECT 1 FROM events WHERE global_position <= ");
                sql.bind(position).push(" AND ");
                self.push_after(&mut sql, "", cp);
                sql.push(")");
                let (read,): (bool,) = sql.fetch_one(self).await?;
                Ok(read)
            }
            Store::Sqlite(_) => Ok(cp.position >= position),
        }
    }

    /// Where a new follower of the log starts: the newest commit-safe event's checkpoint. On
    /// PostgreSQL not the head: an event above the newest commit-safe one may still be
    /// invisible (an older transaction of the cluster runs). SQLite has one writer: the head.
    pub async fn commit_safe_head(&self) -> Result<Checkpoint, ReadError> {
        match self {
            Store::Postgres(_) => {
                let newest: Option<(String, i64)> = Sql::new(
                    "SELECT transaction_id::text, global_position FROM events \
                      WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                      ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
                )
                .fetch_optional(self)
                .await?;
                Ok(match newest {
                    Some((xid, position)) => Checkpoint {
                        transaction_id: xid.parse().unwrap_or(0),
                        position,
                    },
                    None => Checkpoint::START,
                })
            }
            Store::Sqlite(_) => {
                let head = self.head_position().await?;
                self.checkpoint_at(head).await
            }
        }
    }

    /// Where a live view of the log starts so that it misses nothing committed from now on, in
    /// one constant-time statement: on PostgreSQL just below the oldest running transaction
    /// (`(xmin - 1, ∞)`: every event of an older transaction is committed, so already readable
    /// by a read that follows; every later one comes after this checkpoint); on SQLite the
    /// head. A view reading from here may see again events a read made meanwhile showed.
    pub async fn live_start(&self) -> Result<Checkpoint, ReadError> {
        match self {
            Store::Postgres(_) => {
                let (xmin,): (String,) =
                    Sql::new("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                        .fetch_one(self)
                        .await?;
                Ok(Checkpoint {
                    transaction_id: xmin.parse::<u64>().unwrap_or(1).saturating_sub(1),
                    position: i64::MAX,
                })
            }
            Store::Sqlite(_) => self.commit_safe_head().await,
        }
    }

    /// How many events lie above global position `position` (by position alone).
    pub async fn count_above(&self, position: i64) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) = Sql::new("SELECT COUNT(*) AS n FROM events WHERE global_position > $1")
            .arg(position)
            .fetch_one(self)
            .await?;
        Ok(n)
    }

    /// The global position of an aggregate's event at `version`, if it exists.
    pub async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        let row: Option<(i64,)> = Sql::new(
            "SELECT global_position FROM events WHERE aggregate_type = $1 \
               AND aggregate_id = $2 AND sequence = $3",
        )
        .arg(aggregate_type)
        .arg(aggregate_id)
        .arg(version)
        .fetch_optional(self)
        .await?;
        Ok(row.map(|(position,)| position))
    }

    /// Up to `limit` events of one aggregate after version `after`, in version order.
    pub async fn aggregate_page(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let sql = Sql::new(format!(
            "SELECT {} FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
              ORDER BY sequence LIMIT $4",
            self.log_columns()
        ))
        .arg(aggregate_type)
        .arg(aggregate_id)
        .arg(after)
        .arg(limit);
        fetch_events(&sql, self).await
    }
}

/// A statement whose one row holds the newest version of aggregate `aggregate_type/id` as
/// `alias` (NULL when it has none), for joining into another read. `aggregate_type` is a name
/// of the code, written into the text; the id is the statement's one argument.
pub fn latest_version(aggregate_type: &'static str, aggregate_id: &str, alias: &str) -> Sql {
    debug_assert!(aggregate_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_'));
    Sql::new(format!(
        "SELECT MAX(sequence) AS {alias} FROM events \
          WHERE aggregate_type = '{aggregate_type}' AND aggregate_id = $1"
    ))
    .arg(aggregate_id)
}

/// The condition "some event at or below `position` lies beyond the checkpoint row aliased
/// `checkpoint` (or that row is missing)", in commit-safe order (PostgreSQL), for a read of the
/// checkpoint rows ([`crate::followers`]).
pub fn unread_through(position: i64, checkpoint: &str) -> Sql {
    Sql::new(format!(
        "EXISTS (SELECT 1 FROM events e WHERE e.global_position <= $1 \
           AND ({checkpoint}.name IS NULL OR (e.transaction_id, e.global_position) \
                > ({checkpoint}.transaction_id, {checkpoint}.global_position)))"
    ))
    .arg(position)
}

/// The sequence, type and payload of every stored event of one aggregate (erasure rewrites
/// them), read through `on`.
pub(crate) async fn aggregate_payloads<'a>(
    on: impl Into<Executor<'a>>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<(i64, String, Value)>, sqlx::Error> {
    Sql::new(
        "SELECT sequence, event_type, payload FROM events \
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .arg(aggregate_type)
    .arg(aggregate_id)
    .fetch_all(on)
    .await
}

/// Replaces the stored payload of one event (erasure: the one change ever made to stored
/// events).
pub(crate) async fn rewrite_payload<'a>(
    on: impl Into<Executor<'a>>,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    payload: Value,
) -> Result<(), sqlx::Error> {
    Sql::new(
        "UPDATE events SET payload = $4 \
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
    )
    .arg(aggregate_type)
    .arg(aggregate_id)
    .arg(sequence)
    .arg(payload)
    .execute(on)
    .await?;
    Ok(())
}

/// Which events a page of the log shows (every field optional; all given ones must match).
/// Each filter is served by an index (see the `events_*_position` migrations), so a keyset
/// page stays fast on a large log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this aggregate type (`account`, `order`, …).
    pub aggregate_type: Option<String>,
    /// Only this aggregate id.
    pub aggregate_id: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only events with this `actor` in their metadata.
    pub actor: Option<String>,
    /// Only events with this `correlation_id` in their metadata.
    pub correlation_id: Option<String>,
    /// Only events recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only events recorded at or before this time.
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// The `WHERE` conditions of `filter` (each preceded by ` AND `).
    fn push_log_filter(&self, sql: &mut Sql, filter: &LogFilter) {
        let text = |value: &Option<String>| value.as_deref().map(str::to_owned);
        if let Some(v) = text(&filter.aggregate_type) {
            sql.push(" AND aggregate_type = ").bind(v);
        }
        if let Some(v) = text(&filter.aggregate_id) {
            sql.push(" AND aggregate_id = ").bind(v);
        }
        if let Some(v) = text(&filter.event_type) {
            sql.push(" AND event_type = ").bind(v);
        }
        if let Some(v) = text(&filter.actor) {
            let column = self.json_text("metadata", "actor");
            sql.push(&format!(" AND {column} = ")).bind(v);
        }
        if let Some(v) = text(&filter.correlation_id) {
            let column = self.json_text("metadata", "correlation_id");
            sql.push(&format!(" AND {column} = ")).bind(v);
        }
        if let Some(t) = filter.from {
            sql.push(" AND recorded_at >= ").bind(Arg::LogTime(Some(t)));
        }
        if let Some(t) = filter.to {
            sql.push(" AND recorded_at <= ").bind(Arg::LogTime(Some(t)));
        }
    }

    /// One page of the log, newest first: up to `limit` events matching `filter` older than the
    /// event at global position `before` (keyset pagination; `None`: from the newest).
    ///
    /// Without a time range the page is in position order (walking an index that ends in the
    /// position). With one it is in `(recorded_at, global_position)` order, walking
    /// `events_recorded_at_position` from the range's end: a range that ends far in the past
    /// then starts right there instead of passing every younger event first, however many
    /// events the range holds. The cursor is still the last row's position (its time is looked
    /// up by the statement).
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn log_page(
        &self,
        filter: &LogFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let timed = filter.from.is_some() || filter.to.is_some();
        let mut sql = Sql::new(format!(
            "SELECT {} FROM events WHERE 1 = 1",
            self.log_columns()
        ));
        match (timed, before) {
            (true, Some(before)) => {
                sql.push(
                    " AND (recorded_at, global_position) < \
                     ((SELECT recorded_at FROM events WHERE global_position = ",
                )
                .bind(before)
                .push("), ")
                .bind(before)
                .push(")");
            }
            (false, Some(before)) => {
                sql.push(" AND global_position < ").bind(before);
            }
            (_, None) => {}
        }
        self.push_log_filter(&mut sql, filter);
        sql.push(if timed {
            " ORDER BY recorded_at DESC, global_position DESC LIMIT "
        } else {
            " ORDER BY global_position DESC LIMIT "
        })
        .bind(limit.max(1));
        fetch_events(&sql, self).await
    }

    /// Up to `limit` events matching `filter` after `checkpoint`, in commit-safe order (the
    /// live log): over successive calls that pass the last event's checkpoint, every committed
    /// matching event is returned exactly once, also one whose transaction took a lower
    /// position but committed later (PostgreSQL reads only transactions older than every
    /// running one, in `(transaction_id, global_position)` order; SQLite has one writer).
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn log_after(
        &self,
        filter: &LogFilter,
        checkpoint: Checkpoint,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let mut sql = Sql::new(format!("SELECT {} FROM events WHERE ", self.log_columns()));
        let order = match self {
            Store::Postgres(_) => {
                sql.push("(transaction_id, global_position) > (")
                    .bind(checkpoint.transaction_id.to_string())
                    .push("::text::xid8, ")
                    .bind(checkpoint.position)
                    .push(") AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())");
                " ORDER BY transaction_id, global_position LIMIT "
            }
            Store::Sqlite(_) => {
                sql.push("global_position > ").bind(checkpoint.position);
                " ORDER BY global_position LIMIT "
            }
        };
        self.push_log_filter(&mut sql, filter);
        sql.push(order).bind(limit.max(1));
        fetch_events(&sql, self).await
    }

    /// The newest version of an aggregate recorded at or before `at` (`None`: it had none yet).
    pub async fn version_as_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>, ReadError> {
        let (version,): (Option<i64>,) = Sql::new(
            "SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 \
               AND aggregate_id = $2 AND recorded_at <= $3",
        )
        .arg(aggregate_type)
        .arg(aggregate_id)
        .log_time(at)
        .fetch_one(self)
        .await?;
        Ok(version)
    }

    /// The newest version of an aggregate (`None`: no such aggregate).
    pub async fn last_version(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<i64>, ReadError> {
        let (version,): (Option<i64>,) = Sql::new(
            "SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .arg(aggregate_type)
        .arg(aggregate_id)
        .fetch_one(self)
        .await?;
        Ok(version)
    }
}

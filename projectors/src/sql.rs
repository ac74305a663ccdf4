//! The backend half of the projectors: transactions, loading current rows, writing a batch's
//! [`Plan`] set-based (PostgreSQL: `UNNEST` arrays, one statement per table; SQLite: prepared
//! per-row statements inside one `BEGIN IMMEDIATE` transaction), and the checkpoint calls
//! (the rows are owned by `eventstore_config::followers`, the log by `eventstore_config::log`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eventstore_config::followers;
use eventstore_config::sql::DecodeRow;
use eventstore_config::{Checkpoint, Sql, Store, StoredEvent};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row, Sqlite, Transaction};

use crate::model::{Column, FoldError, Kind, Projection, TableDef, Val};

/// One open read-model write transaction.
pub enum Tx {
    /// PostgreSQL.
    Pg(Transaction<'static, Postgres>),
    /// SQLite, begun with `BEGIN IMMEDIATE` (takes the write lock up front, so a
    /// read-then-write batch waits for the lock instead of failing with SQLITE_BUSY).
    Sqlite(Transaction<'static, Sqlite>),
}

impl<'a> From<&'a mut Tx> for eventstore_config::Executor<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        match tx {
            Tx::Pg(tx) => tx.into(),
            Tx::Sqlite(tx) => tx.into(),
        }
    }
}

/// A batch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// An event could not be applied.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A time as SQLite read-model columns store it: fixed-width text with microseconds and `Z`,
/// so that text order is time order. Readers must bind times in this form.
pub use eventstore_config::sql::sqlite_time;

impl Tx {
    /// Begins a write transaction ([`Store::begin`]).
    pub async fn begin(store: &Store) -> Result<Tx, sqlx::Error> {
        Ok(match store.begin().await? {
            eventstore_config::Tx::Postgres(tx) => Tx::Pg(tx),
            eventstore_config::Tx::Sqlite(tx) => Tx::Sqlite(tx),
        })
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(tx) => tx.rollback().await,
            Tx::Sqlite(tx) => tx.rollback().await,
        }
    }

    /// Runs one statement without parameters.
    pub async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(drop),
            Tx::Sqlite(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(drop),
        }
    }

    /// Locks the checkpoint row `name` (creating it at the start if missing) and returns it.
    /// Every writer of a projection's tables takes this lock first, so batches, takeovers and
    /// rebuild swaps serialize on it ([`followers::lock_checkpoint`]).
    pub async fn lock_checkpoint(&mut self, name: &str) -> Result<Checkpoint, sqlx::Error> {
        followers::lock_checkpoint(self, name).await
    }

    /// Sets the checkpoint row `name` ([`followers::write_checkpoint`]).
    pub async fn write_checkpoint(
        &mut self,
        name: &str,
        cp: Checkpoint,
    ) -> Result<(), sqlx::Error> {
        followers::write_checkpoint(self, name, cp).await
    }

    /// Applies `events` to `projection`'s tables (`suffix` selects the rebuild copies).
    pub async fn apply(
        &mut self,
        projection: &dyn Projection,
        events: &[StoredEvent],
        suffix: &str,
    ) -> Result<(), BatchError> {
        let keys = projection.keys(events);
        let current = match projection.entity() {
            Some(table) if !keys.is_empty() => self.load_current(table, suffix, &keys).await?,
            _ => HashMap::new(),
        };
        let plan = projection.fold(current, events)?;
        if let Some(table) = projection.entity() {
            self.close(table, suffix, &plan.closes).await?;
            self.insert(table, suffix, &plan.rows, false).await?;
            self.scrub(table, suffix, &plan.scrubs).await?;
        }
        for (table, rows) in projection.appends().iter().zip(&plan.appends) {
            self.insert(table, suffix, rows, true).await?;
        }
        Ok(())
    }

    /// Overwrites columns of every row version of the scrubbed entities (erasure).
    async fn scrub(
        &mut self,
        table: &TableDef,
        suffix: &str,
        scrubs: &[crate::model::Scrub],
    ) -> Result<(), sqlx::Error> {
        for scrub in scrubs {
            let sets: Vec<String> = (scrub.set.iter().enumerate())
                .map(|(i, (column, _))| format!("{column} = ${}", i + 2))
                .collect();
            let sql = format!(
                "UPDATE {}{suffix} SET {} WHERE {} = $1",
                table.name,
                sets.join(", "),
                table.key()
            );
            let mut query = Sql::new(sql).arg(&scrub.key);
            for (_, value) in scrub.set {
                query = query.arg(*value);
            }
            query.execute(&mut *self).await?;
        }
        Ok(())
    }

    /// Gives every row version of an entity whose CURRENT version holds the projection's
    /// scrubbed values ([`Projection::scrubbed`]: it was erased) those values too. A rebuild
    /// runs it before its swap: a batch it replayed before an erasure committed may have
    /// written earlier versions in plaintext.
    pub async fn rescrub(
        &mut self,
        projection: &dyn Projection,
        suffix: &str,
    ) -> Result<(), sqlx::Error> {
        let (Some(table), set) = (projection.entity(), projection.scrubbed()) else {
            return Ok(());
        };
        if set.is_empty() {
            return Ok(());
        }
        let each = |f: &dyn Fn(&str, usize) -> String, join: &str| {
            (set.iter().enumerate())
                .map(|(i, (column, _))| f(column, i + 1))
                .collect::<Vec<_>>()
                .join(join)
        };
        let sets = each(&|c, n| format!("{c} = ${n}"), ", ");
        let differs = each(&|c, n| format!("{c} <> ${n}"), " OR ");
        let erased = each(&|c, n| format!("e.{c} = ${n}"), " AND ");
        let (name, key) = (table.name, table.key());
        let sql = format!(
            "UPDATE {name}{suffix} SET {sets} WHERE ({differs}) AND {key} IN \
             (SELECT e.{key} FROM {name}{suffix} e WHERE e.valid_to_position IS NULL AND {erased})"
        );
        let mut query = Sql::new(sql);
        for (_, value) in set {
            query = query.arg(*value);
        }
        query.execute(&mut *self).await?;
        Ok(())
    }

    async fn load_current(
        &mut self,
        table: &TableDef,
        suffix: &str,
        keys: &[String],
    ) -> Result<HashMap<String, Vec<Val>>, sqlx::Error> {
        let columns = table.all_columns();
        let list = column_list(&columns);
        let key = table.key();
        let mut current = HashMap::new();
        match self {
            Tx::Pg(tx) => {
                let sql = format!(
                    "SELECT {list} FROM {}{suffix} WHERE {key} = ANY($1) AND valid_to_position IS NULL",
                    table.name
                );
                let rows = sqlx::query(&sql).bind(keys).fetch_all(&mut **tx).await?;
                for row in rows {
                    let vals = decode_row(&row, &columns)?;
                    current.insert(vals[0].text().unwrap_or_default().to_string(), vals);
                }
            }
            Tx::Sqlite(tx) => {
                let sql = format!(
                    "SELECT {list} FROM {}{suffix} WHERE {key} IN (SELECT value FROM json_each(?)) \
                       AND valid_to_position IS NULL",
                    table.name
                );
                let json = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
                let rows = sqlx::query(&sql).bind(json).fetch_all(&mut **tx).await?;
                for row in rows {
                    let vals = decode_row(&row, &columns)?;
                    current.insert(vals[0].text().unwrap_or_default().to_string(), vals);
                }
            }
        }
        Ok(current)
    }

    async fn close(
        &mut self,
        table: &TableDef,
        suffix: &str,
        closes: &[crate::model::Close],
    ) -> Result<(), sqlx::Error> {
        if closes.is_empty() {
            return Ok(());
        }
        let key = table.key();
        let name = table.name;
        match self {
            Tx::Pg(tx) => {
                let sql = format!(
                    "UPDATE {name}{suffix} AS t SET valid_to_position = v.p, valid_to = v.at \
                       FROM UNNEST($1::text[], $2::int8[], $3::timestamptz[]) AS v(k, p, at) \
                      WHERE t.{key} = v.k AND t.valid_to_position IS NULL"
                );
                let keys: Vec<&str> = closes.iter().map(|c| c.key.as_str()).collect();
                let positions: Vec<i64> = closes.iter().map(|c| c.position).collect();
                let times: Vec<DateTime<Utc>> = closes.iter().map(|c| c.at).collect();
                sqlx::query(&sql)
                    .bind(keys)
                    .bind(positions)
                    .bind(times)
                    .execute(&mut **tx)
                    .await?;
            }
            Tx::Sqlite(tx) => {
                let sql = format!(
                    "UPDATE {name}{suffix} SET valid_to_position = ?, valid_to = ? \
                      WHERE {key} = ? AND valid_to_position IS NULL"
                );
                for c in closes {
                    sqlx::query(&sql)
                        .bind(c.position)
                        .bind(sqlite_time(c.at))
                        .bind(&c.key)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn insert(
        &mut self,
        table: &TableDef,
        suffix: &str,
        rows: &[Vec<Val>],
        ignore_duplicates: bool,
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns = table.all_columns();
        let list = column_list(&columns);
        let name = table.name;
        let conflict = if ignore_duplicates {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        };
        match self {
            Tx::Pg(tx) => {
                let arrays: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("${}::{}[]", i + 1, pg_type(c.kind)))
                    .collect();
                let sql = format!(
                    "INSERT INTO {name}{suffix} ({list}) SELECT * FROM UNNEST({}){conflict}",
                    arrays.join(", ")
                );
                let mut query = sqlx::query(&sql);
                for (i, c) in columns.iter().enumerate() {
                    query = bind_pg_column(query, c.kind, rows, i);
                }
                query.execute(&mut **tx).await?;
            }
            Tx::Sqlite(tx) => {
                let marks = vec!["?"; columns.len()].join(", ");
                let sql = format!("INSERT INTO {name}{suffix} ({list}) VALUES ({marks}){conflict}");
                for row in rows {
                    let mut query = sqlx::query(&sql);
                    for val in row {
                        query = match val {
                            Val::Text(s) => query.bind(s.clone()),
                            Val::OptText(s) => query.bind(s.clone()),
                            Val::Int(i) => query.bind(*i),
                            Val::OptInt(i) => query.bind(*i),
                            Val::Bool(b) => query.bind(*b),
                            Val::Time(t) => query.bind(sqlite_time(*t)),
                            Val::OptTime(t) => query.bind(t.map(sqlite_time)),
                        };
                    }
                    query.execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }
}

/// `a, b, c`.
pub fn column_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn pg_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::OptText => "text",
        Kind::Int | Kind::OptInt => "int8",
        Kind::Bool => "bool",
        Kind::Time | Kind::OptTime => "timestamptz",
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_pg_column<'q>(query: PgQuery<'q>, kind: Kind, rows: &[Vec<Val>], i: usize) -> PgQuery<'q> {
    match kind {
        Kind::Text | Kind::OptText => {
            let v: Vec<Option<String>> = rows
                .iter()
                .map(|r| r[i].text().map(str::to_string))
                .collect();
            query.bind(v)
        }
        Kind::Int | Kind::OptInt => {
            let v: Vec<Option<i64>> = rows.iter().map(|r| r[i].int()).collect();
            query.bind(v)
        }
        Kind::Bool => {
            let v: Vec<bool> = rows
                .iter()
                .map(|r| matches!(r[i], Val::Bool(true)))
                .collect();
            query.bind(v)
        }
        Kind::Time | Kind::OptTime => {
            let v: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r[i].time()).collect();
            query.bind(v)
        }
    }
}

/// Decodes a row (of either store) selected with `columns`. SQLite's fixed-width time text
/// decodes as a time like PostgreSQL's `timestamptz`.
pub fn decode_row<R: Row>(row: &R, columns: &[Column]) -> Result<Vec<Val>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(match c.kind {
                Kind::Text => Val::Text(row.try_get(i)?),
                Kind::OptText => Val::OptText(row.try_get(i)?),
                Kind::Int => Val::Int(row.try_get(i)?),
                Kind::OptInt => Val::OptInt(row.try_get(i)?),
                Kind::Bool => Val::Bool(row.try_get(i)?),
                Kind::Time => Val::Time(row.try_get(i)?),
                Kind::OptTime => Val::OptTime(row.try_get(i)?),
            })
        })
        .collect()
}

/// The checkpoint row `name` (the start if there is none): [`followers::checkpoint`].
pub async fn read_checkpoint(store: &Store, name: &str) -> Result<Checkpoint, sqlx::Error> {
    followers::checkpoint(store, name).await
}

/// How many events lie after `cp` in commit-safe order, and when the oldest of them was
/// recorded: [`Store::count_after`].
pub async fn events_after(
    store: &Store,
    cp: Checkpoint,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    store.count_after(cp).await
}

/// Decodes the rows of [`dump`] with their table's column kinds.
struct Columns<'c>(&'c [Column]);

impl DecodeRow for Columns<'_> {
    type Output = Vec<Val>;

    fn postgres(&self, row: &PgRow) -> Result<Vec<Val>, sqlx::Error> {
        decode_row(row, self.0)
    }

    fn sqlite(&self, row: &SqliteRow) -> Result<Vec<Val>, sqlx::Error> {
        decode_row(row, self.0)
    }
}

/// Every row of `table` (with `suffix`), all columns, in a stable order. For comparisons in
/// tests and the crash test.
pub async fn dump(
    store: &Store,
    table: &TableDef,
    suffix: &str,
) -> Result<Vec<Vec<Val>>, sqlx::Error> {
    let columns = table.all_columns();
    let sql = Sql::new(format!(
        "SELECT {} FROM {}{suffix} ORDER BY {}",
        column_list(&columns),
        table.name,
        table.order_by()
    ));
    sql.fetch_all_with(store, &Columns(&columns)).await
}

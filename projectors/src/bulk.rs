//! The rebuild's write path: a replay from position zero needs no reads of its own tables, so it
//! keeps each entity's current row version in memory and writes every row version exactly
//! once — when a later event closes it, or at the end while still open — instead of the live
//! path's read-current / close-by-UPDATE / insert round trips. On PostgreSQL the rows go in with
//! `COPY` into copies whose indexes and key constraints are dropped for the load and built once
//! afterwards.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::SecondsFormat;
use eventstore_config::{Store, StoredEvent};
use sqlx::Row;

use crate::model::{FoldError, Projection, TableDef, Val};
use crate::sql::{column_list, Tx};

/// Offsets, after an entity table's state columns, of `valid_to_position` and `valid_to` in
/// [`HISTORY_COLUMNS`](crate::model::HISTORY_COLUMNS).
const VALID_TO_POSITION: usize = 3;
const VALID_TO: usize = 5;

/// A projection's replay state: the open (current) row version of every entity seen so far.
pub(crate) struct Replay {
    width: usize,
    open: HashMap<String, Vec<Val>>,
}

/// Rows a replay step finished: per table of the projection (entity table first, if any).
pub(crate) type Finished = Vec<(&'static TableDef, Vec<Vec<Val>>)>;

impl Replay {
    pub(crate) fn new(projection: &dyn Projection) -> Self {
        Self {
            width: projection.entity().map(|t| t.columns.len()).unwrap_or(0),
            open: HashMap::new(),
        }
    }

    /// Folds `events`; returns the row versions that are final (closed versions and append rows).
    pub(crate) fn step(
        &mut self,
        projection: &dyn Projection,
        events: &[StoredEvent],
    ) -> Result<Finished, FoldError> {
        let mut taken = HashMap::new();
        for key in projection.keys(events) {
            if let Some(row) = self.open.remove(&key) {
                taken.insert(key, row);
            }
        }
        let mut plan = projection.fold(taken.clone(), events)?;
        let mut finished = Finished::new();
        if let Some(table) = projection.entity() {
            // Erasure: the entity's versions still in memory are overwritten here (a replay
            // reads an erased account's events already erased).
            for scrub in std::mem::take(&mut plan.scrubs) {
                let rows = (plan.rows.iter_mut())
                    .chain(taken.get_mut(&scrub.key))
                    .filter(|row| row[0].text() == Some(scrub.key.as_str()));
                for row in rows {
                    for (column, value) in scrub.set {
                        if let Some(i) = table.columns.iter().position(|c| c.name == *column) {
                            row[i] = Val::Text((*value).to_owned());
                        }
                    }
                }
            }
            let mut rows = Vec::new();
            for close in plan.closes {
                if let Some(mut row) = taken.remove(&close.key) {
                    row[self.width + VALID_TO_POSITION] = Val::OptInt(Some(close.position));
                    row[self.width + VALID_TO] = Val::OptTime(Some(close.at));
                    rows.push(row);
                }
            }
            self.open.extend(taken);
            for row in plan.rows {
                if row[self.width + VALID_TO_POSITION].int().is_some() {
                    rows.push(row);
                } else if let Some(key) = row[0].text() {
                    self.open.insert(key.to_string(), row);
                }
            }
            finished.push((table, rows));
        }
        for (table, rows) in projection.appends().iter().zip(plan.appends) {
            finished.push((table, rows));
        }
        Ok(finished)
    }

    /// The open row versions, ending the replay.
    pub(crate) fn finish(self, projection: &dyn Projection) -> Finished {
        projection
            .entity()
            .map(|table| (table, self.open.into_values().collect()))
            .into_iter()
            .collect()
    }
}

/// Begins a replay transaction. On PostgreSQL its commit does not wait for the WAL flush
/// (`synchronous_commit = off`): the copies are thrown away and replayed again if the rebuild
/// does not finish, and the swap's own (synchronous) commit is flushed after every earlier one.
pub(crate) async fn begin(store: &Store) -> Result<Tx, sqlx::Error> {
    let mut tx = Tx::begin(store).await?;
    if let Tx::Pg(t) = &mut tx {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **t)
            .await?;
    }
    Ok(tx)
}

/// Writes finished rows into the rebuild copies (`suffix`): `COPY` on PostgreSQL, the live
/// insert path on SQLite.
pub(crate) async fn write(
    tx: &mut Tx,
    finished: &Finished,
    suffix: &str,
) -> Result<(), sqlx::Error> {
    for (table, rows) in finished {
        if rows.is_empty() {
            continue;
        }
        match tx {
            Tx::Pg(t) => {
                let columns = table.all_columns();
                let mut copy = t
                    .copy_in_raw(&format!(
                        "COPY {}{suffix} ({}) FROM STDIN",
                        table.name,
                        column_list(&columns)
                    ))
                    .await?;
                copy.send(copy_text(rows).into_bytes()).await?;
                copy.finish().await?;
            }
            Tx::Sqlite(_) => tx.insert(table, suffix, rows, !table.history).await?,
        }
    }
    Ok(())
}

/// Rows in `COPY ... FROM STDIN` text format.
fn copy_text(rows: &[Vec<Val>]) -> String {
    let mut out = String::with_capacity(rows.len() * 128);
    for row in rows {
        for (i, val) in row.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            match val {
                Val::Text(s) | Val::OptText(Some(s)) => escape(&mut out, s),
                Val::Int(n) | Val::OptInt(Some(n)) => {
                    let _ = write!(out, "{n}");
                }
                Val::Bool(b) => out.push(if *b { 't' } else { 'f' }),
                Val::Time(t) | Val::OptTime(Some(t)) => {
                    out.push_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
                }
                Val::OptText(None) | Val::OptInt(None) | Val::OptTime(None) => out.push_str("\\N"),
            }
        }
        out.push('\n');
    }
    out
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// How to build a PostgreSQL copy's indexes again after its load.
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    /// The copy.
    table: String,
    /// `CREATE [UNIQUE] INDEX` statements, key-constraint indexes included; independent of each
    /// other, so they may run concurrently.
    indexes: Vec<String>,
    /// `ALTER TABLE ... ADD CONSTRAINT ... USING INDEX`, after the indexes.
    constraints: Vec<String>,
}

/// Drops the key constraints and indexes of the PostgreSQL copy `table` (so the load maintains
/// none) and returns how to build them again. SQLite copies keep theirs.
pub(crate) async fn drop_indexes(store: &Store, table: &str) -> Result<Indexes, sqlx::Error> {
    let mut saved = Indexes {
        table: table.to_string(),
        ..Indexes::default()
    };
    let Store::Postgres(pool) = store else {
        return Ok(saved);
    };
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), \
                c.conname::text, c.contype::text \
           FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid \
          WHERE i.indrelid = $1::regclass ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let (index, definition): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let constraint: Option<(String, String)> = row
            .try_get::<Option<String>, _>(2)?
            .zip(row.try_get::<Option<String>, _>(3)?);
        let drop = match &constraint {
            Some((name, kind)) => {
                let kind = match kind.as_str() {
                    "p" => "PRIMARY KEY",
                    "u" => "UNIQUE",
                    // Other constraints (exclusion) cannot be added from an index: keep them.
                    _ => continue,
                };
                saved.constraints.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} {kind} USING INDEX {index}"
                ));
                format!("ALTER TABLE {table} DROP CONSTRAINT {name}")
            }
            None => format!("DROP INDEX {index}"),
        };
        sqlx::query(&drop).execute(&mut *tx).await?;
        saved.indexes.push(definition);
    }
    tx.commit().await?;
    Ok(saved)
}

/// Memory each index build may sort in before spilling to disk (the server's default is
/// usually 64 MB, which a million-row history table outgrows).
const INDEX_BUILD_MEMORY: &str = "256MB";

/// Index builds running at once.
const INDEX_BUILDS: usize = 3;

/// Builds the indexes [`drop_indexes`] dropped — every table's concurrently, a few at a time,
/// the biggest tables' first — then adds the key constraints and refreshes the statistics.
pub(crate) async fn build_indexes(store: &Store, tables: Vec<Indexes>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use futures::{StreamExt, TryStreamExt};
    let Store::Postgres(pool) = store else {
        return Ok(());
    };
    let mut sized = Vec::new();
    for table in tables {
        let pages: i64 = sqlx::query_scalar("SELECT pg_relation_size($1::regclass) / 8192")
            .bind(&table.table)
            .fetch_one(pool)
            .await?;
        sized.push((pages, table));
    }
    sized.sort_by_key(|(pages, _)| std::cmp::Reverse(*pages));
    // Owned (table, statement) pairs: a stream of borrowed ones makes this future unprovably
    // `Send`, and a version rebuild runs it in a spawned task.
    let statements: Vec<(String, String)> = sized
        .iter()
        .flat_map(|(_, t)| t.indexes.iter().map(|s| (t.table.clone(), s.clone())))
        .collect();
    futures::stream::iter(statements)
        .map(|(table, statement)| async move {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&statement).execute(&mut *tx).await?;
            tx.commit()
                .await
                .map_err(anyhow::Error::from)
                .with_context(|| format!("building an index of {table}"))
        })
        .buffer_unordered(INDEX_BUILDS)
        .try_collect::<Vec<()>>()
        .await?;
    for (_, table) in &sized {
        let mut tx = pool.begin().await?;
        for statement in &table.constraints {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query(&format!("ANALYZE {}", table.table))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_closing_offsets_name_the_valid_to_columns() {
        use crate::model::HISTORY_COLUMNS;
        assert_eq!(HISTORY_COLUMNS[VALID_TO_POSITION].name, "valid_to_position");
        assert_eq!(HISTORY_COLUMNS[VALID_TO].name, "valid_to");
    }

    #[test]
    fn copy_text_escapes_separators_and_writes_nulls_as_backslash_n() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 4, 5, 6).unwrap();
        let text = copy_text(&[vec![
            Val::Text("a\tb\\c\nd\re".into()),
            Val::OptText(None),
            Val::Int(-7),
            Val::OptInt(Some(3)),
            Val::Bool(true),
            Val::Time(t),
            Val::OptTime(None),
        ]]);
        assert_eq!(
            text,
            "a\\tb\\\\c\\nd\\re\t\\N\t-7\t3\tt\t2026-11-22T04:05:06.000000Z\t\\N\n"
        );
    }
}

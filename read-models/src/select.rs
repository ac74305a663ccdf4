//! Typed reads: a [`Select`] is one statement (written once for both stores) and the record
//! type its rows decode into. The read-model modules build them; callers run them directly
//! ([`Select::fetch_all`], [`Select::fetch_optional`]) or through their own runner (query-api
//! counts and budgets its statements) with [`Select::sql`] and [`Record::decode`].

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use eventstore_config::{Executor, Sql};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;

/// A read of the read models failed: the database, or a stored row that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The database failed.
    #[error("reading the read models failed: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode (`table/key`, why).
    #[error("read-model row {0} does not decode: {1}")]
    Corrupt(String, String),
}

/// What a read yields: decoded from a database row ([`Record::Raw`]).
pub trait Record: Sized + Send {
    /// The row as the database returns it.
    type Raw: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin;

    /// The record from its row.
    fn decode(raw: Self::Raw) -> Result<Self, ReadModelError>;
}

/// Implements [`Record`] for row types that are records as they are.
macro_rules! plain_record {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::select::Record for $t {
            type Raw = $t;

            fn decode(raw: $t) -> Result<$t, $crate::select::ReadModelError> {
                Ok(raw)
            }
        })*
    };
}
pub(crate) use plain_record;

/// One statement and the record type its rows decode into.
#[derive(Debug, Clone)]
pub struct Select<T> {
    sql: Sql,
    record: PhantomData<fn() -> T>,
}

impl<T: Record> Select<T> {
    /// A read of `T`s with `sql`.
    pub fn new(sql: Sql) -> Self {
        Self {
            sql,
            record: PhantomData,
        }
    }

    /// The statement.
    pub fn sql(&self) -> &Sql {
        &self.sql
    }

    /// Every record.
    pub async fn fetch_all<'a>(
        &self,
        on: impl Into<Executor<'a>>,
    ) -> Result<Vec<T>, ReadModelError> {
        self.sql
            .fetch_all::<T::Raw>(on)
            .await?
            .into_iter()
            .map(T::decode)
            .collect()
    }

    /// The first record, if any.
    pub async fn fetch_optional<'a>(
        &self,
        on: impl Into<Executor<'a>>,
    ) -> Result<Option<T>, ReadModelError> {
        self.sql
            .fetch_optional::<T::Raw>(on)
            .await?
            .map(T::decode)
            .transpose()
    }
}

/// ` AND <versioned row filter>`: the current row version (`as_of: None`), or the one valid
/// at `as_of` (`valid_from <= as_of < valid_to`). Both are served by indexes.
pub fn valid_at(sql: &mut Sql, as_of: Option<DateTime<Utc>>) -> &mut Sql {
    match as_of {
        None => sql.push(" AND valid_to_position IS NULL"),
        Some(t) => sql
            .push(" AND valid_from <= ")
            .bind(t)
            .push(" AND (valid_to IS NULL OR valid_to > ")
            .bind(t)
            .push(")"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_as_of_filter_binds_the_time_twice_after_the_earlier_placeholders() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE a = ");
        sql.bind("x");
        valid_at(&mut sql, Some(Utc::now()));
        assert_eq!(
            sql.text(),
            "SELECT 1 FROM t WHERE a = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $3)"
        );
        assert_eq!(sql.args().len(), 3);
    }

    #[test]
    fn a_current_filter_binds_nothing() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE TRUE");
        valid_at(&mut sql, None);
        assert!(sql.text().ends_with(" AND valid_to_position IS NULL"));
        assert!(sql.args().is_empty());
    }
}

//! Runtime-checked SQL over either store: one query text with `?` placeholders (rewritten to
//! `$n` for PostgreSQL), typed arguments, and times bound in each store's stored form.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use eventstore_config::Store;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;

/// One bound value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(value.to_owned())
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Text(value)
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl From<DateTime<Utc>> for Arg {
    fn from(value: DateTime<Utc>) -> Self {
        Arg::Time(value)
    }
}

/// A time as the SQLite read-model tables store it (fixed-width text with microseconds, so
/// text order is time order), defined once in `eventstore-config` for the projectors and us.
pub(crate) use eventstore_config::log::sqlite_read_model_time as sqlite_time;

/// Read-model statements run through [`Sql`] since the process started.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// How many read-model SQL statements the query API has run in this process (DataLoaders keep
/// a page's count constant; tests count with it).
pub fn statements_run() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

/// A query being built: text and arguments stay in step because [`Sql::bind`] writes the
/// placeholder and records its value together.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (never user input).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.text.push('?');
        self.args.push(value.into());
        self
    }

    /// ` AND <versioned row filter>`: the current row version, or the one valid at `as_of`.
    pub(crate) fn valid_at(&mut self, as_of: Option<DateTime<Utc>>) -> &mut Self {
        match as_of {
            None => self.push(" AND valid_to_position IS NULL"),
            Some(t) => self
                .push(" AND valid_from <= ")
                .bind(t)
                .push(" AND (valid_to IS NULL OR valid_to > ")
                .bind(t)
                .push(")"),
        }
    }

    /// ` AND column IN (?, ?, …)` (`FALSE` for an empty list).
    pub(crate) fn in_list<'a>(
        &mut self,
        column: &str,
        values: impl IntoIterator<Item = &'a String>,
    ) -> &mut Self {
        let mut values = values.into_iter().peekable();
        if values.peek().is_none() {
            return self.push(" AND 1 = 0");
        }
        self.push(" AND ").push(column).push(" IN (");
        let mut first = true;
        for value in values {
            if !first {
                self.push(", ");
            }
            first = false;
            self.bind(value.clone());
        }
        self.push(")")
    }

    fn postgres_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 8);
        let mut n = 0;
        for c in self.text.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Every row.
    pub(crate) async fn fetch_all<T>(&self, store: &Store) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        match store {
            Store::Postgres(pool) => {
                let text = self.postgres_text();
                let mut query = sqlx::query_as::<_, T>(&text);
                for arg in &self.args {
                    query = match arg {
                        Arg::Text(s) => query.bind(s.clone()),
                        Arg::Int(i) => query.bind(*i),
                        Arg::Time(t) => query.bind(*t),
                    };
                }
                query.fetch_all(pool).await
            }
            Store::Sqlite(pool) => {
                let mut query = sqlx::query_as::<_, T>(&self.text);
                for arg in &self.args {
                    query = match arg {
                        Arg::Text(s) => query.bind(s.clone()),
                        Arg::Int(i) => query.bind(*i),
                        Arg::Time(t) => query.bind(sqlite_time(*t)),
                    };
                }
                query.fetch_all(pool).await
            }
        }
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<T>(&self, store: &Store) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        Ok(self.fetch_all(store).await?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_in_bind_order() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE a = ");
        sql.bind("x").valid_at(Some(Utc::now()));
        assert_eq!(
            sql.postgres_text(),
            "SELECT 1 FROM t WHERE a = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $3)"
        );
        assert_eq!(sql.args.len(), 3);
    }

    #[test]
    fn an_empty_in_list_matches_nothing() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE TRUE");
        sql.in_list("id", &Vec::<String>::new());
        assert!(sql.text.ends_with(" AND 1 = 0"));
    }

    #[test]
    fn sqlite_times_have_fixed_width_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T01:02:03.4Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(sqlite_time(t), "2026-11-22T01:02:03.400000Z");
    }
}

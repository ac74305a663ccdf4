//! Runtime-checked SQL over either store: one query text with `?` placeholders (rewritten to
//! `$n` for PostgreSQL), typed arguments, and times bound in each store's stored form.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use eventstore_config::Store;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow};

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

/// The newest version of a subject's policy set (NULL when it has none), as `policy_head__`;
/// the subject's placeholder follows.
pub(crate) const POLICY_HEAD: &str = "SELECT MAX(sequence) AS policy_head__ FROM events \
     WHERE aggregate_type = 'policy_set' AND aggregate_id = ";

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
        let _slot = crate::budget::admit().await?;
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        match store {
            Store::Postgres(pool) => {
                sqlx::query_as_with::<_, T, _>(&self.postgres_text(), self.postgres_args()?)
                    .fetch_all(pool)
                    .await
            }
            Store::Sqlite(pool) => {
                sqlx::query_as_with::<_, T, _>(&self.text, self.sqlite_args()?)
                    .fetch_all(pool)
                    .await
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

    /// The first row, if any, and the newest version of `subject`'s policy set (0 when it has
    /// none), read in one statement: one snapshot, one round trip.
    async fn fetch_optional_with_policy_head<T>(
        &self,
        store: &Store,
        subject: &str,
    ) -> Result<(Option<T>, i64), sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        // The policy head is one row; the read is LEFT JOINed to it, so an empty read still
        // answers with the head (`row__` tells a row from none).
        let mut sql = Sql::new("SELECT h.policy_head__, r.* FROM (");
        sql.push(POLICY_HEAD)
            .bind(subject)
            .push(") h LEFT JOIN (SELECT 1 AS row__, i.* FROM (")
            .push(&self.text)
            .push(") i LIMIT 1) r ON 1 = 1");
        sql.args.extend(self.args.iter().cloned());
        let _slot = crate::budget::admit().await?;
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        fn split<R: sqlx::Row, T: for<'r> FromRow<'r, R>>(
            row: Option<R>,
        ) -> Result<(Option<T>, i64), sqlx::Error>
        where
            for<'c> &'c str: sqlx::ColumnIndex<R>,
            Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            Option<i32>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            let Some(row) = row else {
                return Err(sqlx::Error::RowNotFound);
            };
            let head = row.try_get::<Option<i64>, _>("policy_head__")?.unwrap_or(0);
            let found = match row.try_get::<Option<i32>, _>("row__")? {
                Some(_) => Some(T::from_row(&row)?),
                None => None,
            };
            Ok((found, head))
        }
        match store {
            Store::Postgres(pool) => split(
                sqlx::query_with(&sql.postgres_text(), sql.postgres_args()?)
                    .fetch_optional(pool)
                    .await?,
            ),
            Store::Sqlite(pool) => split(
                sqlx::query_with(&sql.text, sql.sqlite_args()?)
                    .fetch_optional(pool)
                    .await?,
            ),
        }
    }

    fn postgres_args(&self) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(s) => args.add(s.as_str()),
                Arg::Int(i) => args.add(*i),
                Arg::Time(t) => args.add(*t),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }

    fn sqlite_args(&self) -> Result<SqliteArguments<'static>, sqlx::Error> {
        let mut args = SqliteArguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(s) => args.add(s.clone()),
                Arg::Int(i) => args.add(*i),
                Arg::Time(t) => args.add(sqlite_time(*t)),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

/// Where a single-row read runs: the store alone, or the store plus the newest version of
/// one subject's policy set, read in the same statement so that authorizing the answer costs
/// no round trip of its own.
pub(crate) struct Reader<'a> {
    store: &'a Store,
    policy_subject: Option<&'a str>,
    policy_head: OnceLock<i64>,
}

impl<'a> Reader<'a> {
    /// Reads from `store` only.
    pub(crate) fn plain(store: &'a Store) -> Self {
        Self {
            store,
            policy_subject: None,
            policy_head: OnceLock::new(),
        }
    }

    /// Reads from `store` and, with each read, `subject`'s policy-set version.
    pub(crate) fn with_policy_head(store: &'a Store, subject: &'a str) -> Self {
        Self {
            policy_subject: Some(subject),
            ..Self::plain(store)
        }
    }

    /// The first row of `sql`, if any.
    pub(crate) async fn fetch_optional<T>(&self, sql: &Sql) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        match self.policy_subject {
            None => sql.fetch_optional(self.store).await,
            Some(subject) => {
                let (row, head) = sql
                    .fetch_optional_with_policy_head(self.store, subject)
                    .await?;
                let _ = self.policy_head.set(head);
                Ok(row)
            }
        }
    }

    /// The policy-set version read with the first read, if one ran.
    pub(crate) fn policy_head(&self) -> Option<i64> {
        self.policy_head.get().copied()
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

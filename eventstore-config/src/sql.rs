//! SQL written once for both stores. A statement is one text with `$1`, `$2`, … placeholders
//! (PostgreSQL's form; sqlx's SQLite driver binds `$N` by number too) and a list of typed
//! arguments ([`Arg`]); [`Sql`] runs it on a [`Store`]'s pool or inside a [`Tx`]. Rows decode
//! into any type that implements `FromRow` for both stores' rows (derive `sqlx::FromRow`, or
//! use tuples).
//!
//! Times are the one value the stores keep differently: PostgreSQL has `timestamptz`, SQLite
//! fixed-width UTC text. [`Arg::Time`] binds a read-model time (microseconds, the format of
//! every read-model and bookkeeping table); [`Arg::LogTime`] binds a time compared with the
//! events table's `recorded_at` (milliseconds, the format sqlite-es's schema writes). On
//! PostgreSQL both bind a `timestamptz`. Bind "now" from Rust (`Utc::now()`), never with the
//! SQL dialect's own clock function, so that a statement stays the same text on both stores.
//!
//! Where the stores truly differ, code still matches on [`Store`]; those places are listed in
//! the crate's top documentation.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow};

use crate::store::{Store, StoreKind};

/// One bound value. Each variant holds an `Option`: `None` binds a typed NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Text.
    Text(Option<String>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A boolean (an integer 0/1 on SQLite).
    Bool(Option<bool>),
    /// A floating-point number.
    Float(Option<f64>),
    /// Bytes (`bytea` / `blob`).
    Bytes(Option<Vec<u8>>),
    /// A JSON document (`jsonb`/`json` on PostgreSQL, text on SQLite).
    Json(Option<serde_json::Value>),
    /// A time in a read-model or bookkeeping table (SQLite: `YYYY-MM-DDTHH:MM:SS.ffffffZ`).
    Time(Option<DateTime<Utc>>),
    /// A time compared with `events.recorded_at` (SQLite: `YYYY-MM-DDTHH:MM:SS.fffZ`).
    LogTime(Option<DateTime<Utc>>),
}

macro_rules! arg_from {
    ($variant:ident, $t:ty, $conv:expr) => {
        impl From<$t> for Arg {
            fn from(value: $t) -> Self {
                #[allow(clippy::redundant_closure_call)]
                Arg::$variant(Some(($conv)(value)))
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(value: Option<$t>) -> Self {
                #[allow(clippy::redundant_closure_call)]
                Arg::$variant(value.map($conv))
            }
        }
    };
}

arg_from!(Text, String, |v| v);
arg_from!(Text, &str, |v: &str| v.to_owned());
arg_from!(Text, &String, |v: &String| v.clone());
arg_from!(Text, uuid::Uuid, |v: uuid::Uuid| v.to_string());
arg_from!(Int, i64, |v| v);
arg_from!(Int, i32, i64::from);
arg_from!(Int, u32, i64::from);
arg_from!(Bool, bool, |v| v);
arg_from!(Float, f64, |v| v);
arg_from!(Bytes, Vec<u8>, |v| v);
arg_from!(Bytes, &[u8], |v: &[u8]| v.to_vec());
arg_from!(Json, serde_json::Value, |v| v);
arg_from!(Time, DateTime<Utc>, |v| v);

/// A time as SQLite's read-model and bookkeeping tables store it: fixed-width UTC text with
/// microseconds, so that text order is time order.
pub fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A time as SQLite's events table stores `recorded_at`: UTC text with milliseconds.
pub fn sqlite_log_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A statement and its arguments, kept in step.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

/// Runs `$body` with `$args` built for the store of `$on` (a [`Store`] or a [`Tx`]), naming
/// the executor `$exec`.
macro_rules! on_either {
    ($sql:expr, $on:expr, |$exec:ident, $args:ident| $body:expr) => {
        match $on {
            Executor::Pool(Store::Postgres(pool)) => {
                let $exec = pool;
                let $args = $sql.postgres_args()?;
                $body
            }
            Executor::Pool(Store::Sqlite(pool)) => {
                let $exec = pool;
                let $args = $sql.sqlite_args()?;
                $body
            }
            Executor::Tx(Tx::Postgres(tx)) => {
                let $exec = &mut **tx;
                let $args = $sql.postgres_args()?;
                $body
            }
            Executor::Tx(Tx::Sqlite(tx)) => {
                let $exec = &mut **tx;
                let $args = $sql.sqlite_args()?;
                $body
            }
            Executor::PgConnection(conn) => {
                let $exec = conn;
                let $args = $sql.postgres_args()?;
                $body
            }
            Executor::SqliteConnection(conn) => {
                let $exec = conn;
                let $args = $sql.sqlite_args()?;
                $body
            }
        }
    };
}

/// Where a statement runs: a pool, or an open transaction.
pub enum Executor<'a> {
    /// A connection from the store's pool, for this statement alone.
    Pool(&'a Store),
    /// The open transaction.
    Tx(&'a mut Tx),
    /// A PostgreSQL connection held by someone else (a transaction of another type, a
    /// dedicated session).
    PgConnection(&'a mut sqlx::PgConnection),
    /// A SQLite connection held by someone else.
    SqliteConnection(&'a mut sqlx::SqliteConnection),
}

impl Executor<'_> {
    /// Which store the statement runs on.
    pub fn kind(&self) -> StoreKind {
        match self {
            Executor::Pool(store) => store.kind(),
            Executor::Tx(Tx::Postgres(_)) | Executor::PgConnection(_) => StoreKind::Postgres,
            Executor::Tx(Tx::Sqlite(_)) | Executor::SqliteConnection(_) => StoreKind::Sqlite,
        }
    }

    /// The same executor for one more statement (a transaction stays the same transaction).
    pub fn reborrow(&mut self) -> Executor<'_> {
        match self {
            Executor::Pool(store) => Executor::Pool(store),
            Executor::Tx(tx) => Executor::Tx(tx),
            Executor::PgConnection(conn) => Executor::PgConnection(conn),
            Executor::SqliteConnection(conn) => Executor::SqliteConnection(conn),
        }
    }
}

impl<'b> From<&'b mut Executor<'_>> for Executor<'b> {
    fn from(executor: &'b mut Executor<'_>) -> Self {
        executor.reborrow()
    }
}

impl<'a> From<&'a mut sqlx::Transaction<'static, sqlx::Postgres>> for Executor<'a> {
    fn from(tx: &'a mut sqlx::Transaction<'static, sqlx::Postgres>) -> Self {
        Executor::PgConnection(tx)
    }
}

impl<'a> From<&'a mut sqlx::Transaction<'static, sqlx::Sqlite>> for Executor<'a> {
    fn from(tx: &'a mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Self {
        Executor::SqliteConnection(tx)
    }
}

impl<'a> From<&'a mut sqlx::PgConnection> for Executor<'a> {
    fn from(conn: &'a mut sqlx::PgConnection) -> Self {
        Executor::PgConnection(conn)
    }
}

impl<'a> From<&'a mut sqlx::SqliteConnection> for Executor<'a> {
    fn from(conn: &'a mut sqlx::SqliteConnection) -> Self {
        Executor::SqliteConnection(conn)
    }
}

impl<'a> From<&'a Store> for Executor<'a> {
    fn from(store: &'a Store) -> Self {
        Executor::Pool(store)
    }
}

impl<'a> From<&'a mut Tx> for Executor<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Executor::Tx(tx)
    }
}

impl Sql {
    /// A statement; its `$N` placeholders take the arguments added with [`arg`](Self::arg) in
    /// order.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Adds the argument for the next `$N` of a text written by hand.
    pub fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Adds a `recorded_at` time argument (see [`Arg::LogTime`]).
    pub fn log_time(mut self, value: DateTime<Utc>) -> Self {
        self.args.push(Arg::LogTime(Some(value)));
        self
    }

    /// Appends SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder, bound to `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// ` AND column IN ($n, …)` (` AND 1 = 0` for an empty list).
    pub fn in_list<V: Into<Arg>>(
        &mut self,
        column: &str,
        values: impl IntoIterator<Item = V>,
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
            self.bind(value);
        }
        self.push(")")
    }

    /// Appends `other`'s text and arguments, renumbering its placeholders after ours.
    pub fn append(&mut self, other: &Sql) -> &mut Self {
        let offset = self.args.len();
        self.text.push_str(&renumber(&other.text, offset));
        self.args.extend(other.args.iter().cloned());
        self
    }

    /// The statement's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The statement's arguments.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// Runs the statement; the number of rows it changed.
    pub async fn execute<'a>(&self, on: impl Into<Executor<'a>>) -> Result<u64, sqlx::Error> {
        on_either!(self, on.into(), |exec, args| Ok(sqlx::query_with(
            &self.text, args
        )
        .execute(exec)
        .await?
        .rows_affected()))
    }

    /// Every row.
    pub async fn fetch_all<'a, T>(&self, on: impl Into<Executor<'a>>) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        on_either!(self, on.into(), |exec, args| {
            sqlx::query_as_with::<_, T, _>(&self.text, args)
                .fetch_all(exec)
                .await
        })
    }

    /// Hands each row to `each` as it arrives (no list of them all is built); the first
    /// error, the statement's or `each`'s, stops the stream.
    pub async fn for_each<'a, T, E>(
        &self,
        on: impl Into<Executor<'a>>,
        mut each: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
        E: From<sqlx::Error>,
    {
        use futures::TryStreamExt;
        on_either!(self, on.into(), |exec, args| {
            let mut rows = sqlx::query_as_with::<_, T, _>(&self.text, args).fetch(exec);
            while let Some(row) = rows.try_next().await? {
                each(row)?;
            }
            Ok(())
        })
    }

    /// The first row, if any.
    pub async fn fetch_optional<'a, T>(
        &self,
        on: impl Into<Executor<'a>>,
    ) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        on_either!(self, on.into(), |exec, args| {
            sqlx::query_as_with::<_, T, _>(&self.text, args)
                .fetch_optional(exec)
                .await
        })
    }

    /// Exactly one row (`RowNotFound` if none).
    pub async fn fetch_one<'a, T>(&self, on: impl Into<Executor<'a>>) -> Result<T, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        self.fetch_optional(on)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Every row, decoded by `decode` — for rows whose shape is known only at run time (a
    /// read model's columns), which no one `FromRow` type describes.
    pub async fn fetch_all_with<'a, D: DecodeRow>(
        &self,
        on: impl Into<Executor<'a>>,
        decode: &D,
    ) -> Result<Vec<D::Output>, sqlx::Error> {
        on_either!(self, on.into(), |exec, args| {
            sqlx::query_with(&self.text, args)
                .fetch_all(exec)
                .await?
                .iter()
                .map(|row| EitherRow::decode_with(row, decode))
                .collect()
        })
    }

    fn postgres_args(&self) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(v) => args.add(v.as_deref()),
                Arg::Int(v) => args.add(*v),
                Arg::Bool(v) => args.add(*v),
                Arg::Float(v) => args.add(*v),
                Arg::Bytes(v) => args.add(v.as_deref()),
                Arg::Json(v) => args.add(v.as_ref()),
                Arg::Time(v) | Arg::LogTime(v) => args.add(*v),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }

    fn sqlite_args(&self) -> Result<SqliteArguments<'static>, sqlx::Error> {
        let mut args = SqliteArguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(v) => args.add(v.clone()),
                Arg::Int(v) => args.add(*v),
                Arg::Bool(v) => args.add(*v),
                Arg::Float(v) => args.add(*v),
                Arg::Bytes(v) => args.add(v.clone()),
                Arg::Json(v) => args.add(v.as_ref().map(|v| v.to_string())),
                Arg::Time(v) => args.add(v.map(sqlite_time)),
                Arg::LogTime(v) => args.add(v.map(sqlite_log_time)),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

/// Decodes a row of either store into one value ([`Sql::fetch_all_with`]); both methods
/// usually call the same function, generic over `sqlx::Row`.
pub trait DecodeRow {
    /// What a row decodes into.
    type Output;
    /// Decodes a PostgreSQL row.
    fn postgres(&self, row: &PgRow) -> Result<Self::Output, sqlx::Error>;
    /// Decodes a SQLite row.
    fn sqlite(&self, row: &SqliteRow) -> Result<Self::Output, sqlx::Error>;
}

/// A row of either store, handed to the matching [`DecodeRow`] method.
trait EitherRow {
    fn decode_with<D: DecodeRow>(&self, decode: &D) -> Result<D::Output, sqlx::Error>;
}

impl EitherRow for PgRow {
    fn decode_with<D: DecodeRow>(&self, decode: &D) -> Result<D::Output, sqlx::Error> {
        decode.postgres(self)
    }
}

impl EitherRow for SqliteRow {
    fn decode_with<D: DecodeRow>(&self, decode: &D) -> Result<D::Output, sqlx::Error> {
        decode.sqlite(self)
    }
}

/// `text` with every `$N` raised by `offset`.
fn renumber(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                n.push(d);
                chars.next();
            }
            let n: usize = n.parse().unwrap_or(0);
            out.push_str(&(n + offset).to_string());
        }
    }
    out
}

/// An open transaction on either store. Dropped without [`commit`](Self::commit), it rolls
/// back.
pub enum Tx {
    /// On PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// On SQLite.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tx::Postgres(_) => "Tx::Postgres",
            Tx::Sqlite(_) => "Tx::Sqlite",
        })
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(tx) => tx.rollback().await,
            Tx::Sqlite(tx) => tx.rollback().await,
        }
    }
}

impl Store {
    /// The SQL expression for the text of JSON field `field` of `column`, written as each store's
    /// expression indexes are (`column ->> 'field'` on PostgreSQL, `json_extract(column,
    /// '$.field')` on SQLite), so that a look-up by it uses the index. `column` and `field` are
    /// identifiers of the code, never user input.
    pub fn json_text(&self, column: &str, field: &str) -> String {
        match self {
            Store::Postgres(_) => format!("({column} ->> '{field}')"),
            Store::Sqlite(_) => format!("json_extract({column}, '$.{field}')"),
        }
    }

    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// a transaction that reads and then writes cannot fail half-way on a busy database.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Store::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_numbers_placeholders_in_order() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE a = ");
        sql.bind("x").push(" AND b > ").bind(3i64);
        assert_eq!(sql.text(), "SELECT 1 FROM t WHERE a = $1 AND b > $2");
        assert_eq!(sql.args().len(), 2);
    }

    #[test]
    fn an_appended_statement_is_renumbered_after_the_first() {
        let mut outer = Sql::new("SELECT * FROM (");
        outer.bind("a").push(") x JOIN (");
        let inner = Sql::new("SELECT $1, $2, $1").arg(1i64).arg(2i64);
        outer.append(&inner).push(")");
        assert_eq!(
            outer.text(),
            "SELECT * FROM ($1) x JOIN (SELECT $2, $3, $2)"
        );
        assert_eq!(outer.args().len(), 3);
    }

    #[test]
    fn an_empty_in_list_matches_nothing() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE TRUE");
        sql.in_list::<i64>("id", Vec::new());
        assert!(sql.text().ends_with(" AND 1 = 0"));
    }

    #[test]
    fn sqlite_times_are_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T01:02:03.4Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(sqlite_time(t), "2026-11-22T01:02:03.400000Z");
        assert_eq!(sqlite_log_time(t), "2026-11-22T01:02:03.400Z");
    }
}

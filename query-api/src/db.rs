//! How the query API runs its statements: through [`eventstore_config::Sql`] (one text for
//! both stores), each admitted by the request's budget and counted ([`statements_run`]).
//! Read-model reads come typed from the `read-models` crate ([`fetch_all`], [`Reader`]); the
//! few others (of the log and the followers' checkpoints: typed functions of their owners in
//! `eventstore_config`) run through [`counted`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use eventstore_config::Store;
use read_models::{ReadModelError, Record, Select};
use sqlx::FromRow;

/// The newest version of `subject`'s policy set (NULL when it has none), as `policy_head__`.
pub(crate) fn policy_head(subject: &str) -> eventstore_config::Sql {
    eventstore_config::log::latest_version("policy_set", subject, "policy_head__")
}

/// Statements run through [`counted`] or the typed reads since the process started.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// How many read-model SQL statements the query API has run in this process (DataLoaders keep
/// a page's count constant; tests count with it).
pub fn statements_run() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

/// Admits one statement of the current request and counts it. The permit is held while the
/// statement runs.
async fn admit() -> Result<Option<tokio::sync::OwnedSemaphorePermit>, sqlx::Error> {
    let slot = crate::budget::admit().await?;
    STATEMENTS.fetch_add(1, Ordering::Relaxed);
    Ok(slot)
}

/// Every record of a typed read.
pub(crate) async fn fetch_all<T: Record>(
    store: &Store,
    select: &Select<T>,
) -> Result<Vec<T>, ReadModelError> {
    let _slot = admit().await?;
    select.fetch_all(store).await
}

/// The first record of a typed read, if any.
pub(crate) async fn fetch_optional<T: Record>(
    store: &Store,
    select: &Select<T>,
) -> Result<Option<T>, ReadModelError> {
    let _slot = admit().await?;
    select.fetch_optional(store).await
}

/// Runs `read`, one statement of another owner's typed read, admitted and counted.
pub(crate) async fn counted<T, E: From<sqlx::Error>>(
    read: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let _slot = admit().await?;
    read.await
}

/// A typed read's first record, if any, and the newest version of `subject`'s policy set (0
/// when it has none), read in one statement: one snapshot, one round trip.
async fn fetch_optional_with_policy_head<T: Record>(
    store: &Store,
    select: &Select<T>,
    subject: &str,
) -> Result<(Option<T>, i64), ReadModelError> {
    // The policy head is one row; the read is LEFT JOINed to it, so an empty read still
    // answers with the head (`row__` tells a row from none).
    let mut sql = eventstore_config::Sql::new("SELECT h.policy_head__, r.* FROM (");
    sql.append(&policy_head(subject))
        .push(") h LEFT JOIN (SELECT 1 AS row__, i.* FROM (")
        .append(select.sql())
        .push(") i LIMIT 1) r ON 1 = 1");
    let _slot = admit().await?;
    let Some(row) = sql.fetch_optional::<WithPolicyHead<T::Raw>>(store).await? else {
        return Err(sqlx::Error::RowNotFound.into());
    };
    Ok((row.found.map(T::decode).transpose()?, row.head))
}

/// A row of [`fetch_optional_with_policy_head`]: the policy head, and the read's row if any.
struct WithPolicyHead<R> {
    head: i64,
    found: Option<R>,
}

impl<'r, Row, R> FromRow<'r, Row> for WithPolicyHead<R>
where
    Row: sqlx::Row,
    R: FromRow<'r, Row>,
    for<'c> &'c str: sqlx::ColumnIndex<Row>,
    Option<i64>: sqlx::Decode<'r, Row::Database> + sqlx::Type<Row::Database>,
    Option<i32>: sqlx::Decode<'r, Row::Database> + sqlx::Type<Row::Database>,
{
    fn from_row(row: &'r Row) -> Result<Self, sqlx::Error> {
        let head = row.try_get::<Option<i64>, _>("policy_head__")?.unwrap_or(0);
        let found = match row.try_get::<Option<i32>, _>("row__")? {
            Some(_) => Some(R::from_row(row)?),
            None => None,
        };
        Ok(Self { head, found })
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

    /// The first record of `select`, if any.
    pub(crate) async fn fetch_optional<T: Record>(
        &self,
        select: &Select<T>,
    ) -> Result<Option<T>, ReadModelError> {
        match self.policy_subject {
            None => fetch_optional(self.store, select).await,
            Some(subject) => {
                let (row, head) =
                    fetch_optional_with_policy_head(self.store, select, subject).await?;
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
    fn placeholders_are_numbered_in_bind_order() {
        let mut sql = eventstore_config::Sql::new("SELECT 1 FROM t WHERE a = ");
        sql.bind("x").push(" AND b > ").bind(3i64);
        assert_eq!(sql.text(), "SELECT 1 FROM t WHERE a = $1 AND b > $2");
        assert_eq!(sql.args().len(), 2);
    }

    #[test]
    fn a_read_with_the_policy_head_numbers_the_read_after_the_subject() {
        let select = read_models::accounts::by_id("a", None);
        let mut sql = eventstore_config::Sql::new("SELECT h.policy_head__, r.* FROM (");
        sql.append(&policy_head("s"))
            .push(") h, (")
            .append(select.sql());
        assert!(sql.text().contains("aggregate_id = $1) h"));
        assert!(sql.text().contains("AND id = $2"));
        assert_eq!(sql.args().len(), 2);
    }
}

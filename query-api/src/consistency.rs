//! Read-your-writes: wait (bounded) until every read model this API serves has applied the
//! log through a position a client got back from a command.

use std::time::{Duration, Instant};

use eventstore_config::{Sql, Store};

/// The projections whose tables the query API reads.
pub const READ_MODELS: [&str; 6] = [
    "accounts", "products", "orders", "wallets", "policies", "audit",
];

/// Whether every [`READ_MODELS`] projection has applied every event at or below `position`.
pub async fn applied_through(store: &Store, position: i64) -> Result<bool, sqlx::Error> {
    match store {
        // Commit-safe: a checkpoint past `position` may still lack a lower position whose
        // transaction committed later; ask whether any event at or below it lies beyond.
        Store::Postgres(_) => {
            let mut sql = Sql::new("SELECT NOT EXISTS (SELECT 1 FROM (VALUES ");
            for (i, name) in READ_MODELS.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(").bind(*name).push(")");
            }
            sql.push(
                ") AS n(name) \
                 LEFT JOIN projection_checkpoints c ON c.name = n.name \
                 WHERE EXISTS (SELECT 1 FROM events e WHERE e.global_position <= ",
            )
            .bind(position)
            .push(
                " AND (c.name IS NULL OR (e.transaction_id, e.global_position) \
                      > (c.transaction_id, c.global_position))))",
            );
            let (applied,): (bool,) = sql.fetch_one(store).await?;
            Ok(applied)
        }
        // One writer: a checkpoint's position alone says what it has applied.
        Store::Sqlite(_) => {
            let mut sql = Sql::new("SELECT COUNT(*) FROM projection_checkpoints WHERE TRUE");
            sql.in_list("name", READ_MODELS)
                .push(" AND global_position >= ")
                .bind(position);
            let (caught_up,): (i64,) = sql.fetch_one(store).await?;
            Ok(caught_up == READ_MODELS.len() as i64)
        }
    }
}

/// Polls [`applied_through`] until it holds or `max_wait` passed; returns whether it held.
pub async fn wait_for(
    store: &Store,
    position: i64,
    max_wait: Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = Instant::now() + max_wait;
    loop {
        if applied_through(store, position).await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! Read-your-writes: wait (bounded) until every read model this API serves has applied the
//! log through a position a client got back from a command.

use std::time::{Duration, Instant};

use eventstore_config::Store;

/// The projections whose tables the query API reads.
pub const READ_MODELS: [&str; 6] = [
    "accounts", "products", "orders", "wallets", "policies", "audit",
];

/// Whether every [`READ_MODELS`] projection has applied every event at or below `position`.
pub async fn applied_through(store: &Store, position: i64) -> Result<bool, sqlx::Error> {
    let names: Vec<String> = READ_MODELS.iter().map(|s| s.to_string()).collect();
    match store {
        // Commit-safe: a checkpoint past `position` may still lack a lower position whose
        // transaction committed later; ask whether any event at or below it lies beyond.
        Store::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT NOT EXISTS ( \
                   SELECT 1 FROM unnest($1::text[]) AS n(name) \
                   LEFT JOIN projection_checkpoints c ON c.name = n.name \
                   WHERE EXISTS (SELECT 1 FROM events e WHERE e.global_position <= $2 \
                     AND (c.name IS NULL OR (e.transaction_id, e.global_position) \
                          > (c.transaction_id, c.global_position))))",
            )
            .bind(&names)
            .bind(position)
            .fetch_one(pool)
            .await
        }
        Store::Sqlite(pool) => {
            let placeholders = vec!["?"; names.len()].join(", ");
            let sql = format!(
                "SELECT COUNT(*) FROM projection_checkpoints \
                  WHERE name IN ({placeholders}) AND global_position >= ?"
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for name in &names {
                query = query.bind(name.clone());
            }
            let caught_up = query.bind(position).fetch_one(pool).await?;
            Ok(caught_up == names.len() as i64)
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

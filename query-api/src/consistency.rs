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
    eventstore_config::followers::applied_through(store, &READ_MODELS, position).await
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

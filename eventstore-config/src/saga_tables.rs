//! The order saga's tables, owned here and nowhere else: `order_sagas` (each order's saga
//! state), `order_saga_steps` (its step history) and `saga_deadlines` (payment deadlines) —
//! their row types, the saga worker's writes and the typed reads of the saga worker, the
//! deadline worker, `eventshop orders trace` and the query API.
//!
//! The saga's own state type lives with the saga (projectors); here it is the JSON document
//! stored in `order_sagas.state`. Times are read-model times ([`Arg::Time`](crate::Arg::Time)).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::sql::{Executor, Sql};
use crate::store::Store;

/// One order's saga as the saga worker saves it.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaRow {
    /// The order.
    pub order_id: String,
    /// Who placed it.
    pub account_id: String,
    /// The correlation id of the order's flow.
    pub correlation_id: String,
    /// Where the saga stands (`reserving`, `charging`, …).
    pub step: String,
    /// The saga's state (its serialized form).
    pub state: Value,
    /// Position of the last event the saga applied to this order.
    pub last_position: i64,
}

/// One step of an order's saga: the event that moved it and the commands it issued.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepRow {
    /// Position of the event that triggered the step.
    #[sqlx(rename = "global_position")]
    pub position: i64,
    /// That event's type.
    pub event_type: String,
    /// Where the saga stood after it.
    pub step: String,
    /// The commands issued and how each ended.
    pub commands: Value,
    /// When the triggering event was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// An order's saga now: its step and the flow's correlation id.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SagaSummary {
    /// Where the saga stands.
    pub step: String,
    /// The correlation id of the order's flow.
    pub correlation_id: String,
}

/// A payment deadline that has passed and is not yet handled.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DueDeadline {
    /// The order.
    pub order_id: String,
    /// The correlation id of the order's flow (None: the saga state is gone, e.g. reset).
    pub correlation_id: Option<String>,
}

/// Everything one saga batch writes for one order, inside the batch's transaction.
#[derive(Debug, Clone)]
pub struct SagaWrite<'a> {
    /// The order's saga state.
    pub saga: &'a SagaRow,
    /// The steps the batch took (a step already stored is kept as it is).
    pub steps: &'a [StepRow],
    /// The payment deadline that started in this batch, if any (an existing one is kept).
    pub deadline: Option<DateTime<Utc>>,
    /// Whether the saga has finished (its deadline is then marked done).
    pub finished: bool,
}

/// The stored saga state of `order_id`.
pub async fn state(store: &Store, order_id: &str) -> Result<Option<Value>, sqlx::Error> {
    let row: Option<(Value,)> = Sql::new("SELECT state FROM order_sagas WHERE order_id = $1")
        .arg(order_id)
        .fetch_optional(store)
        .await?;
    Ok(row.map(|(state,)| state))
}

/// Writes one order's saga, steps and deadline (`on`: the batch's transaction).
pub async fn save<'a>(
    on: impl Into<Executor<'a>>,
    write: &SagaWrite<'_>,
) -> Result<(), sqlx::Error> {
    let mut on = on.into();
    let saga = write.saga;
    let now = Utc::now();
    Sql::new(
        "INSERT INTO order_sagas (order_id, account_id, correlation_id, step, state, \
                                  last_position, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (order_id) DO UPDATE \
         SET step = excluded.step, state = excluded.state, \
             last_position = excluded.last_position, updated_at = excluded.updated_at",
    )
    .arg(&saga.order_id)
    .arg(&saga.account_id)
    .arg(&saga.correlation_id)
    .arg(&saga.step)
    .arg(saga.state.clone())
    .arg(saga.last_position)
    .arg(now)
    .execute(&mut on)
    .await?;
    for step in write.steps {
        Sql::new(
            "INSERT INTO order_saga_steps (order_id, global_position, event_type, step, \
                                           commands, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .arg(&saga.order_id)
        .arg(step.position)
        .arg(&step.event_type)
        .arg(&step.step)
        .arg(step.commands.clone())
        .arg(step.recorded_at)
        .execute(&mut on)
        .await?;
    }
    if let Some(due) = write.deadline {
        Sql::new(
            "INSERT INTO saga_deadlines (order_id, due_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .arg(&saga.order_id)
        .arg(due)
        .execute(&mut on)
        .await?;
    }
    if write.finished {
        Sql::new("UPDATE saga_deadlines SET done_at = $2 WHERE order_id = $1 AND done_at IS NULL")
            .arg(&saga.order_id)
            .arg(now)
            .execute(&mut on)
            .await?;
    }
    Ok(())
}

/// Forgets every saga state and step (`on`: the transaction that also resets the saga's
/// checkpoint). Payment deadlines are kept.
pub async fn forget_all<'a>(on: impl Into<Executor<'a>>) -> Result<(), sqlx::Error> {
    let mut on = on.into();
    Sql::new("DELETE FROM order_saga_steps")
        .execute(&mut on)
        .await?;
    Sql::new("DELETE FROM order_sagas").execute(&mut on).await?;
    Ok(())
}

/// The saga of `order_id` now (None: the saga has not seen the order yet).
pub async fn summary(store: &Store, order_id: &str) -> Result<Option<SagaSummary>, sqlx::Error> {
    Sql::new("SELECT step, correlation_id FROM order_sagas WHERE order_id = $1")
        .arg(order_id)
        .fetch_optional(store)
        .await
}

/// Where the saga of `order_id` stands (None: it has not seen the order yet).
pub async fn current_step(store: &Store, order_id: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = Sql::new("SELECT step FROM order_sagas WHERE order_id = $1")
        .arg(order_id)
        .fetch_optional(store)
        .await?;
    Ok(row.map(|(step,)| step))
}

/// Every step the saga of `order_id` took, in log order.
pub async fn steps(store: &Store, order_id: &str) -> Result<Vec<StepRow>, sqlx::Error> {
    Sql::new(
        "SELECT global_position, event_type, step, commands, recorded_at \
           FROM order_saga_steps WHERE order_id = $1 ORDER BY global_position",
    )
    .arg(order_id)
    .fetch_all(store)
    .await
}

/// Up to `limit` payment deadlines due at `now` and not yet handled, oldest first.
pub async fn due_deadlines(
    store: &Store,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueDeadline>, sqlx::Error> {
    Sql::new(
        "SELECT d.order_id, s.correlation_id FROM saga_deadlines d \
           LEFT JOIN order_sagas s ON s.order_id = d.order_id \
          WHERE d.done_at IS NULL AND d.due_at <= $1 ORDER BY d.due_at LIMIT $2",
    )
    .arg(now)
    .arg(limit)
    .fetch_all(store)
    .await
}

/// Marks the payment deadline of `order_id` handled at `at`.
pub async fn deadline_done(
    store: &Store,
    order_id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    Sql::new("UPDATE saga_deadlines SET done_at = $2 WHERE order_id = $1")
        .arg(order_id)
        .arg(at)
        .execute(store)
        .await?;
    Ok(())
}

/// Whether the payment deadline of `order_id` has passed at `now`.
pub async fn deadline_passed(
    store: &Store,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (passed,): (i64,) =
        Sql::new("SELECT count(*) FROM saga_deadlines WHERE order_id = $1 AND due_at <= $2")
            .arg(order_id)
            .arg(now)
            .fetch_one(store)
            .await?;
    Ok(passed > 0)
}

//! An order's saga, made visible: its current step, the step history, and every event of every
//! aggregate the order touched, in causal order (`eventshop orders trace <id>`).

use chrono::{DateTime, Utc};
use eventstore_config::{Store, StoredEvent};
use serde::Serialize;
use uuid::Uuid;

/// One step the saga took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    /// Position of the event that triggered it.
    pub position: i64,
    /// That event's type.
    pub event_type: String,
    /// Where the saga stood after it.
    pub step: String,
    /// The commands issued and how each ended.
    pub commands: serde_json::Value,
    /// When the event was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Everything known about one order's saga.
#[derive(Debug, Clone)]
pub struct OrderTrace {
    /// The saga's current step (None: the saga has not seen the order yet).
    pub step: Option<String>,
    /// The correlation id shared by the order's flow.
    pub correlation_id: Option<String>,
    /// Steps in log order.
    pub steps: Vec<TraceStep>,
    /// Events of every aggregate the order touched, in causal (log) order.
    pub events: Vec<StoredEvent>,
}

/// Reads the trace of `order_id`.
pub async fn order_trace(store: &Store, order_id: Uuid) -> anyhow::Result<OrderTrace> {
    let id = order_id.to_string();
    type SagaRow = (String, String);
    type StepRow = (i64, String, String, serde_json::Value, DateTime<Utc>);
    let (saga, steps): (Option<SagaRow>, Vec<StepRow>) = match store {
        Store::Postgres(pool) => (
            sqlx::query_as("SELECT step, correlation_id FROM order_sagas WHERE order_id = $1")
                .bind(&id)
                .fetch_optional(pool)
                .await?,
            sqlx::query_as(
                "SELECT global_position, event_type, step, commands, recorded_at \
                   FROM order_saga_steps WHERE order_id = $1 ORDER BY global_position",
            )
            .bind(&id)
            .fetch_all(pool)
            .await?,
        ),
        Store::Sqlite(pool) => {
            let saga =
                sqlx::query_as("SELECT step, correlation_id FROM order_sagas WHERE order_id = ?")
                    .bind(&id)
                    .fetch_optional(pool)
                    .await?;
            let rows: Vec<(i64, String, String, serde_json::Value, String)> = sqlx::query_as(
                "SELECT global_position, event_type, step, commands, recorded_at \
                   FROM order_saga_steps WHERE order_id = ? ORDER BY global_position",
            )
            .bind(&id)
            .fetch_all(pool)
            .await?;
            let steps = rows
                .into_iter()
                .map(|(p, e, s, c, t)| {
                    let t = DateTime::parse_from_rfc3339(&t)?.with_timezone(&Utc);
                    Ok((p, e, s, c, t))
                })
                .collect::<Result<_, chrono::ParseError>>()?;
            (saga, steps)
        }
    };
    // The flow's correlation id: the saga's, or the placing event's if the saga is behind.
    let correlation_id = match &saga {
        Some((_, correlation)) => Some(correlation.clone()),
        None => store
            .history("order", &id)
            .await?
            .first()
            .and_then(|e| e.metadata.correlation_id.clone()),
    };
    let events = match &correlation_id {
        Some(correlation) => store.correlated(correlation, Some(("order", &id))).await?,
        None => Vec::new(),
    };
    Ok(OrderTrace {
        step: saga.map(|(step, _)| step),
        correlation_id,
        steps: steps
            .into_iter()
            .map(
                |(position, event_type, step, commands, recorded_at)| TraceStep {
                    position,
                    event_type,
                    step,
                    commands,
                    recorded_at,
                },
            )
            .collect(),
        events,
    })
}

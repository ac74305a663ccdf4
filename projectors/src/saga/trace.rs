//! An order's saga, made visible: its current step, the step history, and every event of every
//! aggregate the order touched, in causal order (`eventshop orders trace <id>`).

use chrono::{DateTime, Utc};
use eventstore_config::{saga_tables, Store, StoredEvent};
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
    let saga = saga_tables::summary(store, &id).await?;
    let steps = saga_tables::steps(store, &id).await?;
    // The flow's correlation id: the saga's, or the placing event's if the saga is behind.
    let correlation_id = match &saga {
        Some(saga) => Some(saga.correlation_id.clone()),
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
        step: saga.map(|saga| saga.step),
        correlation_id,
        steps: steps
            .into_iter()
            .map(|row| TraceStep {
                position: row.position,
                event_type: row.event_type,
                step: row.step,
                commands: row.commands,
                recorded_at: row.recorded_at,
            })
            .collect(),
        events,
    })
}

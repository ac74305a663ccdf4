//! Carrying one order's events through its saga: fold each event into the saga state, decide
//! the commands, execute them (retrying infrastructure failures a few times) and record the
//! step; the result is saved by the batch ([`super::batch`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::order::{OrderEvent, OrderStatus};
use eventstore_config::saga_tables::{self, SagaRow, SagaWrite, StepRow};
use eventstore_config::{CommandBus, EventMetadata, Executor, Store, StoredEvent};
use serde::Serialize;
use uuid::Uuid;

use super::decide::{decide, SagaCommand};
use super::effects::{self, Done};
use super::options::SagaOptions;
use super::state::{OrderSaga, SagaEvent};

/// One command a step issued and how it ended.
#[derive(Debug, Clone, Serialize)]
struct CommandRecord {
    #[serde(flatten)]
    command: SagaCommand,
    outcome: String,
}

/// What working on one order's events produced.
pub(crate) struct OrderResult {
    saga: OrderSaga,
    last_position: i64,
    steps: Vec<StepRow>,
    deadline: Option<DateTime<Utc>>,
}

impl OrderResult {
    /// The order's saga row.
    pub(crate) fn row(&self) -> anyhow::Result<SagaRow> {
        let saga = &self.saga;
        Ok(SagaRow {
            order_id: saga.order_id.to_string(),
            account_id: saga.account_id.to_string(),
            correlation_id: saga.correlation_id.clone(),
            step: saga.step().to_string(),
            state: serde_json::to_value(saga)?,
            last_position: self.last_position,
        })
    }

    /// The steps taken.
    pub(crate) fn steps(&self) -> &[StepRow] {
        &self.steps
    }

    /// The payment deadline that started, if any.
    pub(crate) fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// Whether the saga has finished.
    pub(crate) fn finished(&self) -> bool {
        matches!(
            self.saga.status,
            OrderStatus::Approved | OrderStatus::Rejected | OrderStatus::Canceled
        )
    }

    /// Saves the order's saga row, its steps and its deadline ([`saga_tables::save`]).
    pub(crate) async fn save<'a>(&self, on: impl Into<Executor<'a>>) -> anyhow::Result<()> {
        let saga = self.row()?;
        let write = SagaWrite {
            saga: &saga,
            steps: self.steps(),
            deadline: self.deadline(),
            finished: self.finished(),
        };
        saga_tables::save(on, &write).await?;
        Ok(())
    }
}

/// Works on one order's events (in log order); `None` if the saga never saw the order placed.
pub(crate) async fn work_on_order(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
    order_id: Uuid,
    events: Vec<(StoredEvent, SagaEvent)>,
) -> anyhow::Result<Option<OrderResult>> {
    let mut saga = load(store, order_id).await?;
    let mut steps = Vec::new();
    let mut deadline = None;
    let mut last_position = 0;
    for (stored, event) in events {
        let current = match (saga.take(), &event) {
            (Some(saga), _) => saga,
            (None, SagaEvent::Order(placed @ OrderEvent::OrderPlaced { .. })) => {
                let correlation = stored
                    .metadata
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| order_id.to_string());
                match OrderSaga::start(order_id, placed, correlation) {
                    Some(saga) => saga,
                    None => continue,
                }
            }
            // Events about an order the saga never saw placed: nothing to coordinate.
            (None, _) => continue,
        };
        let mut current = current;
        current.apply(&event);
        let metadata = EventMetadata {
            actor: Some(eventstore_config::SYSTEM_ACTOR.to_string()),
            correlation_id: Some(current.correlation_id.clone()),
            causation_id: Some(format!(
                "{}:{}:{}",
                stored.aggregate_type, stored.aggregate_id, stored.version
            )),
            request_id: None,
        };
        let mut commands = Vec::new();
        let decided = decide(&current, &event);
        // The payment deadline starts when the saga asks for payment; it is stored with this
        // step, so it survives restarts and a saga that stops before charging.
        if decided
            .iter()
            .any(|c| matches!(c, SagaCommand::AwaitPayment { .. }))
        {
            deadline = chrono::Duration::from_std(options.payment_timeout)
                .ok()
                .and_then(|timeout| stored.recorded_at.checked_add_signed(timeout));
        }
        for command in decided {
            let done = execute_with_retry(bus, &current, &command, &metadata).await?;
            commands.push(CommandRecord {
                command,
                outcome: match done {
                    Done::Applied => "applied".to_string(),
                    Done::AlreadyDone => "already done".to_string(),
                    Done::Refused(reason) => format!("refused: {reason}"),
                },
            });
        }
        steps.push(StepRow {
            position: stored.position,
            event_type: stored.event_type.clone(),
            step: current.step().to_string(),
            commands: serde_json::to_value(&commands)?,
            recorded_at: stored.recorded_at,
        });
        last_position = stored.position;
        saga = Some(current);
    }
    Ok(saga.map(|saga| OrderResult {
        saga,
        last_position,
        steps,
        deadline,
    }))
}

/// Retries infrastructure failures a few times before giving the batch up (it is retried).
async fn execute_with_retry(
    bus: &CommandBus,
    saga: &OrderSaga,
    command: &SagaCommand,
    metadata: &EventMetadata,
) -> anyhow::Result<Done> {
    let mut attempt = 0u32;
    loop {
        match effects::execute(bus, saga, command, metadata).await {
            Ok(done) => return Ok(done),
            Err(error) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %format!("{error:#}"), attempt, "saga command failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The stored saga state of `order_id`.
async fn load(store: &Store, order_id: Uuid) -> anyhow::Result<Option<OrderSaga>> {
    let state = eventstore_config::saga_tables::state(store, &order_id.to_string()).await?;
    Ok(state.map(serde_json::from_value).transpose()?)
}

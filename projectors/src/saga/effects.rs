//! Carrying out the saga's commands through the application layer's saga use cases. A command the domain refuses
//! because its effect already happened (a reservation already made, an order already moved on, a
//! charge already taken) counts as done: that is how a replayed or retried step stays
//! exactly-once. Infrastructure failures are returned so the step is retried.

use domain::order::{Order, OrderCommand, OrderError};
use domain::product::{ProductCommand, ProductError};
use domain::wallet::{WalletCommand, WalletError};
use eventstore_config::{CommandBus, CommandError, EventMetadata};

use super::decide::SagaCommand;
use super::state::OrderSaga;

/// How a saga command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// It appended events.
    Applied,
    /// Its effect had already happened (or nothing was left to do).
    AlreadyDone,
    /// The domain refused it for another reason (logged; retrying cannot change a decision).
    Refused(String),
}

/// The bus failed; the step must be retried.
#[derive(Debug, thiserror::Error)]
#[error("saga command {command} for order {order_id} failed")]
pub struct EffectError {
    /// Which command.
    pub command: String,
    /// For which order.
    pub order_id: uuid::Uuid,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Issues `command` for `saga`'s order with `metadata`.
pub async fn execute(
    bus: &CommandBus,
    saga: &OrderSaga,
    command: &SagaCommand,
    metadata: &EventMetadata,
) -> Result<Done, EffectError> {
    let order_id = saga.order_id;
    let order = order_id.to_string();
    let wallet = saga.account_id.to_string();
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| EffectError {
        command: format!("{command:?}"),
        order_id,
        source,
    };
    let done = match command {
        SagaCommand::Reserve {
            product_id,
            quantity,
        } => product(
            bus,
            product_id,
            ProductCommand::Reserve {
                order_id,
                quantity: *quantity,
            },
            metadata,
        )
        .await
        .map_err(fail)?,
        SagaCommand::Release { product_id } => product(
            bus,
            product_id,
            ProductCommand::Release { order_id },
            metadata,
        )
        .await
        .map_err(fail)?,
        SagaCommand::Commit { product_id } => product(
            bus,
            product_id,
            ProductCommand::CommitReservation { order_id },
            metadata,
        )
        .await
        .map_err(fail)?,
        SagaCommand::AwaitPayment { amount } => order_command(
            bus,
            &order,
            OrderCommand::MarkAwaitingPayment { amount: *amount },
            metadata,
        )
        .await
        .map_err(fail)?,
        SagaCommand::Approve => order_command(bus, &order, OrderCommand::Approve, metadata)
            .await
            .map_err(fail)?,
        SagaCommand::Reject { reason } => order_command(
            bus,
            &order,
            OrderCommand::Reject {
                reason: reason.clone(),
            },
            metadata,
        )
        .await
        .map_err(fail)?,
        SagaCommand::Cancel { reason } => order_command(
            bus,
            &order,
            OrderCommand::Cancel {
                reason: Some(reason.clone()),
            },
            metadata,
        )
        .await
        .map_err(fail)?,
        // A canceled order is not charged (the log may be behind the order's state), nor one
        // whose payment deadline has passed (the deadline worker cancels it).
        SagaCommand::Charge { .. }
            if !awaiting_payment(bus, &order).await.map_err(fail)?
                || deadline_passed(bus, &order).await.map_err(fail)? =>
        {
            Done::AlreadyDone
        }
        SagaCommand::Charge { amount } => wallet_command(
            bus,
            &wallet,
            WalletCommand::Charge {
                order_id,
                amount: *amount,
            },
            metadata,
        )
        .await
        .map_err(fail)?,
        SagaCommand::Refund => {
            wallet_command(bus, &wallet, WalletCommand::Refund { order_id }, metadata)
                .await
                .map_err(fail)?
        }
    };
    if let Done::Refused(reason) = &done {
        tracing::warn!(%order_id, ?command, reason, "saga command refused");
    }
    Ok(done)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn deadline_passed(bus: &CommandBus, order_id: &str) -> Result<bool, BoxError> {
    let passed =
        eventstore_config::saga_tables::deadline_passed(bus.store(), order_id, chrono::Utc::now())
            .await?;
    Ok(passed)
}

async fn awaiting_payment(bus: &CommandBus, order_id: &str) -> Result<bool, BoxError> {
    let order = bus.store().load_current::<Order>(order_id).await?;
    Ok(order.state.status() == Some(domain::order::OrderStatus::AwaitingPayment))
}

fn outcome<E: std::error::Error + Send + Sync + 'static>(
    result: Result<eventstore_config::Committed<impl cqrs_es::Aggregate>, CommandError<E>>,
    already_done: impl Fn(&E) -> bool,
) -> Result<Done, BoxError> {
    match result {
        Ok(committed) if committed.events.is_empty() => Ok(Done::AlreadyDone),
        Ok(_) => Ok(Done::Applied),
        Err(CommandError::Rejected(e)) if already_done(&e) => Ok(Done::AlreadyDone),
        Err(CommandError::Rejected(e)) => Ok(Done::Refused(e.to_string())),
        Err(other) => Err(Box::new(other)),
    }
}

async fn product(
    bus: &CommandBus,
    product_id: &uuid::Uuid,
    command: ProductCommand,
    metadata: &EventMetadata,
) -> Result<Done, BoxError> {
    let result = application::saga::product(bus, &product_id.to_string(), command, metadata).await;
    outcome(result, |e| {
        matches!(
            e,
            ProductError::AlreadyReserved { .. }
                | ProductError::ReservationClosed { .. }
                | ProductError::NoReservation { .. }
        )
    })
}

async fn order_command(
    bus: &CommandBus,
    order_id: &str,
    command: OrderCommand,
    metadata: &EventMetadata,
) -> Result<Done, BoxError> {
    let result = application::saga::order(bus, order_id, command, metadata).await;
    outcome(result, |e| {
        matches!(e, OrderError::InvalidTransition { .. })
    })
}

async fn wallet_command(
    bus: &CommandBus,
    wallet_id: &str,
    command: WalletCommand,
    metadata: &EventMetadata,
) -> Result<Done, BoxError> {
    let result = application::saga::wallet(bus, wallet_id, command, metadata).await;
    outcome(result, |e| {
        matches!(
            e,
            WalletError::AlreadyCharged { .. }
                | WalletError::AlreadyRefunded { .. }
                | WalletError::NotCaptured { .. }
        )
    })
}

//! The saga's decisions: from an order's state (after folding an event) and that event, the
//! commands to issue. Pure: the same log always yields the same commands, which is what makes a
//! replayed step safe (every command is rejected as already done the second time).

use domain::order::{OrderEvent, OrderStatus};
use domain::product::ProductEvent;
use domain::wallet::{DeclineReason, WalletEvent};
use domain::{Money, Quantity};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::state::{OrderSaga, Payment, SagaEvent};

/// A command the saga issues for an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SagaCommand {
    /// Product.Reserve for the order.
    Reserve {
        /// The product.
        product_id: Uuid,
        /// How many.
        quantity: Quantity,
    },
    /// Product.Release of the order's reservation.
    Release {
        /// The product.
        product_id: Uuid,
    },
    /// Product.CommitReservation of the order's reservation.
    Commit {
        /// The product.
        product_id: Uuid,
    },
    /// Order.MarkAwaitingPayment.
    AwaitPayment {
        /// The amount to charge.
        amount: Money,
    },
    /// Order.Approve.
    Approve,
    /// Order.Reject.
    Reject {
        /// Why.
        reason: String,
    },
    /// Order.Cancel.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Wallet.Charge for the order.
    Charge {
        /// How much.
        amount: Money,
    },
    /// Wallet.Refund of the order's payment.
    Refund,
}

/// The commands that follow `event` for the order whose state (with `event` folded in) is
/// `saga`.
pub fn decide(saga: &OrderSaga, event: &SagaEvent) -> Vec<SagaCommand> {
    let release_held = || {
        saga.held()
            .into_iter()
            .map(|product_id| SagaCommand::Release { product_id })
    };
    match event {
        SagaEvent::Order(OrderEvent::OrderPlaced { .. }) => saga
            .items
            .iter()
            .map(|line| SagaCommand::Reserve {
                product_id: line.product_id,
                quantity: line.quantity,
            })
            .collect(),
        SagaEvent::Product {
            product_id,
            event: ProductEvent::StockReserved { .. },
        } => match saga.status {
            OrderStatus::Pending if saga.all_answered() && !saga.any_rejected() => {
                vec![SagaCommand::AwaitPayment { amount: saga.total }]
            }
            // The order failed meanwhile: give a late reservation straight back.
            OrderStatus::Rejected | OrderStatus::Canceled => vec![SagaCommand::Release {
                product_id: *product_id,
            }],
            _ => vec![],
        },
        SagaEvent::Product {
            product_id,
            event: ProductEvent::StockReservationRejected { .. },
        } => match saga.status {
            OrderStatus::Pending => std::iter::once(SagaCommand::Reject {
                reason: format!("product {product_id} is out of stock"),
            })
            .chain(release_held())
            .collect(),
            _ => vec![],
        },
        SagaEvent::Order(OrderEvent::OrderAwaitingPayment { amount }) => {
            vec![SagaCommand::Charge { amount: *amount }]
        }
        SagaEvent::Wallet(WalletEvent::PaymentCaptured { .. }) => match saga.status {
            OrderStatus::AwaitingPayment => vec![SagaCommand::Approve],
            // Canceled while the charge was under way: pay it back.
            OrderStatus::Canceled | OrderStatus::Rejected => vec![SagaCommand::Refund],
            _ => vec![],
        },
        SagaEvent::Wallet(WalletEvent::PaymentDeclined { reason, .. }) => match saga.status {
            OrderStatus::AwaitingPayment => vec![SagaCommand::Cancel {
                reason: format!("payment declined: {}", decline_reason(*reason)),
            }],
            _ => vec![],
        },
        SagaEvent::Order(OrderEvent::OrderApproved) => saga
            .held()
            .into_iter()
            .map(|product_id| SagaCommand::Commit { product_id })
            .collect(),
        SagaEvent::Order(OrderEvent::OrderRejected { .. }) => release_held().collect(),
        SagaEvent::Order(OrderEvent::OrderCanceled { .. }) => {
            let mut commands: Vec<_> = release_held().collect();
            if saga.payment == Payment::Captured {
                commands.push(SagaCommand::Refund);
            }
            commands
        }
        _ => vec![],
    }
}

fn decline_reason(reason: DeclineReason) -> &'static str {
    match reason {
        DeclineReason::InsufficientFunds => "insufficient funds",
        DeclineReason::CurrencyMismatch => "currency mismatch",
    }
}

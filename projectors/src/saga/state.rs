//! The order saga's state: what the log has said so far about one order's reservations, payment
//! and status. Folded from the log's events only, so replaying the log rebuilds it exactly.

use std::collections::BTreeMap;

use domain::order::{OrderEvent, OrderLine, OrderStatus};
use domain::product::ProductEvent;
use domain::wallet::WalletEvent;
use domain::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened to one item's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reservation {
    /// Asked for, no answer yet.
    Requested,
    /// Stock is held for the order.
    Reserved,
    /// Not enough stock.
    Rejected,
    /// Held stock was given back.
    Released,
    /// Held stock left the shelf (order approved).
    Committed,
}

/// Where the order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    /// No charge yet.
    None,
    /// The wallet paid.
    Captured,
    /// The wallet refused (insufficient funds, currency mismatch).
    Declined,
    /// A captured payment was given back.
    Refunded,
}

/// One order's saga state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSaga {
    /// The order.
    pub order_id: Uuid,
    /// Its customer (the wallet to charge).
    pub account_id: Uuid,
    /// Correlation id every saga command carries (the placing request's).
    pub correlation_id: String,
    /// The order's lines, sorted by product id.
    pub items: Vec<OrderLine>,
    /// The order's total.
    pub total: Money,
    /// The order's status as the log last said.
    pub status: OrderStatus,
    /// Reservation outcome per product.
    pub reservations: BTreeMap<Uuid, Reservation>,
    /// Payment state.
    pub payment: Payment,
}

/// An event the saga reacts to, decoded, with the order it concerns.
#[derive(Debug, Clone, PartialEq)]
pub enum SagaEvent {
    /// An order event.
    Order(OrderEvent),
    /// A product event about `product_id`'s reservation for an order.
    Product {
        /// The product.
        product_id: Uuid,
        /// The event.
        event: ProductEvent,
    },
    /// A wallet event about an order's payment.
    Wallet(WalletEvent),
}

impl SagaEvent {
    /// The order an event concerns, if the saga cares about it.
    pub fn order_id(&self, aggregate_id: &str) -> Option<Uuid> {
        match self {
            SagaEvent::Order(_) => aggregate_id.parse().ok(),
            SagaEvent::Product { event, .. } => match event {
                ProductEvent::StockReserved { order_id, .. }
                | ProductEvent::StockReservationRejected { order_id, .. }
                | ProductEvent::ReservationReleased { order_id, .. }
                | ProductEvent::ReservationCommitted { order_id, .. } => Some(*order_id),
                _ => None,
            },
            SagaEvent::Wallet(event) => match event {
                WalletEvent::PaymentCaptured { order_id, .. }
                | WalletEvent::PaymentDeclined { order_id, .. }
                | WalletEvent::PaymentRefunded { order_id, .. } => Some(*order_id),
                _ => None,
            },
        }
    }
}

impl OrderSaga {
    /// A saga starts with the order's placement.
    pub fn start(order_id: Uuid, event: &OrderEvent, correlation_id: String) -> Option<Self> {
        let OrderEvent::OrderPlaced {
            account_id,
            items,
            total,
            ..
        } = event
        else {
            return None;
        };
        let mut items = items.clone();
        items.sort_by_key(|line| line.product_id);
        let reservations = items
            .iter()
            .map(|line| (line.product_id, Reservation::Requested))
            .collect();
        Some(Self {
            order_id,
            account_id: *account_id,
            correlation_id,
            items,
            total: *total,
            status: OrderStatus::Pending,
            reservations,
            payment: Payment::None,
        })
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, event: &SagaEvent) {
        match event {
            SagaEvent::Order(event) => {
                self.status = match event {
                    OrderEvent::OrderPlaced { .. } => OrderStatus::Pending,
                    OrderEvent::OrderAwaitingPayment { .. } => OrderStatus::AwaitingPayment,
                    OrderEvent::OrderApproved => OrderStatus::Approved,
                    OrderEvent::OrderRejected { .. } => OrderStatus::Rejected,
                    OrderEvent::OrderCanceled { .. } => OrderStatus::Canceled,
                }
            }
            SagaEvent::Product { product_id, event } => {
                let outcome = match event {
                    ProductEvent::StockReserved { .. } => Reservation::Reserved,
                    ProductEvent::StockReservationRejected { .. } => Reservation::Rejected,
                    ProductEvent::ReservationReleased { .. } => Reservation::Released,
                    ProductEvent::ReservationCommitted { .. } => Reservation::Committed,
                    _ => return,
                };
                self.reservations.insert(*product_id, outcome);
            }
            SagaEvent::Wallet(event) => {
                self.payment = match event {
                    WalletEvent::PaymentCaptured { .. } => Payment::Captured,
                    WalletEvent::PaymentDeclined { .. } => Payment::Declined,
                    WalletEvent::PaymentRefunded { .. } => Payment::Refunded,
                    _ => return,
                }
            }
        }
    }

    /// Products whose stock is currently held for this order.
    pub fn held(&self) -> Vec<Uuid> {
        self.reservations
            .iter()
            .filter(|(_, r)| **r == Reservation::Reserved)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether every item has an answer (reserved or rejected, or later outcomes).
    pub fn all_answered(&self) -> bool {
        self.reservations
            .values()
            .all(|r| *r != Reservation::Requested)
    }

    /// Whether any item was refused.
    pub fn any_rejected(&self) -> bool {
        self.reservations
            .values()
            .any(|r| *r == Reservation::Rejected)
    }

    /// A short name of where the saga stands, for status displays.
    pub fn step(&self) -> &'static str {
        match self.status {
            OrderStatus::Pending if !self.all_answered() => "reserving",
            OrderStatus::Pending => "reserved",
            OrderStatus::AwaitingPayment if self.payment == Payment::Captured => "captured",
            OrderStatus::AwaitingPayment => "charging",
            OrderStatus::Approved if self.held().is_empty() => "completed",
            OrderStatus::Approved => "committing",
            OrderStatus::Rejected | OrderStatus::Canceled
                if !self.held().is_empty() || self.payment == Payment::Captured =>
            {
                "compensating"
            }
            OrderStatus::Rejected => "rejected",
            OrderStatus::Canceled => "canceled",
        }
    }
}

//! Orders: placed once, then one state change per step until a terminal state.
//!
//! ```text
//! Pending ──MarkAwaitingPayment──▶ AwaitingPayment ──Approve──▶ Approved
//!    │  └──────Cancel──────▶ Canceled ◀──────Cancel──────┘
//!    └──Reject──▶ Rejected
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Currency, Money, Quantity, Rejection};

/// The most lines an order may have.
pub const MAX_ITEMS: usize = 100;

/// Where an order stands. Serialized as `PENDING`, `AWAITING_PAYMENT`, ….
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; stock is being reserved.
    Pending,
    /// Stock is reserved; the wallet is being charged.
    AwaitingPayment,
    /// Paid (terminal).
    Approved,
    /// Stock could not be reserved (terminal).
    Rejected,
    /// Canceled by the customer or the system (terminal).
    Canceled,
}

impl OrderStatus {
    /// `PENDING`, `AWAITING_PAYMENT`, `APPROVED`, `REJECTED` or `CANCELED`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::AwaitingPayment => "AWAITING_PAYMENT",
            OrderStatus::Approved => "APPROVED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Canceled => "CANCELED",
        }
    }

    /// True for states that accept no further command.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Approved | OrderStatus::Rejected | OrderStatus::Canceled
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// How many.
    pub quantity: Quantity,
    /// Price of one, in the order's currency.
    pub unit_price: Money,
}

impl OrderLine {
    /// `unit_price × quantity`.
    pub fn line_total(&self) -> Result<Money, crate::MoneyError> {
        self.unit_price.checked_mul(self.quantity.get())
    }
}

/// Commands to an order (aggregate id: the order id).
#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    /// Places the order: 1..=100 lines, distinct products, positive prices in `currency`.
    Place {
        /// The order id (the aggregate id).
        order_id: Uuid,
        /// The ordering account.
        account_id: Uuid,
        /// The lines.
        items: Vec<OrderLine>,
        /// The order's currency.
        currency: Currency,
        /// When.
        placed_at: DateTime<Utc>,
    },
    /// Stock is reserved: `Pending → AwaitingPayment`.
    MarkAwaitingPayment {
        /// What to charge: positive, in the order's currency.
        amount: Money,
    },
    /// Paid: `AwaitingPayment → Approved`.
    Approve,
    /// Stock could not be reserved: `Pending → Rejected`.
    Reject {
        /// Why.
        reason: String,
    },
    /// `Pending | AwaitingPayment → Canceled`.
    Cancel {
        /// Why, if known.
        reason: Option<String>,
    },
}

impl OrderCommand {
    /// The command's name, as used in [`OrderError::InvalidTransition`].
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::Place { .. } => "Place",
            OrderCommand::MarkAwaitingPayment { .. } => "MarkAwaitingPayment",
            OrderCommand::Approve => "Approve",
            OrderCommand::Reject { .. } => "Reject",
            OrderCommand::Cancel { .. } => "Cancel",
        }
    }
}

/// What happened to an order. Stored as `{"type": "<event_type>", "data": {..}}` (unit
/// variants as `{"type": "<event_type>"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrderEvent {
    /// The order exists, pending.
    #[serde(rename = "OrderPlaced")]
    OrderPlaced {
        /// The order id.
        order_id: Uuid,
        /// The ordering account.
        account_id: Uuid,
        /// The lines.
        items: Vec<OrderLine>,
        /// The order's currency.
        currency: Currency,
        /// Σ unit price × quantity.
        total: Money,
        /// When.
        placed_at: DateTime<Utc>,
    },
    /// Stock is reserved; payment is due.
    #[serde(rename = "OrderAwaitingPayment")]
    OrderAwaitingPayment {
        /// What to charge.
        amount: Money,
    },
    /// Paid.
    #[serde(rename = "OrderApproved")]
    OrderApproved,
    /// Stock could not be reserved.
    #[serde(rename = "OrderRejected")]
    OrderRejected {
        /// Why.
        reason: String,
    },
    /// Canceled.
    #[serde(rename = "OrderCanceled")]
    OrderCanceled {
        /// Why, if known.
        reason: Option<String>,
        /// The state it was canceled from.
        previous_status: OrderStatus,
    },
}

impl OrderEvent {
    /// The event as it may leave the process (`history`, `events tail`, the relay, …): it
    /// holds no secret, so this is its stored form.
    pub fn public_json(&self) -> serde_json::Value {
        crate::event_json::stored_json(self)
    }
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::OrderAwaitingPayment { .. } => "OrderAwaitingPayment",
            OrderEvent::OrderApproved => "OrderApproved",
            OrderEvent::OrderRejected { .. } => "OrderRejected",
            OrderEvent::OrderCanceled { .. } => "OrderCanceled",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version_text(&self.event_type())
    }
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order was never placed. Kind: [`Rejection::NotFound`].
    #[error("order not found")]
    NotFound,
    /// The order was already placed. Kind: [`Rejection::Conflict`].
    #[error("order already placed")]
    AlreadyPlaced,
    /// No lines. Kind: [`Rejection::Unprocessable`].
    #[error("an order needs at least one item")]
    EmptyOrder,
    /// More than [`MAX_ITEMS`] lines. Kind: [`Rejection::Unprocessable`].
    #[error("an order has at most {max} items, got {actual}")]
    TooManyItems {
        /// The limit.
        max: usize,
        /// Lines found.
        actual: usize,
    },
    /// Two lines for the same product. Kind: [`Rejection::Unprocessable`].
    #[error("product {product_id} appears more than once")]
    DuplicateItem {
        /// The product.
        product_id: Uuid,
    },
    /// A price or amount is not in the order's currency. Kind: [`Rejection::Unprocessable`].
    #[error("order is in {expected}, got {found}")]
    CurrencyMismatch {
        /// The order's currency.
        expected: Currency,
        /// The currency found.
        found: Currency,
    },
    /// A line's unit price is zero or negative. Kind: [`Rejection::Unprocessable`].
    #[error("unit price of product {product_id} must be greater than zero")]
    NonPositivePrice {
        /// The product.
        product_id: Uuid,
    },
    /// The amount due is zero or negative. Kind: [`Rejection::Unprocessable`].
    #[error("amount must be greater than zero")]
    NonPositiveAmount,
    /// The total does not fit in 64-bit minor units. Kind: [`Rejection::Unprocessable`].
    #[error("order total out of range")]
    TotalOverflow,
    /// The command does not apply in the order's current state (including every terminal
    /// state). Kind: [`Rejection::Conflict`].
    #[error("cannot {command} an order that is {from}")]
    InvalidTransition {
        /// The current state.
        from: OrderStatus,
        /// The refused command (see [`OrderCommand::name`]).
        command: &'static str,
    },
}

impl OrderError {
    /// The kind of rejection (see each variant).
    pub fn kind(&self) -> Rejection {
        match self {
            OrderError::NotFound => Rejection::NotFound,
            OrderError::AlreadyPlaced | OrderError::InvalidTransition { .. } => Rejection::Conflict,
            OrderError::EmptyOrder
            | OrderError::TooManyItems { .. }
            | OrderError::DuplicateItem { .. }
            | OrderError::CurrencyMismatch { .. }
            | OrderError::NonPositivePrice { .. }
            | OrderError::NonPositiveAmount
            | OrderError::TotalOverflow => Rejection::Unprocessable,
        }
    }
}

/// An order's state, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<Uuid>,
    account_id: Option<Uuid>,
    status: Option<OrderStatus>,
    items: Vec<OrderLine>,
    currency: Option<Currency>,
    total: Option<Money>,
    placed_at: Option<DateTime<Utc>>,
    amount_due: Option<Money>,
    reason: Option<String>,
}

impl Order {
    /// The order id, once placed.
    pub fn id(&self) -> Option<Uuid> {
        self.order_id
    }

    /// True once placed.
    pub fn is_placed(&self) -> bool {
        self.status.is_some()
    }

    /// The ordering account, once placed.
    pub fn account_id(&self) -> Option<Uuid> {
        self.account_id
    }

    /// The current state, once placed.
    pub fn status(&self) -> Option<OrderStatus> {
        self.status
    }

    /// The lines (empty before placing).
    pub fn items(&self) -> &[OrderLine] {
        &self.items
    }

    /// The order's currency, once placed.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// Σ unit price × quantity, once placed.
    pub fn total(&self) -> Option<Money> {
        self.total
    }

    /// When it was placed.
    pub fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.placed_at
    }

    /// The amount to charge, once awaiting payment.
    pub fn amount_due(&self) -> Option<Money> {
        self.amount_due
    }

    /// Why it was rejected or canceled, when a reason was given.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    fn place_event(
        &self,
        order_id: Uuid,
        account_id: Uuid,
        items: Vec<OrderLine>,
        currency: Currency,
        placed_at: DateTime<Utc>,
    ) -> Result<OrderEvent, OrderError> {
        if self.is_placed() {
            return Err(OrderError::AlreadyPlaced);
        }
        if items.is_empty() {
            return Err(OrderError::EmptyOrder);
        }
        if items.len() > MAX_ITEMS {
            return Err(OrderError::TooManyItems {
                max: MAX_ITEMS,
                actual: items.len(),
            });
        }
        let mut seen = BTreeSet::new();
        let mut total = Money::zero(currency);
        for line in &items {
            if !seen.insert(line.product_id) {
                return Err(OrderError::DuplicateItem {
                    product_id: line.product_id,
                });
            }
            if line.unit_price.currency != currency {
                return Err(OrderError::CurrencyMismatch {
                    expected: currency,
                    found: line.unit_price.currency,
                });
            }
            if !line.unit_price.is_positive() {
                return Err(OrderError::NonPositivePrice {
                    product_id: line.product_id,
                });
            }
            total = line
                .line_total()
                .and_then(|line_total| total.checked_add(&line_total))
                .map_err(|_| OrderError::TotalOverflow)?;
        }
        Ok(OrderEvent::OrderPlaced {
            order_id,
            account_id,
            items,
            currency,
            total,
            placed_at,
        })
    }

    fn transition_event(&self, command: OrderCommand) -> Result<OrderEvent, OrderError> {
        let from = self.status.ok_or(OrderError::NotFound)?;
        let invalid = OrderError::InvalidTransition {
            from,
            command: command.name(),
        };
        match (from, command) {
            (OrderStatus::Pending, OrderCommand::MarkAwaitingPayment { amount }) => {
                let currency = self.currency.ok_or(OrderError::NotFound)?;
                if amount.currency != currency {
                    return Err(OrderError::CurrencyMismatch {
                        expected: currency,
                        found: amount.currency,
                    });
                }
                if !amount.is_positive() {
                    return Err(OrderError::NonPositiveAmount);
                }
                Ok(OrderEvent::OrderAwaitingPayment { amount })
            }
            (OrderStatus::AwaitingPayment, OrderCommand::Approve) => Ok(OrderEvent::OrderApproved),
            (OrderStatus::Pending, OrderCommand::Reject { reason }) => {
                Ok(OrderEvent::OrderRejected { reason })
            }
            (
                OrderStatus::Pending | OrderStatus::AwaitingPayment,
                OrderCommand::Cancel { reason },
            ) => Ok(OrderEvent::OrderCanceled {
                reason,
                previous_status: from,
            }),
            _ => Err(invalid),
        }
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: OrderCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), OrderError> {
        let event = match command {
            OrderCommand::Place {
                order_id,
                account_id,
                items,
                currency,
                placed_at,
            } => self.place_event(order_id, account_id, items, currency, placed_at)?,
            other => self.transition_event(other)?,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: OrderEvent) {
        match event {
            OrderEvent::OrderPlaced {
                order_id,
                account_id,
                items,
                currency,
                total,
                placed_at,
            } => {
                self.order_id = Some(order_id);
                self.account_id = Some(account_id);
                self.items = items;
                self.currency = Some(currency);
                self.total = Some(total);
                self.placed_at = Some(placed_at);
                self.status = Some(OrderStatus::Pending);
            }
            OrderEvent::OrderAwaitingPayment { amount } => {
                self.amount_due = Some(amount);
                self.status = Some(OrderStatus::AwaitingPayment);
            }
            OrderEvent::OrderApproved => self.status = Some(OrderStatus::Approved),
            OrderEvent::OrderRejected { reason } => {
                self.reason = Some(reason);
                self.status = Some(OrderStatus::Rejected);
            }
            OrderEvent::OrderCanceled { reason, .. } => {
                self.reason = reason;
                self.status = Some(OrderStatus::Canceled);
            }
        }
    }
}

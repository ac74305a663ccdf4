//! Wallets (payments): one per account, in one currency, never overdrawn.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Currency, Money, Rejection};

/// Why a charge was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The balance is lower than the amount.
    InsufficientFunds,
    /// The amount is not in the wallet's currency.
    CurrencyMismatch,
}

/// Commands to a wallet (aggregate id: the account id).
#[derive(Debug, Clone, PartialEq)]
pub enum WalletCommand {
    /// Opens the wallet with a zero balance in `currency`.
    Open {
        /// The owner (the aggregate id).
        account_id: Uuid,
        /// The wallet's only currency.
        currency: Currency,
    },
    /// Adds money: positive and in the wallet's currency.
    Deposit {
        /// How much.
        amount: Money,
    },
    /// Pays for an order: captured when the balance covers it, otherwise declined (an event,
    /// not an error). One charge per order.
    Charge {
        /// The order paid for.
        order_id: Uuid,
        /// How much.
        amount: Money,
    },
    /// Gives back a captured payment, once.
    Refund {
        /// The order whose payment is returned.
        order_id: Uuid,
    },
}

/// What happened to a wallet. Stored as `{"type": "<event_type>", "data": {..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum WalletEvent {
    /// The wallet exists, empty.
    #[serde(rename = "WalletOpened")]
    WalletOpened {
        /// The owner.
        account_id: Uuid,
        /// Its currency.
        currency: Currency,
    },
    /// Money came in.
    #[serde(rename = "FundsDeposited")]
    FundsDeposited {
        /// How much.
        amount: Money,
    },
    /// An order was paid.
    #[serde(rename = "PaymentCaptured")]
    PaymentCaptured {
        /// The order.
        order_id: Uuid,
        /// How much.
        amount: Money,
    },
    /// An order could not be paid.
    #[serde(rename = "PaymentDeclined")]
    PaymentDeclined {
        /// The order.
        order_id: Uuid,
        /// The amount asked for.
        amount: Money,
        /// Why.
        reason: DeclineReason,
    },
    /// A captured payment was returned.
    #[serde(rename = "PaymentRefunded")]
    PaymentRefunded {
        /// The order.
        order_id: Uuid,
        /// The amount returned (the captured amount).
        amount: Money,
    },
}

impl WalletEvent {
    /// The event as it may leave the process (`history`, `events tail`, the relay, …): it
    /// holds no secret, so this is its stored form.
    pub fn public_json(&self) -> serde_json::Value {
        crate::event_json::stored_json(self)
    }
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            WalletEvent::WalletOpened { .. } => "WalletOpened",
            WalletEvent::FundsDeposited { .. } => "FundsDeposited",
            WalletEvent::PaymentCaptured { .. } => "PaymentCaptured",
            WalletEvent::PaymentDeclined { .. } => "PaymentDeclined",
            WalletEvent::PaymentRefunded { .. } => "PaymentRefunded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version_text(&self.event_type())
    }
}

/// Why a wallet refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// The wallet was never opened. Kind: [`Rejection::NotFound`].
    #[error("wallet not found")]
    NotOpened,
    /// The wallet is already open. Kind: [`Rejection::Conflict`].
    #[error("wallet already opened")]
    AlreadyOpened,
    /// The amount is zero or negative. Kind: [`Rejection::Unprocessable`].
    #[error("amount must be greater than zero")]
    NonPositiveAmount,
    /// A deposit is not in the wallet's currency. Kind: [`Rejection::Unprocessable`].
    #[error("wallet holds {expected}, got {found}")]
    CurrencyMismatch {
        /// The wallet's currency.
        expected: Currency,
        /// The amount's currency.
        found: Currency,
    },
    /// The order was already charged (captured or declined). Kind: [`Rejection::Conflict`].
    #[error("order {order_id} was already charged")]
    AlreadyCharged {
        /// The order.
        order_id: Uuid,
    },
    /// No payment was captured for the order. Kind: [`Rejection::Unprocessable`].
    #[error("no captured payment for order {order_id}")]
    NotCaptured {
        /// The order.
        order_id: Uuid,
    },
    /// The order's payment was already refunded. Kind: [`Rejection::Conflict`].
    #[error("payment for order {order_id} was already refunded")]
    AlreadyRefunded {
        /// The order.
        order_id: Uuid,
    },
    /// The balance would leave the representable range. Kind: [`Rejection::Unprocessable`].
    #[error("amount out of range")]
    AmountOverflow,
}

impl WalletError {
    /// The kind of rejection (see each variant).
    pub fn kind(&self) -> Rejection {
        match self {
            WalletError::NotOpened => Rejection::NotFound,
            WalletError::AlreadyOpened
            | WalletError::AlreadyCharged { .. }
            | WalletError::AlreadyRefunded { .. } => Rejection::Conflict,
            WalletError::NonPositiveAmount
            | WalletError::CurrencyMismatch { .. }
            | WalletError::NotCaptured { .. }
            | WalletError::AmountOverflow => Rejection::Unprocessable,
        }
    }
}

/// Where an order's charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Paid.
    Captured,
    /// Not paid.
    Declined,
    /// Paid, then returned.
    Refunded,
}

/// One order's charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The amount asked for.
    pub amount: Money,
    /// Where it stands.
    pub status: ChargeStatus,
}

/// A wallet's state, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    account_id: Option<Uuid>,
    currency: Option<Currency>,
    balance: i64,
    charges: BTreeMap<Uuid, Charge>,
}

impl Wallet {
    /// The owner, once opened.
    pub fn account_id(&self) -> Option<Uuid> {
        self.account_id
    }

    /// True once opened.
    pub fn is_opened(&self) -> bool {
        self.currency.is_some()
    }

    /// The wallet's currency, once opened.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// The balance, once opened. Never negative.
    pub fn balance(&self) -> Option<Money> {
        self.currency.map(|c| Money::new(self.balance, c))
    }

    /// The charge for an order, if there was one.
    pub fn charge(&self, order_id: Uuid) -> Option<&Charge> {
        self.charges.get(&order_id)
    }

    /// Every charge, by order id.
    pub fn charges(&self) -> &BTreeMap<Uuid, Charge> {
        &self.charges
    }

    fn opened_currency(&self) -> Result<Currency, WalletError> {
        self.currency.ok_or(WalletError::NotOpened)
    }

    fn charge_event(&self, order_id: Uuid, amount: Money) -> Result<WalletEvent, WalletError> {
        let currency = self.opened_currency()?;
        if !amount.is_positive() {
            return Err(WalletError::NonPositiveAmount);
        }
        if self.charges.contains_key(&order_id) {
            return Err(WalletError::AlreadyCharged { order_id });
        }
        let declined = |reason| WalletEvent::PaymentDeclined {
            order_id,
            amount,
            reason,
        };
        Ok(if amount.currency != currency {
            declined(DeclineReason::CurrencyMismatch)
        } else if amount.amount > self.balance {
            declined(DeclineReason::InsufficientFunds)
        } else {
            WalletEvent::PaymentCaptured { order_id, amount }
        })
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: WalletCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WalletError> {
        let event = match command {
            WalletCommand::Open {
                account_id,
                currency,
            } => {
                if self.is_opened() {
                    return Err(WalletError::AlreadyOpened);
                }
                WalletEvent::WalletOpened {
                    account_id,
                    currency,
                }
            }
            WalletCommand::Deposit { amount } => {
                let currency = self.opened_currency()?;
                if !amount.is_positive() {
                    return Err(WalletError::NonPositiveAmount);
                }
                if amount.currency != currency {
                    return Err(WalletError::CurrencyMismatch {
                        expected: currency,
                        found: amount.currency,
                    });
                }
                self.balance
                    .checked_add(amount.amount)
                    .ok_or(WalletError::AmountOverflow)?;
                WalletEvent::FundsDeposited { amount }
            }
            WalletCommand::Charge { order_id, amount } => self.charge_event(order_id, amount)?,
            WalletCommand::Refund { order_id } => {
                self.opened_currency()?;
                let charge = match self.charges.get(&order_id) {
                    Some(charge) => charge,
                    None => return Err(WalletError::NotCaptured { order_id }),
                };
                match charge.status {
                    ChargeStatus::Captured => {}
                    ChargeStatus::Declined => return Err(WalletError::NotCaptured { order_id }),
                    ChargeStatus::Refunded => {
                        return Err(WalletError::AlreadyRefunded { order_id })
                    }
                }
                self.balance
                    .checked_add(charge.amount.amount)
                    .ok_or(WalletError::AmountOverflow)?;
                WalletEvent::PaymentRefunded {
                    order_id,
                    amount: charge.amount,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: WalletEvent) {
        // Events were checked when handled; saturating arithmetic only keeps a corrupt log
        // from panicking a fold.
        match event {
            WalletEvent::WalletOpened {
                account_id,
                currency,
            } => {
                self.account_id = Some(account_id);
                self.currency = Some(currency);
            }
            WalletEvent::FundsDeposited { amount } => {
                self.balance = self.balance.saturating_add(amount.amount);
            }
            WalletEvent::PaymentCaptured { order_id, amount } => {
                self.balance = self.balance.saturating_sub(amount.amount);
                self.charges.insert(
                    order_id,
                    Charge {
                        amount,
                        status: ChargeStatus::Captured,
                    },
                );
            }
            WalletEvent::PaymentDeclined {
                order_id, amount, ..
            } => {
                self.charges.insert(
                    order_id,
                    Charge {
                        amount,
                        status: ChargeStatus::Declined,
                    },
                );
            }
            WalletEvent::PaymentRefunded { order_id, amount } => {
                self.balance = self.balance.saturating_add(amount.amount);
                self.charges.insert(
                    order_id,
                    Charge {
                        amount,
                        status: ChargeStatus::Refunded,
                    },
                );
            }
        }
    }
}

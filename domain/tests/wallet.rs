//! Wallet aggregate: given / when / then.

mod common;

use common::{eur, id, round_trip, usd};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use domain::wallet::{
    ChargeStatus, DeclineReason, Wallet, WalletCommand, WalletError, WalletEvent,
};
use domain::{Currency, Money, Rejection};
use serde_json::json;

type Fixture = TestFramework<Wallet>;

const OWNER: u128 = 1;
const ORDER: u128 = 100;

fn fixture() -> Fixture {
    Fixture::with(())
}

fn opened() -> WalletEvent {
    WalletEvent::WalletOpened {
        account_id: id(OWNER),
        currency: Currency::EUR,
    }
}

fn deposited(amount: i64) -> WalletEvent {
    WalletEvent::FundsDeposited {
        amount: eur(amount),
    }
}

fn captured(amount: i64) -> WalletEvent {
    WalletEvent::PaymentCaptured {
        order_id: id(ORDER),
        amount: eur(amount),
    }
}

fn charge(amount: Money) -> WalletCommand {
    WalletCommand::Charge {
        order_id: id(ORDER),
        amount,
    }
}

// ---- Open --------------------------------------------------------------------------------

#[tokio::test]
async fn opening_a_wallet_records_it() {
    fixture()
        .given_no_previous_events()
        .when_async(WalletCommand::Open {
            account_id: id(OWNER),
            currency: Currency::EUR,
        })
        .await
        .then_expect_events(vec![opened()]);
}

#[tokio::test]
async fn opening_a_wallet_twice_is_rejected() {
    fixture()
        .given(vec![opened()])
        .when_async(WalletCommand::Open {
            account_id: id(OWNER),
            currency: Currency::USD,
        })
        .await
        .then_expect_error(WalletError::AlreadyOpened);
}

// ---- Deposit -----------------------------------------------------------------------------

#[tokio::test]
async fn a_deposit_adds_funds() {
    fixture()
        .given(vec![opened()])
        .when_async(WalletCommand::Deposit {
            amount: eur(10_000),
        })
        .await
        .then_expect_events(vec![deposited(10_000)]);
}

#[tokio::test]
async fn a_deposit_before_opening_is_rejected_as_not_opened() {
    fixture()
        .given_no_previous_events()
        .when_async(WalletCommand::Deposit { amount: eur(100) })
        .await
        .then_expect_error(WalletError::NotOpened);
}

#[tokio::test]
async fn a_zero_deposit_is_rejected() {
    fixture()
        .given(vec![opened()])
        .when_async(WalletCommand::Deposit { amount: eur(0) })
        .await
        .then_expect_error(WalletError::NonPositiveAmount);
}

#[tokio::test]
async fn a_negative_deposit_is_rejected() {
    fixture()
        .given(vec![opened()])
        .when_async(WalletCommand::Deposit { amount: eur(-5) })
        .await
        .then_expect_error(WalletError::NonPositiveAmount);
}

#[tokio::test]
async fn a_deposit_in_another_currency_is_rejected() {
    fixture()
        .given(vec![opened()])
        .when_async(WalletCommand::Deposit { amount: usd(100) })
        .await
        .then_expect_error(WalletError::CurrencyMismatch {
            expected: Currency::EUR,
            found: Currency::USD,
        });
}

#[tokio::test]
async fn a_deposit_that_would_overflow_the_balance_is_rejected() {
    fixture()
        .given(vec![opened(), deposited(i64::MAX)])
        .when_async(WalletCommand::Deposit { amount: eur(1) })
        .await
        .then_expect_error(WalletError::AmountOverflow);
}

// ---- Charge ------------------------------------------------------------------------------

#[tokio::test]
async fn a_charge_covered_by_the_balance_is_captured() {
    fixture()
        .given(vec![opened(), deposited(1_000)])
        .when_async(charge(eur(1_000)))
        .await
        .then_expect_events(vec![captured(1_000)]);
}

#[tokio::test]
async fn a_charge_above_the_balance_is_declined_for_insufficient_funds() {
    fixture()
        .given(vec![opened(), deposited(999)])
        .when_async(charge(eur(1_000)))
        .await
        .then_expect_events(vec![WalletEvent::PaymentDeclined {
            order_id: id(ORDER),
            amount: eur(1_000),
            reason: DeclineReason::InsufficientFunds,
        }]);
}

#[tokio::test]
async fn a_charge_in_another_currency_is_declined_for_currency_mismatch() {
    fixture()
        .given(vec![opened(), deposited(5_000)])
        .when_async(charge(usd(1_000)))
        .await
        .then_expect_events(vec![WalletEvent::PaymentDeclined {
            order_id: id(ORDER),
            amount: usd(1_000),
            reason: DeclineReason::CurrencyMismatch,
        }]);
}

#[tokio::test]
async fn a_charge_before_opening_is_rejected_as_not_opened() {
    fixture()
        .given_no_previous_events()
        .when_async(charge(eur(1)))
        .await
        .then_expect_error(WalletError::NotOpened);
}

#[tokio::test]
async fn a_non_positive_charge_is_rejected() {
    fixture()
        .given(vec![opened(), deposited(100)])
        .when_async(charge(eur(0)))
        .await
        .then_expect_error(WalletError::NonPositiveAmount);
}

#[tokio::test]
async fn a_second_charge_for_a_captured_order_is_rejected() {
    fixture()
        .given(vec![opened(), deposited(5_000), captured(1_000)])
        .when_async(charge(eur(1_000)))
        .await
        .then_expect_error(WalletError::AlreadyCharged {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn a_second_charge_for_a_declined_order_is_rejected() {
    fixture()
        .given(vec![
            opened(),
            WalletEvent::PaymentDeclined {
                order_id: id(ORDER),
                amount: eur(1_000),
                reason: DeclineReason::InsufficientFunds,
            },
            deposited(5_000),
        ])
        .when_async(charge(eur(1_000)))
        .await
        .then_expect_error(WalletError::AlreadyCharged {
            order_id: id(ORDER),
        });
}

// ---- Refund ------------------------------------------------------------------------------

#[tokio::test]
async fn refunding_a_captured_payment_returns_the_captured_amount() {
    fixture()
        .given(vec![opened(), deposited(5_000), captured(1_200)])
        .when_async(WalletCommand::Refund {
            order_id: id(ORDER),
        })
        .await
        .then_expect_events(vec![WalletEvent::PaymentRefunded {
            order_id: id(ORDER),
            amount: eur(1_200),
        }]);
}

#[tokio::test]
async fn refunding_before_opening_is_rejected_as_not_opened() {
    fixture()
        .given_no_previous_events()
        .when_async(WalletCommand::Refund {
            order_id: id(ORDER),
        })
        .await
        .then_expect_error(WalletError::NotOpened);
}

#[tokio::test]
async fn refunding_an_order_never_charged_is_rejected_as_not_captured() {
    fixture()
        .given(vec![opened(), deposited(5_000)])
        .when_async(WalletCommand::Refund {
            order_id: id(ORDER),
        })
        .await
        .then_expect_error(WalletError::NotCaptured {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn refunding_a_declined_payment_is_rejected_as_not_captured() {
    fixture()
        .given(vec![
            opened(),
            WalletEvent::PaymentDeclined {
                order_id: id(ORDER),
                amount: eur(1_000),
                reason: DeclineReason::InsufficientFunds,
            },
        ])
        .when_async(WalletCommand::Refund {
            order_id: id(ORDER),
        })
        .await
        .then_expect_error(WalletError::NotCaptured {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn refunding_twice_is_rejected_as_already_refunded() {
    fixture()
        .given(vec![
            opened(),
            deposited(5_000),
            captured(1_200),
            WalletEvent::PaymentRefunded {
                order_id: id(ORDER),
                amount: eur(1_200),
            },
        ])
        .when_async(WalletCommand::Refund {
            order_id: id(ORDER),
        })
        .await
        .then_expect_error(WalletError::AlreadyRefunded {
            order_id: id(ORDER),
        });
}

#[tokio::test]
async fn a_refund_that_would_overflow_the_balance_is_rejected() {
    fixture()
        .given(vec![
            opened(),
            deposited(10),
            captured(10),
            deposited(i64::MAX),
        ])
        .when_async(WalletCommand::Refund {
            order_id: id(ORDER),
        })
        .await
        .then_expect_error(WalletError::AmountOverflow);
}

// ---- State, kinds and stored form --------------------------------------------------------

#[test]
fn the_balance_follows_deposits_captures_and_refunds() {
    let mut wallet = Wallet::default();
    assert_eq!(wallet.balance(), None);
    wallet.apply(opened());
    assert_eq!(wallet.balance(), Some(eur(0)));
    wallet.apply(deposited(5_000));
    wallet.apply(captured(1_200));
    assert_eq!(wallet.balance(), Some(eur(3_800)));
    assert_eq!(
        wallet.charge(id(ORDER)).map(|c| c.status),
        Some(ChargeStatus::Captured)
    );
    wallet.apply(WalletEvent::PaymentRefunded {
        order_id: id(ORDER),
        amount: eur(1_200),
    });
    assert_eq!(wallet.balance(), Some(eur(5_000)));
    assert_eq!(
        wallet.charge(id(ORDER)).map(|c| c.status),
        Some(ChargeStatus::Refunded)
    );
    assert_eq!(wallet.account_id(), Some(id(OWNER)));
    assert_eq!(wallet.currency(), Some(Currency::EUR));
    round_trip(&wallet);
}

#[test]
fn wallet_errors_have_their_documented_kinds() {
    use WalletError::*;
    let order_id = id(ORDER);
    assert_eq!(NotOpened.kind(), Rejection::NotFound);
    assert_eq!(AlreadyOpened.kind(), Rejection::Conflict);
    assert_eq!(AlreadyCharged { order_id }.kind(), Rejection::Conflict);
    assert_eq!(AlreadyRefunded { order_id }.kind(), Rejection::Conflict);
    assert_eq!(NonPositiveAmount.kind(), Rejection::Unprocessable);
    assert_eq!(
        CurrencyMismatch {
            expected: Currency::EUR,
            found: Currency::USD
        }
        .kind(),
        Rejection::Unprocessable
    );
    assert_eq!(NotCaptured { order_id }.kind(), Rejection::Unprocessable);
    assert_eq!(AmountOverflow.kind(), Rejection::Unprocessable);
}

#[test]
fn wallet_events_have_stable_stored_names_and_shapes() {
    assert_eq!(Wallet::TYPE, "wallet");
    let declined = WalletEvent::PaymentDeclined {
        order_id: id(ORDER),
        amount: eur(1),
        reason: DeclineReason::InsufficientFunds,
    };
    let events = [
        (opened(), "WalletOpened"),
        (deposited(1), "FundsDeposited"),
        (captured(1), "PaymentCaptured"),
        (declined.clone(), "PaymentDeclined"),
        (
            WalletEvent::PaymentRefunded {
                order_id: id(ORDER),
                amount: eur(1),
            },
            "PaymentRefunded",
        ),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1");
        assert_eq!(round_trip(&event)["type"], json!(name));
    }
    assert_eq!(
        serde_json::to_value(declined).unwrap(),
        json!({
            "type": "PaymentDeclined",
            "data": {
                "order_id": "00000000-0000-0000-0000-000000000064",
                "amount": {"amount": 1, "currency": "EUR"},
                "reason": "insufficient_funds"
            }
        })
    );
    assert_eq!(
        round_trip(&DeclineReason::CurrencyMismatch),
        json!("currency_mismatch")
    );
}

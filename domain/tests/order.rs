//! Order aggregate: given / when / then.

mod common;

use common::{at, eur, id, qty, round_trip, usd};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use domain::order::{
    Order, OrderCommand, OrderError, OrderEvent, OrderLine, OrderStatus, MAX_ITEMS,
};
use domain::{Currency, Money, Rejection};
use serde_json::json;

type Fixture = TestFramework<Order>;

const ORDER: u128 = 100;
const BUYER: u128 = 1;

fn fixture() -> Fixture {
    Fixture::with(())
}

fn line(product: u128, quantity: u32, unit_price: Money) -> OrderLine {
    OrderLine {
        product_id: id(product),
        quantity: qty(quantity),
        unit_price,
    }
}

fn two_lines() -> Vec<OrderLine> {
    vec![line(10, 2, eur(1390)), line(11, 1, eur(500))]
}

fn place(items: Vec<OrderLine>) -> OrderCommand {
    OrderCommand::Place {
        order_id: id(ORDER),
        account_id: id(BUYER),
        items,
        currency: Currency::EUR,
        placed_at: at(0),
    }
}

fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: id(ORDER),
        account_id: id(BUYER),
        items: two_lines(),
        currency: Currency::EUR,
        total: eur(3280),
        placed_at: at(0),
    }
}

fn awaiting() -> OrderEvent {
    OrderEvent::OrderAwaitingPayment { amount: eur(3280) }
}

fn approved() -> OrderEvent {
    OrderEvent::OrderApproved
}

fn rejected() -> OrderEvent {
    OrderEvent::OrderRejected {
        reason: "out of stock".to_owned(),
    }
}

fn canceled(previous_status: OrderStatus) -> OrderEvent {
    OrderEvent::OrderCanceled {
        reason: None,
        previous_status,
    }
}

fn mark_awaiting() -> OrderCommand {
    OrderCommand::MarkAwaitingPayment { amount: eur(3280) }
}

fn reject() -> OrderCommand {
    OrderCommand::Reject {
        reason: "out of stock".to_owned(),
    }
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel { reason: None }
}

fn invalid(from: OrderStatus, command: &'static str) -> OrderError {
    OrderError::InvalidTransition { from, command }
}

// ---- Place -------------------------------------------------------------------------------

#[tokio::test]
async fn placing_an_order_records_it_with_its_total() {
    fixture()
        .given_no_previous_events()
        .when_async(place(two_lines()))
        .await
        .then_expect_events(vec![placed()]);
}

#[tokio::test]
async fn placing_an_order_twice_is_rejected() {
    fixture()
        .given(vec![placed()])
        .when_async(place(two_lines()))
        .await
        .then_expect_error(OrderError::AlreadyPlaced);
}

#[tokio::test]
async fn placing_an_order_without_items_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(place(vec![]))
        .await
        .then_expect_error(OrderError::EmptyOrder);
}

#[tokio::test]
async fn placing_an_order_with_more_than_100_items_is_rejected() {
    let items: Vec<OrderLine> = (0..=MAX_ITEMS as u128)
        .map(|n| line(1_000 + n, 1, eur(1)))
        .collect();
    fixture()
        .given_no_previous_events()
        .when_async(place(items))
        .await
        .then_expect_error(OrderError::TooManyItems {
            max: 100,
            actual: 101,
        });
}

#[tokio::test]
async fn placing_an_order_with_exactly_100_items_is_accepted() {
    let items: Vec<OrderLine> = (0..MAX_ITEMS as u128)
        .map(|n| line(1_000 + n, 1, eur(1)))
        .collect();
    let events = fixture()
        .given_no_previous_events()
        .when_async(place(items))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(
        events.as_slice(),
        [OrderEvent::OrderPlaced { total, .. }] if *total == eur(100)
    ));
}

#[tokio::test]
async fn placing_an_order_with_the_same_product_twice_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(place(vec![line(10, 1, eur(1)), line(10, 2, eur(1))]))
        .await
        .then_expect_error(OrderError::DuplicateItem { product_id: id(10) });
}

#[tokio::test]
async fn placing_an_order_with_a_price_in_another_currency_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(place(vec![line(10, 1, eur(1)), line(11, 1, usd(1))]))
        .await
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::EUR,
            found: Currency::USD,
        });
}

#[tokio::test]
async fn placing_an_order_with_a_zero_unit_price_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(place(vec![line(10, 1, eur(0))]))
        .await
        .then_expect_error(OrderError::NonPositivePrice { product_id: id(10) });
}

#[tokio::test]
async fn placing_an_order_whose_total_overflows_is_rejected() {
    fixture()
        .given_no_previous_events()
        .when_async(place(vec![line(10, 1, eur(i64::MAX)), line(11, 1, eur(1))]))
        .await
        .then_expect_error(OrderError::TotalOverflow);
    fixture()
        .given_no_previous_events()
        .when_async(place(vec![line(10, 2, eur(i64::MAX / 2 + 1))]))
        .await
        .then_expect_error(OrderError::TotalOverflow);
}

// ---- MarkAwaitingPayment -----------------------------------------------------------------

#[tokio::test]
async fn a_pending_order_can_await_payment() {
    fixture()
        .given(vec![placed()])
        .when_async(mark_awaiting())
        .await
        .then_expect_events(vec![awaiting()]);
}

#[tokio::test]
async fn awaiting_payment_in_another_currency_is_rejected() {
    fixture()
        .given(vec![placed()])
        .when_async(OrderCommand::MarkAwaitingPayment { amount: usd(3280) })
        .await
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::EUR,
            found: Currency::USD,
        });
}

#[tokio::test]
async fn awaiting_a_non_positive_payment_is_rejected() {
    fixture()
        .given(vec![placed()])
        .when_async(OrderCommand::MarkAwaitingPayment { amount: eur(0) })
        .await
        .then_expect_error(OrderError::NonPositiveAmount);
}

#[tokio::test]
async fn awaiting_payment_twice_is_an_invalid_transition() {
    fixture()
        .given(vec![placed(), awaiting()])
        .when_async(mark_awaiting())
        .await
        .then_expect_error(invalid(OrderStatus::AwaitingPayment, "MarkAwaitingPayment"));
}

// ---- Approve -----------------------------------------------------------------------------

#[tokio::test]
async fn an_order_awaiting_payment_can_be_approved() {
    fixture()
        .given(vec![placed(), awaiting()])
        .when_async(OrderCommand::Approve)
        .await
        .then_expect_events(vec![approved()]);
}

#[tokio::test]
async fn approving_a_pending_order_is_an_invalid_transition() {
    fixture()
        .given(vec![placed()])
        .when_async(OrderCommand::Approve)
        .await
        .then_expect_error(invalid(OrderStatus::Pending, "Approve"));
}

// ---- Reject ------------------------------------------------------------------------------

#[tokio::test]
async fn a_pending_order_can_be_rejected() {
    fixture()
        .given(vec![placed()])
        .when_async(reject())
        .await
        .then_expect_events(vec![rejected()]);
}

#[tokio::test]
async fn rejecting_an_order_awaiting_payment_is_an_invalid_transition() {
    fixture()
        .given(vec![placed(), awaiting()])
        .when_async(reject())
        .await
        .then_expect_error(invalid(OrderStatus::AwaitingPayment, "Reject"));
}

// ---- Cancel ------------------------------------------------------------------------------

#[tokio::test]
async fn a_pending_order_can_be_canceled() {
    fixture()
        .given(vec![placed()])
        .when_async(OrderCommand::Cancel {
            reason: Some("changed my mind".to_owned()),
        })
        .await
        .then_expect_events(vec![OrderEvent::OrderCanceled {
            reason: Some("changed my mind".to_owned()),
            previous_status: OrderStatus::Pending,
        }]);
}

#[tokio::test]
async fn an_order_awaiting_payment_can_be_canceled() {
    fixture()
        .given(vec![placed(), awaiting()])
        .when_async(cancel())
        .await
        .then_expect_events(vec![canceled(OrderStatus::AwaitingPayment)]);
}

// ---- Before placing and terminal states --------------------------------------------------

#[tokio::test]
async fn every_transition_before_placing_is_rejected_as_not_found() {
    for command in [mark_awaiting(), OrderCommand::Approve, reject(), cancel()] {
        fixture()
            .given_no_previous_events()
            .when_async(command)
            .await
            .then_expect_error(OrderError::NotFound);
    }
}

#[tokio::test]
async fn terminal_orders_accept_no_transition() {
    let terminals = [
        (
            vec![placed(), awaiting(), approved()],
            OrderStatus::Approved,
        ),
        (vec![placed(), rejected()], OrderStatus::Rejected),
        (
            vec![placed(), canceled(OrderStatus::Pending)],
            OrderStatus::Canceled,
        ),
        (
            vec![placed(), awaiting(), canceled(OrderStatus::AwaitingPayment)],
            OrderStatus::Canceled,
        ),
    ];
    for (history, status) in terminals {
        for command in [mark_awaiting(), OrderCommand::Approve, reject(), cancel()] {
            let name = command.name();
            fixture()
                .given(history.clone())
                .when_async(command)
                .await
                .then_expect_error(invalid(status, name));
        }
        fixture()
            .given(history)
            .when_async(place(two_lines()))
            .await
            .then_expect_error(OrderError::AlreadyPlaced);
    }
}

// ---- State, kinds and stored form --------------------------------------------------------

#[test]
fn the_folded_state_exposes_the_order() {
    let mut order = Order::default();
    assert_eq!(order.status(), None);
    order.apply(placed());
    assert_eq!(order.status(), Some(OrderStatus::Pending));
    assert_eq!(order.total(), Some(eur(3280)));
    assert_eq!(order.items(), two_lines().as_slice());
    assert_eq!(order.account_id(), Some(id(BUYER)));
    assert_eq!(order.currency(), Some(Currency::EUR));
    assert_eq!(order.placed_at(), Some(at(0)));
    order.apply(awaiting());
    assert_eq!(order.status(), Some(OrderStatus::AwaitingPayment));
    assert_eq!(order.amount_due(), Some(eur(3280)));
    order.apply(OrderEvent::OrderCanceled {
        reason: Some("late".to_owned()),
        previous_status: OrderStatus::AwaitingPayment,
    });
    assert_eq!(order.status(), Some(OrderStatus::Canceled));
    assert_eq!(order.reason(), Some("late"));
    assert!(order.status().is_some_and(OrderStatus::is_terminal));
    round_trip(&order);
}

#[test]
fn order_errors_have_their_documented_kinds() {
    use OrderError::*;
    assert_eq!(NotFound.kind(), Rejection::NotFound);
    assert_eq!(AlreadyPlaced.kind(), Rejection::Conflict);
    assert_eq!(
        invalid(OrderStatus::Approved, "Cancel").kind(),
        Rejection::Conflict
    );
    for unprocessable in [
        EmptyOrder,
        TooManyItems { max: 1, actual: 2 },
        DuplicateItem { product_id: id(1) },
        CurrencyMismatch {
            expected: Currency::EUR,
            found: Currency::USD,
        },
        NonPositivePrice { product_id: id(1) },
        NonPositiveAmount,
        TotalOverflow,
    ] {
        assert_eq!(unprocessable.kind(), Rejection::Unprocessable);
    }
}

#[test]
fn order_statuses_have_stable_screaming_names() {
    for (status, name) in [
        (OrderStatus::Pending, "PENDING"),
        (OrderStatus::AwaitingPayment, "AWAITING_PAYMENT"),
        (OrderStatus::Approved, "APPROVED"),
        (OrderStatus::Rejected, "REJECTED"),
        (OrderStatus::Canceled, "CANCELED"),
    ] {
        assert_eq!(round_trip(&status), json!(name));
        assert_eq!(status.to_string(), name);
    }
}

#[test]
fn order_events_have_stable_stored_names_and_shapes() {
    assert_eq!(Order::TYPE, "order");
    let events = [
        (placed(), "OrderPlaced"),
        (awaiting(), "OrderAwaitingPayment"),
        (approved(), "OrderApproved"),
        (rejected(), "OrderRejected"),
        (canceled(OrderStatus::Pending), "OrderCanceled"),
    ];
    for (event, name) in events {
        assert_eq!(event.event_type(), name);
        assert_eq!(event.event_version(), "1");
        assert_eq!(round_trip(&event)["type"], json!(name));
    }
    assert_eq!(
        serde_json::to_value(approved()).unwrap(),
        json!({"type": "OrderApproved"})
    );
    assert_eq!(
        serde_json::to_value(canceled(OrderStatus::AwaitingPayment)).unwrap(),
        json!({
            "type": "OrderCanceled",
            "data": {"reason": null, "previous_status": "AWAITING_PAYMENT"}
        })
    );
    assert_eq!(
        serde_json::to_value(line(10, 2, eur(1390))).unwrap(),
        json!({
            "product_id": "00000000-0000-0000-0000-00000000000a",
            "quantity": 2,
            "unit_price": {"amount": 1390, "currency": "EUR"}
        })
    );
}

//! Property tests: random command sequences, driven through `handle` (which applies each
//! emitted event through the `EventSink`), never break an aggregate's invariants, and folding
//! the emitted events with `apply` always rebuilds the same state.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{at, id, policy, qty};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::account::{
    Account, AccountCommand, AccountError, AccountEvent, AccountServices, InMemoryEmailRegistry,
    Role,
};
use domain::order::{Order, OrderCommand, OrderEvent, OrderLine, OrderStatus};
use domain::policy_set::{PolicySet, PolicySetCommand};
use domain::product::{Product, ProductCommand, ProductEvent, ReservationStatus};
use domain::wallet::{Wallet, WalletCommand, WalletEvent};
use domain::{Currency, Email, Money};
use proptest::prelude::*;
use tokio::runtime::Runtime;

const CASES: u32 = 64;
const MAX_STEPS: usize = 40;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// Handles one command like the framework does: `handle` with a fresh sink (each written
/// event is applied to the aggregate), then `collect`. Also checks the two properties every
/// aggregate must have: a rejected command leaves the state untouched and emits nothing, and
/// applying the emitted events to the previous state yields the new state.
fn step<A>(
    rt: &Runtime,
    aggregate: &mut A,
    command: A::Command,
    services: &A::Services,
) -> Result<Vec<A::Event>, A::Error>
where
    A: Aggregate + Clone + PartialEq + std::fmt::Debug,
{
    let before = aggregate.clone();
    let sink = EventSink::default();
    let result = rt.block_on(aggregate.handle(command, services, &sink));
    let events = rt.block_on(sink.collect());
    match result {
        Ok(()) => {
            let mut replayed = before;
            for event in events.iter().cloned() {
                replayed.apply(event);
            }
            assert_eq!(&replayed, aggregate, "apply disagrees with handle");
            Ok(events)
        }
        Err(err) => {
            assert!(events.is_empty(), "a rejected command emitted {events:?}");
            assert_eq!(&before, aggregate, "a rejected command changed the state");
            Err(err)
        }
    }
}

/// Folds a whole log from the default state.
fn fold<A: Aggregate>(log: &[A::Event]) -> A {
    let mut aggregate = A::default();
    for event in log.iter().cloned() {
        aggregate.apply(event);
    }
    aggregate
}

fn currency(n: u8) -> Currency {
    if n % 3 == 0 {
        Currency::USD
    } else {
        Currency::EUR
    }
}

// ---- Product -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum ProductOp {
    Create(u32),
    Update(i64),
    Restock(u32),
    Reserve(u8, u32),
    Release(u8),
    Commit(u8),
}

fn product_op() -> impl Strategy<Value = ProductOp> {
    prop_oneof![
        1 => (0u32..30).prop_map(ProductOp::Create),
        1 => (-5i64..2_000).prop_map(ProductOp::Update),
        2 => (1u32..20).prop_map(ProductOp::Restock),
        4 => (0u8..8, 1u32..25).prop_map(|(o, q)| ProductOp::Reserve(o, q)),
        2 => (0u8..8).prop_map(ProductOp::Release),
        2 => (0u8..8).prop_map(ProductOp::Commit),
    ]
}

fn product_command(op: ProductOp) -> ProductCommand {
    let order = |o: u8| id(100 + u128::from(o));
    match op {
        ProductOp::Create(stock) => ProductCommand::Create {
            product_id: id(10),
            seller: id(2),
            name: "Mug".to_owned(),
            description: String::new(),
            sku: None,
            price: Money::new(1390, Currency::EUR),
            stock,
        },
        ProductOp::Update(price) => ProductCommand::Update {
            name: None,
            description: None,
            price: Some(Money::new(price, Currency::EUR)),
        },
        ProductOp::Restock(q) => ProductCommand::Restock { quantity: qty(q) },
        ProductOp::Reserve(o, q) => ProductCommand::Reserve {
            order_id: order(o),
            quantity: qty(q),
        },
        ProductOp::Release(o) => ProductCommand::Release { order_id: order(o) },
        ProductOp::Commit(o) => ProductCommand::CommitReservation { order_id: order(o) },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn product_stock_never_goes_negative_and_reservations_add_up(
        ops in prop::collection::vec(product_op(), 0..MAX_STEPS)
    ) {
        let rt = runtime();
        let mut product = Product::default();
        let mut log = Vec::new();
        let (mut added, mut shipped) = (0u64, 0u64);
        let mut decided_orders = BTreeSet::new();
        for op in ops {
            let Ok(events) = step(&rt, &mut product, product_command(op), &()) else {
                continue;
            };
            for event in &events {
                match event {
                    ProductEvent::ProductCreated { stock, .. } => added += u64::from(*stock),
                    ProductEvent::StockAdded { quantity } => added += u64::from(quantity.get()),
                    ProductEvent::ReservationCommitted { quantity, .. } => {
                        shipped += u64::from(quantity.get())
                    }
                    ProductEvent::StockReserved { order_id, .. }
                    | ProductEvent::StockReservationRejected { order_id, .. } => {
                        prop_assert!(decided_orders.insert(*order_id), "second reservation");
                    }
                    _ => {}
                }
            }
            log.extend(events);

            let (on_hand, reserved) = (product.stock_on_hand(), product.stock_reserved());
            prop_assert!(reserved <= on_hand, "reserved {reserved} > on hand {on_hand}");
            prop_assert_eq!(product.stock_available(), on_hand - reserved);
            let open: u32 = product
                .reservations()
                .values()
                .filter(|r| r.status == ReservationStatus::Open)
                .map(|r| r.quantity.get())
                .sum();
            prop_assert_eq!(open, reserved);
            prop_assert_eq!(u64::from(on_hand), added - shipped);
        }
        prop_assert_eq!(fold::<Product>(&log), product);
    }
}

// ---- Wallet ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum WalletOp {
    Open(u8),
    Deposit(i64, u8),
    Charge(u8, i64, u8),
    Refund(u8),
}

fn wallet_op() -> impl Strategy<Value = WalletOp> {
    prop_oneof![
        1 => (0u8..3).prop_map(WalletOp::Open),
        3 => (-10i64..500, 0u8..6).prop_map(|(a, c)| WalletOp::Deposit(a, c)),
        4 => (0u8..6, -10i64..800, 0u8..6).prop_map(|(o, a, c)| WalletOp::Charge(o, a, c)),
        2 => (0u8..6).prop_map(WalletOp::Refund),
    ]
}

fn wallet_command(op: WalletOp) -> WalletCommand {
    let order = |o: u8| id(100 + u128::from(o));
    match op {
        WalletOp::Open(c) => WalletCommand::Open {
            account_id: id(1),
            currency: currency(c),
        },
        WalletOp::Deposit(a, c) => WalletCommand::Deposit {
            amount: Money::new(a, currency(c)),
        },
        WalletOp::Charge(o, a, c) => WalletCommand::Charge {
            order_id: order(o),
            amount: Money::new(a, currency(c)),
        },
        WalletOp::Refund(o) => WalletCommand::Refund { order_id: order(o) },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn wallet_balance_never_goes_negative_and_matches_its_movements(
        ops in prop::collection::vec(wallet_op(), 0..MAX_STEPS)
    ) {
        let rt = runtime();
        let mut wallet = Wallet::default();
        let mut log = Vec::new();
        let mut expected = 0i64;
        let mut charged = BTreeSet::new();
        let mut captured = BTreeMap::new();
        let mut refunded = BTreeSet::new();
        for op in ops {
            let Ok(events) = step(&rt, &mut wallet, wallet_command(op), &()) else {
                continue;
            };
            for event in &events {
                match event {
                    WalletEvent::WalletOpened { .. } => {}
                    WalletEvent::FundsDeposited { amount } => {
                        prop_assert!(amount.is_positive());
                        prop_assert_eq!(Some(amount.currency), wallet.currency());
                        expected += amount.amount;
                    }
                    WalletEvent::PaymentCaptured { order_id, amount } => {
                        prop_assert!(charged.insert(*order_id), "second charge");
                        captured.insert(*order_id, amount.amount);
                        expected -= amount.amount;
                    }
                    WalletEvent::PaymentDeclined { order_id, .. } => {
                        prop_assert!(charged.insert(*order_id), "second charge");
                    }
                    WalletEvent::PaymentRefunded { order_id, amount } => {
                        prop_assert_eq!(captured.get(order_id), Some(&amount.amount));
                        prop_assert!(refunded.insert(*order_id), "second refund");
                        expected += amount.amount;
                    }
                }
            }
            log.extend(events);
            if let Some(balance) = wallet.balance() {
                prop_assert!(balance.amount >= 0, "negative balance {balance}");
                prop_assert_eq!(balance.amount, expected);
            }
        }
        prop_assert_eq!(fold::<Wallet>(&log), wallet);
    }
}

// ---- Order -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum OrderOp {
    Place(Vec<(u8, u32, i64)>),
    MarkAwaitingPayment(i64, u8),
    Approve,
    Reject,
    Cancel,
}

fn order_op() -> impl Strategy<Value = OrderOp> {
    prop_oneof![
        1 => prop::collection::vec((0u8..5, 1u32..5, -1i64..3_000), 0..4).prop_map(OrderOp::Place),
        2 => (-1i64..5_000, 0u8..6).prop_map(|(a, c)| OrderOp::MarkAwaitingPayment(a, c)),
        2 => Just(OrderOp::Approve),
        1 => Just(OrderOp::Reject),
        1 => Just(OrderOp::Cancel),
    ]
}

fn order_command(op: OrderOp) -> OrderCommand {
    match op {
        OrderOp::Place(lines) => OrderCommand::Place {
            order_id: id(100),
            account_id: id(1),
            items: lines
                .into_iter()
                .map(|(p, q, price)| OrderLine {
                    product_id: id(10 + u128::from(p)),
                    quantity: qty(q),
                    unit_price: Money::new(price, Currency::EUR),
                })
                .collect(),
            currency: Currency::EUR,
            placed_at: at(0),
        },
        OrderOp::MarkAwaitingPayment(a, c) => OrderCommand::MarkAwaitingPayment {
            amount: Money::new(a, currency(c)),
        },
        OrderOp::Approve => OrderCommand::Approve,
        OrderOp::Reject => OrderCommand::Reject {
            reason: "out of stock".to_owned(),
        },
        OrderOp::Cancel => OrderCommand::Cancel { reason: None },
    }
}

fn allowed(from: Option<OrderStatus>, to: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        (from, to),
        (None, Pending)
            | (Some(Pending), AwaitingPayment | Rejected | Canceled)
            | (Some(AwaitingPayment), Approved | Canceled)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn an_order_changes_state_once_per_step_and_never_leaves_a_terminal_state(
        ops in prop::collection::vec(order_op(), 0..MAX_STEPS)
    ) {
        let rt = runtime();
        let mut order = Order::default();
        let mut log = Vec::new();
        let mut seen = vec![];
        for op in ops {
            let from = order.status();
            let result = step(&rt, &mut order, order_command(op), &());
            if from.is_some_and(OrderStatus::is_terminal) {
                prop_assert!(result.is_err(), "a terminal order accepted a command");
            }
            let Ok(events) = result else { continue };
            prop_assert_eq!(events.len(), 1, "one event per accepted command");
            let to = order.status().expect("placed");
            prop_assert!(allowed(from, to), "illegal transition {from:?} -> {to:?}");
            prop_assert!(!seen.contains(&to), "status {to:?} entered twice");
            seen.push(to);
            if let OrderEvent::OrderCanceled { previous_status, .. } = &events[0] {
                prop_assert_eq!(Some(*previous_status), from);
            }
            if let OrderEvent::OrderPlaced { items, total, .. } = &events[0] {
                let sum: i64 = items
                    .iter()
                    .map(|l| l.unit_price.amount * i64::from(l.quantity.get()))
                    .sum();
                prop_assert_eq!(total.amount, sum);
            }
            log.extend(events);
        }
        prop_assert!(seen.len() <= 3);
        prop_assert_eq!(fold::<Order>(&log), order);
    }
}

// ---- Account -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum AccountOp {
    Register,
    Login,
    Revoke(u8),
    Delete,
}

fn account_op() -> impl Strategy<Value = AccountOp> {
    prop_oneof![
        1 => Just(AccountOp::Register),
        2 => Just(AccountOp::Login),
        3 => (0u8..4).prop_map(AccountOp::Revoke),
        1 => Just(AccountOp::Delete),
    ]
}

fn account_command(op: AccountOp) -> AccountCommand {
    match op {
        AccountOp::Register => AccountCommand::Register {
            account_id: id(1),
            email: Email::parse("alice@example.com").unwrap(),
            name: "Alice".to_owned(),
            password_hash: "hash".to_owned(),
            role: Role::Customer,
            at: at(0),
        },
        AccountOp::Login => AccountCommand::RecordLogin { at: at(1) },
        AccountOp::Revoke(j) => AccountCommand::RevokeRefreshToken {
            jti: id(500 + u128::from(j)),
        },
        AccountOp::Delete => AccountCommand::Delete { at: at(2) },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_deleted_account_accepts_nothing_and_tokens_are_revoked_once(
        ops in prop::collection::vec(account_op(), 0..MAX_STEPS)
    ) {
        let rt = runtime();
        let services = AccountServices::new(Arc::new(InMemoryEmailRegistry::new()));
        let mut account = Account::default();
        let mut log = Vec::new();
        let mut revoked = BTreeSet::new();
        for op in ops {
            let was_deleted = account.is_deleted();
            let result = step(&rt, &mut account, account_command(op), &services);
            if was_deleted {
                prop_assert_eq!(result.as_ref().err(), Some(&AccountError::AccountDeleted));
            }
            let Ok(events) = result else { continue };
            for event in &events {
                if let AccountEvent::RefreshTokenRevoked { jti } = event {
                    prop_assert!(revoked.insert(*jti), "token revoked twice");
                }
            }
            log.extend(events);
            prop_assert_eq!(account.revoked_tokens(), &revoked);
        }
        prop_assert_eq!(fold::<Account>(&log), account);
    }
}

// ---- PolicySet ---------------------------------------------------------------------------

const POLICIES: [&str; 4] = [
    "10:get:orders:15",
    "10:*:orders:*",
    "10:*:*:*",
    "11:get:products:*",
];

#[derive(Debug, Clone)]
enum PolicyOp {
    Grant(usize),
    Revoke(usize),
    RevokeAll,
}

fn policy_op() -> impl Strategy<Value = PolicyOp> {
    prop_oneof![
        3 => (0..POLICIES.len()).prop_map(PolicyOp::Grant),
        2 => (0..POLICIES.len()).prop_map(PolicyOp::Revoke),
        1 => Just(PolicyOp::RevokeAll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_policy_set_holds_exactly_what_was_granted_and_not_revoked(
        ops in prop::collection::vec(policy_op(), 0..MAX_STEPS)
    ) {
        let rt = runtime();
        let mut set = PolicySet::default();
        let mut model = BTreeSet::new();
        let mut log = Vec::new();
        for op in ops {
            let (command, changes) = match op {
                PolicyOp::Grant(i) => {
                    let p = policy(POLICIES[i]);
                    (PolicySetCommand::Grant { policy: p.clone() }, model.insert(p))
                }
                PolicyOp::Revoke(i) => {
                    let p = policy(POLICIES[i]);
                    (PolicySetCommand::Revoke { policy: p.clone() }, model.remove(&p))
                }
                PolicyOp::RevokeAll => {
                    let changes = !model.is_empty();
                    model.clear();
                    (PolicySetCommand::RevokeAll, changes)
                }
            };
            let events = step(&rt, &mut set, command, &())
                .unwrap_or_else(|never| match never {});
            prop_assert_eq!(events.len(), usize::from(changes), "no-ops record nothing");
            log.extend(events);
            prop_assert_eq!(set.policies(), &model);
            for request in [
                ("10", "get", "orders", "15"),
                ("10", "put", "orders", "16"),
                ("10", "delete", "accounts", "10"),
                ("11", "get", "products", "1"),
            ] {
                let (s, a, t, r) = request;
                prop_assert_eq!(
                    set.allows(s, a, t, r),
                    model.iter().any(|p| p.allows(s, a, t, r))
                );
            }
        }
        prop_assert_eq!(fold::<PolicySet>(&log), set);
    }
}

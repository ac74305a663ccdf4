//! Helpers for the order saga's end-to-end tests: the saga worker running beside a test API,
//! waiting for orders to settle, and the books that must balance afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::order::{Order, OrderStatus};
use domain::product::{Product, ReservationStatus};
use domain::wallet::{Wallet, WalletEvent};
use eventstore_config::{CommandBus, Settings, Store};
use projectors::saga::{self, SagaOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The saga (and its deadline worker) running in the background until dropped.
pub struct RunningSaga {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _wake: watch::Sender<u64>,
}

impl RunningSaga {
    /// Starts the saga over `store`.
    pub fn start(store: &Store, settings: &Settings) -> Self {
        let (wake, wake_rx) = watch::channel(0);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(saga::run(store.clone(), settings.clone(), wake_rx, stop_rx));
        Self {
            stop,
            task: Some(task),
            _wake: wake,
        }
    }

    /// Stops it and waits for it to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await
                .expect("saga task")
                .expect("saga ended with an error");
        }
    }
}

impl Drop for RunningSaga {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Runs saga batches by hand until `until` holds (checked after each batch), or panics after
/// 20 s.
pub async fn step_until<F, Fut>(store: &Store, settings: &Settings, mut until: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let bus = CommandBus::new(store.clone(), settings);
    let options = SagaOptions::from_settings(settings);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !until().await {
        assert!(
            Instant::now() < deadline,
            "the saga did not get there in 20 s"
        );
        if saga::handle_batch(store, &bus, &options)
            .await
            .expect("saga batch")
            == 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Whether the saga (every segment of it) has consumed every committed event (including the ones its own commands
/// appended). Counts events after its checkpoint without the commit-safe reader's wait for
/// older transactions, so an event not yet readable still counts as pending.
pub async fn saga_caught_up(store: &Store) -> bool {
    let mut checkpoints: Vec<_> =
        eventstore_config::followers::segment_checkpoints(store, saga::NAME)
            .await
            .expect("saga checkpoints")
            .into_iter()
            .map(|(_, cp)| cp)
            .collect();
    if checkpoints.is_empty() {
        checkpoints.push(eventstore_config::Checkpoint::START);
    }
    for checkpoint in checkpoints {
        let (pending, _) = projectors::sql::events_after(store, checkpoint)
            .await
            .expect("count the events after the checkpoint");
        if pending > 0 {
            return false;
        }
    }
    true
}

/// The order's status.
pub async fn status(store: &Store, order_id: &str) -> Option<OrderStatus> {
    store
        .load_current::<Order>(order_id)
        .await
        .expect("load the order")
        .state
        .status()
}

/// Waits (up to `limit`) until every order is in a final state and the saga has caught up
/// (so compensations are done too). Returns the final statuses.
pub async fn settle(store: &Store, orders: &[String], limit: Duration) -> Vec<OrderStatus> {
    let deadline = Instant::now() + limit;
    loop {
        let mut statuses = Vec::with_capacity(orders.len());
        for order in orders {
            statuses.push(status(store, order).await);
        }
        let all_final = statuses.iter().all(|s| s.is_some_and(|s| s.is_terminal()));
        if all_final && saga_caught_up(store).await {
            return statuses.into_iter().flatten().collect();
        }
        assert!(
            Instant::now() < deadline,
            "orders did not settle: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks the books of `products` and `wallets`: every product's reserved stock equals the sum
/// of its open reservations, no stock figure is negative, and every wallet's balance equals its
/// deposits − captures + refunds, with no order charged twice.
pub async fn assert_books_balance(store: &Store, products: &[String], wallets: &[String]) {
    for id in products {
        let product = store
            .load_current::<Product>(id)
            .await
            .expect("product")
            .state;
        let open: u64 = product
            .reservations()
            .values()
            .filter(|r| r.status == ReservationStatus::Open)
            .map(|r| u64::from(r.quantity.get()))
            .sum();
        assert_eq!(u64::from(product.stock_reserved()), open, "product {id}");
        assert!(
            product.stock_reserved() <= product.stock_on_hand(),
            "product {id}"
        );
    }
    for id in wallets {
        let wallet = store
            .load_current::<Wallet>(id)
            .await
            .expect("wallet")
            .state;
        let mut expected = 0i64;
        let mut charged: BTreeMap<Uuid, usize> = BTreeMap::new();
        for event in store.history("wallet", id).await.expect("history") {
            match event.decode::<WalletEvent>().expect("wallet event") {
                WalletEvent::FundsDeposited { amount } => expected += amount.amount,
                WalletEvent::PaymentCaptured { order_id, amount } => {
                    expected -= amount.amount;
                    *charged.entry(order_id).or_default() += 1;
                }
                WalletEvent::PaymentRefunded { amount, .. } => expected += amount.amount,
                _ => {}
            }
        }
        assert!(charged.values().all(|n| *n == 1), "an order charged twice");
        assert_eq!(
            wallet.balance().map(|m| m.amount),
            Some(expected),
            "wallet {id}"
        );
        assert!(expected >= 0);
    }
}

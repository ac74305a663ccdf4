//! The order saga as a real process (`eventshop projectors run`, which runs the saga beside the
//! projections), SIGKILLed at random points while 200 orders are placed concurrently, and
//! restarted: every order ends final, nothing is charged or reserved twice, no step is lost.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use domain::order::OrderStatus;
use domain::product::{Product, ProductEvent, ReservationStatus};
use domain::wallet::{ChargeStatus, Wallet};
use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::saga::{assert_books_balance, settle};
use eventshop_tests::TestStore;
use futures::StreamExt;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");
const ORDERS: usize = 200;
const CUSTOMERS: usize = 40;

fn spawn_saga(url: &str) -> Child {
    Command::new(BINARY)
        .args(["projectors", "run"])
        .env("DATABASE_URL", url)
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop projectors run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saga_killed_at_random_points_during_two_hundred_orders_ends_consistent() {
    let api = Arc::new(TestApi::start(TestStore::postgres().await).await);
    let store = api.store().clone();
    let url = api.test.url().to_string();

    let seller = api.register("seller").await;
    // Scarce stock, so some orders are rejected; some customers too poor, so some are declined.
    let mut products = Vec::new();
    for stock in [60, 60, 40, 500] {
        products.push(api.product(&seller, 100, stock).await);
    }
    let customers: Vec<Account> = futures::future::join_all((0..CUSTOMERS).map(|n| {
        let api = api.clone();
        async move {
            let customer = api.register("customer").await;
            let amount = if n % 5 == 0 { 150 } else { 100_000 };
            let answer = api
                .post(
                    &format!("/api/v1/accounts/{}/deposits", customer.id),
                    Some(&customer.token),
                    json!({"amount": amount, "currency": "EUR"}),
                )
                .await;
            assert!(answer.status.is_success(), "{}", answer.body);
            customer
        }
    }))
    .await;

    let mut child = spawn_saga(&url);
    let placing = {
        let (api, products, customers) = (api.clone(), products.clone(), customers.clone());
        tokio::spawn(async move {
            let orders = futures::stream::iter(0..ORDERS)
                .map(|n| {
                    let api = api.clone();
                    let customer = customers[n % CUSTOMERS].clone();
                    let items = vec![
                        json!({"product_id": products[n % 3], "quantity": 1 + n % 2}),
                        json!({"product_id": products[3], "quantity": 1}),
                    ];
                    async move {
                        let answer = api
                            .post(
                                "/api/v1/orders",
                                Some(&customer.token),
                                json!({"items": items, "currency": "EUR"}),
                            )
                            .await;
                        assert!(answer.status.is_success(), "{}", answer.body);
                        answer.body["order_id"].as_str().unwrap().to_owned()
                    }
                })
                .buffer_unordered(32);
            orders.collect::<Vec<String>>().await
        })
    };

    // SIGKILL the saga at random points while the orders flow, restarting it each time.
    let mut kills = 0;
    for _ in 0..6 {
        let pause = rand::thread_rng().gen_range(150..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        child = spawn_saga(&url);
    }
    let orders = placing.await.expect("placing orders");
    assert_eq!(orders.len(), ORDERS);
    assert_eq!(kills, 6);

    let statuses = settle(&store, &orders, Duration::from_secs(180)).await;
    child.kill().ok();
    child.wait().ok();
    assert!(statuses.iter().all(|s| s.is_terminal()));
    assert!(statuses.contains(&OrderStatus::Approved));
    assert!(statuses.contains(&OrderStatus::Rejected) || statuses.contains(&OrderStatus::Canceled));

    // No double reservation: at most one StockReserved per (product, order).
    for product in &products {
        let mut reserved: BTreeMap<Uuid, usize> = BTreeMap::new();
        for event in store.history("product", product).await.unwrap() {
            if let ProductEvent::StockReserved { order_id, .. } = event.decode().unwrap() {
                *reserved.entry(order_id).or_default() += 1;
            }
        }
        assert!(reserved.values().all(|n| *n == 1), "a double reservation");
    }
    // No lost step: an approved order's reservations are committed and its payment captured;
    // a failed order holds no stock and keeps no payment.
    for (order, status) in orders.iter().zip(&statuses) {
        let order_id: Uuid = order.parse().unwrap();
        let placed = store.history("order", order).await.unwrap();
        let account = placed[0].payload["data"]["account_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let wallet = store.load_current::<Wallet>(&account).await.unwrap().state;
        let charge = wallet.charge(order_id).map(|c| c.status);
        for product in &products {
            let state = store.load_current::<Product>(product).await.unwrap().state;
            if let Some(reservation) = state.reservation(order_id) {
                assert_ne!(
                    reservation.status,
                    ReservationStatus::Open,
                    "order {order} ({status:?}) still holds stock"
                );
                if *status == OrderStatus::Approved {
                    assert_eq!(reservation.status, ReservationStatus::Committed);
                }
            }
        }
        match status {
            OrderStatus::Approved => assert_eq!(charge, Some(ChargeStatus::Captured)),
            _ => assert_ne!(
                charge,
                Some(ChargeStatus::Captured),
                "order {order} kept a payment"
            ),
        }
    }
    let wallets: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    assert_books_balance(&store, &products, &wallets).await;
}

//! Concurrency through the command API and the command bus, on both stores: parallel deposits
//! to one wallet, parallel reservations of scarce stock, and one Idempotency-Key raced.

use domain::product::{Product, ProductCommand, ProductEvent};
use domain::wallet::Wallet;
use domain::{Currency, Money, Quantity};
use eventshop_tests::api::TestApi;
use eventshop_tests::api_tests;
use eventstore_config::{CommandBus, EventMetadata};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

async fn fifty_parallel_deposits_to_one_wallet_all_succeed_and_add_up(api: TestApi) {
    let account = api.register("customer").await;
    let path = format!("/api/v1/accounts/{}/deposits", account.id);
    let answers = join_all((1..=50).map(|amount| {
        let (api, path, token) = (&api, &path, &account.token);
        async move {
            api.post(
                path,
                Some(token),
                json!({"amount": amount, "currency": "EUR"}),
            )
            .await
        }
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let mut versions: Vec<i64> = answers
        .iter()
        .map(|a| a.body["version"].as_i64().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, (2..=51).collect::<Vec<_>>());
    let wallet = api
        .store()
        .load_current::<Wallet>(&account.id)
        .await
        .unwrap();
    assert_eq!(wallet.version, 51);
    assert_eq!(
        wallet.state.balance(),
        Some(Money::new((1..=50).sum(), Currency::EUR))
    );
}

async fn fifty_parallel_reservations_of_ten_in_stock_reserve_exactly_ten(api: TestApi) {
    let seller = api.register("seller").await;
    let product = api.product(&seller, 100, 10).await;
    let bus = CommandBus::new(api.store().clone(), &api.test.settings);
    let results = join_all((0..50).map(|_| {
        let (bus, product) = (&bus, &product);
        async move {
            bus.execute::<Product>(
                product,
                ProductCommand::Reserve {
                    order_id: Uuid::now_v7(),
                    quantity: Quantity::new(1).unwrap(),
                },
                &(),
                &EventMetadata::system(),
            )
            .await
        }
    }))
    .await;
    let (mut reserved, mut rejected) = (0, 0);
    for result in results {
        let committed = result.expect("every reservation is decided");
        for event in committed.events {
            match event {
                ProductEvent::StockReserved { .. } => reserved += 1,
                ProductEvent::StockReservationRejected { .. } => rejected += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    assert_eq!((reserved, rejected), (10, 40));
    let state = api.store().load_current::<Product>(&product).await.unwrap();
    assert_eq!(state.state.stock_available(), 0);
    assert_eq!(state.state.stock_reserved(), 10);
    assert_eq!(state.version, 51);
    let history = api.store().history("product", &product).await.unwrap();
    let count = |t: &str| history.iter().filter(|e| e.event_type == t).count();
    assert_eq!(count("StockReserved"), 10);
    assert_eq!(count("StockReservationRejected"), 40);
}

async fn one_idempotency_key_raced_appends_once(api: TestApi) {
    let account = api.register("customer").await;
    let path = format!("/api/v1/accounts/{}/deposits", account.id);
    let head = api.store().head_position().await.unwrap();
    let answers = join_all((0..10).map(|_| {
        let (api, path, token) = (&api, &path, &account.token);
        async move {
            api.send(
                Method::POST,
                path,
                Some(token),
                Some(json!({"amount": 7, "currency": "EUR"})),
                &[("Idempotency-Key", "raced")],
            )
            .await
        }
    }))
    .await;
    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => assert_eq!(answer.body, created[0].body),
            StatusCode::CONFLICT => assert_eq!(
                answer.error(),
                (
                    "a request with this Idempotency-Key is still in progress".to_owned(),
                    Some("Idempotency-Key".to_owned())
                )
            ),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    let wallet = api
        .store()
        .load_current::<Wallet>(&account.id)
        .await
        .unwrap();
    assert_eq!(wallet.state.balance(), Some(Money::new(7, Currency::EUR)));
    let after = api.store().head_position().await.unwrap();
    assert_eq!(
        api.store()
            .history("wallet", &account.id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.position > head && e.position <= after)
            .count(),
        1
    );
}

api_tests!(
    fifty_parallel_deposits_to_one_wallet_all_succeed_and_add_up,
    fifty_parallel_reservations_of_ten_in_stock_reserve_exactly_ten,
    one_idempotency_key_raced_appends_once,
);

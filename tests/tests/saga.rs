//! The order saga end to end, on both stores, driven through the REST API: reservation,
//! payment, approval, and every compensation path; replays and contention.

use std::time::Duration;

use cqrs_es::Aggregate;
use domain::order::OrderStatus;
use domain::product::{Product, ProductEvent};
use domain::wallet::{ChargeStatus, Wallet};
use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::api_tests;
use eventshop_tests::saga::{
    assert_books_balance, saga_caught_up, settle, status, step_until, RunningSaga,
};
use eventstore_config::Store;
use reqwest::StatusCode;
use serde_json::json;

const SETTLE: Duration = Duration::from_secs(30);

async fn deposit(api: &TestApi, account: &Account, amount: i64, currency: &str) {
    let answer = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": amount, "currency": currency}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

async fn product(
    api: &TestApi,
    seller: &Account,
    price: i64,
    currency: &str,
    stock: u32,
) -> String {
    let answer = api
        .post(
            "/api/v1/products",
            Some(&seller.token),
            json!({"name": "Kettle", "description": "Steel", "price": price,
                   "currency": currency, "stock": stock}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.body["product_id"].as_str().unwrap().to_owned()
}

async fn cancel(api: &TestApi, customer: &Account, order_id: &str) {
    let answer = api
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&customer.token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

async fn product_state(store: &Store, id: &str) -> Product {
    store.load_current::<Product>(id).await.unwrap().state
}

async fn balance(store: &Store, account: &Account) -> i64 {
    let wallet = store
        .load_current::<Wallet>(&account.id)
        .await
        .unwrap()
        .state;
    wallet.balance().unwrap().amount
}

api_tests!(
    a_paid_order_is_reserved_charged_approved_and_committed,
    one_item_out_of_stock_among_three_rejects_the_order_and_releases_the_rest,
    insufficient_funds_cancel_the_order_and_release_the_stock,
    a_wallet_in_another_currency_declines_and_cancels_the_order,
    a_cancel_before_payment_releases_the_stock_and_charges_nothing,
    a_cancel_after_capture_refunds_the_payment_and_releases_the_stock,
    an_order_awaiting_payment_past_its_deadline_is_canceled_and_released,
    replaying_the_saga_from_the_start_appends_nothing,
    a_hundred_customers_racing_for_the_last_ten_units_get_exactly_ten,
);

async fn a_paid_order_is_reserved_charged_approved_and_committed(api: TestApi) {
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 10_000, "EUR").await;
    let kettle = product(&api, &seller, 1_500, "EUR", 5).await;
    let mug = product(&api, &seller, 300, "EUR", 10).await;

    let placed = api
        .order(&customer, &[(&kettle, 2), (&mug, 3)], "EUR")
        .await;
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Approved]
    );

    let kettle_state = product_state(&store, &kettle).await;
    assert_eq!(
        (kettle_state.stock_on_hand(), kettle_state.stock_reserved()),
        (3, 0)
    );
    let mug_state = product_state(&store, &mug).await;
    assert_eq!(
        (mug_state.stock_on_hand(), mug_state.stock_reserved()),
        (7, 0)
    );
    assert_eq!(balance(&store, &customer).await, 10_000 - 3_900);
    assert_books_balance(&store, &[kettle, mug], std::slice::from_ref(&customer.id)).await;

    // Every saga step carries the order's correlation id and names its cause.
    let trace = projectors::saga::trace::order_trace(&store, placed.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(trace.step.as_deref(), Some("completed"));
    let types: Vec<&str> = trace.events.iter().map(|e| e.event_type.as_str()).collect();
    for expected in [
        "OrderPlaced",
        "StockReserved",
        "OrderAwaitingPayment",
        "PaymentCaptured",
        "OrderApproved",
        "ReservationCommitted",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let system_events: Vec<_> = trace
        .events
        .iter()
        .filter(|e| e.metadata.actor.as_deref() == Some("system"))
        .collect();
    assert!(system_events.len() >= 6);
    assert!(system_events
        .iter()
        .all(|e| e.metadata.correlation_id == trace.correlation_id
            && e.metadata.causation_id.is_some()));
    saga.stop().await;
}

async fn one_item_out_of_stock_among_three_rejects_the_order_and_releases_the_rest(api: TestApi) {
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 50_000, "EUR").await;
    let a = product(&api, &seller, 100, "EUR", 5).await;
    let b = product(&api, &seller, 100, "EUR", 1).await;
    let c = product(&api, &seller, 100, "EUR", 5).await;

    let placed = api
        .order(&customer, &[(&a, 2), (&b, 3), (&c, 1)], "EUR")
        .await;
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Rejected]
    );
    for (id, on_hand) in [(&a, 5), (&b, 1), (&c, 5)] {
        let state = product_state(&store, id).await;
        assert_eq!(
            (state.stock_on_hand(), state.stock_reserved()),
            (on_hand, 0)
        );
    }
    assert_eq!(balance(&store, &customer).await, 50_000);
    assert_books_balance(&store, &[a, b, c], std::slice::from_ref(&customer.id)).await;
    saga.stop().await;
}

async fn insufficient_funds_cancel_the_order_and_release_the_stock(api: TestApi) {
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 999, "EUR").await;
    let kettle = product(&api, &seller, 1_000, "EUR", 3).await;

    let placed = api.order(&customer, &[(&kettle, 1)], "EUR").await;
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Canceled]
    );
    let state = product_state(&store, &kettle).await;
    assert_eq!((state.stock_on_hand(), state.stock_reserved()), (3, 0));
    assert_eq!(balance(&store, &customer).await, 999);
    let wallet = store
        .load_current::<Wallet>(&customer.id)
        .await
        .unwrap()
        .state;
    assert_eq!(
        wallet.charge(placed.parse().unwrap()).map(|c| c.status),
        Some(ChargeStatus::Declined)
    );
    assert_books_balance(&store, &[kettle], std::slice::from_ref(&customer.id)).await;
    saga.stop().await;
}

async fn a_wallet_in_another_currency_declines_and_cancels_the_order(api: TestApi) {
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 100_000, "EUR").await;
    let kettle = product(&api, &seller, 1_000, "USD", 3).await;

    let placed = api.order(&customer, &[(&kettle, 1)], "USD").await;
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Canceled]
    );
    let state = product_state(&store, &kettle).await;
    assert_eq!((state.stock_on_hand(), state.stock_reserved()), (3, 0));
    assert_eq!(balance(&store, &customer).await, 100_000);
    assert_books_balance(&store, &[kettle], std::slice::from_ref(&customer.id)).await;
    saga.stop().await;
}

async fn a_cancel_before_payment_releases_the_stock_and_charges_nothing(api: TestApi) {
    let store = api.store().clone();
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 10_000, "EUR").await;
    let kettle = product(&api, &seller, 1_000, "EUR", 3).await;

    // The saga is not running yet: the customer cancels while the order is still pending.
    let placed = api.order(&customer, &[(&kettle, 2)], "EUR").await;
    cancel(&api, &customer, &placed).await;

    let saga = RunningSaga::start(&store, &api.test.settings);
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Canceled]
    );
    let state = product_state(&store, &kettle).await;
    assert_eq!((state.stock_on_hand(), state.stock_reserved()), (3, 0));
    assert_eq!(balance(&store, &customer).await, 10_000);
    assert_books_balance(&store, &[kettle], std::slice::from_ref(&customer.id)).await;
    saga.stop().await;
}

async fn a_cancel_after_capture_refunds_the_payment_and_releases_the_stock(api: TestApi) {
    let store = api.store().clone();
    let settings = api.test.settings.clone();
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 10_000, "EUR").await;
    let kettle = product(&api, &seller, 1_000, "EUR", 3).await;
    let placed = api.order(&customer, &[(&kettle, 2)], "EUR").await;
    let order_id = placed.parse().unwrap();

    // Step the saga by hand until the payment is captured, before it approves the order.
    step_until(&store, &settings, || async {
        let wallet = store
            .load_current::<Wallet>(&customer.id)
            .await
            .unwrap()
            .state;
        wallet.charge(order_id).map(|c| c.status) == Some(ChargeStatus::Captured)
    })
    .await;
    assert_eq!(
        status(&store, &placed).await,
        Some(OrderStatus::AwaitingPayment)
    );
    assert_eq!(balance(&store, &customer).await, 8_000);
    cancel(&api, &customer, &placed).await;

    let saga = RunningSaga::start(&store, &settings);
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Canceled]
    );
    let wallet = store
        .load_current::<Wallet>(&customer.id)
        .await
        .unwrap()
        .state;
    assert_eq!(
        wallet.charge(order_id).map(|c| c.status),
        Some(ChargeStatus::Refunded)
    );
    assert_eq!(balance(&store, &customer).await, 10_000);
    let state = product_state(&store, &kettle).await;
    assert_eq!((state.stock_on_hand(), state.stock_reserved()), (3, 0));
    assert_books_balance(&store, &[kettle], std::slice::from_ref(&customer.id)).await;
    saga.stop().await;
}

async fn an_order_awaiting_payment_past_its_deadline_is_canceled_and_released(api: TestApi) {
    let store = api.store().clone();
    let mut settings = api.test.settings.clone();
    settings.payment_timeout_secs = 1;
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 10_000, "EUR").await;
    let kettle = product(&api, &seller, 1_000, "EUR", 3).await;
    let placed = api.order(&customer, &[(&kettle, 1)], "EUR").await;

    // The saga asks for payment, then stops before charging (as if it had crashed).
    step_until(&store, &settings, || async {
        status(&store, &placed).await == Some(OrderStatus::AwaitingPayment)
    })
    .await;
    let bus = eventstore_config::CommandBus::new(store.clone(), &settings);
    assert_eq!(
        projectors::saga::expire_deadlines(&store, &bus)
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // A restarted saga (its deadline worker) finds the stored deadline and cancels the order.
    let saga = RunningSaga::start(&store, &settings);
    assert_eq!(
        settle(&store, std::slice::from_ref(&placed), SETTLE).await,
        vec![OrderStatus::Canceled]
    );
    let state = product_state(&store, &kettle).await;
    assert_eq!((state.stock_on_hand(), state.stock_reserved()), (3, 0));
    assert_eq!(
        balance(&store, &customer).await,
        10_000,
        "a canceled order is not charged"
    );
    let history = store.history("order", &placed).await.unwrap();
    let canceled = history.last().unwrap();
    assert_eq!(canceled.event_type, "OrderCanceled");
    assert!(canceled
        .payload
        .to_string()
        .contains("payment deadline passed"));
    assert_books_balance(&store, &[kettle], std::slice::from_ref(&customer.id)).await;
    saga.stop().await;
}

async fn replaying_the_saga_from_the_start_appends_nothing(api: TestApi) {
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let seller = api.register("seller").await;
    let customer = api.register("customer").await;
    deposit(&api, &customer, 2_000, "EUR").await;
    let kettle = product(&api, &seller, 1_000, "EUR", 2).await;
    let approved = api.order(&customer, &[(&kettle, 1)], "EUR").await;
    let rejected = api.order(&customer, &[(&kettle, 5)], "EUR").await;
    let declined = api.order(&customer, &[(&kettle, 1)], "EUR").await;
    let _ = settle(
        &store,
        &[approved.clone(), rejected.clone(), declined.clone()],
        SETTLE,
    )
    .await;
    let _ = api; // keep the API (and its database) alive
    saga.stop().await;
    let head = store.head_position().await.unwrap();
    let before = projectors::saga::trace::order_trace(&store, approved.parse().unwrap())
        .await
        .unwrap();

    projectors::saga::reset(&store).await.unwrap();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let deadline = std::time::Instant::now() + SETTLE;
    while !saga_caught_up(&store).await {
        assert!(
            std::time::Instant::now() < deadline,
            "replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    saga.stop().await;
    assert_eq!(
        store.head_position().await.unwrap(),
        head,
        "the replay appended events"
    );
    let after = projectors::saga::trace::order_trace(&store, approved.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(after.step, before.step);
    assert_eq!(after.steps.len(), before.steps.len());
    assert_books_balance(&store, &[kettle], std::slice::from_ref(&customer.id)).await;
}

async fn a_hundred_customers_racing_for_the_last_ten_units_get_exactly_ten(api: TestApi) {
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);
    let seller = api.register("seller").await;
    let kettle = product(&api, &seller, 100, "EUR", 10).await;
    let api = std::sync::Arc::new(api);

    let customers: Vec<Account> = futures::future::join_all((0..100).map(|_| {
        let api = api.clone();
        async move {
            let customer = api.register("customer").await;
            deposit(&api, &customer, 1_000, "EUR").await;
            customer
        }
    }))
    .await;
    let orders: Vec<String> = futures::future::join_all(customers.iter().map(|customer| {
        let (api, kettle) = (api.clone(), kettle.clone());
        async move { api.order(customer, &[(&kettle, 1)], "EUR").await }
    }))
    .await;

    let statuses = settle(&store, &orders, Duration::from_secs(120)).await;
    let approved = statuses
        .iter()
        .filter(|s| **s == OrderStatus::Approved)
        .count();
    let rejected = statuses
        .iter()
        .filter(|s| **s == OrderStatus::Rejected)
        .count();
    assert_eq!((approved, rejected), (10, 90));

    let state = product_state(&store, &kettle).await;
    assert_eq!((state.stock_on_hand(), state.stock_reserved()), (0, 0));
    // Stock never negative at any recorded position: fold the history event by event.
    let mut folded = Product::default();
    for event in store.history("product", &kettle).await.unwrap() {
        folded.apply(event.decode::<ProductEvent>().unwrap());
        assert!(
            folded.stock_reserved() <= folded.stock_on_hand(),
            "at position {}",
            event.position
        );
    }
    let wallets: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    assert_books_balance(&store, &[kettle], &wallets).await;
    saga.stop().await;
}

mod graphql {
    //! The saga's progress is visible through the query API.
    use super::*;
    use eventshop_tests::graphql::TestGraphql;

    async fn the_saga_step_and_history_are_readable_on_the_order(gql: TestGraphql) {
        let api = &gql.api;
        let store = api.store().clone();
        let saga = RunningSaga::start(&store, &api.test.settings);
        let seller = api.register("seller").await;
        let customer = api.register("customer").await;
        deposit(api, &customer, 5_000, "EUR").await;
        let kettle = product(api, &seller, 1_000, "EUR", 3).await;
        let placed = api.order(&customer, &[(&kettle, 1)], "EUR").await;
        let _ = settle(&store, std::slice::from_ref(&placed), SETTLE).await;
        saga.stop().await;
        gql.project().await;

        let answer = gql
            .query(
                &customer.token,
                "query($id: ID!) { order(id: $id) { status saga { step history { position eventType step } } } }",
                json!({"id": placed}),
            )
            .await;
        let order = &answer.data()["order"];
        assert_eq!(order["status"], "APPROVED");
        assert_eq!(order["saga"]["step"], "completed");
        let steps: Vec<&str> = order["saga"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["eventType"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                "OrderPlaced",
                "StockReserved",
                "OrderAwaitingPayment",
                "PaymentCaptured",
                "OrderApproved",
                "ReservationCommitted"
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_the_saga_step_and_history_are_readable_on_the_order() {
        the_saga_step_and_history_are_readable_on_the_order(TestGraphql::postgres().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_the_saga_step_and_history_are_readable_on_the_order() {
        the_saga_step_and_history_are_readable_on_the_order(TestGraphql::sqlite().await).await;
    }
}

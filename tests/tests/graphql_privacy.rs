//! What leaves through `history`, on PostgreSQL and SQLite: no password hash and no
//! refresh-token id of an account, to its owner or to an admin; and on a product (a shared
//! aggregate) other customers' order ids, actors and correlation ids only for the product's
//! seller and admins.

use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::graphql_tests;
use eventshop_tests::saga::{saga_caught_up, step_until};
use serde_json::{json, Value};

const HISTORY: &str = "query($type: String!, $id: ID!) {
  history(aggregateType: $type, aggregateId: $id) {
    position version eventType recordedAt actor correlationId payload } }";

fn events(answer: &eventshop_tests::graphql::GqlAnswer) -> Vec<Value> {
    answer.data()["history"]
        .as_array()
        .expect("a list of events")
        .clone()
}

async fn given_an_account_with_a_refreshed_session_when_its_history_is_read_then_no_hash_or_token_id_leaves(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let admin = api.admin().await;
    let ann = api.register("customer").await;
    let refreshed = api
        .post(
            "/api/v1/sessions/refresh",
            None,
            json!({"refresh_token": ann.refresh}),
        )
        .await;
    assert_eq!(refreshed.status.as_u16(), 200, "{}", refreshed.body);
    let stored = gql
        .store()
        .history("account", &ann.id)
        .await
        .expect("history");
    let hash = stored[0].payload["data"]["password_hash"]
        .as_str()
        .expect("the log keeps the hash")
        .to_owned();
    let jti = stored
        .iter()
        .find(|e| e.event_type == "RefreshTokenRevoked")
        .and_then(|e| e.payload["data"]["jti"].as_str())
        .expect("the log keeps the revoked token id")
        .to_owned();

    for reader in [&ann, &admin] {
        let answer = gql
            .query(
                &reader.token,
                HISTORY,
                json!({"type": "account", "id": ann.id}),
            )
            .await;
        let whole = answer.body.to_string();
        assert!(!whole.contains("argon2"), "{whole}");
        assert!(!whole.contains(&hash), "{whole}");
        assert!(!whole.contains(&jti), "{whole}");
        let events = events(&answer);
        let types: Vec<&str> = events
            .iter()
            .map(|e| e["eventType"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"RefreshTokenRevoked"), "{types:?}");
        let registered = &events[0]["payload"]["data"];
        assert_eq!(registered["email"], json!(ann.email), "{registered}");
        assert!(registered.get("password_hash").is_none(), "{registered}");
    }
}

async fn given_two_customers_orders_when_a_product_history_is_read_then_only_its_seller_and_admins_see_whose(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let admin = api.admin().await;
    let seller = api.register("seller").await;
    let alice = api.register("customer").await;
    let bob = api.register("customer").await;
    let teapot = api.product(&seller, 100, 10).await;
    let alices = api.order(&alice, &[(&teapot, 2)], "EUR").await;
    let bobs = api.order(&bob, &[(&teapot, 3)], "EUR").await;
    let store = gql.store();
    step_until(store, &api.test.settings, || saga_caught_up(store)).await;

    let read = |token: String| {
        let gql = &gql;
        let teapot = teapot.clone();
        async move {
            events(
                &gql.query(&token, HISTORY, json!({"type": "product", "id": teapot}))
                    .await,
            )
        }
    };
    let reservations = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["eventType"] == json!("StockReserved"))
            .cloned()
            .collect()
    };

    // The seller and an admin see every reservation with its order.
    for token in [&seller.token, &admin.token] {
        let all = read(token.clone()).await;
        let reserved = reservations(&all);
        assert_eq!(reserved.len(), 2, "{all:?}");
        let orders: Vec<&Value> = reserved
            .iter()
            .map(|e| &e["payload"]["data"]["order_id"])
            .collect();
        assert!(orders.contains(&&json!(alices)) && orders.contains(&&json!(bobs)));
        assert!(reserved.iter().all(|e| e["actor"] == json!("system")));
    }

    // Bob sees his own reservation in full, and Alice's only as a stock movement.
    let bobs_view = read(bob.token.clone()).await;
    let whole = serde_json::to_string(&bobs_view).unwrap();
    assert!(!whole.contains(&alices), "{whole}");
    assert!(!whole.contains(&alice.id), "{whole}");
    let reserved = reservations(&bobs_view);
    assert_eq!(reserved.len(), 2, "{bobs_view:?}");
    let (own, other): (Vec<&Value>, Vec<&Value>) = reserved
        .iter()
        .partition(|e| e["payload"]["data"]["order_id"] == json!(bobs));
    assert_eq!(own.len(), 1, "{reserved:?}");
    assert_eq!(own[0]["payload"]["data"]["quantity"], json!(3));
    assert_eq!(other.len(), 1, "{reserved:?}");
    let other = other[0];
    assert!(
        other["payload"]["data"].get("order_id").is_none(),
        "{other}"
    );
    assert_eq!(other["payload"]["data"]["quantity"], json!(2));
    assert_eq!(other["actor"], Value::Null);
    assert_eq!(other["correlationId"], Value::Null);
    assert!(other["version"].as_i64().is_some() && other["recordedAt"].is_string());
    // The product's own events (created by the seller) still show the stock figures.
    assert_eq!(bobs_view[0]["eventType"], json!("ProductCreated"));
    assert_eq!(bobs_view[0]["payload"]["data"]["stock"], json!(10));
}

graphql_tests!(
    given_an_account_with_a_refreshed_session_when_its_history_is_read_then_no_hash_or_token_id_leaves,
    given_two_customers_orders_when_a_product_history_is_read_then_only_its_seller_and_admins_see_whose,
);

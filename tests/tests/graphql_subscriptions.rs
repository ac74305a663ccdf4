//! GraphQL subscriptions over WebSocket (`/graphql/ws`, `graphql-transport-ws`), on both
//! stores, with a real WebSocket client: the `connection_init` token, `events` catch-up then
//! live, `orderUpdated` through the saga, and the caller's rights re-checked while streaming.

use std::collections::HashSet;
use std::time::Duration;

use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::graphql_tests;
use eventshop_tests::saga::RunningSaga;
use eventshop_tests::subscriptions::{QueryServer, Received, WsClient};
use eventstore_config::Checkpoint;
use reqwest::{Method, StatusCode};
use serde_json::json;

const EVENTS: &str = "subscription($after: Int) { events(afterPosition: $after) { position aggregateType aggregateId version eventType } }";
const ORDER: &str =
    "subscription($id: ID!) { orderUpdated(id: $id) { id status sagaStep isFinal } }";

/// Runs the projectors in the background until stopped. Stopped between batches, never in
/// the middle of one: an aborted transaction would leave its connection idle in transaction,
/// holding back every commit-safe reader of the PostgreSQL cluster.
struct Projecting {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Projecting {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("projecting task");
    }
}

fn projecting(store: &eventstore_config::Store) -> Projecting {
    let store = store.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        while !*stopped.borrow() {
            for projection in projectors::read_models::all() {
                if let Err(e) = projectors::catch_up(&store, &*projection, 500).await {
                    eprintln!("projection failed: {e:#}");
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    Projecting { stop, task }
}

async fn given_no_or_a_bad_token_when_a_subscriber_connects_then_the_socket_closes_with_4403(
    gql: TestGraphql,
) {
    for payload in [
        json!({}),
        json!({"Authorization": "Bearer not.a.token"}),
        json!({"Authorization": 42}),
    ] {
        let mut client = WsClient::open(&gql.endpoint).await;
        match client.init(payload.clone()).await {
            Received::Closed(code, _) => assert_eq!(code, 4403, "for {payload}"),
            other => panic!("expected a close for {payload}, got {other:?}"),
        }
    }
}

async fn given_a_control_character_in_a_variable_when_subscribing_then_it_is_refused_with_a_code(
    gql: TestGraphql,
) {
    let admin = gql.api.admin().await;
    let mut client = WsClient::connect(&gql.endpoint, &admin.token).await;
    client
        .subscribe(
            "1",
            "subscription($a: String) { events(actor: $a) { position } }",
            json!({"a": "a\u{0}b"}),
        )
        .await;
    let answer = client.message().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
}

async fn given_commands_keep_arriving_when_events_catch_up_from_zero_then_each_event_arrives_once_in_order(
    gql: TestGraphql,
) {
    let admin = gql.api.admin().await;
    let seller = gql.api.register("seller").await;
    for _ in 0..3 {
        gql.api.product(&seller, 100, 5).await;
    }
    let mut client = WsClient::connect(&gql.endpoint, &admin.token).await;
    client.subscribe("1", EVENTS, json!({"after": 0})).await;
    let writer = {
        let base = gql.api.base.clone();
        let token = seller.token.clone();
        let http = gql.api.client.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let answer = http
                    .post(format!("{base}/api/v1/products"))
                    .bearer_auth(&token)
                    .json(
                        &json!({"name": format!("Kettle {i}"), "description": "Steel",
                                  "price": 100, "currency": "EUR", "stock": 5}),
                    )
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(answer.status(), StatusCode::CREATED);
            }
        })
    };
    writer.await.expect("writer");
    let log = gql
        .store()
        .read_after(Checkpoint::START, 100_000)
        .await
        .expect("log");
    let mut seen = Vec::new();
    while seen.len() < log.len() {
        let message = client.message().await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["events"];
        seen.push(event["position"].as_i64().expect("position"));
    }
    let expected: Vec<i64> = log.iter().map(|e| e.position).collect();
    assert_eq!(seen, expected, "every event once, in log order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

async fn deposit(gql: &TestGraphql, account: &eventshop_tests::api::Account, amount: i64) {
    let answer = gql
        .api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": amount, "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

/// Follows `order` and returns the statuses seen, until the final update.
async fn follow(client: &mut WsClient) -> Vec<String> {
    let mut statuses = Vec::new();
    loop {
        let message = client.message().await;
        if message["type"] == "complete" {
            return statuses;
        }
        assert_eq!(message["type"], "next", "{message}");
        let update = &message["payload"]["data"]["orderUpdated"];
        assert!(update.is_object(), "{message}");
        statuses.push(update["status"].as_str().unwrap().to_owned());
    }
}

async fn given_a_paid_order_when_followed_then_updates_end_with_approved(gql: TestGraphql) {
    let projectors = projecting(gql.store());
    let saga = RunningSaga::start(gql.store(), &gql.api.test.settings);
    let seller = gql.api.register("seller").await;
    let customer = gql.api.register("customer").await;
    deposit(&gql, &customer, 1_000).await;
    let product = gql.api.product(&seller, 100, 5).await;
    let order = gql.api.order(&customer, &[(&product, 2)], "EUR").await;
    let mut client = WsClient::connect(&gql.endpoint, &customer.token).await;
    client.subscribe("o", ORDER, json!({"id": order})).await;
    let statuses = follow(&mut client).await;
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("APPROVED"),
        "{statuses:?}"
    );
    // A late subscriber still gets the end.
    let mut late = WsClient::connect(&gql.endpoint, &customer.token).await;
    late.subscribe("o", ORDER, json!({"id": order})).await;
    assert_eq!(follow(&mut late).await, vec!["APPROVED".to_owned()]);
    saga.stop().await;
    projectors.stop().await;
}

async fn given_too_little_stock_when_followed_then_updates_end_with_rejected(gql: TestGraphql) {
    let projectors = projecting(gql.store());
    let saga = RunningSaga::start(gql.store(), &gql.api.test.settings);
    let seller = gql.api.register("seller").await;
    let customer = gql.api.register("customer").await;
    deposit(&gql, &customer, 1_000).await;
    let product = gql.api.product(&seller, 100, 1).await;
    let mut client = WsClient::connect(&gql.endpoint, &customer.token).await;
    let order = gql.api.order(&customer, &[(&product, 3)], "EUR").await;
    client.subscribe("o", ORDER, json!({"id": order})).await;
    let statuses = follow(&mut client).await;
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("REJECTED"),
        "{statuses:?}"
    );
    saga.stop().await;
    projectors.stop().await;
}

async fn given_another_customers_order_when_subscribing_then_it_is_forbidden(gql: TestGraphql) {
    let seller = gql.api.register("seller").await;
    let owner = gql.api.register("customer").await;
    let other = gql.api.register("customer").await;
    let product = gql.api.product(&seller, 100, 5).await;
    let order = gql.api.order(&owner, &[(&product, 1)], "EUR").await;
    let mut client = WsClient::connect(&gql.endpoint, &other.token).await;
    client.subscribe("o", ORDER, json!({"id": order})).await;
    let answer = client.message().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
    assert!(
        answer["payload"]["data"].is_null() || answer["payload"]["data"]["orderUpdated"].is_null()
    );
    let end = client.message().await;
    assert_eq!(
        (end["type"].as_str(), end["id"].as_str()),
        (Some("complete"), Some("o")),
        "{end}"
    );
    // Nor may it read the owner's order events.
    client
        .subscribe(
            "e",
            "subscription($id: ID) { events(aggregateType: \"order\", aggregateId: $id) { position } }",
            json!({"id": order}),
        )
        .await;
    let answer = client.message().await;
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
}

async fn given_an_account_deleted_meanwhile_when_streaming_then_the_stream_ends_with_an_error(
    gql: TestGraphql,
) {
    let ann = gql.api.register("customer").await;
    let mut client = WsClient::connect(&gql.endpoint, &ann.token).await;
    client
        .subscribe(
            "e",
            "subscription($me: String) { events(actor: $me) { position eventType } }",
            json!({"me": ann.id}),
        )
        .await;
    // Ann's own registration events arrive first.
    let first = client.message().await;
    assert_eq!(first["type"], "next", "{first}");
    assert!(first["payload"]["errors"].is_null(), "{first}");
    let deleted = gql
        .api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{}", ann.id),
            Some(&ann.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    loop {
        let message = client.message().await;
        assert_eq!(message["type"], "next", "{message}");
        if let Some(errors) = message["payload"]["errors"].as_array() {
            assert_eq!(
                errors[0]["extensions"]["code"], "UNAUTHENTICATED",
                "{message}"
            );
            break;
        }
    }
    let end = client.message().await;
    assert_eq!(end["type"], "complete", "{end}");
}

async fn given_a_query_over_the_socket_when_sent_then_it_is_refused_with_bad_user_input(
    gql: TestGraphql,
) {
    let admin = gql.api.admin().await;
    let mut client = WsClient::connect(&gql.endpoint, &admin.token).await;
    client.subscribe("q", "{ me { id } }", json!({})).await;
    let answer = client.message().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_serve_processes_on_one_database_when_one_handles_a_command_then_a_subscriber_of_the_other_gets_it(
) {
    let gql = TestGraphql::postgres().await;
    let seller = gql.api.register("seller").await;
    // The second process: its own pool, REST app, authenticator and log follower.
    let other_rest = gql.api.other_server().await;
    let other_store = eventstore_config::Store::open(&gql.api.test.settings)
        .await
        .expect("open the store");
    let other =
        QueryServer::start(other_store, other_rest.app.state().authenticator().clone()).await;
    let head = gql.store().head_position().await.expect("head");
    let mut client = WsClient::connect(&other.endpoint, &seller.token).await;
    client
        .subscribe(
            "p",
            "subscription($after: Int) { events(aggregateType: \"product\", afterPosition: $after) { aggregateId eventType } }",
            json!({"after": head}),
        )
        .await;
    // Wait until the subscription is open (the gauge counts it), then command the first process.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while other.api.open_subscriptions() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription never opened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut metrics = String::new();
    prometheus_client::encoding::text::encode(&mut metrics, &other.api.metrics_registry())
        .expect("encode");
    assert!(
        metrics.contains("eventshop_graphql_subscriptions_open 1"),
        "{metrics}"
    );
    // The first product may arrive by catch-up; once the stream is quiet, the second can only
    // arrive live, woken by the second process's log follower.
    for _ in 0..2 {
        let product = gql.api.product(&seller, 100, 5).await;
        let message = client.message().await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["events"];
        assert_eq!(event["aggregateId"], product.as_str(), "{message}");
        assert_eq!(event["eventType"], "ProductCreated", "{message}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn given_projections_when_an_admin_subscribes_to_projection_lag_then_positions_arrive_and_a_customer_is_forbidden(
    gql: TestGraphql,
) {
    let admin = gql.api.admin().await;
    let customer = gql.api.register("customer").await;
    gql.project().await;
    let head = gql.store().head_position().await.expect("head");
    let query = "subscription { projectionLag { name position lag } }";
    let mut client = WsClient::connect(&gql.endpoint, &admin.token).await;
    client.subscribe("l", query, json!({})).await;
    let message = client.message().await;
    let projections = message["payload"]["data"]["projectionLag"]
        .as_array()
        .unwrap_or_else(|| panic!("{message}"))
        .clone();
    let orders = projections
        .iter()
        .find(|p| p["name"] == "orders")
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(orders["position"].as_i64(), Some(head), "{message}");
    assert_eq!(orders["lag"].as_i64(), Some(0), "{message}");
    let mut other = WsClient::connect(&gql.endpoint, &customer.token).await;
    other.subscribe("l", query, json!({})).await;
    let answer = other.message().await;
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
}

async fn given_a_policy_revoked_meanwhile_when_following_an_aggregate_then_the_stream_ends_forbidden(
    gql: TestGraphql,
) {
    let admin = gql.api.admin().await;
    let ann = gql.api.register("customer").await;
    let bob = gql.api.register("customer").await;
    let policy = format!("{}:get:accounts:{}", bob.id, ann.id);
    let policies = |method: Method| {
        let (gql, admin, policy) = (&gql, &admin, &policy);
        async move {
            let answer = gql
                .api
                .send(
                    method,
                    "/api/v1/policies",
                    Some(&admin.token),
                    Some(json!({"policy": policy})),
                    &[],
                )
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
    };
    policies(Method::PUT).await;
    let mut client = WsClient::connect(&gql.endpoint, &bob.token).await;
    client
        .subscribe(
            "a",
            "subscription($id: ID) { events(aggregateType: \"account\", aggregateId: $id) { position } }",
            json!({"id": ann.id}),
        )
        .await;
    let first = client.message().await;
    assert!(first["payload"]["errors"].is_null(), "{first}");
    policies(Method::DELETE).await;
    loop {
        let message = client.message().await;
        assert_eq!(message["type"], "next", "{message}");
        if let Some(errors) = message["payload"]["errors"].as_array() {
            assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{message}");
            break;
        }
    }
    assert_eq!(client.message().await["type"], "complete");
}

graphql_tests!(
    given_a_policy_revoked_meanwhile_when_following_an_aggregate_then_the_stream_ends_forbidden,
    given_projections_when_an_admin_subscribes_to_projection_lag_then_positions_arrive_and_a_customer_is_forbidden,
    given_a_query_over_the_socket_when_sent_then_it_is_refused_with_bad_user_input,
    given_no_or_a_bad_token_when_a_subscriber_connects_then_the_socket_closes_with_4403,
    given_a_control_character_in_a_variable_when_subscribing_then_it_is_refused_with_a_code,
    given_commands_keep_arriving_when_events_catch_up_from_zero_then_each_event_arrives_once_in_order,
    given_a_paid_order_when_followed_then_updates_end_with_approved,
    given_too_little_stock_when_followed_then_updates_end_with_rejected,
    given_another_customers_order_when_subscribing_then_it_is_forbidden,
    given_an_account_deleted_meanwhile_when_streaming_then_the_stream_ends_with_an_error,
);

//! Two real `eventshop serve` processes on one PostgreSQL database: a command handled by one
//! reaches a GraphQL subscriber of the other, because live delivery follows the log, not the
//! process's own writes.

use std::time::Duration;

use eventshop_tests::child::Server;
use eventshop_tests::subscriptions::WsClient;
use eventshop_tests::TestStore;
use serde_json::{json, Value};

/// `POST /api/v1{path}` to the server at `base`; the JSON answer, which must be a success.
async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut request = client.post(format!("{base}/api/v1{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON answer");
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_serve_processes_on_one_database_when_one_handles_a_command_then_a_subscriber_of_the_other_gets_it(
) {
    let test = TestStore::postgres().await;
    let first = Server::start(&test).await;
    let second = Server::start(&test).await;
    let client = reqwest::Client::new();
    let seller = post(
        &client,
        &first.base(),
        "/accounts",
        None,
        json!({"email": "seller@example.com", "password": "correct horse", "name": "S",
                   "role": "seller"}),
    )
    .await;
    let token = seller["access_token"].as_str().expect("a token").to_owned();
    let head = test.store.head_position().await.expect("head");

    let mut subscriber = WsClient::connect(&format!("{}/graphql", second.base()), &token).await;
    subscriber
        .subscribe(
            "p",
            "subscription($after: Int) { events(aggregateType: \"product\", afterPosition: $after) \
             { aggregateId eventType } }",
            json!({"after": head}),
        )
        .await;
    // The first product may come by catch-up; after a quiet pause the second can only come
    // live, woken by the second process's own log follower.
    for name in ["Teapot", "Kettle"] {
        let product = post(
            &client,
            &first.base(),
            "/products",
            Some(&token),
            json!({"name": name, "description": "", "price": 100, "currency": "EUR",
                       "stock": 5}),
        )
        .await;
        let message = subscriber.message().await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["events"];
        assert_eq!(event["aggregateId"], product["product_id"], "{message}");
        assert_eq!(event["eventType"], "ProductCreated", "{message}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

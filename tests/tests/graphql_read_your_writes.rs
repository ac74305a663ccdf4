//! Read-your-writes: a client that sends a command's returned `position` in `X-Min-Position`
//! gets an answer that includes it — the query API waits (bounded) for the projectors — and is
//! told when the wait ran out. On PostgreSQL and SQLite.

use std::time::Duration;

use eventshop_tests::api::TestApi;
use eventshop_tests::graphql::{project_through, TestGraphql};
use serde_json::json;

const WALLET: &str = "query($id: ID!) { wallet(accountId: $id) { balance { amount } } }";

async fn with_wait(api: TestApi, max_wait: Duration) -> TestGraphql {
    let options = query_api::Options {
        max_wait,
        ..query_api::Options::default()
    };
    TestGraphql::start(api, options).await
}

async fn deposit(gql: &TestGraphql, account: &eventshop_tests::api::Account) -> i64 {
    let answer = gql
        .api
        .post(
            &format!("/api/v1/accounts/{}/deposits", account.id),
            Some(&account.token),
            json!({"amount": 2500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.body);
    answer.body["position"].as_i64().expect("position")
}

async fn a_query_with_the_commands_position_waits_for_the_projectors(api: TestApi) {
    let gql = with_wait(api, Duration::from_secs(10)).await;
    let alice = gql.api.register("customer").await;
    gql.project().await;
    let position = deposit(&gql, &alice).await;

    // The projectors only start after the query arrived.
    let store = gql.store().clone();
    let projector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        project_through(&store, position).await;
    });
    let header = position.to_string();
    let answer = gql
        .send(
            Some(&alice.token),
            WALLET,
            json!({"id": alice.id}),
            &[("X-Min-Position", &header)],
        )
        .await;
    assert_eq!(answer.data()["wallet"]["balance"]["amount"], json!(2500));
    assert_eq!(
        answer.body["extensions"]["consistency"],
        json!({"minPosition": position, "reached": true})
    );
    projector.await.expect("projector");
}

async fn a_query_whose_position_is_not_reached_in_time_says_it_is_stale(api: TestApi) {
    let gql = with_wait(api, Duration::from_millis(200)).await;
    let alice = gql.api.register("customer").await;
    gql.project().await;
    let position = deposit(&gql, &alice).await;
    let header = position.to_string();
    let answer = gql
        .send(
            Some(&alice.token),
            WALLET,
            json!({"id": alice.id}),
            &[("X-Min-Position", &header)],
        )
        .await;
    assert_eq!(answer.data()["wallet"]["balance"]["amount"], json!(0));
    assert_eq!(
        answer.body["extensions"]["consistency"],
        json!({"minPosition": position, "reached": false})
    );
}

async fn a_malformed_min_position_is_a_bad_request(api: TestApi) {
    let gql = with_wait(api, Duration::from_millis(200)).await;
    let alice = gql.api.register("customer").await;
    let answer = gql
        .send(
            Some(&alice.token),
            WALLET,
            json!({"id": alice.id}),
            &[("X-Min-Position", "soon")],
        )
        .await;
    assert_eq!(answer.status.as_u16(), 400);
    assert_eq!(answer.codes(), vec!["BAD_USER_INPUT"]);
}

eventshop_tests::api_tests!(
    a_query_with_the_commands_position_waits_for_the_projectors,
    a_query_whose_position_is_not_reached_in_time_says_it_is_stale,
    a_malformed_min_position_is_a_bad_request,
);

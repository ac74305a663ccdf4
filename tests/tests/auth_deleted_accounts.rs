//! A deleted account's access token is refused by every API, on both stores: REST answers 401
//! and GraphQL `UNAUTHENTICATED` on `me`, `wallet`, `orders`, `history` and `audit` — in the
//! process that deleted it (one shared authenticator), and in a second process over the same
//! database (REST with its own policy cache, and a GraphQL API alone, as `eventshop query-api`
//! runs it, learning of the deletion from the log).

use std::time::{Duration, Instant};

use eventshop_tests::api::Account;
use eventshop_tests::graphql::{GqlAnswer, TestGraphql};
use eventshop_tests::graphql_tests;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Every query a caller reads its own data with.
const OWN_READS: &[(&str, &str)] = &[
    ("me", "{ me { id } }"),
    (
        "wallet",
        "query($id: ID!) { wallet(accountId: $id) { balance { amount } } }",
    ),
    ("orders", "{ orders { edges { node { id } } } }"),
    (
        "history",
        "query($id: ID!) { history(aggregateType: \"account\", aggregateId: $id) { eventType } }",
    ),
    (
        "audit",
        "query($id: String) { audit(actor: $id) { edges { node { position } } } }",
    ),
];

/// A GraphQL API alone over the same database, as `eventshop query-api` serves it.
struct QueryProcess {
    endpoint: String,
    client: reqwest::Client,
    _follower: access::Follower,
    server: JoinHandle<std::io::Result<()>>,
}

impl Drop for QueryProcess {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl QueryProcess {
    async fn start(gql: &TestGraphql) -> Self {
        let settings = gql.api.test.settings.clone();
        let store = eventstore_config::Store::open(&settings)
            .await
            .expect("open the store");
        let authenticator = access::Authenticator::load(&settings, &store)
            .await
            .expect("authenticator");
        let follower = authenticator.follow();
        let router = query_api::build(store, authenticator).router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}/graphql", listener.local_addr().expect("address"));
        let server = tokio::spawn(command_api::serve(
            listener,
            router,
            std::future::pending::<()>(),
        ));
        Self {
            endpoint,
            client: reqwest::Client::new(),
            _follower: follower,
            server,
        }
    }

    async fn query(&self, token: &str, query: &str, variables: Value) -> GqlAnswer {
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        GqlAnswer { status, body }
    }
}

fn variables(account: &Account) -> Value {
    json!({"id": account.id})
}

fn refused(answer: &GqlAnswer) -> bool {
    answer.codes().iter().any(|c| c == "UNAUTHENTICATED")
}

async fn deposit(client: &reqwest::Client, base: &str, account: &Account) -> StatusCode {
    client
        .post(format!("{base}/api/v1/accounts/{}/deposits", account.id))
        .bearer_auth(&account.token)
        .json(&json!({"amount": 100, "currency": "EUR"}))
        .send()
        .await
        .expect("request sent")
        .status()
}

/// Polls `check` until it holds, for at most 10 s (another process learns from the log).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_deleted_account_s_token_is_refused_by_rest_and_graphql_in_every_process(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let ann = api.register("customer").await;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 100, 10).await;
    api.order(&ann, &[(&product, 1)], "EUR").await;
    gql.project().await;

    let other_rest = api.other_server().await;
    let other_graphql = QueryProcess::start(&gql).await;
    // Before: every read works in both processes (and warms the second one's cache).
    for (name, query) in OWN_READS {
        let here = gql.query(&ann.token, query, variables(&ann)).await;
        assert!(!refused(&here), "{name} before deletion: {}", here.body);
        let there = other_graphql
            .query(&ann.token, query, variables(&ann))
            .await;
        assert!(
            !refused(&there),
            "{name} before deletion, second process: {}",
            there.body
        );
    }
    assert_eq!(
        deposit(&api.client, &other_rest.base, &ann).await,
        StatusCode::CREATED
    );

    let deleted = api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{}", ann.id),
            Some(&ann.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);

    // The same process: at once.
    assert_eq!(
        deposit(&api.client, &api.base, &ann).await,
        StatusCode::UNAUTHORIZED
    );
    for (name, query) in OWN_READS {
        let answer = gql.query(&ann.token, query, variables(&ann)).await;
        assert!(refused(&answer), "{name} after deletion: {}", answer.body);
        assert!(
            answer.body["data"].is_null(),
            "{name} leaked data: {}",
            answer.body
        );
    }

    // A second process: as soon as it has read the deletion from the log.
    eventually("the second REST process refusing the token", || async {
        deposit(&api.client, &other_rest.base, &ann).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eventually("the second GraphQL process refusing the token", || async {
        refused(
            &other_graphql
                .query(&ann.token, OWN_READS[0].1, json!({}))
                .await,
        )
    })
    .await;
    for (name, query) in OWN_READS {
        let answer = other_graphql
            .query(&ann.token, query, variables(&ann))
            .await;
        assert!(
            refused(&answer),
            "{name} after deletion, second process: {}",
            answer.body
        );
    }

    // Another account is not affected.
    let bob = api.register("customer").await;
    let answer = other_graphql
        .query(&bob.token, OWN_READS[0].1, json!({}))
        .await;
    assert!(!refused(&answer), "{}", answer.body);
}

graphql_tests!(a_deleted_account_s_token_is_refused_by_rest_and_graphql_in_every_process);

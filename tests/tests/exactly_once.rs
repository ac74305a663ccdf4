//! Exactly-once commands across crashes, on both stores: 100 clients each send one command
//! (80 deposits into their own wallets, 20 order placements) with their own `Idempotency-Key`,
//! while the real `eventshop serve` is SIGKILLed at random moments three times and restarted on
//! the same database; each client retries until it gets a 2xx. Every key's command is then in
//! the log exactly once, and a repeat of every request replays the first success's answer.

use std::sync::Arc;

use access::{Passwords, PolicyCache, Tokens};
use application::accounts::{self, Registration};
use application::{App, Origin};
use domain::account::Role;
use domain::wallet::Wallet;
use domain::{Currency, Email, Money, Name};
use eventshop_tests::child::{self, Request, Server};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, EventMetadata, Sql};
use reqwest::StatusCode;
use uuid::Uuid;

const CLIENTS: usize = 100;
const ORDERING: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_keyed_command_runs_exactly_once_across_three_sigkills() {
    every_keyed_command_runs_exactly_once_across_three_sigkills(TestStore::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_keyed_command_runs_exactly_once_across_three_sigkills() {
    every_keyed_command_runs_exactly_once_across_three_sigkills(TestStore::sqlite().await).await;
}

async fn app(test: &TestStore) -> App {
    let tokens = Tokens::load(&test.settings, &test.store)
        .await
        .expect("tokens");
    App::new(
        CommandBus::new(test.store.clone(), &test.settings),
        Passwords::from_settings(&test.settings),
        tokens,
        Arc::new(PolicyCache::new()),
        Currency::EUR,
    )
}

async fn register(app: &App, email: String, role: Role) -> Uuid {
    accounts::register(
        app,
        &Origin::default(),
        Registration {
            email: Email::parse(&email).expect("email"),
            name: Name::parse("Client").expect("name"),
            password: "a long password".into(),
            role,
        },
        None,
    )
    .await
    .expect("register")
    .account_id
}

/// How many `OrderPlaced` events `account` appended.
async fn orders_placed_by(test: &TestStore, account: Uuid) -> Vec<String> {
    let rows: Vec<(String, String)> = Sql::new(
        "SELECT aggregate_id, CAST(metadata AS text) FROM events WHERE event_type = 'OrderPlaced'",
    )
    .fetch_all(&test.store)
    .await
    .expect("orders");
    rows.into_iter()
        .filter(|(_, metadata)| {
            serde_json::from_str::<serde_json::Value>(metadata).expect("metadata")["actor"]
                == account.to_string()
        })
        .map(|(order, _)| order)
        .collect()
}

async fn every_keyed_command_runs_exactly_once_across_three_sigkills(test: TestStore) {
    // Given 100 customers with tokens, and a product in stock
    let app = app(&test).await;
    let seller = register(&app, "seller@example.com".into(), Role::Seller).await;
    let product = application::products::create_product(
        &app,
        &EventMetadata::for_actor(seller.to_string()),
        seller,
        application::products::NewProduct {
            name: "Kettle".into(),
            description: String::new(),
            sku: None,
            price: Money::new(100, Currency::EUR),
            stock: 1_000_000,
        },
        None,
    )
    .await
    .expect("product")
    .product_id;
    let mut customers = Vec::new();
    for chunk in (0..CLIENTS).collect::<Vec<_>>().chunks(10) {
        let registered = futures::future::join_all(
            chunk
                .iter()
                .map(|i| register(&app, format!("client{i}@example.com"), Role::Customer)),
        )
        .await;
        customers.extend(registered);
    }
    let requests: Vec<Request> = customers
        .iter()
        .enumerate()
        .map(|(i, customer)| {
            let token = app
                .tokens()
                .issue(&customer.to_string())
                .expect("token")
                .access_token;
            let (path, body) = if i < CLIENTS - ORDERING {
                (
                    format!("/api/v1/accounts/{customer}/deposits"),
                    serde_json::json!({"amount": 1_000 + i as i64, "currency": "EUR"}),
                )
            } else {
                (
                    "/api/v1/orders".to_owned(),
                    serde_json::json!({
                        "items": [{"product_id": product, "quantity": 1 + i % 3}],
                        "currency": "EUR",
                    }),
                )
            };
            Request {
                path,
                token: Some(token),
                key: Some(format!("client-{i}-{}", Uuid::new_v4().simple())),
                body,
                done: |status| status.is_success(),
            }
        })
        .collect();

    // When every client sends its command while the server is SIGKILLed three times
    let server = Server::start(&test).await;
    let client = reqwest::Client::new();
    let answers = child::run_under_kills(&server, &client, requests.clone(), 3).await;

    // Then every key's command is in the log exactly once
    for (i, customer) in customers.iter().enumerate() {
        if i < CLIENTS - ORDERING {
            let wallet = test
                .store
                .load_current::<Wallet>(&customer.to_string())
                .await
                .expect("wallet");
            assert_eq!(
                wallet.state.balance(),
                Some(Money::new(1_000 + i as i64, Currency::EUR)),
                "client {i}'s wallet"
            );
            let deposits = test
                .store
                .history("wallet", &customer.to_string())
                .await
                .expect("history")
                .iter()
                .filter(|e| e.event_type == "FundsDeposited")
                .count();
            assert_eq!(deposits, 1, "client {i} deposited {deposits} times");
        } else {
            let placed = orders_placed_by(&test, *customer).await;
            assert_eq!(placed.len(), 1, "client {i} placed {placed:?}");
            let first = answers[i].last().expect("an answer");
            let body: serde_json::Value = serde_json::from_str(&first.body).expect("JSON");
            assert_eq!(body["order_id"], placed[0].as_str(), "client {i}'s answer");
        }
    }
    // and a repeat of every request replays the first success's status and body
    for (i, request) in requests.iter().enumerate() {
        let first = answers[i].last().expect("an answer");
        assert!(first.status.is_success(), "client {i}: {first:?}");
        let again = child::send(&server, &client, request)
            .await
            .expect("the repeat is answered");
        assert!(again.replayed, "client {i}'s repeat is not a replay");
        assert_eq!(
            (again.status, &again.body),
            (first.status, &first.body),
            "client {i}"
        );
        // Every earlier success the client saw (none, as it stops at the first) is the same.
        for earlier in answers[i].iter().filter(|a| a.status.is_success()) {
            assert_eq!(earlier.body, first.body);
        }
        assert_ne!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    server.stop().await;
}

mod in_process {
    use eventshop_tests::api::TestApi;
    use eventshop_tests::api_tests;
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    api_tests!(
        a_key_raced_through_two_processes_appends_once_and_answers_alike,
        a_registration_raced_through_two_processes_answers_one_account,
        the_session_routes_refuse_an_idempotency_key,
    );

    async fn a_key_raced_through_two_processes_appends_once_and_answers_alike(api: TestApi) {
        // Given an account, and a second API process over the same database
        let account = api.register("customer").await;
        let other = api.other_server().await;
        let path = format!("/api/v1/accounts/{}/deposits", account.id);

        // When the same keyed deposit is sent to both processes at once, three times each
        let send = |base: String| {
            let (path, token) = (path.clone(), account.token.clone());
            async move {
                let response = reqwest::Client::new()
                    .post(format!("{base}{path}"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", "two-processes")
                    .json(&json!({"amount": 9, "currency": "EUR"}))
                    .send()
                    .await
                    .expect("sent");
                let status = response.status();
                (status, response.text().await.expect("body"))
            }
        };
        let answers = futures::future::join_all((0..6).map(|i| {
            send(if i % 2 == 0 {
                api.base.clone()
            } else {
                other.base.clone()
            })
        }))
        .await;

        // Then every success carries the same body, the others are "in progress", and the
        // wallet got one deposit
        let created: Vec<_> = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .collect();
        assert!(!created.is_empty(), "{answers:?}");
        for (status, body) in &answers {
            match *status {
                StatusCode::CREATED => assert_eq!(body, &created[0].1),
                StatusCode::CONFLICT => assert!(body.contains("still in progress"), "{body}"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        let deposits = api
            .store()
            .history("wallet", &account.id)
            .await
            .expect("history")
            .iter()
            .filter(|e| e.event_type == "FundsDeposited")
            .count();
        assert_eq!(deposits, 1);
        // and a later repeat on either process replays it
        for base in [api.base.clone(), other.base.clone()] {
            let (status, body) = send(base).await;
            assert_eq!((status, &body), (StatusCode::CREATED, &created[0].1));
        }
    }

    async fn a_registration_raced_through_two_processes_answers_one_account(api: TestApi) {
        // Given two API processes over one database
        let other = api.other_server().await;
        for round in 0..4 {
            // When one keyed registration is sent to both at once
            let body = json!({
                "email": format!("raced{round}@example.com"),
                "password": "a long password",
                "name": "Raced",
            });
            let send = |base: String| {
                let body = body.clone();
                async move {
                    let response = reqwest::Client::new()
                        .post(format!("{base}/api/v1/accounts"))
                        .header("Idempotency-Key", format!("register-{round}"))
                        .json(&body)
                        .send()
                        .await
                        .expect("sent");
                    let status = response.status();
                    let body: serde_json::Value = response.json().await.expect("JSON");
                    (status, body)
                }
            };
            let (one, two) = tokio::join!(send(api.base.clone()), send(other.base.clone()));

            // Then both answer the one account the first registered (never "email in use"),
            // unless one was still in progress in its own process
            assert_eq!(one.0, StatusCode::CREATED, "{}", one.1);
            assert_eq!(two.0, StatusCode::CREATED, "{}", two.1);
            assert_eq!(one.1["account_id"], two.1["account_id"]);
        }
        let accounts: (i64,) = eventstore_config::Sql::new(
            "SELECT count(*) FROM events WHERE event_type = 'AccountRegistered'",
        )
        .fetch_one(api.store())
        .await
        .expect("count");
        assert_eq!(accounts.0, 4);
    }

    async fn the_session_routes_refuse_an_idempotency_key(api: TestApi) {
        // Given an account
        let account = api.register("customer").await;
        // When it logs in or refreshes with an Idempotency-Key
        let login = api
            .send(
                Method::POST,
                "/api/v1/sessions",
                None,
                Some(json!({"email": account.email, "password": account.password})),
                &[("Idempotency-Key", "login-1")],
            )
            .await;
        let refresh = api
            .send(
                Method::POST,
                "/api/v1/sessions/refresh",
                None,
                Some(json!({"refresh_token": account.refresh})),
                &[("Idempotency-Key", "refresh-1")],
            )
            .await;
        // Then both are a 400 naming the header, and no token answer was stored
        for answer in [login, refresh] {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
            assert_eq!(answer.error().1.as_deref(), Some("Idempotency-Key"));
        }
        let stored: (i64,) = eventstore_config::Sql::new("SELECT count(*) FROM idempotency_keys")
            .fetch_one(api.store())
            .await
            .expect("count");
        assert_eq!(stored.0, 0);
    }
}

//! Use cases that touch several aggregates commit all of them or none, on both stores: a unit
//! of work whose second aggregate lost a race commits nothing and runs again as a whole; a
//! rejection on any aggregate appends nothing; a taken e-mail leaves no account behind; and
//! registrations and order placements interrupted by SIGKILL never leave an account without its
//! wallet and policies, nor an order without its grants.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use access::{Passwords, PolicyCache, Tokens};
use application::accounts::{self, Registration};
use application::{App, AppError, Kind, Origin};
use domain::account::Role;
use domain::policy_set::PolicySet;
use domain::wallet::{Wallet, WalletCommand, WalletError};
use domain::{Currency, Email, Money, Name, Policy};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, CommandError, CommitError, EventMetadata};
use uuid::Uuid;

use eventshop_tests::child;

eventshop_tests::store_tests!(
    a_conflict_on_the_second_aggregate_runs_the_whole_use_case_again_and_appends_nothing_twice,
    a_rejection_on_any_aggregate_appends_nothing,
    a_unit_of_work_keeps_states_and_writes_due_snapshots_after_its_commit,
    a_registration_with_a_taken_email_appends_nothing,
    an_email_is_claimed_by_one_account_only,
    registrations_and_orders_killed_mid_way_are_never_half_done,
);

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn bus(test: &TestStore) -> CommandBus {
    CommandBus::new(test.store.clone(), &test.settings)
}

async fn app(test: &TestStore) -> App {
    let tokens = Tokens::load(&test.settings, &test.store)
        .await
        .expect("tokens");
    App::new(
        bus(test),
        Passwords::from_settings(&test.settings),
        tokens,
        Arc::new(PolicyCache::new()),
        Currency::EUR,
    )
}

async fn open_wallet(bus: &CommandBus) -> String {
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    bus.execute::<Wallet>(
        &id,
        WalletCommand::Open {
            account_id,
            currency: Currency::EUR,
        },
        &(),
        &EventMetadata::system(),
    )
    .await
    .expect("open");
    id
}

/// The wallet's balance (minor units) and how many deposits it got.
async fn deposits(bus: &CommandBus, id: &str) -> (i64, usize) {
    let wallet = bus
        .store()
        .load_current::<Wallet>(id)
        .await
        .expect("wallet");
    let count = bus
        .store()
        .history("wallet", id)
        .await
        .expect("history")
        .iter()
        .filter(|e| e.event_type == "FundsDeposited")
        .count();
    (wallet.state.balance().map_or(0, |m| m.amount), count)
}

async fn a_conflict_on_the_second_aggregate_runs_the_whole_use_case_again_and_appends_nothing_twice(
    test: TestStore,
) {
    // Given two wallets, and a use case depositing into both in one unit of work
    let bus = bus(&test);
    let (first, second) = (open_wallet(&bus).await, open_wallet(&bus).await);
    let runs = AtomicU32::new(0);

    // When another writer deposits into the second wallet between the first run's decisions
    // and its commit
    let result: Result<(), CommitError> = bus
        .retrying(|| async {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let mut unit = bus.unit_of_work(EventMetadata::for_actor("tester"));
            unit.decide::<Wallet>(
                &first,
                WalletCommand::Deposit { amount: eur(10) },
                &(),
                None,
            )
            .await
            .expect("decide on the first");
            unit.decide::<Wallet>(
                &second,
                WalletCommand::Deposit { amount: eur(20) },
                &(),
                None,
            )
            .await
            .expect("decide on the second");
            if run == 1 {
                let other = CommandBus::new(test.store.clone(), &test.settings);
                other
                    .execute::<Wallet>(
                        &second,
                        WalletCommand::Deposit { amount: eur(5) },
                        &(),
                        &EventMetadata::for_actor("other"),
                    )
                    .await
                    .expect("the other writer");
            }
            unit.commit().await.map(|_| ())
        })
        .await;

    // Then the whole use case ran twice, and each wallet got its deposit exactly once
    result.expect("the second run commits");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(deposits(&bus, &first).await, (10, 1));
    assert_eq!(deposits(&bus, &second).await, (25, 2));
    // and the kept states are the committed ones: the next command starts from them
    let next = bus
        .execute::<Wallet>(
            &first,
            WalletCommand::Deposit { amount: eur(1) },
            &(),
            &EventMetadata::system(),
        )
        .await
        .expect("deposit after");
    assert_eq!(next.version, 3);
}

async fn a_rejection_on_any_aggregate_appends_nothing(test: TestStore) {
    // Given two wallets
    let bus = bus(&test);
    let (first, second) = (open_wallet(&bus).await, open_wallet(&bus).await);
    let head = test.store.head_position().await.expect("head");

    // When a unit of work deposits into the first and the second refuses its command
    let mut unit = bus.unit_of_work(EventMetadata::system());
    unit.decide::<Wallet>(
        &first,
        WalletCommand::Deposit { amount: eur(10) },
        &(),
        None,
    )
    .await
    .expect("decide on the first");
    let refused = unit
        .decide::<Wallet>(
            &second,
            WalletCommand::Deposit { amount: eur(-1) },
            &(),
            None,
        )
        .await;
    drop(unit);

    // Then the refusal is a rejection and nothing was appended
    assert!(matches!(
        refused,
        Err(CommandError::Rejected(WalletError::NonPositiveAmount))
    ));
    assert_eq!(test.store.head_position().await.expect("head"), head);
    assert_eq!(deposits(&bus, &first).await, (0, 0));
}

async fn a_unit_of_work_keeps_states_and_writes_due_snapshots_after_its_commit(test: TestStore) {
    // Given a bus that snapshots every 2 versions, and two wallets at version 1
    let mut settings = test.settings.clone();
    settings.snapshot_every = 2;
    let bus = CommandBus::new(test.store.clone(), &settings);
    let (first, second) = (open_wallet(&bus).await, open_wallet(&bus).await);

    // When one unit of work deposits into both (version 2 each)
    let mut unit = bus.unit_of_work(EventMetadata::system());
    for id in [&first, &second] {
        unit.decide::<Wallet>(id, WalletCommand::Deposit { amount: eur(3) }, &(), None)
            .await
            .expect("decide");
    }
    let commit = unit.commit().await.expect("commit");

    // Then both got a snapshot at version 2, positions are answered per aggregate, and the
    // next command on each starts from the committed state
    let snapshots: Vec<(String, i64)> = eventstore_config::Sql::new(
        "SELECT aggregate_id, version FROM aggregate_snapshots ORDER BY aggregate_id",
    )
    .fetch_all(&test.store)
    .await
    .expect("snapshots");
    let mut expected = vec![(first.clone(), 2), (second.clone(), 2)];
    expected.sort();
    assert_eq!(snapshots, expected);
    let (p1, p2) = (
        commit.position::<Wallet>(&first).expect("first position"),
        commit.position::<Wallet>(&second).expect("second position"),
    );
    assert!(p1 < p2);
    assert_eq!(commit.last_position(), Some(p2));
    for id in [&first, &second] {
        let next = bus
            .execute::<Wallet>(
                id,
                WalletCommand::Deposit { amount: eur(1) },
                &(),
                &EventMetadata::system(),
            )
            .await
            .expect("deposit after");
        assert_eq!(next.version, 3);
        assert_eq!(deposits(&bus, id).await, (4, 2));
    }
}

fn registration(email: &str) -> Registration {
    Registration {
        email: Email::parse(email).expect("email"),
        name: Name::parse("Reg").expect("name"),
        password: "a long password".into(),
        role: Role::Customer,
    }
}

async fn a_registration_with_a_taken_email_appends_nothing(test: TestStore) {
    // Given a registered account
    let app = app(&test).await;
    let first = accounts::register(
        &app,
        &Origin::default(),
        registration("taken@example.com"),
        None,
    )
    .await
    .expect("first registration");
    assert!(accounts::is_set_up(&app, first.account_id)
        .await
        .expect("set up"));
    let head = test.store.head_position().await.expect("head");

    // When another registration uses its e-mail
    let second = accounts::register(
        &app,
        &Origin::default(),
        registration("taken@example.com"),
        None,
    )
    .await;

    // Then it is a conflict naming `email`, and no account, wallet or grant was appended
    match second {
        Err(AppError::Rejected(rejected)) => {
            assert_eq!(rejected.kind, Kind::Conflict);
            assert_eq!(rejected.message, "email already in use");
            assert_eq!(rejected.field.as_deref(), Some("email"));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(test.store.head_position().await.expect("head"), head);
}

async fn an_email_is_claimed_by_one_account_only(test: TestStore) {
    // Given eight concurrent registrations of one address
    let app = app(&test).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                accounts::register(
                    &app,
                    &Origin::default(),
                    registration("Same@Example.com"),
                    None,
                )
                .await
            })
        })
        .collect();

    // When they all finish
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(registered) => winners.push(registered.account_id),
            Err(AppError::Rejected(r)) if r.kind == Kind::Conflict => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    // Then exactly one won, and only its account exists
    assert_eq!(winners.len(), 1);
    let registered = eventstore_config::Sql::new(
        "SELECT count(*) FROM events WHERE event_type = 'AccountRegistered'",
    )
    .fetch_one::<(i64,)>(&test.store)
    .await
    .expect("count");
    assert_eq!(registered.0, 1);
}

async fn registrations_and_orders_killed_mid_way_are_never_half_done(test: TestStore) {
    // Given a product, and a server that is SIGKILLed three times while 30 clients register
    // and 30 clients place orders (each retrying until it gets an answer)
    let app = app(&test).await;
    let seller = accounts::register(
        &app,
        &Origin::default(),
        Registration {
            role: Role::Seller,
            ..registration("seller@example.com")
        },
        None,
    )
    .await
    .expect("seller");
    let product = application::products::create_product(
        &app,
        &EventMetadata::for_actor(seller.account_id.to_string()),
        seller.account_id,
        application::products::NewProduct {
            name: "Teapot".into(),
            description: String::new(),
            sku: None,
            price: eur(100),
            stock: 1_000_000,
        },
        None,
    )
    .await
    .expect("product");
    let mut customers = Vec::new();
    for i in 0..30 {
        let registered = accounts::register(
            &app,
            &Origin::default(),
            registration(&format!("buyer{i}@example.com")),
            None,
        )
        .await
        .expect("customer");
        let token = app
            .tokens()
            .issue(&registered.account_id.to_string())
            .expect("token")
            .access_token;
        customers.push(token);
    }
    let server = child::Server::start(&test).await;
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for i in 0..30 {
        requests.push(child::Request {
            path: "/api/v1/accounts".into(),
            token: None,
            key: None,
            body: serde_json::json!({
                "email": format!("new{i}@example.com"),
                "password": "a long password",
                "name": "New",
            }),
            done: |status| status.is_success() || status == reqwest::StatusCode::CONFLICT,
        });
    }
    for token in &customers {
        requests.push(child::Request {
            path: "/api/v1/orders".into(),
            token: Some(token.clone()),
            key: None,
            body: serde_json::json!({
                "items": [{"product_id": product.product_id, "quantity": 1}],
                "currency": "EUR",
            }),
            done: |status| status.is_success(),
        });
    }

    // When the requests run while the server is killed and restarted
    let answers = child::run_under_kills(&server, &client, requests, 3).await;
    server.stop().await;
    assert_eq!(answers.len(), 60);

    // Then every registered account has its wallet and its policies, and every order its
    // owner's grants
    let accounts_registered: Vec<(String,)> = eventstore_config::Sql::new(
        "SELECT aggregate_id FROM events WHERE event_type = 'AccountRegistered'",
    )
    .fetch_all(&test.store)
    .await
    .expect("accounts");
    // The seller, the 30 buyers and the 30 new accounts: a retried registration whose first
    // try committed is an e-mail conflict, never a second account.
    assert_eq!(accounts_registered.len(), 1 + 30 + 30);
    for (id,) in &accounts_registered {
        let id = Uuid::parse_str(id).expect("uuid");
        assert!(
            accounts::is_set_up(&app, id).await.expect("read"),
            "account {id} lacks its wallet or policies"
        );
    }
    let orders: Vec<(String, String)> = eventstore_config::Sql::new(
        "SELECT aggregate_id, CAST(metadata AS text) FROM events WHERE event_type = 'OrderPlaced'",
    )
    .fetch_all(&test.store)
    .await
    .expect("orders");
    assert!(orders.len() >= 30, "{}", orders.len());
    assert_eq!(accounts_registered.len(), 61);
    for (order, metadata) in &orders {
        let metadata: serde_json::Value =
            serde_json::from_str(metadata).unwrap_or(serde_json::Value::Null);
        let owner = metadata["actor"].as_str().expect("the order's actor");
        let policies = test
            .store
            .load_current::<PolicySet>(owner)
            .await
            .expect("policies")
            .state;
        for action in ["get", "put"] {
            let grant = Policy::parse(&format!("{owner}:{action}:orders:{order}")).expect("policy");
            assert!(policies.contains(&grant), "order {order} lacks {grant:?}");
        }
    }
}

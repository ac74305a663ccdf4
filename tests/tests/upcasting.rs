//! Event upcasting, on PostgreSQL AND SQLite. `tests/fixtures/product_v1_events.sql` holds a
//! product's events as written before `ProductCreated` v2 (no `sku`); a second fresh database gets
//! the same commands through today's command bus (v2 events). Folds (current, `atVersion`,
//! `asOf`), the read models (projected and rebuilt) and `history` must answer the same for both;
//! an event of a schema version newer than this binary knows is refused loudly by the command
//! bus, parked by a projector and reported by `history`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::product::{default_sku, Product, ProductCommand, ProductEvent};
use domain::{Currency, Money, Quantity};
use eventshop_tests::api::TestApi;
use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::projections::catch_up_all;
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, CommandError, EventMetadata, ReadError, Sql, Store};
use projectors::read_models;
use projectors::runner::{run_with, RunnerOptions};
use serde_json::{json, Value};
use uuid::Uuid;

/// The v1 rows, INSERT statements written once for both stores.
const FIXTURE: &str = include_str!("../fixtures/product_v1_events.sql");
const PRODUCT: &str = "0190a000-0000-7000-8000-0000000000a1";
const SELLER: &str = "0190a000-0000-7000-8000-0000000000b1";
const ORDER: &str = "0190a000-0000-7000-8000-0000000000c1";
/// The fixture's events are recorded at 10:00:00, :01, … :04 on this day.
const FIRST_RECORDED: &str = "2026-06-01T10:00:00Z";

#[derive(Clone, Copy)]
enum Kind {
    Postgres,
    Sqlite,
}

impl Kind {
    async fn store(self) -> TestStore {
        match self {
            Kind::Postgres => TestStore::postgres().await,
            Kind::Sqlite => TestStore::sqlite().await,
        }
    }
}

/// Runs each test on both stores.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Kind::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Kind::Sqlite).await;
                }
            )*
        }
    };
}

on_both_stores!(
    given_v1_events_when_folded_now_at_each_version_and_as_of_each_time_then_the_states_equal_v2_events,
    given_v1_events_when_projected_and_rebuilt_then_the_read_model_equals_v2_events,
    given_v1_events_when_history_is_read_then_it_equals_the_history_of_v2_events,
    given_an_event_of_a_future_schema_version_then_the_bus_refuses_a_projector_parks_and_history_reports_it,
    given_a_seller_when_creating_products_with_and_without_a_sku_then_graphql_shows_each_and_a_bad_sku_is_a_422,
);

/// Inserts the v1 fixture's rows.
async fn load_v1_fixture(store: &Store) {
    for statement in FIXTURE.split(';') {
        let sql: String = statement
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if sql.trim().is_empty() {
            continue;
        }
        Sql::new(sql)
            .execute(store)
            .await
            .expect("fixture row inserted");
    }
}

fn uuid(text: &str) -> Uuid {
    text.parse().unwrap()
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

/// The fixture's commands through today's command bus: the same events, at today's versions.
async fn write_as_v2(bus: &CommandBus) {
    let seller = EventMetadata::for_actor(SELLER);
    let system = EventMetadata::system();
    let commands = [
        (
            ProductCommand::Create {
                product_id: uuid(PRODUCT),
                seller: uuid(SELLER),
                name: "Teapot".into(),
                description: "Blue".into(),
                sku: None,
                price: eur(1390),
                stock: 10,
            },
            &seller,
        ),
        (
            ProductCommand::Update {
                name: Some("Big teapot".into()),
                description: None,
                price: Some(eur(1490)),
            },
            &seller,
        ),
        (ProductCommand::Restock { quantity: qty(5) }, &seller),
        (
            ProductCommand::Reserve {
                order_id: uuid(ORDER),
                quantity: qty(3),
            },
            &system,
        ),
        (
            ProductCommand::CommitReservation {
                order_id: uuid(ORDER),
            },
            &system,
        ),
    ];
    for (command, metadata) in commands {
        bus.execute::<Product>(PRODUCT, command, &(), metadata)
            .await
            .expect("command accepted");
    }
}

/// The schema versions stored in the events table for the fixture's product, in order.
async fn stored_versions(store: &Store, id: &str) -> Vec<String> {
    let rows: Vec<(String,)> =
        Sql::new("SELECT event_version FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .arg(id)
            .fetch_all(store)
            .await
            .unwrap();
    rows.into_iter().map(|(v,)| v).collect()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

async fn given_v1_events_when_folded_now_at_each_version_and_as_of_each_time_then_the_states_equal_v2_events(
    kind: Kind,
) {
    let (v1, v2) = (kind.store().await, kind.store().await);
    load_v1_fixture(&v1.store).await;
    write_as_v2(&CommandBus::new(v2.store.clone(), &v2.settings)).await;

    // New events are written at today's versions; the old rows stay as they were.
    assert_eq!(
        stored_versions(&v2.store, PRODUCT).await,
        ["2", "1", "1", "1", "1"]
    );
    assert_eq!(stored_versions(&v1.store, PRODUCT).await, ["1"; 5]);

    let now_v1 = v1.store.load_current::<Product>(PRODUCT).await.unwrap();
    let now_v2 = v2.store.load_current::<Product>(PRODUCT).await.unwrap();
    assert_eq!((&now_v1.state, now_v1.version), (&now_v2.state, 5));
    assert_eq!(now_v1.state.sku(), default_sku(uuid(PRODUCT)));
    assert_eq!(now_v1.state.sku(), "P-0190A0000000700080000000000000A1");
    assert_eq!(
        (now_v1.state.name(), now_v1.state.stock_on_hand()),
        ("Big teapot", 12)
    );

    let first = at(FIRST_RECORDED);
    assert!(v1
        .store
        .load_as_of::<Product>(PRODUCT, first - chrono::Duration::seconds(1))
        .await
        .unwrap()
        .is_none());
    for version in 1..=5u64 {
        let at_v1 = v1.store.load_at_version::<Product>(PRODUCT, version);
        let at_v2 = v2.store.load_at_version::<Product>(PRODUCT, version);
        let (at_v1, at_v2) = (at_v1.await.unwrap().unwrap(), at_v2.await.unwrap().unwrap());
        assert_eq!(at_v1.state, at_v2.state, "atVersion {version}");
        // Event `version` was recorded at 10:00:0(version - 1); half a second later it is the last.
        let time = first + chrono::Duration::milliseconds(1000 * version as i64 - 500);
        let as_of = v1.store.load_as_of::<Product>(PRODUCT, time).await.unwrap();
        let as_of = as_of.expect("the product existed");
        assert_eq!(
            (as_of.state, as_of.version),
            (at_v2.state, version),
            "asOf {time}"
        );
    }

    // A snapshot of the state's older shape (no `sku`) is ignored, not decoded with a guess.
    let mut old_shape = serde_json::to_value(&now_v2.state).unwrap();
    old_shape.as_object_mut().unwrap().remove("sku");
    eventstore_config::snapshots::insert("product", PRODUCT, 5, old_shape, Utc::now())
        .execute(&v1.store)
        .await
        .unwrap();
    let reloaded = v1.store.load_current::<Product>(PRODUCT).await.unwrap();
    assert_eq!(reloaded.state, now_v2.state);

    // The command bus loads the v1 aggregate and appends after it.
    let bus = CommandBus::new(v1.store.clone(), &v1.settings);
    let restocked = bus
        .execute::<Product>(
            PRODUCT,
            ProductCommand::Restock { quantity: qty(1) },
            &(),
            &EventMetadata::for_actor(SELLER),
        )
        .await
        .unwrap();
    assert_eq!(restocked.version, 6);
    let after = v1.store.load_current::<Product>(PRODUCT).await.unwrap();
    assert_eq!(after.state.stock_on_hand(), 13);
    assert_eq!(after.state.sku(), now_v2.state.sku());
}

async fn product_record(store: &Store, as_of: Option<DateTime<Utc>>) -> Value {
    let records = read_models::products::by_ids(&[PRODUCT.to_string()], as_of)
        .fetch_all(store)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    json!({
        "id": r.id, "seller": r.seller, "name": r.name, "description": r.description,
        "sku": r.sku, "price": [r.price_amount, &r.price_currency],
        "stock": [r.stock_on_hand, r.stock_reserved, r.stock_available], "version": r.version,
    })
}

async fn given_v1_events_when_projected_and_rebuilt_then_the_read_model_equals_v2_events(
    kind: Kind,
) {
    let (v1, v2) = (kind.store().await, kind.store().await);
    load_v1_fixture(&v1.store).await;
    write_as_v2(&CommandBus::new(v2.store.clone(), &v2.settings)).await;
    catch_up_all(&v1.store).await;
    catch_up_all(&v2.store).await;

    let expected = product_record(&v2.store, None).await;
    assert_eq!(expected["sku"], json!(default_sku(uuid(PRODUCT))));
    assert_eq!(product_record(&v1.store, None).await, expected);
    // As of just after the update (10:00:01): the v1 history rows are there too.
    let after_update = at(FIRST_RECORDED) + chrono::Duration::milliseconds(1500);
    let then = product_record(&v1.store, Some(after_update)).await;
    assert_eq!(
        (
            &then["name"],
            &then["price"],
            &then["version"],
            &then["sku"]
        ),
        (
            &json!("Big teapot"),
            &json!([1490, "EUR"]),
            &json!(2),
            &expected["sku"]
        )
    );

    projectors::rebuild(
        &v1.store,
        &read_models::all(),
        2,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(product_record(&v1.store, None).await, expected);
    assert_eq!(product_record(&v1.store, Some(after_update)).await, then);
}

const HISTORY: &str = "query($id: ID!) { history(aggregateType: \"product\", aggregateId: $id) \
                        { version eventType actor payload } }";

async fn graphql(kind: Kind) -> (TestGraphql, String) {
    let api = TestApi::start(kind.store().await).await;
    let gql = TestGraphql::start(api, query_api::Options::default()).await;
    let admin = gql.api.admin().await;
    (gql, admin.token)
}

async fn given_v1_events_when_history_is_read_then_it_equals_the_history_of_v2_events(kind: Kind) {
    let ((v1, v1_token), (v2, v2_token)) = (graphql(kind).await, graphql(kind).await);
    load_v1_fixture(v1.store()).await;
    write_as_v2(&CommandBus::new(v2.store().clone(), &v2.api.test.settings)).await;

    let old = v1.query(&v1_token, HISTORY, json!({"id": PRODUCT})).await;
    let new = v2.query(&v2_token, HISTORY, json!({"id": PRODUCT})).await;
    assert_eq!(old.data(), new.data());
    let events = old.data()["history"].as_array().unwrap().clone();
    assert_eq!(events.len(), 5);
    assert_eq!(
        events[0]["payload"]["data"]["sku"],
        json!(default_sku(uuid(PRODUCT)))
    );
    // The log reader shows the same: upcast payloads at today's version.
    let log = v1.store().history("product", PRODUCT).await.unwrap();
    assert_eq!(log[0].event_version, "2");
    assert!(matches!(
        log[0].decode::<ProductEvent>().unwrap(),
        ProductEvent::ProductCreated { ref sku, .. } if *sku == default_sku(uuid(PRODUCT))
    ));
}

async fn given_an_event_of_a_future_schema_version_then_the_bus_refuses_a_projector_parks_and_history_reports_it(
    kind: Kind,
) {
    let (gql, token) = graphql(kind).await;
    let store = gql.store().clone();
    let future = Uuid::now_v7().to_string();
    Sql::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('product', $1, 1, 'ProductCreated', '3', $2, '{}')",
    )
    .arg(future.as_str())
    .arg(json!({"type": "ProductCreated", "data": {
        "product_id": future, "seller": SELLER, "name": "Cup", "description": "", "sku": "CUP",
        "colour": "red", "price": {"amount": 100, "currency": "EUR"}, "stock": 1}}))
    .execute(&store)
    .await
    .unwrap();
    let position = store.head_position().await.unwrap();
    let says_why = |text: &str| {
        text.contains(
            "ProductCreated is stored at schema version 3, newer than this binary knows (2)",
        )
    };

    // The command bus refuses the aggregate with the event's position and both versions …
    let bus = CommandBus::new(store.clone(), &gql.api.test.settings);
    let refused = bus
        .execute::<Product>(
            &future,
            ProductCommand::Restock { quantity: qty(1) },
            &(),
            &EventMetadata::system(),
        )
        .await
        .unwrap_err();
    let CommandError::Infrastructure(cause) = refused else {
        panic!("not an infrastructure error: {refused:?}");
    };
    assert!(says_why(&cause.to_string()), "{cause}");
    assert!(
        cause.to_string().contains(&format!("position {position}")),
        "{cause}"
    );
    // … and so does the REST API: a 5xx with the error body, not a panic.
    let answer = gql
        .api
        .post(
            &format!("/api/v1/products/{future}/restock"),
            Some(&token),
            json!({"quantity": 1}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 500, "{:?}", answer.body);
    assert!(answer.body["errors"].is_array(), "{:?}", answer.body);

    // The log reader still reads it (as stored), and decoding it fails with the reason.
    let log = store.history("product", &future).await.unwrap();
    assert_eq!(log[0].event_version, "3");
    match log[0].decode::<ProductEvent>() {
        Err(error @ ReadError::Upcast { .. }) => assert!(says_why(&error.to_string())),
        other => panic!("decoded: {other:?}"),
    }

    // `history` reports it.
    let answer = gql.query(&token, HISTORY, json!({"id": future})).await;
    let message = answer.body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(says_why(message), "{:?}", answer.body);
    assert_eq!(answer.codes(), ["INTERNAL_SERVER_ERROR"]);

    // A projector parks it.
    let options = RunnerOptions {
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        poll: Duration::from_millis(50),
        owner: "upcasting-test".into(),
        ..RunnerOptions::for_store(&store)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        store.clone(),
        options,
        read_models::all(),
        async move {
            stopped.await.ok();
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = projectors::status::status(&store, "products", 1)
            .await
            .unwrap();
        if status.state == "stuck" {
            break status;
        }
        assert!(Instant::now() < deadline, "never parked: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.dead_letters, 1);
    let error = status.last_error.unwrap_or_default();
    assert!(says_why(&error), "{error}");
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

async fn given_a_seller_when_creating_products_with_and_without_a_sku_then_graphql_shows_each_and_a_bad_sku_is_a_422(
    kind: Kind,
) {
    let (gql, _) = graphql(kind).await;
    let seller = gql.api.register("seller").await;
    let create = |sku: Option<&str>| {
        let mut body = json!({"name": "Cup", "price": 100, "currency": "EUR", "stock": 1});
        if let Some(sku) = sku {
            body["sku"] = json!(sku);
        }
        gql.api.post("/api/v1/products", Some(&seller.token), body)
    };
    let with = create(Some("CUP-1")).await;
    assert_eq!(with.status.as_u16(), 201, "{:?}", with.body);
    let without = create(None).await;
    assert_eq!(without.status.as_u16(), 201, "{:?}", without.body);
    for refused in ["CUP 1", " CUP-1 "] {
        let bad = create(Some(refused)).await;
        assert_eq!(bad.status.as_u16(), 422, "{refused:?}: {:?}", bad.body);
        assert_eq!(bad.error().1.as_deref(), Some("sku"), "{:?}", bad.body);
    }

    gql.project().await;
    let sku_of = |answer: &eventshop_tests::api::Answer| {
        let id = answer.body["product_id"].as_str().unwrap().to_owned();
        let gql = &gql;
        let token = seller.token.clone();
        async move {
            let query = "query($id: ID!) { product(id: $id) { sku } now: product(id: $id, atVersion: 1) { sku } }";
            let answer = gql.query(&token, query, json!({"id": id})).await;
            let data = answer.data().clone();
            assert_eq!(data["product"]["sku"], data["now"]["sku"], "{data}");
            (
                id,
                data["product"]["sku"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    assert_eq!(sku_of(&with).await.1, "CUP-1");
    let (id, sku) = sku_of(&without).await;
    assert_eq!(sku, default_sku(uuid(&id)));
}

//! The real binary's `projections dead-letters|retry|skip`, on both stores: a parked event is
//! listed (table and `--json`), a retry that still fails exits non-zero with one line, a skip
//! with a reason lets the projection go on and `projections status` shows who skipped what and
//! why; an unknown name or position is one line and a non-zero exit.

use std::process::Command;
use std::time::{Duration, Instant};

use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, Store};
use projectors::read_models;
use projectors::runner::{run_with, RunnerOptions};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

fn eventshop(test: &TestStore, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .env("DATABASE_URL", test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "error")
        .env("USER", "tester")
        .args(args)
        .output()
        .expect("run eventshop");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A product event no code can read (as an event from a botched import would be).
async fn insert_corrupt_product_event(store: &Store) {
    let sql = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
               VALUES ('product', 'corrupt', 1, 'ProductCreated', '1', '{\"type\":\"ProductCreated\",\"data\":{\"oops\":1}}', '{}')";
    match store {
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop).unwrap(),
        Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop).unwrap(),
    }
}

/// Runs the projections until `products` is stuck on the corrupt event, then stops them.
async fn park_the_corrupt_event(test: &TestStore) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        test.store.clone(),
        RunnerOptions {
            max_attempts: 2,
            backoff: Duration::from_millis(10),
            poll: Duration::from_millis(50),
            ..RunnerOptions::for_store(&test.store)
        },
        vec![read_models::by_name("products").unwrap()],
        async move {
            stopped.await.ok();
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while projectors::progress::dead_letters(&test.store, "products")
        .await
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "never parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

async fn given_a_parked_event_when_managed_from_the_terminal_then_it_is_listed_retried_and_skipped(
    test: TestStore,
) {
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let seller = eventshop_tests::projections::register(
        &bus,
        &format!("s-{}@example.com", Uuid::new_v4().simple()),
        domain::account::Role::Seller,
    )
    .await;
    eventshop_tests::projections::create_product(&bus, seller, 1).await;
    insert_corrupt_product_event(&test.store).await;
    let after = eventshop_tests::projections::create_product(&bus, seller, 2).await;
    park_the_corrupt_event(&test).await;

    // Listed, as a table and as JSON lines.
    let (ok, table, _) = eventshop(&test, &["projections", "dead-letters"]);
    assert!(ok);
    assert!(table.contains("ProductCreated"), "{table}");
    let (ok, json, _) = eventshop(
        &test,
        &["projections", "dead-letters", "products", "--json"],
    );
    assert!(ok);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{json}");
    assert_eq!(lines[0]["projection"], "products");
    assert_eq!(lines[0]["event_type"], "ProductCreated");
    assert_eq!(lines[0]["attempts"], 2);
    let position = lines[0]["position"].as_i64().unwrap().to_string();

    // The cause is still there: the retry fails with one line, and keeps the event.
    let (ok, _, stderr) = eventshop(&test, &["projections", "retry", "products"]);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("still fails"), "{stderr}");

    // Skipped with a reason: recorded, shown by status, and the projection goes on.
    let (ok, stdout, stderr) = eventshop(
        &test,
        &[
            "projections",
            "skip",
            "products",
            &position,
            "--reason",
            "botched import",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("skipped"), "{stdout}");
    let (ok, status, _) = eventshop(&test, &["projections", "status", "products"]);
    assert!(ok);
    assert!(
        status.contains(&format!("skipped position {position}"))
            && status.contains("by cli:tester")
            && status.contains("botched import"),
        "{status}"
    );
    projectors::catch_up(
        &test.store,
        &*read_models::by_name("products").unwrap(),
        500,
    )
    .await
    .unwrap();
    let (ok, list, _) = eventshop(&test, &["projections", "list", "--json"]);
    assert!(ok);
    let products: serde_json::Value = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "products")
        .unwrap();
    assert_eq!(products["dead_letters"], 0);
    assert_eq!(products["skips"][0]["reason"], "botched import");
    assert!(
        projectors::read_models::products::by_ids(&[after.to_string()], None)
            .fetch_all(&test.store)
            .await
            .unwrap()
            .len()
            == 1
    );

    // Unknown position, unknown name, nothing parked: one line each, non-zero exit.
    for (args, message) in [
        (
            vec![
                "projections",
                "skip",
                "products",
                &position,
                "--reason",
                "again",
            ],
            format!("products has no parked event at position {position}"),
        ),
        (
            vec!["projections", "retry", "nope"],
            "unknown projection 'nope'".to_string(),
        ),
        (
            vec!["projections", "retry", "products"],
            "products has no parked events".to_string(),
        ),
    ] {
        let (ok, _, stderr) = eventshop(&test, &args);
        assert!(!ok, "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(&message), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_dead_letters_are_managed_from_the_terminal_on_postgres() {
    given_a_parked_event_when_managed_from_the_terminal_then_it_is_listed_retried_and_skipped(
        TestStore::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_dead_letters_are_managed_from_the_terminal_on_sqlite() {
    given_a_parked_event_when_managed_from_the_terminal_then_it_is_listed_retried_and_skipped(
        TestStore::sqlite().await,
    )
    .await;
}

//! The projector contract, on PostgreSQL AND SQLite: each read model's rows after a scripted
//! command sequence, as-of reads at three points in time, idempotent replays, blue/green
//! rebuilds, dead letters and leases. Each test gets a fresh database.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use eventshop_tests::projections::{catch_up_all, dump_all, run_script, tick, wait_applied};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, Store};
use projectors::read_models;
use projectors::runner::{run_with, RunnerOptions};
use projectors::sql::sqlite_time;
use sqlx::Row;
use uuid::Uuid;

eventshop_tests::store_tests!(
    each_read_model_holds_the_scripted_state,
    a_product_reads_as_of_three_points_in_time,
    replaying_the_whole_log_twice_changes_nothing,
    a_rebuild_swaps_in_tables_equal_to_the_live_ones,
    events_appended_after_a_rebuild_are_applied_by_the_live_worker,
    a_rebuild_during_appends_and_a_live_worker_loses_and_repeats_nothing,
    an_event_that_keeps_failing_is_parked_and_the_projection_stops_before_it,
    a_second_runner_takes_over_when_the_first_stops,
);

fn bus(test: &TestStore) -> CommandBus {
    CommandBus::new(test.store.clone(), &test.settings)
}

/// Runs `sql` (with `?` placeholders, rewritten to `$n` for PostgreSQL) binding text values, and
/// returns the first column of each row as text (NULL as "NULL").
fn row_texts<R: Row>(row: &R) -> Vec<String>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    (0..row.len())
        .map(|i| {
            row.try_get::<Option<String>, _>(i)
                .unwrap()
                .unwrap_or("NULL".into())
        })
        .collect()
}

async fn texts(store: &Store, sql: &str, binds: &[&str]) -> Vec<Vec<String>> {
    match store {
        Store::Postgres(pool) => {
            let mut pg = String::new();
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    pg.push_str(&format!("${n}"));
                } else {
                    pg.push(c);
                }
            }
            let mut query = sqlx::query(&pg);
            for b in binds {
                query = query.bind(*b);
            }
            query
                .fetch_all(pool)
                .await
                .expect("query")
                .iter()
                .map(row_texts)
                .collect()
        }
        Store::Sqlite(pool) => {
            let mut query = sqlx::query(sql);
            for b in binds {
                query = query.bind(*b);
            }
            query
                .fetch_all(pool)
                .await
                .expect("query")
                .iter()
                .map(row_texts)
                .collect()
        }
    }
}

/// Every index and key constraint of the read-model tables, without their names (a rebuild's
/// copies get new ones): table, definition. Sorted. (No `?` in the SQL: `texts` rewrites it.)
async fn index_shapes(store: &Store) -> Vec<Vec<String>> {
    let sql = match store {
        Store::Postgres(_) => {
            "SELECT tablename::text, \
                    regexp_replace(indexdef, '^CREATE (UNIQUE |)INDEX \\S+ ON \\S+', 'CREATE \\1INDEX ON') \
               FROM pg_indexes WHERE tablename LIKE 'rm\\_%' \
             UNION ALL \
             SELECT conrelid::regclass::text, contype::text || ' ' || pg_get_constraintdef(oid) \
               FROM pg_constraint WHERE conrelid::regclass::text LIKE 'rm\\_%' \
             ORDER BY 1, 2"
        }
        Store::Sqlite(_) => {
            "SELECT tbl_name, substr(sql, instr(sql, ' ON ')) FROM sqlite_master \
              WHERE type = 'index' AND tbl_name LIKE 'rm\\_%' ESCAPE '\\' AND sql IS NOT NULL \
              ORDER BY 1, 2"
        }
    };
    texts(store, sql, &[]).await
}

async fn count(store: &Store, sql: &str) -> i64 {
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn each_read_model_holds_the_scripted_state(test: TestStore) {
    let s = run_script(&bus(&test)).await;
    catch_up_all(&test.store).await;
    let store = &test.store;

    let accounts = texts(
        store,
        "SELECT id, role, CAST(deleted AS text), CAST(last_login_at IS NOT NULL AS text), CAST(version AS text) \
           FROM rm_accounts WHERE valid_to_position IS NULL ORDER BY id",
        &[],
    )
    .await;
    let by_id = |id: Uuid| {
        accounts
            .iter()
            .find(|r| r[0] == id.to_string())
            .cloned()
            .unwrap()
    };
    assert_eq!(accounts.len(), 3);
    let truthy = |v: &str| v == "true" || v == "1";
    let customer = by_id(s.customer);
    assert_eq!(customer[1], "customer");
    assert!(!truthy(&customer[2]));
    assert!(truthy(&customer[3]), "the login is recorded");
    assert_eq!(customer[4], "2");
    assert_eq!(by_id(s.seller)[1], "seller");
    assert!(
        truthy(&by_id(s.deleted)[2]),
        "the deleted account is marked deleted"
    );

    let product = texts(
        store,
        "SELECT CAST(price_amount AS text), CAST(stock_on_hand AS text), CAST(stock_reserved AS text), \
                CAST(stock_available AS text), CAST(version AS text), seller \
           FROM rm_products WHERE id = ? AND valid_to_position IS NULL",
        &[&s.product.to_string()],
    )
    .await;
    // Created with 10, +5, reserved 2 and shipped, reserved 1 and released.
    assert_eq!(
        product,
        vec![vec!["1500", "13", "0", "13", "7", &s.seller.to_string()]]
    );

    let orders = texts(
        store,
        "SELECT id, status, CAST(total_amount AS text), items, account_id FROM rm_orders \
          WHERE valid_to_position IS NULL ORDER BY id",
        &[],
    )
    .await;
    assert_eq!(orders.len(), 2);
    let approved = orders
        .iter()
        .find(|o| o[0] == s.approved.to_string())
        .unwrap();
    assert_eq!(approved[1], "APPROVED");
    assert_eq!(approved[2], "3000");
    assert_eq!(approved[4], s.customer.to_string());
    let items: serde_json::Value = serde_json::from_str(&approved[3]).unwrap();
    assert_eq!(items[0]["product_id"], s.product.to_string());
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(items[0]["unit_price"]["amount"], 1500);
    let canceled = orders
        .iter()
        .find(|o| o[0] == s.canceled.to_string())
        .unwrap();
    assert_eq!(canceled[1], "CANCELED");

    let wallet = texts(
        store,
        "SELECT CAST(balance AS text), currency FROM rm_wallets \
          WHERE account_id = ? AND valid_to_position IS NULL",
        &[&s.customer.to_string()],
    )
    .await;
    assert_eq!(wallet, vec![vec!["7000", "EUR"]]);
    let movements = texts(
        store,
        "SELECT kind, CAST(amount AS text), COALESCE(order_id, '-') FROM rm_wallet_transactions \
          WHERE account_id = ? ORDER BY global_position",
        &[&s.customer.to_string()],
    )
    .await;
    assert_eq!(
        movements,
        vec![
            vec!["deposit".to_string(), "10000".into(), "-".into()],
            vec!["capture".to_string(), "3000".into(), s.approved.to_string()],
        ]
    );

    let policies = texts(
        store,
        "SELECT policies FROM rm_policies WHERE subject = ? AND valid_to_position IS NULL",
        &[&s.customer.to_string()],
    )
    .await;
    let set: BTreeSet<String> = serde_json::from_str(&policies[0][0]).unwrap();
    assert_eq!(set, BTreeSet::from([s.policy.clone()]));

    let events = count(store, "SELECT count(*) FROM events").await;
    assert_eq!(count(store, "SELECT count(*) FROM rm_audit").await, events);
    let by_customer = texts(
        store,
        "SELECT event_type FROM rm_audit WHERE actor = ? ORDER BY global_position",
        &[&s.customer.to_string()],
    )
    .await;
    let types: Vec<&str> = by_customer.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(types[0], "FundsDeposited");
    assert!(types.contains(&"OrderPlaced") && types.contains(&"AccountAuthenticated"));
}

/// `(stock_on_hand, version)` of a product as of `t`, by the indexed history query.
async fn product_as_of(store: &Store, id: Uuid, t: DateTime<Utc>) -> Option<(i64, i64)> {
    match store {
        Store::Postgres(pool) => sqlx::query_as(
            "SELECT stock_on_hand, version FROM rm_products WHERE id = $1 \
               AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
        )
        .bind(id.to_string())
        .bind(t)
        .fetch_optional(pool)
        .await
        .unwrap(),
        Store::Sqlite(pool) => sqlx::query_as(
            "SELECT stock_on_hand, version FROM rm_products WHERE id = ?1 \
               AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2)",
        )
        .bind(id.to_string())
        .bind(sqlite_time(t))
        .fetch_optional(pool)
        .await
        .unwrap(),
    }
}

async fn a_product_reads_as_of_three_points_in_time(test: TestStore) {
    let s = run_script(&bus(&test)).await;
    catch_up_all(&test.store).await;
    let history = test
        .store
        .history("product", &s.product.to_string())
        .await
        .unwrap();
    let created = history[0].recorded_at;
    let restocked = history[1].recorded_at;
    assert_eq!(history[1].event_type, "StockAdded");
    let before = created - chrono::Duration::seconds(1);

    assert_eq!(product_as_of(&test.store, s.product, before).await, None);
    assert_eq!(
        product_as_of(&test.store, s.product, created).await,
        Some((10, 1))
    );
    assert_eq!(
        product_as_of(&test.store, s.product, restocked).await,
        Some((15, 2))
    );
    assert_eq!(
        product_as_of(&test.store, s.product, Utc::now()).await,
        Some((13, 7))
    );

    // The list query as of the restock time returns exactly one version per product.
    let rows = match &test.store {
        Store::Postgres(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM rm_products WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)",
        )
        .bind(restocked)
        .fetch_one(pool)
        .await
        .unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM rm_products WHERE valid_from <= ?1 AND (valid_to IS NULL OR valid_to > ?1)",
        )
        .bind(sqlite_time(restocked))
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    assert_eq!(rows, 1);
}

async fn replaying_the_whole_log_twice_changes_nothing(test: TestStore) {
    run_script(&bus(&test)).await;
    catch_up_all(&test.store).await;
    let first = dump_all(&test.store).await;
    assert!(
        first.iter().all(|(_, rows)| !rows.is_empty()),
        "every table has rows"
    );
    for projection in read_models::all() {
        projectors::rebuild::reset_checkpoint(&test.store, projection.name())
            .await
            .unwrap();
    }
    catch_up_all(&test.store).await;
    assert_eq!(dump_all(&test.store).await, first);
}

async fn a_rebuild_swaps_in_tables_equal_to_the_live_ones(test: TestStore) {
    run_script(&bus(&test)).await;
    catch_up_all(&test.store).await;
    let live = dump_all(&test.store).await;
    let indexes = index_shapes(&test.store).await;
    assert!(indexes.len() >= 14, "{indexes:?}");
    let report = projectors::rebuild(
        &test.store,
        &read_models::all(),
        7,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let events = count(&test.store, "SELECT count(*) FROM events").await;
    assert_eq!(report.events as i64, events);
    assert_eq!(dump_all(&test.store).await, live);
    // A second rebuild (over the swapped-in tables) works too.
    projectors::rebuild(
        &test.store,
        &read_models::all(),
        500,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(dump_all(&test.store).await, live);
    // The swapped-in tables have every index and key constraint the live ones had (the
    // PostgreSQL rebuild drops the copies' indexes for the load and builds them afterwards).
    assert_eq!(index_shapes(&test.store).await, indexes);
}

async fn events_appended_after_a_rebuild_are_applied_by_the_live_worker(test: TestStore) {
    let bus = bus(&test);
    let s = run_script(&bus).await;
    // The live projections are behind (never run); the rebuild sets their checkpoints.
    projectors::rebuild(
        &test.store,
        &read_models::all(),
        5,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let after_rebuild = eventshop_tests::projections::deposit(&bus, s.customer, 500).await;
    catch_up_all(&test.store).await;
    let rows = texts(
        &test.store,
        "SELECT CAST(balance AS text) FROM rm_wallets WHERE account_id = ? AND valid_to_position IS NULL",
        &[&s.customer.to_string()],
    )
    .await;
    assert_eq!(rows, vec![vec!["7500".to_string()]]);
    let sql = format!("SELECT count(*) FROM rm_audit WHERE global_position = {after_rebuild}");
    assert_eq!(count(&test.store, &sql).await, 1);
    let events = count(&test.store, "SELECT count(*) FROM events").await;
    assert_eq!(
        count(&test.store, "SELECT count(*) FROM rm_audit").await,
        events
    );
    // Equal to yet another rebuild.
    let live = dump_all(&test.store).await;
    projectors::rebuild(
        &test.store,
        &read_models::all(),
        500,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(dump_all(&test.store).await, live);
}

async fn insert_corrupt_product_event(store: &Store) {
    let sql = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
               VALUES ('product', 'corrupt', 1, 'ProductCreated', '1', '{\"type\":\"ProductCreated\",\"data\":{\"oops\":1}}', '{}')";
    match store {
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop).unwrap(),
        Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop).unwrap(),
    }
}

fn quick_options(store: &Store, owner: &str) -> RunnerOptions {
    RunnerOptions {
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        poll: Duration::from_millis(50),
        owner: owner.to_string(),
        ..RunnerOptions::for_store(store)
    }
}

async fn an_event_that_keeps_failing_is_parked_and_the_projection_stops_before_it(test: TestStore) {
    let bus = bus(&test);
    let seller = eventshop_tests::projections::register(
        &bus,
        &format!("s-{}@example.com", Uuid::new_v4().simple()),
        domain::account::Role::Seller,
    )
    .await;
    let before = eventshop_tests::projections::create_product(&bus, seller, 1).await;
    insert_corrupt_product_event(&test.store).await;
    tick().await;
    let after = eventshop_tests::projections::create_product(&bus, seller, 2).await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        test.store.clone(),
        quick_options(&test.store, "runner-a"),
        read_models::all(),
        async move {
            stopped.await.ok();
        },
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = projectors::status::status(&test.store, "products", 1)
            .await
            .unwrap();
        if status.state == "stuck" {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never stuck: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.dead_letters, 1);
    assert!(status.last_error.unwrap().contains("position"));
    assert_eq!(
        status.lag_events, 2,
        "the corrupt event and the one after it wait"
    );
    let parked = texts(
        &test.store,
        "SELECT aggregate_id, event_type FROM projection_dead_letters WHERE projection = 'products'",
        &[],
    )
    .await;
    assert_eq!(
        parked,
        vec![vec!["corrupt".to_string(), "ProductCreated".into()]]
    );
    let ids: Vec<String> = texts(&test.store, "SELECT id FROM rm_products", &[])
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        ids,
        vec![before.to_string()],
        "applied up to the failing event, not past it"
    );
    assert!(!ids.contains(&after.to_string()));
    // Other projections are not held back.
    wait_for_audit(&test.store).await;
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

async fn wait_for_audit(store: &Store) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = count(store, "SELECT count(*) FROM events").await;
        if count(store, "SELECT count(*) FROM rm_audit").await == events {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_second_runner_takes_over_when_the_first_stops(test: TestStore) {
    let bus = bus(&test);
    let s = run_script(&bus).await;
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let a = tokio::spawn(run_with(
        test.store.clone(),
        quick_options(&test.store, "runner-a"),
        read_models::all(),
        async move {
            stopped_a.await.ok();
        },
    ));
    wait_applied(&test.store, 20).await;
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let b = tokio::spawn(run_with(
        test.store.clone(),
        quick_options(&test.store, "runner-b"),
        read_models::all(),
        async move {
            stopped_b.await.ok();
        },
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for status in projectors::statuses(&test.store).await.unwrap() {
        assert_eq!(status.owner.as_deref(), Some("runner-a"), "{status:?}");
    }
    stop_a.send(()).ok();
    a.await.unwrap().unwrap();
    eventshop_tests::projections::deposit(&bus, s.customer, 1).await;
    wait_applied(&test.store, 20).await;
    for status in projectors::statuses(&test.store).await.unwrap() {
        assert_eq!(status.owner.as_deref(), Some("runner-b"), "{status:?}");
    }
    let events = count(&test.store, "SELECT count(*) FROM events").await;
    assert_eq!(
        count(&test.store, "SELECT count(*) FROM rm_audit").await,
        events
    );
    let live = dump_all(&test.store).await;
    stop_b.send(()).ok();
    b.await.unwrap().unwrap();
    projectors::rebuild(
        &test.store,
        &read_models::all(),
        500,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(dump_all(&test.store).await, live);
}

async fn a_rebuild_during_appends_and_a_live_worker_loses_and_repeats_nothing(test: TestStore) {
    let bus = bus(&test);
    let s = run_script(&bus).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        test.store.clone(),
        quick_options(&test.store, "live"),
        read_models::all(),
        async move {
            stopped.await.ok();
        },
    ));
    let appender = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                eventshop_tests::projections::deposit(&bus, s.customer, 1 + i).await;
            }
        })
    };
    for _ in 0..2 {
        projectors::rebuild(
            &test.store,
            &read_models::all(),
            3,
            &projectors::indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap();
    }
    appender.await.unwrap();
    wait_applied(&test.store, 30).await;
    stop.send(()).ok();
    runner.await.unwrap().unwrap();

    let events = count(&test.store, "SELECT count(*) FROM events").await;
    assert_eq!(
        count(&test.store, "SELECT count(*) FROM rm_audit").await,
        events
    );
    let balance = texts(
        &test.store,
        "SELECT CAST(balance AS text) FROM rm_wallets WHERE account_id = ? AND valid_to_position IS NULL",
        &[&s.customer.to_string()],
    )
    .await;
    // 7000 after the script, plus 1 + 2 + ... + 60.
    assert_eq!(balance, vec![vec![(7000 + 60 * 61 / 2).to_string()]]);
    let live = dump_all(&test.store).await;
    projectors::rebuild(
        &test.store,
        &read_models::all(),
        500,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(dump_all(&test.store).await, live);
}

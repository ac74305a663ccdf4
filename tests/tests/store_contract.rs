//! The store contract: every store-facing behaviour, run against PostgreSQL AND SQLite.
//! Each test gets a fresh database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore};
use domain::wallet::{Wallet, WalletCommand, WalletError, WalletEvent};
use domain::{Currency, Money};
use eventshop_tests::{read_log, TestStore};
use eventstore_config::{
    Arg, Checkpoint, CommandBus, CommandError, EventMetadata, Settings, Sql, Store,
};
use serde_json::json;
use uuid::Uuid;

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn bus(test: &TestStore) -> CommandBus {
    CommandBus::new(test.store.clone(), &test.settings)
}

async fn open_wallet(bus: &CommandBus, meta: &EventMetadata) -> String {
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    bus.execute::<Wallet>(
        &id,
        WalletCommand::Open {
            account_id,
            currency: Currency::EUR,
        },
        &(),
        meta,
    )
    .await
    .expect("open");
    id
}

async fn deposit(bus: &CommandBus, id: &str, amount: i64) -> eventstore_config::Committed<Wallet> {
    bus.execute::<Wallet>(
        id,
        WalletCommand::Deposit {
            amount: eur(amount),
        },
        &(),
        &EventMetadata::for_actor("tester"),
    )
    .await
    .expect("deposit")
}

eventshop_tests::store_tests!(
    appended_events_load_back_into_the_same_state,
    an_append_on_a_stale_version_is_a_conflict,
    a_command_decides_on_events_another_writer_appended_since,
    concurrent_commands_on_one_aggregate_are_retried_until_all_apply,
    a_conflict_is_reported_once_the_retries_are_spent,
    if_match_on_a_stale_version_is_refused_with_the_current_version,
    a_rejected_command_appends_nothing,
    metadata_round_trips_through_the_store,
    history_lists_an_aggregates_events_in_order_with_metadata,
    state_as_of_a_version_folds_exactly_that_many_events,
    state_as_of_a_time_includes_only_events_recorded_by_then,
    the_log_is_read_after_a_checkpoint_in_order_without_gaps_or_repeats,
    snapshots_bound_the_fold_and_a_stale_shape_is_ignored,
    migrating_twice_changes_nothing,
    every_kind_of_argument_round_trips,
    nulls_of_every_kind_round_trip,
    read_model_times_compare_as_times,
    log_times_compare_with_the_events_recorded_at,
    a_statement_built_in_pieces_binds_its_arguments_in_order,
    a_committed_transaction_is_kept_and_a_rolled_back_one_is_not,
);

async fn appended_events_load_back_into_the_same_state(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    let first = deposit(&bus, &id, 1_000).await;
    let second = deposit(&bus, &id, 250).await;
    assert_eq!((first.version, second.version), (2, 3));
    assert!(second.position.unwrap() > first.position.unwrap());
    // The answered positions are the events' own positions in the log.
    let log = read_log(&test.store, Checkpoint::START, 100, 3).await;
    let at = |position| {
        log.iter()
            .find(|e| e.position == position)
            .map(|e| e.version)
    };
    assert_eq!(at(first.position.unwrap()), Some(2));
    assert_eq!(at(second.position.unwrap()), Some(3));
    assert_eq!(
        second.events,
        vec![WalletEvent::FundsDeposited { amount: eur(250) }]
    );

    let loaded = test.store.load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(loaded.version, 3);
    assert_eq!(loaded.state.balance(), Some(eur(1_250)));
    // The rows are postgres-es's / sqlite-es's own format: their repositories load them too.
    let context = match &test.store {
        Store::Postgres(pool) => {
            PersistedEventStore::<_, Wallet>::new_event_store(
                postgres_es::PostgresEventRepository::new(pool.clone()),
            )
            .load_aggregate(&id)
            .await
        }
        Store::Sqlite(pool) => {
            PersistedEventStore::<_, Wallet>::new_event_store(
                sqlite_es::SqliteEventRepository::new(pool.clone()),
            )
            .load_aggregate(&id)
            .await
        }
    }
    .expect("the cqrs-es repository loads the bus's events");
    assert_eq!(
        (context.current_sequence, context.aggregate),
        (3, loaded.state)
    );

    let unknown = test.store.load_current::<Wallet>("nobody").await.unwrap();
    assert_eq!(unknown.version, 0);
    assert_eq!(unknown.state, Wallet::default());
}

/// A writer that decided on version 1 while someone else appended version 2 must not
/// overwrite it: the store reports a conflict (PostgreSQL 23505, SQLite 1555 on the primary key).
async fn an_append_on_a_stale_version_is_a_conflict(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    let stale = test.store.load_current::<Wallet>(&id).await.unwrap();
    deposit(&bus, &id, 10).await;

    let context = EventStoreAggregateContext {
        aggregate_id: id.clone(),
        aggregate: stale.state,
        current_sequence: stale.version as usize,
        current_snapshot: None,
    };
    let events = vec![WalletEvent::FundsDeposited { amount: eur(99) }];
    let result = match &test.store {
        Store::Postgres(pool) => {
            let repo = postgres_es::PostgresEventRepository::new(pool.clone());
            PersistedEventStore::<_, Wallet>::new_event_store(repo)
                .commit(events, context, Default::default())
                .await
        }
        Store::Sqlite(pool) => {
            let repo = sqlite_es::SqliteEventRepository::new(pool.clone());
            PersistedEventStore::<_, Wallet>::new_event_store(repo)
                .commit(events, context, Default::default())
                .await
        }
    };
    assert!(
        matches!(result, Err(AggregateError::AggregateConflict)),
        "expected a conflict, got {result:?}"
    );
    let loaded = test.store.load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(loaded.state.balance(), Some(eur(10)));
}

/// A bus keeps the states it loaded or committed; another writer (another process, here a
/// second bus) appending in between must not leave it deciding on an old state.
async fn a_command_decides_on_events_another_writer_appended_since(test: TestStore) {
    let ours = bus(&test);
    let theirs = bus(&test);
    let id = open_wallet(&ours, &EventMetadata::system()).await;
    deposit(&ours, &id, 100).await;
    deposit(&theirs, &id, 50).await;
    // 120 is more than the 100 `ours` last saw, less than the 150 there is.
    let charged = ours
        .execute::<Wallet>(
            &id,
            WalletCommand::Charge {
                order_id: Uuid::now_v7(),
                amount: eur(120),
            },
            &(),
            &EventMetadata::for_actor("tester"),
        )
        .await
        .expect("charge");
    assert_eq!(charged.version, 4);
    assert!(
        matches!(charged.events[..], [WalletEvent::PaymentCaptured { .. }]),
        "{:?}",
        charged.events
    );
    let loaded = test.store.load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(loaded.state.balance(), Some(eur(30)));
}

async fn concurrent_commands_on_one_aggregate_are_retried_until_all_apply(test: TestStore) {
    let bus = Arc::new(bus(&test));
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    let tasks: Vec<_> = (1..=20)
        .map(|n| {
            let (bus, id) = (bus.clone(), id.clone());
            tokio::spawn(async move { deposit(&bus, &id, n).await })
        })
        .collect();
    let mut versions = HashSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap().version);
    }
    assert_eq!(versions, (2..=21).collect::<HashSet<u64>>());
    let loaded = test.store.load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(loaded.state.balance(), Some(eur((1..=20).sum())));
}

async fn a_conflict_is_reported_once_the_retries_are_spent(test: TestStore) {
    let settings = Settings {
        command_retries: 0,
        ..test.settings.clone()
    };
    let bus = Arc::new(CommandBus::new(test.store.clone(), &settings));
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (bus, id) = (bus.clone(), id.clone());
            tokio::spawn(async move {
                bus.execute::<Wallet>(
                    &id,
                    WalletCommand::Deposit { amount: eur(1) },
                    &(),
                    &EventMetadata::system(),
                )
                .await
            })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CommandError::Conflict { attempts: 1 }) => conflicts += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok + conflicts, 16);
    let loaded = test.store.load_current::<Wallet>(&id).await.unwrap();
    // Nothing lost, nothing doubled: the balance is exactly the accepted deposits.
    assert_eq!(loaded.state.balance(), Some(eur(ok)));
    assert_eq!(loaded.version, 1 + ok as u64);
}

async fn if_match_on_a_stale_version_is_refused_with_the_current_version(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    deposit(&bus, &id, 5).await;
    let result = bus
        .execute_expecting::<Wallet>(
            &id,
            WalletCommand::Deposit { amount: eur(1) },
            &(),
            &EventMetadata::system(),
            Some(1),
        )
        .await;
    assert!(matches!(
        result,
        Err(CommandError::VersionMismatch {
            expected: 1,
            actual: 2
        })
    ));
    let accepted = bus
        .execute_expecting::<Wallet>(
            &id,
            WalletCommand::Deposit { amount: eur(1) },
            &(),
            &EventMetadata::system(),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!(accepted.version, 3);
}

async fn a_rejected_command_appends_nothing(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    let head = test.store.head_position().await.unwrap();
    let result = bus
        .execute::<Wallet>(
            &id,
            WalletCommand::Deposit {
                amount: Money::new(5, Currency::USD),
            },
            &(),
            &EventMetadata::system(),
        )
        .await;
    assert!(matches!(
        result,
        Err(CommandError::Rejected(WalletError::CurrencyMismatch { .. }))
    ));
    assert_eq!(test.store.head_position().await.unwrap(), head);
}

async fn metadata_round_trips_through_the_store(test: TestStore) {
    let bus = bus(&test);
    let meta = EventMetadata::for_actor("0190f5d6-0000-7000-8000-000000000001")
        .correlated("corr-1")
        .caused_by("cause-1")
        .with_request_id("req-1");
    let id = open_wallet(&bus, &meta).await;
    let history = test.store.history("wallet", &id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].metadata, meta);
    let logged = read_log(&test.store, Checkpoint::START, 10, 1).await;
    assert_eq!(logged[0].metadata, meta);
}

async fn history_lists_an_aggregates_events_in_order_with_metadata(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    let other = open_wallet(&bus, &EventMetadata::system()).await;
    deposit(&bus, &id, 7).await;
    deposit(&bus, &other, 8).await;
    deposit(&bus, &id, 9).await;

    let history = test.store.history("wallet", &id).await.unwrap();
    let summary: Vec<(u64, &str)> = history
        .iter()
        .map(|e| (e.version, e.event_type.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "WalletOpened"),
            (2, "FundsDeposited"),
            (3, "FundsDeposited")
        ]
    );
    assert!(history
        .iter()
        .all(|e| e.aggregate_type == "wallet" && e.aggregate_id == id && e.event_version == "1"));
    assert!(history.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(history[2].metadata.actor.as_deref(), Some("tester"));
    assert_eq!(
        history[2].decode::<WalletEvent>().unwrap(),
        WalletEvent::FundsDeposited { amount: eur(9) }
    );
    assert!(test
        .store
        .history("wallet", "none")
        .await
        .unwrap()
        .is_empty());
}

async fn state_as_of_a_version_folds_exactly_that_many_events(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    for amount in [100, 20, 3] {
        deposit(&bus, &id, amount).await;
    }
    let balance_at = |v: u64| {
        let store = test.store.clone();
        let id = id.clone();
        async move {
            store
                .load_at_version::<Wallet>(&id, v)
                .await
                .unwrap()
                .map(|w| (w.version, w.state.balance()))
        }
    };
    assert_eq!(balance_at(1).await, Some((1, Some(eur(0)))));
    assert_eq!(balance_at(2).await, Some((2, Some(eur(100)))));
    assert_eq!(balance_at(3).await, Some((3, Some(eur(120)))));
    assert_eq!(balance_at(4).await, Some((4, Some(eur(123)))));
    assert_eq!(balance_at(5).await, None, "a version never reached");
    assert_eq!(balance_at(0).await, None);
}

async fn state_as_of_a_time_includes_only_events_recorded_by_then(test: TestStore) {
    let bus = bus(&test);
    let before = Utc::now() - chrono::Duration::seconds(5);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    deposit(&bus, &id, 100).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    deposit(&bus, &id, 50).await;

    assert!(test
        .store
        .load_as_of::<Wallet>(&id, before)
        .await
        .unwrap()
        .is_none());
    let then = test
        .store
        .load_as_of::<Wallet>(&id, between)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((then.version, then.state.balance()), (2, Some(eur(100))));
    assert!(then.last_recorded_at.unwrap() <= between);
    let now = test
        .store
        .load_as_of::<Wallet>(&id, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.version, now.state.balance()), (3, Some(eur(150))));
}

async fn the_log_is_read_after_a_checkpoint_in_order_without_gaps_or_repeats(test: TestStore) {
    let bus = bus(&test);
    let a = open_wallet(&bus, &EventMetadata::system()).await;
    let b = open_wallet(&bus, &EventMetadata::system()).await;
    for n in 1..=5 {
        deposit(&bus, &a, n).await;
        deposit(&bus, &b, n).await;
    }
    let read = read_log(&test.store, Checkpoint::START, 3, 12).await;
    let checkpoint = read.last().unwrap().checkpoint();
    assert_eq!(read.len(), 12);
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    let mut per_aggregate = std::collections::HashMap::<&str, Vec<u64>>::new();
    for event in &read {
        per_aggregate
            .entry(&event.aggregate_id)
            .or_default()
            .push(event.version);
    }
    assert_eq!(per_aggregate[a.as_str()], (1..=6).collect::<Vec<_>>());
    assert_eq!(per_aggregate[b.as_str()], (1..=6).collect::<Vec<_>>());
    assert_eq!(
        test.store.head_position().await.unwrap(),
        read.last().unwrap().position
    );

    // Nothing new after the last checkpoint, until something is appended.
    assert!(test
        .store
        .read_after(checkpoint, 10)
        .await
        .unwrap()
        .is_empty());
    deposit(&bus, &a, 1).await;
    let next = read_log(&test.store, checkpoint, 10, 1).await;
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].aggregate_id.as_str(), next[0].version),
        (a.as_str(), 7)
    );
}

async fn snapshots_bound_the_fold_and_a_stale_shape_is_ignored(test: TestStore) {
    let settings = Settings {
        snapshot_every: 5,
        ..test.settings.clone()
    };
    let bus = CommandBus::new(test.store.clone(), &settings);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    for _ in 0..11 {
        deposit(&bus, &id, 1).await;
    }
    let versions: Vec<i64> = match &test.store {
        Store::Postgres(pool) => sqlx::query_scalar(
            "SELECT version FROM aggregate_snapshots WHERE aggregate_id = $1 ORDER BY version",
        )
        .bind(&id)
        .fetch_all(pool)
        .await
        .unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(
            "SELECT version FROM aggregate_snapshots WHERE aggregate_id = ? ORDER BY version",
        )
        .bind(&id)
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    assert_eq!(versions, vec![5, 10]);

    // The fold starts at the newest snapshot at or below the target: a snapshot with a
    // (deliberately) different balance at version 10 shows through at version 11 and 12 only.
    let mut doctored = test
        .store
        .load_at_version::<Wallet>(&id, 10)
        .await
        .unwrap()
        .unwrap();
    let account_id: Uuid = id.parse().unwrap();
    let mut rebuilt = Wallet::default();
    for event in [
        WalletEvent::WalletOpened {
            account_id,
            currency: Currency::EUR,
        },
        WalletEvent::FundsDeposited { amount: eur(1_000) },
    ] {
        cqrs_es::Aggregate::apply(&mut rebuilt, event);
    }
    doctored.state = rebuilt;
    replace_snapshot(
        &test.store,
        &id,
        10,
        serde_json::to_value(&doctored.state).unwrap(),
    )
    .await;
    let at_9 = test
        .store
        .load_at_version::<Wallet>(&id, 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_9.state.balance(), Some(eur(8)));
    let at_12 = test
        .store
        .load_at_version::<Wallet>(&id, 12)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_12.state.balance(), Some(eur(1_002)));

    // A snapshot that no longer decodes is ignored: the log is the source of truth.
    replace_snapshot(&test.store, &id, 10, serde_json::json!({"shape": "old"})).await;
    let at_12 = test
        .store
        .load_at_version::<Wallet>(&id, 12)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_12.state.balance(), Some(eur(11)));
}

async fn replace_snapshot(store: &Store, id: &str, version: i64, payload: serde_json::Value) {
    match store {
        Store::Postgres(pool) => {
            sqlx::query("UPDATE aggregate_snapshots SET payload = $1 WHERE aggregate_id = $2 AND version = $3")
                .bind(payload)
                .bind(id)
                .bind(version)
                .execute(pool)
                .await
                .unwrap();
        }
        Store::Sqlite(pool) => {
            sqlx::query(
                "UPDATE aggregate_snapshots SET payload = ? WHERE aggregate_id = ? AND version = ?",
            )
            .bind(payload)
            .bind(id)
            .bind(version)
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn migrating_twice_changes_nothing(test: TestStore) {
    let bus = bus(&test);
    let id = open_wallet(&bus, &EventMetadata::system()).await;
    test.store.migrate().await.unwrap();
    let reopened = Store::open(&test.settings).await.unwrap();
    assert_eq!(
        reopened.load_current::<Wallet>(&id).await.unwrap().version,
        1
    );
    reopened.close().await;
}

/// PostgreSQL only: the pool checks a connection before handing it out only once it sat idle
/// (not before every statement), so the check must still catch connections the server closed.
mod postgres_pool {
    use super::*;
    use sqlx::Connection;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_the_server_closed_while_idle_are_replaced_without_an_error() {
        let test = TestStore::postgres().await;
        let bus = bus(&test);
        let id = open_wallet(&bus, &EventMetadata::system()).await;
        // Warm several pooled connections, then let the server end every one of them (as a
        // restart or an idle-session timeout would).
        let reads = (0..4).map(|_| test.store.load_current::<Wallet>(&id));
        futures::future::try_join_all(reads).await.expect("reads");
        let mut admin = sqlx::PgConnection::connect(test.url())
            .await
            .expect("admin");
        let ended: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .expect("terminate");
        admin.close().await.ok();
        assert!(!ended.is_empty(), "the pool held no connection to end");
        tokio::time::sleep(
            eventstore_config::store::CHECK_CONNECTIONS_IDLE_FOR + Duration::from_millis(300),
        )
        .await;
        let reads = (0..8).map(|_| test.store.load_current::<Wallet>(&id));
        for read in futures::future::join_all(reads).await {
            assert_eq!(
                read.expect("a read after the server closed the connections")
                    .version,
                1
            );
        }
        deposit(&bus, &id, 5).await;
    }
}

// The contract of `eventstore_config::Sql`, the one way production code speaks to both stores:
// every kind of argument and NULL round-trips, times compare as times, statements built in
// pieces bind in order, and a transaction commits or rolls back.

/// One row of the test table, every column nullable.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Row {
    id: i64,
    t: Option<String>,
    i: Option<i64>,
    b: Option<bool>,
    f: Option<f64>,
    y: Option<Vec<u8>>,
    j: Option<serde_json::Value>,
    at: Option<DateTime<Utc>>,
    logged: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, t, i, b, f, y, j, at, logged";

/// A table with a column of every argument kind. Test set-up: the DDL is each store's own.
async fn create_table(store: &Store) {
    let ddl = match store {
        Store::Postgres(_) => {
            "CREATE TABLE sql_contract (id bigint PRIMARY KEY, t text, i bigint, b boolean, \
             f double precision, y bytea, j jsonb, at timestamptz, logged timestamptz)"
        }
        Store::Sqlite(_) => {
            "CREATE TABLE sql_contract (id integer PRIMARY KEY, t text, i integer, b integer, \
             f real, y blob, j text, at text, logged text) STRICT"
        }
    };
    Sql::new(ddl).execute(store).await.expect("create table");
}

fn insert_row(row: &Row) -> Sql {
    Sql::new(format!(
        "INSERT INTO sql_contract ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .arg(row.id)
    .arg(row.t.clone())
    .arg(row.i)
    .arg(row.b)
    .arg(row.f)
    .arg(row.y.clone())
    .arg(Arg::Json(row.j.clone()))
    .arg(row.at)
    .arg(Arg::LogTime(row.logged))
}

async fn read(store: &Store, id: i64) -> Option<Row> {
    Sql::new(format!("SELECT {COLUMNS} FROM sql_contract WHERE id = $1"))
        .arg(id)
        .fetch_optional(store)
        .await
        .expect("read")
}

/// A time with microseconds (what read-model columns keep).
fn micros(s: i64, us: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, us * 1_000).unwrap()
}

async fn every_kind_of_argument_round_trips(test: TestStore) {
    // Given a table with a column of every kind
    create_table(&test.store).await;
    let row = Row {
        id: 1,
        t: Some("zoë's \"text\" ; DROP TABLE x".to_string()),
        i: Some(i64::MAX - 7),
        b: Some(true),
        f: Some(-12.375),
        y: Some(vec![0, 1, 2, 254, 255]),
        j: Some(json!({"a": [1, 2.5, "x"], "b": null, "c": {"d": true}})),
        at: Some(micros(0, 123_456)),
        logged: Some(Utc.timestamp_millis_opt(1_790_000_000_789).unwrap()),
    };
    // When it is written and read back through Sql
    insert_row(&row).execute(&test.store).await.expect("insert");
    // Then every value comes back as it was
    assert_eq!(read(&test.store, 1).await, Some(row));
}

async fn nulls_of_every_kind_round_trip(test: TestStore) {
    // Given a table with a column of every kind
    create_table(&test.store).await;
    let row = Row {
        id: 2,
        t: None,
        i: None,
        b: None,
        f: None,
        y: None,
        j: None,
        at: None,
        logged: None,
    };
    // When a row of typed NULLs is written
    insert_row(&row).execute(&test.store).await.expect("insert");
    // Then every column reads back as NULL
    assert_eq!(read(&test.store, 2).await, Some(row));
    let (nulls,): (i64,) = Sql::new(
        "SELECT count(*) FROM sql_contract WHERE t IS NULL AND i IS NULL AND b IS NULL \
           AND f IS NULL AND y IS NULL AND j IS NULL AND at IS NULL AND logged IS NULL",
    )
    .fetch_one(&test.store)
    .await
    .unwrap();
    assert_eq!(nulls, 1);
}

async fn read_model_times_compare_as_times(test: TestStore) {
    // Given rows whose times differ in every field, down to the microsecond, written out of
    // order (9 s < 10 s, which text without fixed width would sort the other way)
    create_table(&test.store).await;
    let times = [
        (1, micros(10, 0)),
        (2, micros(9, 999_999)),
        (3, micros(10, 1)),
        (4, micros(-86_400, 500_000)),
        (5, micros(100_000, 0)),
    ];
    for (id, at) in times {
        Sql::new("INSERT INTO sql_contract (id, at) VALUES ($1, $2)")
            .arg(id as i64)
            .arg(at)
            .execute(&test.store)
            .await
            .unwrap();
    }
    // When they are filtered and sorted by a bound time
    let later: Vec<(i64,)> = Sql::new("SELECT id FROM sql_contract WHERE at > $1 ORDER BY at")
        .arg(micros(9, 999_999))
        .fetch_all(&test.store)
        .await
        .unwrap();
    let up_to: Vec<(i64,)> = Sql::new("SELECT id FROM sql_contract WHERE at <= $1 ORDER BY at")
        .arg(micros(10, 0))
        .fetch_all(&test.store)
        .await
        .unwrap();
    // Then the comparison and the order are those of the times
    assert_eq!(later, vec![(1,), (3,), (5,)]);
    assert_eq!(up_to, vec![(4,), (2,), (1,)]);
}

async fn log_times_compare_with_the_events_recorded_at(test: TestStore) {
    // Given one appended event
    let bus = eventstore_config::CommandBus::new(test.store.clone(), &test.settings);
    let before = Utc::now() - TimeDelta::seconds(1);
    let id = uuid::Uuid::now_v7();
    bus.execute::<domain::wallet::Wallet>(
        &id.to_string(),
        domain::wallet::WalletCommand::Open {
            account_id: id,
            currency: domain::Currency::EUR,
        },
        &(),
        &eventstore_config::EventMetadata::system(),
    )
    .await
    .expect("open a wallet");
    let (recorded_at,): (DateTime<Utc>,) = Sql::new("SELECT recorded_at FROM events")
        .fetch_one(&test.store)
        .await
        .unwrap();
    let store = &test.store;
    let count = |at: DateTime<Utc>| async move {
        let (n,): (i64,) = Sql::new("SELECT count(*) FROM events WHERE recorded_at <= $1")
            .log_time(at)
            .fetch_one(store)
            .await
            .unwrap();
        n
    };
    // When it is compared with bound log times before, at and after its own time
    // Then it counts from its own time on
    assert_eq!(count(before).await, 0);
    assert_eq!(count(recorded_at).await, 1);
    assert_eq!(count(recorded_at - TimeDelta::milliseconds(1)).await, 0);
    assert_eq!(count(recorded_at + TimeDelta::seconds(1)).await, 1);
}

async fn a_statement_built_in_pieces_binds_its_arguments_in_order(test: TestStore) {
    // Given rows 1..=5
    create_table(&test.store).await;
    for id in 1..=5i64 {
        Sql::new("INSERT INTO sql_contract (id, t, i) VALUES ($1, $2, $3)")
            .arg(id)
            .arg(format!("r{id}"))
            .arg(id * 10)
            .execute(&test.store)
            .await
            .unwrap();
    }
    // When a statement is built with bind, in_list and an appended sub-statement
    let mut sql = Sql::new("SELECT id FROM sql_contract WHERE i >= ");
    sql.bind(20i64)
        .in_list("t", ["r2", "r3", "r5"])
        .push(" AND id IN (");
    sql.append(&Sql::new("SELECT id FROM sql_contract WHERE id <> $1").arg(3i64))
        .push(") ORDER BY id");
    let ids: Vec<(i64,)> = sql.fetch_all(&test.store).await.unwrap();
    // Then each placeholder took its own value
    assert_eq!(ids, vec![(2,), (5,)]);
    // And an empty list matches nothing
    let mut none = Sql::new("SELECT id FROM sql_contract WHERE TRUE");
    none.in_list::<i64>("id", Vec::new());
    let ids: Vec<(i64,)> = none.fetch_all(&test.store).await.unwrap();
    assert!(ids.is_empty());
}

async fn a_committed_transaction_is_kept_and_a_rolled_back_one_is_not(test: TestStore) {
    create_table(&test.store).await;
    let put = |id: i64| Sql::new("INSERT INTO sql_contract (id) VALUES ($1)").arg(id);
    // Given a transaction that writes a row and reads it back inside, then commits
    let mut tx = test.store.begin().await.unwrap();
    put(1).execute(&mut tx).await.unwrap();
    let inside: Option<(i64,)> = Sql::new("SELECT id FROM sql_contract WHERE id = 1")
        .fetch_optional(&mut tx)
        .await
        .unwrap();
    assert_eq!(inside, Some((1,)));
    tx.commit().await.unwrap();
    // And one that rolls back, and one dropped without a commit
    let mut tx = test.store.begin().await.unwrap();
    put(2).execute(&mut tx).await.unwrap();
    tx.rollback().await.unwrap();
    {
        let mut tx = test.store.begin().await.unwrap();
        put(3).execute(&mut tx).await.unwrap();
    }
    // Then only the committed row is there
    let ids: Vec<(i64,)> = Sql::new("SELECT id FROM sql_contract ORDER BY id")
        .fetch_all(&test.store)
        .await
        .unwrap();
    assert_eq!(ids, vec![(1,)]);
}

//! The contract of `eventstore_config::Sql`, the one way production code speaks to both stores:
//! every kind of argument and NULL round-trips, times compare as times, statements built in
//! pieces bind in order, and a transaction commits or rolls back. Run against PostgreSQL AND
//! SQLite, each test on a fresh database.

use chrono::{DateTime, Duration, TimeZone, Utc};
use eventshop_tests::TestStore;
use eventstore_config::{Arg, Sql, Store};
use serde_json::json;

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(eventshop_tests::TestStore::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(eventshop_tests::TestStore::sqlite().await).await;
                }
            )*
        }
    };
}

contract!(
    every_kind_of_argument_round_trips,
    nulls_of_every_kind_round_trip,
    read_model_times_compare_as_times,
    log_times_compare_with_the_events_recorded_at,
    a_statement_built_in_pieces_binds_its_arguments_in_order,
    a_committed_transaction_is_kept_and_a_rolled_back_one_is_not,
);

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

fn insert(row: &Row) -> Sql {
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
    insert(&row).execute(&test.store).await.expect("insert");
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
    insert(&row).execute(&test.store).await.expect("insert");
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
    let before = Utc::now() - Duration::seconds(1);
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
    assert_eq!(count(recorded_at - Duration::milliseconds(1)).await, 0);
    assert_eq!(count(recorded_at + Duration::seconds(1)).await, 1);
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

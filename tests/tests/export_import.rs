//! Export and import of the log (`eventstore_config::transfer`, `eventshop events
//! export|import`): a log of 20,000 events made on PostgreSQL moves to SQLite and on to
//! PostgreSQL again, and every read model and every aggregate's history answers as in the
//! source (positions renumbered in log order, times to the target's precision); the moved store
//! works (logins, a taken e-mail stays taken, an erased one is free, the saga's replay appends
//! nothing, a new order is approved). A cut, corrupted or gapped file and a non-empty target are
//! refused with the line named, and the target stays empty. Both stores.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use domain::account::Role;
use domain::order::OrderStatus;
use domain::wallet::{Wallet, WalletCommand};
use domain::{Currency, Money};
use eventshop_tests::api::TestApi;
use eventshop_tests::projections::{
    catch_up_all, create_product, deposit, dump_all, order_flow, register, run_script,
};
use eventshop_tests::saga::{saga_caught_up, settle, RunningSaga};
use eventshop_tests::TestStore;
use eventstore_config::transfer::{self, Line, TransferError};
use eventstore_config::{CommandBus, EventMetadata, Store};
use projectors::model::Val;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Events in the round-trip's source log (`EVENTSHOP_TRANSFER_EVENTS` overrides it).
const EVENTS: usize = 20_000;
/// Writers making the source log at once.
const WRITERS: usize = 6;
/// Wallets each writer deposits into, in turn.
const WALLETS_PER_WRITER: usize = 4;
/// Deposits appended together (one unit of work) between a writer's orders.
const DEPOSITS_PER_UNIT: usize = 20;

fn events_wanted() -> usize {
    std::env::var("EVENTSHOP_TRANSFER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(EVENTS)
}

/// What the source log holds that the checks after the move need.
struct Made {
    /// Registered over HTTP with a real password (and its e-mail claimed).
    customer: eventshop_tests::api::Account,
    /// Registered over HTTP, then erased.
    erased_email: String,
    /// A product with plenty of stock.
    product: String,
}

/// Makes a log of at least `events` events on `api`'s store: accounts over HTTP (one erased),
/// the projector script (deletion, login, grants and revokes, a canceled order), then
/// `WRITERS` writers each running orders through every step (approved and canceled in turn)
/// and appending batches of deposits, until the count is reached.
async fn make_log(api: &TestApi, events: usize) -> Made {
    let customer = api.register("customer").await;
    let erased = api.register("customer").await;
    let answer = api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{}?erase=true", erased.id),
            Some(&erased.token),
            None,
            &[],
        )
        .await;
    assert!(answer.status.is_success(), "erase: {}", answer.body);
    let bus = api.app.state().app().bus().clone();
    run_script(&bus).await;
    let seller = register(&bus, &unique("seller"), Role::Seller).await;
    let product = create_product(&bus, seller, 1_000_000).await;
    let written = Arc::new(AtomicUsize::new(count(api.store()).await));
    let writers = (0..WRITERS).map(|_| {
        let (bus, written) = (bus.clone(), written.clone());
        tokio::spawn(async move {
            let customer = register(&bus, &unique("buyer"), Role::Customer).await;
            let product = create_product(&bus, customer, 1_000_000).await;
            let mut wallets = vec![customer];
            for _ in 1..WALLETS_PER_WRITER {
                wallets.push(register(&bus, &unique("saver"), Role::Customer).await);
            }
            deposit(&bus, customer, 1_000_000_000).await;
            written.fetch_add(4 + 2 * (WALLETS_PER_WRITER - 1), Ordering::Relaxed);
            let mut n = 0usize;
            while written.load(Ordering::Relaxed) < events {
                n += 1;
                let approve = n % 2 == 1;
                order_flow(&bus, customer, product, 1, approve).await;
                let wallet = wallets[n % wallets.len()];
                deposits(&bus, wallet, DEPOSITS_PER_UNIT).await;
                written.fetch_add(
                    DEPOSITS_PER_UNIT + if approve { 6 } else { 5 },
                    Ordering::Relaxed,
                );
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.expect("writer");
    }
    while count(api.store()).await < events {
        deposit(&bus, seller, 100).await;
    }
    Made {
        customer,
        erased_email: erased.email,
        product: product.to_string(),
    }
}

/// `n` deposits into `wallet`, appended together by one unit of work (one statement).
async fn deposits(bus: &CommandBus, wallet: uuid::Uuid, n: usize) {
    let id = wallet.to_string();
    let mut unit = bus.unit_of_work(EventMetadata::for_actor(&id));
    for i in 0..n {
        let amount = Money::new(100 + i as i64, Currency::EUR);
        unit.decide::<Wallet>(&id, WalletCommand::Deposit { amount }, &(), None)
            .await
            .expect("deposit");
    }
    unit.commit().await.expect("commit the deposits");
}

async fn count(store: &Store) -> usize {
    eventstore_config::log::transfer::count(store)
        .await
        .expect("count") as usize
}

fn unique(prefix: &str) -> String {
    format!("{prefix}.{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn export(store: &Store) -> Vec<u8> {
    let mut file = Vec::new();
    transfer::export_full(store, 0, &mut file, |_| {})
        .await
        .expect("export");
    file
}

/// Imports `file` into `store` and rebuilds every read model, as `eventshop events import`
/// does.
async fn import_and_rebuild(store: &Store, file: &[u8]) -> transfer::Imported {
    let imported = transfer::import(store, file, |_| {}).await.expect("import");
    projectors::rebuild(
        store,
        &projectors::read_models::all(),
        5000,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("rebuild");
    imported
}

/// Each exported event's source position → its position in a fresh target (its place among
/// the file's events), and the aggregates the file holds.
fn positions(file: &[u8]) -> (HashMap<i64, i64>, BTreeSet<(String, String)>) {
    let mut map = HashMap::new();
    let mut aggregates = BTreeSet::new();
    for line in file.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Line::Event(event) = serde_json::from_slice(line).expect("a line") {
            map.insert(event.position, map.len() as i64 + 1);
            aggregates.insert((event.aggregate_type, event.aggregate_id));
        }
    }
    (map, aggregates)
}

fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// A read-model value as the target must hold it: positions translated with `map` (None: as
/// they are), times to the millisecond (SQLite's precision).
fn translate(column: &str, value: &Val, map: Option<&HashMap<i64, i64>>) -> String {
    let position = |p: i64| match map {
        Some(map) => *map
            .get(&p)
            .unwrap_or_else(|| panic!("{column} {p} is no exported position")),
        None => p,
    };
    let value = match value {
        Val::Int(p) if column.ends_with("position") => Val::Int(position(*p)),
        Val::OptInt(Some(p)) if column.ends_with("position") => Val::OptInt(Some(position(*p))),
        Val::Time(t) => Val::Time(ms(*t)),
        Val::OptTime(t) => Val::OptTime(t.map(ms)),
        other => other.clone(),
    };
    format!("{value:?}")
}

/// Every read-model table of `store`, rows as translated text, sorted.
async fn read_models(
    store: &Store,
    map: Option<&HashMap<i64, i64>>,
) -> BTreeMap<String, Vec<Vec<String>>> {
    let dumped = dump_all(store).await;
    let mut out = BTreeMap::new();
    for projection in projectors::read_models::all() {
        for table in projection.tables() {
            let columns = table.all_columns();
            let (_, rows) = dumped
                .iter()
                .find(|(name, _)| *name == table.name)
                .expect("dumped");
            let mut rows: Vec<Vec<String>> = rows
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&columns)
                        .map(|(value, column)| translate(column.name, value, map))
                        .collect()
                })
                .collect();
            rows.sort();
            out.insert(table.name.to_owned(), rows);
        }
    }
    out
}

/// One aggregate's history as `history` answers it, positions translated with `map` (None:
/// as they are), times to the millisecond.
async fn history(
    store: &Store,
    aggregate: &(String, String),
    map: Option<&HashMap<i64, i64>>,
) -> Vec<Value> {
    store
        .history(&aggregate.0, &aggregate.1)
        .await
        .expect("history")
        .into_iter()
        .map(|e| {
            json!({
                "position": map.map_or(e.position, |m| m[&e.position]),
                "aggregate": [e.aggregate_type, e.aggregate_id],
                "version": e.version,
                "event_type": e.event_type,
                "event_version": e.event_version,
                "payload": e.payload,
                "metadata": e.metadata.to_map(),
                "recorded_at": ms(e.recorded_at),
            })
        })
        .collect()
}

/// Every read model and every aggregate's history of `target` equals `source`'s, after the
/// move that `file` made.
async fn assert_same_answers(source: &Store, target: &Store, file: &[u8]) {
    let (map, aggregates) = positions(file);
    assert_eq!(
        target.head_position().await.unwrap(),
        map.len() as i64,
        "positions renumbered 1..=n"
    );
    let (before, after) = (
        read_models(source, Some(&map)).await,
        read_models(target, None).await,
    );
    let total: usize = before.values().map(Vec::len).sum();
    assert!(total > map.len(), "the read models hold rows");
    for (table, rows) in &before {
        assert_eq!(rows, &after[table], "read model {table}");
    }
    for aggregate in &aggregates {
        assert_eq!(
            history(source, aggregate, Some(&map)).await,
            history(target, aggregate, None).await,
            "history of {aggregate:?}"
        );
    }
}

async fn given_a_log_of_20000_events_made_on_postgres_when_moved_to_sqlite_and_back_then_every_read_model_and_history_answers_the_same(
) {
    // PostgreSQL → SQLite.
    let source = TestApi::postgres().await;
    let made = make_log(&source, events_wanted()).await;
    catch_up_all(source.store()).await;
    let file = export(source.store()).await;
    let target = TestStore::sqlite().await;
    let imported = import_and_rebuild(&target.store, &file).await;
    assert!(imported.events as usize >= events_wanted(), "{imported:?}");
    assert_same_answers(source.store(), &target.store, &file).await;

    // The moved store works: the saga's replay of the imported log appends nothing, a source
    // password logs in, a taken e-mail stays taken, an erased one is free, an order goes
    // through.
    let head = target.store.head_position().await.unwrap();
    let target = TestApi::start(target).await;
    let saga = RunningSaga::start(target.store(), &target.test.settings);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !saga_caught_up(target.store()).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the saga's replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        target.store().head_position().await.unwrap(),
        head,
        "the saga's replay appended events"
    );
    let login = target
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": made.customer.email, "password": made.customer.password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let taken = target
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": made.customer.email, "password": "another password 1", "name": "Eve"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    let free = target
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": made.erased_email, "password": "another password 1", "name": "Ann"}),
        )
        .await;
    assert_eq!(free.status, StatusCode::CREATED, "{}", free.body);
    let deposit = target
        .post(
            &format!("/api/v1/accounts/{}/deposits", made.customer.id),
            Some(&token),
            json!({"amount": 10_000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::CREATED, "{}", deposit.body);
    let customer = eventshop_tests::api::Account {
        token,
        ..made.customer.clone()
    };
    let order = target
        .order(&customer, &[(made.product.as_str(), 2)], "EUR")
        .await;
    let statuses = settle(target.store(), &[order], Duration::from_secs(60)).await;
    assert_eq!(statuses, vec![OrderStatus::Approved]);
    saga.stop().await;
    catch_up_all(target.store()).await;

    // SQLite → PostgreSQL.
    let file = export(target.store()).await;
    let last = TestStore::postgres().await;
    import_and_rebuild(&last.store, &file).await;
    assert_same_answers(target.store(), &last.store, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_moves_from_postgres_to_sqlite_and_back_with_every_answer_the_same() {
    given_a_log_of_20000_events_made_on_postgres_when_moved_to_sqlite_and_back_then_every_read_model_and_history_answers_the_same().await;
}

/// The lines of `file` (without their newlines).
fn lines(file: &[u8]) -> Vec<String> {
    String::from_utf8(file.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut out = lines.join("\n").into_bytes();
    out.push(b'\n');
    out
}

/// Imports `file` into `target` expecting a refusal; returns its message after checking the
/// target is still empty (no events, no personal-data keys, no e-mail index key).
async fn refused(target: &Store, file: &[u8]) -> String {
    let error = transfer::import(target, file, |_| {})
        .await
        .expect_err("the import is refused");
    assert_eq!(target.head_position().await.unwrap(), 0, "{error}");
    assert!(
        eventstore_config::personal::stored_keys_after(target, "", 10)
            .await
            .unwrap()
            .is_empty(),
        "{error}"
    );
    assert_eq!(
        eventstore_config::secrets::get(target, "email_index_key")
            .await
            .unwrap(),
        None,
        "a refused import creates no e-mail index key: {error}"
    );
    error.to_string()
}

async fn given_a_cut_corrupted_or_gapped_file_when_imported_then_the_line_is_named_and_the_target_stays_empty(
    source: TestStore,
    target: TestStore,
) {
    let bus = CommandBus::new(source.store.clone(), &source.settings);
    let email = unique("claimed");
    register(&bus, &email, Role::Customer).await;
    run_script(&bus).await;
    let file = export(&source.store).await;
    let all = lines(&file);
    let n = all.len();
    assert!(n > 20, "a header, events, keys and the end line");

    // Cut at a line boundary: the end line is missing.
    let message = refused(&target.store, &join(&all[..n - 1])).await;
    assert_eq!(
        message,
        format!("line {n}: the file ends before its end line (cut short?)")
    );
    // Cut inside a line (the 11th).
    let tenth = file
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(9)
        .map(|(i, _)| i)
        .unwrap();
    let message = refused(&target.store, &file[..tenth + 20]).await;
    assert!(
        message.starts_with("line 11: not a line of an eventshop export"),
        "{message}"
    );
    // A corrupted line.
    let mut corrupted = all.clone();
    corrupted[7] = corrupted[7].replacen("\"aggregate_id\"", "\"aggregate_i", 1);
    let message = refused(&target.store, &join(&corrupted)).await;
    assert!(message.starts_with("line 8: "), "{message}");
    // A gap in an aggregate's versions: the script's product reaches version 3.
    let (index, event) = all
        .iter()
        .enumerate()
        .find_map(|(i, l)| match serde_json::from_str::<Line>(l).unwrap() {
            Line::Event(e) if e.aggregate_type == "product" && e.version == 2 => Some((i, e)),
            _ => None,
        })
        .expect("a product's second event");
    let mut gapped = all.clone();
    let mut moved = event.clone();
    moved.version = 3;
    gapped[index] = serde_json::to_string(&Line::Event(moved)).unwrap();
    let message = refused(&target.store, &join(&gapped)).await;
    assert_eq!(
        message,
        format!(
            "line {}: aggregate product/{} version 3 follows 1",
            index + 1,
            event.aggregate_id
        )
    );
    // A repeated version.
    let mut repeated = all.clone();
    repeated.insert(index + 1, all[index].clone());
    let message = refused(&target.store, &join(&repeated)).await;
    assert!(
        message.starts_with(&format!("line {}: aggregate product/", index + 2))
            && message.ends_with("version 2 follows 2"),
        "{message}"
    );

    // A partial export holds only the events after its position, and is no import.
    let mut partial = Vec::new();
    transfer::export_full(&source.store, 5, &mut partial, |_| {})
        .await
        .expect("export after 5");
    let later = all
        .iter()
        .filter(|l| matches!(serde_json::from_str(l).unwrap(), Line::Event(e) if e.position > 5))
        .count();
    let partial_lines = lines(&partial);
    assert_eq!(
        partial_lines
            .iter()
            .filter(|l| l.starts_with("{\"event\":"))
            .count(),
        later
    );
    let message = refused(&target.store, &partial).await;
    assert_eq!(
        message,
        "line 1: a partial export (after position 5) cannot be imported into an empty store"
    );

    // The intact file loads; a second import into the now non-empty store is refused and
    // changes nothing.
    let imported = transfer::import(&target.store, &file[..], |_| {})
        .await
        .expect("import");
    let head = target.store.head_position().await.unwrap();
    assert_eq!(head, imported.events as i64);
    let again = transfer::import(&target.store, &file[..], |_| {})
        .await
        .expect_err("a non-empty store is refused");
    assert!(
        matches!(again, TransferError::NotEmpty(n) if n == head),
        "{again}"
    );
    assert_eq!(target.store.head_position().await.unwrap(), head);
    // The claim came along: the address is taken in the target too.
    let owner = eventstore_config::email_registry::owner(
        &target.store,
        &domain::Email::parse(&email).unwrap(),
    )
    .await
    .unwrap();
    assert!(owner.is_some(), "the e-mail claim was rebuilt");
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_file_is_refused_naming_its_line() {
        given_a_cut_corrupted_or_gapped_file_when_imported_then_the_line_is_named_and_the_target_stays_empty(
            TestStore::postgres().await,
            TestStore::postgres().await,
        )
        .await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_file_is_refused_naming_its_line() {
        given_a_cut_corrupted_or_gapped_file_when_imported_then_the_line_is_named_and_the_target_stays_empty(
            TestStore::sqlite().await,
            TestStore::sqlite().await,
        )
        .await;
    }
}

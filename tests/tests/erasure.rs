//! Erasure on request (crypto-shredding), on PostgreSQL and SQLite: after
//! `DELETE /accounts/{id}?erase=true` a full dump of the database holds the account's e-mail,
//! name and password hash nowhere; the log still loads and folds with them reading
//! `"[erased]"`; GraphQL `account`, `history` and `audit` answer without them; the wallet and
//! order still fold; a rebuild brings nothing back; the e-mail registers again. Also: an
//! account event written before sealing existed (plaintext) still loads, and erasing it
//! removes its plaintext.

use std::process::Command;
use std::sync::Arc;

use domain::account::{Account, AccountServices, Role};
use domain::email::ERASED;
use eventshop_tests::api::Account as Customer;
use eventshop_tests::graphql::TestGraphql;
use eventshop_tests::{graphql_tests, TestStore};
use eventstore_config::{CommandBus, EventMetadata, Sql, SqlEmailRegistry, Store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every row of every table of the test database as text: `pg_dump` / `sqlite3 .dump` when
/// the tool is installed, else each table read through sqlx.
async fn dump(test: &TestStore) -> String {
    let url = test.url();
    let tool = match &test.store {
        Store::Postgres(_) => Command::new("pg_dump").arg("--no-owner").arg(url).output(),
        Store::Sqlite(_) => Command::new("sqlite3")
            .arg(sqlite_path(url))
            .arg(".dump")
            .output(),
    };
    match tool {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        Ok(output) => panic!(
            "the dump failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => dump_through_sqlx(&test.store).await,
    }
}

fn sqlite_path(url: &str) -> &str {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or(path)
}

async fn dump_through_sqlx(store: &Store) -> String {
    let tables: Vec<(String,)> = match store {
        Store::Postgres(_) => Sql::new(
            "SELECT table_name::text FROM information_schema.tables \
              WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        ),
        Store::Sqlite(_) => Sql::new("SELECT name FROM sqlite_master WHERE type = 'table'"),
    }
    .fetch_all(store)
    .await
    .expect("list the tables");
    let mut out = String::new();
    for (table,) in tables {
        let rows: Vec<(String,)> = match store {
            Store::Postgres(_) => Sql::new(format!("SELECT row_to_json(t)::text FROM {table} t")),
            Store::Sqlite(_) => {
                let columns: Vec<(String,)> =
                    Sql::new(format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(store)
                        .await
                        .expect("columns");
                let text: Vec<String> = columns
                    .iter()
                    .map(|(c,)| format!("COALESCE(CAST(\"{c}\" AS TEXT), '')"))
                    .collect();
                Sql::new(format!(
                    "SELECT {} FROM \"{table}\"",
                    text.join(" || '|' || ")
                ))
            }
        }
        .fetch_all(store)
        .await
        .expect("read a table");
        for (row,) in rows {
            out.push_str(&table);
            out.push(' ');
            out.push_str(&row);
            out.push('\n');
        }
    }
    out
}

const ACCOUNT: &str = "query($id: ID!) { account(id: $id) { id email name role version } }";
const ACCOUNT_AT: &str =
    "query($id: ID!, $v: Int) { account(id: $id, atVersion: $v) { id email name version } }";
const HISTORY: &str = "query($type: String!, $id: ID!) {
  history(aggregateType: $type, aggregateId: $id) { version eventType actor payload } }";
const AUDIT: &str = "query($id: String) {
  audit(resourceType: \"account\", resourceId: $id) { edges { node {
    position eventType aggregateType aggregateId actor } } } }";
const WALLET: &str =
    "query($id: ID!, $v: Int) { wallet(accountId: $id, atVersion: $v) { balance { amount currency } version } }";
const ORDER: &str = "query($id: ID!) { order(id: $id) { id accountId status total { amount } } }";

/// Registers a customer with a recognisable e-mail and name.
async fn register(gql: &TestGraphql, email: &str, name: &str) -> Customer {
    let password = "correct horse battery".to_owned();
    let answer = gql
        .api
        .post(
            "/api/v1/accounts",
            None,
            json!({"email": email, "password": password, "name": name}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    Customer {
        id: answer.body["account_id"].as_str().expect("id").to_owned(),
        email: email.to_owned(),
        password,
        token: answer.body["access_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        refresh: answer.body["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    }
}

async fn erase(gql: &TestGraphql, id: &str, token: &str) -> eventshop_tests::api::Answer {
    gql.api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{id}?erase=true"),
            Some(token),
            None,
            &[],
        )
        .await
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

async fn given_an_account_with_a_deposit_and_an_order_when_it_is_erased_then_its_personal_data_is_gone_everywhere(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let admin = api.admin().await;
    let seller = api.register("seller").await;
    let product = api.product(&seller, 1390, 10).await;
    let tag = Uuid::new_v4().simple().to_string();
    let email = format!("zelda.{tag}@example.com");
    let name = format!("Zelda Quintessa {tag}");
    let ann = register(&gql, &email, &name).await;
    let deposit = api
        .post(
            &format!("/api/v1/accounts/{}/deposits", ann.id),
            Some(&ann.token),
            json!({"amount": 5000, "currency": "EUR"}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::CREATED, "{}", deposit.body);
    let order = api.order(&ann, &[(&product, 2)], "EUR").await;
    gql.project().await;

    // Before: the log holds the personal fields sealed only; the read model in plaintext.
    let before = dump(&api.test).await;
    assert!(
        count(&before, &email) > 0,
        "the accounts read model shows the e-mail"
    );
    assert_eq!(
        count(&before, "$argon2"),
        0,
        "no password hash is stored readable"
    );
    let stored = gql
        .store()
        .history("account", &ann.id)
        .await
        .expect("history");
    assert_eq!(stored[0].payload["data"]["email"], email.as_str());

    // When: the owner erases the account.
    let erased = erase(&gql, &ann.id, &ann.token).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    assert!(erased.body["position"].is_i64(), "{}", erased.body);
    gql.project().await;

    // Then: no e-mail, no name anywhere in the database.
    let after = dump(&api.test).await;
    assert_eq!(count(&after, &email), 0, "the e-mail is left in the dump");
    assert_eq!(count(&after, &name), 0, "the name is left in the dump");
    assert_eq!(count(&after, &tag), 0, "part of the e-mail or name is left");
    assert_eq!(count(&after, "$argon2"), 0);

    // The log still loads and folds, the personal fields reading "[erased]".
    let folded = gql
        .store()
        .load_current::<Account>(&ann.id)
        .await
        .expect("the account still folds");
    assert!(folded.state.is_erased() && folded.state.is_deleted());
    assert_eq!(folded.state.email().map(|e| e.as_str()), Some(ERASED));
    assert_eq!(folded.state.name(), Some(ERASED));

    // GraphQL answers without them: account (read model and fold), history, audit.
    for answer in [
        gql.query(&admin.token, ACCOUNT, json!({"id": ann.id}))
            .await,
        gql.query(&admin.token, ACCOUNT_AT, json!({"id": ann.id, "v": 1}))
            .await,
    ] {
        let account = &answer.data()["account"];
        assert_eq!(account["email"], ERASED, "{}", answer.body);
        assert_eq!(account["name"], ERASED, "{}", answer.body);
    }
    let history = gql
        .query(
            &admin.token,
            HISTORY,
            json!({"type": "account", "id": ann.id}),
        )
        .await;
    let events = history.data()["history"]
        .as_array()
        .expect("events")
        .clone();
    assert_eq!(events[0]["payload"]["data"]["email"], ERASED);
    assert_eq!(events[0]["payload"]["data"]["name"], ERASED);
    assert_eq!(
        events.last().expect("an event")["eventType"],
        "AccountErased"
    );
    let audit = gql.query(&admin.token, AUDIT, json!({"id": ann.id})).await;
    let audit_rows = audit.data()["audit"]["edges"]
        .as_array()
        .expect("rows")
        .len();
    assert!(audit_rows >= 2, "{}", audit.body);
    for answer in [&history, &audit] {
        let text = answer.body.to_string();
        assert_eq!(count(&text, &email) + count(&text, &name), 0, "{text}");
    }

    // The wallet and the order are not personal: they still fold and read.
    let wallet = gql
        .query(&admin.token, WALLET, json!({"id": ann.id, "v": 2}))
        .await;
    assert_eq!(
        wallet.data()["wallet"]["balance"]["amount"],
        5000,
        "{}",
        wallet.body
    );
    let wallet_now = gql
        .query(&admin.token, WALLET, json!({"id": ann.id, "v": null}))
        .await;
    assert!(wallet_now.data()["wallet"]["version"].as_i64() >= Some(2));
    let placed = gql.query(&admin.token, ORDER, json!({"id": order})).await;
    assert_eq!(placed.data()["order"]["accountId"], ann.id.as_str());
    assert_eq!(placed.data()["order"]["total"]["amount"], 2780);
    let order_events = gql.store().history("order", &order).await.expect("order");
    assert_eq!(order_events[0].event_type, "OrderPlaced");

    // A rebuild does not bring them back.
    projectors::rebuild(
        gql.store(),
        &projectors::read_models::all(),
        3,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("rebuild");
    let rebuilt = dump(&api.test).await;
    assert_eq!(count(&rebuilt, &email) + count(&rebuilt, &name), 0);
    let account = gql
        .query(&admin.token, ACCOUNT, json!({"id": ann.id}))
        .await;
    assert_eq!(account.data()["account"]["email"], ERASED);

    // The old credentials no longer log in; the e-mail registers again, as a new account.
    let login = api
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": email, "password": ann.password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.body);
    let again = register(&gql, &email, &name).await;
    assert_ne!(again.id, ann.id);
    let login = api
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": email, "password": again.password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["account_id"], again.id.as_str());
}

async fn given_an_erased_account_when_it_is_erased_again_then_it_succeeds_without_an_event(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let admin = api.admin().await;
    let ann = api.register("customer").await;
    let first = erase(&gql, &ann.id, &admin.token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = erase(&gql, &ann.id, &admin.token).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["position"], Value::Null, "{}", again.body);
    assert_eq!(again.body["version"], first.body["version"]);
    let erasures = gql
        .store()
        .history("account", &ann.id)
        .await
        .expect("history")
        .iter()
        .filter(|e| e.event_type == "AccountErased")
        .count();
    assert_eq!(erasures, 1);
    // The erased account's tokens stopped working.
    let own = erase(&gql, &ann.id, &ann.token).await;
    assert_eq!(own.status, StatusCode::UNAUTHORIZED, "{}", own.body);
}

async fn given_an_unknown_account_or_a_bad_flag_when_erased_then_a_clear_client_error(
    gql: TestGraphql,
) {
    let api = &gql.api;
    let admin = api.admin().await;
    let ann = api.register("customer").await;
    let unknown = erase(&gql, &Uuid::now_v7().to_string(), &admin.token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let other = api.register("customer").await;
    let forbidden = erase(&gql, &ann.id, &other.token).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.body
    );
    let bad = api
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{}?erase=yes", ann.id),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.error().1.as_deref(), Some("erase"));
    // Nothing was erased or deleted by the refused requests.
    let account = gql
        .store()
        .load_current::<Account>(&ann.id)
        .await
        .expect("fold");
    assert!(!account.state.is_deleted());
    assert_eq!(
        account.state.email().map(|e| e.as_str()),
        Some(ann.email.as_str())
    );
}

async fn given_an_account_registered_before_sealing_when_loaded_and_erased_then_it_folds_and_its_plaintext_goes(
    gql: TestGraphql,
) {
    let store = gql.store().clone();
    let id = Uuid::now_v7().to_string();
    let email = format!("legacy.{}@example.com", Uuid::new_v4().simple());
    // An AccountRegistered as this version's predecessor wrote it: plaintext fields.
    let payload = json!({"type": "AccountRegistered", "data": {
        "account_id": id, "email": email, "name": "Lena Legacy",
        "password_hash": "$argon2id$v=19$legacy", "role": "customer",
        "registered_at": "2026-11-01T10:00:00Z"}});
    Sql::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('account', $1, 1, 'AccountRegistered', '1', $2, $3)",
    )
    .arg(id.as_str())
    .arg(payload)
    .arg(json!({"actor": id}))
    .execute(&store)
    .await
    .expect("a plaintext event");
    let folded = store.load_current::<Account>(&id).await.expect("it loads");
    assert_eq!(
        folded.state.email().map(|e| e.as_str()),
        Some(email.as_str())
    );
    assert_eq!(folded.state.name(), Some("Lena Legacy"));

    let bus = CommandBus::new(store.clone(), &gql.api.test.settings);
    let services = AccountServices::new(Arc::new(SqlEmailRegistry::new(store.clone())));
    let committed = application::accounts::erase(&bus, &services, &id, &EventMetadata::system())
        .await
        .expect("erased");
    assert_eq!(committed.version, 2);
    let folded = store.load_current::<Account>(&id).await.expect("it loads");
    assert_eq!(folded.state.name(), Some(ERASED));
    gql.project().await;
    let dump = dump(&gql.api.test).await;
    assert_eq!(count(&dump, &email) + count(&dump, "Lena Legacy"), 0);
    assert_eq!(count(&dump, "$argon2id$v=19$legacy"), 0);
}

async fn given_a_registration_when_stored_then_the_claim_and_the_log_hold_no_plaintext(
    gql: TestGraphql,
) {
    let store = gql.store().clone();
    let ann = gql.api.register("customer").await;
    let claims: Vec<(String, String)> = Sql::new("SELECT email_hash, account_id FROM email_claims")
        .fetch_all(&store)
        .await
        .expect("claims");
    assert!(claims.iter().any(|(_, owner)| *owner == ann.id));
    assert!(claims
        .iter()
        .all(|(hash, _)| !hash.contains('@') && hash.len() == 64));
    let payloads: Vec<(String,)> =
        Sql::new("SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_type = 'account'")
            .fetch_all(&store)
            .await
            .expect("payloads");
    let log: String = payloads.into_iter().map(|(p,)| p).collect();
    assert_eq!(count(&log, &ann.email), 0, "{log}");
    assert!(log.contains(eventstore_config::personal::SEALED_PREFIX));
    let (keys,): (i64,) = Sql::new("SELECT COUNT(*) FROM personal_data_keys WHERE account_id = $1")
        .arg(ann.id.as_str())
        .fetch_one(&store)
        .await
        .expect("keys");
    assert_eq!(keys, 1);
}

/// With a snapshot at every version: an account's snapshot holds its personal fields sealed,
/// folds open them, and erasure deletes the snapshots.
async fn given_snapshots_of_an_account_when_stored_and_erased_then_they_hold_no_plaintext(
    mut test: TestStore,
) {
    test.settings.snapshot_every = 1;
    let store = test.store.clone();
    let bus = CommandBus::new(store.clone(), &test.settings);
    let email = format!("snap.{}@example.com", Uuid::new_v4().simple());
    let id = eventshop_tests::projections::register(&bus, &email, Role::Customer)
        .await
        .to_string();
    let snapshots = || async {
        let rows: Vec<(String,)> = Sql::new(
            "SELECT CAST(payload AS TEXT) FROM aggregate_snapshots \
              WHERE aggregate_type = 'account' AND aggregate_id = $1",
        )
        .arg(id.as_str())
        .fetch_all(&store)
        .await
        .expect("snapshots");
        rows.into_iter().map(|(p,)| p).collect::<Vec<_>>()
    };
    let stored = snapshots().await;
    assert_eq!(stored.len(), 1, "a snapshot at version 1");
    assert_eq!(count(&stored[0], &email), 0, "{}", stored[0]);
    assert_eq!(count(&stored[0], "Name of"), 0, "{}", stored[0]);
    assert!(stored[0].contains(eventstore_config::personal::SEALED_PREFIX));
    // A fresh fold (no kept state) starts from the snapshot and opens it.
    let folded = store
        .load_at_version::<Account>(&id, 1)
        .await
        .expect("fold")
        .expect("version 1");
    assert_eq!(
        folded.state.email().map(|e| e.as_str()),
        Some(email.as_str())
    );

    let services = AccountServices::new(Arc::new(SqlEmailRegistry::new(store.clone())));
    application::accounts::erase(&bus, &services, &id, &EventMetadata::system())
        .await
        .expect("erased");
    for snapshot in snapshots().await {
        assert_eq!(count(&snapshot, &email) + count(&snapshot, "Name of"), 0);
    }
    let folded = store.load_current::<Account>(&id).await.expect("fold");
    assert!(folded.state.is_erased());
    assert_eq!(folded.state.name(), Some(ERASED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_snapshots_of_an_account_when_stored_and_erased_then_they_hold_no_plaintext_on_postgres(
) {
    given_snapshots_of_an_account_when_stored_and_erased_then_they_hold_no_plaintext(
        TestStore::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_snapshots_of_an_account_when_stored_and_erased_then_they_hold_no_plaintext_on_sqlite(
) {
    given_snapshots_of_an_account_when_stored_and_erased_then_they_hold_no_plaintext(
        TestStore::sqlite().await,
    )
    .await;
}

/// A rebuild that replayed a registration before the erasure committed may have written the
/// account's earlier row versions in plaintext; its swap overwrites every version of an
/// entity whose current version is erased. (Simulated on the live table: a leaked old version.)
async fn given_an_erased_account_with_a_plaintext_old_row_version_when_rescrubbed_then_none_is_left(
    gql: TestGraphql,
) {
    let ann = gql.api.register("customer").await;
    let admin = gql.api.admin().await;
    let erased = erase(&gql, &ann.id, &admin.token).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    gql.project().await;
    let leaked = Sql::new(
        "UPDATE rm_accounts SET email = $2, name = $3 \
          WHERE id = $1 AND valid_to_position IS NOT NULL",
    )
    .arg(ann.id.as_str())
    .arg(ann.email.as_str())
    .arg("Leaked Name")
    .execute(gql.store())
    .await
    .expect("simulate a leak");
    assert!(leaked >= 1, "the account has an old row version");
    let other = gql.api.register("customer").await;
    gql.project().await;

    let accounts =
        projectors::model::Projector::<projectors::read_models::accounts::Accounts>::default();
    let mut tx = projectors::sql::Tx::begin(gql.store())
        .await
        .expect("begin");
    tx.rescrub(&accounts, "").await.expect("rescrub");
    tx.commit().await.expect("commit");

    let dump = dump(&gql.api.test).await;
    assert_eq!(count(&dump, &ann.email) + count(&dump, "Leaked Name"), 0);
    assert!(
        count(&dump, &other.email) > 0,
        "a live account is left alone"
    );
}

/// Claims written before the index was keyed (plain addresses) are converted to digests when
/// the index key is first created, and still find their owner.
async fn given_a_plain_claim_from_before_when_the_index_is_first_used_then_it_becomes_a_digest(
    test: TestStore,
) {
    let owner = Uuid::now_v7().to_string();
    Sql::new("INSERT INTO email_claims (email_hash, account_id) VALUES ($1, $2)")
        .arg("old.timer@example.com")
        .arg(owner.as_str())
        .execute(&test.store)
        .await
        .expect("a plain claim");
    let email = domain::Email::parse("Old.Timer@example.com").expect("email");
    let found = eventstore_config::email_registry::owner(&test.store, &email)
        .await
        .expect("look-up");
    assert_eq!(found.as_deref(), Some(owner.as_str()));
    let claims: Vec<(String,)> = Sql::new("SELECT email_hash FROM email_claims")
        .fetch_all(&test.store)
        .await
        .expect("claims");
    assert_eq!(claims.len(), 1);
    assert!(
        !claims[0].0.contains('@') && claims[0].0.len() == 64,
        "{claims:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_plain_claim_from_before_when_the_index_is_first_used_then_it_becomes_a_digest_on_postgres(
) {
    given_a_plain_claim_from_before_when_the_index_is_first_used_then_it_becomes_a_digest(
        TestStore::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_plain_claim_from_before_when_the_index_is_first_used_then_it_becomes_a_digest_on_sqlite(
) {
    given_a_plain_claim_from_before_when_the_index_is_first_used_then_it_becomes_a_digest(
        TestStore::sqlite().await,
    )
    .await;
}

/// The relay: a registration already published to JetStream (with its e-mail and name in the
/// public view) is purged from the stream when the erasure is relayed.
async fn given_a_relayed_registration_when_the_account_is_erased_then_the_stream_keeps_no_personal_data(
    test: TestStore,
) {
    use eventshop_tests::nats::{stream_count, NatsServer};
    let nats = NatsServer::start();
    let mut settings = test.settings.clone();
    settings.nats_url = Some(nats.url());
    let options = relay::RelayOptions::from_settings(&settings, &test.store).expect("nats_url");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(relay::run(
        test.store.clone(),
        options,
        relay::RelayMetrics::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let email = format!("relayed.{}@example.com", Uuid::new_v4().simple());
    let id = eventshop_tests::projections::register(&bus, &email, Role::Customer)
        .await
        .to_string();
    let registration = format!("eventshop.account.{id}.AccountRegistered");
    let published = |subject: String| {
        let url = nats.url();
        async move {
            let client = async_nats::connect(&url).await.expect("connect");
            let stream = async_nats::jetstream::new(client)
                .get_stream("EVENTSHOP")
                .await
                .expect("stream");
            stream
                .get_last_raw_message_by_subject(&subject)
                .await
                .ok()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while stream_count(&nats.url(), "EVENTSHOP").await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay published nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = published(registration.clone())
        .await
        .expect("the registration");
    assert!(before.contains(&email), "{before}");

    let services = AccountServices::new(Arc::new(SqlEmailRegistry::new(test.store.clone())));
    application::accounts::erase(&bus, &services, &id, &EventMetadata::system())
        .await
        .expect("erased");
    let erased = format!("eventshop.account.{id}.AccountErased");
    while published(erased.clone()).await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the erasure was not relayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        published(registration).await,
        None,
        "the registration is still in the stream"
    );
    assert_eq!(
        stream_count(&nats.url(), "EVENTSHOP").await,
        2,
        "wallet + erasure"
    );
    let _ = stop.send(());
    relay
        .await
        .expect("relay task")
        .expect("relay stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_relayed_registration_when_the_account_is_erased_then_the_stream_keeps_no_personal_data_on_postgres(
) {
    given_a_relayed_registration_when_the_account_is_erased_then_the_stream_keeps_no_personal_data(
        TestStore::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_relayed_registration_when_the_account_is_erased_then_the_stream_keeps_no_personal_data_on_sqlite(
) {
    given_a_relayed_registration_when_the_account_is_erased_then_the_stream_keeps_no_personal_data(
        TestStore::sqlite().await,
    )
    .await;
}

graphql_tests!(
    given_an_account_with_a_deposit_and_an_order_when_it_is_erased_then_its_personal_data_is_gone_everywhere,
    given_an_erased_account_when_it_is_erased_again_then_it_succeeds_without_an_event,
    given_an_unknown_account_or_a_bad_flag_when_erased_then_a_clear_client_error,
    given_an_account_registered_before_sealing_when_loaded_and_erased_then_it_folds_and_its_plaintext_goes,
    given_a_registration_when_stored_then_the_claim_and_the_log_hold_no_plaintext,
    given_an_erased_account_with_a_plaintext_old_row_version_when_rescrubbed_then_none_is_left,
);

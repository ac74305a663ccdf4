//! Housekeeping, on PostgreSQL AND SQLite: the command API's background sweep expires
//! `Idempotency-Key` records after `idempotency_key_ttl_secs` (the key then runs as new) and
//! prunes the snapshots older than each aggregate's newest (the aggregate still loads); both
//! counted in `/metrics`.

use std::time::{Duration, Instant};

use domain::wallet::Wallet;
use eventshop_tests::api::TestApi;
use eventstore_config::{Settings, Store};
use reqwest::Method;
use serde_json::json;

/// Sweeps every second; keys live 2 s; a snapshot every 2 versions.
fn settings() -> Settings {
    Settings {
        idempotency_key_ttl_secs: 2,
        housekeeping_interval_secs: 1,
        snapshot_every: 2,
        ..Settings::default()
    }
}

macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = eventshop_tests::TestStore::postgres_with(super::settings()).await;
                    super::$test(super::TestApi::start(store).await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = eventshop_tests::TestStore::sqlite_with(super::settings()).await;
                    super::$test(super::TestApi::start(store).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    given_an_expired_idempotency_key_when_swept_then_the_same_key_runs_as_a_new_request,
    given_several_snapshots_of_an_aggregate_when_swept_then_only_the_newest_stays_and_it_still_loads,
);

/// The value of the counter `name` in `/metrics`.
async fn counter(api: &TestApi, name: &str) -> u64 {
    let text = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics answered")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Polls `/metrics` until counter `name` reaches `at_least`. Panics after 15 s.
async fn await_counter(api: &TestApi, name: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if counter(api, name).await >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed below {at_least}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn given_an_expired_idempotency_key_when_swept_then_the_same_key_runs_as_a_new_request(
    api: TestApi,
) {
    let account = api.register("customer").await;
    let path = format!("/api/v1/accounts/{}/deposits", account.id);
    let deposit = |amount: i64| {
        let (api, path, token) = (&api, path.clone(), account.token.clone());
        async move {
            api.send(
                Method::POST,
                &path,
                Some(&token),
                Some(json!({"amount": amount, "currency": "EUR"})),
                &[("Idempotency-Key", "deposit-1")],
            )
            .await
        }
    };
    let first = deposit(100).await;
    assert_eq!(first.status.as_u16(), 201, "{:?}", first.body);
    // While the key lives, another request with it is refused.
    let reused = deposit(200).await;
    assert_eq!(reused.status.as_u16(), 422, "{:?}", reused.body);

    await_counter(&api, "eventshop_idempotency_keys_expired_total", 1).await;
    let again = deposit(200).await;
    assert_eq!(again.status.as_u16(), 201, "{:?}", again.body);
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_eq!(
        again.body["version"].as_u64(),
        first.body["version"].as_u64().map(|v| v + 1),
        "the second deposit ran: {:?}",
        again.body
    );
}

async fn snapshot_versions(store: &Store, id: &str) -> Vec<i64> {
    let mut select = eventstore_config::snapshots::select("wallet", id);
    select.push(" ORDER BY version");
    let rows: Vec<(i64, serde_json::Value, chrono::DateTime<chrono::Utc>)> =
        select.fetch_all(store).await.unwrap();
    rows.into_iter().map(|(version, _, _)| version).collect()
}

async fn given_several_snapshots_of_an_aggregate_when_swept_then_only_the_newest_stays_and_it_still_loads(
    api: TestApi,
) {
    let account = api.register("customer").await;
    for amount in 1..=6 {
        let answer = api
            .post(
                &format!("/api/v1/accounts/{}/deposits", account.id),
                Some(&account.token),
                json!({"amount": amount, "currency": "EUR"}),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{:?}", answer.body);
    }
    let store = api.store().clone();
    let loaded = store.load_current::<Wallet>(&account.id).await.unwrap();
    assert!(
        loaded.version >= 7,
        "opened + 6 deposits: {}",
        loaded.version
    );
    let newest = (loaded.version / 2 * 2) as i64;

    await_counter(&api, "eventshop_snapshots_pruned_total", 2).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while snapshot_versions(&store, &account.id).await != [newest] {
        assert!(
            Instant::now() < deadline,
            "snapshots left: {:?}",
            snapshot_versions(&store, &account.id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Current and older versions still load (the older ones fold from the first event).
    let current = store.load_current::<Wallet>(&account.id).await.unwrap();
    assert_eq!(
        (current.state.clone(), current.version),
        (loaded.state, loaded.version)
    );
    let older = store.load_at_version::<Wallet>(&account.id, 3).await;
    assert_eq!(older.unwrap().unwrap().version, 3);
}

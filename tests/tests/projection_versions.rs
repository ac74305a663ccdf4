//! Versioned projections on PostgreSQL AND SQLite: a runner that starts with a projection
//! whose code declares another version than the one its rows were built by rebuilds it
//! blue/green in the background. GraphQL answers from the old rows throughout the rebuild and
//! from the rebuilt rows after the swap; the stored version is then the new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventshop_tests::api::{Account, TestApi};
use eventshop_tests::graphql::TestGraphql;
use eventstore_config::{Store, StoredEvent};
use projectors::model::{FoldError, Plan, TableDef, Val};
use projectors::runner::{run_with, RunnerOptions};
use projectors::versions::{self, Version};
use projectors::{progress, read_models, Projection};
use serde_json::json;

macro_rules! both_stores {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(eventshop_tests::api::TestApi::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(eventshop_tests::api::TestApi::sqlite().await).await;
                }
            )*
        }
    };
}

both_stores!(
    given_a_bumped_projection_version_when_a_runner_starts_then_it_rebuilds_while_graphql_serves_the_old_rows,
);

const WALLET: &str = "query($id: ID!) { wallet(accountId: $id) { balance { amount } } }";

/// The wallets projection as the next release declares it: one version up. Its fold waits at
/// `gate` (opened by the test), so that the rebuild can be watched while it runs.
struct NextRelease {
    inner: Arc<dyn Projection>,
    gate: Arc<AtomicBool>,
}

impl Projection for NextRelease {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> i32 {
        self.inner.version() + 1
    }
    fn entity(&self) -> Option<&'static TableDef> {
        self.inner.entity()
    }
    fn appends(&self) -> &'static [&'static TableDef] {
        self.inner.appends()
    }
    fn scrubbed(&self) -> &'static [(&'static str, &'static str)] {
        self.inner.scrubbed()
    }
    fn keys(&self, events: &[StoredEvent]) -> Vec<String> {
        self.inner.keys(events)
    }
    fn fold(
        &self,
        current: HashMap<String, Vec<Val>>,
        events: &[StoredEvent],
    ) -> Result<Plan, FoldError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.gate.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.inner.fold(current, events)
    }
}

async fn balance(gql: &TestGraphql, account: &Account) -> i64 {
    let answer = gql
        .query(&account.token, WALLET, json!({"id": account.id}))
        .await;
    answer.data()["wallet"]["balance"]["amount"]
        .as_i64()
        .unwrap_or_else(|| panic!("no balance in {}", answer.body))
}

/// Stands for rows an older release's code wrote: a balance that today's fold would not give.
async fn make_rows_stale(store: &Store, account: &str) {
    let sql = "UPDATE rm_wallets SET balance = 1 WHERE account_id = ";
    match store {
        Store::Postgres(pool) => sqlx::query(&format!("{sql}$1"))
            .bind(account)
            .execute(pool)
            .await
            .map(drop)
            .unwrap(),
        Store::Sqlite(pool) => sqlx::query(&format!("{sql}?"))
            .bind(account)
            .execute(pool)
            .await
            .map(drop)
            .unwrap(),
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn given_a_bumped_projection_version_when_a_runner_starts_then_it_rebuilds_while_graphql_serves_the_old_rows(
    api: TestApi,
) {
    let gql = TestGraphql::start(api, query_api::Options::default()).await;
    let store = gql.store().clone();
    let alice = gql.api.register("customer").await;
    let answer = gql
        .api
        .post(
            &format!("/api/v1/accounts/{}/deposits", alice.id),
            Some(&alice.token),
            json!({"amount": 2500, "currency": "EUR"}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.body);
    gql.project().await;
    // The current release has run: its version is recorded.
    let wallets = read_models::by_name("wallets").unwrap();
    assert_eq!(
        versions::check(&store, &*wallets).await.unwrap(),
        Version::Current(1)
    );
    make_rows_stale(&store, &alice.id).await;
    assert_eq!(balance(&gql, &alice).await, 1);

    // The next release is installed: its rows are still the old version's.
    let before = projectors::status::status(&store, "wallets", 2)
        .await
        .unwrap();
    assert!(
        before.state_text().ends_with("(rows v1)"),
        "{}",
        before.state_text()
    );

    // The next release starts.
    let gate = Arc::new(AtomicBool::new(false));
    let next = Arc::new(NextRelease {
        inner: wallets.clone(),
        gate: gate.clone(),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        store.clone(),
        RunnerOptions {
            poll: Duration::from_millis(50),
            ..RunnerOptions::for_store(&store)
        },
        vec![next.clone() as Arc<dyn Projection>],
        async move {
            stopped.await.ok();
        },
    ));
    let status = || async {
        projectors::status::status(&store, "wallets", 2)
            .await
            .expect("status")
    };
    eventually("the wallets projection is rebuilding", || async {
        status().await.state == "rebuilding"
    })
    .await;
    let during = status().await;
    assert!(
        during.state_text().starts_with("rebuilding (v1 → v2)"),
        "{}",
        during.state_text()
    );
    assert_eq!(during.built_version, Some(1));

    // The old rows serve during the rebuild.
    assert_eq!(balance(&gql, &alice).await, 1);

    // Let the rebuild finish: the swap serves the rebuilt rows and records the new version.
    gate.store(true, Ordering::SeqCst);
    eventually("the rebuild is swapped in", || async {
        progress::built_version(&store, "wallets").await.unwrap() == Some(2)
    })
    .await;
    assert_eq!(balance(&gql, &alice).await, 2500);
    let after = status().await;
    assert_ne!(after.state, "rebuilding");
    assert_eq!(after.rebuild_percent, None);
    assert_eq!(
        versions::check(&store, &*next).await.unwrap(),
        Version::Current(2)
    );
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

//! Segments (issue #15), on both stores: the projections and the order saga split into four
//! segments, run by two workers, end with read models equal to a single-segment rebuild and
//! balanced books; a joining worker gets about half of the segments and a leaving one hands
//! them back; changing the segment count starts the new segments where the old ones all
//! agree; `projections list --json` prints one object per segment.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use eventshop_tests::projections::{
    create_product, deposit, dump_all, place_order, register, run_script, wait_applied,
};
use eventshop_tests::saga::{assert_books_balance, settle};
use eventshop_tests::TestStore;
use eventstore_config::segments::checkpoint_names;
use eventstore_config::{followers, CommandBus, Settings, Store};
use projectors::read_models;
use projectors::status::segment_statuses;
use projectors::RunnerOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

eventshop_tests::store_tests!(
    given_four_segments_and_two_workers_when_orders_flow_then_the_read_models_equal_a_rebuild_and_the_books_balance,
    given_one_worker_with_every_segment_when_a_second_joins_then_each_owns_half_and_when_it_leaves_the_first_owns_all,
    given_one_segment_when_the_count_becomes_four_then_the_new_segments_start_where_the_old_one_stood,
    given_four_segments_when_listed_as_json_then_each_segment_is_one_line_with_its_owner_position_and_lag,
    given_four_segments_when_one_lags_then_read_your_writes_waits_for_it,
);

/// A worker (projections and saga) running until stopped.
struct Worker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Worker {
    fn start(test: &TestStore, settings: &Settings, owner: &str, saga: bool) -> Worker {
        let (stop, stopped) = oneshot::channel::<()>();
        let options = RunnerOptions {
            poll: Duration::from_millis(50),
            owner: owner.to_string(),
            ..RunnerOptions::for_store(&test.store)
        };
        let shutdown = async move {
            stopped.await.ok();
        };
        let (store, settings) = (test.store.clone(), settings.clone());
        let task = spawn(async move {
            if saga {
                projectors::saga::run_with_projections(
                    store,
                    &settings,
                    options,
                    read_models::all(),
                    shutdown,
                )
                .await
            } else {
                projectors::run_segmented(store, &settings, options, read_models::all(), shutdown)
                    .await
            }
        });
        Worker {
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        self.task.await.expect("worker task").expect("worker");
    }
}

fn spawn(
    future: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(future)
}

fn with_segments(test: &TestStore, segments: u32) -> Settings {
    Settings {
        segments,
        ..test.settings.clone()
    }
}

/// How many segments of `name` each owner holds.
async fn owners(store: &Store, name: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for segment in segment_statuses(store, name).await.expect("segments") {
        *out.entry(segment.owner.unwrap_or_else(|| "-".into()))
            .or_default() += 1;
    }
    out
}

/// Waits (up to `secs`) until every projection's (and, with `saga`, the saga's) segments are
/// held as `want` says.
async fn wait_for_owners(store: &Store, saga: bool, want: &BTreeMap<String, usize>, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut names = read_models::names();
    if saga {
        names.push(projectors::saga::NAME);
    }
    loop {
        let mut all = true;
        let mut seen = Vec::new();
        for &name in &names {
            let got = owners(store, name).await;
            all &= &got == want;
            seen.push((name, got));
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "segments not shared as {want:?} within {secs} s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Dump = Vec<(&'static str, Vec<Vec<projectors::Val>>)>;

/// Panics with the first rows that differ, table by table.
fn assert_same(live: &Dump, rebuilt: &Dump) {
    for ((table, live), (_, rebuilt)) in live.iter().zip(rebuilt) {
        let only_live: Vec<_> = live.iter().filter(|r| !rebuilt.contains(r)).collect();
        let only_rebuilt: Vec<_> = rebuilt.iter().filter(|r| !live.contains(r)).collect();
        assert!(
            only_live.is_empty() && only_rebuilt.is_empty() && live.len() == rebuilt.len(),
            "{table}: live only {only_live:?}; rebuilt only {only_rebuilt:?}"
        );
    }
    assert_eq!(live, rebuilt);
}

async fn rebuilt(store: &Store) -> Dump {
    projectors::rebuild(
        store,
        &read_models::all(),
        500,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("rebuild");
    dump_all(store).await
}

async fn given_four_segments_and_two_workers_when_orders_flow_then_the_read_models_equal_a_rebuild_and_the_books_balance(
    test: TestStore,
) {
    let settings = with_segments(&test, 4);
    let bus = CommandBus::new(test.store.clone(), &settings);
    // The script runs the saga's steps by hand: before the saga runs.
    run_script(&bus).await;
    let a = Worker::start(&test, &settings, "worker-a", true);
    let b = Worker::start(&test, &settings, "worker-b", true);
    let seller = register(&bus, "seller@example.com", domain::account::Role::Seller).await;
    let mut products = Vec::new();
    for _ in 0..3 {
        products.push(create_product(&bus, seller, 10).await);
    }
    let mut customers = Vec::new();
    for i in 0..4 {
        let customer = register(
            &bus,
            &format!("c{i}@example.com"),
            domain::account::Role::Customer,
        )
        .await;
        // Enough for some orders, not for all: some are declined and compensated.
        deposit(&bus, customer, 6_000).await;
        customers.push(customer);
    }
    let mut orders = Vec::new();
    for i in 0..24 {
        let order = place_order(&bus, customers[i % 4], products[i % 3], 1 + (i % 2) as u32).await;
        orders.push(order.to_string());
    }
    let statuses = settle(&test.store, &orders, Duration::from_secs(40)).await;
    assert_eq!(statuses.len(), orders.len());
    wait_applied(&test.store, 30).await;
    for name in read_models::names()
        .into_iter()
        .chain([projectors::saga::NAME])
    {
        let rows: Vec<String> = followers::segment_checkpoints(&test.store, name)
            .await
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(rows, checkpoint_names(name, 4), "{name}");
    }
    let products: Vec<String> = products.iter().map(ToString::to_string).collect();
    let wallets: Vec<String> = customers.iter().map(ToString::to_string).collect();
    assert_books_balance(&test.store, &products, &wallets).await;
    a.stop().await;
    b.stop().await;
    let live = dump_all(&test.store).await;
    assert_same(&live, &rebuilt(&test.store).await);
}

async fn given_one_worker_with_every_segment_when_a_second_joins_then_each_owns_half_and_when_it_leaves_the_first_owns_all(
    test: TestStore,
) {
    let settings = with_segments(&test, 4);
    let bus = CommandBus::new(test.store.clone(), &settings);
    run_script(&bus).await;
    let a = Worker::start(&test, &settings, "worker-a", false);
    wait_for_owners(
        &test.store,
        false,
        &BTreeMap::from([("worker-a".into(), 4)]),
        20,
    )
    .await;
    let b = Worker::start(&test, &settings, "worker-b", false);
    wait_for_owners(
        &test.store,
        false,
        &BTreeMap::from([("worker-a".into(), 2), ("worker-b".into(), 2)]),
        30,
    )
    .await;
    // Both apply what comes now, each its segments.
    let customer = register(&bus, "late@example.com", domain::account::Role::Customer).await;
    deposit(&bus, customer, 100).await;
    wait_applied(&test.store, 20).await;
    b.stop().await;
    wait_for_owners(
        &test.store,
        false,
        &BTreeMap::from([("worker-a".into(), 4)]),
        30,
    )
    .await;
    deposit(&bus, customer, 200).await;
    wait_applied(&test.store, 20).await;
    a.stop().await;
    let live = dump_all(&test.store).await;
    assert_same(&live, &rebuilt(&test.store).await);
}

async fn given_one_segment_when_the_count_becomes_four_then_the_new_segments_start_where_the_old_one_stood(
    test: TestStore,
) {
    let one = with_segments(&test, 1);
    let bus = CommandBus::new(test.store.clone(), &one);
    let s = run_script(&bus).await;
    let a = Worker::start(&test, &one, "worker-a", false);
    wait_applied(&test.store, 20).await;
    a.stop().await;
    let before = followers::checkpoint(&test.store, "orders").await.unwrap();

    // Four segments: each starts at the one checkpoint there was, which is gone.
    let four = with_segments(&test, 4);
    projectors::runner::ensure_layouts(&test.store, &four, &["orders"])
        .await
        .unwrap();
    let rows = followers::segment_checkpoints(&test.store, "orders")
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|(_, cp)| *cp == before), "{rows:?}");
    assert!(!followers::has_checkpoint(&test.store, "orders")
        .await
        .unwrap());

    // Four segments apply what comes next; then back to two, from the lowest of the four.
    deposit(&bus, s.customer, 700).await;
    let b = Worker::start(&test, &four, "worker-b", false);
    wait_applied(&test.store, 20).await;
    b.stop().await;
    // One segment behind the others (as a slower worker's would be).
    let ahead = followers::checkpoint(&test.store, "orders@1/4")
        .await
        .unwrap();
    followers::write_checkpoint(&test.store, "orders@0/4", before)
        .await
        .unwrap();
    assert!(ahead.position > before.position);
    let lowest = before;
    let two = with_segments(&test, 2);
    projectors::runner::ensure_layouts(&test.store, &two, &["orders"])
        .await
        .unwrap();
    let rows = followers::segment_checkpoints(&test.store, "orders")
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        checkpoint_names("orders", 2)
    );
    assert!(rows.iter().all(|(_, cp)| *cp == lowest), "{rows:?}");
    // Replaying from there changes nothing.
    deposit(&bus, s.customer, 800).await;
    let c = Worker::start(&test, &two, "worker-c", false);
    wait_applied(&test.store, 20).await;
    c.stop().await;
    let live = dump_all(&test.store).await;
    assert_same(&live, &rebuilt(&test.store).await);
}

async fn given_four_segments_when_listed_as_json_then_each_segment_is_one_line_with_its_owner_position_and_lag(
    test: TestStore,
) {
    let settings = with_segments(&test, 4);
    let bus = CommandBus::new(test.store.clone(), &settings);
    run_script(&bus).await;
    let a = Worker::start(&test, &settings, "worker-a", true);
    wait_for_owners(
        &test.store,
        true,
        &BTreeMap::from([("worker-a".into(), 4)]),
        20,
    )
    .await;
    wait_applied(&test.store, 20).await;
    let head = test.store.head_position().await.unwrap();
    let url = test.url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(eventshop_tests::child::binary())
            .args(["projections", "list", "--json"])
            .env("DATABASE_URL", url)
            .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
            .env("RUST_LOG", "error")
            .output()
            .expect("run eventshop")
    })
    .await
    .unwrap();
    a.stop().await;
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    for name in read_models::names()
        .into_iter()
        .chain([projectors::saga::NAME])
    {
        let segments: Vec<&serde_json::Value> =
            lines.iter().filter(|l| l["name"] == name).collect();
        assert_eq!(segments.len(), 4, "{name}: {lines:?}");
        for (i, segment) in segments.iter().enumerate() {
            assert_eq!(segment["segment"], i as u64, "{segment}");
            assert_eq!(segment["segments"], 4, "{segment}");
            assert_eq!(segment["owner"], "worker-a", "{segment}");
            assert!(segment["position"].as_i64().unwrap() <= head, "{segment}");
            assert!(segment["lag"].as_i64().is_some(), "{segment}");
        }
    }
}

async fn given_four_segments_when_one_lags_then_read_your_writes_waits_for_it(test: TestStore) {
    let settings = with_segments(&test, 4);
    let bus = CommandBus::new(test.store.clone(), &settings);
    run_script(&bus).await;
    let a = Worker::start(&test, &settings, "worker-a", false);
    wait_applied(&test.store, 20).await;
    a.stop().await;
    let head = test.store.head_position().await.unwrap();
    assert!(query_api::consistency::applied_through(&test.store, head)
        .await
        .unwrap());
    // One segment of one read model behind: X-Min-Position waits.
    followers::write_checkpoint(
        &test.store,
        "orders@3/4",
        eventstore_config::Checkpoint::START,
    )
    .await
    .unwrap();
    assert!(!query_api::consistency::applied_through(&test.store, head)
        .await
        .unwrap());
    assert!(
        !query_api::consistency::wait_for(&test.store, head, Duration::from_millis(200))
            .await
            .unwrap()
    );
}

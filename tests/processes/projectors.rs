//! `eventshop projectors run` as real processes against PostgreSQL: a worker killed mid-batch
//! and restarted ends with read models equal to a fresh rebuild; with two runners, killing the
//! owner hands every projection to the other within seconds and nothing is applied twice.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eventshop_tests::projections::{
    catch_up_all, deposit, dump_all, register, run_script, wait_applied,
};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, Store};
use projectors::read_models;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

/// Starts `eventshop projectors run --batch <batch>` against `test`'s database.
fn spawn_runner(test: &TestStore, batch: u32) -> Child {
    Command::new(BINARY)
        .args(["projectors", "run", "--batch", &batch.to_string()])
        .env("DATABASE_URL", test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop projectors run")
}

/// SIGKILL (std's `Child::kill` on Unix) and reap.
fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

async fn count(store: &Store, sql: &str) -> i64 {
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// The audit checkpoint's position.
async fn audit_position(store: &Store) -> i64 {
    projectors::sql::read_checkpoint(store, "audit")
        .await
        .unwrap()
        .position
}

/// Appends `n` deposits spread over a few accounts.
async fn deposits(bus: &CommandBus, accounts: &[uuid::Uuid], n: usize) {
    for i in 0..n {
        deposit(bus, accounts[i % accounts.len()], 100 + i as i64).await;
    }
}

async fn accounts(bus: &CommandBus, n: usize) -> Vec<uuid::Uuid> {
    let mut out = Vec::new();
    for _ in 0..n {
        let email = format!("p-{}@example.com", uuid::Uuid::new_v4().simple());
        out.push(register(bus, &email, domain::account::Role::Customer).await);
    }
    out
}

/// Rebuilds every read model from the log and returns the dump.
async fn rebuilt(store: &Store) -> Vec<(&'static str, Vec<Vec<projectors::Val>>)> {
    projectors::rebuild(
        store,
        &read_models::all(),
        1000,
        &projectors::indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("rebuild");
    dump_all(store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_batch_and_restarted_matches_a_fresh_rebuild() {
    let test = TestStore::postgres().await;
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    run_script(&bus).await;
    let people = accounts(&bus, 5).await;
    deposits(&bus, &people, 600).await;

    // Kill the runner three times while it is working through the backlog (small batches:
    // it is inside a batch transaction nearly all the time), appending more meanwhile.
    let mut kills = 0;
    for round in 0..3 {
        let before = audit_position(&test.store).await;
        let mut runner = spawn_runner(&test, 20);
        let deadline = Instant::now() + Duration::from_secs(20);
        while audit_position(&test.store).await <= before {
            assert!(
                Instant::now() < deadline,
                "round {round}: the runner made no progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        deposits(&bus, &people, 40).await;
        kill(&mut runner);
        kills += 1;
    }
    assert_eq!(kills, 3);
    let events = count(&test.store, "SELECT count(*) FROM events").await;
    assert!(
        count(&test.store, "SELECT count(*) FROM rm_audit").await < events,
        "the kills happened before the backlog was done"
    );

    let mut runner = spawn_runner(&test, 20);
    wait_applied(&test.store, 60).await;
    kill(&mut runner);
    // The runner process also hosts the order saga, which may have appended events after the
    // wait above; nothing appends now: apply those in-process before comparing.
    catch_up_all(&test.store).await;

    let live = dump_all(&test.store).await;
    assert_eq!(
        count(&test.store, "SELECT count(*) FROM rm_audit").await,
        events
    );
    assert_eq!(rebuilt(&test.store).await, live);
}

/// The owner recorded for every projection, once each one is held by a live worker.
async fn owners(store: &Store) -> Vec<Option<String>> {
    projectors::statuses(store)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.owner)
        .collect()
}

async fn wait_owned_by(store: &Store, pid: u32, within: Duration) -> Duration {
    let started = Instant::now();
    let prefix = format!("pid{pid}-");
    loop {
        let owners = owners(store).await;
        if owners
            .iter()
            .all(|o| o.as_deref().is_some_and(|o| o.starts_with(&prefix)))
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not every projection went to pid {pid}: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owning_runner_hands_every_projection_to_the_other_without_double_applies() {
    let test = TestStore::postgres().await;
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    run_script(&bus).await;
    let people = accounts(&bus, 3).await;

    let mut first = spawn_runner(&test, 50);
    wait_owned_by(&test.store, first.id(), Duration::from_secs(20)).await;
    let mut second = spawn_runner(&test, 50);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        wait_owned_by(&test.store, first.id(), Duration::from_secs(1)).await
            < Duration::from_secs(1),
        "the first runner keeps its projections while the second waits"
    );

    deposits(&bus, &people, 200).await;
    kill(&mut first);
    let handover = wait_owned_by(&test.store, second.id(), Duration::from_secs(10)).await;
    deposits(&bus, &people, 100).await;
    wait_applied(&test.store, 30).await;
    kill(&mut second);
    catch_up_all(&test.store).await;

    assert!(
        handover < Duration::from_secs(10),
        "handover took {handover:?}"
    );
    let events = count(&test.store, "SELECT count(*) FROM events").await;
    assert_eq!(
        count(&test.store, "SELECT count(*) FROM rm_audit").await,
        events,
        "each event has exactly one audit row"
    );
    let live = dump_all(&test.store).await;
    assert_eq!(rebuilt(&test.store).await, live);
}

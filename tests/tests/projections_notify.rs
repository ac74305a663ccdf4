//! PostgreSQL wake-up: an idle worker is woken by `NOTIFY eventshop_events` (the statement
//! trigger on `events`), not only by polling.

use std::time::Duration;

use eventshop_tests::projections::{deposit, register, wait_applied};
use eventshop_tests::TestStore;
use eventstore_config::CommandBus;
use projectors::read_models;
use projectors::runner::{run_with, RunnerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_applies_a_new_event_on_notification_long_before_its_next_poll() {
    let test = TestStore::postgres().await;
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let account = register(&bus, "notify@example.com", domain::account::Role::Customer).await;
    let options = RunnerOptions {
        // Polling alone would take a minute: only a notification can wake the worker in time.
        poll: Duration::from_secs(60),
        ..RunnerOptions::for_store(&test.store)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(run_with(
        test.store.clone(),
        options,
        read_models::all(),
        async move {
            stopped.await.ok();
        },
    ));
    wait_applied(&test.store, 20).await;
    // Let every worker go idle (waiting on the 60 s poll), then append.
    tokio::time::sleep(Duration::from_millis(500)).await;
    deposit(&bus, account, 42).await;
    wait_applied(&test.store, 20).await;
    stop.send(()).ok();
    runner.await.unwrap().unwrap();
}

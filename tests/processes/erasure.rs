//! The real binary's `accounts erase ID`, on both stores: it erases a registered account (its
//! personal fields read "[erased]", its e-mail can register again), says so again without a new
//! event for an erased one, and fails with one line for an unknown or malformed id.

use domain::account::{Account, Role};
use eventshop_tests::TestStore;
use eventstore_config::CommandBus;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

fn erase(test: &TestStore, id: &str) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .env("DATABASE_URL", test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "warn")
        .args(["accounts", "erase", id])
        .output()
        .expect("run eventshop");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn given_an_account_when_erased_from_the_terminal_then_its_personal_data_reads_erased(
    test: TestStore,
) {
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let email = format!("cli.{}@example.com", uuid::Uuid::new_v4().simple());
    let id = eventshop_tests::projections::register(&bus, &email, Role::Customer)
        .await
        .to_string();

    let (ok, stdout, stderr) = erase(&test, &id);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("erased account"), "{stdout}");
    let account = test.store.load_current::<Account>(&id).await.unwrap().state;
    assert!(account.is_erased() && account.is_deleted());
    assert_eq!(account.email().unwrap().as_str(), domain::email::ERASED);

    let (ok, stdout, _) = erase(&test, &id);
    assert!(ok);
    assert!(stdout.contains("already erased"), "{stdout}");
    let history = test.store.history("account", &id).await.unwrap();
    assert_eq!(history.len(), 2, "AccountRegistered + one AccountErased");

    // The e-mail is free again.
    let fresh = CommandBus::new(test.store.clone(), &test.settings);
    let again = eventshop_tests::projections::register(&fresh, &email, Role::Customer).await;
    assert_ne!(again.to_string(), id);

    for bad in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let (ok, stdout, stderr) = erase(&test, &bad);
        assert!(!ok, "{stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error:"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_erase_erases_from_the_terminal_on_postgres() {
    given_an_account_when_erased_from_the_terminal_then_its_personal_data_reads_erased(
        TestStore::postgres().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_erase_erases_from_the_terminal_on_sqlite() {
    given_an_account_when_erased_from_the_terminal_then_its_personal_data_reads_erased(
        TestStore::sqlite().await,
    )
    .await;
}

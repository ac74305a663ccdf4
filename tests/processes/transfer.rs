//! The real binary's `events export` and `events import`: a log exported from one store kind is
//! imported into an empty store of the other (read models rebuilt), a second import into the
//! now non-empty store and a corrupted file are refused with one line on stderr and a non-zero
//! exit, and the target is unchanged.

use std::io::Write;
use std::process::{Command, Stdio};

use eventshop_tests::TestStore;
use eventstore_config::CommandBus;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

/// Runs `eventshop events ARGS` on `test`'s database with `input` on stdin: success, stdout,
/// stderr.
fn events(test: &TestStore, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new(BINARY)
        .env("DATABASE_URL", test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env("RUST_LOG", "warn")
        .arg("events")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run eventshop");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        // A refused import may stop reading early: a broken pipe is fine.
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for eventshop");
    feeder.join().expect("stdin feeder");
    (
        output.status.success(),
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn given_a_log_when_exported_and_imported_by_the_binary_then_the_other_store_holds_it(
    source: TestStore,
    target: TestStore,
    other: TestStore,
) {
    let bus = CommandBus::new(source.store.clone(), &source.settings);
    eventshop_tests::projections::run_script(&bus).await;
    let count = eventstore_config::log::transfer::count(&source.store)
        .await
        .unwrap();

    // The default export is the public form: every event, but no secret and nothing sealed,
    // and it cannot be restored.
    let (ok, public, stderr) = events(&source, &["export"], b"");
    assert!(ok, "{stderr}");
    let public_text = String::from_utf8(public.clone()).unwrap();
    assert!(public_text.contains("\"form\":\"public\""), "{public_text}");
    assert_eq!(
        public_text
            .lines()
            .filter(|l| l.starts_with("{\"event\":"))
            .count() as i64,
        count,
        "every event in the public export"
    );
    for secret in [
        "$argon2",
        "password_hash",
        "pd1:",
        "{\"key\":",
        "\"jti\"",
        "\"family\"",
    ] {
        assert!(
            !public_text.contains(secret),
            "the public export shows {secret}"
        );
    }
    assert!(
        public_text.contains("@example.com"),
        "opened e-mails are public views"
    );
    let (ok, _, stderr) = events(&other, &["import"], &public);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("events export --full"), "{stderr}");
    assert_eq!(other.store.head_position().await.unwrap(), 0);

    let (ok, file, stderr) = events(&source, &["export", "--full"], b"");
    assert!(ok, "{stderr}");
    let text = String::from_utf8(file.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("{\"header\":"), "{}", lines[0]);
    assert!(
        lines.last().unwrap().starts_with("{\"end\":"),
        "{}",
        lines.last().unwrap()
    );
    let events_in_file = lines
        .iter()
        .filter(|l| l.starts_with("{\"event\":"))
        .count();
    assert_eq!(events_in_file as i64, count, "every event exported");

    let (ok, stdout, stderr) = events(&target, &["import"], &file);
    assert!(ok, "{stderr}");
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(
        stdout.contains(&format!("imported {events_in_file} events")),
        "{stdout}"
    );
    assert!(stdout.contains("rebuilt"), "{stdout}");
    let imported = target.store.head_position().await.unwrap();
    assert_eq!(imported, events_in_file as i64);
    let history = target
        .store
        .history("account", &first_account(&text))
        .await
        .unwrap();
    assert_eq!(history[0].event_type, "AccountRegistered");

    // A second import into the now non-empty store: one line, non-zero exit, nothing changed.
    let (ok, _, stderr) = events(&target, &["import"], &file);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: import: the target store is not empty"),
        "{stderr}"
    );
    assert_eq!(target.store.head_position().await.unwrap(), imported);

    // A corrupted third line: named, and the empty store stays empty.
    let mut corrupted: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    corrupted[2] = "{\"event\": not json".to_owned();
    let (ok, _, stderr) = events(&other, &["import"], corrupted.join("\n").as_bytes());
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: import: line 3: "), "{stderr}");
    assert_eq!(other.store.head_position().await.unwrap(), 0);
}

/// The id of the first account in an export.
fn first_account(text: &str) -> String {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["event"]["aggregate_type"] == "account")
        .and_then(|l| l["event"]["aggregate_id"].as_str().map(str::to_owned))
        .expect("an account event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_export_on_postgres_imports_into_sqlite() {
    given_a_log_when_exported_and_imported_by_the_binary_then_the_other_store_holds_it(
        TestStore::postgres().await,
        TestStore::sqlite().await,
        TestStore::sqlite().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_export_on_sqlite_imports_into_postgres() {
    given_a_log_when_exported_and_imported_by_the_binary_then_the_other_store_holds_it(
        TestStore::sqlite().await,
        TestStore::postgres().await,
        TestStore::postgres().await,
    )
    .await;
}

//! The real binary's `command-api` / `serve` (listen, answer, stop on SIGTERM) and
//! `accounts create-admin`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use domain::account::{Account, Role};
use domain::policy_set::PolicySet;
use domain::Policy;
use eventshop_tests::TestStore;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

fn eventshop(test: &TestStore) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env_remove("EVENTSHOP_ADMIN_PASSWORD")
        .env("RUST_LOG", "warn");
    command
}

/// A bare HTTP/1.1 GET (no client library needed); returns the whole response.
async fn get(host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

async fn serves_until_sigterm(subcommand: &str) {
    let test = TestStore::sqlite().await;
    let mut child = eventshop(&test)
        .args([subcommand, "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start eventshop");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let address = line
        .trim()
        .strip_prefix("eventshop listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let host = address.strip_prefix("http://").expect("an http address");
    assert!(
        get(host, "/healthz").await.starts_with("HTTP/1.1 200"),
        "healthz does not answer 200"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_api_prints_its_address_answers_and_stops_cleanly_on_sigterm() {
    serves_until_sigterm("command-api").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_its_address_answers_and_stops_cleanly_on_sigterm() {
    serves_until_sigterm("serve").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_registers_an_admin_with_every_policy() {
    let test = TestStore::postgres().await;
    let mut child = eventshop(&test)
        .args(["accounts", "create-admin", "--email", "root@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start eventshop");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"an admin password\n")
        .expect("write the password");
    let output = child.wait_with_output().expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    uuid::Uuid::parse_str(&id).expect("the id is printed");
    let account = test.store.load_current::<Account>(&id).await.unwrap().state;
    assert_eq!(account.role(), Some(Role::Admin));
    assert_eq!(account.email().unwrap().as_str(), "root@example.com");
    let policies = test
        .store
        .load_current::<PolicySet>(&id)
        .await
        .unwrap()
        .state;
    assert!(policies.contains(&Policy::admin(&id).unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_with_a_bad_email_fails_with_one_line() {
    let test = TestStore::sqlite().await;
    let output = eventshop(&test)
        .args(["accounts", "create-admin", "--email", "not-an-email"])
        .env("EVENTSHOP_ADMIN_PASSWORD", "an admin password")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: invalid --email: "), "{stderr}");
    assert!(output.stdout.is_empty());
}

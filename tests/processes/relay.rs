//! `eventshop relay run` and the relay inside `serve` as real processes against a real
//! `nats-server -js`: SIGKILLed five times while 10,000 events are appended, the stream still
//! ends with every event exactly once; `serve` shows the relay's metrics; bad relay settings
//! end `relay run` with a one-line message.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eventshop_tests::nats::{read_stream, stream_count, NatsServer};
use eventshop_tests::projections::{deposit, register};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, Store};
use rand::Rng;

const BINARY: &str = env!("CARGO_BIN_EXE_eventshop");

fn eventshop(test: &TestStore, nats_url: Option<&str>) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", test.url())
        .env("EVENTSHOP_CONFIG", "/nonexistent/eventshop.toml")
        .env_remove("EVENTSHOP_NATS_STREAM")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    match nats_url {
        Some(url) => command.env("EVENTSHOP_NATS_URL", url),
        None => command.env_remove("EVENTSHOP_NATS_URL"),
    };
    command
}

fn spawn_relay(test: &TestStore, nats_url: &str) -> Child {
    eventshop(test, Some(nats_url))
        .args(["relay", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop relay run")
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

async fn log_count(store: &Store) -> i64 {
    let sql = "SELECT count(*) FROM events";
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn relay_position(store: &Store) -> i64 {
    projectors::sql::read_checkpoint(store, relay::CHECKPOINT)
        .await
        .unwrap()
        .position
}

/// Whether the relay's checkpoint is after every event of the log.
async fn caught_up(store: &Store) -> bool {
    let checkpoint = projectors::sql::read_checkpoint(store, relay::CHECKPOINT)
        .await
        .unwrap();
    projectors::sql::events_after(store, checkpoint)
        .await
        .unwrap()
        .0
        == 0
}

/// `<aggregate_type>:<aggregate_id>:<version>` of every event in the log.
async fn log_ids(store: &Store) -> HashSet<String> {
    let sql = "SELECT aggregate_type, aggregate_id, sequence FROM events";
    let rows: Vec<(String, String, i64)> = match store {
        Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    rows.into_iter()
        .map(|(t, id, v)| format!("{t}:{id}:{v}"))
        .collect()
}

/// The two crash tests are the heaviest of this binary: one at a time, so that they leave the
/// machine (and its PostgreSQL) to the other tests running beside them.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Patience for the writers beside the test's own queries; a small pool, since the other
/// tests of this binary share the PostgreSQL server's 100 connections.
fn roomy() -> eventstore_config::Settings {
    eventstore_config::Settings {
        max_connections: 8,
        connect_timeout_secs: 30,
        command_retries: 100,
        ..Default::default()
    }
}

async fn killed_five_times_while_appending(test: TestStore) {
    let _one_at_a_time = HEAVY.lock().await;
    let nats = NatsServer::start();
    let url = nats.url();
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let mut accounts = Vec::new();
    for _ in 0..20 {
        let email = format!("k-{}@example.com", uuid::Uuid::new_v4().simple());
        accounts.push(register(&bus, &email, domain::account::Role::Customer).await);
    }
    let target = 10_000 - log_count(&test.store).await as usize;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (bus, accounts) = (bus.clone(), accounts.clone());
            tokio::spawn(async move {
                for i in (w..target).step_by(4) {
                    deposit(&bus, accounts[i % accounts.len()], 1 + i as i64).await;
                }
            })
        })
        .collect();

    let mut relay = spawn_relay(&test, &url);
    for kill_number in 0..5 {
        // Kill it at a random point once it is at work (it has moved its checkpoint), or once
        // it has caught up if the writers are done.
        let before = relay_position(&test.store).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while relay_position(&test.store).await <= before && !caught_up(&test.store).await {
            assert!(
                Instant::now() < deadline,
                "kill {kill_number}: the relay made no progress"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pause = rand::thread_rng().gen_range(0..300);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        kill(&mut relay);
        relay = spawn_relay(&test, &url);
    }
    for writer in writers {
        writer.await.expect("a writer");
    }
    let total = log_count(&test.store).await;
    assert!(total >= 10_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (stream_count(&url, "EVENTSHOP").await as i64) < total {
        assert!(Instant::now() < deadline, "the last relay did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(&mut relay);

    let stream = read_stream(&url, "EVENTSHOP").await;
    let mut seen = HashSet::new();
    let mut versions: HashMap<(String, String), u64> = HashMap::new();
    for message in &stream {
        let id = message.header("Nats-Msg-Id");
        assert!(seen.insert(id.to_owned()), "{id} is in the stream twice");
        let key = (
            message.header("Eventshop-Aggregate-Type").to_owned(),
            message.header("Eventshop-Aggregate-Id").to_owned(),
        );
        let version: u64 = message.header("Eventshop-Version").parse().unwrap();
        let previous = versions.insert(key, version).unwrap_or(0);
        assert_eq!(version, previous + 1, "{id} out of version order");
    }
    assert_eq!(
        seen,
        log_ids(&test.store).await,
        "every event, none missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_relay_run_on_postgres_sigkilled_five_times_while_10000_events_are_appended_then_the_stream_holds_each_exactly_once(
) {
    killed_five_times_while_appending(TestStore::postgres_with(roomy()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_relay_run_on_sqlite_sigkilled_five_times_while_10000_events_are_appended_then_the_stream_holds_each_exactly_once(
) {
    killed_five_times_while_appending(TestStore::sqlite_with(roomy()).await).await;
}

/// The value of an unlabelled metric in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_serve_with_nats_url_when_commands_arrive_then_metrics_show_the_relay_position_moving(
) {
    let test = TestStore::sqlite().await;
    let nats = NatsServer::start();
    let mut child = eventshop(&test, Some(&nats.url()))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("eventshop listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    let position_after = |position: f64| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let text = client
                    .get(format!("{base}/metrics"))
                    .send()
                    .await
                    .expect("GET /metrics")
                    .text()
                    .await
                    .expect("the metrics");
                let now = metric(&text, "eventshop_relay_position")
                    .expect("eventshop_relay_position is on /metrics");
                assert!(metric(&text, "eventshop_relay_lag_events").is_some());
                assert!(metric(&text, "eventshop_relay_publish_errors_total").is_some());
                if now > position {
                    return now;
                }
                assert!(
                    Instant::now() < deadline,
                    "the relay position stays at {now}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let register = |email: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let answer = client
                .post(format!("{base}/api/v1/accounts"))
                .json(&serde_json::json!({"email": email, "password": "correct horse", "name": "Ann"}))
                .send()
                .await
                .expect("POST /accounts");
            assert_eq!(answer.status(), 201);
        }
    };
    register("ann@example.com").await;
    let first = position_after(0.0).await;
    register("bob@example.com").await;
    let second = position_after(first).await;
    assert!(second > first);
    kill(&mut child);
    assert!(stream_count(&nats.url(), "EVENTSHOP").await >= 4);
}

#[tokio::test]
async fn given_no_nats_url_when_relay_run_then_it_exits_with_a_one_line_message() {
    let test = TestStore::sqlite().await;
    let output = eventshop(&test, None)
        .args(["relay", "run"])
        .output()
        .expect("run eventshop relay run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nats_url"), "{stderr}");
}

#[tokio::test]
async fn given_a_bad_stream_name_when_relay_run_then_it_exits_with_a_one_line_message() {
    let test = TestStore::sqlite().await;
    let output = eventshop(&test, Some("nats://127.0.0.1:4222"))
        .env("EVENTSHOP_NATS_STREAM", "events.all")
        .args(["relay", "run"])
        .output()
        .expect("run eventshop relay run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nats_stream"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_projectors_run_with_nats_url_when_commands_arrive_then_they_are_relayed() {
    let test = TestStore::sqlite().await;
    let nats = NatsServer::start();
    let mut child = eventshop(&test, Some(&nats.url()))
        .args(["projectors", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop projectors run");
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    register(&bus, "ann@example.com", domain::account::Role::Customer).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while stream_count(&nats.url(), "EVENTSHOP").await < 2 {
        assert!(Instant::now() < deadline, "projectors run relayed nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(&mut child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_serve_with_an_unreachable_nats_when_commands_arrive_then_the_api_still_serves() {
    let test = TestStore::sqlite().await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = eventshop(&test, Some(&format!("nats://127.0.0.1:{port}")))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eventshop serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("eventshop listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{base}/api/v1/accounts"))
        .json(&serde_json::json!({"email": "ann@example.com", "password": "correct horse", "name": "Ann"}))
        .send()
        .await
        .expect("POST /accounts");
    assert_eq!(answer.status(), 201);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "eventshop_relay_connected"), Some(0.0));
    assert_eq!(metric(&text, "eventshop_relay_position"), Some(0.0));
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
    kill(&mut child);
}

#[tokio::test]
async fn given_a_bad_nats_url_when_relay_run_then_it_exits_with_one_line_that_hides_the_password() {
    let test = TestStore::sqlite().await;
    let output = eventshop(&test, Some("http://user:secret@127.0.0.1:4222"))
        .args(["relay", "run"])
        .output()
        .expect("run eventshop relay run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nats_url"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
}

//! The NATS JetStream relay against a real `nats-server -js`, on both stores: every event
//! arrives exactly once (counted by `Nats-Msg-Id`), in each aggregate's version order, with its
//! headers and its public JSON body; a NATS outage in the middle loses and duplicates nothing;
//! an event without a public view stops the relay before it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use eventshop_tests::nats::{read_stream, stream_count, NatsServer, Received};
use eventshop_tests::projections::{deposit, register};
use eventshop_tests::TestStore;
use eventstore_config::{Checkpoint, CommandBus, Store, StoredEvent};
use relay::{RelayMetrics, RelayOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

const STREAM: &str = "EVENTSHOP";

/// A relay running in this process until [`Running::stop`].
struct Running {
    metrics: RelayMetrics,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), relay::RelayError>>,
}

impl Running {
    async fn stop(mut self) -> Result<(), relay::RelayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("the relay task")
    }
}

/// Patience in the pool for the writers and the relay (a small pool: the PostgreSQL server's 100
/// connections are shared by every test running), and retries for the writers' races on shared
/// accounts.
fn roomy() -> eventstore_config::Settings {
    eventstore_config::Settings {
        max_connections: 12,
        connect_timeout_secs: 30,
        command_retries: 100,
        ..Default::default()
    }
}

fn options(test: &TestStore, url: &str) -> RelayOptions {
    let mut settings = test.settings.clone();
    settings.nats_url = Some(url.to_owned());
    RelayOptions::from_settings(&settings, &test.store).expect("nats_url is set")
}

fn start(test: &TestStore, options: RelayOptions) -> Running {
    let metrics = RelayMetrics::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(relay::run(
        test.store.clone(),
        options,
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        metrics,
        stop: Some(stop),
        task,
    }
}

/// Every event of the log, in commit-safe order.
async fn whole_log(store: &Store) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut cp = Checkpoint::START;
    loop {
        let batch = store.read_after(cp, 1000).await.expect("read the log");
        let Some(last) = batch.last() else { break };
        cp = last.checkpoint();
        out.extend(batch);
    }
    out
}

async fn log_count(store: &Store) -> i64 {
    let sql = "SELECT count(*) FROM events";
    match store {
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// Waits until the stream holds `count` messages (and then a little longer, so that a
/// duplicate would have time to show). Panics after `within`.
async fn wait_for_stream(url: &str, count: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let have = stream_count(url, STREAM).await;
        if have >= count {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {have} of {count} events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers `accounts` accounts, then appends deposits from `writers` concurrent tasks (several
/// on each account, so commands race) until the log holds at least `total` events.
async fn append_concurrently(bus: &CommandBus, accounts: usize, writers: usize, total: i64) {
    let mut ids = Vec::new();
    for _ in 0..accounts {
        let email = format!("r-{}@example.com", Uuid::new_v4().simple());
        ids.push(register(bus, &email, domain::account::Role::Customer).await);
    }
    let have = log_count(bus.store()).await;
    let per_writer = ((total - have).max(0) as usize).div_ceil(writers);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (bus, ids) = (bus.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..per_writer {
                    deposit(&bus, ids[(w + i) % ids.len()], 1 + i as i64).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer");
    }
}

/// The stream holds every event of the log exactly once (by `Nats-Msg-Id`), each aggregate's
/// events in version order, with the documented headers and the public JSON view as body.
fn assert_relayed_exactly_once(log: &[StoredEvent], stream: &[Received]) {
    let mut seen = HashSet::new();
    for message in stream {
        let id = message.header("Nats-Msg-Id");
        assert!(seen.insert(id.to_owned()), "{id} is in the stream twice");
    }
    assert_eq!(stream.len(), log.len(), "one message per event");
    let by_id: HashMap<String, &StoredEvent> = log
        .iter()
        .map(|e| {
            (
                format!("{}:{}:{}", e.aggregate_type, e.aggregate_id, e.version),
                e,
            )
        })
        .collect();
    let mut last_version: HashMap<(String, String), u64> = HashMap::new();
    for message in stream {
        let event = by_id.get(message.header("Nats-Msg-Id")).unwrap_or_else(|| {
            panic!(
                "{} is not an event of the log",
                message.header("Nats-Msg-Id")
            )
        });
        assert_eq!(
            message.subject,
            format!(
                "eventshop.{}.{}.{}",
                event.aggregate_type, event.aggregate_id, event.event_type
            )
        );
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        let previous = last_version.insert(key, event.version).unwrap_or(0);
        assert_eq!(
            event.version,
            previous + 1,
            "{}/{}: version {} follows {previous} in the stream",
            event.aggregate_type,
            event.aggregate_id,
            event.version
        );
        assert_eq!(message.header("Eventshop-Event-Type"), event.event_type);
        assert_eq!(
            message.header("Eventshop-Position"),
            event.position.to_string()
        );
        assert_eq!(
            message.header("Eventshop-Version"),
            event.version.to_string()
        );
        let recorded =
            chrono::DateTime::parse_from_rfc3339(message.header("Eventshop-Recorded-At"))
                .expect("an RFC 3339 time");
        assert_eq!(recorded, event.recorded_at);
        for (header, value) in [
            ("Eventshop-Actor", &event.metadata.actor),
            ("Eventshop-Correlation-Id", &event.metadata.correlation_id),
            ("Eventshop-Causation-Id", &event.metadata.causation_id),
        ] {
            assert_eq!(message.headers.get(header), value.as_ref(), "{header}");
        }
        let public = domain::public::public_payload(&event.aggregate_type, &event.payload)
            .expect("a public view");
        assert_eq!(message.body, public, "the body is the public view");
        assert!(
            !message.body.to_string().contains("password_hash"),
            "a secret left the server"
        );
    }
}

async fn relays_5000_concurrent_events_exactly_once_in_order(test: TestStore) {
    let nats = NatsServer::start();
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let relay = start(&test, options(&test, &nats.url()));
    append_concurrently(&bus, 20, 8, 5000).await;
    let total = log_count(&test.store).await;
    assert!(total >= 5000);
    wait_for_stream(&nats.url(), total as u64, Duration::from_secs(60)).await;
    let metrics = relay.metrics.clone();
    relay.stop().await.expect("the relay stops cleanly");

    let log = whole_log(&test.store).await;
    let stream = read_stream(&nats.url(), STREAM).await;
    assert_relayed_exactly_once(&log, &stream);
    let checkpoint = projectors::sql::read_checkpoint(&test.store, relay::CHECKPOINT)
        .await
        .unwrap();
    assert_eq!(checkpoint, log.last().unwrap().checkpoint());
    assert_eq!(metrics.position.get(), checkpoint.position);
    assert!(metrics.published.get() >= total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_5000_events_from_concurrent_commands_on_postgres_when_relayed_then_each_arrives_once_in_version_order_with_headers(
) {
    relays_5000_concurrent_events_exactly_once_in_order(TestStore::postgres_with(roomy()).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_5000_events_from_concurrent_commands_on_sqlite_when_relayed_then_each_arrives_once_in_version_order_with_headers(
) {
    relays_5000_concurrent_events_exactly_once_in_order(TestStore::sqlite_with(roomy()).await)
        .await;
}

async fn survives_a_nats_outage(test: TestStore) {
    let mut nats = NatsServer::start();
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    // A backlog, so that NATS goes away while publishes are in flight.
    append_concurrently(&bus, 10, 4, 3000).await;
    let relay = start(&test, options(&test, &nats.url()));
    // Commands keep arriving, paced, through the whole outage.
    let (done, mut finish) = tokio::sync::watch::channel(false);
    let writer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            while !*finish.borrow() {
                append_concurrently(&bus, 1, 4, log_count(bus.store()).await + 20).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = finish.changed() => {}
                }
            }
        })
    };
    // Stop NATS as soon as the first events arrived, in the middle of the backlog.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_count(&nats.url(), STREAM).await == 0 {
        assert!(Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nats.stop();
    // Acknowledgements received before the stop may still move the checkpoint until the
    // unanswered ones time out (5 s); after that nothing moves until NATS is back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stopped_at = relay.metrics.position.get();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(relay.metrics.connected.get(), 0, "the relay saw NATS go");
    assert!(
        relay.metrics.publish_errors.get() > 0,
        "publishes in flight failed"
    );
    assert_eq!(
        relay.metrics.position.get(),
        stopped_at,
        "nothing is acknowledged while NATS is down"
    );
    assert!(
        relay.metrics.lag_events.get() > 0,
        "the lag shows the events waiting"
    );
    nats.restart();
    tokio::time::sleep(Duration::from_secs(1)).await;
    done.send_replace(true);
    writer.await.expect("the writer");
    let total = log_count(&test.store).await;
    wait_for_stream(&nats.url(), total as u64, Duration::from_secs(60)).await;
    let metrics = relay.metrics.clone();
    relay.stop().await.expect("the relay stops cleanly");

    assert!(metrics.position.get() > stopped_at, "the relay resumed");
    assert_eq!(metrics.connected.get(), 1);
    let log = whole_log(&test.store).await;
    let stream = read_stream(&nats.url(), STREAM).await;
    assert_relayed_exactly_once(&log, &stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_nats_stopped_for_10_seconds_on_postgres_when_it_returns_then_nothing_is_lost_or_duplicated(
) {
    survives_a_nats_outage(TestStore::postgres_with(roomy()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_nats_stopped_for_10_seconds_on_sqlite_when_it_returns_then_nothing_is_lost_or_duplicated(
) {
    survives_a_nats_outage(TestStore::sqlite().await).await;
}

async fn insert_raw(store: &Store, aggregate_id: &str, payload: &str) {
    let sql = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
               event_version, payload, metadata) VALUES ('account', $1, 1, 'AccountRegistered', '1', $2, '{}')";
    match store {
        Store::Postgres(pool) => {
            sqlx::query(&sql.replace("$2", "$2::json"))
                .bind(aggregate_id)
                .bind(payload)
                .execute(pool)
                .await
                .unwrap();
        }
        Store::Sqlite(pool) => {
            sqlx::query(&sql.replace('$', "?"))
                .bind(aggregate_id)
                .bind(payload)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn stops_before_an_event_without_public_view(test: TestStore) {
    let nats = NatsServer::start();
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let before = register(&bus, "before@example.com", domain::account::Role::Customer).await;
    // A stored payload that is no account event: it might hold anything, so it must not leave.
    insert_raw(
        &test.store,
        &Uuid::now_v7().to_string(),
        r#"{"Unknown":{"password_hash":"$argon2id$secret"}}"#,
    )
    .await;
    register(&bus, "after@example.com", domain::account::Role::Customer).await;

    let relay = start(&test, options(&test, &nats.url()));
    let ended = tokio::time::timeout(Duration::from_secs(30), relay.task)
        .await
        .expect("the relay stops by itself")
        .expect("the relay task");
    let error = ended.expect_err("an event without a public view is an error");
    assert!(
        matches!(error, relay::RelayError::NoPublicView(_)),
        "{error}"
    );

    let stream = read_stream(&nats.url(), STREAM).await;
    let ids: Vec<&str> = stream.iter().map(|m| m.header("Nats-Msg-Id")).collect();
    // Everything before it was relayed (account + wallet of `before`), nothing at or after it.
    assert_eq!(
        ids,
        [format!("account:{before}:1"), format!("wallet:{before}:1")]
    );
    assert!(!stream.iter().any(|m| m.body.to_string().contains("argon2")));
    let log = whole_log(&test.store).await;
    let checkpoint = projectors::sql::read_checkpoint(&test.store, relay::CHECKPOINT)
        .await
        .unwrap();
    assert_eq!(
        checkpoint,
        log[1].checkpoint(),
        "the checkpoint stops before it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_event_without_public_view_on_postgres_when_relayed_then_the_relay_stops_before_it(
) {
    stops_before_an_event_without_public_view(TestStore::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_event_without_public_view_on_sqlite_when_relayed_then_the_relay_stops_before_it()
{
    stops_before_an_event_without_public_view(TestStore::sqlite().await).await;
}

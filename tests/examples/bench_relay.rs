//! Benchmark: the time from an event's commit to its arrival (a) in a JetStream consumer, with
//! the relay running, and (b) at a GraphQL subscriber (`events` over `graphql-transport-ws`, the
//! query API served on 127.0.0.1:0 in this process), at a fixed offered rate of commands (open
//! loop; default 500/s) on PostgreSQL. Prints the achieved rate and both latencies' p50 / p99 /
//! max.
//!
//! `cargo run --release -p eventshop-tests --example bench_relay [-- --seconds 20 --rate 500]`
//! (a fresh database on the server of TEST_DATABASE_URL / DATABASE_URL / 127.0.0.1:5432, and a
//! `nats-server -js` of its own on a free port). The commit time is when the command returned
//! to its caller (just after the commit), so the figures are a slight underestimate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use domain::wallet::{Wallet, WalletCommand};
use domain::{Currency, Money};
use eventshop_tests::nats::NatsServer;
use eventshop_tests::projections::register;
use eventshop_tests::subscriptions::{QueryServer, WsClient};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, EventMetadata, Settings};
use futures::StreamExt;
use relay::{RelayMetrics, RelayOptions};

type Times = Arc<Mutex<HashMap<String, Instant>>>;

fn arg(name: &str, default: u64) -> anyhow::Result<u64> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let seconds = arg("--seconds", 20)?;
    let rate = arg("--rate", 500)?.max(1);
    let settings = Settings {
        max_connections: 64,
        ..Settings::default()
    };
    let test = TestStore::postgres_with(settings).await;
    let nats = NatsServer::start();
    let bus = CommandBus::new(test.store.clone(), &test.settings);
    let mut accounts = Vec::new();
    for i in 0..64 {
        let email = format!("bench-{i}@example.com");
        accounts.push(register(&bus, &email, domain::account::Role::Customer).await);
    }

    let mut relay_settings = test.settings.clone();
    relay_settings.nats_url = Some(nats.url());
    let options = RelayOptions::from_settings(&relay_settings, &test.store)
        .ok_or_else(|| anyhow::anyhow!("no relay options"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(relay::run(
        test.store.clone(),
        options,
        RelayMetrics::new(),
        async move {
            let _ = stopped.await;
        },
    ));

    // The consumer: records when each message arrives.
    let arrived: Times = Arc::default();
    let client = async_nats::connect(nats.url()).await?;
    let js = jetstream::new(client);
    let stream = loop {
        match js.get_stream("EVENTSHOP").await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let consumer_task = {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                let now = Instant::now();
                if let Some(id) = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                {
                    arrived.lock().unwrap().insert(id.as_str().to_owned(), now);
                }
            }
        })
    };

    // The GraphQL subscriber: an admin following every wallet event live.
    let admin = register(
        &bus,
        "bench-admin@example.com",
        domain::account::Role::Admin,
    )
    .await;
    bus.execute::<domain::policy_set::PolicySet>(
        &admin.to_string(),
        domain::policy_set::PolicySetCommand::Grant {
            policy: domain::Policy::parse(&format!("{admin}:*:*:*"))?,
        },
        &(),
        &EventMetadata::system(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("grant: {e}"))?;
    let authenticator = access::Authenticator::load(&test.settings, &test.store).await?;
    let token = authenticator
        .tokens()
        .issue(&admin.to_string())?
        .access_token;
    let server = QueryServer::start(test.store.clone(), authenticator).await;
    let head = test.store.head_position().await?;
    let mut subscriber = WsClient::connect(&server.endpoint, &token).await;
    subscriber
        .subscribe(
            "wallets",
            "subscription($after: Int) { events(aggregateType: \"wallet\", afterPosition: $after) \
             { aggregateId version } }",
            serde_json::json!({"after": head}),
        )
        .await;
    let delivered: Times = Arc::default();
    let subscriber_task = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            loop {
                let message = subscriber.message().await;
                let now = Instant::now();
                let event = &message["payload"]["data"]["events"];
                if let (Some(id), Some(version)) =
                    (event["aggregateId"].as_str(), event["version"].as_i64())
                {
                    delivered
                        .lock()
                        .unwrap()
                        .insert(format!("wallet:{id}:{version}"), now);
                }
            }
        })
    };

    // Warm up: the relay is connected and has relayed the registrations.
    let registrations = accounts.len() * 2;
    while arrived.lock().unwrap().len() < registrations {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("{rate} deposits/s for {seconds} s (PostgreSQL, open loop), relayed to JetStream…");
    let committed: Times = Arc::default();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut commands = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let (bus, committed, account) =
            (bus.clone(), committed.clone(), accounts[n % accounts.len()]);
        n += 1;
        commands.push(tokio::spawn(async move {
            let done = bus
                .execute::<Wallet>(
                    &account.to_string(),
                    WalletCommand::Deposit {
                        amount: Money::new(100, Currency::EUR),
                    },
                    &(),
                    &EventMetadata::for_actor(account.to_string()),
                )
                .await;
            let now = Instant::now();
            if let Ok(done) = done {
                committed
                    .lock()
                    .unwrap()
                    .insert(format!("wallet:{account}:{}", done.version), now);
            }
        }));
    }
    for command in commands {
        command.await?;
    }
    let elapsed = started.elapsed();
    let total = committed.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let have = {
            let arrived = arrived.lock().unwrap();
            let delivered = delivered.lock().unwrap();
            committed
                .lock()
                .unwrap()
                .keys()
                .filter(|k| arrived.contains_key(*k) && delivered.contains_key(*k))
                .count()
        };
        if have == total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    relay.await??;
    consumer_task.abort();
    subscriber_task.abort();
    drop(server);

    let committed = committed.lock().unwrap();
    println!(
        "commands: {total} in {:.1} s ({:.0}/s achieved)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
    );
    for (name, arrivals) in [
        ("commit → JetStream consumer", &arrived),
        ("commit → GraphQL subscriber", &delivered),
    ] {
        let arrivals = arrivals.lock().unwrap();
        let mut latencies: Vec<Duration> = committed
            .iter()
            .filter_map(|(id, at)| {
                arrivals
                    .get(id)
                    .map(|got| got.saturating_duration_since(*at))
            })
            .collect();
        latencies.sort();
        println!(
            "{name}: {} of {total} arrived; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            percentile(&latencies, 50.0).as_secs_f64() * 1e3,
            percentile(&latencies, 99.0).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

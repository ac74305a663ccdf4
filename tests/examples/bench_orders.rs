//! Benchmark: orders completed end to end (placed over REST → reserved → charged → approved by
//! the saga) at concurrency 32 on PostgreSQL, with p50/p99 time from placement to approval.
//!
//! `cargo run --release -p eventshop-tests --example bench_orders [-- SECONDS [CONCURRENCY]]
//! [--rate R --seconds S] [--segments N --processes P]`
//! (a fresh database on the server of TEST_DATABASE_URL / DATABASE_URL / 127.0.0.1:5432).
//!
//! `--rate R --seconds S`: open loop — orders are offered at R a second for S seconds whatever
//! the answers (each placement on its own task), then the achieved rate and the placement →
//! approval p50 / p99 / max are printed. `--segments N --processes P`: instead of one saga
//! worker, P workers (each with its own owner id, lock session and heartbeat, in this process)
//! run the saga and the projections split into N segments.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventshop_tests::api::TestApi;
use eventshop_tests::saga::RunningSaga;
use eventshop_tests::TestStore;
use eventstore_config::Settings;
use serde_json::json;

const DEFAULT_CONCURRENCY: usize = 32;
const PRODUCTS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let mut positional = Vec::new();
    let (mut rate, mut open_seconds, mut segments, mut processes) = (None, None, 1u32, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<String> {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--rate" => rate = Some(value()?.parse::<f64>()?),
            "--seconds" => open_seconds = Some(value()?.parse::<u64>()?),
            "--segments" => segments = value()?.parse()?,
            "--processes" => processes = value()?.parse()?,
            _ => positional.push(arg),
        }
    }
    let seconds: u64 = positional
        .first()
        .map(|s| s.parse())
        .transpose()?
        .or(open_seconds)
        .unwrap_or(20);
    let concurrency: usize = positional
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(DEFAULT_CONCURRENCY);
    let settings = Settings {
        max_connections: 64,
        segments,
        ..Settings::default()
    };
    let api = Arc::new(TestApi::start(TestStore::postgres_with(settings).await).await);
    let store = api.store().clone();
    let running = Workers::start(&store, &api.test.settings, segments, processes);

    let seller = api.register("seller").await;
    let mut products = Vec::new();
    for _ in 0..PRODUCTS {
        products.push(api.product(&seller, 250, 1_000_000).await);
    }
    let mut customers = Vec::new();
    for _ in 0..concurrency {
        let customer = api.register("customer").await;
        let answer = api
            .post(
                &format!("/api/v1/accounts/{}/deposits", customer.id),
                Some(&customer.token),
                json!({"amount": 1_000_000_000, "currency": "EUR"}),
            )
            .await;
        anyhow::ensure!(answer.status.is_success(), "deposit: {}", answer.body);
        customers.push(customer);
    }
    let products = Arc::new(products);

    if let Some(rate) = rate {
        open_loop(&api, &customers, &products, rate, seconds).await?;
        running.stop().await;
        return Ok(());
    }

    println!("placing orders at concurrency {concurrency} for {seconds} s (PostgreSQL)…");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let workers: Vec<_> = customers
        .into_iter()
        .enumerate()
        .map(|(n, customer)| {
            let (api, store, products) = (api.clone(), store.clone(), products.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut other = 0usize;
                let mut i = n;
                while Instant::now() < until {
                    let (a, b) = (&products[i % PRODUCTS], &products[(i + 7) % PRODUCTS]);
                    i += 1;
                    let answer = api
                        .post(
                            "/api/v1/orders",
                            Some(&customer.token),
                            json!({"items": [{"product_id": a, "quantity": 1},
                                             {"product_id": b, "quantity": 2}],
                                   "currency": "EUR"}),
                        )
                        .await;
                    assert!(answer.status.is_success(), "place: {}", answer.body);
                    let order = answer.body["order_id"].as_str().unwrap().to_owned();
                    // Wait for the outcome without flooding the database with polls; the
                    // latency itself is read from the log's timestamps below.
                    loop {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                        let history = store.history("order", &order).await.unwrap();
                        let last = history.last().unwrap();
                        let status = last.decode::<domain::order::OrderEvent>().unwrap();
                        match status {
                            domain::order::OrderEvent::OrderApproved => {
                                let placed = history[0].recorded_at;
                                let approved = last.recorded_at;
                                latencies.push((approved - placed).to_std().unwrap_or_default());
                                break;
                            }
                            domain::order::OrderEvent::OrderRejected { .. }
                            | domain::order::OrderEvent::OrderCanceled { .. } => {
                                other += 1;
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                (latencies, other)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut other = 0;
    for worker in workers {
        let (l, o) = worker.await?;
        latencies.extend(l);
        other += o;
    }
    let elapsed = started.elapsed().as_secs_f64();
    running.stop().await;
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN)
    };
    println!(
        "orders approved end to end: {} in {elapsed:.1} s = {:.1} orders/s (not approved: {other})",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "placement → approval (OrderPlaced to OrderApproved, recorded times): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.99),
        latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN)
    );
    Ok(())
}

/// The saga (and, with segments, the projections) running in this process.
enum Workers {
    /// One saga worker, as before segments.
    One(RunningSaga),
    /// `--segments N --processes P`: P workers over N segments.
    Shared(
        Vec<(
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        )>,
    ),
}

impl Workers {
    fn start(
        store: &eventstore_config::Store,
        settings: &Settings,
        segments: u32,
        processes: usize,
    ) -> Workers {
        if segments <= 1 && processes <= 1 {
            return Workers::One(RunningSaga::start(store, settings));
        }
        println!("{processes} workers over {segments} segments");
        let workers = (0..processes)
            .map(|n| {
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let (store, settings) = (store.clone(), settings.clone());
                let options = projectors::RunnerOptions {
                    owner: format!("bench-{n}-{}", projectors::lease::owner_id()),
                    ..projectors::RunnerOptions::for_store(&store)
                };
                let task = tokio::spawn(async move {
                    let shutdown = async move {
                        stopped.await.ok();
                    };
                    if let Err(error) = projectors::saga::run_with_projections(
                        store,
                        &settings,
                        options,
                        projectors::read_models::all(),
                        shutdown,
                    )
                    .await
                    {
                        eprintln!("worker failed: {error:#}");
                    }
                });
                (stop, task)
            })
            .collect();
        Workers::Shared(workers)
    }

    async fn stop(self) {
        match self {
            Workers::One(saga) => saga.stop().await,
            Workers::Shared(workers) => {
                for (stop, task) in workers {
                    stop.send(()).ok();
                    task.await.ok();
                }
            }
        }
    }
}

/// Offers orders at `rate` a second for `seconds` (open loop: each placement on its own task,
/// whatever the answers), then waits for their outcomes and prints the achieved rate and the
/// placement → approval p50 / p99 / max.
async fn open_loop(
    api: &Arc<TestApi>,
    customers: &[eventshop_tests::api::Account],
    products: &Arc<Vec<String>>,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<()> {
    println!("offering {rate} orders/s for {seconds} s (open loop, PostgreSQL)…");
    let started = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut placing = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let (api, customer, products) = (
            api.clone(),
            customers[n % customers.len()].clone(),
            products.clone(),
        );
        let (a, b) = (
            products[n % PRODUCTS].clone(),
            products[(n + 7) % PRODUCTS].clone(),
        );
        n += 1;
        placing.push(tokio::spawn(async move {
            let answer = api
                .post(
                    "/api/v1/orders",
                    Some(&customer.token),
                    json!({"items": [{"product_id": a, "quantity": 1},
                                     {"product_id": b, "quantity": 2}],
                           "currency": "EUR"}),
                )
                .await;
            answer.body["order_id"].as_str().map(str::to_owned)
        }));
    }
    let offered_for = started.elapsed().as_secs_f64();
    let mut orders = Vec::new();
    for task in placing {
        if let Some(order) = task.await? {
            orders.push(order);
        }
    }
    let placed_for = started.elapsed().as_secs_f64();
    let store = api.store();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies = Vec::new();
    let mut other = 0usize;
    for order in &orders {
        loop {
            let history = store.history("order", order).await?;
            let last = history.last().expect("an order event");
            match last.decode::<domain::order::OrderEvent>()? {
                domain::order::OrderEvent::OrderApproved => {
                    let placed = history[0].recorded_at;
                    latencies.push((last.recorded_at - placed).to_std().unwrap_or_default());
                    break;
                }
                domain::order::OrderEvent::OrderRejected { .. }
                | domain::order::OrderEvent::OrderCanceled { .. } => {
                    other += 1;
                    break;
                }
                _ if Instant::now() > deadline => anyhow::bail!("order {order} never settled"),
                _ => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN)
    };
    println!(
        "offered {n} orders in {offered_for:.1} s ({:.1}/s); placed {} ({:.1}/s achieved); approved {} (not approved: {other})",
        n as f64 / offered_for,
        orders.len(),
        orders.len() as f64 / placed_for,
        latencies.len()
    );
    println!(
        "placement → approval (open loop): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.99),
        latencies
            .last()
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN)
    );
    Ok(())
}

//! Benchmark: orders completed end to end (placed over REST → reserved → charged → approved by
//! the saga) at concurrency 32 on PostgreSQL, with p50/p99 time from placement to approval.
//!
//! `cargo run --release -p eventshop-tests --example bench_orders [-- SECONDS [CONCURRENCY]]`
//! (a fresh database on the server of TEST_DATABASE_URL / DATABASE_URL / 127.0.0.1:5432).

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
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let concurrency: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(DEFAULT_CONCURRENCY);
    let settings = Settings {
        max_connections: 64,
        ..Settings::default()
    };
    let api = Arc::new(TestApi::start(TestStore::postgres_with(settings).await).await);
    let store = api.store().clone();
    let saga = RunningSaga::start(&store, &api.test.settings);

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
    saga.stop().await;
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

//! Benchmark: rebuild every read model from a log of 1,000,000 events on PostgreSQL, next to the
//! same run's set-based ceiling (one `INSERT ... SELECT` over `events` into a copy of the audit
//! table), then the projection lag (command commit → read model row visible, i.e. the
//! projection's checkpoint has passed it) under a steady 500 commands/s through the CommandBus.
//!
//! ```sh
//! cargo run --release -p projectors --example bench_rebuild
//! ```
//! Uses the server of `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! creates a database `eventshop_bench_<random>` and drops it at the end. `BENCH_SECONDS` sets
//! the lag phase's length (default 20), `BENCH_RATE` its commands/s (default 500).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::wallet::{Wallet, WalletCommand};
use domain::{Currency, Money};
use eventstore_config::{CommandBus, EventMetadata, Settings, Store};
use projectors::indicatif::ProgressBar;
use projectors::{read_models, RunnerOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;

// The same allocator as the eventshop binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACCOUNTS: i64 = 10_000;
const PRODUCTS: i64 = 1_000;
const DEPOSITS: i64 = 600_000;
const RESTOCKS: i64 = 250_000;
const ORDERS: i64 = 129_000;

fn server_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{name}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = server_url();
    let name = format!(
        "eventshop_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut admin = PgConnection::connect(&server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let settings = Settings {
        database_url: with_database(&server, &name),
        max_connections: 64,
        ..Settings::default()
    };
    let result = run(&settings).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .ok();
    result
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    let store = Store::open(settings).await?;
    let Store::Postgres(pool) = &store else {
        anyhow::bail!("the benchmark needs PostgreSQL");
    };
    println!("eventshop rebuild benchmark (PostgreSQL, release build)");

    let started = Instant::now();
    generate(pool).await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE events").execute(pool).await?;
    println!(
        "generated {events} events (set-based SQL) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The ceiling: one INSERT ... SELECT over the log into a table shaped like rm_audit.
    sqlx::query("CREATE TABLE bench_ceiling (LIKE rm_audit INCLUDING ALL)")
        .execute(pool)
        .await?;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO bench_ceiling SELECT global_position, event_type, aggregate_type, aggregate_id, \
           sequence, metadata->>'actor', metadata->>'correlation_id', metadata->>'causation_id', \
           metadata->>'request_id', recorded_at FROM events",
    )
    .execute(pool)
    .await?;
    let ceiling_secs = started.elapsed().as_secs_f64();
    let ceiling = events as f64 / ceiling_secs;
    sqlx::query("DROP TABLE bench_ceiling")
        .execute(pool)
        .await?;

    // Reading alone (decoding rows and JSON payloads), for context.
    let started = Instant::now();
    let mut cp = eventstore_config::Checkpoint::START;
    let mut read = 0usize;
    loop {
        let batch = store.read_after(cp, 10_000).await?;
        let Some(last) = batch.last() else { break };
        cp = last.checkpoint();
        read += batch.len();
    }
    let read_secs = started.elapsed().as_secs_f64();

    let report = projectors::rebuild(&store, &read_models::all(), 50_000, &ProgressBar::hidden())
        .await
        .context("rebuild")?;
    let replay = report.replay.as_secs_f64();
    let total = replay + report.swap.as_secs_f64();
    let rate = report.events as f64 / replay;
    println!(
        "ceiling: INSERT ... SELECT of {events} events in {ceiling_secs:.2} s = {ceiling:.0} events/s"
    );
    println!(
        "rebuild --all (6 read models, history rows, batches of 50,000): {} events in {replay:.2} s = {rate:.0} events/s \
         (of which index builds {:.2} s; with the swap: {total:.2} s = {:.0} events/s)",
        report.events,
        report.indexes.as_secs_f64(),
        report.events as f64 / total
    );
    println!("ratio rebuild / ceiling: {:.2}", rate / ceiling);
    println!(
        "for context, reading the log alone (read_after, batches of 10,000): {read} events in {read_secs:.2} s = {:.0} events/s",
        read as f64 / read_secs
    );
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM rm_accounts) + (SELECT count(*) FROM rm_products) \
              + (SELECT count(*) FROM rm_orders) + (SELECT count(*) FROM rm_wallets) \
              + (SELECT count(*) FROM rm_wallet_transactions) + (SELECT count(*) FROM rm_audit)",
    )
    .fetch_one(pool)
    .await?;
    println!("rows written by the rebuild: {rows}");

    lag(&store, settings).await
}

/// ≥ 1,000,000 realistic events, set-based: accounts and their wallets, products, then deposits,
/// restocks and orders interleaved (each aggregate's versions increase with its position).
async fn generate(pool: &PgPool) -> anyhow::Result<()> {
    let meta = "json_build_object('actor', 'system', 'correlation_id', md5(g::text), \
                'request_id', md5(g::text))";
    let statements = [
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT 'account', md5('account' || g)::uuid::text, 1, 'AccountRegistered', '1', \
               json_build_object('type', 'AccountRegistered', 'data', json_build_object( \
                 'account_id', md5('account' || g)::uuid, 'email', 'user' || g || '@example.com', \
                 'name', 'User ' || g, 'password_hash', 'x', 'role', 'customer', 'registered_at', now())), \
               {meta} FROM generate_series(1, {ACCOUNTS}) g ORDER BY g"
        ),
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT 'wallet', md5('account' || g)::uuid::text, 1, 'WalletOpened', '1', \
               json_build_object('type', 'WalletOpened', 'data', json_build_object( \
                 'account_id', md5('account' || g)::uuid, 'currency', 'EUR')), \
               {meta} FROM generate_series(1, {ACCOUNTS}) g ORDER BY g"
        ),
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT 'product', md5('product' || g)::uuid::text, 1, 'ProductCreated', '1', \
               json_build_object('type', 'ProductCreated', 'data', json_build_object( \
                 'product_id', md5('product' || g)::uuid, 'seller', md5('account' || g)::uuid, \
                 'name', 'Product ' || g, 'description', 'A product', \
                 'price', json_build_object('amount', 1000 + g, 'currency', 'EUR'), 'stock', 100)), \
               {meta} FROM generate_series(1, {PRODUCTS}) g ORDER BY g"
        ),
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT aggregate_type, aggregate_id, sequence, event_type, '1', payload, metadata FROM ( \
               SELECT g::float8 / {DEPOSITS} AS k, 'wallet' AS aggregate_type, \
                      md5('account' || (1 + g % {ACCOUNTS}))::uuid::text AS aggregate_id, \
                      2 + g / {ACCOUNTS} AS sequence, 'FundsDeposited' AS event_type, \
                      json_build_object('type', 'FundsDeposited', 'data', json_build_object( \
                        'amount', json_build_object('amount', 100 + g % 900, 'currency', 'EUR'))) AS payload, \
                      {meta} AS metadata \
                 FROM generate_series(0, {DEPOSITS} - 1) g \
               UNION ALL \
               SELECT g::float8 / {RESTOCKS}, 'product', md5('product' || (1 + g % {PRODUCTS}))::uuid::text, \
                      2 + g / {PRODUCTS}, 'StockAdded', \
                      json_build_object('type', 'StockAdded', 'data', json_build_object('quantity', 1 + g % 10)), \
                      {meta} \
                 FROM generate_series(0, {RESTOCKS} - 1) g \
               UNION ALL \
               SELECT g::float8 / {ORDERS}, 'order', md5('order' || g)::uuid::text, 1, 'OrderPlaced', \
                      json_build_object('type', 'OrderPlaced', 'data', json_build_object( \
                        'order_id', md5('order' || g)::uuid, \
                        'account_id', md5('account' || (1 + g % {ACCOUNTS}))::uuid, \
                        'items', json_build_array(json_build_object( \
                           'product_id', md5('product' || (1 + g % {PRODUCTS}))::uuid, 'quantity', 1 + g % 3, \
                           'unit_price', json_build_object('amount', 1000 + (1 + g % {PRODUCTS}), 'currency', 'EUR'))), \
                        'currency', 'EUR', \
                        'total', json_build_object('amount', (1 + g % 3) * (1000 + (1 + g % {PRODUCTS})), 'currency', 'EUR'), \
                        'placed_at', now())), \
                      {meta} \
                 FROM generate_series(0, {ORDERS} - 1) g \
             ) mixed ORDER BY k"
        ),
    ];
    for sql in statements {
        sqlx::query(&sql).execute(pool).await?;
    }
    Ok(())
}

/// Projection lag under a steady command rate: deposits through the CommandBus; a deposit's
/// lag is the time from its command returning (committed) until both the wallets and the
/// audit projections have committed it (their rows carry its position).
async fn lag(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let Store::Postgres(pool) = store else {
        unreachable!()
    };
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(projectors::run_with(
        store.clone(),
        RunnerOptions::for_store(store),
        read_models::all(),
        async move {
            stopped.await.ok();
        },
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let wallets: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'WalletOpened' ORDER BY aggregate_id",
    )
    .fetch_all(pool)
    .await?;
    let wallets = Arc::new(wallets);
    let bus = CommandBus::new(store.clone(), settings);
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<(i64, Instant)>();
    let generator = {
        let wallets = wallets.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            let mut i = 0usize;
            while Instant::now() < end {
                ticker.tick().await;
                let bus = bus.clone();
                let wallet = wallets[(i * 7919) % wallets.len()].clone();
                let sent = sent_tx.clone();
                tasks.push(tokio::spawn(async move {
                    let done = bus
                        .execute::<Wallet>(
                            &wallet,
                            WalletCommand::Deposit {
                                amount: Money::new(100, Currency::EUR),
                            },
                            &(),
                            &EventMetadata::system(),
                        )
                        .await;
                    if let Ok(committed) = done {
                        if let Some(position) = committed.position {
                            sent.send((position, Instant::now())).ok();
                        }
                    }
                }));
                i += 1;
            }
            for task in tasks {
                task.await.ok();
            }
            i
        })
    };

    let started = Instant::now();
    let mut pending: HashMap<i64, Instant> = HashMap::new();
    let mut lags: Vec<Duration> = Vec::new();
    let mut generating = true;
    let mut issued = 0usize;
    let mut generator = Some(generator);
    loop {
        while let Ok((position, at)) = sent_rx.try_recv() {
            pending.insert(position, at);
        }
        if !pending.is_empty() {
            let positions: Vec<i64> = pending.keys().copied().collect();
            let seen: Vec<i64> = sqlx::query_scalar(
                "SELECT w.global_position FROM rm_wallet_transactions w \
                   JOIN rm_audit a ON a.global_position = w.global_position \
                  WHERE w.global_position = ANY($1)",
            )
            .bind(&positions)
            .fetch_all(pool)
            .await?;
            let now = Instant::now();
            for position in seen {
                if let Some(at) = pending.remove(&position) {
                    lags.push(now.saturating_duration_since(at));
                }
            }
        }
        if generating && generator.as_ref().is_some_and(|g| g.is_finished()) {
            issued = generator.take().expect("generator").await?;
            generating = false;
        }
        if !generating && pending.is_empty() && sent_rx.is_empty() {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(seconds + 60),
            "projections did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.send(()).ok();
    runner.await??;
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "lag under load: {} deposits issued at a target {rate}/s over {seconds} s ({:.0}/s achieved, {} committed)",
        issued,
        issued as f64 / seconds as f64,
        lags.len()
    );
    println!(
        "projection lag (commit -> wallets and audit rows visible): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (phase {elapsed:.1} s)",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lags.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}

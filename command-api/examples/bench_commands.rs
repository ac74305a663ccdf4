//! Benchmark: `POST` commands over HTTP against PostgreSQL versus raw event INSERTs.
//!
//! In one run, against one fresh database (created and dropped here):
//! 1. the command API is served on 127.0.0.1:0 and `CONCURRENCY` clients (default 32) each
//!    deposit into their own wallet (`POST /api/v1/accounts/{id}/deposits`) for `BENCH_SECS`
//!    (default 20) seconds;
//! 2. `CONCURRENCY` connections each INSERT single events into the same `events` table for the
//!    same time.
//!
//! Prints commands/s, p50/p99 command latency, raw inserts/s and their ratio.
//!
//! ```sh
//! cargo run --release -p command-api --example bench_commands
//! ```
//! The server is `TEST_DATABASE_URL`, else `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::Context;
use eventstore_config::{Settings, Store};
use serde_json::json;
use sqlx::Connection;

// The same allocator as the eventshop binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn server_url() -> String {
    let url = std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    with_database(&url, "postgres")
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = env_number("BENCH_SECS", 20);
    let concurrency = env_number("CONCURRENCY", 32) as usize;
    let server = server_url();
    let name = format!("eventshop_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let result = run(&with_database(&server, &name), secs, concurrency).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(url: &str, secs: u64, concurrency: usize) -> anyhow::Result<()> {
    let settings = Settings {
        database_url: url.to_owned(),
        max_connections: (concurrency as u32) + 8,
        ..Settings::default()
    };
    let store = Store::open(&settings).await?;
    let app = command_api::build(settings.clone(), store.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(command_api::serve(listener, app.router(), async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    println!(
        "eventshop command benchmark: PostgreSQL, concurrency {concurrency}, {secs} s per phase"
    );
    // One account per client, so clients do not contend on one wallet.
    let mut accounts = Vec::new();
    for i in 0..concurrency {
        let answer: serde_json::Value = client
            .post(format!("{base}/api/v1/accounts"))
            .json(&json!({"email": format!("bench{i}@example.com"), "password": "bench password", "name": "Bench"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        accounts.push((
            answer["account_id"]
                .as_str()
                .context("account_id")?
                .to_owned(),
            answer["access_token"]
                .as_str()
                .context("access_token")?
                .to_owned(),
        ));
    }

    // Phase 1: commands over HTTP.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (id, token) in accounts {
        let client = client.clone();
        let url = format!("{base}/api/v1/accounts/{id}/deposits");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"amount": 100, "currency": "EUR"}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 201 => latencies.push(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    let command_secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let commands_per_sec = latencies.len() as f64 / command_secs;

    // Phase 2: raw single-row INSERTs from as many connections.
    let Store::Postgres(pool) = &store else {
        anyhow::bail!("the benchmark needs PostgreSQL");
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut inserters = Vec::new();
    for worker in 0..concurrency {
        let pool = pool.clone();
        inserters.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let aggregate_id = format!("raw-{worker}");
            let mut sequence: i64 = 0;
            while Instant::now() < deadline {
                sequence += 1;
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind("bench")
                .bind(&aggregate_id)
                .bind(sequence)
                .bind("FundsDeposited")
                .bind("1")
                .bind(json!({"type": "FundsDeposited", "data": {"amount": {"amount": 100, "currency": "EUR"}}}))
                .bind(json!({"actor": "bench"}))
                .execute(&mut *conn)
                .await?;
            }
            anyhow::Ok(sequence)
        }));
    }
    let mut inserts = 0i64;
    for inserter in inserters {
        inserts += inserter.await??;
    }
    let insert_secs = started.elapsed().as_secs_f64();
    let inserts_per_sec = inserts as f64 / insert_secs;

    println!(
        "commands:    {} ok, {failures} failed in {command_secs:.1} s = {commands_per_sec:.0} commands/s",
        latencies.len()
    );
    println!(
        "latency:     p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    println!("raw inserts: {inserts} in {insert_secs:.1} s = {inserts_per_sec:.0} inserts/s");
    println!(
        "ratio:       commands/s / raw inserts/s = {:.2} (target >= 0.5)",
        commands_per_sec / inserts_per_sec
    );

    let _ = stop_tx.send(());
    let _ = server.await;
    drop(app);
    store.close().await;
    Ok(())
}

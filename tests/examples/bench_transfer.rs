//! Benchmark: `events import` and `events export` of N events (default 1,000,000) on
//! PostgreSQL, printing events/s for each.
//!
//! `cargo run --release -p eventshop-tests --example bench_transfer [-- N]` (fresh databases on
//! the server of TEST_DATABASE_URL / DATABASE_URL / 127.0.0.1:5432).
//!
//! The file is made from a real log: a few accounts, products and orders written through the
//! command bus and exported; its deposit events are then repeated over many wallets (each
//! opened by a copied `WalletOpened`) until the file holds N events. That file is imported into
//! an empty database (timed), and the imported log is exported again (timed).

use std::time::Instant;

use domain::account::Role;
use eventshop_tests::big_log;
use eventshop_tests::projections::{deposit, register, run_script};
use eventshop_tests::TestStore;
use eventstore_config::transfer;
use eventstore_config::CommandBus;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);

    // A real log to copy from.
    let seed = TestStore::postgres().await;
    let bus = CommandBus::new(seed.store.clone(), &seed.settings);
    run_script(&bus).await;
    let wallet = register(&bus, "bench.seed@example.com", Role::Customer).await;
    deposit(&bus, wallet, 1_000).await;
    let mut exported = Vec::new();
    transfer::export_full(&seed.store, 0, &mut exported, |_| {}).await?;
    let file = big_log::grow(&exported, n, |_| {})?;
    drop(seed);

    let target = TestStore::postgres().await;
    println!("importing {n} events into PostgreSQL…");
    let started = Instant::now();
    let imported = transfer::import(&target.store, &file[..], |_| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "import: {} events in {secs:.1} s = {:.0} events/s",
        imported.events,
        imported.events as f64 / secs
    );

    let started = Instant::now();
    let mut out = std::io::sink();
    let mut writer = std::io::BufWriter::new(&mut out);
    let done = transfer::export_full(&target.store, 0, &mut writer, |_| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "export: {} events in {secs:.1} s = {:.0} events/s",
        done.events,
        done.events as f64 / secs
    );
    Ok(())
}

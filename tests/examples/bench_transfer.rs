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
use eventshop_tests::projections::{deposit, register, run_script};
use eventshop_tests::TestStore;
use eventstore_config::transfer::{self, End, ExportedEvent, Line};
use eventstore_config::CommandBus;

/// Deposits per copied wallet.
const DEPOSITS_PER_WALLET: u64 = 99;

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
    let file = grow(&exported, n)?;
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

/// `seed` (an export) with copies of its seed wallet's events over fresh wallets appended
/// until it holds `n` events.
fn grow(seed: &[u8], n: u64) -> anyhow::Result<Vec<u8>> {
    let lines: Vec<Line> = seed
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<_, _>>()?;
    let events: Vec<&ExportedEvent> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    let opened = events
        .iter()
        .rfind(|e| e.event_type == "WalletOpened")
        .ok_or_else(|| anyhow::anyhow!("no WalletOpened in the seed"))?;
    let deposited = events
        .iter()
        .rfind(|e| e.event_type == "FundsDeposited")
        .ok_or_else(|| anyhow::anyhow!("no FundsDeposited in the seed"))?;
    let mut out = Vec::with_capacity(n as usize * 600);
    let mut count = 0u64;
    let push = |line: &Line, out: &mut Vec<u8>| -> anyhow::Result<()> {
        serde_json::to_writer(&mut *out, line)?;
        out.push(b'\n');
        Ok(())
    };
    let mut keys = Vec::new();
    for line in &lines {
        match line {
            Line::Header(_) => push(line, &mut out)?,
            Line::Event(_) if count < n => {
                push(line, &mut out)?;
                count += 1;
            }
            Line::Key(_) => keys.push(line.clone()),
            _ => {}
        }
    }
    while count < n {
        let id = uuid::Uuid::now_v7().to_string();
        let mut version = 0u64;
        for template in std::iter::once(*opened).chain(std::iter::repeat_n(
            *deposited,
            DEPOSITS_PER_WALLET as usize,
        )) {
            if count == n {
                break;
            }
            version += 1;
            let mut event = template.clone();
            event.aggregate_id = id.clone();
            event.version = version;
            event.recorded_at = chrono::Utc::now();
            if event.event_type == "WalletOpened" {
                if let Some(data) = event.payload.pointer_mut("/data/account_id") {
                    *data = serde_json::Value::String(id.clone());
                }
            }
            push(&Line::Event(event), &mut out)?;
            count += 1;
        }
    }
    for key in &keys {
        push(key, &mut out)?;
    }
    push(
        &Line::End(End {
            events: count,
            keys: keys.len() as u64,
        }),
        &mut out,
    )?;
    Ok(out)
}

//! `eventshop events tail|export|import`: print the global log in commit-safe order, write it
//! to a JSON-lines file, or load such a file into an empty store (then rebuild the read
//! models). The work is `eventstore_config::transfer`'s; this module parses, calls and prints.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use eventstore_config::{transfer, Store, StoredEvent};
use projectors::indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the event log: position, time, aggregate, version, event type, actor (payloads in
    /// their public view: no password hashes or token ids).
    Tail {
        /// Keep waiting for new events (Ctrl-C to stop).
        #[arg(long, short)]
        follow: bool,
        /// Start after this global position (0: from the beginning).
        #[arg(long, default_value_t = 0, value_name = "POSITION")]
        after: i64,
        /// Stop after printing this many events.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON object per line (with payload and metadata) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the whole log (or the events after a position) to stdout as JSON lines. By
    /// default each payload is the event's public view (no password hashes, token ids or
    /// keys). With --full: a backup that `events import` restores (`eventshop events export
    /// --full > log.jsonl`): payloads as stored, personal fields sealed, with their keys
    /// (erased accounts have none); keep that file as safe as a database dump.
    Export {
        /// Only the events after this global position (0: the whole log; a partial export
        /// cannot be imported).
        #[arg(long, default_value_t = 0, value_name = "POSITION")]
        after: i64,
        /// The full, restorable form (stored payloads, password hashes and personal-data
        /// keys) instead of the public views.
        #[arg(long)]
        full: bool,
    },
    /// Load a full export (`events export --full`) from stdin into this EMPTY store (either
    /// kind) in one transaction, then rebuild every read model: `eventshop events import <
    /// log.jsonl`. A broken file or a
    /// store that already holds events is refused, and nothing changes.
    Import {
        /// Events per transaction of the read-model rebuild that follows.
        #[arg(long, default_value_t = 5000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
    },
}

const PAGE: u32 = 500;
const POLL: Duration = Duration::from_millis(500);
/// How long `events tail` (without `--follow`) waits for the events committed before it started.
const HEAD_PATIENCE: Duration = Duration::from_secs(10);

pub async fn run(store: &Store, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Tail {
            follow,
            after,
            limit,
            json,
        } => tail(store, follow, after, limit, json).await,
        EventsCommand::Export { after, full } => export(store, after, full).await,
        EventsCommand::Import { batch } => import(store, batch).await,
    }
}

async fn export(store: &Store, after: i64, full: bool) -> anyhow::Result<()> {
    anyhow::ensure!(after >= 0, "--after must be 0 or a positive position");
    let bar = progress_bar("{bar:40} {pos}/{len} events  {per_sec}  ETA {eta}");
    bar.set_length(transfer::estimate(store, after).await.context("export")?);
    let started = Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let progress = |n| bar.set_position(n);
    let exported = if full {
        transfer::export_full(store, after, &mut out, progress).await
    } else {
        transfer::export_public(store, after, &mut out, progress).await
    }
    .context("export")?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "exported {} events and {} personal-data keys in {secs:.1} s ({:.0} events/s)",
        exported.events,
        exported.keys,
        exported.events as f64 / secs
    );
    Ok(())
}

async fn import(store: &Store, batch: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        !std::io::stdin().is_terminal(),
        "import reads an export from stdin: eventshop events import < log.jsonl"
    );
    let bar = progress_bar("{spinner} {pos} events  {per_sec}  {elapsed}");
    let started = Instant::now();
    let input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let imported = transfer::import(store, input, |n| bar.set_position(n))
        .await
        .context("import")?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "imported {} events, {} personal-data keys and {} e-mail claims in {secs:.1} s ({:.0} events/s)",
        imported.events,
        imported.keys,
        imported.claims,
        imported.events as f64 / secs
    );
    let projections = projectors::read_models::all();
    let bar = progress_bar("{bar:40} {pos}/{len} events  {per_sec}  ETA {eta}");
    let report = projectors::rebuild(store, &projections, batch, &bar)
        .await
        .context("import: rebuilding the read models")?;
    bar.finish_and_clear();
    println!(
        "rebuilt {} read models from {} events in {:.1} s; the order saga catches up when \
         `serve` or `projectors run` starts",
        projections.len(),
        report.events,
        report.replay.as_secs_f64() + report.swap.as_secs_f64()
    );
    Ok(())
}

/// A progress bar on stderr when it is a terminal (hidden otherwise).
fn progress_bar(template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

async fn tail(
    store: &Store,
    follow: bool,
    after: i64,
    limit: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(after >= 0, "--after must be 0 or a positive position");
    let mut checkpoint = store
        .checkpoint_at(after)
        .await
        .context("finding the start position")?;
    // Without --follow, the tail ends at the log's head as of now. The commit-safe reader holds
    // back events behind a transaction still running anywhere on the server; wait (a bounded
    // time) until it lets through everything committed before the command started.
    let head = store
        .head_position()
        .await
        .context("reading the log's head")?;
    let patience = tokio::time::Instant::now() + HEAD_PATIENCE;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    loop {
        let page = store
            .read_after(checkpoint, PAGE)
            .await
            .context("reading the event log")?;
        let mut out = stdout.lock();
        for event in &page {
            if limit.is_some_and(|limit| printed >= limit) {
                return Ok(());
            }
            print_event(&mut out, event, json).context("writing to stdout")?;
            printed += 1;
            checkpoint = event.checkpoint();
        }
        out.flush().ok();
        drop(out);
        if limit.is_some_and(|limit| printed >= limit) {
            return Ok(());
        }
        if page.len() < PAGE as usize {
            if !follow {
                if checkpoint.position >= head || tokio::time::Instant::now() >= patience {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

/// The event's public view (`domain::public`, upcast): no password hash, no token id. A payload
/// that does not decode (or is of a schema version this binary does not know) is never printed
/// as stored: it shows as `null`, and the reason goes to the log.
pub(crate) fn public_payload(event: &StoredEvent) -> serde_json::Value {
    event.public_view().unwrap_or_else(|error| {
        tracing::warn!(position = event.position, %error, "event payload has no public view");
        serde_json::Value::Null
    })
}

fn print_event(out: &mut impl Write, event: &StoredEvent, json: bool) -> std::io::Result<()> {
    if json {
        let line = serde_json::json!({
            "position": event.position,
            "recorded_at": event.recorded_at,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "version": event.version,
            "event_type": event.event_type,
            "event_version": event.event_version,
            "metadata": event.metadata,
            "payload": public_payload(event),
        });
        writeln!(out, "{line}")
    } else {
        writeln!(
            out,
            "{:>8}  {}  {}/{} v{}  {}  actor={}",
            event.position,
            event.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            event.aggregate_type,
            event.aggregate_id,
            event.version,
            event.event_type,
            event.metadata.actor.as_deref().unwrap_or("-"),
        )
    }
}

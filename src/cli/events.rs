//! `eventshop events tail`: prints the global log in commit-safe order.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use eventstore_config::{Store, StoredEvent};

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
}

const PAGE: u32 = 500;
const POLL: Duration = Duration::from_millis(500);
/// How long `events tail` (without `--follow`) waits for the events committed before it started.
const HEAD_PATIENCE: Duration = Duration::from_secs(10);

pub async fn run(store: &Store, command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::Tail {
        follow,
        after,
        limit,
        json,
    } = command;
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

/// The event's public view (`domain::public`): no password hash, no token id. A payload that does
/// not decode is never printed as stored: it shows as `null`, and the reason goes to the log.
pub(crate) fn public_payload(event: &StoredEvent) -> serde_json::Value {
    domain::public::public_payload(&event.aggregate_type, &event.payload).unwrap_or_else(|error| {
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

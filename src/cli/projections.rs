//! `eventshop projectors run` (the projector workers, under leases) and
//! `eventshop projections list|status|rebuild|dead-letters|retry|skip` (inspect and
//! blue/green-rebuild read models; manage parked events of the projections and the saga).

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use eventstore_config::{Settings, Store};
use projectors::indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use projectors::{dead_letters, read_models, Projection, ProjectionStatus, RunnerOptions};

#[derive(Debug, Subcommand)]
pub enum ProjectorsCommand {
    /// Run every projection's worker until Ctrl-C / SIGTERM. Several processes may run: each
    /// projection is owned by one of them at a time and taken over if its owner dies.
    Run {
        /// Events per batch (one transaction each); default 1000 (PostgreSQL) or 500 (SQLite).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// One line per projection (name, version, position, lag, state, owner), then one per
    /// segment of each projection and of the saga (owner, position, lag).
    List {
        /// One JSON object per line and segment (`name`, `segment`, `segments`, `owner`,
        /// `position`, `lag`, and the projection's other fields) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// As `list`, plus the last error, parked events and skips (of one projection, the saga
    /// `saga:orders`, or all projections).
    Status {
        /// A projection name, or `saga:orders` (default: all projections).
        name: Option<String>,
    },
    /// Replay the whole log into fresh tables and swap them in atomically (blue/green).
    Rebuild(RebuildArgs),
    /// Parked events (of one projection or the saga `saga:orders`, or all): projection,
    /// position, event type, error, attempts, parked at.
    #[command(name = "dead-letters")]
    DeadLetters {
        /// A projection name, or `saga:orders` (default: all).
        name: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-apply the parked events of NAME (in position order) with the current code; on
    /// success they are removed and NAME resumes.
    Retry {
        /// A projection name, or `saga:orders`.
        name: String,
    },
    /// Skip one parked event of NAME for good; the skip and its reason are recorded in the log
    /// (audited) and shown by `status`.
    Skip {
        /// A projection name, or `saga:orders`.
        name: String,
        /// The parked event's global position (see `dead-letters`).
        position: i64,
        /// Why it is skipped (required).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The projection to rebuild (see `projections list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,
    /// Rebuild every projection (one pass over the log).
    #[arg(long)]
    all: bool,
    /// Events per transaction.
    #[arg(long, default_value_t = 5000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
}

pub async fn run_projectors(
    store: Store,
    settings: &Settings,
    command: ProjectorsCommand,
) -> anyhow::Result<()> {
    let ProjectorsCommand::Run { batch } = command;
    let mut options = RunnerOptions::for_store(&store);
    if let Some(batch) = batch {
        options.batch = batch;
    }
    eprintln!(
        "projectors running as {} ({} projections); Ctrl-C stops",
        options.owner,
        read_models::names().len()
    );
    // The order saga (and its payment deadlines) runs beside the projections, and the NATS
    // relay too when `nats_url` is set.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay =
        super::relay::spawn_if_configured(&store, settings, relay::RelayMetrics::new(), stopped);
    let result = projectors::saga::run_with_projections(
        store,
        settings,
        options,
        read_models::all(),
        async move {
            command_api::shutdown_signal().await;
            let _ = stop.send(true);
        },
    )
    .await;
    if let Some(relay) = relay {
        relay.await.ok();
    }
    result
}

fn find(name: &str) -> anyhow::Result<Arc<dyn Projection>> {
    read_models::by_name(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown projection '{name}' (known: {})",
            read_models::names().join(", ")
        )
    })
}

pub async fn run(
    store: &Store,
    settings: &Settings,
    command: ProjectionsCommand,
) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::List { json } => {
            let all = projectors::statuses(store)
                .await
                .context("reading projection status")?;
            // Every segment of every projection, then of the order saga.
            let mut segments = Vec::new();
            for name in all
                .iter()
                .map(|s| s.name.as_str())
                .chain([projectors::saga::NAME])
            {
                segments.push(
                    projectors::status::segment_statuses(store, name)
                        .await
                        .context("reading segment status")?,
                );
            }
            if json {
                // One object per line and segment: the projection's fields with the segment's
                // owner, position and lag.
                for (i, rows) in segments.iter().enumerate() {
                    for row in rows {
                        let mut object = match all.get(i) {
                            Some(status) => status_json(status),
                            None => serde_json::json!({ "name": row.name }),
                        };
                        object["segment"] = row.segment.into();
                        object["segments"] = row.segments.into();
                        object["owner"] = row.owner.clone().into();
                        object["position"] = row.position.into();
                        object["lag"] = row.lag_events.into();
                        object["lag_events"] = row.lag_events.into();
                        object["lag_seconds"] = row.lag_seconds.into();
                        println!("{object}");
                    }
                }
            } else {
                print_table(&all);
                println!();
                print_segments(segments.iter().flatten());
            }
            Ok(())
        }
        ProjectionsCommand::DeadLetters { name, json } => {
            let rows = dead_letters::list(store, name.as_deref()).await?;
            if json {
                for row in &rows {
                    println!(
                        "{}",
                        serde_json::json!({
                            "projection": row.projection,
                            "position": row.global_position,
                            "event_type": row.event_type,
                            "aggregate_type": row.aggregate_type,
                            "aggregate_id": row.aggregate_id,
                            "error": row.error,
                            "attempts": row.attempts,
                            "subject": row.subject,
                            "parked_at": row.parked_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        })
                    );
                }
                return Ok(());
            }
            println!(
                "{:<12} {:>10} {:<24} {:>8}  {:<27} ERROR",
                "PROJECTION", "POSITION", "EVENT TYPE", "ATTEMPTS", "PARKED AT"
            );
            for row in &rows {
                println!(
                    "{:<12} {:>10} {:<24} {:>8}  {:<27} {}",
                    row.projection,
                    row.global_position,
                    row.event_type,
                    row.attempts,
                    row.parked_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    one_line(&row.error)
                );
            }
            Ok(())
        }
        ProjectionsCommand::Retry { name } => {
            let retried = dead_letters::retry(store, settings, &name)
                .await
                .map_err(|e| anyhow::anyhow!(one_line(&e.to_string())))?;
            let positions: Vec<String> = retried.positions.iter().map(i64::to_string).collect();
            println!(
                "{name}: retried position(s) {}; resumed",
                positions.join(", ")
            );
            Ok(())
        }
        ProjectionsCommand::Skip {
            name,
            position,
            reason,
        } => {
            dead_letters::skip(store, settings, &name, position, &reason, &cli_actor())
                .await
                .map_err(|e| anyhow::anyhow!(one_line(&e.to_string())))?;
            println!("{name}: skipped position {position} ({reason})");
            Ok(())
        }
        ProjectionsCommand::Status { name } => {
            let all = match name {
                // The saga has a checkpoint, a lease, dead letters and skips too (no version).
                Some(name) if name == projectors::saga::NAME => {
                    vec![projectors::status::status(store, projectors::saga::NAME, 0)
                        .await
                        .context("reading the saga's status")?]
                }
                Some(name) => {
                    let projection = find(&name)?;
                    vec![
                        projectors::status::status(store, projection.name(), projection.version())
                            .await
                            .context("reading projection status")?,
                    ]
                }
                None => projectors::statuses(store)
                    .await
                    .context("reading projection status")?,
            };
            print_table(&all);
            for status in &all {
                if status.dead_letters > 0 || status.last_error.is_some() {
                    println!(
                        "{}: {} parked event(s); last error: {}",
                        status.name,
                        status.dead_letters,
                        status.last_error.as_deref().unwrap_or("-")
                    );
                }
                for skip in &status.skips {
                    println!(
                        "{}: skipped position {} ({}) by {} at {}: {}",
                        status.name,
                        skip.position,
                        skip.event_type,
                        skip.actor.as_deref().unwrap_or("-"),
                        skip.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        one_line(&skip.reason)
                    );
                }
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild(args) => {
            let projections = if args.all {
                read_models::all()
            } else {
                vec![find(args.name.as_deref().unwrap_or_default())?]
            };
            let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
            let progress = progress_bar();
            let report = projectors::rebuild(store, &projections, args.batch, &progress)
                .await
                .with_context(|| format!("rebuilding {}", names.join(", ")))?;
            let secs = report.replay.as_secs_f64().max(1e-9);
            println!(
                "rebuilt {} from {} events in {:.1} s ({:.0} events/s), swapped in {:.2} s",
                names.join(", "),
                report.events,
                secs,
                report.events as f64 / secs,
                report.swap.as_secs_f64()
            );
            for (name, cp) in report.checkpoints {
                println!("  {name}: position {}", cp.position);
            }
            Ok(())
        }
    }
}

/// Who runs this command line, as recorded with a skip: `cli:<login>`.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// `text` on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One projection's status as a JSON object (`projections list --json`).
fn status_json(s: &ProjectionStatus) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "version": s.version,
        "built_version": s.built_version,
        "position": s.position,
        "lag_events": s.lag_events,
        "lag_seconds": s.lag_seconds,
        "state": s.state,
        "state_text": s.state_text(),
        "rebuild_percent": s.rebuild_percent,
        "owner": s.owner,
        "last_error": s.last_error,
        "dead_letters": s.dead_letters,
        "skips": s.skips.iter().map(|k| serde_json::json!({
            "position": k.position,
            "event_type": k.event_type,
            "reason": k.reason,
            "actor": k.actor,
            "at": k.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })).collect::<Vec<_>>(),
    })
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn print_segments<'a>(rows: impl Iterator<Item = &'a projectors::status::SegmentStatus>) {
    println!(
        "{:<12} {:>8} {:>12} {:>10} {:>9}  OWNER",
        "FOLLOWER", "SEGMENT", "POSITION", "LAG", "LAG (s)"
    );
    for s in rows {
        println!(
            "{:<12} {:>8} {:>12} {:>10} {:>9}  {}",
            s.name,
            format!("{}/{}", s.segment, s.segments),
            s.position,
            s.lag_events,
            s.lag_seconds
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into()),
            s.owner.as_deref().unwrap_or("-")
        );
    }
}

fn print_table(all: &[ProjectionStatus]) {
    println!(
        "{:<10} {:>7} {:>12} {:>10} {:>9}  {:<26} OWNER",
        "NAME", "VERSION", "POSITION", "LAG", "LAG (s)", "STATE"
    );
    for s in all {
        println!(
            "{:<10} {:>7} {:>12} {:>10} {:>9}  {:<26} {}",
            s.name,
            s.version,
            s.position,
            s.lag_events,
            s.lag_seconds
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into()),
            s.state_text(),
            s.owner.as_deref().unwrap_or("-")
        );
    }
}

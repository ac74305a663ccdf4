//! `eventshop projectors run` (the projector workers, under leases) and
//! `eventshop projections list|status|rebuild` (inspect and blue/green-rebuild read models).

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use eventstore_config::{Settings, Store};
use projectors::indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use projectors::{read_models, Projection, ProjectionStatus, RunnerOptions};

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
    /// One line per projection: name, version, position, lag, state, owner.
    List,
    /// As `list`, plus the last error and parked events (of one projection, or all).
    Status {
        /// A projection name (default: all).
        name: Option<String>,
    },
    /// Replay the whole log into fresh tables and swap them in atomically (blue/green).
    Rebuild(RebuildArgs),
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

pub async fn run(store: &Store, command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::List => {
            let all = projectors::statuses(store)
                .await
                .context("reading projection status")?;
            print_table(&all);
            Ok(())
        }
        ProjectionsCommand::Status { name } => {
            let all = match name {
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

fn print_table(all: &[ProjectionStatus]) {
    println!(
        "{:<10} {:>7} {:>12} {:>10} {:>9}  {:<10} OWNER",
        "NAME", "VERSION", "POSITION", "LAG", "LAG (s)", "STATE"
    );
    for s in all {
        println!(
            "{:<10} {:>7} {:>12} {:>10} {:>9}  {:<10} {}",
            s.name,
            s.version,
            s.position,
            s.lag_events,
            s.lag_seconds
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into()),
            s.state,
            s.owner.as_deref().unwrap_or("-")
        );
    }
}

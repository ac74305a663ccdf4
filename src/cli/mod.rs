//! The subcommands of `eventshop` and what each one runs.

mod events;

use anyhow::Context;
use clap::{Parser, Subcommand};
use eventstore_config::{Settings, Store};
use tracing_subscriber::EnvFilter;

/// eventshop — an event-sourced commerce backend: REST commands, an append-only event log,
/// projected read models and a GraphQL API with temporal queries.
///
/// Configuration comes from ./eventshop.toml (or the file in EVENTSHOP_CONFIG), then EVENTSHOP_*
/// variables; DATABASE_URL (postgres://… or sqlite://…) picks the store. With nothing set, the
/// embedded SQLite database sqlite://./data/eventshop.db is used.
#[derive(Debug, Parser)]
#[command(name = "eventshop", version, about, long_about)]
pub struct Cli {
    /// Log filter (tracing's EnvFilter syntax, e.g. `info` or `eventstore_config=debug`);
    /// RUST_LOG is used when this is not given.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or upgrade the database schema (events, snapshots, checkpoints, claims).
    Migrate,
    /// Read the global event log.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
}

/// Sends logs to stderr, `warn` and above unless `--log` or RUST_LOG say otherwise.
pub fn init_tracing(cli: &Cli) {
    let filter = cli
        .log
        .as_deref()
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load().context("loading settings")?;
    match cli.command {
        Command::Migrate => migrate(&settings).await,
        Command::Events { command } => {
            let store = open(&settings).await?;
            events::run(&store, command).await
        }
    }
}

/// Connects to the configured store and brings its schema up to date.
pub async fn open(settings: &Settings) -> anyhow::Result<Store> {
    Ok(Store::open(settings).await?)
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    if Store::create_database_if_missing(settings).await? {
        println!(
            "created database {}",
            eventstore_config::store::redact(&settings.database_url)
        );
    }
    let store = open(settings).await?;
    println!(
        "{} database at {} is up to date",
        store.kind_name(),
        eventstore_config::store::redact(&settings.database_url)
    );
    store.close().await;
    Ok(())
}

//! The subcommands of `eventshop` and what each one runs.

mod accounts;
mod events;
mod orders;
mod projections;
mod query;
mod relay;
mod serve;

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
    /// Run everything in one process: the REST API (and the GraphQL API and projectors once
    /// they are wired in). Stops cleanly on Ctrl-C / SIGTERM.
    Serve(serve::BindArgs),
    /// Run the REST command API alone.
    #[command(name = "command-api")]
    WriteApi(serve::BindArgs),
    /// Account administration (create-admin).
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// Run the GraphQL query API alone (/graphql; GraphiQL on GET).
    QueryApi(query::QueryApiArgs),
    /// Who did what when: the audit index as a table or JSON lines (--json).
    Audit(query::AuditArgs),
    /// Create or upgrade the database schema (events, snapshots, checkpoints, claims).
    Migrate,
    /// Read the global event log.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Follow one order through the saga.
    Orders {
        #[command(subcommand)]
        command: orders::OrdersCommand,
    },
    /// Run the projector workers (read models) in this process.
    Projectors {
        #[command(subcommand)]
        command: projections::ProjectorsCommand,
    },
    /// Inspect and rebuild read models: list, status, rebuild NAME | --all.
    Projections {
        #[command(subcommand)]
        command: projections::ProjectionsCommand,
    },
    /// Relay every event to NATS JetStream (the `nats_url` setting).
    Relay {
        #[command(subcommand)]
        command: relay::RelayCommand,
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
        Command::QueryApi(args) => {
            let store = open(&settings).await?;
            query::query_api(settings, store, args).await
        }
        Command::Audit(args) => {
            let store = open(&settings).await?;
            query::audit(&store, args).await
        }
        Command::Serve(args) => {
            let store = open(&settings).await?;
            serve::serve(settings, store, args).await
        }
        Command::WriteApi(args) => {
            let store = open(&settings).await?;
            serve::command_api(settings, store, args).await
        }
        Command::Accounts { command } => {
            let store = open(&settings).await?;
            accounts::run(settings, store, command).await
        }
        Command::Events { command } => {
            let store = open(&settings).await?;
            events::run(&store, command).await
        }
        Command::Orders { command } => {
            let store = open(&settings).await?;
            orders::run(&store, command).await
        }
        Command::Projectors { command } => {
            let store = open(&settings).await?;
            projections::run_projectors(store, &settings, command).await
        }
        Command::Projections { command } => {
            let store = open(&settings).await?;
            projections::run(&store, command).await
        }
        Command::Relay { command } => {
            let store = open(&settings).await?;
            relay::run(store, &settings, command).await
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

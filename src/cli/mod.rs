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
/// `eventshop serve` runs all of it in one process: the REST command API under /api/v1
/// (OpenAPI at /api/v1/openapi.json), GraphQL at /graphql, /healthz and /metrics, with the
/// projector workers and the order saga in the background.
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
    /// Run everything in one process: the REST command API (/api/v1), the GraphQL API
    /// (/graphql, GraphiQL in a browser), /healthz and /metrics on one listener, with the
    /// projector workers and the order saga in the background. Stops cleanly on Ctrl-C /
    /// SIGTERM: running requests finish, then the workers stop.
    Serve(serve::BindArgs),
    /// Run the REST command API alone (/api/v1, /healthz, /metrics; no GraphQL, no projectors).
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
    /// Read the global event log, export it as JSON lines, import such a file.
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
    /// Inspect and rebuild read models (list, status, rebuild NAME | --all) and manage parked
    /// events (dead-letters, retry NAME, skip NAME POSITION --reason R).
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

/// Reports a command-line error: `--help` and `--version` print as usual (exit 0); anything
/// else is one line on stderr naming the help of the (sub)command at fault, exit code 2.
pub fn usage_error(error: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return std::process::ExitCode::SUCCESS;
    }
    let path = command_path(std::env::args().skip(1));
    let message = if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        format!("'{path}' requires a subcommand")
    } else {
        // clap's first paragraph (e.g. "unexpected argument '--x' found", or "the following
        // required arguments were not provided:" and the arguments), on one line.
        let rendered = error.to_string();
        let paragraph = rendered.split("\n\n").next().unwrap_or_default();
        let line = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        line.strip_prefix("error: ").unwrap_or(&line).to_owned()
    };
    eprintln!("error: {message} (try '{path} --help')");
    std::process::ExitCode::from(2)
}

/// `eventshop` followed by the subcommands named in `args` (options and their values skipped).
fn command_path(args: impl IntoIterator<Item = String>) -> String {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut path = vec![command.get_name().to_owned()];
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--log" {
            args.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        let Some(sub) = command.find_subcommand(&arg).cloned() else {
            break;
        };
        path.push(sub.get_name().to_owned());
        command = sub;
    }
    path.join(" ")
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
            projections::run(&store, &settings, command).await
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

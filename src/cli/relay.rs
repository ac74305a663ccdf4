//! `eventshop relay run` (the NATS JetStream relay alone), and the relay `serve` and
//! `projectors run` start beside their workers when the `nats_url` setting is set.

use anyhow::Context;
use clap::Subcommand;
use eventstore_config::{Settings, Store};
use relay::{RelayMetrics, RelayOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Relay every event to NATS JetStream until Ctrl-C / SIGTERM (needs the `nats_url`
    /// setting, EVENTSHOP_NATS_URL). Several processes may run: one owns the relay at a time and
    /// another takes over if it dies.
    Run {
        /// Events read per batch; default 1000 (PostgreSQL) or 500 (SQLite).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: Option<u32>,
    },
}

/// `eventshop relay run`.
pub async fn run(store: Store, settings: &Settings, command: RelayCommand) -> anyhow::Result<()> {
    let RelayCommand::Run { batch } = command;
    let mut options = RelayOptions::from_settings(settings, &store).context(
        "the relay needs a NATS server: set the nats_url setting (EVENTSHOP_NATS_URL=nats://host:4222)",
    )?;
    if let Some(batch) = batch {
        options.batch = batch;
    }
    options.validate()?;
    eprintln!(
        "relay running as {} to {} (stream {}); Ctrl-C stops",
        options.owner,
        options.display_url(),
        options.stream
    );
    let result = relay::run(
        store.clone(),
        options,
        RelayMetrics::new(),
        command_api::shutdown_signal(),
    )
    .await;
    store.close().await;
    Ok(result?)
}

/// Starts the relay in the background when `nats_url` is set (else `None`: nothing changes).
/// It stops when `stop` turns true; its failure is logged and never ends the caller.
pub fn spawn_if_configured(
    store: &Store,
    settings: &Settings,
    metrics: RelayMetrics,
    mut stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let options = RelayOptions::from_settings(settings, store)?;
    let store = store.clone();
    Some(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(error) = relay::run(store, options, metrics, shutdown).await {
            tracing::error!(error = %format!("{error:#}"), "the NATS relay stopped");
        }
    }))
}

//! `eventshop serve` (everything in one process) and `eventshop command-api` (the REST write
//! side alone): bind, print the address, serve until SIGINT/SIGTERM, then drain.

use anyhow::Context;
use clap::Args;
use eventstore_config::{Settings, Store};
use tokio::net::TcpListener;

/// Where to listen.
#[derive(Debug, Args)]
pub struct BindArgs {
    /// Address to listen on (default: the `bind` setting, i.e. EVENTSHOP_BIND or 127.0.0.1:8080;
    /// port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
}

impl BindArgs {
    fn address<'a>(&'a self, settings: &'a Settings) -> &'a str {
        self.bind.as_deref().unwrap_or(&settings.bind)
    }
}

async fn listen(address: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!(
        "eventshop listening on http://{}",
        listener.local_addr().context("reading the bound address")?
    );
    Ok(listener)
}

/// `eventshop serve`: REST and GraphQL on one listener, with the projector workers and the
/// order saga running in the same process; SIGINT/SIGTERM drains HTTP, then stops the workers.
pub async fn serve(settings: Settings, store: Store, args: BindArgs) -> anyhow::Result<()> {
    let app = command_api::build(settings.clone(), store.clone()).await?;
    // One authenticator (and policy cache) for both APIs. The GraphQL routes carry their own
    // body limit: REST's is layered before the merge.
    let graphql = query_api::build(store.clone(), app.state().authenticator().clone())
        .with_max_body_bytes(settings.max_body_bytes);
    app.state()
        .metrics()
        .add_registry(graphql.metrics_registry());
    let console = admin_console::Console::new(
        settings.clone(),
        app.state().app().clone(),
        app.state().authenticator().clone(),
        graphql.clone(),
    );
    let router = app.router().merge(graphql.router()).merge(console.router());

    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let relay_metrics = relay::RelayMetrics::new();
    let relay = super::relay::spawn_if_configured(
        &store,
        &settings,
        relay_metrics.clone(),
        stopped.clone(),
    );
    if relay.is_some() {
        app.state().metrics().add_registry(relay_metrics.registry());
    }
    let workers = {
        let (store, settings) = (store.clone(), settings.clone());
        tokio::spawn(async move {
            let options = projectors::RunnerOptions::for_store(&store);
            projectors::saga::run_with_projections(
                store,
                &settings,
                options,
                projectors::read_models::all(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )
            .await
        })
    };

    let listener = listen(args.address(&settings)).await?;
    let served = command_api::serve_with(
        listener,
        router,
        command_api::ServeLimits::from_settings(&settings),
        command_api::shutdown_signal(),
    )
    .await
    .context("serving HTTP");
    let _ = stop.send(true);
    if let Some(relay) = relay {
        relay.await.ok();
    }
    match workers.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(error = %format!("{error:#}"), "projectors ended with an error")
        }
        Err(error) => tracing::error!(%error, "projectors panicked"),
    }
    drop(app);
    store.close().await;
    served
}

/// `eventshop command-api`: the REST write side alone.
pub async fn command_api(settings: Settings, store: Store, args: BindArgs) -> anyhow::Result<()> {
    let app = command_api::build(settings.clone(), store.clone()).await?;
    let listener = listen(args.address(&settings)).await?;
    command_api::serve_with(
        listener,
        app.router(),
        command_api::ServeLimits::from_settings(&settings),
        command_api::shutdown_signal(),
    )
    .await
    .context("serving HTTP")?;
    drop(app);
    store.close().await;
    Ok(())
}

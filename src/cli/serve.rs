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

/// `eventshop serve`: the REST API now; the GraphQL API and the projectors join it here.
pub async fn serve(settings: Settings, store: Store, args: BindArgs) -> anyhow::Result<()> {
    let app = command_api::build(settings.clone(), store.clone()).await?;
    #[allow(unused_mut)]
    let mut router = app.router();
    // One process, one listener: merge the query side's router here, e.g.
    //     router = router.merge(query_api::router(settings.clone(), store.clone()).await?);
    // and start the projector and saga workers here, e.g.
    //     let workers = tokio::spawn(projectors::run_all(store.clone(), settings.clone(), shutdown));
    let listener = listen(args.address(&settings)).await?;
    command_api::serve(listener, router, command_api::shutdown_signal())
        .await
        .context("serving HTTP")?;
    drop(app);
    store.close().await;
    Ok(())
}

/// `eventshop command-api`: the REST write side alone.
pub async fn command_api(settings: Settings, store: Store, args: BindArgs) -> anyhow::Result<()> {
    let app = command_api::build(settings.clone(), store.clone()).await?;
    let listener = listen(args.address(&settings)).await?;
    command_api::serve(listener, app.router(), command_api::shutdown_signal())
        .await
        .context("serving HTTP")?;
    drop(app);
    store.close().await;
    Ok(())
}

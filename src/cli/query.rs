//! `eventshop query-api` (the GraphQL read side alone) and `eventshop audit` (who did what
//! when, from the terminal). Both APIs authenticate with the shared `access::Authenticator`;
//! `eventshop serve` mounts `/graphql` beside REST with the command API's.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use eventstore_config::{Settings, Store};
use query_api::{AuditEntry, AuditFilter};
use tokio::net::TcpListener;

/// Where `eventshop query-api` listens.
#[derive(Debug, Args)]
pub struct QueryApiArgs {
    /// Address to listen on (default: the `bind` setting, i.e. EVENTSHOP_BIND or 127.0.0.1:8080;
    /// port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
}

/// `eventshop query-api`: GraphQL at /graphql (GraphiQL on GET) and the admin console at
/// /console until SIGINT/SIGTERM.
pub async fn query_api(settings: Settings, store: Store, args: QueryApiArgs) -> anyhow::Result<()> {
    let authenticator = access::Authenticator::load(&settings, &store)
        .await
        .context("loading the token signing key")?;
    // Alone, this process learns of deleted accounts and revoked token families from the log.
    let follower = authenticator.follow();
    let graphql = query_api::build(store.clone(), authenticator.clone())
        .with_max_body_bytes(settings.max_body_bytes);
    let console =
        admin_console::Console::standalone(settings.clone(), authenticator, graphql.clone())?;
    let router = graphql.router().merge(console.router());
    let address = args.bind.as_deref().unwrap_or(&settings.bind);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!(
        "eventshop query API listening on http://{}/graphql",
        listener.local_addr().context("reading the bound address")?
    );
    command_api::serve_with(
        listener,
        router,
        command_api::ServeLimits::from_settings(&settings),
        command_api::shutdown_signal(),
    )
    .await
    .context("serving HTTP")?;
    drop(follower);
    store.close().await;
    Ok(())
}

/// `eventshop audit`: the audit index (who did what when), oldest first.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this actor's events (an account id, or `system`).
    #[arg(long)]
    actor: Option<String>,
    /// Only this kind of resource: account, wallet, product, order, policy_set (or the ACL
    /// names accounts, wallets, products, orders, policies).
    #[arg(long, value_parser = parse_resource_type)]
    resource_type: Option<String>,
    /// Only this resource id.
    #[arg(long)]
    resource_id: Option<String>,
    /// From this time on (RFC 3339, e.g. 2026-11-22T10:00:00Z, or a date: 2026-11-22).
    #[arg(long, value_parser = parse_time)]
    from: Option<DateTime<Utc>>,
    /// Up to this time (inclusive; RFC 3339 or a date, meaning its end).
    #[arg(long, value_parser = parse_end_time)]
    to: Option<DateTime<Utc>>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_resource_type(value: &str) -> Result<String, String> {
    query_api::query::aggregate_type(value)
        .map(str::to_owned)
        .ok_or_else(|| {
            format!("unknown resource type {value:?}: use account, wallet, product, order, policy_set or projection")
        })
}

fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .map_err(|_| format!("{value:?} is not a time: use RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)"))
}

fn parse_end_time(value: &str) -> Result<DateTime<Utc>, String> {
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Ok(d
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .expect("end of day")
            .and_utc()),
        Err(_) => parse_time(value),
    }
}

/// Runs `eventshop audit`.
pub async fn audit(store: &Store, args: AuditArgs) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        anyhow::ensure!(from <= to, "--from ({from}) is after --to ({to})");
    }
    let filter = AuditFilter {
        actor: args.actor,
        resource_type: args.resource_type,
        resource_id: args.resource_id,
        from: args.from,
        to: args.to,
    };
    let mut stdout = std::io::stdout().lock();
    let mut after = 0;
    let mut left = i64::from(args.limit);
    let mut shown = 0usize;
    if !args.json {
        writeln!(
            stdout,
            "{:>10}  {:<27}  {:<36}  {:<22}  RESOURCE",
            "POSITION", "RECORDED AT", "ACTOR", "EVENT"
        )?;
    }
    while left > 0 {
        let page = query_api::audit(store, &filter, after, left.min(500))
            .await
            .context("reading the audit index")?;
        let Some(last) = page.last() else { break };
        after = last.position;
        left -= page.len() as i64;
        for entry in &page {
            print_entry(&mut stdout, entry, args.json)?;
            shown += 1;
        }
    }
    if !args.json {
        writeln!(stdout, "{shown} entries")?;
    }
    Ok(())
}

fn print_entry(out: &mut impl Write, entry: &AuditEntry, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(entry)?)?;
    } else {
        writeln!(
            out,
            "{:>10}  {:<27}  {:<36}  {:<22}  {}/{} v{}",
            entry.position,
            entry.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            entry.actor.as_deref().unwrap_or("-"),
            entry.event_type,
            entry.aggregate_type,
            entry.aggregate_id,
            entry.version
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_its_whole_day() {
        assert_eq!(
            parse_time("2026-11-22").unwrap().to_rfc3339(),
            "2026-11-22T00:00:00+00:00"
        );
        assert_eq!(
            parse_end_time("2026-11-22").unwrap().to_rfc3339(),
            "2026-11-22T23:59:59.999999+00:00"
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_resource_type("baskets").is_err());
        assert_eq!(parse_resource_type("orders").unwrap(), "order");
    }
}

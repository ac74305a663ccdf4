//! `eventshop orders trace <id>`: an order's saga step and every event of every aggregate the
//! order touched, in causal order.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use eventstore_config::Store;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Print the saga's step history and the events of every aggregate the order touched.
    Trace {
        /// The order id (a UUID).
        id: Uuid,
        /// One JSON object per event line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &Store, command: OrdersCommand) -> anyhow::Result<()> {
    let OrdersCommand::Trace { id, json } = command;
    let trace = projectors::saga::trace::order_trace(store, id)
        .await
        .context("reading the order's trace")?;
    anyhow::ensure!(!trace.events.is_empty(), "no order {id} in the event log");
    let mut out = std::io::stdout().lock();
    if json {
        for event in &trace.events {
            let line = serde_json::json!({
                "position": event.position,
                "recorded_at": event.recorded_at,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "version": event.version,
                "event_type": event.event_type,
                "metadata": event.metadata,
                "payload": super::events::public_payload(event),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "order {id}: saga step {} (correlation {})",
        trace.step.as_deref().unwrap_or("not started"),
        trace.correlation_id.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "\nevents (causal order):")?;
    for event in &trace.events {
        writeln!(
            out,
            "{:>8}  {}  {}/{} v{}  {}  actor={} caused_by={}",
            event.position,
            event.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            event.aggregate_type,
            event.aggregate_id,
            event.version,
            event.event_type,
            event.metadata.actor.as_deref().unwrap_or("-"),
            event.metadata.causation_id.as_deref().unwrap_or("-"),
        )?;
    }
    if !trace.steps.is_empty() {
        writeln!(out, "\nsaga steps:")?;
        for step in &trace.steps {
            writeln!(
                out,
                "{:>8}  {:<26} -> {:<12} {}",
                step.position, step.event_type, step.step, step.commands
            )?;
        }
    }
    Ok(())
}

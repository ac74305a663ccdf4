//! The saga's parked orders, worked on again: each parked order's events (in log order) go
//! through the saga with the current code; an order that now succeeds is saved and its dead
//! letters removed in one transaction (under the saga's checkpoint lock, so a batch does not
//! interleave), and its later events flow again.

use std::collections::{BTreeMap, HashSet};

use eventstore_config::{CommandBus, Store, StoredEvent};
use uuid::Uuid;

use super::decode::saga_event;
use super::options::{SagaOptions, NAME};
use super::order_steps::work_on_order;
use super::state::SagaEvent;
use crate::progress::{self, DeadLetter};
use crate::sql::Tx;

/// How retrying the saga's parked orders went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SagaRetry {
    /// Positions worked through and removed from the dead letters.
    pub done: Vec<i64>,
    /// Orders still failing: (first parked position, error).
    pub failed: Vec<(i64, String)>,
}

/// Works every parked order of the saga again (see the module doc).
pub async fn retry_parked(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
) -> anyhow::Result<SagaRetry> {
    let mut report = SagaRetry::default();
    let mut failed: HashSet<String> = HashSet::new();
    // A batch may park an event behind an order while the order is being retried: the next
    // round works it too (bounded).
    for _ in 0..ROUNDS {
        let parked = progress::list_dead_letters(store, Some(NAME)).await?;
        let mut orders: BTreeMap<i64, (String, Vec<DeadLetter>)> = BTreeMap::new();
        let mut first_of: BTreeMap<String, i64> = BTreeMap::new();
        for row in parked {
            let subject = row.subject.clone().unwrap_or_default();
            if failed.contains(&subject) {
                continue;
            }
            let first = *first_of
                .entry(subject.clone())
                .or_insert(row.global_position);
            orders
                .entry(first)
                .or_insert_with(|| (subject, Vec::new()))
                .1
                .push(row);
        }
        if orders.is_empty() {
            break;
        }
        for (first, (subject, rows)) in orders {
            match retry_order(store, bus, options, &subject, &rows).await {
                Ok(()) => report.done.extend(rows.iter().map(|r| r.global_position)),
                Err(error) => {
                    let error = format!("{error:#}");
                    progress::failed_again(store, NAME, first, &error).await?;
                    report.failed.push((first, error));
                    failed.insert(subject);
                }
            }
        }
    }
    report.done.sort_unstable();
    Ok(report)
}

/// Rounds of [`retry_parked`] at most.
const ROUNDS: usize = 10;

/// Works one parked order's `rows` again; on success saves it and removes the rows.
async fn retry_order(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
    subject: &str,
    rows: &[DeadLetter],
) -> anyhow::Result<()> {
    let order_id: Uuid = subject
        .parse()
        .map_err(|_| anyhow::anyhow!("parked row without an order id ({subject:?})"))?;
    let mut events: Vec<(StoredEvent, SagaEvent)> = Vec::new();
    for row in rows {
        let event = parked_event(store, row).await?;
        if let Some((id, decoded)) = saga_event(&event)? {
            if id == order_id {
                events.push((event, decoded));
            }
        }
    }
    let result = work_on_order(store, bus, options, order_id, events).await?;
    let mut tx = Tx::begin(store).await?;
    eventstore_config::followers::lock_follower(&mut tx, NAME).await?;
    if let Some(result) = result {
        result.save(&mut tx).await?;
    }
    for row in rows {
        progress::remove_dead_letter(&mut tx, NAME, row.global_position).await?;
    }
    tx.commit().await?;
    tracing::info!(%order_id, "saga: parked order worked through");
    Ok(())
}

/// The stored event a dead letter names (read through its aggregate's history).
pub(crate) async fn parked_event(store: &Store, row: &DeadLetter) -> anyhow::Result<StoredEvent> {
    store
        .history(&row.aggregate_type, &row.aggregate_id)
        .await?
        .into_iter()
        .find(|e| e.position == row.global_position)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the parked event at position {} is not in the log",
                row.global_position
            )
        })
}

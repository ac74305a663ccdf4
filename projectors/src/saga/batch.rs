//! One saga batch: read the next events after the saga's checkpoint, group them by order, work
//! on the orders concurrently (each order's events in log order), then store every touched
//! order's saga, its steps, the payment deadlines and the checkpoint in ONE transaction. A
//! crash between a command and that transaction replays the batch: the commands are refused as
//! already done and the state is written once.

use std::collections::HashMap;
use std::time::Instant;

use eventstore_config::saga_tables::{self, SagaWrite};
use eventstore_config::{CommandBus, Store, StoredEvent};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::decode::saga_event;
use super::options::{SagaOptions, NAME};
use super::order_steps::{work_on_order, OrderResult};
use super::state::SagaEvent;
use crate::sql::{self, Tx};

/// Handles the next batch; returns how many events it consumed (0: nothing new, or another
/// writer moved the checkpoint).
pub async fn handle_batch(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let cp = sql::read_checkpoint(store, NAME).await?;
    let events = store.read_after(cp, options.batch).await?;
    let read = started.elapsed();
    let Some(last) = events.last().map(StoredEvent::checkpoint) else {
        return Ok(0);
    };
    let mut groups: Vec<(Uuid, Vec<(StoredEvent, SagaEvent)>)> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for event in &events {
        if let Some((order_id, decoded)) = saga_event(event)? {
            let slot = *index.entry(order_id).or_insert_with(|| {
                groups.push((order_id, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push((event.clone(), decoded));
        }
    }
    let results: Vec<Option<OrderResult>> = futures::stream::iter(groups)
        .map(|(order_id, events)| work_on_order(store, bus, options, order_id, events))
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;

    let mut tx = Tx::begin(store).await?;
    if tx.lock_checkpoint(NAME).await? != cp {
        tx.rollback().await?;
        return Ok(0);
    }
    for result in results.iter().flatten() {
        let saga = result.row()?;
        let write = SagaWrite {
            saga: &saga,
            steps: result.steps(),
            deadline: result.deadline(),
            finished: result.finished(),
        };
        saga_tables::save(&mut tx, &write).await?;
    }
    tx.write_checkpoint(NAME, last).await?;
    tx.commit().await?;
    tracing::debug!(
        events = events.len(),
        orders = results.len(),
        read_ms = read.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "saga batch"
    );
    Ok(events.len())
}

//! One saga batch (of one segment: the orders whose id falls into it, see
//! `eventstore_config::segments`): read the next events after the saga's checkpoint, group them by order, work
//! on the orders concurrently (each order's events in log order), then store every touched
//! order's saga, its steps, the payment deadlines and the checkpoint in ONE transaction. A
//! crash between a command and that transaction replays the batch: the commands are refused as
//! already done and the state is written once.
//!
//! A poison order — one whose step still fails after [`SagaOptions::park_after`] attempts while
//! the database answers — is parked instead (its events in `projection_dead_letters` under the
//! saga's name, subject: the order id, in the same transaction): that order stops, its later
//! events are parked behind it, and the other orders go on (see [`super::parked`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use eventstore_config::segments::Segment;
use eventstore_config::{CommandBus, Store, StoredEvent};
use futures::StreamExt;
use uuid::Uuid;

use super::decode::saga_event;
use super::options::{SagaOptions, NAME};
use super::order_steps::{work_on_order, OrderResult};
use super::state::SagaEvent;
use crate::progress;
use crate::sql::{self, Tx};

/// How one order's events in a batch ended.
enum Worked {
    /// Worked through (`None`: the saga never saw the order placed).
    Done(Option<OrderResult>),
    /// Still failing after every attempt: to be parked.
    Failed(String),
    /// The order was parked before: its events wait behind the parked one.
    Behind,
}

/// Handles the next batch; returns how many events it consumed (0: nothing new, or another
/// writer moved the checkpoint).
pub async fn handle_batch(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
) -> anyhow::Result<usize> {
    handle_segment_batch(store, bus, options, Segment::WHOLE).await
}

/// As [`handle_batch`], for one segment: only the orders whose id falls into `segment` are
/// worked on, and the segment's checkpoint moves past every event read.
pub async fn handle_segment_batch(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
    segment: Segment,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let checkpoint = segment.checkpoint_name(NAME);
    let cp = sql::read_checkpoint(store, &checkpoint).await?;
    let events = store.read_after(cp, options.batch).await?;
    let read = started.elapsed();
    let Some(last) = events.last().map(StoredEvent::checkpoint) else {
        return Ok(0);
    };
    let mut groups: Vec<(Uuid, Vec<(StoredEvent, SagaEvent)>)> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for event in &events {
        if let Some((order_id, decoded)) = saga_event(event)? {
            if segment.of > 1 && !segment.owns(&order_id.to_string()) {
                continue;
            }
            let slot = *index.entry(order_id).or_insert_with(|| {
                groups.push((order_id, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push((event.clone(), decoded));
        }
    }
    let parked: HashSet<Uuid> = progress::parked_subjects(store, NAME)
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let worked: Vec<(Uuid, Vec<StoredEvent>, Worked)> = futures::stream::iter(groups)
        .map(|(order_id, events)| {
            let parked = parked.contains(&order_id);
            async move {
                let stored = events.iter().map(|(e, _)| e.clone()).collect();
                let worked = if parked {
                    Worked::Behind
                } else {
                    work_with_attempts(store, bus, options, order_id, events).await
                };
                (order_id, stored, worked)
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    if worked
        .iter()
        .any(|(_, _, w)| matches!(w, Worked::Failed(_)))
    {
        // Park only while the database answers: an outage fails the batch (retried) instead.
        sql::read_checkpoint(store, &checkpoint).await?;
    }

    let mut tx = Tx::begin(store).await?;
    if tx.lock_checkpoint(&checkpoint).await? != cp {
        tx.rollback().await?;
        return Ok(0);
    }
    // A parked order retried meanwhile (`projections retry`, which saves under this lock) must
    // not get its new events parked behind it: start the batch over.
    let still_parked: HashSet<Uuid> = progress::parked_subjects(&mut tx, NAME)
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    if worked
        .iter()
        .any(|(id, _, w)| matches!(w, Worked::Behind) && !still_parked.contains(id))
    {
        tx.rollback().await?;
        return Ok(0);
    }
    for (order_id, stored, worked) in &worked {
        match worked {
            Worked::Done(Some(result)) => result.save(&mut tx).await?,
            Worked::Done(None) => {}
            Worked::Failed(error) => {
                let subject = order_id.to_string();
                let first = stored.first().map(|e| e.position).unwrap_or_default();
                for (i, event) in stored.iter().enumerate() {
                    let (error, attempts) = if i == 0 {
                        (error.clone(), options.park_after)
                    } else {
                        (format!("order {order_id} is parked at position {first}"), 0)
                    };
                    progress::park(&mut tx, NAME, event, &error, attempts, Some(&subject)).await?;
                }
                tracing::error!(%order_id, position = first, %error, "saga: order parked");
            }
            Worked::Behind => {
                let subject = order_id.to_string();
                for event in stored {
                    let error = format!("order {order_id} is parked: waits behind it");
                    progress::park(&mut tx, NAME, event, &error, 0, Some(&subject)).await?;
                }
            }
        }
    }
    tx.write_checkpoint(&checkpoint, last).await?;
    tx.commit().await?;
    tracing::debug!(
        events = events.len(),
        orders = worked.len(),
        read_ms = read.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "saga batch"
    );
    Ok(events.len())
}

/// Works on one order's events, trying again (with a short backoff) up to
/// `options.park_after` times.
async fn work_with_attempts(
    store: &Store,
    bus: &CommandBus,
    options: &SagaOptions,
    order_id: Uuid,
    events: Vec<(StoredEvent, SagaEvent)>,
) -> Worked {
    let mut attempt = 0u32;
    loop {
        match work_on_order(store, bus, options, order_id, events.clone()).await {
            Ok(result) => return Worked::Done(result),
            Err(error) => {
                attempt += 1;
                let error = format!("{error:#}");
                tracing::warn!(%order_id, attempt, %error, "saga: order step failed");
                if attempt >= options.park_after.max(1) {
                    return Worked::Failed(error);
                }
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
            }
        }
    }
}

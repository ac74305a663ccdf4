//! Payment deadlines: the deadline worker (under its own lease) cancels every order whose
//! payment deadline has passed.

use std::time::Duration;

use chrono::Utc;
use eventstore_config::saga_tables;
use eventstore_config::{CommandBus, EventMetadata, Store};
use tokio::sync::watch;

use crate::lease::Lease;

/// Lease name of the deadline worker.
pub const DEADLINES: &str = "saga:deadlines";

/// How often the deadline worker looks for passed deadlines.
const EVERY: Duration = Duration::from_millis(500);

/// Cancels every order whose payment deadline has passed; returns how many it canceled.
pub async fn expire_deadlines(store: &Store, bus: &CommandBus) -> anyhow::Result<usize> {
    let due = saga_tables::due_deadlines(store, Utc::now(), 100).await?;
    let mut canceled = 0;
    for due in due {
        let order_id = due.order_id;
        let mut metadata = EventMetadata::system();
        metadata.correlation_id = due.correlation_id.or_else(|| Some(order_id.clone()));
        metadata.causation_id = Some(format!("deadline:{order_id}"));
        let result = bus
            .execute::<domain::order::Order>(
                &order_id,
                domain::order::OrderCommand::Cancel {
                    reason: Some("payment deadline passed".to_string()),
                },
                &(),
                &metadata,
            )
            .await;
        match result {
            Ok(committed) if !committed.events.is_empty() => canceled += 1,
            Ok(_) | Err(eventstore_config::CommandError::Rejected(_)) => {}
            Err(error) => return Err(error.into()),
        }
        saga_tables::deadline_done(store, &order_id, Utc::now()).await?;
    }
    Ok(canceled)
}

/// Runs the deadline worker under its lease until `shutdown` is set.
pub(crate) async fn run_deadlines(
    store: Store,
    bus: CommandBus,
    owner: String,
    mut shutdown: watch::Receiver<bool>,
) {
    while let Some(mut held) = Lease::wait(&store, DEADLINES, &owner, &mut shutdown).await {
        while !*shutdown.borrow() && held.keep(&store).await {
            if let Err(error) = expire_deadlines(&store, &bus).await {
                tracing::warn!(error = %format!("{error:#}"), "deadline check failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => {}
            }
        }
        held.release(&store).await;
    }
}

//! Managed dead letters, for the projections and the order saga alike: list the parked events,
//! retry them with the current code, or skip one with a reason. The use cases behind
//! `eventshop projections dead-letters|retry|skip` (and a console later).
//!
//! * Retry: a projection re-applies, from its checkpoint, the events through its parked ones
//!   (each batch in one transaction with the checkpoint, as the runner does); on success the
//!   rows go and the projection resumes (its stuck worker notices). The saga works each parked
//!   order again ([`crate::saga::parked`]). A failure keeps the rows (attempts + 1).
//! * Skip: the skip is recorded first in the log (aggregate `projection`, id: the follower's
//!   name; [`application::projections::record_skip`]) — who, when and why, shown by `status`
//!   and the audit read model; then a projection's checkpoint moves past the event (in one
//!   transaction with removing the row), or the saga's row is removed (the order's later
//!   parked events stay until retried or skipped).

use std::collections::HashSet;

use domain::projection::ProjectionEvent;
use eventstore_config::{CommandBus, CommandError, Settings, Store};

use crate::model::{FoldError, Projection};
use crate::progress::{self, DeadLetter};
use crate::read_models;
use crate::runner::{apply_events, Batch};
use crate::saga;
use crate::sql::{self, BatchError, Tx};

/// Events read per step while retrying.
const BATCH: u32 = 500;

/// Why a dead-letter use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// No projection (nor the saga) has this name.
    #[error("unknown projection '{0}' (known: {known})", known = followers().join(", "))]
    UnknownFollower(String),
    /// Nothing is parked for it.
    #[error("{0} has no parked events")]
    NothingParked(String),
    /// No event is parked for it at this position.
    #[error("{name} has no parked event at position {position}")]
    NotParked {
        /// The follower.
        name: String,
        /// The position asked for.
        position: i64,
    },
    /// A skip needs a reason.
    #[error("a reason is required (--reason \"...\")")]
    ReasonRequired,
    /// The retry failed again (the rows are kept, attempts + 1).
    #[error("{name}: the event at position {position} still fails: {error}")]
    StillFailing {
        /// The follower.
        name: String,
        /// The failing event's position.
        position: i64,
        /// Why.
        error: String,
    },
    /// The database (or the log) failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sqlx::Error> for DeadLetterError {
    fn from(error: sqlx::Error) -> Self {
        DeadLetterError::Failed(error.into())
    }
}

/// Every follower that parks events: the projections, then the saga.
pub fn followers() -> Vec<&'static str> {
    let mut names = read_models::names();
    names.push(saga::NAME);
    names
}

fn known(name: &str) -> Result<(), DeadLetterError> {
    if followers().contains(&name) {
        Ok(())
    } else {
        Err(DeadLetterError::UnknownFollower(name.to_owned()))
    }
}

/// The parked events of `name` (every follower's when `None`), by follower and position.
pub async fn list(store: &Store, name: Option<&str>) -> Result<Vec<DeadLetter>, DeadLetterError> {
    if let Some(name) = name {
        known(name)?;
    }
    Ok(progress::list_dead_letters(store, name).await?)
}

/// What a retry worked through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    /// The positions of the parked events now applied (and removed).
    pub positions: Vec<i64>,
}

/// Retries the parked events of `name` (a projection of [`read_models::all`] or the saga).
pub async fn retry(
    store: &Store,
    settings: &Settings,
    name: &str,
) -> Result<Retried, DeadLetterError> {
    known(name)?;
    if name == saga::NAME {
        let bus = CommandBus::new(store.clone(), settings);
        let options = saga::SagaOptions::from_settings(settings);
        if progress::dead_letters(store, name).await? == 0 {
            return Err(DeadLetterError::NothingParked(name.to_owned()));
        }
        let report = saga::parked::retry_parked(store, &bus, &options).await?;
        return match report.failed.into_iter().next() {
            Some((position, error)) => Err(DeadLetterError::StillFailing {
                name: name.to_owned(),
                position,
                error,
            }),
            None => Ok(Retried {
                positions: report.done,
            }),
        };
    }
    let projection = read_models::by_name(name)
        .ok_or_else(|| DeadLetterError::UnknownFollower(name.to_owned()))?;
    retry_projection(store, &*projection).await
}

/// Retries the parked events of `projection` with its code (see the module doc).
pub async fn retry_projection(
    store: &Store,
    projection: &dyn Projection,
) -> Result<Retried, DeadLetterError> {
    let name = projection.name();
    let parked = progress::list_dead_letters(store, Some(name)).await?;
    if parked.is_empty() {
        return Err(DeadLetterError::NothingParked(name.to_owned()));
    }
    refuse_segmented(store, name).await?;
    let mut waiting: HashSet<i64> = parked.iter().map(|r| r.global_position).collect();
    let mut cp = sql::read_checkpoint(store, name).await?;
    while !waiting.is_empty() {
        let events = store
            .read_after(cp, BATCH)
            .await
            .map_err(anyhow::Error::from)?;
        if events.is_empty() {
            break; // the checkpoint is past them already (applied meanwhile)
        }
        let mut take = events.len();
        let mut seen = waiting.clone();
        for (i, event) in events.iter().enumerate() {
            seen.remove(&event.position);
            if seen.is_empty() {
                take = i + 1;
                break;
            }
        }
        match apply_events(store, projection, cp, &events[..take]).await {
            Ok(Batch::Applied(_, next)) => {
                for event in &events[..take] {
                    waiting.remove(&event.position);
                }
                cp = next;
            }
            Ok(Batch::Moved(next)) => cp = next,
            Ok(Batch::Idle) => break,
            Err(BatchError::Fold(FoldError {
                index,
                position,
                error,
            })) => {
                let error = error.to_string();
                if waiting.contains(&position) {
                    progress::failed_again(store, name, position, &error).await?;
                } else if let Some(event) = events.get(index) {
                    progress::park(store, name, event, &error, 1, None).await?;
                }
                progress::set_state(
                    store,
                    name,
                    projection.version(),
                    "stuck",
                    Some(&format!("event at position {position}: {error}")),
                )
                .await?;
                return Err(DeadLetterError::StillFailing {
                    name: name.to_owned(),
                    position,
                    error,
                });
            }
            Err(BatchError::Database(error)) => return Err(error.into()),
        }
    }
    let mut positions = Vec::new();
    for row in &parked {
        progress::remove_dead_letter(store, name, row.global_position).await?;
        positions.push(row.global_position);
    }
    progress::set_state(store, name, projection.version(), "idle", None).await?;
    tracing::info!(projection = name, ?positions, "parked events retried");
    Ok(Retried { positions })
}

/// Refuses to retry or skip for a projection split into segments (see
/// `eventstore_config::segments`): both move the unsplit checkpoint. Not supported yet: run it
/// with one segment (`segments_of`), then retry or skip.
async fn refuse_segmented(store: &Store, name: &str) -> Result<(), DeadLetterError> {
    let rows = eventstore_config::followers::segment_checkpoints(store, name).await?;
    let split = rows
        .iter()
        .map(|(row, _)| eventstore_config::segments::parse_checkpoint_name(row).2)
        .max()
        .unwrap_or(1);
    if split > 1 {
        return Err(anyhow::anyhow!(
            "{name} is split into {split} segments; retry and skip need it unsplit: set \
             segments_of.{name} = 1, restart the workers, then try again"
        )
        .into());
    }
    Ok(())
}

/// Skips the parked event of `name` at `position` for good, recording `reason` by `actor` (an
/// account id, or `cli:<user>`) in the log first (see the module doc).
pub async fn skip(
    store: &Store,
    settings: &Settings,
    name: &str,
    position: i64,
    reason: &str,
    actor: &str,
) -> Result<(), DeadLetterError> {
    known(name)?;
    let projection = read_models::by_name(name);
    skip_with(
        store,
        settings,
        name,
        projection.as_deref(),
        position,
        reason,
        actor,
    )
    .await
}

/// As [`skip`], for `projection` (`None`: the saga).
pub async fn skip_with(
    store: &Store,
    settings: &Settings,
    name: &str,
    projection: Option<&dyn Projection>,
    position: i64,
    reason: &str,
    actor: &str,
) -> Result<(), DeadLetterError> {
    if reason.trim().is_empty() {
        return Err(DeadLetterError::ReasonRequired);
    }
    let Some(row) = progress::dead_letter(store, name, position).await? else {
        return Err(DeadLetterError::NotParked {
            name: name.to_owned(),
            position,
        });
    };
    if projection.is_some() {
        refuse_segmented(store, name).await?;
    }
    let bus = CommandBus::new(store.clone(), settings);
    let skip = application::projections::Skip {
        follower: name,
        position,
        event_type: &row.event_type,
        aggregate_type: &row.aggregate_type,
        aggregate_id: &row.aggregate_id,
        reason,
    };
    match application::projections::record_skip(&bus, &skip, actor).await {
        Ok(_) => {}
        Err(CommandError::Rejected(_)) => return Err(DeadLetterError::ReasonRequired),
        Err(error) => return Err(anyhow::Error::new(error).into()),
    }
    match projection {
        None => {
            progress::remove_dead_letter(store, name, position).await?;
        }
        Some(projection) => move_past(store, projection, &row).await?,
    }
    tracing::warn!(
        follower = name,
        position,
        reason,
        actor,
        "parked event skipped"
    );
    Ok(())
}

/// Moves `projection`'s checkpoint past the parked event `row` (applying the events before it,
/// if any), removing the row in the same transaction.
async fn move_past(
    store: &Store,
    projection: &dyn Projection,
    row: &DeadLetter,
) -> Result<(), DeadLetterError> {
    let name = projection.name();
    loop {
        let cp = sql::read_checkpoint(store, name).await?;
        let events = store
            .read_after(cp, BATCH)
            .await
            .map_err(anyhow::Error::from)?;
        let Some(at) = events
            .iter()
            .position(|e| e.position == row.global_position)
        else {
            if events.len() < BATCH as usize {
                // The checkpoint is past it already: only the row is left.
                progress::remove_dead_letter(store, name, row.global_position).await?;
                break;
            }
            return Err(anyhow::anyhow!(
                "{name}: the parked event at position {} is not next after the checkpoint",
                row.global_position
            )
            .into());
        };
        let mut tx = Tx::begin(store).await?;
        if tx.lock_checkpoint(name).await? != cp {
            tx.rollback().await.ok();
            continue;
        }
        if at > 0 {
            if let Err(error) = tx.apply(projection, &events[..at], "").await {
                tx.rollback().await.ok();
                return Err(anyhow::Error::new(error).into());
            }
        }
        tx.write_checkpoint(name, events[at].checkpoint()).await?;
        progress::remove_dead_letter(&mut tx, name, row.global_position).await?;
        tx.commit().await?;
        break;
    }
    if progress::dead_letters(store, name).await? == 0 {
        progress::set_state(store, name, projection.version(), "idle", None).await?;
    }
    Ok(())
}

/// One recorded skip of a follower.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The skipped event's position.
    pub position: i64,
    /// Its type.
    pub event_type: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: Option<String>,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The skips recorded for `name`, oldest first (read from the log).
pub async fn skips(store: &Store, name: &str) -> anyhow::Result<Vec<Skipped>> {
    let mut out = Vec::new();
    for event in store.history("projection", name).await? {
        let ProjectionEvent::DeadLetterSkipped {
            position,
            event_type,
            reason,
            ..
        } = event.decode::<ProjectionEvent>()?;
        out.push(Skipped {
            position,
            event_type,
            reason,
            actor: event.metadata.actor.clone(),
            at: event.recorded_at,
        });
    }
    Ok(out)
}

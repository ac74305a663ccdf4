//! The operator's use cases on log followers that belong in the log: recording that a parked
//! event was skipped (the aggregate `projection`, so that the audit read model and `history`
//! show who skipped what, when and why). The dead-letter use cases themselves live in
//! `projectors::dead_letters`, which calls this.

use domain::projection::{ProjectionCommand, ProjectionError, ProjectionRecord};
use eventstore_config::{CommandBus, CommandError, Committed, EventMetadata};

/// What was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip<'a> {
    /// The follower (a projection's name, or the saga's).
    pub follower: &'a str,
    /// The parked event's global position.
    pub position: i64,
    /// Its type.
    pub event_type: &'a str,
    /// Its aggregate's type.
    pub aggregate_type: &'a str,
    /// Its aggregate's id.
    pub aggregate_id: &'a str,
    /// Why (required).
    pub reason: &'a str,
}

/// Records `skip` by `actor` (an account id, or `cli:<user>` from the terminal). Recording the
/// same position twice appends nothing the second time.
pub async fn record_skip(
    bus: &CommandBus,
    skip: &Skip<'_>,
    actor: &str,
) -> Result<Committed<ProjectionRecord>, CommandError<ProjectionError>> {
    let metadata = EventMetadata::for_actor(actor)
        .caused_by(format!("skip:{}:{}", skip.follower, skip.position));
    bus.execute::<ProjectionRecord>(
        skip.follower,
        ProjectionCommand::SkipDeadLetter {
            position: skip.position,
            event_type: skip.event_type.to_owned(),
            aggregate_type: skip.aggregate_type.to_owned(),
            aggregate_id: skip.aggregate_id.to_owned(),
            reason: skip.reason.to_owned(),
        },
        &(),
        &metadata,
    )
    .await
}

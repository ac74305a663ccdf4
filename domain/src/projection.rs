//! The operator's decisions about a log follower (a projection or the order saga; aggregate
//! id: its name), kept in the log so that "who did what when" shows them: skipping a parked
//! event. Skipping the same position twice is a no-op.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::Rejection;

/// Commands to a follower's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionCommand {
    /// Skip the parked event at `position` for good.
    SkipDeadLetter {
        /// The event's global position.
        position: i64,
        /// Its type.
        event_type: String,
        /// Its aggregate's type.
        aggregate_type: String,
        /// Its aggregate's id.
        aggregate_id: String,
        /// Why (required).
        reason: String,
    },
}

/// What happened to a follower. Stored as `{"type": "<event_type>", "data": {..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ProjectionEvent {
    /// A parked event was skipped: the follower went on without it.
    #[serde(rename = "DeadLetterSkipped")]
    DeadLetterSkipped {
        /// The event's global position.
        position: i64,
        /// Its type.
        event_type: String,
        /// Its aggregate's type.
        aggregate_type: String,
        /// Its aggregate's id.
        aggregate_id: String,
        /// Why.
        reason: String,
    },
}

impl ProjectionEvent {
    /// The event as it may leave the process: it holds no secret, so this is its stored form.
    pub fn public_json(&self) -> serde_json::Value {
        crate::event_json::stored_json(self)
    }
}

impl DomainEvent for ProjectionEvent {
    fn event_type(&self) -> String {
        match self {
            ProjectionEvent::DeadLetterSkipped { .. } => "DeadLetterSkipped",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a follower's record refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// A skip needs a reason.
    #[error("a reason is required to skip an event")]
    ReasonRequired,
}

impl ProjectionError {
    /// The kind of rejection.
    pub fn kind(&self) -> Rejection {
        match self {
            ProjectionError::ReasonRequired => Rejection::Unprocessable,
        }
    }
}

/// A follower's record: the positions skipped so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionRecord {
    skipped: BTreeSet<i64>,
}

impl ProjectionRecord {
    /// Whether the event at `position` was skipped.
    pub fn skipped(&self, position: i64) -> bool {
        self.skipped.contains(&position)
    }
}

impl Aggregate for ProjectionRecord {
    const TYPE: &'static str = "projection";
    type Command = ProjectionCommand;
    type Event = ProjectionEvent;
    type Error = ProjectionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ProjectionCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ProjectionError> {
        let ProjectionCommand::SkipDeadLetter {
            position,
            event_type,
            aggregate_type,
            aggregate_id,
            reason,
        } = command;
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(ProjectionError::ReasonRequired);
        }
        if !self.skipped(position) {
            let event = ProjectionEvent::DeadLetterSkipped {
                position,
                event_type,
                aggregate_type,
                aggregate_id,
                reason,
            };
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ProjectionEvent) {
        match event {
            ProjectionEvent::DeadLetterSkipped { position, .. } => {
                self.skipped.insert(position);
            }
        }
    }
}

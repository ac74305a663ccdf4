//! The command bus: load an aggregate (snapshot + newer events), let the domain decide, append
//! the events with metadata through cqrs-es (plain event-store mode), and retry a lost
//! optimistic-concurrency race a bounded number of times.

use std::error::Error as StdError;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventStore};
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlite_es::SqliteEventRepository;

use crate::log::ReadError;
use crate::metadata::EventMetadata;
use crate::settings::Settings;
use crate::store::Store;

/// What an accepted command did.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<A: Aggregate> {
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The aggregate's version after the command (unchanged if it appended nothing).
    pub version: u64,
    /// Global position of the last appended event (None if nothing was appended).
    pub position: Option<i64>,
    /// The appended events (empty for an accepted no-op, e.g. a repeated grant).
    pub events: Vec<A::Event>,
}

/// Why a command was not applied. A domain rejection stays distinct from an infrastructure
/// failure all the way to the caller.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: StdError> {
    /// The domain refused the command (its error says whether that is a 404, 409 or 422).
    #[error(transparent)]
    Rejected(E),
    /// The caller required another version than the aggregate's current one (`If-Match`).
    #[error("the aggregate is at version {actual}, not {expected}")]
    VersionMismatch {
        /// The version the caller expected.
        expected: u64,
        /// The aggregate's current version.
        actual: u64,
    },
    /// Concurrent writers won every attempt.
    #[error("the aggregate kept changing concurrently; gave up after {attempts} attempts")]
    Conflict {
        /// How many times the command was handled.
        attempts: u32,
    },
    /// The store failed; the command may or may not have been applied only if the failure
    /// came after the append was sent.
    #[error("the event store failed")]
    Infrastructure(#[source] Box<dyn StdError + Send + Sync>),
}

impl<E: StdError> From<ReadError> for CommandError<E> {
    fn from(error: ReadError) -> Self {
        Self::Infrastructure(Box::new(error))
    }
}

/// Executes commands against the store.
#[derive(Debug, Clone)]
pub struct CommandBus {
    store: Store,
    retries: u32,
    snapshot_every: u64,
}

impl CommandBus {
    /// A bus over `store` with the retry and snapshot settings.
    pub fn new(store: Store, settings: &Settings) -> Self {
        Self {
            store,
            retries: settings.command_retries,
            snapshot_every: settings.snapshot_every,
        }
    }

    /// The store this bus appends to (for reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles `command` on aggregate `id` and appends its events with `metadata`.
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: Aggregate + 'static,
        A::Command: Clone,
    {
        self.execute_expecting(id, command, services, metadata, None)
            .await
    }

    /// As [`execute`](Self::execute), but only if the aggregate is at `expected_version`.
    #[tracing::instrument(
        skip(self, command, services, metadata),
        fields(aggregate = A::TYPE, actor = metadata.actor.as_deref())
    )]
    pub async fn execute_expecting<A>(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &EventMetadata,
        expected_version: Option<u64>,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: Aggregate + 'static,
        A::Command: Clone,
    {
        let attempts = self.retries.saturating_add(1);
        for attempt in 1..=attempts {
            let current = self.store.load_current::<A>(id).await?;
            if let Some(expected) = expected_version {
                if expected != current.version {
                    return Err(CommandError::VersionMismatch {
                        expected,
                        actual: current.version,
                    });
                }
            }
            let mut state = current.state;
            let sink = EventSink::<A>::default();
            state
                .handle(command.clone(), services, &sink)
                .await
                .map_err(CommandError::Rejected)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Committed {
                    aggregate_id: id.to_string(),
                    version: current.version,
                    position: None,
                    events,
                });
            }
            let new_version = current.version + events.len() as u64;
            // Serialize the snapshot before `commit` consumes the state, only when one is due.
            let snapshot_due = self.snapshot_due(current.version, new_version);
            let snapshot = if snapshot_due {
                serde_json::to_value(&state).ok()
            } else {
                None
            };
            let context = EventStoreAggregateContext {
                aggregate_id: id.to_string(),
                aggregate: state,
                current_sequence: current.version as usize,
                current_snapshot: None,
            };
            match self.commit::<A>(events.clone(), context, metadata).await {
                Ok(()) => {
                    let (position, recorded_at) = self.appended(A::TYPE, id, new_version).await?;
                    if let Some(snapshot) = snapshot {
                        self.snapshot::<A>(id, new_version, snapshot, recorded_at)
                            .await;
                    }
                    return Ok(Committed {
                        aggregate_id: id.to_string(),
                        version: new_version,
                        position: Some(position),
                        events,
                    });
                }
                Err(AggregateError::AggregateConflict) => {
                    tracing::debug!(attempt, "optimistic-concurrency conflict; retrying");
                    if attempt < attempts {
                        // Exponential backoff with full jitter: contenders spread out instead of
                        // colliding again in lockstep.
                        let cap = (1u64 << attempt.min(7)).min(100);
                        let jitter = rand::thread_rng().gen_range(0..=cap);
                        tokio::time::sleep(Duration::from_millis(jitter)).await;
                    }
                }
                Err(AggregateError::UserError(e)) => return Err(CommandError::Rejected(e)),
                Err(AggregateError::DatabaseConnectionError(e))
                | Err(AggregateError::DeserializationError(e))
                | Err(AggregateError::UnexpectedError(e)) => {
                    return Err(CommandError::Infrastructure(e))
                }
            }
        }
        Err(CommandError::Conflict { attempts })
    }

    async fn commit<A: Aggregate + 'static>(
        &self,
        events: Vec<A::Event>,
        context: EventStoreAggregateContext<A>,
        metadata: &EventMetadata,
    ) -> Result<(), AggregateError<A::Error>> {
        let metadata = metadata.to_map();
        match &self.store {
            Store::Postgres(pool) => {
                let repo = PostgresEventRepository::new(pool.clone());
                PersistedEventStore::<_, A>::new_event_store(repo)
                    .commit(events, context, metadata)
                    .await?;
            }
            Store::Sqlite(pool) => {
                let repo = SqliteEventRepository::new(pool.clone());
                PersistedEventStore::<_, A>::new_event_store(repo)
                    .commit(events, context, metadata)
                    .await?;
            }
        }
        Ok(())
    }

    fn snapshot_due(&self, before: u64, after: u64) -> bool {
        self.snapshot_every > 0 && before / self.snapshot_every != after / self.snapshot_every
    }

    /// Position and time of the appended event at `version`.
    async fn appended(
        &self,
        aggregate_type: &str,
        id: &str,
        version: u64,
    ) -> Result<(i64, DateTime<Utc>), ReadError> {
        let version = version as i64;
        Ok(match &self.store {
            Store::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT global_position, recorded_at FROM events \
                      WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
                )
                .bind(aggregate_type)
                .bind(id)
                .bind(version)
                .fetch_one(pool)
                .await?
            }
            Store::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT global_position, recorded_at FROM events \
                      WHERE aggregate_type = ? AND aggregate_id = ? AND sequence = ?",
                )
                .bind(aggregate_type)
                .bind(id)
                .bind(version)
                .fetch_one(pool)
                .await?
            }
        })
    }

    /// Best effort: a snapshot only bounds folds, so a failure is logged, not returned.
    async fn snapshot<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
        state: serde_json::Value,
        recorded_at: DateTime<Utc>,
    ) {
        if let Err(error) = self
            .store
            .save_snapshot_json(A::TYPE, id, version, &state, recorded_at)
            .await
        {
            tracing::warn!(%error, aggregate = A::TYPE, id, version, "snapshot not saved");
        }
    }
}

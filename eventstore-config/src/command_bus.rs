//! The command bus: take an aggregate's kept state (or load its snapshot plus the newer
//! events), let the domain decide, append the events with metadata (serialized by cqrs-es, one
//! `INSERT` statement per command, refused by the unique key if the state was not current),
//! and on a conflict catch up and retry a bounded number of times. In the common case a
//! command is ONE statement round trip: the append. Use cases that decide on several aggregates commit through a
//! `UnitOfWork` (the `unit_of_work` module) instead.

use std::error::Error as StdError;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};
use rand::Rng;

use crate::log::ReadError;
use crate::metadata::EventMetadata;
use crate::settings::Settings;
use crate::sql::{Sql, Tx};
use crate::states::States;
use crate::store::Store;
use crate::store::StoreKind;
use crate::temporal::Versioned;

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

const RETURNING_POSTGRES: &str = " RETURNING sequence, global_position, recorded_at";
/// On SQLite a trigger copies the rowid into `global_position` after the insert, and
/// `RETURNING` sees the row before AFTER triggers ran: the rowid is the position.
const RETURNING_SQLITE: &str = " RETURNING sequence, rowid, recorded_at";

/// The one `INSERT` of an append: a row per event, then the store's `RETURNING` (the one
/// store-specific part: where the global position comes from).
fn insert_events(kind: StoreKind, aggregate_type: &str, id: &str, rows: &[SerializedEvent]) -> Sql {
    let mut insert = Sql::new(crate::log::INSERT_EVENTS);
    for (i, event) in rows.iter().enumerate() {
        insert.push(if i == 0 { "(" } else { ", (" });
        insert
            .bind(aggregate_type)
            .push(", ")
            .bind(id)
            .push(", ")
            .bind(event.sequence as i64)
            .push(", ")
            .bind(&event.event_type)
            .push(", ")
            .bind(&event.event_version)
            .push(", ")
            .bind(event.payload.clone())
            .push(", ")
            .bind(event.metadata.clone())
            .push(")");
    }
    insert.push(match kind {
        StoreKind::Postgres => RETURNING_POSTGRES,
        StoreKind::Sqlite => RETURNING_SQLITE,
    });
    insert
}

/// Exponential backoff with full jitter before attempt `attempt + 1`: contenders spread out
/// instead of colliding again in lockstep.
pub(crate) async fn backoff(attempt: u32) {
    let cap = (1u64 << attempt.min(7)).min(100);
    let jitter = rand::thread_rng().gen_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

/// Why an append did not happen.
pub(crate) enum Appended {
    /// Another writer appended that version first.
    Conflict,
    /// The store failed.
    Failed(Box<dyn StdError + Send + Sync>),
}

/// A decision on an aggregate, not yet appended.
pub(crate) struct Decision<A: Aggregate> {
    /// The state after the events (`handle` applied them through the sink).
    pub(crate) state: A,
    /// The version decided on: the events follow it.
    pub(crate) before: u64,
    /// The events (empty for an accepted no-op).
    pub(crate) events: Vec<A::Event>,
    /// Whether the state decided on was read from the log just now (else it was kept, and only
    /// the append proves it current).
    pub(crate) verified: bool,
}

/// Executes commands against the store.
#[derive(Debug, Clone)]
pub struct CommandBus {
    store: Store,
    retries: u32,
    snapshot_every: u64,
    states: States,
}

impl CommandBus {
    /// A bus over `store` with the retry and snapshot settings.
    pub fn new(store: Store, settings: &Settings) -> Self {
        Self {
            store,
            retries: settings.command_retries,
            snapshot_every: settings.snapshot_every,
            states: States::new(),
        }
    }

    /// The store this bus appends to (for reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The kept states (the unit of work updates them after its COMMIT).
    pub(crate) fn states(&self) -> &States {
        &self.states
    }

    /// How many times a use case runs at most (the first try and `command_retries` more).
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
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
        A: Aggregate + Clone + 'static,
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
        A: Aggregate + Clone + 'static,
        A::Command: Clone,
    {
        let attempts = self.retries.saturating_add(1);
        let mut attempt = 1;
        let mut caught_up = false;
        loop {
            let Decision {
                state,
                before,
                events,
                verified,
            } = self
                .decide::<A>(id, &command, services, expected_version)
                .await?;
            if events.is_empty() {
                return Ok(Committed {
                    aggregate_id: id.to_string(),
                    version: before,
                    position: None,
                    events,
                });
            }
            let new_version = before + events.len() as u64;
            match self.append::<A>(id, before, &events, metadata).await {
                Ok((position, recorded_at)) => {
                    // `handle` wrote the events through the sink, which applied them: `state`
                    // is the new version's.
                    if self.snapshot_due(before, new_version) {
                        if let Ok(snapshot) = serde_json::to_value(&state) {
                            self.snapshot::<A>(id, new_version, snapshot, recorded_at)
                                .await;
                        }
                    }
                    self.states.keep(
                        id,
                        Versioned {
                            state,
                            version: new_version,
                            last_recorded_at: Some(recorded_at),
                        },
                    );
                    return Ok(Committed {
                        aggregate_id: id.to_string(),
                        version: new_version,
                        position: Some(position),
                        events,
                    });
                }
                Err(Appended::Conflict) => {
                    self.states.stale(A::TYPE, id);
                    // A kept state that was behind (another process appended since) is no
                    // contention: catch up and decide again at once (once per command, so that
                    // in-process contenders keeping newer states cannot make this unbounded).
                    if !verified && !caught_up {
                        caught_up = true;
                        tracing::debug!("the kept state was behind; catching up");
                        continue;
                    }
                    tracing::debug!(attempt, "optimistic-concurrency conflict; retrying");
                    if attempt >= attempts {
                        return Err(CommandError::Conflict { attempts });
                    }
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(Appended::Failed(e)) => return Err(CommandError::Infrastructure(e)),
            }
        }
    }

    /// Lets the domain decide `command` on aggregate `id`'s current state, in the common case
    /// without reading the log: on the state kept from this process's last load or commit of
    /// it (the append with the expected version then proves it current, or conflicts).
    /// An answer that no append checks (a rejection, an `If-Match` mismatch, an accepted
    /// no-op) is given only on a state read to be current: from a kept state, the events since
    /// are read first and, if there were any, the command is decided again.
    pub(crate) async fn decide<A>(
        &self,
        id: &str,
        command: &A::Command,
        services: &A::Services,
        expected_version: Option<u64>,
    ) -> Result<Decision<A>, CommandError<A::Error>>
    where
        A: Aggregate + Clone + 'static,
        A::Command: Clone,
    {
        let (mut current, mut verified) = self.load_kept::<A>(id).await?;
        loop {
            // `current` stays as it is, to catch up from if the answer needs checking.
            let mut state = current.state.clone();
            let answer = match expected_version {
                Some(expected) if expected != current.version => {
                    Err(CommandError::VersionMismatch {
                        expected,
                        actual: current.version,
                    })
                }
                _ => {
                    let sink = EventSink::<A>::default();
                    match state.handle(command.clone(), services, &sink).await {
                        Ok(()) => Ok(sink.collect().await),
                        Err(e) => Err(CommandError::Rejected(e)),
                    }
                }
            };
            let appends = matches!(&answer, Ok(events) if !events.is_empty());
            if !appends && !verified {
                let before = current.version;
                current = self.catch_up_kept(id, current).await?;
                verified = true;
                if current.version != before {
                    continue;
                }
            }
            return answer.map(|events| Decision {
                state,
                before: current.version,
                events,
                verified,
            });
        }
    }

    /// The aggregate's kept state (trusted to be current unless marked stale), or else its
    /// current state read from the log (snapshot + newer events) and kept; and whether it was
    /// read from the log just now.
    async fn load_kept<A: Aggregate + Clone + 'static>(
        &self,
        id: &str,
    ) -> Result<(Versioned<A>, bool), ReadError> {
        match self.states.get::<A>(id) {
            Some((kept, false)) => Ok((kept, false)),
            Some((kept, true)) => Ok((self.catch_up_kept(id, kept).await?, true)),
            None => {
                let current = self.store.load_current::<A>(id).await?;
                self.states.keep(id, current.clone());
                Ok((current, true))
            }
        }
    }

    /// `kept` caught up with the events appended since, and kept.
    async fn catch_up_kept<A: Aggregate + Clone + 'static>(
        &self,
        id: &str,
        kept: Versioned<A>,
    ) -> Result<Versioned<A>, ReadError> {
        let current = self.store.catch_up(id, kept).await?;
        self.states.keep(id, current.clone());
        Ok(current)
    }

    /// Appends `events` as the versions after `after` in ONE `INSERT` statement, atomic on its
    /// own (no BEGIN/COMMIT round trips), and answers the last event's global position and time
    /// from its `RETURNING` (no look-up afterwards). Rows are serialized by cqrs-es exactly as
    /// `postgres-es`/`sqlite-es` write them; the primary key (aggregate_type, aggregate_id,
    /// sequence) refuses an append on a stale version.
    async fn append<A: Aggregate>(
        &self,
        id: &str,
        after: u64,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<(i64, DateTime<Utc>), Appended> {
        let metadata = metadata.to_map();
        let rows = events
            .iter()
            .zip(after + 1..)
            .map(|(event, sequence)| {
                SerializedEvent::try_from(&EventEnvelope::<A> {
                    aggregate_id: id.to_string(),
                    sequence: sequence as usize,
                    payload: event.clone(),
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Appended::Failed(Box::new(e)))?;
        self.append_rows(A::TYPE, id, after, &rows).await
    }

    /// Appends serialized `rows` (the versions after `after`) in one statement on the pool.
    pub(crate) async fn append_rows(
        &self,
        aggregate_type: &str,
        id: &str,
        after: u64,
        rows: &[SerializedEvent],
    ) -> Result<(i64, DateTime<Utc>), Appended> {
        let rows = sealed(&self.store, rows).await?;
        let rows = &rows[..];
        let insert = insert_events(self.store.kind(), aggregate_type, id, rows);
        let found = insert.fetch_all(&self.store).await;
        last_appended(found, after + rows.len() as u64)
    }

    /// As [`append_rows`](Self::append_rows), inside the open transaction `tx`.
    pub(crate) async fn append_rows_in(
        &self,
        tx: &mut Tx,
        aggregate_type: &str,
        id: &str,
        after: u64,
        rows: &[SerializedEvent],
    ) -> Result<(i64, DateTime<Utc>), Appended> {
        let rows = sealed(&mut *tx, rows).await?;
        let rows = &rows[..];
        let insert = insert_events(self.store.kind(), aggregate_type, id, rows);
        let found = insert.fetch_all(tx).await;
        last_appended(found, after + rows.len() as u64)
    }

    pub(crate) fn snapshot_due(&self, before: u64, after: u64) -> bool {
        self.snapshot_every > 0 && before / self.snapshot_every != after / self.snapshot_every
    }

    /// Best effort: a snapshot only bounds folds, so a failure is logged, not returned.
    pub(crate) async fn snapshot_json(
        &self,
        aggregate_type: &str,
        id: &str,
        version: u64,
        state: serde_json::Value,
        recorded_at: DateTime<Utc>,
    ) {
        if let Err(error) = self
            .store
            .save_snapshot_json(aggregate_type, id, version, &state, recorded_at)
            .await
        {
            tracing::warn!(%error, aggregate = aggregate_type, id, version, "snapshot not saved");
        }
    }

    async fn snapshot<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
        state: serde_json::Value,
        recorded_at: DateTime<Utc>,
    ) {
        self.snapshot_json(A::TYPE, id, version, state, recorded_at)
            .await
    }
}

/// The last event's global position and time from an append's `RETURNING` rows; a duplicate
/// primary key is a lost race.
fn last_appended(
    found: Result<Vec<(i64, i64, DateTime<Utc>)>, sqlx::Error>,
    last: u64,
) -> Result<(i64, DateTime<Utc>), Appended> {
    let last = last as i64;
    let returned = found.map_err(|error| match &error {
        // A duplicate (aggregate_type, aggregate_id, sequence), the table's only unique key:
        // sqlx reads PostgreSQL's 23505 and SQLite's 1555 (and 2067) as this kind.
        sqlx::Error::Database(e) if e.is_unique_violation() => Appended::Conflict,
        _ => Appended::Failed(Box::new(error)),
    })?;
    returned
        .into_iter()
        .find(|(sequence, _, _)| *sequence == last)
        .map(|(_, position, recorded_at)| (position, recorded_at))
        .ok_or_else(|| {
            Appended::Failed(format!("the append of version {last} returned no row").into())
        })
}

/// `rows` with their personal fields sealed ([`crate::personal::seal_events`]); borrowed as they
/// are when none has any (the common case: no copy, no statement).
async fn sealed<'r, 'a>(
    on: impl Into<crate::sql::Executor<'a>>,
    rows: &'r [SerializedEvent],
) -> Result<std::borrow::Cow<'r, [SerializedEvent]>, Appended> {
    let personal = rows.iter().any(|row| {
        !crate::personal::personal_fields(&row.aggregate_type, &row.event_type).is_empty()
    });
    if !personal {
        return Ok(std::borrow::Cow::Borrowed(rows));
    }
    let mut rows = rows.to_vec();
    crate::personal::seal_events(on, &mut rows)
        .await
        .map_err(|e| Appended::Failed(Box::new(e)))?;
    Ok(std::borrow::Cow::Owned(rows))
}

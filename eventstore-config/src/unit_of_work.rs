//! A unit of work: one use case's decisions on one or more aggregates (each loaded, handled and
//! checked against its own expected version, nothing appended yet), committed together with
//! extra statements (an e-mail claim, an idempotency record, …) in ONE transaction. The events
//! table's primary key refuses a stale version, so a race lost on any aggregate rolls back the
//! whole transaction and answers [`CommitError::Conflict`]; [`CommandBus::retrying`] then runs
//! the whole use case again.
//!
//! A unit of one aggregate and no statements keeps the bus's fast path: a single
//! `INSERT … RETURNING`, with no BEGIN/COMMIT round trips.

use std::any::Any;
use std::future::Future;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};

use crate::command_bus::{Appended, CommandBus, CommandError};
use crate::metadata::EventMetadata;
use crate::sql::Sql;
use crate::states::States;
use crate::temporal::Versioned;

/// One aggregate's decision in a unit of work.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided<A: Aggregate> {
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Its version before this decision.
    pub before: u64,
    /// Its version after this decision (unchanged if it decided nothing).
    pub version: u64,
    /// The events this decision adds (empty for an accepted no-op).
    pub events: Vec<A::Event>,
}

/// Why a unit of work did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another writer appended one of the versions first: nothing was committed; run the use
    /// case again.
    #[error("an aggregate changed concurrently")]
    Conflict,
    /// An extra statement hit a unique key (its name says which): nothing was committed.
    #[error("the statement {0} hit a unique key")]
    Duplicate(&'static str),
    /// The store failed (for a failure of COMMIT itself, the outcome is unknown).
    #[error("the event store failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// An error a use case can tell "lost a race, run me again" by.
pub trait Contended {
    /// True for a lost optimistic-concurrency race.
    fn is_conflict(&self) -> bool;
}

impl Contended for CommitError {
    fn is_conflict(&self) -> bool {
        matches!(self, CommitError::Conflict)
    }
}

/// Where each appended aggregate ended up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    appended: Vec<AppendedAt>,
}

#[derive(Debug, Clone, PartialEq)]
struct AppendedAt {
    aggregate_type: &'static str,
    id: String,
    version: u64,
    position: i64,
    recorded_at: DateTime<Utc>,
}

impl Commit {
    /// Global position of the last event appended to aggregate `id` of type `A` (None if this
    /// unit appended nothing to it).
    pub fn position<A: Aggregate>(&self, id: &str) -> Option<i64> {
        self.find(A::TYPE, id).map(|a| a.position)
    }

    /// The last global position this unit appended.
    pub fn last_position(&self) -> Option<i64> {
        self.appended.iter().map(|a| a.position).max()
    }

    fn find(&self, aggregate_type: &str, id: &str) -> Option<&AppendedAt> {
        self.appended
            .iter()
            .find(|a| a.aggregate_type == aggregate_type && a.id == id)
    }
}

/// An aggregate's decided, not yet appended, events and its state after them.
struct Pending {
    aggregate_type: &'static str,
    id: String,
    /// The version the aggregate was loaded at (the rows follow it).
    after: u64,
    version: u64,
    /// Whether the state at `after` was read from the log just now (else it was kept, and only
    /// the append proves it current).
    verified: bool,
    rows: Vec<SerializedEvent>,
    state: Box<dyn Any + Send + Sync>,
    keep: fn(&States, &str, Box<dyn Any + Send + Sync>, u64, DateTime<Utc>),
    to_json: fn(&(dyn Any + Send + Sync)) -> Option<serde_json::Value>,
}

fn keep_state<A: Aggregate + 'static>(
    states: &States,
    id: &str,
    state: Box<dyn Any + Send + Sync>,
    version: u64,
    recorded_at: DateTime<Utc>,
) {
    if let Ok(state) = state.downcast::<A>() {
        states.keep(
            id,
            Versioned {
                state: *state,
                version,
                last_recorded_at: Some(recorded_at),
            },
        );
    }
}

fn state_json<A: Aggregate + 'static>(
    state: &(dyn Any + Send + Sync),
) -> Option<serde_json::Value> {
    serde_json::to_value(state.downcast_ref::<A>()?).ok()
}

/// Decisions on several aggregates and extra statements, committed together.
pub struct UnitOfWork<'b> {
    bus: &'b CommandBus,
    metadata: EventMetadata,
    pending: Vec<Pending>,
    statements: Vec<(&'static str, Sql)>,
}

impl std::fmt::Debug for UnitOfWork<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("aggregates", &self.pending.len())
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl<'b> UnitOfWork<'b> {
    pub(crate) fn new(bus: &'b CommandBus, metadata: EventMetadata) -> Self {
        Self {
            bus,
            metadata,
            pending: Vec::new(),
            statements: Vec::new(),
        }
    }

    /// Decides `command` on aggregate `id`: on its state after this unit's earlier decisions on
    /// it, or else on its current state ([`CommandBus`]'s kept state, which the append proves
    /// current). Checks `expected_version`. Nothing is appended before
    /// [`commit`](Self::commit). A rejection, mismatch or no-op is answered only on a state
    /// known to be current (see the bus's `decide`); on an earlier decision's kept state found
    /// stale, the answer is [`CommandError::Conflict`], and the use case runs again.
    pub async fn decide<A>(
        &mut self,
        id: &str,
        command: A::Command,
        services: &A::Services,
        expected_version: Option<u64>,
    ) -> Result<Decided<A>, CommandError<A::Error>>
    where
        A: Aggregate + Clone + 'static,
        A::Command: Clone,
    {
        let earlier = self
            .pending
            .iter()
            .position(|p| p.aggregate_type == A::TYPE && p.id == id);
        let (state, before, events, verified) = match earlier {
            Some(i) => {
                let p = &self.pending[i];
                let mut state = p.state.downcast_ref::<A>().cloned().ok_or_else(|| {
                    CommandError::Infrastructure("a pending state of another type".into())
                })?;
                let before = p.version;
                let answer = match expected_version {
                    Some(expected) if expected != before => Err(CommandError::VersionMismatch {
                        expected,
                        actual: before,
                    }),
                    _ => {
                        let sink = EventSink::<A>::default();
                        match state.handle(command, services, &sink).await {
                            Ok(()) => Ok(sink.collect().await),
                            Err(e) => Err(CommandError::Rejected(e)),
                        }
                    }
                };
                let appends = matches!(&answer, Ok(events) if !events.is_empty());
                if !appends && !p.verified {
                    // The earlier decision's state may be behind: the answer stands only if
                    // nothing was appended since it.
                    let (aggregate_type, after) = (p.aggregate_type, p.after);
                    if self
                        .bus
                        .store()
                        .has_events_after(aggregate_type, id, after)
                        .await?
                    {
                        self.bus.states().stale(aggregate_type, id);
                        return Err(CommandError::Conflict { attempts: 1 });
                    }
                    self.pending[i].verified = true;
                }
                // The pending state's trust changed above, if at all.
                (state, before, answer?, false)
            }
            None => {
                let d = self
                    .bus
                    .decide::<A>(id, &command, services, expected_version)
                    .await?;
                (d.state, d.before, d.events, d.verified)
            }
        };
        let version = before + events.len() as u64;
        let decided = Decided {
            aggregate_id: id.to_owned(),
            before,
            version,
            events,
        };
        if decided.events.is_empty() {
            return Ok(decided);
        }
        let metadata = self.metadata.to_map();
        let rows = decided
            .events
            .iter()
            .zip(before + 1..)
            .map(|(event, sequence)| {
                SerializedEvent::try_from(&EventEnvelope::<A> {
                    aggregate_id: id.to_owned(),
                    sequence: sequence as usize,
                    payload: event.clone(),
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CommandError::Infrastructure(Box::new(e)))?;
        // `handle` wrote the events through the sink, which applied them: `state` is the new
        // version's.
        match earlier {
            Some(i) => {
                let p = &mut self.pending[i];
                p.rows.extend(rows);
                p.version = version;
                p.state = Box::new(state);
                p.verified = p.verified || verified;
            }
            None => self.pending.push(Pending {
                aggregate_type: A::TYPE,
                id: id.to_owned(),
                after: before,
                version,
                verified,
                rows,
                state: Box::new(state),
                keep: keep_state::<A>,
                to_json: state_json::<A>,
            }),
        }
        Ok(decided)
    }

    /// Adds a statement to run in the same transaction, after the appends. `name` is answered in
    /// [`CommitError::Duplicate`] when it hits a unique key.
    pub fn statement(&mut self, name: &'static str, sql: Sql) {
        self.statements.push((name, sql));
    }

    /// True when nothing was decided and no statement added.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.statements.is_empty()
    }

    /// Commits every decision and statement, or nothing. One aggregate and no statement: the
    /// bus's single `INSERT … RETURNING`, no transaction round trips.
    pub async fn commit(self) -> Result<Commit, CommitError> {
        let bus = self.bus;
        let decided: Vec<_> = self.decided();
        stale_on_conflict(bus, &decided, self.commit_now().await)
    }

    async fn commit_now(self) -> Result<Commit, CommitError> {
        let UnitOfWork {
            bus,
            pending,
            statements,
            ..
        } = self;
        match (pending.as_slice(), statements.is_empty()) {
            ([], true) => Ok(Commit::default()),
            ([p], true) => {
                let (position, recorded_at) = bus
                    .append_rows(p.aggregate_type, &p.id, p.after, &p.rows)
                    .await
                    .map_err(commit_error)?;
                let commit = Commit {
                    appended: vec![AppendedAt {
                        aggregate_type: p.aggregate_type,
                        id: p.id.clone(),
                        version: p.version,
                        position,
                        recorded_at,
                    }],
                };
                finish(bus, pending, &commit).await;
                Ok(commit)
            }
            _ => commit_in_tx(bus, pending, statements, |_| Vec::new()).await,
        }
    }

    /// As [`commit`](Self::commit), always in a transaction, and runs the statements `then`
    /// makes from the appended positions (e.g. the stored answer of an idempotent request) in
    /// it too.
    pub async fn commit_with<F>(self, then: F) -> Result<Commit, CommitError>
    where
        F: FnOnce(&Commit) -> Vec<(&'static str, Sql)>,
    {
        let bus = self.bus;
        let decided: Vec<_> = self.decided();
        let committed = commit_in_tx(self.bus, self.pending, self.statements, then).await;
        stale_on_conflict(bus, &decided, committed)
    }

    /// The aggregates this unit appends to.
    fn decided(&self) -> Vec<(&'static str, String)> {
        self.pending
            .iter()
            .map(|p| (p.aggregate_type, p.id.clone()))
            .collect()
    }
}

/// A lost race marks the kept states of the unit's aggregates stale: the use case's next run
/// catches them up before deciding.
fn stale_on_conflict(
    bus: &CommandBus,
    decided: &[(&'static str, String)],
    committed: Result<Commit, CommitError>,
) -> Result<Commit, CommitError> {
    if let Err(CommitError::Conflict) = &committed {
        for (aggregate_type, id) in decided {
            bus.states().stale(aggregate_type, id);
        }
    }
    committed
}

fn commit_error(appended: Appended) -> CommitError {
    match appended {
        Appended::Conflict => CommitError::Conflict,
        Appended::Failed(e) => CommitError::Failed(e),
    }
}

async fn commit_in_tx<F>(
    bus: &CommandBus,
    pending: Vec<Pending>,
    statements: Vec<(&'static str, Sql)>,
    then: F,
) -> Result<Commit, CommitError>
where
    F: FnOnce(&Commit) -> Vec<(&'static str, Sql)>,
{
    let failed = |e: sqlx::Error| CommitError::Failed(Box::new(e));
    let mut tx = bus.store().begin().await.map_err(failed)?;
    let mut commit = Commit::default();
    for p in &pending {
        let (position, recorded_at) = bus
            .append_rows_in(&mut tx, p.aggregate_type, &p.id, p.after, &p.rows)
            .await
            .map_err(commit_error)?;
        commit.appended.push(AppendedAt {
            aggregate_type: p.aggregate_type,
            id: p.id.clone(),
            version: p.version,
            position,
            recorded_at,
        });
    }
    let then = then(&commit);
    for (name, sql) in statements.iter().chain(then.iter()) {
        run_statement(&mut tx, name, sql).await?;
    }
    tx.commit().await.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => CommitError::Conflict,
        _ => failed(e),
    })?;
    finish(bus, pending, &commit).await;
    Ok(commit)
}

async fn run_statement(
    tx: &mut crate::sql::Tx,
    name: &'static str,
    sql: &Sql,
) -> Result<(), CommitError> {
    sql.execute(&mut *tx).await.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => CommitError::Duplicate(name),
        _ => CommitError::Failed(Box::new(e)),
    })?;
    Ok(())
}

/// After COMMIT: keep the new states and write the snapshots that are due.
async fn finish(bus: &CommandBus, pending: Vec<Pending>, commit: &Commit) {
    for p in pending {
        let Some(at) = commit.find(p.aggregate_type, &p.id) else {
            continue;
        };
        let recorded_at = at.recorded_at;
        if bus.snapshot_due(p.after, p.version) {
            if let Some(snapshot) = (p.to_json)(p.state.as_ref()) {
                bus.snapshot_json(p.aggregate_type, &p.id, p.version, snapshot, recorded_at)
                    .await;
            }
        }
        (p.keep)(bus.states(), &p.id, p.state, p.version, recorded_at);
    }
}

impl CommandBus {
    /// A new, empty unit of work whose events carry `metadata`.
    pub fn unit_of_work(&self, metadata: EventMetadata) -> UnitOfWork<'_> {
        UnitOfWork::new(self, metadata)
    }

    /// Runs `attempt` (a whole use case: decide, then commit) until it does not lose an
    /// optimistic-concurrency race, at most `command_retries + 1` times, with jittered
    /// exponential backoff between attempts. The last conflict is answered when every attempt
    /// lost.
    pub async fn retrying<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Contended,
    {
        let attempts = self.attempts();
        let mut n = 1;
        loop {
            match attempt().await {
                Err(e) if e.is_conflict() && n < attempts => {
                    tracing::debug!(attempt = n, "unit of work lost a race; running it again");
                    crate::command_bus::backoff(n).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }
}

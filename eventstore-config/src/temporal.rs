//! Aggregate state from the log: current (for commands), as of a version, as of a time.
//! Folds use the domain's own `apply`; eventshop's snapshots bound how far back a fold starts.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::Value;

use crate::log::{Bound, FoldRow, ReadError};
use crate::sql::Arg;
use crate::store::Store;

/// An aggregate's state at some version.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<A> {
    /// The folded state.
    pub state: A,
    /// Number of events folded (0: the aggregate has no events yet).
    pub version: u64,
    /// When the last folded event was recorded (None at version 0).
    pub last_recorded_at: Option<DateTime<Utc>>,
}

struct Snapshot {
    version: u64,
    payload: Value,
    last_recorded_at: DateTime<Utc>,
}

impl Store {
    /// The aggregate's current state (version 0 and the default state if it has no events).
    pub async fn load_current<A: Aggregate>(&self, id: &str) -> Result<Versioned<A>, ReadError> {
        self.fold::<A>(id, Bound::Latest).await
    }

    /// The aggregate's state right after `version`; None if it never reached that version
    /// (or `version` is 0).
    #[tracing::instrument(skip(self), level = "debug", fields(aggregate = A::TYPE))]
    pub async fn load_at_version<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Option<Versioned<A>>, ReadError> {
        if version == 0 {
            return Ok(None);
        }
        let folded = self.fold::<A>(id, Bound::Version(version)).await?;
        Ok((folded.version == version).then_some(folded))
    }

    /// The aggregate's state including every event recorded at or before `at`; None if it had
    /// no events yet then.
    #[tracing::instrument(skip(self), level = "debug", fields(aggregate = A::TYPE))]
    pub async fn load_as_of<A: Aggregate>(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Versioned<A>>, ReadError> {
        let folded = self.fold::<A>(id, Bound::Time(at)).await?;
        Ok((folded.version > 0).then_some(folded))
    }

    async fn fold<A: Aggregate>(&self, id: &str, bound: Bound) -> Result<Versioned<A>, ReadError> {
        let mut snapshot = self.snapshot_before(A::TYPE, id, bound).await?;
        if let Some(snapshot) = &mut snapshot {
            crate::personal::open_snapshot(self, A::TYPE, id, &mut snapshot.payload).await?;
        }
        let folded = match snapshot {
            // A snapshot of an older shape of the aggregate is ignored: the log is the truth.
            Some(snapshot) => match serde_json::from_value::<A>(snapshot.payload) {
                Ok(state) => Versioned {
                    state,
                    version: snapshot.version,
                    last_recorded_at: Some(snapshot.last_recorded_at),
                },
                Err(error) => {
                    tracing::warn!(%error, aggregate = A::TYPE, id, "ignoring undecodable snapshot");
                    Versioned::empty()
                }
            },
            None => Versioned::empty(),
        };
        self.fold_onto(id, folded, bound).await
    }

    /// `from` brought up to date: the aggregate's events after `from.version` folded onto it.
    /// A state at a version never changes (the log is append-only), so a state kept from an
    /// earlier load needs only the events since.
    pub(crate) async fn catch_up<A: Aggregate>(
        &self,
        id: &str,
        from: Versioned<A>,
    ) -> Result<Versioned<A>, ReadError> {
        self.fold_onto(id, from, Bound::Latest).await
    }

    /// Folds the events after `folded.version` onto it. Aggregates without sealed personal
    /// fields stream their rows and decode each payload's text straight into the event type
    /// (upcast first only when stored at an older schema version); an account's events are
    /// read as stored events, whose sealed values are opened first.
    async fn fold_onto<A: Aggregate>(
        &self,
        id: &str,
        folded: Versioned<A>,
        bound: Bound,
    ) -> Result<Versioned<A>, ReadError> {
        if A::TYPE == crate::personal::PERSONAL_AGGREGATE {
            return self.fold_stored_onto(id, folded, bound).await;
        }
        let mut folded = folded;
        self.for_each_aggregate_row(A::TYPE, id, folded.version, bound, |row| {
            let version = row.sequence as u64;
            if version != folded.version + 1 {
                return Err(ReadError::Corrupt {
                    aggregate_type: A::TYPE.to_owned(),
                    aggregate_id: id.to_owned(),
                    version,
                    reason: format!("expected version {}", folded.version + 1),
                });
            }
            folded
                .state
                .apply(decode_row::<A::Event>(A::TYPE, id, &row)?);
            folded.version = version;
            folded.last_recorded_at = Some(row.recorded_at);
            Ok(())
        })
        .await?;
        Ok(folded)
    }

    async fn fold_stored_onto<A: Aggregate>(
        &self,
        id: &str,
        mut folded: Versioned<A>,
        bound: Bound,
    ) -> Result<Versioned<A>, ReadError> {
        let events = self
            .aggregate_events(A::TYPE, id, folded.version, bound)
            .await?;
        for event in events {
            if event.version != folded.version + 1 {
                return Err(ReadError::Corrupt {
                    aggregate_type: event.aggregate_type,
                    aggregate_id: event.aggregate_id,
                    version: event.version,
                    reason: format!("expected version {}", folded.version + 1),
                });
            }
            folded.state.apply(event.decode::<A::Event>()?);
            folded.version = event.version;
            folded.last_recorded_at = Some(event.recorded_at);
        }
        Ok(folded)
    }

    async fn snapshot_before(
        &self,
        aggregate_type: &str,
        id: &str,
        bound: Bound,
    ) -> Result<Option<Snapshot>, ReadError> {
        type SnapshotRow = (i64, Value, DateTime<Utc>);
        let mut sql = crate::snapshots::select(aggregate_type, id);
        match bound {
            Bound::Latest => {}
            Bound::Version(v) => {
                sql.push(" AND version <= ").bind(v as i64);
            }
            // Snapshots keep the time of their last event in `recorded_at`'s form.
            Bound::Time(t) => {
                sql.push(" AND last_recorded_at <= ")
                    .bind(Arg::LogTime(Some(t)));
            }
        }
        sql.push(" ORDER BY version DESC LIMIT 1");
        let row: Option<SnapshotRow> = sql.fetch_optional(self).await?;
        Ok(row.map(|(version, payload, last_recorded_at)| Snapshot {
            version: version as u64,
            payload,
            last_recorded_at,
        }))
    }

    /// Stores a snapshot of `state` at `version` (a repeated snapshot of the same version is
    /// ignored). Snapshots only bound folds; losing one changes no answer.
    pub async fn save_snapshot<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
        state: &A,
        last_recorded_at: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        let payload = serde_json::to_value(state).map_err(|e| ReadError::Corrupt {
            aggregate_type: A::TYPE.to_string(),
            aggregate_id: id.to_string(),
            version,
            reason: e.to_string(),
        })?;
        self.save_snapshot_json(A::TYPE, id, version, &payload, last_recorded_at)
            .await
    }

    /// Deletes every snapshot older than its aggregate's newest (housekeeping); answers how
    /// many. A command loads from the newest; a temporal load of an older version folds from
    /// the aggregate's first event instead.
    pub async fn prune_snapshots(&self) -> Result<u64, ReadError> {
        Ok(crate::snapshots::prune_superseded().execute(self).await?)
    }

    /// Stores an already serialized snapshot.
    pub(crate) async fn save_snapshot_json(
        &self,
        aggregate_type: &str,
        id: &str,
        version: u64,
        payload: &Value,
        last_recorded_at: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        let mut sealed = payload.clone();
        crate::personal::seal_snapshot(self, aggregate_type, id, &mut sealed).await?;
        crate::snapshots::insert(aggregate_type, id, version, sealed, last_recorded_at)
            .execute(self)
            .await?;
        Ok(())
    }
}

/// A fold row's payload as event `E`: parsed straight from its text when stored at the event
/// type's current schema version, else parsed, upcast ([`domain::upcast`]) and decoded.
fn decode_row<E: serde::de::DeserializeOwned>(
    aggregate_type: &str,
    id: &str,
    row: &FoldRow,
) -> Result<E, ReadError> {
    let corrupt = |reason: String| ReadError::Corrupt {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id.to_owned(),
        version: row.sequence as u64,
        reason,
    };
    let current = domain::upcast::current_version(&row.event_type);
    if row.event_version.trim().parse::<u32>() == Ok(current) {
        return serde_json::from_str(&row.payload).map_err(|e| corrupt(e.to_string()));
    }
    let stored: Value = serde_json::from_str(&row.payload).map_err(|e| corrupt(e.to_string()))?;
    let upcast =
        domain::upcast::upcast(&row.event_type, &row.event_version, &stored).map_err(|source| {
            ReadError::Upcast {
                position: row.global_position,
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: id.to_owned(),
                version: row.sequence as u64,
                source,
            }
        })?;
    E::deserialize(&*upcast).map_err(|e| corrupt(e.to_string()))
}

impl<A: Default> Versioned<A> {
    fn empty() -> Self {
        Self {
            state: A::default(),
            version: 0,
            last_recorded_at: None,
        }
    }
}

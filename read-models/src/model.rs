//! Read-model rows independent of the backend: column kinds and values, table definitions, the
//! [`Model`] a read model implements once (for both stores), and the fold that turns a batch of
//! events into row versions with history (`valid_from`/`valid_to`).

use std::collections::HashMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use eventstore_config::{ReadError, StoredEvent};

/// The SQL type of a read-model column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `text NOT NULL`.
    Text,
    /// `text`.
    OptText,
    /// `bigint NOT NULL` (SQLite `integer`).
    Int,
    /// `bigint`.
    OptInt,
    /// `boolean NOT NULL` (SQLite `integer` 0/1).
    Bool,
    /// `timestamptz NOT NULL` (SQLite fixed-width text, see
    /// [`sqlite_time`](eventstore_config::sql::sqlite_time)).
    Time,
    /// `timestamptz`.
    OptTime,
}

/// One value of a read-model row.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// See [`Kind::Text`].
    Text(String),
    /// See [`Kind::OptText`].
    OptText(Option<String>),
    /// See [`Kind::Int`].
    Int(i64),
    /// See [`Kind::OptInt`].
    OptInt(Option<i64>),
    /// See [`Kind::Bool`].
    Bool(bool),
    /// See [`Kind::Time`].
    Time(DateTime<Utc>),
    /// See [`Kind::OptTime`].
    OptTime(Option<DateTime<Utc>>),
}

impl Val {
    /// The text, if this is a non-null text value.
    pub fn text(&self) -> Option<&str> {
        match self {
            Val::Text(s) | Val::OptText(Some(s)) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a non-null integer value.
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) | Val::OptInt(Some(i)) => Some(*i),
            _ => None,
        }
    }

    /// The time, if this is a non-null time value.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Val::Time(t) | Val::OptTime(Some(t)) => Some(*t),
            _ => None,
        }
    }
}

/// A column of a read-model table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
}

/// Shorthand for a [`Column`].
pub const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

/// A read-model table. An entity table (`history: true`) has the entity key as its first
/// column, then the state columns, then [`HISTORY_COLUMNS`]; an append table is keyed by a
/// unique column (the event's position) and written with `ON CONFLICT DO NOTHING`.
#[derive(Debug)]
pub struct TableDef {
    /// The live table's name.
    pub name: &'static str,
    /// Key and state columns (entity table) or every column (append table).
    pub columns: &'static [Column],
    /// Whether rows are versioned with [`HISTORY_COLUMNS`].
    pub history: bool,
}

/// The columns every row version of an entity table ends with, in this order.
pub const HISTORY_COLUMNS: &[Column] = &[
    col("version", Kind::Int),
    col("last_position", Kind::Int),
    col("valid_from_position", Kind::Int),
    col("valid_to_position", Kind::OptInt),
    col("valid_from", Kind::Time),
    col("valid_to", Kind::OptTime),
];

impl TableDef {
    /// Every column, history columns included.
    pub fn all_columns(&self) -> Vec<Column> {
        let mut columns = self.columns.to_vec();
        if self.history {
            columns.extend_from_slice(HISTORY_COLUMNS);
        }
        columns
    }

    /// The entity key column (the first).
    pub fn key(&self) -> &'static str {
        self.columns[0].name
    }

    /// The columns an ordered dump sorts by: the key and the version (entity tables) or the
    /// first column (append tables).
    pub fn order_by(&self) -> String {
        if self.history {
            format!("{}, valid_from_position", self.key())
        } else {
            self.columns[0].name.to_string()
        }
    }
}

/// Why an event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

impl From<ReadError> for ApplyError {
    fn from(error: ReadError) -> Self {
        ApplyError(error.to_string())
    }
}

/// Rows for the append tables of a model: `(index into Model::APPENDS, row)`.
pub type Appends = Vec<(usize, Vec<Val>)>;

/// A read model, written once for both stores: which entity each event changes and how.
pub trait Model: Send + Sync + 'static {
    /// The entity's state (one row version).
    type State: Clone + Send;
    /// The projection's stable name.
    const NAME: &'static str;
    /// Bumped when the model's meaning changes (a rebuild brings tables to this version).
    const VERSION: i32;
    /// The entity table, if the model keeps entities.
    const ENTITY: Option<&'static TableDef>;
    /// The append-only tables.
    const APPENDS: &'static [&'static TableDef];

    /// The key of the entity `event` changes; `None` for events the entity table ignores
    /// (a model without an entity table gets every event in `apply`).
    fn key(event: &StoredEvent) -> Option<String>;

    /// The entity's next state after `event` (`state` is the current one, `None` before the
    /// entity exists; always `None` for events without a key). Pushes append-table rows to
    /// `appends`. `Ok(None)`: the event does not change the entity.
    fn apply(
        state: Option<&Self::State>,
        event: &StoredEvent,
        appends: &mut Appends,
    ) -> Result<Option<Self::State>, ApplyError>;

    /// The entity table's key and state columns for `state`.
    fn to_vals(state: &Self::State) -> Vec<Val>;

    /// The state from the entity table's key and state columns.
    fn from_vals(vals: &[Val]) -> Result<Self::State, ApplyError>;

    /// The text columns an erasure overwrites, with their values (see [`scrub`](Self::scrub));
    /// none for most models. An entity whose current row version holds these values has them
    /// on every version (a rebuild's swap makes sure: [`Tx::rescrub`](crate::sql::Tx::rescrub)).
    const SCRUBBED: &'static [(&'static str, &'static str)] = &[];

    /// Text columns to overwrite on EVERY row version of the entity `event` changes, history
    /// included, once `event` is applied (erasure: no earlier version may keep personal data).
    /// None for most events.
    fn scrub(_event: &StoredEvent) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// A previous row version to close: the entity's current row gets `valid_to_*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    /// The entity key.
    pub key: String,
    /// Position of the event that replaced it.
    pub position: i64,
    /// Time of that event.
    pub at: DateTime<Utc>,
}

/// Every row version of one entity, history included, gets these column values (erasure of
/// personal data: see [`Model::scrub`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Scrub {
    /// The entity key.
    pub key: String,
    /// `(column, value)` pairs to set.
    pub set: &'static [(&'static str, &'static str)],
}

/// What one batch writes.
#[derive(Debug, Default)]
pub struct Plan {
    /// Current rows to close.
    pub closes: Vec<Close>,
    /// New entity row versions (all columns).
    pub rows: Vec<Vec<Val>>,
    /// New rows per append table.
    pub appends: Vec<Vec<Vec<Val>>>,
    /// Entities whose every row version is overwritten, after the rows above are written.
    pub scrubs: Vec<Scrub>,
}

/// An event of a batch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event at position {position} could not be applied: {error}")]
pub struct FoldError {
    /// Index of the event in the batch.
    pub index: usize,
    /// Its global position.
    pub position: i64,
    /// Why.
    pub error: ApplyError,
}

/// A projection as the runner sees it (object-safe; implemented for every [`Model`] by
/// [`Projector`]).
pub trait Projection: Send + Sync {
    /// Stable name (also the checkpoint's name).
    fn name(&self) -> &'static str;
    /// Version of the model.
    fn version(&self) -> i32;
    /// The entity table, if any.
    fn entity(&self) -> Option<&'static TableDef>;
    /// The append tables.
    fn appends(&self) -> &'static [&'static TableDef];
    /// The entity table's erased columns and values ([`Model::SCRUBBED`]).
    fn scrubbed(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Every table of the read model.
    fn tables(&self) -> Vec<&'static TableDef> {
        self.entity()
            .into_iter()
            .chain(self.appends().iter().copied())
            .collect()
    }
    /// The distinct entity keys `events` touch.
    fn keys(&self, events: &[StoredEvent]) -> Vec<String>;
    /// The writes for `events`, given the current rows (all columns) of the touched entities.
    fn fold(
        &self,
        current: HashMap<String, Vec<Val>>,
        events: &[StoredEvent],
    ) -> Result<Plan, FoldError>;
}

/// The [`Projection`] of a [`Model`].
pub struct Projector<M>(PhantomData<M>);

impl<M> Default for Projector<M> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

struct Entry<S> {
    state: Option<S>,
    last_position: i64,
    had_current: bool,
    versions: Vec<(Vec<Val>, i64, i64, DateTime<Utc>)>,
}

impl<M: Model> Projection for Projector<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn version(&self) -> i32 {
        M::VERSION
    }

    fn entity(&self) -> Option<&'static TableDef> {
        M::ENTITY
    }

    fn appends(&self) -> &'static [&'static TableDef] {
        M::APPENDS
    }

    fn scrubbed(&self) -> &'static [(&'static str, &'static str)] {
        M::SCRUBBED
    }

    fn keys(&self, events: &[StoredEvent]) -> Vec<String> {
        if M::ENTITY.is_none() {
            return Vec::new();
        }
        let mut keys: Vec<String> = events.iter().filter_map(M::key).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn fold(
        &self,
        current: HashMap<String, Vec<Val>>,
        events: &[StoredEvent],
    ) -> Result<Plan, FoldError> {
        let width = M::ENTITY.map(|t| t.columns.len()).unwrap_or(0);
        let mut entries: HashMap<String, Entry<M::State>> = HashMap::new();
        for (key, vals) in current {
            let fail = |error| FoldError {
                index: 0,
                position: 0,
                error,
            };
            let state = M::from_vals(&vals[..width]).map_err(fail)?;
            let last_position = vals[width + 1]
                .int()
                .ok_or_else(|| fail(ApplyError("last_position is null".into())))?;
            entries.insert(
                key,
                Entry {
                    state: Some(state),
                    last_position,
                    had_current: true,
                    versions: Vec::new(),
                },
            );
        }
        let mut appends: Appends = Vec::new();
        let mut scrubs = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let fail = |error| FoldError {
                index,
                position: event.position,
                error,
            };
            let key = if M::ENTITY.is_some() {
                M::key(event)
            } else {
                None
            };
            match key {
                Some(key) => {
                    let set = M::scrub(event);
                    if !set.is_empty() {
                        scrubs.push(Scrub {
                            key: key.clone(),
                            set,
                        });
                    }
                    let entry = entries.entry(key).or_insert_with(|| Entry {
                        state: None,
                        last_position: 0,
                        had_current: false,
                        versions: Vec::new(),
                    });
                    if event.position <= entry.last_position {
                        continue; // already applied: a replay is a no-op
                    }
                    if let Some(next) =
                        M::apply(entry.state.as_ref(), event, &mut appends).map_err(fail)?
                    {
                        entry.versions.push((
                            M::to_vals(&next),
                            event.version as i64,
                            event.position,
                            event.recorded_at,
                        ));
                        entry.state = Some(next);
                        entry.last_position = event.position;
                    }
                }
                None if M::ENTITY.is_none() => {
                    M::apply(None, event, &mut appends).map_err(fail)?;
                }
                None => {}
            }
        }
        let mut plan = Plan {
            appends: vec![Vec::new(); M::APPENDS.len()],
            scrubs,
            ..Plan::default()
        };
        for (table, row) in appends {
            plan.appends[table].push(row);
        }
        for (key, entry) in entries {
            let Some(first) = entry.versions.first() else {
                continue;
            };
            if entry.had_current {
                plan.closes.push(Close {
                    key,
                    position: first.2,
                    at: first.3,
                });
            }
            let next: Vec<Option<(i64, DateTime<Utc>)>> = entry
                .versions
                .iter()
                .skip(1)
                .map(|v| Some((v.2, v.3)))
                .chain(std::iter::once(None))
                .collect();
            for ((mut vals, version, position, at), to) in entry.versions.into_iter().zip(next) {
                vals.extend([
                    Val::Int(version),
                    Val::Int(position),
                    Val::Int(position),
                    Val::OptInt(to.map(|t| t.0)),
                    Val::Time(at),
                    Val::OptTime(to.map(|t| t.1)),
                ]);
                plan.rows.push(vals);
            }
        }
        Ok(plan)
    }
}

/// Decodes an event's payload (upcast: [`StoredEvent::upcast`], a borrow when the log reader
/// upcast it already) into its aggregate's event type without copying it. An event of a schema
/// version this binary does not know fails (and is parked by the runner).
pub fn decode<E: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<E, ApplyError> {
    let payload = event.upcast().map_err(|e| ApplyError(e.to_string()))?;
    E::deserialize(&*payload).map_err(|e| {
        ApplyError(format!(
            "stored event {}/{} version {} does not decode: {e}",
            event.aggregate_type, event.aggregate_id, event.version
        ))
    })
}

/// Reads column `i` of a state row as text.
pub fn text(vals: &[Val], i: usize) -> Result<String, ApplyError> {
    vals.get(i)
        .and_then(Val::text)
        .map(str::to_string)
        .ok_or_else(|| ApplyError(format!("column {i} is not text")))
}

/// Reads column `i` of a state row as nullable text.
pub fn opt_text(vals: &[Val], i: usize) -> Option<String> {
    vals.get(i).and_then(Val::text).map(str::to_string)
}

/// Reads column `i` of a state row as an integer.
pub fn int(vals: &[Val], i: usize) -> Result<i64, ApplyError> {
    vals.get(i)
        .and_then(Val::int)
        .ok_or_else(|| ApplyError(format!("column {i} is not an integer")))
}

/// Reads column `i` of a state row as a nullable integer.
pub fn opt_int(vals: &[Val], i: usize) -> Option<i64> {
    vals.get(i).and_then(Val::int)
}

/// Reads column `i` of a state row as a time.
pub fn time(vals: &[Val], i: usize) -> Result<DateTime<Utc>, ApplyError> {
    vals.get(i)
        .and_then(Val::time)
        .ok_or_else(|| ApplyError(format!("column {i} is not a time")))
}

/// Reads column `i` of a state row as a nullable time.
pub fn opt_time(vals: &[Val], i: usize) -> Option<DateTime<Utc>> {
    vals.get(i).and_then(Val::time)
}

/// Reads column `i` of a state row as a boolean.
pub fn boolean(vals: &[Val], i: usize) -> Result<bool, ApplyError> {
    match vals.get(i) {
        Some(Val::Bool(b)) => Ok(*b),
        _ => Err(ApplyError(format!("column {i} is not a boolean"))),
    }
}

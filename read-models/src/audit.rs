//! `rm_audit`: one row per event — who did what, to which aggregate, when, in which request.

use chrono::{DateTime, Utc};
use eventstore_config::{Sql, StoredEvent};

use crate::model::{col, Appends, ApplyError, Kind, Model, TableDef, Val};
use crate::select::Select;

/// The audit index.
pub struct Audit;

static TABLE: TableDef = TableDef {
    name: "rm_audit",
    columns: &[
        col("global_position", Kind::Int),
        col("event_type", Kind::Text),
        col("aggregate_type", Kind::Text),
        col("aggregate_id", Kind::Text),
        col("version", Kind::Int),
        col("actor", Kind::OptText),
        col("correlation_id", Kind::OptText),
        col("causation_id", Kind::OptText),
        col("request_id", Kind::OptText),
        col("recorded_at", Kind::Time),
    ],
    history: false,
};

impl Model for Audit {
    type State = ();
    const NAME: &'static str = "audit";
    const VERSION: i32 = 1;
    const ENTITY: Option<&'static TableDef> = None;
    const APPENDS: &'static [&'static TableDef] = &[&TABLE];

    fn key(_: &StoredEvent) -> Option<String> {
        None
    }

    fn apply(
        _: Option<&()>,
        e: &StoredEvent,
        appends: &mut Appends,
    ) -> Result<Option<()>, ApplyError> {
        let m = &e.metadata;
        appends.push((
            0,
            vec![
                Val::Int(e.position),
                Val::Text(e.event_type.clone()),
                Val::Text(e.aggregate_type.clone()),
                Val::Text(e.aggregate_id.clone()),
                Val::Int(e.version as i64),
                Val::OptText(m.actor.clone()),
                Val::OptText(m.correlation_id.clone()),
                Val::OptText(m.causation_id.clone()),
                Val::OptText(m.request_id.clone()),
                Val::Time(e.recorded_at),
            ],
        ));
        Ok(None)
    }

    fn to_vals(_: &()) -> Vec<Val> {
        Vec::new()
    }

    fn from_vals(_: &[Val]) -> Result<(), ApplyError> {
        Ok(())
    }
}

/// What an audit query asks for. `resource_type` is an aggregate type (`order`, …).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who (account id or `system`).
    pub actor: Option<String>,
    /// Aggregate type.
    pub resource_type: Option<String>,
    /// Aggregate id.
    pub resource_id: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded at or before.
    pub to: Option<DateTime<Utc>>,
}

/// One audit entry as read: who did what, to which aggregate, when, in which request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    /// Global position of the event.
    pub global_position: i64,
    /// The event type.
    pub event_type: String,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The aggregate's version after the event.
    pub version: i64,
    /// Who (account id or `system`).
    pub actor: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Causation id.
    pub causation_id: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

crate::select::plain_record!(AuditRecord);

/// Up to `limit` audit entries matching `filter` after global position `after`, in log order.
pub fn page(filter: &AuditFilter, after: i64, limit: i64) -> Select<AuditRecord> {
    let mut sql = Sql::new(
        "SELECT global_position, event_type, aggregate_type, aggregate_id, version, actor, \
         correlation_id, causation_id, request_id, recorded_at FROM rm_audit \
         WHERE global_position > ",
    );
    sql.bind(after);
    if let Some(actor) = &filter.actor {
        sql.push(" AND actor = ").bind(actor);
    }
    if let Some(t) = &filter.resource_type {
        sql.push(" AND aggregate_type = ").bind(t);
    }
    if let Some(id) = &filter.resource_id {
        sql.push(" AND aggregate_id = ").bind(id);
    }
    if let Some(from) = filter.from {
        sql.push(" AND recorded_at >= ").bind(from);
    }
    if let Some(to) = filter.to {
        sql.push(" AND recorded_at <= ").bind(to);
    }
    sql.push(" ORDER BY global_position LIMIT ").bind(limit);
    Select::new(sql)
}

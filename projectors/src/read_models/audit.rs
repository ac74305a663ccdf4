//! `rm_audit`: one row per event — who did what, to which aggregate, when, in which request.

use eventstore_config::StoredEvent;

use crate::model::{col, Appends, ApplyError, Kind, Model, TableDef, Val};

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

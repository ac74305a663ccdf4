//! `rm_policies`: one row version per policy-set event; `policies` is the JSON array of the
//! subject's policy strings, sorted.

use std::collections::BTreeSet;

use domain::policy_set::PolicySetEvent;
use eventstore_config::StoredEvent;

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};

/// The policies read model.
pub struct Policies;

/// A subject's policies.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    subject: String,
    policies: BTreeSet<String>,
}

static TABLE: TableDef = TableDef {
    name: "rm_policies",
    columns: &[col("subject", Kind::Text), col("policies", Kind::Text)],
    history: true,
};

impl Model for Policies {
    type State = PolicyRow;
    const NAME: &'static str = "policies";
    const VERSION: i32 = 1;
    const ENTITY: Option<&'static TableDef> = Some(&TABLE);
    const APPENDS: &'static [&'static TableDef] = &[];

    fn key(event: &StoredEvent) -> Option<String> {
        (event.aggregate_type == "policy_set").then(|| event.aggregate_id.clone())
    }

    fn apply(
        state: Option<&PolicyRow>,
        event: &StoredEvent,
        _: &mut Appends,
    ) -> Result<Option<PolicyRow>, ApplyError> {
        let mut row = state.cloned().unwrap_or_else(|| PolicyRow {
            subject: event.aggregate_id.clone(),
            policies: BTreeSet::new(),
        });
        match model::decode::<PolicySetEvent>(event)? {
            PolicySetEvent::PolicyGranted { policy } => {
                row.policies.insert(policy.to_string());
            }
            PolicySetEvent::PolicyRevoked { policy } => {
                row.policies.remove(&policy.to_string());
            }
            PolicySetEvent::AllPoliciesRevoked => row.policies.clear(),
        }
        Ok(Some(row))
    }

    fn to_vals(s: &PolicyRow) -> Vec<Val> {
        let json = serde_json::to_string(&s.policies).unwrap_or_else(|_| "[]".to_string());
        vec![Val::Text(s.subject.clone()), Val::Text(json)]
    }

    fn from_vals(v: &[Val]) -> Result<PolicyRow, ApplyError> {
        let policies = serde_json::from_str(&model::text(v, 1)?)
            .map_err(|e| ApplyError(format!("stored policies do not decode: {e}")))?;
        Ok(PolicyRow {
            subject: model::text(v, 0)?,
            policies,
        })
    }
}

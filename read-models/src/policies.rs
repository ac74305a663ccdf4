//! `rm_policies`: one row version per policy-set event; `policies` is the JSON array of the
//! subject's policy strings, sorted.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use domain::policy_set::PolicySetEvent;
use eventstore_config::{Sql, StoredEvent};

use crate::model::{self, col, Appends, ApplyError, Kind, Model, TableDef, Val};
use crate::select::{valid_at, ReadModelError, Record, Select};

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

/// A subject's policies as read: the current row version, or the one valid at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The subject (account id or `*`).
    pub subject: String,
    /// `sub:action:resource_type:resource_id` strings, sorted.
    pub policies: Vec<String>,
    /// The policy set aggregate's version.
    pub version: i64,
}

/// An `rm_policies` row as stored (`policies` JSON).
#[derive(sqlx::FromRow)]
pub struct StoredPolicies {
    subject: String,
    policies: String,
    version: i64,
}

impl Record for PolicyRecord {
    type Raw = StoredPolicies;

    fn decode(r: StoredPolicies) -> Result<Self, ReadModelError> {
        let policies = serde_json::from_str(&r.policies).map_err(|e| {
            ReadModelError::Corrupt(format!("rm_policies/{}", r.subject), e.to_string())
        })?;
        Ok(PolicyRecord {
            subject: r.subject,
            policies,
            version: r.version,
        })
    }
}

/// `subject`'s policies, current or as of a time.
pub fn by_subject(subject: &str, as_of: Option<DateTime<Utc>>) -> Select<PolicyRecord> {
    let mut sql = Sql::new("SELECT subject, policies, version FROM rm_policies WHERE subject = ");
    sql.bind(subject);
    valid_at(&mut sql, as_of).push(" LIMIT 1");
    Select::new(sql)
}

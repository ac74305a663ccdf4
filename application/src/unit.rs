//! The steps every use case shares: commit a unit of work with the caller's record, and run a
//! whole use case again when it lost a race.

use std::future::Future;

use domain::policy_set::PolicySet;
use eventstore_config::{Commit, Committed, Decided, UnitOfWork};

use crate::{App, AppError, Record};

/// Commits `unit` (with the statements `record` makes from the outcome, in the same
/// transaction) and answers the outcome `outcome` builds from the commit. `outcome` is called
/// once before COMMIT (for the record) and once after, so it must be a pure function of the
/// commit.
pub(crate) async fn commit<O>(
    unit: UnitOfWork<'_>,
    record: Record<'_, O>,
    outcome: impl Fn(&Commit) -> O,
) -> Result<(Commit, O), AppError> {
    let commit = match record {
        Some(record) => unit.commit_with(|c| record(&outcome(c))).await?,
        None => unit.commit().await?,
    };
    let answer = outcome(&commit);
    Ok((commit, answer))
}

/// Runs the use case `attempt` until it does not lose a race (bounded by the bus's retries).
pub(crate) async fn run<T, F, Fut>(app: &App, attempt: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    app.bus()
        .retrying(attempt)
        .await
        .map_err(|error| match error {
            AppError::Contended { .. } => AppError::Contended {
                attempts: app.bus().attempts(),
            },
            other => other,
        })
}

/// Tells the policy cache about policy-set decisions this process just committed.
pub(crate) fn cache_policies(app: &App, commit: &Commit, decided: &[Decided<PolicySet>]) {
    for d in decided.iter().filter(|d| !d.events.is_empty()) {
        app.cache().apply_committed(&Committed {
            aggregate_id: d.aggregate_id.clone(),
            version: d.version,
            position: commit.position::<PolicySet>(&d.aggregate_id),
            events: d.events.clone(),
        });
    }
}

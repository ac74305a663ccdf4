//! Granting and revoking policies (admins over the API; the other use cases grant their own).

use domain::policy_set::{PolicySet, PolicySetCommand};
use domain::Policy;
use eventstore_config::{EventMetadata, UnitOfWork};

use crate::unit::{cache_policies, commit, run};
use crate::{App, AppError, Done, Record};

/// Decides granting `policy` in `unit` (a repeat decides nothing).
pub(crate) async fn decide_grant(
    unit: &mut UnitOfWork<'_>,
    policy: &str,
) -> Result<eventstore_config::Decided<PolicySet>, AppError> {
    let policy = Policy::parse(policy)
        .map_err(|e| AppError::failed(anyhow::anyhow!("built an invalid policy: {e}")))?;
    let subject = policy.subject().to_owned();
    Ok(unit
        .decide::<PolicySet>(&subject, PolicySetCommand::Grant { policy }, &(), None)
        .await?)
}

/// Grants `policy` to its subject (a repeat is an accepted no-op: no position).
pub async fn grant(
    app: &App,
    metadata: &EventMetadata,
    policy: &Policy,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    change(
        app,
        metadata,
        policy,
        || PolicySetCommand::Grant {
            policy: policy.clone(),
        },
        expected,
        record,
    )
    .await
}

/// Revokes `policy` from its subject (revoking one not held is an accepted no-op).
pub async fn revoke(
    app: &App,
    metadata: &EventMetadata,
    policy: &Policy,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    change(
        app,
        metadata,
        policy,
        || PolicySetCommand::Revoke {
            policy: policy.clone(),
        },
        expected,
        record,
    )
    .await
}

async fn change(
    app: &App,
    metadata: &EventMetadata,
    policy: &Policy,
    command: impl Fn() -> PolicySetCommand,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    let subject = policy.subject();
    run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<PolicySet>(subject, command(), &(), expected)
            .await?;
        let (commit, done) = commit(unit, record, |c| Done {
            version: decided.version,
            position: c.position::<PolicySet>(subject),
        })
        .await?;
        cache_policies(app, &commit, std::slice::from_ref(&decided));
        Ok(done)
    })
    .await
}

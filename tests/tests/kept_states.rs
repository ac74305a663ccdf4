//! A command decides on its aggregate's kept state without reading the log first (one round
//! trip: the append). These tests prove that another writer's appends since (a second
//! `CommandBus`, as another process would be) are never missed, on both stores: the append
//! conflicts and the command catches up, and an answer no append checks (a rejection, an
//! `If-Match` mismatch, an accepted no-op) is given only on the current state.

use domain::policy::Policy;
use domain::policy_set::{PolicySet, PolicySetCommand, PolicySetEvent};
use domain::wallet::{Wallet, WalletCommand, WalletError};
use domain::{Currency, Money};
use eventshop_tests::TestStore;
use eventstore_config::{CommandBus, CommandError, CommitError, Contended, EventMetadata};
use uuid::Uuid;

eventshop_tests::store_tests!(
    given_another_process_appended_since_when_a_command_decides_on_the_kept_state_then_the_append_conflicts_and_it_succeeds_after_catching_up,
    given_another_process_opened_the_wallet_when_the_kept_state_says_unopened_then_the_deposit_is_not_refused,
    given_another_process_appended_since_when_if_match_names_the_current_version_then_the_command_is_accepted,
    given_another_process_revoked_a_policy_when_the_kept_state_still_has_it_then_granting_it_again_appends_a_grant,
    given_another_process_appended_since_when_a_unit_of_work_decides_on_the_kept_state_then_it_runs_again_and_commits,
);

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

/// A bus of its own: its kept states are another process's.
fn process(test: &TestStore) -> CommandBus {
    CommandBus::new(test.store.clone(), &test.settings)
}

async fn open(bus: &CommandBus, account_id: Uuid) {
    bus.execute::<Wallet>(
        &account_id.to_string(),
        WalletCommand::Open {
            account_id,
            currency: Currency::EUR,
        },
        &(),
        &EventMetadata::system(),
    )
    .await
    .expect("open");
}

async fn deposit(
    bus: &CommandBus,
    id: &str,
    amount: i64,
    expected: Option<u64>,
) -> Result<eventstore_config::Committed<Wallet>, CommandError<WalletError>> {
    bus.execute_expecting::<Wallet>(
        id,
        WalletCommand::Deposit {
            amount: eur(amount),
        },
        &(),
        &EventMetadata::for_actor("tester"),
        expected,
    )
    .await
}

async fn given_another_process_appended_since_when_a_command_decides_on_the_kept_state_then_the_append_conflicts_and_it_succeeds_after_catching_up(
    test: TestStore,
) {
    let (ours, theirs) = (process(&test), process(&test));
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    open(&ours, account_id).await;
    deposit(&ours, &id, 100, None).await.expect("ours");
    deposit(&theirs, &id, 50, None).await.expect("theirs");
    deposit(&theirs, &id, 25, None).await.expect("theirs");

    let committed = deposit(&ours, &id, 10, None).await.expect("ours again");

    assert_eq!(
        committed.version, 5,
        "appended after the other process's events"
    );
    let current = test.store.load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(
        (current.version, current.state.balance()),
        (5, Some(eur(185)))
    );
    // Kept at the version it committed: the next command needs no catch-up and appends 6.
    let next = deposit(&ours, &id, 1, None).await.expect("next");
    assert_eq!(next.version, 6);
}

async fn given_another_process_opened_the_wallet_when_the_kept_state_says_unopened_then_the_deposit_is_not_refused(
    test: TestStore,
) {
    let (ours, theirs) = (process(&test), process(&test));
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    // Ours keeps the wallet's state before it was opened.
    let refused = deposit(&ours, &id, 100, None).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(WalletError::NotOpened))),
        "{refused:?}"
    );
    open(&theirs, account_id).await;

    let committed = deposit(&ours, &id, 100, None)
        .await
        .expect("the rejection is checked against the current state");

    assert_eq!(committed.version, 2);
}

async fn given_another_process_appended_since_when_if_match_names_the_current_version_then_the_command_is_accepted(
    test: TestStore,
) {
    let (ours, theirs) = (process(&test), process(&test));
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    open(&ours, account_id).await;
    deposit(&theirs, &id, 50, None).await.expect("theirs");

    let committed = deposit(&ours, &id, 10, Some(2))
        .await
        .expect("version 2 is current, whatever ours kept");
    assert_eq!(committed.version, 3);

    deposit(&theirs, &id, 5, None).await.expect("theirs");
    let stale = deposit(&ours, &id, 10, Some(3)).await;
    assert!(
        matches!(
            stale,
            Err(CommandError::VersionMismatch {
                expected: 3,
                actual: 4
            })
        ),
        "{stale:?}"
    );
}

async fn given_another_process_revoked_a_policy_when_the_kept_state_still_has_it_then_granting_it_again_appends_a_grant(
    test: TestStore,
) {
    let (ours, theirs) = (process(&test), process(&test));
    let subject = Uuid::now_v7().to_string();
    let policy = Policy::new(&subject, "read", "order", "*").expect("policy");
    let run = |bus: &CommandBus, command: PolicySetCommand| {
        let (bus, subject) = (bus.clone(), subject.clone());
        async move {
            bus.execute::<PolicySet>(&subject, command, &(), &EventMetadata::system())
                .await
                .expect("policy command")
        }
    };
    run(
        &ours,
        PolicySetCommand::Grant {
            policy: policy.clone(),
        },
    )
    .await;
    run(
        &theirs,
        PolicySetCommand::Revoke {
            policy: policy.clone(),
        },
    )
    .await;

    let granted = run(
        &ours,
        PolicySetCommand::Grant {
            policy: policy.clone(),
        },
    )
    .await;

    assert_eq!(granted.version, 3, "not a no-op on the kept, stale state");
    assert!(matches!(
        granted.events[..],
        [PolicySetEvent::PolicyGranted { .. }]
    ));
    let current = test
        .store
        .load_current::<PolicySet>(&subject)
        .await
        .unwrap();
    assert!(current.state.contains(&policy));
}

/// A use case's error: a command's or the commit's.
#[derive(Debug)]
enum UseCaseError {
    Command(CommandError<WalletError>),
    Commit(CommitError),
}

impl Contended for UseCaseError {
    fn is_conflict(&self) -> bool {
        match self {
            UseCaseError::Command(e) => matches!(e, CommandError::Conflict { .. }),
            UseCaseError::Commit(e) => e.is_conflict(),
        }
    }
}

async fn given_another_process_appended_since_when_a_unit_of_work_decides_on_the_kept_state_then_it_runs_again_and_commits(
    test: TestStore,
) {
    let (ours, theirs) = (process(&test), process(&test));
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    open(&ours, account_id).await;
    deposit(&theirs, &id, 50, None).await.expect("theirs");
    let mut runs = 0;

    let version = ours
        .retrying(|| {
            runs += 1;
            let (ours, id) = (&ours, id.clone());
            async move {
                let mut unit = ours.unit_of_work(EventMetadata::for_actor("tester"));
                let decided = unit
                    .decide::<Wallet>(&id, WalletCommand::Deposit { amount: eur(10) }, &(), None)
                    .await
                    .map_err(UseCaseError::Command)?;
                unit.commit().await.map_err(UseCaseError::Commit)?;
                Ok::<_, UseCaseError>(decided.version)
            }
        })
        .await
        .expect("the unit commits");

    assert_eq!(version, 3);
    assert_eq!(runs, 2, "the first run decided on the kept state and lost");
    let current = test.store.load_current::<Wallet>(&id).await.unwrap();
    assert_eq!(current.state.balance(), Some(eur(60)));
}

//! Accounts: registration (account, wallet, default grants and the e-mail claim in one unit of
//! work), deletion and deposits.

use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountError, AccountServices, Role};
use domain::policy_set::PolicySet;
use domain::wallet::{Wallet, WalletCommand};
use domain::{Email, Money, Name};
use eventstore_config::{email_registry, CommandBus, CommandError, Committed, EventMetadata};
use uuid::Uuid;

use crate::policies::decide_grant;
use crate::unit::{cache_policies, commit, run};
use crate::{App, AppError, Done, Kind, Origin, Record};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// The name of the e-mail claim statement in a registration's unit of work.
pub const EMAIL_CLAIM: &str = "email claim";
/// The message of a registration whose e-mail is taken.
pub const EMAIL_TAKEN: &str = "email already in use";

/// A registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The account's e-mail (unique).
    pub email: Email,
    /// Its display name.
    pub name: Name,
    /// Its password (8 to 1024 characters).
    pub password: String,
    /// Its role.
    pub role: Role,
}

/// A registered account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The new account's id.
    pub account_id: Uuid,
    /// The account's version (1).
    pub version: u64,
    /// Global position of the last event the registration appended.
    pub position: Option<i64>,
}

/// Checks a password's length (unprocessable, naming `password`).
pub fn check_password(password: &str) -> Result<(), AppError> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(AppError::rejected(
            Kind::Unprocessable,
            format!("password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
            Some("password"),
        ));
    }
    Ok(())
}

/// The policies an account of `role` gets at registration.
pub fn default_policies(id: &str, role: Role) -> Vec<String> {
    match role {
        Role::Admin => vec![format!("{id}:*:*:*")],
        Role::Seller => vec![
            format!("{id}:*:accounts:{id}"),
            format!("{id}:post:orders:*"),
            format!("{id}:post:products:*"),
        ],
        Role::Customer => vec![
            format!("{id}:*:accounts:{id}"),
            format!("{id}:post:orders:*"),
        ],
    }
}

/// Registers an account: Account.Register, Wallet.Open (in the default currency), the role's
/// default grants and the e-mail claim, all in one transaction. A taken e-mail is a conflict
/// naming `email`. Used by the API and by the CLI's `accounts create-admin`.
#[tracing::instrument(skip_all, fields(role = %registration.role))]
pub async fn register(
    app: &App,
    origin: &Origin,
    registration: Registration,
    record: Record<'_, Registered>,
) -> Result<Registered, AppError> {
    let Registration {
        email,
        name,
        password,
        role,
    } = registration;
    check_password(&password)?;
    let password_hash = app.passwords().hash(password).await?;
    let account_id = Uuid::now_v7();
    let id = account_id.to_string();
    let metadata = origin.metadata(&id);
    let result = run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let account = unit
            .decide::<Account>(
                &id,
                AccountCommand::Register {
                    account_id,
                    email: email.clone(),
                    name: name.as_str().to_owned(),
                    password_hash: password_hash.clone(),
                    role,
                    at: Utc::now(),
                },
                app.accounts(),
                None,
            )
            .await?;
        unit.decide::<Wallet>(
            &id,
            WalletCommand::Open {
                account_id,
                currency: app.default_currency(),
            },
            &(),
            None,
        )
        .await?;
        let mut grants = Vec::new();
        for policy in default_policies(&id, role) {
            grants.push(decide_grant(&mut unit, &policy).await?);
        }
        unit.statement(
            EMAIL_CLAIM,
            email_registry::claim(app.store(), &email, account_id).await?,
        );
        let (commit, registered) = commit(unit, record, |c| Registered {
            account_id,
            version: account.version,
            position: c.last_position(),
        })
        .await?;
        cache_policies(app, &commit, &grants);
        Ok(registered)
    })
    .await;
    match result {
        Err(AppError::Duplicate(EMAIL_CLAIM)) => Err(AppError::rejected(
            Kind::Conflict,
            EMAIL_TAKEN,
            Some("email"),
        )),
        other => other,
    }
}

/// Deletes an account: it accepts nothing afterwards and its tokens stop working (in this
/// process at once; in others when their policy caches follow the log).
pub async fn delete_account(
    app: &App,
    metadata: &EventMetadata,
    account_id: Uuid,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    let id = account_id.to_string();
    let done = run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Account>(
                &id,
                AccountCommand::Delete { at: Utc::now() },
                app.accounts(),
                expected,
            )
            .await?;
        let (_, done) = commit(unit, record, |c| Done {
            version: decided.version,
            position: c.position::<Account>(&id),
        })
        .await?;
        Ok(done)
    })
    .await?;
    app.cache().mark_deleted(&id);
    Ok(done)
}

/// Erases the account (right to erasure; [`erase`]): its
/// personal-data key, e-mail claim and snapshots go, `AccountErased` is appended (the account is
/// deleted too). An erased account erases again without a new event (`position` null).
pub async fn erase_account(
    app: &App,
    metadata: &EventMetadata,
    account_id: Uuid,
) -> Result<Done, AppError> {
    let id = account_id.to_string();
    let committed = erase(app.bus(), app.accounts(), &id, metadata).await?;
    app.cache().mark_deleted(&id);
    Ok(Done {
        version: committed.version,
        position: committed.position,
    })
}

/// Erases account `account_id` (right to erasure): refuses an unknown account
/// ([`AccountError::NotRegistered`]) without changing anything, then [`forget`](eventstore_config::erasure::forget)s its personal
/// data and appends `AccountErased` (nothing when it was erased already: a repeated erasure
/// succeeds and changes nothing, so an interrupted one is finished by running it again).
pub async fn erase(
    bus: &CommandBus,
    services: &AccountServices,
    account_id: &str,
    metadata: &EventMetadata,
) -> Result<Committed<Account>, CommandError<AccountError>> {
    let current = bus.store().load_current::<Account>(account_id).await?;
    if !current.state.is_registered() {
        return Err(CommandError::Rejected(AccountError::NotRegistered));
    }
    eventstore_config::erasure::forget(bus.store(), account_id)
        .await
        .map_err(|e| CommandError::Infrastructure(Box::new(e)))?;
    bus.execute::<Account>(
        account_id,
        AccountCommand::Erase { at: Utc::now() },
        services,
        metadata,
    )
    .await
}

/// Deposits `amount` into the account's wallet.
pub async fn deposit(
    app: &App,
    metadata: &EventMetadata,
    account_id: Uuid,
    amount: Money,
    expected: Option<u64>,
    record: Record<'_, Done>,
) -> Result<Done, AppError> {
    let id = account_id.to_string();
    run(app, || async {
        let mut unit = app.bus().unit_of_work(metadata.clone());
        let decided = unit
            .decide::<Wallet>(&id, WalletCommand::Deposit { amount }, &(), expected)
            .await?;
        let (_, done) = commit(unit, record, |c| Done {
            version: decided.version,
            position: c.position::<Wallet>(&id),
        })
        .await?;
        Ok(done)
    })
    .await
}

/// Whether the account's set-up is complete: registered, with its wallet and its role's
/// grants (what a registration commits together).
pub async fn is_set_up(app: &App, account_id: Uuid) -> Result<bool, AppError> {
    let id = account_id.to_string();
    let account = app.store().load_current::<Account>(&id).await?.state;
    let Some(role) = account.role() else {
        return Ok(false);
    };
    let wallet = app.store().load_current::<Wallet>(&id).await?.state;
    let policies = app.store().load_current::<PolicySet>(&id).await?.state;
    Ok(wallet.is_opened()
        && default_policies(&id, role)
            .iter()
            .filter_map(|p| domain::Policy::parse(p).ok())
            .all(|p| policies.contains(&p)))
}

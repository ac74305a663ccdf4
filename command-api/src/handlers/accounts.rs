//! `POST /accounts` (registration), `DELETE /accounts/{id}`, `POST /accounts/{id}/deposits`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use domain::account::{Account, AccountCommand, Role};
use domain::wallet::{Wallet, WalletCommand, WalletError};
use domain::{Currency, Email, Money, Name};
use eventstore_config::{CommandError, EventMetadata};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::grant;
use crate::authz::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IfMatch, JsonBody, PathId, RequestId};
use crate::respond::{accepted, AccountCommitted, Registered};
use crate::state::AppState;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A role open to self-registration.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegisterRole {
    /// May order (the default).
    #[default]
    Customer,
    /// May also create products.
    Seller,
}

/// `POST /accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Unique e-mail address (at most 254 characters).
    #[schema(value_type = String, example = "ada@example.com", max_length = 254,
             pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,62}){0,3}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,2}\.[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$")]
    #[serde(deserialize_with = "domain::email::deserialize_address")]
    pub email: Email,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// Display name, 1 to 200 characters.
    #[schema(value_type = String, example = "Ada", max_length = 200,
             pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Name,
    /// `customer` (default) or `seller`.
    #[serde(default)]
    pub role: RegisterRole,
}

/// Checks a password's length (422 naming `password`).
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(ApiError::unprocessable(
            format!("password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
            Some("password"),
        ));
    }
    Ok(())
}

/// The policies an account of `role` gets at registration.
fn default_policies(id: &str, role: Role) -> Vec<String> {
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

/// Registers an account with `role`: Account.Register, Wallet.Open and the default grants.
/// Returns the account's id, version and the position of `AccountRegistered`. Used by the API
/// and by the CLI's `accounts create-admin`.
///
/// A registration that failed half-way is finished by repeating it: an e-mail claimed by an
/// account that was never registered is registered under that same id (the claim is keyed by
/// it), and an account whose wallet or grants are missing gets them when the repeat carries its
/// password.
#[tracing::instrument(skip_all, fields(role = %role))]
pub async fn register_account(
    state: &AppState,
    email: Email,
    name: Name,
    password: String,
    role: Role,
    request_id: &RequestId,
) -> Result<(Uuid, u64, Option<i64>), ApiError> {
    check_password(&password)?;
    let mut account_id = Uuid::now_v7();
    if let Some(owner) = super::email_owner(state.store(), &email).await? {
        let owner_id = Uuid::parse_str(&owner).map_err(ApiError::internal)?;
        let account = state.store().load_current::<Account>(&owner).await?;
        if !account.state.is_registered() {
            account_id = owner_id;
        } else if let Some(resumed) = resume(
            state,
            owner_id,
            &account.state,
            account.version,
            &password,
            role,
            request_id,
        )
        .await?
        {
            return Ok(resumed);
        }
    }
    let password_hash = state.passwords().hash(password).await?;
    let id = account_id.to_string();
    let meta = request_id.metadata(&id);
    let committed = state
        .bus()
        .execute::<Account>(
            &id,
            AccountCommand::Register {
                account_id,
                email,
                name: name.into_string(),
                password_hash,
                role,
                at: Utc::now(),
            },
            state.accounts(),
            &meta,
        )
        .await?;
    finish_setup(state, account_id, role, &meta).await?;
    Ok((account_id, committed.version, committed.position))
}

/// Opens the wallet and grants the default policies (each step is a no-op when done before).
async fn finish_setup(
    state: &AppState,
    account_id: Uuid,
    role: Role,
    meta: &EventMetadata,
) -> Result<(), ApiError> {
    open_wallet(state, account_id, state.default_currency(), meta).await?;
    for policy in default_policies(&account_id.to_string(), role) {
        grant(state, &policy, meta).await?;
    }
    Ok(())
}

/// Finishes the set-up of a registered account whose wallet or grants are missing, when the
/// repeated registration has its role and password. `None`: not such a case (the registration
/// then fails as the e-mail is taken).
async fn resume(
    state: &AppState,
    account_id: Uuid,
    account: &Account,
    version: u64,
    password: &str,
    role: Role,
    request_id: &RequestId,
) -> Result<Option<(Uuid, u64, Option<i64>)>, ApiError> {
    if account.is_deleted() || account.role() != Some(role) {
        return Ok(None);
    }
    let id = account_id.to_string();
    let wallet = state.store().load_current::<Wallet>(&id).await?.state;
    let policies = state
        .store()
        .load_current::<domain::policy_set::PolicySet>(&id)
        .await?
        .state;
    let complete = wallet.is_opened()
        && default_policies(&id, role)
            .iter()
            .filter_map(|p| domain::Policy::parse(p).ok())
            .all(|p| policies.contains(&p));
    let Some(hash) = account.password_hash() else {
        return Ok(None);
    };
    if complete
        || !state
            .passwords()
            .verify(password.to_owned(), hash.to_owned())
            .await?
    {
        return Ok(None);
    }
    finish_setup(state, account_id, role, &request_id.metadata(&id)).await?;
    let position = state
        .store()
        .history(<Account as cqrs_es::Aggregate>::TYPE, &id)
        .await?
        .first()
        .map(|e| e.position);
    Ok(Some((account_id, version, position)))
}

/// Opens the account's wallet; an already open one (a retried registration) is fine.
async fn open_wallet(
    state: &AppState,
    account_id: Uuid,
    currency: Currency,
    meta: &EventMetadata,
) -> Result<(), ApiError> {
    match state
        .bus()
        .execute::<Wallet>(
            &account_id.to_string(),
            WalletCommand::Open {
                account_id,
                currency,
            },
            &(),
            meta,
        )
        .await
    {
        Ok(_) | Err(CommandError::Rejected(WalletError::AlreadyOpened)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Register an account (customer or seller) with a wallet; answers with its first tokens.
#[utoipa::path(
    post, path = "/api/v1/accounts", tag = "accounts",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries")),
    responses(
        (status = 201, description = "registered", body = Registered),
        (status = 400, description = "not JSON", body = ErrorBody),
        (status = 409, description = "email already in use", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "invalid field", body = ErrorBody),
        (status = 503, description = "too busy hashing passwords; see Retry-After", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    request_id: RequestId,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let role = match request.role {
        RegisterRole::Customer => Role::Customer,
        RegisterRole::Seller => Role::Seller,
    };
    let (account_id, version, position) = register_account(
        &state,
        request.email,
        request.name,
        request.password,
        role,
        &request_id,
    )
    .await?;
    let tokens = state
        .tokens()
        .issue(&account_id.to_string())
        .map_err(ApiError::Internal)?;
    Ok(accepted(
        StatusCode::CREATED,
        version,
        Registered {
            account_id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            version,
            position,
        },
    ))
}

/// Delete an account: it accepts nothing afterwards and its tokens stop working.
///
/// With `?erase=true` the account is erased (right to erasure): its personal-data key, e-mail
/// claim and snapshots are deleted and `AccountErased` is appended (the account is deleted too
/// if it was not). Afterwards its e-mail, name and password hash read `"[erased]"` everywhere —
/// in the log, `history`, the read models and their history rows, also after a rebuild — and
/// the e-mail can register again. Kept: the account id, role, times, its wallet, orders and
/// policies, and the audit rows (which hold the account id only). Erasing an erased account
/// succeeds again without a new event (`position` null); `If-Match` does not apply to erasure.
#[utoipa::path(
    delete, path = "/api/v1/accounts/{id}", tag = "accounts",
    params(
        ("id" = Uuid, Path, description = "account id"),
        ("erase" = Option<bool>, Query, description = "erase the account's personal data (crypto-shredding)"),
        ("If-Match" = Option<String>, Header, description = "expected account version"),
    ),
    responses(
        (status = 200, description = "deleted (or erased)", body = AccountCommitted),
        (status = 400, description = "erase is not true or false", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "no such account", body = ErrorBody),
        (status = 409, description = "stale If-Match", body = ErrorBody),
        (status = 422, description = "already deleted", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_account(
    State(state): State<AppState>,
    caller: Caller,
    PathId(account_id): PathId,
    IfMatch(expected): IfMatch,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = account_id.to_string();
    caller.require("delete", "accounts", &id)?;
    if erase_requested(query.as_deref())? {
        return erase_account(&state, &caller, account_id).await;
    }
    let committed = state
        .bus()
        .execute_expecting::<Account>(
            &id,
            AccountCommand::Delete { at: Utc::now() },
            state.accounts(),
            &caller.metadata(),
            expected,
        )
        .await?;
    state.cache().mark_deleted(&id);
    Ok(accepted(
        StatusCode::OK,
        committed.version,
        AccountCommitted {
            account_id,
            version: committed.version,
            position: committed.position,
        },
    ))
}

/// Whether the query string asks for erasure (`erase=true`; `erase=false` or none: no).
fn erase_requested(query: Option<&str>) -> Result<bool, ApiError> {
    let mut erase = false;
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "erase" {
            erase = match value {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::bad_request(
                        "erase must be true or false",
                        Some("erase"),
                    ))
                }
            };
        }
    }
    Ok(erase)
}

/// `DELETE /accounts/{id}?erase=true`, authorized as a deletion: erases the account
/// ([`eventstore_config::personal::erase_account`]).
async fn erase_account(
    state: &AppState,
    caller: &Caller,
    account_id: Uuid,
) -> Result<Response, ApiError> {
    let id = account_id.to_string();
    let committed = eventstore_config::personal::erase_account(
        state.bus(),
        state.accounts(),
        &id,
        &caller.metadata(),
    )
    .await?;
    state.cache().mark_deleted(&id);
    Ok(accepted(
        StatusCode::OK,
        committed.version,
        AccountCommitted {
            account_id,
            version: committed.version,
            position: committed.position,
        },
    ))
}

/// `POST /accounts/{id}/deposits`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    /// Minor units, greater than zero.
    #[schema(example = 10000, minimum = 1)]
    pub amount: i64,
    /// ISO 4217 code of the wallet's currency.
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
}

/// Deposit money into the account's wallet.
#[utoipa::path(
    post, path = "/api/v1/accounts/{id}/deposits", tag = "accounts",
    request_body = DepositRequest,
    params(
        ("id" = Uuid, Path, description = "account id"),
        ("If-Match" = Option<String>, Header, description = "expected wallet version"),
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries"),
    ),
    responses(
        (status = 201, description = "deposited", body = AccountCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "no such wallet", body = ErrorBody),
        (status = 409, description = "stale If-Match", body = ErrorBody),
        (status = 422, description = "non-positive amount or other currency", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn deposit(
    State(state): State<AppState>,
    caller: Caller,
    PathId(account_id): PathId,
    IfMatch(expected): IfMatch,
    JsonBody(request): JsonBody<DepositRequest>,
) -> Result<Response, ApiError> {
    let id = account_id.to_string();
    caller.require("post", "accounts", &id)?;
    let committed = state
        .bus()
        .execute_expecting::<Wallet>(
            &id,
            WalletCommand::Deposit {
                amount: Money::new(request.amount, request.currency),
            },
            &(),
            &caller.metadata(),
            expected,
        )
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        committed.version,
        AccountCommitted {
            account_id,
            version: committed.version,
            position: committed.position,
        },
    ))
}

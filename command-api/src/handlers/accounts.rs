//! `POST /accounts` (registration), `DELETE /accounts/{id}`, `POST /accounts/{id}/deposits`.

use application::{accounts, Done};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::account::Role;
use domain::{Currency, Email, Money, Name};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authz::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IfMatch, JsonBody, PathId, RequestId};
use crate::idempotency::Idempotent;
use crate::respond::{AccountCommitted, Registered, RegisteredRecord, Reply};
use crate::state::AppState;

pub use application::accounts::{check_password, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};

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

/// Register an account (customer or seller) with a wallet; answers with its first tokens.
#[utoipa::path(
    post, path = "/api/v1/accounts", tag = "accounts",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries: a repeat with the same body answers the same account, version and position with fresh tokens (no token is stored)")),
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
    idempotent: Idempotent,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let role = match request.role {
        RegisterRole::Customer => Role::Customer,
        RegisterRole::Seller => Role::Seller,
    };
    // The record keeps the answer without its tokens; a replay issues fresh ones.
    let record = idempotent.record(|r: &accounts::Registered| {
        Reply::json(
            StatusCode::CREATED,
            r.version,
            &RegisteredRecord {
                account_id: r.account_id,
                version: r.version,
                position: r.position,
            },
        )
    });
    let result = accounts::register(
        state.app(),
        &request_id.origin(),
        accounts::Registration {
            email: request.email,
            name: request.name,
            password: request.password,
            role,
        },
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    let registered = result?;
    let tokens = application::sessions::issue(state.app(), registered.account_id)?;
    let record = RegisteredRecord {
        account_id: registered.account_id,
        version: registered.version,
        position: registered.position,
    };
    Ok(Reply::json(
        StatusCode::CREATED,
        registered.version,
        &record.with_tokens(tokens),
    )
    .into_response())
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
    idempotent: Idempotent,
) -> Result<Response, ApiError> {
    caller.require("delete", "accounts", &account_id.to_string())?;
    let reply = move |done: &Done| account_reply(StatusCode::OK, account_id, done);
    if erase_requested(query.as_deref())? {
        let done = accounts::erase_account(state.app(), &caller.metadata(), account_id).await?;
        return Ok(reply(&done).into_response());
    }
    let record = idempotent.record(reply);
    let result = accounts::delete_account(
        state.app(),
        &caller.metadata(),
        account_id,
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
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

fn account_reply(status: StatusCode, account_id: Uuid, done: &Done) -> Reply {
    Reply::json(
        status,
        done.version,
        &AccountCommitted {
            account_id,
            version: done.version,
            position: done.position,
        },
    )
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
    idempotent: Idempotent,
    JsonBody(request): JsonBody<DepositRequest>,
) -> Result<Response, ApiError> {
    caller.require("post", "accounts", &account_id.to_string())?;
    let reply = move |done: &Done| account_reply(StatusCode::CREATED, account_id, done);
    let record = idempotent.record(reply);
    let result = accounts::deposit(
        state.app(),
        &caller.metadata(),
        account_id,
        Money::new(request.amount, request.currency),
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}

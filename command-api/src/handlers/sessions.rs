//! `POST /sessions` (login) and `POST /sessions/refresh`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::account::{Account, AccountCommand};
use domain::Email;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{hash_password, verify_password, TokenKind};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, RequestId};
use crate::respond::Session;
use crate::state::AppState;

const BAD_CREDENTIALS: &str = "invalid email or password";

/// `POST /sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's e-mail.
    pub email: String,
    /// Its password.
    pub password: String,
}

/// `POST /sessions/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token not used before.
    pub refresh_token: String,
}

/// An argon2 hash of a random password, made once per process.
async fn dummy_hash() -> Result<String, ApiError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| hash_password(Uuid::new_v4().to_string()))
        .await
        .cloned()
}

fn session(state: &AppState, account_id: &str) -> Result<Response, ApiError> {
    let tokens = state.tokens().issue(account_id)?;
    let account_id = Uuid::parse_str(account_id).map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        Json(Session {
            account_id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        }),
    )
        .into_response())
}

/// Log in with e-mail and password (records `AccountAuthenticated`).
#[utoipa::path(
    post, path = "/api/v1/sessions", tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "logged in", body = Session),
        (status = 401, description = "wrong e-mail or password, or a deleted account", body = ErrorBody),
        (status = 422, description = "invalid field", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    request_id: RequestId,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let unauthorized = || ApiError::Unauthorized(BAD_CREDENTIALS.into());
    let owner = match Email::parse(&request.email) {
        Ok(email) => super::email_owner(state.store(), &email).await?,
        Err(_) => None,
    };
    let account = match &owner {
        Some(id) => Some(state.store().load_current::<Account>(id).await?.state),
        None => None,
    };
    // Without an account (or with a claim whose registration never completed) a dummy hash is
    // verified all the same, so the answer's timing does not tell which e-mails exist.
    let (hash, usable) = match account.as_ref().and_then(|a| a.password_hash()) {
        Some(hash) => (hash.to_owned(), true),
        None => (dummy_hash().await?, false),
    };
    let matches = verify_password(request.password, hash).await?;
    let (Some(id), Some(account)) = (owner, account) else {
        return Err(unauthorized());
    };
    if !usable || !matches || account.is_deleted() {
        return Err(unauthorized());
    }
    state
        .bus()
        .execute::<Account>(
            &id,
            AccountCommand::RecordLogin { at: Utc::now() },
            state.accounts(),
            &request_id.metadata(&id),
        )
        .await?;
    state.cache().load(state.store(), &id).await?;
    session(&state, &id)
}

/// Trade a refresh token (once) for a new token pair.
#[utoipa::path(
    post, path = "/api/v1/sessions/refresh", tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = Session),
        (status = 401, description = "invalid, expired or used token, or a deleted account", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    request_id: RequestId,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let claims = state
        .tokens()
        .verify(&request.refresh_token, TokenKind::Refresh)?;
    let account = state
        .store()
        .load_current::<Account>(&claims.sub)
        .await?
        .state;
    if !account.is_registered() || account.is_deleted() {
        return Err(ApiError::Unauthorized(
            "the account does not exist or was deleted".into(),
        ));
    }
    if account.is_token_revoked(claims.jti) {
        return Err(ApiError::Unauthorized(
            "this refresh token was already used or revoked".into(),
        ));
    }
    let committed = state
        .bus()
        .execute::<Account>(
            &claims.sub,
            AccountCommand::RevokeRefreshToken { jti: claims.jti },
            state.accounts(),
            &request_id.metadata(&claims.sub),
        )
        .await?;
    if committed.events.is_empty() {
        // A concurrent refresh with the same token won.
        return Err(ApiError::Unauthorized(
            "this refresh token was already used or revoked".into(),
        ));
    }
    session(&state, &claims.sub)
}

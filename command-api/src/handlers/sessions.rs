//! `POST /sessions` (login) and `POST /sessions/refresh`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::account::{Account, AccountCommand};
use domain::Email;
use eventstore_config::EventMetadata;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{verify_password, TokenKind};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
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
pub async fn login(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let unauthorized = || ApiError::Unauthorized(BAD_CREDENTIALS.into());
    let email = Email::parse(&request.email).map_err(|_| unauthorized())?;
    let id = super::email_owner(state.store(), &email)
        .await?
        .ok_or_else(unauthorized)?;
    let account = state.store().load_current::<Account>(&id).await?.state;
    let Some(hash) = account.password_hash().map(str::to_owned) else {
        // A claim whose registration never completed.
        return Err(unauthorized());
    };
    if account.is_deleted() || !verify_password(request.password, hash).await? {
        return Err(unauthorized());
    }
    state
        .bus()
        .execute::<Account>(
            &id,
            AccountCommand::RecordLogin { at: Utc::now() },
            state.accounts(),
            &EventMetadata::for_actor(id.clone()),
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
            &EventMetadata::for_actor(claims.sub.clone()),
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

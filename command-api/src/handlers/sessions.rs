//! `POST /sessions` (login, rate-limited per account and per client address) and
//! `POST /sessions/refresh` (refresh-token rotation with reuse detection).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountError, AccountEvent};
use domain::Email;
use eventstore_config::CommandError;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::TokenKind;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, RequestId};
use crate::respond::Session;
use crate::state::AppState;

const BAD_CREDENTIALS: &str = "invalid email or password";
const REUSED: &str =
    "this refresh token was already used: every token of its session is revoked, log in again";
const FAMILY_REVOKED: &str =
    "this refresh token was revoked: a refresh token of its session was reused, log in again";

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

/// The client's IP address, when the server was started with connect info (else unknown: all
/// such requests share one login limit).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        ))
    }
}

/// An argon2 hash of a random password, made once per process.
async fn dummy_hash() -> Result<String, ApiError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            access::hash_password(Uuid::new_v4().to_string())
                .await
                .map_err(ApiError::Internal)
        })
        .await
        .cloned()
}

fn session(account_id: &str, tokens: access::TokenPair) -> Result<Response, ApiError> {
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

/// Log in with e-mail and password (records `AccountAuthenticated`). Each login starts a new
/// token family.
#[utoipa::path(
    post, path = "/api/v1/sessions", tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "logged in", body = Session),
        (status = 401, description = "wrong e-mail or password, or a deleted account", body = ErrorBody),
        (status = 422, description = "invalid field", body = ErrorBody),
        (status = 429, description = "too many login attempts for this e-mail or from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "too busy checking passwords; see Retry-After", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    request_id: RequestId,
    PeerAddress(address): PeerAddress,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    state.login_limits().check(&request.email, address)?;
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
    let matches = state.passwords().verify(request.password, hash).await?;
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
    let tokens = state.tokens().issue(&id).map_err(ApiError::Internal)?;
    session(&id, tokens)
}

/// Trade a refresh token (once) for a new token pair of the same token family. Presenting an
/// already-used refresh token revokes its whole family: every refresh and access token issued
/// since that login stops working.
#[utoipa::path(
    post, path = "/api/v1/sessions/refresh", tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = Session),
        (status = 401, description = "invalid, expired, used or revoked token, or a deleted account", body = ErrorBody),
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
    let family = claims.family();
    let gone = || ApiError::Unauthorized("the account does not exist or was deleted".into());
    let committed = match state
        .bus()
        .execute::<Account>(
            &claims.sub,
            AccountCommand::RotateRefreshToken {
                jti: claims.jti,
                family,
            },
            state.accounts(),
            &request_id.metadata(&claims.sub),
        )
        .await
    {
        Ok(committed) => committed,
        Err(CommandError::Rejected(AccountError::TokenFamilyRevoked)) => {
            return Err(ApiError::Unauthorized(FAMILY_REVOKED.into()))
        }
        Err(CommandError::Rejected(AccountError::AccountDeleted | AccountError::NotRegistered)) => {
            return Err(gone())
        }
        Err(error) => return Err(error.into()),
    };
    state.cache().apply_committed_account(&committed);
    match committed.events.as_slice() {
        [AccountEvent::RefreshTokenRevoked { .. }] => {
            let tokens = state
                .tokens()
                .issue_in(&claims.sub, family)
                .map_err(ApiError::Internal)?;
            session(&claims.sub, tokens)
        }
        _ => Err(ApiError::Unauthorized(REUSED.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn peer_of(request: axum::http::Request<()>) -> Option<IpAddr> {
        let (mut parts, ()) = request.into_parts();
        let Ok(PeerAddress(address)) = PeerAddress::from_request_parts(&mut parts, &()).await;
        address
    }

    #[tokio::test]
    async fn the_peer_address_is_the_connection_s_and_unknown_without_connect_info() {
        let mut request = axum::http::Request::new(());
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 4711))));
        assert_eq!(peer_of(request).await, Some(IpAddr::from([192, 0, 2, 7])));
        let forwarded = axum::http::Request::builder()
            .header("x-forwarded-for", "198.51.100.1")
            .body(())
            .unwrap();
        assert_eq!(peer_of(forwarded).await, None);
    }
}

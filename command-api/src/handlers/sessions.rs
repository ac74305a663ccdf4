//! `POST /sessions` (login, rate-limited per account and per client address) and
//! `POST /sessions/refresh` (refresh-token rotation with reuse detection).

use std::net::{IpAddr, SocketAddr};

use application::sessions;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, RequestId};
use crate::respond::Session;
use crate::state::AppState;

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

fn session(session: application::sessions::Session) -> Response {
    (
        StatusCode::OK,
        Json(Session {
            account_id: session.account_id,
            access_token: session.tokens.access_token,
            refresh_token: session.tokens.refresh_token,
        }),
    )
        .into_response()
}

/// Log in with e-mail and password (records `AccountAuthenticated`). Each login starts a new
/// token family.
#[utoipa::path(
    post, path = "/api/v1/sessions", tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "logged in", body = Session),
        (status = 400, description = "not JSON, or an `Idempotency-Key` header: routes that issue tokens refuse it (their answers are never stored)", body = ErrorBody),
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
    let done = sessions::log_in(
        state.app(),
        &request_id.origin(),
        &request.email,
        request.password,
    )
    .await?;
    Ok(session(done))
}

/// Trade a refresh token (once) for a new token pair of the same token family. Presenting an
/// already-used refresh token revokes its whole family: every refresh and access token issued
/// since that login stops working.
#[utoipa::path(
    post, path = "/api/v1/sessions/refresh", tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = Session),
        (status = 400, description = "not JSON, or an `Idempotency-Key` header: routes that issue tokens refuse it (their answers are never stored)", body = ErrorBody),
        (status = 401, description = "invalid, expired, used or revoked token, or a deleted account", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    request_id: RequestId,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let done = sessions::refresh(state.app(), &request_id.origin(), &request.refresh_token).await?;
    Ok(session(done))
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

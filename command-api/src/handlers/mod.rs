//! The REST handlers, one module per resource, plus `/healthz`.

pub mod accounts;
pub mod orders;
pub mod policies;
pub mod products;
pub mod sessions;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::policy_set::{PolicySet, PolicySetCommand};
use domain::Policy;
use eventstore_config::{EventMetadata, Store};

use crate::error::ApiError;
use crate::state::AppState;

/// The account id that claimed `email`, if any.
pub(crate) async fn email_owner(
    store: &Store,
    email: &domain::Email,
) -> Result<Option<String>, ApiError> {
    Ok(match store {
        Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT account_id FROM email_claims WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
        }
        Store::Sqlite(pool) => {
            sqlx::query_scalar("SELECT account_id FROM email_claims WHERE email = ?1")
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
        }
    })
}

/// Grants `policy` (a `sub:action:type:id` string built by the API) and updates the cache.
pub(crate) async fn grant(
    state: &AppState,
    policy: &str,
    meta: &EventMetadata,
) -> Result<(), ApiError> {
    let policy = Policy::parse(policy)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("built an invalid policy: {e}")))?;
    let subject = policy.subject().to_owned();
    let committed = state
        .bus()
        .execute::<PolicySet>(&subject, PolicySetCommand::Grant { policy }, &(), meta)
        .await?;
    state.cache().apply_committed(&committed);
    Ok(())
}

/// `GET /healthz`: 200 `{"status":"ok"}` when the database answers, else 503.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the database answers"), (status = 503, description = "it does not"))
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let ping = match state.store() {
        Store::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
    };
    match ping {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

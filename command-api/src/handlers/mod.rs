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
use eventstore_config::Sql;

use crate::state::AppState;

/// The body of `/healthz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    /// `ok` or `unavailable`.
    pub status: String,
}

/// How long `/healthz` waits for the database before it answers 503.
pub const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// `GET /healthz`: 200 `{"status":"ok"}` when the database answers within
/// [`HEALTH_TIMEOUT`], else 503 (a pool waiting for a connection does not hold the answer).
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "the database answers", body = HealthStatus),
        (status = 503, description = "it does not, within about 1 s", body = HealthStatus)
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let ping = async {
        Sql::new("SELECT 1")
            .execute(state.store())
            .await
            .map(|_| ())
    };
    let ping = match tokio::time::timeout(HEALTH_TIMEOUT, ping).await {
        Ok(answered) => answered.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {HEALTH_TIMEOUT:?}")),
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

//! `PUT /policies` and `DELETE /policies` (admins): grant or revoke one policy.

use application::{policies, Done};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Policy;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::authz::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IfMatch, JsonBody};
use crate::idempotency::Idempotent;
use crate::respond::{PolicyCommitted, Reply};
use crate::state::AppState;

/// `PUT /policies`, `DELETE /policies`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// `subject:action:resource_type:resource_id`; `*` matches anything in its place.
    #[schema(value_type = String, example = "0190f1d2-0000-7000-8000-000000000000:get:orders:*",
             pattern = r"^[^:*\s\u0000-\u001F\u007F-\u009F]{1,100}(:(\*|[^:*\s\u0000-\u001F\u007F-\u009F]{1,100})){3}$")]
    pub policy: Policy,
}

fn policy_reply(subject: &str, done: &Done) -> Reply {
    Reply::json(
        StatusCode::OK,
        done.version,
        &PolicyCommitted {
            subject: subject.to_owned(),
            version: done.version,
            position: done.position,
        },
    )
}

/// Grant a policy to its subject (a repeat is a no-op with a null position).
#[utoipa::path(
    put, path = "/api/v1/policies", tag = "policies",
    request_body = PolicyRequest,
    params(
        ("If-Match" = Option<String>, Header, description = "expected policy-set version"),
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries"),
    ),
    responses(
        (status = 200, description = "granted", body = PolicyCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "stale If-Match", body = ErrorBody),
        (status = 422, description = "not a policy", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    IfMatch(expected): IfMatch,
    idempotent: Idempotent,
    JsonBody(request): JsonBody<PolicyRequest>,
) -> Result<Response, ApiError> {
    let subject = request.policy.subject().to_owned();
    caller.require("put", "policies", &subject)?;
    let reply = move |done: &Done| policy_reply(&subject, done);
    let record = idempotent.record(reply.clone());
    let result = policies::grant(
        state.app(),
        &caller.metadata(),
        &request.policy,
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}

/// Revoke a policy from its subject (revoking one not held is a no-op with a null position).
#[utoipa::path(
    delete, path = "/api/v1/policies", tag = "policies",
    request_body = PolicyRequest,
    params(
        ("If-Match" = Option<String>, Header, description = "expected policy-set version"),
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries"),
    ),
    responses(
        (status = 200, description = "revoked", body = PolicyCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "stale If-Match", body = ErrorBody),
        (status = 422, description = "not a policy", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    IfMatch(expected): IfMatch,
    idempotent: Idempotent,
    JsonBody(request): JsonBody<PolicyRequest>,
) -> Result<Response, ApiError> {
    let subject = request.policy.subject().to_owned();
    caller.require("delete", "policies", &subject)?;
    let reply = move |done: &Done| policy_reply(&subject, done);
    let record = idempotent.record(reply.clone());
    let result = policies::revoke(
        state.app(),
        &caller.metadata(),
        &request.policy,
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}
